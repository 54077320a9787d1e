"""The LiteLLM proxy's config.yaml, generated from the settings (pure functions).

Secrets never enter the file: every credential is an `os.environ/<VAR>` reference that
LiteLLM resolves at start from the pod's environment (Secrets `litellm-secrets`,
`llm-gateway-redis`, `litellm-database`, `vllm-api-key`).
"""

from __future__ import annotations

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


def model_entry(model: ModelSettings, api_base: str, *, timeout_seconds: int) -> dict:
    """One `model_list` entry: the vLLM server as `hosted_vllm/<served name>`."""
    info: dict = {"mode": model.kind, "max_input_tokens": model.max_model_len}
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


def litellm_config(models: list[ModelSettings], api_bases: dict[str, str],
                   settings: GatewaySettings) -> dict:
    """The proxy config: every model, the router and the response cache on ElastiCache (TLS
    from `REDIS_SSL=True` in the environment for the router, `ssl: true` for the cache), the
    master key and the gateway's own database.

    Both Redis users are configured on purpose: without the router's Redis every replica
    counts rate limits, budgets and cooldowns alone.
    """
    redis = {key: env(variable) for key, variable in REDIS_VARIABLES.items()}
    return {
        "model_list": [model_entry(m, api_bases[m.name], timeout_seconds=settings.request_timeout_seconds)
                       for m in models],
        "router_settings": {
            **{f"redis_{key}": value for key, value in redis.items()},
            "routing_strategy": "simple-shuffle",
            "num_retries": 2,
            "timeout": settings.request_timeout_seconds,
            "allowed_fails": 3,
            "cooldown_time": 30,
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
