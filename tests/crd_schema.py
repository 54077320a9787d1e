"""Validate a custom resource against the CRD that defines it, as the API server and
`kubectl apply --validate=strict` would: the served version's openAPIV3Schema, with unknown
fields refused (a structural schema prunes them, strict validation rejects them) except where the
schema preserves them. CEL rules (`x-kubernetes-validations`) are not evaluated here; the tests
that depend on one state it and check it by hand.

The CRDs are those of the pinned Karpenter (components/data/karpenter/, aws/karpenter-provider-aws
v1.14.1 pkg/apis/crds/) and KEDA (components/data/keda/, kedacore/keda v2.20.2 config/crd/bases/).
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

DATA = Path(__file__).resolve().parent.parent / "components" / "data"
CRD_FILES = (DATA / "karpenter" / "karpenter.sh_nodepools.yaml",
             DATA / "karpenter" / "karpenter.k8s.aws_ec2nodeclasses.yaml",
             DATA / "karpenter" / "karpenter.sh_nodeoverlays.yaml",
             # kedacore/keda v2.20.2 config/crd/bases/ (components/versions.py KEDA)
             DATA / "keda" / "keda.sh_scaledobjects.yaml",
             DATA / "keda" / "keda.sh_triggerauthentications.yaml")


def _strict(schema: Any) -> Any:
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@functools.cache
def schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the strict schema of every served version of the vendored CRDs."""
    found = {}
    for name in CRD_FILES:
        crd = yaml.safe_load(name.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schema = _strict(version["schema"]["openAPIV3Schema"])
                # metadata is the API server's ObjectMeta, not part of the CRD's schema.
                schema["properties"]["metadata"] = {"type": "object"}
                found[(f"{group}/{version['name']}", kind)] = schema
    return found


def validate(manifest: dict[str, Any], kubernetes_version: str) -> None:
    """Raise when `manifest` is not a valid object: a Karpenter or KEDA custom resource against its CRD,
    anything else against the Kubernetes OpenAPI schema of `kubernetes_version`."""
    schema = schemas().get((manifest.get("apiVersion"), manifest.get("kind")))
    if schema is None:
        kubernetes_validate.validate(copy.deepcopy(manifest), kubernetes_version, strict=True)
        return
    jsonschema.validate(manifest, schema, cls=jsonschema.Draft7Validator)
