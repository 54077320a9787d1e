"""Composition root: load the settings once, build the components in order, export."""

import pulumi

from components.cache import CONNECTION_SECRET, Cache
from components.cluster import Cluster
from components.database import Database
from components.db_bootstrap import DatabaseConsumer
from components.namespaces import APP, GATEWAY, WorkloadNamespaces
from components.naming import cluster_name, common_tags
from components.network import Network
from components.settings import load_settings
from components.shared_storage import SharedStorage

settings = load_settings()
tags = common_tags(project=settings.project, stack=settings.stack,
                   environment=settings.environment, extra=settings.tags)
name = cluster_name(settings.project, settings.stack)
# Prod keeps its data through anything short of an explicit, reviewed change: stateful
# resources are protected, snapshotted on deletion and changed in maintenance windows.
retain = settings.is_prod

network = Network("network", settings.network, cluster_name=name, region=settings.region,
                  tags=tags)
cluster = Cluster(
    "cluster",
    settings.cluster,
    cluster_name=name,
    network=network,
    region=settings.region,
    deletion_protection=settings.deletion_protection,
    destroyable=not settings.is_prod,
    tags=tags,
)
namespaces = WorkloadNamespaces("namespaces", provider=cluster.provider)
storage = SharedStorage(
    "storage", settings.storage, cluster_name=name, network=network, cluster=cluster,
    namespaces=namespaces, addon_version=settings.cluster.addon_versions.get("aws-efs-csi-driver"),
    retain=retain, tags=tags,
)
# AnythingLLM keeps its data and its vectors (pgvector) in one database; LiteLLM keeps keys,
# budgets and spend logs in its own.
database_consumers = [
    DatabaseConsumer("anythingllm", namespace=APP.name, extensions=("vector",)),
    DatabaseConsumer("litellm", namespace=GATEWAY.name),
]
database = Database(
    "database", settings.database, cluster_name=name, region=settings.region, network=network,
    cluster=cluster, namespaces=namespaces, consumers=database_consumers, retain=retain, tags=tags,
)
cache = Cache("cache", settings.cache, cluster_name=name, network=network, cluster=cluster,
              namespaces=namespaces, retain=retain, tags=tags)

pulumi.export("environment", settings.environment)
pulumi.export("vpcId", network.vpc_id)
pulumi.export("privateSubnetIds", network.private_subnet_ids)
pulumi.export("publicSubnetIds", network.public_subnet_ids)
pulumi.export("clusterName", cluster.cluster_name)
pulumi.export("clusterEndpoint", cluster.endpoint)
pulumi.export("gpuNodeGroups", sorted(g.name for g in settings.cluster.gpu_node_groups))
pulumi.export("kubeconfig", cluster.kubeconfig)
pulumi.export("fileSystemId", storage.file_system_id)
pulumi.export("databaseAddress", database.address)
pulumi.export("cacheAddress", cache.host)
pulumi.export("connectionSecrets", {
    **{consumer.name: f"{consumer.namespace}/{consumer.secret_name}"
       for consumer in database_consumers},
    "redis": f"{GATEWAY.name}/{CONNECTION_SECRET}",
})
