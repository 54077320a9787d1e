"""SharedStorage: EFS for AnythingLLM's storage directory and the model-weight cache."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from .cluster import Cluster
from .kms import encryption_key, service_only_policy
from .namespaces import APP, DATA_BOOTSTRAP, MODELS, WorkloadNamespaces
from .naming import creation_token
from .network import Network
from .options import named
from .security_groups import cluster_only_security_group
from .settings import StorageSettings
from .storage_restore import StorageRestore

NFS_PORT = 2049
EFS_CSI_ADDON = "aws-efs-csi-driver"
EFS_CSI_DRIVER = "efs.csi.aws.com"
# AnythingLLM's image runs as user anythingllm (UID/GID 1000). Access points write every file
# as this owner, so pods need no root, chown or fsGroup pass over a large tree.
POSIX_OWNER = 1000


@dataclass(frozen=True)
class ClaimSpec:
    """A ReadWriteMany claim on its own EFS access point. EFS is elastic: the size is required by
    the Kubernetes API but neither reserved nor enforced."""

    name: str
    namespace: str
    size: str
    purpose: str
    # Disposable claims (the isolated canary's) are never `protect`ed, even in prod.
    disposable: bool = False


DOCUMENTS = ClaimSpec("anythingllm-storage", APP.name, "100Gi",
                      "AnythingLLM STORAGE_DIR: documents, uploads, vector cache, plugins")
MODEL_CACHE = ClaimSpec("model-cache", MODELS.name, "1Ti",
                        "Hugging Face cache shared by every vLLM pod (HF_HOME)")
CLAIMS = (DOCUMENTS, MODEL_CACHE)
# Only with an isolated canary (`app.canary.isolation: isolated`): its own access point, so its
# STORAGE_DIR is a directory stable never sees.
CANARY_DOCUMENTS = ClaimSpec("anythingllm-canary-storage", APP.name, "100Gi",
                             "STORAGE_DIR of the isolated AnythingLLM canary", disposable=True)


def lifecycle_policies(transition_to_ia_days: int | None) -> list[dict[str, str]]:
    """EFS lifecycle: to Infrequent Access after N days unread, back on the first access.

    EFS wants one transition per policy object. Model weights are re-read when a pod starts,
    so AFTER_1_ACCESS brings a file back to Standard instead of paying IA reads every time.
    """
    if transition_to_ia_days is None:
        return []
    unit = "DAY" if transition_to_ia_days == 1 else "DAYS"
    return [
        {"transition_to_ia": f"AFTER_{transition_to_ia_days}_{unit}"},
        {"transition_to_primary_storage_class": "AFTER_1_ACCESS"},
    ]


def tls_only_policy(file_system_arn: str) -> dict:
    """File system policy: NFS clients may mount through a mount target, and only over TLS.

    This is the policy the EFS console writes for "enforce in-transit encryption for all
    clients": without the Allow, a file system policy would lock out every NFS client. The
    EFS CSI driver mounts with TLS (efs-utils' stunnel) by default and the StorageClass asks
    for it explicitly.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "MountThroughMountTargets",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": [
                    "elasticfilesystem:ClientMount",
                    "elasticfilesystem:ClientWrite",
                    "elasticfilesystem:ClientRootAccess",
                ],
                "Resource": file_system_arn,
                "Condition": {"Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"}},
            },
            {
                "Sid": "DenyUnencryptedTransport",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "*",
                "Resource": file_system_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }


def access_point_path(claim: ClaimSpec) -> str:
    """`/dynamic/<namespace>/<claim>`: the directory of a claim. Derived from the claim, not
    random, so a re-created claim finds its data again; the same path the `efs-ap` dynamic
    provisioner used (basePath `/dynamic`, subPathPattern `${.PVC.namespace}/${.PVC.name}`), so
    stacks created before static provisioning keep their data."""
    return f"/dynamic/{claim.namespace}/{claim.name}"


def volume_name(claim: ClaimSpec) -> str:
    """The PersistentVolume bound to `claim` (cluster-scoped, so the namespace is in the name)."""
    return f"efs-{claim.namespace}-{claim.name}"


def persistent_volume_spec(claim: ClaimSpec, *, file_system_id: str, access_point_id: str) -> dict:
    """A PersistentVolume on one EFS access point, pre-bound to exactly `claim`.

    aws-efs-csi-driver's static provisioning with access points (examples/kubernetes/
    access_points): `volumeHandle: <fs>::<fsap>`. The node plugin mounts an access point with TLS
    by itself (pkg/driver/node.go adds `tls`; a `tls` mount option only logs a deprecation
    warning), which the file system policy requires. Pulumi deletes the PV itself, so the reclaim
    policy only says that nothing else may delete data: Retain.
    """
    return {
        "capacity": {"storage": claim.size},
        "volume_mode": "Filesystem",
        "access_modes": ["ReadWriteMany"],
        "persistent_volume_reclaim_policy": "Retain",
        "storage_class_name": "",
        "csi": {"driver": EFS_CSI_DRIVER, "volume_handle": f"{file_system_id}::{access_point_id}"},
        "claim_ref": {"namespace": claim.namespace, "name": claim.name},
    }


class SharedStorage(pulumi.ComponentResource):
    """Encrypted EFS shared by every replica, exposed to Kubernetes as ReadWriteMany claims.

    Creates:
      - a KMS key (rotation on) and the EFS file system encrypted with it: general-purpose
        performance, elastic throughput, lifecycle to Infrequent Access (configurable);
      - the file system's backup policy (on in prod) and a file system policy that refuses
        any access that is not TLS through a mount target;
      - a security group admitting NFS (2049/tcp) only from the cluster security group, and a
        mount target in every private subnet;
      - the `aws-efs-csi-driver` EKS add-on (its node DaemonSet tolerates every taint, so it
        also runs on GPU nodes and mounts the volumes);
      - per claim, statically provisioned: an EFS access point rooted at
        `/dynamic/<namespace>/<claim>` (UID/GID 1000, mode 700), a PersistentVolume on it and
        the ReadWriteMany claim bound to that volume: `anythingllm/anythingllm-storage`
        (AnythingLLM's STORAGE_DIR) and `model-serving/model-cache` (the vLLM weight cache), or
        the `claims` given (the isolated canary adds `anythingllm/anythingllm-canary-storage`).
    In prod (`retain`), the key, the file system and each claim with its access point and
    volume (except disposable ones) are `protect`ed.

    Args:
        name: logical name prefix.
        settings: the stack's `storage` settings.
        cluster_name: physical EKS cluster name (names and the Pod Identity trust).
        network: the Network (VPC and private subnets).
        cluster: the Cluster (security group, provider, nodes for the add-on).
        namespaces: the WorkloadNamespaces the claims go into.
        addon_version: the add-on version (cluster.addon_version: pinned, or EKS's default for
            the cluster's minor).
        retain: prod durability (protect).
        protect: `protect` the file system, its access points, volumes and claims; `retain`
            unless the stack's allowReplacement names `storage` (README, "Replacements").
        protect_bindings: `protect` the claims' PersistentVolumes and claims (default:
            `protect`). A replaced cluster replaces every Kubernetes object, these included; they
            only bind pods to the access points, which keep the data, so allowing the cluster's
            replacement lifts their protection and not the file system's.
        tags: common tags.
        claims: the claims to create (default `CLAIMS`).
        restore_recovery_point: an AWS Backup recovery point of a file system of this project
            (restore.fileSystemRecoveryPoint): restored into the new file system before any claim
            is created (StorageRestore); `region` is then the stack's region.

    Attributes:
        file_system_id (Output); claims (claim name -> PVC resource).
    """

    def __init__(
        self,
        name: str,
        settings: StorageSettings,
        *,
        cluster_name: str,
        network: Network,
        cluster: Cluster,
        namespaces: WorkloadNamespaces,
        addon_version: pulumi.Input[str],
        retain: bool,
        tags: dict[str, str],
        claims: tuple[ClaimSpec, ...] = CLAIMS,
        protect: bool | None = None,
        protect_bindings: bool | None = None,
        restore_recovery_point: str | None = None,
        region: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("anythingllm:storage:SharedStorage", name, None, opts)
        protect = retain if protect is None else protect
        protect_bindings = protect if protect_bindings is None else protect_bindings

        key = encryption_key(
            f"{name}-efs", description=f"EFS shared storage of {cluster_name}",
            alias=f"{cluster_name}-efs", retain=retain, tags=tags, parent=self,
            policy=service_only_policy("elasticfilesystem"),
        )
        file_system = aws.efs.FileSystem(
            name,
            creation_token=creation_token(cluster_name),
            encrypted=True,
            kms_key_id=key.arn,
            performance_mode="generalPurpose",
            # Elastic: throughput follows the load (a burst of model downloads, many
            # replicas reading at once) without provisioning or burst credits.
            throughput_mode="elastic",
            lifecycle_policies=lifecycle_policies(settings.transition_to_ia_days),
            tags={**tags, "Name": f"{cluster_name}-shared"},
            opts=named(parent=self, protect=protect),
        )
        self.file_system_id = file_system.id
        self.file_system_arn = file_system.arn
        # Children of the component, not of the file system: they would inherit its
        # `protect`, and mount targets and policies are cheap to re-create.
        child = pulumi.ResourceOptions(parent=self)
        aws.efs.BackupPolicy(
            name, file_system_id=file_system.id,
            backup_policy={"status": "ENABLED" if settings.backups else "DISABLED"}, opts=child,
        )
        aws.efs.FileSystemPolicy(
            name, file_system_id=file_system.id,
            policy=file_system.arn.apply(lambda arn: json.dumps(tls_only_policy(arn))), opts=child,
        )
        security_group = cluster_only_security_group(
            f"{name}-nfs", description=f"EFS mount targets of {cluster_name}",
            vpc_id=network.vpc_id, port=NFS_PORT,
            cluster_security_group_id=cluster.cluster_security_group_id, tags=tags, parent=self,
        )
        mount_targets = [
            aws.efs.MountTarget(
                f"{name}-{index}",
                file_system_id=file_system.id,
                subnet_id=network.private_subnet_ids.apply(lambda ids, index=index: ids[index]),
                security_groups=[security_group.group.id],
                opts=child,
            )
            for index in range(network.zone_count)
        ]

        # Only the node plugin matters here: it mounts the access points. The controller, which
        # could create access points for dynamic claims, has no AWS identity: nothing here asks
        # it for one.
        addon = aws.eks.Addon(
            f"{name}-{EFS_CSI_ADDON}",
            cluster_name=cluster.cluster_name,
            addon_name=EFS_CSI_ADDON,
            addon_version=addon_version,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            # A replacement deletes the add-on first (named): its workloads keep running.
            preserve=True,
            tags=tags,
            # Its controller is a Deployment: it needs nodes (and DNS) to become healthy.
            opts=named(parent=self, depends_on=cluster.system_ready),
        )

        mountable: list[pulumi.Resource] = [addon, *mount_targets, security_group.rule]
        restored: list[pulumi.Resource] = []
        if restore_recovery_point is not None:
            assert region is not None
            restore = StorageRestore(
                f"{name}-restore", recovery_point_arn=restore_recovery_point, region=region,
                file_system_id=file_system.id, account_id=aws.get_caller_identity_output().account_id,
                partition=aws.get_partition_output().partition,
                namespace=namespaces.by_name[DATA_BOOTSTRAP.name].metadata.name,
                provider=cluster.provider, ready=mountable, tags=tags,
                opts=pulumi.ResourceOptions(parent=self))
            restored = [restore.done]

        # Static provisioning: Pulumi owns each access point and its PersistentVolume. A claim
        # provisioned dynamically is deleted before its volume, which the driver's controller
        # removes later, asynchronously: on destroy the add-on could go first and leave the
        # access point and a PV stuck on its finalizer. Here every piece is in the graph and
        # deleted in order (claim, volume, access point), with no controller involved.
        self.claims: dict[str, k8s.core.v1.PersistentVolumeClaim] = {}
        for claim in claims:
            keep = protect and not claim.disposable
            bind = protect_bindings and not claim.disposable
            access_point = aws.efs.AccessPoint(
                f"{name}-{claim.name}",
                file_system_id=file_system.id,
                # Every file is written as UID/GID 1000, whatever the pod's user.
                posix_user={"uid": POSIX_OWNER, "gid": POSIX_OWNER},
                root_directory={
                    "path": access_point_path(claim),
                    "creation_info": {"owner_uid": POSIX_OWNER, "owner_gid": POSIX_OWNER,
                                      "permissions": "700"},
                },
                tags={**tags, "Name": f"{cluster_name}-{claim.namespace}-{claim.name}"},
                opts=pulumi.ResourceOptions(parent=self, protect=keep),
            )
            volume = k8s.core.v1.PersistentVolume(
                f"{name}-{claim.name}",
                metadata={"name": volume_name(claim),
                          "annotations": {"anythingllm.io/purpose": claim.purpose}},
                spec=pulumi.Output.all(file_system.id, access_point.id).apply(
                    lambda ids, claim=claim: persistent_volume_spec(
                        claim, file_system_id=ids[0], access_point_id=ids[1])),
                # Pods can mount only once the mount targets exist and admit NFS from the cluster,
                # and only on nodes that run the driver's node plugin.
                # A restored file system: only once its data is in place (a pod mounting an
                # access point first would create its directory, empty).
                opts=pulumi.ResourceOptions(
                    parent=self, provider=cluster.provider, protect=bind,
                    depends_on=[*mountable, *restored],
                ),
            )
            self.claims[claim.name] = k8s.core.v1.PersistentVolumeClaim(
                f"{name}-{claim.name}",
                metadata={
                    "name": claim.name,
                    "namespace": namespaces.by_name[claim.namespace].metadata.name,
                    "annotations": {"anythingllm.io/purpose": claim.purpose},
                },
                spec={
                    "access_modes": ["ReadWriteMany"],
                    # No class: never provisioned dynamically, bound to its own volume only.
                    "storage_class_name": "",
                    "volume_name": volume.metadata.name,
                    "resources": {"requests": {"storage": claim.size}},
                },
                opts=pulumi.ResourceOptions(parent=self, provider=cluster.provider, protect=bind),
            )
        self.register_outputs({"file_system_id": self.file_system_id})
