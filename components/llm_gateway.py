"""LlmGateway: the LiteLLM proxy in front of the vLLM servers, sharing its state in Redis."""

from __future__ import annotations

import hashlib

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from .cache import CONNECTION_SECRET as REDIS_SECRET
from .database import CA_CONFIG_MAP
from .db_bootstrap import RDS_CA_MOUNT_PATH
from .litellm_config import litellm_config, render
from .litellm_keys import KEY_JOB_PREFIX, key_job_name, key_script, key_settings, settings_json
from .litellm_keys import SCRIPT_KEY as KEY_SCRIPT
from .litellm_keys import SCRIPT_MOUNT_PATH as KEY_SCRIPT_MOUNT_PATH
from .litellm_keys import WAIT_SECONDS as KEY_WAIT_SECONDS
from .model_serving import API_KEY_SECRET, GATEWAY_APP
from .namespaces import APP, GATEWAY, WorkloadNamespaces
from .node_group import system_labels
from .settings import GatewaySettings, ModelSettings
from .versions import LITELLM_IMAGE, LITELLM_UID
from .workloads import (
    IMAGE_PULL_POLICY,
    SECRETS_AS_FILES_CHECK,
    SECRETS_DIGEST,
    container_security_context,
    cpu_autoscaler,
    digest_name,
    disruption_budget,
    http_probe,
    http_service,
    image_version,
    ingress_only_from,
    pod_security_context,
    remember,
    rolling_update,
    scan_exceptions,
    script_job_pod_spec,
    secret_env,
    secrets_digest,
    selector_labels,
    spread_constraints,
    token_less_account,
    workload_labels,
)

GATEWAY_PORT = 4000
CONFIG_MAP = "litellm-config"
SECRETS = "litellm-secrets"
CLIENT_SECRET = "llm-gateway-client"  # in the AnythingLLM namespace
SERVICE_ACCOUNT = "litellm"
CONFIG_PATH = "/etc/litellm"
KEY_LENGTH = 48
MIGRATION_DEADLINE_SECONDS = 1800
# Writable paths of a read-only container: LiteLLM copies its admin UI and logo to
# /var/lib/litellm when LITELLM_NON_ROOT is set; Prisma and Python use /tmp.
WRITABLE_PATHS = {"tmp": "/tmp", "litellm-state": "/var/lib/litellm"}
APP_NAME = "anythingllm"
GATEWAY_SCAN_EXCEPTIONS = {
    SECRETS_AS_FILES_CHECK: "LiteLLM reads DATABASE_URL, its master and salt keys, the model key and "
                            "the Redis password from environment variables (os.environ/ in its config)",
}


def gateway_url() -> str:
    """The base URL AnythingLLM's OpenAI client uses (LiteLLM serves /chat/completions and
    /embeddings at its root)."""
    return f"http://{GATEWAY_APP}.{GATEWAY.name}.svc.cluster.local:{GATEWAY_PORT}"


def config_digest(config_text: str) -> str:
    return hashlib.sha256(config_text.encode()).hexdigest()[:16]


def gateway_container(settings: GatewaySettings, *, database_secret: pulumi.Input[str]) -> dict:
    """The serving container. It never migrates the database (DISABLE_SCHEMA_UPDATE: LiteLLM then
    only logs a schema drift, litellm/proxy/db/prisma_client.py should_update_prisma_schema):
    the migration Job did, once, before the rollout."""
    return {
        "name": "litellm",
        "image": LITELLM_IMAGE,
        "image_pull_policy": IMAGE_PULL_POLICY,
        # One worker per pod: replicas, not workers, are the unit of scale and of failure.
        "args": ["--config", f"{CONFIG_PATH}/config.yaml", "--port", str(GATEWAY_PORT),
                 "--num_workers", "1"],
        "env": [
            {"name": "LITELLM_MODE", "value": "PRODUCTION"},
            {"name": "LITELLM_LOG", "value": "INFO"},
            {"name": "LITELLM_NON_ROOT", "value": "true"},
            {"name": "HOME", "value": "/tmp"},
            {"name": "LITELLM_LOCAL_MODEL_COST_MAP", "value": "True"},
            {"name": "DISABLE_SCHEMA_UPDATE", "value": "true"},
            secret_env("LITELLM_MASTER_KEY", SECRETS),
            secret_env("LITELLM_SALT_KEY", SECRETS),
            secret_env("DATABASE_URL", database_secret),
            secret_env("VLLM_API_KEY", API_KEY_SECRET),
            *[secret_env(variable, REDIS_SECRET)
              for variable in ("REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "REDIS_SSL")],
        ],
        "ports": [{"name": "http", "container_port": GATEWAY_PORT, "protocol": "TCP"}],
        "resources": settings.resources.as_kubernetes(),
        # The server starts in seconds (no migrations here); 5 minutes for a slow image pull.
        "startup_probe": http_probe("/health/readiness", "http", period=10, failures=30),
        # Neither checks the models (that is /health, which needs the key and calls every model).
        "readiness_probe": http_probe("/health/readiness", "http", period=10, failures=3),
        "liveness_probe": http_probe("/health/liveliness", "http", period=20, failures=3),
        "volume_mounts": [
            {"name": "config", "mount_path": CONFIG_PATH, "read_only": True},
            {"name": "rds-ca", "mount_path": RDS_CA_MOUNT_PATH, "read_only": True},
            *[{"name": volume, "mount_path": path} for volume, path in WRITABLE_PATHS.items()],
        ],
        "security_context": container_security_context(read_only_root=True),
    }


def gateway_pod_spec(settings: GatewaySettings, *, labels: dict[str, str],
                     database_secret: pulumi.Input[str]) -> dict:
    return {
        "service_account_name": SERVICE_ACCOUNT,
        "automount_service_account_token": False,
        "enable_service_links": False,
        "node_selector": system_labels(),
        "security_context": pod_security_context(uid=LITELLM_UID, fs_group=LITELLM_UID),
        "topology_spread_constraints": spread_constraints(labels),
        # Streams through the gateway end with their client's (AnythingLLM's) request.
        "termination_grace_period_seconds": settings.request_timeout_seconds,
        "containers": [gateway_container(settings, database_secret=database_secret)],
        "volumes": [
            {"name": "config", "config_map": {"name": CONFIG_MAP}},
            {"name": "rds-ca", "config_map": {"name": CA_CONFIG_MAP}},
            *[{"name": volume, "empty_dir": {"size_limit": "256Mi"}} for volume in WRITABLE_PATHS],
        ],
    }


def migration_pod_spec(settings: GatewaySettings, *, database_secret: pulumi.Input[str]) -> dict:
    """The migration Job's pod: the gateway's own image, environment and config, running
    `litellm --config ... --skip_server_startup` ("useful for migrations only",
    litellm/proxy/proxy_cli.py: `prisma migrate deploy` with its migration lock, then exit)."""
    spec = gateway_pod_spec(settings, labels={}, database_secret=database_secret)
    (container,) = spec["containers"]
    container = {key: value for key, value in container.items()
                 if key not in ("ports", "startup_probe", "readiness_probe", "liveness_probe")}
    container["name"] = "migrate"
    container["args"] = ["--config", f"{CONFIG_PATH}/config.yaml", "--skip_server_startup"]
    container["env"] = [e for e in container["env"] if e["name"] != "DISABLE_SCHEMA_UPDATE"]
    spec = {key: value for key, value in spec.items() if key != "topology_spread_constraints"}
    return {**spec, "containers": [container], "restart_policy": "Never"}


def migration_job_name(*parts: str) -> str:
    """Changes with the image and with what the pod template holds: a new version, config or
    resources runs it again (migrations are idempotent)."""
    return digest_name("litellm-migrate", LITELLM_IMAGE, *parts)


def clients_only_policy_spec() -> dict:
    """The gateway accepts TCP 4000 from AnythingLLM's pods, and from the Job in its own
    namespace that registers AnythingLLM's key; nothing else."""
    spec = ingress_only_from(namespace=APP.name, app=APP_NAME, port=GATEWAY_PORT,
                             pod_selector={"match_labels": {"app.kubernetes.io/name": GATEWAY_APP}})
    key_job = ingress_only_from(namespace=GATEWAY.name, app=KEY_JOB_PREFIX, port=GATEWAY_PORT)
    spec["ingress"][0]["from"] += key_job["ingress"][0]["from"]
    return spec


def key_pod_spec(*, config_map: str, settings_text: str) -> dict:
    """The key Job's pod: the gateway's image runs the script with its Python, read-only, as the
    gateway's uid, on the system nodes; it holds the master key, the gateway's pods do too."""
    return script_job_pod_spec(
        container="client-key", image=LITELLM_IMAGE, uid=LITELLM_UID,
        command=["python", f"{KEY_SCRIPT_MOUNT_PATH}/{KEY_SCRIPT}"],
        mount_path=KEY_SCRIPT_MOUNT_PATH, config_map=config_map,
        service_account=SERVICE_ACCOUNT, memory_request="64Mi",
        env=[
            {"name": "LITELLM_URL", "value": gateway_url()},
            {"name": "KEY_SETTINGS", "value": settings_text},
            {"name": "WAIT_SECONDS", "value": str(KEY_WAIT_SECONDS)},
            secret_env("LITELLM_MASTER_KEY", SECRETS),
            secret_env("CLIENT_KEY", SECRETS, "LITELLM_CLIENT_KEY"),
        ],
    )

class LlmGateway(pulumi.ComponentResource):
    """LiteLLM: one OpenAI-compatible endpoint for every model, with shared limits and cache.

    Creates in `llm-gateway`: the master key (`sk-` + 48 characters) and the salt key
    (generated once, `protect`ed in prod: changing it makes stored credentials unreadable) in
    Secret `litellm-secrets`; ConfigMap `litellm-config` (see litellm_config.py); a
    ServiceAccount without token; the Deployment (pinned `litellm-database` image, one worker
    per pod, non-root and read-only, probes on /health/liveliness and /health/readiness,
    spread over zones, restarted when the config changes); Service `litellm`; a
    PodDisruptionBudget; a CPU HorizontalPodAutoscaler (replicas..maxReplicas); a
    NetworkPolicy admitting only AnythingLLM (and the key Job); a Job that migrates LiteLLM's
    database once per version before the rollout (serving pods never migrate); a Job that
    registers AnythingLLM's own virtual key (litellm_keys.py: its models and limits only). In
    `anythingllm`: Secret `llm-gateway-client` with that key (`LITE_LLM_API_KEY`), created once
    LiteLLM knows it; the master key never leaves `llm-gateway`.

    Args:
        name: logical name prefix.
        settings: the stack's `gateway` settings.
        models: the model servers and their replicas' base URLs (ModelServing.api_bases).
        namespaces: the workload namespaces.
        database_secret: the `litellm-database` connection Secret (Database component).
        redis_secret: the `llm-gateway-redis` Secret (Cache component).
        model_key_secret: the `vllm-api-key` Secret in `llm-gateway` (ModelServing).
        provider, system_ready: the cluster's kubernetes provider and what pods on the system nodes
            wait for (Cluster.system_ready).
        retain: protect the salt key (prod).
        client_models: the models AnythingLLM's key may call.

    Attributes:
        url: the base URL clients use; client_secret: the Secret AnythingLLM reads its key from;
        key_job: the Job after which LiteLLM accepts that key; deployment.
    """

    def __init__(self, name: str, settings: GatewaySettings, *, models: list[ModelSettings],
                 api_bases: dict[str, list[str]], namespaces: WorkloadNamespaces,
                 database_secret: k8s.core.v1.Secret, redis_secret: k8s.core.v1.Secret,
                 model_key_secret: k8s.core.v1.Secret, provider: k8s.Provider,
                 system_ready: list[pulumi.Resource], retain: bool, client_models: list[str],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("anythingllm:serving:LlmGateway", name, None, opts)
        namespace = namespaces.by_name[GATEWAY.name].metadata.name
        in_cluster = pulumi.ResourceOptions(parent=self, provider=provider)
        master_key = random.RandomPassword(f"{name}-master-key", length=KEY_LENGTH, special=False,
                                           opts=pulumi.ResourceOptions(parent=self))
        salt_key = random.RandomPassword(f"{name}-salt-key", length=KEY_LENGTH, special=False,
                                         opts=pulumi.ResourceOptions(parent=self, protect=retain))
        master = pulumi.Output.concat("sk-", master_key.result)
        # AnythingLLM's own virtual key (litellm_keys.py): its models and limits only.
        client_key = pulumi.Output.concat("sk-", random.RandomPassword(
            f"{name}-client-key", length=KEY_LENGTH, special=False,
            opts=pulumi.ResourceOptions(parent=self)).result)
        secrets = k8s.core.v1.Secret(
            f"{name}-secrets",
            metadata={"name": SECRETS, "namespace": namespace},
            type="Opaque",
            string_data={"LITELLM_MASTER_KEY": master, "LITELLM_SALT_KEY": salt_key.result,
                         "LITELLM_CLIENT_KEY": client_key},
            opts=in_cluster,
        )
        remember(secrets, [master, salt_key.result, client_key])
        config_text = render(litellm_config(models, api_bases, settings))
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata={"name": CONFIG_MAP, "namespace": namespace},
            data={"config.yaml": config_text},
            opts=in_cluster,
        )
        service_account = token_less_account(f"{name}-litellm", account=SERVICE_ACCOUNT,
                                             namespace=namespace, opts=in_cluster)
        k8s.networking.v1.NetworkPolicy(
            f"{name}-clients-only",
            metadata={"name": "allow-anythingllm-only", "namespace": namespace},
            spec=clients_only_policy_spec(),
            opts=in_cluster,
        )
        labels = workload_labels(GATEWAY_APP, "llm-gateway", image_version(LITELLM_IMAGE))
        selector = selector_labels(GATEWAY_APP, "llm-gateway")
        # The schema migrations (200+ on a fresh database) run once per version, here, instead of
        # in every serving pod under its startup budget.
        migration = k8s.batch.v1.Job(
            f"{name}-migrate",
            metadata={"name": migration_job_name(config_text, settings.resources.model_dump_json()),
                      "namespace": namespace,
                      "labels": {"app.kubernetes.io/name": "litellm-migrate",
                                 "app.kubernetes.io/part-of": "anythingllm"},
                      "annotations": {"pulumi.com/replaceUnready": "true",
                                      **scan_exceptions(GATEWAY_SCAN_EXCEPTIONS, images=(LITELLM_IMAGE,))}},
            spec={
                "backoff_limit": 3,
                "active_deadline_seconds": MIGRATION_DEADLINE_SECONDS,
                "template": {
                    "metadata": {"labels": {"app.kubernetes.io/name": "litellm-migrate"}},
                    "spec": migration_pod_spec(settings, database_secret=database_secret.metadata.name),
                },
            },
            opts=pulumi.ResourceOptions(
                parent=self, provider=provider,
                depends_on=[*system_ready, secrets, config_map, service_account, database_secret,
                            redis_secret, model_key_secret],
                custom_timeouts=pulumi.CustomTimeouts(create=f"{MIGRATION_DEADLINE_SECONDS + 300}s",
                                                      update=f"{MIGRATION_DEADLINE_SECONDS + 300}s"),
            ),
        )
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-litellm",
            metadata={"name": GATEWAY_APP, "namespace": namespace, "labels": labels,
                      "annotations": scan_exceptions(GATEWAY_SCAN_EXCEPTIONS, images=(LITELLM_IMAGE,))},
            spec={
                # No `replicas`: the HorizontalPodAutoscaler owns it (min = settings.replicas).
                "strategy": rolling_update(),
                "selector": {"match_labels": selector},
                "template": {
                    "metadata": {
                        "labels": labels,
                        # A config or Secret change restarts the pods (neither alone does).
                        "annotations": {
                            "anythingllm.io/config-digest": config_digest(config_text),
                            SECRETS_DIGEST: secrets_digest(secrets, database_secret, redis_secret,
                                                           model_key_secret),
                        },
                    },
                    "spec": gateway_pod_spec(settings, labels=selector,
                                             database_secret=database_secret.metadata.name),
                },
            },
            # Its database (migrated), Redis and the model key must exist before the first pod.
            opts=pulumi.ResourceOptions(
                parent=self, provider=provider,
                depends_on=[*system_ready, secrets, config_map, service_account, database_secret,
                            redis_secret, model_key_secret, migration],
            ),
        )
        http_service(f"{name}-litellm", namespace=namespace, labels=labels, selector=selector,
                     port=GATEWAY_PORT, opts=in_cluster)
        wanted = settings_json(key_settings(
            models=client_models, rpm_limit=settings.client_rpm_limit,
            tpm_limit=settings.client_tpm_limit,
            max_parallel_requests=settings.client_max_parallel_requests))
        script = key_script()
        key_job_name_ = key_job_name(script, LITELLM_IMAGE, wanted)
        key_config = k8s.core.v1.ConfigMap(
            f"{name}-client-key-script", metadata={"name": key_job_name_, "namespace": namespace},
            data={KEY_SCRIPT: script}, opts=in_cluster)
        self.key_job = k8s.batch.v1.Job(
            f"{name}-client-key",
            metadata={"name": key_job_name_, "namespace": namespace,
                      "labels": {"app.kubernetes.io/name": KEY_JOB_PREFIX,
                                 "app.kubernetes.io/part-of": "anythingllm"},
                      "annotations": {"pulumi.com/replaceUnready": "true",
                                      **scan_exceptions(GATEWAY_SCAN_EXCEPTIONS, images=(LITELLM_IMAGE,)),
                                      # A new key value runs the Job again.
                                      SECRETS_DIGEST: secrets_digest(secrets)}},
            spec={
                "backoff_limit": 3,
                "active_deadline_seconds": KEY_WAIT_SECONDS + 300,
                "template": {"metadata": {"labels": {"app.kubernetes.io/name": KEY_JOB_PREFIX}},
                             "spec": key_pod_spec(config_map=key_job_name_, settings_text=wanted)},
            },
            opts=pulumi.ResourceOptions(
                parent=self, provider=provider, depends_on=[self.deployment, secrets, key_config],
                replace_on_changes=["metadata.annotations"],
                custom_timeouts=pulumi.CustomTimeouts(create=f"{KEY_WAIT_SECONDS + 600}s",
                                                      update=f"{KEY_WAIT_SECONDS + 600}s")),
        )
        # What AnythingLLM presents, in its namespace. Not held back for the key Job: AnythingLLM
        # boots (and migrates) meanwhile, and calls LiteLLM only for users, who come in after its
        # admin Job, which waits for the key (AnythingLlm, `gateway_key_ready`).
        self.client_secret = k8s.core.v1.Secret(
            f"{name}-client",
            metadata={"name": CLIENT_SECRET, "namespace": namespaces.by_name[APP.name].metadata.name},
            type="Opaque",
            string_data={"LITE_LLM_API_KEY": client_key},
            opts=in_cluster,
        )
        remember(self.client_secret, client_key)
        disruption_budget(f"{name}-litellm", namespace=namespace, labels=labels, selector=selector,
                          opts=in_cluster)
        cpu_autoscaler(f"{name}-litellm", namespace=namespace, labels=labels, deployment=GATEWAY_APP,
                       min_replicas=settings.replicas, max_replicas=settings.replica_ceiling,
                       cpu_utilization=settings.target_cpu_utilization,
                       opts=pulumi.ResourceOptions(parent=self, provider=provider,
                                                   depends_on=[self.deployment]))
        self.url = gateway_url()
        self.register_outputs({})
