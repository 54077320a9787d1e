"""ManagedNodeGroup: one EKS managed node group with its launch template and ASG tags; and the
IAM role of nodes (`create_node_role`), which managed groups and Karpenter's nodes each get."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from . import iam
from .instance_types import accelerator_label_value
from .options import child_options
from .settings import GpuNodeGroupSettings, SystemNodeGroupSettings

GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
# The Cluster Autoscaler's AWS provider counts a node with this label as a GPU node whose GPUs
# are not advertised yet (processors/customresources/gpu_processor.go: unready until the device
# plugin reports nvidia.com/gpu), instead of a node that cannot fit the pending pod, which would
# make it start another GPU node (cloudprovider/aws/README.md, "Special note on GPU instances";
# kubernetes/autoscaler at cluster-autoscaler-1.35.2).
ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"
GPU_RESOURCE = "nvidia.com/gpu"
NODE_GROUP_LABEL = "anythingllm.io/node-group"
GPU_NODE_GROUP_LABEL = "anythingllm.io/gpu-node-group"
AUTOSCALER_TEMPLATE_PREFIX = "k8s.io/cluster-autoscaler/node-template"

# Taint effects: EKS API spelling -> Kubernetes spelling (the one ASG tags use).
TAINT_EFFECTS = {
    "NO_SCHEDULE": "NoSchedule",
    "NO_EXECUTE": "NoExecute",
    "PREFER_NO_SCHEDULE": "PreferNoSchedule",
}


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str  # EKS API spelling, e.g. NO_SCHEDULE

    def as_eks_args(self) -> dict[str, str]:
        return {"key": self.key, "value": self.value, "effect": self.effect}


GPU_TAINT = Taint(key=GPU_RESOURCE, value="true", effect="NO_SCHEDULE")


# The NVIDIA device plugin's config-manager picks a node's config by this label
# (NVIDIA/k8s-device-plugin v0.18.2 deployments/helm/nvidia-device-plugin/templates/
# daemonset-device-plugin.yml, NODE_LABEL); Bottlerocket's own plugin takes its config from the
# node's settings instead (karpenter.node_user_data), the label then only describes the node.
DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"


SHARING_CONFIG_PREFIX = "time-slicing-"
# Bottlerocket's OS volume, as Karpenter's own default mapping sizes it (nodeclasses.md at
# v1.14): stated by the launch templates and EC2NodeClasses alike, gp3 and encrypted, or the
# AMI's own mapping (gp2) would be used.
BOTTLEROCKET_OS_VOLUME_GIB = 4


def sharing_config_name(replicas: int) -> str:
    return f"{SHARING_CONFIG_PREFIX}{replicas}"


def sharing_labels(group: GpuNodeGroupSettings) -> dict[str, str]:
    """The node label of a group that time-slices its GPUs: its device-plugin config. Its nodes
    carry it and its model pods select it. Empty for a group that does not share."""
    if group.gpu_sharing is None:
        return {}
    return {DEVICE_PLUGIN_CONFIG_LABEL: sharing_config_name(group.gpu_sharing.replicas)}


def slices_per_gpu(labels: dict[str, str]) -> int:
    """How many `nvidia.com/gpu` a node with these labels advertises per GPU (sharing_labels)."""
    config = labels.get(DEVICE_PLUGIN_CONFIG_LABEL, "")
    return int(config.removeprefix(SHARING_CONFIG_PREFIX)) if config.startswith(SHARING_CONFIG_PREFIX) else 1


def system_labels() -> dict[str, str]:
    return {NODE_GROUP_LABEL: "system"}


def gpu_labels(group: GpuNodeGroupSettings) -> dict[str, str]:
    """Labels of a GPU group's nodes.

    `nvidia.com/gpu.present=true` is what the NVIDIA device plugin's node affinity looks
    for; `k8s.amazonaws.com/accelerator` is the Cluster Autoscaler's GPU label (the kubelet sets
    it before the node joins, as upstream's README asks); the group label lets a workload (a
    vLLM model) pin itself to one group; a group that shares its GPUs names its device-plugin
    config (`nvidia.com/device-plugin.config: time-slicing-<replicas>`).
    """
    return {
        GPU_PRESENT_LABEL: "true",
        ACCELERATOR_LABEL: accelerator_label_value(group.instance_types),
        NODE_GROUP_LABEL: group.name,
        GPU_NODE_GROUP_LABEL: group.name,
        **sharing_labels(group),
    }


def autoscaler_node_template_tags(labels: dict[str, str], taints: list[Taint]) -> dict[str, str]:
    """ASG tags that tell the Cluster Autoscaler what a node of an empty group looks like.

    EKS does not copy node group labels and taints to the group's Auto Scaling group; with
    zero nodes the autoscaler only knows them from these tags, and without them it never
    scales a tainted GPU group up from zero for a pod that selects its label.
    """
    tags = {f"{AUTOSCALER_TEMPLATE_PREFIX}/label/{key}": value for key, value in labels.items()}
    for taint in taints:
        tags[f"{AUTOSCALER_TEMPLATE_PREFIX}/taint/{taint.key}"] = (
            f"{taint.value}:{TAINT_EFFECTS[taint.effect]}"
        )
    return tags


def data_volume_device(ami_type: str) -> str:
    """The block device that holds images and pods' writable layers for an AMI family.

    Bottlerocket keeps a small OS volume on /dev/xvda and container data on /dev/xvdb;
    AL2023 uses its root volume /dev/xvda for both.
    """
    return "/dev/xvdb" if ami_type.startswith("BOTTLEROCKET") else "/dev/xvda"


# The nodes' managed policies. The CNI policy is not here: vpc-cni gets it through Pod Identity.
NODE_ROLE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly")


def create_node_role(name: str, *, description: str, partition: pulumi.Input[str], tags: dict[str, str],
              parent: pulumi.Resource) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
    """An IAM role EC2 instances assume as EKS nodes, with NODE_ROLE_POLICIES attached; returns
    the role and its attachments (what a node must not start before, nor outlive)."""
    role = aws.iam.Role(
        name,
        description=description,
        assume_role_policy=iam.to_json(iam.service_trust_policy("ec2.amazonaws.com")),
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    attachments = [
        aws.iam.RolePolicyAttachment(
            f"{name}-{policy}",
            role=role.name,
            policy_arn=pulumi.Output.from_input(partition).apply(
                lambda p, policy=policy: iam.managed_policy_arn(p, policy)),
            opts=pulumi.ResourceOptions(parent=role),
        )
        for policy in NODE_ROLE_POLICIES
    ]
    return role, attachments


def os_volume(ami_type: str) -> list[dict]:
    """Bottlerocket's OS volume (/dev/xvda), stated so that it is gp3 and encrypted: a launch
    template that names only the data volume leaves the OS volume to the AMI's own mapping
    (gp2, encrypted only where the account encrypts EBS by default). 4 GiB, as Karpenter's
    default Bottlerocket mapping has it. AL2023 has one volume, the data volume."""
    if not ami_type.startswith("BOTTLEROCKET"):
        return []
    return [{"device_name": "/dev/xvda", "ebs": {
        "volume_size": BOTTLEROCKET_OS_VOLUME_GIB, "volume_type": "gp3", "encrypted": "true",
        "delete_on_termination": "true"}}]


class ManagedNodeGroup(pulumi.ComponentResource):
    """An EKS managed node group in the private subnets.

    Creates:
      - an EC2 launch template: encrypted gp3 data volume of `disk_size_gib`, IMDSv2
        required with hop limit 1 (pods cannot reach the node's instance role; they get
        AWS access through Pod Identity), tags on instances and volumes;
      - the `aws.eks.NodeGroup` (AMI type, capacity type, instance types, labels, taints,
        scaling, rolling updates of at most a third of the nodes, node auto-repair). Its
        desired size is ignored after creation: the Cluster Autoscaler owns it;
      - one `aws.autoscaling.Tag` per label and taint on the group's ASG, so the Cluster
        Autoscaler can scale the group up from zero.

    Args:
        name: logical name (also the node group name prefix).
        settings: system or GPU node group settings.
        cluster_name: the EKS cluster name (an Output is fine).
        kubernetes_version: the cluster's minor, which the group's kubelets follow.
        node_role_arn: the IAM role of the nodes.
        subnet_ids: private subnets to launch into.
        labels / taints: Kubernetes labels and taints of every node.
        tags: common tags.
    """

    def __init__(
        self,
        name: str,
        settings: SystemNodeGroupSettings | GpuNodeGroupSettings,
        *,
        cluster_name: pulumi.Input[str],
        kubernetes_version: str,
        node_role_arn: pulumi.Input[str],
        subnet_ids: pulumi.Input[list[str]],
        labels: dict[str, str],
        taints: list[Taint],
        capacity_type: str,
        tags: dict[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("anythingllm:cluster:ManagedNodeGroup", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        instance_tags = {**tags, "Name": name}
        launch_template = aws.ec2.LaunchTemplate(
            name,
            name_prefix=f"{name}-",
            description=f"EKS managed node group {name}",
            update_default_version=True,
            block_device_mappings=[*os_volume(settings.ami_type), {
                "device_name": data_volume_device(settings.ami_type),
                "ebs": {
                    "volume_size": settings.disk_size_gib,
                    "volume_type": "gp3",
                    "encrypted": "true",
                    "delete_on_termination": "true",
                    # GPU groups: IOPS and throughput for multi-GB images (README, "Cold starts").
                    **({"iops": settings.disk_iops, "throughput": settings.disk_throughput_mibps}
                       if isinstance(settings, GpuNodeGroupSettings) else {}),
                },
            }],
            metadata_options={
                "http_endpoint": "enabled",
                "http_tokens": "required",
                "http_put_response_hop_limit": 1,
            },
            tag_specifications=[
                {"resource_type": "instance", "tags": instance_tags},
                {"resource_type": "volume", "tags": instance_tags},
            ],
            tags=tags,
            opts=child,
        )
        self.node_group = aws.eks.NodeGroup(
            name,
            cluster_name=cluster_name,
            # A prefix, not a fixed name: changes that replace the group (instance types,
            # AMI type) then create the new group before deleting the old one.
            node_group_name_prefix=f"{name}-",
            # The cluster's minor, stated: a group that leaves it out keeps the minor it was
            # created with when the control plane moves on (the provider changes a version
            # only when it is given one). A new minor rolls the nodes in place
            # (UpdateNodegroupVersion, `updateConfig` at a time) onto that minor's AMI.
            version=kubernetes_version,
            node_role_arn=node_role_arn,
            subnet_ids=subnet_ids,
            ami_type=settings.ami_type,
            capacity_type=capacity_type,
            instance_types=list(settings.instance_types),
            scaling_config={
                "min_size": settings.min_size,
                "desired_size": settings.desired_size,
                "max_size": settings.max_size,
            },
            update_config={"max_unavailable_percentage": 33},
            node_repair_config={"enabled": True},
            launch_template={"id": launch_template.id,
                             "version": launch_template.latest_version.apply(str)},
            labels=labels,
            taints=[taint.as_eks_args() for taint in taints],
            tags=tags,
            opts=child_options(self, opts, ignore_changes=["scalingConfig.desiredSize"]),
        )
        asg_name = self.node_group.resources.apply(
            lambda resources: resources[0].autoscaling_groups[0].name
        )
        for key, value in autoscaler_node_template_tags(labels, taints).items():
            aws.autoscaling.Tag(
                f"{name}-{key.removeprefix(AUTOSCALER_TEMPLATE_PREFIX + '/').replace('/', '-')}",
                autoscaling_group_name=asg_name,
                tag={"key": key, "value": value, "propagate_at_launch": False},
                opts=pulumi.ResourceOptions(parent=self.node_group),
            )
        self.register_outputs({"node_group_arn": self.node_group.arn})
