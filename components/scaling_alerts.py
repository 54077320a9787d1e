"""ScalingAlerts: alerts, evaluated by Amazon Managed Service for Prometheus, for when model
scaling is blind or cannot keep up.

KEDA scales on what the collector delivers; when that stops, a model with a floor holds its
replicas (its triggers error) and nothing in CloudWatch sees it. So the workspace evaluates
three rules itself and its alert manager notifies an SNS topic of its own:
- `ModelMetricsNotScraped`: a model pod the collector finds but cannot scrape for 10 minutes
  (the sidecar, the NetworkPolicy or the security group);
- `ModelMetricsMissing`, per model with a floor: none of its pods scraped for 15 minutes, though
  it always runs one (discovery, the collector's access entry, the collector itself);
- `ModelRequestsQueued`: requests waiting at a model for 15 minutes, so scaling cannot keep up
  (at `maxReplicas`, or no GPU capacity for more pods).

The topic is not the CloudWatch alarms' topic: an SNS topic policy replaces the topic's default
one, and AMP needs a statement there (AMP user guide, "Giving Amazon Managed Service for
Prometheus permission to send alert messages to your Amazon SNS topic"), so AMP gets a topic
and a KMS key whose policies name only it, on behalf of this workspace and account.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import yaml

from . import iam
from .kms import encryption_key
from .namespaces import MODELS
from .settings import ModelSettings

SCRAPE_JOB = "vllm"
RULES_NAMESPACE = "model-scaling"


def alert_rules(models: list[ModelSettings]) -> dict:
    """The rule group (Prometheus rules file format, which AMP's rule group namespaces take)."""
    rules = [
        {"alert": "ModelMetricsNotScraped", "expr": f'up{{job="{SCRAPE_JOB}"}} == 0', "for": "10m",
         "labels": {"severity": "warning"},
         "annotations": {"summary": "The managed collector cannot scrape model pod {{ $labels.pod }}: "
                                    "its model scales blind (README, \"Scaling\")"}},
    ]
    rules += [
        {"alert": "ModelMetricsMissing",
         "expr": f'absent(up{{job="{SCRAPE_JOB}",service="vllm-{model.name}"}} == 1)', "for": "15m",
         "labels": {"severity": "warning", "model": model.name},
         "annotations": {"summary": f"No pod of {model.name} has been scraped for 15 minutes, though "
                                    f"it keeps {model.replicas}: KEDA holds its replicas and cannot "
                                    "scale it (README, \"Scaling\")"}}
        for model in models if model.autoscaled and not model.sleeps
    ]
    rules.append(
        {"alert": "ModelRequestsQueued",
         "expr": (f'sum by (model_name) (vllm:num_requests_waiting{{namespace="{MODELS.name}"}}) '
                  "> 0"), "for": "15m",
         "labels": {"severity": "warning"},
         "annotations": {"summary": "Requests have waited at {{ $labels.model_name }} for 15 "
                                    "minutes: it is at maxReplicas, or its GPU group cannot start "
                                    "more pods"}})
    return {"groups": [{"name": RULES_NAMESPACE, "rules": rules}]}


def alert_manager_definition(*, topic_arn: str, region: str) -> dict:
    """AMP's alert manager definition: every alert to the SNS topic (the only receiver AMP
    supports), signed for the region."""
    config = {
        "route": {"receiver": "sns", "group_by": ["alertname", "model", "model_name", "pod"],
                  "repeat_interval": "4h"},
        "receivers": [{"name": "sns", "sns_configs": [
            {"topic_arn": topic_arn, "sigv4": {"region": region}}]}],
    }
    return {"alertmanager_config": yaml.safe_dump(config, sort_keys=False)}


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


def key_policy(*, workspace_arn: str, account_id: str, partition: str) -> dict:
    """The topic's key: the account administers it through IAM; AMP may use it to publish to the
    encrypted topic, on behalf of this workspace in this account only."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "AccountAdministersTheKeyThroughIam", "Effect": "Allow",
         "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "ManagedPrometheusAlertsPublish", "Effect": "Allow",
         "Principal": {"Service": "aps.amazonaws.com"},
         "Action": ["kms:GenerateDataKey*", "kms:Decrypt"], "Resource": "*",
         "Condition": {"ArnEquals": {"aws:SourceArn": workspace_arn},
                       "StringEquals": {"aws:SourceAccount": account_id}}},
    ]}


class ScalingAlerts(pulumi.ComponentResource):
    """The workspace's rules and alert manager, and the topic (with its key, policy and the
    alarm e-mail subscriptions) they notify.

    Attributes:
        topic_arn: the SNS topic of scaling alerts.
    """

    def __init__(self, name: str, models: list[ModelSettings], *, cluster_name: str,
                 region: str, workspace_id: pulumi.Input[str], workspace_arn: pulumi.Input[str],
                 account_id: pulumi.Input[str], partition: pulumi.Input[str], emails: list[str],
                 retain: bool, tags: dict[str, str], opts: pulumi.ResourceOptions | None = None):
        super().__init__("anythingllm:observability:ScalingAlerts", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        key = encryption_key(
            f"{name}-topic", description=f"Model scaling alerts of {cluster_name}",
            alias=f"{cluster_name}-scaling-alerts", retain=retain, tags=tags, parent=self,
            policy=pulumi.Output.all(workspace_arn, account_id, partition).apply(
                lambda v: iam.to_json(key_policy(workspace_arn=v[0], account_id=v[1],
                                                 partition=v[2]))))
        topic = aws.sns.Topic(f"{name}-topic", name=f"{cluster_name}-scaling-alerts",
                              kms_master_key_id=key.arn, tags=tags, opts=child)
        self.topic_arn = topic.arn
        access = aws.sns.TopicPolicy(
            f"{name}-topic", arn=topic.arn,
            policy=pulumi.Output.all(topic.arn, workspace_arn, account_id).apply(
                lambda v: iam.to_json(topic_policy(topic_arn=v[0], workspace_arn=v[1],
                                                   account_id=v[2]))),
            opts=pulumi.ResourceOptions(parent=topic))
        for address in emails:
            aws.sns.TopicSubscription(f"{name}-topic-{address}", topic=topic.arn, protocol="email",
                                      endpoint=address, opts=pulumi.ResourceOptions(parent=topic))
        aws.amp.RuleGroupNamespace(
            f"{name}-rules", name=RULES_NAMESPACE, workspace_id=workspace_id,
            data=yaml.safe_dump(alert_rules(models), sort_keys=False), tags=tags, opts=child)
        aws.amp.AlertManagerDefinition(
            f"{name}-alert-manager", workspace_id=workspace_id,
            definition=topic.arn.apply(lambda arn: yaml.safe_dump(
                alert_manager_definition(topic_arn=arn, region=region), sort_keys=False)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[access]))
        self.register_outputs({"topic": topic.arn})
