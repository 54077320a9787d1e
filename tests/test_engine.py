"""The offline engine itself: what it records, masks and answers."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pytest

from tools.engine import RecordingMonitor, StackFileError, read_stack_config, run


class _Box(pulumi.ComponentResource):
    def __init__(self, name, opts=None):
        super().__init__("test:index:Box", name, None, opts)
        self.vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block="10.0.0.0/16", opts=pulumi.ResourceOptions(
            parent=self, protect=True, retain_on_delete=True, ignore_changes=["tags"],
            custom_timeouts=pulumi.CustomTimeouts(create="30m", delete="1h")))
        self.register_outputs({})


def _program():
    box = _Box("box")
    key = aws.kms.Key("key", description=pulumi.Output.secret("hidden"),
                      opts=pulumi.ResourceOptions(depends_on=[box]))
    aws.kms.Alias("alias", target_key_id=key.key_id,
                  opts=pulumi.ResourceOptions(deleted_with=key))
    pulumi.export("keyId", key.key_id)
    pulumi.export("secretThing", pulumi.Output.secret("s3cr3t"))
    pulumi.export("config", pulumi.Config("demo").get_object("settings"))


@pytest.fixture(scope="module")
def plan():
    return run(_program, project="demo", stack="unit",
               config={"aws:region": "eu-central-1", "demo:settings": {"answer": 42}})


def test_records_options(plan):
    vpc = plan.one("aws:ec2/vpc:Vpc")
    assert vpc.protect and vpc.retain_on_delete
    assert vpc.ignore_changes == ["tags"]
    assert vpc.custom_timeouts == {"create": "30m", "delete": "1h"}
    assert vpc.parent == plan.one("test:index:Box").urn
    alias = plan.one("aws:kms/alias:Alias")
    assert alias.deleted_with == plan.one("aws:kms/key:Key").urn


def test_masks_secrets_but_keeps_them_for_tests(plan):
    key = plan.one("aws:kms/key:Key")
    assert key.inputs["description"] == "[secret]"
    assert key.secret_paths == ["description"]
    assert key.raw_inputs["description"] == "hidden"
    assert plan.outputs["secretThing"] == "[secret]" and "secretThing" in plan.secret_outputs
    assert plan.raw_outputs["secretThing"] == "s3cr3t"
    assert "hidden" not in str(plan.to_json()) and "s3cr3t" not in str(plan.to_json())


def test_structured_config_reaches_the_program(plan):
    assert plan.outputs["config"] == {"answer": 42}


def test_dependency_queries(plan):
    key, vpc = plan.one("aws:kms/key:Key"), plan.one("aws:ec2/vpc:Vpc")
    alias = plan.one("aws:kms/alias:Alias")
    assert plan.waits_for(key, vpc)  # depends_on a component = on its children
    assert plan.waits_for(alias, key)  # through a property dependency
    assert not plan.waits_for(vpc, key)
    assert plan.deleted_before(vpc, plan.one("test:index:Box"))
    assert plan.waits_for(vpc, plan.one("test:index:Box"))  # a child registers after its parent


class _Holder(pulumi.ComponentResource):
    def __init__(self, name, opts=None):
        super().__init__("test:index:Holder", name, None, opts)
        aws.ec2.Vpc(f"{name}-child", cidr_block="10.1.0.0/16", opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})


def _ordering_program():
    slow = aws.ec2.Vpc("slow", cidr_block="10.0.0.0/16")
    _Holder("holder", opts=pulumi.ResourceOptions(depends_on=[slow]))
    owner = aws.ec2.Vpc("owner", cidr_block="10.2.0.0/16")
    aws.ec2.Vpc("slow-child", cidr_block="10.3.0.0/16", opts=pulumi.ResourceOptions(parent=owner))
    aws.ec2.Vpc("on-owner", cidr_block="10.4.0.0/16", opts=pulumi.ResourceOptions(depends_on=[owner]))


def test_ordering_model_matches_the_sdk():
    """The Python SDK, not our belief, decides what waits for what: registrations held back as
    real creates would be show (1) a component's children wait for the component's depends_on,
    and (2) depending on a custom resource does not wait for that resource's children. The
    plan's `waits_for` must say the same."""
    monitor = RecordingMonitor(None, delays={"slow": 0.3, "owner": 0.1, "slow-child": 0.6})
    recorded = run(_ordering_program, project="demo", stack="unit", config={}, monitor=monitor)
    order = monitor.events

    def finished_before_started(first: str, second: str) -> bool:
        return order.index(("end", first)) < order.index(("start", second))

    assert finished_before_started("slow", "holder-child")
    assert not finished_before_started("slow-child", "on-owner")
    by_name = {r.name: r for r in recorded.resources}
    assert recorded.waits_for(by_name["holder-child"], by_name["slow"])
    assert not recorded.waits_for(by_name["on-owner"], by_name["slow-child"])
    assert recorded.waits_for(by_name["slow-child"], by_name["owner"])
    # And the converse for every recorded pair: whatever the model says waits did wait.
    for resource in recorded.resources:
        for target in recorded.resources:
            if resource is not target and recorded.waits_for(resource, target):
                assert finished_before_started(target.name, resource.name), (resource.name, target.name)


def test_fake_outputs_are_deterministic():
    first = run(_program, project="demo", stack="unit", config={"aws:region": "eu-central-1"})
    second = run(_program, project="demo", stack="unit", config={"aws:region": "eu-central-1"})
    assert first.outputs["keyId"] == second.outputs["keyId"]


def test_unknown_invoke_fails_loudly():
    def program():
        aws.ec2.get_vpc_output(default=True).id.apply(print)

    with pytest.raises(Exception, match="no answer for invoke 'aws:ec2/getVpc:getVpc'"):
        run(program, project="demo", stack="unit", config={})


def test_warnings_the_program_logs_reach_the_plan():
    def program():
        pulumi.log.warn("app.imageTag: mutable")
        aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16")

    assert run(program, project="demo", stack="unit", config={}).warnings == ["app.imageTag: mutable"]


# --------------------------------------------------------------------------- stack files

def _stack_file(tmp_path, text: str):
    (tmp_path / "Pulumi.yaml").write_text("name: anythingllm\nruntime: python\n")
    (tmp_path / "Pulumi.s.yaml").write_text(text)
    return tmp_path


def test_a_key_given_twice_is_an_error_naming_both_lines(tmp_path):
    root = _stack_file(tmp_path, "config:\n  anythingllm:app:\n    replicas: 3\n"
                                 "  anythingllm:app:\n    replicas: 2\n")
    twice = r"line 4: key 'anythingllm:app' is given twice \(first on line 2\)"
    with pytest.raises(StackFileError, match=twice):
        read_stack_config(root, "s")


@pytest.mark.parametrize("text, message", [
    ("- config\n", "the document must be a mapping"),
    ("config: [a, b]\n", "`config:` must be a mapping"),
    ("config:\n  anythingLLM:gateway: {replicas: 3}\n",
     "'anythingLLM:gateway': the namespace is 'anythingllm'"),
    ("config: {a: [}\n", "not valid YAML"),
])
def test_stack_files_the_cli_would_refuse_or_misread(tmp_path, text, message):
    with pytest.raises(StackFileError, match=message):
        read_stack_config(_stack_file(tmp_path, text), "s")


def test_an_unquoted_date_stays_the_text_written(tmp_path):
    """The Pulumi CLI hands every scalar to the program as text: a date is not a date object."""
    root = _stack_file(tmp_path, "config:\n  anythingllm:expiresAt: 2026-12-31\n")
    config = read_stack_config(root, "s")
    assert config == {"anythingllm:expiresAt": "2026-12-31"}
