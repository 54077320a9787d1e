"""Security groups of the data services: one TCP port, reachable only from the cluster."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class ClusterOnlySecurityGroup:
    """The group, and the rule that admits the cluster. Clients wait for `rule`: depending on the
    group alone does not wait for the rule (a child of the group, see tools/engine.py)."""

    group: aws.ec2.SecurityGroup
    rule: aws.vpc.SecurityGroupIngressRule


def cluster_only_security_group(name: str, *, description: str, vpc_id: pulumi.Input[str],
                                port: int, cluster_security_group_id: pulumi.Input[str],
                                tags: dict[str, str],
                                parent: pulumi.Resource) -> ClusterOnlySecurityGroup:
    """A security group that admits TCP `port` only from the EKS cluster security group.

    EKS attaches the cluster security group to the control plane ENIs and to every managed
    node (the launch templates set no security groups of their own), and with the VPC CNI
    pods send from their node's ENI, so this rule admits exactly the cluster's nodes and pods.
    The group has no egress rules: Pulumi's SecurityGroup drops the AWS default allow-all
    egress, and replies to admitted connections pass anyway (security groups are stateful).
    """
    group = aws.ec2.SecurityGroup(
        name,
        description=description,
        vpc_id=vpc_id,
        tags={**tags, "Name": name},
        opts=pulumi.ResourceOptions(parent=parent),
    )
    rule = aws.vpc.SecurityGroupIngressRule(
        name,
        security_group_id=group.id,
        description=f"{description}: from the EKS cluster security group",
        ip_protocol="tcp",
        from_port=port,
        to_port=port,
        referenced_security_group_id=cluster_security_group_id,
        tags=tags,
        opts=pulumi.ResourceOptions(parent=group),
    )
    return ClusterOnlySecurityGroup(group=group, rule=rule)
