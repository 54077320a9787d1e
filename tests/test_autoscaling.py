"""Models that follow their load and sleep: KEDA's ScaledObjects on vLLM's metrics, the managed
Prometheus that holds them, the metrics sidecar, the wake Job, the drain on scale-down.

Upstream sources (read at the pinned versions):
- kedacore/keda v2.20.2: pkg/scalers/prometheus_scaler.go (metadata fields, one series,
  ignoreNullValues default true), cron_scaler.go, kubernetes_workload_scaler.go (pods not
  Succeeded/Failed are counted), pkg/scaling/executor/scale_scaledobjects.go (cooldown from the
  last active poll; initialCooldownPeriod), config/crd/bases/ (the vendored CRDs);
- kedacore/charts v2.20.2 keda/values.yaml: serviceAccount.operator.name `keda-operator`;
- vllm 0.32.0: v1/metrics/loggers.py (metric names), engine/arg_utils.py and
  v1/engine/core.py `_handle_shutdown` (--shutdown-timeout 0 aborts, > 0 drains);
- AWS AMP user guide, "Using an AWS managed collector" (30 s minimum interval, private endpoint,
  two zones of subnets, access entry made by AMP).
"""

from __future__ import annotations

import copy
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
import yaml

from components import cold_start, iam
from components.keda import NAMESPACE as KEDA_NAMESPACE
from components.keda import SERVICE_ACCOUNT, keda_values, query_policy
from components.managed_prometheus import SCRAPE_INTERVAL_SECONDS, scrape_configuration
from components.model_autoscaling import (
    ONE_REPLICA,
    SCALE_DOWN,
    SCALE_UP,
    TRIGGER_AUTHENTICATION,
    WAKE_LABEL,
    WAKE_SECONDS,
    queries,
)
from components.model_metrics import METRICS_PORT, PROXY_SCRIPT, WAIT_FOR_UPSTREAM_SCRIPT
from components.model_serving import (
    DRAIN_MARK,
    POST_START_SCRIPT,
    PRE_STOP_SCRIPT,
    PRE_STOP_SECONDS,
    READINESS_FAILURES,
    READINESS_PERIOD_SECONDS,
    READINESS_SCRIPT,
    termination_grace_seconds,
)
from components.settings.serving import AwakeHoursSettings, cron_days
from components.versions import KEDA, KEDA_KUBERNETES, KEDA_VERSION
from tests import crd_schema
from tests.conftest import (
    ROOT,
    STACKS,
    base_config,
    expect_settings_error,
    helm_release,
    record,
    settings_from,
    stack_settings,
)
from tests.iam_policy_model import ALLOWED, IMPLICIT_DENY, Request, evaluate
from tools.engine import Plan, read_stack_config, run_stack

SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
WORKLOAD = "kubernetes:apps/v1:StatefulSet"
WORKSPACE = "aws:amp/workspace:Workspace"
SCRAPER = "aws:amp/scraper:Scraper"


def _scaled_objects(plan: Plan) -> dict[str, dict]:
    return {so.inputs["metadata"]["name"]: so for so in plan.of_type(SCALED_OBJECT)}


def _workspace_arn(plan: Plan) -> str:
    """The workspace's ARN, as the scraper's destination names it."""
    arn = plan.one(SCRAPER).inputs["destination"]["amp"]["workspaceArn"]
    assert arn.startswith("arn:aws:aps:us-east-1:") and ":workspace/ws-" in arn
    return arn


def _triggers(scaled_object) -> dict[str, dict]:
    return {t["name"]: t for t in scaled_object.inputs["spec"]["triggers"]}


# ----------------------------------------------------------------------- ScaledObjects


@pytest.mark.parametrize("stack", STACKS)
def test_every_autoscaled_model_has_a_scaled_object_on_its_bounds(stack_plans, stack):
    plan, settings = stack_plans[stack], stack_settings(stack)
    scaled = _scaled_objects(plan)
    workspace_id = _workspace_arn(plan).rsplit("/", 1)[1]
    endpoint = f"https://aps-workspaces.us-east-1.amazonaws.com/workspaces/{workspace_id}"
    assert set(scaled) == {f"vllm-{m.name}" for m in settings.model_serving.models if m.autoscaled}
    for model in settings.model_serving.models:
        so = scaled[f"vllm-{model.name}"]
        crd_schema.validate(copy.deepcopy(so.raw_inputs), "1.36.0")
        spec = so.inputs["spec"]
        assert so.inputs["metadata"]["namespace"] == "model-serving"
        # KEDA's default kind is Deployment: the StatefulSet is named with its group and kind
        # (kedacore/keda v2.20.2 apis/keda/v1alpha1/scaledobject_types.go ScaleTarget).
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "StatefulSet",
                                          "name": f"vllm-{model.name}"}
        assert plan.one(WORKLOAD, f"models-{model.name}").inputs["metadata"]["name"] == \
            f"vllm-{model.name}"
        assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (model.replicas,
                                                                      model.peak_replicas)
        # The webhook refuses a name, or its HPA's (keda-hpa-<name>), over 63 characters.
        assert len(f"keda-hpa-{so.inputs['metadata']['name']}") <= 63
        assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] == {
            "scaleUp": SCALE_UP, "scaleDown": SCALE_DOWN}
        triggers = _triggers(so)
        load = triggers["load"]["metadata"]
        assert load["serverAddress"] == endpoint  # no trailing slash: KEDA appends /api/v1/query
        # No series is zero load for a model asleep, an error (hold) for one with a floor.
        assert load["awsRegion"] == "us-east-1"
        assert load["ignoreNullValues"] == ("true" if model.sleeps else "false")
        assert ("pollingInterval" in spec) == model.sleeps
        assert load["threshold"] == str(model.requests_per_replica)
        assert load["activationThreshold"] == "0"
        for trigger in triggers.values():
            if trigger["type"] == "prometheus":
                assert trigger["authenticationRef"] == {"name": TRIGGER_AUTHENTICATION}
                assert trigger["metadata"]["query"] == queries(model)[trigger["name"]]
        assert ("kv-cache" in triggers) == (model.kind == "chat")
        assert {"recent-requests", "wake"} <= set(triggers) if model.sleeps else not (
            {"recent-requests", "wake"} & set(triggers))
        if model.sleeps:
            idle = model.idle_period_minutes * 60
            assert (spec["cooldownPeriod"], spec["initialCooldownPeriod"]) == (idle, idle)
        else:
            assert "cooldownPeriod" not in spec


def test_the_crd_check_has_teeth_for_keda(stack_plans):
    so = copy.deepcopy(stack_plans["dev"].one(SCALED_OBJECT, "autoscaling-bge-m3").raw_inputs)
    so["spec"]["minReplicas"] = 0  # KEDA's field is minReplicaCount
    with pytest.raises(Exception, match="minReplicas"):
        crd_schema.validate(so, "1.36.0")


def test_dev_sleeps_outside_the_working_day_and_after_thirty_idle_minutes(stack_plans):
    """Dev: weekdays 08:00-19:00 New York time, one replica; otherwise asleep 30 minutes after
    the last request (cron: minute hour day-of-month month day-of-week, Sunday = 0)."""
    for name in ("qwen2-5-7b-instruct", "bge-m3"):
        so = stack_plans["dev"].one(SCALED_OBJECT, f"autoscaling-{name}")
        triggers = _triggers(so)
        assert triggers["awake-hours"] == {"type": "cron", "name": "awake-hours", "metadata": {
            "timezone": "America/New_York", "start": "0 8 * * 1,2,3,4,5",
            "end": "0 19 * * 1,2,3,4,5", "desiredReplicas": "1"}}
        assert so.inputs["spec"]["minReplicaCount"] == 0
        assert so.inputs["spec"]["cooldownPeriod"] == 30 * 60
        assert triggers["wake"] == {"type": "kubernetes-workload", "name": "wake", "metadata": {
            "podSelector": f"{WAKE_LABEL}={name}", "value": "1"}}
        recent = triggers["recent-requests"]["metadata"]
        assert recent["threshold"] == str(ONE_REPLICA) and recent["activationThreshold"] == "0"
        assert recent["query"] == ('sum(increase(vllm:request_success_total{namespace='
                                   f'"model-serving",model_name="{name}"}}[5m]))')


def test_the_queries_read_vllms_own_series_summed_to_one():
    """One series per query (the Prometheus scaler refuses more), selected by the namespace the
    scraper labels and the served model name vLLM puts in `model_name`."""
    model = stack_settings("dev").model_serving.models[0]
    found = queries(model)
    assert found["load"] == ('sum({__name__=~"vllm:num_requests_(running|waiting)",'
                             'namespace="model-serving",model_name="qwen2-5-7b-instruct"})')
    assert found["kv-cache"] == ('sum(vllm:kv_cache_usage_perc{namespace="model-serving",'
                                 'model_name="qwen2-5-7b-instruct"})')
    assert all(query.startswith("sum(") for query in found.values())


def test_prod_scales_between_its_floor_and_ceiling_and_never_sleeps(stack_plans):
    scaled = _scaled_objects(stack_plans["prod"])
    chat, embed = scaled["vllm-qwen2-5-7b-instruct"], scaled["vllm-bge-m3"]
    assert (chat.inputs["spec"]["minReplicaCount"], chat.inputs["spec"]["maxReplicaCount"]) == (2, 5)
    assert (embed.inputs["spec"]["minReplicaCount"], embed.inputs["spec"]["maxReplicaCount"]) == (2, 3)
    for so in scaled.values():
        assert set(_triggers(so)) <= {"load", "kv-cache"}
    assert not stack_plans["prod"].of_type("kubernetes:batch/v1:CronJob")


def test_an_autoscaled_model_leaves_its_count_to_an_hpa_that_exists_first(stack_plans):
    """The Kubernetes docs (Server-Side Apply, "Transferring ownership"): a workload whose
    applier drops `replicas` before the HPA owns it is reset to 1. So the ScaledObject (and the
    HPA KEDA makes of it) comes first, and the StatefulSet waits for it; the ScaledObject waits
    for KEDA and for what the StatefulSet waits for, not for the collector (20 minutes)."""
    for stack in ("dev", "prod"):
        plan = stack_plans[stack]
        for name in ("qwen2-5-7b-instruct", "bge-m3"):
            deployment = plan.one(WORKLOAD, f"models-{name}")
            assert "replicas" not in deployment.inputs["spec"]
            so = plan.one(SCALED_OBJECT, f"autoscaling-{name}")
            assert plan.waits_for(deployment, so) and plan.deleted_before(deployment, so)
            for target in (helm_release(plan, "keda"),
                           plan.one("kubernetes:keda.sh/v1alpha1:TriggerAuthentication")):
                assert plan.waits_for(so, target), target.name
                assert plan.deleted_before(so, target), target.name
            assert not plan.waits_for(so, plan.one(SCRAPER))


def test_a_fixed_model_keeps_its_declared_count_and_no_keda():
    config = copy.deepcopy(read_stack_config(ROOT, "dev"))
    for model in config["anythingllm:modelServing"]["models"]:
        model["replicas"] = 1
        for key in ("maxReplicas", "idleMinutes", "awakeHours"):
            model.pop(key)
    plan = run_stack(ROOT, "dev", config=config)
    assert not plan.of_type(SCALED_OBJECT) and not plan.of_type(WORKSPACE)
    assert not [r for r in plan.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["name"] == "keda"]
    workloads = plan.of_type(WORKLOAD)
    assert len(workloads) == 2
    for workload in workloads:
        assert workload.inputs["spec"]["replicas"] == 1
        containers = workload.inputs["spec"]["template"]["spec"]["containers"]
        assert [c["name"] for c in containers] == ["vllm"]
    assert not [w for w in settings_from_stack(config).warnings if "KEDA" in w]


def settings_from_stack(config: dict) -> object:
    return settings_from({key.removeprefix("anythingllm:"): value for key, value in config.items()},
                         stack="dev")


# ----------------------------------------------------------------------- waking by hand


def test_the_wake_job_is_a_suspended_template_whose_pod_the_wake_trigger_counts(stack_plans):
    plan = stack_plans["dev"]
    for name in ("qwen2-5-7b-instruct", "bge-m3"):
        cron = plan.one("kubernetes:batch/v1:CronJob", f"autoscaling-wake-{name}")
        spec = cron.inputs["spec"]
        assert spec["suspend"] is True
        job = spec["jobTemplate"]["spec"]
        pod = job["template"]
        # kubernetes_workload_scaler.go counts every pod not Succeeded or Failed whose labels
        # match the trigger's podSelector, in the ScaledObject's namespace.
        assert cron.inputs["metadata"]["namespace"] == "model-serving"
        assert pod["metadata"]["labels"][WAKE_LABEL] == name
        (container,) = pod["spec"]["containers"]
        assert container["command"] == ["sleep", str(WAKE_SECONDS)]
        assert job["activeDeadlineSeconds"] > WAKE_SECONDS and job["backoffLimit"] == 0
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert pod["spec"]["nodeSelector"] == {"anythingllm.io/node-group": "system"}


# ----------------------------------------------------------------------- KEDA itself


def test_keda_is_pinned_and_only_its_operator_may_query_the_workspace(stack_plans):
    plan = stack_plans["dev"]
    release = helm_release(plan, "keda")
    assert (release.inputs["chart"], release.inputs["version"]) == ("keda", KEDA_VERSION)
    assert release.inputs["repositoryOpts"]["repo"] == KEDA.repository
    assert release.inputs["namespace"] == KEDA_NAMESPACE.name
    assert release.inputs["values"] == keda_values()
    association = plan.one("aws:eks/podIdentityAssociation:PodIdentityAssociation", "keda-operator")
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == (
        "keda", SERVICE_ACCOUNT)
    assert plan.waits_for(release, association)
    workspace = _workspace_arn(plan)
    role_policy = plan.one("aws:iam/rolePolicy:RolePolicy", "keda-operator")
    policy = json.loads(role_policy.inputs["policy"])
    assert policy == query_policy(workspace)
    assert evaluate(policy, Request("aps:QueryMetrics", workspace)) == ALLOWED
    assert evaluate(policy, Request("aps:QueryMetrics", workspace + "-other")) == IMPLICIT_DENY
    assert evaluate(policy, Request("aps:RemoteWrite", workspace)) == IMPLICIT_DENY
    authentication = plan.one("kubernetes:keda.sh/v1alpha1:TriggerAuthentication")
    assert authentication.inputs["spec"] == {"podIdentity": {"provider": "aws"}}


def test_keda_versions_agree_and_an_untested_kubernetes_minor_is_a_warning():
    chart = yaml.safe_load((ROOT / "components" / "data" / "keda" / "keda.sh_scaledobjects.yaml").read_text())
    assert chart["spec"]["group"] == "keda.sh"
    assert KEDA.version == KEDA_VERSION == "2.20.2"
    assert KEDA_KUBERNETES == ("1.33", "1.35")
    (warning,) = [w for w in stack_settings("dev").warnings if w.startswith("modelServing.models:")]
    assert "tested on Kubernetes 1.33-1.35" in warning and "1.36" in warning
    config = base_config()  # 1.35: inside the window
    config["modelServing"]["models"][0]["maxReplicas"] = 2
    config["cluster"]["gpuNodeGroups"][0]["maxSize"] = 3
    assert not [w for w in settings_from(config).warnings if "KEDA" in w]


CRD_DIGESTS = {
    "keda.sh_scaledobjects.yaml": "af35555862a83933b074af14ad439c4b4ceabaf4daa3e9338e9b23e36d308d80",
    "keda.sh_triggerauthentications.yaml":
        "275307b4cb19ca8f0f506a879282aa4c67587ac16ec757f494d6585c5c185d65",
}


def test_the_vendored_keda_crds_are_the_pinned_releases():
    import hashlib

    for name, digest in CRD_DIGESTS.items():
        data = (ROOT / "components" / "data" / "keda" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, name


# ----------------------------------------------------------------------- the metrics path


def test_the_scraper_reaches_only_the_model_pods_metrics_port(stack_plans):
    plan = stack_plans["dev"]
    scraper = plan.one(SCRAPER)
    cluster = plan.one("aws:eks/cluster:Cluster")
    assert cluster.inputs["vpcConfig"]["endpointPrivateAccess"] is True
    source = scraper.inputs["source"]["eks"]
    private = {s.urn for s in plan.of_type("aws:ec2/subnet:Subnet") if s.name.startswith("network-private")}
    assert set(scraper.property_dependencies["source"]) >= private
    assert len(source["subnetIds"]) >= 2  # AMP needs two zones
    assert scraper.property_dependencies["destination"] == [plan.one(WORKSPACE).urn]
    config = yaml.safe_load(scraper.inputs["scrapeConfiguration"])
    assert config == scrape_configuration()
    assert config["global"]["scrape_interval"] == f"{SCRAPE_INTERVAL_SECONDS}s"
    assert SCRAPE_INTERVAL_SECONDS >= 30  # AMP's minimum
    (job,) = config["scrape_configs"]
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["model-serving"]}}]
    # Only the series the queries read are stored (and `up`, added after relabelling).
    assert job["metric_relabel_configs"] == [{
        "source_labels": ["__name__"], "action": "keep",
        "regex": "vllm:num_requests_running|vllm:num_requests_waiting|vllm:kv_cache_usage_perc|"
                 "vllm:request_success_total"}]
    kept = job["metric_relabel_configs"][0]["regex"].split("|")
    for query in queries(stack_settings("dev").model_serving.models[0]).values():
        # The series a query selects: a name regex, or a metric name before its labels.
        pattern = re.search(r'__name__=~"([^"]+)"', query)
        selected = ([name for name in kept if re.fullmatch(pattern.group(1), name)] if pattern
                    else [name for name in kept if f"{name}{{" in query])
        assert selected, query
    assert scraper.inputs["timeouts"] == {"create": "45m", "update": "30m", "delete": "30m"}
    assert job["relabel_configs"][0] == {
        "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_component",
                          "__meta_kubernetes_pod_container_port_name"],
        "regex": "model-server;metrics", "action": "keep"}
    # Its interfaces' group: out only to the cluster security group, on 443 and the metrics port.
    group = plan.one("aws:ec2/securityGroup:SecurityGroup", "prometheus-scraper")
    egress = [r for r in plan.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
              if r.property_dependencies["securityGroupId"] == [group.urn]]
    assert sorted(r.inputs["fromPort"] for r in egress) == [443, METRICS_PORT]
    for rule in egress:
        assert rule.inputs["toPort"] == rule.inputs["fromPort"]
        assert rule.property_dependencies["referencedSecurityGroupId"] == [cluster.urn]
    ingress = [r for r in plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
               if r.property_dependencies.get("referencedSecurityGroupId") == [group.urn]]
    assert sorted(r.inputs["fromPort"] for r in ingress) == [443, METRICS_PORT]
    # AMP tags the workspace when a collector writes to it: declared, so `up` does not fight it.
    assert plan.one(WORKSPACE).inputs["tags"]["AMPAgentlessScraper"] == ""
    # No access entry of ours for the collector: AMP makes it (EKS refuses ours for its role).
    assert not [e for e in plan.of_type("aws:eks/accessEntry:AccessEntry") if "scraper" in e.name]


def test_model_pods_admit_the_subnets_on_the_metrics_port_only(stack_plans):
    plan = stack_plans["dev"]
    policies = {p.inputs["metadata"]["name"]: p.inputs["spec"]
                for p in plan.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
                if p.inputs["metadata"]["namespace"] == "model-serving"}
    scraper = policies["allow-metrics-scraper"]
    (rule,) = scraper["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": METRICS_PORT}]
    cidrs = sorted(s.inputs["cidrBlock"] for s in plan.of_type("aws:ec2/subnet:Subnet")
                   if s.name.startswith("network-private"))
    assert sorted(peer["ipBlock"]["cidr"] for peer in rule["from"]) == cidrs
    # vLLM's own port stays the gateway's alone.
    (gateway,) = policies["allow-llm-gateway-only"]["ingress"]
    assert gateway["ports"] == [{"protocol": "TCP", "port": 8000}]
    assert all("ipBlock" not in peer for peer in gateway["from"])


def test_an_existing_network_gives_the_policy_its_own_private_subnets():
    """The NetworkPolicy takes `Network.private_subnet_cidrs`; for an existing VPC those are
    looked up by subnet id (the offline engine answers a /20 of 10.250.0.0/16)."""
    import pulumi

    from components.network import Network

    config = base_config()
    config["network"] = {"existing": {
        "vpcId": "vpc-0123456789abcdef0",
        "privateSubnetIds": ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"],
        "publicSubnetIds": ["subnet-0bbbbbbbbbbbbbbb1"]}}
    settings = settings_from(config)

    def program():
        network = Network("network", settings.network, cluster_name="anythingllm-test",
                          region=settings.region, tags={"stack": "test"})
        pulumi.export("cidrs", network.private_subnet_cidrs)

    cidrs = record(program, config=config).outputs["cidrs"]
    assert len(cidrs) == 2 and all(cidr.startswith("10.250.") and cidr.endswith("/20") for cidr in cidrs)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _FakeVllm(http.server.BaseHTTPRequestHandler):
    """vLLM's API port as the sidecar sees it: /metrics, and an unguarded endpoint beside it."""
    body = (b'# TYPE vllm:num_requests_running gauge\n'
            b'vllm:num_requests_running{engine="0",model_name="m"} 3.0\n')

    renders = 0

    def do_GET(self):
        if self.path == "/metrics":
            type(self).renders += 1
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(self.body)))
            self.end_headers()
            self.wfile.write(self.body)
        else:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"an answer without a key")

    def log_message(self, *args):
        pass


def _get(url: str, method: str = "GET") -> tuple[int, bytes, dict]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, b"", {}


@pytest.fixture()
def sidecar():
    """The sidecar's script, run for real (as in the pod: `python3 -c`), before a fake vLLM."""
    upstream_port, port = _free_port(), _free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", upstream_port), _FakeVllm)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {**os.environ, "UPSTREAM": f"http://127.0.0.1:{upstream_port}/metrics",
           "PORT": str(port), "TIMEOUT_SECONDS": "5", "PYTHONDONTWRITEBYTECODE": "1",
           "CACHE_SECONDS": "1"}
    process = subprocess.Popen([sys.executable, "-c", PROXY_SCRIPT], env=env)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    _FakeVllm.renders = 0
    yield f"http://127.0.0.1:{port}", server
    process.terminate()
    process.wait(5)
    server.shutdown()


def test_the_metrics_sidecar_answers_metrics_and_nothing_else(sidecar):
    base, upstream = sidecar
    status, body, headers = _get(f"{base}/metrics")
    assert status == 200 and body == _FakeVllm.body
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    # vLLM's unguarded endpoints are not reachable through it.
    assert _get(f"{base}/invocations")[0] == 404
    assert _get(f"{base}/v1/models")[0] == 404
    assert _get(f"{base}/metrics", method="POST")[0] == 501
    # Renders are reused for CACHE_SECONDS: a burst of scrapes is one render of vLLM's.
    assert all(_get(f"{base}/metrics")[1] == _FakeVllm.body for _ in range(5))
    assert _FakeVllm.renders == 1
    # vLLM not answering (starting, stopping): a failed scrape, not a hang.
    upstream.shutdown()
    upstream.server_close()
    time.sleep(1.1)  # past the cache
    started = time.monotonic()
    assert _get(f"{base}/metrics")[0] == 503
    assert time.monotonic() - started < 5


def test_autoscaled_model_pods_run_the_sidecar_on_its_own_port(stack_plans):
    deployment = stack_plans["dev"].one(WORKLOAD, "models-qwen2-5-7b-instruct")
    containers = {c["name"]: c for c in deployment.inputs["spec"]["template"]["spec"]["containers"]}
    metrics = containers["metrics"]
    assert metrics["command"] == ["python3", "-c", PROXY_SCRIPT]
    assert metrics["ports"] == [{"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}]
    env = {e["name"]: e["value"] for e in metrics["env"]}
    assert env["UPSTREAM"] == "http://127.0.0.1:8000/metrics"
    assert metrics["securityContext"]["readOnlyRootFilesystem"] is True
    assert [p["containerPort"] for p in containers["vllm"]["ports"]] == [8000]
    # It sees no GPU (the CUDA image's NVIDIA_VISIBLE_DEVICES=all otherwise applies), and it
    # outlives vLLM's drain, so KEDA still sees a leaving pod's load.
    assert env["NVIDIA_VISIBLE_DEVICES"] == "void"
    stream = stack_settings("dev").gateway.request_timeout_seconds
    assert metrics["lifecycle"] == {"preStop": {"exec": {
        "command": ["python3", "-c", WAIT_FOR_UPSTREAM_SCRIPT]}}}
    assert (env["UPSTREAM_PORT"], env["STAYS_SECONDS"]) == ("8000", str(PRE_STOP_SECONDS + stream))


def _wait_for_upstream(port: int, stays: float) -> float:
    """Run the sidecar's preStop for real; its duration."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", WAIT_FOR_UPSTREAM_SCRIPT], check=True, timeout=30,
                   env={**os.environ, "UPSTREAM_PORT": str(port), "STAYS_SECONDS": str(stays)})
    return time.monotonic() - started


def test_the_sidecar_stays_while_vllm_drains_and_goes_with_it():
    """The preStop returns once vLLM's port closes (the end of its drain), and at the latest
    after its limit; with vLLM already gone, at once. A fixed sleep would hold every leaving pod,
    and its GPU, for the whole drain allowance even when vLLM had nothing to finish."""
    port = _free_port()
    assert _wait_for_upstream(port, 20) < 1.5  # nothing listens: vLLM is gone
    listener = socket.create_server(("127.0.0.1", port))
    threading.Timer(1, listener.close).start()  # vLLM's drain ends after 1 s (checked every 2 s)
    assert 1.5 < _wait_for_upstream(port, 20) < 5
    with socket.create_server(("127.0.0.1", port)):  # a drain that outlasts the limit
        assert 1.5 < _wait_for_upstream(port, 2) < 5


# ----------------------------------------------------------------------- scaling down gently


@pytest.mark.parametrize("stack", STACKS)
def test_a_leaving_model_pod_finishes_its_answers(stack_plans, stack):
    """vLLM 0.32.0 aborts every request in flight on SIGTERM unless --shutdown-timeout is above
    0 (v1/engine/core.py `_handle_shutdown`): it drains for the gateway's request timeout, the
    longest answer anyone waits for, after a preStop that lets the endpoints update."""
    settings = stack_settings(stack)
    stream = settings.gateway.request_timeout_seconds
    workloads = stack_plans[stack].of_type(WORKLOAD)
    assert len(workloads) == len(settings.model_serving.models)
    for workload in workloads:
        pod = workload.inputs["spec"]["template"]["spec"]
        vllm = next(c for c in pod["containers"] if c["name"] == "vllm")
        args = vllm["args"]
        assert int(args[args.index("--shutdown-timeout") + 1]) == stream > 0
        assert vllm["lifecycle"] == {
            "postStart": {"exec": {"command": ["python3", "-c", POST_START_SCRIPT, DRAIN_MARK]}},
            "preStop": {"exec": {"command": [
                "python3", "-c", PRE_STOP_SCRIPT, DRAIN_MARK, str(PRE_STOP_SECONDS)]}}}
        readiness = vllm["readinessProbe"]
        assert readiness["exec"]["command"] == ["python3", "-c", READINESS_SCRIPT, DRAIN_MARK,
                                                "http://127.0.0.1:8000/health"]
        # The mark is on the pod's /tmp, which vLLM's read-only image can write.
        assert "/tmp" in {m["mountPath"] for m in vllm["volumeMounts"]}
        assert DRAIN_MARK.startswith("/tmp/")
        # SIGTERM only once the probe has failed on the mark as often as it must, and the
        # endpoints have had 10 s to follow.
        assert readiness["periodSeconds"] * readiness["failureThreshold"] + 10 <= PRE_STOP_SECONDS
        assert pod["terminationGracePeriodSeconds"] == termination_grace_seconds(stream)
        assert pod["terminationGracePeriodSeconds"] > PRE_STOP_SECONDS + stream


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_draining_model_pod_stops_being_ready_before_vllm_stops_taking_requests(tmp_path):
    """The preStop, readiness and postStart scripts, run for real as in the pod (`python3 -c`
    with their arguments): ready while vLLM's /health answers and the pod is not leaving; not
    ready once the preStop has marked it, or when vLLM does not answer; ready again after a
    restart of the container (the kubelet runs the preStop before a liveness kill too, and the
    mark on the pod's /tmp outlives the container)."""
    port = _free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    mark, health = str(tmp_path / "draining"), f"http://127.0.0.1:{port}/health"

    def ready() -> bool:
        return subprocess.run([sys.executable, "-c", READINESS_SCRIPT, mark, health],
                              capture_output=True, timeout=10).returncode == 0

    try:
        assert ready()
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", PRE_STOP_SCRIPT, mark, "0.5"], check=True, timeout=10)
        assert time.monotonic() - started >= 0.5
        assert not ready()
        subprocess.run([sys.executable, "-c", POST_START_SCRIPT, mark], check=True, timeout=10)
        assert ready() and not os.path.exists(mark)
        subprocess.run([sys.executable, "-c", POST_START_SCRIPT, mark], check=True, timeout=10)
    finally:
        server.shutdown()
        server.server_close()
    assert not ready()  # nothing listens any more
    assert (READINESS_PERIOD_SECONDS, READINESS_FAILURES) == (5, 3)


def test_scaling_waits_before_it_moves_and_steps_down_slowly():
    assert SCALE_UP["stabilizationWindowSeconds"] == 60
    assert SCALE_UP["policies"] == [{"type": "Pods", "value": 2, "periodSeconds": 60}]
    assert SCALE_DOWN["stabilizationWindowSeconds"] == 600
    assert SCALE_DOWN["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 300}]


# ----------------------------------------------------------------------- settings


@pytest.mark.parametrize(("change", "path", "reason"), [
    ({"replicas": 2, "maxReplicas": 1}, "modelServing.models[0].maxReplicas", "below replicas (2)"),
    ({"idleMinutes": 20}, "modelServing.models[0].idleMinutes", "only a model that sleeps"),
    ({"targetKvCacheUsage": 0.7, "__model": 1}, "modelServing.models[1].targetKvCacheUsage",
     "only chat models"),
    ({"maxReplicas": 2, "awakeHours": {"timeZone": "Mars/Olympus", "start": "08:00", "end": "18:00"}},
     "modelServing.models[0].awakeHours.timeZone", "not an IANA time zone"),
    ({"replicas": 0, "awakeHours": {"timeZone": "UTC", "days": "Mon-Funday", "start": "08:00",
                                    "end": "18:00"}},
     "modelServing.models[0].awakeHours.days", "not a list of days"),
    ({"replicas": 0, "awakeHours": {"timeZone": "UTC", "days": "Fri-Mon", "start": "08:00",
                                    "end": "18:00"}},
     "modelServing.models[0].awakeHours.days", "runs backwards"),
    ({"replicas": 0, "awakeHours": {"timeZone": "UTC", "start": "8am", "end": "18:00"}},
     "modelServing.models[0].awakeHours.start", "not a time of day"),
    ({"replicas": 0, "awakeHours": {"timeZone": "UTC", "start": "19:00", "end": "08:00"}},
     "modelServing.models[0].awakeHours.end", "not after start"),
    ({"replicas": 1, "awakeHours": {"timeZone": "UTC", "start": "08:00", "end": "18:00"}},
     "modelServing.models[0].awakeHours.replicas", "not above the floor"),
    ({"replicas": 0, "awakeHours": {"timeZone": "UTC", "start": "08:00", "end": "18:00",
                                    "replicas": 2}},
     "modelServing.models[0].awakeHours.replicas", "above maxReplicas (1)"),
    ({"maxReplicas": 3}, "cluster.gpuNodeGroups[0].maxSize", "need 4 at their peak"),
])
def test_bad_scaling_settings_name_the_key(change, path, reason):
    config = base_config()
    change = dict(change)
    model = config["modelServing"]["models"][change.pop("__model", 0)]
    model.update(change)
    expect_settings_error(config, path, reason)


def test_prod_models_keep_a_floor():
    config = base_config("prod")
    config["modelServing"]["models"][0].update(replicas=0, maxReplicas=1)
    expect_settings_error(config, "modelServing.models[0].replicas",
                          "a prod model keeps a floor of at least 1")


def test_awake_days_become_a_cron_day_of_week_field():
    assert cron_days("Mon-Fri") == "1,2,3,4,5"
    assert cron_days("Sat-Sun") == "0,6"
    assert cron_days("mon, wed,FRI") == "1,3,5"
    assert cron_days("Fri-Sun,Mon") == "0,1,5,6"
    hours = AwakeHoursSettings.model_validate(
        {"timeZone": "Europe/Berlin", "start": "07:30", "end": "18:00"})
    assert hours.cron("07:30") == "30 7 * * 1,2,3,4,5"


def test_every_committed_sleeping_model_is_outside_prod():
    for stack in STACKS:
        settings = stack_settings(stack)
        sleeping = [m.name for m in settings.model_serving.models if m.sleeps]
        assert not (settings.is_prod and sleeping), stack
    assert "prod" in STACKS and [m.name for m in stack_settings("dev").model_serving.models
                                 if m.sleeps] == ["qwen2-5-7b-instruct", "bge-m3"]


# ----------------------------------------------------------------------- when scaling is blind


def test_the_workspace_alerts_when_scaling_is_blind_or_cannot_keep_up(stack_plans):
    from components.scaling_alerts import (
        alert_manager_definition,
        alert_rules,
        missing_minutes,
        topic_policy,
    )

    plan, settings = stack_plans["prod"], stack_settings("prod")
    rules = yaml.safe_load(plan.one("aws:amp/ruleGroupNamespace:RuleGroupNamespace").inputs["data"])
    assert rules == alert_rules(settings.model_serving.models)
    found = {(r["alert"], r["labels"].get("model")): r for r in rules["groups"][0]["rules"]}
    # Every model with a floor has its own "no pod scraped" alert, by the Service label the
    # collector adds (and only series the collector keeps are read: `up` and the queue gauge).
    assert set(found) == {("ModelMetricsNotScraped", None), ("ModelRequestsQueued", None),
                          ("ModelMetricsMissing", "qwen2-5-7b-instruct"), ("ModelMetricsMissing", "bge-m3")}
    assert found[("ModelMetricsMissing", "bge-m3")]["expr"] == (
        'absent(up{job="vllm",service="vllm-bge-m3"} == 1)')
    # Longer than a cold start of the model (a Recreate rollout restarts every pod at once):
    # bge-m3's pod budget is 600 s of node and image plus 54 probe periods of 10 s.
    assert cold_start.pod_seconds(settings.model_serving.by_name("bge-m3")) == 1140
    bge = settings.model_serving.by_name("bge-m3")
    assert found[("ModelMetricsMissing", "bge-m3")]["for"] == "24m" == f"{missing_minutes(bge)}m"
    # Only ready pods count as "not scraped": a pod loading its model answers 503 by design.
    assert found[("ModelMetricsNotScraped", None)]["expr"] == 'up{job="vllm",ready="true"} == 0'
    relabels = scrape_configuration()["scrape_configs"][0]["relabel_configs"]
    assert {"source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
            "target_label": "service"} in relabels
    assert {"source_labels": ["__meta_kubernetes_pod_ready"], "target_label": "ready"} in relabels
    assert found[("ModelRequestsQueued", None)]["expr"] == (
        'sum by (model_name) (avg_over_time(vllm:num_requests_waiting{namespace="model-serving"}'
        '[15m])) >= 1')
    # Dev's models sleep: no pod is normal there, so no "missing" alert; and dev has no alarm
    # addresses, so its alerts stay in the workspace (no topic, key or alert manager).
    dev = stack_plans["dev"]
    dev_rules = yaml.safe_load(dev.one("aws:amp/ruleGroupNamespace:RuleGroupNamespace").inputs["data"])
    assert {r["alert"] for r in dev_rules["groups"][0]["rules"]} == {
        "ModelMetricsNotScraped", "ModelRequestsQueued"}
    assert not dev.of_type("aws:amp/alertManagerDefinition:AlertManagerDefinition")
    assert [t.name for t in dev.of_type("aws:sns/topic:Topic")] == ["observability-alarms"]
    # The rules come after the collector whose labels they read.
    assert plan.waits_for(plan.one("aws:amp/ruleGroupNamespace:RuleGroupNamespace"), plan.one(SCRAPER))

    # The alert manager sends to the alerts topic, the only receiver AMP supports (SNS).
    topic = plan.one("aws:sns/topic:Topic", "scaling-alerts-topic")
    definition = yaml.safe_load(plan.one("aws:amp/alertManagerDefinition:AlertManagerDefinition")
                                .inputs["definition"])
    config = yaml.safe_load(definition["alertmanager_config"])
    ((receiver,),) = [r["sns_configs"] for r in config["receivers"]]
    assert receiver["sigv4"] == {"region": "us-east-1"}
    assert receiver["topic_arn"].endswith(":anythingllm-prod-scaling-alerts")
    assert definition == alert_manager_definition(topic_arn=receiver["topic_arn"], region="us-east-1",
                                                  cluster_name="anythingllm-prod")
    assert receiver["subject"] == "anythingllm-prod: {{ .CommonLabels.alertname }}"
    # Prod's alarm addresses get these too.
    subscriptions = [s.inputs["endpoint"] for s in plan.of_type("aws:sns/topicSubscription:TopicSubscription")
                     if s.name.startswith("scaling-alerts-topic-")]
    assert subscriptions == settings.observability.alarm_emails
    assert topic.inputs["kmsMasterKeyId"]

    # AMP may publish for this workspace in this account, nobody else; the topic's key lets AMP
    # encrypt without conditions, as the AMP user guide's key statement does (SNS calls KMS).
    workspace = _workspace_arn(plan)
    account = workspace.split(":")[4]
    policy = json.loads(plan.one("aws:sns/topicPolicy:TopicPolicy", "scaling-alerts-topic").inputs["policy"])
    topic_arn = receiver["topic_arn"]
    assert policy == topic_policy(topic_arn=topic_arn, workspace_arn=workspace, account_id=account)
    own = {"aws:SourceArn": workspace, "aws:SourceAccount": account}
    assert evaluate(policy, Request("sns:Publish", topic_arn, own,
                                    principal="aps.amazonaws.com")) == ALLOWED
    assert evaluate(policy, Request("sns:Publish", topic_arn, {**own, "aws:SourceArn": workspace + "x"},
                                    principal="aps.amazonaws.com")) == IMPLICIT_DENY
    assert evaluate(policy, Request("sns:Publish", topic_arn, own,
                                    principal="cloudwatch.amazonaws.com")) == IMPLICIT_DENY
    key = json.loads(plan.one("aws:kms/key:Key", "scaling-alerts-topic").inputs["policy"])
    assert key == iam.amp_alert_topic_key_policy(account_id=account, partition="aws")
    assert evaluate(key, Request("kms:GenerateDataKey", "*", principal="aps.amazonaws.com")) == ALLOWED
    assert evaluate(key, Request("kms:Decrypt", "*", principal="sns.amazonaws.com")) == IMPLICIT_DENY
