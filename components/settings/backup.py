"""Backups (AWS Backup of the database and the file system) and restores (a stack created from
an RDS snapshot and an EFS recovery point)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator, model_validator

from .base import REGION_NAME, ConfigProblem, _Model

BACKUP_ENVIRONMENT_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "prod": {"backup": {"enabled": True}},
    "dev": {"backup": {"enabled": False}},
    "staging": {"backup": {"enabled": False}},
}
# AWS Backup schedules: cron(minutes hours day-of-month month day-of-week year), in UTC unless
# the rule names a time zone (AWS Backup developer guide, "Creating a backup plan").
CRON = re.compile(r"^cron\((\S+ ){5}\S+\)$")
# An RDS snapshot: its identifier (a manual snapshot, or AWS Backup's `awsbackup:job-<id>`)
# or its ARN.
RDS_SNAPSHOT = re.compile(r"^(arn:aws(-cn|-us-gov)?:rds:[a-z0-9-]+:\d{12}:snapshot:)?"
                          r"(awsbackup:job-[0-9a-f-]+|[a-zA-Z][a-zA-Z0-9-]{0,254})$")
RECOVERY_POINT_ARN = re.compile(
    r"^arn:aws(-cn|-us-gov)?:backup:[a-z0-9-]+:\d{12}:recovery-point:[A-Za-z0-9-]+$")


class VaultLockSettings(_Model):
    """AWS Backup Vault Lock: no recovery point can be deleted before `minRetentionDays` or kept
    past `maxRetentionDays`, by anyone. Without `changeableForDays` the lock is in governance
    mode (who holds backup:DeleteBackupVaultLockConfiguration can remove it); with it, compliance
    mode: after that many days nobody, AWS included, can change or remove it."""

    min_retention_days: int = Field(ge=1, le=36500)
    max_retention_days: int = Field(ge=1, le=36500)
    changeable_for_days: int | None = Field(default=None, ge=3, le=36500)

    @model_validator(mode="after")
    def _ordered(self) -> VaultLockSettings:
        if self.max_retention_days < self.min_retention_days:
            raise ConfigProblem("maxRetentionDays", f"{self.max_retention_days} is below "
                                                    f"minRetentionDays {self.min_retention_days}")
        return self


class BackupSettings(_Model):
    """AWS Backup of the RDS instance and the EFS file system into the stack's own vault,
    encrypted with its own key; optionally copied to a vault in a second region. RDS's own
    automated backups (database.backupRetentionDays) stay as they are."""

    enabled: bool
    # Daily at 06:00 UTC: after RDS's default backup window (03:00-04:00) and its default
    # maintenance window (Sunday 04:30-05:30), so neither holds the job up.
    schedule: str = "cron(0 6 ? * * *)"
    retention_days: int = Field(default=35, ge=1, le=36500)
    copy_to_region: str | None = None
    copy_retention_days: int | None = Field(default=None, ge=1, le=36500)
    vault_lock: VaultLockSettings | None = None

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        if not CRON.match(value):
            raise ConfigProblem("", f"{value!r} is not an AWS Backup schedule: "
                                    "cron(minutes hours day-of-month month day-of-week year), "
                                    "e.g. cron(0 6 ? * * *) for 06:00 UTC every day")
        return value

    @field_validator("copy_to_region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and not REGION_NAME.match(value):
            raise ConfigProblem("", f"{value!r} is not an AWS region name (e.g. us-west-2)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> BackupSettings:
        if self.copy_retention_days is not None and self.copy_to_region is None:
            raise ConfigProblem("copyRetentionDays", "only means something with copyToRegion")
        lock = self.vault_lock
        if lock is not None and not lock.min_retention_days <= self.retention_days <= lock.max_retention_days:
            raise ConfigProblem(
                "retentionDays", f"{self.retention_days} is outside the vault lock's "
                f"{lock.min_retention_days}..{lock.max_retention_days} days: AWS Backup would fail "
                "every job of the plan")
        return self

    @property
    def copy_days(self) -> int:
        return self.copy_retention_days or self.retention_days


class RestoreSettings(_Model):
    """What a new stack starts from instead of an empty database and file system. Read when the
    stack creates them; later `up`s keep what was restored (the keys stay, for the record)."""

    database_snapshot: str | None = None
    file_system_recovery_point: str | None = None

    @field_validator("database_snapshot")
    @classmethod
    def _snapshot(cls, value: str | None) -> str | None:
        if value is not None and not RDS_SNAPSHOT.match(value):
            raise ConfigProblem("", f"{value!r} is not an RDS snapshot identifier or ARN (an AWS "
                                    "Backup recovery point of RDS is the snapshot "
                                    "awsbackup:job-<id>)")
        return value

    @field_validator("file_system_recovery_point")
    @classmethod
    def _recovery_point(cls, value: str | None) -> str | None:
        if value is not None and not RECOVERY_POINT_ARN.match(value):
            raise ConfigProblem("", f"{value!r} is not an AWS Backup recovery point ARN "
                                    "(arn:aws:backup:<region>:<account>:recovery-point:<id>)")
        return value
