"""`make timeline`: predicted deploy/destroy critical paths from the graph and the durations table."""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import pulumi
import pulumi_kubernetes as k8s
import pytest

from tests.conftest import STACKS
from tools import timeline
from tools.engine import Plan, run
from tools.timeline import (
    PODS_READY,
    create_schedule,
    delete_duration,
    delta,
    destroy,
    load_durations,
    main,
    predict,
    summary,
    table_problems,
    to_json,
)

TABLE = load_durations()
FAST, SLOW, SLOWER = "test:index:Fast", "test:index:Slow", "test:index:Slower"


def _table(**seconds: tuple[float, float]) -> dict:
    """The real table's rules and default, with only the given test types (create, delete)."""
    table = copy.deepcopy(TABLE)
    table["types"] = {token: {"create_seconds": create, "delete_seconds": delete,
                              "source": "estimate: a figure for the test"}
                      for token, (create, delete) in seconds.items()}
    return table


HAND_TABLE = _table(**{FAST: (10, 10), SLOW: (100, 100), SLOWER: (1000, 1000)})


class _Thing(pulumi.CustomResource):
    def __init__(self, type_token: str, name: str, props: dict | None = None, opts=None):
        super().__init__(type_token, name, props or {}, opts)


class _Holder(pulumi.ComponentResource):
    def __init__(self, name: str, opts=None):
        super().__init__("test:index:Holder", name, None, opts)
        _Thing(FAST, f"{name}-child", opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})


def _record(program) -> Plan:
    return run(program, project="demo", stack="unit", config={})


def _by_name(plan: Plan, steps: dict) -> dict:
    return {r.name: steps[r.urn] for r in plan.resources}


# --------------------------------------------------------------------------- committed stacks


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_gets_a_valid_deploy_chain(stack_plans, stack):
    plan = stack_plans[stack]
    deploy = predict(plan, TABLE).deploy
    index = plan.by_urn()
    assert deploy.total > 0 and deploy.path
    assert deploy.path[0].start == 0 and deploy.path[-1].finish == deploy.total
    for before, after in zip(deploy.path, deploy.path[1:], strict=False):
        assert after.start == before.finish, (before.name, after.name)
        # A creation prerequisite, through components; or a Service waiting for its pods.
        waits_for_pods = after.after == PODS_READY and after.type == "kubernetes:core/v1:Service"
        assert plan.waits_for(index[after.urn], index[before.urn]) or waits_for_pods, (before, after)


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_gets_destroy_waves_in_deletion_order(stack_plans, stack):
    plan = stack_plans[stack]
    timeline = predict(plan, TABLE).destroy
    assert timeline.total > 0
    assert timeline.total == sum(wave.seconds for wave in timeline.waves)
    wave_of = {urn: wave.number for wave in timeline.waves for urn in wave.members}
    assert sorted(wave_of) == sorted(r.urn for r in plan.resources)  # each in exactly one wave
    index = plan.by_urn()
    for resource in plan.resources:
        for target in plan.deletion_prerequisites(resource):
            if target in index:  # deleted only after `resource` is gone: in a later wave
                assert wave_of[target] > wave_of[resource.urn], (resource.name, index[target].name)
    for earlier, later in zip(timeline.waves, timeline.waves[1:], strict=False):
        assert later.start == earlier.start + earlier.seconds


def test_every_type_is_in_the_table_or_listed_for_the_default(stack_plans):
    for stack, plan in stack_plans.items():
        assert predict(plan, TABLE).unlisted_types == [], stack
    assert table_problems(TABLE) == []


def test_every_table_entry_says_where_its_figure_comes_from():
    broken = copy.deepcopy(TABLE)
    broken["types"]["aws:ec2/vpc:Vpc"]["source"] = "estimate"  # no reason given
    del broken["images"]["docker.io/vllm/vllm-openai"]["source"]
    broken["types"]["aws:eks/cluster:Cluster"]["delete_source"] = "my guess"
    problems = table_problems(broken)
    assert len(problems) == 3, problems
    assert any(p.startswith("aws:ec2/vpc:Vpc: source") for p in problems)
    assert any(p.startswith("docker.io/vllm/vllm-openai: source") for p in problems)


def test_inputs_choose_the_variant(stack_plans):
    """Multi-AZ RDS takes longer than single-AZ, read from the recorded `multiAz` input."""
    dev = create_schedule(stack_plans["dev"], TABLE)
    prod = create_schedule(stack_plans["prod"], TABLE)
    dev_db = dev[stack_plans["dev"].one("aws:rds/instance:Instance").urn].duration
    prod_db = prod[stack_plans["prod"].one("aws:rds/instance:Instance").urn].duration
    assert dev_db.seconds == 360 and dev_db.basis == "type"
    assert prod_db.seconds == 840 and prod_db.basis == "multiAz=true"


# --------------------------------------------------------------------------- hand-built programs


def _ordering_program():
    slow = _Thing(SLOW, "slow")
    holder = _Holder("holder", opts=pulumi.ResourceOptions(depends_on=[slow]))
    owner = _Thing(FAST, "owner")
    _Thing(SLOWER, "slow-child", opts=pulumi.ResourceOptions(parent=owner))
    on_owner = _Thing(FAST, "on-owner", opts=pulumi.ResourceOptions(depends_on=[owner]))
    _Thing(SLOW, "after-holder", opts=pulumi.ResourceOptions(depends_on=[holder]))
    _Thing(SLOW, "after-on-owner", opts=pulumi.ResourceOptions(depends_on=[on_owner]))


def test_deploy_matches_a_hand_computation():
    """holder's child waits for the holder's depends_on (slow); on-owner does not wait for owner's
    slow child. By hand: slow 0-100, holder ready at 100, holder-child 100-110, after-holder
    110-210 (depends on the component = its child); owner 0-10, slow-child 10-1010, on-owner 10-20,
    after-on-owner 20-120. Total 1010, through owner and its slow child."""
    plan = _record(_ordering_program)
    steps = _by_name(plan, create_schedule(plan, HAND_TABLE))
    expected = {"slow": (0, 100), "holder": (100, 100), "holder-child": (100, 110),
                "after-holder": (110, 210), "owner": (0, 10), "slow-child": (10, 1010),
                "on-owner": (10, 20), "after-on-owner": (20, 120)}
    assert {name: (step.start, step.finish) for name, step in steps.items()} == expected
    timeline = predict(plan, HAND_TABLE).deploy
    assert timeline.total == 1010
    assert [step.name for step in timeline.path] == ["owner", "slow-child"]


def _waves_program():
    a = _Thing(SLOW, "a")
    b = _Thing(FAST, "b", opts=pulumi.ResourceOptions(depends_on=[a]))
    c = _Thing(SLOWER, "c", opts=pulumi.ResourceOptions(depends_on=[b]))
    _Thing(FAST, "d")
    _Thing(SLOW, "e", opts=pulumi.ResourceOptions(depends_on=[a]))
    _Holder("h")
    _Thing(SLOWER, "f", opts=pulumi.ResourceOptions(deleted_with=a))
    _Thing(SLOWER, "g", opts=pulumi.ResourceOptions(depends_on=[c], retain_on_delete=True))


def test_destroy_waves_match_a_hand_computation():
    """Heights: a, d, h 0; b, e, h-child, f (deletedWith a) 1; c 2; g 3. Waves run from the top:
    [g] 0 s (retained), [c] 1000 s, [b, e, f, h-child] 100 s (f is deleted with a: 0 s),
    [a, d, h] 100 s. Total 1200 s."""
    plan = _record(_waves_program)
    timeline = destroy(plan, HAND_TABLE)
    names = {r.urn: r.name for r in plan.resources}
    waves = [(sorted(names[urn] for urn in wave.members), wave.seconds, wave.longest.name)
             for wave in timeline.waves]
    assert waves == [(["g"], 0, "g"), (["c"], 1000, "c"),
                     (["b", "e", "f", "h-child"], 100, "e"), (["a", "d", "h"], 100, "a")]
    assert timeline.total == 1200
    assert [step.name for step in timeline.path] == ["g", "c", "e", "a"]
    assert [step.start for step in timeline.path] == [0, 0, 1000, 1100]


def _kubernetes_program(grace: int | None, propagation: str | None = None,
                        image: str = "docker.io/vllm/vllm-openai:v0.1.0", pre_stop: int | None = None):
    def program():
        labels = {"app": "model"}
        annotations = {"pulumi.com/deletionPropagationPolicy": propagation} if propagation else None
        pod = k8s.core.v1.PodSpecArgs(
            containers=[k8s.core.v1.ContainerArgs(
                name="server", image=image,
                lifecycle={"pre_stop": {"sleep": {"seconds": pre_stop}}} if pre_stop else None)],
            node_selector={"pool": "gpu"}, termination_grace_period_seconds=grace)
        k8s.apps.v1.Deployment("model", metadata={"namespace": "ml", "annotations": annotations},
                                            spec=k8s.apps.v1.DeploymentSpecArgs(
            selector={"match_labels": labels},
            template=k8s.core.v1.PodTemplateSpecArgs(metadata={"labels": labels}, spec=pod)))
        _Thing("aws:eks/nodeGroup:NodeGroup", "gpu",
               {"labels": {"pool": "gpu", "other": "x"}, "scalingConfig": {"desiredSize": 0}})
        k8s.core.v1.Service("model", metadata={"namespace": "ml"},
                            spec={"selector": labels, "ports": [{"port": 80}]})
    return program


def test_deployment_deletes_in_its_grace_period():
    """AnythingLLM's PID 1 is bash, which ignores SIGTERM: its pods live their whole grace."""
    for grace, expected in ((345, 345), (None, 30)):
        plan = _record(_kubernetes_program(grace, image="docker.io/mintplexlabs/anythingllm:pg-1.16.0"))
        deployment = plan.one("kubernetes:apps/v1:Deployment")
        assert deployment.inputs["spec"]["template"]["spec"].get("terminationGracePeriodSeconds") == grace
        assert delete_duration(deployment, TABLE, plan.by_urn()).seconds == expected
    background = _record(_kubernetes_program(345, propagation="background"))
    deployment = background.one("kubernetes:apps/v1:Deployment")
    assert delete_duration(deployment, TABLE, background.by_urn()).seconds == \
        TABLE["types"]["kubernetes:apps/v1:Deployment"]["delete_seconds"]


def test_images_that_exit_on_sigterm_stop_after_their_pre_stop_hook():
    """vLLM's server exits on SIGTERM: preStop plus its exit time, never more than the grace."""
    stops = TABLE["images"]["docker.io/vllm/vllm-openai"]["stops_after_sigterm_seconds"]
    for grace, pre_stop, expected in ((600, None, stops), (600, 45, 45 + stops), (20, 45, 20)):
        plan = _record(_kubernetes_program(grace, pre_stop=pre_stop))
        deployment = plan.one("kubernetes:apps/v1:Deployment")
        assert delete_duration(deployment, TABLE, plan.by_urn()).seconds == expected


def test_workload_rules_image_scale_up_and_service_wait():
    """The vLLM image's figure plus a scale-up (its only node group runs 0 nodes); the Service
    selecting its pods finishes after them, though nothing in the graph says so."""
    plan = _record(_kubernetes_program(345))
    steps = create_schedule(plan, TABLE).values()
    image = TABLE["images"]["docker.io/vllm/vllm-openai"]["ready_seconds"]
    scale_up = TABLE["rules"]["node_scale_up"]["seconds"]
    service_seconds = TABLE["types"]["kubernetes:core/v1:Service"]["create_seconds"]
    model = next(step for step in steps if step.type == "kubernetes:apps/v1:Deployment")
    assert model.finish == image + scale_up
    assert "scale-up of gpu from 0" in model.duration.basis
    service = next(step for step in steps if step.type == "kubernetes:core/v1:Service")
    assert (service.start, service.finish, service.after) == (model.finish, model.finish + service_seconds,
                                                               PODS_READY)
    last_two = [step.type for step in predict(plan, TABLE).deploy.path[-2:]]
    assert last_two == ["kubernetes:apps/v1:Deployment", "kubernetes:core/v1:Service"]


# --------------------------------------------------------------------------- delta and CLI


def test_delta_is_zero_against_itself_and_grows_with_a_slow_step(stack_plans):
    plan = stack_plans["dev"]
    before = predict(plan, TABLE)
    assert delta(before, before) == {"deploy": 0, "destroy": 0}
    assert delta(to_json(before), before) == {"deploy": 0, "destroy": 0}  # the --base form
    last = plan.by_urn()[before.deploy.path[-1].urn]
    database = replace(last, urn=f"{last.urn}-db", name="extra-db", type="aws:rds/instance:Instance",
                       custom=True, parent=None, provider=None, inputs={"multiAz": True},
                       dependencies=[last.urn], property_dependencies={})
    after = predict(replace(plan, resources=[*plan.resources, database]), TABLE)
    change = delta(before, after)
    assert change["deploy"] == 840  # Multi-AZ RDS after the path's last step
    assert change["destroy"] >= 0


def test_cli_prints_both_totals_and_the_path(capsys, tmp_path, monkeypatch, stack_plans):
    assert main(["dev"]) == 0
    out = capsys.readouterr().out
    assert "Deploy (`pulumi up` on an empty stack): " in out and "Destroy (`pulumi destroy`): " in out
    assert "aws:eks/cluster:Cluster cluster" in out and "Sources:" in out
    assert main(["nonexistent"]) == 2
    assert "no stack file Pulumi.nonexistent.yaml" in capsys.readouterr().err
    # The same recorded plan again, without running the program twice more.
    monkeypatch.setattr(timeline, "run_stack", lambda root, stack: stack_plans[stack])
    assert main(["dev", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["deploy"]["total_seconds"] > 0 and data["destroy"]["waves"]
    base = tmp_path / "base.json"
    base.write_text(json.dumps(data))
    assert main(["dev", "--base", str(base)]) == 0
    assert "Change against the base: deploy +0.0 min, destroy +0.0 min" in capsys.readouterr().out


def test_summary_line_for_pull_requests(stack_plans):
    """What the pull-request comment shows: both totals and, against a base, the change."""
    prediction = predict(stack_plans["dev"], TABLE)
    base = to_json(prediction)
    base["deploy"]["total_seconds"] -= 120
    line = summary(prediction, base)
    assert line.startswith("Predicted `dev` timeline (make timeline): deploy **")
    assert "(+2.0 min)" in line and "(+0.0 min)" in line
    assert "(" not in summary(prediction).split(":", 1)[1]


def test_a_model_on_a_karpenter_pool_waits_for_a_node_launch(stack_plans):
    """A NodePool has no node until a pod is pending: dev's models wait for one launch on top of
    the image and model load."""
    plan = stack_plans["dev"]
    steps = create_schedule(plan, TABLE)
    launch = TABLE["rules"]["karpenter_launch"]["seconds"]
    image = TABLE["images"]["docker.io/vllm/vllm-openai"]["ready_seconds"]
    models = [step for step in steps.values() if step.type == "kubernetes:apps/v1:StatefulSet"
              and "a node of cluster-karpenter-inference" in step.duration.basis]
    assert len(models) == 2
    assert all(step.duration.seconds == image + launch for step in models)
