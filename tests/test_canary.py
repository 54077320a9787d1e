"""Canary releases of AnythingLLM: settings, the ALB rules, and what the program records."""

from __future__ import annotations

import copy
import json

import pytest

from components.anythingllm import TRACK_LABEL
from components.ingress import canary_routing
from components.versions import ANYTHINGLLM_REPOSITORY, ANYTHINGLLM_TAG
from tests import crd_schema
from tests.conftest import ROOT, base_config, expect_settings_error, settings_from
from tools.engine import Plan, Registration, read_stack_config, run_stack
from tools.preview import is_kubernetes_object

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
SECRET = "kubernetes:core/v1:Secret"
CLAIM = "kubernetes:core/v1:PersistentVolumeClaim"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
JOB = "kubernetes:batch/v1:Job"
PREFIX = "alb.ingress.kubernetes.io/"
CANARY_TAG = "pg-1.17.0"


def _settings(canary: dict):
    config = base_config("dev")
    config["app"] = {"replicas": 2, "canary": canary}
    return settings_from(config)


def _routing(canary: dict) -> tuple[dict[str, str], list[str]]:
    settings = _settings(canary)
    return canary_routing(settings.ingress, settings.app.canary, stable_service="anythingllm",
                          canary_service="anythingllm-canary")


# --------------------------------------------------------------------------- ALB rules


@pytest.mark.parametrize("weight", [0, 10, 100])
def test_weighted_action_exact_json(weight):
    annotations, backends = _routing({"imageTag": CANARY_TAG, "weight": weight, "isolation": "shared"})
    assert annotations == {
        PREFIX + "actions.weighted-release": (
            '{"type":"forward","forwardConfig":{"targetGroups":['
            f'{{"serviceName":"anythingllm","servicePort":"http","weight":{100 - weight}}},'
            f'{{"serviceName":"anythingllm-canary","servicePort":"http","weight":{weight}}}],'
            '"targetGroupStickinessConfig":{"enabled":true,"durationSeconds":86400}}}'
        ),
    }
    assert backends == ["weighted-release"]


def test_header_rule_exact_json_and_comes_first():
    annotations, backends = _routing({"imageTag": CANARY_TAG, "weight": 10, "isolation": "shared",
                                      "header": {"name": "X-Canary", "value": "always"}})
    assert annotations[PREFIX + "actions.canary-by-header"] == (
        '{"type":"forward","forwardConfig":{"targetGroups":['
        '{"serviceName":"anythingllm-canary","servicePort":"http"}]}}'
    )
    assert annotations[PREFIX + "conditions.canary-by-header"] == (
        '[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"X-Canary","values":["always"]}}]'
    )
    # The controller numbers rules in path order: the header rule must win over the split.
    assert backends == ["canary-by-header", "weighted-release"]


def test_rule_stickiness_follows_the_sticky_session_setting():
    config = base_config("dev")
    config["ingress"]["stickySessionSeconds"] = 3600
    config["app"] = {"replicas": 2, "canary": {"imageTag": CANARY_TAG, "weight": 50, "isolation": "shared"}}
    settings = settings_from(config)
    annotations, _ = canary_routing(settings.ingress, settings.app.canary, stable_service="a",
                                    canary_service="b")
    action = json.loads(annotations[PREFIX + "actions.weighted-release"])
    assert action["forwardConfig"]["targetGroupStickinessConfig"] == {"enabled": True,
                                                                      "durationSeconds": 3600}
    assert [group["weight"] for group in action["forwardConfig"]["targetGroups"]] == [50, 50]


# --------------------------------------------------------------------------- settings

BAD_CANARIES = [
    ({"imageTag": "latest", "isolation": "shared"}, "app.canary.imageTag", "pg-<major>.<minor>.<patch>"),
    ({"imageTag": "1.17.0", "isolation": "shared"}, "app.canary.imageTag", "PostgreSQL build"),
    ({"imageTag": "pg", "isolation": "shared"}, "app.canary.imageTag", "not a pinned release"),
    ({"imageTag": CANARY_TAG, "isolation": "shared", "weight": 101}, "app.canary.weight", "or equal to 100"),
    ({"imageTag": CANARY_TAG, "isolation": "shared", "weight": -1}, "app.canary.weight", "or equal to 0"),
    ({"imageTag": CANARY_TAG}, "app.canary.isolation", "required: 'shared' (the canary uses stable's"),
    ({"imageTag": CANARY_TAG, "isolation": "separate"}, "app.canary.isolation", "'shared' or 'isolated'"),
    ({"imageTag": CANARY_TAG, "isolation": "shared", "header": {"name": "Host", "value": "x"}},
     "app.canary.header.name", "host-header condition"),
    ({"imageTag": CANARY_TAG, "isolation": "shared", "header": {"name": "X Canary", "value": "x"}},
     "app.canary.header.name", "not an HTTP header name"),
    ({"imageTag": CANARY_TAG, "isolation": "shared", "header": {"name": "X-Canary", "value": "a*"}},
     "app.canary.header.value", "wildcards"),
    ({"imageTag": CANARY_TAG, "isolation": "shared", "header": {"name": "X-Canary"}},
     "app.canary.header.value", "required key is missing"),
    ({"imageTag": CANARY_TAG, "isolation": "shared", "replicas": 3, "maxReplicas": 2},
     "app.canary.maxReplicas", "below replicas"),
    ({"imageTag": CANARY_TAG, "isolation": "shared", "wieght": 10}, "app.canary.wieght", "unknown key"),
]


@pytest.mark.parametrize(("canary", "path", "reason"), BAD_CANARIES,
                         ids=[f"{c[1]}:{c[2]}" for c in BAD_CANARIES])
def test_bad_canary_settings_name_the_key(canary, path, reason):
    config = base_config("dev")
    config["app"] = {"replicas": 2, "canary": canary}
    expect_settings_error(config, path, reason)


def test_stable_image_tag_is_validated_too():
    config = base_config("dev")
    config["app"] = {"replicas": 2, "imageTag": "pg-latest"}
    expect_settings_error(config, "app.imageTag", "pg-<major>.<minor>.<patch>")


# --------------------------------------------------------------------------- the program


def _plan(canary: dict | None, *, stack: str = "dev", app: dict | None = None) -> Plan:
    config = copy.deepcopy(read_stack_config(ROOT, stack))
    config["anythingllm:app"] = {**config["anythingllm:app"], **(app or {})}
    if canary is not None:
        config["anythingllm:app"]["canary"] = canary
    return run_stack(ROOT, stack, config=config)


@pytest.fixture(scope="module")
def shared_plan() -> Plan:
    return _plan({"imageTag": CANARY_TAG, "weight": 10, "isolation": "shared",
                  "header": {"name": "X-Canary", "value": "always"}})


@pytest.fixture(scope="module")
def isolated_plan() -> Plan:
    return _plan({"imageTag": CANARY_TAG, "weight": 10, "isolation": "isolated"}, stack="prod")


def _named(plan: Plan, type_token: str, name: str) -> Registration:
    found = [r for r in plan.of_type(type_token) if r.inputs["metadata"]["name"] == name]
    assert len(found) == 1, (type_token, name)
    return found[0]


def _variants(plan: Plan) -> tuple[Registration, Registration]:
    return _named(plan, DEPLOYMENT, "anythingllm"), _named(plan, DEPLOYMENT, "anythingllm-canary")


def _bootstrap_sql(plan: Plan) -> str:
    script = next(r for r in plan.of_type(CONFIG_MAP)
                  if r.inputs["metadata"]["name"].startswith("db-bootstrap"))
    return script.inputs["data"]["bootstrap.sql"]


def _ref(secret: str, key: str) -> dict:
    return {"secretKeyRef": {"name": secret, "key": key}}


def _pod(deployment: Registration) -> dict:
    return deployment.raw_inputs["spec"]["template"]["spec"]


def _env(deployment: Registration) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in _pod(deployment)["containers"][0]["env"]}


def test_without_a_canary_nothing_canary_related_exists(stack_plans):
    for stack, plan in stack_plans.items():
        def mentions_canary(resource: Registration) -> bool:
            metadata = resource.inputs.get("metadata") or {}
            # Everything but free-text annotation values (the namespace's purpose names both).
            named = [resource.name, metadata.get("name", ""), *(metadata.get("annotations") or {}),
                     json.dumps({k: v for k, v in resource.inputs.items() if k != "metadata"})]
            return any("canary" in text for text in named)

        assert [r.name for r in plan.resources if mentions_canary(r)] == [], stack
        ingress = plan.one(INGRESS, "anythingllm-ingress")
        assert ingress.inputs["spec"]["rules"][0]["http"]["paths"][0]["backend"] == {
            "service": {"name": "anythingllm", "port": {"name": "http"}}}


def test_canary_is_a_second_deployment_with_its_own_service_hpa_and_pdb(shared_plan):
    stable, canary = _variants(shared_plan)
    assert _pod(stable)["containers"][0]["image"] == f"{ANYTHINGLLM_REPOSITORY}:{ANYTHINGLLM_TAG}"
    assert _pod(canary)["containers"][0]["image"] == f"{ANYTHINGLLM_REPOSITORY}:{CANARY_TAG}"
    for deployment, track, version in ((stable, "stable", ANYTHINGLLM_TAG), (canary, "canary", CANARY_TAG)):
        labels = deployment.inputs["metadata"]["labels"]
        assert labels["app.kubernetes.io/version"] == version
        template = deployment.inputs["spec"]["template"]
        assert template["metadata"]["labels"]["app.kubernetes.io/version"] == version
        selector = deployment.inputs["spec"]["selector"]["matchLabels"]
        assert selector[TRACK_LABEL] == track
        service = _named(shared_plan, SERVICE, deployment.inputs["metadata"]["name"])
        assert service.inputs["spec"]["selector"] == selector
        assert _named(shared_plan, PDB, deployment.inputs["metadata"]["name"]).inputs["spec"]["selector"][
            "matchLabels"] == selector
        hpa = _named(shared_plan, HPA, deployment.inputs["metadata"]["name"])
        assert hpa.inputs["spec"]["scaleTargetRef"]["name"] == deployment.inputs["metadata"]["name"]
        # Zone spreading counts only the pods of its own variant.
        spread = _pod(deployment)["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"]
        assert spread[TRACK_LABEL] == track
    assert _named(shared_plan, HPA, "anythingllm-canary").inputs["spec"]["minReplicas"] == 1


def test_shared_canary_uses_stables_database_storage_and_secrets(shared_plan):
    stable, canary = _variants(shared_plan)
    assert _env(canary) == _env(stable)
    assert _pod(canary)["volumes"] == _pod(stable)["volumes"]
    assert "anythingllm_canary" not in _bootstrap_sql(shared_plan)
    assert [r for r in shared_plan.of_type(CLAIM) if "canary" in r.inputs["metadata"]["name"]] == []


def test_ingress_routes_by_header_then_weight(shared_plan):
    ingress = shared_plan.one(INGRESS)
    paths = ingress.inputs["spec"]["rules"][0]["http"]["paths"]
    assert [p["backend"]["service"] for p in paths] == [
        {"name": "canary-by-header", "port": {"name": "use-annotation"}},
        {"name": "weighted-release", "port": {"name": "use-annotation"}},
    ]
    annotations = ingress.inputs["metadata"]["annotations"]
    weighted = json.loads(annotations[PREFIX + "actions.weighted-release"])
    assert [(g["serviceName"], g["weight"]) for g in weighted["forwardConfig"]["targetGroups"]] == [
        ("anythingllm", 90), ("anythingllm-canary", 10)]
    # Target-group stickiness (one pod within a variant) stays on beside the rule's.
    assert "stickiness.enabled=true" in annotations[PREFIX + "target-group-attributes"]
    # The Ingress goes (and the ALB with it) before either variant's Service, its backends; it
    # neither waits for the Deployments nor outlives them on purpose (an ALB needs no pod).
    for name in ("anythingllm", "anythingllm-canary"):
        assert shared_plan.deleted_before(ingress, _named(shared_plan, SERVICE, name))
        assert not shared_plan.waits_for(ingress, _named(shared_plan, DEPLOYMENT, name))


def test_each_database_gets_its_own_admin_job(shared_plan, isolated_plan):
    """Multi-user mode lives in the database: an isolated canary's needs its own switch (with
    its own AUTH_TOKEN, against its own Service); a shared canary's is stable's."""
    admin_jobs = sorted(j.name for j in shared_plan.of_type(JOB) if j.name.endswith("-admin"))
    assert admin_jobs == ["anythingllm-admin"]
    jobs = {j.name: j for j in isolated_plan.of_type(JOB) if j.name.endswith("-admin")}
    assert sorted(jobs) == ["anythingllm-admin", "anythingllm-canary-admin"]
    (container,) = jobs["anythingllm-canary-admin"].inputs["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["ANYTHINGLLM_URL"] == "http://anythingllm-canary.anythingllm.svc.cluster.local:3001"
    assert env["AUTH_TOKEN"] == _ref("anythingllm-canary-secrets", "AUTH_TOKEN")
    assert container["image"].endswith(f":{CANARY_TAG}")
    assert isolated_plan.waits_for(jobs["anythingllm-canary-admin"],
                                   _named(isolated_plan, DEPLOYMENT, "anythingllm-canary"))


def test_isolated_canary_gets_its_own_database_storage_and_secrets(isolated_plan):
    canary = _named(isolated_plan, DEPLOYMENT, "anythingllm-canary")
    env = _env(canary)
    assert env["DATABASE_URL"] == _ref("anythingllm-canary-database", "DATABASE_URL")
    assert env["JWT_SECRET"] == _ref("anythingllm-canary-secrets", "JWT_SECRET")
    volumes = {v["name"]: v for v in _pod(canary)["volumes"]}
    assert volumes["storage"]["persistentVolumeClaim"] == {"claimName": "anythingllm-canary-storage"}
    stable_env = _env(_named(isolated_plan, DEPLOYMENT, "anythingllm"))
    assert stable_env["DATABASE_URL"]["secretKeyRef"]["name"] == "anythingllm-database"
    assert stable_env["JWT_SECRET"]["secretKeyRef"]["name"] == "anythingllm-secrets"

    # The bootstrap Job creates the canary's role, database and `vector`, and its Secret waits.
    script = _bootstrap_sql(isolated_plan)
    assert "CREATE DATABASE anythingllm_canary OWNER anythingllm_canary" in script
    assert "\\connect anythingllm_canary\nCREATE EXTENSION IF NOT EXISTS vector;" in script
    job = isolated_plan.one(JOB, "database-bootstrap")
    secret = _named(isolated_plan, SECRET, "anythingllm-canary-database")
    assert isolated_plan.waits_for(secret, job)
    assert isolated_plan.waits_for(canary, secret)
    claim = _named(isolated_plan, CLAIM, "anythingllm-canary-storage")
    assert isolated_plan.waits_for(canary, claim)
    # Disposable in prod: removing the canary block must not trip over `protect`.
    assert not claim.protect
    assert _named(isolated_plan, CLAIM, "anythingllm-storage").protect
    canary_secret = _named(isolated_plan, SECRET, "anythingllm-canary-secrets")
    assert canary_secret.secret_paths
    canary_passwords = [r for r in isolated_plan.of_type("random:index/randomPassword:RandomPassword")
                        if "canary" in r.name]
    assert canary_passwords and not any(p.protect for p in canary_passwords)


DYNAMIC = "pulumi-python:dynamic:Resource"


def test_weight_zero_only_changes_the_ingress():
    """Rollback: weight 0 keeps every canary resource, only the ALB rule's weights change."""
    canary = {"imageTag": CANARY_TAG, "isolation": "shared"}
    at_ten, at_zero = _plan({**canary, "weight": 10}), _plan({**canary, "weight": 0})
    assert {r.urn for r in at_ten.resources} == {r.urn for r in at_zero.resources}
    zero = at_zero.by_urn()
    changed = sorted(r.name for r in at_ten.resources if r.inputs != zero[r.urn].inputs)
    # Beside the Ingress, only the target-group waiters' trigger moves: they look again (read only).
    assert changed == ["anythingllm-ingress", "observability-target-group-canary",
                       "observability-target-group-stable"]
    for waiter in ("observability-target-group-canary", "observability-target-group-stable"):
        ten, zero_inputs = at_ten.one(DYNAMIC, waiter).inputs, at_zero.one(DYNAMIC, waiter).inputs
        assert {k for k in ten if ten[k] != zero_inputs[k]} == {"trigger"}
    annotations = at_zero.one(INGRESS).inputs["metadata"]["annotations"]
    weighted = json.loads(annotations[PREFIX + "actions.weighted-release"])
    assert [g["weight"] for g in weighted["forwardConfig"]["targetGroups"]] == [100, 0]


def test_promotion_sets_the_stable_tag():
    plan = _plan({"imageTag": CANARY_TAG, "weight": 0, "isolation": "shared"}, app={"imageTag": CANARY_TAG})
    stable = _named(plan, DEPLOYMENT, "anythingllm")
    assert _pod(stable)["containers"][0]["image"] == f"{ANYTHINGLLM_REPOSITORY}:{CANARY_TAG}"
    assert stable.inputs["metadata"]["labels"]["app.kubernetes.io/version"] == CANARY_TAG


def test_canary_manifests_are_valid_kubernetes(shared_plan, isolated_plan):
    for plan in (shared_plan, isolated_plan):
        for resource in plan.resources:
            if is_kubernetes_object(resource):
                crd_schema.validate(copy.deepcopy(resource.raw_inputs), "1.36.0")
