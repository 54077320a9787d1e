"""Throwaway staging stacks, one command each way (Pulumi Automation API).

    python -m tools.staging up <name> [--ttl-hours 72]   create or update staging-<name>
    python -m tools.staging destroy <name>                destroy it without leaking the ALB
    python -m tools.staging list                          staging stacks and their expiry
    python -m tools.staging reap [--dry-run]              destroy every expired staging stack

`<name>` may be a branch name (`feature/Long_Name`): it becomes `staging-feature-long-name`,
shortened with a hash past 63 characters. Every physical AWS name then derives from the stack
name and fits AWS's limits (components/naming.py).

`up` writes `Pulumi.staging-<name>.yaml` from the template `Pulumi.staging.yaml` plus
`anythingllm:expiresAt` (now + TTL; every `up` extends it), which the program turns into an
`anythingllm:expires-at` tag on every AWS resource and the stack output `expiresAt`; then runs
`pulumi up` with the policy pack in `policy/`.

`destroy` first destroys only the Ingresses (and what depends on them, the DNS record): the
AWS Load Balancer Controller, still running, deletes the ALB, its target groups and its
security groups. It then waits until AWS no longer lists a load balancer tagged for the
cluster, destroys everything else, and removes the stack. A plain `pulumi destroy` would
delete in the same order (tests/test_stacks.py checks the graph); the two steps make a
controller that fails to clean up stop the destroy before the VPC delete hangs on its ENIs.

Nothing here touches a stack that is not `staging-*`, or one whose `environment` output says
it is not staging: prod cannot be destroyed with this tool.

The Pulumi calls sit behind `Backend` (real: `AutomationBackend`, which needs the Pulumi CLI)
and the AWS calls behind `ControllerInventory`, so tests drive `Staging` with fakes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from components.naming import physical_name

ROOT = Path(__file__).resolve().parent.parent
STACK_PREFIX = "staging-"
TEMPLATE_STACK = "staging"
STACK_NAME_MAX = 63
INGRESS_TYPE = "kubernetes:networking.k8s.io/v1:Ingress"
DEFAULT_TTL_HOURS = 72
MAX_TTL_HOURS = 24 * 14
EXPIRES_KEY = "anythingllm:expiresAt"
STAGING_STACK = re.compile(r"^staging-[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


def committed_stacks(root: Path = ROOT) -> list[str]:
    """The stacks whose files are in the repository: not the `Pulumi.staging-<name>.yaml` files
    `up` generates (git-ignored)."""
    stacks = (path.name.split(".")[1] for path in root.glob("Pulumi.*.yaml"))
    return sorted(stack for stack in stacks if not stack.startswith(STACK_PREFIX))


class StagingError(Exception):
    """A request this tool refuses, with the reason."""


def stack_name(name: str) -> str:
    """`staging-<name>` for a short name, a branch name or an existing staging stack name."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    cleaned = cleaned.removeprefix("staging-") if cleaned != "staging" else ""
    if not cleaned:
        raise StagingError(f"{name!r} leaves no name for staging-<name>; use letters and digits")
    return physical_name("staging", cleaned, max_length=STACK_NAME_MAX)


def require_staging(stack: str, outputs: dict[str, Any]) -> None:
    """Refuse anything that is not a staging stack, by name and by what it says it is."""
    if not STAGING_STACK.match(stack):
        raise StagingError(f"{stack!r} is not a staging-<name> stack; this tool only manages those")
    environment = outputs.get("environment")
    if environment not in (None, "staging"):
        raise StagingError(f"{stack!r} reports environment {environment!r}, not 'staging'; refusing")


def parse_expiry(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


# Keys that belong to one stack, not to the template: kept from an existing stack file on every
# `up` (a restore stack's sources; its secrets, ciphertext bound to that stack's key).
STACK_OWN_KEYS = ("anythingllm:restore",)


def stack_config(root: Path, stack: str, *, expires_at: dt.datetime) -> dict[str, Any]:
    """The stack file of `stack`: the template's config plus the expiry; keeps whatever else
    `pulumi stack init` wrote into an existing file (secrets provider, encryption salt), and
    the stack's own keys: `restore` (README, "Backups and restore") and its secrets."""
    template = yaml.safe_load((root / f"Pulumi.{TEMPLATE_STACK}.yaml").read_text()) or {}
    config = dict(template.get("config") or {})
    encrypted = [key for key, value in config.items() if isinstance(value, dict) and "secure" in value]
    if encrypted:
        # Ciphertext is bound to the template stack's key; copying it would not decrypt.
        raise StagingError(f"Pulumi.{TEMPLATE_STACK}.yaml holds encrypted values ({', '.join(encrypted)}); "
                           "keep secrets out of the template and set them per stack")
    config[EXPIRES_KEY] = expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    path = root / f"Pulumi.{stack}.yaml"
    existing = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    own = {key: value for key, value in (existing.get("config") or {}).items()
           if key in STACK_OWN_KEYS or (isinstance(value, dict) and "secure" in value)}
    return {**existing, "config": {**config, **own}}


class Backend(Protocol):
    """The Pulumi operations the tool needs (see AutomationBackend)."""

    def list_stacks(self) -> list[str]: ...
    def create(self, stack: str) -> None: ...
    def up(self, stack: str) -> None: ...
    def outputs(self, stack: str) -> dict[str, Any]: ...
    def resources(self, stack: str) -> list[tuple[str, str]]: ...
    def destroy(self, stack: str, *, targets: list[str] | None = None) -> None: ...
    def remove(self, stack: str) -> None: ...


class Inventory(Protocol):
    def wait_until_gone(self, cluster: str) -> None: ...


@dataclass
class Staging:
    """The staging lifecycle over a Backend and (lazily) an Inventory of the region."""

    backend: Backend
    inventory: Callable[[], Inventory]
    root: Path = ROOT
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    log: Callable[[str], None] = print

    def up(self, name: str, *, ttl_hours: int = DEFAULT_TTL_HOURS) -> str:
        if not 1 <= ttl_hours <= MAX_TTL_HOURS:
            raise StagingError(f"--ttl-hours {ttl_hours}: allowed 1..{MAX_TTL_HOURS}")
        stack = stack_name(name)
        exists = stack in self.backend.list_stacks()
        require_staging(stack, self.backend.outputs(stack) if exists else {})
        self.backend.create(stack)
        expires_at = self.now() + dt.timedelta(hours=ttl_hours)
        document = stack_config(self.root, stack, expires_at=expires_at)
        (self.root / f"Pulumi.{stack}.yaml").write_text(
            f"# Generated by tools/staging.py from Pulumi.{TEMPLATE_STACK}.yaml; do not edit.\n"
            + yaml.safe_dump(document, sort_keys=False))
        self.log(f"{stack}: up, expires {document['config'][EXPIRES_KEY]}")
        self.backend.up(stack)
        return stack

    def destroy(self, name: str) -> None:
        stack = stack_name(name)
        if stack not in self.backend.list_stacks():
            raise StagingError(f"no stack {stack!r}; `list` shows the staging stacks")
        outputs = self.backend.outputs(stack)
        require_staging(stack, outputs)
        ingresses = [urn for urn, type_ in self.backend.resources(stack) if type_ == INGRESS_TYPE]
        if ingresses:
            self.log(f"{stack}: deleting {len(ingresses)} Ingress(es) while the controller runs")
            self.backend.destroy(stack, targets=ingresses)
        cluster = outputs.get("clusterName")
        if cluster:
            self.log(f"{stack}: waiting until no load balancer of {cluster} is left")
            self.inventory().wait_until_gone(cluster)
        self.log(f"{stack}: destroying the rest")
        self.backend.destroy(stack)
        self.backend.remove(stack)
        self.log(f"{stack}: removed")

    def list(self) -> list[dict[str, Any]]:
        rows = []
        for stack in sorted(self.backend.list_stacks()):
            if not stack.startswith(STACK_PREFIX):
                continue
            expires = parse_expiry(self.backend.outputs(stack).get("expiresAt"))
            rows.append({"stack": stack, "expiresAt": expires,
                         "expired": expires is not None and expires <= self.now()})
        return rows

    def reap(self, *, dry_run: bool = False) -> list[str]:
        """Destroy every expired staging stack; one failure does not stop the others."""
        reaped, failures = [], []
        for row in self.list():
            if row["expiresAt"] is None:
                self.log(f"{row['stack']}: no expiresAt output, left alone")
                continue
            if not row["expired"]:
                continue
            if dry_run:
                self.log(f"{row['stack']}: expired {row['expiresAt']:%Y-%m-%dT%H:%M:%SZ}, would destroy")
                reaped.append(row["stack"])
                continue
            try:
                self.destroy(row["stack"])
                reaped.append(row["stack"])
            except Exception as error:  # report and go on with the next stack
                failures.append(f"{row['stack']}: {error}")
        if failures:
            raise StagingError("could not reap: " + "; ".join(failures))
        return reaped


class AutomationBackend:
    """Backend on `pulumi.automation` (a local workspace in the project directory). Needs
    the Pulumi CLI and a logged-in backend; never used by the tests."""

    def __init__(self, root: Path = ROOT, *, policy_pack: Path | None = ROOT / "policy",
                 on_output: Callable[[str], Any] = print):
        self.root, self.policy_pack, self.on_output = root, policy_pack, on_output

    def _stack(self, stack: str, *, create: bool = False):
        from pulumi import automation as auto

        select = auto.create_or_select_stack if create else auto.select_stack
        return select(stack_name=stack, work_dir=str(self.root))

    def list_stacks(self) -> list[str]:
        from pulumi import automation as auto

        return [summary.name for summary in auto.LocalWorkspace(work_dir=str(self.root)).list_stacks()]

    def create(self, stack: str) -> None:
        self._stack(stack, create=True)

    def up(self, stack: str) -> None:
        packs = [str(self.policy_pack)] if self.policy_pack is not None else None
        self._stack(stack).up(on_output=self.on_output, policy_packs=packs)

    def outputs(self, stack: str) -> dict[str, Any]:
        return {key: output.value for key, output in self._stack(stack).outputs().items()}

    def resources(self, stack: str) -> list[tuple[str, str]]:
        deployment = self._stack(stack).export_stack().deployment or {}
        return [(r["urn"], r["type"]) for r in deployment.get("resources", [])]

    def destroy(self, stack: str, *, targets: list[str] | None = None) -> None:
        # With targets, what depends on them (the DNS record on the ALB's name) goes too.
        self._stack(stack).destroy(on_output=self.on_output, target=targets,
                                   target_dependents=True if targets else None)

    def remove(self, stack: str) -> None:
        self._stack(stack).workspace.remove_stack(stack)


def _region(root: Path) -> str:
    config = (yaml.safe_load((root / f"Pulumi.{TEMPLATE_STACK}.yaml").read_text()) or {}).get("config", {})
    return config["aws:region"]


def main(argv: list[str] | None = None, staging: Staging | None = None) -> int:
    parser = argparse.ArgumentParser(description="Throwaway staging-<name> stacks.")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="create or update staging-<name>")
    up.add_argument("name")
    up.add_argument("--ttl-hours", type=int, default=DEFAULT_TTL_HOURS)
    destroy = commands.add_parser("destroy", help="destroy staging-<name> and remove the stack")
    destroy.add_argument("name")
    commands.add_parser("list", help="staging stacks and their expiry")
    reap = commands.add_parser("reap", help="destroy every expired staging stack")
    reap.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)

    if staging is None:
        from tools.aws_inventory import ControllerInventory

        staging = Staging(backend=AutomationBackend(),
                          inventory=lambda: ControllerInventory.for_region(_region(ROOT)))
    try:
        if args.command == "up":
            staging.up(args.name, ttl_hours=args.ttl_hours)
        elif args.command == "destroy":
            staging.destroy(args.name)
        elif args.command == "list":
            for row in staging.list():
                expires = f"{row['expiresAt']:%Y-%m-%dT%H:%M:%SZ}" if row["expiresAt"] else "never"
                staging.log(f"{row['stack']:<40} expires {expires}{'  EXPIRED' if row['expired'] else ''}")
        else:
            staging.reap(dry_run=args.dry_run)
    except StagingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
