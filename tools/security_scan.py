"""`make scan`: checkov (kubernetes framework) over every rendered manifest of the stacks.

Usage: python -m tools.security_scan [STACK ...]   (default: every committed stack)

Records each stack offline, writes its Kubernetes objects as YAML (as `make preview` does) and
runs checkov once over all of them. Exits 1 on any finding that is not suppressed on the
object itself with a written reason (`checkov.io/skip<N>: <check>=<reason>`, see
components/workloads.scan_exceptions), on a suppression without a reason, and when checkov did
not read every manifest. checkov lives in its own virtualenv (`.venv-scan`, from
requirements-scan.txt): it pins boto3 and packaging at versions the program's tools cannot use.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .engine import Plan, run_stack
from .preview import is_kubernetes_object, write_manifests
from .staging import committed_stacks

ROOT = Path(__file__).resolve().parent.parent
CHECKOV = ROOT / ".venv-scan" / "bin" / "checkov"
# checkov's placeholder when a skip annotation has no "=<reason>".
NO_REASON = "No comment provided"
MIN_REASON_LENGTH = 20


@dataclass(frozen=True)
class Finding:
    check: str
    name: str
    resource: str  # Kind.namespace.name
    file: str
    reason: str = ""  # the suppression's reason (skipped findings only)

    def __str__(self) -> str:
        text = f"{self.check} {self.name}: {self.resource} ({self.file})"
        return f"{text}, suppressed: {self.reason}" if self.reason else text


@dataclass(frozen=True)
class ScanReport:
    failed: list[Finding]
    skipped: list[Finding]
    passed: int
    resources: int  # objects checkov read
    parsing_errors: list[str]

    @property
    def unexplained(self) -> list[Finding]:
        """Suppressions without a real reason."""
        return [f for f in self.skipped
                if f.reason == NO_REASON or len(f.reason.strip()) < MIN_REASON_LENGTH]


def _finding(entry: dict) -> Finding:
    result = entry.get("check_result") or {}
    return Finding(check=entry["check_id"], name=entry.get("check_name", ""),
                   resource=entry.get("resource", ""),
                   file=entry.get("file_path", "").lstrip("/"),  # relative to the scanned directory
                   reason=result.get("suppress_comment", "") if result.get("result") == "SKIPPED" else "")


def parse_report(document: dict | list) -> ScanReport:
    """checkov's JSON (one framework: an object; several: a list of them)."""
    reports = document if isinstance(document, list) else [document]
    failed, skipped, passed, resources, errors = [], [], 0, 0, []
    for report in reports:
        if report.get("check_type") not in (None, "kubernetes"):
            continue
        results = report.get("results", {})
        failed += [_finding(entry) for entry in results.get("failed_checks", [])]
        skipped += [_finding(entry) for entry in results.get("skipped_checks", [])]
        passed += len(results.get("passed_checks", []))
        resources += report.get("summary", {}).get("resource_count", 0)
        errors += results.get("parsing_errors", [])
    return ScanReport(failed=failed, skipped=skipped, passed=passed, resources=resources,
                      parsing_errors=errors)


def checkov_environment(environ: Mapping[str, str], *, home: str) -> dict[str, str]:
    """The environment checkov runs with: the caller's, less checkov's own settings (CKV_CHECK,
    CKV_SKIP_CHECK and the Bridgecrew/Prisma ones would silently change or skip checks), with
    no call to Prisma Cloud for check metadata (the machine may have no network)."""
    kept = {key: value for key, value in environ.items()
            if not key.startswith(("CKV_", "BC_", "PRISMA_"))}
    return {**kept, "HOME": home, "BC_SKIP_MAPPING": "TRUE"}


def checkov_json(directory: Path, framework: str, *, checkov: Path = CHECKOV) -> dict | list:
    """checkov's JSON report of `framework` over the files under `directory`, offline."""
    if not checkov.exists():
        raise FileNotFoundError(f"{checkov} not found: run `make venv` (installs requirements-scan.txt)")
    with tempfile.TemporaryDirectory() as home:
        # Run where no .checkov.yaml can be found (working directory and HOME), so that only
        # what is written here decides which checks run.
        completed = subprocess.run(
            [str(checkov), "--directory", str(directory.resolve()), "--framework", framework,
             "--output", "json", "--skip-download", "--skip-results-upload"],
            capture_output=True, text=True, check=False, cwd=home,
            env=checkov_environment(os.environ, home=home),
        )
    if completed.returncode not in (0, 1):  # 1: findings
        raise RuntimeError(f"checkov failed ({completed.returncode}):\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout)


def run_checkov(directory: Path, *, checkov: Path = CHECKOV) -> ScanReport:
    """checkov over every YAML file under `directory`, offline."""
    return parse_report(checkov_json(directory, "kubernetes", checkov=checkov))


def scan_plans(plans: dict[str, Plan], work_dir: Path) -> tuple[ScanReport, int]:
    """Write each plan's Kubernetes objects under `work_dir/<label>/` and scan them; returns the
    report and how many manifests were written. (Helm releases are charts with values, not
    objects: the real `pulumi preview --policy-pack` run sees what they render.)"""
    written = sum(write_manifests(plan, work_dir / label) for label, plan in plans.items())
    return run_checkov(work_dir), written


def problems(report: ScanReport, expected: int) -> list[str]:
    """Everything that fails the scan, as lines for a person."""
    lines = [f"unsuppressed: {finding}" for finding in report.failed]
    lines += [f"suppressed without a reason: {finding}" for finding in report.unexplained]
    lines += [f"not parsed: {error}" for error in report.parsing_errors]
    if report.resources != expected:
        lines.append(f"checkov read {report.resources} entities, expected {expected}: "
                     "a manifest was not parsed")
    return lines


# Kinds whose spec.template is a pod template (a NodePool's spec.template is a node template).
POD_CONTROLLERS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"})


def expected_entities(plans: list[Plan]) -> int:
    """What checkov should read: one entity per object, plus one per pod template (checkov
    checks a pod's containers as an entity of their own)."""
    objects = [r for plan in plans for r in plan.resources if is_kubernetes_object(r)]
    return len(objects) + sum(1 for r in objects if r.inputs.get("kind") in POD_CONTROLLERS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stacks", nargs="*")
    args = parser.parse_args(argv)
    stacks = args.stacks or committed_stacks(ROOT)
    plans = {stack: run_stack(ROOT, stack) for stack in stacks}
    with tempfile.TemporaryDirectory(prefix="scan-") as work_dir:
        report, manifests = scan_plans(plans, Path(work_dir))
    suppressed = sorted({(f.check, f.resource, f.reason) for f in report.skipped})
    for check, resource, reason in suppressed:
        print(f"  suppressed {check} on {resource}: {reason}")
    failures = problems(report, expected_entities(list(plans.values())))
    for line in failures:
        print(line, file=sys.stderr)
    print(f"checkov: {', '.join(stacks)}: {manifests} manifests, {report.passed} passed, "
          f"{len(report.skipped)} suppressed with a reason, {len(failures)} problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
