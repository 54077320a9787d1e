"""Observability: the add-on and its identity, log retention, alarms per failure mode with their
thresholds and SNS actions, the encrypted topic, the dashboard, and the settings' errors."""

from __future__ import annotations

import copy
import json

import pytest

from components.anythingllm import target_group_resources
from components.observability import (
    ADDON,
    AGENT_NAMESPACE,
    AGENT_SERVICE_ACCOUNT,
    CONTAINER_INSIGHTS_LOG_GROUPS,
    cache_member_ids,
    dashboard_body,
    database_alarms,
)
from components.settings import AlarmThresholds, CacheSettings
from components.settings.observability import database_memory_gib, max_connections
from tests.conftest import ROOT, STACKS, base_config, expect_settings_error, settings_from, stack_settings
from tools.engine import read_stack_config, run_stack

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
GIB = 2**30


def _alarms(plan) -> dict[str, dict]:
    cluster = plan.outputs["clusterName"]
    return {r.inputs["name"].removeprefix(f"{cluster}-"): r for r in plan.of_type(ALARM)}


@pytest.mark.parametrize("stack", STACKS)
def test_every_failure_mode_has_an_alarm_that_notifies_the_topic(stack_plans, stack):
    plan, settings = stack_plans[stack], stack_settings(stack)
    alarms = _alarms(plan)
    members = cache_member_ids(f"{plan.outputs['clusterName']}-cache", settings.cache)
    expected = {
        "alb-5xx-rate", "alb-target-response-time",
        "alb-unhealthy-targets-stable", "alb-no-healthy-target-stable",
        "rds-cpu", "rds-free-storage", "rds-connections",
        *[f"cache-{kind}-{member}" for member in members for kind in ("cpu", "memory", "evictions")],
        *[f"gpu-pending-{model.name}" for model in settings.model_serving.models],
    }
    assert set(alarms) == expected
    topic = plan.one(TOPIC)
    topic_arn = plan.outputs["alarmTopicArn"]
    for key, alarm in alarms.items():
        assert alarm.inputs["alarmActions"] == [topic_arn], key
        assert alarm.inputs["okActions"] == [topic_arn], key
        assert alarm.property_dependencies["alarmActions"] == [topic.urn], key
        assert alarm.inputs["datapointsToAlarm"] == alarm.inputs["evaluationPeriods"], key


def test_prod_alarm_thresholds_and_metrics(stack_plans):
    plan, settings = stack_plans["prod"], stack_settings("prod")
    alarms = {key: alarm.inputs for key, alarm in _alarms(plan).items()}
    rds = {"DBInstanceIdentifier": "anythingllm-prod-postgres"}
    assert alarms["rds-cpu"]["metricName"] == "CPUUtilization"
    assert alarms["rds-cpu"]["dimensions"] == rds and alarms["rds-cpu"]["threshold"] == 80
    # By hand: 10 % of the 100 GiB allocated in Pulumi.prod.yaml.
    assert settings.database.allocated_storage_gib == 100
    assert alarms["rds-free-storage"]["threshold"] == 10 * GIB
    assert alarms["rds-free-storage"]["comparisonOperator"] == "LessThanThreshold"
    # db.r7g.large: 16 GiB / 9531392 bytes per connection = 1802; 80 % of it.
    assert alarms["rds-connections"]["threshold"] == 1441
    assert alarms["alb-target-response-time"]["extendedStatistic"] == "p95"
    assert alarms["alb-target-response-time"]["threshold"] == 10
    assert alarms["alb-5xx-rate"]["threshold"] == 5
    rate = alarms["alb-5xx-rate"]["metricQueries"][-1]
    assert rate["returnData"] is True and rate["expression"].startswith("IF((FILL(requests, 0)")
    unhealthy = alarms["alb-unhealthy-targets-stable"]
    assert unhealthy["metricName"] == "UnHealthyHostCount"
    assert set(unhealthy["dimensions"]) == {"LoadBalancer", "TargetGroup"}
    assert unhealthy["dimensions"]["LoadBalancer"].startswith("app/anythingllm-prod/")
    assert alarms["alb-no-healthy-target-stable"]["treatMissingData"] == "breaching"
    # Three Valkey nodes (primary + 2 replicas), each watched for engine CPU, memory, evictions.
    assert {a["dimensions"]["CacheClusterId"] for k, a in alarms.items() if k.startswith("cache-")} == {
        "anythingllm-prod-cache-001", "anythingllm-prod-cache-002", "anythingllm-prod-cache-003"}
    assert alarms["cache-cpu-anythingllm-prod-cache-001"]["metricName"] == "EngineCPUUtilization"
    gpu = alarms["gpu-pending-qwen2-5-7b-instruct"]
    assert gpu["namespace"] == "ContainerInsights" and gpu["metricName"] == "pod_status_pending"
    assert gpu["dimensions"] == {"ClusterName": "anythingllm-prod", "Namespace": "model-serving",
                                 "Service": "vllm-qwen2-5-7b-instruct"}
    assert gpu["period"] * gpu["evaluationPeriods"] == 30 * 60


def test_thresholds_come_from_config():
    config = copy.deepcopy(read_stack_config(ROOT, "dev"))
    config["anythingllm:observability"] = {"thresholds": {
        "alb5xxPercent": 2, "evaluationPeriods": 2, "databaseConnections": 50,
        "gpuPendingMinutes": 15, "cacheEvictions": 0}}
    alarms = {key: alarm.inputs for key, alarm in _alarms(run_stack(ROOT, "dev", config=config)).items()}
    assert alarms["alb-5xx-rate"]["threshold"] == 2
    assert alarms["alb-5xx-rate"]["evaluationPeriods"] == 2
    assert alarms["rds-connections"]["threshold"] == 50
    assert alarms["gpu-pending-bge-m3"]["evaluationPeriods"] == 15
    assert alarms["cache-evictions-anythingllm-dev-cache-001"]["threshold"] == 0


def test_topic_is_encrypted_with_a_key_cloudwatch_may_use(stack_plans):
    plan = stack_plans["prod"]
    topic = plan.one(TOPIC)
    key = plan.one("aws:kms/key:Key", "observability-alarms")
    assert topic.property_dependencies["kmsMasterKeyId"] == [key.urn]
    statements = json.loads(key.inputs["policy"])["Statement"]
    cloudwatch = next(s for s in statements if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"})
    assert set(cloudwatch["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    subscriptions = plan.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert [(s.inputs["protocol"], s.inputs["endpoint"]) for s in subscriptions] == [
        ("email", "platform-oncall@example.com")]
    assert stack_plans["dev"].of_type("aws:sns/topicSubscription:TopicSubscription") == []


@pytest.mark.parametrize("stack,days", [("dev", 7), ("prod", 90), ("staging", 3)])
def test_container_log_groups_exist_before_the_addon_with_retention(stack_plans, stack, days):
    plan = stack_plans[stack]
    cluster = plan.outputs["clusterName"]
    groups = {r.inputs["name"]: r for r in plan.of_type("aws:cloudwatch/logGroup:LogGroup")
              if r.inputs["name"].startswith("/aws/containerinsights/")}
    assert set(groups) == {f"/aws/containerinsights/{cluster}/{kind}"
                           for kind in CONTAINER_INSIGHTS_LOG_GROUPS}
    addon = next(r for r in plan.of_type("aws:eks/addon:Addon") if r.inputs["addonName"] == ADDON)
    for group in groups.values():
        assert group.inputs["retentionInDays"] == days
        assert plan.waits_for(addon, group)
    # The control plane's retention is per environment too (cluster.logRetentionDays).
    control = plan.one("aws:cloudwatch/logGroup:LogGroup", "cluster-control-plane")
    assert control.inputs["retentionInDays"] == stack_settings(stack).cluster.log_retention_days


def test_addon_uses_pod_identity_with_the_agent_policy_only(stack_plans):
    plan = stack_plans["prod"]
    addon = next(r for r in plan.of_type("aws:eks/addon:Addon") if r.inputs["addonName"] == ADDON)
    [association] = addon.inputs["podIdentityAssociations"]
    assert association["serviceAccount"] == AGENT_SERVICE_ACCOUNT
    role = plan.one("aws:iam/role:Role", "observability-agent")
    assert role.urn in addon.property_dependencies["podIdentityAssociations"]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:RequestTag/kubernetes-namespace"] == AGENT_NAMESPACE
    attachments = [r.inputs["policyArn"] for r in plan.children(role.urn)
                   if r.type == "aws:iam/rolePolicyAttachment:RolePolicyAttachment"]
    assert attachments == ["arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"]
    # Its operator runs on the system nodes; its DaemonSets follow GPU nodes whenever they come,
    # so the add-on waits for the system group only (a GPU shortage must not hold it back).
    for group in plan.of_type("aws:eks/nodeGroup:NodeGroup"):
        assert plan.waits_for(addon, group) == (group.name == "cluster-system"), group.name


def test_target_groups_are_found_by_the_controllers_tag():
    settings = settings_from(base_config())
    assert target_group_resources(settings.app) == {"stable": "anythingllm/anythingllm-anythingllm:http"}
    config = base_config()
    config["app"] = {"canary": {"imageTag": "pg-1.17.0", "weight": 5, "isolation": "shared"}}
    assert target_group_resources(settings_from(config).app) == {
        "stable": "anythingllm/anythingllm-anythingllm:http",
        "canary": "anythingllm/anythingllm-anythingllm-canary:http"}


def test_cache_members_follow_elasticache_naming():
    def cache(**values) -> CacheSettings:
        return CacheSettings(nodeType="cache.m7g.large", snapshotRetentionDays=1, **values)

    assert cache_member_ids("rg", cache(replicas=1)) == ["rg-001", "rg-002"]
    assert cache_member_ids("rg", cache(replicas=1, clusterMode="enabled", shards=2)) == [
        "rg-0001-001", "rg-0001-002", "rg-0002-001", "rg-0002-002"]


def test_max_connections_estimate():
    assert database_memory_gib("db.t4g.medium") == 4
    assert database_memory_gib("db.r7g.2xlarge") == 64
    assert database_memory_gib("db.x2g.large") is None
    assert max_connections("db.t4g.medium") == 4 * GIB // 9531392 == 450
    assert max_connections("db.r7g.16xlarge") == 5000  # RDS's ceiling


def test_database_alarm_math_by_hand():
    alarms = {a.key: a for a in database_alarms(AlarmThresholds(databaseFreeStoragePercent=25),
                                               identifier="db", allocated_storage_gib=40,
                                               connections=100)}
    assert alarms["rds-free-storage"].threshold == 10 * GIB  # 25 % of 40 GiB


def test_dashboard_has_the_alarm_strip_and_one_graph_per_alarm(stack_plans):
    plan = stack_plans["dev"]
    body = json.loads(plan.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    alarms = plan.of_type(ALARM)
    strip, *graphs = body["widgets"]
    assert strip["type"] == "alarm" and len(strip["properties"]["alarms"]) == len(alarms)
    assert sorted(g["properties"]["title"] for g in graphs) == sorted(
        a.inputs["name"].removeprefix("anythingllm-dev-") for a in alarms)
    rate = next(g for g in graphs if g["properties"]["title"] == "alb-5xx-rate")
    assert [row[-1].get("id") if isinstance(row[-1], dict) else None
            for row in rate["properties"]["metrics"]] == ["requests", "target5xx", "elb5xx", "rate"]
    assert dashboard_body([], alarm_arns=[], region="us-east-1")["widgets"][0]["type"] == "alarm"


def test_a_fresh_stack_previews_with_unknown_alb_ids():
    """Before the first `up` the ALB does not exist: the lookups stay unknown, the alarms are
    still planned."""
    plan = run_stack(ROOT, "dev", preview=True)
    assert len(plan.of_type(ALARM)) == len(_alarms(run_stack(ROOT, "dev")))


@pytest.mark.parametrize("observability,path,reason", [
    ({"alarmEmails": ["not-an-address"]}, "observability.alarmEmails[0]", "not an email address"),
    ({"alarmEmails": ["a@example.com", "a@example.com"]}, "observability.alarmEmails", "twice"),
    ({"containerLogRetentionDays": 10}, "observability.containerLogRetentionDays",
     "not a CloudWatch retention"),
    ({"thresholds": {"alb5xxPercent": 0}}, "observability.thresholds.alb5xxPercent", "greater than 0"),
    ({"thresholds": {"gpuPendingMinutes": 2}}, "observability.thresholds.gpuPendingMinutes",
     "greater than or equal to 5"),
    ({"thresholds": {"albLatency": 3}}, "observability.thresholds.albLatency", "unknown key"),
])
def test_bad_observability_settings_name_the_key(observability, path, reason):
    config = base_config()
    config["observability"] = observability
    expect_settings_error(config, path, reason)


def test_prod_needs_someone_to_alert():
    config = base_config("prod")
    config["observability"] = {}
    expect_settings_error(config, "observability.alarmEmails", "is required in prod")


def test_unknown_database_class_needs_an_explicit_connection_threshold():
    config = base_config()
    config["database"] = {"instanceClass": "db.x2g.large"}
    expect_settings_error(config, "observability.thresholds.databaseConnections", "is required for")
    config["observability"] = {"thresholds": {"databaseConnections": 900}}
    settings = settings_from(config)
    assert settings.observability.database_connections_threshold("db.x2g.large") == 900


def test_addon_version_can_be_pinned():
    config = copy.deepcopy(read_stack_config(ROOT, "dev"))
    config["anythingllm:cluster"]["addonVersions"] = {ADDON: "v4.5.0-eksbuild.1"}
    addon = next(r for r in run_stack(ROOT, "dev", config=config).of_type("aws:eks/addon:Addon")
                 if r.inputs["addonName"] == ADDON)
    assert addon.inputs["addonVersion"] == "v4.5.0-eksbuild.1"
