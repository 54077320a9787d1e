"""Markdown diff of two offline plans, for pull-request comments.

    python -m tools.plan_diff BASE/plan.json HEAD/plan.json [--out diff.md]

Resources are matched by URN: added, removed, and changed with the property paths that
changed (inputs and the options that matter: protect, retainOnDelete, deletedWith,
ignoreChanges, dependencies). Secret values are masked in the plans already; a path that is
secret in either plan is shown as `[secret]` whatever it holds, so a plan written with
revealed values still prints nothing secret. A warning heads the comment when a protected or
stateful resource (databases, caches, file systems, keys, claims, generated secrets) is
removed, changed, or changed in a property that makes the provider replace it.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SECRET = "[secret]"
MAX_VALUE = 100
MAX_COMMENT = 60_000  # GitHub caps a comment at 65,536 characters
# Resources whose loss or replacement loses data or breaks what depends on them.
STATEFUL = {
    "aws:rds/instance:Instance", "aws:rds/cluster:Cluster",
    "aws:elasticache/replicationGroup:ReplicationGroup", "aws:efs/fileSystem:FileSystem",
    "aws:kms/key:Key", "aws:eks/cluster:Cluster", "kubernetes:core/v1:PersistentVolumeClaim",
    "random:index/randomPassword:RandomPassword", "random:index/randomId:RandomId",
}
# Inputs the providers can only change by replacing the resource (a new, empty one).
REPLACED_BY = {
    "aws:rds/instance:Instance": {"identifier", "engine", "storageEncrypted", "kmsKeyId", "username",
                                  "availabilityZone", "characterSetName"},
    "aws:elasticache/replicationGroup:ReplicationGroup": {"replicationGroupId", "engine",
                                                          "atRestEncryptionEnabled", "kmsKeyId"},
    "aws:efs/fileSystem:FileSystem": {"creationToken", "encrypted", "kmsKeyId", "performanceMode"},
    "aws:eks/cluster:Cluster": {"name"},
    "kubernetes:core/v1:PersistentVolumeClaim": {"spec.storageClassName", "spec.accessModes",
                                                 "metadata.name", "metadata.namespace"},
    # Every input of a generated value forces a new value: the secret changes.
    "random:index/randomPassword:RandomPassword": {"*"},
    "random:index/randomId:RandomId": {"*"},
}
OPTIONS = ("protect", "retain_on_delete", "deleted_with", "ignore_changes", "dependencies",
           "delete_before_replace", "custom_timeouts")


@dataclass
class Change:
    urn: str
    type: str
    name: str
    properties: list[tuple[str, str, str]] = field(default_factory=list)  # path, before, after
    warning: str | None = None


def _flatten(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{path}.{key}" if path else str(key)))
        return flat
    if isinstance(value, list) and value:
        flat = {}
        for index, item in enumerate(value):
            flat.update(_flatten(item, f"{path}[{index}]"))
        return flat
    return {path: value}


def _is_secret(path: str, secret_paths: set[str]) -> bool:
    return any(path == secret or path.startswith((f"{secret}.", f"{secret}[")) for secret in secret_paths)


def _text(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def _property_changes(before: dict, after: dict) -> list[tuple[str, str, str]]:
    secrets = set(before.get("secret_paths", [])) | set(after.get("secret_paths", []))
    old, new = _flatten(before.get("inputs", {})), _flatten(after.get("inputs", {}))
    changes = []
    for path in sorted(set(old) | set(new)):
        if old.get(path, "<absent>") == new.get(path, "<absent>"):
            continue
        if _is_secret(path, secrets):
            changes.append((path, SECRET, SECRET))
        else:
            changes.append((path, _text(old.get(path, "(none)")), _text(new.get(path, "(none)"))))
    for option in OPTIONS:
        if before.get(option) != after.get(option):
            changes.append((f"(option) {option}", _text(before.get(option)), _text(after.get(option))))
    return changes


def _replaces(type_token: str, paths: list[str]) -> list[str]:
    forcing = REPLACED_BY.get(type_token, set())
    return [p for p in paths if not p.startswith("(option)")
            and ("*" in forcing or any(p == f or p.startswith((f"{f}.", f"{f}[")) for f in forcing))]


def diff(base: dict, head: dict) -> tuple[list[dict], list[dict], list[Change]]:
    """Added, removed and changed resources between two plan.json documents."""
    old = {r["urn"]: r for r in base.get("resources", [])}
    new = {r["urn"]: r for r in head.get("resources", [])}
    added = [new[urn] for urn in sorted(set(new) - set(old))]
    removed = [old[urn] for urn in sorted(set(old) - set(new))]
    changed = []
    for urn in sorted(set(old) & set(new)):
        properties = _property_changes(old[urn], new[urn])
        if not properties:
            continue
        resource = new[urn]
        change = Change(urn, resource["type"], resource["name"], properties)
        important = resource["type"] in STATEFUL or old[urn].get("protect") or resource.get("protect")
        replaced = _replaces(resource["type"], [p for p, _, _ in properties])
        if replaced:
            paths = ", ".join(f"`{p}`" for p in replaced)
            change.warning = (f"**replaced** on `up` ({paths} changed): a new, empty resource or a "
                              "new secret value")
        elif important:
            change.warning = "stateful or protected resource changed"
        changed.append(change)
    return added, removed, changed


def _row(resource: dict) -> str:
    flag = " 🔒 protected" if resource.get("protect") else ""
    return f"| `{resource['type']}` | `{resource['name']}`{flag} |"


def render(base: dict, head: dict, *, title: str | None = None) -> str:
    """The Markdown comment."""
    added, removed, changed = diff(base, head)
    stack = head.get("stack") or base.get("stack") or "?"
    lines = [f"### Plan diff: `{title or stack}`", ""]
    if not (added or removed or changed):
        return "\n".join([*lines, "No changes to the offline plan.", ""])
    lines.append(f"**{len(added)} to add, {len(changed)} to change, {len(removed)} to remove** "
                 "(offline plan: values known only after `up` are `[unknown]`, secrets `[secret]`)")
    warnings = [f"- **removes** `{r['type']}` `{r['name']}`" + (" (protected: `up` will refuse)"
                                                              if r.get("protect") else "")
                for r in removed if r["type"] in STATEFUL or r.get("protect")]
    warnings += [f"- `{c.type}` `{c.name}`: {c.warning}" for c in changed if c.warning]
    if warnings:
        lines += ["", "> [!WARNING]",
                  "> Stateful or protected resources are affected; review before merging:",
                  *[f"> {w}" for w in warnings]]
    for heading, resources in (("Added", added), ("Removed", removed)):
        if resources:
            lines += ["", f"#### {heading} ({len(resources)})", "", "| Type | Name |", "|---|---|",
                      *[_row(r) for r in resources]]
    if changed:
        lines += ["", f"#### Changed ({len(changed)})", ""]
        for change in changed:
            lines += [f"<details><summary><code>{change.type}</code> <b>{change.name}</b> "
                      f"({len(change.properties)} properties)</summary>", "",
                      "| Property | Before | After |", "|---|---|---|"]
            lines += [f"| `{p}` | `{_cell(b)}` | `{_cell(a)}` |" for p, b, a in change.properties]
            lines += ["", "</details>"]
    text = "\n".join(lines) + "\n"
    if len(text) > MAX_COMMENT:
        text = text[:MAX_COMMENT] + "\n\n… truncated; run `make preview` on both commits for the rest.\n"
    return text


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'").replace("\n", " ")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Markdown diff of two offline plans.")
    parser.add_argument("base", type=Path)
    parser.add_argument("head", type=Path)
    parser.add_argument("--title")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    base = json.loads(args.base.read_text()) if args.base.exists() else {"resources": []}
    text = render(base, json.loads(args.head.read_text()), title=args.title)
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
