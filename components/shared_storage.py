"""SharedStorage: EFS for AnythingLLM's storage directory and the model-weight cache."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from .cluster import Cluster
from .kms import encryption_key
from .namespaces import APP, MODELS, WorkloadNamespaces
from .naming import creation_token
from .network import Network
from .pod_identity import pod_identity_role
from .security_groups import cluster_only_security_group
from .settings import StorageSettings

NFS_PORT = 2049
EFS_CSI_ADDON = "aws-efs-csi-driver"
EFS_CSI_CONTROLLER_SA = "efs-csi-controller-sa"
EFS_CSI_POLICY = "service-role/AmazonEFSCSIDriverPolicy"
STORAGE_CLASS = "efs-ap"
# AnythingLLM's image runs as user anythingllm (UID/GID 1000). Access points write every file
# as this owner, so pods need no root, chown or fsGroup pass over a large tree.
POSIX_OWNER = "1000"


@dataclass(frozen=True)
class ClaimSpec:
    """A ReadWriteMany claim of the `efs-ap` class. EFS is elastic: the size is required by
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


def storage_class_parameters(file_system_id: str) -> dict[str, str]:
    """Dynamic provisioning through one EFS access point per claim.

    Each claim gets the directory `/dynamic/<namespace>/<claim>` owned by UID/GID 1000 with
    mode 700. The path is derived from the claim, not random (`ensureUniqueDirectory:
    false`), so a claim that is deleted and re-created (for example after a namespace was
    recreated) finds its data again.
    """
    return {
        "provisioningMode": "efs-ap",
        "fileSystemId": file_system_id,
        "directoryPerms": "700",
        "uid": POSIX_OWNER,
        "gid": POSIX_OWNER,
        "basePath": "/dynamic",
        "subPathPattern": "${.PVC.namespace}/${.PVC.name}",
        "ensureUniqueDirectory": "false",
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
      - the `aws-efs-csi-driver` EKS add-on, whose controller service account gets
        `AmazonEFSCSIDriverPolicy` through EKS Pod Identity (it creates and deletes access
        points). Its node DaemonSet tolerates every taint, so it also runs on GPU nodes;
      - the `efs-ap` StorageClass (reclaim policy Retain in prod, Delete elsewhere);
      - the claims `anythingllm/anythingllm-storage` (AnythingLLM's STORAGE_DIR) and
        `model-serving/model-cache` (the vLLM weight cache), or the `claims` given (the
        isolated canary adds `anythingllm/anythingllm-canary-storage`).
    In prod (`retain`), the key, the file system and the claims (except disposable ones) are
    `protect`ed.

    Args:
        name: logical name prefix.
        settings: the stack's `storage` settings.
        cluster_name: physical EKS cluster name (names and the Pod Identity trust).
        network: the Network (VPC and private subnets).
        cluster: the Cluster (security group, provider, nodes for the add-on).
        namespaces: the WorkloadNamespaces the claims go into.
        addon_version: pinned add-on version, or None for the EKS default of the cluster.
        retain: prod durability (protect, Retain reclaim policy).
        tags: common tags.
        claims: the claims to create (default `CLAIMS`).

    Attributes:
        file_system_id (Output); storage_class_name; claims (claim name -> PVC resource).
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
        addon_version: str | None,
        retain: bool,
        tags: dict[str, str],
        claims: tuple[ClaimSpec, ...] = CLAIMS,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("anythingllm:storage:SharedStorage", name, None, opts)
        partition = aws.get_partition_output().partition
        account_id = aws.get_caller_identity_output().account_id

        key = encryption_key(
            f"{name}-efs", description=f"EFS shared storage of {cluster_name}",
            alias=f"{cluster_name}-efs", retain=retain, tags=tags, parent=self,
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
            opts=pulumi.ResourceOptions(parent=self, protect=retain),
        )
        self.file_system_id = file_system.id
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

        controller_role = pod_identity_role(
            f"{name}-efs-csi", account_id=account_id, cluster_name=cluster_name,
            namespace="kube-system", service_account=EFS_CSI_CONTROLLER_SA, partition=partition,
            managed_policies=[EFS_CSI_POLICY], tags=tags, parent=self,
        )
        addon = aws.eks.Addon(
            f"{name}-{EFS_CSI_ADDON}",
            cluster_name=cluster.cluster_name,
            addon_name=EFS_CSI_ADDON,
            addon_version=addon_version,
            pod_identity_associations=[
                {"role_arn": controller_role.arn, "service_account": EFS_CSI_CONTROLLER_SA},
            ],
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            tags=tags,
            # Its controller is a Deployment: it needs nodes (and DNS) to become healthy.
            opts=pulumi.ResourceOptions(parent=self, depends_on=cluster.system_ready),
        )

        in_cluster = pulumi.ResourceOptions(parent=self, provider=cluster.provider)
        storage_class = k8s.storage.v1.StorageClass(
            f"{name}-{STORAGE_CLASS}",
            metadata={"name": STORAGE_CLASS},
            provisioner="efs.csi.aws.com",
            parameters=file_system.id.apply(storage_class_parameters),
            mount_options=["tls"],
            reclaim_policy="Retain" if retain else "Delete",
            volume_binding_mode="Immediate",
            opts=in_cluster,
        )
        self.storage_class_name = STORAGE_CLASS
        self.claims: dict[str, k8s.core.v1.PersistentVolumeClaim] = {}
        for claim in claims:
            self.claims[claim.name] = k8s.core.v1.PersistentVolumeClaim(
                f"{name}-{claim.name}",
                metadata={
                    "name": claim.name,
                    "namespace": namespaces.by_name[claim.namespace].metadata.name,
                    "annotations": {"anythingllm.io/purpose": claim.purpose},
                },
                spec={
                    "access_modes": ["ReadWriteMany"],
                    "storage_class_name": storage_class.metadata.name,
                    "resources": {"requests": {"storage": claim.size}},
                },
                # The controller provisions the access point; pods can only mount once the
                # mount targets exist and admit NFS from the cluster. On destroy the claims go
                # first, while the driver still runs to delete their access points.
                opts=pulumi.ResourceOptions(
                    parent=self, provider=cluster.provider, protect=retain and not claim.disposable,
                    depends_on=[addon, *mount_targets, security_group.rule],
                ),
            )
        self.register_outputs({"file_system_id": self.file_system_id})
