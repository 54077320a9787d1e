"""Cluster settings: the EKS control plane, its access and logging, and the node groups."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic.alias_generators import to_snake

from ..instance_types import (
    GPU_FAMILIES,
    GPU_INSTANCE_TYPES,
    INSTANCE_FACTS,
    architecture,
    instance_family,
)
from .base import (
    CONTROL_PLANE_LOG_TYPES,
    GROUP_NAME,
    INSTANCE_TYPE,
    MIN_GPU_DISK_GIB,
    RFC1918,
    ROLE_ARN,
    ConfigProblem,
    _cidr,
    _Model,
    _within,
    cidr_list,
    log_retention,
    raise_all,
)
from .kubernetes_version import supported_versions, version_problem

# The EKS add-ons every stack installs (cluster.py, shared_storage.py, observability.py).
MANAGED_ADDONS = ("vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent", "aws-efs-csi-driver",
                  "metrics-server", "amazon-cloudwatch-observability")
AddonName = Literal["vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent",
                    "aws-efs-csi-driver", "metrics-server", "amazon-cloudwatch-observability"]
# EKS add-on versions as `aws eks describe-addon-versions` lists them.
ADDON_VERSION = re.compile(r"^v\d+\.\d+\.\d+-eksbuild\.\d+$")
SNAPSHOT_ID = re.compile(r"^snap-([0-9a-f]{8}|[0-9a-f]{17})$")
# awslabs/amazon-eks-ami nodeadm/doc/examples.md ("Enabling fast image pull"): at least 600
# MiB/s of root volume throughput, or parallel pulls may be slower than serial ones.
FAST_PULL_MIN_THROUGHPUT_MIBPS = 600


class ScalingSettings(_Model):
    min_size: int = Field(ge=0, le=450)
    desired_size: int = Field(ge=0, le=450)
    max_size: int = Field(ge=1, le=450)

    @model_validator(mode="after")
    def _ordered(self) -> ScalingSettings:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ConfigProblem(
                "desiredSize",
                f"minSize <= desiredSize <= maxSize must hold; got {self.min_size} <= "
                f"{self.desired_size} <= {self.max_size}",
            )
        return self


def _instance_type_list(value: list[str], key: str = "") -> list[str]:
    raise_all([ConfigProblem(f"[{index}]", f"{instance_type!r} is not an EC2 instance type")
               for index, instance_type in enumerate(value) if not INSTANCE_TYPE.match(instance_type)])
    if len(set(value)) != len(value):
        raise ConfigProblem(key, f"{value} lists an instance type twice")
    return value


def _cpu_type_problem(instance_type: str) -> str | None:
    """Why `instance_type` cannot be a system node (x86_64 AMI types only), or None."""
    family = instance_family(instance_type)
    if family in GPU_FAMILIES:
        return (f"{instance_type!r} is a GPU type; the system node group runs add-ons and CPU "
                "workloads, declare GPU capacity in gpuNodeGroups")
    if architecture(instance_type) != "x86_64":
        return (f"{instance_type!r} is a Graviton (arm64) type, but the system node group's AMI "
                "types (AL2023_x86_64_STANDARD, BOTTLEROCKET_x86_64) are x86_64: EKS refuses a node "
                "group whose instance types do not match its AMI type")
    return None


class SystemNodeGroupSettings(ScalingSettings):
    """On-demand nodes for cluster add-ons, controllers and the (CPU) application pods."""

    instance_types: list[str] = Field(default_factory=lambda: ["m6i.large"], min_length=1)
    ami_type: Literal["AL2023_x86_64_STANDARD", "BOTTLEROCKET_x86_64"] = "AL2023_x86_64_STANDARD"
    disk_size_gib: int = Field(default=50, ge=20, le=16384)
    min_size: int = Field(default=2, ge=1, le=450)
    desired_size: int = Field(default=2, ge=1, le=450)
    max_size: int = Field(default=4, ge=1, le=450)

    @field_validator("instance_types")
    @classmethod
    def _types(cls, value: list[str]) -> list[str]:
        _instance_type_list(value)
        raise_all([ConfigProblem(f"[{index}]", problem) for index, problem in
                   enumerate(_cpu_type_problem(t) for t in value) if problem is not None])
        return value

    @property
    def unlisted_types(self) -> list[tuple[int, str]]:
        """(index, type) of the types outside the instance table: accepted, not sized."""
        return [(index, t) for index, t in enumerate(self.instance_types) if t not in INSTANCE_FACTS]


class GpuSharingSettings(_Model):
    """Each physical GPU of the group advertised as `replicas` GPUs (`nvidia.com/gpu`) by the
    NVIDIA device plugin's time-slicing: pods take turns on the GPU's compute, with no memory
    isolation between them, so the models placed there must split its memory themselves
    (`gpuMemoryUtilization`, checked in rules.py)."""

    strategy: Literal["time-slicing"] = "time-slicing"
    replicas: int = Field(ge=2, le=8)


class GpuNodeGroupSettings(ScalingSettings):
    """A group of NVIDIA GPU nodes, tainted so only GPU workloads land there.

    `engine: karpenter` (the default): a Karpenter NodePool and EC2NodeClass; nodes are launched
    for pending pods and removed when empty, `maxSize` caps the group's nodes (as a GPU limit),
    and `capacityType: SPOT` lets Karpenter take Spot first and On-Demand when no Spot offering
    of the listed types is available. `engine: managed`: an EKS managed node group scaled by the
    Cluster Autoscaler, for reserved capacity (Capacity Blocks, ODCRs) or a fixed floor of nodes
    (`minSize`).
    """

    name: str
    engine: Literal["karpenter", "managed"] = "karpenter"
    instance_types: list[str] = Field(min_length=1)
    ami_type: Literal["AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA"] = "AL2023_x86_64_NVIDIA"
    capacity_type: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"
    disk_size_gib: int = Field(default=200, ge=MIN_GPU_DISK_GIB, le=16384)
    # gp3 beyond its baseline (125 MiB/s, 3000 IOPS): vLLM's image is ~12 GB compressed and ~28
    # GB unpacked, written to this volume on every new node (README, "Cold starts"). The default
    # is 500, or FAST_PULL_MIN_THROUGHPUT_MIBPS where fastImagePull is on (_volume_defaults).
    disk_throughput_mibps: int = Field(default=500, ge=125, le=1000)
    disk_iops: int = Field(default=6000, ge=3000, le=16000)
    # SOCI parallel pull and unpack (the nodeadm feature gate FastImagePull on AL2023, the
    # `soci` snapshotter in parallel-pull-unpack mode on Bottlerocket). Default: on for
    # Karpenter groups without an image cache snapshot (_volume_defaults).
    fast_image_pull: bool = False
    # An EBS snapshot of a Bottlerocket data volume with the vLLM image already pulled
    # (aws-samples/bottlerocket-images-cache): every new node starts with the image on disk.
    image_cache_snapshot_id: str | None = None
    # EBS Provisioned Rate for Volume Initialization of the snapshot's blocks, MiB/s (the
    # EC2NodeClass `volumeInitializationRate`, 100-300): without it a new volume loads them from
    # S3 on first read.
    image_cache_init_mibps: int | None = Field(default=None, ge=100, le=300)
    # Small models sharing a GPU (dev's embedder beside its chat model): time-slicing.
    gpu_sharing: GpuSharingSettings | None = None
    min_size: int = Field(default=0, ge=0, le=450)
    desired_size: int = Field(default=0, ge=0, le=450)
    max_size: int = Field(default=2, ge=1, le=450)

    @model_validator(mode="before")
    @classmethod
    def _volume_defaults(cls, data: Any) -> Any:
        """The defaults that depend on other keys: fast image pull on for a Karpenter group
        without an image cache snapshot, and then 600 MiB/s of volume throughput unless set."""
        if not isinstance(data, dict):
            return data

        def given(key: str) -> str | None:
            return next((k for k in (key, to_snake(key)) if k in data), None)

        data = dict(data)
        pull_key = given("fastImagePull")
        if pull_key is None:
            data["fastImagePull"] = (data.get(given("engine") or "engine", "karpenter") == "karpenter"
                                     and data.get(given("imageCacheSnapshotId") or "-") is None)
        if data.get(pull_key or "fastImagePull") is True and given("diskThroughputMibps") is None:
            data["diskThroughputMibps"] = FAST_PULL_MIN_THROUGHPUT_MIBPS
        return data

    @model_validator(mode="after")
    def _engine_and_volume(self) -> GpuNodeGroupSettings:
        problems = []
        problems += self._image_pull_problems()
        if self.engine == "karpenter":
            for key, value in (("minSize", self.min_size), ("desiredSize", self.desired_size)):
                if value:
                    problems.append(ConfigProblem(
                        key, f"is {value}, but with engine 'karpenter' nodes follow the pods: "
                        "keep a model warm with its replicas (modelServing.models[].replicas), "
                        "or use engine 'managed' for a fixed floor of nodes"))
        # EBS user guide, "General Purpose SSD volumes": gp3 gives at most 0.25 MiB/s per
        # provisioned IOPS, and at most 500 IOPS per GiB.
        if self.disk_throughput_mibps * 4 > self.disk_iops:
            problems.append(ConfigProblem(
                "diskThroughputMibps", f"{self.disk_throughput_mibps} MiB/s needs at least "
                f"{self.disk_throughput_mibps * 4} diskIops (gp3 allows 0.25 MiB/s per IOPS); "
                f"diskIops is {self.disk_iops}"))
        if self.disk_iops > 500 * self.disk_size_gib:
            problems.append(ConfigProblem(
                "diskIops", f"{self.disk_iops} exceeds gp3's 500 IOPS per GiB of a "
                f"{self.disk_size_gib} GiB volume"))
        raise_all(problems)
        return self

    def _image_pull_problems(self) -> list[ConfigProblem]:
        problems = []
        if self.fast_image_pull and self.engine == "managed":
            problems.append(ConfigProblem(
                "fastImagePull", "is only for engine 'karpenter': a managed group's nodes boot with "
                "EKS's user data, which this stack does not extend"))
        if self.image_cache_init_mibps is not None and self.image_cache_snapshot_id is None:
            problems.append(ConfigProblem(
                "imageCacheInitMibps", "needs imageCacheSnapshotId: it is the rate at which a "
                "new volume loads that snapshot's blocks"))
        if self.gpu_sharing is not None and self.engine != "karpenter":
            problems.append(ConfigProblem(
                "gpuSharing", "is only for engine 'karpenter': a managed group's nodes boot with "
                "EKS's user data and are scaled from zero on the autoscaler's one-GPU template"))
        snapshot = self.image_cache_snapshot_id
        if snapshot is not None:
            if not SNAPSHOT_ID.match(snapshot):
                problems.append(ConfigProblem(
                    "imageCacheSnapshotId", f"{snapshot!r} is not an EBS snapshot id "
                    "(snap- and 8 or 17 hex digits)"))
            if self.engine != "karpenter" or not self.ami_type.startswith("BOTTLEROCKET"):
                problems.append(ConfigProblem(
                    "imageCacheSnapshotId", "needs engine 'karpenter' and amiType "
                    "'BOTTLEROCKET_x86_64_NVIDIA': only Bottlerocket keeps images on a separate "
                    "data volume that a snapshot can seed"))
            if self.fast_image_pull:
                problems.append(ConfigProblem(
                    "fastImagePull", "must be false with imageCacheSnapshotId: Bottlerocket empties "
                    "the image store when a node boots with another snapshotter than the one the "
                    "snapshot was taken with (bottlerocket-images-cache pulls with the default)"))
        return problems

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not GROUP_NAME.match(value):
            raise ConfigProblem(
                "", f"{value!r} is not allowed; use 1-20 lowercase letters, digits and '-', "
                "starting with a letter (it becomes a node label value and part of AWS names)",
            )
        return value

    @field_validator("instance_types")
    @classmethod
    def _types(cls, value: list[str]) -> list[str]:
        _instance_type_list(value)
        problems = []
        for index, instance_type in enumerate(value):
            if instance_type not in GPU_INSTANCE_TYPES:
                family = instance_family(instance_type)
                allowed = ", ".join(GPU_FAMILIES)
                detail = (
                    f"sizes of {family}: {', '.join(sorted(GPU_FAMILIES[family]))}"
                    if family in GPU_FAMILIES else f"allowed families: {allowed}"
                )
                arch = INSTANCE_FACTS[instance_type].arch if instance_type in INSTANCE_FACTS else None
                why = ("; the NVIDIA AMI types are x86_64, and EKS refuses a node group whose "
                       "types do not match its AMI type" if arch == "arm64" else "")
                problems.append(ConfigProblem(
                    f"[{index}]", f"{instance_type!r} is not an NVIDIA GPU instance type "
                    f"({detail}){why}"))
        raise_all(problems)
        counts = {GPU_INSTANCE_TYPES[t].gpus for t in value}
        if len(counts) > 1:
            # The autoscaler builds one node template per group: mixed GPU counts would make
            # its scale-up decisions (and pods' GPU limits) wrong for some nodes.
            raise ConfigProblem(
                "", f"{value} mix GPU counts {sorted(counts)}; a group's types must have the "
                "same number of GPUs",
            )
        return value

    @property
    def gpus_per_node(self) -> int:
        return GPU_INSTANCE_TYPES[self.instance_types[0]].gpus

    @property
    def slices_per_gpu(self) -> int:
        """How many `nvidia.com/gpu` each physical GPU advertises: 1, or the time-slicing
        replicas."""
        return self.gpu_sharing.replicas if self.gpu_sharing is not None else 1

    @property
    def slices_per_node(self) -> int:
        return self.gpus_per_node * self.slices_per_gpu


class ClusterSettings(_Model):
    """EKS control plane, its access and logging, and the node groups."""

    kubernetes_version: str
    support_type: Literal["STANDARD", "EXTENDED"] = "STANDARD"
    admin_role_arns: list[str] = Field(min_length=1)
    public_access_cidrs: list[str] = Field(default_factory=list)
    service_ipv4_cidr: str = "172.20.0.0/16"
    log_types: list[Literal["api", "audit", "authenticator", "controllerManager", "scheduler"]] = (
        Field(default_factory=lambda: list(CONTROL_PLANE_LOG_TYPES))
    )
    log_retention_days: int = 30
    deletion_protection: bool | None = None
    addon_versions: dict[AddonName, str] = Field(default_factory=dict)
    system_node_group: SystemNodeGroupSettings = Field(default_factory=SystemNodeGroupSettings)
    gpu_node_groups: list[GpuNodeGroupSettings] = Field(default_factory=list)

    @field_validator("kubernetes_version", mode="before")
    @classmethod
    def _version_string(cls, value: Any) -> Any:
        if isinstance(value, float):
            # YAML reads 1.30 as the float 1.3: refuse rather than guess.
            raise ConfigProblem("", f"{value!r} is a number; quote it, e.g. \"{supported_versions()[-1]}\"")
        return value

    @field_validator("kubernetes_version")
    @classmethod
    def _version(cls, value: str) -> str:
        problem = version_problem(value)
        if problem is not None:
            raise ConfigProblem("", problem)
        return value

    @field_validator("admin_role_arns")
    @classmethod
    def _role_arns(cls, value: list[str]) -> list[str]:
        raise_all([ConfigProblem(f"[{index}]", f"{arn!r} is not an IAM role ARN "
                                               "(arn:aws:iam::<12-digit account>:role/<path/><name>, "
                                               "the name 1-64 characters of letters, digits and +=,.@_-)")
                   for index, arn in enumerate(value) if not ROLE_ARN.match(arn)])
        return value

    @field_validator("public_access_cidrs")
    @classmethod
    def _public_cidrs(cls, value: list[str]) -> list[str]:
        # Rendered as parsed: a bare address is a /32 for Python but not for every consumer.
        return cidr_list(value)

    @field_validator("addon_versions")
    @classmethod
    def _addon_versions(cls, value: dict[str, str]) -> dict[str, str]:
        for addon, version in value.items():
            if not ADDON_VERSION.match(version):
                raise ConfigProblem(addon, f"{version!r} is not an EKS add-on version; use "
                                           "v<major>.<minor>.<patch>-eksbuild.<n>, e.g. v1.19.2-eksbuild.1 "
                                           "(aws eks describe-addon-versions --addon-name " + addon + ")")
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return log_retention(value)

    @field_validator("service_ipv4_cidr")
    @classmethod
    def _service_cidr(cls, value: str) -> str:
        network = _cidr(value, "")
        if not any(_within(network, block) for block in RFC1918) or not 12 <= network.prefixlen <= 24:
            raise ConfigProblem(
                "", f"{value!r} must be inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16 "
                "with a prefix between /12 and /24 (EKS API rule)",
            )
        return str(network)

    @model_validator(mode="after")
    def _groups(self) -> ClusterSettings:
        names = [group.name for group in self.gpu_node_groups]
        for index, name in enumerate(names):
            if names.index(name) != index:
                raise ConfigProblem(f"gpuNodeGroups[{index}].name", f"{name!r} is used twice")
        return self

    @property
    def gpu_node_group_by_name(self) -> dict[str, GpuNodeGroupSettings]:
        return {group.name: group for group in self.gpu_node_groups}

