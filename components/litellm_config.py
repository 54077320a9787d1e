"""The LiteLLM proxy's config.yaml, generated from the settings (pure functions).

Secrets never enter the file: every credential is an `os.environ/<VAR>` reference that
LiteLLM resolves at start from the pod's environment (Secrets `litellm-secrets`,
`llm-gateway-redis`, `litellm-database`, `vllm-api-key`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import yaml

from .settings import GatewaySettings, ModelSettings

# Names of the environment variables the config refers to.
MASTER_KEY_VARIABLE = "LITELLM_MASTER_KEY"
DATABASE_URL_VARIABLE = "DATABASE_URL"
MODEL_API_KEY_VARIABLE = "VLLM_API_KEY"
REDIS_VARIABLES = {"host": "REDIS_HOST", "port": "REDIS_PORT", "password": "REDIS_PASSWORD"}
CACHE_NAMESPACE = "litellm.cache"


def env(variable: str) -> str:
    return f"os.environ/{variable}"


# How long a replica that failed is left out of the rotation (LiteLLM's cooldown). A replica
# above the model's current count refuses connections: it costs one refused connection and a
# retry per cooldown; short, so a woken or added replica takes requests within 10 s.
COOLDOWN_SECONDS = 10


def replica_id(api_base: str) -> str:
    """A replica's stable LiteLLM deployment id: its Service's name (`vllm-<model>-<i>`), the key
    of its in-flight count and cooldown, shared by every gateway pod through Redis."""
    return urlsplit(api_base).hostname.split(".", 1)[0]


def model_entry(model: ModelSettings, api_base: str, *, timeout_seconds: int) -> dict:
    """One `model_list` entry: one replica of a vLLM server, as `hosted_vllm/<served name>`;
    every replica of a model shares its `model_name` (LiteLLM's model group).

    A replica of a model with several is cooled down at its first failure (`allowed_fails: 0`
    in its model_info, read by router_utils/cooldown_handlers.py
    _get_deployment_cooldown_policy): least-busy would otherwise keep choosing a replica that is
    absent (above the current count, replaced in a rollout, draining), since it has nothing in
    flight, and LiteLLM's own rule cools a replica only once more than half of a minute's
    requests to it failed, so a replica that served hundreds of requests in that minute would
    be chosen hundreds of times more. The price: a request that vLLM answers with an error
    (HTTP 500) cools each replica it is tried on too. The only replica of a model keeps LiteLLM's
    own rule, which never cools it for errors (there is nowhere else to go)."""
    info: dict = {"id": replica_id(api_base), "mode": model.kind,
                  "max_input_tokens": model.max_model_len}
    if model.peak_replicas > 1:
        info["allowed_fails"] = 0
    if model.dimensions is not None:
        info["output_vector_size"] = model.dimensions
    return {
        "model_name": model.name,
        "litellm_params": {
            "model": f"hosted_vllm/{model.name}",
            "api_base": api_base,
            "api_key": env(MODEL_API_KEY_VARIABLE),
            "timeout": timeout_seconds,
        },
        "model_info": info,
    }


def cached_call_types(settings: GatewaySettings) -> list[str]:
    """What the response cache stores: embeddings; chat completions only by choice."""
    types = ["embedding", "aembedding"]
    if settings.cache_chat_completions:
        types += ["completion", "acompletion"]
    return types


def retry_policy(model: ModelSettings) -> dict:
    """Retries of one request to a model with more than one replica, each routed afresh and at
    once while another replica is not cooled down (router.py _time_to_sleep_before_retry).

    A refused connection comes back as an InternalServerError and cools its replica; while one
    replica serves, a request meets at most all the others absent: one retry per other replica.
    A timeout is not retried when it is the first error: it has already waited the whole request
    timeout. (LiteLLM takes the count from a request's first error: after a refusal, a later
    timeout is retried too.) A model with one replica keeps the router's two retries, whose
    back-off is what a retry to the same replica needs.
    """
    return {"InternalServerErrorRetries": model.peak_replicas - 1, "TimeoutErrorRetries": 0}


def litellm_config(models: list[ModelSettings], api_bases: dict[str, list[str]],
                   settings: GatewaySettings) -> dict:
    """The proxy config: every replica of every model, the router and the response cache on
    ElastiCache (TLS from `REDIS_SSL=True` in the environment for the router, `ssl: true` for
    the cache), the master key and the gateway's own database.

    Both Redis users are configured on purpose: without the router's Redis every gateway pod
    counts rate limits, cooldowns and the replicas' requests in flight alone.

    Routing (LiteLLM 1.106.2, litellm/router_strategy/least_busy.py): `least-busy` sends each
    request to the replica of its model with the fewest requests in flight, counted from just
    before the call to vLLM until the answer's last streamed chunk, and shared through Redis.
    Long answers therefore no longer pile up on the replicas that kube-proxy's per-connection
    choice happened to favour (tests/test_routing.py measures both).
    """
    redis = {key: env(variable) for key, variable in REDIS_VARIABLES.items()}
    return {
        "model_list": [model_entry(m, base, timeout_seconds=settings.request_timeout_seconds)
                       for m in models for base in api_bases[m.name]],
        "router_settings": {
            **{f"redis_{key}": value for key, value in redis.items()},
            "routing_strategy": "least-busy",
            "num_retries": 2,
            "timeout": settings.request_timeout_seconds,
            # No router-wide allowed_fails: set, it would also cool the only replica of a model
            # (cooldown_handlers.py _should_cooldown_deployment); the replicas of a model with
            # several carry their own (model_entry). Client errors (400, a prompt too long) never
            # cool a replica (_is_cooldown_required).
            "cooldown_time": COOLDOWN_SECONDS,
            "model_group_retry_policy": {m.name: retry_policy(m) for m in models
                                         if m.peak_replicas > 1},
        },
        "litellm_settings": {
            "cache": settings.cache_ttl_seconds > 0,
            "cache_params": {
                "type": "redis",
                **redis,
                "ssl": True,
                "namespace": CACHE_NAMESPACE,
                "ttl": settings.cache_ttl_seconds,
                # Embeddings only, unless chat caching is chosen: a cached answer makes
                # "regenerate" return the same text until the TTL ends. The names are the
                # proxy's call types (litellm/types/caching.py CachingSupportedCallTypes;
                # caching_handler.py compares the called function's name).
                "supported_call_types": cached_call_types(settings),
            },
            "request_timeout": settings.request_timeout_seconds,
            # Parameters a vLLM model does not support are dropped instead of failing the call.
            "drop_params": True,
        },
        "general_settings": {
            "master_key": env(MASTER_KEY_VARIABLE),
            "database_url": env(DATABASE_URL_VARIABLE),
            # Keep serving through a database outage (an RDS Multi-AZ failover): otherwise
            # /health/readiness answers 503 and every pod leaves the Service at once
            # (litellm/proxy/health_endpoints/_health_endpoints.py _resolve_public_readiness_db).
            # Keys are then not checked against the database; the client key is the only one.
            "allow_requests_on_db_unavailable": True,
            # No `disable_prisma_schema_update` here: it would override the environment, and the
            # migration Job must migrate while the serving pods must not (DISABLE_SCHEMA_UPDATE).
        },
    }


def render(config: dict) -> str:
    return yaml.safe_dump(config, sort_keys=False)
