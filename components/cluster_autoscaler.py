"""ClusterAutoscaler: scales managed node groups, GPU groups included, from and to zero."""

from __future__ import annotations

import pulumi

from . import iam
from .helm import pinned_release
from .node_group import NODE_GROUP_LABEL
from .options import child_options
from .pod_identity import pod_identity_association, pod_identity_role
from .versions import CLUSTER_AUTOSCALER_IMAGE, CLUSTER_AUTOSCALER_RELEASES

NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "cluster-autoscaler"


def autoscaler_values(*, cluster_name: str, region: str, kubernetes_version: str) -> dict:
    """Helm values of the Cluster Autoscaler release."""
    return {
        "cloudProvider": "aws",
        "awsRegion": region,
        # Discovers the ASGs EKS tags k8s.io/cluster-autoscaler/enabled and .../<cluster>.
        "autoDiscovery": {"clusterName": cluster_name},
        "image": {
            "repository": CLUSTER_AUTOSCALER_IMAGE,
            "tag": CLUSTER_AUTOSCALER_RELEASES[kubernetes_version].image_tag,
        },
        "rbac": {"serviceAccount": {"create": True, "name": SERVICE_ACCOUNT}},
        "extraArgs": {
            "balance-similar-node-groups": True,
            # Pick the group that wastes least: avoids a p5 node for a pod that fits a g5.
            "expander": "least-waste",
            "skip-nodes-with-system-pods": False,
            "scale-down-unneeded-time": "10m",
        },
        "nodeSelector": {NODE_GROUP_LABEL: "system"},
        "priorityClassName": "system-cluster-critical",
        "resources": {
            "requests": {"cpu": "100m", "memory": "300Mi"},
            "limits": {"memory": "600Mi"},
        },
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containerSecurityContext": {"allowPrivilegeEscalation": False,
                                     "readOnlyRootFilesystem": True,
                                     "capabilities": {"drop": ["ALL"]}},
    }


class ClusterAutoscaler(pulumi.ComponentResource):
    """Cluster Autoscaler with least-privilege IAM through EKS Pod Identity.

    Creates: an IAM role trusted only by kube-system/cluster-autoscaler of this cluster, its
    inline policy (iam.cluster_autoscaler_policy), the Pod Identity association, and the
    Helm release (chart and image pinned together per Kubernetes minor in
    versions.CLUSTER_AUTOSCALER_RELEASES).

    Args:
        name: logical name.
        kubernetes_version: the cluster's version (selects the image tag).
        cluster_name, region, account_id, partition: where it runs.
        tags: common tags.
        opts: must carry the cluster's kubernetes provider.
    """

    def __init__(
        self,
        name: str,
        *,
        kubernetes_version: str,
        cluster_name: str,
        region: str,
        account_id: pulumi.Input[str],
        partition: pulumi.Input[str],
        tags: dict[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("anythingllm:cluster:ClusterAutoscaler", name, None, opts)
        policy = pulumi.Output.all(partition, account_id).apply(
            lambda args: iam.to_json(iam.cluster_autoscaler_policy(
                cluster_name=cluster_name, partition=args[0], region=region, account_id=args[1],
            ))
        )
        role = pod_identity_role(
            name,
            account_id=account_id,
            cluster_name=cluster_name,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            partition=partition,
            inline_policy=policy,
            tags=tags,
            parent=self,
        )
        # `cluster_name` is plain text: the association waits for the cluster (and its nodes)
        # through the component's own dependencies.
        association = pod_identity_association(
            name, role, cluster_name=cluster_name, tags=tags, opts=child_options(self, opts))
        self.release = pinned_release(
            name,
            CLUSTER_AUTOSCALER_RELEASES[kubernetes_version].chart,
            release_name="cluster-autoscaler",
            namespace=NAMESPACE,
            values=autoscaler_values(cluster_name=cluster_name, region=region,
                                     kubernetes_version=kubernetes_version),
            # Credentials are injected at pod creation: the association must exist first.
            opts=child_options(self, opts, depends_on=[association]),
        )
        self.register_outputs({"release": self.release.name})
