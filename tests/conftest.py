"""Shared fixtures: valid base configs, settings builders, and recorded stack plans."""

from __future__ import annotations

import copy
import datetime as dt
import fcntl
import pickle
from pathlib import Path
from typing import Any

import pytest

from components.settings import SettingsError, StackSettings, parse_settings
from tools.engine import Plan, read_stack_config, run, run_stack
from tools.staging import committed_stacks

ROOT = Path(__file__).resolve().parent.parent
STACKS = committed_stacks(ROOT)
TODAY = dt.date(2026, 11, 23)  # fixed, so version-support tests do not drift with the clock


CERTIFICATE_ARN = "arn:aws:acm:eu-west-1:111122223333:certificate/00000000-0000-4000-8000-000000000000"
WAF_ACL_ARN = ("arn:aws:wafv2:eu-west-1:111122223333:regional/webacl/chat/"
               "00000000-0000-4000-8000-000000000001")


# An existing Cognito user pool: ALB authentication without resources of the stack's own.
EXISTING_COGNITO = {"type": "cognito", "cognito": {
    "userPoolArn": "arn:aws:cognito-idp:eu-west-1:111122223333:userpool/eu-west-1_AbCdEf123",
    "userPoolClientId": "1example23456789abcdefghij", "userPoolDomain": "chat-login"}}


def base_config(environment: str = "dev") -> dict[str, Any]:
    """A minimal valid stack config (keys without the project namespace)."""
    ingress = ({"certificateArn": CERTIFICATE_ARN, "wafAclArn": WAF_ACL_ARN, "auth": EXISTING_COGNITO}
               if environment == "prod"
               else {"scheme": "internet-facing", "inboundCidrs": ["198.51.100.0/24"]})
    observability = {"alarmEmails": ["oncall@example.com"]} if environment == "prod" else {}
    return {
        "aws:region": "eu-west-1",
        "environment": environment,
        "observability": observability,
        "network": {
            "vpcCidr": "10.10.0.0/16",
            "availabilityZones": ["eu-west-1a", "eu-west-1b", "eu-west-1c"],
            "natGateways": "perAz",
        },
        "cluster": {
            "kubernetesVersion": "1.35",
            "adminRoleArns": ["arn:aws:iam::111122223333:role/admin"],
            "publicAccessCidrs": ["198.51.100.0/24"],
            "gpuNodeGroups": [{
                "name": "inference",
                "instanceTypes": ["g5.xlarge"],
                "minSize": 0, "desiredSize": 0, "maxSize": 2,
            }],
        },
        "ingress": ingress,
        "modelServing": {"models": [
            {"name": "chat", "model": "Qwen/Qwen2.5-7B-Instruct", "kind": "chat",
             "nodeGroup": "inference", "maxModelLen": 32768},
            {"name": "embed", "model": "BAAI/bge-m3", "kind": "embedding",
             "nodeGroup": "inference", "maxModelLen": 8192, "dimensions": 1024},
        ]},
    }


def settings_from(config: dict[str, Any], *, stack: str = "test") -> StackSettings:
    return parse_settings(copy.deepcopy(config), project="anythingllm", stack=stack, today=TODAY)


def expect_settings_error(config: dict[str, Any], path: str, reason: str) -> None:
    """Loading `config` fails, naming the key `path` and saying `reason`."""
    with pytest.raises(SettingsError) as caught:
        settings_from(config)
    message = str(caught.value)
    assert f"  - {path}: " in message, message
    assert reason in message, message


def stack_settings(stack: str) -> StackSettings:
    """The validated settings of `Pulumi.<stack>.yaml`."""
    raw = {key.split(":", 1)[1] if key.startswith("anythingllm:") else key: value
           for key, value in read_stack_config(ROOT, stack).items()}
    return parse_settings(raw, project="anythingllm", stack=stack, today=TODAY)


def namespaced(config: dict[str, Any]) -> dict[str, Any]:
    """Stack-file form of `config`: project keys get the `anythingllm:` prefix."""
    return {key if ":" in key else f"anythingllm:{key}": value for key, value in config.items()}


def helm_release(plan: Plan, release_name: str):
    """The plan's Helm release named `release_name` (its `name` input)."""
    return next(r for r in plan.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["name"] == release_name)


def record(program, *, config: dict[str, Any] | None = None, stack: str = "test") -> Plan:
    """Run `program` (e.g. one component alone) under the recording engine."""
    return run(program, project="anythingllm", stack=stack,
               config=namespaced(config or base_config()))


@pytest.fixture(scope="session")
def stack_plans(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> dict[str, Plan]:
    """Every Pulumi.<stack>.yaml recorded once for the whole run: under pytest-xdist the first
    worker to need them records and pickles them while holding a lock, and the other reads
    them, instead of both recording the same plans on a 2-core machine."""
    if worker_id == "master":  # not under xdist
        return {stack: run_stack(ROOT, stack) for stack in STACKS}
    shared = tmp_path_factory.getbasetemp().parent / "stack_plans.pickle"
    with open(shared.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if shared.exists():
            return pickle.loads(shared.read_bytes())
        plans = {stack: run_stack(ROOT, stack) for stack in STACKS}
        shared.write_bytes(pickle.dumps(plans))
        return plans
