"""checkov's terraform_plan framework over every committed stack's AWS resources, translated into
`terraform show -json` (tools/aws_scan.py): no finding without an entry of
tools/data/aws-scan-exceptions.json and no entry without a finding; the translation proven
with deliberately bad resources, each producing its finding next to a fixed twin that does not;
every type token of the plans translated, against the provider schema of the data file.

checkov runs once, over the three stacks and the test plans together (one file each)."""

from __future__ import annotations

import dataclasses
import json
import re

import pulumi_aws as aws
import pytest

from tests.conftest import STACKS
from tools.aws_scan import (
    NEWER_ATTRIBUTES,
    TEST_ONLY_TYPES,
    TEXT_KEYS,
    TYPE_RENAMES,
    CheckResult,
    ScanException,
    aws_resources,
    judge,
    load_exceptions,
    load_schema,
    problems,
    scan,
    schema_types,
    snake_case,
    terraform_name,
    terraform_type,
    translate,
    untranslated_types,
)
from tools.engine import UNKNOWN_MASK, Plan, run

BAD = "deliberately-bad"  # the plan of `deliberately_bad_resources`
UNKNOWN_VPC = "unknown-vpc-id"  # a flow log whose vpcId is known only after apply

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
VPC = "aws:ec2/vpc:Vpc"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
IAM_POLICY = "aws:iam/policy:Policy"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-4000-8000-000000000000"


def _policy(action: str, resource: str) -> str:
    return json.dumps({"Version": "2012-10-17",
                       "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]})


def deliberately_bad_resources() -> None:
    """Each weakness next to its fixed twin, registered through pulumi_aws as a component would."""
    aws.cloudwatch.LogGroup("unencrypted", retention_in_days=7)
    aws.cloudwatch.LogGroup("encrypted", retention_in_days=365, kms_key_id=KEY_ARN)
    aws.ec2.Vpc("unwatched", cidr_block="10.1.0.0/16")
    watched = aws.ec2.Vpc("watched", cidr_block="10.2.0.0/16")
    # The flow log and the rule-less default group take the VPC's id: that is the graph edge.
    aws.ec2.FlowLog("watched", vpc_id=watched.id, traffic_type="ALL", log_destination_type="s3",
                    log_destination="arn:aws:s3:::flow-logs")
    aws.ec2.DefaultSecurityGroup("watched", vpc_id=watched.id)
    ssh = {"protocol": "tcp", "from_port": 22, "to_port": 22, "description": "ssh"}
    aws.ec2.SecurityGroup("ssh-from-anywhere", vpc_id=watched.id, description="ssh",
                          ingress=[{**ssh, "cidr_blocks": ["0.0.0.0/0"]}])
    aws.ec2.SecurityGroup("ssh-from-the-vpc", vpc_id=watched.id, description="ssh",
                          ingress=[{**ssh, "cidr_blocks": ["10.2.0.0/16"]}])
    aws.iam.Policy("admin", policy=_policy("*", "*"))
    aws.iam.Policy("read-one-bucket", policy=_policy("s3:GetObject", "arn:aws:s3:::documents/*"))
    # A MaxItems=1 block, which Pulumi flattens to an object and Terraform writes as a list.
    aws.ec2.LaunchTemplate("imds-v1", metadata_options={"http_tokens": "optional"})
    aws.ec2.LaunchTemplate("imds-v2", metadata_options={"http_tokens": "required",
                                                        "http_put_response_hop_limit": 1})


# (what is wrong, type, the bad resource, its fixed twin, checks the bad one fails and the twin passes)
WEAKNESSES = [
    ("log group without a KMS key, kept a week", LOG_GROUP, "unencrypted", "encrypted",
     {"CKV_AWS_158", "CKV_AWS_338"}),
    ("VPC without a flow log or a closed default security group", VPC, "unwatched", "watched",
     {"CKV2_AWS_11", "CKV2_AWS_12"}),
    ("security group open to 0.0.0.0/0 on 22", SECURITY_GROUP, "ssh-from-anywhere", "ssh-from-the-vpc",
     {"CKV_AWS_24"}),
    ("IAM policy with Action * on Resource *", IAM_POLICY, "admin", "read-one-bucket",
     {"CKV_AWS_62", "CKV_AWS_355", "CKV_AWS_290", "CKV_AWS_286"}),
    ("launch template that allows IMDSv1", LAUNCH_TEMPLATE, "imds-v1", "imds-v2", {"CKV_AWS_79"}),
]


@pytest.fixture(scope="module")
def bad_plan() -> Plan:
    return run(deliberately_bad_resources, project="anythingllm", stack=BAD)


@pytest.fixture(scope="module")
def unknown_vpc_plan(bad_plan) -> Plan:
    """The watched VPC and its flow log, the log's vpcId unknown as in a preview before the VPC
    exists: Terraform leaves such a value out and the reference stands in for it."""
    vpc = bad_plan.one(VPC, "watched")
    flow_log = bad_plan.one(FLOW_LOG, "watched")
    flow_log = dataclasses.replace(flow_log, inputs={**flow_log.inputs, "vpcId": UNKNOWN_MASK})
    return Plan(project="anythingllm", stack=UNKNOWN_VPC, resources=[vpc, flow_log], outputs={},
                secret_outputs=[])


@pytest.fixture(scope="module")
def scanned(stack_plans, bad_plan, unknown_vpc_plan, tmp_path_factory):
    """One checkov run over the committed stacks and the test plans."""
    plans = {**stack_plans, BAD: bad_plan, UNKNOWN_VPC: unknown_vpc_plan}
    return scan(plans, tmp_path_factory.mktemp("aws-scan"))


def _results(results: list[CheckResult], stack: str, type_token: str, name: str) -> set[str]:
    return {r.check for r in results if (r.stack, r.type, r.name) == (stack, type_token, name)}


# --------------------------------------------------------------------------- committed stacks


def test_committed_stacks_have_no_unexplained_finding_and_no_stale_exception(scanned):
    report, translations = scanned
    findings = [r for r in report.failed if r.stack in STACKS]
    verdict = judge(findings, load_exceptions(), STACKS)
    assert problems(report, translations, verdict) == []
    assert verdict.unexplained == [] and verdict.stale == [] and verdict.twice_covered == []
    assert len(verdict.covered) == len(findings)
    # checkov read every translated resource and ran its checks on them.
    assert report.resources == sum(len(t.resources) for t in translations.values())
    assert len([r for r in report.passed if r.stack in STACKS]) > 400


def test_every_aws_type_of_the_plans_is_translated(stack_plans, scanned):
    _, translations = scanned
    schema = load_schema()
    for stack, plan in stack_plans.items():
        tokens = {r.type for r in aws_resources(plan)}
        assert untranslated_types(tokens, schema) == [], stack
        assert translations[stack].untranslated_types == []
        assert len(translations[stack].resources) == len(aws_resources(plan)), stack
    # The schema file holds exactly the types of the stacks and the tests: none missing, none
    # kept for nothing (rebuild it with `python -m tools.aws_scan --schema-from ...`).
    assert set(schema) == schema_types(stack_plans.values())


def test_every_type_rename_is_a_type_of_the_schema_the_rule_would_miss():
    schema = load_schema()
    for token, terraform in TYPE_RENAMES.items():
        assert terraform in schema, token
        _, module_and_resource, _ = token.split(":")
        module, resource = module_and_resource.split("/")
        assert f"aws_{module}_{snake_case(resource)}" != terraform, f"{token}: the rule gives it already"
    assert terraform_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") == \
        "aws_vpc_security_group_ingress_rule"
    assert terraform_type("aws:rds/instance:Instance") == "aws_db_instance"


def test_every_input_of_the_plans_has_a_terraform_attribute(stack_plans, scanned):
    """A Pulumi input the schema does not know would reach checkov under a name no check reads."""
    _, translations = scanned
    assert {stack: translations[stack].unknown_inputs for stack in stack_plans} == \
        {stack: {} for stack in stack_plans}
    schema = load_schema()
    used = {(address.split(".")[0], snake_case(key)) for stack in stack_plans
            for address, resource in translations[stack].resources.items() for key in resource.inputs}
    for resource_type, attribute in NEWER_ATTRIBUTES:
        # Allowed only while the schema lacks it and a plan sets it.
        assert attribute not in schema[resource_type]["attributes"], (resource_type, attribute)
        assert (resource_type, attribute) in used, (resource_type, attribute)


def test_blocks_plurals_maps_and_policies_translate_as_terraform_writes_them(scanned):
    _, translations = scanned
    resources = {r["address"]: r["values"]
                 for r in translations["prod"].document["planned_values"]["root_module"]["resources"]}
    cluster = resources["aws_eks_cluster.cluster"]
    # MaxItems=1 blocks, flattened to objects by Pulumi, are lists of one object for Terraform.
    assert isinstance(cluster["vpc_config"], list) and len(cluster["vpc_config"]) == 1
    assert cluster["vpc_config"][0]["endpoint_private_access"] is True
    assert cluster["encryption_config"][0]["provider"][0]["key_arn"].startswith("arn:aws:kms:")
    # A pluralised repeated block (`parameters`) is Terraform's `parameter`, which CKV2_AWS_69 reads.
    assert {"name": "rds.force_ssl", "value": "1", "apply_method": "immediate"} in \
        resources["aws_db_parameter_group.database-postgres17"]["parameter"]
    # Map keys are data: tags keep theirs.
    assert resources["aws_vpc.network-vpc"]["tags"]["anythingllm:stack"] == "prod"
    assert "tags_all" not in resources["aws_vpc.network-vpc"]
    # Policies stay JSON strings (checkov parses the ones it knows).
    assert json.loads(resources["aws_iam_role_policy.ingress-controller"]["policy"])["Statement"]


def test_what_the_accepted_reasons_rely_on_passes(scanned):
    """The reasons of the exceptions file cite checks that pass: they must keep passing."""
    report, _ = scanned
    for stack in STACKS:
        assert {"CKV_AWS_38", "CKV_AWS_58", "CKV_AWS_37"} <= _results(
            report.passed, stack, "aws:eks/cluster:Cluster", "cluster"), stack
        assert "CKV2_AWS_69" in _results(report.passed, stack, "aws:rds/instance:Instance", "database")
    assert {"CKV_AWS_157", "CKV_AWS_293"} <= _results(report.passed, "prod", "aws:rds/instance:Instance",
                                                      "database")
    assert "CKV2_AWS_50" in _results(report.passed, "prod",
                                     "aws:elasticache/replicationGroup:ReplicationGroup", "cache")
    assert {"CKV_AWS_19", "CKV2_AWS_6"} <= _results(report.passed, "prod", "aws:s3/bucket:Bucket",
                                                    "ingress-access-logs")


def test_the_exceptions_file_names_real_checks_types_and_stacks(stack_plans):
    tokens = {r.type for plan in stack_plans.values() for r in aws_resources(plan)}
    entries = load_exceptions()
    assert {entry.status for entry in entries} <= set(TEXT_KEYS)
    for entry in entries:
        assert re.fullmatch(r"CKV2?_AWS_\d+", entry.check), entry
        assert entry.type in tokens, entry
        assert entry.names and set(entry.stacks) <= set(STACKS), entry


# --------------------------------------------------------------------------- the scan has teeth


@pytest.mark.parametrize(("weakness", "type_token", "bad", "fixed", "checks"), WEAKNESSES,
                         ids=[w[0] for w in WEAKNESSES])
def test_a_deliberately_bad_resource_produces_its_finding(scanned, weakness, type_token, bad, fixed,
                                                          checks):
    report, translations = scanned
    assert translations[BAD].unknown_inputs == {}
    assert checks <= _results(report.failed, BAD, type_token, bad), weakness
    assert checks <= _results(report.passed, BAD, type_token, fixed), weakness
    assert not checks & _results(report.failed, BAD, type_token, fixed), weakness


def test_a_flow_log_on_the_vpc_id_is_the_edge_that_passes_ckv2_aws_11(scanned):
    """Pulumi's property dependency (vpcId from the VPC) becomes Terraform's reference, and
    checkov's graph joins the two resources on it."""
    report, translations = scanned
    configuration = {r["address"]: r["expressions"]
                     for r in translations[BAD].document["configuration"]["root_module"]["resources"]}
    assert configuration["aws_flow_log.watched"]["vpc_id"] == {
        "references": ["aws_vpc.watched.id", "aws_vpc.watched"]}
    assert "CKV2_AWS_11" in _results(report.passed, BAD, VPC, "watched")
    assert "CKV2_AWS_11" in _results(report.failed, BAD, VPC, "unwatched")


def test_a_value_known_only_after_apply_is_left_to_its_reference(scanned):
    report, translations = scanned
    translation = translations[UNKNOWN_VPC]
    change = next(c for c in translation.document["resource_changes"] if c["type"] == "aws_flow_log")
    assert "vpc_id" not in change["change"]["after"]
    assert change["change"]["after_unknown"] == {"vpc_id": True}
    assert "CKV2_AWS_11" in _results(report.passed, UNKNOWN_VPC, VPC, "watched")


def test_pulumi_names_become_addresses_checkov_can_split():
    taken: set[str] = set()
    assert terraform_name("cluster-gpu-chat-label-anythingllm.io/gpu", taken) == \
        "cluster-gpu-chat-label-anythingllm_io_gpu"
    assert terraform_name("cluster-gpu-chat-label-anythingllm.io/gpu", taken) == \
        "cluster-gpu-chat-label-anythingllm_io_gpu_2"
    assert terraform_name("1st", taken) == "r_1st"


def test_the_test_only_types_are_those_of_the_deliberately_bad_resources(bad_plan):
    bad_types = {terraform_type(r.type) for r in aws_resources(bad_plan)}
    assert set(TEST_ONLY_TYPES) <= bad_types


# --------------------------------------------------------------------------- exceptions


def _finding(stack: str, check: str = "CKV_AWS_1", name: str = "a") -> CheckResult:
    return CheckResult(stack=stack, check=check, check_name="", type=LOG_GROUP, name=name, address="")


def _entry(names: tuple[str, ...], stacks: tuple[str, ...] = (), text: str = "a reason long enough here",
           check: str = "CKV_AWS_1") -> ScanException:
    return ScanException(status="accepted", check=check, type=LOG_GROUP, names=names, stacks=stacks,
                         text=text)


def test_a_finding_without_an_entry_is_unexplained():
    verdict = judge([_finding("dev"), _finding("prod")], [_entry(("a",), stacks=("dev",))], ["dev", "prod"])
    assert verdict.unexplained == [_finding("prod")]
    assert verdict.stale == []


def test_an_entry_name_or_stack_with_no_finding_is_stale():
    entries = [_entry(("a", "gone")), _entry(("b-*",), stacks=("dev",), check="CKV_AWS_2")]
    verdict = judge([_finding("dev"), _finding("prod")], entries, ["dev", "prod"])
    assert verdict.stale == ["accepted CKV_AWS_1 on aws:cloudwatch/logGroup:LogGroup gone in dev",
                             "accepted CKV_AWS_1 on aws:cloudwatch/logGroup:LogGroup gone in prod",
                             "accepted CKV_AWS_2 on aws:cloudwatch/logGroup:LogGroup b-* in dev"]
    # Scanning some stacks only judges the entries in those.
    assert judge([_finding("dev")], [_entry(("a",))], ["dev"]).stale == []


def test_an_entry_needs_its_text_and_a_finding_one_entry():
    verdict = judge([_finding("dev")], [_entry(("a",), text="because"), _entry(("*",))], ["dev"])
    assert [entry.text for entry in verdict.without_text] == ["because"]
    assert verdict.twice_covered == [_finding("dev")]


def test_what_the_translation_cannot_express_fails_the_scan(bad_plan):
    """An input the schema lacks and a type token with no Terraform type are reported, not
    dropped: a check could otherwise pass for want of what it reads."""
    log_group = bad_plan.one(LOG_GROUP, "unencrypted")
    odd_input = dataclasses.replace(log_group, inputs={**log_group.inputs, "madeUpInput": True})
    odd_type = dataclasses.replace(log_group, urn=f"{log_group.urn}-odd", type="aws:madeup/thing:Thing")
    plan = Plan(project="anythingllm", stack="odd", resources=[odd_input, odd_type], outputs={},
                secret_outputs=[])
    translation = translate(plan)
    assert translation.unknown_inputs == {"aws_cloudwatch_log_group.unencrypted": ["madeUpInput"]}
    assert translation.untranslated_types == ["aws:madeup/thing:Thing"]
    assert list(translation.resources) == ["aws_cloudwatch_log_group.unencrypted"]
    lines = translation.problems("odd")
    assert len(lines) == 2 and "aws:madeup/thing:Thing" in lines[0] and "madeUpInput" in lines[1]
