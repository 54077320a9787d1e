"""The IAM policy this stack grants the AWS Load Balancer Controller: the upstream policy of the
pinned version, scoped to this cluster's VPC, its load balancer and what the controller tags.

The upstream document (components/data/aws-load-balancer-controller-iam-policy.json, kept
verbatim) is written for any cluster and any use of the controller: security-group ingress
changes on any group in the account (`ec2:AuthorizeSecurityGroupIngress` on `*`, statement 3,
so the database's and the cache's groups too), listener and rule changes on any load balancer
(statements 9 and 15) and WAF association and disassociation anywhere (statement 2). This
stack runs the controller for one IngressGroup with a fixed ALB name, so it grants:

- writes on load balancers and target groups only where the controller's own tag
  `elbv2.k8s.aws/cluster` equals this cluster's name (upstream only asks that the tag exists,
  which any other cluster's resources satisfy), and an ALB only of the configured scheme;
- no security-group writes that could admit anything: the ALB's group and the rule admitting
  it to the pods are the stack's (ingress.py), because EC2 has no condition key on a rule's
  source or port, so the right to open the EKS cluster security group to the ALB would be the
  right to open every node to anyone. Only cleanup of what earlier controller setups created
  (revoke, delete) remains;
- listener and rule changes only under this stack's ALB name (`listener/app/<name>/...`);
- WAFv2 only with `ingress.wafAclArn`: association of that web ACL, or with `none`
  disassociation, on this ALB; no Shield and no WAF Classic (both off in the controller's
  values);
- Cognito's `DescribeUserPoolClient` only on the stack's user pool, and only with Cognito at
  the edge;
- nothing for Network Load Balancers (Services of type LoadBalancer stay with the in-tree
  provider: `enableServiceMutatorWebhook` is off), for certificate discovery (the Ingress
  names its certificate) or for creating ACM certificates.

Every statement cites the calls it serves at controller v3.5.0 (kubernetes-sigs/
aws-load-balancer-controller). `tests/test_alb_controller_policy.py` evaluates the document
against those calls and against the calls it must refuse.
"""

from __future__ import annotations

from typing import Any

from . import iam

# The tag the controller puts on every load balancer, target group and security group it
# creates, with the cluster name as value (pkg/shared_constants/tag_keys.go TagKeyK8sCluster,
# pkg/deploy/tracking/provider.go StackTags, pkg/networking/backend_sg_provider.go).
CLUSTER_TAG = "elbv2.k8s.aws/cluster"
# The tags the controller tracks its resources by; it refuses to start when --default-tags
# names one (pkg/config/controller_config.go trackingTagKeys and
# validateDefaultTagsCollisionWithTrackingTags). On a resource of this stack the cluster tag
# would also put it within reach of the scoped policy, so the stack's tags may name none.
TRACKING_TAG_KEYS = frozenset({
    CLUSTER_TAG, "elbv2.k8s.aws/resource", "ingress.k8s.aws/stack", "ingress.k8s.aws/resource",
    "service.k8s.aws/stack", "service.k8s.aws/resource", "gateway.k8s.aws.nlb/resource",
    "gateway.k8s.aws.alb/resource", "gateway.k8s.aws.nlb/stack", "gateway.k8s.aws.alb/stack",
})
# Target group names: "k8s-%.8s-%.8s-%.10s" (pkg/ingress/model_build_target_group.go).
TARGET_GROUP_NAME_PATTERN = "k8s-*"

# What the upstream policy grants and this stack does not, and why. A controller bump whose
# policy adds an action fails tests/test_alb_controller_policy.py until it is granted (scoped)
# or listed here.
NOT_GRANTED = {
    **dict.fromkeys(["acm:DescribeCertificate", "acm:ListCertificates",
                     "iam:GetServerCertificate", "iam:ListServerCertificates"],
                    "certificate discovery by host (pkg/certs/cert_discovery.go), used only when "
                    "an HTTPS Ingress names no certificate; ours always sets certificate-arn"),
    **dict.fromkeys(["shield:CreateProtection", "shield:DeleteProtection",
                     "shield:DescribeProtection", "shield:GetSubscriptionState"],
                    "the Shield Advanced add-on, turned off (enableShield: false)"),
    **dict.fromkeys(["waf-regional:AssociateWebACL", "waf-regional:DisassociateWebACL",
                     "waf-regional:GetWebACL", "waf-regional:GetWebACLForResource"],
                    "the WAF Classic add-on, turned off (enableWaf: false)"),
    # Restrictable reads (to a VPC, a customer-owned IP pool) that no code of v3.5.0 calls:
    # neither name appears under pkg/ outside tests and mocks.
    "ec2:GetCoipPoolUsage": "not called by controller v3.5.0",
    "ec2:GetSecurityGroupsForVpc": "not called by controller v3.5.0",
    "wafv2:AssociateWebACL": "granted only with ingress.wafAclArn (this ACL, this ALB)",
    "wafv2:DisassociateWebACL": "granted only with `ingress.wafAclArn: none` (this ALB)",
    **dict.fromkeys(["wafv2:GetWebACL", "wafv2:GetWebACLForResource",
                     "elasticloadbalancing:SetWebAcl"], "granted only with ingress.wafAclArn"),
    **dict.fromkeys(["ec2:AuthorizeSecurityGroupIngress", "ec2:CreateSecurityGroup",
                     "ec2:CreateTags", "ec2:DeleteTags"],
                    "the ALB's security group and its rules are the stack's (Ingress."
                    "_security_groups); the controller creates, opens and tags none"),
    "cognito-idp:DescribeUserPoolClient": "granted only with Cognito at the edge (its pool)",
}


def _statement(sid: str, actions: list[str], resources: list[str] | str,
               condition: dict[str, Any] | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions),
                                 "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def controller_policy(*, partition: str, region: str, account_id: str, cluster_name: str,
                      vpc_id: str, cluster_security_group_id: str, load_balancer_name: str,
                      scheme: str, upstream: dict[str, Any], waf_acl_arn: str | None = None,
                      user_pool_arn: str | None = None) -> dict[str, Any]:
    """The scoped policy document (see the module docstring).

    `upstream` is the vendored upstream document: its service-linked-role and read-only
    statements are taken as they are, so a chart bump that adds a read shows up here.
    """
    ec2 = f"arn:{partition}:ec2:{region}:{account_id}"
    elb = f"arn:{partition}:elasticloadbalancing:{region}:{account_id}"
    vpc_arn = f"{ec2}:vpc/{vpc_id}"
    security_groups = f"{ec2}:security-group/*"
    load_balancer = f"{elb}:loadbalancer/app/{load_balancer_name}/*"
    listeners = f"{elb}:listener/app/{load_balancer_name}/*/*"
    rules = f"{elb}:listener-rule/app/{load_balancer_name}/*/*/*"
    target_groups = f"{elb}:targetgroup/{TARGET_GROUP_NAME_PATTERN}/*"
    ours = {f"aws:ResourceTag/{CLUSTER_TAG}": cluster_name}
    tagged_ours = {f"aws:RequestTag/{CLUSTER_TAG}": cluster_name}
    # The cluster tag cannot be added, changed or removed after creation.
    cluster_tag_untouched = {"Null": {f"aws:RequestTag/{CLUSTER_TAG}": "true"},
                             "ForAllValues:StringNotEquals": {"aws:TagKeys": [CLUSTER_TAG]}}

    service_linked_role, reads = upstream["Statement"][0], upstream["Statement"][1]
    assert service_linked_role["Action"] == ["iam:CreateServiceLinkedRole"], service_linked_role
    assert all(action.split(":")[1].startswith(("Describe", "Get")) for action in reads["Action"])

    statements = [
        # The ELB service-linked role, created on the account's first load balancer
        # (upstream statement 0, as it is).
        {"Sid": "ServiceLinkedRole", **service_linked_role},
        # Describe calls take no resource ARNs (upstream statement 1, less the two reads no
        # code calls, which alone in it could be scoped).
        {"Sid": "Read", **reads,
         "Action": [action for action in reads["Action"] if action not in NOT_GRANTED]},

        # Security groups: none is created or opened. The ALB's group and the rule admitting it
        # to the pods are the stack's (ingress.py, Ingress._security_groups), named by the
        # `security-groups` annotation with backend-rule management off, so the controller
        # builds no group (pkg/ingress/model_build_load_balancer.go
        # buildLoadBalancerSecurityGroups). What remains is cleanup of what controller versions
        # before this stack's change created: their frontend and backend groups (tagged for this
        # cluster, in this VPC) and the rules they added to the cluster security group. Revoking
        # and deleting only: nothing here can admit traffic.
        _statement("CleanUpOwnSecurityGroups",
                   ["ec2:DeleteSecurityGroup", "ec2:RevokeSecurityGroupIngress"], security_groups,
                   {"StringEquals": ours, "ArnEquals": {"ec2:Vpc": vpc_arn}}),
        _statement("CleanUpRulesOnClusterSecurityGroup", ["ec2:RevokeSecurityGroupIngress"],
                   f"{ec2}:security-group/{cluster_security_group_id}"),

        # The load balancer and target groups, created with the cluster tag (pkg/deploy/elbv2
        # load_balancer_manager.go, target_group_manager.go). CreateLoadBalancer is scoped by
        # its tag: its ARN holds an id ELB assigns in the call, and the tag-on-create grant
        # below already limits the name, since the controller always tags on create.
        _statement("CreateTaggedLoadBalancer", ["elasticloadbalancing:CreateLoadBalancer"], "*",
                   {"StringEquals": {**tagged_ours, "elasticloadbalancing:Scheme": scheme}}),
        _statement("CreateTaggedTargetGroup", ["elasticloadbalancing:CreateTargetGroup"],
                   target_groups, {"StringEquals": tagged_ours}),
        _statement("TagOnCreate", ["elasticloadbalancing:AddTags"], [load_balancer, target_groups],
                   {"StringEquals": {"elasticloadbalancing:CreateAction": [
                       "CreateLoadBalancer", "CreateTargetGroup"], **tagged_ours}}),
        _statement("RetagOwnLoadBalancerAndTargetGroups",
                   ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
                   [load_balancer, target_groups], {"StringEquals": ours, **cluster_tag_untouched}),
        _statement("ManageOwnLoadBalancer", [
            "elasticloadbalancing:DeleteLoadBalancer",
            "elasticloadbalancing:ModifyCapacityReservation",
            "elasticloadbalancing:ModifyIpPools",
            "elasticloadbalancing:ModifyLoadBalancerAttributes",
            "elasticloadbalancing:SetIpAddressType",
            "elasticloadbalancing:SetSecurityGroups",
            "elasticloadbalancing:SetSubnets",
        ], load_balancer, {"StringEquals": ours}),
        _statement("ManageOwnTargetGroups", [
            "elasticloadbalancing:DeleteTargetGroup",
            "elasticloadbalancing:DeregisterTargets",
            "elasticloadbalancing:ModifyTargetGroup",
            "elasticloadbalancing:ModifyTargetGroupAttributes",
            "elasticloadbalancing:RegisterTargets",
        ], target_groups, {"StringEquals": ours}),

        # Listeners and rules of this ALB only: their ARNs carry its name
        # (pkg/deploy/elbv2/listener_manager.go, listener_rule_manager.go). The controller
        # tags them on create (ListenerRulesTagging is on by default), hence AddTags.
        # SetRulePriorities takes no condition keys, so the ARN is the whole scope.
        _statement("CreateListenerOnThisLoadBalancer", ["elasticloadbalancing:CreateListener"],
                   load_balancer),
        _statement("ManageListenersOfThisLoadBalancer", [
            "elasticloadbalancing:AddListenerCertificates",
            "elasticloadbalancing:CreateRule",
            "elasticloadbalancing:DeleteListener",
            "elasticloadbalancing:ModifyListener",
            "elasticloadbalancing:ModifyListenerAttributes",
            "elasticloadbalancing:RemoveListenerCertificates",
        ], listeners),
        _statement("ManageRulesOfThisLoadBalancer", [
            "elasticloadbalancing:DeleteRule",
            "elasticloadbalancing:ModifyRule",
            "elasticloadbalancing:SetRulePriorities",
        ], rules),
        _statement("TagListenersAndRulesOfThisLoadBalancer",
                   ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
                   [listeners, rules]),
    ]
    # The WAFv2 add-on (pkg/deploy/wafv2/web_acl_association_synthesizer.go), only when
    # `wafAclArn` is set: every sync reads the ALB's current web ACL, then associates the
    # configured one, or with "none" disassociates whatever is attached. Reading the association
    # is authorized on the web ACL too (its required resource type in the Service Authorization
    # Reference), which may be any ACL in the region: read-only.
    if waf_acl_arn is not None:
        web_acls = f"arn:{partition}:wafv2:{region}:{account_id}:regional/webacl/*/*"
        statements += [
            _statement("ReadWebAclOfThisLoadBalancer", ["wafv2:GetWebACLForResource"],
                       [load_balancer, web_acls]),
            _statement("ReadWebAcls", ["wafv2:GetWebACL"], web_acls),
            # WAF also asks the caller for elasticloadbalancing:SetWebAcl when it changes an
            # ALB's web ACL. The Service Authorization Reference lists no resource type for it,
            # so it is granted on "*"; on its own it changes nothing.
            _statement("SetWebAcl", ["elasticloadbalancing:SetWebAcl"], "*"),
        ]
        statements.append(
            _statement("DisassociateFromThisLoadBalancer", ["wafv2:DisassociateWebACL"],
                       load_balancer) if waf_acl_arn == "none" else
            _statement("AssociateTheStackWebAcl", ["wafv2:AssociateWebACL"],
                       [waf_acl_arn, load_balancer]))
    if user_pool_arn is not None:
        # The `authenticate-cognito` rules name the stack's user pool client; reading it
        # returns the client secret, so only this pool.
        statements.append(_statement("DescribeTheStackUserPoolClient",
                                     ["cognito-idp:DescribeUserPoolClient"], user_pool_arn))
    return iam._document(*statements)
