"""NvidiaDevicePlugin: advertises `nvidia.com/gpu` on AL2023 NVIDIA nodes."""

from __future__ import annotations

import pulumi

from .helm import pinned_release
from .node_group import GPU_NODE_GROUP_LABEL, GPU_RESOURCE
from .options import child_options
from .versions import NVIDIA_DEVICE_PLUGIN


def device_plugin_values(gpu_node_groups: list[str]) -> dict:
    """Helm values: run only on the named AL2023 GPU groups, tolerate their taint.

    The affinity replaces the chart's default (NFD or `nvidia.com/gpu.present` labels) so
    the plugin never lands on Bottlerocket NVIDIA nodes, whose OS runs its own plugin.
    """
    return {
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


class NvidiaDevicePlugin(pulumi.ComponentResource):
    """The NVIDIA device plugin DaemonSet, as a Helm release in kube-system.

    Args:
        name: logical name.
        gpu_node_groups: names of the AL2023 NVIDIA node groups it must run on.
        opts: must carry the cluster's kubernetes provider.
    """

    def __init__(self, name: str, *, gpu_node_groups: list[str],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("anythingllm:cluster:NvidiaDevicePlugin", name, None, opts)
        self.release = pinned_release(
            name,
            NVIDIA_DEVICE_PLUGIN,
            release_name="nvidia-device-plugin",
            namespace="kube-system",
            values=device_plugin_values(gpu_node_groups),
            opts=child_options(self, opts),
        )
        self.register_outputs({"release": self.release.name})
