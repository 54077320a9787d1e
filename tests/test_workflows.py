"""The GitHub workflows: valid workflow files that run what the README promises."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))


def _load(name: str) -> dict:
    # YAML 1.1 reads the key `on` as True.
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    document["on"] = document.pop(True, document.get("on"))
    return document


def _runs(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def _uses(job: dict, action: str) -> dict:
    return next(step for step in job["steps"] if step.get("uses", "").startswith(action))


def test_the_three_workflows_exist():
    assert [path.name for path in FILES] == ["deploy.yml", "pull-request.yml", "staging.yml"]


def test_workflows_validate_against_the_workflow_schema():
    """check-jsonschema's vendored copy of SchemaStore's github-workflow schema (offline)."""
    result = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                             "vendor.github-workflows", *map(str, FILES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_has_teeth(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    stepz: []\n")
    result = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                             "vendor.github-workflows", str(broken)], capture_output=True, text=True)
    assert result.returncode != 0


def test_pull_request_runs_ci_and_posts_the_plan_diff():
    workflow = _load("pull-request.yml")
    assert workflow["permissions"] == {"contents": "read"}
    jobs = workflow["jobs"]
    assert "bash .ci/run" in _runs(jobs["test"])
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    diff_job = jobs["plan-diff"]
    assert diff_job["permissions"] == {"contents": "read", "pull-requests": "write"}
    runs = _runs(diff_job)
    assert "for stack in dev prod" in runs and "python -m tools.plan_diff" in runs
    # A pull request that adds minutes to an `up` says so (make timeline against the base).
    assert "tools.timeline \"$stack\" --json" in runs and "--summary" in runs
    script = _uses(diff_job, "actions/github-script")["with"]["script"]
    assert "updateComment" in script and "anythingllm-plan-diff" in script  # one comment, updated


def test_cloud_preview_only_with_credentials_and_with_the_policy_pack():
    job = _load("pull-request.yml")["jobs"]["cloud-preview"]
    assert "vars.AWS_PREVIEW_ROLE_ARN != ''" in job["if"]
    assert job["permissions"]["id-token"] == "write"
    preview = _uses(job, "pulumi/actions")["with"]
    assert preview["command"] == "preview" and preview["comment-on-pr"] is True
    assert preview["policyPacks"] == "policy" and (ROOT / "policy" / "PulumiPolicy.yaml").exists()
    assert job["strategy"]["matrix"]["stack"] == ["dev", "prod"]


def test_deploy_goes_dev_then_prod_behind_its_environment():
    workflow = _load("deploy.yml")
    assert workflow["on"]["push"]["branches"] == ["main"]
    job = workflow["jobs"]["up"]
    assert job["needs"] == "test"
    assert job["strategy"]["matrix"]["stack"] == ["dev", "prod"] and job["strategy"]["max-parallel"] == 1
    assert job["environment"] == "${{ matrix.stack }}"
    assert job["concurrency"]["cancel-in-progress"] is False
    assert _uses(job, "pulumi/actions")["with"] == {"command": "up", "stack-name": "${{ matrix.stack }}",
                                                     "policyPacks": "policy", "diff": True}


def test_staging_creates_destroys_and_reaps_only_staging_stacks():
    workflow = _load("staging.yml")
    assert workflow["on"]["pull_request"]["types"] == ["labeled", "unlabeled", "synchronize", "closed"]
    assert workflow["on"]["schedule"]
    runs = _runs(workflow["jobs"]["staging"])
    assert 'tools.staging destroy "pr-$PR"' in runs and 'tools.staging up "pr-$PR"' in runs
    assert "tools.staging reap" in runs and "tools.sweep" in runs and "--delete" not in runs
    assert not re.search(r"\bprod\b", runs)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_tool_and_make_target_a_workflow_calls_exists(path):
    text = path.read_text()
    for module in re.findall(r"python -m tools\.(\w+)", text):
        assert (ROOT / "tools" / f"{module}.py").exists(), module
    makefile = (ROOT / "Makefile").read_text()
    for target in re.findall(r"make ([\w./-]+)", text):
        assert (target == ".venv/.installed" and "STAMP := $(VENV)/.installed" in makefile) or \
            re.search(rf"^{re.escape(target)}:", makefile, re.M), target
