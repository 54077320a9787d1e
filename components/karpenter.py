"""Karpenter: GPU nodes launched for pending model pods, drained on the Spot notice, removed when
empty, replaced (a new node first) when their AMI pin or node class changes.

Everything Karpenter's own getting-started template (components/data/karpenter/
cloudformation.yaml, aws/karpenter-provider-aws v1.14.1, vendored verbatim) creates is built from
that template here, so a version bump shows its changes in the pull request:
- the controller's IAM statements (its six managed policies), narrowed where this stack knows
  more: instances only in the stack's private subnets with the cluster security group, and no
  zonal-shift read (zonal shift is off);
- the interruption queue (SQS, SSE, five minutes' retention) and the EventBridge rules that feed
  it (Spot interruption warnings, rebalance recommendations, instance state changes, scheduled
  AWS Health events, capacity-reservation interruptions), with a queue policy that admits only
  those rules;
- the node role (the template's managed policies, less the CNI one, which vpc-cni gets through
  Pod Identity, and SSM, which no managed node of this stack has either) and its EKS access entry
  (EC2_LINUX: the cluster is in API authentication mode).
Per GPU group of engine `karpenter`: an EC2NodeClass and a NodePool (`node_class_spec`,
`node_pool_spec`), validated in tests against the CRDs of the pinned version.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import yaml

from . import iam
from .helm import pinned_release
from .node_group import (
    BOTTLEROCKET_OS_VOLUME_GIB,
    GPU_RESOURCE,
    GPU_TAINT,
    TAINT_EFFECTS,
    create_node_role,
    data_volume_device,
    gpu_labels,
    system_labels,
)
from .options import named
from .pod_identity import pod_identity_association, pod_identity_role
from .settings import GpuNodeGroupSettings
from .versions import KARPENTER, KARPENTER_CRD, KARPENTER_NODE_AMIS

DATA = Path(__file__).parent / "data" / "karpenter"
TEMPLATE_FILE = DATA / "cloudformation.yaml"
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "karpenter"  # the chart's fullname for release "karpenter" (_helpers.tpl)
NODE_CLASS_API = "karpenter.k8s.aws/v1"
NODE_POOL_API = "karpenter.sh/v1"
NODE_OVERLAY_API = "karpenter.sh/v1alpha1"
# Above any overlay an operator may add by hand at the default weight 0 (nodeoverlay.go).
NODE_OVERLAY_WEIGHT = 10
# The template's policies this stack grants. ZonalShiftPolicy is left out: it serves
# settings.enableZonalShift, which stays off (chart default).
GRANTED_POLICIES = ("NodeLifecyclePolicy", "IAMIntegrationPolicy", "EKSIntegrationPolicy",
                    "InterruptionPolicy", "ResourceDiscoveryPolicy")
NOT_GRANTED_POLICIES = {"ZonalShiftPolicy": "settings.enableZonalShift is off (chart default)"}
# Nodes do not expire: expiration is forceful (no replacement first, no budget; disruption.md),
# so a one-replica model would go offline on a timer. New AMIs come only from versions.py (the
# aliases are pinned), and that change reaches the nodes gracefully, as drift: a replacement
# node first, within the budget and the models' PodDisruptionBudgets. A drain still ends after
# two hours (a model's pods get their drain: the gateway's request timeout and a little more),
# so no pod can hold a drifted node forever.
EXPIRE_AFTER = "Never"
TERMINATION_GRACE_PERIOD = "2h"
# An empty GPU node waits ten minutes before it goes: a model scaled down and up again within
# that window finds its node (and its image) still there.
CONSOLIDATE_AFTER = "10m"
# Deleting a NodePool or EC2NodeClass waits for its nodes to drain (up to the termination grace
# period per node, one budgeted node at a time for drift) and terminate.
DELETE_TIMEOUT = pulumi.CustomTimeouts(delete="30m")
# SOCI parallel pull and unpack, the same on both AMI families. AL2023: nodeadm's feature gate,
# which writes awslabs/amazon-eks-ami nodeadm/internal/containerd/snapshotter/
# soci-snapshotter.config.toml (v20260724) on instances with at least 4 vCPUs and 7 GiB, which
# every GPU type has. Bottlerocket (settings API, container-runtime-plugins, since 1.44.0): the
# same values as nodeadm's file, since Bottlerocket's own defaults are 3 downloads and 1 unpack
# per image; Karpenter keeps these settings and adds its own (bootstrap/bottlerocketsettings.go,
# SettingsRaw).
SOCI_PARALLEL_PULL = {"max-concurrent-downloads-per-image": 20, "max-concurrent-unpacks-per-image": 12,
                      "concurrent-download-chunk-size": "16mb", "discard-unpacked-layers": True}
AL2023_FAST_PULL_USER_DATA = """apiVersion: node.eks.aws/v1alpha1
kind: NodeConfig
spec:
  featureGates:
    FastImagePull: true
"""


def _bottlerocket_fast_pull() -> list[str]:
    lines = ["[settings.container-runtime]", 'snapshotter = "soci"', "",
             "[settings.container-runtime-plugins.soci-snapshotter]",
             'pull-mode = "parallel-pull-unpack"', "",
             "[settings.container-runtime-plugins.soci-snapshotter.parallel-pull-unpack]"]
    return lines + [f"{key} = {json.dumps(value)}" for key, value in SOCI_PARALLEL_PULL.items()]


def _bottlerocket_time_slicing(replicas: int) -> list[str]:
    """Bottlerocket's own NVIDIA device plugin, configured like the Helm chart's on AL2023
    (nvidia_device_plugin.plugin_config): settings.kubelet-device-plugins.nvidia (bottlerocket.dev,
    API settings, kubelet-device-plugins, "NVIDIA Time-Slicing")."""
    return ["[settings.kubelet-device-plugins.nvidia]", 'device-sharing-strategy = "time-slicing"', "",
            "[settings.kubelet-device-plugins.nvidia.time-slicing]", f"replicas = {replicas}",
            "rename-by-default = false", "fail-requests-greater-than-one = true"]


def node_user_data(group: GpuNodeGroupSettings) -> str | None:
    """The EC2NodeClass userData of a group, or None. AL2023: a NodeConfig for nodeadm with the
    FastImagePull gate (Karpenter adds its own NodeConfig to the MIME archive:
    bootstrap/nodeadm.go); GPU sharing there is the device plugin's config, picked by a node
    label. Bottlerocket: TOML settings for parallel pull and for its built-in device plugin's
    time-slicing (merged with Karpenter's own: bootstrap/bottlerocket.go)."""
    if group.ami_type.startswith("AL2023"):
        return AL2023_FAST_PULL_USER_DATA if group.fast_image_pull else None
    sections = []
    if group.fast_image_pull:
        sections.append(_bottlerocket_fast_pull())
    if group.gpu_sharing is not None:
        sections.append(_bottlerocket_time_slicing(group.gpu_sharing.replicas))
    return "\n\n".join("\n".join(lines) for lines in sections) + "\n" if sections else None


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads the template's short-form intrinsics (!Sub, !GetAtt, !Ref) as {tag: value}."""


_CloudFormationLoader.add_multi_constructor(
    "!", lambda loader, suffix, node: {suffix: (
        loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode)
        else loader.construct_sequence(node))})


def upstream_template() -> dict[str, Any]:
    return yaml.load(TEMPLATE_FILE.read_text(), Loader=_CloudFormationLoader)


def _substitute(text: str, variables: dict[str, str]) -> str:
    def value(match: re.Match) -> str:
        if match.group(1) not in variables:
            raise KeyError(f"the Karpenter template uses ${{{match.group(1)}}}, which is not mapped")
        return variables[match.group(1)]
    return re.sub(r"\$\{([A-Za-z0-9:.]+)\}", value, text)


def upstream_policies(*, partition: str, region: str, account_id: str, cluster_name: str,
                      node_role_arn: str, queue_arn: str) -> dict[str, dict[str, Any]]:
    """The template's managed policies (logical name -> document), its variables filled in."""
    variables = {"AWS::Partition": partition, "AWS::Region": region, "AWS::AccountId": account_id,
                 "AWS::URLSuffix": "amazonaws.com", "ClusterName": cluster_name,
                 "KarpenterNodeRole.Arn": node_role_arn,
                 "KarpenterInterruptionQueue.Arn": queue_arn}
    return {name: json.loads(_substitute(resource["Properties"]["PolicyDocument"]["Sub"], variables))
            for name, resource in upstream_template()["Resources"].items()
            if resource["Type"] == "AWS::IAM::ManagedPolicy"}


def controller_policy(*, partition: str, region: str, account_id: str, cluster_name: str,
                      node_role_arn: str, queue_arn: str, subnet_ids: list[str],
                      security_group_id: str) -> dict[str, Any]:
    """The controller's statements: the template's, with instance launches narrowed from any
    subnet, security group, capacity reservation and placement group of the region to the
    stack's private subnets and the cluster security group (the EC2NodeClasses select exactly
    those, by id; no NodePool here uses reservations or placement groups)."""
    documents = upstream_policies(partition=partition, region=region, account_id=account_id,
                                  cluster_name=cluster_name, node_role_arn=node_role_arn,
                                  queue_arn=queue_arn)
    ec2 = f"arn:{partition}:ec2:{region}"
    statements = []
    for name in GRANTED_POLICIES:
        for statement in documents[name]["Statement"]:
            if statement["Sid"] == "AllowScopedEC2InstanceAccessActions":
                statement = {**statement, "Resource": [
                    f"{ec2}::image/*", f"{ec2}::snapshot/*",
                    f"{ec2}:{account_id}:security-group/{security_group_id}",
                    *(f"{ec2}:{account_id}:subnet/{subnet}" for subnet in subnet_ids)]}
            statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def interruption_rules() -> dict[str, dict[str, Any]]:
    """The template's EventBridge rules: logical name -> event pattern."""
    return {name: resource["Properties"]["EventPattern"]
            for name, resource in upstream_template()["Resources"].items()
            if resource["Type"] == "AWS::Events::Rule"}


def interruption_queue_settings() -> dict[str, Any]:
    """The template's queue settings, as `aws.sqs.Queue` arguments (its name is the stack's)."""
    properties = upstream_template()["Resources"]["KarpenterInterruptionQueue"]["Properties"]
    return {"message_retention_seconds": properties["MessageRetentionPeriod"],
            "sqs_managed_sse_enabled": properties["SqsManagedSseEnabled"]}


def queue_policy(*, queue_arn: str, rule_arns: list[str]) -> dict[str, Any]:
    """Only this stack's rules may send (the template admits events.amazonaws.com and
    sqs.amazonaws.com without a condition), by `aws:SourceArn` as the EventBridge user guide's
    SQS target example does (the rules' ARNs name the account), and only over TLS (the
    template's DenyHTTP)."""
    return {"Version": "2012-10-17", "Id": "EC2InterruptionPolicy", "Statement": [
        {"Sid": "InterruptionEventsFromThisStacksRules", "Effect": "Allow",
         "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
         "Resource": queue_arn,
         "Condition": {"ArnEquals": {"aws:SourceArn": sorted(rule_arns)}}},
        {"Sid": "DenyHTTP", "Effect": "Deny", "Principal": "*", "Action": "sqs:*",
         "Resource": queue_arn, "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    ]}


def node_class_spec(group: GpuNodeGroupSettings, *, role_name: str, subnet_ids: list[str],
                    security_group_id: str, tags: dict[str, str]) -> dict[str, Any]:
    """The EC2NodeClass of a GPU group: the group's AMI family at a pinned release (an alias, not
    `latest`, so nodes change only when versions.py does), the private subnets and the cluster
    security group by id, one encrypted gp3 volume for images with the group's throughput and
    IOPS, seeded from the group's image cache snapshot if it has one (and for Bottlerocket its
    small OS volume, also gp3 and encrypted), IMDSv2 with hop limit 1 (pods cannot reach the node
    role), the stack's tags, and the user data for parallel image pull where it is on."""
    volume: dict[str, Any] = {
        "deviceName": data_volume_device(group.ami_type),
        "ebs": {"volumeSize": f"{group.disk_size_gib}Gi", "volumeType": "gp3",
                "iops": group.disk_iops, "throughput": group.disk_throughput_mibps,
                "encrypted": True, "deleteOnTermination": True},
    }
    if group.image_cache_snapshot_id is not None:
        # The data volume starts as a copy of the snapshot: the vLLM image is on disk at boot.
        volume["ebs"]["snapshotID"] = group.image_cache_snapshot_id
        if group.image_cache_init_mibps is not None:
            volume["ebs"]["volumeInitializationRate"] = group.image_cache_init_mibps
    volumes = [volume]
    if group.ami_type.startswith("AL2023"):
        volume["rootVolume"] = True
    else:
        volumes.insert(0, {"deviceName": "/dev/xvda", "rootVolume": True, "ebs": {
            "volumeSize": f"{BOTTLEROCKET_OS_VOLUME_GIB}Gi", "volumeType": "gp3",
            "encrypted": True, "deleteOnTermination": True}})
    return {
        "role": role_name,
        "amiSelectorTerms": [{"alias": KARPENTER_NODE_AMIS[group.ami_type]}],
        "subnetSelectorTerms": [{"id": subnet} for subnet in subnet_ids],
        "securityGroupSelectorTerms": [{"id": security_group_id}],
        "blockDeviceMappings": volumes,
        "metadataOptions": {"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled",
                            "httpPutResponseHopLimit": 1, "httpTokens": "required"},
        "tags": {**tags, "Name": f"{group.name}-gpu"},
        **({"userData": user_data} if (user_data := node_user_data(group)) is not None else {}),
    }


def node_pool_spec(group: GpuNodeGroupSettings, *, node_class: str) -> dict[str, Any]:
    """The NodePool of a GPU group: its instance types, Spot first with On-Demand as fallback
    for `capacityType: SPOT` (Karpenter prefers Spot when both are allowed), the GPU taint and
    the labels of a managed GPU group (so model pods select and tolerate it unchanged), a GPU
    limit of `maxSize` nodes, and disruption that never interrupts a model: only empty nodes are
    consolidated, one node at a time."""
    capacity = ["spot", "on-demand"] if group.capacity_type == "SPOT" else ["on-demand"]
    return {
        "template": {
            "metadata": {"labels": gpu_labels(group)},
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass",
                                 "name": node_class},
                "requirements": [
                    {"key": "node.kubernetes.io/instance-type", "operator": "In",
                     "values": list(group.instance_types)},
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": capacity},
                    {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                    {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                ],
                "taints": [{"key": GPU_TAINT.key, "value": GPU_TAINT.value,
                            "effect": TAINT_EFFECTS[GPU_TAINT.effect]}],
                "expireAfter": EXPIRE_AFTER,
                "terminationGracePeriod": TERMINATION_GRACE_PERIOD,
            },
        },
        "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": CONSOLIDATE_AFTER,
                       "budgets": [{"nodes": "1"}]},
        # In slices on a group that shares its GPUs (node_overlay_spec).
        "limits": {"nvidia.com/gpu": str(group.max_size * group.slices_per_node)},
    }


def node_overlay_spec(group: GpuNodeGroupSettings) -> dict[str, Any]:
    """What Karpenter's scheduling simulation should believe a node of a GPU-sharing group
    offers: `gpus x replicas` nvidia.com/gpu, as the device plugin will advertise. Without it
    Karpenter packs one slice-asking pod per physical GPU and launches a node for each
    (kubernetes-sigs/karpenter#729, #2140). The overlay's capacity replaces the instance type's
    (pkg/cloudprovider/types.go `ApplyCapacityOverlay`, lo.Assign), and the NodePool's GPU limit
    counts it (state/statenode.go `Capacity`), so the limit is in slices too."""
    return {
        "weight": NODE_OVERLAY_WEIGHT,
        "requirements": [{"key": "karpenter.sh/nodepool", "operator": "In", "values": [group.name]}],
        "capacity": {GPU_RESOURCE: str(group.slices_per_node)},
    }


def controller_values(*, cluster_name: str, queue_name: str, region: str,
                      node_overlays: bool = False) -> dict[str, Any]:
    """Helm values of the controller (chart karpenter, values.yaml at v1.14.1). `node_overlays`
    turns on the NodeOverlay feature gate (alpha; chart settings.featureGates.nodeOverlay ->
    FEATURE_GATES NodeOverlay=true), which GPU-sharing groups need."""
    settings: dict[str, Any] = {"clusterName": cluster_name, "interruptionQueue": queue_name}
    if node_overlays:
        settings["featureGates"] = {"nodeOverlay": True}
    return {
        "settings": settings,
        "replicas": 2,
        # On the system nodes, never on a node it launched (the chart's default affinity keeps
        # it off nodes with karpenter.sh/nodepool).
        "nodeSelector": {"kubernetes.io/os": "linux", **system_labels()},
        "controller": {
            # The getting-started install gives 1 CPU and 1 GiB (step08-apply-helm-chart.sh);
            # two replicas on separate nodes would then take half of a small system node each.
            # Requests for the steady state, the limits for a burst of launches.
            "resources": {"requests": {"cpu": "250m", "memory": "512Mi"},
                          "limits": {"cpu": "1", "memory": "1Gi"}},
            # The system nodes' IMDS hop limit is 1, so the pod cannot read its region there;
            # without one the controller exits (pkg/operator/operator.go).
            "env": [{"name": "AWS_REGION", "value": region}],
        },
    }


class Karpenter(pulumi.ComponentResource):
    """Karpenter and the GPU NodePools of the groups with engine `karpenter`.

    Creates: the interruption queue, its policy and EventBridge rules; the node role with its
    access entry; the controller's Pod Identity role (template policies, narrowed) and
    association; the CRD release and the controller release (two replicas on the system
    nodes); per group an EC2NodeClass and a NodePool.

    Destroy order, from the dependency graph: model servers (they wait for their NodePool) go
    first, then the NodePools and EC2NodeClasses, whose finalizers hold until Karpenter has
    terminated their nodes, while the controller still runs and still has its role, queue and
    node role; then the controller; then its AWS resources.

    Attributes:
        node_pools: group name -> its NodePool (what a model server waits for).
        release: the controller's Helm release.
    """

    def __init__(self, name: str, groups: list[GpuNodeGroupSettings], *, cluster_name: str,
                 eks_cluster: aws.eks.Cluster, subnet_ids: pulumi.Input[list[str]],
                 cluster_security_group_id: pulumi.Input[str], region: str,
                 account_id: pulumi.Input[str], partition: pulumi.Input[str],
                 provider: k8s.Provider, system_ready: list[pulumi.Resource],
                 tags: dict[str, str], opts: pulumi.ResourceOptions | None = None):
        super().__init__("anythingllm:cluster:Karpenter", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        queue = aws.sqs.Queue(
            f"{name}-interruptions", name=f"{cluster_name}-karpenter",
            **interruption_queue_settings(), tags=tags, opts=named(parent=self))
        rules = []
        for rule_name, pattern in interruption_rules().items():
            rule = aws.cloudwatch.EventRule(
                f"{name}-{rule_name}",
                description=f"Karpenter interruption handling of {cluster_name}: {rule_name}",
                event_pattern=json.dumps(pattern, sort_keys=True), tags=tags, opts=child)
            aws.cloudwatch.EventTarget(
                f"{name}-{rule_name}", rule=rule.name, arn=queue.arn,
                target_id="KarpenterInterruptionQueueTarget",
                opts=named(parent=rule))
            rules.append(rule)
        queue_access = aws.sqs.QueuePolicy(
            f"{name}-interruptions", queue_url=queue.id,
            policy=pulumi.Output.all(queue.arn, *(r.arn for r in rules)).apply(
                lambda v: iam.to_json(queue_policy(queue_arn=v[0], rule_arns=list(v[1:])))),
            opts=pulumi.ResourceOptions(parent=queue))

        # Its own role, not the managed groups': EKS creates the access entry of a managed
        # group's role itself, and this one needs the EC2_LINUX entry below.
        node_role, node_permissions = create_node_role(
            f"{name}-nodes", description=f"Nodes Karpenter launches in {cluster_name}",
            partition=partition, tags=tags, parent=self)
        node_access = aws.eks.AccessEntry(
            f"{name}-nodes", cluster_name=eks_cluster.name, principal_arn=node_role.arn,
            type="EC2_LINUX", tags=tags, opts=named(parent=self))

        policy = pulumi.Output.all(partition, account_id, node_role.arn, queue.arn, subnet_ids,
                                   cluster_security_group_id).apply(
            lambda v: iam.to_json(controller_policy(
                partition=v[0], region=region, account_id=v[1], cluster_name=cluster_name,
                node_role_arn=v[2], queue_arn=v[3], subnet_ids=list(v[4]),
                security_group_id=v[5])))
        role = pod_identity_role(
            f"{name}-controller", account_id=account_id, cluster_name=cluster_name,
            namespace=NAMESPACE, service_account=SERVICE_ACCOUNT, partition=partition,
            inline_policy=policy, tags=tags, parent=self)
        association = pod_identity_association(
            f"{name}-controller", role, cluster_name=eks_cluster.name, tags=tags, opts=child)

        in_cluster = pulumi.ResourceOptions(parent=self, provider=provider)
        crds = pinned_release(
            f"{name}-crd", KARPENTER_CRD, release_name="karpenter-crd", namespace=NAMESPACE,
            values={}, opts=pulumi.ResourceOptions.merge(in_cluster, pulumi.ResourceOptions(
                depends_on=system_ready)))
        self.release = pinned_release(
            name, KARPENTER, release_name="karpenter", namespace=NAMESPACE,
            values=queue.name.apply(lambda queue_name: controller_values(
                cluster_name=cluster_name, queue_name=queue_name, region=region,
                node_overlays=any(g.gpu_sharing is not None for g in groups))),
            skip_crds=True,
            # Credentials are injected at pod creation; the queue must be fed before it reads.
            opts=pulumi.ResourceOptions.merge(in_cluster, pulumi.ResourceOptions(
                depends_on=[*system_ready, crds, association, queue_access, *rules])))

        self.spot_role = self._spot_service_linked_role(name, groups, tags=tags)
        self.node_pools: dict[str, k8s.apiextensions.CustomResource] = {}
        for group in groups:
            node_class = k8s.apiextensions.CustomResource(
                f"{name}-{group.name}-nodes",
                api_version=NODE_CLASS_API, kind="EC2NodeClass",
                metadata={"name": group.name},
                spec=pulumi.Output.all(node_role.name, subnet_ids, cluster_security_group_id).apply(
                    lambda v, group=group: node_class_spec(
                        group, role_name=v[0], subnet_ids=list(v[1]), security_group_id=v[2],
                        tags=tags)),
                # Its finalizer waits for its nodes to terminate: the controller, the node
                # role and its access entry must outlive it.
                opts=pulumi.ResourceOptions.merge(in_cluster, pulumi.ResourceOptions(
                    depends_on=[self.release, node_access, *node_permissions],
                    custom_timeouts=DELETE_TIMEOUT)))
            # Before the NodePool: Karpenter must know a node's slices before it packs pods.
            overlay = [k8s.apiextensions.CustomResource(
                f"{name}-{group.name}-time-slicing",
                api_version=NODE_OVERLAY_API, kind="NodeOverlay",
                metadata={"name": f"{group.name}-time-slicing"},
                spec=node_overlay_spec(group),
                opts=pulumi.ResourceOptions.merge(in_cluster, pulumi.ResourceOptions(
                    depends_on=[self.release])))] if group.gpu_sharing is not None else []
            self.node_pools[group.name] = k8s.apiextensions.CustomResource(
                f"{name}-{group.name}",
                api_version=NODE_POOL_API, kind="NodePool",
                metadata={"name": group.name},
                spec=node_pool_spec(group, node_class=group.name),
                opts=pulumi.ResourceOptions.merge(in_cluster, pulumi.ResourceOptions(
                    depends_on=[node_class, self.release, *overlay,
                                *([self.spot_role] if self.spot_role is not None else [])],
                    custom_timeouts=DELETE_TIMEOUT)))
        self.register_outputs({"release": self.release.name})

    def _spot_service_linked_role(self, name: str, groups: list[GpuNodeGroupSettings], *,
                                  tags: dict[str, str]) -> aws.iam.ServiceLinkedRole | None:
        """EC2's Spot service-linked role, when a group asks for Spot and the account lacks it.

        Without it EC2 refuses Spot requests made through the API, and Karpenter takes the
        refusal for "no Spot capacity" and launches On-Demand without a word
        (pkg/providers/instance/instance.go at v1.14.1). The role is the account's, not the
        stack's: it is created only when missing, and never deleted by the stack
        (`retain_on_delete`), since other workloads of the account may use it.
        """
        if not any(group.capacity_type == "SPOT" for group in groups):
            return None
        existing = aws.iam.get_roles(path_prefix="/aws-service-role/spot.amazonaws.com/")
        if existing.names:
            return None
        return aws.iam.ServiceLinkedRole(
            f"{name}-spot", aws_service_name="spot.amazonaws.com",
            description="EC2 Spot (created by AnythingLLM's stack for Karpenter; kept on destroy)",
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True))
