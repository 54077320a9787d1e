"""checkov (kubernetes framework) over every rendered manifest: no finding without a written
suppression next to the resource, and the scan itself has teeth."""

from __future__ import annotations

import copy

import pytest
import yaml

from components.settings import SettingsError
from components.workloads import (
    HIGH_UID_CHECK,
    IMAGE_DIGEST_CHECK,
    READ_ONLY_ROOT_CHECK,
    SCAN_SKIP_PREFIX,
    SECRETS_AS_FILES_CHECK,
    image_version,
    scan_exceptions,
)
from tests.conftest import ROOT, STACKS, base_config, settings_from
from tools.engine import read_stack_config, run_stack
from tools.security_scan import ScanReport, expected_entities, problems, run_checkov, scan_plans

DIGEST = "sha256:" + "ab" * 32
CANARY = {"imageTag": f"pg-1.17.0@{DIGEST}", "weight": 10, "isolation": "isolated"}


@pytest.fixture(scope="module")
def canary_plan():
    """prod with an isolated canary pinned by digest: the canary's objects are scanned too."""
    config = copy.deepcopy(read_stack_config(ROOT, "prod"))
    config["anythingllm:app"] = {**config["anythingllm:app"], "canary": CANARY}
    return run_stack(ROOT, "prod", config=config)


@pytest.fixture(scope="module")
def scan(stack_plans, canary_plan, tmp_path_factory) -> tuple[ScanReport, int, int]:
    plans = {**stack_plans, "prod-canary": canary_plan}
    report, written = scan_plans(plans, tmp_path_factory.mktemp("scan"))
    return report, written, expected_entities(list(plans.values()))


def test_no_unsuppressed_finding_in_any_stack(scan):
    report, written, expected = scan
    assert written > 100
    assert problems(report, expected) == []
    assert report.failed == [] and report.parsing_errors == []
    # Every object was read: checkov counts each object plus each pod template's containers.
    assert report.resources == expected
    assert report.passed > 1000


def test_every_suppression_is_a_documented_exception_with_a_reason(scan):
    report, _, _ = scan
    assert report.unexplained == []
    # Only these four checks are ever suppressed, and only on the objects that need them.
    assert {f.check for f in report.skipped} == {IMAGE_DIGEST_CHECK, SECRETS_AS_FILES_CHECK,
                                                 READ_ONLY_ROOT_CHECK, HIGH_UID_CHECK}
    by_check = {check: {f.resource for f in report.skipped if f.check == check}
                for check in (READ_ONLY_ROOT_CHECK, HIGH_UID_CHECK)}
    # Read-only root: only AnythingLLM (stable and canary); high uid: AnythingLLM and psql.
    assert by_check[READ_ONLY_ROOT_CHECK] == {"Deployment.anythingllm.anythingllm",
                                              "Deployment.anythingllm.anythingllm-canary"}
    assert {r.split(".")[1] for r in by_check[HIGH_UID_CHECK]} == {"anythingllm", "data-bootstrap"}


def test_a_digest_pinned_image_needs_no_digest_exception(scan):
    report, _, _ = scan
    digest_skips = {f.resource for f in report.skipped if f.check == IMAGE_DIGEST_CHECK}
    assert "Deployment.anythingllm.anythingllm" in digest_skips
    assert "Deployment.anythingllm.anythingllm-canary" not in digest_skips


def test_fixed_findings_stay_fixed(stack_plans):
    """vLLM and LiteLLM run with a high uid and a read-only root; every container re-pulls."""
    for stack in STACKS:
        workloads = [*stack_plans[stack].of_type("kubernetes:apps/v1:Deployment"),
                     *stack_plans[stack].of_type("kubernetes:apps/v1:StatefulSet")]
        assert {w.inputs["metadata"]["namespace"] for w in workloads} >= {"model-serving", "llm-gateway"}
        for deployment in workloads:
            pod = deployment.inputs["spec"]["template"]["spec"]
            container = pod["containers"][0]
            assert container["imagePullPolicy"] == "Always"
            if deployment.inputs["metadata"]["namespace"] in ("model-serving", "llm-gateway"):
                assert pod["securityContext"]["runAsUser"] >= 10000, deployment.name
                assert container["securityContext"]["readOnlyRootFilesystem"] is True, deployment.name
                # A read-only image still needs somewhere to write scratch files.
                assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}, deployment.name


def test_the_scanner_reports_a_bad_manifest(tmp_path):
    """The scan has teeth: a privileged root container without limits fails several checks,
    and a suppression without a reason is reported."""
    bad = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "bad", "namespace": "default",
                     "annotations": {f"{SCAN_SKIP_PREFIX}1": "CKV_K8S_14"}},
        "spec": {"selector": {"matchLabels": {"app": "bad"}}, "template": {
            "metadata": {"labels": {"app": "bad"}},
            "spec": {"containers": [{"name": "bad", "image": "nginx:latest",
                                     "securityContext": {"privileged": True}}]}}},
    }
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    report = run_checkov(tmp_path)
    failed = {finding.check for finding in report.failed}
    assert {"CKV_K8S_16", "CKV_K8S_11", "CKV_K8S_13", "CKV_K8S_8"} <= failed  # privileged, limits, probes
    assert [f.check for f in report.unexplained] == ["CKV_K8S_14"]
    lines = problems(report, expected=2)
    assert any(line.startswith("unsuppressed: CKV_K8S_16") for line in lines)
    assert any(line.startswith("suppressed without a reason: CKV_K8S_14") for line in lines)


# --------------------------------------------------------------------------- scan_exceptions

def test_scan_exceptions_are_numbered_annotations_with_reasons():
    annotations = scan_exceptions({SECRETS_AS_FILES_CHECK: "reads its key from the environment"},
                                  images=("docker.io/x/y:1.0",))
    assert annotations == {
        f"{SCAN_SKIP_PREFIX}1": f"{SECRETS_AS_FILES_CHECK}=reads its key from the environment",
        f"{SCAN_SKIP_PREFIX}2": annotations[f"{SCAN_SKIP_PREFIX}2"],
    }
    assert annotations[f"{SCAN_SKIP_PREFIX}2"].startswith(f"{IMAGE_DIGEST_CHECK}=pinned by exact tag")
    assert scan_exceptions({}, images=(f"docker.io/x/y:1.0@{DIGEST}",)) == {}


@pytest.mark.parametrize("reason", ["", "   ", "a=b"])
def test_scan_exception_without_a_usable_reason_is_refused(reason):
    with pytest.raises(ValueError, match="reason is required"):
        scan_exceptions({HIGH_UID_CHECK: reason})


def test_image_version_ignores_the_digest():
    assert image_version(f"docker.io/mintplexlabs/anythingllm:pg-1.16.0@{DIGEST}") == "pg-1.16.0"
    assert image_version("docker.io/vllm/vllm-openai:v0.32.0") == "v0.32.0"


def test_app_image_tag_accepts_a_digest_but_not_a_bad_one():
    config = base_config()
    config["app"] = {"imageTag": f"pg-1.16.0@{DIGEST}"}
    assert settings_from(config).app.image_tag == f"pg-1.16.0@{DIGEST}"
    config["app"] = {"imageTag": "pg-1.16.0@sha256:abc"}
    with pytest.raises(SettingsError, match=r"app\.imageTag"):
        settings_from(config)


def test_checkov_runs_without_the_callers_checkov_settings():
    """CKV_SKIP_CHECK or CKV_CHECK in the caller's environment would drop checks from both scans
    without a trace (review of the AWS scan); they, and any .checkov.yaml of HOME, are not passed."""
    from tools.security_scan import checkov_environment

    env = checkov_environment({"PATH": "/bin", "CKV_SKIP_CHECK": "CKV_AWS_158", "CKV_CHECK": "x",
                               "BC_API_KEY": "k", "PRISMA_API_URL": "u", "HOME": "/root"}, home="/tmp/h")
    assert env == {"PATH": "/bin", "HOME": "/tmp/h", "BC_SKIP_MAPPING": "TRUE"}
