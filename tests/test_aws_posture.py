"""The AWS half's posture: encrypted log groups, flow logs, no default security group, audit
trails kept a year in prod, Enhanced Monitoring, keys that admit services for this account only.

Each expectation cites the AWS document it stands for; tools/aws_scan.py checks the same plans
with checkov's AWS rules (tests/test_aws_scan.py).
"""

from __future__ import annotations

import fnmatch
import json

import pytest

from tests.conftest import STACKS, base_config, expect_settings_error
from tests.iam_policy_model import ALLOWED, IMPLICIT_DENY, Request, evaluate

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


def _statements(document: str) -> list[dict]:
    return json.loads(document)["Statement"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_log_group_is_encrypted_with_the_logs_key(stack_plans, stack):
    plan = stack_plans[stack]
    key = next(k for k in plan.of_type("aws:kms/key:Key") if k.name == "logs")
    groups = plan.of_type(LOG_GROUP)
    assert {g.name for g in groups} >= {"cluster-control-plane", "database-postgresql", "network-flow-logs",
                                        "observability-application"}
    for group in groups:
        assert key.urn in group.property_dependencies["kmsKeyId"], group.name
    (service,) = [s for s in _statements(key.inputs["policy"]) if "Service" in s["Principal"]]
    # CloudWatch Logs user guide, "Encrypt log data in CloudWatch Logs using AWS KMS": the
    # regional service principal, limited by the log group ARN in the encryption context.
    assert service["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}
    (allowed,) = service["Condition"]["ArnLike"].values()
    assert list(service["Condition"]["ArnLike"]) == ["kms:EncryptionContext:aws:logs:arn"]
    # The stack's log groups only: each matches a pattern, and every pattern is the stack's.
    prefix = "arn:aws:logs:us-east-1:123456789012:log-group:"
    for group in groups:
        assert any(fnmatch.fnmatchcase(prefix + group.inputs["name"], arn) for arn in allowed), group.name
    cluster = plan.one("aws:eks/cluster:Cluster").inputs["name"]
    assert all(arn.startswith(prefix) and cluster in arn and arn.endswith("/*") for arn in allowed)


@pytest.mark.parametrize("stack", STACKS)
def test_the_vpc_logs_every_flow_and_its_default_group_is_empty(stack_plans, stack):
    plan = stack_plans[stack]
    (flow_log,) = plan.of_type("aws:ec2/flowLog:FlowLog")
    vpc = plan.one("aws:ec2/vpc:Vpc")
    assert flow_log.inputs["trafficType"] == "ALL"
    assert flow_log.inputs["logDestinationType"] == "cloud-watch-logs"
    assert vpc.urn in flow_log.property_dependencies["vpcId"]
    role = plan.one("aws:iam/role:Role", "network-flow-logs")
    (trust,) = _statements(role.inputs["assumeRolePolicy"])
    # VPC user guide, "IAM role for publishing flow logs": the confused-deputy conditions.
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    assert trust["Condition"]["ArnLike"]["aws:SourceArn"].endswith(":123456789012:vpc-flow-log/*")
    policy = _statements(plan.one("aws:iam/rolePolicy:RolePolicy", "network-flow-logs").inputs["policy"])
    wildcard = [s for s in policy if s["Resource"] == "*"]
    assert [s["Action"] for s in wildcard] == ["logs:DescribeLogGroups"]  # takes no resource ARN
    (default_group,) = plan.of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert vpc.urn in default_group.property_dependencies["vpcId"]
    # Given as empty lists (not left out): the provider then removes rules added later on every up.
    assert (default_group.inputs["ingress"], default_group.inputs["egress"]) == ([], [])


def test_prod_keeps_audit_trails_a_year_and_monitors_the_database_os(stack_plans):
    plan = stack_plans["prod"]
    groups = {g.name: g.inputs["retentionInDays"] for g in plan.of_type(LOG_GROUP)}
    assert groups["cluster-control-plane"] >= 365 and groups["database-postgresql"] >= 365
    # ... and they outlive a destroy of prod (kept in AWS); dev's go with the stack.
    for name in ("cluster-control-plane", "database-postgresql"):
        assert plan.one(LOG_GROUP, name).retain_on_delete
        assert not stack_plans["dev"].one(LOG_GROUP, name).retain_on_delete
    database = plan.one("aws:rds/instance:Instance")
    assert database.inputs["monitoringInterval"] == 60
    role = plan.one("aws:iam/role:Role", "database-monitoring")
    (trust,) = _statements(role.inputs["assumeRolePolicy"])
    assert trust["Principal"] == {"Service": "monitoring.rds.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    attachment = plan.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "database-monitoring")
    assert attachment.inputs["policyArn"].endswith(":policy/service-role/AmazonRDSEnhancedMonitoringRole")
    # RDS checks the role's permissions when the interval is set: attached first.
    assert plan.waits_for(database, attachment)
    dev = stack_plans["dev"].one("aws:rds/instance:Instance")
    assert dev.inputs.get("monitoringInterval", 0) == 0


@pytest.mark.parametrize("mutate, key, reason", [
    (lambda c: c["cluster"].update(logRetentionDays=90), "cluster.logRetentionDays", "below 365"),
    (lambda c: c["cluster"].update(logTypes=["api"]), "cluster.logTypes", "must include 'audit'"),
    (lambda c: c.__setitem__("database", {"logRetentionDays": 180}), "database.logRetentionDays",
     "below 365"),
    (lambda c: c.__setitem__("database", {"enhancedMonitoringSeconds": 0}),
     "database.enhancedMonitoringSeconds", "cannot be 0 in prod"),
])
def test_prod_refuses_shorter_audit_trails_and_no_os_metrics(mutate, key, reason):
    config = base_config("prod")
    mutate(config)
    expect_settings_error(config, key, reason)


def test_the_alarm_key_admits_services_for_this_account_only(stack_plans):
    key = next(k for k in stack_plans["prod"].of_type("aws:kms/key:Key") if k.name == "observability-alarms")
    (service,) = [s for s in _statements(key.inputs["policy"]) if "Service" in s["Principal"]]
    assert service["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


@pytest.mark.parametrize("key_name, via", [
    ("database-rds", "rds.us-east-1.amazonaws.com"),
    ("storage-efs", "elasticfilesystem.us-east-1.amazonaws.com"),
    ("cache-elasticache", ["elasticache.us-east-1.amazonaws.com", "dax.us-east-1.amazonaws.com"]),
])
def test_data_keys_are_usable_only_through_their_service(stack_plans, key_name, via):
    """kms:ViaService and kms:CallerAccount on every use, as AWS managed keys have; the account
    keeps administering the key (PutKeyPolicy: KMS's lockout check) but cannot use it directly,
    nor create a grant that would bypass the condition."""
    key = next(k for k in stack_plans["prod"].of_type("aws:kms/key:Key") if k.name == key_name)
    admin, use = _statements(key.inputs["policy"])
    assert admin["Principal"] == use["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert "kms:PutKeyPolicy" in admin["Action"]
    assert not {"kms:Decrypt", "kms:CreateGrant", "kms:*", "kms:Create*"} & set(admin["Action"])
    assert "Condition" not in admin
    assert use["Condition"] == {"StringEquals": {"kms:ViaService": via, "kms:CallerAccount": "123456789012"}}
    assert {"kms:Decrypt", "kms:GenerateDataKey*", "kms:CreateGrant"} <= set(use["Action"])


@pytest.mark.parametrize("stack", STACKS)
def test_the_eks_secrets_key_is_used_only_by_eks(stack_plans, stack):
    """The cluster's role (which trusts only eks.amazonaws.com) uses the key; whoever creates the
    cluster may let EKS create its grant (kms:CreateGrant and kms:DescribeKey, EKS user guide,
    "Encrypt Kubernetes secrets with KMS"), only through EKS; nobody else in the account can
    decrypt Secrets' data keys, and the account still administers the key."""
    plan = stack_plans[stack]
    key = plan.one("aws:kms/key:Key", "cluster-secrets")
    role = plan.one("aws:iam/role:Role", "cluster-control-plane")
    policy = json.loads(key.inputs["policy"])
    assert key.property_dependencies.get("policy") and role.urn in key.property_dependencies["policy"]
    (role_statement,) = [s for s in policy["Statement"] if "root" not in s["Principal"]["AWS"]]
    role_arn = role_statement["Principal"]["AWS"]
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {
        "Service": "eks.amazonaws.com"}
    cluster = plan.one("aws:eks/cluster:Cluster", "cluster")
    assert plan.waits_for(cluster, key)

    admin_user = "arn:aws:iam::123456789012:role/platform-admin"
    key_arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    via_eks = {"kms:ViaService": "eks.us-east-1.amazonaws.com", "kms:CallerAccount": "123456789012"}
    allowed = [
        Request("kms:Decrypt", key_arn, principal=role_arn),
        Request("kms:ListGrants", key_arn, principal=role_arn),
        Request("kms:CreateGrant", key_arn, via_eks, principal=admin_user),
        Request("kms:DescribeKey", key_arn, via_eks, principal=admin_user),
        Request("kms:PutKeyPolicy", key_arn, principal=admin_user),
        Request("kms:ScheduleKeyDeletion", key_arn, principal=admin_user),
    ]
    refused = [
        Request("kms:Decrypt", key_arn, principal=admin_user),
        Request("kms:Decrypt", key_arn, via_eks, principal=admin_user),
        Request("kms:CreateGrant", key_arn, principal=admin_user),
        Request("kms:CreateGrant", key_arn, {**via_eks, "kms:ViaService": "ec2.us-east-1.amazonaws.com"},
                principal=admin_user),
        Request("kms:CreateGrant", key_arn, {**via_eks, "kms:CallerAccount": "999999999999"},
                principal="arn:aws:iam::999999999999:role/elsewhere"),
        Request("kms:Decrypt", key_arn, principal="arn:aws:iam::123456789012:role/other-cluster-role"),
    ]
    assert [r for r in allowed if evaluate(policy, r) != ALLOWED] == []
    assert [r for r in refused if evaluate(policy, r) != IMPLICIT_DENY] == []
