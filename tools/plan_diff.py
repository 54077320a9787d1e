"""Markdown diff of two offline plans, for pull-request comments.

    python -m tools.plan_diff BASE/plan.json HEAD/plan.json [--out diff.md]

Resources are matched by URN: added, removed, and changed with the property paths that
changed (inputs and the options that matter: protect, retainOnDelete, deletedWith,
ignoreChanges, dependencies). Secret values are masked in the plans already; a path that is
secret in either plan is shown as `[secret]` whatever it holds, so a plan written with
revealed values still prints nothing secret.

What the comment says first, before any count: each resource that `up` would replace (an input
the provider can only change by replacing it changed: components/replacement.py, read from
the providers' sources) when it is stateful (a new, empty database, cache, file system, key or
generated secret) or has a fixed physical name (its replacement cannot be created beside it:
it is deleted first, or, protected, refused). Then a warning for a protected or stateful
resource removed or changed, and for a resource whose URN changed while its physical name did
not (a rename in the program, which `up` would carry out as a delete and a create).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.replacement import STATEFUL, replace_only, replacing, under

SECRET = "[secret]"
MAX_VALUE = 100
MAX_COMMENT = 60_000  # GitHub caps a comment at 65,536 characters
OPTIONS = ("protect", "retain_on_delete", "deleted_with", "ignore_changes", "dependencies",
           "delete_before_replace", "custom_timeouts")


@dataclass
class Change:
    urn: str
    type: str
    name: str
    properties: list[tuple[str, str, str]] = field(default_factory=list)  # path, before, after
    warning: str | None = None
    # Inputs that make the provider replace it, and why that hurts (stateful, fixed name).
    replaced_by: list[str] = field(default_factory=list)
    danger: str | None = None
    # Inputs that replace it only under a condition the offline plan cannot evaluate.
    maybe: list[tuple[str, str]] = field(default_factory=list)  # path, when


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


def fixed_name(resource: dict) -> str | None:
    """The physical name a resource sets, when its cloud allows that name only once."""
    rules = replace_only(resource["type"])
    key = rules.physical_name if rules is not None else None
    value = resource.get("inputs", {}).get(key) if key else None
    return value if isinstance(value, str) else None


def _danger(resource: dict, old: dict) -> str | None:
    """Why replacing `resource` hurts, or None when a replacement is harmless."""
    reasons = []
    if resource["type"] in STATEFUL:
        reasons.append("stateful: its replacement starts empty")
    name = fixed_name(resource)
    if name is not None:
        if resource.get("retain_on_delete"):
            reasons.append(f"fixed name `{name}`: the old one is kept in AWS (retainOnDelete), so "
                           "its replacement cannot be created under that name")
        elif resource.get("delete_before_replace"):
            reasons.append(f"fixed name `{name}`: deleted before its replacement is created")
        else:
            reasons.append(f"fixed name `{name}`: its replacement cannot be created beside it")
    # Pulumi refuses to replace a resource protected in the state and in the program; one whose
    # protection this very change lifts is replaced (pulumi/pulumi step_generator.go).
    if resource.get("protect") and old.get("protect"):
        reasons.append("protected: `up` refuses")
    elif old.get("protect"):
        reasons.append("its protection is lifted in this change: `up` replaces it")
    return "; ".join(reasons) or None


def alias_urns(resource: dict) -> list[str]:
    """The URNs a resource answers to through its aliases (same parent: a name or a type)."""
    prefix, _, name = resource["urn"].rpartition("::")
    head, _, types = prefix.rpartition("::")
    found = []
    for alias in resource.get("aliases", []):
        if "urn" in alias:
            found.append(alias["urn"])
        elif not alias.get("parentUrn") and not alias.get("noParent") and set(alias) <= {
                "name", "type", "parentUrn"}:
            chain = types.split("$")
            chain[-1] = alias.get("type", chain[-1])
            found.append(f"{head}::{'$'.join(chain)}::{alias.get('name', name)}")
    return found


def diff(base: dict, head: dict) -> tuple[list[dict], list[dict], list[Change]]:
    """Added, removed and changed resources between two plan.json documents. A resource whose
    URN changed but whose alias names its old one is the same resource: changed, not added."""
    old = {r["urn"]: r for r in base.get("resources", [])}
    new = {r["urn"]: r for r in head.get("resources", [])}
    moved = {alias: urn for urn in set(new) - set(old) for alias in alias_urns(new[urn])
             if alias in old and alias not in new}
    added = [new[urn] for urn in sorted(set(new) - set(old) - set(moved.values()))]
    removed = [old[urn] for urn in sorted(set(old) - set(new) - set(moved))]
    changed = []
    pairs = sorted([(urn, urn) for urn in set(old) & set(new)] + list(moved.items()),
                   key=lambda pair: pair[1])
    for old_urn, urn in pairs:
        properties = _property_changes(old[old_urn], new[urn])
        if old_urn != urn:
            properties.insert(0, ("(option) urn", _text(old_urn.rpartition("::")[2]),
                                  _text(urn.rpartition("::")[2]) + " (alias: the same resource)"))
        if not properties:
            continue
        resource = new[urn]
        change = Change(urn, resource["type"], resource["name"], properties)
        important = resource["type"] in STATEFUL or old[old_urn].get("protect") or resource.get("protect")
        inputs = [p for p, _, _ in properties if not p.startswith("(option)")]
        change.replaced_by = replacing(resource["type"], inputs)
        rules = replace_only(resource["type"])
        change.maybe = [(path, when) for path, when in (rules.conditional if rules else ())
                        if under((path,), inputs)]
        if change.replaced_by:
            paths = ", ".join(f"`{p}`" for p in change.replaced_by)
            change.warning = f"**replaced** on `up` ({paths} changed)"
            change.danger = _danger(resource, old[old_urn])
        elif change.maybe:
            change.warning = "may be **replaced** on `up`: " + "; ".join(
                f"`{path}` changed, which replaces it when {when}" for path, when in change.maybe)
        elif important:
            change.warning = "stateful or protected resource changed"
        changed.append(change)
    return added, removed, changed


def _identity(resource: dict) -> tuple | None:
    """What AWS knows a named resource by: its type, its name, and the replace-only inputs it
    is named within (an event target's rule, an add-on's cluster), or None when unnamed."""
    name = fixed_name(resource)
    rules = replace_only(resource["type"])
    if name is None or rules is None:
        return None
    inputs = resource.get("inputs", {})
    scope = tuple(sorted((path, json.dumps(inputs.get(path), sort_keys=True))
                         for path in rules.paths if "." not in path and path != rules.physical_name))
    return resource["type"], name, scope


def renamed(added: list[dict], removed: list[dict]) -> list[tuple[dict, dict]]:
    """(removed, added) pairs of one identity (`_identity`) under different URNs: a resource
    renamed or moved in the program without an alias."""
    by_identity = {_identity(r): r for r in removed if _identity(r) is not None}
    return [(by_identity[_identity(r)], r) for r in added if _identity(r) in by_identity]


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
    replaced = [c for c in changed if c.replaced_by and c.danger]
    moved = renamed(added, removed)
    if replaced or moved:
        lines += ["> [!CAUTION]", "> **`up` would replace stateful or fixed-name resources:**",
                  *[f"> - `{c.type}` `{c.name}`: {', '.join(f'`{p}`' for p in c.replaced_by)} "
                    f"changed ({c.danger})" for c in replaced],
                  *[f"> - `{new['type']}` `{fixed_name(new)}`: its URN changed (`{old['name']}` to "
                    f"`{new['name']}`) and no alias says it moved: `up` would create it anew first, "
                    "which fails on its name, and only then delete the old one; add an alias"
                    for old, new in moved],
                  ">", "> README, \"Replacements\", says how to review and allow one.", ""]
    lines.append(f"**{len(added)} to add, {len(changed)} to change, {len(removed)} to remove** "
                 "(offline plan: values known only after `up` are `[unknown]`, secrets `[secret]`)")
    warnings = [f"- **removes** `{r['type']}` `{r['name']}`" + (" (protected: `up` will refuse)"
                                                              if r.get("protect") else "")
                for r in removed if r["type"] in STATEFUL or r.get("protect")]
    warnings += [f"- `{c.type}` `{c.name}`: {c.warning}" for c in changed
                 if c.warning and not (c.replaced_by and c.danger)]
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
