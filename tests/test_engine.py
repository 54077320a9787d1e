"""The offline engine itself: what it records, masks and answers."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pytest

from tools.engine import run


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
    assert not plan.waits_for(vpc, plan.one("test:index:Box"))


def test_fake_outputs_are_deterministic():
    first = run(_program, project="demo", stack="unit", config={"aws:region": "eu-central-1"})
    second = run(_program, project="demo", stack="unit", config={"aws:region": "eu-central-1"})
    assert first.outputs["keyId"] == second.outputs["keyId"]


def test_unknown_invoke_fails_loudly():
    def program():
        aws.ec2.get_vpc_output(default=True).id.apply(print)

    with pytest.raises(Exception, match="no answer for invoke 'aws:ec2/getVpc:getVpc'"):
        run(program, project="demo", stack="unit", config={})
