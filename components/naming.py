"""Physical names within AWS limits, and the tags every AWS resource carries."""

from __future__ import annotations

import hashlib
import re

# Longest physical names AWS accepts, for the names this code sets explicitly.
EKS_CLUSTER_NAME_MAX = 100
IAM_ROLE_NAME_MAX = 64
NODE_GROUP_NAME_MAX = 63


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


def common_tags(*, project: str, stack: str, environment: str, extra: dict[str, str]) -> dict[str, str]:
    """Tags on every taggable AWS resource: ownership, environment and cost allocation."""
    return {
        **extra,
        "anythingllm:project": project,
        "anythingllm:stack": stack,
        "anythingllm:environment": environment,
        "managed-by": "pulumi",
    }
