"""Keda: the KEDA operator, which scales the model servers on their own load and to zero.

Chart keda 2.20.2 (kedacore/charts v2.20.2 keda/values.yaml) puts everything in the release
namespace without creating it, so the namespace is created here (restricted: the chart's pods run
non-root with every capability dropped, a read-only root and the runtime's seccomp profile). Only
the operator calls AWS (the metrics API server asks the operator over gRPC), so only its service
account `keda-operator` gets a Pod Identity role: `aps:QueryMetrics` on the stack's workspace,
which is all the Prometheus scaler calls (GET <workspace>/api/v1/query, signed for `aps`:
kedacore/keda v2.20.2 pkg/scalers/prometheus_scaler.go, pkg/scalers/aws/aws_sigv4.go). With
`TriggerAuthentication.spec.podIdentity.provider: aws` and no role ARN, KEDA signs with the
operator's own credentials from the SDK's default chain, which serves EKS Pod Identity.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from . import iam
from .helm import pinned_release
from .namespaces import NamespaceSpec, namespace_labels
from .node_group import system_labels
from .pod_identity import pod_identity_association, pod_identity_role
from .versions import KEDA

NAMESPACE = NamespaceSpec("keda", "restricted", purpose="KEDA, the model servers' autoscaler")
SERVICE_ACCOUNT = "keda-operator"  # the chart's serviceAccount.operator.name


def query_policy(workspace_arn: str) -> dict:
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "QueryTheStackWorkspace", "Effect": "Allow", "Action": "aps:QueryMetrics",
        "Resource": workspace_arn}]}


def keda_values() -> dict:
    """Two operators (one leads, the other takes over within a lease; a budget keeps one
    through a node drain), one metrics API server (keda-docs operate/cluster.md: "Support
    Replicas: 1"; it only relays the leader's values) and one admission webhook (failure policy
    Ignore: while it is away, objects are admitted unchecked), on the system nodes. The images
    are the chart's, at its appVersion."""
    return {
        "image": {"pullPolicy": "IfNotPresent"},
        "operator": {"replicaCount": 2},
        "metricsServer": {"replicaCount": 1},
        "webhooks": {"replicaCount": 1},
        "podDisruptionBudget": {"operator": {"maxUnavailable": 1}},
        "nodeSelector": system_labels(),
    }


class Keda(pulumi.ComponentResource):
    """KEDA in namespace `keda`: its namespace, the operator's Pod Identity role and association,
    and the chart's release (CRDs included).

    Attributes:
        release: the Helm release (what ScaledObjects wait for: its CRDs and webhook).
    """

    def __init__(self, name: str, *, cluster_name: str, eks_cluster_name: pulumi.Input[str],
                 workspace_arn: pulumi.Input[str], account_id: pulumi.Input[str],
                 partition: pulumi.Input[str], provider: k8s.Provider,
                 system_ready: list[pulumi.Resource], tags: dict[str, str],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("anythingllm:serving:Keda", name, None, opts)
        in_cluster = pulumi.ResourceOptions(parent=self, provider=provider)
        namespace = k8s.core.v1.Namespace(
            name, metadata={"name": NAMESPACE.name, "labels": namespace_labels(NAMESPACE)},
            opts=in_cluster)
        role = pod_identity_role(
            f"{name}-operator", account_id=account_id, cluster_name=cluster_name,
            namespace=NAMESPACE.name, service_account=SERVICE_ACCOUNT, partition=partition,
            inline_policy=pulumi.Output.from_input(workspace_arn).apply(
                lambda arn: iam.to_json(query_policy(arn))),
            tags=tags, parent=self)
        # Credentials are injected when a pod is created: the association comes first.
        association = pod_identity_association(
            f"{name}-operator", role, cluster_name=eks_cluster_name, tags=tags,
            opts=pulumi.ResourceOptions(parent=self))
        self.release = pinned_release(
            name, KEDA, release_name="keda", namespace=NAMESPACE.name, values=keda_values(),
            opts=pulumi.ResourceOptions.merge(in_cluster, pulumi.ResourceOptions(
                depends_on=[*system_ready, namespace, association])))
        self.register_outputs({"release": self.release.name})

