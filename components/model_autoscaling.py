"""ModelAutoscaling: a KEDA ScaledObject per autoscaled model, on the load vLLM reports.

What each model's replica count follows (kedacore/keda v2.20.2; the HPA KEDA creates takes the
largest replica count any trigger asks for, and KEDA itself moves between 0 and 1):
- `load`: running + waiting requests over all its pods (vLLM 0.32.0 v1/metrics/loggers.py
  `vllm:num_requests_running`, `vllm:num_requests_waiting`), `requestsPerReplica` each. One
  query of the sum, as the Prometheus scaler needs a single series (prometheus_scaler.go).
- `kv-cache` (chat models): the KV-cache share in use summed over its pods
  (`vllm:kv_cache_usage_perc`, 1 = full), `kvCacheUsage` each. Its activation threshold is
  its target, so a cache that is only warm never keeps a model awake.
- `awake-hours` (cron scaler): `awakeHours.replicas` inside the window, in its time zone.
- For a model that sleeps (`replicas: 0`):
  - `recent-requests`: requests finished in the last 5 minutes (`vllm:request_success_total`),
    so a short request between two polls still counts as activity; it asks for one replica;
  - `wake`: pods labelled `anythingllm.io/wake=<model>` (kubernetes-workload scaler), which
    the model's suspended CronJob `wake-<model>` makes on demand:
    `kubectl -n model-serving create job --from=cronjob/wake-<model> wake-<model>`.
  KEDA scales it to 0 once no trigger has been active for `idleMinutes`
  (`cooldownPeriod`, counted from the last poll that found one active, and before any activity
  `initialCooldownPeriod` from creation: pkg/scaling/executor/scale_scaledobjects.go).

Scaling up waits for a minute of load (a burst does not start a GPU node) and adds at most two
pods a minute; scaling down waits ten minutes and removes one pod per five minutes. A pod that
leaves finishes its answers first (model_serving.py: vLLM's --shutdown-timeout, the grace
period).
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from .model_serving import service_name
from .namespaces import MODELS
from .node_group import system_labels
from .settings import ModelSettings
from .versions import BUSYBOX_IMAGE
from .workloads import (
    IMAGE_PULL_POLICY,
    container_security_context,
    pod_security_context,
    scan_exceptions,
)

SCALED_OBJECT_API = "keda.sh/v1alpha1"
TRIGGER_AUTHENTICATION = "amazon-managed-prometheus"
WAKE_LABEL = "anythingllm.io/wake"
POLLING_SECONDS = 30
RECENT_WINDOW = "5m"
# A Job woken by hand keeps its model up this long; then the idle period starts.
WAKE_SECONDS = 15 * 60
# A threshold no count of finished requests reaches: the trigger asks for ceil(n / it) = 1.
ONE_REPLICA = 1_000_000
SCALE_UP = {"stabilizationWindowSeconds": 60, "selectPolicy": "Max",
            "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}]}
SCALE_DOWN = {"stabilizationWindowSeconds": 600, "selectPolicy": "Min",
              "policies": [{"type": "Pods", "value": 1, "periodSeconds": 300}]}


def _selector(model: ModelSettings) -> str:
    return f'namespace="{MODELS.name}",model_name="{model.name}"'


def queries(model: ModelSettings) -> dict[str, str]:
    """The PromQL of each Prometheus trigger, by trigger name."""
    found = {"load": f'sum({{__name__=~"vllm:num_requests_(running|waiting)",{_selector(model)}}})'}
    if model.kv_cache_usage is not None:
        found["kv-cache"] = f"sum(vllm:kv_cache_usage_perc{{{_selector(model)}}})"
    if model.sleeps:
        found["recent-requests"] = (f"sum(increase(vllm:request_success_total{{{_selector(model)}}}"
                                    f"[{RECENT_WINDOW}]))")
    return found


def _number(value: float) -> str:
    """A threshold as KEDA parses it (strconv.ParseFloat): whole numbers without a decimal point."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _prometheus(name: str, query: str, *, threshold: float, activation: float, query_url: str,
                region: str, model: ModelSettings) -> dict:
    return {
        "type": "prometheus", "name": name,
        "metadata": {"serverAddress": query_url, "query": query, "threshold": _number(threshold),
                     "activationThreshold": _number(activation), "awsRegion": region,
                     # A model asleep has no pod and so no series: zero load. A model with a
                     # floor always has pods, so no series means the metrics path is broken:
                     # an error, on which the HPA keeps the replicas it has (and KEDA reports
                     # it), instead of reading zero load and scaling down.
                     "ignoreNullValues": "true" if model.sleeps else "false"},
        "authenticationRef": {"name": TRIGGER_AUTHENTICATION},
    }


def triggers(model: ModelSettings, *, query_url: str, region: str) -> list[dict]:
    found = queries(model)
    result = [_prometheus("load", found["load"], threshold=model.requests_per_replica,
                          activation=0, query_url=query_url, region=region, model=model)]
    if "kv-cache" in found:
        result.append(_prometheus("kv-cache", found["kv-cache"], threshold=model.kv_cache_usage,
                                  activation=model.kv_cache_usage, query_url=query_url,
                                  region=region, model=model))
    if model.awake_hours is not None:
        hours = model.awake_hours
        result.append({"type": "cron", "name": "awake-hours", "metadata": {
            "timezone": hours.time_zone, "start": hours.cron(hours.start),
            "end": hours.cron(hours.end), "desiredReplicas": str(hours.replicas)}})
    if model.sleeps:
        result.append(_prometheus("recent-requests", found["recent-requests"],
                                  threshold=ONE_REPLICA, activation=0, query_url=query_url,
                                  region=region, model=model))
        result.append({"type": "kubernetes-workload", "name": "wake", "metadata": {
            "podSelector": f"{WAKE_LABEL}={model.name}", "value": "1"}})
    return result


def scaled_object_spec(model: ModelSettings, *, query_url: str, region: str) -> dict:
    spec = {
        # KEDA's default kind is Deployment; a StatefulSet is named with its group and kind
        # (apis/keda/v1alpha1/scaledobject_types.go ScaleTarget; pkg/scaling/resolver/
        # scale_resolvers.go reads its replicas from the object).
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "StatefulSet",
                           "name": service_name(model)},
        "minReplicaCount": model.replicas,
        "maxReplicaCount": model.peak_replicas,
        "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {
            "scaleUp": SCALE_UP, "scaleDown": SCALE_DOWN}}},
        "triggers": triggers(model, query_url=query_url, region=region),
    }
    if model.sleeps:
        # How often KEDA checks between 0 and 1 (the webhook warns about it on a model with a
        # floor, where the HPA polls instead).
        spec["pollingInterval"] = POLLING_SECONDS
        idle = model.idle_period_minutes * 60
        # From the last active poll to zero; and a model just deployed counts as just used
        # (otherwise KEDA scales it to zero at its first poll).
        spec["cooldownPeriod"] = idle
        spec["initialCooldownPeriod"] = idle
    return spec


def wake_job_spec(model: ModelSettings) -> dict:
    """The CronJob `wake-<model>`: suspended (it never runs on its schedule), a template for
    `kubectl create job --from=cronjob/...`. Its pod sleeps WAKE_SECONDS on a system node and
    is the `wake` trigger's count while it lives."""
    labels = {WAKE_LABEL: model.name, "app.kubernetes.io/name": f"wake-{model.name}",
              "app.kubernetes.io/part-of": "anythingllm"}
    return {
        "schedule": "0 0 1 1 *",
        "suspend": True,
        "job_template": {"spec": {
            "backoff_limit": 0,
            "active_deadline_seconds": WAKE_SECONDS + 60,
            "ttl_seconds_after_finished": 300,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restart_policy": "Never",
                    "automount_service_account_token": False,
                    "enable_service_links": False,
                    "node_selector": system_labels(),
                    "security_context": pod_security_context(uid=65534),
                    "containers": [{
                        "name": "wake",
                        "image": BUSYBOX_IMAGE,
                        "image_pull_policy": IMAGE_PULL_POLICY,
                        "command": ["sleep", str(WAKE_SECONDS)],
                        "resources": {"requests": {"cpu": "10m", "memory": "8Mi"},
                                      "limits": {"cpu": "50m", "memory": "16Mi"}},
                        "security_context": container_security_context(read_only_root=True),
                    }],
                },
            },
        }},
    }


class ModelAutoscaling(pulumi.ComponentResource):
    """KEDA's view of the autoscaled models, in `model-serving`.

    Creates: the TriggerAuthentication `amazon-managed-prometheus` (the operator's own AWS
    credentials, EKS Pod Identity), per autoscaled model a ScaledObject `vllm-<model>` naming
    its StatefulSet (created before it: ModelServing's `scaled_by`), and per model that sleeps
    the suspended CronJob `wake-<model>`.

    Attributes:
        scaled_objects: model name -> its ScaledObject.
    """

    def __init__(self, name: str, models: list[ModelSettings], *, query_url: pulumi.Input[str],
                 region: str, ready: list[pulumi.Resource],
                 gpu_ready: dict[str, list[pulumi.Resource]], provider: k8s.Provider,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("anythingllm:serving:ModelAutoscaling", name, None, opts)
        in_cluster = pulumi.ResourceOptions(parent=self, provider=provider)
        authentication = k8s.apiextensions.CustomResource(
            f"{name}-amp", api_version=SCALED_OBJECT_API, kind="TriggerAuthentication",
            metadata={"name": TRIGGER_AUTHENTICATION, "namespace": MODELS.name},
            spec={"podIdentity": {"provider": "aws"}},
            opts=pulumi.ResourceOptions.merge(in_cluster, pulumi.ResourceOptions(depends_on=ready)))
        self.scaled_objects: dict[str, k8s.apiextensions.CustomResource] = {}
        for model in models:
            if not model.autoscaled:
                continue
            wake = [k8s.batch.v1.CronJob(
                f"{name}-wake-{model.name}",
                metadata={"name": f"wake-{model.name}", "namespace": MODELS.name,
                          "annotations": scan_exceptions({}, images=(BUSYBOX_IMAGE,))},
                spec=wake_job_spec(model), opts=in_cluster)] if model.sleeps else []
            self.scaled_objects[model.name] = k8s.apiextensions.CustomResource(
                f"{name}-{model.name}", api_version=SCALED_OBJECT_API, kind="ScaledObject",
                metadata={"name": service_name(model), "namespace": MODELS.name},
                spec=pulumi.Output.from_input(query_url).apply(
                    lambda url, model=model: scaled_object_spec(model, query_url=url, region=region)),
                # Before its StatefulSet (which waits for it): the HPA owns the replica count
                # before the workload stops declaring it. It waits for what the StatefulSet
                # waits for, so KEDA finds the StatefulSet at once (it retries a missing target
                # with a growing backoff); until the collector delivers, a query answers nothing (zero load,
                # or an error on which the HPA keeps what it has).
                opts=pulumi.ResourceOptions.merge(in_cluster, pulumi.ResourceOptions(
                    depends_on=[authentication, *wake, *ready, *gpu_ready[model.node_group]])))
        self.register_outputs({})
