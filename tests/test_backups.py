"""Backups (AWS Backup of prod's database and file system) and a stack restored from them,
from the recorded plans."""

from __future__ import annotations

import json
import subprocess

import pytest

from components.backups import FAILED_STATES, failed_job_pattern
from components.naming import RESTORED_FROM_TAG, cluster_name, db_instance_identifier
from components.settings import SettingsError, load_settings
from tests.conftest import ROOT, base_config, expect_settings_error, settings_from
from tools.engine import Plan, read_stack_config, run, run_stack

VAULT = "aws:backup/vault:Vault"
PLAN = "aws:backup/plan:Plan"
SELECTION = "aws:backup/selection:Selection"
RDS = "aws:rds/instance:Instance"
EFS = "aws:efs/fileSystem:FileSystem"
COPY = "aws:rds/snapshotCopy:SnapshotCopy"
# An AWS Backup recovery point of an RDS instance is a snapshot named after its job.
SNAPSHOT = "awsbackup:job-8c4a2d1e-1b2c-4d5e-9f00-0123456789ab"


def test_prod_backs_up_its_database_and_file_system_daily(stack_plans):
    plan = stack_plans["prod"]
    vault = plan.one(VAULT)
    assert vault.inputs["name"] == "anythingllm-prod-backups"
    key = plan.by_urn()[vault.property_dependencies["kmsKeyArn"][0]]
    assert key.type == "aws:kms/key:Key" and key.protect
    assert vault.protect and vault.inputs["forceDestroy"] is False
    [rule] = plan.one(PLAN).inputs["rules"]
    assert rule["schedule"] == "cron(0 6 ? * * *)"
    assert rule["lifecycle"] == {"deleteAfter": 35}
    assert rule["targetVaultName"] == "anythingllm-prod-backups"
    selection = plan.one(SELECTION)
    rds, efs = plan.one(RDS), plan.one(EFS)
    assert set(selection.property_dependencies["resources"]) == {rds.urn, efs.urn}
    # EFS's own automatic backups are off: one job per resource at a time.
    assert plan.one("aws:efs/backupPolicy:BackupPolicy").inputs["backupPolicy"] == {"status": "DISABLED"}
    # RDS keeps its own automated backups.
    assert rds.inputs["backupRetentionPeriod"] == 14
    role = plan.by_urn()[selection.property_dependencies["iamRoleArn"][0]]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "backup.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_a_failed_backup_job_mails_the_alarm_addresses(stack_plans):
    plan = stack_plans["prod"]
    rule = plan.one("aws:cloudwatch/eventRule:EventRule", "backup-failed-jobs")
    pattern = json.loads(rule.inputs["eventPattern"])
    vault = plan.one(VAULT)
    assert pattern == failed_job_pattern("anythingllm-prod-backups",
                                         f"arn:aws:backup:us-east-1:123456789012:vault/{vault.inputs['name']}")
    assert pattern["detail"]["state"] == list(FAILED_STATES)
    # A backup job's event names the vault; a copy job's, its source vault's ARN (the AWS Backup
    # guide's example events): either matches.
    assert pattern["detail"]["$or"] == [{"backupVaultName": ["anythingllm-prod-backups"]},
                                        {"sourceBackupVaultArn": [pattern["detail"]["$or"][1][
                                            "sourceBackupVaultArn"][0]]}]
    target = plan.one("aws:cloudwatch/eventTarget:EventTarget", "backup-failed-jobs")
    topic = plan.by_urn()[target.property_dependencies["arn"][0]]
    assert topic.inputs["name"] == "anythingllm-prod-backup-alerts"
    subscriptions = [s for s in plan.of_type("aws:sns/topicSubscription:TopicSubscription")
                     if s.parent == topic.urn]
    assert {s.inputs["endpoint"] for s in subscriptions} == set(
        read_stack_config(ROOT, "prod")["anythingllm:observability"]["alarmEmails"])
    policy = json.loads(next(r for r in plan.of_type("aws:sns/topicPolicy:TopicPolicy")
                             if r.parent == topic.urn).raw_inputs["policy"])
    assert policy["Statement"][0]["Principal"] == {"Service": "events.amazonaws.com"}
    assert "aws:SourceArn" in policy["Statement"][0]["Condition"]["ArnEquals"]


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_backups_are_optional_elsewhere(stack, stack_plans):
    assert stack_plans[stack].of_type(VAULT) == []


def test_backup_settings_are_checked():
    config = base_config("prod")
    config["backup"] = {"enabled": False}
    expect_settings_error(config, "backup.enabled", "cannot be false in prod")
    config = base_config("dev")
    config["backup"] = {"enabled": True}
    config.setdefault("storage", {})["backups"] = True
    expect_settings_error(config, "storage.backups", "must be false with backup.enabled")
    config = base_config("dev")
    config["backup"] = {"enabled": True, "schedule": "rate(1 day)"}
    expect_settings_error(config, "backup.schedule", "is not an AWS Backup schedule")
    config["backup"] = {"enabled": True, "copyToRegion": "eu-west-1"}
    expect_settings_error(config, "backup.copyToRegion", "is the stack's own region")
    config["backup"] = {"enabled": True, "retentionDays": 30,
                        "vaultLock": {"minRetentionDays": 35, "maxRetentionDays": 365}}
    expect_settings_error(config, "backup.retentionDays", "outside the vault lock's 35..365 days")
    config["backup"] = {"enabled": True, "vaultLock": {"minRetentionDays": 7, "maxRetentionDays": 365,
                                                       "changeableForDays": 1}}
    expect_settings_error(config, "backup.vaultLock.changeableForDays", "greater than or equal to 3")


def test_a_throwaway_stack_keeps_nothing_it_could_not_delete():
    config = base_config("staging")
    config.setdefault("storage", {})["backups"] = True
    expect_settings_error(config, "storage.backups", "cannot be true for staging")
    config = base_config("staging")
    config["backup"] = {"enabled": True, "vaultLock": {"minRetentionDays": 1, "maxRetentionDays": 40,
                                                       "changeableForDays": 3}}
    expect_settings_error(config, "backup.vaultLock.changeableForDays", "cannot be set for staging")


def test_a_copy_goes_to_a_vault_and_key_of_the_other_region():
    config = read_stack_config(ROOT, "prod")
    config["anythingllm:backup"] = {"copyToRegion": "us-west-2", "copyRetentionDays": 90,
                                    "vaultLock": {"minRetentionDays": 14, "maxRetentionDays": 400}}
    plan = run_stack(ROOT, "prod", config=config)
    vaults = {r.name: r for r in plan.of_type(VAULT)}
    copy_vault = vaults["backup-copy-vault"]
    provider = plan.by_urn()[copy_vault.provider]
    assert provider.inputs["region"] == "us-west-2"
    copy_key = plan.by_urn()[copy_vault.property_dependencies["kmsKeyArn"][0]]
    assert copy_key.provider == copy_vault.provider
    assert "backup.us-west-2.amazonaws.com" in copy_key.raw_inputs["policy"]
    [rule] = plan.one(PLAN).inputs["rules"]
    [copy] = rule["copyActions"]
    assert copy["lifecycle"] == {"deleteAfter": 90}
    assert plan.one(PLAN).property_dependencies["rules"] and copy_vault.urn in plan.one(PLAN).dependencies
    lock = plan.one("aws:backup/vaultLockConfiguration:VaultLockConfiguration")
    assert (lock.inputs["minRetentionDays"], lock.inputs["maxRetentionDays"]) == (14, 400)
    assert "changeableForDays" not in lock.inputs  # governance mode


# ---------------------------------------------------------------- restore


IDENTIFIER = db_instance_identifier(cluster_name("anythingllm", "staging-restore-20261203"))


def _restore_config() -> dict:
    config = read_stack_config(ROOT, "staging")
    config["anythingllm:restore"] = {"databaseSnapshot": SNAPSHOT}
    return config


@pytest.fixture(scope="module")
def restored() -> Plan:
    return run_stack(ROOT, "staging-restore-20261203", config=_restore_config(),
                     snapshots={SNAPSHOT: "17.6"})


def test_a_restore_stack_creates_its_database_from_the_snapshot_not_empty(restored):
    database = restored.one(RDS)
    copy = restored.one(COPY)
    assert copy.inputs["sourceDbSnapshotIdentifier"] == SNAPSHOT
    assert copy.inputs["targetDbSnapshotIdentifier"] == f"{IDENTIFIER}-restore-source"
    # Copied under the stack's own key, which the instance then has.
    assert copy.property_dependencies["kmsKeyId"] == database.property_dependencies["kmsKeyId"]
    assert database.inputs["snapshotIdentifier"] == f"{IDENTIFIER}-restore-source"
    assert restored.waits_for(database, copy)
    assert database.inputs["tags"][RESTORED_FROM_TAG] == SNAPSHOT
    assert "snapshotIdentifier" in database.ignore_changes
    assert database.custom_timeouts == {"create": "6h"}


def test_the_bootstrap_converges_on_the_restored_database(restored):
    """The Job runs after the restore (it waits for the instance), with this stack's passwords:
    roles and databases exist already and are converged, the data stays (test_db_bootstrap
    runs the same script twice against a real server)."""
    job = restored.one("kubernetes:batch/v1:Job", "database-bootstrap")
    assert restored.waits_for(job, restored.one(RDS))


def _load(stack: str, config: dict, **account):
    loaded = []
    run(lambda: loaded.append(load_settings()), project="anythingllm", stack=stack,
        config=config, **account)
    return loaded[0]


def test_a_restore_from_a_snapshot_rds_does_not_have_is_refused():
    with pytest.raises(SettingsError) as error:
        _load("staging-restore-20261203", _restore_config(), snapshots={})
    assert f"restore.databaseSnapshot: RDS has no snapshot {SNAPSHOT}" in str(error.value)


def test_a_snapshot_newer_than_the_engine_is_refused():
    config = _restore_config()
    config["anythingllm:database"] = {"engineVersion": "16"}
    with pytest.raises(SettingsError) as error:
        _load("staging-restore-20261203", config, snapshots={SNAPSHOT: "17.6"})
    assert "holds PostgreSQL 17.6, newer than database.engineVersion '16'" in str(error.value)


def test_a_snapshot_larger_than_the_configured_storage_sizes_the_instance():
    """Terraform sends the configured storage right after the restore, and RDS cannot shrink it:
    with the template's 20 GiB the restore would fail after hours of copying. The instance takes
    the snapshot's size (and autoscaling its 10 % above), and the preview says so."""
    plan = run_stack(ROOT, "staging-restore-20261203", config=_restore_config(),
                     snapshots={SNAPSHOT: ("17.6", 500)})
    database = plan.one(RDS)
    assert (database.inputs["allocatedStorage"], database.inputs["maxAllocatedStorage"]) == (500, 550)
    assert any(w.startswith("database.allocatedStorageGib: 20 GiB is below the 500 GiB of")
               for w in plan.warnings)


def test_an_aws_backup_snapshot_is_asked_for_by_its_type():
    """DescribeDBSnapshots returns AWS Backup's snapshots only when asked for by type; the fake
    account answers the same way, so a lookup without the type would find nothing."""
    from components.settings.loading import snapshot_engine

    found = []
    run(lambda: found.append(snapshot_engine(SNAPSHOT)), project="anythingllm", stack="x",
        config={"aws:region": "us-east-1"}, snapshots={SNAPSHOT: "17.6"})
    assert found == [("postgres", "17.6", 20)]


def test_a_restore_key_on_a_stack_whose_database_exists_is_refused():
    """The key acts only when the stack creates its database: on an existing one it would
    restore nothing, silently."""
    with pytest.raises(SettingsError) as error:
        _load("staging-restore-20261203", _restore_config(), databases={IDENTIFIER: "17.6"})
    assert "exists and was not created from" in str(error.value)


def test_the_restored_stack_goes_on_with_its_key():
    settings = _load("staging-restore-20261203", _restore_config(),
                     databases={IDENTIFIER: ("17.6", {RESTORED_FROM_TAG: SNAPSHOT})})
    assert settings.restore.database_snapshot == SNAPSHOT


def test_restore_keys_are_checked():
    config = base_config("dev")
    config["restore"] = {"databaseSnapshot": "not a snapshot!"}
    expect_settings_error(config, "restore.databaseSnapshot", "is not an RDS snapshot identifier")
    config["restore"] = {"fileSystemRecoveryPoint": "fs-123"}
    expect_settings_error(config, "restore.fileSystemRecoveryPoint",
                          "is not an AWS Backup recovery point ARN")
    config["restore"] = {"databaseSnapshot": f"arn:aws:rds:us-east-1:123456789012:snapshot:{SNAPSHOT}"}
    assert settings_from(config).restore.database_snapshot.endswith(SNAPSHOT)


# ---------------------------------------------------------------- restore of the file system

RECOVERY_POINT = "arn:aws:backup:us-east-1:123456789012:recovery-point:8c4a2d1e-1b2c-4d5e-9f00-0123456789ab"


@pytest.fixture(scope="module")
def restored_storage() -> Plan:
    config = _restore_config()
    config["anythingllm:restore"] = {"databaseSnapshot": SNAPSHOT,
                                     "fileSystemRecoveryPoint": RECOVERY_POINT}
    # A drill stack may back itself up too: its destroy must still leave nothing behind.
    config["anythingllm:backup"] = {"enabled": True}
    return run_stack(ROOT, "staging-restore-20261203", config=config, snapshots={SNAPSHOT: "17.6"})


def test_a_restore_stack_fills_its_file_system_before_any_claim_exists(restored_storage):
    plan = restored_storage
    job = next(r for r in plan.of_type("pulumi-python:dynamic:Resource")
               if r.inputs.get("kind") == "efs-restore-job")
    file_system = plan.one(EFS)
    assert job.inputs["recovery_point_arn"] == RECOVERY_POINT
    assert job.property_dependencies["file_system_id"] == [file_system.urn]
    role = plan.by_urn()[job.property_dependencies["role_arn"][0]]
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {
        "Service": "backup.amazonaws.com"}
    move = plan.one("kubernetes:batch/v1:Job", "storage-restore-move")
    assert plan.waits_for(move, job)
    claims = [c for c in plan.of_type("kubernetes:core/v1:PersistentVolumeClaim")
              if c.name in ("storage-anythingllm-storage", "storage-model-cache")]
    assert len(claims) == 2
    for claim in claims:
        volume = plan.by_urn()[plan.by_urn()[claim.urn].property_dependencies["spec"][0]]
        assert plan.waits_for(volume, move), claim.name
    # The root access point acts as uid 0; the pod itself does not run as root.
    root = plan.one("aws:efs/accessPoint:AccessPoint", "storage-restore-root")
    assert root.inputs["posixUser"] == {"uid": 0, "gid": 0}
    pod = move.inputs["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_without_a_recovery_point_nothing_is_restored(restored):
    assert not any(r.inputs.get("kind") == "efs-restore-job"
                   for r in restored.of_type("pulumi-python:dynamic:Resource"))


def _layout(root, *, restore_dirs: int = 1, existing: str | None = None):
    for index in range(restore_dirs):
        tree = root / f"aws-backup-restore_2026-12-0{index + 1}T05-00-00-000Z" / "dynamic" / "anythingllm"
        tree.mkdir(parents=True)
        (tree / "doc.json").write_text("{}")
    if existing == "empty":
        (root / "dynamic").mkdir()
    elif existing == "data":
        (root / "dynamic" / "x").mkdir(parents=True)


def _move(root) -> subprocess.CompletedProcess:
    from components.storage_restore import MOUNT, move_script

    return subprocess.run(["sh", "-c", move_script().replace(f"cd {MOUNT}", f"cd {root}")],
                          capture_output=True, text=True, check=False)


@pytest.mark.parametrize("existing", [None, "empty"])
def test_the_move_puts_the_restored_tree_in_place(tmp_path, existing):
    _layout(tmp_path, existing=existing)
    result = _move(tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "dynamic" / "anythingllm" / "doc.json").read_text() == "{}"
    assert not list(tmp_path.glob("aws-backup-restore_*"))


@pytest.mark.parametrize(("restore_dirs", "existing", "says"), [
    (1, "data", "already holds data"),
    (0, None, "expected one aws-backup-restore_* directory"),
    (2, None, "expected one aws-backup-restore_* directory"),
])
def test_the_move_refuses_what_it_cannot_do_safely(tmp_path, restore_dirs, existing, says):
    _layout(tmp_path, restore_dirs=restore_dirs, existing=existing)
    result = _move(tmp_path)
    assert result.returncode == 1 and says in result.stderr


class _Backup:
    """boto3's backup client as run_restore_job uses it, with scripted job states."""

    def __init__(self, states, earlier=()):
        self.states, self.started, self.earlier = list(states), [], list(earlier)

    def get_paginator(self, operation):
        assert operation == "list_restore_jobs"
        return self

    def paginate(self, **query):
        assert query == {"ByResourceType": "EFS"}
        return [{"RestoreJobs": self.earlier}]

    def start_restore_job(self, **request):
        self.started.append(request)
        return {"RestoreJobId": "job-1"}

    def describe_restore_job(self, RestoreJobId):
        status = self.states.pop(0)
        return {"RestoreJobId": RestoreJobId, "Status": status, "StatusMessage": "no access"}


def test_the_restore_job_is_started_into_the_stack_file_system_and_awaited():
    from components.storage_restore import run_restore_job

    client = _Backup(["PENDING", "RUNNING", "COMPLETED"])
    result = run_restore_job(client, recovery_point_arn=RECOVERY_POINT, file_system_id="fs-1",
                             role_arn="arn:aws:iam::1:role/r", timeout=600, sleep=lambda _: None)
    assert result == {"restore_job_id": "job-1", "status": "COMPLETED"}
    from components.storage_restore import idempotency_token

    assert client.started == [{"RecoveryPointArn": RECOVERY_POINT, "IamRoleArn": "arn:aws:iam::1:role/r",
                               "ResourceType": "EFS",
                               "Metadata": {"file-system-id": "fs-1", "newFileSystem": "false",
                                            "ItemsToRestore": '["/dynamic"]'},
                               "IdempotencyToken": idempotency_token(RECOVERY_POINT, "fs-1")}]
    # Another stack's file system is another restore, never the same job.
    assert idempotency_token(RECOVERY_POINT, "fs-2") != idempotency_token(RECOVERY_POINT, "fs-1")
    # An `up` that timed out: the next one waits for the same job instead of starting another.
    again = _Backup(["RUNNING", "COMPLETED"], earlier=[
        # A job that names no file system (an earlier drill's, perhaps) is not adopted.
        {"RestoreJobId": "job-y", "RecoveryPointArn": RECOVERY_POINT, "Status": "COMPLETED"},
        {"RestoreJobId": "job-x", "RecoveryPointArn": "other", "Status": "RUNNING"},
        {"RestoreJobId": "job-0", "RecoveryPointArn": RECOVERY_POINT, "Status": "RUNNING",
         "CreatedResourceArn": "arn:aws:elasticfilesystem:us-east-1:1:file-system/fs-1"}])
    assert run_restore_job(again, recovery_point_arn=RECOVERY_POINT, file_system_id="fs-1",
                           role_arn="r", timeout=600, sleep=lambda _: None)["restore_job_id"] == "job-0"
    assert again.started == []
    with pytest.raises(RuntimeError, match="ended FAILED: no access"):
        run_restore_job(_Backup(["RUNNING", "FAILED"]), recovery_point_arn=RECOVERY_POINT,
                        file_system_id="fs-1", role_arn="r", timeout=600, sleep=lambda _: None)


def test_a_destroyed_throwaway_stack_keeps_nothing_on_purpose(restored_storage):
    """What `pulumi destroy` of a staging stack deletes, by the plan: nothing protected or
    retained, no final snapshot, no kept automated backups, vaults and buckets emptied, no
    deletion protection; the restore's snapshot copy is the stack's and goes with it.
    (`python -m tools.sweep` lists what a failed destroy left: tests/test_sweep.py.)"""
    plan = restored_storage
    assert [r.name for r in plan.resources if r.protect] == []
    # The one exception: the account's Spot service-linked role, which the stack creates when the
    # account had none and other workloads may use (karpenter.py); free, and not the stack's.
    assert [(r.type, r.name) for r in plan.resources if r.retain_on_delete] == [
        ("aws:iam/serviceLinkedRole:ServiceLinkedRole", "cluster-karpenter-spot")]
    database = plan.one(RDS)
    assert database.inputs["skipFinalSnapshot"] is True
    assert database.inputs["deleteAutomatedBackups"] is True
    assert database.inputs["deletionProtection"] is False
    assert "finalSnapshotIdentifier" not in plan.one(
        "aws:elasticache/replicationGroup:ReplicationGroup").inputs
    assert plan.one("aws:eks/cluster:Cluster").inputs["deletionProtection"] is False
    assert plan.one(VAULT).inputs["forceDestroy"] is True
    # EFS's own automatic backups, whose recovery points nobody may delete, are off.
    assert plan.one("aws:efs/backupPolicy:BackupPolicy").inputs["backupPolicy"] == {"status": "DISABLED"}
    # The restore's snapshot copy is a resource of the stack: deleted with it.
    assert plan.one(COPY).parent == plan.one("anythingllm:database:Database").urn
