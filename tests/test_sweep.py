"""tools/aws_inventory.py and tools/sweep.py against moto's fake AWS account."""

from __future__ import annotations

import datetime as dt

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


LATER = dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)  # when the sweep looks


def _leftover_account(now=lambda: LATER) -> TagInventory:
    """Resources of a live stack, a destroyed staging stack, a destroyed prod and another
    project: node instances (one terminated), a file system with an access point, log groups (one
    tagged, one only named), a snapshot (only named), a topic, a role, a key pending deletion, a
    dashboard; and a stack of which only the log group EKS re-creates after a destroy is left."""
    clients = {s: boto3.client(s, region_name=REGION)
               for s in ("ec2", "eks", "logs", "rds", "efs", "sns", "kms", "iam", "cloudwatch")}
    ec2, eks, logs, rds, efs, sns, kms, iam, cloudwatch = clients.values()
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
    iam.create_role(RoleName="cluster-control-plane-1a2b3c", AssumeRolePolicyDocument="{}",
                    Tags=_tags("staging-gone"))
    iam.create_role(RoleName="someone-elses", AssumeRolePolicyDocument="{}")
    key = kms.create_key(Tags=[{"TagKey": t["Key"], "TagValue": t["Value"]} for t in _tags("staging-gone")])
    kms.schedule_key_deletion(KeyId=key["KeyMetadata"]["KeyId"], PendingWindowInDays=7)
    # A node that is gone already: the tagging API may still list it.
    gone = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": _tags("staging-gone")}])["Instances"][0]["InstanceId"]
    ec2.terminate_instances(InstanceIds=[gone])
    # Found by name only: a log group AWS created, a snapshot of the stack's database, the
    # dashboard, and a whole stack of which only EKS's re-created log group is left.
    logs.create_log_group(logGroupName="/aws/containerinsights/anythingllm-staging-gone/performance")
    logs.create_log_group(logGroupName="/aws/eks/anythingllm-staging-clean/cluster")
    rds.create_db_instance(DBInstanceIdentifier="anythingllm-staging-gone-postgres", Engine="postgres",
                           DBInstanceClass="db.t4g.medium", MasterUsername="master",
                           MasterUserPassword="p" * 20, AllocatedStorage=20)
    rds.create_db_snapshot(DBSnapshotIdentifier="anythingllm-staging-gone-postgres-by-hand",
                           DBInstanceIdentifier="anythingllm-staging-gone-postgres")
    cloudwatch.put_dashboard(DashboardName="anythingllm-staging-gone", DashboardBody="{}")
    # A PR stack being created: no cluster yet, an expiry still to come.
    sns.create_topic(Name="anythingllm-staging-pr-9-alarms", Tags=[
        *_tags("staging-pr-9"), {"Key": "anythingllm:expires-at", "Value": "2099-01-01T00:00:00Z"}])
    return TagInventory(tagging=boto3.client("resourcegroupstaggingapi", region_name=REGION),
                        eks=eks, logs=logs, rds=rds, ec2=ec2, kms=kms, iam=iam, cloudwatch=cloudwatch,
                        now=now)


def test_leftovers_are_what_the_project_tags_or_names_find_of_stacks_without_a_cluster(aws):
    found = _leftover_account().leftovers("anythingllm")
    by_stack = {}
    for item in found:
        by_stack.setdefault(item.stack, []).append(item)
    # Not the live stack, not another project. Found by tag under the stack's name, by name
    # under the cluster's (or the database's).
    assert set(by_stack) == {"staging-gone", "prod", "anythingllm-staging-gone",
                             "anythingllm-staging-gone-postgres", "anythingllm-staging-clean"}
    kinds = sorted(item.kind for item in by_stack["staging-gone"])
    assert kinds == ["ec2:instance", "elasticfilesystem:access-point", "elasticfilesystem:file-system",
                     "iam:role", "kms:key", "logs:log-group", "sns:topic"]
    assert [i.kind for i in by_stack["anythingllm-staging-gone"]] == ["cloudwatch:dashboard",
                                                                      "logs:log-group"]
    assert [i.kind for i in by_stack["anythingllm-staging-gone-postgres"]] == ["rds:snapshot"]
    # The log group EKS re-creates after a destroy is found although nothing else is left.
    assert [i.kind for i in by_stack["anythingllm-staging-clean"]] == ["logs:log-group"]
    assert "staging-pr-9" not in by_stack  # not expired: still being created (or destroyed)
    key = next(item for item in by_stack["staging-gone"] if item.kind == "kms:key")
    assert key.kept.startswith("pending deletion")
    assert not any(item.kept for item in by_stack["staging-gone"] if item.kind != "kms:key")
    # Prod keeps its log groups; a prod instance or file system left is a leftover like any.
    assert {(i.kind, bool(i.kept)) for i in by_stack["prod"]} == {
        ("logs:log-group", True), ("ec2:instance", False), ("elasticfilesystem:file-system", False),
        ("elasticfilesystem:access-point", False)}


def test_what_names_find_is_reported_once_older_than_a_create_or_destroy(aws):
    """A stack's log group exists minutes before its cluster: a sweep during an `up` must not
    call it left."""
    found = _leftover_account(now=lambda: dt.datetime.now(dt.UTC)).leftovers("anythingllm")
    assert not any(item.stack in ("anythingllm-staging-clean", "anythingllm-staging-gone-postgres")
                   for item in found)


def test_one_command_lists_leftovers_and_controller_orphans_and_fails_while_any_is_left(aws, capsys):
    assert main([], inventory=_account(), tags=_leftover_account()) == 1
    captured = capsys.readouterr()
    assert "left   ec2:instance" in captured.out and "(staging-gone)" in captured.out
    assert "kept   (prod keeps it when it is destroyed)" in captured.out
    assert "orphan load-balancer" in captured.out and GONE in captured.out
    assert "resources of destroyed stacks are left" in captured.err


def test_a_clean_account_passes(aws):
    assert main(["--delete"], inventory=_account(), tags=TagInventory(
        **{name: boto3.client(service, region_name=REGION) for name, service in (
            ("tagging", "resourcegroupstaggingapi"), ("eks", "eks"), ("logs", "logs"), ("rds", "rds"),
            ("ec2", "ec2"), ("kms", "kms"), ("iam", "iam"), ("cloudwatch", "cloudwatch"))})) == 0
