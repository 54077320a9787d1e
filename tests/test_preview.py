"""`make preview`: tree, counts, plan.json and manifests; config errors exit non-zero."""

from __future__ import annotations

import json
import shutil

import yaml

from tests.conftest import ROOT
from tools import preview


def test_dev_preview_writes_plan_and_manifests(tmp_path, capsys):
    assert preview.main(["dev", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "pulumi:pulumi:Stack" in printed and "aws:eks/cluster:Cluster" in printed
    assert "Resources by type:" in printed
    plan = json.loads((tmp_path / "dev" / "plan.json").read_text())
    types = {r["type"] for r in plan["resources"]}
    assert {
        "aws:ec2/vpc:Vpc", "aws:eks/cluster:Cluster", "aws:eks/nodeGroup:NodeGroup",
        "aws:eks/addon:Addon", "kubernetes:helm.sh/v3:Release",
    } <= types
    groups = {r["name"] for r in plan["resources"] if r["type"] == "aws:eks/nodeGroup:NodeGroup"}
    # The GPU group is Karpenter's: a NodePool and its EC2NodeClass, no managed group.
    assert groups == {"cluster-system"}
    pools = {r["name"] for r in plan["resources"] if r["type"] == "kubernetes:karpenter.sh/v1:NodePool"}
    assert pools == {"cluster-karpenter-inference"}
    assert plan["outputs"]["kubeconfig"] == "[secret]"
    helm = {p.name for p in (tmp_path / "dev" / "manifests" / "helm").iterdir()}
    assert helm == {"cluster-autoscaler.yaml", "nvidia-device-plugin.yaml",
                    "aws-load-balancer-controller.yaml", "karpenter-crd.yaml", "karpenter.yaml",
                    "keda.yaml"}
    release = yaml.safe_load((tmp_path / "dev" / "manifests" / "helm" /
                              "cluster-autoscaler.yaml").read_text())
    assert release["values"]["autoDiscovery"]["clusterName"] == "anythingllm-dev"


def test_counts_per_type_match_the_plan(tmp_path, capsys):
    preview.main(["prod", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    plan = json.loads((tmp_path / "prod" / "plan.json").read_text())
    nats = sum(r["type"] == "aws:ec2/natGateway:NatGateway" for r in plan["resources"])
    assert f"       {nats}  aws:ec2/natGateway:NatGateway" in printed
    assert f"+ {len(plan['resources']) + 1} to create" in printed


# The program and its stack files, not the virtualenvs (checkov's is large) or caches.
PROGRAM_ONLY = shutil.ignore_patterns(".venv*", "build", ".git", "*_cache", "__pycache__")


def test_config_error_exits_non_zero_with_the_settings_message(tmp_path, capsys):
    program = tmp_path / "program"
    shutil.copytree(ROOT, program, ignore=PROGRAM_ONLY)
    original = (program / "Pulumi.dev.yaml").read_text()
    broken = original.replace("instanceTypes: [g6.2xlarge, g5.2xlarge]", "instanceTypes: [m5.large]")
    assert broken != original
    (program / "Pulumi.broken.yaml").write_text(broken)
    code = preview.main(["broken", "--root", str(program), "--out", str(tmp_path / "out")])
    assert code == 2
    error = capsys.readouterr().err
    assert "cluster.gpuNodeGroups[0].instanceTypes[0]: 'm5.large' is not an NVIDIA GPU" in error
    assert not (tmp_path / "out").exists()  # nothing planned, nothing written


def test_unknown_stack_exits_non_zero(tmp_path, capsys):
    assert preview.main(["nosuchstack", "--out", str(tmp_path)]) == 2
    assert "Pulumi.nosuchstack.yaml" in capsys.readouterr().err


def test_misspelt_top_level_key_in_a_stack_file_is_reported(tmp_path, capsys):
    program = tmp_path / "program"
    shutil.copytree(ROOT, program, ignore=PROGRAM_ONLY)
    dev = (program / "Pulumi.dev.yaml").read_text()
    (program / "Pulumi.typo.yaml").write_text(
        dev.replace("anythingllm:tags:", "anythingllm:tagz:"))
    assert preview.main(["typo", "--root", str(program), "--out", str(tmp_path / "out")]) == 2
    assert "- tagz: unknown key" in capsys.readouterr().err


def test_plan_json_is_sorted_and_identical_across_runs(tmp_path):
    preview.main(["prod", "--out", str(tmp_path / "a")])
    preview.main(["prod", "--out", str(tmp_path / "b")])
    first = (tmp_path / "a" / "prod" / "plan.json").read_text()
    assert first == (tmp_path / "b" / "prod" / "plan.json").read_text()
    urns = [r["urn"] for r in json.loads(first)["resources"]]
    assert urns == sorted(urns)


def test_a_stack_file_the_cli_would_misread_exits_2_naming_the_line(tmp_path, capsys):
    program = tmp_path / "program"
    shutil.copytree(ROOT, program, ignore=PROGRAM_ONLY)
    dev = (program / "Pulumi.dev.yaml").read_text()
    (program / "Pulumi.twice.yaml").write_text(dev + "  anythingllm:app:\n    replicas: 4\n")
    assert preview.main(["twice", "--root", str(program), "--out", str(tmp_path / "out")]) == 2
    assert "key 'anythingllm:app' is given twice" in capsys.readouterr().err
