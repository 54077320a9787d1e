"""Pod-spec building blocks shared by the serving workloads (pure functions, no resources).

AnythingLLM, LiteLLM and vLLM are built from the same pieces: labels, security contexts,
probes, spreading, a PodDisruptionBudget and a CPU autoscaler, so that every workload is held
to the same standard and a reviewer checks each piece once.
"""

from __future__ import annotations

import hashlib
import json
import weakref

import pulumi
import pulumi_kubernetes as k8s

from .node_group import system_labels

PART_OF = "anythingllm"

# The kubelet asks the registry for the tag's digest at every pod start (cached layers are
# reused): a re-pushed tag is noticed, and a pod never starts from an image another pod pulled
# with credentials it does not have itself.
IMAGE_PULL_POLICY = "Always"

# Security scan (checkov, kubernetes framework; tests/test_security_scan.py). A finding is
# fixed, or suppressed on the object itself by a `checkov.io/skip<N>: <check>=<reason>`
# annotation written next to the resource (`scan_exceptions`).
SCAN_SKIP_PREFIX = "checkov.io/skip"
IMAGE_DIGEST_CHECK = "CKV_K8S_43"
SECRETS_AS_FILES_CHECK = "CKV_K8S_35"
READ_ONLY_ROOT_CHECK = "CKV_K8S_22"
HIGH_UID_CHECK = "CKV_K8S_40"
DIGEST_MARKER = "@sha256:"
TAG_ONLY_REASON = ("pinned by exact tag in components/versions.py (app.imageTag for AnythingLLM); "
                   "append @sha256:<digest> there to pin by content and this exception goes away")


def workload_labels(name: str, component: str, version: str) -> dict[str, str]:
    """Recommended labels; `selector_labels` is the stable subset a selector may use."""
    return {**selector_labels(name, component), "app.kubernetes.io/version": version,
            "app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": "pulumi"}


def selector_labels(name: str, component: str) -> dict[str, str]:
    # No version here: a Deployment's selector is immutable and must match across upgrades.
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/component": component}


def image_version(image: str) -> str:
    """The tag of a pinned image reference (digest ignored), used as `app.kubernetes.io/version`
    (<= 63 chars)."""
    return image.split(DIGEST_MARKER, 1)[0].rsplit(":", 1)[-1][:63]


def scan_exceptions(reasons: dict[str, str], *, images: tuple[str, ...] = ()) -> dict[str, str]:
    """Annotations suppressing checkov findings on one object, each with its written reason.

    `images` are the object's image references: one pinned by tag only (no digest) adds the
    image-digest exception, so pinning a digest removes it without touching this call.
    """
    reasons = dict(reasons)
    if any(DIGEST_MARKER not in image for image in images):
        reasons[IMAGE_DIGEST_CHECK] = TAG_ONLY_REASON
    annotations = {}
    for index, (check, reason) in enumerate(sorted(reasons.items()), start=1):
        # checkov splits the value at "=": a reason containing one would lose its tail.
        if not reason.strip() or "=" in reason:
            raise ValueError(f"scan exception {check}: a reason is required and may not contain '='")
        annotations[f"{SCAN_SKIP_PREFIX}{index}"] = f"{check}={reason}"
    return annotations


def pod_security_context(*, uid: int, fs_group: int | None = None) -> dict:
    """Pod-level security context: a fixed non-root uid/gid and the runtime's seccomp profile."""
    context: dict = {"seccomp_profile": {"type": "RuntimeDefault"}, "run_as_non_root": True,
                     "run_as_user": uid, "run_as_group": uid}
    if fs_group is not None:
        context.update(fs_group=fs_group, fs_group_change_policy="OnRootMismatch")
    return context


def container_security_context(*, read_only_root: bool) -> dict:
    """No privilege escalation and no Linux capabilities at all."""
    return {
        "allow_privilege_escalation": False,
        "privileged": False,
        "read_only_root_filesystem": read_only_root,
        "capabilities": {"drop": ["ALL"]},
    }


def http_probe(path: str, port: str, *, period: int, failures: int, timeout: int = 5) -> dict:
    return {"http_get": {"path": path, "port": port}, "period_seconds": period,
            "timeout_seconds": timeout, "failure_threshold": failures, "success_threshold": 1}


def spread_constraints(labels: dict[str, str]) -> list[dict]:
    """Replicas spread evenly over zones (hard) and nodes (best effort).

    `matchLabelKeys: [pod-template-hash]` counts only pods of the same ReplicaSet, so a
    rolling update spreads the new pods instead of packing them beside the old ones.
    """
    selector = {"match_labels": labels}
    return [
        {"max_skew": 1, "topology_key": "topology.kubernetes.io/zone",
         "when_unsatisfiable": "DoNotSchedule", "label_selector": selector,
         "match_label_keys": ["pod-template-hash"]},
        {"max_skew": 1, "topology_key": "kubernetes.io/hostname",
         "when_unsatisfiable": "ScheduleAnyway", "label_selector": selector,
         "match_label_keys": ["pod-template-hash"]},
    ]


def ingress_only_from(*, namespace: str, app: str, port: int,
                      pod_selector: dict | None = None) -> dict:
    """NetworkPolicy spec: the selected pods (default: all of the namespace) accept `port`/TCP
    from the pods labelled `app.kubernetes.io/name=<app>` in `namespace`, and nothing else."""
    return {
        "pod_selector": pod_selector or {},
        "policy_types": ["Ingress"],
        "ingress": [{
            "from": [{
                "namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": namespace}},
                "pod_selector": {"match_labels": {"app.kubernetes.io/name": app}},
            }],
            "ports": [{"protocol": "TCP", "port": port}],
        }],
    }


def rolling_update(*, max_surge: int | str = 1) -> dict:
    """Never fewer ready pods than desired during a rollout."""
    return {"type": "RollingUpdate", "rolling_update": {"max_unavailable": 0, "max_surge": max_surge}}


def secret_env(variable: str, secret: pulumi.Input[str], key: str | None = None) -> dict:
    """An environment variable read from a key of a Secret (by default, the variable's name)."""
    return {"name": variable, "value_from": {"secret_key_ref": {"name": secret, "key": key or variable}}}


def token_less_account(name: str, *, account: str, namespace: pulumi.Input[str],
                    opts: pulumi.ResourceOptions) -> k8s.core.v1.ServiceAccount:
    """A ServiceAccount whose token is never mounted: none of these pods calls the Kubernetes API."""
    return k8s.core.v1.ServiceAccount(
        name, metadata={"name": account, "namespace": namespace},
        automount_service_account_token=False, opts=opts,
    )


SKIP_AWAIT = "pulumi.com/skipAwait"


def digest_name(prefix: str, *parts: str) -> str:
    """`<prefix>-<10 hex>`: a name that changes with what the named object does. A Job's pod
    template is immutable, so a Job whose script, image or settings change must be a new Job."""
    return f"{prefix}-{hashlib.sha256(chr(0).join(parts).encode()).hexdigest()[:10]}"


def script_job_pod_spec(*, container: str, image: str, uid: int, command: list[str],
                        mount_path: str, config_map: str, env: list[dict], service_account: str,
                        memory_request: str) -> dict:
    """The pod of a Job that runs one script from a ConfigMap with an image's own interpreter:
    no service-account token, never restarted in place (the Job retries), on the system nodes,
    non-root and read-only (the scripts write nothing)."""
    return {
        "service_account_name": service_account,
        "automount_service_account_token": False,
        "restart_policy": "Never",
        "node_selector": system_labels(),
        "security_context": pod_security_context(uid=uid),
        "containers": [{
            "name": container,
            "image": image,
            "image_pull_policy": IMAGE_PULL_POLICY,
            "command": command,
            "env": env,
            "security_context": container_security_context(read_only_root=True),
            "resources": {"requests": {"cpu": "50m", "memory": memory_request},
                          "limits": {"cpu": "500m", "memory": "256Mi"}},
            "volume_mounts": [{"name": "script", "mount_path": mount_path, "read_only": True}],
        }],
        "volumes": [{"name": "script", "config_map": {"name": config_map}}],
    }
SECRETS_DIGEST = "anythingllm.io/secrets-digest"


# What each Secret was created with: the live object has only `data` (the API server turns
# `stringData` into it), so the digest is taken from what the program gave, not from outputs.
_SECRET_DATA: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def remember(secret: k8s.core.v1.Secret, data: pulumi.Input[dict]) -> k8s.core.v1.Secret:
    """Record the data a Secret was created with, for `secrets_digest`; returns the Secret."""
    _SECRET_DATA[secret] = data
    return secret


def secrets_digest(*secrets: k8s.core.v1.Secret) -> pulumi.Output[str]:
    """A digest of the Secrets a pod reads through its environment, for its pod template: a
    changed value then rolls the pods (environment variables are read once, at start). The
    digest reveals nothing of high-entropy values, so it is shown in plans rather than masked."""
    contents = pulumi.Output.all(*[_SECRET_DATA[secret] for secret in secrets])
    return pulumi.Output.unsecret(contents.apply(lambda values: hashlib.sha256(
        json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]))


def http_service(name: str, *, namespace: pulumi.Input[str], labels: dict[str, str],
                 selector: dict[str, str], port: int, opts: pulumi.ResourceOptions,
                 object_name: str | None = None) -> k8s.core.v1.Service:
    """A ClusterIP Service exposing the container port named `http` and nothing else, named
    `object_name` (default: the workload's `app.kubernetes.io/name`).

    Not awaited: pulumi-kubernetes holds a Service with a selector until its pods are ready
    (provider/pkg/await/service.go), with a 10-minute default timeout. Its workload is already
    awaited with a timeout sized for it (a vLLM pod on a GPU node started from zero takes
    longer than 10 minutes), what depends on the Service (the Ingress) needs it to exist, not
    its pods to be ready, and a model replica's Service above the current count never has a
    ready pod.
    """
    return k8s.core.v1.Service(
        name,
        metadata={"name": object_name or labels["app.kubernetes.io/name"], "namespace": namespace,
                  "labels": labels, "annotations": {SKIP_AWAIT: "true"}},
        spec={"type": "ClusterIP", "selector": selector,
              "ports": [{"name": "http", "port": port, "target_port": "http", "protocol": "TCP"}]},
        opts=opts,
    )


def disruption_budget(name: str, *, namespace: pulumi.Input[str], labels: dict[str, str],
                      selector: dict[str, str], opts: pulumi.ResourceOptions,
                      object_name: str | None = None) -> k8s.policy.v1.PodDisruptionBudget:
    """At most one pod of the workload is evicted at a time (node drains, autoscaler scale-in)."""
    return k8s.policy.v1.PodDisruptionBudget(
        name,
        metadata={"name": object_name or labels["app.kubernetes.io/name"], "namespace": namespace,
                  "labels": labels},
        spec={"max_unavailable": 1, "selector": {"match_labels": selector},
              # Pods that never became ready may be evicted, or a broken rollout blocks drains.
              "unhealthy_pod_eviction_policy": "AlwaysAllow"},
        opts=opts,
    )


def cpu_autoscaler(name: str, *, namespace: pulumi.Input[str], labels: dict[str, str],
                   deployment: str, min_replicas: int, max_replicas: int, cpu_utilization: int,
                   opts: pulumi.ResourceOptions) -> k8s.autoscaling.v2.HorizontalPodAutoscaler:
    """HPA on CPU. Scale-in is slow (one pod every two minutes after ten calm minutes): each
    leaving pod drains its streams, so flapping would cut answers for nothing."""
    return k8s.autoscaling.v2.HorizontalPodAutoscaler(
        name,
        metadata={"name": deployment, "namespace": namespace, "labels": labels},
        spec={
            "scale_target_ref": {"api_version": "apps/v1", "kind": "Deployment", "name": deployment},
            "min_replicas": min_replicas,
            "max_replicas": max_replicas,
            "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "average_utilization": cpu_utilization}}}],
            "behavior": {"scale_down": {"stabilization_window_seconds": 600,
                                        "policies": [{"type": "Pods", "value": 1, "period_seconds": 120}]}},
        },
        opts=opts,
    )
