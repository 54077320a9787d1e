"""ManagedPrometheus: an Amazon Managed Service for Prometheus workspace, and AWS's managed scraper
collecting the autoscaled model servers' metrics into it.

Why this metrics path: KEDA needs a query API over vLLM's load, and nobody should have to run a
Prometheus for it. AMP stores and serves the series (PromQL over SigV4), and its managed
collector scrapes the cluster from AWS's side: no agent, no storage, no upgrades in the cluster.
What it costs: the collector's hours and the samples ingested and queried (README, "Scaling");
both are small here, since only the model pods' metrics sidecars are scraped.

Facts this relies on (AWS's AMP user guide, "Using an AWS managed collector"):
- the collector needs the cluster's private endpoint and subnets in at least two zones, puts a
  network interface in each, and scrapes pod addresses through them;
- with the cluster's `API` authentication mode AMP creates the collector's access entry itself
  (EKS refuses access entries for service-linked roles, so the stack declares none);
- the scrape interval is at least 30 s, and creating a collector takes about 20 minutes;
- AMP tags the workspace `AMPAgentlessScraper` when a collector writes to it, so the workspace
  declares that tag too, or every `up` would try to take it off.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import yaml

from .model_metrics import METRICS_PORT
from .namespaces import MODELS

SCRAPE_INTERVAL_SECONDS = 30  # AMP's minimum
MODEL_SERVER_COMPONENT = "model-server"
SCRAPER_WORKSPACE_TAG = "AMPAgentlessScraper"
# Creation takes about 20 minutes (AMP user guide); the provider's own default is 30.
SCRAPER_TIMEOUTS = {"create": "45m", "update": "30m", "delete": "30m"}
# The series KEDA's queries read (model_autoscaling.py); vLLM exports dozens more (histograms
# among them, vllm 0.32.0 v1/metrics/loggers.py), which would only add ingestion cost.
KEPT_METRICS = ("vllm:num_requests_running", "vllm:num_requests_waiting",
                "vllm:kv_cache_usage_perc", "vllm:request_success_total")


def scrape_configuration() -> dict:
    """The collector's Prometheus configuration: the `metrics` port of the model server pods in
    `model-serving`, labelled with their namespace, pod and Service (KEDA's queries select by
    namespace and vLLM's own `model_name`; the alerts' `up` by Service), keeping only the series
    KEDA reads (and `up`, which Prometheus adds after relabelling)."""
    return {
        "global": {"scrape_interval": f"{SCRAPE_INTERVAL_SECONDS}s",
                   "scrape_timeout": "10s"},
        "scrape_configs": [{
            "job_name": "vllm",
            "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [MODELS.name]}}],
            "relabel_configs": [
                {"source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_component",
                                   "__meta_kubernetes_pod_container_port_name"],
                 "regex": f"{MODEL_SERVER_COMPONENT};metrics", "action": "keep"},
                {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
                # The model's Service name (vllm-<model>) and whether the pod is ready: the
                # alerts watch `up` of ready pods by model (scaling_alerts.py); a pod still
                # loading its model answers 503 on purpose.
                {"source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
                 "target_label": "service"},
                {"source_labels": ["__meta_kubernetes_pod_ready"], "target_label": "ready"},
            ],
            "metric_relabel_configs": [
                {"source_labels": ["__name__"], "regex": "|".join(KEPT_METRICS), "action": "keep"},
            ],
        }],
    }


class ManagedPrometheus(pulumi.ComponentResource):
    """The AMP workspace and its managed collector for the cluster.

    Creates: the workspace (encrypted at rest with an AWS owned key, AMP's default), a security
    group for the collector's network interfaces (out only to the cluster security group, on
    443 for the API server and on the metrics port for the pods) with the matching rules on the
    cluster security group, and the scraper (source: the cluster and its private subnets;
    destination: the workspace).

    Attributes:
        workspace: the AMP workspace.
        query_url: the base URL of its Prometheus query API (KEDA appends /api/v1/query).
        scraper: the collector (what scaling waits for).
    """

    def __init__(self, name: str, *, cluster_name: str, cluster_arn: pulumi.Input[str],
                 vpc_id: pulumi.Input[str], subnet_ids: pulumi.Input[list[str]],
                 cluster_security_group_id: pulumi.Input[str], tags: dict[str, str],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("anythingllm:observability:ManagedPrometheus", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.workspace = aws.amp.Workspace(
            name, alias=cluster_name, tags={**tags, SCRAPER_WORKSPACE_TAG: ""}, opts=child)
        # The workspace's endpoint ends in "/", and KEDA appends "/api/v1/query".
        self.query_url = self.workspace.prometheus_endpoint.apply(lambda url: url.rstrip("/"))

        group = aws.ec2.SecurityGroup(
            f"{name}-scraper",
            description=f"AMP managed collector of {cluster_name}",
            vpc_id=vpc_id, tags={**tags, "Name": f"{cluster_name}-amp-scraper"}, opts=child)
        rules: list[pulumi.Resource] = []
        for port, why in ((443, "the API server (pod discovery)"),
                          (METRICS_PORT, "the model servers' metrics sidecars")):
            rules.append(aws.vpc.SecurityGroupEgressRule(
                f"{name}-scraper-to-{port}", security_group_id=group.id,
                description=f"To {why}", ip_protocol="tcp", from_port=port, to_port=port,
                referenced_security_group_id=cluster_security_group_id, tags=tags,
                opts=pulumi.ResourceOptions(parent=group)))
            rules.append(aws.vpc.SecurityGroupIngressRule(
                f"{name}-cluster-from-scraper-{port}", security_group_id=cluster_security_group_id,
                description=f"AMP managed collector to {why}", ip_protocol="tcp",
                from_port=port, to_port=port, referenced_security_group_id=group.id, tags=tags,
                opts=pulumi.ResourceOptions(parent=group)))

        self.scraper = aws.amp.Scraper(
            name,
            alias=cluster_name,
            source={"eks": {"cluster_arn": cluster_arn, "subnet_ids": subnet_ids,
                            "security_group_ids": [group.id]}},
            destination={"amp": {"workspace_arn": self.workspace.arn}},
            scrape_configuration=yaml.safe_dump(scrape_configuration(), sort_keys=False),
            tags=tags,
            # The provider's own timeouts (a Plugin Framework resource reads these, not
            # Pulumi's customTimeouts), and Pulumi's, for good measure.
            timeouts=SCRAPER_TIMEOUTS,
            opts=pulumi.ResourceOptions(parent=self, depends_on=rules,
                                        custom_timeouts=pulumi.CustomTimeouts(**SCRAPER_TIMEOUTS)))
        self.register_outputs({"workspace": self.workspace.id})
