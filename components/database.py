"""Database: RDS for PostgreSQL with pgvector, bootstrapped for its consumers."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random

from . import iam
from .cluster import Cluster
from .db_bootstrap import (
    MASTER_USERNAME,
    POSTGRES_PORT,
    RDS_CA_FILE,
    RDS_CA_KEY,
    RDS_CA_MOUNT_PATH,
    SCRIPT_MOUNT_PATH,
    DatabaseConsumer,
    bootstrap_job_name,
    bootstrap_shell,
    bootstrap_sql,
    connection_secret_data,
)
from .kms import encryption_key, service_only_policy
from .namespaces import DATA_BOOTSTRAP, WorkloadNamespaces
from .naming import RESTORED_FROM_TAG, db_instance_identifier
from .network import Network
from .node_group import system_labels
from .options import named
from .rds_ca import RDS_CA_IDENTIFIER, root_certificate
from .security_groups import cluster_only_security_group
from .settings import DatabaseSettings
from .versions import POSTGRES_CLIENT_IMAGE, POSTGRES_CLIENT_UID
from .workloads import (
    HIGH_UID_CHECK,
    IMAGE_PULL_POLICY,
    SECRETS_AS_FILES_CHECK,
    container_security_context,
    pod_security_context,
    remember,
    scan_exceptions,
    token_less_account,
)

LOG_EXPORTS = ("postgresql", "upgrade")
CA_CONFIG_MAP = "rds-ca"
CREDENTIALS_SECRET = "db-bootstrap-credentials"
BOOTSTRAP_SERVICE_ACCOUNT = "db-bootstrap"
# Generated passwords are letters and digits only: they go into URLs and psql variables
# unescaped by some clients; 40 of them carry about 238 bits.
PASSWORD_LENGTH = 40
# A Job that runs longer than this failed: waiting for DNS plus the SQL take well under it.
BOOTSTRAP_DEADLINE_SECONDS = 900
BOOTSTRAP_SCAN_EXCEPTIONS = {
    SECRETS_AS_FILES_CHECK: "psql reads each password from the environment (\\getenv and PGPASSWORD), "
                            "so none is written to a file, the script or a command line",
    HIGH_UID_CHECK: "postgres (uid 999) is the image's only non-root user; PostgreSQL's client tools "
                    "look their uid up in /etc/passwd (src/common/username.c)",
}


def parameter_group_parameters() -> list[dict[str, str]]:
    """Server parameters: refuse every connection that is not TLS."""
    return [{"name": "rds.force_ssl", "value": "1", "apply_method": "immediate"}]


def bootstrap_pod_spec(*, consumers: list[DatabaseConsumer], host: str,
                       script_config_map: str) -> dict:
    """Pod of the bootstrap Job: psql as an unprivileged user, read-only, on the system nodes."""
    secret_env = [
        {"name": variable, "value_from": {"secret_key_ref": {"name": CREDENTIALS_SECRET,
                                                             "key": variable}}}
        for variable in ["PGPASSWORD", *[c.password_variable for c in consumers]]
    ]
    return {
        "service_account_name": BOOTSTRAP_SERVICE_ACCOUNT,
        "automount_service_account_token": False,
        "restart_policy": "Never",
        "node_selector": system_labels(),
        "security_context": pod_security_context(uid=POSTGRES_CLIENT_UID),
        "containers": [{
            "name": "bootstrap",
            "image": POSTGRES_CLIENT_IMAGE,
            "image_pull_policy": IMAGE_PULL_POLICY,
            "command": ["sh", f"{SCRIPT_MOUNT_PATH}/bootstrap.sh"],
            "env": [
                {"name": "PGHOST", "value": host},
                {"name": "PGPORT", "value": str(POSTGRES_PORT)},
                {"name": "PGDATABASE", "value": "postgres"},
                {"name": "PGUSER", "value": MASTER_USERNAME},
                {"name": "PGSSLMODE", "value": "verify-full"},
                {"name": "PGSSLROOTCERT", "value": RDS_CA_FILE},
                {"name": "PGCONNECT_TIMEOUT", "value": "10"},
                {"name": "HOME", "value": "/tmp"},
                *secret_env,
            ],
            "security_context": container_security_context(read_only_root=True),
            "resources": {
                "requests": {"cpu": "50m", "memory": "64Mi"},
                "limits": {"cpu": "500m", "memory": "256Mi"},
            },
            "volume_mounts": [
                {"name": "script", "mount_path": SCRIPT_MOUNT_PATH, "read_only": True},
                {"name": "rds-ca", "mount_path": RDS_CA_MOUNT_PATH, "read_only": True},
                {"name": "tmp", "mount_path": "/tmp"},
            ],
        }],
        "volumes": [
            {"name": "script", "config_map": {"name": script_config_map}},
            {"name": "rds-ca", "config_map": {"name": CA_CONFIG_MAP}},
            {"name": "tmp", "empty_dir": {"size_limit": "16Mi"}},
        ],
    }


class Database(pulumi.ComponentResource):
    """RDS for PostgreSQL reachable only from the cluster, with a role and a database per consumer.

    Creates:
      - a KMS key (rotation on) for storage and Performance Insights;
      - a DB subnet group over the private subnets and a security group admitting 5432/tcp
        only from the cluster security group;
      - a parameter group (`rds.force_ssl=1`) of the configured major version's family, and
        during a major upgrade also the one of the major the instance still runs;
      - log groups with retention for the exported `postgresql` and `upgrade` logs, created
        before the instance (otherwise RDS creates them without expiry);
      - the master password (pulumi-random, a secret) and the instance: gp3 storage encrypted
        with the key and autoscaling to `maxAllocatedStorageGib`, private, Multi-AZ,
        backups, windows and Performance Insights from config, the `rds-ca-rsa2048-g1`
        certificate authority, minor upgrades on, no paid RDS Extended Support, and in prod
        deletion protection, a final snapshot, automated backups kept after deletion and
        `protect`;
      - in the cluster: the `rds-ca` ConfigMap (the region's RDS root) in `data-bootstrap`
        and in every consumer's namespace, the master credentials Secret and a service
        account without token in `data-bootstrap`, the bootstrap script ConfigMap and Job
        (see db_bootstrap.py), and per consumer a generated password and a connection Secret
        `<consumer>-database` in its namespace, created only after the Job has succeeded.

    Args:
        name: logical name prefix.
        settings: the stack's `database` settings.
        cluster_name: physical EKS cluster name (the instance identifier derives from it).
        region: AWS region (selects the RDS root certificate).
        network: the Network (private subnets).
        cluster: the Cluster (security group, provider, system nodes for the Job).
        namespaces: the WorkloadNamespaces (bootstrap and consumer namespaces).
        consumers: who gets a role and a database.
        retain: prod durability (final snapshot, kept backups, protect).
        protect: `protect` the instance; `retain` unless the stack's allowReplacement names
            `database` for a reviewed replacement (README, "Replacements").
        restore_snapshot: an RDS snapshot (identifier or ARN) the instance is created from
            (restore.databaseSnapshot), copied under the stack's key first;
            `restore_storage_gib` its storage when larger than `allocatedStorageGib`.
        tags: common tags.

    Attributes:
        address (Output, the instance host name); port; connection_secrets (consumer name ->
        Secret); bootstrap_job; instance.
    """

    def __init__(
        self,
        name: str,
        settings: DatabaseSettings,
        *,
        cluster_name: str,
        region: str,
        network: Network,
        cluster: Cluster,
        namespaces: WorkloadNamespaces,
        consumers: list[DatabaseConsumer],
        retain: bool,
        tags: dict[str, str],
        logs_key_arn: pulumi.Input[str] | None = None,
        protect: bool | None = None,
        restore_snapshot: str | None = None,
        restore_storage_gib: int | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("anythingllm:database:Database", name, None, opts)
        protect = retain if protect is None else protect
        identifier = db_instance_identifier(cluster_name)
        child = pulumi.ResourceOptions(parent=self)

        key = encryption_key(
            f"{name}-rds", description=f"RDS PostgreSQL of {cluster_name}",
            alias=f"{cluster_name}-rds", retain=retain, tags=tags, parent=self,
            policy=service_only_policy("rds"),
        )
        subnet_group = aws.rds.SubnetGroup(
            name, description=f"Private subnets of {cluster_name}",
            subnet_ids=network.private_subnet_ids, tags=tags, opts=child,
        )
        security_group = cluster_only_security_group(
            f"{name}-postgres", description=f"PostgreSQL of {cluster_name}",
            vpc_id=network.vpc_id, port=POSTGRES_PORT,
            cluster_security_group_id=cluster.cluster_security_group_id, tags=tags, parent=self,
        )
        # One group per major: the engine's, and during a major upgrade the one the instance
        # still runs until RDS has moved it (settings.parameter_group_majors). The first group
        # keeps the URN a stack had when it had a single group (`name`), so that group is kept.
        parameter_groups = {
            major: aws.rds.ParameterGroup(
                f"{name}-postgres{major}", family=f"postgres{major}",
                description=f"PostgreSQL {major} of {cluster_name}: TLS only",
                parameters=parameter_group_parameters(), tags=tags,
                opts=pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(name=name)]
                                            if index == 0 else None))
            for index, major in enumerate(settings.parameter_group_majors)
        }
        parameter_group = parameter_groups[settings.major_version]
        log_groups = [
            aws.cloudwatch.LogGroup(
                f"{name}-{export}", name=f"/aws/rds/instance/{identifier}/{export}",
                retention_in_days=settings.log_retention_days, kms_key_id=logs_key_arn,
                tags=tags,
                # Kept in AWS when a retained (prod) stack is destroyed, like its final snapshot.
                opts=named(parent=self, retain_on_delete=retain),
            )
            for export in LOG_EXPORTS
        ]
        master_password = random.RandomPassword(
            f"{name}-master", length=PASSWORD_LENGTH, special=False, opts=child,
        )
        final_snapshot = None
        if retain:
            suffix = random.RandomId(f"{name}-final-snapshot", byte_length=4, opts=child)
            final_snapshot = suffix.hex.apply(lambda hex_: f"{identifier}-final-{hex_}")

        monitoring = (self._monitoring_role(name, tags=tags)
                      if settings.enhanced_monitoring_seconds else [])
        # A restore: RDS restores a snapshot with the snapshot's key (RestoreDBInstanceFromDBSnapshot
        # takes none), so the snapshot is first copied under this stack's key (CopyDBSnapshot); the
        # instance is then created from the copy, with this stack's key, username and, set right
        # after the restore, password. The copy is the stack's: deleted with it.
        # A restore takes at least the snapshot's storage, which RDS cannot shrink; autoscaling
        # keeps its 10 % headroom above it.
        allocated = max(settings.allocated_storage_gib, restore_storage_gib or 0)
        maximum = (max(settings.max_allocated_storage_gib, -(-allocated * 11 // 10))
                   if settings.max_allocated_storage_gib else 0)
        restore_source = None
        if restore_snapshot is not None:
            restore_source = aws.rds.SnapshotCopy(
                f"{name}-restore-source", source_db_snapshot_identifier=restore_snapshot,
                target_db_snapshot_identifier=f"{identifier}-restore-source", kms_key_id=key.arn,
                copy_tags=False, tags=tags,
                # A copy takes as long as the snapshot is large; the provider's default is 20 min.
                # RDS reads the source back as an ARN: given an identifier, every later `up`
                # would replace the copy (and fail on its name). Read at creation only.
                opts=named(parent=self, custom_timeouts=pulumi.CustomTimeouts(create="4h"),
                           ignore_changes=["sourceDbSnapshotIdentifier"]))
        self.instance = aws.rds.Instance(
            name,
            identifier=identifier,
            snapshot_identifier=(restore_source.target_db_snapshot_identifier
                                 if restore_source is not None else None),
            engine="postgres",
            engine_version=settings.engine_version,
            instance_class=settings.instance_class,
            allocated_storage=allocated,
            max_allocated_storage=maximum,
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=key.arn,
            db_subnet_group_name=subnet_group.name,
            vpc_security_group_ids=[security_group.group.id],
            parameter_group_name=parameter_group.name,
            publicly_accessible=False,
            network_type="IPV4",
            multi_az=settings.multi_az,
            port=POSTGRES_PORT,
            username=MASTER_USERNAME,
            password=master_password.result,
            iam_database_authentication_enabled=False,
            ca_cert_identifier=RDS_CA_IDENTIFIER,
            backup_retention_period=settings.backup_retention_days,
            backup_window=settings.backup_window,
            maintenance_window=settings.maintenance_window,
            copy_tags_to_snapshot=True,
            delete_automated_backups=not retain,
            deletion_protection=settings.deletion_protection,
            skip_final_snapshot=not retain,
            final_snapshot_identifier=final_snapshot,
            monitoring_interval=settings.enhanced_monitoring_seconds,
            monitoring_role_arn=monitoring[0].arn if monitoring else None,
            performance_insights_enabled=settings.performance_insights,
            performance_insights_kms_key_id=key.arn if settings.performance_insights else None,
            performance_insights_retention_period=7 if settings.performance_insights else None,
            enabled_cloudwatch_logs_exports=list(LOG_EXPORTS),
            auto_minor_version_upgrade=True,
            # Major upgrades happen only when engineVersion changes in the stack file, which a
            # reviewer sees in the preview diff; without this flag such a change cannot apply.
            allow_major_version_upgrade=True,
            # Prod changes wait for the maintenance window unless a reviewed change says
            # otherwise (database.applyImmediately); elsewhere they apply at once.
            apply_immediately=settings.apply_immediately,
            # At the end of standard support, upgrade instead of paying for Extended Support.
            engine_lifecycle_support="open-source-rds-extended-support-disabled",
            # A restored instance says from what: the preview compares it with restore.databaseSnapshot.
            tags={**tags, "Name": identifier,
                  **({RESTORED_FROM_TAG: restore_snapshot} if restore_snapshot else {})},
            # RDS checks the monitoring role's permissions when it is set: attached first.
            opts=named(
                parent=self, protect=protect, depends_on=[*log_groups, *monitoring],
                # Read at creation only: a restore stack keeps its database when the restore key
                # goes, and a stack that gains one is refused by the preview (loading.py) rather
                # than replaced.
                ignore_changes=["snapshotIdentifier"],
                # RDS backs a restored instance up before it is available (hours for a large one).
                custom_timeouts=pulumi.CustomTimeouts(create="6h") if restore_source else None),
        )
        self.address = self.instance.address
        self.port = POSTGRES_PORT

        self._bootstrap(name, region=region, cluster=cluster, namespaces=namespaces,
                        consumers=consumers, master_password=master_password,
                        access_rule=security_group.rule,
                        server_version=f"postgres {settings.engine_version}" + (
                            f" from {settings.upgrading_from}" if settings.upgrading_from else ""))
        self.register_outputs({"address": self.address})

    def _bootstrap(self, name: str, *, region: str, cluster: Cluster,
                   namespaces: WorkloadNamespaces, consumers: list[DatabaseConsumer],
                   master_password: random.RandomPassword,
                   access_rule: pulumi.Resource, server_version: str) -> None:
        provider = cluster.provider
        ca_pem = root_certificate(region)
        ca_maps: dict[str, k8s.core.v1.ConfigMap] = {}
        for namespace in sorted({DATA_BOOTSTRAP.name, *[c.namespace for c in consumers]}):
            ca_maps[namespace] = k8s.core.v1.ConfigMap(
                f"{name}-rds-ca-{namespace}",
                metadata={"name": CA_CONFIG_MAP,
                          "namespace": namespaces.by_name[namespace].metadata.name},
                data={RDS_CA_KEY: ca_pem},
                opts=pulumi.ResourceOptions(parent=self, provider=provider),
            )

        passwords = {
            consumer.name: random.RandomPassword(
                f"{name}-{consumer.name}", length=PASSWORD_LENGTH, special=False,
                opts=pulumi.ResourceOptions(parent=self))
            for consumer in consumers
        }
        bootstrap_namespace = namespaces.by_name[DATA_BOOTSTRAP.name].metadata.name
        in_bootstrap = pulumi.ResourceOptions(parent=self, provider=provider)
        credentials = k8s.core.v1.Secret(
            f"{name}-bootstrap-credentials",
            metadata={"name": CREDENTIALS_SECRET, "namespace": bootstrap_namespace},
            type="Opaque",
            string_data={
                "PGPASSWORD": master_password.result,
                **{c.password_variable: passwords[c.name].result for c in consumers},
            },
            opts=in_bootstrap,
        )
        service_account = token_less_account(f"{name}-bootstrap", account=BOOTSTRAP_SERVICE_ACCOUNT,
                                             namespace=bootstrap_namespace, opts=in_bootstrap)
        sql, shell = bootstrap_sql(consumers), bootstrap_shell()
        # The server's version is part of the name: the Job runs again after an engine change
        # (and again when a major upgrade is over: upgradingFrom goes), to update extensions.
        job_name = bootstrap_job_name(sql, shell, POSTGRES_CLIENT_IMAGE, ca_pem, server_version)
        script = k8s.core.v1.ConfigMap(
            f"{name}-bootstrap-script",
            metadata={"name": job_name, "namespace": bootstrap_namespace},
            data={"bootstrap.sql": sql, "bootstrap.sh": shell},
            opts=in_bootstrap,
        )
        self.bootstrap_job = k8s.batch.v1.Job(
            f"{name}-bootstrap",
            metadata={
                "name": job_name,
                "namespace": bootstrap_namespace,
                "labels": {"app.kubernetes.io/name": "db-bootstrap",
                           "app.kubernetes.io/part-of": "anythingllm"},
                # A failed run is replaced by the next `pulumi up` instead of awaited forever.
                "annotations": {"pulumi.com/replaceUnready": "true",
                                **scan_exceptions(BOOTSTRAP_SCAN_EXCEPTIONS,
                                                  images=(POSTGRES_CLIENT_IMAGE,))},
            },
            spec={
                "backoff_limit": 4,
                "active_deadline_seconds": BOOTSTRAP_DEADLINE_SECONDS,
                # No ttlSecondsAfterFinished: a Job deleted by Kubernetes would be re-created
                # by the next `pulumi up`.
                "template": {
                    "metadata": {"labels": {"app.kubernetes.io/name": "db-bootstrap"}},
                    "spec": self.instance.address.apply(lambda host: bootstrap_pod_spec(
                        consumers=consumers, host=host, script_config_map=job_name)),
                },
            },
            opts=pulumi.ResourceOptions(
                parent=self, provider=provider,
                # Nodes and DNS must exist to run it, and the rule that lets it reach PostgreSQL
                # (the instance is already a dependency via its address, its rule is not).
                depends_on=[credentials, service_account, script, ca_maps[DATA_BOOTSTRAP.name],
                            access_rule, *cluster.system_ready],
                custom_timeouts=pulumi.CustomTimeouts(
                    create=f"{BOOTSTRAP_DEADLINE_SECONDS + 300}s",
                    update=f"{BOOTSTRAP_DEADLINE_SECONDS + 300}s"),
            ),
        )

        self.connection_secrets: dict[str, k8s.core.v1.Secret] = {}
        for consumer in consumers:
            data = pulumi.Output.all(passwords[consumer.name].result, self.instance.address).apply(
                lambda args, consumer=consumer: connection_secret_data(
                    consumer, password=args[0], host=args[1]))
            self.connection_secrets[consumer.name] = k8s.core.v1.Secret(
                f"{name}-{consumer.name}-connection",
                metadata={
                    "name": consumer.secret_name,
                    "namespace": namespaces.by_name[consumer.namespace].metadata.name,
                    "annotations": {"anythingllm.io/rds-ca-config-map": CA_CONFIG_MAP,
                                    "anythingllm.io/rds-ca-mount-path": RDS_CA_MOUNT_PATH},
                },
                type="Opaque",
                string_data=pulumi.Output.secret(data),
                # Consumers that mount this Secret start only once their role and database
                # exist: the Secret appears after the Job has succeeded.
                opts=pulumi.ResourceOptions(
                    parent=self, provider=provider,
                    depends_on=[self.bootstrap_job, ca_maps[consumer.namespace]],
                ),
            )
            remember(self.connection_secrets[consumer.name], data)

    def _monitoring_role(self, name: str, *, tags: dict[str, str]) -> list[pulumi.Resource]:
        """The role RDS Enhanced Monitoring publishes OS metrics with (to CloudWatch Logs,
        RDSOSMetrics): AWS's managed policy for it, assumable by RDS for this account only.
        Returns [role, attachment]."""
        account_id = aws.get_caller_identity_output().account_id
        partition = aws.get_partition_output().partition
        role = aws.iam.Role(
            f"{name}-monitoring",
            description=f"RDS Enhanced Monitoring of {name}",
            assume_role_policy=account_id.apply(lambda account: iam.to_json(
                iam.service_trust_policy_for_account("monitoring.rds.amazonaws.com", account_id=account))),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-monitoring",
            role=role.name,
            policy_arn=partition.apply(lambda p: iam.managed_policy_arn(
                p, "service-role/AmazonRDSEnhancedMonitoringRole")),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return [role, attachment]
