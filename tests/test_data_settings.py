"""Settings of the data services: environment defaults, prod rules, and clear errors."""

from __future__ import annotations

from typing import Any

import pytest

from components.settings import CacheSettings
from components.settings.base import daily_overlaps_weekly, daily_window, weekly_window
from tests.conftest import base_config, expect_settings_error, settings_from
from tests.test_settings import _prod, _set


def _staging(mutate):
    def inner(config: dict) -> None:
        config["environment"] = "staging"
        mutate(config)
    return inner


def _section(section: str, **values: Any):
    def mutate(config: dict) -> None:
        config.setdefault(section, {}).update(values)
    return mutate


# (id, mutation, key path expected in the message, words expected in the message)
BAD_INPUTS = [
    ("efs-ia-days", _section("storage", transitionToIaDays=45),
     "storage.transitionToIaDays", "30, 60, 90, 180, 270 or 365"),
    ("prod-without-aws-backup", _prod(_section("backup", enabled=False)),
     "backup.enabled", "cannot be false in prod"),
    ("postgres-15", _section("database", engineVersion="15"),
     "database.engineVersion", "ship pgvector"),
    ("postgres-version-number", _section("database", engineVersion=17),
     "database.engineVersion", "is a number; quote it"),
    ("not-an-rds-class", _section("database", instanceClass="m5.large"),
     "database.instanceClass", "'m5.large' is not an RDS instance class"),
    ("insights-on-micro", _section("database", instanceClass="db.t4g.micro"),
     "database.performanceInsights", "not available on db.t4g.micro"),
    ("tiny-storage", _section("database", allocatedStorageGib=10),
     "database.allocatedStorageGib", "greater than or equal to 20"),
    ("max-storage-too-close", _section("database", allocatedStorageGib=100, maxAllocatedStorageGib=105),
     "database.maxAllocatedStorageGib", "at least 10% above allocatedStorageGib (100), i.e. >= 110"),
    ("no-backups", _section("database", backupRetentionDays=0),
     "database.backupRetentionDays", "greater than or equal to 1"),
    ("backups-too-long", _section("database", backupRetentionDays=36),
     "database.backupRetentionDays", "less than or equal to 35"),
    ("prod-short-backups", _prod(_section("database", backupRetentionDays=7)),
     "database.backupRetentionDays", "7 is below 14, the minimum in prod"),
    ("prod-single-az-db", _prod(_section("database", multiAz=False)),
     "database.multiAz", "cannot be false in prod"),
    ("prod-db-unprotected", _prod(_section("database", deletionProtection=False)),
     "database.deletionProtection", "cannot be false in prod"),
    ("staging-db-protected", _staging(_section("database", deletionProtection=True)),
     "database.deletionProtection", "cannot be true for staging"),
    ("prod-burstable-db", _prod(_section("database", instanceClass="db.t4g.large")),
     "database.instanceClass", "'db.t4g.large' is burstable"),
    ("backup-window-format", _section("database", backupWindow="3:00-4:00"),
     "database.backupWindow", "is not a daily window; use hh24:mi-hh24:mi"),
    ("backup-window-short", _section("database", backupWindow="03:00-03:15"),
     "database.backupWindow", "lasts 15 minutes; AWS requires at least 30"),
    ("backup-overlaps-maintenance", _section("database", backupWindow="04:00-05:00"),
     "database.backupWindow", "overlaps maintenanceWindow 'sun:04:30-sun:05:30'"),
    ("maintenance-window-format", _section("database", maintenanceWindow="sunday:04:30-sun:05:30"),
     "database.maintenanceWindow", "is not a weekly window"),
    ("db-log-retention", _section("database", logRetentionDays=10),
     "database.logRetentionDays", "is not a CloudWatch retention"),
    ("cache-engine", _section("cache", engine="memcached"),
     "cache.engine", "'valkey' or 'redis'"),
    ("old-redis", _section("cache", engine="redis", engineVersion="6.2"),
     "cache.engineVersion", "'6.2' is not allowed for redis; allowed: 7.1, 7.0"),
    ("shards-without-cluster-mode", _section("cache", shards=3),
     "cache.shards", "3 needs clusterMode: enabled"),
    ("too-many-replicas", _section("cache", replicas=6),
     "cache.replicas", "less than or equal to 5"),
    ("too-many-shards", _section("cache", clusterMode="enabled", shards=91),
     "cache.shards", "less than or equal to 90"),
    ("prod-cache-without-replica", _prod(_section("cache", replicas=0)),
     "cache.replicas", "0 leaves no replica to fail over to"),
    ("prod-cache-without-snapshots", _prod(_section("cache", snapshotRetentionDays=0)),
     "cache.snapshotRetentionDays", "cannot be 0 in prod"),
    ("prod-burstable-cache", _prod(_section("cache", nodeType="cache.t4g.medium")),
     "cache.nodeType", "'cache.t4g.medium' is burstable"),
    ("not-a-cache-node", _section("cache", nodeType="r7g.large"),
     "cache.nodeType", "'r7g.large' is not an ElastiCache node type"),
    ("cache-snapshot-window-short", _section("cache", snapshotWindow="05:00-05:30"),
     "cache.snapshotWindow", "lasts 30 minutes; AWS requires at least 60"),
    ("cache-unknown-key", _section("cache", clusterModeEnabled=True),
     "cache.clusterModeEnabled", "unknown key"),
    ("region-without-rds-root", _set(["aws:region"], "us-gov-west-1"),
     "aws:region", "has no vendored RDS root certificate"),
]


@pytest.mark.parametrize(("mutate", "path", "reason"),
                         [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS])
def test_bad_data_input_names_key_and_reason(mutate, path, reason):
    config = base_config()
    mutate(config)
    expect_settings_error(config, path, reason)


def test_dev_defaults_are_cheap_and_destroyable():
    settings = settings_from(base_config("dev"))
    assert settings.storage.backups is False
    assert settings.database.multi_az is False
    assert settings.database.backup_retention_days == 1
    assert settings.database.deletion_protection is False
    assert settings.database.instance_class == "db.t4g.medium"
    assert settings.cache.replicas == 0 and not settings.cache.automatic_failover
    assert settings.cache.snapshot_retention_days == 0


def test_prod_defaults_are_durable():
    settings = settings_from(base_config("prod"))
    # AWS Backup keeps the file system (and the database); EFS's own backups would be a second job.
    assert settings.backup.enabled is True and settings.backup.retention_days == 35
    assert settings.storage.backups is False
    assert settings.database.multi_az is True
    assert settings.database.backup_retention_days == 14
    assert settings.database.deletion_protection is True
    assert settings.cache.replicas == 1
    assert settings.cache.automatic_failover and settings.cache.multi_az
    assert settings.cache.snapshot_retention_days == 7


def test_explicit_values_win_over_environment_defaults():
    config = base_config("dev")
    config["database"] = {"multiAz": True, "backupRetentionDays": 7}
    config["cache"] = {"replicas": 2}
    settings = settings_from(config)
    assert settings.database.multi_az is True
    assert settings.database.backup_retention_days == 7
    assert settings.database.deletion_protection is False  # still the dev default
    assert settings.cache.replicas == 2


def test_cache_engine_versions_and_parameter_groups():
    cache = CacheSettings(engine="redis", nodeType="cache.t4g.small", clusterMode="enabled",
                          shards=3, replicas=1, snapshotRetentionDays=0)
    assert cache.version == "7.1"
    assert cache.parameter_group_name == "default.redis7.cluster.on"
    assert cache.automatic_failover
    assert settings_from(base_config()).cache.parameter_group_name == "default.valkey8"


def test_database_family_follows_the_major_version():
    config = base_config()
    config["database"] = {"engineVersion": "16.8"}
    database = settings_from(config).database
    assert database.major_version == "16"
    assert database.parameter_group_family == "postgres16"


def test_windows_may_cross_midnight_and_the_week_end():
    assert daily_window("23:30-00:30", minimum_minutes=60) == (23 * 60 + 30, 60)
    assert weekly_window("sun:23:30-mon:00:30", minimum_minutes=60) == (6 * 1440 + 23 * 60 + 30, 60)
    # A daily window just after midnight meets a weekly window that wraps into Monday.
    assert daily_overlaps_weekly((0, 30), weekly_window("sun:23:30-mon:00:30", minimum_minutes=60))
    assert not daily_overlaps_weekly((3 * 60, 60), weekly_window("sun:04:30-sun:05:30",
                                                                minimum_minutes=30))
