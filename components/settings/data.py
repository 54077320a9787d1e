"""Settings of the stateful services: EFS shared storage, RDS PostgreSQL, ElastiCache.

Fields whose safe value depends on the environment (backups, Multi-AZ, deletion protection,
replica counts, instance sizes) have no default here: `ENVIRONMENT_DEFAULTS` fills in what a
stack file leaves out, and `StackSettings` then checks the result against the environment's
rules (for example, prod backups of at least 14 days). An explicit value always wins, and an
explicit unsafe value in prod is an error, never silently raised.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .base import (
    ConfigProblem,
    _Model,
    daily_overlaps_weekly,
    daily_window,
    log_retention,
    weekly_window,
)

DB_INSTANCE_CLASS = re.compile(r"^db\.[a-z][a-z0-9-]*\.[a-z0-9]+$")
CACHE_NODE_TYPE = re.compile(r"^cache\.[a-z][a-z0-9-]*\.[a-z0-9]+$")
# Burstable classes run out of CPU credits under sustained load: fine for dev, not for prod.
BURSTABLE_DB = re.compile(r"^db\.t\d+[a-z]*\.")
BURSTABLE_CACHE = re.compile(r"^cache\.t\d+[a-z]*\.")
# RDS for PostgreSQL has no Performance Insights on the two smallest burstable sizes.
NO_PERFORMANCE_INSIGHTS = re.compile(r"^db\.t\d+[a-z]*\.(micro|small)$")
# pgvector ships with every RDS PostgreSQL 16 and 17 release (it needs 15.2 or later).
POSTGRES_MAJORS = ("16", "17")
POSTGRES_VERSION = re.compile(rf"^({'|'.join(POSTGRES_MAJORS)})(\.\d{{1,2}})?$")
# ElastiCache engine versions this code accepts, newest first: the first is the default.
CACHE_ENGINE_VERSIONS: dict[str, tuple[str, ...]] = {
    "valkey": ("8.1", "8.0", "7.2"),
    "redis": ("7.1", "7.0"),
}
EFS_TRANSITION_DAYS = (1, 7, 14, 30, 60, 90, 180, 270, 365)

ENVIRONMENT_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "prod": {
        # Backed up by AWS Backup (backup.enabled); EFS's own automatic backups would be a second
        # job on the same file system.
        "storage": {"backups": False},
        "database": {"instanceClass": "db.m7g.large", "multiAz": True,
                     "backupRetentionDays": 14, "deletionProtection": True,
                     "logRetentionDays": 365, "enhancedMonitoringSeconds": 60,
                     "applyImmediately": False},
        "cache": {"nodeType": "cache.m7g.large", "replicas": 1, "snapshotRetentionDays": 7},
    },
    "dev": {
        "storage": {"backups": False},
        "database": {"instanceClass": "db.t4g.medium", "multiAz": False,
                     "backupRetentionDays": 1, "deletionProtection": False,
                     "enhancedMonitoringSeconds": 0, "applyImmediately": True},
        "cache": {"nodeType": "cache.t4g.small", "replicas": 0, "snapshotRetentionDays": 0},
    },
}
ENVIRONMENT_DEFAULTS["staging"] = ENVIRONMENT_DEFAULTS["dev"]


class StorageSettings(_Model):
    """EFS shared storage for documents and the model-weight cache."""

    transition_to_ia_days: Literal[1, 7, 14, 30, 60, 90, 180, 270, 365] | None = 30
    backups: bool


class DatabaseSettings(_Model):
    """RDS for PostgreSQL: AnythingLLM's database and vector store, and LiteLLM's database."""

    engine_version: str = "17"
    instance_class: str
    allocated_storage_gib: int = Field(default=20, ge=20, le=65536)
    max_allocated_storage_gib: int | None = Field(default=100, le=65536)
    multi_az: bool
    backup_retention_days: int = Field(ge=1, le=35)
    backup_window: str = "03:00-04:00"
    maintenance_window: str = "sun:04:30-sun:05:30"
    performance_insights: bool = True
    deletion_protection: bool
    log_retention_days: int = 30
    # RDS Enhanced Monitoring: OS metrics every N seconds (0 = off; RDS takes 1, 5, 10, 15, 30
    # and 60). No default here: the environment's (prod 60).
    enhanced_monitoring_seconds: Literal[0, 1, 5, 10, 15, 30, 60]
    # Changes that RDS applies with downtime (a class, a major version) apply at once, or in
    # the maintenance window (prod's default).
    apply_immediately: bool
    # During a major upgrade: the major the instance runs until RDS has upgraded it. Its
    # parameter group is kept until then (README, "PostgreSQL major upgrades").
    upgrading_from: str | None = None

    @field_validator("upgrading_from", mode="before")
    @classmethod
    def _upgrading_from(cls, value: Any) -> Any:
        if isinstance(value, int | float):
            raise ConfigProblem("", f"{value!r} is a number; quote it, e.g. \"16\"")
        if isinstance(value, str) and value not in POSTGRES_MAJORS:
            raise ConfigProblem("", f"{value!r} is not a PostgreSQL major this code deploys "
                                    f"({', '.join(POSTGRES_MAJORS)})")
        return value

    @field_validator("engine_version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        if isinstance(value, int | float):
            raise ConfigProblem("", f"{value!r} is a number; quote it, e.g. \"17\"")
        if isinstance(value, str) and not POSTGRES_VERSION.match(value):
            raise ConfigProblem(
                "", f"{value!r} is not allowed; use \"16\" or \"17\" (optionally with a minor, "
                "e.g. \"17.6\"): RDS PostgreSQL versions that ship pgvector",
            )
        return value

    @field_validator("instance_class")
    @classmethod
    def _instance_class(cls, value: str) -> str:
        if not DB_INSTANCE_CLASS.match(value):
            raise ConfigProblem("", f"{value!r} is not an RDS instance class (e.g. db.m7g.large)")
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return log_retention(value)

    @model_validator(mode="after")
    def _consistent(self) -> DatabaseSettings:
        maximum = self.max_allocated_storage_gib
        minimum = -(-self.allocated_storage_gib * 11 // 10)  # ceil(1.1 x), in integers
        if maximum is not None and maximum < minimum:
            raise ConfigProblem(
                "maxAllocatedStorageGib",
                f"{maximum} must be at least 10% above allocatedStorageGib "
                f"({self.allocated_storage_gib}), i.e. >= {minimum}; or null to turn storage "
                "autoscaling off",
            )
        if self.performance_insights and NO_PERFORMANCE_INSIGHTS.match(self.instance_class):
            raise ConfigProblem(
                "performanceInsights",
                f"is not available on {self.instance_class}; use db.t4g.medium or larger, or "
                "set performanceInsights: false",
            )
        _disjoint_windows("backupWindow", self.backup_window, self.maintenance_window,
                          minimum_minutes=30, service="RDS")
        if self.upgrading_from is not None and int(self.upgrading_from) >= int(self.major_version):
            raise ConfigProblem(
                "upgradingFrom",
                f"{self.upgrading_from!r} is not older than engineVersion {self.engine_version!r}: "
                "it names the major the instance runs before a major upgrade; remove it once "
                "the instance runs engineVersion's major")
        return self

    @property
    def parameter_group_majors(self) -> list[str]:
        """The majors whose parameter groups exist: the engine's, and during a major upgrade the
        one the instance still runs (RDS refuses to delete a group an instance uses, and in the
        maintenance window the instance uses the old one until the window)."""
        return sorted({self.major_version, *([self.upgrading_from] if self.upgrading_from else [])},
                      key=int)

    @property
    def major_version(self) -> str:
        return self.engine_version.split(".")[0]

    @property
    def parameter_group_family(self) -> str:
        return f"postgres{self.major_version}"


class CacheSettings(_Model):
    """ElastiCache (Valkey or Redis OSS): LiteLLM's shared rate limits, budgets and cache."""

    engine: Literal["valkey", "redis"] = "valkey"
    engine_version: str | None = None
    node_type: str
    cluster_mode: Literal["disabled", "enabled"] = "disabled"
    shards: int = Field(default=1, ge=1, le=90)
    replicas: int = Field(ge=0, le=5)
    snapshot_retention_days: int = Field(ge=0, le=35)
    snapshot_window: str = "05:00-06:00"
    maintenance_window: str = "sun:06:30-sun:07:30"

    @field_validator("engine_version", mode="before")
    @classmethod
    def _version_string(cls, value: Any) -> Any:
        if isinstance(value, int | float):
            raise ConfigProblem("", f"{value!r} is a number; quote it, e.g. \"8.1\"")
        return value

    @field_validator("node_type")
    @classmethod
    def _node_type(cls, value: str) -> str:
        if not CACHE_NODE_TYPE.match(value):
            raise ConfigProblem("", f"{value!r} is not an ElastiCache node type (e.g. cache.m7g.large)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CacheSettings:
        allowed = CACHE_ENGINE_VERSIONS[self.engine]
        if self.engine_version is not None and self.engine_version not in allowed:
            raise ConfigProblem(
                "engineVersion",
                f"{self.engine_version!r} is not allowed for {self.engine}; allowed: "
                f"{', '.join(allowed)} (LiteLLM needs Redis 7 semantics)",
            )
        if self.cluster_mode == "disabled" and self.shards != 1:
            raise ConfigProblem(
                "shards", f"{self.shards} needs clusterMode: enabled; with cluster mode disabled "
                "there is exactly one shard (a primary and its replicas)",
            )
        _disjoint_windows("snapshotWindow", self.snapshot_window, self.maintenance_window,
                          minimum_minutes=60, service="ElastiCache")
        return self

    @property
    def version(self) -> str:
        return self.engine_version or CACHE_ENGINE_VERSIONS[self.engine][0]

    @property
    def parameter_group_name(self) -> str:
        """The AWS default parameter group of this engine's major version and cluster mode."""
        major = self.version.split(".")[0]
        suffix = ".cluster.on" if self.cluster_mode == "enabled" else ""
        return f"default.{self.engine}{major}{suffix}"

    @property
    def automatic_failover(self) -> bool:
        # Cluster mode enabled always needs it; otherwise it needs a replica to fail over to.
        return self.cluster_mode == "enabled" or self.replicas >= 1

    @property
    def multi_az(self) -> bool:
        return self.replicas >= 1


def _disjoint_windows(daily_key: str, daily: str, maintenance: str, *, minimum_minutes: int,
                      service: str) -> None:
    """Both windows well-formed and long enough, and the daily one clear of maintenance."""
    try:
        daily_range = daily_window(daily, minimum_minutes=minimum_minutes)
    except ConfigProblem as problem:
        raise ConfigProblem(daily_key, problem.message) from None
    try:
        weekly_range = weekly_window(maintenance, minimum_minutes=minimum_minutes)
    except ConfigProblem as problem:
        raise ConfigProblem("maintenanceWindow", problem.message) from None
    if daily_overlaps_weekly(daily_range, weekly_range):
        raise ConfigProblem(
            daily_key, f"{daily!r} overlaps maintenanceWindow {maintenance!r}; {service} "
            "requires them to be disjoint",
        )
