"""Settings: good configs load; every bad input fails naming the key path and the reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from components.settings import SettingsError
from tests.conftest import ROOT, STACKS, base_config, expect_settings_error, settings_from
from tools.engine import read_stack_config


def _gpu(config: dict[str, Any]) -> dict[str, Any]:
    return config["cluster"]["gpuNodeGroups"][0]


def _set(path: list, value: Any) -> Callable[[dict], None]:
    def mutate(config: dict) -> None:
        target = config
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return mutate


def _prod(mutate: Callable[[dict], None] | None = None) -> Callable[[dict], None]:
    def inner(config: dict) -> None:
        config["environment"] = "prod"
        if mutate:
            mutate(config)
    return inner


# (id, mutation, key path expected in the message, words expected in the message)
BAD_INPUTS = [
    ("cpu-type-in-gpu-group", _set(["cluster", "gpuNodeGroups", 0, "instanceTypes"], ["m5.large"]),
     "cluster.gpuNodeGroups[0].instanceTypes[0]", "'m5.large' is not an NVIDIA GPU instance type"),
    ("unknown-gpu-size", _set(["cluster", "gpuNodeGroups", 0, "instanceTypes"], ["g5.huge"]),
     "cluster.gpuNodeGroups[0].instanceTypes[0]", "sizes of g5"),
    ("mixed-gpu-counts", _set(["cluster", "gpuNodeGroups", 0, "instanceTypes"],
                              ["g5.xlarge", "g5.12xlarge"]),
     "cluster.gpuNodeGroups[0].instanceTypes", "mix GPU counts [1, 4]"),
    ("desired-above-max", _set(["cluster", "gpuNodeGroups", 0, "desiredSize"], 5),
     "cluster.gpuNodeGroups[0].desiredSize", "minSize <= desiredSize <= maxSize"),
    ("min-above-desired", lambda c: _gpu(c).update(minSize=2, desiredSize=1, maxSize=3),
     "cluster.gpuNodeGroups[0].desiredSize", "got 2 <= 1 <= 3"),
    ("negative-min", _set(["cluster", "gpuNodeGroups", 0, "minSize"], -1),
     "cluster.gpuNodeGroups[0].minSize", "greater than or equal to 0"),
    ("small-gpu-disk", _set(["cluster", "gpuNodeGroups", 0, "diskSizeGib"], 50),
     "cluster.gpuNodeGroups[0].diskSizeGib", "greater than or equal to 100"),
    ("al2-gpu-ami", _set(["cluster", "gpuNodeGroups", 0, "amiType"], "AL2_x86_64_GPU"),
     "cluster.gpuNodeGroups[0].amiType", "'AL2023_x86_64_NVIDIA' or 'BOTTLEROCKET_x86_64_NVIDIA'"),
    ("bad-capacity-type", _set(["cluster", "gpuNodeGroups", 0, "capacityType"], "spot"),
     "cluster.gpuNodeGroups[0].capacityType", "'ON_DEMAND' or 'SPOT'"),
    ("bad-group-name", _set(["cluster", "gpuNodeGroups", 0, "name"], "GPU_Group"),
     "cluster.gpuNodeGroups[0].name", "'GPU_Group' is not allowed"),
    ("duplicate-group-name",
     lambda c: c["cluster"]["gpuNodeGroups"].append(dict(_gpu(c))),
     "cluster.gpuNodeGroups[1].name", "'inference' is used twice"),
    ("gpu-type-in-system-group",
     _set(["cluster", "systemNodeGroup"], {"instanceTypes": ["g5.xlarge"]}),
     "cluster.systemNodeGroup.instanceTypes[0]", "is a GPU type"),
    ("typo-in-key", _set(["cluster", "gpuNodeGroups", 0, "instanceType"], "g5.xlarge"),
     "cluster.gpuNodeGroups[0].instanceType", "unknown key"),
    ("unknown-top-level-key", _set(["clustr"], {}), "clustr", "unknown key"),
    ("missing-admins", lambda c: c["cluster"].pop("adminRoleArns"),
     "cluster.adminRoleArns", "required key is missing"),
    ("bad-admin-arn", _set(["cluster", "adminRoleArns"], ["arn:aws:iam::123:user/bob"]),
     "cluster.adminRoleArns[0]", "is not an IAM role ARN"),
    ("version-as-float", _set(["cluster", "kubernetesVersion"], 1.3),
     "cluster.kubernetesVersion", "quote it"),
    ("vpc-cidr-invalid", _set(["network", "vpcCidr"], "10.10.0.0/33"),
     "network.vpcCidr", "is not a valid IPv4 CIDR"),
    ("vpc-cidr-host-bits", _set(["network", "vpcCidr"], "10.10.1.0/16"),
     "network.vpcCidr", "is not a valid IPv4 CIDR"),
    ("vpc-too-small", _set(["network", "vpcCidr"], "10.10.0.0/24"),
     "network.vpcCidr", "allowed /16 to /20"),
    ("vpc-public-space", _set(["network", "vpcCidr"], "8.8.0.0/16"),
     "network.vpcCidr", "RFC 1918"),
    ("one-az", _set(["network", "availabilityZones"], ["eu-west-1a"]),
     "network.availabilityZones", "allowed 2 or 3"),
    ("az-of-other-region", _set(["network", "availabilityZones"], ["eu-west-1a", "us-east-1b"]),
     "network.availabilityZones[1]", "is not a zone of region 'eu-west-1'"),
    ("duplicate-az", _set(["network", "availabilityZones"], ["eu-west-1a", "eu-west-1a"]),
     "network.availabilityZones", "lists a zone twice"),
    ("overlapping-subnets",
     _set(["network", "privateSubnetCidrs"], ["10.10.0.0/18", "10.10.32.0/19", "10.10.128.0/18"]),
     "network.privateSubnetCidrs[1]", "overlaps privateSubnetCidrs[0]"),
    ("subnet-outside-vpc",
     _set(["network", "publicSubnetCidrs"], ["10.10.192.0/20", "10.10.208.0/20", "10.99.0.0/20"]),
     "network.publicSubnetCidrs[2]", "is outside vpcCidr"),
    ("wrong-subnet-count", _set(["network", "publicSubnetCidrs"], ["10.10.192.0/20"]),
     "network.publicSubnetCidrs", "needs one per availability zone (3)"),
    ("service-cidr-overlaps-vpc", _set(["cluster", "serviceIpv4Cidr"], "10.10.0.0/20"),
     "cluster.serviceIpv4Cidr", "overlaps network.vpcCidr"),
    ("service-cidr-public", _set(["cluster", "serviceIpv4Cidr"], "100.64.0.0/16"),
     "cluster.serviceIpv4Cidr", "must be inside 10.0.0.0/8"),
    ("bad-public-cidr", _set(["cluster", "publicAccessCidrs"], ["203.0.113.7/24"]),
     "cluster.publicAccessCidrs[0]", "is not a valid IPv4 CIDR"),
    ("bad-log-retention", _set(["cluster", "logRetentionDays"], 10),
     "cluster.logRetentionDays", "is not a CloudWatch retention"),
    ("bad-log-type", _set(["cluster", "logTypes"], ["api", "kubelet"]),
     "cluster.logTypes[1]", "'api', 'audit'"),
    ("bad-nat-mode", _set(["network", "natGateways"], "none"),
     "network.natGateways", "'single' or 'perAz'"),
    ("bad-environment", _set(["environment"], "production"),
     "environment", "'dev', 'staging' or 'prod'"),
    ("bad-region", _set(["aws:region"], "Europe"), "aws:region", "is not an AWS region name"),
    ("existing-and-cidr", _set(["network", "existing"], {
        "vpcId": "vpc-0123456789abcdef0", "privateSubnetIds": ["subnet-0123456789abcdef0"]}),
     "network.vpcCidr", "cannot be combined with `existing`"),
    ("existing-bad-subnet-id",
     lambda c: c.update(network={"existing": {"vpcId": "vpc-0123456789abcdef0",
                                              "privateSubnetIds": ["sub-1"]}}),
     "network.existing.privateSubnetIds[0]", "is not a subnet id"),
    ("prod-single-nat", _prod(_set(["network", "natGateways"], "single")),
     "network.natGateways", "not allowed in prod"),
    ("prod-open-endpoint", _prod(_set(["cluster", "publicAccessCidrs"], ["0.0.0.0/0"])),
     "cluster.publicAccessCidrs", "'0.0.0.0/0' is not allowed in prod"),
    ("prod-no-deletion-protection", _prod(_set(["cluster", "deletionProtection"], False)),
     "cluster.deletionProtection", "cannot be false in prod"),
    ("prod-one-system-node", _prod(_set(["cluster", "systemNodeGroup"], {
        "minSize": 1, "desiredSize": 1, "maxSize": 2})),
     "cluster.systemNodeGroup.minSize", "below 2"),
    ("prod-one-existing-subnet", _prod(lambda c: c.update(network={"existing": {
        "vpcId": "vpc-0123456789abcdef0", "privateSubnetIds": ["subnet-0123456789abcdef0"]}})),
     "network.existing.privateSubnetIds", "at least 2 availability zones"),
    ("staging-deletion-protection",
     lambda c: (c.update(environment="staging"), c["cluster"].update(deletionProtection=True)),
     "cluster.deletionProtection", "cannot be true for staging"),
    ("aws-tag-prefix", _set(["tags"], {"aws:owner": "x"}), "tags['aws:owner']", "must not start"),
    ("unsupported-version", _set(["cluster", "kubernetesVersion"], "1.29"),
     "cluster.kubernetesVersion", "extended support, at 6 times the hourly price, until 2026-03-23"),
    ("future-version", _set(["cluster", "kubernetesVersion"], "1.40"),
     "cluster.kubernetesVersion", "is not on EKS's calendar"),
]


@pytest.mark.parametrize(("mutate", "path", "reason"),
                         [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_names_key_and_reason(mutate, path, reason):
    config = base_config()
    mutate(config)
    expect_settings_error(config, path, reason)


def test_there_are_at_least_twenty_distinct_bad_inputs():
    assert len({case[0] for case in BAD_INPUTS}) >= 20


def test_all_problems_are_reported_together():
    config = base_config()
    _gpu(config)["capacityType"] = "spot"
    config["cluster"]["logRetentionDays"] = 10
    with pytest.raises(SettingsError) as caught:
        settings_from(config)
    assert "capacityType" in str(caught.value) and "logRetentionDays" in str(caught.value)


def test_error_names_the_stack_file():
    config = base_config()
    config["environment"] = "qa"
    with pytest.raises(SettingsError, match=r"invalid configuration in Pulumi\.mystack\.yaml"):
        settings_from(config, stack="mystack")


def test_valid_config_loads_with_defaults():
    settings = settings_from(base_config())
    assert settings.cluster.system_node_group.instance_types == ["m6i.large"]
    assert settings.cluster.system_node_group.min_size == 2
    group = settings.cluster.gpu_node_groups[0]
    assert (group.ami_type, group.capacity_type, group.disk_size_gib) == (
        "AL2023_x86_64_NVIDIA", "ON_DEMAND", 200)
    assert group.gpus_per_node == 1
    assert settings.cluster.support_type == "STANDARD"
    assert settings.cluster.log_types == [
        "api", "audit", "authenticator", "controllerManager", "scheduler"]
    assert settings.deletion_protection is False


def test_deletion_protection_defaults_on_in_prod():
    assert settings_from(base_config("prod")).deletion_protection is True


def test_default_subnet_plan_is_disjoint_and_inside_the_vpc():
    network = settings_from(base_config()).network
    assert network.private_cidrs == ["10.10.0.0/18", "10.10.64.0/18", "10.10.128.0/18"]
    assert network.public_cidrs == ["10.10.192.0/20", "10.10.208.0/20", "10.10.224.0/20"]


def test_existing_vpc_is_accepted_without_cidrs():
    config = base_config("prod")
    config["network"] = {"existing": {
        "vpcId": "vpc-0123456789abcdef0",
        "privateSubnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
        "publicSubnetIds": ["subnet-0123456789abcdef2"],
    }}
    settings = settings_from(config)
    assert settings.network.existing is not None
    assert settings.network.zone_count == 2


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_is_valid(stack):
    raw = {key.removeprefix("anythingllm:"): value
           for key, value in read_stack_config(ROOT, stack).items()}
    settings = settings_from(raw, stack=stack)
    assert settings.environment in {"dev", "staging", "prod"}


def test_a_miscased_project_namespace_is_refused_at_run_time():
    """What the Pulumi CLI hands the program for `anythingLLM:app`: another namespace, which the
    program would never read. The program refuses it, naming the key."""
    from components.settings import SettingsError
    from components.settings.loading import read_raw_config
    from tools.engine import run

    with pytest.raises(SettingsError, match="anythingLLM:app: the namespace is 'anythingllm'"):
        run(read_raw_config, project="anythingllm", stack="t",
            config={"aws:region": "us-east-1", "anythingLLM:app": {"replicas": 3}})


@pytest.mark.parametrize("value, reason", [
    ("ml,platform", "contains a comma"),
    ("x" * 257, "at most 256"),
    ("café#1", "at most 256 letters"),
])
def test_tag_values_every_consumer_accepts(value, reason):
    config = base_config()
    config["tags"] = {"team": value}
    expect_settings_error(config, "tags['team']", reason)
