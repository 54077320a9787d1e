"""Configuration that AWS, EKS or a controller would refuse fails before any resource exists:
every problem in one run, the root cause first, each naming the key as the user writes it.

Expectations come from the tables the checks read (components/instance_types.py,
components/settings/zones.py, components/versions.py), each with its upstream source, and from
the consumers named in each case.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest

from components.instance_types import GPU_INSTANCE_TYPES, INSTANCE_FACTS, max_pods, pod_room
from components.rds_ca import vendored_regions
from components.settings import SettingsError
from components.settings.kubernetes_version import (
    WARN_BEFORE_DAYS,
    supported_versions,
    version_problem,
    version_warnings,
)
from components.settings.loading import aws_provider_keys, parse_settings, unread_key_problems
from components.settings.zones import REGION_ZONES, account_zone_problems
from components.versions import EKS_VERSIONS
from tests.conftest import (
    ROOT,
    STACKS,
    TODAY,
    base_config,
    expect_settings_error,
    settings_from,
)
from tools.engine import read_stack_config


def problems_of(config: dict) -> list[str]:
    """The problem lines of the report for `config` (it must be invalid)."""
    with pytest.raises(SettingsError) as caught:
        settings_from(config)
    return [line[4:] for line in str(caught.value).splitlines()[1:]]


# --------------------------------------------------------------------------------------- ARNs

UUID = "00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize("key, arn", [
    ("adminRoleArns", "arn:aws:iam::1111:role/admin"),                       # short account
    ("adminRoleArns", "arn:aws:iam::111122223333:user/admin"),               # a user
    ("adminRoleArns", "arn:aws:iam::111122223333:role/" + "r" * 65),        # name > 64
    ("adminRoleArns", "arn:aws:iam::111122223333:role/"),                    # no name
    ("certificateArn", f"arn:aws:acm:eu-west-1x:111122223333:certificate/{UUID}"),
    ("certificateArn", "arn:aws:acm:eu-west-1:111122223333:certificate/not-a-uuid-at-all-0000000000000000"),
    ("certificateArn", f"arn:aws:acm::111122223333:certificate/{UUID}"),
    ("wafAclArn", f"arn:aws:wafv2:eu-west-1:111122223333:global/webacl/chat/{UUID}"),
    ("wafAclArn", "arn:aws:wafv2:eu-west-1:111122223333:regional/webacl/chat/"),
    ("wafAclArn", "arn:aws:waf::111122223333:webacl/00000000-0000-4000-8000-000000000001"),
])
def test_malformed_arns_are_refused_by_key(key, arn):
    config = base_config()
    if key == "adminRoleArns":
        config["cluster"]["adminRoleArns"] = [arn]
        path = "cluster.adminRoleArns[0]"
    else:
        config["ingress"][key] = arn
        path = f"ingress.{key}"
    expect_settings_error(config, path, "is not a")


def test_waf_acl_none_takes_an_acl_off_but_not_in_prod_when_internet_facing():
    """`none` is the controller's own value for "no web ACL" (model_build_load_balancer_addons.go
    at v3.5.0, wafv2ACLARNNone); prod's internet-facing ALB still needs a real one."""
    config = base_config()
    config["ingress"]["wafAclArn"] = "none"
    assert settings_from(config).ingress.waf_acl_arn == "none"
    prod = base_config("prod")
    prod["ingress"]["wafAclArn"] = "none"
    expect_settings_error(prod, "ingress.wafAclArn", "is required in prod")


def test_a_cidr_listed_twice_is_refused():
    """Each inbound CIDR is a rule of the ALB's security group named after it (ingress.py)."""
    config = base_config()
    config["ingress"]["inboundCidrs"] = ["203.0.113.7", "198.51.100.0/24", "203.0.113.7/32"]
    expect_settings_error(config, "ingress.inboundCidrs[2]", "'203.0.113.7/32' is listed twice")


def test_every_bad_role_arn_is_reported_at_once():
    config = base_config()
    config["cluster"]["adminRoleArns"] = ["arn:aws:iam::111122223333:role/ok", "x", "y"]
    assert [p.split(":")[0] for p in problems_of(config)] == [
        "cluster.adminRoleArns[1]", "cluster.adminRoleArns[2]"]


@pytest.mark.parametrize("region, arn_region, partition, reason", [
    ("eu-west-1", "us-east-1", "aws", "is in us-east-1, but the ALB is in eu-west-1 (aws:region)"),
    ("eu-west-1", "eu-central-1", "aws", "is in eu-central-1"),
    ("eu-west-1", "eu-west-1", "aws-cn", "is in partition 'aws-cn'"),
    ("eu-west-1", "eu-west-1", "aws-us-gov", "is in partition 'aws-us-gov'"),
])
@pytest.mark.parametrize("key", ["certificateArn", "wafAclArn"])
def test_certificate_and_web_acl_must_be_in_the_albs_region_and_partition(
        region, arn_region, partition, reason, key):
    config = base_config("prod")
    config["aws:region"] = region
    config["ingress"][key] = config["ingress"][key].replace(
        "arn:aws:", f"arn:{partition}:").replace(":eu-west-1:", f":{arn_region}:")
    expect_settings_error(config, f"ingress.{key}", reason)


def test_admin_roles_must_be_in_the_regions_partition():
    config = base_config()
    config["cluster"]["adminRoleArns"] = ["arn:aws-us-gov:iam::111122223333:role/a",
                                          "arn:aws-cn:iam::111122223333:role/path/b"]
    assert problems_of(config) == [
        "cluster.adminRoleArns[0]: is in partition 'aws-us-gov', but eu-west-1 (aws:region) is in 'aws'",
        "cluster.adminRoleArns[1]: is in partition 'aws-cn', but eu-west-1 (aws:region) is in 'aws'",
    ]


def test_role_arns_with_paths_are_valid():
    config = base_config()
    config["cluster"]["adminRoleArns"] = ["arn:aws:iam::111122223333:role/teams/platform/admin"]
    assert settings_from(config).cluster.admin_role_arns == config["cluster"]["adminRoleArns"]


# ----------------------------------------------------------------------------------- CIDRs

def test_every_bad_cidr_is_reported_and_good_ones_are_canonical():
    config = base_config()
    config["ingress"]["inboundCidrs"] = ["10.0.0.1/8", "203.0.113.7", "nonsense"]
    assert [p.split(":")[0] for p in problems_of(config)] == [
        "ingress.inboundCidrs[0]", "ingress.inboundCidrs[2]"]
    config["ingress"]["inboundCidrs"] = ["203.0.113.7", "198.51.100.0/24"]
    config["cluster"]["publicAccessCidrs"] = ["192.0.2.1"]
    settings = settings_from(config)
    assert settings.ingress.inbound_cidrs == ["203.0.113.7/32", "198.51.100.0/24"]
    assert settings.cluster.public_access_cidrs == ["192.0.2.1/32"]


# ------------------------------------------------------------------------- instance types

@pytest.mark.parametrize("instance_type",
                         ["m7g.large", "m6g.xlarge", "c7g.2xlarge", "t4g.large", "r7g.large"])
def test_graviton_types_are_refused_for_the_x86_system_amis(instance_type):
    assert INSTANCE_FACTS[instance_type].arch == "arm64"
    config = base_config()
    config["cluster"]["systemNodeGroup"] = {"instanceTypes": ["m6i.large", instance_type]}
    expect_settings_error(config, "cluster.systemNodeGroup.instanceTypes[1]",
                          "is a Graviton (arm64) type, but the system node group's AMI types")


@pytest.mark.parametrize("instance_type", ["m6i.2xlarge", "m7a.large", "c7i.xlarge", "r6i.large", "t3.large"])
def test_x86_types_of_the_table_are_valid_system_nodes(instance_type):
    config = base_config()
    config["cluster"]["systemNodeGroup"] = {"instanceTypes": [instance_type]}
    settings = settings_from(config)
    assert settings.cluster.system_node_group.instance_types == [instance_type]


@pytest.mark.parametrize("instance_type", ["m5a.large", "c5.xlarge", "t3a.large", "m7i-flex.large",
                                           "m6i.12xlarge", "r5.large"])
def test_x86_types_outside_the_table_are_accepted_with_a_warning(instance_type):
    """EKS takes them; only their pod room is unknown here, which the warning says."""
    config = base_config()
    config["cluster"]["systemNodeGroup"] = {"instanceTypes": ["m6i.large", instance_type]}
    warnings = [w for w in settings_from(config).warnings if w.startswith("cluster.")]
    assert [w.split(":")[0] for w in warnings] == ["cluster.systemNodeGroup.instanceTypes[1]"]
    assert "not checked against what it can allocate" in warnings[0]


@pytest.mark.parametrize("instance_type",
                         ["c7gn.large", "x2gd.large", "im4gn.large", "a1.large", "r8g.large"])
def test_graviton_types_outside_the_table_are_known_by_name(instance_type):
    """EC2's naming: a `g` right after the generation is a Graviton processor."""
    config = base_config()
    config["cluster"]["systemNodeGroup"] = {"instanceTypes": [instance_type]}
    expect_settings_error(config, "cluster.systemNodeGroup.instanceTypes[0]", "is a Graviton (arm64) type")


@pytest.mark.parametrize("instance_type", ["m7g.large", "c7g.xlarge", "m6i.large"])
def test_gpu_groups_take_only_nvidia_x86_types(instance_type):
    config = base_config()
    config["cluster"]["gpuNodeGroups"][0]["instanceTypes"] = [instance_type]
    reason = "the NVIDIA AMI types are x86_64" if INSTANCE_FACTS[instance_type].arch == "arm64" \
        else "is not an NVIDIA GPU instance type"
    expect_settings_error(config, "cluster.gpuNodeGroups[0].instanceTypes[0]", reason)


def test_the_instance_table_agrees_with_the_gpu_table():
    """One table of facts: every GPU type is in it, with the same GPU count, x86_64 (the NVIDIA
    AMIs' architecture)."""
    for instance_type, gpu in GPU_INSTANCE_TYPES.items():
        facts = INSTANCE_FACTS[instance_type]
        assert (facts.gpus, facts.arch) == (gpu.gpus, "x86_64"), instance_type


def test_pod_room_follows_the_eks_ami_formulas():
    """nodeadm config.go: kube-reserved CPU 6%/1%/0.5%/0.25% by core, memory 11 MiB x max pods +
    255 MiB, eviction at 100Mi; max pods = ENIs x (addresses - 1) + 2, capped at 110 below 30
    vCPUs (EKS user guide); then the DaemonSets: 350m/153Mi everywhere, dcgm-exporter's
    250m/128Mi more on the GPU types of its affinity list."""
    assert max_pods("m6i.large") == 3 * (10 - 1) + 2 == 29
    assert max_pods("p5.4xlarge") == 110  # the ENI formula gives 4 x 29 + 2 = 118
    # m6i.large: 2000m - (60 + 10) reserved - 350m DaemonSets; 8192 - (11*29+255) - 100 - 153
    assert pod_room("m6i.large") == (2000 - 70 - 350, 8192 - 574 - 100 - 153)
    # g5.xlarge: 4000 - (60+10+10) - 600; 16384 - (11*58+255) - 100 - 281
    assert pod_room("g5.xlarge") == (4000 - 80 - 600, 16384 - 893 - 100 - 281)
    # p5.4xlarge is not in dcgm-exporter's list: only the 350m/153Mi everywhere.
    assert pod_room("p5.4xlarge")[0] == 16000 - (60 + 10 + 10 + 12 * 1000 * 25 // 10000) - 350


def _resources(cpu: str, memory: str) -> dict:
    return {"cpu": cpu, "memory": memory, "cpuLimit": cpu, "memoryLimit": memory}


@pytest.mark.parametrize("where, key", [
    (lambda c, r: c["modelServing"]["models"][0].update(resources=r), "modelServing.models[0].resources"),
    (lambda c, r: c.setdefault("app", {}).update(resources=r), "app.resources"),
    (lambda c, r: c.setdefault("gateway", {}).update(resources=r), "gateway.resources"),
])
@pytest.mark.parametrize("cpu, memory, too_big", [
    ("8", "4Gi", "cpu 8"),
    ("1", "64Gi", "memory 64Gi"),
    ("16", "32Gi", "cpu 16 and memory 32Gi"),
])
def test_a_pod_larger_than_its_node_can_allocate_is_refused(where, key, cpu, memory, too_big):
    config = base_config()
    where(config, _resources(cpu, memory))
    expect_settings_error(config, key, f"requests {too_big}, but a ")


def test_a_pod_at_the_edge_of_its_node_is_accepted_and_one_more_is_not():
    """A model pod's compile-cache sidecar requests 100m and 128Mi for the pod's whole life
    (native sidecars count toward the pod's requests), so vLLM gets what is left."""
    cpu, memory = pod_room("g5.xlarge")
    cpu, memory = cpu - 100, memory - 128
    config = base_config()
    config["modelServing"]["models"][0]["resources"] = _resources(f"{cpu}m", f"{memory}Mi")
    settings_from(config)
    config["modelServing"]["models"][0]["resources"] = _resources(f"{cpu + 1}m", f"{memory}Mi")
    expect_settings_error(config, "modelServing.models[0].resources",
                          f"at most {cpu}m CPU and {memory}Mi beside the compile-cache sidecar")
    # A model that compiles for itself has no sidecar: the whole room is its own.
    config["modelServing"]["models"][0]["compileCache"] = "pod"
    settings_from(config)


def test_a_pod_must_fit_every_type_its_group_may_launch():
    config = base_config()
    config["cluster"]["gpuNodeGroups"][0]["instanceTypes"] = ["g6e.xlarge", "g5.xlarge"]
    config["modelServing"]["models"][0]["resources"] = _resources("2", "24Gi")  # fits g6e only
    expect_settings_error(config, "modelServing.models[0].resources", "a g5.xlarge node of "
                          "cluster.gpuNodeGroups[0]")


# ---------------------------------------------------------------------- availability zones

@pytest.mark.parametrize("region, zone", [
    ("eu-west-1", "eu-west-1d"), ("us-east-1", "us-east-1g"), ("ca-central-1", "ca-central-1e"),
    ("us-east-2", "us-east-2d"), ("eu-central-1", "eu-central-1d"),
])
def test_zones_that_do_not_exist_are_refused(region, zone):
    config = base_config()
    config["aws:region"] = region
    config["network"]["availabilityZones"] = [f"{region}a", zone]
    expect_settings_error(config, "network.availabilityZones[1]", f"{zone!r} does not exist")


@pytest.mark.parametrize("zones", [["eu-west-2a", "eu-west-2d"], ["us-east-1e", "us-east-1f"],
                                   ["us-west-2c", "us-west-2d"], ["ap-northeast-1a", "ap-northeast-1d"]])
def test_zones_that_exist_are_accepted(zones):
    config = base_config()
    config["aws:region"] = zones[0][:-1]
    config["network"]["availabilityZones"] = zones
    config["ingress"].pop("certificateArn", None)
    assert settings_from(config).network.availability_zones == zones


def test_a_zone_where_accounts_differ_says_so():
    config = base_config()
    config["aws:region"] = "us-west-1"
    config["network"]["availabilityZones"] = ["us-west-1a", "us-west-1d"]
    expect_settings_error(config, "network.availabilityZones[1]", "each account has two of us-west-1a/b/c")


def test_every_region_the_stack_accepts_has_its_zones():
    assert set(vendored_regions()) <= set(REGION_ZONES)


# -------------------------------------------------------------------- keys nothing reads

@pytest.mark.parametrize("key, reason", [
    ("anythingLLM:app", "the namespace is 'anythingllm' (lowercase)"),
    ("AnythingLLM:cluster", "the namespace is 'anythingllm' (lowercase)"),
    ("aws:regoin", "the AWS provider has no such setting"),
    ("aws:Region", "the AWS provider has no such setting"),
    ("kubernetes:context", "nothing in this program reads the 'kubernetes' namespace"),
    ("anythingllm-prod:app", "nothing in this program reads the 'anythingllm-prod' namespace"),
])
def test_keys_nothing_reads_are_refused(key, reason):
    problems = unread_key_problems({"aws:region", "anythingllm:app", key})
    assert len(problems) == 1 and problems[0].startswith(f"{key}: {reason}"), problems


def test_the_aws_provider_keys_come_from_the_pinned_sdk():
    keys = aws_provider_keys()
    assert {"region", "profile", "defaultTags", "assumeRoles", "allowedAccountIds"} <= keys
    assert unread_key_problems({"aws:profile", "aws:allowedAccountIds", "pulumi:tags"}) == []


def test_keys_nothing_reads_fail_the_program_before_any_resource():
    from components.settings.loading import read_raw_config
    from tools.engine import run

    with pytest.raises(SettingsError, match="aws:regoin: the AWS provider has no such setting"):
        run(read_raw_config, project="anythingllm", stack="t",
            config={"aws:region": "us-east-1", "aws:regoin": "us-east-2"})


# -------------------------------------------------------------------------------- messages

def test_three_kinds_of_mistake_are_reported_in_one_run():
    """A field problem (tag), the version, and rules between sections (the zone of the region; a
    model on a node group that does not exist: the cluster's invalid version does not hide it)."""
    config = base_config()
    config["tags"] = {"team": "a,b"}
    config["network"]["availabilityZones"] = ["eu-west-1a", "eu-west-1d"]
    config["cluster"]["kubernetesVersion"] = "1.33"
    config["modelServing"]["models"][0]["nodeGroup"] = "missing"
    keys = [p.split(": ")[0] for p in problems_of(config)]
    assert keys == ["tags['team']", "cluster.kubernetesVersion", "network.availabilityZones[1]",
                    "modelServing.models[0].nodeGroup"], keys


def test_every_prod_rule_is_reported_together():
    config = base_config("prod")
    config["network"]["natGateways"] = "single"
    config["database"] = {"multiAz": False, "backupRetentionDays": 7}
    config["app"] = {"replicas": 2}
    config["observability"] = {}
    keys = [p.split(": ")[0] for p in problems_of(config)]
    assert keys == ["network.natGateways", "database.multiAz", "database.backupRetentionDays",
                    "app.replicas", "observability.alarmEmails"], keys


def test_prod_without_a_certificate_reports_the_certificate_not_its_consequences():
    config = base_config("prod")
    config["ingress"] = {"wafAclArn": config["ingress"]["wafAclArn"], "auth": config["ingress"]["auth"],
                         "dns": {"hostedZoneId": "Z0123456789ABC", "name": "chat.example.com"}}
    assert problems_of(config) == [
        "ingress.certificateArn: is required in prod: chat traffic and session cookies only over HTTPS"]


def test_without_a_certificate_outside_prod_each_consequence_names_the_certificate():
    config = base_config()
    config["ingress"] = {"dns": {"hostedZoneId": "Z0123456789ABC", "name": "chat.example.com"}}
    problems = problems_of(config)
    assert [p.split(": ")[0] for p in problems] == ["ingress.inboundCidrs", "ingress.dns"]
    assert all("certificateArn" in p for p in problems)


def test_an_invalid_environment_is_the_only_problem_it_causes():
    config = base_config()
    config["environment"] = "production"
    assert problems_of(config) == [
        "environment: Input should be 'dev', 'staging' or 'prod' (got \"production\")"]


def test_an_empty_file_lists_only_what_is_required():
    problems = problems_of({})
    assert [p.split(": required key is missing (")[0] for p in problems] == [
        "aws:region", "environment", "network", "cluster", "modelServing"], problems
    assert problems[1] == "environment: required key is missing (dev, staging or prod)"


def test_a_key_with_no_value_is_missing_not_null():
    config = base_config()
    config["network"] = None
    config["cluster"]["adminRoleArns"] = None
    config["app"] = None  # an optional section with no value: its defaults
    assert problems_of(config) == [
        "network: required key is missing (a new VPC (vpcCidr, availabilityZones) or an existing "
        "one (existing))",
        "cluster.adminRoleArns: required key is missing (it is there, with no value)"]


def test_rules_on_the_valid_part_skip_only_what_an_invalid_key_would_decide():
    """The GPU groups are invalid: the rule placing models on them is skipped (its problem would
    be a consequence); the rest of the cluster section is valid, so the prod rules on it run."""
    config = base_config("prod")
    config["cluster"]["gpuNodeGroups"][0]["instanceTypes"] = ["m6i.large"]
    config["cluster"]["publicAccessCidrs"] = ["0.0.0.0/0"]
    config["modelServing"]["models"][0]["gpus"] = 4
    config["network"]["availabilityZones"] = ["eu-west-1a", "eu-west-1d"]
    keys = [p.split(": ")[0] for p in problems_of(config)]
    assert keys == ["cluster.gpuNodeGroups[0].instanceTypes[0]", "network.availabilityZones[1]",
                    "cluster.publicAccessCidrs"], keys


@pytest.mark.parametrize("mutate, expected", [
    # A typo in one section does not hide another section's prod rules.
    (lambda c: (c.__setitem__("storage", {"backupz": True}),
                c.__setitem__("database", {"multiAz": False}), c.__setitem__("cache", {"replicas": 0})),
     ["storage.backupz", "database.multiAz", "cache.replicas"]),
    # An invalid version does not hide the cluster's other prod rules.
    (lambda c: (c["cluster"].update(kubernetesVersion="1.37", publicAccessCidrs=["0.0.0.0/0"]),
                c["cluster"].update(systemNodeGroup={"minSize": 1, "desiredSize": 1, "maxSize": 2})),
     ["cluster.kubernetesVersion", "cluster.publicAccessCidrs", "cluster.systemNodeGroup.minSize"]),
    # A typo in gateway does not hide an app pod too big for its node.
    (lambda c: (c.__setitem__("gateway", {"resourcez": {}}),
                c.__setitem__("app", {"replicas": 3, "resources": _resources("3", "3Gi")})),
     ["gateway.resourcez", "app.resources"]),
    # A required key with no value: the rest of its section still counts.
    (lambda c: c["cluster"].update(adminRoleArns=None, publicAccessCidrs=["0.0.0.0/0"]),
     ["cluster.adminRoleArns", "cluster.publicAccessCidrs"]),
])
def test_a_mistake_in_one_key_hides_nothing_else(mutate, expected):
    config = base_config("prod")
    mutate(config)
    keys = [p.split(": ")[0] for p in problems_of(config)]
    assert keys == expected, keys


def test_an_invalid_environment_still_checks_what_does_not_depend_on_it():
    config = base_config()
    config["environment"] = "qa"
    config["app"] = {"chatModel": "nope"}
    keys = [p.split(": ")[0] for p in problems_of(config)]
    assert keys == ["environment", "app.chatModel"], keys


# -------------------------------------------------------------------------------- versions

def test_versions_are_accepted_by_pins_not_by_date():
    assert supported_versions() == ["1.34", "1.35", "1.36"]
    assert all(version_problem(v) is None for v in supported_versions())
    assert "is an EKS version (standard support until 2026-07-29" in version_problem("1.33")
    assert "is not on EKS's calendar" in version_problem("1.37")
    assert "older than every version on EKS's calendar" in version_problem("1.20")
    assert "is not a Kubernetes minor version" in version_problem("v1.36")


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("today", [TODAY, dt.date(2027, 8, 3), dt.date(2028, 8, 3), dt.date(2035, 1, 1)])
def test_time_passing_never_breaks_a_committed_stack(stack, today):
    """Every phase of 1.36's life, and long after: the stack still previews, with a warning."""
    raw = {key.removeprefix("anythingllm:"): value
           for key, value in read_stack_config(ROOT, stack).items()}
    settings = parse_settings(raw, project="anythingllm", stack=stack, today=today)
    version_lines = [w for w in settings.warnings if w.startswith("cluster.kubernetesVersion")]
    assert bool(version_lines) == (today > dt.date(2027, 5, 4)), version_lines


def test_committed_stacks_run_the_newest_supported_version():
    for stack in STACKS:
        config = read_stack_config(ROOT, stack)
        assert config["anythingllm:cluster"]["kubernetesVersion"] == supported_versions()[-1] == "1.36"


def _phase(version: str, support_type: str, today: dt.date) -> str:
    (warning,) = version_warnings(version, support_type, today) or [""]
    return warning


def test_each_phase_of_a_versions_life_says_what_eks_does():
    life = EKS_VERSIONS["1.35"]
    ends = life.standard_support_ends
    assert version_warnings("1.35", "STANDARD", ends - dt.timedelta(days=WARN_BEFORE_DAYS + 1)) == []
    assert "leaves standard support on 2027-03-27, in 90 days; then EKS upgrades the control plane " \
           "to 1.36 by itself" in _phase("1.35", "STANDARD", ends - dt.timedelta(days=90))
    assert "then extended support starts" in _phase("1.35", "EXTENDED", ends - dt.timedelta(days=1))
    assert "set supportType EXTENDED before then" in _phase("1.35", "STANDARD", ends - dt.timedelta(days=1))
    assert "upgrade to 1.36 (README, Upgrades)" in _phase("1.35", "STANDARD", ends - dt.timedelta(days=1))
    # The end date is the first day of extended support, when supportType can no longer change.
    after = ends
    assert _phase("1.35", "STANDARD", after) == (
        "cluster.kubernetesVersion: 1.35 left standard support on 2027-03-27; with "
        "cluster.supportType STANDARD, EKS upgrades the control plane to 1.36 by itself: upgrade to "
        "1.36 (README, Upgrades)")
    assert "in extended support since 2027-03-27" in _phase("1.35", "EXTENDED", after)
    assert "extended support costs 6 times" in _phase("1.35", "EXTENDED", after)
    assert "left extended support on 2028-03-27, when EKS upgraded the control plane to 1.36" \
           in _phase("1.35", "EXTENDED", life.extended_support_ends)
    # The newest version points at one this code does not deploy yet.
    assert "upgrade to 1.37 once this code supports it" in _phase(
        "1.36", "STANDARD", EKS_VERSIONS["1.36"].standard_support_ends - dt.timedelta(days=3))


def test_version_warnings_are_in_every_environment():
    config = base_config()
    settings = parse_settings(config, project="anythingllm", stack="t", today=dt.date(2027, 3, 1))
    assert any(re.match(r"cluster\.kubernetesVersion: 1\.35 leaves standard support", w)
               for w in settings.warnings)


# ------------------------------------------------------- zones as the AWS account maps them

def test_a_zone_the_account_lacks_or_eks_refuses_is_named():
    offered = {"us-east-1a": "use1-az6", "us-east-1b": "use1-az3", "us-east-1c": "use1-az1"}
    assert account_zone_problems(["us-east-1a", "us-east-1b", "us-east-1d"], offered) == [
        ("network.availabilityZones[1]", "'us-east-1b' is zone use1-az3 in this AWS account, which EKS "
         "refuses for a cluster's subnets (EKS user guide, subnet requirements); use one of "
         "us-east-1a, us-east-1c"),
        ("network.availabilityZones[2]", "'us-east-1d' is not offered to this AWS account (it has "
         "us-east-1a, us-east-1b, us-east-1c); use one of us-east-1a, us-east-1c"),
    ]
    assert account_zone_problems(["us-east-1a", "us-east-1c"], offered) == []


def test_the_program_asks_the_account_for_its_zones_before_any_resource(monkeypatch):
    """load_settings reads DescribeAvailabilityZones (the getAvailabilityZones invoke) and stops
    with the account's answer; nothing is registered."""
    from components.settings.loading import load_settings
    from tools.engine import run
    from tools.fake_cloud import FakeCloud

    answered = FakeCloud.call

    def call(self, args):
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            assert not args.args.get("state")  # an impaired zone is still the stack's
            return {"names": ["us-west-1a", "us-west-1c"], "zoneIds": ["usw1-az1", "usw1-az3"],
                    "id": "us-west-1"}
        return answered(self, args)

    monkeypatch.setattr(FakeCloud, "call", call)
    config = {f"anythingllm:{key}" if ":" not in key else key: value
              for key, value in base_config().items()}
    config["aws:region"] = "us-west-1"
    config["anythingllm:network"]["availabilityZones"] = ["us-west-1a", "us-west-1b"]
    config["anythingllm:tags"] = {"team": "a,b"}
    with pytest.raises(SettingsError) as caught:
        run(load_settings, project="anythingllm", stack="t", config=config)
    # With the file's own problems, in one run.
    assert [problem.split(": ")[0] for problem in caught.value.problems] == [
        "tags['team']", "network.availabilityZones[1]"]
    assert "'us-west-1b' is not offered to this AWS account" in caught.value.problems[1]


@pytest.mark.parametrize("tags, reason", [
    ({"owner": "team: platform"}, "contains ': '"),
    ({"owner": "platform:"}, "ends with ':'"),
    ({"team: ml": "x"}, "contains ': '"),
    ({"a=b": "c"}, "contains '='"),
    ({"aws:owner": "x"}, "must not start with aws:"),
    # pkg/config/controller_config.go (v3.5.0) trackingTagKeys: refused in --default-tags.
    ({"elbv2.k8s.aws/cluster": "anythingllm-dev"}, "tracks its own resources by"),
    ({"ingress.k8s.aws/stack": "x"}, "tracks its own resources by"),
])
def test_tags_the_load_balancer_controller_chart_would_break(tags, reason):
    """Chart 3.5.0 templates/deployment.yaml writes `- --default-tags=k=v,...` unquoted: ': ' or a
    final ':' turn the argument into a YAML mapping; the flag splits each pair at its first '='."""
    config = base_config()
    config["tags"] = tags
    expect_settings_error(config, f"tags[{next(iter(tags))!r}]", reason)


def test_every_bad_tag_is_reported():
    config = base_config()
    config["tags"] = {"a": "x,y", "b": "ok", "c": "#1"}
    assert [p.split(": ")[0] for p in problems_of(config)] == ["tags['a']", "tags['c']"]


@pytest.mark.parametrize("key", ["region", "project", "stack"])
def test_keys_the_program_fills_in_are_not_settings(key):
    """`pulumi config set region eu-west-1` writes anythingllm:region, which must not stand in for
    aws:region (the AWS provider would deploy to another region than the one checked)."""
    config = base_config()
    config[key] = "eu-west-2"
    problems = problems_of(config)
    assert [p.split(": ")[0] for p in problems] == [f"anythingllm:{key}"], problems
    config.pop("aws:region")
    keys = [p.split(": ")[0] for p in problems_of(config)]
    assert "aws:region" in keys
