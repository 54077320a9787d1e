"""tools/plan_diff.py on hand-made plans and on two real ones."""

from __future__ import annotations

import copy
import json

from tests.conftest import ROOT
from tools.engine import read_stack_config, run_stack
from tools.plan_diff import diff, main, render


def _resource(urn_name: str, type_token: str, inputs: dict, **extra) -> dict:
    return {"urn": f"urn:pulumi:dev::anythingllm::{type_token}::{urn_name}", "type": type_token,
            "name": urn_name, "inputs": inputs, "secret_paths": [], "protect": False,
            "dependencies": [], **extra}


BASE = {"stack": "dev", "resources": [
    _resource("database", "aws:rds/instance:Instance",
              {"identifier": "anythingllm-dev-postgres", "instanceClass": "db.t4g.medium"}, protect=True),
    _resource("app", "kubernetes:apps/v1:Deployment", {"spec": {"replicas": 2, "image": "a:1"}}),
    _resource("secret", "kubernetes:core/v1:Secret", {"stringData": "[secret]", "type": "Opaque"},
              secret_paths=["stringData"]),
    _resource("old-bucket", "aws:s3/bucket:Bucket", {"bucket": "x"}),
    _resource("claim", "kubernetes:core/v1:PersistentVolumeClaim", {"spec": {"storageClassName": "efs-ap"}}),
]}


def _head() -> dict:
    head = copy.deepcopy(BASE)
    resources = {r["name"]: r for r in head["resources"]}
    resources["database"]["inputs"]["instanceClass"] = "db.m7g.large"
    resources["app"]["inputs"]["spec"]["image"] = "a:2"
    # A plan written with values revealed: the secret path must still print nothing.
    resources["secret"]["inputs"]["stringData"] = {"PASSWORD": "hunter2-very-secret"}
    resources["claim"]["inputs"]["spec"]["storageClassName"] = "gp3"
    head["resources"].remove(resources["old-bucket"])
    head["resources"].append(_resource("new-topic", "aws:sns/topic:Topic", {"name": "alarms"}))
    return head


def test_added_removed_changed():
    added, removed, changed = diff(BASE, _head())
    assert [r["name"] for r in added] == ["new-topic"]
    assert [r["name"] for r in removed] == ["old-bucket"]
    by_name = {c.name: c for c in changed}
    assert by_name["app"].properties == [("spec.image", "a:1", "a:2")]
    assert by_name["app"].warning is None
    assert by_name["database"].properties == [("instanceClass", "db.t4g.medium", "db.m7g.large")]
    assert by_name["database"].warning == "stateful or protected resource changed"
    claim_warning = by_name["claim"].warning
    assert "**replaced**" in claim_warning and "`spec.storageClassName`" in claim_warning


def test_secrets_never_printed():
    text = render(BASE, _head())
    assert "hunter2" not in text
    assert "| `stringData.PASSWORD` | `[secret]` | `[secret]` |" in text


def test_markdown_summary_and_warnings():
    text = render(BASE, _head())
    assert text.startswith("### Plan diff: `dev`\n")
    assert "**1 to add, 4 to change, 1 to remove**" in text
    assert "> [!WARNING]" in text
    assert "> - `aws:rds/instance:Instance` `database`: stateful or protected resource changed" in text
    assert "| `aws:sns/topic:Topic` | `new-topic` |" in text
    assert "<details><summary><code>kubernetes:apps/v1:Deployment</code> <b>app</b>" in text


def test_removing_a_protected_resource_warns():
    head = copy.deepcopy(BASE)
    head["resources"] = [r for r in head["resources"] if r["name"] != "database"]
    text = render(BASE, head)
    assert "> - **removes** `aws:rds/instance:Instance` `database` (protected: `up` will refuse)" in text


def test_protect_flip_is_a_change():
    head = copy.deepcopy(BASE)
    head["resources"][0]["protect"] = False
    [change] = diff(BASE, head)[2]
    assert change.properties == [("(option) protect", "true", "false")]


def test_identical_plans():
    assert "No changes to the offline plan." in render(BASE, copy.deepcopy(BASE))


def test_a_real_canary_rollout_diff(tmp_path):
    """Two recorded plans of dev: adding a canary at 10 %."""
    config = read_stack_config(ROOT, "dev")
    base = run_stack(ROOT, "dev", config=config).to_json()
    config = copy.deepcopy(config)
    config["anythingllm:app"]["canary"] = {"imageTag": "pg-1.17.0", "weight": 10, "isolation": "shared"}
    head = run_stack(ROOT, "dev", config=config).to_json()
    (tmp_path / "base.json").write_text(json.dumps(base))
    (tmp_path / "head.json").write_text(json.dumps(head))
    head_file = str(tmp_path / "head.json")
    assert main([str(tmp_path / "base.json"), head_file, "--out", str(tmp_path / "d.md")]) == 0
    text = (tmp_path / "d.md").read_text()
    # Deployment, Service, HPA, PDB of the canary, the waiter for its target group and its two
    # alarms; the Ingress, the dashboard (two more graphs) and the stable target group's waiter
    # (its trigger follows the Ingress) change.
    assert "**7 to add, 3 to change, 0 to remove**" in text
    assert "`anythingllm-canary`" in text
    assert "alb-unhealthy-targets-canary" in text
    assert "metadata.annotations.alb.ingress.kubernetes.io/actions.weighted-release" in text
    # A missing base plan (a new stack) is all additions.
    assert main([str(tmp_path / "none.json"), head_file, "--out", str(tmp_path / "n.md")]) == 0
    assert "to remove" in (tmp_path / "n.md").read_text()
