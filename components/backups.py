"""Backups: AWS Backup of the stack's database and file system, and an alert when a job fails."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from . import iam
from .kms import encryption_key, service_only_policy
from .observability import alert_topic, subscribe_emails
from .options import named
from .settings.backup import BackupSettings

# AWS Backup's managed policies for the role its jobs run as: back up, and restore (a restore
# stack starts its jobs with this role too).
BACKUP_ROLE_POLICIES = ("service-role/AWSBackupServiceRolePolicyForBackup",
                        "service-role/AWSBackupServiceRolePolicyForRestores")
# A job must start within an hour (AWS Backup's default) and finish within a day: the first, full
# backup of a large file system takes longer than the default three hours.
START_WINDOW_MINUTES = 60
COMPLETION_WINDOW_MINUTES = 1440
# The job states that mean no recovery point (AWS Backup developer guide, "Monitoring AWS Backup
# events using EventBridge"; the API's BackupJobState and CopyJobState).
FAILED_STATES = ("FAILED", "ABORTED", "EXPIRED")


def backup_role(name: str, *, description: str, policies: tuple[str, ...],
                account_id: pulumi.Input[str], partition: pulumi.Input[str], tags: dict[str, str],
                parent: pulumi.Resource) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
    """A role only AWS Backup of this account assumes (`aws:SourceAccount`), with AWS managed
    `policies` attached (`<name>-<policy>`, children of the role); returns the role and its
    attachments (what AWS Backup must not use the role before)."""
    role = aws.iam.Role(
        name, description=description,
        assume_role_policy=pulumi.Output.from_input(account_id).apply(
            lambda account: iam.to_json(iam.service_trust_policy_for_account(
                "backup.amazonaws.com", account_id=account))),
        tags=tags, opts=pulumi.ResourceOptions(parent=parent))
    attachments = [
        aws.iam.RolePolicyAttachment(
            f"{name}-{policy.rsplit('/', 1)[1]}", role=role.name,
            policy_arn=pulumi.Output.from_input(partition).apply(
                lambda p, policy=policy: iam.managed_policy_arn(p, policy)),
            opts=pulumi.ResourceOptions(parent=role))
        for policy in policies]
    return role, attachments


def failed_job_pattern(vault_name: str, vault_arn: str) -> dict:
    """The EventBridge pattern of a backup job into the vault, or a copy job out of it, that ended
    without a recovery point. A backup job's event names its vault (`backupVaultName`), a copy
    job's its source and destination vaults by ARN (`sourceBackupVaultArn`; AWS Backup developer
    guide, "Monitoring AWS Backup events using EventBridge", example events)."""
    return {
        "source": ["aws.backup"],
        "detail-type": ["Backup Job State Change", "Copy Job State Change"],
        "detail": {"state": list(FAILED_STATES),
                   "$or": [{"backupVaultName": [vault_name]},
                           {"sourceBackupVaultArn": [vault_arn]}]},
    }


def alert_topic_policy(*, topic_arn: str, rule_arn: str, account_id: str) -> dict:
    """EventBridge may publish for this stack's rule only (the EventBridge user guide's SNS
    target permission, with its confused-deputy guard)."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "BackupFailureRulePublishes", "Effect": "Allow",
         "Principal": {"Service": "events.amazonaws.com"}, "Action": "sns:Publish",
         "Resource": topic_arn,
         "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn},
                       "StringEquals": {"aws:SourceAccount": account_id}}},
    ]}


class Backups(pulumi.ComponentResource):
    """AWS Backup for the stack's data: RDS's own automated backups stay as they are.

    Creates:
      - a KMS key used only through AWS Backup, and the vault `<cluster>-backups` encrypted with
        it (EFS recovery points; RDS snapshots keep the database's own key); in prod the vault
        is protected and never force-destroyed, elsewhere a destroy deletes its recovery points;
      - with `vaultLock`, AWS Backup Vault Lock on it (governance, or compliance mode with
        `changeableForDays`);
      - with `copyToRegion`, a key and a vault of the same name in that region;
      - the role AWS Backup runs jobs as (trusting backup.amazonaws.com for this account only,
        AWS's managed backup and restore policies);
      - the plan `<cluster>-daily`: one rule, the schedule, retention, copy, and the recovery
        points tagged like the stack; its selection: the RDS instance and the EFS file system;
      - with alarm addresses, an EventBridge rule for backup and copy jobs of the vault that end
        FAILED, ABORTED or EXPIRED, and a topic (its own key and policy) that mails them; without
        (dev, staging), failed jobs show in the AWS Backup console only.

    Attributes:
        vault_name, vault_arn, role_arn (Outputs); alert_topic_arn (Output or None).
    """

    def __init__(self, name: str, settings: BackupSettings, *, cluster_name: str,
                 resources: list[pulumi.Input[str]], account_id: pulumi.Input[str],
                 partition: pulumi.Input[str], emails: list[str], retain: bool, protect: bool,
                 tags: dict[str, str], opts: pulumi.ResourceOptions | None = None):
        super().__init__("anythingllm:backup:Backups", name, None, opts)
        vault_name = f"{cluster_name}-backups"
        key = encryption_key(
            f"{name}-vault", description=f"AWS Backup vault of {cluster_name}",
            alias=f"{cluster_name}-backups", retain=retain, tags=tags, parent=self,
            # Through AWS Backup, and through the services it acts for: RDS for snapshot copies,
            # EFS for restores (AWS Backup developer guide, "Encryption for backups").
            policy=service_only_policy("backup", "rds", "elasticfilesystem"))
        vault = aws.backup.Vault(
            f"{name}-vault", name=vault_name, kms_key_arn=key.arn,
            # A throwaway stack's destroy deletes its recovery points; prod's never.
            force_destroy=not retain, tags=tags, opts=named(parent=self, protect=protect))
        self.vault_name, self.vault_arn = vault.name, vault.arn
        if settings.vault_lock is not None:
            lock = settings.vault_lock
            aws.backup.VaultLockConfiguration(
                f"{name}-vault-lock", backup_vault_name=vault.name,
                min_retention_days=lock.min_retention_days,
                max_retention_days=lock.max_retention_days,
                changeable_for_days=lock.changeable_for_days,
                # PutBackupVaultLockConfiguration replaces the vault's lock: created before the
                # old one is deleted, a changed lock would be deleted with it.
                opts=named(parent=vault))

        copy_actions = []
        if settings.copy_to_region is not None:
            region = settings.copy_to_region
            provider = aws.Provider(f"{name}-{region}", region=region,
                                    opts=pulumi.ResourceOptions(parent=self))
            copy_key = encryption_key(
                f"{name}-copy-vault", description=f"AWS Backup copies of {cluster_name}",
                alias=f"{cluster_name}-backups", retain=retain, tags=tags, parent=self,
                policy=service_only_policy("backup", "rds", "elasticfilesystem", region=region),
                provider=provider)
            copy_vault = aws.backup.Vault(
                f"{name}-copy-vault", name=vault_name, kms_key_arn=copy_key.arn,
                force_destroy=not retain, tags=tags,
                opts=named(parent=self, protect=protect, provider=provider))
            copy_actions = [{"destination_vault_arn": copy_vault.arn,
                             "lifecycle": {"delete_after": settings.copy_days}}]

        role, attachments = backup_role(
            f"{name}-role", description=f"AWS Backup jobs of {cluster_name}",
            policies=BACKUP_ROLE_POLICIES, account_id=account_id, partition=partition, tags=tags,
            parent=self)
        self.role_arn = role.arn

        plan = aws.backup.Plan(
            f"{name}-plan", name=f"{cluster_name}-daily",
            rules=[{
                "rule_name": "daily",
                "target_vault_name": vault.name,
                "schedule": settings.schedule,
                "start_window": START_WINDOW_MINUTES,
                "completion_window": COMPLETION_WINDOW_MINUTES,
                "lifecycle": {"delete_after": settings.retention_days},
                "copy_actions": copy_actions,
                "recovery_point_tags": tags,
            }],
            tags=tags, opts=named(parent=self))
        aws.backup.Selection(
            f"{name}-selection", name=f"{cluster_name}-data", plan_id=plan.id,
            iam_role_arn=role.arn, resources=resources,
            # The role must hold its policies before AWS Backup checks it.
            opts=named(parent=plan, depends_on=attachments))

        self.alert_topic_arn = None
        if emails:
            rule = aws.cloudwatch.EventRule(
                f"{name}-failed-jobs",
                description=f"AWS Backup jobs of {cluster_name} that ended without a recovery point",
                event_pattern=vault.arn.apply(lambda arn: json.dumps(
                    failed_job_pattern(vault_name, arn), sort_keys=True)),
                tags=tags, opts=pulumi.ResourceOptions(parent=self, depends_on=[vault]))
            topic = alert_topic(
                f"{name}-alerts", topic_name=f"{cluster_name}-backup-alerts",
                description=f"Backup alerts of {cluster_name}",
                key_policy=pulumi.Output.all(account_id, partition).apply(
                    lambda v: iam.to_json(iam.backup_alert_topic_key_policy(account_id=v[0],
                                                                            partition=v[1]))),
                retain=retain, tags=tags, parent=self)
            access = aws.sns.TopicPolicy(
                f"{name}-alerts", arn=topic.arn,
                policy=pulumi.Output.all(topic.arn, rule.arn, account_id).apply(
                    lambda v: json.dumps(alert_topic_policy(topic_arn=v[0], rule_arn=v[1],
                                                            account_id=v[2]), sort_keys=True)),
                opts=pulumi.ResourceOptions(parent=topic))
            aws.cloudwatch.EventTarget(
                f"{name}-failed-jobs", rule=rule.name, arn=topic.arn, target_id="alerts",
                opts=named(parent=rule, depends_on=[access]))
            subscribe_emails(f"{name}-alerts", topic, emails)
            self.alert_topic_arn = topic.arn
        self.register_outputs({"vault_arn": vault.arn})
