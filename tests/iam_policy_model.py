"""Evaluate an IAM identity or key policy for one request, the way IAM does, for the operators it knows.

The logic follows the IAM User Guide, "Policy evaluation logic" and "IAM JSON policy elements:
Condition operators" (docs.aws.amazon.com/IAM/latest/UserGuide/):

- an explicit Deny wins, then any Allow, else the request is implicitly denied;
- `Action`/`NotAction` match case-insensitively, `Resource`/`NotResource` case-sensitively,
  `*` matching any run of characters (slashes included) and `?` one character;
- within `Condition`, every operator must hold, within an operator every key must hold, and
  a key holds when the request value matches any of the policy's values;
- a key missing from the request context fails a positive operator (`StringEquals`,
  `ArnLike`, ...) and satisfies a negated one (`StringNotEquals`, ...); `...IfExists` holds
  when the key is missing; `Null: true` holds when it is missing;
- `ForAllValues:` holds when every request value matches (so also for a missing key),
  `ForAnyValue:` when at least one does (so not for a missing key).

An operator or policy variable it does not implement raises, so a policy it cannot judge is
never judged wrong quietly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ALLOWED, EXPLICIT_DENY, IMPLICIT_DENY = "allowed", "explicitly denied", "implicitly denied"


@dataclass(frozen=True)
class Request:
    """One authorization request: an action on a resource ARN ("*" where the action has no
    resource type) with its request context (condition key -> value or list of values)."""
    action: str
    resource: str
    context: dict[str, str | list[str]] = field(default_factory=dict)
    # For resource policies (key policies): the caller's ARN, or a service principal's name.
    principal: str | None = None


def _glob(pattern: str, value: str, *, ignore_case: bool) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _arn_like(pattern: str, value: str) -> bool:
    # ARNs match field by field (partition, service, region, account, resource).
    pattern_fields, value_fields = pattern.split(":", 5), value.split(":", 5)
    if len(pattern_fields) != 6 or len(value_fields) != 6:
        return False
    return all(_glob(p, v, ignore_case=False) for p, v in zip(pattern_fields, value_fields, strict=True))


_MATCHERS = {
    "StringEquals": lambda policy, request: policy == request,
    "StringLike": lambda policy, request: _glob(policy, request, ignore_case=False),
    "ArnEquals": _arn_like,
    "ArnLike": _arn_like,
    "Bool": lambda policy, request: str(policy).lower() == str(request).lower(),
}
_NEGATED = {"StringNotEquals": "StringEquals", "StringNotLike": "StringLike",
            "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike"}


def _context_value(context: dict[str, Any], key: str) -> list[str] | None:
    for name, value in context.items():
        if name.lower() == key.lower():  # condition key names are case-insensitive
            return [str(v) for v in _as_list(value)]
    return None


def _condition_holds(operator: str, key: str, policy_values: Any,
                     context: dict[str, Any]) -> bool:
    values = [str(v) for v in _as_list(policy_values)]
    if any("${" in value for value in values):
        raise NotImplementedError(f"policy variables are not modelled: {values}")
    request = _context_value(context, key)
    if operator == "Null":
        if len(values) != 1:
            raise NotImplementedError(f"Null on {key} with several values is not modelled")
        return (request is None) == (values[0].lower() == "true")
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    negated = base in _NEGATED
    matcher = _MATCHERS.get(_NEGATED.get(base, base))
    if matcher is None or qualifier not in ("", "ForAllValues", "ForAnyValue"):
        raise NotImplementedError(f"condition operator {operator!r} is not modelled")

    def matches(one: str) -> bool:
        hit = any(matcher(policy, one) for policy in values)
        return not hit if negated else hit

    if request is None:
        if qualifier == "ForAllValues" or if_exists:
            return True
        if qualifier == "ForAnyValue":
            return False
        return negated
    if qualifier == "ForAllValues":
        return all(matches(one) for one in request)
    if qualifier == "ForAnyValue":
        return any(matches(one) for one in request)
    if len(request) != 1:
        raise NotImplementedError(f"{key} has several values: use ForAllValues or ForAnyValue")
    return matches(request[0])


def _principal_matches(principal: Any, caller: str | None) -> bool:
    """A resource policy's `Principal` names the caller: "*", the caller's ARN or service name,
    or the caller's account (`arn:...:iam::<account>:root`, which hands the decision to the
    account's IAM policies; this model takes them to allow)."""
    if caller is None:
        raise NotImplementedError("a statement with a Principal needs the request's principal")
    if principal == "*":
        return True
    names = [name for value in principal.values() for name in _as_list(value)]
    account = caller.split(":")[4] if caller.startswith("arn:") else None
    return caller in names or any(
        name.endswith(":root") and name.split(":")[4] == account for name in names)


def _statement_applies(statement: dict[str, Any], request: Request) -> bool:
    if "NotPrincipal" in statement:
        raise NotImplementedError("NotPrincipal is not modelled")
    if "Principal" in statement and not _principal_matches(statement["Principal"], request.principal):
        return False
    if "Action" in statement:
        action = any(_glob(p, request.action, ignore_case=True) for p in _as_list(statement["Action"]))
    else:
        action = not any(_glob(p, request.action, ignore_case=True)
                         for p in _as_list(statement["NotAction"]))
    if "Resource" in statement:
        resource = any(_glob(p, request.resource, ignore_case=False)
                       for p in _as_list(statement["Resource"]))
    else:
        resource = not any(_glob(p, request.resource, ignore_case=False)
                           for p in _as_list(statement["NotResource"]))
    return action and resource and all(
        _condition_holds(operator, key, values, request.context)
        for operator, keys in statement.get("Condition", {}).items()
        for key, values in keys.items())


def evaluate(policy: dict[str, Any], request: Request) -> str:
    """ALLOWED, EXPLICIT_DENY or IMPLICIT_DENY for `request` under `policy` alone (an identity
    policy, or a key policy for a caller whose IAM policies allow the call)."""
    applying = [s for s in _as_list(policy["Statement"]) if _statement_applies(s, request)]
    if any(s["Effect"] == "Deny" for s in applying):
        return EXPLICIT_DENY
    return ALLOWED if any(s["Effect"] == "Allow" for s in applying) else IMPLICIT_DENY


def allowing_statements(policy: dict[str, Any], request: Request) -> list[str]:
    """The Sids (or indexes) of the Allow statements that grant `request`."""
    return [statement.get("Sid", str(index))
            for index, statement in enumerate(_as_list(policy["Statement"]))
            if statement["Effect"] == "Allow" and _statement_applies(statement, request)]
