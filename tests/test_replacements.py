"""Replacements: what makes a provider replace a resource (components/data/replace_only.json),
checked against the pinned SDKs; what the program does about it (fixed names deleted first,
prod's stateful resources protected unless `allowReplacement` names them); and what a pull
request's plan diff says first."""

from __future__ import annotations

import copy
import importlib
import re
import sys
from pathlib import Path

import pytest

from components.replacement import STATEFUL, covered_types, replace_only, replacing, versions
from components.settings.stack import REPLACEABLE
from tests.conftest import ROOT, STACKS, base_config, expect_settings_error, settings_from
from tools.engine import Plan, read_stack_config, run_stack
from tools.plan_diff import render

PROVIDER_PACKAGES = {"aws": "pulumi_aws", "random": "pulumi_random", "time": "pulumiverse_time"}
# Data-bearing resources prod protects (generated secrets are protected where they must outlive a
# replacement of what uses them: components/anythingllm.py).
PROTECTED_IN_PROD = STATEFUL - {"random:index/randomPassword:RandomPassword",
                                "random:index/randomId:RandomId", "aws:rds/cluster:Cluster",
                                "aws:backup/vault:Vault"}


def _pinned(package: str) -> str:
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.startswith(f"{package}=="):
            return line.split("==")[1].strip()
    raise AssertionError(f"{package} is not pinned in requirements.txt")


def test_the_data_was_read_at_the_pinned_provider_versions():
    read = versions()
    for package in ("pulumi-aws", "pulumi-random", "pulumiverse-time", "pulumi-kubernetes"):
        assert read[package] == _pinned(package), f"{package}: re-read the data at the new pin"


def test_the_data_covers_every_resource_type_the_stacks_register(stack_plans: dict[str, Plan]):
    missing = set()
    for plan in stack_plans.values():
        for resource in plan.resources:
            provider = resource.type.split(":")[0]
            if provider in PROVIDER_PACKAGES and resource.type not in covered_types():
                missing.add(resource.type)
            if provider == "kubernetes" and resource.type.split(":", 1)[1] not in _kubernetes_kinds():
                missing.add(resource.type)
    assert missing == set(), "read these types' replace-only inputs into components/data/replace_only.json"


def _kubernetes_kinds() -> set[str]:
    import json

    return set(json.loads((ROOT / "components/data/replace_only.json").read_text())["kubernetes"]["kinds"])


def _args_class(type_token: str) -> type:
    """The resource's own Args class (from its module: a package may export a nested input type
    of the same name, e.g. s3's BucketServerSideEncryptionConfigurationArgs)."""
    provider, module_path, kind = type_token.split(":")
    module_name = module_path.split("/")[0]
    package = PROVIDER_PACKAGES[provider]
    module = importlib.import_module(package if module_name == "index" else f"{package}.{module_name}")
    resource = getattr(module, kind)
    # The SDK names it `<Kind>InitArgs` where a nested input type took `<Kind>Args`.
    own = sys.modules[resource.__module__]
    return getattr(own, f"{kind}InitArgs", None) or getattr(own, f"{kind}Args")


def _resolves(cls: type, path: list[str]) -> bool:
    from pulumi._types import _py_properties

    module = importlib.import_module(cls.__module__.rsplit(".", 1)[0])
    properties = {pulumi_name: prop for _, pulumi_name, prop in _py_properties(cls)}
    if path[0] not in properties:
        return False
    if len(path) == 1:
        return True
    annotation = str(properties[path[0]].fget.__annotations__.get("return"))
    nested = re.findall(r"ForwardRef\('(\w+Args)'\)", annotation)
    return bool(nested) and _resolves(getattr(module, nested[0]), path[1:])


def test_every_path_is_an_input_of_the_pinned_sdk():
    """A path the SDK does not have would never match a change: each one names an input of the
    type's Args class (nested through its Args types), as the SDK sends it."""
    unknown = []
    for type_token in sorted(covered_types()):
        rules = replace_only(type_token)
        cls = _args_class(type_token)
        for path in (*rules.paths, *(p for p, _ in rules.conditional),
                     *((rules.physical_name,) if rules.physical_name else ())):
            if not _resolves(cls, path.split(".")):
                unknown.append(f"{type_token} {path}")
    assert unknown == []


def test_replace_only_paths_match_changes_under_them_only():
    cluster = replace_only("aws:eks/cluster:Cluster")
    assert cluster.replacing(["kubernetesNetworkConfig.serviceIpv4Cidr", "version",
                              "vpcConfig.subnetIds[1]"]) == ["kubernetesNetworkConfig.serviceIpv4Cidr"]
    assert replacing("aws:rds/instance:Instance", ["kmsKeyId", "instanceClass"]) == ["kmsKeyId"]
    # Lists of blocks: indexes do not matter.
    assert replacing("kubernetes:apps/v1:StatefulSet",
                     ["spec.volumeClaimTemplates[0].spec.resources", "spec.template"]) == [
        "spec.volumeClaimTemplates[0].spec.resources"]
    # A generated secret changes with any input.
    assert replacing("random:index/randomPassword:RandomPassword", ["length"]) == ["length"]
    assert replacing("pulumi:providers:kubernetes", ["kubeconfig"]) == []


# ---------------------------------------------------------------- what the program does


def _sets_its_name(resource) -> bool:
    """Named by the program, or of a type only delete-first replaces safely (an upsert API)."""
    rules = replace_only(resource.type)
    return rules is not None and (bool(rules.delete_first) or (
        rules.physical_name is not None and resource.inputs.get(rules.physical_name) is not None))


@pytest.mark.parametrize("stack", STACKS)
def test_every_resource_named_by_the_program_is_deleted_before_it_is_replaced(stack, stack_plans):
    named = [r for r in stack_plans[stack].resources
             if r.type.split(":")[0] in PROVIDER_PACKAGES and _sets_its_name(r)]
    assert len(named) > 20
    assert [r.name for r in named if not r.delete_before_replace] == []
    # The stateful ones among them: the cluster, the database, the cache, the file system.
    assert {"aws:eks/cluster:Cluster", "aws:rds/instance:Instance",
            "aws:elasticache/replicationGroup:ReplicationGroup",
            "aws:efs/fileSystem:FileSystem"} <= {r.type for r in named}


def test_prod_protects_every_stateful_resource(stack_plans):
    plan = stack_plans["prod"]
    stateful = [r for r in plan.resources if r.type in PROTECTED_IN_PROD]
    assert {r.type for r in stateful} >= {"aws:eks/cluster:Cluster", "aws:rds/instance:Instance",
                                          "aws:efs/fileSystem:FileSystem", "aws:kms/key:Key",
                                          "kubernetes:core/v1:PersistentVolumeClaim"}
    assert [r.name for r in stateful if not r.protect] == []


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_nothing_is_protected_outside_prod(stack, stack_plans):
    assert [r.name for r in stack_plans[stack].resources if r.protect] == []


@pytest.fixture(scope="module")
def prod_allowing_replacement() -> Plan:
    config = read_stack_config(ROOT, "prod")
    config["anythingllm:allowReplacement"] = ["database", "cluster"]
    config["anythingllm:database"] = {**config["anythingllm:database"], "deletionProtection": False}
    config["anythingllm:cluster"] = {**config["anythingllm:cluster"], "deletionProtection": False}
    return run_stack(ROOT, "prod", config=config)


def test_allow_replacement_unprotects_what_it_names_and_nothing_else(prod_allowing_replacement, stack_plans):
    plan = prod_allowing_replacement
    database = plan.one("aws:rds/instance:Instance")
    cluster = plan.one("aws:eks/cluster:Cluster")
    assert not database.protect and database.inputs["deletionProtection"] is False
    assert not cluster.protect and cluster.inputs["deletionProtection"] is False
    # A replaced cluster replaces every Kubernetes object: the claims and their volumes (which
    # only bind pods to the access points) lose their protection with it; the access points and
    # the file system, which hold the data, keep theirs.
    bindings = {r.urn for r in plan.resources if r.type in (
        "kubernetes:core/v1:PersistentVolumeClaim", "kubernetes:core/v1:PersistentVolume")}
    assert len(bindings) == 4 and not any(plan.by_urn()[urn].protect for urn in bindings)
    still = [r for r in plan.resources if r.type in PROTECTED_IN_PROD
             and r.urn not in {database.urn, cluster.urn, *bindings}]
    assert still and [r.name for r in still if not r.protect] == []
    assert plan.one("aws:efs/fileSystem:FileSystem").protect
    assert any("allowReplacement: database: `up` may replace the RDS instance" in w for w in plan.warnings)
    # Everything else is the committed prod plan.
    committed = {r.urn: r.to_json() for r in stack_plans["prod"].resources}
    changed = {r.urn for r in plan.resources if r.to_json() != committed.get(r.urn)}
    assert changed == {database.urn, cluster.urn, *bindings}


def test_allow_replacement_is_for_prod_only():
    config = base_config("dev")
    config["allowReplacement"] = ["database"]
    expect_settings_error(config, "allowReplacement", "only prod protects its stateful resources")


def test_allow_replacement_needs_the_service_deletion_protection_off():
    config = base_config("prod")
    config["allowReplacement"] = ["database", "cache"]
    expect_settings_error(config, "allowReplacement",
                          "database: a replacement deletes the old database first, which RDS "
                          "refuses while database.deletionProtection is true")


def test_allow_replacement_keys_are_the_replaceable_parts():
    config = base_config("prod")
    config["allowReplacement"] = ["everything"]
    expect_settings_error(config, "allowReplacement[0]", "")
    config["allowReplacement"] = ["cache", "cache"]
    expect_settings_error(config, "allowReplacement", "lists cache twice")
    config["allowReplacement"] = ["cache"]
    settings = settings_from(config)
    assert not settings.protects("cache") and settings.protects("database")
    assert set(REPLACEABLE) == {"cluster", "database", "cache", "storage", "edgeIdentity", "accessLogs"}


def test_prod_deletion_protection_stays_required_without_allow_replacement():
    config = base_config("prod")
    config.setdefault("database", {})["deletionProtection"] = False
    expect_settings_error(config, "database.deletionProtection", "cannot be false in prod")


# ---------------------------------------------------------------- the plan diff


def _resource(name: str, type_token: str, inputs: dict, **extra) -> dict:
    return {"urn": f"urn:pulumi:prod::anythingllm::{type_token}::{name}", "type": type_token,
            "name": name, "inputs": inputs, "secret_paths": [], "protect": False,
            "dependencies": [], **extra}


def test_a_replacement_of_a_stateful_or_fixed_name_resource_is_what_the_diff_says_first():
    base = {"stack": "prod", "resources": [
        _resource("database", "aws:rds/instance:Instance",
                  {"identifier": "anythingllm-prod-postgres", "kmsKeyId": "arn:key/1",
                   "instanceClass": "db.m7g.large"}, protect=True, delete_before_replace=True),
        _resource("queue", "aws:sqs/queue:Queue", {"name": "anythingllm-prod-karpenter",
                                                   "fifoQueue": False}, delete_before_replace=True),
        _resource("app", "kubernetes:apps/v1:Deployment", {"spec": {"replicas": 2}}),
        _resource("alarm", "aws:cloudwatch/metricAlarm:MetricAlarm", {"name": "a", "threshold": 1}),
    ]}
    head = copy.deepcopy(base)
    database, queue, app, alarm = head["resources"]
    database["inputs"]["kmsKeyId"] = "arn:key/2"
    queue["inputs"]["fifoQueue"] = True
    app["inputs"]["spec"]["replicas"] = 3
    alarm["inputs"]["threshold"] = 2
    text = render(base, head)
    lines = text.splitlines()
    assert lines[2:4] == ["> [!CAUTION]", "> **`up` would replace stateful or fixed-name resources:**"]
    assert ("> - `aws:rds/instance:Instance` `database`: `kmsKeyId` changed (stateful: its "
            "replacement starts empty; fixed name `anythingllm-prod-postgres`: deleted before its "
            "replacement is created; protected: `up` refuses)") in lines
    assert ("> - `aws:sqs/queue:Queue` `queue`: `fifoQueue` changed (fixed name "
            "`anythingllm-prod-karpenter`: deleted before its replacement is created)") in lines
    caution = text[:text.index("to add")]
    assert "`app`" not in caution and "`alarm`" not in caution
    assert text.index("[!CAUTION]") < text.index("to add")


def test_an_in_place_change_of_a_stateful_resource_is_no_caution():
    base = {"stack": "prod", "resources": [_resource(
        "database", "aws:rds/instance:Instance", {"identifier": "x", "instanceClass": "db.m7g.large"},
        protect=True)]}
    head = copy.deepcopy(base)
    head["resources"][0]["inputs"]["instanceClass"] = "db.m7g.xlarge"
    text = render(base, head)
    assert "[!CAUTION]" not in text and "stateful or protected resource changed" in text


def test_a_resource_renamed_in_the_program_is_named_as_such():
    old = _resource("logs", "aws:cloudwatch/logGroup:LogGroup", {"name": "/aws/eks/x/cluster"})
    new = _resource("control-plane-logs", "aws:cloudwatch/logGroup:LogGroup", {"name": "/aws/eks/x/cluster"})
    text = render({"stack": "prod", "resources": [old]}, {"stack": "prod", "resources": [new]})
    assert ("> - `aws:cloudwatch/logGroup:LogGroup` `/aws/eks/x/cluster`: its URN changed (`logs` to "
            "`control-plane-logs`) and no alias says it moved: `up` would create it anew first, which "
            "fails on its name, and only then delete the old one; add an alias") in text


def test_resources_of_one_name_within_different_scopes_are_no_rename():
    """Karpenter's five event targets all have the target id of its own rule: a target of one
    rule that goes while another rule's comes is not a rename."""
    def target(urn_name: str, rule: str) -> dict:
        return _resource(urn_name, "aws:cloudwatch/eventTarget:EventTarget",
                         {"targetId": "KarpenterInterruptionQueueTarget", "rule": rule})
    text = render({"stack": "prod", "resources": [target("a", "rule-a")]},
                  {"stack": "prod", "resources": [target("b", "rule-b")]})
    assert "[!CAUTION]" not in text


def test_a_change_that_lifts_protection_and_replaces_says_so():
    """Pulumi refuses a replacement only while the program still protects the resource: a
    change that also adds allowReplacement is replaced in the same `up`."""
    base = {"stack": "prod", "resources": [_resource(
        "storage", "aws:efs/fileSystem:FileSystem", {"creationToken": "t", "encrypted": True},
        protect=True, delete_before_replace=True)]}
    head = copy.deepcopy(base)
    head["resources"][0]["protect"] = False
    head["resources"][0]["inputs"]["encrypted"] = False
    text = render(base, head)
    assert "its protection is lifted in this change: `up` replaces it" in text
    assert "`up` refuses" not in text


def test_a_real_service_cidr_change_is_called_out_first(stack_plans, tmp_path: Path):
    """The issue's example: `cluster.serviceIpv4Cidr` replaces the cluster."""
    config = read_stack_config(ROOT, "dev")
    config["anythingllm:cluster"] = {**config["anythingllm:cluster"], "serviceIpv4Cidr": "172.21.0.0/16"}
    head = run_stack(ROOT, "dev", config=config)
    text = render(stack_plans["dev"].to_json(), head.to_json())
    caution = text[:text.index("to add")]
    assert ("`aws:eks/cluster:Cluster` `cluster`: `kubernetesNetworkConfig.serviceIpv4Cidr` changed "
            "(stateful: its replacement starts empty; fixed name `anythingllm-dev`: deleted before "
            "its replacement is created)") in caution


def test_a_change_that_replaces_only_under_a_condition_says_which():
    """terraform-provider-aws replaces a replication group on an engine-version downgrade only
    (`engineVersionForceNewOnDowngrade`): the offline plan cannot tell, the comment says when."""
    base = {"stack": "prod", "resources": [_resource(
        "cache", "aws:elasticache/replicationGroup:ReplicationGroup",
        {"replicationGroupId": "anythingllm-prod", "engineVersion": "8.1"}, protect=True)]}
    head = copy.deepcopy(base)
    head["resources"][0]["inputs"]["engineVersion"] = "7.2"
    text = render(base, head)
    assert "[!CAUTION]" not in text
    assert ("`cache`: may be **replaced** on `up`: `engineVersion` changed, which replaces it when "
            "on update the new engine_version is a downgrade") in text
