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


@dataclass(frozen=True)
class EksVersion:
    """A Kubernetes minor's life on EKS: released, end of standard and of extended support."""

    released: dt.date
    standard_support_ends: dt.date
    extended_support_ends: dt.date


# AWS "Amazon EKS Kubernetes release calendar" (docs.aws.amazon.com/eks/latest/userguide/
# kubernetes-versions.html), read in November 2026. A minor has 14 months of standard support,
# then 12 of extended support, which costs six times as much per cluster hour.
EKS_VERSIONS: dict[str, EksVersion] = {
    "1.28": EksVersion(dt.date(2023, 9, 26), dt.date(2024, 11, 26), dt.date(2025, 11, 26)),
    "1.29": EksVersion(dt.date(2024, 1, 23), dt.date(2025, 3, 23), dt.date(2026, 3, 23)),
    "1.30": EksVersion(dt.date(2024, 5, 23), dt.date(2025, 7, 23), dt.date(2026, 7, 23)),
    "1.31": EksVersion(dt.date(2024, 9, 26), dt.date(2025, 11, 26), dt.date(2026, 11, 26)),
    "1.32": EksVersion(dt.date(2025, 1, 23), dt.date(2026, 3, 23), dt.date(2027, 3, 23)),
    "1.33": EksVersion(dt.date(2025, 5, 29), dt.date(2026, 7, 29), dt.date(2027, 7, 29)),
    "1.34": EksVersion(dt.date(2025, 10, 2), dt.date(2026, 12, 2), dt.date(2027, 12, 2)),
    "1.35": EksVersion(dt.date(2026, 1, 27), dt.date(2027, 3, 27), dt.date(2028, 3, 27)),
    "1.36": EksVersion(dt.date(2026, 6, 2), dt.date(2027, 8, 2), dt.date(2028, 8, 2)),
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

@dataclass(frozen=True)
class ClusterAutoscalerRelease:
    """The Cluster Autoscaler chart and image for one Kubernetes minor, pinned together.

    `chart_app_version` is the chart's `Chart.yaml` appVersion; its minor, the image's and the
    cluster's must agree (upstream's version policy: the autoscaler embeds the scheduler of its
    own minor). The image tag is set explicitly because a chart's default `image.tag` can lag
    its appVersion (charts 9.54.0-9.55.0 say appVersion 1.35.0 but default to v1.34.2).
    """

    chart: HelmChart
    chart_app_version: str
    image_tag: str
    # Set when no released chart has the cluster's minor as appVersion: why the chart of the
    # previous minor runs this image (its RBAC and flags checked against the image's source).
    chart_behind_because: str = ""


def _autoscaler_chart(version: str) -> HelmChart:
    return HelmChart(chart="cluster-autoscaler", version=version,
                     repository="https://kubernetes.github.io/autoscaler")


# kubernetes/autoscaler: tags `cluster-autoscaler-chart-<version>` (appVersion in
# cluster-autoscaler/charts/cluster-autoscaler/Chart.yaml) and `cluster-autoscaler-<image>`.
# 1.35 locks --enable-dynamic-resource-allocation=true (config/flags/flags.go at
# cluster-autoscaler-1.35.2: "must be true", klog.Fatalf otherwise) and blocks at start until
# its resource.k8s.io/v1 informers have synced (main.go WaitForCacheSync), so its chart must
# grant them; they first appear in chart 9.54.0. 1.34 defaults the flag to false (1.34.5).
CLUSTER_AUTOSCALER_RELEASES: dict[str, ClusterAutoscalerRelease] = {
    "1.34": ClusterAutoscalerRelease(chart=_autoscaler_chart("9.53.0"), chart_app_version="1.34.2",
                                     image_tag="v1.34.5"),
    "1.35": ClusterAutoscalerRelease(chart=_autoscaler_chart("9.59.0"), chart_app_version="1.35.0",
                                     image_tag="v1.35.2"),
    "1.36": ClusterAutoscalerRelease(
        chart=_autoscaler_chart("9.59.0"), chart_app_version="1.35.0", image_tag="v1.36.1",
        chart_behind_because=(
            "no chart with appVersion 1.36 is released (9.59.0, 2026-07-21, is the newest tag and "
            "equals master; the bump is unmerged, kubernetes/autoscaler #10091 and #10169). The "
            "1.36.1 image starts the same informers as 1.35.2 with default flags (its new ones, "
            "capacity buffers and quotas, provisioning requests, are behind flags that default to "
            "false) and accepts every flag the 9.59.0 deployment template renders "
            "(config/flags/flags.go at cluster-autoscaler-1.36.1)"),
    ),
}
CLUSTER_AUTOSCALER_IMAGE = "registry.k8s.io/autoscaling/cluster-autoscaler"

# What each pinned chart's ClusterRole lets the autoscaler list and watch with the chart's
# defaults (rbac.create, rbac.clusterScoped, cloudProvider aws): (apiGroup, resource),
# transcribed from cluster-autoscaler/charts/cluster-autoscaler/templates/clusterrole.yaml at
# `cluster-autoscaler-chart-<version>`. Add the chart here when you pin a new one.
_CHART_READS_BEFORE_DRA = frozenset({
    ("", "namespaces"), ("", "pods"), ("", "services"), ("", "replicationcontrollers"),
    ("", "persistentvolumeclaims"), ("", "persistentvolumes"), ("", "nodes"), ("", "configmaps"),
    ("batch", "jobs"), ("batch", "cronjobs"), ("extensions", "replicasets"),
    ("extensions", "daemonsets"), ("policy", "poddisruptionbudgets"), ("apps", "daemonsets"),
    ("apps", "replicasets"), ("apps", "statefulsets"), ("storage.k8s.io", "storageclasses"),
    ("storage.k8s.io", "csinodes"), ("storage.k8s.io", "csidrivers"),
    ("storage.k8s.io", "csistoragecapacities"), ("storage.k8s.io", "volumeattachments"),
})
CLUSTER_AUTOSCALER_CHART_READS: dict[str, frozenset[tuple[str, str]]] = {
    # 9.52.1: the chart this project pinned before, kept to show why it could not stay.
    "9.52.1": _CHART_READS_BEFORE_DRA,
    "9.53.0": _CHART_READS_BEFORE_DRA,
    # 9.54.0 added resource.k8s.io (commit d4a3ca1d9b "update k8s deps to 1.35.0-rc.0"), 9.57.0
    # podtemplates and provisioningrequests, 9.59.0 capacity buffers/quotas and apps/deployments.
    "9.59.0": _CHART_READS_BEFORE_DRA | {
        ("resource.k8s.io", "resourceslices"), ("resource.k8s.io", "deviceclasses"),
        ("resource.k8s.io", "resourceclaims"), ("", "podtemplates"), ("apps", "deployments"),
        ("autoscaling.x-k8s.io", "provisioningrequests"),
        ("autoscaling.x-k8s.io", "capacitybuffers"), ("autoscaling.x-k8s.io", "capacityquotas"),
    },
}

# What the image of each minor lists and watches with its default flags before its loop starts
# (it blocks in informerFactory.WaitForCacheSync, main.go): the listers of
# utils/kubernetes/listers.go, the CSINode provider, the scheduler framework's volume and
# topology plugins, and from 1.35 the DRA provider (simulator/dynamicresources/provider/
# provider.go: resource.k8s.io/v1 ResourceClaims, ResourceSlices, DeviceClasses).
_IMAGE_READS_BEFORE_DRA = frozenset({
    ("", "pods"), ("", "nodes"), ("", "replicationcontrollers"), ("", "services"),
    ("", "namespaces"), ("", "persistentvolumeclaims"), ("", "persistentvolumes"),
    ("policy", "poddisruptionbudgets"), ("apps", "daemonsets"), ("apps", "replicasets"),
    ("apps", "statefulsets"), ("batch", "jobs"), ("storage.k8s.io", "csinodes"),
    ("storage.k8s.io", "storageclasses"), ("storage.k8s.io", "csidrivers"),
    ("storage.k8s.io", "csistoragecapacities"),
    # The scheduler's volume-limits plugin (kubernetes/kubernetes #127757, in 1.34 and later).
    ("storage.k8s.io", "volumeattachments"),
})
_DRA_READS = frozenset({
    ("resource.k8s.io", "resourceclaims"), ("resource.k8s.io", "resourceslices"),
    ("resource.k8s.io", "deviceclasses"),
})
CLUSTER_AUTOSCALER_IMAGE_READS: dict[str, frozenset[tuple[str, str]]] = {
    "1.34": _IMAGE_READS_BEFORE_DRA,
    "1.35": _IMAGE_READS_BEFORE_DRA | _DRA_READS,
    # cluster-autoscaler-1.36.1: the same informers (builder/ now assembles them, main.go still
    # waits for their sync).
    "1.36": _IMAGE_READS_BEFORE_DRA | _DRA_READS,
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

# Karpenter (aws/karpenter-provider-aws v1.14.1): the controller chart and the chart of its CRDs,
# both published at the release's version to oci://public.ecr.aws/karpenter
# (hack/release/common.sh). The CRDs get their own release because Helm installs a chart's
# crds/ only once and never upgrades them (website v1.14 upgrading/upgrade-guide.md).
KARPENTER_VERSION = "1.14.1"
KARPENTER = HelmChart(chart="karpenter", version=KARPENTER_VERSION,
                      repository="oci://public.ecr.aws/karpenter")
KARPENTER_CRD = HelmChart(chart="karpenter-crd", version=KARPENTER_VERSION,
                          repository="oci://public.ecr.aws/karpenter")
# The Kubernetes minors Karpenter 1.14.x supports (hack/docs/compatibilitymatrix_gen/
# compatibility.yaml at v1.14.1: appVersion 1.14.x, minK8sVersion 1.26, maxK8sVersion 1.36).
KARPENTER_KUBERNETES = ("1.26", "1.36")
# The node images of Karpenter GPU groups, as EC2NodeClass AMI aliases pinned to a release (not
# `latest`: nodes then change only with this file). Karpenter resolves an alias through the
# SSM parameters of the cluster's Kubernetes minor, and for AL2023 picks the nvidia variant for
# GPU instance types (pkg/providers/amifamily/al2023.go, types.go at v1.14.1).
# - AL2023: awslabs/amazon-eks-ami release v20260903, whose release page lists
#   amazon-eks-node-al2023-x86_64-nvidia-1.36-v20260903 (and the 1.34 and 1.35 builds).
# - Bottlerocket: release 1.68.1; aws-k8s-1.36-nvidia exists since 1.61.0 and 1.68.0 updated
#   Kubernetes 1.31 to 1.36 (release notes). Newer releases were seen (v20261119, 1.69.0 as a
#   pre-release) without a page naming their 1.36 NVIDIA image; move after checking
#   `aws ssm get-parameter --name /aws/service/bottlerocket/aws-k8s-1.36-nvidia/x86_64/<v>/image_id`.
KARPENTER_NODE_AMIS = {
    "AL2023_x86_64_NVIDIA": "al2023@v20260903",
    "BOTTLEROCKET_x86_64_NVIDIA": "bottlerocket@1.68.1",
}

# KEDA (kedacore/charts v2.20.2 = kedacore/keda v2.20.2): the operator, its metrics API server
# and admission webhooks, with the CRDs as templates of the same chart (so `helm upgrade` moves
# them). Its ScaledObject and TriggerAuthentication CRDs are vendored (components/data/keda/,
# kedacore/keda v2.20.2 config/crd/bases/) to validate what the stack declares.
KEDA_VERSION = "2.20.2"
KEDA = HelmChart(chart="keda", version=KEDA_VERSION, repository="https://kedacore.github.io/charts")
# The Kubernetes minors KEDA 2.20 is tested on (keda-docs content/docs/2.20/operate/cluster.md,
# "Kubernetes Compatibility": v1.33 - v1.35); the chart itself only requires >= 1.23.
KEDA_KUBERNETES = ("1.33", "1.35")
# The wake Job's container: it only has to exist (and sleep) while a model is woken by hand.
BUSYBOX_IMAGE = "docker.io/library/busybox:1.37.0"

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
