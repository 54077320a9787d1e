"""Cluster: the EKS control plane, its add-ons and node groups, and the Kubernetes provider."""

from __future__ import annotations

import hashlib
import json

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumiverse_time as time

from . import iam
from .cluster_autoscaler import ClusterAutoscaler
from .karpenter import Karpenter
from .kms import encryption_key
from .network import Network
from .node_group import GPU_TAINT, ManagedNodeGroup, create_node_role, gpu_labels, system_labels
from .nvidia_device_plugin import NvidiaDevicePlugin
from .options import named
from .pod_identity import pod_identity_role
from .settings import ClusterSettings

CLUSTER_ADMIN_POLICY = "cluster-access-policy/AmazonEKSClusterAdminPolicy"
# EKS applies access entries and their policy associations asynchronously ("changes may take a
# few seconds to take effect", EKS user guide, access entries): the first Kubernetes calls of a
# fresh cluster can be refused as Unauthorized. 30 s, the wait terraform-aws-eks puts between a
# new cluster and what it creates in it (its `time_sleep`).
ACCESS_PROPAGATION = "30s"
# Installed before any node exists: nodes need networking (vpc-cni, kube-proxy) to become
# Ready, and vpc-cni takes its AWS credentials from the Pod Identity agent.
PRE_COMPUTE_ADDONS = ("eks-pod-identity-agent", "kube-proxy", "vpc-cni")
# Deployments: they only become healthy once nodes can run them. metrics-server (an EKS
# community add-on) feeds the HorizontalPodAutoscalers of the workloads.
POST_COMPUTE_ADDONS = ("coredns", "metrics-server")


def admin_key(role_arn: str) -> str:
    """A stable key of an admin role: its name and 6 hex digits of its ARN (two roles of one name
    in different accounts or paths stay apart)."""
    digest = hashlib.sha256(role_arn.encode()).hexdigest()[:6]
    return f"{role_arn.rsplit('/', 1)[-1].lower()}-{digest}"


def addon_version(settings: ClusterSettings, addon_name: str) -> pulumi.Input[str]:
    """The version of an EKS add-on: the one `cluster.addonVersions` pins, or else EKS's default
    for the cluster's Kubernetes minor (DescribeAddonVersions `defaultVersion`, read at preview).

    Following the default is what moves every unpinned add-on with the control plane when
    `kubernetesVersion` changes; an add-on whose version is left unset keeps the version it was
    installed with forever (the provider never changes a version it is not given).
    """
    pinned = settings.addon_versions.get(addon_name)
    if pinned is not None:
        return pinned
    return aws.eks.get_addon_version_output(addon_name=addon_name,
                                            kubernetes_version=settings.kubernetes_version,
                                            most_recent=False).version


def vpc_cni_configuration() -> dict:
    """vpc-cni add-on configuration: its network policy agent enforces NetworkPolicies."""
    return {"enableNetworkPolicy": "true"}


def kubeconfig(cluster_name: str, endpoint: str, ca_data: str, region: str) -> str:
    """A kubeconfig that authenticates with `aws eks get-token` (no static credentials)."""
    user = f"{cluster_name}-admin"
    return json.dumps({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name,
                      "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
        "users": [{"name": user, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region],
            "interactiveMode": "Never",
        }}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": user}}],
        "current-context": cluster_name,
    })


class Cluster(pulumi.ComponentResource):
    """An EKS cluster ready for GPU inference workloads.

    Creates:
      - a KMS key (rotation on) for envelope encryption of Kubernetes Secrets;
      - the control-plane log group (retention from config) and the cluster IAM role;
      - the EKS cluster: configured version, `API` authentication mode, private endpoint on,
        public endpoint only when `publicAccessCidrs` is non-empty and then limited to it,
        control-plane logs, `bootstrapSelfManagedAddons: false`, upgrade support type and
        deletion protection from config;
      - an access entry plus `AmazonEKSClusterAdminPolicy` association per admin role ARN;
      - managed add-ons vpc-cni (network policy on, credentials through Pod Identity),
        kube-proxy and eks-pod-identity-agent before the nodes, coredns and metrics-server after
        the system group (never after a GPU group);
      - the node IAM role (worker node and ECR pull-only policies);
      - the on-demand system node group and one GPU node group per config entry (tainted
        `nvidia.com/gpu=true:NoSchedule`, labelled `nvidia.com/gpu.present=true` and with
        their group name);
      - a 30 s wait after the access entries (they propagate asynchronously), then a
        `kubernetes.Provider` for this cluster, which every Kubernetes resource uses;
      - the NVIDIA device plugin (for AL2023 GPU groups; Bottlerocket ships its own) and the
        Cluster Autoscaler.

    Args:
        name: logical name prefix.
        settings: the stack's `cluster` settings.
        cluster_name: physical EKS cluster name (see naming.cluster_name).
        network: the Network component (private subnets for nodes and the control plane ENIs).
        region: AWS region.
        deletion_protection: EKS deletion protection (resolved per environment).
        destroyable: let the Kubernetes provider drop resources of an unreachable cluster
            from state, so a throwaway stack whose cluster is gone still destroys; a stack that
            is not (prod) keeps the secrets key and the control-plane log group in AWS when it
            lets go of them, whether or not the cluster itself may be replaced.
        tags: common tags.
        protect: `protect` the EKS cluster (prod, unless the stack's allowReplacement names
            `cluster`: README, "Replacements").

    Attributes:
        cluster_name, endpoint, oidc_issuer, cluster_security_group_id, node_role_arn
        (Outputs); provider (the kubernetes.Provider); node_groups (name -> ManagedNodeGroup);
        system_ready (the system node group and coredns: what workloads on the system nodes
        wait for); gpu_ready (GPU group name -> what a model server on it waits for);
        kubeconfig (secret Output).
    """

    def __init__(
        self,
        name: str,
        settings: ClusterSettings,
        *,
        cluster_name: str,
        network: Network,
        region: str,
        deletion_protection: bool,
        destroyable: bool,
        tags: dict[str, str],
        logs_key_arn: pulumi.Input[str] | None = None,
        protect: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("anythingllm:cluster:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self._tags = tags
        partition = aws.get_partition_output().partition
        account_id = aws.get_caller_identity_output().account_id
        self.partition, self.account_id = partition, account_id

        # Created before the cluster: otherwise EKS creates it with never-expiring retention.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane",
            name=f"/aws/eks/{cluster_name}/cluster",
            retention_in_days=settings.log_retention_days,
            kms_key_id=logs_key_arn,
            tags=tags,
            # The audit trail outlives a destroy of a protected (prod) cluster: it is kept in
            # AWS, with its retention, when the stack lets go of it.
            opts=named(parent=self, retain_on_delete=not destroyable),
        )
        cluster_role = aws.iam.Role(
            f"{name}-control-plane",
            description=f"EKS control plane of {cluster_name}",
            assume_role_policy=iam.to_json(iam.service_trust_policy("eks.amazonaws.com")),
            tags=tags,
            opts=child,
        )
        cluster_policy = aws.iam.RolePolicyAttachment(
            f"{name}-control-plane",
            role=cluster_role.name,
            policy_arn=partition.apply(lambda p: iam.managed_policy_arn(p, "AmazonEKSClusterPolicy")),
            opts=pulumi.ResourceOptions(parent=cluster_role),
        )

        # Only EKS, through the cluster's role or the creator's grant, uses the key
        # (iam.eks_secrets_key_policy).
        secrets_key = encryption_key(
            f"{name}-secrets",
            description=f"Envelope encryption of Kubernetes Secrets in EKS cluster {cluster_name}",
            alias=f"{cluster_name}-eks-secrets",
            retain=not destroyable,
            tags=tags,
            parent=self,
            policy=pulumi.Output.all(account_id, partition, cluster_role.arn).apply(
                lambda values: iam.to_json(iam.eks_secrets_key_policy(
                    account_id=values[0], partition=values[1], region=region,
                    cluster_role_arn=values[2]))),
        )
        self.eks_cluster = aws.eks.Cluster(
            name,
            name=cluster_name,
            version=settings.kubernetes_version,
            role_arn=cluster_role.arn,
            vpc_config={
                "subnet_ids": network.private_subnet_ids,
                "endpoint_private_access": True,
                "endpoint_public_access": bool(settings.public_access_cidrs),
                "public_access_cidrs": list(settings.public_access_cidrs) or None,
            },
            access_config={
                "authentication_mode": "API",
                # Admins are listed explicitly; no hidden admin for whoever ran `pulumi up`.
                "bootstrap_cluster_creator_admin_permissions": False,
            },
            bootstrap_self_managed_addons=False,
            encryption_config={"provider": {"key_arn": secrets_key.arn}, "resources": ["secrets"]},
            enabled_cluster_log_types=list(settings.log_types),
            kubernetes_network_config={
                "ip_family": "ipv4", "service_ipv4_cidr": settings.service_ipv4_cidr,
            },
            upgrade_policy={"support_type": settings.support_type},
            deletion_protection=deletion_protection,
            tags=tags,
            # Prod's cluster is protected like its data: a replacement would delete every node
            # and Kubernetes object first (its name is fixed), protected claims included.
            opts=named(parent=self, protect=protect, depends_on=[log_group, cluster_policy]),
        )
        self.cluster_name = self.eks_cluster.name
        self.endpoint = self.eks_cluster.endpoint
        self.oidc_issuer = self.eks_cluster.identities.apply(lambda ids: ids[0].oidcs[0].issuer)
        self.cluster_security_group_id = self.eks_cluster.vpc_config.cluster_security_group_id

        admin_access = self._admin_access(name, settings.admin_role_arns, partition)
        pre_compute = self._addons(name, settings, PRE_COMPUTE_ADDONS, account_id, cluster_name,
                                   partition, depends_on=[])

        node_role, node_policies = create_node_role(
            f"{name}-nodes", description=f"Worker nodes of {cluster_name}", partition=partition,
            tags=tags, parent=self)
        self.node_role_arn = node_role.arn
        node_opts = pulumi.ResourceOptions(parent=self, depends_on=[*pre_compute, *node_policies])

        self.node_groups: dict[str, ManagedNodeGroup] = {}
        self.node_groups["system"] = ManagedNodeGroup(
            f"{name}-system",
            settings.system_node_group,
            cluster_name=self.cluster_name,
            kubernetes_version=settings.kubernetes_version,
            node_role_arn=node_role.arn,
            subnet_ids=network.private_subnet_ids,
            labels=system_labels(),
            taints=[],
            capacity_type="ON_DEMAND",
            tags=tags,
            opts=node_opts,
        )
        for group in settings.gpu_node_groups:
            if group.engine != "managed":
                continue
            self.node_groups[group.name] = ManagedNodeGroup(
                f"{name}-gpu-{group.name}",
                group,
                cluster_name=self.cluster_name,
                kubernetes_version=settings.kubernetes_version,
                node_role_arn=node_role.arn,
                subnet_ids=network.private_subnet_ids,
                labels=gpu_labels(group),
                taints=[GPU_TAINT],
                capacity_type=group.capacity_type,
                tags=tags,
                opts=node_opts,
            )
        system_group = self.node_groups["system"].node_group
        # coredns and metrics-server run on the system group only: a GPU capacity shortage (common
        # for g6e and p5) must not hold back DNS, and with it every workload.
        post_compute = self._addons(name, settings, POST_COMPUTE_ADDONS, account_id, cluster_name,
                                    partition, depends_on=[system_group])

        kubeconfig_json = pulumi.Output.all(
            self.eks_cluster.name, self.eks_cluster.endpoint,
            self.eks_cluster.certificate_authority.data,
        ).apply(lambda args: kubeconfig(args[0], args[1], args[2], region))
        self.kubeconfig = pulumi.Output.secret(kubeconfig_json)
        access_propagated = time.Sleep(
            f"{name}-access-propagation",
            create_duration=ACCESS_PROPAGATION,
            # Waits again whenever the admins change or the cluster (and so its entries) is new.
            triggers={"admins": ",".join(sorted(settings.admin_role_arns)),
                      "cluster": self.eks_cluster.arn},
            opts=pulumi.ResourceOptions(parent=self, depends_on=admin_access),
        )
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            delete_unreachable=destroyable,
            # Server-side apply: field ownership is tracked, conflicts with controllers
            # that edit the same objects are reported instead of silently overwritten.
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[access_propagated]),
        )

        # What a workload on the system nodes waits for: those nodes and cluster DNS.
        self.system_ready: list[pulumi.Resource] = [system_group, post_compute[0]]
        in_cluster = pulumi.ResourceOptions(
            parent=self, provider=self.provider, depends_on=self.system_ready,
        )
        al2023_gpu_groups = [g for g in settings.gpu_node_groups
                             if g.ami_type == "AL2023_x86_64_NVIDIA"]
        self.device_plugin = (
            NvidiaDevicePlugin(f"{name}-nvidia-device-plugin",
                               gpu_node_groups=[g.name for g in al2023_gpu_groups],
                               sharing_replicas=[g.gpu_sharing.replicas for g in al2023_gpu_groups
                                                 if g.gpu_sharing is not None],
                               opts=in_cluster)
            if al2023_gpu_groups else None
        )
        self.autoscaler = ClusterAutoscaler(
            f"{name}-autoscaler",
            kubernetes_version=settings.kubernetes_version,
            cluster_name=cluster_name,
            region=region,
            account_id=account_id,
            partition=partition,
            tags=tags,
            opts=in_cluster,
        )
        karpenter_groups = [g for g in settings.gpu_node_groups if g.engine == "karpenter"]
        self.karpenter = (
            Karpenter(f"{name}-karpenter", karpenter_groups, cluster_name=cluster_name,
                      eks_cluster=self.eks_cluster, subnet_ids=network.private_subnet_ids,
                      cluster_security_group_id=self.cluster_security_group_id, region=region,
                      account_id=account_id, partition=partition, provider=self.provider,
                      system_ready=self.system_ready, tags=tags,
                      opts=pulumi.ResourceOptions(parent=self))
            if karpenter_groups else None)
        # What a model server on a GPU group waits for: its own group or NodePool (not the
        # others), the device plugin that advertises nvidia.com/gpu (Bottlerocket's is built
        # in), the autoscaler when a managed group may have no node to start on, and DNS. Its
        # deletion comes first in turn: a NodePool goes only once its model servers are gone.
        self.gpu_ready: dict[str, list[pulumi.Resource]] = {}
        for group in settings.gpu_node_groups:
            capacity = (self.karpenter.node_pools[group.name] if self.karpenter is not None
                        and group.engine == "karpenter" else self.node_groups[group.name].node_group)
            ready: list[pulumi.Resource] = [capacity, *self.system_ready]
            if group.ami_type == "AL2023_x86_64_NVIDIA" and self.device_plugin is not None:
                ready.append(self.device_plugin.release)
            if group.engine == "managed" and group.min_size == 0:
                ready.append(self.autoscaler.release)
            self.gpu_ready[group.name] = ready
        self.register_outputs({
            "cluster_name": self.cluster_name,
            "endpoint": self.endpoint,
            "kubeconfig": self.kubeconfig,
        })

    def _admin_access(self, name: str, role_arns: list[str],
                      partition: pulumi.Output[str]) -> list[pulumi.Resource]:
        resources: list[pulumi.Resource] = []
        for index, role_arn in enumerate(role_arns):
            # Named by the role, not its place in the list: removing the first admin would
            # otherwise turn every later entry into a replacement of another role's (principalArn
            # only changes by replacement), deleting a listed admin's access mid-`up`. The alias
            # is the name stacks created before had, while their list is unchanged.
            key = admin_key(role_arn)
            entry = aws.eks.AccessEntry(
                f"{name}-admin-{key}",
                cluster_name=self.eks_cluster.name,
                principal_arn=role_arn,
                type="STANDARD",
                tags=self._tags,
                opts=named(parent=self, aliases=[pulumi.Alias(name=f"{name}-admin-{index}")]),
            )
            resources.append(aws.eks.AccessPolicyAssociation(
                f"{name}-admin-{key}",
                cluster_name=self.eks_cluster.name,
                principal_arn=entry.principal_arn,
                policy_arn=partition.apply(lambda p: f"arn:{p}:eks::aws:{CLUSTER_ADMIN_POLICY}"),
                access_scope={"type": "cluster"},
                # AssociateAccessPolicy updates an existing association: created before the old
                # one is deleted, a replacement would be deleted with it.
                opts=named(parent=entry, aliases=[pulumi.Alias(name=f"{name}-admin-{index}")]),
            ))
        return resources

    def _addons(self, name: str, settings: ClusterSettings, addon_names: tuple[str, ...],
                account_id: pulumi.Output[str], cluster_name: str, partition: pulumi.Output[str],
                depends_on: list[pulumi.Resource]) -> list[aws.eks.Addon]:
        addons: list[aws.eks.Addon] = []
        installed: dict[str, aws.eks.Addon] = {}
        for addon_name in addon_names:
            extra: dict = {}
            addon_depends = list(depends_on)
            if addon_name == "vpc-cni":
                cni_role = pod_identity_role(
                    f"{name}-vpc-cni",
                    account_id=account_id,
                    cluster_name=cluster_name,
                    namespace="kube-system",
                    service_account="aws-node",
                    partition=partition,
                    managed_policies=["AmazonEKS_CNI_Policy"],
                    tags=self._tags,
                    parent=self,
                )
                extra = {
                    "configuration_values": json.dumps(vpc_cni_configuration()),
                    "pod_identity_associations": [
                        {"role_arn": cni_role.arn, "service_account": "aws-node"},
                    ],
                }
                addon_depends.append(installed["eks-pod-identity-agent"])
            addon = aws.eks.Addon(
                f"{name}-{addon_name}",
                cluster_name=self.eks_cluster.name,
                addon_name=addon_name,
                addon_version=addon_version(settings, addon_name),
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="OVERWRITE",
                # A replacement deletes the add-on first (named): its workloads keep running.
                preserve=True,
                tags=self._tags,
                opts=named(parent=self, depends_on=addon_depends),
                **extra,
            )
            installed[addon_name] = addon
            addons.append(addon)
        return addons
