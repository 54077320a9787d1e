"""The AWS Load Balancer Controller's IAM policy, evaluated: the calls the controller makes for
this stack are allowed, the calls the upstream policy would also let it make elsewhere are not.

The policy is the one recorded in each committed stack's plan. The requests are the ones
controller v3.5.0 (kubernetes-sigs/aws-load-balancer-controller, the pinned chart 3.5.0) sends:
- ELB: pkg/deploy/elbv2/*_manager.go, with the tags of pkg/deploy/tracking/provider.go;
- WAFv2: pkg/deploy/wafv2/web_acl_association_synthesizer.go and web_acl_association_manager.go;
- security groups: only the cleanup of what a controller-managed setup left
  (pkg/networking/backend_sg_provider.go, pkg/networking/networking_manager.go), since the
  ALB's group is the stack's.
Every request's action, resource ARN and condition keys are checked against the Service
Authorization Reference (tests/data/service-authorization.json) before it is evaluated, so a
request cannot carry a key AWS would not send. `tests/iam_policy_model.py` evaluates them.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re

import pytest

from components.alb_controller_policy import CLUSTER_TAG, NOT_GRANTED, controller_policy
from components.anythingllm import SERVER_PORT
from components.ingress import upstream_iam_policy
from tests.conftest import ROOT, helm_release, stack_settings
from tests.iam_policy_model import ALLOWED, IMPLICIT_DENY, Request, evaluate
from tools.engine import Plan, read_stack_config, run_stack
from tools.fake_cloud import ACCOUNT_ID

REGION = "us-east-1"
EC2 = f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}"
ELB = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT_ID}"
RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
PREFIX = "alb.ingress.kubernetes.io/"


def _actions(document: dict) -> set[str]:
    return {action for statement in document["Statement"]
            for action in ([statement["Action"]] if isinstance(statement["Action"], str)
                           else statement["Action"])}


class Stack:
    """What the requests need to know about one recorded stack."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.policy = json.loads(plan.one("aws:iam/rolePolicy:RolePolicy",
                                          "ingress-controller").inputs["policy"])
        self.cluster = plan.outputs["clusterName"]
        self.vpc = f"{EC2}:vpc/{plan.outputs['vpcId']}"
        # The group the data services admit: the EKS cluster security group on every node.
        database_rule = plan.one(RULE, "database-postgres")
        self.cluster_sg = database_rule.inputs["referencedSecurityGroupId"]
        self.database_sg = plan.one("aws:ec2/securityGroup:SecurityGroup", "database-postgres")
        ingress = next(i for i in plan.of_type("kubernetes:networking.k8s.io/v1:Ingress")
                       if "alb.ingress.kubernetes.io/load-balancer-name" in
                       i.inputs["metadata"]["annotations"])
        annotations = ingress.inputs["metadata"]["annotations"]
        self.lb_name = annotations["alb.ingress.kubernetes.io/load-balancer-name"]
        self.waf_acl = annotations.get("alb.ingress.kubernetes.io/wafv2-acl-arn")
        self.scheme = annotations["alb.ingress.kubernetes.io/scheme"]
        self.lb = f"{ELB}:loadbalancer/app/{self.lb_name}/50dc6c495c0c9188"
        self.listener = f"{ELB}:listener/app/{self.lb_name}/50dc6c495c0c9188/f2f7dc8efc522ab2"
        self.rule = f"{self.listener.replace(':listener/', ':listener-rule/')}/9683b2d02a6cabee"
        # "k8s-%.8s-%.8s-%.10s" of namespace, Service and hash (model_build_target_group.go).
        self.target_group = f"{ELB}:targetgroup/k8s-anything-anything-0b5a1f3c9e/73e2d6bc24d8a067"
        self.own_sg = f"{EC2}:security-group/sg-0123456789abcdef0"

    def own(self, **context) -> dict:
        """The context of a resource the controller created for this cluster."""
        return {f"aws:ResourceTag/{CLUSTER_TAG}": self.cluster, **context}

    def creating(self, **context) -> dict:
        return {f"aws:RequestTag/{CLUSTER_TAG}": self.cluster,
                "aws:TagKeys": [CLUSTER_TAG, "ingress.k8s.aws/stack", "ingress.k8s.aws/resource"],
                **context}


def _without_waf_acl() -> Plan:
    """Prod's config with `wafAclArn: none` (and internal, which prod allows without an ACL)."""
    config = copy.deepcopy(read_stack_config(ROOT, "prod"))
    config["anythingllm:ingress"].update(wafAclArn="none", scheme="internal")
    return run_stack(ROOT, "prod", config=config)


@pytest.fixture(scope="module", params=["dev", "prod", "prod-waf-none"])
def stack(request, stack_plans) -> Stack:
    return Stack(_without_waf_acl() if request.param == "prod-waf-none" else stack_plans[request.param])


def controller_calls(s: Stack) -> list[Request]:
    """Every call the controller makes to build, change and delete this stack's ALB."""
    sg_in_vpc = {"ec2:Vpc": s.vpc}
    calls = [
        # Cleanup of a frontend or backend group an earlier, controller-managed setup created:
        # its rules on the cluster security group, its own rules, the group.
        Request("ec2:RevokeSecurityGroupIngress", f"{EC2}:security-group/{s.cluster_sg}",
                {"ec2:Vpc": s.vpc, "aws:ResourceTag/aws:eks:cluster-name": s.cluster}),
        Request("ec2:RevokeSecurityGroupIngress", s.own_sg, s.own(**sg_in_vpc)),
        Request("ec2:DeleteSecurityGroup", s.own_sg, s.own(**sg_in_vpc)),
        # The ALB and its target groups, tagged on create.
        Request("elasticloadbalancing:CreateLoadBalancer", s.lb, s.creating(**{
            "elasticloadbalancing:Scheme": s.scheme})),
        Request("elasticloadbalancing:AddTags", s.lb, s.creating(**{
            "elasticloadbalancing:CreateAction": "CreateLoadBalancer"})),
        Request("elasticloadbalancing:CreateTargetGroup", s.target_group, s.creating()),
        Request("elasticloadbalancing:AddTags", s.target_group, s.creating(**{
            "elasticloadbalancing:CreateAction": "CreateTargetGroup"})),
        *(Request(f"elasticloadbalancing:{action}", s.lb, s.own()) for action in (
            "ModifyLoadBalancerAttributes", "SetSecurityGroups", "SetSubnets", "SetIpAddressType",
            "DeleteLoadBalancer")),
        *(Request(f"elasticloadbalancing:{action}", s.target_group, s.own()) for action in (
            "ModifyTargetGroup", "ModifyTargetGroupAttributes", "RegisterTargets",
            "DeregisterTargets", "DeleteTargetGroup")),
        Request("elasticloadbalancing:AddTags", s.target_group, s.own(**{
            "aws:RequestTag/anythingllm:owner": "platform", "aws:TagKeys": ["anythingllm:owner"]})),
        Request("elasticloadbalancing:RemoveTags", s.lb, s.own(**{"aws:TagKeys": ["anythingllm:owner"]})),
        # Listeners and rules, tagged on create (ListenerRulesTagging is on by default).
        # They carry the stack's tags too, which upstream's ModifyListenerAttributes asks for.
        Request("elasticloadbalancing:CreateListener", s.lb, s.own()),
        Request("elasticloadbalancing:AddTags", s.listener, s.creating()),
        Request("elasticloadbalancing:CreateRule", s.listener, s.own()),
        Request("elasticloadbalancing:AddTags", s.rule, s.creating()),
        *(Request(f"elasticloadbalancing:{action}", s.listener, s.own()) for action in (
            "ModifyListener", "ModifyListenerAttributes", "AddListenerCertificates",
            "RemoveListenerCertificates", "DeleteListener")),
        *(Request(f"elasticloadbalancing:{action}", s.rule, s.own()) for action in (
            "ModifyRule", "DeleteRule")),
        # SetRulePriorities carries no condition keys at all.
        Request("elasticloadbalancing:SetRulePriorities", s.rule, {}),
    ]
    # With `wafAclArn` every sync reads the ALB's web ACL (the attached one may be any ACL,
    # e.g. Firewall Manager's), then associates the stack's, or with "none" takes it off.
    if s.waf_acl is not None:
        attached = (f"arn:aws:wafv2:{REGION}:{ACCOUNT_ID}:regional/webacl/fms-managed/"
                    "3b1a2c4d-0000-4000-8000-00000000000a")
        calls += [
            Request("wafv2:GetWebACLForResource", s.lb, {}),
            Request("wafv2:GetWebACLForResource", attached, {}),
            Request("wafv2:GetWebACL", attached, {}),
            Request("elasticloadbalancing:SetWebAcl", "*", {}),
        ]
        if s.waf_acl == "none":
            calls.append(Request("wafv2:DisassociateWebACL", s.lb, {}))
        else:
            calls += [Request("wafv2:AssociateWebACL", s.waf_acl, {}),
                      Request("wafv2:AssociateWebACL", s.lb, {})]
    return calls


def refused_calls(s: Stack) -> list[tuple[str, bool, Request]]:
    """Calls that would let the controller reach past its own resources, each of which this
    stack's policy must refuse, and whether the upstream policy allows it."""
    other_lb = f"{ELB}:loadbalancer/app/payments-prod/8e2b1d0c4f6a7b39"
    other_listener = f"{ELB}:listener/app/payments-prod/8e2b1d0c4f6a7b39/1f2e3d4c5b6a7988"
    database_sg = f"{EC2}:security-group/sg-database0000000"
    database_context = {"ec2:Vpc": s.vpc, **{f"aws:ResourceTag/{key}": value for key, value in
                                             s.database_sg.inputs["tags"].items()}}
    other_cluster = {f"aws:ResourceTag/{CLUSTER_TAG}": "payments-prod"}
    return [
        ("open the database's security group", True, Request(
            "ec2:AuthorizeSecurityGroupIngress", database_sg, database_context)),
        ("open another cluster's ALB group", True, Request(
            "ec2:AuthorizeSecurityGroupIngress", s.own_sg, {"ec2:Vpc": s.vpc, **other_cluster})),
        ("open every node to anyone", True, Request(
            "ec2:AuthorizeSecurityGroupIngress", f"{EC2}:security-group/{s.cluster_sg}",
            {"ec2:Vpc": s.vpc})),
        ("open its own old group", True, Request(
            "ec2:AuthorizeSecurityGroupIngress", s.own_sg, s.own(**{"ec2:Vpc": s.vpc}))),
        ("change another load balancer's listener", True, Request(
            "elasticloadbalancing:ModifyListener", other_listener, {})),
        ("add a rule ahead of another load balancer's sign-in", True, Request(
            "elasticloadbalancing:CreateRule", other_listener, {})),
        ("reorder another load balancer's rules", True, Request(
            "elasticloadbalancing:SetRulePriorities", f"{other_listener}/1a2b3c4d5e6f7a8b".replace(
                ":listener/", ":listener-rule/"), {})),
        ("take WAF off another load balancer", True, Request("wafv2:DisassociateWebACL", other_lb, {})),
        ("delete another cluster's load balancer", True, Request(
            "elasticloadbalancing:DeleteLoadBalancer", other_lb, other_cluster)),
        ("register targets in another cluster's target group", True, Request(
            "elasticloadbalancing:RegisterTargets", f"{ELB}:targetgroup/k8s-payments-api-1234567890/ab",
            other_cluster)),
        ("turn off Shield protection", True, Request(
            "shield:DeleteProtection", "arn:aws:shield::123456789012:protection/x", {})),
        ("delete the database's security group", False, Request(
            "ec2:DeleteSecurityGroup", database_sg, database_context)),
        ("modify another cluster's target group", True, Request(
            "elasticloadbalancing:ModifyTargetGroupAttributes",
            f"{ELB}:targetgroup/k8s-payments-api-1234567890/ab", other_cluster)),
        ("claim a load balancer by tagging it with this cluster", False, Request(
            "elasticloadbalancing:AddTags", other_lb, {
                **other_cluster, f"aws:RequestTag/{CLUSTER_TAG}": s.cluster,
                "aws:TagKeys": [CLUSTER_TAG]})),
        ("strip the cluster tag from its own load balancer", True, Request(
            "elasticloadbalancing:RemoveTags", s.lb, s.own(**{"aws:TagKeys": [CLUSTER_TAG]}))),
        ("create a security group", True, Request(
            "ec2:CreateSecurityGroup", s.vpc, s.creating())),
        ("create a load balancer without the cluster tag", False, Request(
            "elasticloadbalancing:CreateLoadBalancer", s.lb, {"aws:TagKeys": ["team"]})),
        ("delete a group of its own in another VPC", True, Request(
            "ec2:DeleteSecurityGroup", s.own_sg,
            s.own(**{"ec2:Vpc": f"{EC2}:vpc/vpc-0ther0000000000000"}))),
        ("create a load balancer of the other scheme", True, Request(
            "elasticloadbalancing:CreateLoadBalancer", s.lb, s.creating(**{
                "elasticloadbalancing:Scheme": "internal" if s.scheme == "internet-facing"
                else "internet-facing"}))),
        ("delete the cluster security group", False, Request(
            "ec2:DeleteSecurityGroup", f"{EC2}:security-group/{s.cluster_sg}", {"ec2:Vpc": s.vpc})),
    ]


def test_the_controller_can_build_change_and_delete_its_alb(stack):
    denied = [(r.action, r.resource) for r in controller_calls(stack)
              if evaluate(stack.policy, r) != ALLOWED]
    assert denied == []


def test_the_controller_cannot_reach_past_its_own_resources(stack):
    allowed = [what for what, _, request in refused_calls(stack)
               if evaluate(stack.policy, request) != IMPLICIT_DENY]
    assert allowed == []


def test_the_upstream_policy_would_allow_what_the_issue_named(stack):
    """The refusals above are this stack's scoping, not calls nobody could make: the upstream
    document allows most of them (any group's ingress, any listener, any WAF association)."""
    upstream = upstream_iam_policy()
    verdicts = {what: evaluate(upstream, request) == ALLOWED for what, _, request in refused_calls(stack)}
    assert verdicts == {what: upstream_allows for what, upstream_allows, _ in refused_calls(stack)}
    assert sum(verdicts.values()) == 16
    # And everything the controller needs here is something upstream grants too.
    assert [r for r in controller_calls(stack) if evaluate(upstream, r) != ALLOWED] == []


def test_no_stack_resource_carries_the_controllers_cluster_tag(stack):
    """The tag is what hands a resource to the controller; only the controller sets it (the
    observability lookups read it, see controller_target_group.py)."""
    tagged = [r.name for r in stack.plan.resources
              if r.type.startswith("aws:") and CLUSTER_TAG in (r.inputs.get("tags") or {})]
    assert tagged == []


def test_scoping_narrows_upstream_and_every_dropped_action_has_a_reason(stack):
    upstream, scoped = upstream_iam_policy(), stack.policy
    assert _actions(scoped) <= _actions(upstream)
    assert _actions(upstream) - _actions(scoped) == set(NOT_GRANTED) - _actions(scoped)
    # Resource "*" only where IAM offers nothing narrower: reads, the service-linked role,
    # CreateLoadBalancer (scoped by its request tag and scheme) and SetWebAcl (no resource type).
    star = sorted(statement["Sid"] for statement in scoped["Statement"] if statement["Resource"] == "*")
    assert star == ["CreateTaggedLoadBalancer", "Read", "ServiceLinkedRole",
                    *(["SetWebAcl"] if stack.waf_acl else [])]
    # No statement lets it create, open or tag a security group.
    assert not {"ec2:AuthorizeSecurityGroupIngress", "ec2:CreateSecurityGroup",
                "ec2:CreateTags"} & _actions(scoped)


def test_waf_and_cognito_grants_only_when_the_stack_uses_them(stack):
    wafv2 = {a for a in _actions(stack.policy) if a.startswith("wafv2:")}
    assert bool(wafv2) == (stack.waf_acl is not None)
    assert ("wafv2:AssociateWebACL" in wafv2) == (stack.waf_acl not in (None, "none"))
    assert ("wafv2:DisassociateWebACL" in wafv2) == (stack.waf_acl == "none")
    pool = stack.plan.of_type("aws:cognito/userPool:UserPool")
    grants = [s for s in stack.policy["Statement"] if "cognito-idp:DescribeUserPoolClient" in s["Action"]]
    assert len(grants) == len(pool)
    for grant in grants:
        assert grant["Resource"].startswith(f"arn:aws:cognito-idp:{REGION}:{ACCOUNT_ID}:userpool/")
        other_pool = grant["Resource"].rsplit("/", 1)[0] + "/us-east-1_0ther0000"
        describe = "cognito-idp:DescribeUserPoolClient"
        assert evaluate(stack.policy, Request(describe, grant["Resource"])) == ALLOWED
        assert evaluate(stack.policy, Request(describe, other_pool)) == IMPLICIT_DENY


def test_an_existing_user_pool_is_the_one_granted():
    pool = "arn:aws:cognito-idp:us-east-1:111122223333:userpool/us-east-1_AbC123"
    config = copy.deepcopy(read_stack_config(ROOT, "prod"))
    config["anythingllm:ingress"]["auth"] = {"type": "cognito", "cognito": {
        "userPoolArn": pool, "userPoolClientId": "1example23456789abcdefghij",
        "userPoolDomain": "corp-login"}}
    policy = json.loads(run_stack(ROOT, "prod", config=config).one(
        "aws:iam/rolePolicy:RolePolicy", "ingress-controller").inputs["policy"])
    grants = [s["Resource"] for s in policy["Statement"]
              if "cognito-idp:DescribeUserPoolClient" in s["Action"]]
    assert grants == [pool]


def test_a_policy_bump_that_adds_an_action_must_be_decided():
    upstream = upstream_iam_policy()
    bumped = copy.deepcopy(upstream)
    bumped["Statement"].append({"Effect": "Allow", "Action": ["elasticloadbalancing:CreateTrustStore"],
                                "Resource": "*"})
    scoped = controller_policy(partition="aws", region=REGION, account_id=ACCOUNT_ID,
                               cluster_name="c", vpc_id="vpc-1", cluster_security_group_id="sg-1",
                               load_balancer_name="lb", scheme="internal", upstream=bumped)
    undecided = _actions(bumped) - _actions(scoped) - set(NOT_GRANTED)
    assert undecided == {"elasticloadbalancing:CreateTrustStore"}


SAR = json.loads((ROOT / "tests" / "data" / "service-authorization.json").read_text())["services"]
# Actions both Elastic Load Balancing APIs define, for which the data keeps the first API's
# resource types only (see the data file's "about"): their V2 resources are the V2 types.
ELB_V2_TYPES = ["loadbalancer/app/", "targetgroup", "listener/app", "listener-rule/app"]
ELB_SHARED = {"AddTags", "RemoveTags", "CreateLoadBalancer", "DeleteLoadBalancer",
              "ModifyLoadBalancerAttributes"}


def _arn_pattern(template: str) -> str:
    return re.sub(r"\$\{[A-Za-z]+\}", "*", template)


def sar_problems(request: Request) -> list[str]:
    """What the Service Authorization Reference says a request cannot look like."""
    service, action = request.action.split(":")
    entry = SAR.get(service, {}).get("actions", {}).get(action)
    if entry is None:
        return [f"{request.action} is not in tests/data/service-authorization.json"]
    types = [t["name"] for t in entry["resourceTypes"]]
    if service == "elasticloadbalancing" and action in ELB_SHARED:
        types = ELB_V2_TYPES
    problems = []
    if types:
        patterns = [_arn_pattern(SAR[service]["resourceTypes"][t]["arn"]) for t in types]
        if not any(fnmatch.fnmatchcase(request.resource, p) for p in patterns):
            problems.append(f"{request.action}: {request.resource} is none of {types}")
    elif request.resource != "*":
        problems.append(f"{request.action} has no resource type: it is authorized on *")
    keys = [re.sub(r"\$\{TagKey\}$", "", key) for key in entry["conditionKeys"]]
    for key in request.context:
        if not any(key == k or (k.endswith("/") and key.startswith(k)) for k in keys):
            problems.append(f"{request.action}: AWS sends no {key}")
    return problems


def test_every_request_is_one_aws_would_make(stack):
    """Action, resource type and condition keys as the Service Authorization Reference lists
    them: a key AWS does not send would make a condition pass or fail here only."""
    requests = [*controller_calls(stack), *(r for _, _, r in refused_calls(stack))]
    assert [problem for r in requests for problem in sar_problems(r)] == []


@pytest.mark.parametrize("request_, problem", [
    (Request("ec2:DeleteTags", "arn:aws:ec2:us-east-1:1:security-group/sg-1", {"ec2:Vpc": "x"}),
     "is not in"),
    (Request("wafv2:GetWebACL", "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/a/b"),
     "is none of"),
    (Request("elasticloadbalancing:SetRulePriorities",
             "arn:aws:elasticloadbalancing:us-east-1:1:listener-rule/app/a/b/c/d",
             {"aws:ResourceTag/x": "y"}), "AWS sends no aws:ResourceTag/x"),
])
def test_the_reference_check_catches_requests_aws_would_not_make(request_, problem):
    assert any(problem in p for p in sar_problems(request_))


# ------------------------------------------------------------------ the ALB's security group

EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"


def test_the_alb_security_group_is_the_stacks(stack):
    """The controller builds no group when `security-groups` names one and backend-rule
    management is off (pkg/ingress/model_build_load_balancer.go buildLoadBalancerSecurityGroups;
    the --enable-backend-security-group flag from the chart's enableBackendSecurityGroup).
    The stack's group admits the listener ports from inboundCidrs only, and sends only to the
    pods' port (and to the identity provider when the ALB signs users in)."""
    plan = stack.plan
    settings = stack_settings(plan.stack)
    group = plan.one(SECURITY_GROUP, "ingress-alb")
    browser = next(i for i in plan.of_type(INGRESS) if PREFIX + "load-balancer-name" in
                   i.inputs["metadata"]["annotations"])
    assert browser.inputs["metadata"]["annotations"][PREFIX + "security-groups"].startswith("sg-")
    assert group.urn in browser.dependencies
    # An exclusive annotation: the group's other member leaves it out.
    others = [i for i in plan.of_type(INGRESS) if i is not browser]
    assert all(PREFIX + "security-groups" not in i.inputs["metadata"]["annotations"] for i in others)
    assert PREFIX + "inbound-cidrs" not in browser.inputs["metadata"]["annotations"]

    rules = [r for r in plan.of_type(RULE) if r.name.startswith("ingress-")]
    listeners = {(r.inputs["fromPort"], r.inputs.get("cidrIpv4")) for r in rules
                 if r.property_dependencies["securityGroupId"] == [group.urn]}
    ports = [80, 443] if settings.ingress.https else [80]
    assert listeners == {(port, cidr) for port in ports for cidr in settings.ingress.inbound_cidrs}
    (to_pods,) = [r for r in rules if r.name == "ingress-pods-from-alb"]
    assert to_pods.inputs["securityGroupId"] == stack.cluster_sg
    assert to_pods.property_dependencies["referencedSecurityGroupId"] == [group.urn]
    assert (to_pods.inputs["fromPort"], to_pods.inputs["toPort"]) == (SERVER_PORT, SERVER_PORT)

    egress = {(r.inputs["fromPort"], r.inputs.get("cidrIpv4") or r.inputs["referencedSecurityGroupId"])
              for r in plan.of_type(EGRESS) if r.name.startswith("ingress-")}
    authenticates = settings.ingress.auth is not None and settings.ingress.auth.type != "none"
    assert egress == {(SERVER_PORT, stack.cluster_sg)} | (
        {(443, "0.0.0.0/0")} if authenticates else set())
    # The ALB comes after its rules, and goes before them.
    for rule in [*rules, *(r for r in plan.of_type(EGRESS) if r.name.startswith("ingress-"))]:
        assert plan.waits_for(browser, rule), rule.name
        assert plan.deleted_before(browser, rule), rule.name
    release = helm_release(plan, "aws-load-balancer-controller")
    values = release.inputs["values"]
    assert values["enableManageBackendSecurityGroupRules"] is False
    # Left at its default: the controller then still finds, and deletes, a backend group an
    # earlier setup created (pkg/networking/backend_sg_provider.go Release).
    assert "enableBackendSecurityGroup" not in values


def test_the_controller_keeps_its_rights_until_it_is_gone(stack):
    """Its inline policy is deleted after the controller (and so after the Ingresses it must
    clean up): the association takes the role's ARN through the policy (pod_identity.py)."""
    plan = stack.plan
    policy = plan.one("aws:iam/rolePolicy:RolePolicy", "ingress-controller")
    association = plan.one("aws:eks/podIdentityAssociation:PodIdentityAssociation", "ingress-controller")
    release = helm_release(plan, "aws-load-balancer-controller")
    assert policy.urn in association.property_dependencies["roleArn"]
    for resource in (association, release, *plan.of_type(INGRESS)):
        assert plan.waits_for(resource, policy), resource.name
        assert plan.deleted_before(resource, policy), resource.name
