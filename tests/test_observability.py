"""Observability: the add-on and its identity, log retention, alarms per failure mode with their
thresholds and SNS actions, the encrypted topic, the dashboard, and the settings' errors."""

from __future__ import annotations

import copy
import json

import pytest

from components.anythingllm import target_group_resources
from components.controller_target_group import arn_suffix, find_target_group, stale_groups
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
from tests.cloudwatch_alarm_model import evaluate
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
        # With sign-in at the ALB, the public routes' target groups (their own Ingress) too.
        *([] if not (settings.ingress.auth and settings.ingress.auth.public_routes()) else
          ["alb-unhealthy-targets-stable-public", "alb-no-healthy-target-stable-public"]),
        "rds-cpu", "rds-free-storage", "rds-connections",
        *[f"cache-{kind}-{member}" for member in members for kind in ("cpu", "memory", "evictions")],
        # A model that sleeps (replicas: 0) has no floor to watch.
        *[f"gpu-capacity-{model.name}" for model in settings.model_serving.models
          if not model.sleeps],
    }
    assert set(alarms) == expected
    topic = plan.one(TOPIC, "observability-alarms")
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
    gpu = alarms["gpu-capacity-qwen2-5-7b-instruct"]
    assert gpu["namespace"] == "ContainerInsights" and gpu["metricName"] == "status_replicas_available"
    # PodName is the Deployment's name for Deployment metrics (k8sapiserver.go); the floor is the
    # model's replicas in Pulumi.prod.yaml.
    assert gpu["dimensions"] == {"ClusterName": "anythingllm-prod", "Namespace": "model-serving",
                                 "PodName": "vllm-qwen2-5-7b-instruct"}
    assert (gpu["comparisonOperator"], gpu["threshold"]) == ("LessThanThreshold", 2)
    assert gpu["treatMissingData"] == "breaching"
    assert gpu["period"] * gpu["evaluationPeriods"] == 30 * 60


def test_thresholds_come_from_config():
    config = copy.deepcopy(read_stack_config(ROOT, "dev"))
    config["anythingllm:observability"] = {"thresholds": {
        "alb5xxPercent": 2, "evaluationPeriods": 2, "databaseConnections": 50,
        "gpuPendingMinutes": 15, "cacheEvictions": 0}}
    for model in config["anythingllm:modelServing"]["models"]:  # awake, one replica each
        model["replicas"] = 1
        for key in ("idleMinutes", "awakeHours"):
            model.pop(key)
    alarms = {key: alarm.inputs for key, alarm in _alarms(run_stack(ROOT, "dev", config=config)).items()}
    assert alarms["alb-5xx-rate"]["threshold"] == 2
    assert alarms["alb-5xx-rate"]["evaluationPeriods"] == 2
    assert alarms["rds-connections"]["threshold"] == 50
    assert alarms["gpu-capacity-bge-m3"]["evaluationPeriods"] == 15
    assert alarms["cache-evictions-anythingllm-dev-cache-001"]["threshold"] == 0


def test_topic_is_encrypted_with_a_key_cloudwatch_may_use(stack_plans):
    plan = stack_plans["prod"]
    topic = plan.one(TOPIC, "observability-alarms")
    key = plan.one("aws:kms/key:Key", "observability-alarms")
    assert topic.property_dependencies["kmsMasterKeyId"] == [key.urn]
    statements = json.loads(key.inputs["policy"])["Statement"]
    publishers = next(s for s in statements if s["Sid"] == "AlarmsAndDatabaseEventsPublishToTheTopic")
    assert publishers["Principal"] == {"Service": ["cloudwatch.amazonaws.com", "events.rds.amazonaws.com"]}
    assert set(publishers["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    # (The scaling alerts' topic has its own subscriptions: tests/test_autoscaling.py.)
    subscriptions = [s for s in plan.of_type("aws:sns/topicSubscription:TopicSubscription")
                     if s.property_dependencies["topic"] == [topic.urn]]
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


def test_a_fresh_stack_previews_with_unknown_alb_ids(stack_plans):
    """Before the first `up` the ALB does not exist: the lookups stay unknown, the alarms are
    still planned."""
    plan = run_stack(ROOT, "dev", preview=True)
    assert len(plan.of_type(ALARM)) == len(_alarms(stack_plans["dev"]))


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


# ------------------------------------------------- each alarm fires in the failure it exists for

def _replay(alarm: dict, data) -> str:
    return evaluate(alarm, data)


def test_every_alarm_fires_in_its_failure_and_stays_quiet_when_healthy(stack_plans):
    """Each recorded prod alarm replayed through CloudWatch's evaluation rules
    (tests/cloudwatch_alarm_model.py) on the datapoints its failure produces, and on a healthy
    service's. The datapoints are what the metric's source emits then: e.g. Container Insights
    emits status_replicas_available = 0 for a Deployment whose pods no node can take."""
    alarms = {key: alarm.inputs for key, alarm in _alarms(stack_plans["prod"]).items()}
    n = 3  # evaluationPeriods in prod
    gib = GIB
    scenarios = {
        # key: (failure it exists for, datapoints then, healthy datapoints)
        "alb-5xx-rate": ("no pod can answer: the ALB itself returns 503",
                         {"requests": [0] * n, "target5xx": [None] * n, "elb5xx": [400] * n},
                         {"requests": [1000] * n, "target5xx": [3] * n, "elb5xx": [None] * n}),
        "alb-target-response-time": ("pods saturated, p95 to first byte 30 s", [30.0] * n, [0.4] * n),
        "alb-unhealthy-targets-stable": ("a pod fails /api/ping", [1] * n, [0] * n),
        "alb-no-healthy-target-stable": ("every pod gone: targets deregistered, no data",
                                         [None] * n, [3] * n),
        "rds-cpu": ("a runaway query", [97.0] * n, [20.0] * n),
        # Grown from 100 GiB to its 1000 GiB ceiling, 6 GiB left; healthy: just grown to
        # 110 GiB with 11 GiB free (autoscaling keeps >= 10 % of the current size free).
        "rds-free-storage": ("at the autoscaling ceiling and filling", [6 * gib] * n, [11 * gib] * n),
        "rds-connections": ("a connection leak", [1700] * n, [200] * n),
        "gpu-capacity-qwen2-5-7b-instruct": (
            "GPU group cannot grow: the Deployment reports 0 available", [0] * 30, [2] * 30),
    }
    for member in ("anythingllm-prod-cache-001",):
        scenarios[f"cache-cpu-{member}"] = ("the engine thread saturated", [99.0] * n, [10.0] * n)
        scenarios[f"cache-memory-{member}"] = ("the data set outgrew the node", [95.0] * n, [40.0] * n)
        scenarios[f"cache-evictions-{member}"] = ("keys evicted under memory pressure", [5000] * n, [0] * n)
    for key, (failure, broken, healthy) in scenarios.items():
        assert _replay(alarms[key], broken) == "ALARM", (key, failure)
        assert _replay(alarms[key], healthy) == "OK", (key, "healthy")
    # A quiet night: one error among three requests does not page.
    assert _replay(alarms["alb-5xx-rate"], {"requests": [3] * n, "target5xx": [1] * n,
                                            "elb5xx": [None] * n}) == "OK"
    # The Container Insights pipeline itself broken: no data breaches the GPU alarm too.
    assert _replay(alarms["gpu-capacity-bge-m3"], [None] * 30) == "ALARM"


def test_the_pending_pod_alarm_could_not_fire_when_capacity_was_missing():
    """Why the GPU alarm changed: pod_status_pending with a Service dimension is emitted from a
    node's kubelet for pods bound to it, with Service only for ready endpoints (podstore.go,
    endpoint.go); an unschedulable pod yields no datapoint, and with notBreaching the old
    alarm stayed OK exactly then."""
    old = {"comparisonOperator": "GreaterThanThreshold", "threshold": 0, "evaluationPeriods": 30,
           "datapointsToAlarm": 30, "treatMissingData": "notBreaching"}
    assert evaluate(old, [None] * 30) == "OK"


def test_database_storage_events_reach_the_topic(stack_plans):
    """RDS's own warnings, relative to the current allocation (RDS-EVENT-0089, 90 % used) and to
    the autoscaling ceiling (RDS-EVENT-0224/0225), for the stack's instance only."""
    plan = stack_plans["prod"]
    subscription = plan.one("aws:rds/eventSubscription:EventSubscription")
    assert subscription.inputs["sourceType"] == "db-instance"
    assert subscription.inputs["sourceIds"] == ["anythingllm-prod-postgres"]
    assert set(subscription.inputs["eventCategories"]) == {"low storage", "failure", "notification"}
    assert subscription.property_dependencies["snsTopic"] == [plan.one(TOPIC, "observability-alarms").urn]


# ------------------------------------------------- target groups the controller creates

class _FakeElbv2:
    """DescribeLoadBalancers/TargetGroups/Tags of an account where the controller's target
    group appears after `appears_after` polls."""

    def __init__(self, groups_by_poll):
        self.groups_by_poll, self.polls = groups_by_poll, 0

    def describe_load_balancers(self, Names):
        return {"LoadBalancers": [{"LoadBalancerArn": f"arn:lb/{Names[0]}"}]}

    def describe_target_groups(self, LoadBalancerArn):
        groups = self.groups_by_poll[min(self.polls, len(self.groups_by_poll) - 1)]
        self.polls += 1
        return {"TargetGroups": [{"TargetGroupArn": arn} for arn in groups]}

    def describe_tags(self, ResourceArns):
        return {"TagDescriptions": [
            {"ResourceArn": arn, "Tags": [{"Key": "ingress.k8s.aws/resource", "Value": arn.split("#")[1]}]}
            for arn in ResourceArns]}


def _arn(resource: str) -> str:
    return f"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/k8s-x/1#{resource}"


def test_target_group_waiter_waits_for_the_controller():
    """The canary's group appears only after the controller's reconcile: the waiter polls
    instead of failing as aws.lb.get_target_group does while nothing matches."""
    stable, canary = _arn("ns/app-stable:http"), _arn("ns/app-canary:http")
    client = _FakeElbv2([[stable], [stable], [stable, canary]])
    clock = iter(range(0, 10**6, 10))
    found = find_target_group(client, load_balancer_name="lb",
                              tags={"ingress.k8s.aws/resource": "ns/app-canary:http"},
                              timeout=900, clock=lambda: next(clock), sleep=lambda _: None)
    assert found == canary and client.polls == 3


def test_a_recreated_service_is_not_answered_with_its_old_group():
    """The controller's group name hashes the Service's UID (aws-load-balancer-controller v3.5.0
    model_build_target_group.go): after the Service is re-created the old group may linger for a
    reconcile, and would still carry the same tags. The waiter then skips it."""
    resource = "ns/app-canary:http"
    old, new = _arn(resource), _arn(resource).replace("/1#", "/2#")
    olds = {"arn": old, "service_uid": "uid-1", "trigger": "a"}
    assert stale_groups(olds, {"service_uid": "uid-2", "trigger": "a"}) == {old}
    assert stale_groups(olds, {"service_uid": "uid-1", "trigger": "b"}) == frozenset()
    client = _FakeElbv2([[old], [old, new], [new]])
    clock = iter(range(0, 10**6, 10))
    found = find_target_group(client, load_balancer_name="lb", tags={"ingress.k8s.aws/resource": resource},
                              timeout=900, exclude=frozenset({old}), clock=lambda: next(clock),
                              sleep=lambda _: None)
    assert found == new and client.polls == 2


def test_target_group_waiter_fails_clearly():
    tags = {"ingress.k8s.aws/resource": "ns/app-canary:http"}
    clock = iter(range(0, 10**6, 100))
    with pytest.raises(TimeoutError, match="no target group of lb carries"):
        find_target_group(_FakeElbv2([[_arn("ns/app-stable:http")]]), load_balancer_name="lb", tags=tags,
                          timeout=300, clock=lambda: next(clock), sleep=lambda _: None)
    twice = _FakeElbv2([[_arn("ns/app-canary:http"), _arn("ns/app-canary:http").replace("/1#", "/2#")]])
    with pytest.raises(RuntimeError, match="2 target groups"):
        find_target_group(twice, load_balancer_name="lb", tags=tags, timeout=300)
    assert arn_suffix("arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/k8s-a/b") == "targetgroup/k8s-a/b"


def test_alarms_take_their_target_group_from_the_waiter(canary_stack_plan):
    """Each track's alarms read the waiter's output, and the waiter is asked again whenever the
    Ingress changes (its trigger depends on the Ingress)."""
    plan = canary_stack_plan
    ingress = plan.one("kubernetes:networking.k8s.io/v1:Ingress")
    for track in ("stable", "canary"):
        waiter = plan.one("pulumi-python:dynamic:Resource", f"observability-target-group-{track}")
        assert waiter.property_dependencies["trigger"] == [ingress.urn]
        service = plan.one("kubernetes:core/v1:Service",
                           "anythingllm-app" if track == "stable" else "anythingllm-canary")
        assert waiter.property_dependencies["service_uid"] == [service.urn]
        alarm = next(a for a in plan.of_type(ALARM)
                     if a.name == f"observability-alb-unhealthy-targets-{track}")
        assert waiter.urn in alarm.dependencies
        assert waiter.inputs["__provider"] == "[dynamic provider code]"


@pytest.fixture(scope="module")
def canary_stack_plan():
    config = copy.deepcopy(read_stack_config(ROOT, "dev"))
    config["anythingllm:app"] = {**config["anythingllm:app"],
                                 "canary": {"imageTag": "pg-1.16.0", "weight": 10, "isolation": "shared"}}
    return run_stack(ROOT, "dev", config=config)


def test_the_waiter_provider_loads_where_pulumi_runs_it(tmp_path):
    """Pulumi's SDK serializes a dynamic provider with dill, by reference to its module; the host
    that runs it is `python -u -m pulumi.dynamic` started in the project directory, with the
    project's virtualenv (pulumi/pulumi sdk/python/dist/pulumi-resource-pulumi-python): `-m`
    puts that directory on sys.path. Load the serialized provider the same way, in a fresh
    process, and use it."""
    import subprocess
    import sys

    from pulumi.dynamic.dynamic import serialize_provider

    from components.controller_target_group import _Waiter

    (tmp_path / "provider.b64").write_text(serialize_provider(_Waiter()))
    script = (
        "import base64, sys, dill\n"
        f"provider = dill.loads(base64.b64decode(open({str(tmp_path / 'provider.b64')!r}).read()))\n"
        "result = provider.diff('id', {'trigger': 'a', 'tags': {}}, {'trigger': 'b', 'tags': {}})\n"
        "print(type(provider).__name__, result.changes)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["_Waiter", "True"]


def test_public_routes_have_their_own_target_group_alarms(stack_plans):
    """The controller makes a target group per Ingress and Service: the public routes' group is
    found by its own tag (ingress anythingllm-public) and alarmed like the browser's."""
    plan = stack_plans["prod"]
    groups = {r.name: r for r in plan.resources if r.name.startswith("observability-target-group-")}
    assert sorted(groups) == ["observability-target-group-stable", "observability-target-group-stable-public"]
    tags = groups["observability-target-group-stable-public"].inputs["tags"]
    assert tags["ingress.k8s.aws/resource"] == "anythingllm/anythingllm-public-anythingllm:http"
    assert target_group_resources(stack_settings("prod").app, public_routes=True)["stable-public"] == (
        "anythingllm/anythingllm-public-anythingllm:http")
