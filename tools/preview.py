"""`make preview`: the offline plan of a stack, printed like `pulumi preview`.

Usage: python -m tools.preview [STACK] [--out build]

Prints the resource tree and a count per resource type, writes `build/<stack>/plan.json`
and every Kubernetes object as YAML under `build/<stack>/manifests/` (Helm releases as
their chart, version and values under `manifests/helm/`). Secrets are masked in all of it.
A configuration error prints the settings error and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

import yaml

from .engine import STACK_TYPE, Plan, Registration, StackFileError, run_stack

ROOT = Path(__file__).resolve().parent.parent
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


def is_kubernetes_object(resource: Registration) -> bool:
    return (resource.custom and resource.type.startswith("kubernetes:")
            and resource.type != HELM_RELEASE)


def render_tree(plan: Plan) -> str:
    """The resource tree, children under their parent, siblings sorted by type and name."""
    children: dict[str | None, list[Registration]] = {}
    known = {resource.urn for resource in plan.resources}
    for resource in plan.resources:
        parent = resource.parent if resource.parent in known else None
        children.setdefault(parent, []).append(resource)
    type_width = max((len(r.type) for r in plan.resources), default=20) + 12
    lines = [f"     {'Type':<{type_width}} Name",
             f" +   {STACK_TYPE:<{type_width}} {plan.project}-{plan.stack}"]

    def walk(parent: str | None, prefix: str) -> None:
        # Sorted: registration order depends on when each resource's inputs resolved.
        siblings = sorted(children.get(parent, []), key=lambda r: (r.type, r.name))
        for position, resource in enumerate(siblings):
            last = position == len(siblings) - 1
            branch = "└─ " if last else "├─ "
            label = f"{prefix}{branch}{resource.type}"
            flags = []
            if resource.protect:
                flags.append("protected")
            if resource.secret_paths:
                flags.append("secret: " + ", ".join(resource.secret_paths))
            suffix = f"  [{'; '.join(flags)}]" if flags else ""
            lines.append(f" +   {label:<{type_width}} {resource.name}{suffix}")
            walk(resource.urn, prefix + ("   " if last else "│  "))

    walk(None, "")
    return "\n".join(lines)


def render_counts(plan: Plan) -> str:
    counts = Counter(resource.type for resource in plan.resources)
    width = max(len(t) for t in counts) if counts else 10
    rows = [f"    {count:>4}  {type_token:<{width}}" for type_token, count in sorted(counts.items())]
    return "\n".join(["Resources by type:", *rows,
                      f"Resources:\n    + {len(plan.resources) + 1} to create"])


def manifest_file_name(resource: Registration) -> str:
    metadata = resource.inputs.get("metadata") or {}
    kind = str(resource.inputs.get("kind") or resource.type.rsplit(":", 1)[-1]).lower()
    namespace = metadata.get("namespace") or "cluster"
    name = metadata.get("name") or resource.name
    return f"{kind}-{namespace}-{name}.yaml".replace("/", "_")


def write_outputs(plan: Plan, out_dir: Path) -> tuple[Path, int]:
    """Write plan.json and the manifests; return the plan path and the manifest count."""
    stack_dir = out_dir / plan.stack
    if stack_dir.exists():
        shutil.rmtree(stack_dir)
    manifests = stack_dir / "manifests"
    (manifests / "helm").mkdir(parents=True)
    plan_path = stack_dir / "plan.json"
    plan_path.write_text(json.dumps(plan.to_json(), indent=2, sort_keys=True) + "\n")
    written = write_manifests(plan, manifests)
    for resource in plan.resources:
        if resource.type == HELM_RELEASE:
            target = manifests / "helm" / f"{resource.inputs.get('name', resource.name)}.yaml"
            target.write_text(yaml.safe_dump(resource.inputs, sort_keys=True))
            written += 1
    return plan_path, written


def write_manifests(plan: Plan, directory: Path) -> int:
    """Every Kubernetes object of the plan as one YAML file in `directory`; returns how many."""
    directory.mkdir(parents=True, exist_ok=True)
    objects = [resource for resource in plan.resources if is_kubernetes_object(resource)]
    for resource in objects:
        (directory / manifest_file_name(resource)).write_text(yaml.safe_dump(resource.inputs, sort_keys=True))
    return len(objects)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack", nargs="?", default="dev")
    parser.add_argument("--out", default=str(ROOT / "build"))
    parser.add_argument("--root", default=str(ROOT), help="program directory (Pulumi.yaml)")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()

    from components.settings import SettingsError

    started = time.perf_counter()
    try:
        plan = run_stack(root, args.stack)
    except (SettingsError, FileNotFoundError, StackFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    plan_path, manifest_count = write_outputs(plan, Path(args.out))

    print(f"Previewing update ({plan.stack}), offline: no cloud calls\n")
    print(render_tree(plan))
    print("\nOutputs:")
    for name, value in plan.outputs.items():
        print(f"    {name}: {json.dumps(value)}")
    print()
    print(render_counts(plan))
    for warning in plan.warnings:
        print(f"\nwarning: {warning}")
    print(f"\nPlan: {plan_path.relative_to(root) if plan_path.is_relative_to(root) else plan_path}"
          f" ({manifest_count} Kubernetes manifests and Helm releases)")
    print(f"Recorded in {elapsed:.2f}s")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
