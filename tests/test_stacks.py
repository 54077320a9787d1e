"""Every Pulumi.<stack>.yaml through the offline engine: invariants per environment."""

from __future__ import annotations

import time

import pytest

from tests.conftest import ROOT, STACKS
from tools.engine import run_stack

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
SUBNET = "aws:ec2/subnet:Subnet"
CLUSTER = "aws:eks/cluster:Cluster"
RELEASE = "kubernetes:helm.sh/v3:Release"


def test_stack_files_cover_the_three_environments():
    assert {"dev", "prod", "staging"} <= set(STACKS)


@pytest.mark.parametrize("stack", STACKS)
def test_gpu_groups_are_tainted_and_labelled(stack_plans, stack):
    gpu_groups = [g for g in stack_plans[stack].of_type(NODE_GROUP) if "-gpu-" in g.name]
    assert gpu_groups, "every stack declares at least one GPU node group"
    for group in gpu_groups:
        inputs = group.inputs
        assert inputs["amiType"] in {"AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA"}
        assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"} in inputs["taints"]
        assert inputs["labels"]["nvidia.com/gpu.present"] == "true"
        assert inputs["labels"]["anythingllm.io/gpu-node-group"]


@pytest.mark.parametrize("stack", STACKS)
def test_no_node_group_in_public_subnets(stack_plans, stack):
    plan = stack_plans[stack]
    public = {s.urn for s in plan.of_type(SUBNET)
              if "kubernetes.io/role/elb" in s.inputs["tags"]}
    assert public
    for group in plan.of_type(NODE_GROUP):
        assert not set(group.property_dependencies["subnetIds"]) & public, group.name


@pytest.mark.parametrize("stack", STACKS)
def test_every_kubernetes_resource_uses_the_cluster_provider(stack_plans, stack):
    plan = stack_plans[stack]
    provider = plan.one("pulumi:providers:kubernetes")
    assert plan.waits_for(provider, plan.one(CLUSTER))
    kubernetes = [r for r in plan.resources if r.custom and r.type.startswith("kubernetes:")]
    assert kubernetes
    for resource in kubernetes:
        assert resource.provider == provider.urn, resource.name


@pytest.mark.parametrize("stack", STACKS)
def test_cluster_addons_wait_for_the_cluster_and_go_before_it(stack_plans, stack):
    plan = stack_plans[stack]
    cluster = plan.one(CLUSTER)
    releases = plan.of_type(RELEASE)
    assert {r.inputs["chart"] for r in releases} >= {"cluster-autoscaler"}
    for release in releases:
        assert plan.waits_for(release, cluster)
        assert plan.deleted_before(release, cluster)
        for group in plan.of_type(NODE_GROUP):
            # On destroy, Helm releases go while nodes still run their pods' finalizers.
            assert plan.deleted_before(release, group)
    assert not plan.waits_for(cluster, releases[0])


@pytest.mark.parametrize("stack", STACKS)
def test_every_taggable_aws_resource_carries_the_common_tags(stack_plans, stack):
    plan = stack_plans[stack]
    tagged = [r for r in plan.resources if r.type.startswith("aws:") and "tags" in r.inputs]
    assert len(tagged) > 20
    for resource in tagged:
        assert resource.inputs["tags"]["anythingllm:stack"] == stack, resource.name
        assert resource.inputs["tags"]["managed-by"] == "pulumi"


@pytest.mark.parametrize("stack", STACKS)
def test_kubeconfig_output_is_secret(stack_plans, stack):
    plan = stack_plans[stack]
    assert "kubeconfig" in plan.secret_outputs
    assert plan.outputs["kubeconfig"] == "[secret]"
    assert plan.raw_outputs["kubeconfig"].startswith("{")


def test_prod_is_multi_az_with_nat_per_az_and_protected(stack_plans):
    plan = stack_plans["prod"]
    private = [s for s in plan.of_type(SUBNET)
               if "kubernetes.io/role/internal-elb" in s.inputs["tags"]]
    zones = {s.inputs["availabilityZone"] for s in private}
    assert len(zones) >= 2
    nats = plan.of_type("aws:ec2/natGateway:NatGateway")
    assert len(nats) == len(zones)
    assert plan.one(CLUSTER).inputs["deletionProtection"] is True
    keys = plan.of_type("aws:kms/key:Key")
    assert len(keys) == 5  # EKS secrets, EFS, RDS, ElastiCache, alarm topic
    for key in keys:
        assert key.inputs["deletionWindowInDays"] == 30, key.name
        assert key.inputs["enableKeyRotation"] is True, key.name
        assert key.protect, key.name
    provider = plan.one("pulumi:providers:kubernetes")
    assert provider.inputs.get("deleteUnreachable") == "false"


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_dev_and_staging_are_cheap_and_destroyable(stack_plans, stack):
    plan = stack_plans[stack]
    assert len(plan.of_type("aws:ec2/natGateway:NatGateway")) == 1
    assert plan.one(CLUSTER).inputs["deletionProtection"] is False
    assert not [r.name for r in plan.resources if r.protect]
    for group in plan.of_type(NODE_GROUP):
        if "-gpu-" in group.name:
            assert group.inputs["scalingConfig"]["minSize"] == 0
            assert group.inputs["capacityType"] == "SPOT"


def test_prod_preview_records_in_under_ten_seconds():
    started = time.perf_counter()
    plan = run_stack(ROOT, "prod")
    assert time.perf_counter() - started < 10
    assert len(plan.resources) > 50


@pytest.mark.parametrize("stack", STACKS)
def test_destroy_order_from_the_dependency_graph(stack_plans, stack):
    """What `pulumi destroy` (and tools/staging.py) relies on: the Ingress (and with it the ALB)
    goes while the controller runs, workloads go before the nodes they run on, and every
    Kubernetes object goes before the cluster."""
    plan = stack_plans[stack]
    cluster = plan.one("aws:eks/cluster:Cluster")
    node_groups = plan.of_type("aws:eks/nodeGroup:NodeGroup")
    controller = next(r for r in plan.of_type("kubernetes:helm.sh/v3:Release")
                      if r.inputs["name"] == "aws-load-balancer-controller")
    ingress = plan.one("kubernetes:networking.k8s.io/v1:Ingress")
    assert plan.deleted_before(ingress, controller)
    workloads = [*plan.of_type("kubernetes:apps/v1:Deployment"), *plan.of_type("kubernetes:batch/v1:Job"),
                 *plan.of_type("kubernetes:helm.sh/v3:Release")]
    assert len(node_groups) >= 2 and len(workloads) >= 6
    for workload in workloads:
        for group in node_groups:
            assert plan.deleted_before(workload, group), (workload.name, group.name)
    kubernetes = [r for r in plan.resources if r.custom and r.type.startswith("kubernetes:")
                  and r.type != "pulumi:providers:kubernetes"]
    for resource in kubernetes:
        assert plan.deleted_before(resource, cluster), resource.name
    # And the engine sees no edge the other way round (a cycle would make both true).
    assert not plan.deleted_before(cluster, ingress)
