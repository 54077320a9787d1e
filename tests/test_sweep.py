"""tools/aws_inventory.py and tools/sweep.py against moto's fake AWS account."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from components import alb_controller_policy
from components.ingress import IAM_POLICY_FILE
from tools.aws_inventory import CLUSTER_TAG, ControllerInventory
from tools.leftovers import TagInventory
from tools.sweep import main, sweep

REGION = "us-east-1"
LIVE, GONE, OTHER_TEAM = "anythingllm-staging-live", "anythingllm-staging-gone", "payments-prod"


@pytest.fixture
def aws(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield


def _account() -> ControllerInventory:
    """An account with controller leftovers of a live cluster, a deleted one and another team's."""
    ec2, elbv2, eks = (boto3.client(service, region_name=REGION) for service in ("ec2", "elbv2", "eks"))
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{zone}")
               ["Subnet"]["SubnetId"] for i, zone in enumerate("ab")]
    eks.create_cluster(name=LIVE, roleArn="arn:aws:iam::123456789012:role/eks",
                       resourcesVpcConfig={"subnetIds": subnets})
    for cluster in (LIVE, GONE, OTHER_TEAM):
        tags = [{"Key": CLUSTER_TAG, "Value": cluster},
                {"Key": "ingress.k8s.aws/stack", "Value": "anythingllm/anythingllm"}]
        group = ec2.create_security_group(
            GroupName=f"k8s-{cluster}", Description="managed LoadBalancer securityGroup", VpcId=vpc,
            TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}])["GroupId"]
        elbv2.create_load_balancer(Name=f"lb-{cluster}"[:32], Subnets=subnets, SecurityGroups=[group],
                                   Scheme="internet-facing", Type="application", Tags=tags)
        elbv2.create_target_group(Name=f"tg-{cluster}"[:32], Protocol="HTTP", Port=3001, VpcId=vpc,
                                  TargetType="ip", Tags=tags)
    # Not the controller's: no cluster tag.
    elbv2.create_target_group(Name="hand-made", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip")
    return ControllerInventory(elbv2=elbv2, ec2=ec2, eks=eks)


def test_the_cluster_tag_is_the_one_the_controller_policy_scopes_by():
    assert f"aws:ResourceTag/{CLUSTER_TAG}" in IAM_POLICY_FILE.read_text()
    assert alb_controller_policy.CLUSTER_TAG == CLUSTER_TAG


def test_inventory_lists_by_cluster_tag(aws):
    inventory = _account()
    assert {(r.kind, r.cluster) for r in inventory.resources(GONE)} == {
        ("load-balancer", GONE), ("target-group", GONE), ("security-group", GONE)}
    assert "hand-made" not in {r.name for r in inventory.resources()}
    assert inventory.existing_clusters() == {LIVE}


def test_sweep_lists_only_orphans_of_this_project_and_deletes_with_the_flag(aws):
    inventory = _account()
    listed = sweep(inventory, cluster_prefix="anythingllm-", delete=False, log=lambda _: None)
    assert [(r.kind, r.cluster) for r in listed] == [
        ("load-balancer", GONE), ("target-group", GONE), ("security-group", GONE)]
    assert {r.cluster for r in inventory.resources()} == {LIVE, GONE, OTHER_TEAM}  # nothing deleted

    deleted = sweep(inventory, cluster_prefix="anythingllm-", delete=True, log=lambda _: None)
    assert deleted == listed
    assert {r.cluster for r in inventory.resources()} == {LIVE, OTHER_TEAM}


def test_sweep_keeps_load_balancers_with_deletion_protection(aws):
    inventory = _account()
    balancer = next(r for r in inventory.resources(GONE) if r.kind == "load-balancer")
    inventory.elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=balancer.identifier,
        Attributes=[{"Key": "deletion_protection.enabled", "Value": "true"}])
    messages: list[str] = []
    deleted = sweep(inventory, cluster_prefix="anythingllm-", delete=True, log=messages.append)
    assert balancer not in deleted
    assert any("deletion protection is on" in m for m in messages)


def test_sweep_refuses_an_empty_prefix(aws):
    with pytest.raises(SystemExit):
        main(["--cluster-prefix", ""], inventory=_account())


def test_wait_until_gone_returns_once_the_alb_is_deleted_and_times_out_otherwise(aws):
    inventory = _account()
    balancer = next(r for r in inventory.resources(GONE) if r.kind == "load-balancer")
    sleeps: list[float] = []

    def controller_deletes_it(seconds):
        sleeps.append(seconds)
        inventory.elbv2.delete_load_balancer(LoadBalancerArn=balancer.identifier)

    inventory.wait_until_gone(GONE, sleep=controller_deletes_it)
    assert sleeps == [15]

    clock = iter(range(0, 10_000, 100))
    with pytest.raises(TimeoutError, match="lb-anythingllm-staging-live"):
        inventory.wait_until_gone(LIVE, timeout_seconds=300, sleep=lambda _: None, clock=lambda: next(clock))


# ---------------------------------------------------------------- everything else a stack left


def _tags(stack: str, environment: str = "staging", project: str = "anythingllm") -> list[dict]:
    return [{"Key": "anythingllm:project", "Value": project}, {"Key": "anythingllm:stack", "Value": stack},
            {"Key": "anythingllm:environment", "Value": environment}]


def _leftover_account() -> TagInventory:
    """Resources of a live stack, a destroyed staging stack, a destroyed prod and another
    project: node instances, a file system with an access point, log groups (one tagged, one
    only named), a snapshot (only named), a topic."""
    clients = {s: boto3.client(s, region_name=REGION) for s in ("ec2", "eks", "logs", "rds", "efs", "sns")}
    ec2, eks, logs, rds, efs, sns = clients.values()
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{zone}")
               ["Subnet"]["SubnetId"] for i, zone in enumerate("ab")]
    if "anythingllm-staging-live" not in eks.list_clusters()["clusters"]:
        eks.create_cluster(name="anythingllm-staging-live", roleArn="arn:aws:iam::123456789012:role/eks",
                           resourcesVpcConfig={"subnetIds": subnets})
    image = ec2.describe_images()["Images"][0]["ImageId"]
    for stack, environment, project in (("staging-live", "staging", "anythingllm"),
                                        ("staging-gone", "staging", "anythingllm"),
                                        ("prod", "prod", "anythingllm"),
                                        ("staging-gone", "staging", "payments")):
        tags = _tags(stack, environment, project)
        ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                          TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
        if project == "anythingllm":
            file_system = efs.create_file_system(CreationToken=f"{project}-{stack}",
                                                 Tags=tags)["FileSystemId"]
            efs.create_access_point(FileSystemId=file_system, Tags=tags)
            logs.create_log_group(logGroupName=f"/aws/eks/anythingllm-{stack}/cluster",
                                  tags={t["Key"]: t["Value"] for t in tags})
    sns.create_topic(Name="anythingllm-staging-gone-alarms", Tags=_tags("staging-gone"))
    # Found by name only: a log group AWS created and a snapshot of the stack's database.
    logs.create_log_group(logGroupName="/aws/containerinsights/anythingllm-staging-gone/performance")
    rds.create_db_instance(DBInstanceIdentifier="anythingllm-staging-gone-postgres", Engine="postgres",
                           DBInstanceClass="db.t4g.medium", MasterUsername="master",
                           MasterUserPassword="p" * 20, AllocatedStorage=20)
    rds.create_db_snapshot(DBSnapshotIdentifier="anythingllm-staging-gone-postgres-by-hand",
                           DBInstanceIdentifier="anythingllm-staging-gone-postgres")
    return TagInventory(tagging=boto3.client("resourcegroupstaggingapi", region_name=REGION),
                        eks=eks, logs=logs, rds=rds)


def test_leftovers_are_what_the_project_tags_or_names_find_of_stacks_without_a_cluster(aws):
    found = _leftover_account().leftovers("anythingllm")
    by_stack = {}
    for item in found:
        by_stack.setdefault(item.stack, []).append(item)
    assert set(by_stack) == {"staging-gone", "prod"}  # not the live stack, not another project
    kinds = sorted(item.kind for item in by_stack["staging-gone"])
    assert kinds == ["ec2:instance", "elasticfilesystem:access-point", "elasticfilesystem:file-system",
                     "logs:log-group", "logs:log-group", "rds:snapshot", "sns:topic"]
    assert not any(item.kept for item in by_stack["staging-gone"])
    assert all(item.kept == "prod keeps it when it is destroyed" for item in by_stack["prod"])
    names = {item.arn.rsplit(":", 1)[-1] for item in by_stack["staging-gone"]}
    assert "/aws/containerinsights/anythingllm-staging-gone/performance" in names
    assert "anythingllm-staging-gone-postgres-by-hand" in names


def test_one_command_lists_leftovers_and_controller_orphans(aws, capsys):
    main([], inventory=_account(), tags=_leftover_account())
    out = capsys.readouterr().out
    assert "left   ec2:instance" in out and "(stack staging-gone)" in out
    assert "kept   (prod keeps it when it is destroyed)" in out
    assert "orphan load-balancer" in out and GONE in out
