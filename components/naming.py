"""Physical names within AWS limits, and the tags every AWS resource carries.

Every physical name the program sets derives from the project and the stack name, so a
throwaway `staging-<branch>` stack gets names of its own that fit every limit (tested with
generated names in tests/test_naming.py). Target groups are named by the AWS Load Balancer
Controller itself (`k8s-<namespace>-<service>-<hash>`, 32 characters at most).
"""

from __future__ import annotations

import hashlib
import re

# Longest physical names AWS accepts, for the names this code sets explicitly.
EKS_CLUSTER_NAME_MAX = 100
IAM_ROLE_NAME_MAX = 64
NODE_GROUP_NAME_MAX = 63
LOAD_BALANCER_NAME_MAX = 32  # ALB names; the controller uses `load-balancer-name` as given
REPLICATION_GROUP_ID_MAX = 40  # ElastiCache replication group id
RDS_IDENTIFIER_MAX = 63
CREATION_TOKEN_MAX = 64  # EFS creation token
EXPIRES_TAG = "anythingllm:expires-at"
# The tag of an RDS instance created from a snapshot (restore.databaseSnapshot), naming it.
RESTORED_FROM_TAG = "anythingllm:restored-from"


def physical_name(*parts: str, max_length: int) -> str:
    """Join `parts` with '-' into a lowercase name of at most `max_length` characters.

    A name that is too long is cut and ends in 8 hex digits of a hash of the full name, so
    two long stack names (e.g. branch names) that share a prefix still get distinct names.
    """
    name = re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)
    if len(name) <= max_length:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: max_length - 9].rstrip('-')}-{digest}"


def cluster_name(project: str, stack: str) -> str:
    """The EKS cluster name; subnets are tagged with it before the cluster exists."""
    return physical_name(project, stack, max_length=EKS_CLUSTER_NAME_MAX)


def load_balancer_name(project: str, stack: str) -> str:
    """The ALB's name: the project and stack, since the cluster name may be longer than 32."""
    return physical_name(project, stack, max_length=LOAD_BALANCER_NAME_MAX)


def replication_group_id(cluster: str) -> str:
    return physical_name(cluster, "cache", max_length=REPLICATION_GROUP_ID_MAX)


def db_instance_identifier(cluster: str) -> str:
    return physical_name(cluster, "postgres", max_length=RDS_IDENTIFIER_MAX)


def creation_token(cluster: str) -> str:
    return physical_name(cluster, "shared", max_length=CREATION_TOKEN_MAX)


def stack_physical_names(project: str, stack: str) -> dict[str, str]:
    """Every name above for one stack, keyed by what it names (used by tests and tools)."""
    cluster = cluster_name(project, stack)
    return {
        "eksCluster": cluster,
        "loadBalancer": load_balancer_name(project, stack),
        "cacheReplicationGroup": replication_group_id(cluster),
        "dbInstance": db_instance_identifier(cluster),
        "efsCreationToken": creation_token(cluster),
    }


def common_tags(*, project: str, stack: str, environment: str, extra: dict[str, str],
                expires_at: str | None = None) -> dict[str, str]:
    """Tags on every taggable AWS resource: ownership, environment and cost allocation, and
    for throwaway stacks when they may be reaped (`tools/staging.py`, `tools/sweep.py`)."""
    return {
        **extra,
        "anythingllm:project": project,
        "anythingllm:stack": stack,
        "anythingllm:environment": environment,
        **({EXPIRES_TAG: expires_at} if expires_at is not None else {}),
        "managed-by": "pulumi",
    }
