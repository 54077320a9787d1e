"""IAM policy documents as pure functions, so tests can assert them exactly."""

from __future__ import annotations

import json
from typing import Any

POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"


def _document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def to_json(document: dict[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def service_trust_policy(service: str) -> dict[str, Any]:
    """Trust policy letting an AWS service (eks, ec2) assume the role."""
    return _document({
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": ["sts:AssumeRole", "sts:TagSession"] if service.startswith("eks") else
                  "sts:AssumeRole",
    })


def pod_identity_trust_policy(*, account_id: str, cluster_name: str, namespace: str,
                              service_account: str) -> dict[str, Any]:
    """Trust policy for EKS Pod Identity, limited to one service account of one cluster.

    Pod Identity tags each session with `eks-cluster-name`, `kubernetes-namespace` and
    `kubernetes-service-account` (EKS user guide, "Create IAM role with trust policy
    required by EKS Pod Identity"); conditioning on them stops any other association in
    the account from assuming the role.
    """
    return _document({
        "Sid": "AllowEksPodIdentityForOneServiceAccount",
        "Effect": "Allow",
        "Principal": {"Service": POD_IDENTITY_PRINCIPAL},
        "Action": ["sts:AssumeRole", "sts:TagSession"],
        "Condition": {
            "StringEquals": {
                "aws:SourceAccount": account_id,
                "aws:RequestTag/eks-cluster-name": cluster_name,
                "aws:RequestTag/kubernetes-namespace": namespace,
                "aws:RequestTag/kubernetes-service-account": service_account,
            },
        },
    })


def cluster_autoscaler_policy(*, cluster_name: str, partition: str, region: str,
                              account_id: str) -> dict[str, Any]:
    """Least-privilege policy for the Cluster Autoscaler on managed node groups.

    Describe calls cannot be scoped by resource. The two calls that change capacity are
    allowed only on Auto Scaling groups tagged `k8s.io/cluster-autoscaler/<cluster>=owned`,
    which EKS puts on every managed node group's ASG of this cluster.
    """
    return _document(
        {
            "Sid": "DescribeForScalingDecisions",
            "Effect": "Allow",
            "Action": [
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeLaunchConfigurations",
                "autoscaling:DescribeScalingActivities",
                "autoscaling:DescribeTags",
                "ec2:DescribeImages",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplateVersions",
                "ec2:GetInstanceTypesFromInstanceRequirements",
            ],
            "Resource": "*",
        },
        {
            "Sid": "ScaleOwnNodeGroupsOnly",
            "Effect": "Allow",
            "Action": [
                "autoscaling:SetDesiredCapacity",
                "autoscaling:TerminateInstanceInAutoScalingGroup",
            ],
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned",
                },
            },
        },
        {
            "Sid": "ReadOwnNodeGroups",
            "Effect": "Allow",
            "Action": ["eks:DescribeNodegroup"],
            "Resource": f"arn:{partition}:eks:{region}:{account_id}:nodegroup/{cluster_name}/*",
        },
    )


def managed_policy_arn(partition: str, name: str) -> str:
    return f"arn:{partition}:iam::aws:policy/{name}"


def alarm_topic_key_policy(*, account_id: str, partition: str) -> dict[str, Any]:
    """Key policy of the alarm topic's KMS key. The account administers the key through IAM (the
    default key policy's statement); CloudWatch alarms and RDS event notifications may use it, or
    they could not publish to the encrypted topic (the AWS managed key `alias/aws/sns` does not
    allow them; SNS developer guide, "Configuring AWS KMS permissions for AWS services", which
    the RDS user guide's "Subscribing to Amazon RDS event notification" points to)."""
    return _document(
        {
            "Sid": "AccountAdministersTheKeyThroughIam",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "AlarmsAndDatabaseEventsPublishToTheTopic",
            "Effect": "Allow",
            "Principal": {"Service": ["cloudwatch.amazonaws.com", "events.rds.amazonaws.com"]},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
        },
    )
