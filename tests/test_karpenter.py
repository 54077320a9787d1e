"""Karpenter GPU capacity: the pinned version, its custom resources, IAM, interruption handling,
placement and destroy order.

Expectations come from aws/karpenter-provider-aws v1.14.1: the getting-started CloudFormation
template and the CRDs, vendored verbatim in components/data/karpenter/ (their digests are pinned
below), hack/docs/compatibilitymatrix_gen/compatibility.yaml (Kubernetes minors), the chart's
values.yaml, and website/content/en/v1.14 concepts/disruption.md.
"""

from __future__ import annotations

import copy
import hashlib
import json
import tomllib

import jsonschema
import pytest
import yaml

from components import karpenter
from components.karpenter import (
    EXPIRE_AFTER,
    GRANTED_POLICIES,
    NOT_GRANTED_POLICIES,
    TERMINATION_GRACE_PERIOD,
    controller_policy,
    interruption_rules,
    queue_policy,
    upstream_policies,
)
from components.settings.kubernetes_version import supported_versions
from components.versions import KARPENTER, KARPENTER_CRD, KARPENTER_KUBERNETES, KARPENTER_VERSION
from tests import crd_schema
from tests.conftest import (
    ROOT,
    STACKS,
    base_config,
    expect_settings_error,
    helm_release,
    settings_from,
    stack_settings,
)
from tests.iam_policy_model import ALLOWED, EXPLICIT_DENY, IMPLICIT_DENY, Request, evaluate
from tools.engine import Plan
from tools.fake_cloud import ACCOUNT_ID

NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
MODEL_WORKLOAD = "kubernetes:apps/v1:StatefulSet"
GROUP_LABEL = "anythingllm.io/gpu-node-group"
EC2 = f"arn:aws:ec2:us-east-1:{ACCOUNT_ID}"

DIGESTS = {
    "cloudformation.yaml": "7ffeb01f04b5da482ef43087830de00a476098416e3b4576c38239ef1b0bef4b",
    "karpenter.k8s.aws_ec2nodeclasses.yaml": (
        "62dec59f01c0972d4503ca3ed25f243ba9c2f561be0d964ce7a14c8df406132f"),
    "karpenter.sh_nodepools.yaml": "3bb64a20c80776b77aa19a699ebdaf34480a7b2e7ec4ef890b43225b3517f878",
    "karpenter.sh_nodeoverlays.yaml": "6ff6199aff096cc87cd9508f8c5ae62c6d3452aa90c2828ee36380340f3ece62",
}


# ---------------------------------------------------------------------------------- versions


def test_vendored_files_are_the_pinned_releases():
    for name, digest in DIGESTS.items():
        assert hashlib.sha256((karpenter.DATA / name).read_bytes()).hexdigest() == digest, name
    # The CRD chart and the controller chart move together.
    assert KARPENTER.version == KARPENTER_CRD.version == KARPENTER_VERSION == "1.14.1"
    assert KARPENTER.repository == KARPENTER_CRD.repository == "oci://public.ecr.aws/karpenter"


def test_every_supported_kubernetes_version_is_one_karpenter_supports():
    low, high = (tuple(int(p) for p in v.split(".")) for v in KARPENTER_KUBERNETES)
    for version in supported_versions():
        assert low <= tuple(int(p) for p in version.split(".")) <= high, version


@pytest.mark.parametrize("stack", STACKS)
def test_the_charts_install_crds_first_then_the_controller(stack_plans, stack):
    plan = stack_plans[stack]
    crds, controller = helm_release(plan, "karpenter-crd"), helm_release(plan, "karpenter")
    assert crds.inputs["chart"] == "oci://public.ecr.aws/karpenter/karpenter-crd"
    assert controller.inputs["chart"] == "oci://public.ecr.aws/karpenter/karpenter"
    assert crds.inputs["version"] == controller.inputs["version"] == "1.14.1"
    assert "repositoryOpts" not in controller.inputs
    # Helm installs a chart's crds/ once and never upgrades them: the CRD chart owns them.
    assert controller.inputs["skipCrds"] is True and plan.waits_for(controller, crds)
    values = controller.inputs["values"]
    queue = plan.one("aws:sqs/queue:Queue")
    sharing = any(g.gpu_sharing is not None for g in stack_settings(stack).cluster.gpu_node_groups)
    assert values["settings"] == {
        "clusterName": plan.outputs["clusterName"],
        "interruptionQueue": queue.inputs["name"],
        # The NodeOverlay gate (alpha) only where a group shares its GPUs (dev).
        **({"featureGates": {"nodeOverlay": True}} if sharing else {}),
    }
    assert sharing == (stack == "dev")
    assert values["nodeSelector"]["anythingllm.io/node-group"] == "system"
    # IMDS hop limit 1 on the system nodes hides the region; without one the controller exits
    # (pkg/operator/operator.go); the chart renders controller.env (templates/deployment.yaml).
    assert values["controller"]["env"] == [{"name": "AWS_REGION", "value": "us-east-1"}]
    assert values["controller"]["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}
    association = plan.one(
        "aws:eks/podIdentityAssociation:PodIdentityAssociation", "cluster-karpenter-controller"
    )
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == (
        "kube-system",
        "karpenter",
    )
    assert plan.waits_for(controller, association)


# -------------------------------------------------------------------------- custom resources


@pytest.mark.parametrize("stack", STACKS)
def test_node_classes_and_pools_validate_against_the_pinned_crds(stack_plans, stack):
    plan = stack_plans[stack]
    resources = [*plan.of_type(NODE_CLASS), *plan.of_type(NODE_POOL)]
    assert resources
    for resource in resources:
        crd_schema.validate(copy.deepcopy(resource.raw_inputs), "1.36.0")


def test_the_crd_check_has_teeth(stack_plans):
    node_class = copy.deepcopy(stack_plans["dev"].one(NODE_CLASS).raw_inputs)
    node_class["spec"]["blockDeviceMappings"][0]["ebs"]["volumeSize"] = (
        "200GB"  # not a quantity it takes
    )
    with pytest.raises(jsonschema.ValidationError, match=r"does not match"):
        crd_schema.validate(node_class, "1.36.0")
    pool = copy.deepcopy(stack_plans["dev"].one(NODE_POOL).raw_inputs)
    pool["spec"]["disruption"]["consolidationPolicy"] = "WhenIdle"
    with pytest.raises(jsonschema.ValidationError):
        crd_schema.validate(pool, "1.36.0")
    pool = copy.deepcopy(stack_plans["dev"].one(NODE_POOL).raw_inputs)
    pool["spec"]["template"]["spec"]["expiresAfter"] = "720h"  # misspelt: unknown field
    with pytest.raises(jsonschema.ValidationError):
        crd_schema.validate(pool, "1.36.0")


def _cel_rules(schema: dict) -> list[str]:
    return [v["rule"] for v in schema.get("x-kubernetes-validations", [])]


@pytest.mark.parametrize("stack", STACKS)
def test_the_crds_cel_rules_hold(stack_plans, stack):
    """The CEL rules (not evaluated by the schema check) that these objects could break, read
    from the CRDs so that a changed rule fails here, and checked by hand."""
    crds = {
        name: yaml.safe_load((karpenter.DATA / name).read_text())
        for name in ("karpenter.k8s.aws_ec2nodeclasses.yaml", "karpenter.sh_nodepools.yaml")
    }
    class_spec = crds["karpenter.k8s.aws_ec2nodeclasses.yaml"]["spec"]["versions"][0]["schema"][
        "openAPIV3Schema"
    ]["properties"]["spec"]
    assert "self.all(k, !k.startsWith('kubernetes.io/cluster') )" in _cel_rules(
        class_spec["properties"]["tags"]
    )
    assert (
        "self.split('@')[0] in ['al2','al2023','bottlerocket','windows2019','windows2022','windows2025']"
        in (_cel_rules(class_spec["properties"]["amiSelectorTerms"]["items"]["properties"]["alias"]))
    )
    pool_labels = crds["karpenter.sh_nodepools.yaml"]["spec"]["versions"][0]["schema"][
        "openAPIV3Schema"
    ]["properties"]["spec"]["properties"]["template"]["properties"]["metadata"]["properties"]["labels"]
    assert 'self.all(x, x != "kubernetes.io/hostname")' in _cel_rules(pool_labels)

    forbidden_tags = (
        "eks:eks-cluster-name",
        "karpenter.sh/nodepool",
        "karpenter.sh/nodeclaim",
        "karpenter.k8s.aws/ec2nodeclass",
    )
    for node_class in stack_plans[stack].of_type(NODE_CLASS):
        spec = node_class.inputs["spec"]
        assert ("role" in spec) != ("instanceProfile" in spec)
        (term,) = spec["amiSelectorTerms"]
        family, _, version = term["alias"].partition("@")
        assert family in ("al2023", "bottlerocket") and version not in ("", "latest")
        assert len(term["alias"]) <= 30
        for key in spec["tags"]:
            assert key and key not in forbidden_tags and not key.startswith("kubernetes.io/cluster"), key
    for pool in stack_plans[stack].of_type(NODE_POOL):
        for key in pool.inputs["spec"]["template"]["metadata"]["labels"]:
            domain = key.split("/")[0] if "/" in key else ""
            assert not domain.endswith("karpenter.sh") and not domain.endswith("karpenter.k8s.aws"), key
            assert not (domain.endswith("kubernetes.io") or domain.endswith("k8s.io")), key


def test_a_gpu_pool_follows_its_group_settings(stack_plans):
    """prod's embedder group: On-Demand only, its instance type, the GPU taint, a GPU limit of
    maxSize nodes, disruption that only removes empty nodes one at a time, and no expiry on a
    timer (forceful, disruption.md) but a bounded drain (terminationGracePeriod)."""
    settings = stack_settings("prod")
    group = settings.cluster.gpu_node_group_by_name["embed-pool"]
    pool = stack_plans["prod"].one(NODE_POOL, "cluster-karpenter-embed-pool").inputs["spec"]
    requirements = {r["key"]: r for r in pool["template"]["spec"]["requirements"]}
    assert requirements["node.kubernetes.io/instance-type"]["values"] == ["g6.xlarge"]
    assert requirements["karpenter.sh/capacity-type"]["values"] == ["on-demand"]
    assert pool["template"]["spec"]["taints"] == [
        {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
    assert pool["limits"] == {"nvidia.com/gpu": str(group.max_size * 1)}
    assert pool["disruption"] == {
        "consolidationPolicy": "WhenEmpty", "consolidateAfter": "10m", "budgets": [{"nodes": "1"}]}
    spec = pool["template"]["spec"]
    assert (spec["expireAfter"], spec["terminationGracePeriod"]) == (EXPIRE_AFTER, TERMINATION_GRACE_PERIOD)
    assert EXPIRE_AFTER == "Never"
    # dev's Spot group may fall back to On-Demand; Karpenter takes Spot first.
    dev = stack_plans["dev"].one(NODE_POOL).inputs["spec"]["template"]["spec"]["requirements"]
    assert {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]} in dev
    # prod's chat group stays managed (a floor of one node; reservations attach to it).
    assert settings.cluster.gpu_node_group_by_name["chat"].engine == "managed"
    assert stack_plans["prod"].one("aws:eks/nodeGroup:NodeGroup", "cluster-gpu-chat")


def test_node_classes_pin_the_ami_and_size_the_image_volume(stack_plans):
    classes = {c.inputs["metadata"]["name"]: (plan, c.inputs["spec"]) for plan in
               (stack_plans["dev"], stack_plans["prod"]) for c in plan.of_type(NODE_CLASS)}
    assert classes["inference"][1]["amiSelectorTerms"] == [{"alias": "al2023@v20260903"}]
    assert classes["embed-pool"][1]["amiSelectorTerms"] == [{"alias": "bottlerocket@1.68.1"}]
    # AL2023: one volume, its root, for images too; 600 MiB/s because parallel pull is on.
    assert classes["inference"][1]["blockDeviceMappings"] == [{
        "deviceName": "/dev/xvda", "rootVolume": True, "ebs": {
            "volumeSize": "200Gi", "volumeType": "gp3", "iops": 6000, "throughput": 600,
            "encrypted": True, "deleteOnTermination": True}}]
    # Bottlerocket: its OS volume stated (given mappings replace Karpenter's defaults, and the
    # AMI's own is gp2), and images on the data volume, /dev/xvdb.
    os_volume, data = classes["embed-pool"][1]["blockDeviceMappings"]
    assert os_volume == {"deviceName": "/dev/xvda", "rootVolume": True, "ebs": {
        "volumeSize": "4Gi", "volumeType": "gp3", "encrypted": True, "deleteOnTermination": True}}
    assert data["deviceName"] == "/dev/xvdb" and data["ebs"]["encrypted"] is True
    for plan, spec in classes.values():
        assert spec["metadataOptions"]["httpTokens"] == "required"
        assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
        # The private subnets and the cluster security group, by id: no other subnet or group
        # can be picked up by a copied tag.
        subnets = [s for s in plan.of_type("aws:ec2/subnet:Subnet")
                   if "kubernetes.io/role/internal-elb" in s.inputs["tags"]]
        terms = spec["subnetSelectorTerms"]
        assert len(terms) == len(subnets) and all("id" in t for t in terms)
        database_rule = plan.one("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                                 "database-postgres")
        assert spec["securityGroupSelectorTerms"] == [
            {"id": database_rule.inputs["referencedSecurityGroupId"]}]


# awslabs/amazon-eks-ami v20260724 nodeadm/internal/containerd/snapshotter/
# soci-snapshotter.config.toml: what the FastImagePull gate writes on AL2023 nodes.
NODEADM_SOCI_CONFIG = ROOT / "tests" / "data" / "nodeadm-soci-snapshotter.config.toml"
NODEADM_SOCI_DIGEST = "91ff29ab41e70288082a679725b5a7bb2503dbee5e23577b527a78156a071b1a"


def test_parallel_image_pull_is_on_for_both_ami_families(stack_plans):
    """AL2023: a NodeConfig with the FastImagePull gate (nodeadm api/v1alpha1 Feature enum), which
    Karpenter files as a NodeConfig part because it parses as YAML (bootstrap/nodeadm.go
    parseUserData). Bottlerocket: the soci snapshotter in parallel-pull-unpack mode with the same
    concurrency as nodeadm's file, so both families pull alike."""
    assert hashlib.sha256(NODEADM_SOCI_CONFIG.read_bytes()).hexdigest() == NODEADM_SOCI_DIGEST
    nodeadm = tomllib.loads(NODEADM_SOCI_CONFIG.read_text())["pull_modes"]["parallel_pull_unpack"]
    classes = {c.inputs["metadata"]["name"]: c.inputs["spec"] for plan in
               (stack_plans["dev"], stack_plans["prod"]) for c in plan.of_type(NODE_CLASS)}
    node_config = yaml.safe_load(classes["inference"]["userData"])
    assert node_config == {"apiVersion": "node.eks.aws/v1alpha1", "kind": "NodeConfig",
                           "spec": {"featureGates": {"FastImagePull": True}}}
    bottlerocket = tomllib.loads(classes["embed-pool"]["userData"])["settings"]
    assert bottlerocket["container-runtime"] == {"snapshotter": "soci"}
    soci = bottlerocket["container-runtime-plugins"]["soci-snapshotter"]
    assert soci["pull-mode"] == "parallel-pull-unpack"
    assert {k.replace("-", "_"): v for k, v in soci["parallel-pull-unpack"].items()} == {
        k: nodeadm[k] for k in ("max_concurrent_downloads_per_image",
                                "max_concurrent_unpacks_per_image",
                                "concurrent_download_chunk_size", "discard_unpacked_layers")}
    # Nothing Karpenter sets itself: its own settings would be overwritten
    # (bootstrap/bottlerocket.go: "Karpenter will overwrite settings present inside custom UserData").
    assert "kubernetes" not in bottlerocket
    # Both at nodeadm's floor of 600 MiB/s (nodeadm/doc/examples.md, "Enabling fast image pull").
    for spec in classes.values():
        assert spec["blockDeviceMappings"][-1]["ebs"]["throughput"] >= 600


def test_parallel_pull_below_600_mibps_is_warned_about_not_refused():
    """nodeadm/doc/examples.md: "Below that value, you may see longer image pull times"."""
    config = base_config()
    config["cluster"]["gpuNodeGroups"][0].update(diskThroughputMibps=500)
    settings = settings_from(config)
    assert settings.cluster.gpu_node_groups[0].fast_image_pull
    assert [w for w in settings.warnings
            if w.startswith("cluster.gpuNodeGroups[0].diskThroughputMibps: 500 MiB/s")]


def test_an_image_cache_snapshot_seeds_the_data_volume():
    config = base_config()
    config["cluster"]["gpuNodeGroups"][0].update(amiType="BOTTLEROCKET_x86_64_NVIDIA",
                                                 imageCacheSnapshotId="snap-0123456789abcdef0",
                                                 imageCacheInitMibps=300)
    group = settings_from(config).cluster.gpu_node_groups[0]
    spec = karpenter.node_class_spec(group, role_name="r", subnet_ids=["subnet-1"],
                                     security_group_id="sg-1", tags={})
    crd_schema.validate({"apiVersion": karpenter.NODE_CLASS_API, "kind": "EC2NodeClass",
                         "metadata": {"name": group.name}, "spec": spec}, "1.36.0")
    os_volume, data = spec["blockDeviceMappings"]
    assert data["deviceName"] == "/dev/xvdb"
    assert data["ebs"]["snapshotID"] == "snap-0123456789abcdef0" and data["ebs"]["encrypted"] is True
    assert data["ebs"]["volumeInitializationRate"] == 300
    assert "snapshotID" not in os_volume["ebs"]
    # The image is on disk already: no parallel pull, whose snapshotter change would empty it,
    # and the throughput default of a group without it.
    assert not group.fast_image_pull and "userData" not in spec
    assert data["ebs"]["throughput"] == 500


@pytest.mark.parametrize("stack", STACKS)
def test_model_replicas_prefer_different_zones(stack_plans, stack):
    """A zonal Spot reclaim should not take every replica: a soft zone spread (GPUs are often
    short in some zones, so never a hard one that would leave a pod pending)."""
    workloads = stack_plans[stack].of_type(MODEL_WORKLOAD)
    assert len(workloads) == len(stack_settings(stack).model_serving.models)
    for workload in workloads:
        pod = workload.inputs["spec"]["template"]["spec"]
        (spread,) = pod["topologySpreadConstraints"]
        assert (spread["topologyKey"], spread["whenUnsatisfiable"], spread["maxSkew"]) == (
            "topology.kubernetes.io/zone", "ScheduleAnyway", 1)
        assert spread["labelSelector"]["matchLabels"] == workload.inputs["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_model_lands_only_on_its_pool(stack_plans, stack):
    plan = stack_plans[stack]
    settings = stack_settings(stack)
    pools = {
        p.inputs["spec"]["template"]["metadata"]["labels"][GROUP_LABEL]: p
        for p in plan.of_type(NODE_POOL)
    }
    for model in settings.model_serving.models:
        pod = plan.one(MODEL_WORKLOAD, f"models-{model.name}").inputs["spec"]["template"]["spec"]
        group = settings.cluster.gpu_node_group_by_name[model.node_group]
        sharing = ({"nvidia.com/device-plugin.config": f"time-slicing-{group.gpu_sharing.replicas}"}
                   if group.gpu_sharing is not None else {})
        assert pod["nodeSelector"] == {GROUP_LABEL: model.node_group, **sharing}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
            "tolerations"
        ]
        if group.engine == "karpenter":
            # Only its own pool carries the label values it selects.
            labels = {g: p.inputs["spec"]["template"]["metadata"]["labels"] for g, p in pools.items()}
            assert [g for g, pool in labels.items()
                    if pod["nodeSelector"].items() <= pool.items()] == [model.node_group]


# ----------------------------------------------------------------------------------------- IAM


def _policy(plan: Plan, name: str) -> dict:
    return json.loads(plan.one("aws:iam/rolePolicy:RolePolicy", name).inputs["policy"])


def test_the_controller_policy_is_the_templates_narrowed():
    stack = {"partition": "aws", "region": "us-east-1", "account_id": ACCOUNT_ID, "cluster_name": "c",
             "node_role_arn": "arn:aws:iam::1:role/n", "queue_arn": "q"}
    upstream = upstream_policies(**stack)
    assert set(upstream) == {*GRANTED_POLICIES, *NOT_GRANTED_POLICIES}
    scoped = controller_policy(**stack, subnet_ids=["subnet-1", "subnet-2"], security_group_id="sg-1")
    expected = [s for name in GRANTED_POLICIES for s in upstream[name]["Statement"]]
    assert [s["Sid"] for s in scoped["Statement"]] == [s["Sid"] for s in expected]
    changed = [s["Sid"] for s, u in zip(scoped["Statement"], expected, strict=True) if s != u]
    assert changed == ["AllowScopedEC2InstanceAccessActions"]
    # Inline role policies are limited to 10,240 characters (IAM quotas), whitespace excluded.
    assert len(json.dumps(scoped, separators=(",", ":"))) < 10_240


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_controller_reaches_only_this_clusters_capacity(stack_plans, stack):
    plan = stack_plans[stack]
    policy = _policy(plan, "cluster-karpenter-controller")
    cluster = plan.outputs["clusterName"]
    (subnet, *_) = next(c for c in plan.of_type(NODE_CLASS)).inputs["spec"]["subnetSelectorTerms"]
    security_group = next(c for c in plan.of_type(NODE_CLASS)).inputs["spec"][
        "securityGroupSelectorTerms"
    ][0]["id"]
    sids = {statement["Sid"]: statement for statement in policy["Statement"]}
    node_role = sids["AllowPassingInstanceRole"]["Resource"]
    # The queue's ARN as the engine's fake cloud gives it (tools/fake_cloud.py).
    queue = sids["AllowInterruptionQueueActions"]["Resource"]
    assert queue.endswith(plan.one("aws:sqs/queue:Queue").inputs["name"])
    ours = {
        f"aws:ResourceTag/kubernetes.io/cluster/{cluster}": "owned",
        "aws:ResourceTag/karpenter.sh/nodepool": "chat",
    }
    theirs = {
        "aws:ResourceTag/kubernetes.io/cluster/payments": "owned",
        "aws:ResourceTag/karpenter.sh/nodepool": "x",
    }
    launch = {
        f"aws:RequestTag/kubernetes.io/cluster/{cluster}": "owned",
        "aws:RequestTag/eks:eks-cluster-name": cluster,
        "aws:RequestTag/karpenter.sh/nodepool": "chat",
    }
    allowed = [
        Request("ec2:RunInstances", f"{EC2}:subnet/{subnet['id']}"),
        Request("ec2:RunInstances", f"{EC2}:security-group/{security_group}"),
        Request("ec2:RunInstances", "arn:aws:ec2:us-east-1::image/ami-0abc"),
        Request("ec2:RunInstances", f"{EC2}:instance/*", launch),
        Request("ec2:TerminateInstances", f"{EC2}:instance/i-0abc", ours),
        Request("iam:PassRole", node_role, {"iam:PassedToService": "ec2.amazonaws.com"}),
        Request("sqs:ReceiveMessage", queue),
    ]
    refused = [
        Request("ec2:RunInstances", f"{EC2}:subnet/subnet-0public0000000000"),
        Request("ec2:RunInstances", f"{EC2}:security-group/sg-0database00000000"),
        Request(
            "ec2:RunInstances",
            f"{EC2}:instance/*",
            {**launch, "aws:RequestTag/eks:eks-cluster-name": "payments"},
        ),
        Request("ec2:TerminateInstances", f"{EC2}:instance/i-0abc", theirs),
        Request(
            "iam:PassRole",
            f"arn:aws:iam::{ACCOUNT_ID}:role/admin",
            {"iam:PassedToService": "ec2.amazonaws.com"},
        ),
        Request("sqs:ReceiveMessage", queue.rsplit(":", 1)[0] + ":other-queue"),
    ]
    assert [r for r in allowed if evaluate(policy, r) != ALLOWED] == []
    assert [r for r in refused if evaluate(policy, r) != IMPLICIT_DENY] == []


@pytest.mark.parametrize("stack", STACKS)
def test_the_node_role_joins_as_a_node_and_nothing_more(stack_plans, stack):
    plan = stack_plans[stack]
    entry = plan.one("aws:eks/accessEntry:AccessEntry", "cluster-karpenter-nodes")
    assert entry.inputs["type"] == "EC2_LINUX"
    attachments = [
        a.inputs["policyArn"]
        for a in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.name.startswith("cluster-karpenter-nodes-")
    ]
    assert sorted(attachments) == [
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    ]


# --------------------------------------------------------------------------- interruptions


@pytest.mark.parametrize("stack", STACKS)
def test_interruption_events_reach_the_queue(stack_plans, stack):
    plan = stack_plans[stack]
    rules = {
        r.name.removeprefix("cluster-karpenter-"): json.loads(r.inputs["eventPattern"])
        for r in plan.of_type("aws:cloudwatch/eventRule:EventRule")
        if r.name.startswith("cluster-karpenter-")
    }
    assert rules == interruption_rules()
    kinds = {(p["source"][0], p["detail-type"][0]) for p in rules.values()}
    assert {
        ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
        ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
        ("aws.ec2", "EC2 Instance State-change Notification"),
        ("aws.health", "AWS Health Event"),
    } <= kinds
    queue = plan.one("aws:sqs/queue:Queue")
    assert (
        queue.inputs["messageRetentionSeconds"] == 300 and queue.inputs["sqsManagedSseEnabled"] is True
    )
    targets = [t for t in plan.of_type("aws:cloudwatch/eventTarget:EventTarget")
               if t.name.startswith("cluster-karpenter-")]
    assert len(targets) == len(rules)
    for target in targets:
        assert target.property_dependencies["arn"] == [queue.urn]


def test_only_the_stacks_rules_may_send_and_only_over_tls():
    queue = f"arn:aws:sqs:us-east-1:{ACCOUNT_ID}:c-karpenter"
    rule = f"arn:aws:events:us-east-1:{ACCOUNT_ID}:rule/spot"
    policy = queue_policy(queue_arn=queue, rule_arns=[rule])
    context = {"aws:SourceArn": rule, "aws:SecureTransport": "true"}
    send = "sqs:SendMessage"
    assert evaluate(policy, Request(send, queue, context, principal="events.amazonaws.com")) == ALLOWED
    other_rule = {
        **context,
        "aws:SourceArn": "arn:aws:events:us-east-1:999999999999:rule/x",
        "aws:SourceAccount": "999999999999",
    }
    assert (
        evaluate(policy, Request(send, queue, other_rule, principal="events.amazonaws.com"))
        == IMPLICIT_DENY
    )
    plain = {**context, "aws:SecureTransport": "false"}
    assert (
        evaluate(policy, Request(send, queue, plain, principal="events.amazonaws.com")) == EXPLICIT_DENY
    )


# ---------------------------------------------------------------------------------- ordering


@pytest.mark.parametrize("stack", STACKS)
def test_destroy_leaves_no_instance_behind(stack_plans, stack):
    """Models go before their NodePool, a NodePool before its EC2NodeClass, whose finalizer
    holds until Karpenter has terminated the nodes; so the controller, its permissions, its
    queue and the node role (and its access entry) must all outlive every EC2NodeClass."""
    plan = stack_plans[stack]
    settings = stack_settings(stack)
    controller = helm_release(plan, "karpenter")
    classes = {c.inputs["metadata"]["name"]: c for c in plan.of_type(NODE_CLASS)}
    pools = {p.inputs["metadata"]["name"]: p for p in plan.of_type(NODE_POOL)}
    for model in settings.model_serving.models:
        if model.node_group in pools:
            deployment = plan.one(MODEL_WORKLOAD, f"models-{model.name}")
            assert plan.deleted_before(deployment, pools[model.node_group]), model.name
    must_outlive = [
        controller,
        plan.one("aws:iam/rolePolicy:RolePolicy", "cluster-karpenter-controller"),
        plan.one(
            "aws:eks/podIdentityAssociation:PodIdentityAssociation", "cluster-karpenter-controller"
        ),
        plan.one("aws:sqs/queue:Queue"),
        plan.one("aws:iam/role:Role", "cluster-karpenter-nodes"),
        plan.one("aws:eks/accessEntry:AccessEntry", "cluster-karpenter-nodes"),
        *(
            a
            for a in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
            if a.name.startswith("cluster-karpenter-nodes-")
        ),
    ]
    for name, pool in pools.items():
        assert plan.deleted_before(pool, classes[name]), name
        # Their deletes wait for nodes to drain and terminate: more than the default timeout.
        assert pool.custom_timeouts.get("delete") == classes[name].custom_timeouts.get("delete") == "30m"
        for resource in must_outlive:
            assert plan.deleted_before(classes[name], resource), (name, resource.name)
            assert plan.deleted_before(pool, resource), (name, resource.name)
    assert plan.deleted_before(controller, plan.one("aws:eks/cluster:Cluster"))


# ---------------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    "change, key, reason",
    [
        (
            lambda g: g.update(minSize=1, desiredSize=1),
            "cluster.gpuNodeGroups[0].minSize",
            "nodes follow the pods",
        ),
        (
            lambda g: g.update(diskThroughputMibps=1000, diskIops=3000),
            "cluster.gpuNodeGroups[0].diskThroughputMibps",
            "needs at least 4000 diskIops",
        ),
        (
            lambda g: g.update(diskThroughputMibps=2000),
            "cluster.gpuNodeGroups[0].diskThroughputMibps",
            "less than or equal to 1000",
        ),
        (lambda g: g.update(engine="fargate"), "cluster.gpuNodeGroups[0].engine", "karpenter"),
        (
            lambda g: g.update(imageCacheInitMibps=200),
            "cluster.gpuNodeGroups[0].imageCacheInitMibps",
            "needs imageCacheSnapshotId",
        ),
        (
            lambda g: g.update(amiType="BOTTLEROCKET_x86_64_NVIDIA", imageCacheInitMibps=400,
                               imageCacheSnapshotId="snap-0123456789abcdef0"),
            "cluster.gpuNodeGroups[0].imageCacheInitMibps",
            "less than or equal to 300",
        ),
        (
            lambda g: g.update(engine="managed", fastImagePull=True),
            "cluster.gpuNodeGroups[0].fastImagePull",
            "only for engine 'karpenter'",
        ),
        (
            lambda g: g.update(imageCacheSnapshotId="snap-12345"),
            "cluster.gpuNodeGroups[0].imageCacheSnapshotId",
            "not an EBS snapshot id",
        ),
        (
            lambda g: g.update(imageCacheSnapshotId="snap-0123456789abcdef0"),
            "cluster.gpuNodeGroups[0].imageCacheSnapshotId",
            "amiType 'BOTTLEROCKET_x86_64_NVIDIA'",
        ),
        (
            lambda g: g.update(amiType="BOTTLEROCKET_x86_64_NVIDIA", fastImagePull=True,
                               imageCacheSnapshotId="snap-0123456789abcdef0"),
            "cluster.gpuNodeGroups[0].fastImagePull",
            "must be false with imageCacheSnapshotId",
        ),
    ],
)
def test_bad_gpu_group_settings_name_the_key(change, key, reason):
    config = base_config()
    change(config["cluster"]["gpuNodeGroups"][0])
    expect_settings_error(config, key, reason)


def test_a_managed_group_may_keep_a_floor():
    config = base_config()
    config["cluster"]["gpuNodeGroups"][0].update(engine="managed", minSize=1, desiredSize=1)
    assert settings_from(config).cluster.gpu_node_groups[0].min_size == 1


@pytest.mark.parametrize(
    "tag", ["kubernetes.io/cluster/other", "karpenter.sh/nodepool", "eks:eks-cluster-name"]
)
def test_tags_karpenter_refuses_are_refused_before_anything_runs(tag):
    config = base_config()
    config["tags"] = {tag: "x"}
    expect_settings_error(config, f"tags[{tag!r}]", "EC2NodeClass refuses it")


def test_a_single_replica_on_spot_or_karpenter_is_warned_about():
    """Two minutes' notice on Spot, then a drain while the replacement starts; a drifted
    Karpenter node (AMI bump, node class change) is replaced too (disruption.md): one replica
    means minutes offline each time."""
    config = base_config()
    config["cluster"]["gpuNodeGroups"][0]["capacityType"] = "SPOT"
    chat = [w for w in settings_from(config).warnings if w.startswith("modelServing.models[0].replicas")]
    assert len(chat) == 1 and "a Spot interruption or a node replacement" in chat[0]
    config["cluster"]["gpuNodeGroups"][0].update(engine="managed", capacityType="ON_DEMAND")
    assert not [w for w in settings_from(config).warnings if w.startswith("modelServing.models[0].replicas")]
    config["cluster"]["gpuNodeGroups"][0].update(engine="karpenter")
    config["modelServing"]["models"][0]["replicas"] = 2
    config["cluster"]["gpuNodeGroups"][0]["maxSize"] = 3
    assert not [w for w in settings_from(config).warnings if w.startswith("modelServing.models[0].replicas")]


def test_the_spot_service_linked_role_is_created_only_when_missing(stack_plans, monkeypatch):
    """Without it EC2 refuses API Spot requests and Karpenter quietly launches On-Demand
    (pkg/providers/instance/instance.go). Dev asks for Spot on a fresh (fake) account: the stack
    creates it, and keeps it on destroy (the account's role, not the stack's). Prod asks for no
    Spot; an account that has the role gets nothing."""
    (role,) = stack_plans["dev"].of_type("aws:iam/serviceLinkedRole:ServiceLinkedRole")
    assert role.inputs["awsServiceName"] == "spot.amazonaws.com" and role.retain_on_delete
    pool = stack_plans["dev"].one(NODE_POOL)
    assert stack_plans["dev"].waits_for(pool, role)
    assert stack_plans["prod"].of_type("aws:iam/serviceLinkedRole:ServiceLinkedRole") == []

    from tools.engine import run_stack
    from tools.fake_cloud import FakeCloud

    fresh = FakeCloud.call

    def account_with_the_role(self, args):
        if args.token == "aws:iam/getRoles:getRoles":
            return {"arns": [f"arn:aws:iam::{ACCOUNT_ID}:role/aws-service-role/spot.amazonaws.com/"
                             "AWSServiceRoleForEC2Spot"], "names": ["AWSServiceRoleForEC2Spot"],
                    "id": "x"}
        return fresh(self, args)

    monkeypatch.setattr(FakeCloud, "call", account_with_the_role)
    assert run_stack(ROOT, "dev").of_type("aws:iam/serviceLinkedRole:ServiceLinkedRole") == []
