"""Every rendered Kubernetes object validates against the OpenAPI schema of its cluster version."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest

from tests import crd_schema
from tests.conftest import STACKS, stack_settings
from tools.engine import UNKNOWN_MASK
from tools.preview import is_kubernetes_object


def _kubernetes_version(stack: str) -> str:
    return f"{stack_settings(stack).cluster.kubernetes_version}.0"


def _rendered(resource) -> dict:
    """The object as it would be applied: the inputs with secrets revealed (a whole secret
    `stringData` is a map, not the mask; this stays in memory and is never written)."""
    return copy.deepcopy(resource.raw_inputs)


@pytest.mark.parametrize("stack", STACKS)
def test_every_manifest_is_valid_for_the_cluster_version(stack_plans, stack):
    version = _kubernetes_version(stack)
    objects = [r for r in stack_plans[stack].resources if is_kubernetes_object(r)]
    kinds = {r.inputs["kind"] for r in objects}
    # The whole serving path is rendered, not only the data services.
    assert {"Deployment", "StatefulSet", "Service", "Ingress", "HorizontalPodAutoscaler",
            "PodDisruptionBudget", "NetworkPolicy", "Job", "ConfigMap", "Secret"} <= kinds
    for resource in objects:
        manifest = _rendered(resource)
        # The offline run resolves every value (no preview unknowns left to stand in for).
        assert UNKNOWN_MASK not in str(manifest), resource.name
        # strict: unknown fields (a misspelt key) fail, as `kubectl apply --validate=strict` would.
        crd_schema.validate(manifest, version)


def test_validation_catches_a_bad_field(stack_plans):
    """The check has teeth: a misspelt field and a wrong type are both rejected."""
    deployment = next(r for r in stack_plans["dev"].resources
                      if r.inputs.get("kind") == "Deployment")
    misspelt = _rendered(deployment)
    misspelt["spec"]["template"]["spec"]["containers"][0]["imagePulPolicy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, "1.36.0", strict=True)
    wrong_type = _rendered(deployment)
    wrong_type["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "soon"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, "1.36.0", strict=True)

