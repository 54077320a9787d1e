"""Every version the stack deploys, pinned in one place.

Python packages are pinned in requirements.txt; everything that runs in the cluster
(Helm charts, images) and the EKS versions this code is tested against are pinned here.
Bump a version here, run `make test`, read the preview diff. Images are pinned by exact tag;
append `@sha256:<digest>` to a reference to pin it by content as well (the security scan's
image-digest exception then disappears from its workloads: workloads.scan_exceptions).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

# EKS standard-support end dates (AWS "Kubernetes version lifecycle on EKS", cross-checked
# with endoflife.date in November 2026). A version is accepted only while it is in standard
# support: extended support costs 6x per cluster hour and ends in a forced upgrade.
EKS_STANDARD_SUPPORT_ENDS: dict[str, dt.date] = {
    "1.34": dt.date(2026, 12, 2),
    "1.35": dt.date(2027, 3, 27),
}


@dataclass(frozen=True)
class HelmChart:
    """A chart pinned to an exact version in its upstream repository."""

    chart: str
    version: str
    repository: str


NVIDIA_DEVICE_PLUGIN = HelmChart(
    chart="nvidia-device-plugin",
    version="0.18.2",
    repository="https://nvidia.github.io/k8s-device-plugin",
)

CLUSTER_AUTOSCALER = HelmChart(
    chart="cluster-autoscaler",
    version="9.52.1",
    repository="https://kubernetes.github.io/autoscaler",
)

# Cluster Autoscaler's minor version must match the cluster's Kubernetes minor version
# (upstream version policy), so the image tag is chosen per EKS version rather than taken
# from the chart's appVersion.
CLUSTER_AUTOSCALER_IMAGE = "registry.k8s.io/autoscaling/cluster-autoscaler"
CLUSTER_AUTOSCALER_IMAGE_TAGS: dict[str, str] = {
    "1.34": "v1.34.1",
    "1.35": "v1.35.2",
}

# psql and pg_isready for the database bootstrap Job (PostgreSQL's official image). Its
# client works with every server version this code accepts (16 and 17). The image's
# `postgres` user has UID/GID 999, so the Job runs as that user.
POSTGRES_CLIENT_IMAGE = "docker.io/library/postgres:17.6"
POSTGRES_CLIENT_UID = 999

# AWS Load Balancer Controller: chart 3.5.0 = controller v3.5.0. Its IAM policy is the
# upstream docs/install/iam_policy.json of the same tag, vendored in components/data/.
AWS_LOAD_BALANCER_CONTROLLER = HelmChart(
    chart="aws-load-balancer-controller",
    version="3.5.0",
    repository="https://aws.github.io/eks-charts",
)
AWS_LOAD_BALANCER_CONTROLLER_APP_VERSION = "v3.5.0"

# AnythingLLM's PostgreSQL build (Docker Hub only; the `pg` branch publishes `pg-<release>`).
# The plain `<release>` image keeps SQLite on the shared volume and cannot be replicated.
# `app.imageTag` (and `app.canary.imageTag`) select another `pg-<release>` of this repository;
# the default below is the release the platform is tested with.
ANYTHINGLLM_REPOSITORY = "docker.io/mintplexlabs/anythingllm"
ANYTHINGLLM_TAG = "pg-1.16.0"
ANYTHINGLLM_IMAGE = f"{ANYTHINGLLM_REPOSITORY}:{ANYTHINGLLM_TAG}"
ANYTHINGLLM_UID = 1000  # user `anythingllm` of the image

# LiteLLM proxy with Prisma for its own database. Since the 2026 releases the Prisma engines
# are baked at a fixed path, so the image runs as any non-root uid. Tags are `v<version>`
# (the older `main-v<version>-stable` scheme is gone). requirements-test.txt pins the
# `litellm` package at the same version; tests load the rendered config with its models.
LITELLM_VERSION = "1.106.2"
LITELLM_IMAGE = f"ghcr.io/berriai/litellm-database:v{LITELLM_VERSION}"
LITELLM_UID = 10001  # any uid works (above); a high one cannot collide with a node's users

# vLLM OpenAI-compatible server. Its CUDA 13 build needs NVIDIA driver >= 580, which the
# AL2023 NVIDIA AMIs ship.
VLLM_IMAGE = "docker.io/vllm/vllm-openai:v0.32.0"
# The image defaults to root; it runs as any uid once HOME is writable (model_serving.py).
# A high uid (>= 10000) cannot collide with a user of the node. The model cache's EFS access
# point writes every file as its own POSIX owner, whatever the pod's uid.
VLLM_UID = 10001
