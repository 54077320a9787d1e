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

# IAM: a role name is 1-64 characters of [\w+=,.@-]; a path is / or /<segments>/, of printable
# ASCII (IAM's path pattern, (\u002F)|(\u002F[\u0021-\u007E]+\u002F)).
ROLE_ARN = re.compile(r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:role(/[\x21-\x2e\x30-\x7e]+)*/[\w+=,.@-]{1,64}$")
AZ_NAME = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$")
REGION_NAME = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
GROUP_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,18}[a-z0-9])?$")
TAG_KEY = re.compile(r"^[\w .:/=+\-@]{1,128}$")
# Tag values as the strictest consumer here accepts them (RDS, ElastiCache and EKS: letters,
# digits, spaces and _ . : / = + - @, at most 256 characters).
TAG_VALUE = re.compile(r"^[\w .:/=+\-@]{0,256}$")
VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")


class SettingsError(Exception):
    """The stack configuration is invalid; the message lists every problem found."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or []


class ConfigProblem(ValueError):
    """A validation failure at `path`, relative to the model that raised it."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path = path
        self.message = message


class ConfigProblems(ValueError):
    """Several validation failures found by one validator, reported together in order."""

    def __init__(self, problems: list[ConfigProblem]):
        super().__init__("; ".join(f"{problem.path}: {problem.message}" for problem in problems))
        self.problems = problems


def raise_all(problems: list[ConfigProblem]) -> None:
    """Raise `problems` (one, or all of them together); nothing when the list is empty."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ConfigProblems(problems)


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


def cidr_list(values: list[str]) -> list[str]:
    """`values` as canonical CIDR text (a bare address becomes /32, as net.ParseCIDR needs it
    written), every bad entry reported."""
    parsed, problems = [], []
    for index, value in enumerate(values):
        try:
            parsed.append(str(_cidr(value, f"[{index}]")))
        except ConfigProblem as problem:
            problems.append(problem)
    raise_all(problems)
    return parsed


def log_retention(value: int) -> int:
    """`value` if CloudWatch Logs accepts it as a retention period, else a ConfigProblem."""
    if value not in LOG_RETENTION_DAYS:
        raise ConfigProblem("", f"{value} is not a CloudWatch retention; allowed {LOG_RETENTION_DAYS}")
    return value


def with_environment_defaults(defaults: dict[str, dict[str, dict]], section: str,
                              environment: object, value: object) -> object:
    """`value` (a section of the raw config) with `defaults[environment][section]` filled in."""
    table = defaults.get(environment) if isinstance(environment, str) else None
    if table is None:
        return value  # the environment itself is invalid and is reported on its own
    if value is None:
        value = {}
    if not isinstance(value, dict):
        return value  # reported by the model as "not a mapping"
    return {**table.get(section, {}), **value}


def _within(inner: ipaddress.IPv4Network, outer: ipaddress.IPv4Network) -> bool:
    return inner.subnet_of(outer)


# --------------------------------------------------------------------------- time windows
# AWS writes maintenance windows as `ddd:hh24:mi-ddd:hh24:mi` (weekly, UTC) and backup or
# snapshot windows as `hh24:mi-hh24:mi` (daily, UTC).

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAILY_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
WEEKLY_WINDOW = re.compile(
    r"^(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)-"
    r"(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)$"
)
WEEK_MINUTES = 7 * 24 * 60


def daily_window(value: str, *, minimum_minutes: int) -> tuple[int, int]:
    """(start, length) in minutes of a daily `hh24:mi-hh24:mi` window; it may cross midnight."""
    match = DAILY_WINDOW.match(value)
    if match is None:
        raise ConfigProblem("", f"{value!r} is not a daily window; use hh24:mi-hh24:mi in UTC, "
                                "e.g. 03:00-04:00")
    start = int(match[1]) * 60 + int(match[2])
    end = int(match[3]) * 60 + int(match[4])
    length = (end - start) % (24 * 60)
    if length < minimum_minutes:
        raise ConfigProblem("", f"{value!r} lasts {length} minutes; AWS requires at least "
                                f"{minimum_minutes}")
    return start, length


def weekly_window(value: str, *, minimum_minutes: int) -> tuple[int, int]:
    """(start, length) in minutes of the week of a `ddd:hh24:mi-ddd:hh24:mi` window."""
    match = WEEKLY_WINDOW.match(value)
    if match is None:
        raise ConfigProblem("", f"{value!r} is not a weekly window; use ddd:hh24:mi-ddd:hh24:mi "
                                "in UTC, e.g. sun:04:30-sun:05:30")
    start = DAYS.index(match[1]) * 1440 + int(match[2]) * 60 + int(match[3])
    end = DAYS.index(match[4]) * 1440 + int(match[5]) * 60 + int(match[6])
    length = (end - start) % WEEK_MINUTES
    if length < minimum_minutes:
        raise ConfigProblem("", f"{value!r} lasts {length} minutes; AWS requires at least "
                                f"{minimum_minutes}")
    if length > 24 * 60:
        raise ConfigProblem("", f"{value!r} lasts {length} minutes; AWS allows at most 24 hours")
    return start, length


def daily_overlaps_weekly(daily: tuple[int, int], weekly: tuple[int, int]) -> bool:
    """Whether a window that repeats every day intersects a window that repeats every week."""
    weekly_start, weekly_length = weekly
    daily_start, daily_length = daily
    for day in range(8):  # one extra day: the weekly window may wrap into next week
        start = day * 1440 + daily_start
        for offset in (0, WEEK_MINUTES):
            other = weekly_start + offset
            if start < other + weekly_length and other < start + daily_length:
                return True
    return False
