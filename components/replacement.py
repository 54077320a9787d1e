"""Which input changes make a provider replace a resource, and which resources that hurts.

The data (components/data/replace_only.json) is read from the providers' sources at the
versions requirements.txt pins, and says where each entry comes from: the Terraform
provider a Pulumi package bridges (`ForceNew` in an SDKv2 schema, `RequiresReplace` in a
Plugin Framework one) and pulumi-kubernetes' own rules. A replacement is a delete and a
create; Pulumi creates the new resource first unless told otherwise. Two kinds of resource
make that dangerous:

- a resource with a fixed physical name (an EKS cluster, an RDS identifier, an EFS creation
  token...) cannot exist twice, so creating its replacement first fails on the name: it is
  deleted first (`delete_before_replace`) or not replaced at all;
- a stateful resource (STATEFUL) comes back empty: a new database, file system, cache, key
  or generated secret. Prod protects them, so that a plan which would replace one fails
  instead, until a reviewed setting lets it (README, "Replacements").

tools/plan_diff.py names such replacements first in a pull request's plan diff; the tests
check every recorded resource against the data.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).parent / "data" / "replace_only.json"

# Resources whose replacement loses data or breaks what depends on them.
STATEFUL = frozenset({
    "aws:rds/instance:Instance", "aws:rds/cluster:Cluster",
    "aws:elasticache/replicationGroup:ReplicationGroup", "aws:efs/fileSystem:FileSystem",
    "aws:efs/accessPoint:AccessPoint", "aws:s3/bucket:Bucket", "aws:cognito/userPool:UserPool",
    "aws:kms/key:Key", "aws:eks/cluster:Cluster", "aws:backup/vault:Vault",
    "kubernetes:core/v1:PersistentVolumeClaim", "kubernetes:core/v1:PersistentVolume",
    "random:index/randomPassword:RandomPassword", "random:index/randomId:RandomId",
})
_INDEX = re.compile(r"\[\d+\]")


def under(paths: tuple[str, ...], changed: list[str]) -> list[str]:
    """The `changed` input paths (`a.b[0].c`) at or under one of `paths` (`a.b`; list indexes do
    not matter)."""
    return [path for path in changed
            if any(_INDEX.sub("", path) == p or _INDEX.sub("", path).startswith(f"{p}.")
                   for p in paths)]


@dataclass(frozen=True)
class ReplaceOnly:
    """The inputs of one resource type that only a replacement can change."""

    type: str
    source: str
    paths: tuple[str, ...]
    # Inputs that force a replacement only under a condition (described, not evaluated).
    conditional: tuple[tuple[str, str], ...] = ()
    # The input that names the resource in its cloud, when that name must be unique there.
    physical_name: str | None = None
    # Why a resource of this type must be deleted before its replacement although it has no
    # name (an upsert API), or "".
    delete_first: str = ""

    def replacing(self, changed: list[str]) -> list[str]:
        """The changed input paths (`a.b[0].c`) that make the provider replace the resource."""
        return list(changed) if "*" in self.paths else under(self.paths, changed)


@functools.cache
def _data() -> dict:
    return json.loads(DATA.read_text())


def versions() -> dict[str, str]:
    """The provider versions the data was read at (the packages requirements.txt pins)."""
    return dict(_data()["versions"])


@functools.cache
def replace_only(type_token: str) -> ReplaceOnly | None:
    """What replaces a resource of `type_token`, or None for a type the data does not cover
    (a component, a provider, a dynamic resource)."""
    data = _data()
    entry = data["resources"].get(type_token)
    if entry is not None:
        return ReplaceOnly(type=type_token, source=entry["source"], paths=tuple(entry["replace_only"]),
                           conditional=tuple((c["path"], c["when"]) for c in entry.get("conditional", [])),
                           physical_name=entry.get("physical_name"),
                           delete_first=entry.get("delete_first", ""))
    if type_token.startswith("kubernetes:") and type_token != "pulumi:providers:kubernetes":
        kubernetes = data["kubernetes"]
        kind = type_token.split(":", 1)[1]
        return ReplaceOnly(type=type_token, source=kubernetes["source"],
                           paths=(*kubernetes["all_kinds"], *kubernetes["kinds"].get(kind, [])))
    return None


def replacing(type_token: str, changed: list[str]) -> list[str]:
    """The paths among `changed` that make the provider replace a `type_token` resource."""
    rules = replace_only(type_token)
    return rules.replacing(changed) if rules is not None else []


def covered_types() -> frozenset[str]:
    """The non-Kubernetes types the data covers."""
    return frozenset(_data()["resources"])
