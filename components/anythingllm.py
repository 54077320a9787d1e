"""AnythingLlm: the replicated AnythingLLM service behind the ALB."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random

from .anythingllm_admin import (
    ADMIN_JOB_PREFIX,
    SCRIPT_KEY,
    admin_job_name,
    admin_script,
)
from .anythingllm_admin import SCRIPT_MOUNT_PATH as ADMIN_SCRIPT_MOUNT_PATH
from .anythingllm_admin import WAIT_SECONDS as ADMIN_WAIT_SECONDS
from .database import CA_CONFIG_MAP
from .db_bootstrap import RDS_CA_MOUNT_PATH, DatabaseConsumer
from .edge_identity import EdgeIdentity
from .ingress import (
    ANNOTATION_PREFIX,
    BROWSER_ORDER,
    PUBLIC_ROUTES_ORDER,
    USE_ANNOTATION,
    Ingress,
    canary_routing,
    group_annotations,
    member_annotations,
    target_group_resource_id,
)
from .llm_gateway import CLIENT_SECRET
from .namespaces import APP, WorkloadNamespaces
from .node_group import system_labels
from .options import named
from .settings import AppSettings, CanarySettings, IngressSettings, ModelSettings
from .shared_storage import CANARY_DOCUMENTS, DOCUMENTS, ClaimSpec
from .versions import ANYTHINGLLM_REPOSITORY, ANYTHINGLLM_UID
from .workloads import (
    HIGH_UID_CHECK,
    IMAGE_PULL_POLICY,
    READ_ONLY_ROOT_CHECK,
    SECRETS_AS_FILES_CHECK,
    SECRETS_DIGEST,
    container_security_context,
    cpu_autoscaler,
    disruption_budget,
    http_probe,
    http_service,
    image_version,
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

APP_NAME = "anythingllm"
SERVER_PORT = 3001  # UI and API; the collector's 8888 is internal and never exposed
STORAGE_DIR = "/app/server/storage"  # exactly this: the collector derives its hotdir from it
COMKEY_DIR = f"{STORAGE_DIR}/comkey"
SECRETS = "anythingllm-secrets"
CANARY_NAME = f"{APP_NAME}-canary"
PUBLIC_INGRESS_NAME = f"{APP_NAME}-public"  # the routes without ALB authentication
# pulumi-kubernetes' default Ingress await does not fit this controller; each Ingress waits for
# the one field that matters: the ALB's DNS name.
WAIT_FOR_ALB = {"pulumi.com/waitFor": "jsonpath={.status.loadBalancer.ingress[0].hostname}"}
CANARY_SECRETS = "anythingllm-canary-secrets"
APP_DATABASE = "anythingllm"  # the database consumer (role and database) of stable
CANARY_DATABASE = "anythingllm_canary"
# Tells the stable and the canary pods apart (in selectors, so the two never mix).
TRACK_LABEL = "anythingllm.io/track"
# AUTH_TOKEN: without it (and JWT_SECRET) AnythingLLM's single-user mode lets every request
# through (server/utils/middleware/validatedRequest.js); the admin Job then turns multi-user
# mode on (anythingllm_admin.py), after which it is no longer consulted.
SECRET_KEYS = ("JWT_SECRET", "SIG_KEY", "SIG_SALT", "AUTH_TOKEN")
ADMIN_SECRET = "anythingllm-admin"
ADMIN_JOB_UID = 10001
ADMIN_PASSWORD_LENGTH = 32
SECRET_LENGTH = 64
SERVICE_ACCOUNT = "anythingllm"
# Seconds a leaving pod keeps serving after the ALB stops sending it new requests, on top of
# the deregistration delay; PID 1 of the image is bash, which does not pass SIGTERM on, so
# the pod is killed at the end of its grace period whatever happens.
PRE_STOP_MARGIN_SECONDS = 15
GRACE_MARGIN_SECONDS = 15
# `prisma migrate deploy` runs at every start before the server listens: up to 10 minutes.
STARTUP_PROBE_FAILURES = 60
INGRESS_TIMEOUT = "20m"  # the controller provisions the ALB (a few minutes) before it has a name
# The admin Job reads AUTH_TOKEN and the admin's password from environment variables, as the
# script's only inputs (checkov's secrets-as-files check).
ADMIN_JOB_SCAN_EXCEPTIONS = {
    SECRETS_AS_FILES_CHECK: "the admin Job's script reads AUTH_TOKEN and the admin credentials "
                            "from its environment, like AnythingLLM itself",
}
# Security-scan findings the image cannot satisfy (each Deployment carries them as annotations).
APP_SCAN_EXCEPTIONS = {
    READ_ONLY_ROOT_CHECK: "the image writes /app/server/.env and Prisma's client and the collector "
                          "writes its hotdir and outputs beside the code at run time",
    SECRETS_AS_FILES_CHECK: "AnythingLLM reads DATABASE_URL, JWT_SECRET, SIG_KEY/SIG_SALT and the "
                            "gateway key from environment variables only",
    HIGH_UID_CHECK: "the image's files belong to its user anythingllm (uid 1000), which the server "
                    "must run as to write beside its code",
}


def pre_stop_seconds(ingress: IngressSettings) -> int:
    """Longer than the ALB's deregistration delay: the pod outlives every in-flight stream the
    ALB still lets finish."""
    return ingress.deregistration_delay_seconds + PRE_STOP_MARGIN_SECONDS


def termination_grace_seconds(ingress: IngressSettings) -> int:
    return pre_stop_seconds(ingress) + GRACE_MARGIN_SECONDS


@dataclass(frozen=True)
class Variant:
    """One AnythingLLM Deployment behind the ALB: `stable`, or the `canary`.

    `name` names its Deployment, Service, PodDisruptionBudget and HorizontalPodAutoscaler;
    `secrets` the Secret with JWT_SECRET/SIG_KEY/SIG_SALT; `database` the database consumer
    whose connection Secret it uses; `storage_claim` the EFS claim of its STORAGE_DIR.
    """

    track: str
    name: str
    image_tag: str
    secrets: str
    database: str
    storage_claim: str
    scaling: AppSettings | CanarySettings  # replicas (the HPA's minimum), ceiling, CPU target

    @property
    def image(self) -> str:
        return f"{ANYTHINGLLM_REPOSITORY}:{self.image_tag}"

    @property
    def selector(self) -> dict[str, str]:
        # The track keeps the two Deployments' (immutable) selectors, and so their Services,
        # apart: a stable pod never serves the canary's target group and the other way round.
        return {**selector_labels(APP_NAME, "server"), TRACK_LABEL: self.track}

    @property
    def labels(self) -> dict[str, str]:
        return {**workload_labels(APP_NAME, "server", image_version(self.image)), TRACK_LABEL: self.track}


def target_group_resources(settings: AppSettings, *, public_routes: bool = False) -> dict[str, str]:
    """Per track, the controller's tag on the variant's target group (Ingress `anythingllm`,
    the variant's Service, port `http`: the plain backend and the weighted action alike); with
    public routes, also `<track>-public`: the target group of the Ingress `anythingllm-public`
    (the controller makes one per Ingress and Service)."""
    ingresses = [("", APP_NAME), *([("-public", PUBLIC_INGRESS_NAME)] if public_routes else [])]
    return {f"{variant.track}{suffix}": target_group_resource_id(
                namespace=APP.name, ingress=ingress, service=variant.name, port="http")
            for suffix, ingress in ingresses for variant in variants(settings)}


def variants(settings: AppSettings) -> list[Variant]:
    """Stable always; the canary when `app.canary` is set. An isolated canary has its own
    secrets and storage (and its own database, see `canary_database_consumer`)."""
    found = [Variant(track="stable", name=APP_NAME, image_tag=settings.image_tag, secrets=SECRETS,
                     database=APP_DATABASE, storage_claim=DOCUMENTS.name, scaling=settings)]
    canary = settings.canary
    if canary is not None:
        found.append(Variant(
            track="canary", name=CANARY_NAME, image_tag=canary.image_tag,
            # An isolated canary's users exist only in its own database: a token signed with
            # stable's JWT_SECRET would name a user id that means someone else there.
            secrets=CANARY_SECRETS if canary.isolated else SECRETS,
            database=CANARY_DATABASE if canary.isolated else APP_DATABASE,
            storage_claim=CANARY_DOCUMENTS.name if canary.isolated else DOCUMENTS.name,
            scaling=canary,
        ))
    return found


def database_consumers(settings: AppSettings, *, embedding_dimensions: int) -> list[DatabaseConsumer]:
    """AnythingLLM's roles and databases (with `vector` and the vector table of the embedding
    model's size, for pgvector), created by the bootstrap Job: stable's, and an isolated
    canary's own."""
    names = dict.fromkeys(variant.database for variant in variants(settings))  # shared: once
    return [DatabaseConsumer(database, namespace=APP.name, extensions=("vector",),
                             vector_dimensions=embedding_dimensions) for database in names]


def storage_claims(settings: AppSettings) -> list[ClaimSpec]:
    """The EFS claims AnythingLLM mounts as STORAGE_DIR: stable's, and an isolated canary's."""
    return [DOCUMENTS, *([CANARY_DOCUMENTS] if settings.canary is not None and settings.canary.isolated
                         else [])]


def app_environment(*, chat_model: ModelSettings, embedding_model: ModelSettings,
                    gateway_url: str, database_secret: pulumi.Input[str], prompt_window: int,
                    chunk_limit: int, secrets: str = SECRETS) -> list[dict]:
    """AnythingLLM's settings as environment: a setting changed in the UI would change one
    pod's process only, so everything that must agree across replicas is declared here."""
    return [
        {"name": "SERVER_PORT", "value": str(SERVER_PORT)},
        {"name": "STORAGE_DIR", "value": STORAGE_DIR},
        {"name": "DISABLE_TELEMETRY", "value": "true"},
        secret_env("DATABASE_URL", database_secret),
        {"name": "VECTOR_DB", "value": "pgvector"},
        *[secret_env(key, secrets) for key in SECRET_KEYS],
        {"name": "LLM_PROVIDER", "value": "litellm"},
        {"name": "LITE_LLM_BASE_PATH", "value": gateway_url},
        {"name": "LITE_LLM_MODEL_PREF", "value": chat_model.name},
        # The prompt's share of the window: AnythingLLM sends no max_tokens, so what the prompt
        # leaves of max_model_len is all the answer gets (StackSettings.chat_prompt_window).
        {"name": "LITE_LLM_MODEL_TOKEN_LIMIT", "value": str(prompt_window)},
        secret_env("LITE_LLM_API_KEY", CLIENT_SECRET),
        {"name": "EMBEDDING_ENGINE", "value": "litellm"},
        {"name": "EMBEDDING_MODEL_PREF", "value": embedding_model.name},
        # The ceiling of the text splitter's chunk size in characters (the chunk size itself is a
        # system setting the admin Job writes): the model's window less the chunk header's
        # share, so a chunk with its header never exceeds the embedder's limit
        # (StackSettings.embedding_chunk_limit).
        {"name": "EMBEDDING_MODEL_MAX_CHUNK_LENGTH", "value": str(chunk_limit)},
        # Chromium (web scraping) without its setuid sandbox, instead of CAP_SYS_ADMIN.
        {"name": "ANYTHINGLLM_CHROMIUM_ARGS", "value": "--no-sandbox,--disable-setuid-sandbox"},
    ]


def app_container(settings: AppSettings, ingress: IngressSettings, environment: list[dict],
                  image: str) -> dict:
    return {
        "name": APP_NAME,
        "image": image,
        "image_pull_policy": IMAGE_PULL_POLICY,
        "env": environment,
        "ports": [{"name": "http", "container_port": SERVER_PORT, "protocol": "TCP"}],
        "resources": settings.resources.as_kubernetes(),
        "startup_probe": http_probe("/api/ping", "http", period=10, failures=STARTUP_PROBE_FAILURES),
        "readiness_probe": http_probe("/api/ping", "http", period=10, failures=3),
        "liveness_probe": http_probe("/api/ping", "http", period=20, failures=3),
        "lifecycle": {"pre_stop": {"sleep": {"seconds": pre_stop_seconds(ingress)}}},
        "volume_mounts": [
            {"name": "storage", "mount_path": STORAGE_DIR},
            # Every pod writes its own IPC key pair at boot; on the shared volume pods starting
            # together would overwrite each other's.
            {"name": "comkey", "mount_path": COMKEY_DIR},
            {"name": "rds-ca", "mount_path": RDS_CA_MOUNT_PATH, "read_only": True},
        ],
        # The image writes beside its code at run time (APP_SCAN_EXCEPTIONS).
        "security_context": container_security_context(read_only_root=False),
    }


def app_pod_spec(settings: AppSettings, ingress: IngressSettings, *, environment: list[dict],
                 labels: dict[str, str], image: str, storage_claim: str) -> dict:
    return {
        "service_account_name": SERVICE_ACCOUNT,
        "automount_service_account_token": False,
        "enable_service_links": False,
        "node_selector": system_labels(),
        "security_context": pod_security_context(uid=ANYTHINGLLM_UID, fs_group=ANYTHINGLLM_UID),
        "topology_spread_constraints": spread_constraints(labels),
        "termination_grace_period_seconds": termination_grace_seconds(ingress),
        "containers": [app_container(settings, ingress, environment, image)],
        "volumes": [
            {"name": "storage", "persistent_volume_claim": {"claim_name": storage_claim}},
            {"name": "comkey", "empty_dir": {"size_limit": "16Mi"}},
            {"name": "rds-ca", "config_map": {"name": CA_CONFIG_MAP}},
        ],
    }


def admin_pod_spec(variant: Variant, *, config_map: str, chunk_size: int, chunk_overlap: int) -> dict:
    """The admin Job's pod: the variant's own image runs the script with its Node.js, read-only,
    as a high uid (it writes nothing, so it needs none of the image's files), on the system
    nodes; it talks to the variant's Service."""
    return script_job_pod_spec(
        container="admin", image=variant.image, uid=ADMIN_JOB_UID,
        command=["node", f"{ADMIN_SCRIPT_MOUNT_PATH}/{SCRIPT_KEY}"],
        mount_path=ADMIN_SCRIPT_MOUNT_PATH, config_map=config_map,
        service_account=SERVICE_ACCOUNT, memory_request="128Mi",
        env=[
            {"name": "ANYTHINGLLM_URL",
             "value": f"http://{variant.name}.{APP.name}.svc.cluster.local:{SERVER_PORT}"},
            {"name": "WAIT_SECONDS", "value": str(ADMIN_WAIT_SECONDS)},
            {"name": "CHUNK_SIZE", "value": str(chunk_size)},
            {"name": "CHUNK_OVERLAP", "value": str(chunk_overlap)},
            secret_env("AUTH_TOKEN", variant.secrets),
            secret_env("ADMIN_USERNAME", ADMIN_SECRET),
            secret_env("ADMIN_PASSWORD", ADMIN_SECRET),
        ],
    )


def ingress_spec(*, host: str | None, backends: list[str] | None = None,
                 routes: list[tuple[str, str]] = (("/", "Prefix"),)) -> dict:
    """Per route (path, pathType), one rule per backend, in order: without a canary the stable
    Service itself, with one the controller's actions (`canary_routing`)."""
    if backends is None:
        paths = [{"path": path, "path_type": path_type,
                  "backend": {"service": {"name": APP_NAME, "port": {"name": "http"}}}}
                 for path, path_type in routes]
    else:
        paths = [{"path": path, "path_type": path_type,
                  "backend": {"service": {"name": action, "port": {"name": USE_ANNOTATION}}}}
                 for path, path_type in routes for action in backends]
    rule: dict = {"http": {"paths": paths}}
    if host is not None:
        rule["host"] = host
    return {"ingress_class_name": "alb", "rules": [rule]}


class AnythingLlm(pulumi.ComponentResource):
    """AnythingLLM (PostgreSQL build) replicated behind the ALB, with an optional canary.

    Creates in `anythingllm` (a namespace with ALB pod readiness gates, see namespaces.py):
    JWT_SECRET, SIG_KEY and SIG_SALT generated once (`protect`ed in prod) in Secret
    `anythingllm-secrets`, shared by every replica; a ServiceAccount without token; and per
    variant (see `variants`) a Deployment (UID/GID 1000, no capabilities, RuntimeDefault
    seccomp; STORAGE_DIR on an EFS claim with a per-pod emptyDir over comkey/; the RDS CA
    mounted; LLM and embedder on the gateway; startup, readiness and liveness on
    /api/ping:3001; spread over zones and nodes; rolling updates with no pod unavailable;
    preStop longer than the deregistration delay), a Service (port 3001 only), a
    PodDisruptionBudget and a CPU HorizontalPodAutoscaler. Then the ALB Ingress (annotations
    from the Ingress component, plus the weighted and header rules of `canary_routing` when
    there is a canary, and the `auth-*` annotations of EdgeIdentity; waiting until the ALB has a
    DNS name), with ALB authentication the Ingress `anythingllm-public` of the same group for the
    `publicPaths` (ahead of it, without authentication), and optionally a Route 53 alias.

    An `isolated` canary also gets its own generated secrets (`anythingllm-canary-secrets`,
    never protected: it is disposable), and runs on its own connection Secret and claim.
    Without `app.canary` nothing canary-related exists.

    Args:
        name: logical name prefix.
        settings, ingress_settings: the stack's `app` and `ingress` settings.
        chat_model, embedding_model: the models AnythingLLM uses through the gateway.
        gateway_url: the LiteLLM base URL; gateway_client_secret: the Secret with its key.
        namespaces: the workload namespaces.
        database_secrets: connection Secret per database consumer (`anythingllm`, and
            `anythingllm_canary` for an isolated canary); each exists only once the bootstrap
            Job has created its role and database; bootstrap_job: that Job.
        storage_claims: EFS claim per claim name (`anythingllm-storage`, and
            `anythingllm-canary-storage` for an isolated canary).
        ingress: the Ingress component (controller release and annotations).
        edge_identity: the ALB authentication (annotations, what the Ingress waits for), or None.
        provider, system_ready: the cluster's kubernetes provider and what pods on the system nodes
            wait for (Cluster.system_ready).
        retain: protect the generated secrets (prod).
        prompt_window, chunk_limit: LITE_LLM_MODEL_TOKEN_LIMIT and EMBEDDING_MODEL_MAX_CHUNK_LENGTH.
        gateway_key_ready: what makes the gateway accept AnythingLLM's key (LlmGateway.key_job);
            the admin Job, after which users come in, waits for it.

    Attributes:
        hostname: the ALB's DNS name (Output); ingress_revision: a digest of what the Ingress
        asks the controller for (Output); service_uids: variant track -> its Service's UID
        (Output); url: where users go; deployments: variant
        track -> Deployment; ingress: the Ingress.
    """

    def __init__(self, name: str, settings: AppSettings, *, ingress_settings: IngressSettings,
                 chat_model: ModelSettings, embedding_model: ModelSettings, gateway_url: str,
                 gateway_client_secret: k8s.core.v1.Secret, namespaces: WorkloadNamespaces,
                 database_secrets: dict[str, k8s.core.v1.Secret], bootstrap_job: pulumi.Resource,
                 storage_claims: dict[str, pulumi.Resource], ingress: Ingress, provider: k8s.Provider,
                 system_ready: list[pulumi.Resource], retain: bool, prompt_window: int,
                 chunk_limit: int, gateway_key_ready: list[pulumi.Resource] = (),
                 edge_identity: EdgeIdentity | None = None,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("anythingllm:serving:AnythingLlm", name, None, opts)
        namespace = namespaces.by_name[APP.name].metadata.name
        in_cluster = pulumi.ResourceOptions(parent=self, provider=provider)
        secrets = {SECRETS: self._generated_secrets(f"{name}-secrets", SECRETS, namespace=namespace,
                                                    retain=retain, opts=in_cluster)}
        if settings.canary is not None and settings.canary.isolated:
            secrets[CANARY_SECRETS] = self._generated_secrets(
                f"{name}-canary-secrets", CANARY_SECRETS, namespace=namespace, retain=False,
                opts=in_cluster)
        service_account = token_less_account(f"{name}-app", account=SERVICE_ACCOUNT,
                                             namespace=namespace, opts=in_cluster)
        self.deployments: dict[str, k8s.apps.v1.Deployment] = {}
        self.service_uids: dict[str, pulumi.Output[str]] = {}
        services: list[k8s.core.v1.Service] = []
        stable, *_ = all_variants = variants(settings)
        for variant in all_variants:
            # The canary's logical names carry its track, stable keeps the names it always had.
            logical = f"{name}-app" if variant.track == "stable" else f"{name}-{variant.track}"
            database_secret = database_secrets[variant.database]
            environment = app_environment(chat_model=chat_model, embedding_model=embedding_model,
                                          gateway_url=gateway_url,
                                          database_secret=database_secret.metadata.name,
                                          prompt_window=prompt_window, chunk_limit=chunk_limit,
                                          secrets=variant.secrets)
            deployment = k8s.apps.v1.Deployment(
                logical,
                metadata={
                    "name": variant.name, "namespace": namespace, "labels": variant.labels,
                    # Vectors already stored have this size; changing the embedder means re-embedding.
                    "annotations": {"anythingllm.io/embedding-model": embedding_model.name,
                                    "anythingllm.io/embedding-dimensions": str(embedding_model.dimensions),
                                    **scan_exceptions(APP_SCAN_EXCEPTIONS, images=(variant.image,))},
                },
                spec={
                    # No `replicas`: the HorizontalPodAutoscaler owns it.
                    "strategy": rolling_update(),
                    "selector": {"match_labels": variant.selector},
                    "template": {
                        # A changed Secret (database URL, gateway key, JWT/SIG/AUTH) rolls the pods:
                        # each reads them once, at start.
                        "metadata": {"labels": variant.labels, "annotations": {
                            SECRETS_DIGEST: secrets_digest(secrets[variant.secrets], database_secret,
                                                           gateway_client_secret)}},
                        "spec": app_pod_spec(settings, ingress_settings, environment=environment,
                                             labels=variant.selector, image=variant.image,
                                             storage_claim=variant.storage_claim),
                    },
                },
                # The database (role, database, `vector`) must exist before migrations run; the
                # controller's webhook must run so new pods get their ALB readiness gate.
                opts=pulumi.ResourceOptions(
                    parent=self, provider=provider,
                    depends_on=[*system_ready, secrets[variant.secrets], service_account,
                                database_secret, bootstrap_job, storage_claims[variant.storage_claim],
                                gateway_client_secret, ingress.release],
                ),
            )
            self.deployments[variant.track] = deployment
            services.append(http_service(logical, namespace=namespace, labels=variant.labels,
                                         selector=variant.selector, port=SERVER_PORT,
                                         object_name=variant.name, opts=in_cluster))
            self.service_uids[variant.track] = services[-1].metadata.uid
            disruption_budget(logical, namespace=namespace, labels=variant.labels,
                              selector=variant.selector, object_name=variant.name, opts=in_cluster)
            cpu_autoscaler(logical, namespace=namespace, labels=variant.labels, deployment=variant.name,
                           min_replicas=variant.scaling.replicas,
                           max_replicas=variant.scaling.replica_ceiling,
                           cpu_utilization=variant.scaling.target_cpu_utilization,
                           opts=pulumi.ResourceOptions(parent=self, provider=provider,
                                                       depends_on=[deployment]))

        self.admin_credentials = self._admin(name, settings, namespace=namespace, secrets=secrets,
                                             retain=retain, in_cluster=in_cluster,
                                             system_ready=system_ready,
                                             gateway_key_ready=gateway_key_ready)

        annotations = dict(ingress.annotations)
        backends = None
        if settings.canary is not None:
            routing, backends = canary_routing(ingress_settings, settings.canary,
                                               stable_service=APP_NAME, canary_service=CANARY_NAME)
            annotations.update(routing)
        dns = ingress_settings.dns
        host = dns.name if dns is not None else None
        labels = workload_labels(APP_NAME, "server", image_version(stable.image))
        # Depends on the controller release: created after it, and deleted (with the ALB)
        # before it on destroy. Not on the Deployments: an ALB needs no ready pod, so its
        # URL and DNS record exist while AnythingLLM is still migrating its database.
        ingress_opts = pulumi.ResourceOptions(
            parent=self, provider=provider,
            depends_on=[ingress.release, *services, *ingress.load_balancer_prerequisites,
                        *(edge_identity.prerequisites if edge_identity is not None else [])],
            custom_timeouts=pulumi.CustomTimeouts(create=INGRESS_TIMEOUT, update=INGRESS_TIMEOUT),
        )
        auth = ingress_settings.auth
        public_routes = auth.public_routes() if auth is not None else []
        public = None
        if public_routes:
            # The same target-group, listener and canary annotations (the ALB's own settings stay
            # with the browser member), rules ahead of the browser's, and no authentication:
            # these paths carry their own credentials (PUBLIC_PATHS).
            public = k8s.networking.v1.Ingress(
                f"{name}-public-ingress",
                metadata={
                    "name": PUBLIC_INGRESS_NAME, "namespace": namespace, "labels": labels,
                    "annotations": {**member_annotations(annotations),
                                    **group_annotations(ingress.group, order=PUBLIC_ROUTES_ORDER),
                                    f"{ANNOTATION_PREFIX}auth-type": "none", **WAIT_FOR_ALB},
                },
                spec=ingress_spec(host=host, backends=backends, routes=public_routes),
                opts=ingress_opts,
            )
        self.ingress = k8s.networking.v1.Ingress(
            f"{name}-ingress",
            metadata={
                "name": APP_NAME,
                "namespace": namespace,
                "labels": labels,
                "annotations": {
                    **annotations,
                    **group_annotations(ingress.group, order=BROWSER_ORDER),
                    **(edge_identity.annotations if edge_identity is not None else {}),
                    **WAIT_FOR_ALB,
                },
            },
            spec=ingress_spec(host=host, backends=backends),
            opts=ingress_opts,
        )
        self.hostname = self.ingress.status.apply(
            lambda status: status.load_balancer.ingress[0].hostname)
        # Changes with every change of the Ingress the controller acts on (annotations, rules).
        self.ingress_revision = pulumi.Output.all(
            self.ingress.metadata.annotations, self.ingress.spec.rules,
            *((public.metadata.annotations, public.spec.rules) if public is not None else ()),
        ).apply(lambda values: hashlib.sha256(
            json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16])
        if dns is not None:
            zone = aws.lb.get_hosted_zone_id_output(load_balancer_type="application")
            aws.route53.Record(
                f"{name}-dns",
                zone_id=dns.hosted_zone_id,
                name=dns.name,
                type="A",
                aliases=[{"name": self.hostname, "zone_id": zone.id, "evaluate_target_health": True}],
                opts=named(parent=self),
            )
        scheme = "https" if ingress_settings.https else "http"
        self.url = (pulumi.Output.from_input(f"{scheme}://{dns.name}") if dns is not None
                    else self.hostname.apply(lambda host: f"{scheme}://{host}"))
        self.register_outputs({"url": self.url})

    def _admin(self, name: str, settings: AppSettings, *, namespace: pulumi.Input[str],
               secrets: dict[str, k8s.core.v1.Secret], retain: bool,
               in_cluster: pulumi.ResourceOptions, system_ready: list[pulumi.Resource],
               gateway_key_ready: list[pulumi.Resource]) -> pulumi.Output[dict[str, str]]:
        """The generated admin (Secret `anythingllm-admin`, protected in prod) and, per database
        (stable's, an isolated canary's), the Job that turns multi-user mode on with it and
        writes the text splitter's settings (anythingllm_admin.py), once that variant is ready."""
        password = random.RandomPassword(f"{name}-admin-password", length=ADMIN_PASSWORD_LENGTH,
                                         special=False, opts=pulumi.ResourceOptions(parent=self,
                                                                                    protect=retain))
        admin_secret = k8s.core.v1.Secret(
            f"{name}-admin", metadata={"name": ADMIN_SECRET, "namespace": namespace}, type="Opaque",
            string_data={"ADMIN_USERNAME": settings.admin_username, "ADMIN_PASSWORD": password.result},
            opts=in_cluster)
        script = admin_script()
        databases: dict[str, Variant] = {}
        for variant in variants(settings):  # a shared canary uses stable's database: stable's Job
            databases.setdefault(variant.database, variant)
        for variant in databases.values():
            job_name = admin_job_name(script, variant.image, variant.name, settings.admin_username,
                                      str(settings.chunk_size), str(settings.chunk_overlap))
            logical = f"{name}-admin" if variant.track == "stable" else f"{name}-{variant.track}-admin"
            config_map = k8s.core.v1.ConfigMap(
                f"{logical}-script", metadata={"name": job_name, "namespace": namespace},
                data={SCRIPT_KEY: script}, opts=in_cluster)
            k8s.batch.v1.Job(
                logical,
                metadata={
                    "name": job_name, "namespace": namespace,
                    "labels": {"app.kubernetes.io/name": ADMIN_JOB_PREFIX,
                               "app.kubernetes.io/part-of": APP_NAME, TRACK_LABEL: variant.track},
                    # A failed run is replaced by the next `pulumi up` instead of awaited forever.
                    "annotations": {"pulumi.com/replaceUnready": "true",
                                    **scan_exceptions(ADMIN_JOB_SCAN_EXCEPTIONS, images=(variant.image,))},
                },
                spec={
                    "backoff_limit": 3,
                    "active_deadline_seconds": ADMIN_WAIT_SECONDS + 300,
                    "template": {
                        "metadata": {"labels": {"app.kubernetes.io/name": ADMIN_JOB_PREFIX}},
                        "spec": admin_pod_spec(variant, config_map=job_name,
                                               chunk_size=settings.chunk_size,
                                               chunk_overlap=settings.chunk_overlap),
                    },
                },
                # After the variant's rollout: the API answers, and the database is migrated.
                opts=pulumi.ResourceOptions(
                    parent=self, provider=in_cluster.provider,
                    depends_on=[self.deployments[variant.track], admin_secret, config_map,
                                *gateway_key_ready,
                                secrets[variant.secrets], *system_ready],
                    custom_timeouts=pulumi.CustomTimeouts(create=f"{ADMIN_WAIT_SECONDS + 600}s",
                                                          update=f"{ADMIN_WAIT_SECONDS + 600}s"),
                ),
            )
        return pulumi.Output.secret(pulumi.Output.all(settings.admin_username, password.result).apply(
            lambda values: {"username": values[0], "password": values[1]}))

    def _generated_secrets(self, logical: str, secret_name: str, *, namespace: pulumi.Input[str],
                           retain: bool, opts: pulumi.ResourceOptions) -> k8s.core.v1.Secret:
        """JWT_SECRET, SIG_KEY and SIG_SALT, generated once, in Secret `secret_name`."""
        keep = pulumi.ResourceOptions(parent=self, protect=retain)
        prefix = logical.removesuffix("-secrets")
        generated = {
            key: random.RandomPassword(f"{prefix}-{key.lower().replace('_', '-')}", length=SECRET_LENGTH,
                                       special=False, opts=keep)
            for key in SECRET_KEYS
        }
        data = {key: password.result for key, password in generated.items()}
        return remember(k8s.core.v1.Secret(
            logical,
            metadata={"name": secret_name, "namespace": namespace},
            type="Opaque",
            string_data=data,
            opts=opts,
        ), data)
