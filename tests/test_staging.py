"""tools/staging.py: the staging lifecycle against a fake Pulumi backend and a fake AWS."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT, base_config, expect_settings_error, settings_from
from tools import staging as staging_module
from tools.engine import run_stack
from tools.staging import INGRESS_TYPE, STAGING_STACK, Staging, StagingError, main, stack_name

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
CLUSTER_URN = "urn:pulumi:staging-pr-7::anythingllm::aws:eks/cluster:Cluster::cluster"
INGRESS_URN = ("urn:pulumi:staging-pr-7::anythingllm::kubernetes:networking.k8s.io/v1:Ingress::"
               "anythingllm-ingress")


class FakeBackend:
    """Records every call; stacks are dicts of outputs and (urn, type) resources."""

    def __init__(self, stacks: dict[str, dict] | None = None):
        self.stacks = stacks or {}
        self.calls: list[tuple] = []

    def list_stacks(self):
        return list(self.stacks)

    def create(self, stack):
        self.calls.append(("create", stack))
        self.stacks.setdefault(stack, {"outputs": {}, "resources": []})

    def up(self, stack):
        self.calls.append(("up", stack))

    def outputs(self, stack):
        return dict(self.stacks[stack]["outputs"])

    def resources(self, stack):
        return list(self.stacks[stack]["resources"])

    def destroy(self, stack, *, targets=None):
        self.calls.append(("destroy", stack, tuple(targets) if targets else None))

    def remove(self, stack):
        self.calls.append(("remove", stack))
        del self.stacks[stack]


class FakeInventory:
    def __init__(self, calls: list[tuple]):
        self.calls = calls

    def wait_until_gone(self, cluster):
        self.calls.append(("wait-for-alb-deletion", cluster))


def _staging(backend: FakeBackend, root: Path = ROOT) -> Staging:
    return Staging(backend=backend, inventory=lambda: FakeInventory(backend.calls), root=root,
                   now=lambda: NOW, log=lambda _: None)


def _stack(environment="staging", expires="2026-11-24T00:00:00Z", ingress=True) -> dict:
    resources = [(CLUSTER_URN, "aws:eks/cluster:Cluster")]
    if ingress:
        resources.append((INGRESS_URN, INGRESS_TYPE))
    return {"outputs": {"environment": environment, "clusterName": "anythingllm-staging-pr-7",
                        "expiresAt": expires}, "resources": resources}


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(("given_name", "expected"), [
    ("pr-7", "staging-pr-7"),
    ("staging-pr-7", "staging-pr-7"),
    ("feature/Long_Name", "staging-feature-long-name"),
])
def test_stack_names(given_name, expected):
    assert stack_name(given_name) == expected


@pytest.mark.parametrize("bad", ["", "///", "staging", "staging-"])
def test_names_that_leave_nothing_are_refused(bad):
    with pytest.raises(StagingError, match="leaves no name"):
        stack_name(bad)


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=300))
def test_any_branch_name_becomes_a_valid_staging_stack_or_a_clear_error(branch):
    try:
        stack = stack_name(branch)
    except StagingError:
        return
    assert STAGING_STACK.match(stack) and len(stack) <= 63, stack


# --------------------------------------------------------------------------- up


def test_up_writes_the_template_plus_expiry_and_runs_up(tmp_path):
    shutil.copy(ROOT / "Pulumi.staging.yaml", tmp_path / "Pulumi.staging.yaml")
    # What `pulumi stack init` may have written must survive.
    (tmp_path / "Pulumi.staging-pr-7.yaml").write_text("encryptionsalt: v1:abc\n")
    backend = FakeBackend()
    assert _staging(backend, tmp_path).up("pr-7", ttl_hours=48) == "staging-pr-7"
    assert backend.calls == [("create", "staging-pr-7"), ("up", "staging-pr-7")]
    written = yaml.safe_load((tmp_path / "Pulumi.staging-pr-7.yaml").read_text())
    template = yaml.safe_load((ROOT / "Pulumi.staging.yaml").read_text())["config"]
    assert written["encryptionsalt"] == "v1:abc"
    assert written["config"] == {**template, "anythingllm:expiresAt": "2026-11-25T12:00:00Z"}


def test_up_keeps_a_restore_stacks_sources_and_secrets(tmp_path):
    """A restore stack's file names its snapshot and recovery point: an `up` that rewrote it from
    the template would create an empty database and file system."""
    shutil.copy(ROOT / "Pulumi.staging.yaml", tmp_path / "Pulumi.staging.yaml")
    restore = {"databaseSnapshot": "awsbackup:job-1",
               "fileSystemRecoveryPoint": "arn:aws:backup:us-east-1:123456789012:recovery-point:1"}
    (tmp_path / "Pulumi.staging-restore-1.yaml").write_text(yaml.safe_dump({"config": {
        "anythingllm:restore": restore, "anythingllm:huggingFaceToken": {"secure": "v1:xyz"},
        "anythingllm:app": {"replicas": 9}}}))
    _staging(FakeBackend(), tmp_path).up("restore-1")
    written = yaml.safe_load((tmp_path / "Pulumi.staging-restore-1.yaml").read_text())["config"]
    assert written["anythingllm:restore"] == restore
    assert written["anythingllm:huggingFaceToken"] == {"secure": "v1:xyz"}
    # Anything else is the template's again.
    template = yaml.safe_load((ROOT / "Pulumi.staging.yaml").read_text())["config"]
    assert written["anythingllm:app"] == template["anythingllm:app"]


def test_the_written_stack_file_is_a_valid_staging_stack(tmp_path):
    """The generated file runs through the real program: expiry tag on AWS resources, output."""
    shutil.copy(ROOT / "Pulumi.staging.yaml", tmp_path / "Pulumi.staging.yaml")
    _staging(FakeBackend(), tmp_path).up("pr-7")
    config = yaml.safe_load((tmp_path / "Pulumi.staging-pr-7.yaml").read_text())["config"]
    plan = run_stack(ROOT, "staging-pr-7", config=config)
    assert plan.outputs["expiresAt"] == "2026-11-26T12:00:00Z"
    tags = plan.one("aws:eks/cluster:Cluster").inputs["tags"]
    assert tags["anythingllm:expires-at"] == "2026-11-26T12:00:00Z"


@pytest.mark.parametrize("ttl", [0, 24 * 14 + 1])
def test_up_refuses_a_ttl_out_of_range(ttl):
    with pytest.raises(StagingError, match="--ttl-hours"):
        _staging(FakeBackend()).up("pr-7", ttl_hours=ttl)


def test_up_refuses_a_template_with_ciphertext(tmp_path):
    template = yaml.safe_load((ROOT / "Pulumi.staging.yaml").read_text())
    template["config"]["anythingllm:huggingFaceToken"] = {"secure": "v1:xyz"}
    (tmp_path / "Pulumi.staging.yaml").write_text(yaml.safe_dump(template))
    with pytest.raises(StagingError, match="anythingllm:huggingFaceToken"):
        _staging(FakeBackend(), tmp_path).up("pr-7")


def test_expires_at_is_refused_in_prod_and_needs_a_zone():
    config = base_config("prod")
    config["expiresAt"] = "2026-11-30T18:00:00Z"
    expect_settings_error(config, "expiresAt", "prod never expires")
    config = base_config("staging")
    config["expiresAt"] = "2026-11-30T18:00:00"
    expect_settings_error(config, "expiresAt", "no time zone")
    config["expiresAt"] = "2026-11-30T20:00:00+02:00"
    assert settings_from(config).expires_at_text == "2026-11-30T18:00:00Z"


# --------------------------------------------------------------------------- destroy


def test_destroy_deletes_ingresses_waits_for_the_alb_then_the_rest():
    backend = FakeBackend({"staging-pr-7": _stack()})
    _staging(backend).destroy("pr-7")
    assert backend.calls == [
        ("destroy", "staging-pr-7", (INGRESS_URN,)),
        ("wait-for-alb-deletion", "anythingllm-staging-pr-7"),
        ("destroy", "staging-pr-7", None),
        ("remove", "staging-pr-7"),
    ]


def test_destroy_without_an_ingress_still_checks_for_load_balancers():
    backend = FakeBackend({"staging-pr-7": _stack(ingress=False)})
    _staging(backend).destroy("staging-pr-7")
    assert backend.calls[0] == ("wait-for-alb-deletion", "anythingllm-staging-pr-7")


@pytest.mark.parametrize("name", ["prod", "dev", "staging-pr-7"])
def test_prod_can_never_be_destroyed(name):
    backend = FakeBackend({"prod": _stack(environment="prod"), "dev": _stack(environment="dev"),
                           # a staging-named stack that says it is prod is refused too
                           "staging-pr-7": _stack(environment="prod")})
    with pytest.raises(StagingError):
        _staging(backend).destroy(name)
    assert not [call for call in backend.calls if call[0] in ("destroy", "remove")]


def test_cli_reports_refusals_with_status_2(capsys):
    backend = FakeBackend({"staging-pr-7": _stack(environment="prod")})
    assert main(["destroy", "pr-7"], staging=_staging(backend)) == 2
    assert "reports environment 'prod'" in capsys.readouterr().err


# --------------------------------------------------------------------------- list and reap


def test_reap_destroys_only_expired_staging_stacks():
    backend = FakeBackend({
        "staging-old": _stack(expires="2026-11-23T11:59:59Z"),
        "staging-fresh": _stack(expires="2026-11-23T12:00:01Z"),
        "staging-manual": _stack(expires=None),
        "prod": _stack(environment="prod", expires="2020-01-01T00:00:00Z"),
    })
    staging = _staging(backend)
    assert [(r["stack"], r["expired"]) for r in staging.list()] == [
        ("staging-fresh", False), ("staging-manual", False), ("staging-old", True)]
    assert staging.reap(dry_run=True) == ["staging-old"] and backend.calls == []
    assert staging.reap() == ["staging-old"]
    assert {call[1] for call in backend.calls if call[0] != "wait-for-alb-deletion"} == {"staging-old"}
    assert set(backend.stacks) == {"staging-fresh", "staging-manual", "prod"}


def test_reap_goes_on_after_a_failure_and_reports_it():
    class Failing(FakeBackend):
        def destroy(self, stack, *, targets=None):
            if stack == "staging-a":
                raise RuntimeError("boom")
            super().destroy(stack, targets=targets)

    backend = Failing({"staging-a": _stack(expires="2026-01-01T00:00:00Z"),
                       "staging-b": _stack(expires="2026-01-01T00:00:00Z")})
    with pytest.raises(StagingError, match="staging-a: boom"):
        _staging(backend).reap()
    assert "staging-b" not in backend.stacks


# --------------------------------------------------------------------------- AutomationBackend


def test_automation_backend_passes_the_right_arguments(monkeypatch):
    """The real backend's Pulumi calls, with the Automation API functions replaced."""
    from pulumi import automation as auto

    seen: list[tuple] = []

    class Stack:
        def __init__(self, name):
            self.name = name

        def up(self, **kwargs):
            seen.append(("up", self.name, kwargs["policy_packs"]))

        def destroy(self, **kwargs):
            seen.append(("destroy", self.name, kwargs["target"], kwargs["target_dependents"]))

    def select(*, stack_name, work_dir):
        seen.append(("select", stack_name, work_dir))
        return Stack(stack_name)

    monkeypatch.setattr(auto, "select_stack", select)
    monkeypatch.setattr(auto, "create_or_select_stack", select)
    backend = staging_module.AutomationBackend(ROOT, on_output=lambda _: None)
    backend.up("staging-pr-7")
    backend.destroy("staging-pr-7", targets=[INGRESS_URN])
    backend.destroy("staging-pr-7")
    assert seen == [
        ("select", "staging-pr-7", str(ROOT)), ("up", "staging-pr-7", [str(ROOT / "policy")]),
        ("select", "staging-pr-7", str(ROOT)), ("destroy", "staging-pr-7", [INGRESS_URN], True),
        ("select", "staging-pr-7", str(ROOT)), ("destroy", "staging-pr-7", None, None),
    ]


def test_generated_stack_files_are_not_committed_stacks(tmp_path):
    for stack in ("dev", "staging", "staging-pr-7"):
        (tmp_path / f"Pulumi.{stack}.yaml").write_text("config: {}\n")
    assert staging_module.committed_stacks(tmp_path) == ["dev", "staging"]
