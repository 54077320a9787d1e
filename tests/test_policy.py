"""The policy pack: every stack passes every rule, and each rule fires on a bad resource."""

from __future__ import annotations

import ast
import copy
import dataclasses
import functools
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from policy.rules import POLICIES
from tests.conftest import ROOT, STACKS
from tools.engine import Plan, read_stack_config, run_stack
from tools.policy_check import check, main

ALB = "alb.ingress.kubernetes.io/"
LB_ATTRIBUTES = ALB + "load-balancer-attributes"
TG_ATTRIBUTES = ALB + "target-group-attributes"


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_passes_every_policy(stack_plans, stack):
    assert check(stack_plans[stack]) == []


def _changed(plan: Plan, type_token: str, change: Callable[[dict], None], *, name: str | None = None,
             protect: bool | None = None) -> Plan:
    """A copy of `plan` in which the first `type_token` resource (named `name`) is changed."""
    resources, done = [], False
    for resource in plan.resources:
        if not done and resource.type == type_token and name in (None, resource.name):
            inputs = copy.deepcopy(resource.raw_inputs)
            change(inputs)
            resource = dataclasses.replace(resource, raw_inputs=inputs,
                                           protect=resource.protect if protect is None else protect)
            done = True
        resources.append(resource)
    assert done, (type_token, name)
    return dataclasses.replace(plan, resources=resources)


def _set(*path, value):
    def change(inputs: dict) -> None:
        target = inputs
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


def _pod(inputs: dict) -> dict:
    return inputs["spec"]["template"]["spec"]


def _annotation(key: str, edit: Callable[[str], str]):
    def change(inputs: dict) -> None:
        annotations = inputs["metadata"]["annotations"]
        annotations[key] = edit(annotations[key])
    return change


def _no_rule_stickiness(inputs: dict) -> None:
    annotations = inputs["metadata"]["annotations"]
    annotations[ALB + "actions.weighted-release"] = json.dumps({"type": "forward", "forwardConfig": {
        "targetGroups": [{"serviceName": "a", "servicePort": "http", "weight": 90},
                         {"serviceName": "b", "servicePort": "http", "weight": 10}]}})


def _wildcard_inline(inputs: dict) -> None:
    inputs["policy"] = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*:*", "Resource": "*"}]})


@functools.cache
def _prod_with_a_managed_group() -> Plan:
    """Prod with its chat group on the managed engine (EKS node group, Cluster Autoscaler)."""
    config = copy.deepcopy(read_stack_config(ROOT, "prod"))
    config["anythingllm:cluster"]["gpuNodeGroups"][0]["engine"] = "managed"
    return run_stack(ROOT, "prod", config=config)


DEPLOYMENT = "kubernetes:apps/v1:Deployment"
UNPROTECTED = _set("deletionProtection", value=False)
BAD = [
    ("rds-storage-encrypted", "dev", "aws:rds/instance:Instance", _set("storageEncrypted", value=False), {}),
    ("efs-encrypted", "dev", "aws:efs/fileSystem:FileSystem", _set("encrypted", value=False), {}),
    ("elasticache-encrypted-at-rest", "dev", "aws:elasticache/replicationGroup:ReplicationGroup",
     _set("atRestEncryptionEnabled", value=False), {}),
    ("eks-secrets-encrypted", "dev", "aws:eks/cluster:Cluster", _set("encryptionConfig", value={}), {}),
    ("database-not-public", "dev", "aws:rds/instance:Instance", _set("publiclyAccessible", value=True), {}),
    ("redis-tls-required", "dev", "aws:elasticache/replicationGroup:ReplicationGroup",
     _set("transitEncryptionMode", value="preferred"), {}),
    ("redis-tls-required", "dev", "aws:elasticache/replicationGroup:ReplicationGroup",
     _set("transitEncryptionEnabled", value=False), {}),
    ("alb-timeout-and-stickiness", "dev", "kubernetes:networking.k8s.io/v1:Ingress",
     _annotation(LB_ATTRIBUTES, lambda v: v.replace("idle_timeout.timeout_seconds=600",
                                                    "idle_timeout.timeout_seconds=120")), {}),
    ("alb-timeout-and-stickiness", "dev", "kubernetes:networking.k8s.io/v1:Ingress",
     _annotation(LB_ATTRIBUTES, lambda v: v.replace("idle_timeout.timeout_seconds=600,", "")), {}),
    ("alb-timeout-and-stickiness", "dev", "kubernetes:networking.k8s.io/v1:Ingress",
     _annotation(TG_ATTRIBUTES, lambda v: v.replace("stickiness.enabled=true", "stickiness.enabled=no")),
     {}),
    ("alb-timeout-and-stickiness", "dev", "kubernetes:networking.k8s.io/v1:Ingress", _no_rule_stickiness, {}),
    ("gpu-node-groups-tainted", "prod-managed", "aws:eks/nodeGroup:NodeGroup", _set("taints", value=[]),
     {"name": "cluster-gpu-chat"}),
    ("gpu-node-pools-tainted", "dev", "kubernetes:karpenter.sh/v1:NodePool",
     lambda i: i["spec"]["template"]["spec"].update(taints=[]), {"name": "cluster-karpenter-inference"}),
    ("containers-non-root-with-limits", "dev", DEPLOYMENT,
     lambda i: _pod(i)["securityContext"].pop("runAsNonRoot"), {}),
    ("containers-non-root-with-limits", "dev", DEPLOYMENT,
     lambda i: _pod(i)["containers"][0]["securityContext"].update(runAsUser=0), {}),
    ("containers-non-root-with-limits", "dev", DEPLOYMENT,
     lambda i: _pod(i)["containers"][0]["resources"]["limits"].pop("memory"), {}),
    ("containers-non-root-with-limits", "dev", "kubernetes:batch/v1:Job",
     lambda i: _pod(i)["containers"][0].pop("resources"), {}),
    ("no-wildcard-iam", "dev", "aws:iam/rolePolicy:RolePolicy", _wildcard_inline, {}),
    ("no-wildcard-iam", "dev", "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
     _set("policyArn", value="arn:aws:iam::aws:policy/AdministratorAccess"), {}),
    ("prod-deletion-protection", "prod", "aws:rds/instance:Instance", UNPROTECTED, {}),
    ("prod-deletion-protection", "prod", "aws:eks/cluster:Cluster", UNPROTECTED, {}),
    ("prod-deletion-protection", "prod", "aws:efs/fileSystem:FileSystem", lambda _: None, {"protect": False}),
    ("prod-deletion-protection", "prod", "kubernetes:networking.k8s.io/v1:Ingress",
     _annotation(LB_ATTRIBUTES, lambda v: v.replace("deletion_protection.enabled=true",
                                                    "deletion_protection.enabled=false")),
     {"name": "anythingllm-ingress"}),  # the group's member that states the ALB's settings
]


@pytest.mark.parametrize(("policy", "stack", "type_token", "change", "options"), BAD,
                         ids=[f"{case[0]}-{index}" for index, case in enumerate(BAD)])
def test_each_policy_fires_on_a_bad_resource(stack_plans, policy, stack, type_token, change, options):
    plan = _prod_with_a_managed_group() if stack == "prod-managed" else stack_plans[stack]
    bad = _changed(plan, type_token, change, **options)
    fired = {violation.policy for violation in check(bad)}
    assert fired == {policy}


def test_every_policy_has_a_bad_case():
    assert {policy.name for policy in POLICIES} == {case[0] for case in BAD}


def test_prod_rules_do_not_apply_outside_prod(stack_plans):
    """dev has no deletion protection on purpose: the stack rule keys off the environment tag."""
    relaxed = _changed(stack_plans["dev"], "aws:rds/instance:Instance", UNPROTECTED)
    assert check(relaxed) == []


def test_cli_exit_status(capsys):
    assert main(["dev"]) == 0
    assert "dev: 12 policies, 0 violations" in capsys.readouterr().out


def test_pack_entry_point_is_thin_and_pinned_like_the_program():
    pack = ROOT / "policy"
    tree = ast.parse((pack / "__main__.py").read_text())
    calls = [node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(
        node.func, ast.Name)]
    assert calls == ["PolicyPack"]
    assert yaml.safe_load((pack / "PulumiPolicy.yaml").read_text())["runtime"]["name"] == "python"

    def pins(path: Path) -> dict[str, str]:
        return dict(line.split("==") for line in path.read_text().splitlines()
                    if "==" in line and not line.startswith("#"))
    assert pins(pack / "requirements.txt")["pulumi"] == pins(ROOT / "requirements.txt")["pulumi"]
