"""StorageRestore: the stack's new EFS file system filled from an AWS Backup recovery point.

AWS Backup restores a recovery point into an existing file system under a new directory off its
root, `aws-backup-restore_<timestamp>` (AWS Backup developer guide, "Restoring an Amazon EFS
file system"), never over what is there. So the restore has two steps, both in the plan and
both before any claim of the stack is created:

1. `EfsRestoreJob`, a dynamic resource: StartRestoreJob of the recovery point into the stack's
   file system (`newFileSystem: false`) as a role AWS Backup assumes, then DescribeRestoreJob
   until it ends; a job that fails fails the `up` with AWS Backup's message.
2. a Kubernetes Job that mounts the file system's root through an access point that acts as
   uid 0 (the pod itself runs unprivileged) and moves the restored `dynamic/` tree, where every
   claim's directory is (shared_storage.access_point_path), into place: a rename within one
   file system, instant whatever the size. It refuses a file system whose `dynamic/` already
   holds data, and one with more or fewer than one restore directory.

The dynamic resource runs inside `pulumi up` with boto3 and the process's AWS credentials (like
controller_target_group.py; keep this module and class where they are, the state refers to
them). Whoever runs `up` needs backup:StartRestoreJob, backup:DescribeRestoreJob and
iam:PassRole on the restore role.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider

from .backups import backup_role
from .versions import BUSYBOX_IMAGE
from .workloads import (
    IMAGE_PULL_POLICY,
    container_security_context,
    pod_security_context,
    token_less_account,
)

# The marker the offline engine's FakeCloud answers by (tools/fake_cloud.py).
KIND = "efs-restore-job"
RESTORE_ROLE_POLICY = "service-role/AWSBackupServiceRolePolicyForRestores"
POLL_SECONDS = 30
# A restore moves about as fast as a backup (AWS Backup developer guide, "Amazon EFS backup
# performance": 100 MB/s for large files, 500 files/s for small ones): 6 hours is about 2 TB.
DEFAULT_TIMEOUT_SECONDS = 6 * 3600
ENDED = ("COMPLETED", "ABORTED", "FAILED")
MOUNT = "/efs"
# The tree every claim's directory is under (shared_storage.access_point_path).
TREE = "dynamic"
MOVE_UID = 10001  # the pod's own uid; the access point acts as uid 0 on the file system


def restore_metadata(file_system_id: str) -> dict[str, str]:
    """StartRestoreJob metadata: an item-level restore of the claims' tree into the existing file
    system `file_system_id` (AWS Backup API, StartRestoreJob, "Amazon EFS": `file-system-id`,
    `newFileSystem`, `ItemsToRestore`, a JSON list of paths). Only the claims' tree, so nothing
    else of the source is copied."""
    return {"file-system-id": file_system_id, "newFileSystem": "false",
            "ItemsToRestore": json.dumps([f"/{TREE}"])}


def idempotency_token(recovery_point_arn: str, file_system_id: str) -> str:
    """StartRestoreJob's IdempotencyToken for this recovery point into this file system: a retried
    start (an `up` that timed out or was interrupted) is the same job, never a second restore,
    which would leave two restore directories (the move would refuse). A new stack's file system
    is another token, so a drill never adopts an earlier drill's job."""
    return hashlib.sha256(f"{recovery_point_arn}|{file_system_id}".encode()).hexdigest()[:32]


def earlier_job(client: Any, *, recovery_point_arn: str, file_system_id: str) -> str | None:
    """The id of a restore of this recovery point that names this file system as the resource
    it restored into (`CreatedResourceArn`) and is running or done; None when AWS does not say
    (the idempotency token then makes a repeated start the same job)."""
    for page in client.get_paginator("list_restore_jobs").paginate(ByResourceType="EFS"):
        for job in page["RestoreJobs"]:
            if (job.get("RecoveryPointArn") == recovery_point_arn
                    and file_system_id in (job.get("CreatedResourceArn") or "")
                    and job.get("Status") in ("PENDING", "RUNNING", "COMPLETED")):
                return job["RestoreJobId"]
    return None


def run_restore_job(client: Any, *, recovery_point_arn: str, file_system_id: str,
                    role_arn: str, timeout: float, poll: float = POLL_SECONDS,
                    clock: Any = time.monotonic, sleep: Any = time.sleep) -> dict[str, str]:
    """Start the restore (or find the one an earlier `up` started) and wait for it to end: its id
    and status; raises if it did not complete, with AWS Backup's message."""
    job_id = earlier_job(client, recovery_point_arn=recovery_point_arn,
                         file_system_id=file_system_id)
    if job_id is None:
        job_id = client.start_restore_job(
            RecoveryPointArn=recovery_point_arn, IamRoleArn=role_arn, ResourceType="EFS",
            Metadata=restore_metadata(file_system_id),
            IdempotencyToken=idempotency_token(recovery_point_arn, file_system_id))["RestoreJobId"]
    deadline = clock() + timeout
    while True:
        job = client.describe_restore_job(RestoreJobId=job_id)
        status = job["Status"]
        if status == "COMPLETED":
            return {"restore_job_id": job_id, "status": status}
        if status in ENDED:
            raise RuntimeError(f"AWS Backup restore job {job_id} of {recovery_point_arn} into "
                               f"{file_system_id} ended {status}: {job.get('StatusMessage', '')}")
        if clock() >= deadline:
            raise TimeoutError(f"AWS Backup restore job {job_id} is still {status} after "
                               f"{timeout:.0f} s; it goes on in AWS (`aws backup "
                               f"describe-restore-job --restore-job-id {job_id}`): `pulumi up` "
                               "again waits for this job, it does not start another")
        sleep(poll)


class _Restorer(ResourceProvider):
    """Create runs the restore job; there is nothing to update or delete (the data is the file
    system's, which goes with it)."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        import boto3  # imported where the provider runs, not where the program is planned

        client = boto3.client("backup", region_name=props["region"])
        result = run_restore_job(client, recovery_point_arn=props["recovery_point_arn"],
                                 file_system_id=props["file_system_id"],
                                 role_arn=props["role_arn"],
                                 timeout=float(props["timeout_seconds"]))
        return CreateResult(id_=result["restore_job_id"], outs={**props, **result})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # Another recovery point or file system is another restore: a new job, never a rerun.
        keys = ("recovery_point_arn", "file_system_id")
        replaces = [key for key in keys if olds.get(key) != news.get(key)]
        return DiffResult(changes=bool(replaces), replaces=replaces, stables=[],
                          delete_before_replace=True)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_=id_, outs=props)


class EfsRestoreJob(Resource):
    """One AWS Backup restore of `recovery_point_arn` into `file_system_id`, run at create.

    Attributes:
        restore_job_id, status (Outputs).
    """

    restore_job_id: pulumi.Output[str]
    status: pulumi.Output[str]

    def __init__(self, name: str, *, region: str, recovery_point_arn: str,
                 file_system_id: pulumi.Input[str], role_arn: pulumi.Input[str],
                 timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(_Restorer(), name, {
            "kind": KIND, "region": region, "recovery_point_arn": recovery_point_arn,
            "file_system_id": file_system_id, "role_arn": role_arn,
            "timeout_seconds": timeout_seconds, "restore_job_id": None, "status": None,
        }, opts)


def move_script() -> str:
    """Moves the one restore directory's `dynamic/` tree into place at the root."""
    return f"""set -eu
cd {MOUNT}
set -- aws-backup-restore_*
if [ "$#" -ne 1 ] || [ ! -d "$1" ]; then
  echo "expected one aws-backup-restore_* directory at the root, found: $*" >&2
  exit 1
fi
if [ ! -d "$1/{TREE}" ]; then
  echo "$1 holds no {TREE}/ tree: was the recovery point taken of this project's file system?" >&2
  exit 1
fi
if [ -d {TREE} ] && [ -n "$(ls -A {TREE})" ]; then
  echo "{TREE}/ already holds data: not overwriting it with $1/{TREE}" >&2
  exit 1
fi
[ -d {TREE} ] && rmdir {TREE}
mv "$1/{TREE}" {TREE}
rmdir "$1" 2>/dev/null || echo "left $1 in place: it holds more than {TREE}/"
echo "restored {TREE}/ from $1"
"""


class StorageRestore(pulumi.ComponentResource):
    """The restore of a recovery point into the stack's file system, before its claims exist.

    Creates: the role AWS Backup restores as (trusting backup.amazonaws.com for this account,
    AWS's managed restore policy); the `EfsRestoreJob`; an access point at the root acting as
    uid 0, its PersistentVolume and claim in `namespace`; a token-less service account; and the
    Job that moves the restored tree into place (Pulumi waits for it to succeed).

    Attributes:
        done: what the stack's claims wait for (the move Job).
    """

    def __init__(self, name: str, *, recovery_point_arn: str, region: str,
                 file_system_id: pulumi.Input[str], account_id: pulumi.Input[str],
                 partition: pulumi.Input[str], namespace: pulumi.Input[str],
                 provider: k8s.Provider, ready: list[pulumi.Resource],
                 tags: dict[str, str], opts: pulumi.ResourceOptions | None = None):
        super().__init__("anythingllm:storage:StorageRestore", name, None, opts)
        role, attachments = backup_role(
            f"{name}-role", description="AWS Backup restore of the stack's file system",
            policies=(RESTORE_ROLE_POLICY,), account_id=account_id, partition=partition,
            tags=tags, parent=self)
        job = EfsRestoreJob(
            f"{name}-job", region=region, recovery_point_arn=recovery_point_arn,
            file_system_id=file_system_id, role_arn=role.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*attachments, *ready]))
        root = aws.efs.AccessPoint(
            f"{name}-root", file_system_id=file_system_id,
            posix_user={"uid": 0, "gid": 0}, root_directory={"path": "/"},
            tags={**tags, "Name": f"{name}-root"}, opts=pulumi.ResourceOptions(parent=self))
        volume_name = pulumi.Output.concat("restore-root-", root.id)
        in_cluster = pulumi.ResourceOptions(parent=self, provider=provider)
        volume = k8s.core.v1.PersistentVolume(
            f"{name}-root", metadata={"name": volume_name},
            spec={"capacity": {"storage": "1Gi"}, "access_modes": ["ReadWriteMany"],
                  "persistent_volume_reclaim_policy": "Retain", "storage_class_name": "",
                  "csi": {"driver": "efs.csi.aws.com",
                          "volume_handle": pulumi.Output.concat(file_system_id, "::", root.id)},
                  "claim_ref": {"name": "storage-restore-root", "namespace": namespace}},
            # Mountable once the driver and the mount targets are there (as the claims' volumes).
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=ready))
        claim = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-root", metadata={"name": "storage-restore-root", "namespace": namespace},
            spec={"access_modes": ["ReadWriteMany"], "storage_class_name": "",
                  "volume_name": volume.metadata["name"],
                  "resources": {"requests": {"storage": "1Gi"}}},
            opts=in_cluster)
        account = token_less_account(f"{name}-mover", account="storage-restore",
                                     namespace=namespace, opts=in_cluster)
        self.done = k8s.batch.v1.Job(
            f"{name}-move",
            metadata={"name": "storage-restore-move", "namespace": namespace},
            spec={"backoff_limit": 0, "template": {"spec": {
                "service_account_name": "storage-restore",
                "automount_service_account_token": False,
                "restart_policy": "Never",
                "security_context": pod_security_context(uid=MOVE_UID),
                "containers": [{
                    "name": "move", "image": BUSYBOX_IMAGE, "image_pull_policy": IMAGE_PULL_POLICY,
                    "command": ["sh", "-c", move_script()],
                    "security_context": container_security_context(read_only_root=True),
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                                  "limits": {"cpu": "200m", "memory": "64Mi"}},
                    "volume_mounts": [{"name": "root", "mount_path": MOUNT}],
                }],
                "volumes": [{"name": "root",
                             "persistent_volume_claim": {"claim_name": claim.metadata["name"]}}],
            }}},
            opts=pulumi.ResourceOptions(parent=self, provider=provider,
                                        depends_on=[job, account, claim]))
        self.register_outputs({"restore_job_id": job.restore_job_id})
