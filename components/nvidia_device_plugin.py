"""NvidiaDevicePlugin: advertises `nvidia.com/gpu` on AL2023 NVIDIA nodes."""

from __future__ import annotations

from collections.abc import Iterable

import pulumi
import yaml

from .helm import pinned_release
from .node_group import GPU_NODE_GROUP_LABEL, GPU_RESOURCE, sharing_config_name
from .options import child_options
from .versions import NVIDIA_DEVICE_PLUGIN

# What a node without the config label (node_group.DEVICE_PLUGIN_CONFIG_LABEL) runs.
DEFAULT_CONFIG = "default"
# The replica counts settings allow (GpuSharingSettings.replicas).
SHARING_REPLICAS = range(2, 9)


def plugin_config(replicas: int | None) -> str:
    """A config file of the plugin (NVIDIA/k8s-device-plugin api/config/v1): the default, or
    time-slicing of every GPU into `replicas` `nvidia.com/gpu`, under the same resource name
    (renameByDefault false, so model pods ask for nvidia.com/gpu as anywhere), refusing a pod
    that asks for more than one slice (two slices may be the same GPU)."""
    config: dict = {"version": "v1", "flags": {"migStrategy": "none"}}
    if replicas is not None:
        config["sharing"] = {"timeSlicing": {
            "renameByDefault": False, "failRequestsGreaterThanOne": True,
            "resources": [{"name": "nvidia.com/gpu", "replicas": replicas}]}}
    return yaml.safe_dump(config, sort_keys=False)


def device_plugin_values(gpu_node_groups: list[str], *, sharing_replicas: Iterable[int] = ()) -> dict:
    """Helm values: run only on the named AL2023 GPU groups, tolerate their taint; with GPU
    sharing, the chart's config map (one config per replica count, chosen by the node label
    `nvidia.com/device-plugin.config` that such a group's nodes carry; `default` elsewhere).

    The affinity replaces the chart's default (NFD or `nvidia.com/gpu.present` labels) so
    the plugin never lands on Bottlerocket NVIDIA nodes, whose OS runs its own plugin.
    """
    values: dict = {
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{
                "key": GPU_NODE_GROUP_LABEL, "operator": "In", "values": sorted(gpu_node_groups),
            }]}],
        }}},
        "tolerations": [
            {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"},
            {"key": "CriticalAddonsOnly", "operator": "Exists"},
        ],
        "priorityClassName": "system-node-critical",
    }
    if any(True for _ in sharing_replicas):
        # Every replica count a group may declare, not only today's: after a change of
        # `replicas` the nodes still labelled with the old one keep finding their config (the
        # config-manager fails on a name the map lacks, and the release is atomic).
        values["config"] = {
            "map": {DEFAULT_CONFIG: plugin_config(None),
                    **{sharing_config_name(n): plugin_config(n) for n in SHARING_REPLICAS}},
            "default": DEFAULT_CONFIG,
        }
        # With a config map and these two unset, the chart assumes MIG or volume-mount device
        # lists may occur and gives the plugin SYS_ADMIN (templates/_helpers.tpl
        # requiresCapSysAdmin); stated, it keeps `drop: [ALL]` as before.
        values["migStrategy"] = "none"
        values["deviceListStrategy"] = "envvar"
    return values


class NvidiaDevicePlugin(pulumi.ComponentResource):
    """The NVIDIA device plugin DaemonSet, as a Helm release in kube-system.

    Args:
        name: logical name.
        gpu_node_groups: names of the AL2023 NVIDIA node groups it must run on.
        sharing_replicas: the time-slicing replica counts of those groups that share GPUs.
        opts: must carry the cluster's kubernetes provider.
    """

    def __init__(self, name: str, *, gpu_node_groups: list[str], sharing_replicas: list[int],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("anythingllm:cluster:NvidiaDevicePlugin", name, None, opts)
        self.release = pinned_release(
            name,
            NVIDIA_DEVICE_PLUGIN,
            release_name="nvidia-device-plugin",
            namespace="kube-system",
            values=device_plugin_values(gpu_node_groups, sharing_replicas=sharing_replicas),
            opts=child_options(self, opts),
        )
        self.register_outputs({"release": self.release.name})
