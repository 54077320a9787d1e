"""The Kubernetes namespaces the workloads live in, created before anything is put in them.

The data services put connection Secrets and volume claims into the namespaces of their
consumers, and those consumers are built later, so the namespaces are a small component of
their own rather than a part of each workload.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

# The AWS Load Balancer Controller injects target-health readiness gates into new pods of a
# namespace that carries this label, so a pod only counts as Ready once the ALB sends it traffic.
READINESS_GATE_LABEL = "elbv2.k8s.aws/pod-readiness-gate-inject"
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
PSA_ENFORCE_VERSION = "pod-security.kubernetes.io/enforce-version"
PSA_WARN = "pod-security.kubernetes.io/warn"
PSA_AUDIT = "pod-security.kubernetes.io/audit"


@dataclass(frozen=True)
class NamespaceSpec:
    """A namespace, the Pod Security Standard it enforces and whether ALB readiness gates apply."""

    name: str
    pod_security: str
    readiness_gates: bool = False
    purpose: str = ""


APP = NamespaceSpec("anythingllm", "restricted", readiness_gates=True,
                    purpose="AnythingLLM (stable and canary)")
GATEWAY = NamespaceSpec("llm-gateway", "restricted", purpose="LiteLLM gateway")
MODELS = NamespaceSpec("model-serving", "restricted", purpose="vLLM model servers")
DATA_BOOTSTRAP = NamespaceSpec("data-bootstrap", "restricted",
                               purpose="the database bootstrap Job and the master credentials")
WORKLOAD_NAMESPACES = (APP, GATEWAY, MODELS, DATA_BOOTSTRAP)


def namespace_labels(spec: NamespaceSpec) -> dict[str, str]:
    """Pod Security Admission labels (enforce, and warn/audit at the same level) plus gates."""
    labels = {
        "app.kubernetes.io/part-of": "anythingllm",
        PSA_ENFORCE: spec.pod_security,
        PSA_ENFORCE_VERSION: "latest",
        PSA_WARN: spec.pod_security,
        PSA_AUDIT: spec.pod_security,
    }
    if spec.readiness_gates:
        labels[READINESS_GATE_LABEL] = "enabled"
    return labels


class WorkloadNamespaces(pulumi.ComponentResource):
    """The namespaces of the platform's workloads.

    Creates one `Namespace` per entry of `WORKLOAD_NAMESPACES`: `anythingllm` (restricted,
    ALB pod readiness gates on), `llm-gateway` (restricted), `model-serving` (restricted) and
    `data-bootstrap` (restricted, holds the database master credentials and nothing else).

    Args:
        name: logical name prefix.
        provider: the cluster's `kubernetes.Provider`.

    Attributes:
        by_name: namespace name -> `k8s.core.v1.Namespace`; consumers pass the resource on so
        that what they put into a namespace waits for it and is deleted before it.
    """

    def __init__(self, name: str, *, provider: k8s.Provider,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("anythingllm:kubernetes:WorkloadNamespaces", name, None, opts)
        self.by_name: dict[str, k8s.core.v1.Namespace] = {}
        for spec in WORKLOAD_NAMESPACES:
            self.by_name[spec.name] = k8s.core.v1.Namespace(
                f"{name}-{spec.name}",
                metadata={
                    "name": spec.name,
                    "labels": namespace_labels(spec),
                    "annotations": {"anythingllm.io/purpose": spec.purpose},
                },
                opts=pulumi.ResourceOptions(parent=self, provider=provider),
            )
        self.register_outputs({})
