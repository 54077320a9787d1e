"""Kubernetes upgrades, one minor at a time, proven from two recorded plans.

Every committed stack is recorded at the previous minor and at the minor it runs; the two
plans must differ only in versions, changed in place (no resource added, removed, renamed
or replaced, judged by the providers' replace-only inputs in components/replacement.py), and
in the order EKS asks for: control plane, then the add-ons that nodes need, then the nodes,
then what runs on them (CoreDNS, metrics-server, the Cluster Autoscaler of the new minor).
Skipping a minor or going back is refused before anything is created.
"""

from __future__ import annotations

import pytest

from components.cluster import POST_COMPUTE_ADDONS, PRE_COMPUTE_ADDONS
from components.naming import cluster_name
from components.replacement import replacing
from components.settings import SettingsError, load_settings
from components.settings.kubernetes_version import minor, supported_versions, upgrade_problem
from components.versions import CLUSTER_AUTOSCALER_RELEASES
from tests.conftest import ROOT, STACKS
from tools.engine import Plan, RecordingMonitor, read_stack_config, run, run_stack
from tools.fake_cloud import FakeCloud
from tools.plan_diff import diff

CLUSTER = "aws:eks/cluster:Cluster"
ADDON = "aws:eks/addon:Addon"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
RELEASE = "kubernetes:helm.sh/v3:Release"
CURRENT = supported_versions()[-1]
PREVIOUS = supported_versions()[-2]
# What an upgrade may change, and how: (type, changed input path).
VERSION_INPUTS = {(CLUSTER, "version"), (ADDON, "addonVersion"), (NODE_GROUP, "version"),
                  (RELEASE, "values.image.tag"), (RELEASE, "version")}


def _config_at(stack: str, version: str) -> dict:
    config = read_stack_config(ROOT, stack)
    config["anythingllm:cluster"] = {**config["anythingllm:cluster"], "kubernetesVersion": version}
    return config


@pytest.fixture(scope="module")
def previous_plans() -> dict[str, Plan]:
    """Each committed stack at the minor before the one it runs (as deployed before the bump)."""
    return {stack: run_stack(ROOT, stack, config=_config_at(stack, PREVIOUS)) for stack in STACKS}


def test_the_committed_stacks_run_the_newest_minor_and_the_one_before_is_deployable():
    for stack in STACKS:
        assert read_stack_config(ROOT, stack)["anythingllm:cluster"]["kubernetesVersion"] == CURRENT
    assert minor(PREVIOUS) + 1 == minor(CURRENT)


@pytest.mark.parametrize("stack", STACKS)
def test_an_upgrade_changes_versions_in_place_and_nothing_else(stack, stack_plans, previous_plans):
    before, after = previous_plans[stack], stack_plans[stack]
    added, removed, changed = diff(before.to_json(), after.to_json())
    assert added == [] and removed == [], "an upgrade adds, removes or renames a resource"
    for change in changed:
        paths = [path for path, _, _ in change.properties]
        assert replacing(change.type, paths) == [], f"{change.name} would be replaced"
        unexpected = [p for p in paths if (change.type, p) not in VERSION_INPUTS]
        assert unexpected == [], f"{change.name}: {unexpected}"
    changed_names = {(c.type, c.name) for c in changed}
    # Every versioned AWS resource moves: the control plane, each add-on (unpinned ones follow
    # EKS's default for the minor: that they differ from minor to minor is the fake account's
    # assumption, tools/fake_cloud.py; what is proven is that the input follows the minor), each
    # managed node group (its kubelets follow the cluster).
    for resource in (*after.of_type(CLUSTER), *after.of_type(ADDON), *after.of_type(NODE_GROUP)):
        assert (resource.type, resource.name) in changed_names, f"{resource.name} stays behind"
    assert after.one(CLUSTER).inputs["version"] == CURRENT
    assert {r.inputs["version"] for r in after.of_type(NODE_GROUP)} == {CURRENT}
    autoscaler = next(r for r in after.of_type(RELEASE) if r.name.endswith("-autoscaler"))
    assert autoscaler.inputs["values"]["image"]["tag"] == CLUSTER_AUTOSCALER_RELEASES[CURRENT].image_tag
    assert autoscaler.inputs["version"] == CLUSTER_AUTOSCALER_RELEASES[CURRENT].chart.version
    # Karpenter's nodes follow by drift: their node classes name a pinned AMI alias, which
    # Karpenter resolves for the cluster's minor, so nothing of theirs is in the diff.
    assert not any(c.type.startswith("kubernetes:karpenter") for c in changed)


@pytest.mark.parametrize("stack", STACKS)
def test_an_upgrade_runs_control_plane_then_addons_then_nodes_then_what_runs_on_them(stack, stack_plans):
    plan = stack_plans[stack]
    control_plane = plan.one(CLUSTER)
    addons = {r.inputs["addonName"]: r for r in plan.of_type(ADDON)}
    groups = plan.of_type(NODE_GROUP)
    system = next(g for g in groups if g.name == "cluster-system")
    autoscaler = next(r for r in plan.of_type(RELEASE) if r.name.endswith("-autoscaler"))
    for resource in (*addons.values(), *groups, autoscaler):
        assert plan.waits_for(resource, control_plane), resource.name
    for group in groups:
        for name in PRE_COMPUTE_ADDONS:
            assert plan.waits_for(group, addons[name]), (group.name, name)
    # CoreDNS and metrics-server are Deployments on the system nodes, and the autoscaler runs
    # there too: each moves once those nodes have.
    for resource in (*(addons[name] for name in POST_COMPUTE_ADDONS), autoscaler):
        assert plan.waits_for(resource, system), resource.name
    # ...and nothing on the control plane's path waits for a node group.
    for name in PRE_COMPUTE_ADDONS:
        assert not any(plan.waits_for(addons[name], group) for group in groups)


# ---------------------------------------------------------------- skipping and going back


def test_upgrade_problem_takes_the_same_minor_or_the_next_only():
    assert upgrade_problem("1.35", "1.35") is None
    assert upgrade_problem("1.35", "1.36") is None
    skip = upgrade_problem("1.34", "1.36")
    assert "skips 1.35" in skip and "runs 1.34" in skip and 'set "1.35"' in skip
    back = upgrade_problem("1.36", "1.35")
    assert "older than 1.36" in back and "cannot take a control plane back" in back
    assert 'set "1.36"' in back and "Rolling back" in back
    # One minor back is what EKS's own upgrade at the end of support leaves behind.
    assert "EKS did" in back
    two_back = upgrade_problem("1.36", "1.34")
    assert "EKS did" not in two_back and "Rolling back" not in two_back


def _load_settings_against(stack: str, config: dict, clusters: dict[str, str]):
    """The program's settings step alone (load_settings, which asks EKS) with the fake account
    holding `clusters`."""
    loaded = []
    run(lambda: loaded.append(load_settings()), project="anythingllm", stack=stack, config=config,
        clusters=clusters)
    return loaded[0]


def test_the_next_minor_is_accepted_for_a_running_cluster():
    settings = _load_settings_against("prod", _config_at("prod", CURRENT),
                                      {cluster_name("anythingllm", "prod"): PREVIOUS})
    assert settings.cluster.kubernetes_version == CURRENT


@pytest.mark.parametrize(("running", "wanted", "says"), [
    ("1.34", "1.36", "'1.36' skips 1.35: the cluster runs 1.34"),
    ("1.36", "1.35", "'1.35' is older than 1.36, which the cluster runs"),
])
def test_skipping_a_minor_or_going_back_is_refused_before_anything_is_created(running, wanted, says):
    config = _config_at("dev", wanted)
    config["anythingllm:cluster"]["adminRoleArns"] = ["not-an-arn"]
    monitor = RecordingMonitor(FakeCloud())
    with pytest.raises(SettingsError) as error:
        run_stack(ROOT, "dev", config=config, clusters={cluster_name("anythingllm", "dev"): running},
                  monitor=monitor)
    assert f"cluster.kubernetesVersion: {says}" in str(error.value)
    # Reported with the file's own problems, all at once.
    assert "cluster.adminRoleArns[0]" in str(error.value)
    assert monitor.registrations == []


def test_a_cluster_of_another_stack_does_not_count():
    """Only the stack's own cluster (its name) says what runs: a first deploy next to another
    stack's older cluster is not an upgrade."""
    config = _config_at("dev", CURRENT)
    config["anythingllm:cluster"]["adminRoleArns"] = ["not-an-arn"]
    with pytest.raises(SettingsError) as error:
        _load_settings_against("dev", config, {cluster_name("anythingllm", "staging"): "1.34"})
    assert "kubernetesVersion" not in str(error.value)


# ---------------------------------------------------------------- add-ons and permissions


def test_every_preview_says_how_the_up_moves_each_add_on():
    """Unpinned add-ons follow EKS's default for the minor, which can also move without a change
    to the file: the preview names each move (the versions here are the fake account's)."""
    settings = _load_settings_against("prod", _config_at("prod", CURRENT),
                                      {cluster_name("anythingllm", "prod"): PREVIOUS})
    moves = [w for w in settings.warnings if w.startswith("cluster.addonVersions: ")]
    assert len(moves) == 7
    assert any(w.startswith(f"cluster.addonVersions: vpc-cni moves from v1.{minor(PREVIOUS)}.0-")
               and f"(EKS's default for {CURRENT}) in this `up`; to keep it, pin vpc-cni: " in w
               for w in moves)
    # Nothing to say when nothing moves.
    settings = _load_settings_against("prod", _config_at("prod", CURRENT),
                                      {cluster_name("anythingllm", "prod"): CURRENT})
    assert not any(w.startswith("cluster.addonVersions") for w in settings.warnings)


def test_a_vpc_cni_move_of_more_than_one_minor_is_refused():
    config = _config_at("prod", CURRENT)
    config["anythingllm:cluster"]["addonVersions"] = {"vpc-cni": "v1.21.0-eksbuild.1"}
    with pytest.raises(SettingsError) as error:
        _load_settings_against("prod", config, {cluster_name("anythingllm", "prod"): (
            CURRENT, {"vpc-cni": "v1.19.2-eksbuild.1"})})
    assert ("cluster.addonVersions.vpc-cni: v1.19.2-eksbuild.1 to v1.21.0-eksbuild.1 skips a minor: "
            "EKS updates vpc-cni one minor at a time; pin it to the newest v1.20.x first") in str(error.value)
    config["anythingllm:cluster"]["addonVersions"] = {"vpc-cni": "v1.20.4-eksbuild.2"}
    settings = _load_settings_against("prod", config, {cluster_name("anythingllm", "prod"): (
        CURRENT, {"vpc-cni": "v1.19.2-eksbuild.1"})})
    assert any("vpc-cni moves from v1.19.2-eksbuild.1 to v1.20.4-eksbuild.2 (as pinned)" in w
               for w in settings.warnings)


def test_a_preview_that_may_not_ask_eks_says_which_permission_it_needs(monkeypatch):
    from tools.fake_cloud import FakeCloud as Cloud

    answer = Cloud.call

    def denied(self, args):
        # An invoke the provider answers with a failure, as AWS's AccessDenied reaches Pulumi.
        if args.token == "aws:eks/getClusters:getClusters":
            return {}, [("", "AccessDeniedException: not authorized to perform eks:ListClusters")]
        return answer(self, args)

    monkeypatch.setattr(Cloud, "call", denied)
    config = _config_at("dev", CURRENT)
    config["anythingllm:cluster"]["adminRoleArns"] = ["not-an-arn"]
    with pytest.raises(SettingsError) as error:
        _load_settings_against("dev", config, {})
    message = str(error.value)
    assert ("cluster.kubernetesVersion: could not ask AWS which version cluster anythingllm-dev runs; "
            "the role running the preview needs eks:ListClusters and eks:DescribeCluster") in message
    assert "cluster.adminRoleArns[0]" in message
