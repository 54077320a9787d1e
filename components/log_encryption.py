"""LogEncryption: the customer-managed key every CloudWatch log group of the stack is encrypted with."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from . import iam
from .kms import encryption_key


class LogEncryption(pulumi.ComponentResource):
    """Creates one KMS key (yearly rotation, alias `<cluster>-logs`) whose policy lets CloudWatch
    Logs use it for the stack's log groups only (names under `log_group_prefixes`), and the
    account administer it.
    The control-plane, PostgreSQL, Container Insights and flow-log groups are created with it,
    before the services that write into them (which never create a group that exists).

    Args:
        name: logical name prefix.
        cluster_name: names the alias.
        region: the region of the log groups (CloudWatch Logs' regional service principal).
        log_group_prefixes: the names the stack's log groups start with.
        retain: protect the key (prod): logs encrypted with a deleted key are unreadable.
        tags: common tags.

    Attributes:
        key_arn: the key's ARN (an Output), for `kms_key_id` of each log group.
    """

    def __init__(self, name: str, *, cluster_name: str, region: str, log_group_prefixes: list[str],
                 retain: bool, tags: dict[str, str], opts: pulumi.ResourceOptions | None = None):
        super().__init__("anythingllm:logs:LogEncryption", name, None, opts)
        identity = aws.get_caller_identity_output()
        partition = aws.get_partition_output().partition
        policy = pulumi.Output.all(identity.account_id, partition).apply(
            lambda values: iam.to_json(iam.logs_key_policy(
                account_id=values[0], partition=values[1], region=region,
                log_group_prefixes=log_group_prefixes)))
        key = encryption_key(name, description=f"CloudWatch Logs of {cluster_name}",
                             alias=f"{cluster_name}-logs", retain=retain, tags=tags, parent=self,
                             policy=policy)
        self.key_arn = key.arn
        self.register_outputs({"key_arn": self.key_arn})
