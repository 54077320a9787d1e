"""Run the policy pack's rules (policy/rules.py) over an offline plan, as `pulumi preview
--policy-pack policy` would over the real one.

    python -m tools.policy_check [STACK ...]      (default: every committed stack)

Each recorded registration becomes the `ResourceValidationArgs` / `PolicyResource` that
pulumi-policy hands a rule; exit status 1 lists every violation.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)

from policy.rules import POLICIES

from .engine import Plan, Registration, run_stack
from .staging import committed_stacks

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Violation:
    policy: str
    urn: str | None
    message: str


def _seconds(text: str | None) -> float:
    if not text:
        return 0.0
    units = {"s": 1, "m": 60, "h": 3600}
    return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)


def _options(resource: Registration) -> PolicyResourceOptions:
    timeouts = resource.custom_timeouts
    return PolicyResourceOptions(
        protect=resource.protect, ignore_changes=resource.ignore_changes,
        delete_before_replace=resource.delete_before_replace, aliases=[],
        custom_timeouts=PolicyCustomTimeouts(*(_seconds(timeouts.get(kind))
                                               for kind in ("create", "update", "delete"))),
        additional_secret_outputs=[], parent=resource.parent,
    )


def resource_args(resource: Registration) -> ResourceValidationArgs:
    return ResourceValidationArgs(resource.type, resource.raw_inputs, resource.urn, resource.name,
                                  _options(resource), None)


def policy_resources(plan: Plan) -> list[PolicyResource]:
    built: dict[str, PolicyResource] = {}
    for resource in plan.resources:
        built[resource.urn] = PolicyResource(
            resource.type, resource.raw_inputs, resource.urn, resource.name, _options(resource), None,
            built.get(resource.parent or ""), [built[u] for u in resource.dependencies if u in built], {})
    return list(built.values())


def check(plan: Plan, policies=POLICIES) -> list[Violation]:
    """Every violation of `policies` in `plan`."""
    violations: list[Violation] = []
    for policy in policies:
        def report(message: str, urn: str | None = None, policy=policy) -> None:
            violations.append(Violation(policy.name, urn, message))

        if isinstance(policy, ResourceValidationPolicy):
            for resource in plan.resources:
                if resource.custom:
                    policy.validate(resource_args(resource), report)
        else:
            policy.validate(StackValidationArgs(policy_resources(plan)), report)
    return violations


def main(argv: list[str] | None = None) -> int:
    stacks = (argv if argv is not None else sys.argv[1:]) or committed_stacks(ROOT)
    failed = 0
    for stack in stacks:
        violations = check(run_stack(ROOT, stack))
        print(f"{stack}: {len(POLICIES)} policies, {len(violations)} violations")
        for violation in violations:
            print(f"  [{violation.policy}] {violation.message}")
        failed += len(violations)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
