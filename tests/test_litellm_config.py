"""The rendered LiteLLM config loads with LiteLLM's own proxy models, key by key.

`litellm` is pinned in requirements-test.txt at the gateway image's version. Its `ConfigYAML`
ignores unknown keys, so the sections it keeps as free dicts are checked the way the proxy
consumes them: router_settings keys must be `Router.__init__` arguments (the proxy drops the
others with a warning), litellm_settings keys must be attributes of the `litellm` module (the
proxy `setattr`s them), and cache_params must bind to `Cache.__init__`.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import os

import pytest
import yaml

from components.litellm_config import CACHE_NAMESPACE, litellm_config, render
from components.model_serving import api_bases
from components.versions import LITELLM_IMAGE, LITELLM_VERSION
from tests.conftest import STACKS

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no download at import

litellm = pytest.importorskip("litellm", reason="requirements-test.txt installs it")
from litellm import Cache, Router  # noqa: E402
from litellm.llms.hosted_vllm.embedding.transformation import HostedVLLMEmbeddingConfig  # noqa: E402
from litellm.proxy._types import ConfigGeneralSettings, ConfigYAML  # noqa: E402
from litellm.types.utils import ModelInfoBase  # noqa: E402


def _config_of(plan) -> str:
    config_map = next(r for r in plan.of_type("kubernetes:core/v1:ConfigMap")
                      if r.inputs["metadata"]["name"] == "litellm-config")
    return config_map.inputs["data"]["config.yaml"]


def test_the_package_is_the_gateway_image_version():
    assert importlib.metadata.version("litellm") == LITELLM_VERSION
    assert LITELLM_IMAGE.endswith(f":v{LITELLM_VERSION}")


@pytest.mark.parametrize("stack", STACKS)
def test_rendered_config_loads_with_litellm_models(stack_plans, stack):
    text = _config_of(stack_plans[stack])
    raw = yaml.safe_load(text)
    config = ConfigYAML.model_validate(yaml.safe_load(text))  # it fills in defaults in place
    assert {m.model_name for m in config.model_list} == {e["model_name"] for e in raw["model_list"]}

    # Every section key is one LiteLLM reads: a typo would be silently ignored by the proxy.
    # allow_requests_on_db_unavailable is read from the dict, not the model
    # (litellm/proxy/db/exception_handler.py; exercised in the readiness test below).
    general_fields = set(ConfigGeneralSettings.model_fields) | {"allow_requests_on_db_unavailable"}
    assert set(raw["general_settings"]) <= general_fields
    assert set(raw["router_settings"]) <= set(Router.get_valid_args())
    for key in raw["litellm_settings"]:
        assert key == "cache_params" or hasattr(litellm, key), key
    inspect.signature(Cache.__init__).bind(None, **raw["litellm_settings"]["cache_params"])
    for entry in raw["model_list"]:
        # The keys LiteLLM's model-info lookup (litellm.types.utils.ModelInfoBase) knows, the
        # deployment id, which the router keeps as declared (router.py set_model_list;
        # types/router.py ModelInfo.id), and a replica's own allowed_fails, which the cooldown
        # reads from model_info only (router_utils/cooldown_handlers.py
        # _get_deployment_cooldown_policy).
        router_keys = {"id", "allowed_fails"}
        assert set(entry["model_info"]) - router_keys <= set(ModelInfoBase.__annotations__), \
            entry["model_info"]
    router = Router(model_list=[{**e, "litellm_params": {**e["litellm_params"], "api_key": "k"}}
                                for e in raw["model_list"]])
    assert router.get_model_ids() == [e["model_info"]["id"] for e in raw["model_list"]]

    # No credential in the ConfigMap: every one is an environment reference.
    general = raw["general_settings"]
    assert general["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    assert general["database_url"] == "os.environ/DATABASE_URL"
    assert raw["router_settings"]["redis_password"] == "os.environ/REDIS_PASSWORD"
    cache = raw["litellm_settings"]["cache_params"]
    assert cache["password"] == "os.environ/REDIS_PASSWORD" and cache["ssl"] is True
    assert cache["type"] == "redis" and cache["namespace"] == CACHE_NAMESPACE
    assert raw["litellm_settings"]["cache"] is True
    for entry in raw["model_list"]:
        assert entry["litellm_params"]["api_key"] == "os.environ/VLLM_API_KEY"
        assert entry["litellm_params"]["model"] == f"hosted_vllm/{entry['model_name']}"


@pytest.mark.parametrize("stack", STACKS)
def test_every_replica_a_model_may_run_is_an_entry_with_a_service_of_its_own(stack_plans, stack):
    """One entry per replica up to the model's ceiling, in ordinal order, each with a stable id
    (the key of its in-flight count and cooldown) and a base URL whose Service selects that one
    pod of the model's StatefulSet: the StatefulSet controller names pods `<set>-<ordinal>` and
    labels each with `statefulset.kubernetes.io/pod-name` (kubernetes/website statefulset.md,
    "Pod Name Label")."""
    plan = stack_plans[stack]
    raw = yaml.safe_load(_config_of(plan))
    services = {r.inputs["metadata"]["name"]: r for r in plan.of_type("kubernetes:core/v1:Service")
                if r.inputs["metadata"]["namespace"] == "model-serving"}
    scaled = {so.inputs["spec"]["scaleTargetRef"]["name"]: so.inputs["spec"]
              for so in plan.of_type("kubernetes:keda.sh/v1alpha1:ScaledObject")}
    ids = [entry["model_info"]["id"] for entry in raw["model_list"]]
    assert len(ids) == len(set(ids))
    for workload in plan.of_type("kubernetes:apps/v1:StatefulSet"):
        name = workload.inputs["metadata"]["name"]
        model = name.removeprefix("vllm-")
        ceiling = (scaled[name]["maxReplicaCount"] if name in scaled
                   else workload.inputs["spec"]["replicas"])
        entries = [e for e in raw["model_list"] if e["model_name"] == model]
        assert [e["model_info"]["id"] for e in entries] == [f"{name}-{i}" for i in range(ceiling)]
        pod_selector = workload.inputs["spec"]["selector"]["matchLabels"]
        port = next(p for p in workload.inputs["spec"]["template"]["spec"]["containers"][0]["ports"]
                    if p["name"] == "http")
        for ordinal, entry in enumerate(entries):
            replica = f"{name}-{ordinal}"
            assert entry["litellm_params"]["api_base"] == \
                f"http://{replica}.model-serving.svc.cluster.local:8000/v1"
            spec = services[replica].inputs["spec"]
            assert spec["selector"] == {**pod_selector, "statefulset.kubernetes.io/pod-name": replica}
            assert spec["ports"] == [{"name": "http", "port": port["containerPort"],
                                      "targetPort": "http", "protocol": "TCP"}]
    embedding = next(e for e in raw["model_list"] if e["model_info"]["mode"] == "embedding")
    # LiteLLM's hosted_vllm provider appends /embeddings: the URL must end in /v1.
    url = HostedVLLMEmbeddingConfig().get_complete_url(
        embedding["litellm_params"]["api_base"], None, embedding["model_name"], {}, {})
    assert url.endswith(":8000/v1/embeddings")
    assert embedding["model_info"]["output_vector_size"] == 1024


def test_cache_off_when_ttl_is_zero():
    from components.settings import GatewaySettings
    from tests.conftest import base_config, settings_from

    settings = settings_from(base_config())
    models = settings.model_serving.models
    config = litellm_config(models, {m.name: api_bases(m) for m in models},
                            GatewaySettings(cache_ttl_seconds=0))
    assert config["litellm_settings"]["cache"] is False
    assert yaml.safe_load(render(config)) == config


def test_readiness_stays_up_through_a_database_outage(stack_plans, monkeypatch):
    """LiteLLM 1.106.2's readiness probe answers 503 for an unreachable database unless
    `PrismaDBExceptionHandler.should_allow_request_on_db_unavailable()` is true
    (proxy/health_endpoints/_health_endpoints.py `_resolve_public_readiness_db`). Run that check
    on the rendered general_settings: it reads them from the proxy's module state, stood in for
    here (the proxy's web stack is not installed for the tests)."""
    import sys
    import types

    from litellm.proxy.db.exception_handler import PrismaDBExceptionHandler

    def allowed(general_settings: dict) -> bool:
        state = types.ModuleType("litellm.proxy.proxy_server")
        state.general_settings = general_settings
        monkeypatch.setitem(sys.modules, "litellm.proxy.proxy_server", state)
        return PrismaDBExceptionHandler.should_allow_request_on_db_unavailable()

    general = yaml.safe_load(_config_of(stack_plans["prod"]))["general_settings"]
    assert "disable_prisma_schema_update" not in general  # it would override the pods' env
    assert allowed(general) is True
    assert allowed({k: v for k, v in general.items() if k != "allow_requests_on_db_unavailable"}) is False


@pytest.mark.parametrize("chat, expected", [(False, ["embedding", "aembedding"]),
                                            (True, ["embedding", "aembedding", "completion", "acompletion"])])
def test_the_cache_stores_embeddings_and_answers_only_by_choice(chat, expected):
    """LiteLLM's caching handler caches a call when the called function's name is in
    supported_call_types (litellm/caching/caching_handler.py); the names are CachingSupportedCallTypes."""
    from typing import get_args

    from litellm.types.caching import CachingSupportedCallTypes

    from components.litellm_config import cached_call_types
    from components.settings import GatewaySettings

    types = cached_call_types(GatewaySettings(cacheChatCompletions=chat))
    assert types == expected and set(types) <= set(get_args(CachingSupportedCallTypes))


def test_a_request_to_a_sleeping_model_fails_fast_and_names_it(stack_plans):
    """A model asleep (0 replicas) has replica Services without endpoints, which kube-proxy
    answers with a refused connection at once. Through LiteLLM's own router, with the gateway's
    rendered router settings (least-busy, its retries and cooldown, without Redis), a chat
    request and an embedding request to such a model come back as an error within seconds,
    naming the model, not a hang until the request timeout (600 s): the refused connection
    itself, or, once every replica of the model is cooled down after its refusal, LiteLLM's
    "All deployments for selected model are in cooldown" (a 429 from the proxy)."""
    import asyncio
    import concurrent.futures
    import socket
    import time

    raw = yaml.safe_load(_config_of(stack_plans["dev"]))
    settings = {key: value for key, value in raw["router_settings"].items()
                if not key.startswith("redis_")}
    with socket.socket() as closed:  # a port nothing listens on: connections are refused
        closed.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{closed.getsockname()[1]}/v1"
    model_list = [{**entry, "litellm_params": {**entry["litellm_params"], "api_base": refused,
                                               "api_key": "sleeping"}}
                  for entry in raw["model_list"]]
    assert {entry["model_name"] for entry in model_list} == {"qwen2-5-7b-instruct", "bge-m3"}

    async def ask() -> list[tuple[float, str, str]]:
        router = Router(model_list=model_list, **settings)

        async def timed(name: str, call) -> tuple[float, str, str]:
            started = time.monotonic()
            try:
                await call
            except Exception as error:  # what the gateway turns into its error response
                return time.monotonic() - started, name, str(error)
            raise AssertionError(f"{name}: a sleeping model answered")

        # Both at once, as AnythingLLM embeds the question while a chat waits on it.
        return list(await asyncio.gather(
            timed("qwen2-5-7b-instruct", router.acompletion(
                model="qwen2-5-7b-instruct", messages=[{"role": "user", "content": "hi"}])),
            timed("bge-m3", router.aembedding(model="bge-m3", input=["hi"]))))

    # In a thread of its own: asyncio.run would leave this thread without the event loop the
    # Pulumi engine of later tests in this worker expects.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        results = pool.submit(asyncio.run, ask()).result()
    for seconds, name, message in results:
        assert seconds < 15, (name, seconds)
        assert f"model group '{name}'" in message or name in message, message
        assert ("Cannot connect to host" in message
                or "All deployments for selected model are in cooldown" in message), message
