"""An IAM role for one Kubernetes service account, assumed through EKS Pod Identity."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from . import iam


def pod_identity_role(
    name: str,
    *,
    account_id: pulumi.Input[str],
    cluster_name: str,
    namespace: str,
    service_account: str,
    partition: pulumi.Input[str],
    managed_policies: Sequence[str] = (),
    inline_policy: pulumi.Input[str] | None = None,
    tags: dict[str, str],
    parent: pulumi.Resource,
) -> aws.iam.Role:
    """Create the role (trust scoped to `namespace/service_account` of `cluster_name`),
    attach the AWS managed policies named in `managed_policies` (e.g.
    "service-role/AmazonEFSCSIDriverPolicy") and the optional `inline_policy` JSON, all as children of
    `parent`. The caller creates the association (an add-on's `pod_identity_associations`
    or an `aws.eks.PodIdentityAssociation`)."""
    trust = pulumi.Output.from_input(account_id).apply(
        lambda account: iam.to_json(iam.pod_identity_trust_policy(
            account_id=account, cluster_name=cluster_name, namespace=namespace,
            service_account=service_account,
        ))
    )
    role = aws.iam.Role(
        name,
        description=f"EKS Pod Identity role of {namespace}/{service_account} in {cluster_name}",
        assume_role_policy=trust,
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    for policy in managed_policies:
        aws.iam.RolePolicyAttachment(
            f"{name}-{policy.rsplit('/', 1)[-1]}",
            role=role.name,
            policy_arn=pulumi.Output.from_input(partition).apply(
                lambda p, policy=policy: iam.managed_policy_arn(p, policy)),
            opts=pulumi.ResourceOptions(parent=role),
        )
    if inline_policy is not None:
        aws.iam.RolePolicy(
            name, role=role.id, policy=inline_policy, opts=pulumi.ResourceOptions(parent=role),
        )
    return role
