"""Cache: an ElastiCache (Valkey or Redis OSS) replication group for the LLM gateway."""

from __future__ import annotations

from urllib.parse import quote

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random

from .cluster import Cluster
from .kms import encryption_key, service_only_policy
from .namespaces import GATEWAY, WorkloadNamespaces
from .naming import replication_group_id
from .network import Network
from .options import named
from .security_groups import cluster_only_security_group
from .settings import CacheSettings
from .workloads import remember

REDIS_PORT = 6379
CONNECTION_SECRET = "llm-gateway-redis"
# ElastiCache AUTH tokens: 16-128 printable characters without @, " or /; letters and digits
# avoid every client's escaping rules.
AUTH_TOKEN_LENGTH = 64


def node_layout(settings: CacheSettings) -> dict[str, object]:
    """Replication group arguments for the node layout of the configured cluster mode.

    Cluster mode disabled (the default): one shard, a primary plus `replicas` read replicas
    spread over the subnet group's AZs. LiteLLM's router and rate limiter use multi-key
    commands and Lua scripts that fail on cluster mode enabled (MOVED/CROSSSLOT errors).
    """
    common = {
        "automatic_failover_enabled": settings.automatic_failover,
        "multi_az_enabled": settings.multi_az,
    }
    if settings.cluster_mode == "enabled":
        return {**common, "cluster_mode": "enabled", "num_node_groups": settings.shards,
                "replicas_per_node_group": settings.replicas}
    return {**common, "cluster_mode": "disabled", "num_cache_clusters": 1 + settings.replicas}


def connection_secret_data(*, host: str, password: str, port: int = REDIS_PORT) -> dict[str, str]:
    """Keys of the gateway's connection Secret (the names LiteLLM reads from its environment)."""
    return {
        "REDIS_HOST": host,
        "REDIS_PORT": str(port),
        "REDIS_PASSWORD": password,
        "REDIS_SSL": "True",
        "REDIS_URL": f"rediss://:{quote(password, safe='')}@{host}:{port}/0",
    }


class Cache(pulumi.ComponentResource):
    """An encrypted ElastiCache replication group reachable only from the cluster.

    Creates:
      - a KMS key (rotation on) for encryption at rest;
      - a cache subnet group over the private subnets and a security group admitting
        6379/tcp only from the cluster security group;
      - an AUTH token (pulumi-random, a secret);
      - the replication group: engine and version from config (default Valkey), cluster
        mode disabled unless configured, automatic failover and Multi-AZ whenever there is a
        replica, TLS required in transit, encrypted at rest, snapshots and windows from
        config, minor upgrades on; in prod a final snapshot and `protect`;
      - the gateway's connection Secret `llm-gateway-redis` (host, port, TLS on, password)
        in the `llm-gateway` namespace.

    Args:
        name: logical name prefix.
        settings: the stack's `cache` settings.
        cluster_name: physical EKS cluster name (the replication group id derives from it).
        network: the Network (private subnets).
        cluster: the Cluster (security group, provider).
        namespaces: the WorkloadNamespaces.
        retain: prod durability (final snapshot, protect, changes in the maintenance window).
        protect: `protect` the replication group; `retain` unless the stack's allowReplacement
            names `cache` for a reviewed replacement (README, "Replacements").
        tags: common tags.

    Attributes:
        host (Output: primary endpoint, or the configuration endpoint in cluster mode);
        port; connection_secret; replication_group.
    """

    def __init__(
        self,
        name: str,
        settings: CacheSettings,
        *,
        cluster_name: str,
        network: Network,
        cluster: Cluster,
        namespaces: WorkloadNamespaces,
        retain: bool,
        tags: dict[str, str],
        protect: bool | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("anythingllm:cache:Cache", name, None, opts)
        protect = retain if protect is None else protect
        group_id = replication_group_id(cluster_name)
        child = pulumi.ResourceOptions(parent=self)

        key = encryption_key(
            f"{name}-elasticache", description=f"ElastiCache of {cluster_name}",
            alias=f"{cluster_name}-elasticache", retain=retain, tags=tags, parent=self,
            policy=service_only_policy("elasticache", "dax"),
        )
        subnet_group = aws.elasticache.SubnetGroup(
            name, name=group_id, description=f"Private subnets of {cluster_name}",
            subnet_ids=network.private_subnet_ids, tags=tags, opts=named(parent=self),
        )
        security_group = cluster_only_security_group(
            f"{name}-redis", description=f"ElastiCache of {cluster_name}",
            vpc_id=network.vpc_id, port=REDIS_PORT,
            cluster_security_group_id=cluster.cluster_security_group_id, tags=tags, parent=self,
        )
        auth_token = random.RandomPassword(
            f"{name}-auth-token", length=AUTH_TOKEN_LENGTH, special=False, opts=child,
        )
        self.replication_group = aws.elasticache.ReplicationGroup(
            name,
            replication_group_id=group_id,
            description=f"LiteLLM gateway state of {cluster_name}",
            engine=settings.engine,
            engine_version=settings.version,
            node_type=settings.node_type,
            port=REDIS_PORT,
            parameter_group_name=settings.parameter_group_name,
            subnet_group_name=subnet_group.name,
            security_group_ids=[security_group.group.id],
            **node_layout(settings),
            at_rest_encryption_enabled=True,
            kms_key_id=key.arn,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            auth_token=auth_token.result,
            auth_token_update_strategy="ROTATE",
            snapshot_retention_limit=settings.snapshot_retention_days,
            snapshot_window=settings.snapshot_window,
            maintenance_window=settings.maintenance_window,
            final_snapshot_identifier=f"{group_id}-final" if retain else None,
            auto_minor_version_upgrade=True,
            apply_immediately=not retain,
            tags={**tags, "Name": group_id},
            opts=named(parent=self, protect=protect),
        )
        group = self.replication_group
        self.host = (group.configuration_endpoint_address if settings.cluster_mode == "enabled"
                     else group.primary_endpoint_address)
        self.port = REDIS_PORT

        data = pulumi.Output.all(self.host, auth_token.result).apply(
            lambda args: connection_secret_data(host=args[0], password=args[1]))
        self.connection_secret = k8s.core.v1.Secret(
            f"{name}-connection",
            metadata={"name": CONNECTION_SECRET,
                      "namespace": namespaces.by_name[GATEWAY.name].metadata.name},
            type="Opaque",
            string_data=pulumi.Output.secret(data),
            # The gateway waits for this Secret: it appears once the cluster may reach Redis.
            opts=pulumi.ResourceOptions(parent=self, provider=cluster.provider,
                                        depends_on=[security_group.rule]),
        )
        remember(self.connection_secret, data)
        self.register_outputs({"host": self.host})
