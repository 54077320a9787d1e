"""PostgreSQL major upgrades: what the running instance says about the file's versions.

A major upgrade moves the instance to a parameter group of the new family (`postgres<major>`)
in the same ModifyDBInstance call. RDS refuses to delete a parameter group an instance still
uses, and in prod the upgrade waits for the maintenance window (`applyImmediately: false`), so
the old group must outlive the `up` that asks for the upgrade: `database.upgradingFrom` keeps
it until the instance runs the new major (README, "PostgreSQL major upgrades"). Like the
Kubernetes version, what the instance runs is the one thing the file cannot say: loading.py asks
RDS, and `major_upgrade_findings` turns the answer into problems and warnings.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    key: str
    message: str
    problem: bool  # refused (True) or a warning


def major(version: str) -> str:
    return version.split(".")[0]


def major_upgrade_findings(*, identifier: str, running: str | None, engine_version: str,
                           upgrading_from: str | None, apply_immediately: bool,
                           maintenance_window: str) -> list[Finding]:
    """What `database.engineVersion` and `database.upgradingFrom` mean for instance
    `identifier`, which runs `running` (None: it does not exist yet)."""
    wanted = major(engine_version)
    if running is None:
        if upgrading_from is None:
            return []
        return [Finding("database.upgradingFrom", f"no instance {identifier} exists yet, so there "
                        "is nothing to upgrade: remove the key", problem=True)]
    current = major(running)
    if int(wanted) < int(current):
        return [Finding("database.engineVersion", f"{engine_version!r} is older than {running}, "
                        f"which {identifier} runs: RDS never takes an instance back to an older "
                        f"major; set \"{current}\"", problem=True)]
    if wanted == current:
        if upgrading_from is None:
            return []
        return [Finding("database.upgradingFrom", f"{identifier} runs {running} already: remove "
                        f"the key, and the postgres{upgrading_from} parameter group goes with it",
                        problem=False)]
    if upgrading_from != current:
        return [Finding("database.upgradingFrom", f"engineVersion {engine_version!r} upgrades "
                        f"{identifier} from {running}: set upgradingFrom: \"{current}\" in this "
                        f"change, so that the postgres{current} parameter group stays until RDS has "
                        "moved the instance (README, \"PostgreSQL major upgrades\")", problem=True)]
    when = ("now: the database is unavailable while RDS upgrades it" if apply_immediately else
            f"in the next maintenance window ({maintenance_window} UTC; until then `aws rds "
            "describe-db-instances` lists it under PendingModifiedValues)")
    return [Finding("database.engineVersion", f"RDS upgrades {identifier} from {running} to "
                    f"{engine_version} {when}; once it runs {wanted}, remove "
                    "database.upgradingFrom", problem=False)]


def restore_findings(*, identifier: str, snapshot: str | None, running: str | None,
                     restored_from: str | None, snapshot_engine: tuple[str, str, int] | None,
                     engine_version: str, allocated_storage_gib: int = 0) -> list[Finding]:
    """What `restore.databaseSnapshot` means for instance `identifier`: `running` its version
    (None: not created yet), `restored_from` its restored-from tag; `snapshot_engine` the
    snapshot's (engine, version, allocated GiB), None when RDS has no such snapshot (asked only
    before the instance exists)."""
    key = "restore.databaseSnapshot"
    if snapshot is None:
        return []
    if running is not None:
        if restored_from == snapshot:
            return []
        return [Finding(key, f"{identifier} exists and was not created from {snapshot}: a restore "
                        "creates a new stack (README, \"Backups and restore\"); remove the key",
                        problem=True)]
    if snapshot_engine is None:
        return [Finding(key, f"RDS has no snapshot {snapshot} in this account and region",
                        problem=True)]
    engine, version, storage = snapshot_engine
    if engine != "postgres":
        return [Finding(key, f"{snapshot} is a {engine} snapshot, not PostgreSQL", problem=True)]
    found = []
    if storage > allocated_storage_gib:
        # Terraform sends the configured storage right after the restore, and RDS never shrinks
        # it: the instance takes the snapshot's (Database, restore_storage_gib).
        found.append(Finding("database.allocatedStorageGib", f"{allocated_storage_gib} GiB is "
                             f"below the {storage} GiB of {snapshot}, which RDS cannot shrink: the "
                             f"restored instance gets {storage} GiB (set it in the file to keep "
                             "previews quiet)", problem=False))
    if int(major(version)) > int(major(engine_version)):
        return [Finding(key, f"{snapshot} holds PostgreSQL {version}, newer than "
                        f"database.engineVersion {engine_version!r}: set \"{major(version)}\"",
                        problem=True)]
    if major(version) != major(engine_version):
        found.append(Finding(key, f"{snapshot} holds PostgreSQL {version}: RDS restores it at that "
                             f"version, then upgrades it to {engine_version} before the stack goes "
                             "on; restore at its major to be quicker", problem=False))
    return found
