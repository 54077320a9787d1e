"""Observability: Container Insights and logs, alarms for every failure mode, a dashboard."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from . import iam
from .cluster import Cluster
from .controller_target_group import ControllerTargetGroup
from .kms import encryption_key
from .options import named
from .pod_identity import pod_identity_role
from .settings import AlarmThresholds, CacheSettings, ObservabilitySettings

ADDON = "amazon-cloudwatch-observability"
# The add-on's CloudWatch agent and Fluent Bit both run as this service account.
AGENT_NAMESPACE = "amazon-cloudwatch"
AGENT_SERVICE_ACCOUNT = "cloudwatch-agent"
AGENT_POLICY = "CloudWatchAgentServerPolicy"
# Log groups Container Insights writes (application: container stdout/stderr; performance:
# the metrics' raw events). Created here so that their retention is ours, not "never expire".
CONTAINER_INSIGHTS_LOG_GROUPS = ("application", "dataplane", "host", "performance")
PERIOD_SECONDS = 300
GPU_PERIOD_SECONDS = 60
GIB = 2**30


def agent_configuration() -> dict[str, Any]:
    """The add-on's CloudWatch agent configuration, stated rather than left to the add-on's
    default: the GPU alarms read `status_replicas_available`, which the agent publishes only
    with enhanced Container Insights on its EMF pipeline (aws/amazon-cloudwatch-agent
    translator/translate/otel/exporter/awsemf/kubernetes.go, getDeploymentMetricDeclarations).
    That is today's default (aws-observability/helm-charts charts/amazon-cloudwatch-observability
    values.yaml); a later add-on that changed it would leave those alarms without data, and they
    treat missing data as breaching. Setting `agent.config` replaces the whole default agent
    configuration (Application Signals and traces, which nothing here uses, are left out)."""
    return {"agent": {"config": {"logs": {"metrics_collected": {"kubernetes": {
        "enhanced_container_insights": True, "accelerated_compute_metrics": True}}}}}}


def container_insights_log_group(cluster_name: str, kind: str) -> str:
    return f"/aws/containerinsights/{cluster_name}/{kind}"


def alert_topic(name: str, *, topic_name: str, description: str, key_policy: pulumi.Input[str],
                retain: bool, tags: dict[str, str], parent: pulumi.Resource) -> aws.sns.Topic:
    """The SNS topic `topic_name`, encrypted with a KMS key of its own (alias `topic_name`) whose
    policy, `key_policy`, admits the services that publish to it: the AWS managed key of SNS
    admits none of them. Key and topic are both named `name`, children of `parent`."""
    key = encryption_key(name, description=description, alias=topic_name, retain=retain,
                         tags=tags, parent=parent, policy=key_policy)
    return aws.sns.Topic(name, name=topic_name, kms_master_key_id=key.arn, tags=tags,
                         opts=named(parent=parent))


def subscribe_emails(name: str, topic: aws.sns.Topic, addresses: list[str]) -> None:
    """An e-mail subscription of `topic` per address (`<name>-<address>`, children of the
    topic); each address confirms its own."""
    for address in addresses:
        aws.sns.TopicSubscription(f"{name}-{address}", topic=topic.arn, protocol="email",
                                  endpoint=address, opts=pulumi.ResourceOptions(parent=topic))


def cache_member_ids(replication_group_id: str, settings: CacheSettings) -> list[str]:
    """The cache clusters (nodes) ElastiCache names inside a replication group: `<id>-001`.. per
    node, or `<id>-0001-001`.. per shard and node in cluster mode."""
    nodes = settings.replicas + 1
    if settings.cluster_mode == "enabled":
        return [f"{replication_group_id}-{shard:04d}-{node:03d}"
                for shard in range(1, settings.shards + 1) for node in range(1, nodes + 1)]
    return [f"{replication_group_id}-{node:03d}" for node in range(1, nodes + 1)]


@dataclass(frozen=True)
class WatchedWorkload:
    """A Deployment or StatefulSet by name and the number of available replicas below which it
    is failing."""

    name: str
    floor: int


@dataclass(frozen=True)
class Alarm:
    """One CloudWatch alarm: either a single `metric` or metric-math `queries`."""

    key: str  # unique within the stack; the alarm is named `<cluster>-<key>`
    description: str
    comparison: str
    threshold: float
    evaluation_periods: int
    metric: dict[str, Any] | None = None  # namespace, metric_name, dimensions, statistic, period
    queries: list[dict[str, Any]] = field(default_factory=list)
    treat_missing_data: str = "notBreaching"


def _metric(namespace: str, name: str, dimensions: Mapping[str, Any], *, statistic: str,
            period: int = PERIOD_SECONDS) -> dict[str, Any]:
    statistic_key = "extended_statistic" if statistic.startswith("p") else "statistic"
    return {"namespace": namespace, "metric_name": name, "dimensions": dict(dimensions),
            "period": period, statistic_key: statistic}


def alb_alarms(thresholds: AlarmThresholds, *, load_balancer: Any,
               target_groups: Mapping[str, Any]) -> list[Alarm]:
    """5xx rate, p95 target response time, and per target group (by track) unhealthy targets
    and no healthy target at all. `load_balancer`/`target_groups`: ARN suffixes."""
    periods = thresholds.evaluation_periods

    def alb_query(query_id: str, name: str) -> dict[str, Any]:
        return {"id": query_id, "return_data": False, "metric": {
            "namespace": "AWS/ApplicationELB", "metric_name": name, "period": PERIOD_SECONDS,
            "stat": "Sum", "dimensions": {"LoadBalancer": load_balancer}}}

    # RequestCount counts only requests routed to a target; those the ALB answers itself (503
    # when no target is healthy) are only in HTTPCode_ELB_5XX_Count, so they join the total.
    total = "(FILL(requests, 0) + FILL(elb5xx, 0))"
    errors = "(FILL(target5xx, 0) + FILL(elb5xx, 0))"
    alarms = [
        Alarm(
            key="alb-5xx-rate",
            description=(f"More than {thresholds.alb_5xx_percent}% of requests answered 5xx (by "
                         f"AnythingLLM or the ALB) in periods with at least "
                         f"{thresholds.alb_5xx_min_requests} requests"),
            comparison="GreaterThanThreshold", threshold=thresholds.alb_5xx_percent,
            evaluation_periods=periods,
            queries=[
                alb_query("requests", "RequestCount"),
                alb_query("target5xx", "HTTPCode_Target_5XX_Count"),
                alb_query("elb5xx", "HTTPCode_ELB_5XX_Count"),
                {"id": "rate", "return_data": True, "label": "5xx %",
                 "expression": f"IF({total} >= {thresholds.alb_5xx_min_requests}, "
                               f"100 * {errors} / {total}, 0)"},
            ],
        ),
        Alarm(
            key="alb-target-response-time",
            description=(f"p95 time to AnythingLLM's response headers above "
                         f"{thresholds.alb_target_response_seconds} s"),
            comparison="GreaterThanThreshold", threshold=thresholds.alb_target_response_seconds,
            evaluation_periods=periods,
            metric=_metric("AWS/ApplicationELB", "TargetResponseTime",
                           {"LoadBalancer": load_balancer}, statistic="p95"),
        ),
    ]
    for track, target_group in target_groups.items():
        dimensions = {"LoadBalancer": load_balancer, "TargetGroup": target_group}
        alarms += [
            Alarm(
                key=f"alb-unhealthy-targets-{track}",
                description=(f"At least {thresholds.alb_unhealthy_targets} {track} AnythingLLM "
                             "target(s) failing the ALB health check"),
                comparison="GreaterThanOrEqualToThreshold",
                threshold=thresholds.alb_unhealthy_targets, evaluation_periods=periods,
                metric=_metric("AWS/ApplicationELB", "UnHealthyHostCount", dimensions,
                               statistic="Maximum"),
            ),
            # Pods that are gone are deregistered, not unhealthy: only this one sees zero pods.
            Alarm(
                key=f"alb-no-healthy-target-{track}",
                description=f"No healthy {track} AnythingLLM target behind the ALB",
                comparison="LessThanThreshold", threshold=1, evaluation_periods=periods,
                metric=_metric("AWS/ApplicationELB", "HealthyHostCount", dimensions,
                               statistic="Minimum"),
                treat_missing_data="breaching",
            ),
        ]
    return alarms


def database_alarms(thresholds: AlarmThresholds, *, identifier: str, allocated_storage_gib: int,
                    connections: int) -> list[Alarm]:
    """CPU, connections, and free storage as a last resort.

    Storage autoscaling grows the volume when less than 10 % of the *current* allocation is free
    (RDS user guide, "Managing capacity automatically with Amazon RDS storage autoscaling"), and
    RDS publishes no per-instance metric of the current allocation (only FreeStorageSpace), so a
    percentage of it cannot be a CloudWatch threshold. The warnings relative to the current size
    and to the ceiling come from RDS itself (`database_event_categories`); this alarm fires when
    free space is below `databaseFreeStoragePercent` of the *initial* allocation, the smallest the
    volume can ever be: autoscaling would already have grown it, so it could not (at the ceiling,
    within its 6-hour cool-off, or no autoscaling at all).
    """
    dimensions = {"DBInstanceIdentifier": identifier}
    periods = thresholds.evaluation_periods
    free_bytes = allocated_storage_gib * GIB * thresholds.database_free_storage_percent / 100
    return [
        Alarm(key="rds-cpu", description=f"Database CPU above {thresholds.database_cpu_percent}%",
              comparison="GreaterThanThreshold", threshold=thresholds.database_cpu_percent,
              evaluation_periods=periods,
              metric=_metric("AWS/RDS", "CPUUtilization", dimensions, statistic="Average")),
        Alarm(key="rds-free-storage",
              description=(f"Database free storage below {thresholds.database_free_storage_percent}% "
                           f"of the {allocated_storage_gib} GiB first allocated: storage autoscaling "
                           "could not grow the volume (ceiling, cool-off) and it is filling up"),
              comparison="LessThanThreshold", threshold=round(free_bytes),
              evaluation_periods=periods,
              metric=_metric("AWS/RDS", "FreeStorageSpace", dimensions, statistic="Minimum")),
        Alarm(key="rds-connections", description=f"More than {connections} database connections",
              comparison="GreaterThanThreshold", threshold=connections, evaluation_periods=periods,
              metric=_metric("AWS/RDS", "DatabaseConnections", dimensions, statistic="Maximum")),
    ]


# RDS event categories sent to the alarm topic (RDS user guide, "Amazon RDS event categories and
# event messages", DB instance events): `low storage` (RDS-EVENT-0007 storage exhausted,
# RDS-EVENT-0089 more than 90 % of the current allocation used), `failure` (RDS-EVENT-0223
# storage autoscaling unable to scale, RDS-EVENT-0224 next step would reach the ceiling, and
# failed instances), `notification` (RDS-EVENT-0225 allocation at 80 % of the ceiling).
DATABASE_EVENT_CATEGORIES = ("failure", "low storage", "notification")


def cache_alarms(thresholds: AlarmThresholds, *, member_ids: list[str]) -> list[Alarm]:
    """Per cache node: the engine thread's CPU (Valkey/Redis execute commands on one thread,
    so host CPU hides a saturated engine), memory used by the data set, evictions."""
    periods = thresholds.evaluation_periods
    alarms = []
    for member in member_ids:
        dimensions = {"CacheClusterId": member}
        alarms += [
            Alarm(key=f"cache-cpu-{member}", description=f"{member}: engine CPU above "
                                                          f"{thresholds.cache_cpu_percent}%",
                  comparison="GreaterThanThreshold", threshold=thresholds.cache_cpu_percent,
                  evaluation_periods=periods,
                  metric=_metric("AWS/ElastiCache", "EngineCPUUtilization", dimensions,
                                 statistic="Average")),
            Alarm(key=f"cache-memory-{member}", description=f"{member}: memory above "
                                                             f"{thresholds.cache_memory_percent}%",
                  comparison="GreaterThanThreshold", threshold=thresholds.cache_memory_percent,
                  evaluation_periods=periods,
                  metric=_metric("AWS/ElastiCache", "DatabaseMemoryUsagePercentage", dimensions,
                                 statistic="Maximum")),
            Alarm(key=f"cache-evictions-{member}",
                  description=f"{member}: more than {thresholds.cache_evictions} evictions per 5 minutes",
                  comparison="GreaterThanThreshold", threshold=thresholds.cache_evictions,
                  evaluation_periods=periods,
                  metric=_metric("AWS/ElastiCache", "Evictions", dimensions, statistic="Sum")),
        ]
    return alarms


def gpu_alarms(thresholds: AlarmThresholds, *, cluster_name: str, namespace: str,
               workloads: Mapping[str, WatchedWorkload]) -> list[Alarm]:
    """Per model: fewer available replicas than its floor for `gpuPendingMinutes` (its GPU group
    cannot grow: at maxSize, no capacity for its instance types, or no working autoscaler).

    Container Insights' `pod_status_*` metrics come from each node's kubelet pod list
    (amazon-contributing/opentelemetry-collector-contrib, receiver/awscontainerinsightreceiver/
    internal/stores/podstore.go), and the `Service` dimension from ready endpoints only
    (internal/aws/k8s/k8sclient/endpoint.go): a pod that no node can take never appears under
    its Service. `status_replicas_available` comes from the API server for every Deployment and
    StatefulSet, 0 included (internal/k8sapiserver/k8sapiserver.go getDeploymentMetrics,
    getStatefulSetMetrics: the same metric name, PodName = the workload's name); the CloudWatch
    agent publishes it with ClusterName, Namespace and PodName in enhanced mode through its
    Deployment declaration, which selects by metric name only (aws/amazon-cloudwatch-agent
    v1.300071.0 translator/translate/otel/exporter/awsemf/kubernetes.go
    getDeploymentMetricDeclarations). Missing data means the agent or its pipeline is broken:
    that breaches too.
    """
    minutes = thresholds.gpu_pending_minutes
    return [
        Alarm(key=f"gpu-capacity-{model}",
              description=(f"Fewer than {watched.floor} {model} model server(s) available for "
                           f"{minutes} minutes: its GPU node group cannot grow (maxSize, no "
                           "capacity for its instance types, or the autoscaler is not running), "
                           "or the pods crash"),
              comparison="LessThanThreshold", threshold=watched.floor, evaluation_periods=minutes,
              metric=_metric("ContainerInsights", "status_replicas_available",
                             {"ClusterName": cluster_name, "Namespace": namespace,
                              "PodName": watched.name},
                             statistic="Maximum", period=GPU_PERIOD_SECONDS),
              treat_missing_data="breaching")
        for model, watched in workloads.items()
    ]


def _widget_metrics(alarm: Alarm) -> list[list[Any]]:
    def row(metric: dict[str, Any], options: dict[str, Any]) -> list[Any]:
        dims = [item for pair in metric["dimensions"].items() for item in pair]
        return [metric["namespace"], metric["metric_name"], *dims, options]

    if alarm.metric is not None:
        statistic = alarm.metric.get("extended_statistic") or alarm.metric["statistic"]
        return [row(alarm.metric, {"stat": statistic, "period": alarm.metric["period"]})]
    rows: list[list[Any]] = []
    for query in alarm.queries:
        if "expression" in query:
            rows.append([{"expression": query["expression"], "id": query["id"],
                          "label": query.get("label", query["id"])}])
        else:
            metric = query["metric"]
            rows.append(row(metric, {"id": query["id"], "visible": False, "stat": metric["stat"],
                                     "period": metric["period"]}))
    return rows


def dashboard_body(alarms: list[Alarm], *, alarm_arns: list[str], region: str) -> dict[str, Any]:
    """An alarm-status strip, then one graph per alarm with its threshold drawn in."""
    widgets: list[dict[str, Any]] = [{
        "type": "alarm", "x": 0, "y": 0, "width": 24, "height": 4,
        "properties": {"title": "Alarms", "alarms": alarm_arns},
    }]
    for index, alarm in enumerate(alarms):
        widgets.append({
            "type": "metric", "x": (index % 3) * 8, "y": 4 + (index // 3) * 6, "width": 8, "height": 6,
            "properties": {
                "title": alarm.key, "region": region, "view": "timeSeries", "stacked": False,
                "metrics": _widget_metrics(alarm),
                "annotations": {"horizontal": [{"label": "alarm", "value": alarm.threshold}]},
            },
        })
    return {"widgets": widgets}


@dataclass(frozen=True)
class MonitoredServices:
    """What the alarms watch, by name: the ALB and the AnythingLLM target groups (found by the
    controller's tags once the Ingress has an address), the database, the cache, the models."""

    load_balancer_name: str
    ingress_ready: pulumi.Input[str]  # resolves once the ALB exists (the Ingress's hostname)
    target_groups: dict[str, str]  # track -> `ingress.k8s.aws/resource` (ingress.target_group_resource_id)
    database_identifier: str
    database_allocated_gib: int
    database_connections: int
    cache_member_ids: list[str]
    model_workloads: dict[str, WatchedWorkload]  # model -> its StatefulSet and floor
    model_namespace: str
    # Changes whenever the Ingress does (target groups are looked up again then).
    ingress_revision: pulumi.Input[str] = ""
    # track -> the UID of the Service behind its target group (a new Service, a new group).
    service_uids: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


class Observability(pulumi.ComponentResource):
    """Container Insights, log retention, alarms to an SNS topic, and a dashboard.

    Creates: the Container Insights log groups (`/aws/containerinsights/<cluster>/...`,
    retention `containerLogRetentionDays`), before the add-on could create them without
    expiry; the `amazon-cloudwatch-observability` EKS add-on (CloudWatch agent with enhanced
    Container Insights, GPU metrics through DCGM, Fluent Bit for container logs; its default
    tolerations put it on the tainted GPU nodes too) with an EKS Pod Identity role holding only
    `CloudWatchAgentServerPolicy`; a KMS key and the encrypted SNS topic `<cluster>-alarms` with
    one email subscription per `alarmEmails` address (each must be confirmed); one CloudWatch
    alarm per failure mode (`alb_alarms`, `database_alarms`, `cache_alarms`, `gpu_alarms`),
    notifying the topic on ALARM and on OK; and the dashboard `<cluster>`.

    The ALB and its target groups are created by the AWS Load Balancer Controller, so they are
    looked up (by name, and by the controller's tags) once the Ingress has an address.
    Control-plane log retention belongs to the Cluster (`cluster.logRetentionDays`).

    Args:
        name: logical name prefix.
        settings: the stack's `observability` settings.
        cluster_name, region: the EKS cluster and its region.
        cluster: the Cluster (add-on target; the add-on waits for its nodes).
        services: what the alarms watch (`MonitoredServices`).
        addon_version: the add-on version (cluster.addon_version: pinned, or EKS's default for
            the cluster's minor).
        retain: protect the topic's KMS key (prod), as every key is (policy pack).
        tags: tags for every AWS resource.

    Attributes:
        topic_arn: the alarm topic; alarms: key -> MetricAlarm; dashboard_name.
    """

    def __init__(self, name: str, settings: ObservabilitySettings, *, cluster_name: str, region: str,
                 cluster: Cluster, services: MonitoredServices, addon_version: pulumi.Input[str],
                 retain: bool, tags: dict[str, str], logs_key_arn: pulumi.Input[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("anythingllm:observability:Observability", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        identity = aws.get_caller_identity_output()
        partition = aws.get_partition_output().partition

        log_groups = [
            aws.cloudwatch.LogGroup(
                f"{name}-{kind}", name=container_insights_log_group(cluster_name, kind),
                retention_in_days=settings.container_log_retention_days, kms_key_id=logs_key_arn,
                tags=tags, opts=named(parent=self))
            for kind in CONTAINER_INSIGHTS_LOG_GROUPS
        ]
        agent_role = pod_identity_role(
            f"{name}-agent", account_id=identity.account_id, cluster_name=cluster_name,
            namespace=AGENT_NAMESPACE, service_account=AGENT_SERVICE_ACCOUNT, partition=partition,
            managed_policies=(AGENT_POLICY,), tags=tags, parent=self,
        )
        self.addon = aws.eks.Addon(
            f"{name}-addon",
            cluster_name=cluster.cluster_name,
            addon_name=ADDON,
            addon_version=addon_version,
            pod_identity_associations=[{"role_arn": agent_role.arn,
                                        "service_account": AGENT_SERVICE_ACCOUNT}],
            configuration_values=json.dumps(agent_configuration(), sort_keys=True),
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            # A replacement deletes the add-on first (named): its workloads keep running.
            preserve=True,
            tags=tags,
            # DaemonSets and the operator become healthy only on nodes; the log groups first.
            opts=named(parent=self, depends_on=[*log_groups, *cluster.system_ready]),
        )

        key_policy = pulumi.Output.all(identity.account_id, partition).apply(
            lambda values: iam.to_json(iam.alarm_topic_key_policy(account_id=values[0],
                                                                  partition=values[1])))
        topic = alert_topic(f"{name}-alarms", topic_name=f"{cluster_name}-alarms",
                            description=f"Alarm notifications of {cluster_name}",
                            key_policy=key_policy, retain=retain, tags=tags, parent=self)
        self.topic_arn = topic.arn
        # RDS's own storage warnings, relative to the current allocation and to the autoscaling
        # ceiling (database_alarms explains why no CloudWatch threshold can be).
        aws.rds.EventSubscription(
            f"{name}-database-events", name=f"{cluster_name}-database", sns_topic=topic.arn,
            source_type="db-instance", source_ids=[services.database_identifier],
            event_categories=list(DATABASE_EVENT_CATEGORIES), enabled=True, tags=tags,
            opts=named(parent=self))
        subscribe_emails(f"{name}-alarms", topic, settings.alarm_emails)

        load_balancer = aws.lb.get_load_balancer_output(
            name=pulumi.Output.from_input(services.ingress_ready).apply(
                lambda _: services.load_balancer_name))
        # The controller creates a target group some seconds after the Ingress changes: wait for
        # it rather than look it up once (a lookup fails unless exactly one group matches).
        trigger = pulumi.Output.all(services.ingress_ready, services.ingress_revision).apply(
            lambda values: f"{values[0]}#{values[1]}")
        target_groups = {
            track: ControllerTargetGroup(
                f"{name}-target-group-{track}", region=region,
                load_balancer_name=services.load_balancer_name,
                tags={"elbv2.k8s.aws/cluster": cluster_name, "ingress.k8s.aws/resource": resource},
                trigger=trigger, service_uid=services.service_uids.get(track.removesuffix("-public")),
                opts=child,
            ).arn_suffix
            for track, resource in services.target_groups.items()
        }
        thresholds = settings.thresholds

        def all_alarms(load_balancer_suffix: Any, target_group_suffixes: Any) -> list[Alarm]:
            return [
                *alb_alarms(thresholds, load_balancer=load_balancer_suffix,
                            target_groups=target_group_suffixes),
                *database_alarms(thresholds, identifier=services.database_identifier,
                                 allocated_storage_gib=services.database_allocated_gib,
                                 connections=services.database_connections),
                *cache_alarms(thresholds, member_ids=services.cache_member_ids),
                *gpu_alarms(thresholds, cluster_name=cluster_name, namespace=services.model_namespace,
                            workloads=services.model_workloads),
            ]

        alarms = all_alarms(load_balancer.arn_suffix, target_groups)
        self.alarms = {alarm.key: self._alarm(name, alarm, cluster_name=cluster_name,
                                              topic=topic, tags=tags)
                       for alarm in alarms}
        self.dashboard_name = cluster_name
        aws.cloudwatch.Dashboard(
            f"{name}-dashboard", dashboard_name=cluster_name,
            dashboard_body=pulumi.Output.all(
                load_balancer.arn_suffix, target_groups, [self.alarms[a.key].arn for a in alarms],
            ).apply(lambda values: json.dumps(dashboard_body(
                all_alarms(values[0], values[1]), alarm_arns=values[2], region=region), sort_keys=True)),
            opts=named(parent=self),
        )
        self.register_outputs({"topic_arn": self.topic_arn})

    def _alarm(self, name: str, alarm: Alarm, *, cluster_name: str, topic: aws.sns.Topic,
               tags: dict[str, str]) -> aws.cloudwatch.MetricAlarm:
        metric_args: dict[str, Any] = dict(alarm.metric or {})
        if alarm.queries:
            metric_args["metric_queries"] = alarm.queries
        return aws.cloudwatch.MetricAlarm(
            f"{name}-{alarm.key}",
            name=f"{cluster_name}-{alarm.key}",
            alarm_description=alarm.description,
            comparison_operator=alarm.comparison,
            threshold=alarm.threshold,
            evaluation_periods=alarm.evaluation_periods,
            datapoints_to_alarm=alarm.evaluation_periods,
            treat_missing_data=alarm.treat_missing_data,
            alarm_actions=[topic.arn],
            ok_actions=[topic.arn],
            tags=tags,
            **metric_args,
            opts=named(parent=self),
        )
