"""Every Pulumi.<stack>.yaml through the offline engine: invariants per environment."""

from __future__ import annotations

import time

import pytest

from tests.conftest import ROOT, STACKS, helm_release, stack_settings
from tools.engine import run_stack

NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
SUBNET = "aws:ec2/subnet:Subnet"
CLUSTER = "aws:eks/cluster:Cluster"
RELEASE = "kubernetes:helm.sh/v3:Release"


def test_stack_files_cover_the_three_environments():
    assert {"dev", "prod", "staging"} <= set(STACKS)


@pytest.mark.parametrize("stack", STACKS)
def test_gpu_groups_are_tainted_and_labelled(stack_plans, stack):
    """Managed groups (EKS API spelling) and Karpenter NodePools (Kubernetes spelling) carry the
    same GPU taint and labels, so a model's pods select and tolerate either unchanged."""
    plan = stack_plans[stack]
    settings = stack_settings(stack)
    assert settings.cluster.gpu_node_groups, "every stack declares at least one GPU node group"
    for group in settings.cluster.gpu_node_groups:
        if group.engine == "managed":
            inputs = plan.one(NODE_GROUP, f"cluster-gpu-{group.name}").inputs
            assert inputs["amiType"] in {"AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA"}
            assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"} in inputs["taints"]
            labels = inputs["labels"]
        else:
            template = plan.one(NODE_POOL, f"cluster-karpenter-{group.name}").inputs["spec"]["template"]
            assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"} in (
                template["spec"]["taints"])
            labels = template["metadata"]["labels"]
        assert labels["nvidia.com/gpu.present"] == "true"
        assert labels["anythingllm.io/gpu-node-group"] == group.name


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
        # On destroy, Helm releases go while the system nodes still run their controllers.
        assert plan.deleted_before(release, plan.one(NODE_GROUP, "cluster-system"))
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
    # EKS secrets, EFS, RDS, ElastiCache, alarm topic, log groups, scaling-alerts topic, the
    # backup vault and the backup alerts' topic
    assert len(keys) == 9
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


def _node_group_of(workload) -> str:
    """The capacity a workload's pods run on: a model server's GPU group (its pod template's
    group label), the system group otherwise."""
    template = workload.inputs.get("spec", {}).get("template", {})
    gpu_group = template.get("metadata", {}).get("labels", {}).get("anythingllm.io/gpu-node-group")
    return gpu_group or "system"


def _capacity(plan) -> dict:
    """Group name -> what provides its nodes: an EKS node group, or a Karpenter NodePool."""
    capacity = {group.name.removeprefix("cluster-gpu-").removeprefix("cluster-"): group
                for group in plan.of_type(NODE_GROUP)}
    capacity.update({pool.name.removeprefix("cluster-karpenter-"): pool
                     for pool in plan.of_type(NODE_POOL)})
    return capacity


@pytest.mark.parametrize("stack", STACKS)
def test_workloads_wait_only_for_the_capacity_they_run_on(stack_plans, stack):
    """A GPU capacity shortage (common for g6e and p5) must stall only the models of that group:
    DNS, the controllers and every CPU workload wait for the system group alone, and each model
    waits for its own GPU group or NodePool, not for the others."""
    plan = stack_plans[stack]
    capacity = _capacity(plan)
    gpu_groups = [name for name in capacity if name != "system"]
    workloads = [*plan.of_type("kubernetes:apps/v1:Deployment"),
                 *plan.of_type("kubernetes:apps/v1:StatefulSet"), *plan.of_type("kubernetes:batch/v1:Job"),
                 *plan.of_type("kubernetes:helm.sh/v3:Release"), *plan.of_type("aws:eks/addon:Addon"),
                 *plan.of_type("kubernetes:networking.k8s.io/v1:Ingress")]
    for workload in workloads:
        runs_on = _node_group_of(workload)
        for name in gpu_groups:
            assert plan.waits_for(workload, capacity[name]) == (name == runs_on), (workload.name, name)
    # Models: the device plugin on AL2023 groups, the autoscaler where a managed group starts at
    # zero, Karpenter for a NodePool.
    settings = stack_settings(stack)
    releases = {r.inputs["name"]: r for r in plan.of_type("kubernetes:helm.sh/v3:Release")}
    for model in settings.model_serving.models:
        deployment = plan.one("kubernetes:apps/v1:StatefulSet", f"models-{model.name}")
        group = settings.cluster.gpu_node_group_by_name[model.node_group]
        assert plan.waits_for(deployment, releases["cluster-autoscaler"]) == (
            group.engine == "managed" and group.min_size == 0)
        if group.engine == "karpenter":
            assert plan.waits_for(deployment, releases["karpenter"])
        if group.ami_type == "AL2023_x86_64_NVIDIA":
            assert plan.waits_for(deployment, releases["nvidia-device-plugin"])


@pytest.mark.parametrize("stack", STACKS)
def test_the_ingress_does_not_wait_for_pods(stack_plans, stack):
    """An ALB needs no ready pod: the Ingress (and so its URL and DNS record) waits for the
    controller and the Services, not for AnythingLLM's rollout."""
    plan = stack_plans[stack]
    for ingress in plan.of_type("kubernetes:networking.k8s.io/v1:Ingress"):
        for deployment in [*plan.of_type("kubernetes:apps/v1:Deployment"),
                           *plan.of_type("kubernetes:apps/v1:StatefulSet")]:
            assert not plan.waits_for(ingress, deployment), (ingress.name, deployment.name)
    for service in plan.of_type("kubernetes:core/v1:Service"):
        if service.inputs["metadata"]["namespace"] == "anythingllm":
            assert plan.waits_for(ingress, service)
        # pulumi-kubernetes would hold a Service until its pods are ready (await/service.go, 10
        # minutes by default): through it the Ingress would wait for the rollout after all, and a
        # model Service for a GPU node started from zero would time out.
        assert service.inputs["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"


@pytest.mark.parametrize("stack", STACKS)
def test_clients_wait_for_the_rules_that_let_them_in(stack_plans, stack):
    """Depending on a security group does not wait for its rules (children of the group): every
    client of PostgreSQL, Redis and NFS waits for the ingress rule itself."""
    plan = stack_plans[stack]
    rules = {rule.name: rule
             for rule in plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")}
    postgres, redis, nfs = rules["database-postgres"], rules["cache-redis"], rules["storage-nfs"]
    assert plan.waits_for(plan.one("kubernetes:batch/v1:Job", "database-bootstrap"), postgres)
    for claim in plan.of_type("kubernetes:core/v1:PersistentVolumeClaim"):
        assert plan.waits_for(claim, nfs), claim.name
    for deployment in [*plan.of_type("kubernetes:apps/v1:Deployment"),
                       *plan.of_type("kubernetes:apps/v1:StatefulSet")]:
        namespace = deployment.inputs["metadata"]["namespace"]
        if namespace in ("anythingllm", "llm-gateway"):
            assert plan.waits_for(deployment, postgres), deployment.name
        if namespace == "llm-gateway":
            assert plan.waits_for(deployment, redis), deployment.name
        assert plan.waits_for(deployment, nfs) or namespace == "llm-gateway", deployment.name


@pytest.mark.parametrize("stack", STACKS)
def test_destroy_order_from_the_dependency_graph(stack_plans, stack):
    """What `pulumi destroy` (and tools/staging.py) relies on: the Ingress (and with it the ALB)
    goes while the controller runs, workloads go before the nodes they run on, and every
    Kubernetes object goes before the cluster."""
    plan = stack_plans[stack]
    cluster = plan.one("aws:eks/cluster:Cluster")
    controller = helm_release(plan, "aws-load-balancer-controller")
    for ingress in plan.of_type("kubernetes:networking.k8s.io/v1:Ingress"):
        assert plan.deleted_before(ingress, controller), ingress.name
    workloads = [*plan.of_type("kubernetes:apps/v1:Deployment"),
                 *plan.of_type("kubernetes:apps/v1:StatefulSet"), *plan.of_type("kubernetes:batch/v1:Job"),
                 *plan.of_type("kubernetes:helm.sh/v3:Release")]
    capacity = _capacity(plan)
    assert len(capacity) >= 2 and len(workloads) >= 6
    for workload in workloads:
        # A workload goes before the nodes it runs on: a model before its GPU group or
        # NodePool, everything else before the system group.
        runs_on = _node_group_of(workload)
        assert plan.deleted_before(workload, capacity[runs_on]), (workload.name, runs_on)
    kubernetes = [r for r in plan.resources if r.custom and r.type.startswith("kubernetes:")
                  and r.type != "pulumi:providers:kubernetes"]
    for resource in kubernetes:
        assert plan.deleted_before(resource, cluster), resource.name
    # And the engine sees no edge the other way round (a cycle would make both true).
    assert not plan.deleted_before(cluster, ingress)
