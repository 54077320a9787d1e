"""The platform's CrossGuard rules, importable (tests and tools/policy_check.py call them).

Each rule reads what the engine sends a policy pack: a resource's type, its inputs
(camelCase, as in `plan.json`), its name and URN and its options (`protect`). Values still
unknown during a preview (an IAM document built from ARNs) are skipped, and checked on `up`.
All rules are mandatory (see __main__.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

ENVIRONMENT_TAG = "anythingllm:environment"
ALB_PREFIX = "alb.ingress.kubernetes.io/"
MIN_IDLE_TIMEOUT_SECONDS = 300
GPU_TAINT_KEY = "nvidia.com/gpu"
# Accelerated EC2 families: g4dn, g5, g6, g6e, gr6, p4d, p5, ...
GPU_INSTANCE = re.compile(r"^(g\d|gr\d|p\d)[a-z0-9-]*\.")
ADMIN_POLICY = re.compile(r":policy/AdministratorAccess$")

RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
EFS = "aws:efs/fileSystem:FileSystem"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
KMS_KEY = "aws:kms/key:Key"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
POLICY_DOCUMENT_TYPES = ("aws:iam/policy:Policy", "aws:iam/rolePolicy:RolePolicy",
                         "aws:iam/userPolicy:UserPolicy", "aws:iam/groupPolicy:GroupPolicy")
POLICY_ATTACHMENT_TYPES = ("aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                           "aws:iam/userPolicyAttachment:UserPolicyAttachment",
                           "aws:iam/groupPolicyAttachment:GroupPolicyAttachment")
# Where each workload kind keeps its pod spec.
POD_SPEC_PATHS = {
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "kubernetes:core/v1:Pod": ("spec",),
}

Check = Callable[[ResourceValidationArgs], Iterable[str]]


def _dig(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _resource_policy(name: str, description: str, types: Iterable[str],
                     check: Check) -> ResourceValidationPolicy:
    wanted = frozenset(types)

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type in wanted:
            for message in check(args):
                report_violation(message, args.urn)

    return ResourceValidationPolicy(name=name, description=description, validate=validate,
                                    enforcement_level=EnforcementLevel.MANDATORY)


def _must_be_true(key: str, why: str) -> Check:
    def check(args: ResourceValidationArgs) -> Iterable[str]:
        if args.props.get(key) is not True:
            yield f"{args.name}: {key} must be true ({why})"
    return check


# --------------------------------------------------------------------------- encryption, exposure


def _eks_secrets(args: ResourceValidationArgs) -> Iterable[str]:
    config = args.props.get("encryptionConfig") or {}
    if "secrets" not in (config.get("resources") or []) or not _dig(config, "provider", "keyArn"):
        yield f"{args.name}: encryptionConfig must encrypt `secrets` with a KMS key"


def _not_public(args: ResourceValidationArgs) -> Iterable[str]:
    if args.props.get("publiclyAccessible") is True:
        yield f"{args.name}: publiclyAccessible must be false; databases stay in private subnets"


def _redis_tls(args: ResourceValidationArgs) -> Iterable[str]:
    if args.props.get("transitEncryptionEnabled") is not True:
        yield f"{args.name}: transitEncryptionEnabled must be true"
    elif args.props.get("transitEncryptionMode", "required") != "required":
        yield (f"{args.name}: transitEncryptionMode must be 'required' "
               f"(got {args.props.get('transitEncryptionMode')!r}: plaintext clients would be accepted)")


# --------------------------------------------------------------------------- ALB


def _attributes(text: Any) -> dict[str, str]:
    if not isinstance(text, str) or not text:
        return {}
    return dict(pair.split("=", 1) for pair in text.split(",") if "=" in pair)


def _is_alb(props: dict) -> bool:
    annotations = _dig(props, "metadata", "annotations") or {}
    return (_dig(props, "spec", "ingressClassName") == "alb"
            or annotations.get("kubernetes.io/ingress.class") == "alb")


def _states_the_alb(annotations: dict) -> bool:
    """Whether this Ingress states its ALB's own settings: a lone Ingress does; in an
    IngressGroup, the member that names the load balancer (the others leave them out, as the
    controller's "exclusive" annotations must be stated once)."""
    return (f"{ALB_PREFIX}group.name" not in annotations
            or f"{ALB_PREFIX}load-balancer-name" in annotations)


def _alb_ingress(args: ResourceValidationArgs) -> Iterable[str]:
    if not _is_alb(args.props):
        return
    annotations = _dig(args.props, "metadata", "annotations") or {}
    balancer = _attributes(annotations.get(f"{ALB_PREFIX}load-balancer-attributes"))
    idle = balancer.get("idle_timeout.timeout_seconds")
    if _states_the_alb(annotations) and (
            idle is None or not idle.isdigit() or int(idle) < MIN_IDLE_TIMEOUT_SECONDS):
        yield (f"{args.name}: idle_timeout.timeout_seconds must be >= {MIN_IDLE_TIMEOUT_SECONDS} "
               f"(got {idle or 'the ALB default, 60'}): streamed answers and the agent WebSocket "
               "go quiet for minutes")
    groups = _attributes(annotations.get(f"{ALB_PREFIX}target-group-attributes"))
    if groups.get("stickiness.enabled") != "true":
        yield (f"{args.name}: target-group-attributes must set stickiness.enabled=true: embedding "
               "progress and agent sessions live in one pod's memory")
    for key, value in annotations.items():
        if not key.startswith(f"{ALB_PREFIX}actions."):
            continue
        try:
            action = json.loads(value)
        except (TypeError, ValueError):
            yield f"{args.name}: {key} is not JSON"
            continue
        forward = action.get("forwardConfig") or {}
        if len(forward.get("targetGroups") or []) > 1 and \
                _dig(forward, "targetGroupStickinessConfig", "enabled") is not True:
            yield (f"{args.name}: {key} splits traffic over target groups without "
                   "targetGroupStickinessConfig.enabled: a user would switch variants mid-session")


# --------------------------------------------------------------------------- nodes and pods


def _gpu_tainted(args: ResourceValidationArgs) -> Iterable[str]:
    ami = str(args.props.get("amiType") or "")
    instances = args.props.get("instanceTypes") or []
    if "NVIDIA" not in ami and not any(GPU_INSTANCE.match(str(t)) for t in instances):
        return
    taints = args.props.get("taints") or []
    if not any(t.get("key") == GPU_TAINT_KEY and t.get("effect") in ("NO_SCHEDULE", "NO_EXECUTE")
               for t in taints):
        yield (f"{args.name}: a GPU node group needs the taint {GPU_TAINT_KEY}:NO_SCHEDULE, or any "
               "pod may land on (and keep awake) an expensive GPU node")


def _gpu_node_pool_tainted(args: ResourceValidationArgs) -> Iterable[str]:
    """A Karpenter NodePool whose instance types are GPU types (or that admits any GPU count)
    must taint its nodes the same way (Kubernetes spelling: NoSchedule)."""
    spec = _dig(args.props, "spec", "template", "spec")
    if not isinstance(spec, dict):
        return
    requirements = spec.get("requirements") or []
    gpu = any(
        (r.get("key") == "node.kubernetes.io/instance-type"
         and any(GPU_INSTANCE.match(str(t)) for t in r.get("values") or []))
        or r.get("key") in ("karpenter.k8s.aws/instance-gpu-count",
                            "karpenter.k8s.aws/instance-gpu-manufacturer")
        for r in requirements)
    taints = spec.get("taints") or []
    if gpu and not any(t.get("key") == GPU_TAINT_KEY and t.get("effect") in ("NoSchedule", "NoExecute")
                       for t in taints):
        yield (f"{args.name}: a GPU NodePool needs the taint {GPU_TAINT_KEY}:NoSchedule, or any "
               "pod may land on (and keep awake) an expensive GPU node")


def _containers(args: ResourceValidationArgs) -> Iterable[str]:
    pod = _dig(args.props, *POD_SPEC_PATHS[args.resource_type])
    if not isinstance(pod, dict):
        return
    pod_context = pod.get("securityContext") or {}
    for container in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
        name = f"{args.name}/{container.get('name')}"
        context = container.get("securityContext") or {}
        non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
        user = context.get("runAsUser", pod_context.get("runAsUser"))
        if non_root is not True or user == 0:
            yield f"{name}: must run as non-root (runAsNonRoot: true, runAsUser not 0)"
        limits = _dig(container, "resources", "limits") or {}
        missing = [kind for kind in ("cpu", "memory") if kind not in limits]
        if missing:
            yield f"{name}: resources.limits must set {' and '.join(missing)}"


# --------------------------------------------------------------------------- IAM


def _statements(document: Any) -> list[dict]:
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return []  # unknown during preview: checked on `up`
    if not isinstance(document, dict):
        return []
    statements = document.get("Statement") or []
    return [statements] if isinstance(statements, dict) else [s for s in statements if isinstance(s, dict)]


def _wildcards(name: str, document: Any) -> Iterable[str]:
    for statement in _statements(document):
        if statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if any(action in ("*", "*:*") for action in actions):
            yield f"{name}: a statement allows every action (Action {actions!r})"
        if "NotAction" in statement:
            yield f"{name}: Allow with NotAction grants every action but the listed ones"


def _no_wildcard_iam(args: ResourceValidationArgs) -> Iterable[str]:
    if args.resource_type in POLICY_DOCUMENT_TYPES:
        yield from _wildcards(args.name, args.props.get("policy"))
    elif args.resource_type == "aws:iam/role:Role":
        for inline in args.props.get("inlinePolicies") or []:
            yield from _wildcards(f"{args.name}/{inline.get('name')}", inline.get("policy"))
    elif ADMIN_POLICY.search(str(args.props.get("policyArn") or "")):
        yield f"{args.name}: AdministratorAccess is `*:*`; attach a scoped policy"


# --------------------------------------------------------------------------- prod (whole stack)


def environment_of(resources: Iterable[Any]) -> str | None:
    """The stack's environment, from the tag every AWS resource carries."""
    for resource in resources:
        value = (resource.props.get("tags") or {}).get(ENVIRONMENT_TAG) if isinstance(
            resource.props.get("tags"), dict) else None
        if value:
            return value
    return None


def _prod_deletion_protection(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    if environment_of(args.resources) != "prod":
        return
    for resource in args.resources:
        kind, props = resource.resource_type, resource.props
        if kind in (RDS_INSTANCE, RDS_CLUSTER, EKS_CLUSTER) and props.get("deletionProtection") is not True:
            report_violation(f"{resource.name}: deletionProtection must be true in prod", resource.urn)
        if kind in (RDS_INSTANCE, RDS_CLUSTER, REPLICATION_GROUP, EFS, KMS_KEY) and not resource.opts.protect:
            report_violation(f"{resource.name}: stateful resources are `protect`ed in prod", resource.urn)
        if kind == INGRESS and _is_alb(props):
            annotations = _dig(props, "metadata", "annotations") or {}
            attributes = _attributes(annotations.get(f"{ALB_PREFIX}load-balancer-attributes"))
            if _states_the_alb(annotations) and attributes.get("deletion_protection.enabled") != "true":
                report_violation(f"{resource.name}: the prod ALB needs deletion_protection.enabled=true",
                                 resource.urn)


DATABASES = [RDS_INSTANCE, RDS_CLUSTER]
IAM_TYPES = ["aws:iam/role:Role", *POLICY_DOCUMENT_TYPES, *POLICY_ATTACHMENT_TYPES]
POLICIES = [
    _resource_policy("rds-storage-encrypted", "RDS storage is encrypted at rest.", DATABASES,
                     _must_be_true("storageEncrypted", "encryption at rest")),
    _resource_policy("efs-encrypted", "EFS file systems are encrypted at rest.", [EFS],
                     _must_be_true("encrypted", "encryption at rest")),
    _resource_policy("elasticache-encrypted-at-rest", "ElastiCache is encrypted at rest.",
                     [REPLICATION_GROUP], _must_be_true("atRestEncryptionEnabled", "encryption at rest")),
    _resource_policy("eks-secrets-encrypted", "EKS envelope-encrypts Kubernetes Secrets with KMS.",
                     [EKS_CLUSTER], _eks_secrets),
    _resource_policy("database-not-public", "No database is publicly accessible.", DATABASES, _not_public),
    _resource_policy("redis-tls-required", "Redis/Valkey accepts TLS connections only.",
                     [REPLICATION_GROUP], _redis_tls),
    _resource_policy("alb-timeout-and-stickiness",
                     "ALB Ingresses keep idle connections >= 300 s and sticky sessions (also across a "
                     "weighted canary split).", [INGRESS], _alb_ingress),
    _resource_policy("gpu-node-groups-tainted", "GPU node groups carry the nvidia.com/gpu NoSchedule taint.",
                     [NODE_GROUP], _gpu_tainted),
    _resource_policy("gpu-node-pools-tainted",
                     "Karpenter GPU NodePools carry the nvidia.com/gpu NoSchedule taint.",
                     [NODE_POOL], _gpu_node_pool_tainted),
    _resource_policy("containers-non-root-with-limits",
                     "Every container runs as non-root with CPU and memory limits.", list(POD_SPEC_PATHS),
                     _containers),
    _resource_policy("no-wildcard-iam", "No IAM policy allows every action (`*` / `*:*`).", IAM_TYPES,
                     _no_wildcard_iam),
    StackValidationPolicy(
        name="prod-deletion-protection",
        description="In prod: deletion protection on RDS, EKS and the ALB; stateful resources protected.",
        validate=_prod_deletion_protection, enforcement_level=EnforcementLevel.MANDATORY),
]
