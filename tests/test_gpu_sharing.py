"""Small models sharing a GPU: time-slicing declared per GPU group, configured for both device
plugins (the NVIDIA chart's on AL2023, Bottlerocket's own), made known to Karpenter with a
NodeOverlay, and checked so that the models that can meet on one GPU fit its memory.

Upstream sources:
- NVIDIA/k8s-device-plugin v0.18.2: api/config/v1/config.go, flags.go, sharing.go, replicas.go
  (the config file's fields: `version`, `flags.migStrategy`, `sharing.timeSlicing.{renameByDefault,
  failRequestsGreaterThanOne, resources[].{name, replicas}}`); deployments/helm/
  nvidia-device-plugin/templates/daemonset-device-plugin.yml (config-manager: NODE_LABEL
  `nvidia.com/device-plugin.config`, DEFAULT_CONFIG from `config.default`).
- bottlerocket.dev, settings API, kubelet-device-plugins: `settings.kubelet-device-plugins.nvidia.
  device-sharing-strategy`, `.time-slicing.{replicas, rename-by-default,
  fail-requests-greater-than-one}`.
- kubernetes-sigs/karpenter v1.14.1: NodeOverlay capacity replaces the instance type's
  (pkg/cloudprovider/types.go ApplyCapacityOverlay) and counts toward NodePool limits
  (pkg/controllers/state/statenode.go Capacity); aws/karpenter-provider-aws v1.14.1 chart
  settings.featureGates.nodeOverlay.
"""

from __future__ import annotations

import copy
import tomllib

import pytest
import yaml

from components import karpenter
from components.nvidia_device_plugin import device_plugin_values
from tests import crd_schema
from tests.conftest import base_config, expect_settings_error, helm_release, settings_from

NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_OVERLAY = "kubernetes:karpenter.sh/v1alpha1:NodeOverlay"
CONFIG_LABEL = "nvidia.com/device-plugin.config"
# The config file's fields at v0.18.2 (json tags of api/config/v1 Config, Flags, Sharing,
# ReplicatedResources, ReplicatedResource) that this stack writes.
PLUGIN_CONFIG_FIELDS = {"version", "flags", "sharing"}
TIME_SLICING_FIELDS = {"renameByDefault", "failRequestsGreaterThanOne", "resources"}
RESOURCE_FIELDS = {"name", "rename", "devices", "replicas"}


def _sharing_config(models: tuple[float, ...] = (0.8, 0.12), replicas: int = 2) -> dict:
    config = base_config()
    config["cluster"]["gpuNodeGroups"][0]["gpuSharing"] = {"replicas": replicas}
    for model, fraction in zip(config["modelServing"]["models"], models, strict=True):
        model["gpuMemoryUtilization"] = fraction
    return config


def test_the_al2023_device_plugin_time_slices_only_the_labelled_nodes(stack_plans):
    values = helm_release(stack_plans["dev"], "nvidia-device-plugin").inputs["values"]
    assert values["config"]["default"] == "default"
    configs = {name: yaml.safe_load(text) for name, text in values["config"]["map"].items()}
    # Every count a group may declare: nodes still labelled with an old count find theirs
    # after a change (the config-manager fails on a name the map lacks).
    assert set(configs) == {"default", *(f"time-slicing-{n}" for n in range(2, 9))}
    assert "sharing" not in configs["default"]
    assert configs["time-slicing-5"]["sharing"]["timeSlicing"]["resources"][0]["replicas"] == 5
    # Stated, so the chart keeps the plugin at `drop: [ALL]` instead of adding SYS_ADMIN
    # (templates/_helpers.tpl requiresCapSysAdmin: a config map with these unset counts as
    # possible MIG or volume-mount device lists).
    assert (values["migStrategy"], values["deviceListStrategy"]) == ("none", "envvar")
    shared = configs["time-slicing-2"]
    assert set(shared) <= PLUGIN_CONFIG_FIELDS and shared["version"] == "v1"
    slicing = shared["sharing"]["timeSlicing"]
    assert set(slicing) <= TIME_SLICING_FIELDS
    # Same resource name (model pods ask for nvidia.com/gpu as anywhere); a pod asking for two
    # slices is refused, since both could be one GPU.
    assert slicing["renameByDefault"] is False and slicing["failRequestsGreaterThanOne"] is True
    assert slicing["resources"] == [{"name": "nvidia.com/gpu", "replicas": 2}]
    assert set(slicing["resources"][0]) <= RESOURCE_FIELDS
    # The nodes that get it say so in the label the config-manager reads.
    pool = stack_plans["dev"].one(NODE_POOL).inputs["spec"]
    assert pool["template"]["metadata"]["labels"][CONFIG_LABEL] == "time-slicing-2"
    # Stacks without sharing keep the chart's plain values (no config-manager at all).
    for stack in ("staging", "prod"):
        release = [r for r in stack_plans[stack].of_type("kubernetes:helm.sh/v3:Release")
                   if r.inputs.get("name") == "nvidia-device-plugin"]
        assert all("config" not in r.inputs["values"] for r in release)
    assert "config" not in device_plugin_values(["a"])


def test_karpenter_packs_slices_and_limits_the_pool_in_slices(stack_plans):
    plan = stack_plans["dev"]
    overlay = plan.one(NODE_OVERLAY)
    crd_schema.validate(copy.deepcopy(overlay.raw_inputs), "1.36.0")
    assert overlay.inputs["spec"] == {
        "weight": karpenter.NODE_OVERLAY_WEIGHT,
        "requirements": [{"key": "karpenter.sh/nodepool", "operator": "In", "values": ["inference"]}],
        # g6.2xlarge/g5.2xlarge: one GPU, two slices.
        "capacity": {"nvidia.com/gpu": "2"},
    }
    pool = plan.one(NODE_POOL)
    # maxSize 2 nodes x 2 slices: the limit counts the overlay's capacity, then the node's.
    assert pool.inputs["spec"]["limits"] == {"nvidia.com/gpu": "4"}
    assert plan.waits_for(pool, overlay)
    controller = helm_release(plan, "karpenter")
    assert controller.inputs["values"]["settings"]["featureGates"] == {"nodeOverlay": True}
    assert plan.waits_for(overlay, controller)
    for stack in ("staging", "prod"):
        assert stack_plans[stack].of_type(NODE_OVERLAY) == []


def test_bottlerocket_slices_with_its_own_plugin():
    config = _sharing_config(replicas=4)
    config["cluster"]["gpuNodeGroups"][0].update(amiType="BOTTLEROCKET_x86_64_NVIDIA",
                                                 instanceTypes=["g6.12xlarge"])
    group = settings_from(config).cluster.gpu_node_groups[0]
    settings = tomllib.loads(karpenter.node_user_data(group))["settings"]
    nvidia = settings["kubelet-device-plugins"]["nvidia"]
    assert nvidia["device-sharing-strategy"] == "time-slicing"
    assert nvidia["time-slicing"] == {"replicas": 4, "rename-by-default": False,
                                      "fail-requests-greater-than-one": True}
    # Parallel pull stays on beside it.
    assert settings["container-runtime"] == {"snapshotter": "soci"}
    # Four GPUs, four slices each.
    assert karpenter.node_overlay_spec(group)["capacity"] == {"nvidia.com/gpu": "16"}


@pytest.mark.parametrize("change, key, reason", [
    (lambda c: c["cluster"]["gpuNodeGroups"][0].update(engine="managed"),
     "cluster.gpuNodeGroups[0].gpuSharing", "only for engine 'karpenter'"),
    (lambda c: c["modelServing"]["models"][0].update(gpuMemoryUtilization=0.9),
     "cluster.gpuNodeGroups[0].gpuSharing", "chat 0.9 + embed 0.12 = 1.02 of one GPU"),
    # Below 1, but not beside two CUDA contexts: 1 - 2 x 0.75 / 22.35 = 0.9329 on a g5 (A10G,
    # 24 GB, which CUDA reports as about 22.4 GiB).
    (lambda c: c["modelServing"]["models"][0].update(gpuMemoryUtilization=0.83),
     "cluster.gpuNodeGroups[0].gpuSharing", "chat 0.83 + embed 0.12 = 0.95 of one GPU's memory "
     "on it; at most 0.9329 fits a 24 GB (22.35 GiB) GPU beside 2 CUDA contexts"),
    # Two replicas of one model may take both slices of one GPU.
    (lambda c: c["modelServing"]["models"][0].update(replicas=2),
     "cluster.gpuNodeGroups[0].gpuSharing", "chat 0.8 + chat 0.8 = 1.6"),
    (lambda c: c["cluster"]["gpuNodeGroups"][0].update(instanceTypes=["g6.12xlarge"])
     or c["modelServing"]["models"][0].update(gpus=2),
     "modelServing.models[0].gpus", "takes one slice"),
    (lambda c: c["cluster"]["gpuNodeGroups"][0].update(maxSize=1, gpuSharing={"replicas": 2})
     or c["modelServing"]["models"][1].update(replicas=2, gpuMemoryUtilization=0.1),
     "cluster.gpuNodeGroups[0].maxSize", "1 nodes give 2 GPU slices (2 per GPU), but the models "
     "placed on 'inference' need 3"),
    (lambda c: c["cluster"]["gpuNodeGroups"][0].update(gpuSharing={"replicas": 9}),
     "cluster.gpuNodeGroups[0].gpuSharing.replicas", "less than or equal to 8"),
])
def test_sharing_that_cannot_work_is_refused(change, key, reason):
    config = _sharing_config()
    change(config)
    expect_settings_error(config, key, reason)


def test_three_slices_count_the_three_largest_pods():
    config = _sharing_config(models=(0.45, 0.08), replicas=2)
    config["modelServing"]["models"][0]["replicas"] = 2
    settings_from(config)  # 0.45 + 0.45 on one GPU at most
    config["cluster"]["gpuNodeGroups"][0]["gpuSharing"] = {"replicas": 3}
    expect_settings_error(config, "cluster.gpuNodeGroups[0].gpuSharing",
                          "chat 0.45 + chat 0.45 + embed 0.08 = 0.98")


def test_a_small_share_is_only_for_a_shared_gpu():
    config = base_config()
    config["modelServing"]["models"][1]["gpuMemoryUtilization"] = 0.15
    expect_settings_error(config, "modelServing.models[1].gpuMemoryUtilization",
                          "leaves most of a whole GPU idle")


def test_models_whose_pods_cannot_share_a_node_are_warned_about():
    """g5.xlarge: 4 vCPUs; the default requests (3 CPUs each, and the compile-cache sidecar's
    100m) leave room for one model pod per node, so sharing its GPU saves nothing."""
    config = _sharing_config()
    warnings = [w for w in settings_from(config).warnings if ".gpuSharing" in w]
    assert warnings == ["cluster.gpuNodeGroups[0].gpuSharing: the models on inference need 2 "
                        "g5.xlarge nodes, not 1: their pods' CPU and memory requests do not fit "
                        "together on one, so they cannot share its GPU; use a larger type or "
                        "smaller requests (modelServing.models[].resources)"]
    config["cluster"]["gpuNodeGroups"][0]["instanceTypes"] = ["g5.2xlarge"]
    assert not [w for w in settings_from(config).warnings if ".gpuSharing" in w]


def test_the_compile_cache_sidecar_counts_when_pods_pair_on_a_node():
    """g5.2xlarge: 7310m for pods. Two 3600m model pods fit (7200m) only without the compile-cache
    sidecars' 100m each (7400m); Karpenter also keeps 7.5 % of the memory back
    (vmMemoryOverheadPercent), which the packing subtracts."""
    config = _sharing_config()
    config["cluster"]["gpuNodeGroups"][0]["instanceTypes"] = ["g5.2xlarge"]
    for model in config["modelServing"]["models"]:
        model["resources"] = {"cpu": "3600m", "memory": "8Gi", "cpuLimit": "3600m", "memoryLimit": "8Gi"}
    assert [w for w in settings_from(config).warnings if ".gpuSharing" in w]
    for model in config["modelServing"]["models"]:
        model["compileCache"] = "pod"
    assert not [w for w in settings_from(config).warnings if ".gpuSharing" in w]
    # Memory: 2 x 15 GiB fits the nominal room of a g5.2xlarge but not Karpenter's.
    for model in config["modelServing"]["models"]:
        model["resources"] = {"cpu": "3", "memory": "15Gi", "cpuLimit": "3", "memoryLimit": "15Gi"}
    assert [w for w in settings_from(config).warnings if ".gpuSharing" in w]
