"""ScalingAlerts: alerts, evaluated by Amazon Managed Service for Prometheus, for when model
scaling is blind or cannot keep up.

KEDA scales on what the collector delivers; when that stops, a model with a floor holds its
replicas (its triggers error) and nothing in CloudWatch sees it. So the workspace evaluates
rules itself (AMP's ruler) and, where the stack has alarm addresses, its alert manager notifies
an SNS topic of its own:
- `ModelMetricsNotScraped`: a *ready* model pod (vLLM answers /health) the collector has not
  scraped for 10 minutes (the sidecar, the NetworkPolicy or the security group); a pod still
  loading its model answers 503 by design and is not counted;
- `ModelMetricsMissing`, per model with a floor: no pod of it scraped for longer than a cold
  start of it takes (cold_start.py: a node, the image and the model's load), though it always
  runs one (discovery, the collector's access entry, the collector itself);
- `ModelRequestsQueued`: requests waiting at a model, on average over 15 minutes, at least one:
  scaling cannot keep up (at `maxReplicas`, or no GPU capacity for more pods).

The topic is not the CloudWatch alarms' topic: an SNS topic policy replaces the topic's default
one, and AMP needs a statement there (AMP user guide, "Giving Amazon Managed Service for
Prometheus permission to send alert messages to your Amazon SNS topic": the topic statement with
its confused-deputy conditions, and for an encrypted topic a key statement without conditions,
since SNS, not AMP, calls KMS). So AMP gets a topic, and a KMS key that serves only that topic.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import yaml

from . import cold_start, iam
from .namespaces import MODELS
from .observability import alert_topic, subscribe_emails
from .options import named
from .settings import ModelSettings

SCRAPE_JOB = "vllm"
RULES_NAMESPACE = "model-scaling"


class _Literal(str):
    """A string YAML writes as a literal block (readable in the AMP console and in diffs)."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    _Literal, lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|"))


def missing_minutes(model: ModelSettings) -> int:
    """How long a model with a floor may show no scraped pod: a cold start of one (a node, the
    image, the model's load: cold_start.pod_seconds), plus five minutes."""
    return -(-cold_start.pod_seconds(model) // 60) + 5


def alert_rules(models: list[ModelSettings]) -> dict:
    """The rule group (Prometheus rules file format, which AMP's rule group namespaces take)."""
    rules = [
        {"alert": "ModelMetricsNotScraped", "expr": f'up{{job="{SCRAPE_JOB}",ready="true"}} == 0',
         "for": "10m",
         "labels": {"severity": "warning"},
         "annotations": {"summary": "The managed collector cannot scrape model pod {{ $labels.pod }}: "
                                    "its model scales blind (README, \"Scaling\")"}},
    ]
    rules += [
        {"alert": "ModelMetricsMissing",
         "expr": f'absent(up{{job="{SCRAPE_JOB}",service="vllm-{model.name}"}} == 1)',
         "for": f"{missing_minutes(model)}m",
         "labels": {"severity": "warning", "model": model.name},
         "annotations": {"summary": f"No pod of {model.name} has been scraped for "
                                    f"{missing_minutes(model)} minutes, though "
                                    f"it keeps {model.replicas}: KEDA holds its replicas and cannot "
                                    "scale it (README, \"Scaling\")"}}
        for model in models if model.autoscaled and not model.sleeps
    ]
    rules.append(
        {"alert": "ModelRequestsQueued",
         # An average, so a queue that empties between two evaluations does not restart it.
         "expr": (f"sum by (model_name) (avg_over_time(vllm:num_requests_waiting"
                  f'{{namespace="{MODELS.name}"}}[15m])) >= 1'), "for": "5m",
         "labels": {"severity": "warning"},
         "annotations": {"summary": "Requests have queued at {{ $labels.model_name }} for 15 "
                                    "minutes: it is at maxReplicas, or its GPU group cannot start "
                                    "more pods"}})
    return {"groups": [{"name": RULES_NAMESPACE, "rules": rules}]}


def alert_manager_definition(*, topic_arn: str, region: str, cluster_name: str) -> dict:
    """AMP's alert manager definition: every alert to the SNS topic, signed for the region,
    with a short subject (AMP cuts the default one, a list of labels, at 100 characters)."""
    config = {
        "route": {"receiver": "sns", "group_by": ["alertname", "model", "model_name", "pod"],
                  "repeat_interval": "4h"},
        "receivers": [{"name": "sns", "sns_configs": [
            {"topic_arn": topic_arn, "sigv4": {"region": region},
             "subject": f"{cluster_name}: {{{{ .CommonLabels.alertname }}}}"}]}],
    }
    return {"alertmanager_config": _Literal(yaml.safe_dump(config, sort_keys=False))}


def render(document: dict) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False)


def topic_policy(*, topic_arn: str, workspace_arn: str, account_id: str) -> dict:
    """AMP may publish on behalf of this workspace in this account only (the user guide's
    statement, with its confused-deputy guard). The account's own principals need no statement:
    within the account, their IAM policies grant what they may do with the topic."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "ManagedPrometheusAlertsPublish", "Effect": "Allow",
         "Principal": {"Service": "aps.amazonaws.com"},
         "Action": ["sns:Publish", "sns:GetTopicAttributes"], "Resource": topic_arn,
         "Condition": {"ArnEquals": {"aws:SourceArn": workspace_arn},
                       "StringEquals": {"aws:SourceAccount": account_id}}},
    ]}


class ScalingAlerts(pulumi.ComponentResource):
    """The workspace's rules; with alarm addresses, also its alert manager and the topic (with
    its key, policy and the addresses' e-mail subscriptions) it notifies. Without addresses
    (dev, staging) the alerts show in the workspace only: a topic nobody reads costs a key.

    Attributes:
        topic_arn: the SNS topic of scaling alerts, or None.
    """

    def __init__(self, name: str, models: list[ModelSettings], *, cluster_name: str,
                 region: str, workspace_id: pulumi.Input[str], workspace_arn: pulumi.Input[str],
                 account_id: pulumi.Input[str], partition: pulumi.Input[str], emails: list[str],
                 retain: bool, tags: dict[str, str], scraper: pulumi.Resource,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("anythingllm:observability:ScalingAlerts", name, None, opts)
        # After the collector (whose labels the rules read), so none fires on a first deploy.
        aws.amp.RuleGroupNamespace(
            f"{name}-rules", name=RULES_NAMESPACE, workspace_id=workspace_id,
            data=render(alert_rules(models)), tags=tags,
            opts=named(parent=self, depends_on=[scraper]))
        self.topic_arn = None
        if not emails:
            self.register_outputs({})
            return
        topic = alert_topic(
            f"{name}-topic", topic_name=f"{cluster_name}-scaling-alerts",
            description=f"Model scaling alerts of {cluster_name}",
            key_policy=pulumi.Output.all(account_id, partition).apply(
                lambda v: iam.to_json(iam.amp_alert_topic_key_policy(account_id=v[0],
                                                                     partition=v[1]))),
            retain=retain, tags=tags, parent=self)
        self.topic_arn = topic.arn
        access = aws.sns.TopicPolicy(
            f"{name}-topic", arn=topic.arn,
            policy=pulumi.Output.all(topic.arn, workspace_arn, account_id).apply(
                lambda v: iam.to_json(topic_policy(topic_arn=v[0], workspace_arn=v[1],
                                                   account_id=v[2]))),
            opts=pulumi.ResourceOptions(parent=topic))
        subscribe_emails(f"{name}-topic", topic, emails)
        aws.amp.AlertManagerDefinition(
            f"{name}-alert-manager", workspace_id=workspace_id,
            definition=topic.arn.apply(lambda arn: render(alert_manager_definition(
                topic_arn=arn, region=region, cluster_name=cluster_name))),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[access]))
        self.register_outputs({"topic": topic.arn})
