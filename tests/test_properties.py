"""Property tests: random valid stack configs always record and pass the policy pack; random
invalid ones always fail naming the key; the pure builders keep their invariants for any input.

The whole-program property runs the engine (about a second per example), so it draws few,
derandomized examples (CI stays reproducible); the settings-level properties draw many.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components import iam
from components.ingress import alb_annotations
from components.instance_types import GPU_INSTANCE_TYPES
from components.litellm_config import litellm_config
from components.model_serving import api_bases
from components.observability import WatchedWorkload, cache_member_ids, database_alarms, gpu_alarms
from components.settings import AlarmThresholds, SettingsError
from components.settings.observability import max_connections
from tests.conftest import ROOT, base_config, namespaced, settings_from
from tools.engine import run_stack
from tools.policy_check import check

ZONES = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
GPU_TYPES = ["g5.xlarge", "g6.xlarge", "g6e.xlarge", "g6.12xlarge", "g6e.12xlarge"]
DB_CLASSES = {"dev": ["db.t4g.medium", "db.m7g.large"], "staging": ["db.t4g.medium"],
              "prod": ["db.m7g.large", "db.r7g.large", "db.r7g.2xlarge"]}
CACHE_TYPES = {"dev": ["cache.t4g.small", "cache.m7g.large"], "staging": ["cache.t4g.small"],
               "prod": ["cache.m7g.large", "cache.r7g.large"]}


@st.composite
def stack_configs(draw) -> dict[str, Any]:
    """A valid config of any environment: zones, NAT layout, GPU groups and models that fit,
    data-service sizes, an optional canary and alarm thresholds all vary."""
    environment = draw(st.sampled_from(["dev", "staging", "prod"]))
    prod = environment == "prod"
    config = base_config(environment)
    zones = draw(st.integers(2, 3))
    config["network"]["availabilityZones"] = ZONES[:zones]
    config["network"]["natGateways"] = "perAz" if prod else draw(st.sampled_from(["single", "perAz"]))

    gpu_type = draw(st.sampled_from(GPU_TYPES))
    per_node = GPU_INSTANCE_TYPES[gpu_type].gpus
    chat_gpus = draw(st.sampled_from([g for g in (1, 2, 4) if g <= per_node]))
    # The chat model's floor (0: it sleeps, not in prod) and its ceiling, which the group holds.
    chat_replicas = draw(st.integers(1 if prod else 0, 2))
    chat_peak = draw(st.integers(max(chat_replicas, 1), max(chat_replicas, 1) + 1))
    needed = chat_gpus * chat_peak + 1  # plus the embedder's one GPU
    max_size = math.ceil(needed / per_node) + draw(st.integers(0, 2))
    engine = draw(st.sampled_from(["karpenter", "managed"]))
    # A managed group may keep a floor of nodes; a Karpenter group has none (its nodes follow
    # the pods).
    min_size = draw(st.integers(1 if prod else 0, max_size)) if engine == "managed" else 0
    throughput = draw(st.sampled_from([125, 500, 600, 1000]))
    # Parallel image pull (a Karpenter group's default) needs 600 MiB/s and no image snapshot.
    fast_pull = engine == "karpenter" and throughput >= 600 and draw(st.booleans())
    config["cluster"]["gpuNodeGroups"] = [{
        "name": "inference", "engine": engine, "instanceTypes": [gpu_type],
        "amiType": draw(st.sampled_from(["AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA"])),
        "capacityType": "ON_DEMAND" if prod else draw(st.sampled_from(["ON_DEMAND", "SPOT"])),
        "minSize": min_size,
        "desiredSize": draw(st.integers(min_size, max_size)) if engine == "managed" else 0,
        "maxSize": max_size, "diskThroughputMibps": throughput,
        "diskIops": draw(st.integers(max(3000, 4 * throughput), 16000)),
        "fastImagePull": fast_pull,
    }]
    chat, embed = config["modelServing"]["models"]
    chat.update(gpus=chat_gpus, replicas=chat_replicas, maxReplicas=chat_peak)
    if chat_replicas == 0 and draw(st.booleans()):
        chat["awakeHours"] = {"timeZone": "Europe/Dublin", "start": "08:00", "end": "18:00"}
    embed["gpuMemoryUtilization"] = draw(st.sampled_from([0.5, 0.8, 0.9]))

    allocated = draw(st.integers(20, 500))
    config["database"] = {"instanceClass": draw(st.sampled_from(DB_CLASSES[environment])),
                          "allocatedStorageGib": allocated,
                          "maxAllocatedStorageGib": draw(st.sampled_from([None, 2 * allocated]))}
    engine = draw(st.sampled_from(["valkey", "redis"]))
    cluster_mode = "disabled"  # the stack refuses cluster mode (LiteLLM, test_serving_settings)
    config["cache"] = {"engine": engine, "nodeType": draw(st.sampled_from(CACHE_TYPES[environment])),
                       "replicas": draw(st.integers(1 if prod else 0, 2)), "clusterMode": cluster_mode,
                       **({"shards": draw(st.integers(1, 3))} if cluster_mode == "enabled" else {})}
    app: dict[str, Any] = {"replicas": draw(st.integers(3 if prod else 2, 5))}
    if draw(st.booleans()):
        app["canary"] = {"imageTag": "pg-1.17.0", "weight": draw(st.integers(0, 100)),
                         "isolation": draw(st.sampled_from(["shared", "isolated"]))}
    config["app"] = app
    config["observability"] = {
        **config["observability"],
        "thresholds": {"alb5xxPercent": draw(st.floats(0.5, 50)),
                       "evaluationPeriods": draw(st.integers(1, 6)),
                       "gpuPendingMinutes": draw(st.integers(5, 120))},
    }
    return config


@settings(max_examples=4, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(config=stack_configs())
def test_any_valid_config_records_and_passes_the_policy_pack(config):
    stack = f"prop-{config['environment']}"
    settings_from(config, stack=stack)  # valid by construction
    plan = run_stack(ROOT, stack, config=namespaced(config))
    assert plan.of_type("aws:eks/cluster:Cluster") and plan.of_type("kubernetes:apps/v1:Deployment")
    assert check(plan) == []
    alarms = [r.inputs for r in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")]
    rate = next(a for a in alarms if a["name"].endswith("-alb-5xx-rate"))
    assert rate["threshold"] == config["observability"]["thresholds"]["alb5xxPercent"]


@settings(max_examples=60, deadline=None)
@given(config=stack_configs())
def test_any_generated_config_is_valid(config):
    loaded = settings_from(config)
    assert loaded.environment == config["environment"]


# Each breaks one key; applied to any valid config, the error must name exactly that key.
MUTATIONS: list[tuple[str, Callable[[dict], None]]] = [
    ("network.vpcCidr", lambda c: c["network"].__setitem__("vpcCidr", "10.0.0.0/33")),
    ("network.availabilityZones[0]", lambda c: c["network"].__setitem__("availabilityZones",
                                                                         ["us-east-1a", "eu-west-1b"])),
    ("cluster.kubernetesVersion", lambda c: c["cluster"].__setitem__("kubernetesVersion", "1.20")),
    ("cluster.adminRoleArns[0]", lambda c: c["cluster"].__setitem__("adminRoleArns", ["admin"])),
    ("cluster.gpuNodeGroups[0].instanceTypes[0]",
     lambda c: c["cluster"]["gpuNodeGroups"][0].__setitem__("instanceTypes", ["m6i.large"])),
    ("cluster.gpuNodeGroups[0].maxSize",
     lambda c: c["cluster"]["gpuNodeGroups"][0].__setitem__("maxSize", 0)),
    ("database.instanceClass", lambda c: c.__setitem__("database", {"instanceClass": "m7g.large"})),
    ("database.engineVersion", lambda c: c.__setitem__("database", {"engineVersion": 17})),
    ("cache.engine", lambda c: c.__setitem__("cache", {"engine": "memcached"})),
    ("ingress.idleTimeoutSeconds", lambda c: c["ingress"].__setitem__("idleTimeoutSeconds", 60)),
    ("app.imageTag", lambda c: c.__setitem__("app", {"imageTag": "latest"})),
    ("app.canary.weight", lambda c: c.__setitem__("app", {"canary": {
        "imageTag": "pg-1.17.0", "weight": 101, "isolation": "shared"}})),
    ("modelServing.models[0].nodeGroup",
     lambda c: c["modelServing"]["models"][0].__setitem__("nodeGroup", "missing")),
    ("modelServing.models",
     lambda c: c["modelServing"].__setitem__("models", c["modelServing"]["models"][:1])),
    ("observability.alarmEmails[0]", lambda c: c.__setitem__("observability", {"alarmEmails": ["nobody"]})),
    ("observability.thresholds.cachePercent",
     lambda c: c.__setitem__("observability", {"thresholds": {"cachePercent": 1}})),
    ("environment", lambda c: c.__setitem__("environment", "qa")),
]


@settings(max_examples=80, deadline=None)
@given(config=stack_configs(), mutation=st.sampled_from(MUTATIONS))
def test_any_invalid_config_fails_naming_the_key(config, mutation):
    path, mutate = mutation
    broken = copy.deepcopy(config)
    mutate(broken)
    try:
        settings_from(broken)
    except SettingsError as error:
        assert f"  - {path}: " in str(error), str(error)
    else:
        raise AssertionError(f"{path}: the broken config was accepted")


# --------------------------------------------------------------------------- pure functions

@settings(max_examples=60, deadline=None)
@given(config=stack_configs())
def test_alb_annotations_are_strings_within_alb_limits(config):
    loaded = settings_from(config)
    annotations = alb_annotations(loaded.ingress, load_balancer_name="anythingllm-prop")
    assert all(isinstance(v, str) and k.startswith("alb.ingress.kubernetes.io/")
               for k, v in annotations.items())
    attributes = dict(item.split("=", 1) for item in
                      annotations["alb.ingress.kubernetes.io/load-balancer-attributes"].split(","))
    assert 300 <= int(attributes["idle_timeout.timeout_seconds"]) <= 4000
    assert "stickiness.type=lb_cookie" in annotations["alb.ingress.kubernetes.io/target-group-attributes"]


@settings(max_examples=60, deadline=None)
@given(config=stack_configs())
def test_litellm_config_routes_every_replica_of_every_model_once(config):
    """Each model has one entry per replica up to its ceiling, in ordinal order, with distinct
    ids across the whole list (the keys of in-flight counts and cooldowns), its cooldown rule
    and its retries."""
    loaded = settings_from(config)
    models = loaded.model_serving.models
    bases = {model.name: api_bases(model) for model in models}
    rendered = litellm_config(models, bases, loaded.gateway)
    names = [entry["model_name"] for entry in rendered["model_list"]]
    assert sorted(names) == sorted(m.name for m in models for _ in range(m.peak_replicas))
    for model in models:
        entries = [e for e in rendered["model_list"] if e["model_name"] == model.name]
        assert [e["litellm_params"]["api_base"] for e in entries] == bases[model.name]
        assert [e["model_info"]["id"] for e in entries] == [
            f"vllm-{model.name}-{ordinal}" for ordinal in range(model.peak_replicas)]
        # A model with several replicas cools each at its first failure and retries once per
        # other replica; a model with one keeps LiteLLM's rules.
        assert [e["model_info"].get("allowed_fails") for e in entries] == (
            [0] * model.peak_replicas if model.peak_replicas > 1 else [None])
        policies = rendered["router_settings"]["model_group_retry_policy"]
        if model.peak_replicas == 1:
            assert model.name not in policies  # the router's two retries, with back-off
        else:
            assert policies[model.name] == {"InternalServerErrorRetries": model.peak_replicas - 1,
                                            "TimeoutErrorRetries": 0}
    ids = [e["model_info"]["id"] for e in rendered["model_list"]]
    assert len(set(ids)) == len(ids)


@settings(max_examples=100, deadline=None)
@given(namespace=st.from_regex(r"[a-z][a-z0-9-]{0,62}", fullmatch=True),
       account=st.from_regex(r"\d{12}", fullmatch=True),
       cluster=st.from_regex(r"[a-z][a-z0-9-]{0,99}", fullmatch=True))
def test_pod_identity_trust_is_scoped_to_exactly_its_inputs(namespace, account, cluster):
    document = json.loads(iam.to_json(iam.pod_identity_trust_policy(
        account_id=account, cluster_name=cluster, namespace=namespace, service_account="sa")))
    [statement] = document["Statement"]
    assert statement["Condition"]["StringEquals"] == {
        "aws:SourceAccount": account, "aws:RequestTag/eks-cluster-name": cluster,
        "aws:RequestTag/kubernetes-namespace": namespace,
        "aws:RequestTag/kubernetes-service-account": "sa"}
    assert "*" not in json.dumps(statement["Action"])


@settings(max_examples=100, deadline=None)
@given(config=stack_configs())
def test_cache_members_are_distinct_and_one_per_node(config):
    cache = settings_from(config).cache
    members = cache_member_ids("anythingllm-prop-cache", cache)
    shards = cache.shards if cache.cluster_mode == "enabled" else 1
    assert len(members) == len(set(members)) == shards * (cache.replicas + 1)
    assert all(len(member) <= 50 for member in members)  # ElastiCache cluster id limit


@settings(max_examples=100, deadline=None)
@given(storage=st.integers(20, 65536), percent=st.floats(0.5, 99), connections=st.integers(1, 5000),
       minutes=st.integers(5, 1440))
def test_alarm_thresholds_follow_the_settings(storage, percent, connections, minutes):
    thresholds = AlarmThresholds(databaseFreeStoragePercent=percent, gpuPendingMinutes=minutes)
    alarms = {a.key: a for a in database_alarms(thresholds, identifier="db", allocated_storage_gib=storage,
                                                connections=connections)}
    assert alarms["rds-free-storage"].threshold == round(storage * 2**30 * percent / 100)
    assert alarms["rds-connections"].threshold == connections
    [gpu] = gpu_alarms(thresholds, cluster_name="c", namespace="n",
                       workloads={"m": WatchedWorkload("vllm-m", 1)})
    # CloudWatch: evaluation periods x period at most one day.
    assert gpu.evaluation_periods * gpu.metric["period"] == minutes * 60 <= 86400


@given(instance_class=st.from_regex(r"db\.[mrt][5-8]g?\.(large|xlarge|2xlarge|medium|micro)", fullmatch=True))
def test_max_connections_is_positive_and_capped(instance_class):
    limit = max_connections(instance_class)
    assert limit is not None and 0 < limit <= 5000
