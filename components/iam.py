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


def service_trust_policy_for_account(service: str, *, account_id: str) -> dict[str, Any]:
    """Trust policy letting an AWS service assume the role on behalf of this account only
    (`aws:SourceAccount`: the confused-deputy guard AWS documents for RDS Enhanced Monitoring
    and VPC Flow Logs roles)."""
    return _document({
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
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


def _account_administers_through_iam(*, account_id: str, partition: str) -> dict[str, Any]:
    """The default key policy's statement: the account's IAM policies decide who may use the key."""
    return {"Sid": "AccountAdministersTheKeyThroughIam", "Effect": "Allow",
            "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
            "Action": "kms:*", "Resource": "*"}


def alarm_topic_key_policy(*, account_id: str, partition: str) -> dict[str, Any]:
    """Key policy of the alarm topic's KMS key. The account administers the key through IAM (the
    default key policy's statement); CloudWatch alarms and RDS event notifications may use it, or
    they could not publish to the encrypted topic (the AWS managed key `alias/aws/sns` does not
    allow them; SNS developer guide, "Configuring AWS KMS permissions for AWS services", which
    the RDS user guide's "Subscribing to Amazon RDS event notification" points to)."""
    return _document(
        _account_administers_through_iam(account_id=account_id, partition=partition),
        {
            "Sid": "AlarmsAndDatabaseEventsPublishToTheTopic",
            "Effect": "Allow",
            "Principal": {"Service": ["cloudwatch.amazonaws.com", "events.rds.amazonaws.com"]},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
            # Only on behalf of this account's alarms and event subscriptions (the confused
            # deputy guard of the SNS developer guide's service-principal key policies).
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        },
    )


def backup_alert_topic_key_policy(*, account_id: str, partition: str) -> dict[str, Any]:
    """Key policy of the backup alerts' topic (backups.py): the account administers the key
    through IAM; EventBridge may use it to deliver to the encrypted topic (SNS developer guide,
    "Configuring AWS KMS permissions for AWS services": events.amazonaws.com). No condition, as
    in that guide's statement (a condition EventBridge's calls did not meet would drop every
    alert without a trace): the key serves this topic alone, whose policy admits this stack's
    rule only."""
    return _document(
        _account_administers_through_iam(account_id=account_id, partition=partition),
        {"Sid": "EventBridgeRulesPublish", "Effect": "Allow",
         "Principal": {"Service": "events.amazonaws.com"},
         "Action": ["kms:GenerateDataKey*", "kms:Decrypt"], "Resource": "*"},
    )


def amp_alert_topic_key_policy(*, account_id: str, partition: str) -> dict[str, Any]:
    """Key policy of the scaling alerts' topic (scaling_alerts.py): the account administers the
    key through IAM; Amazon Managed Service for Prometheus may use it to publish to the encrypted
    topic. No conditions, as in the AMP user guide's key statement ("Giving Amazon Managed
    Service for Prometheus permission to send alert messages to your Amazon SNS topic"): the key
    serves only that topic, whose policy admits AMP for this workspace alone, and whether AMP's
    calls through SNS carry aws:SourceArn is documented nowhere (a condition they did not meet
    would drop every alert without a trace)."""
    return _document(
        _account_administers_through_iam(account_id=account_id, partition=partition),
        {"Sid": "ManagedPrometheusAlertsPublish", "Effect": "Allow",
         "Principal": {"Service": "aps.amazonaws.com"},
         "Action": ["kms:GenerateDataKey*", "kms:Decrypt"], "Resource": "*"},
    )


# What the account may do with a data key outside the service that uses it: administer it, never
# use it (no kms:Create*, whose CreateGrant would let a grant bypass the service condition; with
# kms:PutKeyPolicy, so the key stays administrable: KMS's lockout check).
KEY_ADMINISTRATION = [
    "kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias", "kms:DescribeKey", "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus", "kms:ListKeyPolicies", "kms:ListKeyRotations", "kms:ListResourceTags",
    "kms:ListGrants", "kms:PutKeyPolicy", "kms:UpdateKeyDescription", "kms:EnableKey",
    "kms:DisableKey", "kms:EnableKeyRotation", "kms:DisableKeyRotation", "kms:RotateKeyOnDemand",
    "kms:TagResource", "kms:UntagResource", "kms:RevokeGrant", "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
]


def _account_administers_but_cannot_use(root: dict[str, str]) -> dict[str, Any]:
    """The data keys' first statement: the account's principals administer the key
    (KEY_ADMINISTRATION), none uses it outside what the other statements allow."""
    return {"Sid": "AccountAdministersTheKeyButCannotUseIt", "Effect": "Allow", "Principal": root,
            "Action": KEY_ADMINISTRATION, "Resource": "*"}


def service_key_policy(*, account_id: str, partition: str, region: str,
                       services: list[str]) -> dict[str, Any]:
    """Key policy of a data key that only its service may use: the account administers it, and
    its principals may use it only through `services` (kms:ViaService, e.g.
    `rds.<region>.amazonaws.com`) and from this account (kms:CallerAccount), as AWS managed keys
    are (KMS developer guide, "kms:ViaService"; RDS user guide, "AWS KMS key management"; EFS
    user guide, "Using AWS KMS keys for Amazon EFS"; ElastiCache: `elasticache` and `dax`)."""
    via = [f"{service}.{region}.amazonaws.com" for service in services]
    root = {"AWS": f"arn:{partition}:iam::{account_id}:root"}
    return _document(
        _account_administers_but_cannot_use(root),
        {"Sid": "UseOnlyThroughTheService", "Effect": "Allow", "Principal": root,
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                    "kms:CreateGrant", "kms:ListGrants", "kms:DescribeKey"],
         "Resource": "*",
         "Condition": {"StringEquals": {"kms:ViaService": via[0] if len(via) == 1 else via,
                                        "kms:CallerAccount": account_id}}},
    )


def eks_secrets_key_policy(*, account_id: str, partition: str, region: str,
                           cluster_role_arn: str) -> dict[str, Any]:
    """Key policy of the EKS secrets key (envelope encryption of Kubernetes Secrets).

    - The account administers the key but cannot use it (as the other data keys).
    - The cluster's IAM role uses it: EKS acts as that role when it checks the key, and an
      update of the cluster version fails when the key policy does not name it
      (aws/containers-roadmap#1533; the role's own calls, e.g. kms:ListGrants in its health
      checks, terraform-aws-modules/terraform-aws-eks#1913). The role trusts only
      eks.amazonaws.com, so naming it needs no kms:ViaService condition, which EKS does not
      document for these calls.
    - Whoever creates the cluster lets EKS create the key's grant and read the key: the
      kms:CreateGrant and kms:DescribeKey the EKS user guide asks of the cluster creator, only
      through EKS in this region (kms:ViaService) and from this account. EKS then encrypts and
      decrypts Secrets through that grant, which the key policy does not govern.
    """
    root = {"AWS": f"arn:{partition}:iam::{account_id}:root"}
    return _document(
        _account_administers_but_cannot_use(root),
        {"Sid": "TheClusterRoleUsesTheKey", "Effect": "Allow",
         "Principal": {"AWS": cluster_role_arn},
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                    "kms:DescribeKey", "kms:CreateGrant", "kms:ListGrants"],
         "Resource": "*"},
        {"Sid": "TheCreatorGrantsEksTheKey", "Effect": "Allow", "Principal": root,
         "Action": ["kms:CreateGrant", "kms:DescribeKey"], "Resource": "*",
         "Condition": {"StringEquals": {"kms:ViaService": f"eks.{region}.amazonaws.com",
                                        "kms:CallerAccount": account_id}}},
    )


def logs_key_policy(*, account_id: str, partition: str, region: str,
                    log_group_prefixes: list[str]) -> dict[str, Any]:
    """Key policy of the stack's CloudWatch Logs key: the account administers it through IAM;
    CloudWatch Logs uses it for this stack's log groups only (names under `log_group_prefixes`,
    in this account and region: the encryption context it sends names the log group,
    CloudWatch Logs user guide, "Encrypt log data in CloudWatch Logs using AWS KMS", step 2), so
    no other team's log group comes to depend on a key a destroy schedules for deletion."""
    log_groups = [f"arn:{partition}:logs:{region}:{account_id}:log-group:{prefix}*"
                  for prefix in log_group_prefixes]
    return _document(
        _account_administers_through_iam(account_id=account_id, partition=partition),
        {
            "Sid": "CloudWatchLogsForThisAccountsLogGroups",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                       "kms:Describe*"],
            "Resource": "*",
            "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups}},
        },
    )


def flow_log_trust_policy(*, account_id: str, partition: str, region: str) -> dict[str, Any]:
    """VPC Flow Logs may assume the delivery role for this account's flow logs only (VPC user
    guide, "IAM role for publishing flow logs to CloudWatch Logs")."""
    return _document({
        "Effect": "Allow",
        "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
        "Action": "sts:AssumeRole",
        "Condition": {
            "StringEquals": {"aws:SourceAccount": account_id},
            "ArnLike": {"aws:SourceArn": f"arn:{partition}:ec2:{region}:{account_id}:vpc-flow-log/*"},
        },
    })


def flow_log_delivery_policy(*, log_group_arn: str) -> dict[str, Any]:
    """What flow-log delivery does: write streams and events into its one log group, and
    describe log groups (an action that takes no resource ARN)."""
    return _document(
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            "Resource": [log_group_arn, f"{log_group_arn}:*"],
        },
        {"Effect": "Allow", "Action": "logs:DescribeLogGroups", "Resource": "*"},
    )


# Elastic Load Balancing's log-delivery account per Region that existed before August 2022
# (ELB user guide, "Enable access logs for your Application Load Balancer", step 2; the same
# table as terraform-provider-aws internal/service/elb/service_account_data_source.go). Regions
# opened since then only accept the service principal below, which the others accept too.
ELB_LOG_DELIVERY_ACCOUNTS: dict[str, str] = {
    "us-east-1": "127311923021", "us-east-2": "033677994240", "us-west-1": "027434742980",
    "us-west-2": "797873946194", "af-south-1": "098369216593", "ap-east-1": "754344448648",
    "ap-southeast-3": "589379963580", "ap-south-1": "718504428378", "ap-northeast-3": "383597477331",
    "ap-northeast-2": "600734575887", "ap-southeast-1": "114774131450",
    "ap-southeast-2": "783225319266", "ap-northeast-1": "582318560864",
    "ca-central-1": "985666609251", "eu-central-1": "054676820928", "eu-west-1": "156460612806",
    "eu-west-2": "652711504416", "eu-south-1": "635631232127", "eu-west-3": "009996457667",
    "eu-north-1": "897822967062", "me-south-1": "076674570225", "sa-east-1": "507241528517",
}
ELB_LOG_DELIVERY_SERVICE = "logdelivery.elasticloadbalancing.amazonaws.com"


def alb_access_log_bucket_policy(*, bucket_arn: str, prefix: str, account_id: str, region: str,
                                 partition: str) -> dict[str, Any]:
    """Bucket policy that lets ELB write this account's access logs under `prefix`, and nothing
    else: `s3:PutObject` on `<bucket>/<prefix>/AWSLogs/<account>/*` for the log-delivery service
    (and, in Regions older than August 2022, the Region's ELB account), and no request without
    TLS. Without it the controller's SetLoadBalancerAttributes is refused and the Ingress never
    gets an address."""
    logs = f"{bucket_arn}/{prefix + '/' if prefix else ''}AWSLogs/{account_id}/*"
    principals: dict[str, Any] = {"Service": ELB_LOG_DELIVERY_SERVICE}
    if region in ELB_LOG_DELIVERY_ACCOUNTS:
        principals["AWS"] = f"arn:{partition}:iam::{ELB_LOG_DELIVERY_ACCOUNTS[region]}:root"
    return _document(
        {
            "Sid": "ElbDeliversAccessLogs",
            "Effect": "Allow",
            "Principal": principals,
            "Action": "s3:PutObject",
            "Resource": logs,
        },
        {
            "Sid": "DenyUnencryptedTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    )
