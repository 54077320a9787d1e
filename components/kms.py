"""Customer-managed KMS keys, one per data service, so each can be audited and revoked alone."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from . import iam
from .options import named


def service_only_policy(*services: str, region: str | None = None) -> pulumi.Output[str]:
    """The key policy of a data key used only through `services` (iam.service_key_policy), in
    `region` (default: the stack's)."""
    identity = aws.get_caller_identity_output()
    partition = aws.get_partition_output().partition
    region = pulumi.Output.from_input(region) if region else aws.get_region_output().region
    return pulumi.Output.all(identity.account_id, partition, region).apply(
        lambda values: iam.to_json(iam.service_key_policy(
            account_id=values[0], partition=values[1], region=values[2], services=list(services))))


def encryption_key(name: str, *, description: str, alias: str, retain: bool,
                   tags: dict[str, str], parent: pulumi.Resource,
                   policy: pulumi.Input[str] | None = None,
                   provider: pulumi.ProviderResource | None = None) -> aws.kms.Key:
    """A symmetric key with yearly rotation and its alias `alias/<alias>`.

    `retain` (prod) gives the longest deletion window and `protect`s the key: deleting a key
    makes every snapshot and backup encrypted with it unreadable, so it must outlive an
    accidental `pulumi destroy`. `policy` replaces the default key policy (account only);
    `provider`: another region's AWS provider (a key lives in one region).
    """
    key = aws.kms.Key(
        name,
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=30 if retain else 7,
        policy=policy,
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent, protect=retain, provider=provider),
    )
    aws.kms.Alias(
        name, name=f"alias/{alias}", target_key_id=key.key_id,
        opts=named(parent=key),
    )
    return key
