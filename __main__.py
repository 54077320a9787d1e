"""Composition root: load the settings once, build the components in order, export."""

import pulumi

from components.cluster import Cluster
from components.naming import cluster_name, common_tags
from components.network import Network
from components.settings import load_settings

settings = load_settings()
tags = common_tags(project=settings.project, stack=settings.stack,
                   environment=settings.environment, extra=settings.tags)
name = cluster_name(settings.project, settings.stack)

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

pulumi.export("environment", settings.environment)
pulumi.export("vpcId", network.vpc_id)
pulumi.export("privateSubnetIds", network.private_subnet_ids)
pulumi.export("publicSubnetIds", network.public_subnet_ids)
pulumi.export("clusterName", cluster.cluster_name)
pulumi.export("clusterEndpoint", cluster.endpoint)
pulumi.export("gpuNodeGroups", sorted(g.name for g in settings.cluster.gpu_node_groups))
pulumi.export("kubeconfig", cluster.kubeconfig)
