"""Shared building blocks of the settings models: errors, the base model, CIDR helpers."""

from __future__ import annotations

import ipaddress
import re

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

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

