"""Cluster alone: control plane, access, add-on order, node groups, autoscaler, device plugin."""

from __future__ import annotations

import json

import pytest

from components import iam
from components.cluster import Cluster, kubeconfig
from components.cluster_autoscaler import autoscaler_values
from components.network import Network
from components.node_group import (
    GPU_TAINT,
    autoscaler_node_template_tags,
    data_volume_device,
    gpu_labels,
)
from components.nvidia_device_plugin import device_plugin_values
from components.settings.kubernetes_version import supported_versions
from components.versions import (
    CLUSTER_AUTOSCALER_CHART_READS,
    CLUSTER_AUTOSCALER_IMAGE_READS,
    CLUSTER_AUTOSCALER_RELEASES,
)
from tests.conftest import base_config, record, settings_from
from tools.engine import Plan

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ADDON = "aws:eks/addon:Addon"
RELEASE = "kubernetes:helm.sh/v3:Release"


def _managed(config: dict) -> dict:
    """This module tests the managed engine (EKS node groups and the Cluster Autoscaler);
    tests/test_karpenter.py tests the default one."""
    for group in config["cluster"]["gpuNodeGroups"]:
        group.setdefault("engine", "managed")
    return config


def _cluster_plan(config) -> Plan:
    settings = settings_from(_managed(config))

    def program():
        network = Network("network", settings.network, cluster_name="anythingllm-test",
                          region=settings.region, tags={})
        Cluster("cluster", settings.cluster, cluster_name="anythingllm-test", network=network,
                region=settings.region, deletion_protection=settings.deletion_protection,
                destroyable=not settings.is_prod, tags={"stack": "test"})

    return record(program, config=config)


@pytest.fixture(scope="module")
def plan() -> Plan:
    config = base_config()
    config["cluster"]["gpuNodeGroups"].append({
        "name": "rocket", "instanceTypes": ["g6e.xlarge"], "amiType": "BOTTLEROCKET_x86_64_NVIDIA",
        "capacityType": "SPOT", "minSize": 0, "desiredSize": 0, "maxSize": 1, "diskSizeGib": 150,
    })
    return _cluster_plan(config)


def test_control_plane_properties(plan):
    cluster = plan.one("aws:eks/cluster:Cluster")
    inputs = cluster.inputs
    assert inputs["name"] == "anythingllm-test"
    assert inputs["version"] == "1.35"
    assert inputs["accessConfig"] == {"authenticationMode": "API",
                                      "bootstrapClusterCreatorAdminPermissions": False}
    assert inputs["bootstrapSelfManagedAddons"] is False
    assert inputs["vpcConfig"]["endpointPrivateAccess"] is True
    assert inputs["vpcConfig"]["endpointPublicAccess"] is True
    assert inputs["vpcConfig"]["publicAccessCidrs"] == ["198.51.100.0/24"]
    assert inputs["encryptionConfig"]["resources"] == ["secrets"]
    key = plan.one("aws:kms/key:Key")
    assert cluster.property_dependencies["encryptionConfig"] == [key.urn]
    assert key.inputs["enableKeyRotation"] is True
    assert inputs["enabledClusterLogTypes"] == [
        "api", "audit", "authenticator", "controllerManager", "scheduler"]
    assert inputs["kubernetesNetworkConfig"]["serviceIpv4Cidr"] == "172.20.0.0/16"
    assert inputs["upgradePolicy"] == {"supportType": "STANDARD"}
    assert inputs["deletionProtection"] is False
    # The control plane ENIs go into the private subnets only.
    private = {s.urn for s in plan.of_type("aws:ec2/subnet:Subnet") if "private" in s.name}
    assert set(cluster.property_dependencies["vpcConfig"]) >= private
    log_group = plan.one("aws:cloudwatch/logGroup:LogGroup", "cluster-control-plane")
    assert log_group.inputs["name"] == "/aws/eks/anythingllm-test/cluster"
    assert plan.waits_for(cluster, log_group)


def test_private_only_endpoint_when_no_public_cidrs():
    config = base_config()
    config["cluster"]["publicAccessCidrs"] = []
    vpc_config = _cluster_plan(config).one("aws:eks/cluster:Cluster").inputs["vpcConfig"]
    assert vpc_config["endpointPublicAccess"] is False
    assert vpc_config.get("publicAccessCidrs") is None


def test_admin_roles_get_access_entries_with_cluster_admin_policy(plan):
    entry = plan.one("aws:eks/accessEntry:AccessEntry")
    assert entry.inputs["principalArn"] == "arn:aws:iam::111122223333:role/admin"
    association = plan.one("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert association.inputs["policyArn"] == (
        "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy")
    assert association.inputs["accessScope"] == {"type": "cluster"}
    provider = plan.one("pulumi:providers:kubernetes")
    assert plan.waits_for(provider, association)
    # Access entries propagate asynchronously: the provider (and so every Kubernetes call) waits
    # 30 s after the last association, and again when the admins change.
    sleep = plan.one("time:index/sleep:Sleep")
    assert sleep.inputs["createDuration"] == "30s"
    assert sleep.inputs["triggers"]["admins"] == "arn:aws:iam::111122223333:role/admin"
    assert sleep.property_dependencies["triggers"] == [plan.one("aws:eks/cluster:Cluster").urn]
    assert association.urn in sleep.dependencies and sleep.urn in provider.dependencies
    for resource in plan.resources:
        if resource.type.startswith("kubernetes:"):
            assert plan.waits_for(resource, sleep), resource.name


def test_addons_are_explicit_and_ordered_around_the_nodes(plan):
    addons = {a.inputs["addonName"]: a for a in plan.of_type(ADDON)}
    assert set(addons) == {"vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent", "metrics-server"}
    for addon in addons.values():
        assert addon.inputs["resolveConflictsOnCreate"] == "OVERWRITE"
    cni = addons["vpc-cni"]
    assert json.loads(cni.inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}
    assert cni.inputs["podIdentityAssociations"][0]["serviceAccount"] == "aws-node"
    assert plan.waits_for(cni, addons["eks-pod-identity-agent"])
    for group in plan.of_type(NODE_GROUP):
        for name in ("vpc-cni", "kube-proxy", "eks-pod-identity-agent"):
            assert plan.waits_for(group, addons[name]), (group.name, name)
    # DNS and metrics run on the system group: a GPU shortage must not hold them back.
    groups = {g.name: g for g in plan.of_type(NODE_GROUP)}
    for name in ("coredns", "metrics-server"):
        assert plan.waits_for(addons[name], groups["cluster-system"])
        for gpu_group in ("cluster-gpu-inference", "cluster-gpu-rocket"):
            assert not plan.waits_for(addons[name], groups[gpu_group]), (name, gpu_group)


def test_vpc_cni_role_is_scoped_to_aws_node(plan):
    role = plan.one("aws:iam/role:Role", "cluster-vpc-cni")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    condition = trust["Statement"][0]["Condition"]["StringEquals"]
    assert condition["aws:RequestTag/kubernetes-service-account"] == "aws-node"
    assert condition["aws:RequestTag/kubernetes-namespace"] == "kube-system"
    attachment = plan.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                          "cluster-vpc-cni-AmazonEKS_CNI_Policy")
    assert attachment.inputs["policyArn"] == "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"
    node_policies = {a.inputs["policyArn"].rsplit("/", 1)[-1]
                     for a in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                     if a.name.startswith("cluster-nodes-")}
    assert node_policies == {"AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly"}


def test_gpu_node_groups_are_tainted_labelled_and_scale_from_zero(plan):
    groups = {g.name: g for g in plan.of_type(NODE_GROUP)}
    gpu = groups["cluster-gpu-inference"].inputs
    assert gpu["amiType"] == "AL2023_x86_64_NVIDIA"
    assert gpu["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
    assert gpu["labels"]["nvidia.com/gpu.present"] == "true"
    assert gpu["labels"]["anythingllm.io/gpu-node-group"] == "inference"
    assert gpu["scalingConfig"] == {"minSize": 0, "desiredSize": 0, "maxSize": 2}
    assert gpu["capacityType"] == "ON_DEMAND"
    rocket = groups["cluster-gpu-rocket"].inputs
    assert (rocket["amiType"], rocket["capacityType"]) == ("BOTTLEROCKET_x86_64_NVIDIA", "SPOT")
    assert groups["cluster-gpu-inference"].ignore_changes == ["scalingConfig.desiredSize"]
    system = groups["cluster-system"].inputs
    assert system["taints"] == [] and system["capacityType"] == "ON_DEMAND"
    assert "nvidia.com/gpu.present" not in system["labels"]


def test_node_groups_launch_only_into_private_subnets(plan):
    private = {s.urn for s in plan.of_type("aws:ec2/subnet:Subnet") if "private" in s.name}
    public = {s.urn for s in plan.of_type("aws:ec2/subnet:Subnet") if "public" in s.name}
    for group in plan.of_type(NODE_GROUP):
        subnet_deps = set(group.property_dependencies["subnetIds"])
        assert subnet_deps == private and not subnet_deps & public


def test_launch_templates_encrypt_disks_and_block_pod_imds(plan):
    templates = {t.name: t.inputs for t in plan.of_type("aws:ec2/launchTemplate:LaunchTemplate")}
    # Bottlerocket: its OS volume stated as gp3 and encrypted (the AMI's own mapping is gp2),
    # images on the data volume.
    os_volume, rocket = templates["cluster-gpu-rocket"]["blockDeviceMappings"]
    assert os_volume == {"deviceName": "/dev/xvda", "ebs": {
        "volumeSize": 4, "volumeType": "gp3", "encrypted": "true", "deleteOnTermination": "true"}}
    assert rocket["deviceName"] == "/dev/xvdb"
    assert rocket["ebs"] == {"volumeSize": 150, "volumeType": "gp3", "encrypted": "true",
                             "deleteOnTermination": "true", "iops": 6000, "throughput": 500}
    assert templates["cluster-gpu-inference"]["blockDeviceMappings"][0]["deviceName"] == "/dev/xvda"
    assert templates["cluster-gpu-inference"]["blockDeviceMappings"][0]["ebs"]["volumeSize"] == 200
    for template in templates.values():
        assert template["metadataOptions"] == {
            "httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1}


def test_asg_tags_describe_empty_gpu_groups_to_the_autoscaler(plan):
    tags = {t.inputs["tag"]["key"]: t.inputs["tag"]["value"]
            for t in plan.of_type("aws:autoscaling/tag:Tag") if "inference" in t.name}
    assert tags == {
        "k8s.io/cluster-autoscaler/node-template/label/nvidia.com/gpu.present": "true",
        "k8s.io/cluster-autoscaler/node-template/label/k8s.amazonaws.com/accelerator": "nvidia-a10g",
        "k8s.io/cluster-autoscaler/node-template/label/anythingllm.io/node-group": "inference",
        "k8s.io/cluster-autoscaler/node-template/label/anythingllm.io/gpu-node-group": "inference",
        "k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu": "true:NoSchedule",
    }


def test_device_plugin_only_for_al2023_groups_and_after_nodes(plan):
    release = plan.one(RELEASE, "cluster-nvidia-device-plugin")
    assert release.inputs["chart"] == "nvidia-device-plugin"
    assert release.inputs["version"] == "0.18.2"
    terms = release.inputs["values"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == ["inference"]  # not the Bottlerocket group
    # A DaemonSet: it needs the cluster and its system nodes, never a GPU group that may be at 0.
    groups = {g.name: g for g in plan.of_type(NODE_GROUP)}
    assert plan.waits_for(release, groups["cluster-system"])
    assert not plan.waits_for(release, groups["cluster-gpu-inference"])
    assert plan.waits_for(release, plan.one("aws:eks/cluster:Cluster"))


def test_no_device_plugin_when_all_gpu_groups_are_bottlerocket():
    config = base_config()
    config["cluster"]["gpuNodeGroups"][0]["amiType"] = "BOTTLEROCKET_x86_64_NVIDIA"
    plan = _cluster_plan(config)
    assert [r.name for r in plan.of_type(RELEASE)] == ["cluster-autoscaler"]


def test_autoscaler_uses_pod_identity_and_least_privilege(plan):
    release = plan.one(RELEASE, "cluster-autoscaler")
    values = release.inputs["values"]
    assert values["autoDiscovery"] == {"clusterName": "anythingllm-test"}
    assert values["awsRegion"] == "eu-west-1"
    assert values["image"]["tag"] == "v1.35.2"
    assert release.inputs["version"] == CLUSTER_AUTOSCALER_RELEASES["1.35"].chart.version
    # It runs on the system nodes and must not wait for any GPU group (it is what grows them).
    groups = {g.name: g for g in plan.of_type(NODE_GROUP)}
    assert plan.waits_for(release, groups["cluster-system"])
    assert not any(plan.waits_for(release, groups[g])
                   for g in ("cluster-gpu-inference", "cluster-gpu-rocket"))
    association = plan.one("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == (
        "kube-system", "cluster-autoscaler")
    assert plan.waits_for(release, association)
    policy = json.loads(plan.one("aws:iam/rolePolicy:RolePolicy", "cluster-autoscaler").inputs["policy"])
    for statement in policy["Statement"]:
        assert "*" not in statement["Action"]
        if any(not a.startswith(("autoscaling:Describe", "ec2:Describe", "ec2:Get"))
               for a in statement["Action"]):
            assert statement["Resource"] != "*" or "Condition" in statement


def test_kubernetes_provider_kubeconfig_is_secret(plan):
    provider = plan.one("pulumi:providers:kubernetes")
    assert provider.secret_paths == ["kubeconfig"]
    assert provider.inputs["kubeconfig"] == "[secret]"
    config = json.loads(provider.raw_inputs["kubeconfig"])
    assert config["users"][0]["user"]["exec"]["args"] == [
        "eks", "get-token", "--cluster-name", "anythingllm-test", "--region", "eu-west-1"]
    assert provider.raw_inputs["deleteUnreachable"] == "true"


# ---------------------------------------------------------------- pure functions


def test_autoscaler_policy_scopes_mutations_to_owned_groups():
    policy = iam.cluster_autoscaler_policy(cluster_name="c1", partition="aws",
                                           region="us-east-1", account_id="123456789012")
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["ScaleOwnNodeGroupsOnly"]["Condition"] == {
        "StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/c1": "owned"}}
    assert by_sid["ReadOwnNodeGroups"]["Resource"] == (
        "arn:aws:eks:us-east-1:123456789012:nodegroup/c1/*")
    assert set(by_sid["ScaleOwnNodeGroupsOnly"]["Action"]) == {
        "autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"}


def test_node_template_tags_and_devices():
    group = settings_from(base_config()).cluster.gpu_node_groups[0]
    tags = autoscaler_node_template_tags(gpu_labels(group), [GPU_TAINT])
    assert tags["k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu"] == (
        "true:NoSchedule")
    assert data_volume_device("BOTTLEROCKET_x86_64_NVIDIA") == "/dev/xvdb"
    assert data_volume_device("AL2023_x86_64_NVIDIA") == "/dev/xvda"


def test_helm_values_pin_versions_and_tolerations():
    assert autoscaler_values(cluster_name="c", region="r", kubernetes_version="1.34")[
        "image"]["tag"] == "v1.34.5"
    tolerations = device_plugin_values(["a"])["tolerations"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in tolerations


def test_kubeconfig_uses_exec_auth_not_static_tokens():
    config = json.loads(kubeconfig("c", "https://x", "Q0E=", "us-east-1"))
    assert config["clusters"][0]["cluster"] == {"server": "https://x",
                                                "certificate-authority-data": "Q0E="}
    assert "token" not in config["users"][0]["user"]


# ---------------------------------------------------------------- autoscaler pins (upstream)


def _minor(version: str) -> str:
    return ".".join(version.removeprefix("v").split(".")[:2])


@pytest.mark.parametrize("kubernetes_version", supported_versions())
def test_autoscaler_chart_image_and_cluster_minors_agree(kubernetes_version):
    """kubernetes/autoscaler's version policy: the autoscaler of minor X for Kubernetes X. The
    chart's appVersion (its Chart.yaml at cluster-autoscaler-chart-<v>) and the image we set
    must both be the cluster's minor, for every version the settings accept; where no chart of
    the minor is released yet (1.36), the previous minor's chart with its reason."""
    release = CLUSTER_AUTOSCALER_RELEASES[kubernetes_version]
    assert _minor(release.image_tag) == kubernetes_version
    if _minor(release.chart_app_version) != kubernetes_version:
        # Only the previous minor's chart, and only with the reason recorded (its RBAC is checked
        # against the image's reads below).
        assert int(release.chart_app_version.split(".")[1]) == int(kubernetes_version.split(".")[1]) - 1
        assert release.chart_behind_because
    else:
        assert not release.chart_behind_because
    values = autoscaler_values(cluster_name="c", region="r", kubernetes_version=kubernetes_version)
    assert values["image"]["tag"] == release.image_tag


@pytest.mark.parametrize("kubernetes_version", supported_versions())
def test_autoscaler_chart_rbac_covers_what_its_image_reads(kubernetes_version):
    """The image blocks until every informer it starts has synced (main.go WaitForCacheSync), and
    /health-check answers 200 meanwhile: a list the chart's ClusterRole does not grant means an
    autoscaler that never scales. Chart rules: templates/clusterrole.yaml at the pinned chart tag;
    image reads: listers.go and, from 1.35, the DRA provider (versions.py)."""
    release = CLUSTER_AUTOSCALER_RELEASES[kubernetes_version]
    granted = CLUSTER_AUTOSCALER_CHART_READS[release.chart.version]
    missing = CLUSTER_AUTOSCALER_IMAGE_READS[kubernetes_version] - granted
    assert not missing, f"chart {release.chart.version} does not grant {sorted(missing)}"


def test_the_chart_pinned_before_could_not_run_the_1_35_autoscaler():
    """The defect this table exists for: chart 9.52.1 has no resource.k8s.io rule, and CA 1.35
    cannot turn DRA off (config/flags/flags.go at cluster-autoscaler-1.35.2)."""
    missing = CLUSTER_AUTOSCALER_IMAGE_READS["1.35"] - CLUSTER_AUTOSCALER_CHART_READS["9.52.1"]
    assert missing == {("resource.k8s.io", "resourceclaims"), ("resource.k8s.io", "resourceslices"),
                       ("resource.k8s.io", "deviceclasses")}


def test_gpu_nodes_carry_the_autoscaler_gpu_label(plan):
    """aws_cloud_provider.go GPULabel (cluster-autoscaler-1.35.2): on the node (the kubelet sets
    it at registration) and on the ASG's node template, for every GPU group, never the system."""
    groups = {g.name: g for g in plan.of_type(NODE_GROUP)}
    assert groups["cluster-gpu-inference"].inputs["labels"]["k8s.amazonaws.com/accelerator"] == "nvidia-a10g"
    assert groups["cluster-gpu-rocket"].inputs["labels"]["k8s.amazonaws.com/accelerator"] == "nvidia-l40s"
    assert "k8s.amazonaws.com/accelerator" not in groups["cluster-system"].inputs["labels"]
    template_keys = {t.inputs["tag"]["key"]: t.inputs["tag"]["value"]
                     for t in plan.of_type("aws:autoscaling/tag:Tag") if "rocket" in t.name}
    assert template_keys[
        "k8s.io/cluster-autoscaler/node-template/label/k8s.amazonaws.com/accelerator"] == "nvidia-l40s"


def test_model_capacity_waits_only_for_its_own_group():
    """What a model server waits for (Cluster.gpu_ready): its group, DNS, the device plugin for
    AL2023 (Bottlerocket ships its own), and the autoscaler only when the group starts at zero."""
    config = base_config()
    config["cluster"]["gpuNodeGroups"].append({
        "name": "rocket", "instanceTypes": ["g6e.xlarge"], "amiType": "BOTTLEROCKET_x86_64_NVIDIA",
        "capacityType": "ON_DEMAND", "minSize": 1, "desiredSize": 1, "maxSize": 2,
    })
    settings = settings_from(_managed(config))
    captured = {}

    def program():
        network = Network("network", settings.network, cluster_name="anythingllm-test",
                          region=settings.region, tags={})
        cluster = Cluster("cluster", settings.cluster, cluster_name="anythingllm-test",
                          network=network, region=settings.region, deletion_protection=False,
                          destroyable=True, tags={})
        captured["ready"] = {group: [r._name for r in resources]
                             for group, resources in cluster.gpu_ready.items()}

    record(program, config=config)
    assert sorted(captured["ready"]["inference"]) == sorted([
        "cluster-gpu-inference", "cluster-system", "cluster-coredns",
        "cluster-nvidia-device-plugin", "cluster-autoscaler"])
    assert sorted(captured["ready"]["rocket"]) == sorted([
        "cluster-gpu-rocket", "cluster-system", "cluster-coredns"])
