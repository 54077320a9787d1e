"""Observability settings: who is alerted, how long container logs stay, alarm thresholds.

Every threshold has a default that suits a production chat service; a stack overrides only
what it must. Log retention defaults per environment (`OBSERVABILITY_ENVIRONMENT_DEFAULTS`).
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from .base import ConfigProblem, _Model, log_retention

OBSERVABILITY_ENVIRONMENT_DEFAULTS: dict[str, dict[str, dict]] = {
    # Prod keeps the control plane's audit log a year (rules.PROD_MIN_AUDIT_LOG_DAYS).
    "prod": {"observability": {"containerLogRetentionDays": 90}, "cluster": {"logRetentionDays": 365}},
    "dev": {"observability": {"containerLogRetentionDays": 7}},
    "staging": {"observability": {"containerLogRetentionDays": 3}},
}
# An address SNS will accept for an email subscription (local@domain.tld, no spaces).
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
# RDS for PostgreSQL: max_connections = LEAST(DBInstanceClassMemory / 9531392, 5000).
RDS_BYTES_PER_CONNECTION = 9531392
RDS_MAX_CONNECTIONS = 5000
# Memory (GiB) of the general-purpose (m), burstable (t) and memory-optimised (r, twice m)
# RDS classes by size; other families need `thresholds.databaseConnections` set explicitly.
_GENERAL_PURPOSE_GIB = {"micro": 1, "small": 2, "medium": 4, "large": 8, "xlarge": 16, "2xlarge": 32,
                        "4xlarge": 64, "8xlarge": 128, "12xlarge": 192, "16xlarge": 256,
                        "24xlarge": 384}
_DB_CLASS = re.compile(r"^db\.(?P<family>[mrt])\d+[a-z]*\.(?P<size>[0-9]*x?large|micro|small|medium)$")


def database_memory_gib(instance_class: str) -> int | None:
    """Memory of an RDS class of the m, r or t families, else None."""
    match = _DB_CLASS.match(instance_class)
    if match is None or match["size"] not in _GENERAL_PURPOSE_GIB:
        return None
    memory = _GENERAL_PURPOSE_GIB[match["size"]]
    return memory * 2 if match["family"] == "r" else memory


def max_connections(instance_class: str) -> int | None:
    """RDS PostgreSQL's default max_connections for the class (an upper bound: the formula uses
    the memory left to the database, slightly less than the class's), or None if unknown."""
    memory = database_memory_gib(instance_class)
    if memory is None:
        return None
    return min(memory * 2**30 // RDS_BYTES_PER_CONNECTION, RDS_MAX_CONNECTIONS)


class AlarmThresholds(_Model):
    """When each alarm fires. Periods are 5 minutes; an alarm fires after `evaluationPeriods`
    consecutive breaching periods (the GPU alarm after `gpuPendingMinutes`)."""

    evaluation_periods: int = Field(default=3, ge=1, le=24)
    # ALB: share of requests answered 5xx (by targets or by the ALB itself), counted only in
    # periods with at least `alb5xxMinRequests` requests, so one error at night does not page.
    alb_5xx_percent: float = Field(default=5, gt=0, le=100, alias="alb5xxPercent")
    alb_5xx_min_requests: int = Field(default=20, ge=1, alias="alb5xxMinRequests")
    alb_unhealthy_targets: int = Field(default=1, ge=1)
    # p95 of time to the response headers: a streamed answer sends them at once, so a high p95
    # means pods are saturated or the gateway is queueing.
    alb_target_response_seconds: float = Field(default=10, gt=0, le=4000)
    database_cpu_percent: float = Field(default=80, gt=0, le=100)
    database_free_storage_percent: float = Field(default=10, gt=0, lt=100)
    # Default: 80% of the class's max_connections (see `max_connections`).
    database_connections: int | None = Field(default=None, ge=1)
    cache_cpu_percent: float = Field(default=80, gt=0, le=100)
    cache_memory_percent: float = Field(default=80, gt=0, le=100)
    cache_evictions: int = Field(default=100, ge=0)
    # A GPU pod pending this long: its node group is at maxSize or has no capacity (spot).
    # Pulling a vLLM image onto a fresh node takes several minutes, hence the margin.
    gpu_pending_minutes: int = Field(default=30, ge=5, le=1440)


class ObservabilitySettings(_Model):
    """Container Insights, log retention, alarms and their recipients."""

    alarm_emails: list[str] = Field(default_factory=list)
    container_log_retention_days: int
    thresholds: AlarmThresholds = Field(default_factory=AlarmThresholds)

    @field_validator("alarm_emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        for index, address in enumerate(value):
            if not EMAIL.match(address):
                raise ConfigProblem(f"[{index}]", f"{address!r} is not an email address")
        if len(set(value)) != len(value):
            raise ConfigProblem("", "lists an address twice")
        return value

    @field_validator("container_log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return log_retention(value)

    def database_connections_threshold(self, instance_class: str) -> int | None:
        if self.thresholds.database_connections is not None:
            return self.thresholds.database_connections
        limit = max_connections(instance_class)
        return None if limit is None else limit * 8 // 10
