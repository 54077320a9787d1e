"""Composition root: load the settings once, build the components in order, export."""

import pulumi

from components.anythingllm import (
    SERVER_PORT,
    AnythingLlm,
    database_consumers,
    storage_claims,
    target_group_resources,
)
from components.backups import Backups
from components.cache import CONNECTION_SECRET, Cache
from components.cluster import Cluster, addon_version
from components.database import Database
from components.db_bootstrap import DatabaseConsumer
from components.edge_identity import EdgeIdentity
from components.ingress import Ingress
from components.keda import Keda
from components.llm_gateway import LlmGateway
from components.log_encryption import LogEncryption
from components.managed_prometheus import ManagedPrometheus
from components.model_autoscaling import ModelAutoscaling
from components.model_serving import ModelServing, service_name
from components.namespaces import APP, GATEWAY, MODELS, WorkloadNamespaces
from components.naming import (
    cluster_name,
    common_tags,
    db_instance_identifier,
    load_balancer_name,
    replication_group_id,
)
from components.network import Network
from components.observability import (
    ADDON,
    MonitoredServices,
    Observability,
    WatchedWorkload,
    cache_member_ids,
)
from components.scaling_alerts import ScalingAlerts
from components.settings import load_settings
from components.shared_storage import MODEL_CACHE, SharedStorage

settings = load_settings()
for warning in settings.warnings:
    pulumi.log.warn(warning)
tags = common_tags(project=settings.project, stack=settings.stack,
                   environment=settings.environment, extra=settings.tags,
                   expires_at=settings.expires_at_text)
name = cluster_name(settings.project, settings.stack)
# Prod keeps its data through anything short of an explicit, reviewed change: stateful
# resources are protected, snapshotted on deletion and changed in maintenance windows. A plan
# that would replace a protected one fails, unless `allowReplacement` names it (README,
# "Replacements").
retain = settings.is_prod

# Every log group of the stack is encrypted with this key (the audit trails included).
log_encryption = LogEncryption(
    "logs", cluster_name=name, region=settings.region, retain=retain, tags=tags,
    log_group_prefixes=[f"/aws/eks/{name}/", f"/aws/rds/instance/{db_instance_identifier(name)}/",
                        f"/aws/containerinsights/{name}/", f"/aws/vpc/{name}/"])
logs_key_arn = log_encryption.key_arn
network = Network("network", settings.network, cluster_name=name, region=settings.region,
                  tags=tags, logs_key_arn=logs_key_arn)
cluster = Cluster(
    "cluster",
    settings.cluster,
    cluster_name=name,
    network=network,
    region=settings.region,
    deletion_protection=settings.deletion_protection,
    destroyable=not settings.is_prod,
    tags=tags,
    logs_key_arn=logs_key_arn,
    protect=settings.protects("cluster"),
)
namespaces = WorkloadNamespaces("namespaces", provider=cluster.provider)
# An isolated canary gets its own storage directory and database (see anythingllm.py), so that
# a schema migration of the new release cannot touch stable's.
storage = SharedStorage(
    "storage", settings.storage, cluster_name=name, network=network, cluster=cluster,
    namespaces=namespaces, addon_version=addon_version(settings.cluster, "aws-efs-csi-driver"),
    retain=retain, protect=settings.protects("storage"),
    protect_bindings=settings.protects("storage") and settings.protects("cluster"), tags=tags,
    claims=(*storage_claims(settings.app), MODEL_CACHE),
    restore_recovery_point=settings.restore.file_system_recovery_point, region=settings.region,
)
# AnythingLLM keeps its data and its vectors (pgvector) in one database; LiteLLM keeps keys,
# budgets and spend logs in its own.
database_consumers = [
    *database_consumers(settings.app,
                        embedding_dimensions=settings.model_serving.embedding_model.dimensions),
    DatabaseConsumer("litellm", namespace=GATEWAY.name),
]
database = Database(
    "database", settings.database, cluster_name=name, region=settings.region, network=network,
    cluster=cluster, namespaces=namespaces, consumers=database_consumers, retain=retain,
    protect=settings.protects("database"), tags=tags,
    restore_snapshot=settings.restore.database_snapshot,
    restore_storage_gib=settings.restore_storage_gib,
    logs_key_arn=logs_key_arn,
)
cache = Cache("cache", settings.cache, cluster_name=name, network=network, cluster=cluster,
              namespaces=namespaces, retain=retain, protect=settings.protects("cache"), tags=tags)

# Who may reach AnythingLLM: OIDC or Cognito at the ALB (prod requires it or a recorded reason).
auth = settings.ingress.auth
edge_identity = EdgeIdentity(
    "edge-identity", auth, cluster_name=name,
    host=settings.ingress.dns.name if settings.ingress.dns else None,
    namespace=namespaces.by_name[APP.name].metadata.name, provider=cluster.provider,
    oidc_client_secret=(pulumi.Output.secret(settings.oidc_client_secret.get_secret_value())
                        if settings.oidc_client_secret is not None else None),
    retain=retain, protect=settings.protects("edgeIdentity"), tags=tags,
) if auth is not None else None
# The request path: ALB -> AnythingLLM -> LiteLLM -> vLLM.
ingress = Ingress(
    "ingress", settings.ingress, cluster=cluster, cluster_name=name,
    load_balancer_name=load_balancer_name(settings.project, settings.stack),
    vpc_id=network.vpc_id, region=settings.region, tags=tags, retain=retain,
    protect=settings.protects("accessLogs"),
    user_pool_arn=edge_identity.user_pool_arn if edge_identity is not None else None,
    target_port=SERVER_PORT,
    authenticates=auth is not None and auth.type != "none",
)
hugging_face_token = (pulumi.Output.secret(settings.hugging_face_token.get_secret_value())
                      if settings.hugging_face_token is not None else None)
# Models that follow their load, or sleep: KEDA on vLLM's metrics, which AWS's managed collector
# scrapes into a managed Prometheus workspace (README, "Scaling"). Their ScaledObjects come
# before the model Deployments, which then leave their replica counts to KEDA's HPAs.
scaled_objects = {}
if any(model.autoscaled for model in settings.model_serving.models):
    prometheus = ManagedPrometheus(
        "prometheus", cluster_name=name, cluster_arn=cluster.eks_cluster.arn,
        vpc_id=network.vpc_id, subnet_ids=network.private_subnet_ids,
        cluster_security_group_id=cluster.cluster_security_group_id, tags=tags)
    keda = Keda("keda", cluster_name=name, eks_cluster_name=cluster.cluster_name,
                workspace_arn=prometheus.workspace.arn, account_id=cluster.account_id,
                partition=cluster.partition, provider=cluster.provider,
                system_ready=cluster.system_ready, tags=tags)
    scaled_objects = ModelAutoscaling(
        "autoscaling", settings.model_serving.models, query_url=prometheus.query_url,
        region=settings.region, ready=[keda.release], gpu_ready=cluster.gpu_ready,
        provider=cluster.provider).scaled_objects
    # When scaling is blind or cannot keep up: rules in the workspace, to the alarm addresses.
    ScalingAlerts(
        "scaling-alerts", settings.model_serving.models, cluster_name=name,
        region=settings.region, workspace_id=prometheus.workspace.id,
        workspace_arn=prometheus.workspace.arn, account_id=cluster.account_id,
        partition=cluster.partition, emails=settings.observability.alarm_emails, retain=retain,
        tags=tags, scraper=prometheus.scraper)
models = ModelServing(
    "models", settings.model_serving, gpu_node_groups=settings.cluster.gpu_node_group_by_name,
    namespaces=namespaces, model_cache_claim=storage.claims[MODEL_CACHE.name],
    hugging_face_token=hugging_face_token, provider=cluster.provider,
    gpu_ready=cluster.gpu_ready, stream_seconds=settings.gateway.request_timeout_seconds,
    private_subnet_cidrs=network.private_subnet_cidrs, scaled_by=scaled_objects,
)
gateway = LlmGateway(
    "gateway", settings.gateway, models=settings.model_serving.models, api_bases=models.api_bases,
    namespaces=namespaces, database_secret=database.connection_secrets["litellm"],
    redis_secret=cache.connection_secret, model_key_secret=models.api_key_secret,
    provider=cluster.provider, system_ready=cluster.system_ready, retain=retain,
    # Every chat model (a workspace may pick another than app.chatModel) and the embedder.
    client_models=[model.name for model in settings.model_serving.models],
)
app = AnythingLlm(
    "anythingllm", settings.app, ingress_settings=settings.ingress, edge_identity=edge_identity,
    chat_model=settings.chat_model, embedding_model=settings.model_serving.embedding_model,
    gateway_url=gateway.url, gateway_client_secret=gateway.client_secret, namespaces=namespaces,
    database_secrets=database.connection_secrets, bootstrap_job=database.bootstrap_job,
    storage_claims=storage.claims, ingress=ingress, provider=cluster.provider,
    system_ready=cluster.system_ready, retain=retain, prompt_window=settings.chat_prompt_window,
    chunk_limit=settings.embedding_chunk_limit, gateway_key_ready=[gateway.key_job],
)

# Alarms watch every hop of the request path and the data services, by the names given above.
observability = Observability(
    "observability", settings.observability, cluster_name=name, region=settings.region,
    cluster=cluster, addon_version=addon_version(settings.cluster, ADDON), retain=retain,
    tags=tags, logs_key_arn=logs_key_arn,
    services=MonitoredServices(
        load_balancer_name=load_balancer_name(settings.project, settings.stack),
        ingress_ready=app.hostname,
        target_groups=target_group_resources(
            settings.app, public_routes=bool(auth is not None and auth.public_routes())),
        database_identifier=db_instance_identifier(name),
        database_allocated_gib=settings.database.allocated_storage_gib,
        database_connections=settings.observability.database_connections_threshold(
            settings.database.instance_class),
        cache_member_ids=cache_member_ids(replication_group_id(name), settings.cache),
        # A model that sleeps has no floor to fall below.
        model_workloads={model.name: WatchedWorkload(service_name(model), model.replicas)
                           for model in settings.model_serving.models if not model.sleeps},
        model_namespace=MODELS.name,
        ingress_revision=app.ingress_revision,
        service_uids=app.service_uids,
    ),
)
# AWS Backup of the database and the file system (prod; optional elsewhere), with an alert when
# a job fails. RDS's own automated backups stay as they are.
backups = Backups(
    "backup", settings.backup, cluster_name=name,
    resources=[database.instance.arn, storage.file_system_arn],
    account_id=cluster.account_id, partition=cluster.partition,
    emails=settings.observability.alarm_emails, retain=retain, protect=settings.is_prod,
    tags=tags,
) if settings.backup.enabled else None

pulumi.export("environment", settings.environment)
# Throwaway stacks only: `tools/staging.py reap` reads it from the state (no config file needed).
pulumi.export("expiresAt", settings.expires_at_text)
pulumi.export("vpcId", network.vpc_id)
pulumi.export("privateSubnetIds", network.private_subnet_ids)
pulumi.export("publicSubnetIds", network.public_subnet_ids)
pulumi.export("clusterName", cluster.cluster_name)
pulumi.export("clusterEndpoint", cluster.endpoint)
pulumi.export("gpuNodeGroups", sorted(g.name for g in settings.cluster.gpu_node_groups))
pulumi.export("kubeconfig", cluster.kubeconfig)
pulumi.export("fileSystemId", storage.file_system_id)
# Where AWS Backup keeps the recovery points a restore stack starts from (README, "Backups and
# restore"); null without backups.
pulumi.export("backupVault", backups.vault_name if backups is not None else None)
pulumi.export("databaseAddress", database.address)
pulumi.export("cacheAddress", cache.host)
pulumi.export("url", app.url)
# AnythingLLM's first admin (multi-user mode): `pulumi stack output anythingllmAdmin --show-secrets`.
pulumi.export("anythingllmAdmin", app.admin_credentials)
pulumi.export("albHostname", app.hostname)
# The stack's Cognito user pool, where administrators invite users
# (`aws cognito-idp admin-create-user --user-pool-id <id> --username <email>`).
pulumi.export("userPoolId", edge_identity.user_pool_id if edge_identity is not None else None)
pulumi.export("alarmTopicArn", observability.topic_arn)
pulumi.export("dashboard", observability.dashboard_name)
pulumi.export("models", {model.name: model.model for model in settings.model_serving.models})
pulumi.export("connectionSecrets", {
    **{consumer.name: f"{consumer.namespace}/{consumer.secret_name}"
       for consumer in database_consumers},
    "redis": f"{GATEWAY.name}/{CONNECTION_SECRET}",
})
