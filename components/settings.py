"""Typed settings for a whole stack, read once from the Pulumi stack configuration.

This module is the only reader of `pulumi.Config`. Structured values live in
`Pulumi.<stack>.yaml` under the project namespace with camelCase keys, e.g.::

    config:
      aws:region: us-east-1
      anythingllm:environment: dev
      anythingllm:network: {vpcCidr: 10.40.0.0/16, availabilityZones: [...]}
      anythingllm:cluster: {kubernetesVersion: "1.35", gpuNodeGroups: [...]}

Every model forbids unknown keys. Every error names the key path (for example
`cluster.gpuNodeGroups[0].instanceType`), the bad value and what is allowed, and is raised
by `load_settings` before `__main__.py` registers a single resource.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from .instance_types import GPU_FAMILIES, GPU_INSTANCE_TYPES, instance_family
from .versions import EKS_STANDARD_SUPPORT_ENDS

PROJECT_NAMESPACE = "anythingllm"

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy API).
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
    2557, 2922, 3288, 3653,
)
CONTROL_PLANE_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
GPU_AMI_TYPES = ("AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA")
SYSTEM_AMI_TYPES = ("AL2023_x86_64_STANDARD", "BOTTLEROCKET_x86_64")
MIN_GPU_DISK_GIB = 100  # vLLM images are ~10 GB compressed; model layers and logs need room
# EKS API: serviceIpv4Cidr must come from RFC 1918 space with a /12../24 prefix.
RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))

ROLE_ARN = re.compile(r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:role/[\w+=,.@/-]+$")
AZ_NAME = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$")
REGION_NAME = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
GROUP_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,18}[a-z0-9])?$")
TAG_KEY = re.compile(r"^[\w .:/=+\-@]{1,128}$")
VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")


class SettingsError(Exception):
    """The stack configuration is invalid; the message lists every problem found."""


class ConfigProblem(ValueError):
    """A validation failure at `path`, relative to the model that raised it."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path = path
        self.message = message


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        strict=False,
    )


def _cidr(value: str, key: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ConfigProblem(key, f"{value!r} is not a valid IPv4 CIDR block ({exc})") from None


def _within(inner: ipaddress.IPv4Network, outer: ipaddress.IPv4Network) -> bool:
    return inner.subnet_of(outer)


# --------------------------------------------------------------------------- network


class ExistingNetworkSettings(_Model):
    """Bring-your-own VPC: subnets are tagged for the cluster but never created."""

    vpc_id: str
    private_subnet_ids: list[str] = Field(min_length=1)
    public_subnet_ids: list[str] = Field(default_factory=list)

    @field_validator("vpc_id")
    @classmethod
    def _vpc_id(cls, value: str) -> str:
        if not VPC_ID.match(value):
            raise ConfigProblem("", f"{value!r} is not a VPC id (vpc- followed by 8 or 17 hex digits)")
        return value

    @model_validator(mode="after")
    def _subnet_ids(self) -> ExistingNetworkSettings:
        for key, ids in (("privateSubnetIds", self.private_subnet_ids),
                         ("publicSubnetIds", self.public_subnet_ids)):
            for index, subnet_id in enumerate(ids):
                if not SUBNET_ID.match(subnet_id):
                    raise ConfigProblem(
                        f"{key}[{index}]",
                        f"{subnet_id!r} is not a subnet id (subnet- followed by 8 or 17 hex digits)",
                    )
            if len(set(ids)) != len(ids):
                raise ConfigProblem(key, f"lists a subnet twice: {ids}")
        shared = set(self.private_subnet_ids) & set(self.public_subnet_ids)
        if shared:
            raise ConfigProblem("publicSubnetIds", f"{sorted(shared)} also listed as private")
        return self


class NetworkSettings(_Model):
    """A new VPC over 2-3 AZs (default) or an existing one (`existing`)."""

    vpc_cidr: str | None = None
    availability_zones: list[str] = Field(default_factory=list)
    nat_gateways: Literal["single", "perAz"] = "perAz"
    private_subnet_cidrs: list[str] | None = None
    public_subnet_cidrs: list[str] | None = None
    existing: ExistingNetworkSettings | None = None

    @model_validator(mode="after")
    def _shape(self) -> NetworkSettings:
        if self.existing is not None:
            own = {
                "vpcCidr": self.vpc_cidr,
                "privateSubnetCidrs": self.private_subnet_cidrs,
                "publicSubnetCidrs": self.public_subnet_cidrs,
                "availabilityZones": self.availability_zones or None,
            }
            for key, value in own.items():
                if value is not None:
                    raise ConfigProblem(
                        key, "cannot be combined with `existing`: an existing VPC brings its own "
                        "subnets; remove one of the two",
                    )
            return self

        if self.vpc_cidr is None:
            raise ConfigProblem("vpcCidr", "is required when no `existing` VPC is given")
        vpc = _cidr(self.vpc_cidr, "vpcCidr")
        if not 16 <= vpc.prefixlen <= 20:
            raise ConfigProblem(
                "vpcCidr", f"{self.vpc_cidr!r} has prefix /{vpc.prefixlen}; allowed /16 to /20 "
                "(pods take VPC addresses with the VPC CNI, so the VPC must be large)",
            )
        if not any(_within(vpc, block) for block in RFC1918):
            raise ConfigProblem("vpcCidr", f"{self.vpc_cidr!r} is not in RFC 1918 private space")

        zones = self.availability_zones
        if not 2 <= len(zones) <= 3:
            raise ConfigProblem(
                "availabilityZones", f"{zones} has {len(zones)} zones; allowed 2 or 3",
            )
        for index, zone in enumerate(zones):
            if not AZ_NAME.match(zone):
                raise ConfigProblem(
                    f"availabilityZones[{index}]",
                    f"{zone!r} is not an availability zone name (e.g. us-east-1a)",
                )
        if len(set(zones)) != len(zones):
            raise ConfigProblem("availabilityZones", f"{zones} lists a zone twice")

        for key, cidrs in (("privateSubnetCidrs", self.private_subnet_cidrs),
                           ("publicSubnetCidrs", self.public_subnet_cidrs)):
            if cidrs is not None and len(cidrs) != len(zones):
                raise ConfigProblem(
                    key, f"has {len(cidrs)} entries; it needs one per availability zone "
                    f"({len(zones)})",
                )
        subnets = self.subnet_plan()
        seen: list[tuple[str, ipaddress.IPv4Network]] = []
        for key, network in subnets:
            if not _within(network, vpc):
                raise ConfigProblem(key, f"{network} is outside vpcCidr {vpc}")
            for other_key, other in seen:
                if network.overlaps(other):
                    raise ConfigProblem(key, f"{network} overlaps {other_key} ({other})")
            seen.append((key, network))
        return self

    def subnet_plan(self) -> list[tuple[str, ipaddress.IPv4Network]]:
        """(config key, CIDR) of every subnet: configured ones, else carved from vpcCidr.

        The default gives each AZ a private subnet of a quarter of the VPC (pods use VPC
        addresses) and a small public subnet from the last quarter (only load balancers and
        NAT gateways live there).
        """
        vpc = _cidr(self.vpc_cidr or "", "vpcCidr")
        quarters = list(vpc.subnets(prefixlen_diff=2))
        default_private = quarters[: len(self.availability_zones)]
        default_public = list(quarters[3].subnets(prefixlen_diff=2))
        plan = []
        for kind, configured, default in (
            ("private", self.private_subnet_cidrs, default_private),
            ("public", self.public_subnet_cidrs, default_public),
        ):
            key = f"{kind}SubnetCidrs"
            for index in range(len(self.availability_zones)):
                if configured is not None:
                    plan.append((f"{key}[{index}]", _cidr(configured[index], f"{key}[{index}]")))
                else:
                    plan.append((f"{key}[{index}]", default[index]))
        return plan

    @property
    def private_cidrs(self) -> list[str]:
        return [str(net) for key, net in self.subnet_plan() if key.startswith("private")]

    @property
    def public_cidrs(self) -> list[str]:
        return [str(net) for key, net in self.subnet_plan() if key.startswith("public")]

    @property
    def zone_count(self) -> int:
        if self.existing is not None:
            return len(self.existing.private_subnet_ids)
        return len(self.availability_zones)


# --------------------------------------------------------------------------- cluster


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
    for index, instance_type in enumerate(value):
        if not INSTANCE_TYPE.match(instance_type):
            raise ConfigProblem(f"[{index}]", f"{instance_type!r} is not an EC2 instance type")
    if len(set(value)) != len(value):
        raise ConfigProblem(key, f"{value} lists an instance type twice")
    return value


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
        for index, instance_type in enumerate(value):
            if instance_family(instance_type) in GPU_FAMILIES:
                raise ConfigProblem(
                    f"[{index}]", f"{instance_type!r} is a GPU type; the system node group runs "
                    "add-ons and CPU workloads, declare GPU capacity in gpuNodeGroups",
                )
        return value


class GpuNodeGroupSettings(ScalingSettings):
    """A managed node group of NVIDIA GPU nodes, tainted so only GPU workloads land there."""

    name: str
    instance_types: list[str] = Field(min_length=1)
    ami_type: Literal["AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA"] = "AL2023_x86_64_NVIDIA"
    capacity_type: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"
    disk_size_gib: int = Field(default=200, ge=MIN_GPU_DISK_GIB, le=16384)
    min_size: int = Field(default=0, ge=0, le=450)
    desired_size: int = Field(default=0, ge=0, le=450)
    max_size: int = Field(default=2, ge=1, le=450)

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
        for index, instance_type in enumerate(value):
            if instance_type not in GPU_INSTANCE_TYPES:
                family = instance_family(instance_type)
                allowed = ", ".join(GPU_FAMILIES)
                detail = (
                    f"sizes of {family}: {', '.join(sorted(GPU_FAMILIES[family]))}"
                    if family in GPU_FAMILIES else f"allowed families: {allowed}"
                )
                raise ConfigProblem(
                    f"[{index}]", f"{instance_type!r} is not an NVIDIA GPU instance type "
                    f"({detail})",
                )
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
    addon_versions: dict[
        Literal["vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent"], str
    ] = Field(default_factory=dict)
    system_node_group: SystemNodeGroupSettings = Field(default_factory=SystemNodeGroupSettings)
    gpu_node_groups: list[GpuNodeGroupSettings] = Field(default_factory=list)

    @field_validator("kubernetes_version", mode="before")
    @classmethod
    def _version_string(cls, value: Any) -> Any:
        if isinstance(value, float):
            # YAML reads 1.30 as the float 1.3: refuse rather than guess.
            raise ConfigProblem("", f"{value!r} is a number; quote it, e.g. \"1.35\"")
        return value

    @field_validator("admin_role_arns")
    @classmethod
    def _role_arns(cls, value: list[str]) -> list[str]:
        for index, arn in enumerate(value):
            if not ROLE_ARN.match(arn):
                raise ConfigProblem(
                    f"[{index}]", f"{arn!r} is not an IAM role ARN "
                    "(arn:aws:iam::<12-digit account>:role/<name>)",
                )
        return value

    @field_validator("public_access_cidrs")
    @classmethod
    def _public_cidrs(cls, value: list[str]) -> list[str]:
        for index, cidr in enumerate(value):
            _cidr(cidr, f"[{index}]")
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ConfigProblem("", f"{value} is not a CloudWatch retention; allowed {LOG_RETENTION_DAYS}")
        return value

    @field_validator("service_ipv4_cidr")
    @classmethod
    def _service_cidr(cls, value: str) -> str:
        network = _cidr(value, "")
        if not any(_within(network, block) for block in RFC1918) or not 12 <= network.prefixlen <= 24:
            raise ConfigProblem(
                "", f"{value!r} must be inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16 "
                "with a prefix between /12 and /24 (EKS API rule)",
            )
        return value

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


# --------------------------------------------------------------------------- stack


class StackSettings(_Model):
    """The whole stack: identity, environment, network and cluster."""

    project: str
    stack: str
    region: str
    environment: Literal["dev", "staging", "prod"]
    tags: dict[str, str] = Field(default_factory=dict)
    network: NetworkSettings
    cluster: ClusterSettings

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not REGION_NAME.match(value):
            raise ConfigProblem("", f"{value!r} is not an AWS region name (e.g. us-east-1)")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not TAG_KEY.match(key) or key.lower().startswith("aws:"):
                raise ConfigProblem(
                    f"[{key!r}]", "tag keys are 1-128 characters of letters, digits, spaces and "
                    "_.:/=+-@, and must not start with aws:",
                )
        return value

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    @property
    def deletion_protection(self) -> bool:
        explicit = self.cluster.deletion_protection
        return self.is_prod if explicit is None else explicit

    @model_validator(mode="after")
    def _cross_checks(self) -> StackSettings:
        network, cluster = self.network, self.cluster
        for index, zone in enumerate(network.availability_zones):
            if not zone.startswith(self.region) or len(zone) != len(self.region) + 1:
                raise ConfigProblem(
                    f"network.availabilityZones[{index}]",
                    f"{zone!r} is not a zone of region {self.region!r}",
                )
        if network.vpc_cidr is not None:
            vpc = ipaddress.ip_network(network.vpc_cidr)
            service = ipaddress.ip_network(cluster.service_ipv4_cidr)
            if vpc.overlaps(service):
                raise ConfigProblem(
                    "cluster.serviceIpv4Cidr",
                    f"{service} overlaps network.vpcCidr {vpc}; Service IPs must not collide "
                    "with node and pod addresses",
                )
        if self.is_prod:
            if network.zone_count < 2:
                raise ConfigProblem(
                    "network.existing.privateSubnetIds",
                    f"prod needs subnets in at least 2 availability zones; got {network.zone_count}",
                )
            if network.existing is None and network.nat_gateways != "perAz":
                raise ConfigProblem(
                    "network.natGateways",
                    f"{network.nat_gateways!r} is not allowed in prod: a single NAT gateway "
                    "is a single-AZ point of failure; use 'perAz'",
                )
            if "0.0.0.0/0" in cluster.public_access_cidrs:
                raise ConfigProblem(
                    "cluster.publicAccessCidrs",
                    "'0.0.0.0/0' is not allowed in prod; list the CIDRs of your CI runners and "
                    "VPN, or leave it empty for a private-only endpoint",
                )
            if cluster.deletion_protection is False:
                raise ConfigProblem("cluster.deletionProtection", "cannot be false in prod")
            if cluster.system_node_group.min_size < 2:
                raise ConfigProblem(
                    "cluster.systemNodeGroup.minSize",
                    f"{cluster.system_node_group.min_size} is below 2; prod keeps add-ons on "
                    "at least two nodes",
                )
        if self.environment == "staging" and cluster.deletion_protection:
            raise ConfigProblem(
                "cluster.deletionProtection",
                "cannot be true for staging: throwaway stacks must destroy in one run",
            )
        return self


# --------------------------------------------------------------------------- loading


def check_kubernetes_version(version: str, today: dt.date) -> None:
    """Raise ConfigProblem unless `version` is an EKS version in standard support on `today`."""
    supported = {v: end for v, end in EKS_STANDARD_SUPPORT_ENDS.items() if end >= today}
    if version not in supported:
        known = EKS_STANDARD_SUPPORT_ENDS.get(version)
        why = (
            f"its standard support ended on {known.isoformat()}" if known
            else "it is not an EKS version this code knows"
        )
        allowed = ", ".join(f"{v} (until {end.isoformat()})" for v, end in supported.items())
        raise ConfigProblem(
            "cluster.kubernetesVersion", f"{version!r} is not allowed: {why}; allowed: {allowed}",
        )


def _format_loc(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif str(part).startswith("["):
            path += str(part)
        else:
            path += f".{part}" if path else str(part)
    return path


def _join(prefix: str, relative: str) -> str:
    if not relative:
        return prefix
    if relative.startswith("[") or not prefix:
        return prefix + relative
    return f"{prefix}.{relative}"


def _describe(error: Mapping[str, Any]) -> str:
    loc = tuple(part for part in error["loc"] if part not in {"function-after", "function-before"})
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, ConfigProblem):
        # Cross-field problems name their path relative to the model that found them.
        return f"{_join(_format_loc(loc), cause.path)}: {cause.message}"
    path = _format_loc(loc)
    if error["type"] == "extra_forbidden":
        return f"{path}: unknown key (check the spelling; keys are camelCase)"
    if error["type"] == "missing":
        return f"{path}: required key is missing"
    return f"{path}: {error['msg']} (got {json.dumps(error.get('input'), default=str)})"


def parse_settings(
    raw: Mapping[str, Any],
    *,
    project: str,
    stack: str,
    today: dt.date | None = None,
) -> StackSettings:
    """Validate the stack configuration `raw` (keys without namespace) into StackSettings.

    `raw` maps the project's config keys (`network`, `cluster`, ...) plus `aws:region` to
    their values. Raises SettingsError listing every problem, with its key path.
    """
    data = {key: value for key, value in raw.items() if key != "aws:region"}
    data.update(project=project, stack=stack, region=raw.get("aws:region"))
    try:
        settings = StackSettings.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors()]
        raise SettingsError(_report(stack, problems)) from None
    try:
        check_kubernetes_version(settings.cluster.kubernetes_version, today or dt.date.today())
    except ConfigProblem as problem:
        raise SettingsError(_report(stack, [f"{problem.path}: {problem.message}"])) from None
    return settings


def _report(stack: str, problems: list[str]) -> str:
    lines = "\n".join(f"  - {problem}" for problem in problems)
    return f"invalid configuration in Pulumi.{stack}.yaml:\n{lines}"


def read_raw_config() -> dict[str, Any]:
    """Every config value of this project's namespace plus `aws:region`, JSON decoded.

    Reads the whole config map (not only known keys) so that a misspelt top-level key is
    reported instead of silently ignored.
    """
    import pulumi
    from pulumi.runtime import config as runtime_config

    values: dict[str, Any] = {}
    all_keys = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    prefix = f"{PROJECT_NAMESPACE}:"
    for full_key, value in all_keys.items():
        if full_key.startswith(prefix):
            key = full_key[len(prefix):]
            values[key] = _decode(value)
    region = pulumi.Config("aws").get("region")
    if region is not None:
        values["aws:region"] = region
    return values


def _decode(value: Any) -> Any:
    # Pulumi hands every config value over as a string; structured values are JSON text.
    # Only those are decoded, so that a scalar such as "1.35" stays a string.
    if isinstance(value, str) and value.lstrip().startswith(("{", "[")):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def load_settings() -> StackSettings:
    """Read and validate this stack's configuration; the composition root calls this once."""
    import pulumi

    return parse_settings(
        read_raw_config(), project=pulumi.get_project(), stack=pulumi.get_stack(),
    )
