"""An IAM role for one Kubernetes service account, assumed through EKS Pod Identity."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from . import iam


@dataclass(frozen=True)
class PodIdentityRole:
    """The role, and its ARN as an Output that depends on the role's policies too.

    Whatever takes `arn` (the Pod Identity association, an add-on) is created after the policies
    are attached and deleted before they are detached. Without that edge a destroy could detach
    the policies while the pod still works: the load balancer controller, for one, would lose
    the rights to delete the ALB and its target groups halfway through, leaving them behind.
    """
    role: aws.iam.Role
    arn: pulumi.Output[str]
    namespace: str
    service_account: str


def pod_identity_association(name: str, role: PodIdentityRole, *, cluster_name: pulumi.Input[str],
                             tags: dict[str, str],
                             opts: pulumi.ResourceOptions) -> aws.eks.PodIdentityAssociation:
    """The association of `role` with its service account in `cluster_name` (for workloads
    installed by Helm; an add-on takes `pod_identity_associations` instead)."""
    return aws.eks.PodIdentityAssociation(
        name,
        cluster_name=cluster_name,
        namespace=role.namespace,
        service_account=role.service_account,
        role_arn=role.arn,
        tags=tags,
        opts=opts,
    )


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
) -> PodIdentityRole:
    """Create the role (trust scoped to `namespace/service_account` of `cluster_name`),
    attach the AWS managed policies named in `managed_policies` (e.g.
    "service-role/AmazonEFSCSIDriverPolicy") and the optional `inline_policy` JSON, all as children of
    `parent`. The caller creates the association (an add-on's `pod_identity_associations`
    or `pod_identity_association`)."""
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
    permissions: list[pulumi.Resource] = []
    for policy in managed_policies:
        permissions.append(aws.iam.RolePolicyAttachment(
            f"{name}-{policy.rsplit('/', 1)[-1]}",
            role=role.name,
            policy_arn=pulumi.Output.from_input(partition).apply(
                lambda p, policy=policy: iam.managed_policy_arn(p, policy)),
            opts=pulumi.ResourceOptions(parent=role),
        ))
    if inline_policy is not None:
        permissions.append(aws.iam.RolePolicy(
            name, role=role.id, policy=inline_policy, opts=pulumi.ResourceOptions(parent=role),
        ))
    arn = pulumi.Output.all(role.arn, *(p.id for p in permissions)).apply(lambda values: values[0])
    return PodIdentityRole(role=role, arn=arn, namespace=namespace, service_account=service_account)
