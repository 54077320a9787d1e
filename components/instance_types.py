"""What the stack knows about EC2 instance types: one table, with its sources.

INSTANCE_FACTS holds every type a node group may use (architecture, vCPUs, memory, ENIs, GPUs);
GPU_FAMILIES the NVIDIA GPU of each GPU type. Only x86_64 NVIDIA GPU types are offered: the EKS
NVIDIA AMIs (`AL2023_x86_64_NVIDIA`, `BOTTLEROCKET_x86_64_NVIDIA`) are x86_64. The GPU count per
type is what the Cluster Autoscaler and the model servers' `nvidia.com/gpu` limits rely on.

`pod_room` is the most CPU and memory one pod can request on a node of a type: what the kubelet
leaves allocatable after the EKS AMIs' reservations, less the DaemonSets on every node. It is an
upper bound (nominal memory, the smaller of the two max-pods figures), so a pod above it can never
be scheduled, and a pod below it may still not fit a node that runs other pods.

Sources:
- aws/karpenter-provider-aws v1.14.1 website/content/en/docs/reference/instance-types.md
  (generated from EC2 DescribeInstanceTypes): architecture, vCPUs, MiB, GPU count;
- awslabs/amazon-eks-ami v20260724 nodeadm/internal/kubelet/instance-info.jsonl (ENIs, IPv4
  addresses per ENI), eni_max_pods.go (max pods = ENIs x (addresses - 1) + 2) and config.go
  (kube-reserved CPU by cores; memory 11 MiB x max pods + 255 MiB; eviction at 100Mi);
  bottlerocket-core-kit v3.1.1 schnauzer helpers (the same formulas); EKS user guide
  "choosing-instance-type": managed node groups cap max pods at 110 below 30 vCPUs, else 250;
- DaemonSet requests: aws/amazon-vpc-cni-k8s v1.23.0 config/master/aws-k8s-cni.yaml (aws-node
  and its network policy agent, 25m each); aws-observability/helm-charts
  amazon-cloudwatch-observability-6.4.0 values.yaml (cloudwatch-agent 250m/128Mi, fluent-bit
  50m/25Mi, dcgm-exporter 250m/128Mi on the GPU types of its affinity list). The EKS
  pod-identity agent, the EFS CSI node and the NVIDIA device plugin request nothing by default;
  kube-proxy's EKS add-on manifest is not public, so it is not counted (the bound stays an upper
  bound). The CloudWatch add-on runs EKS's default version unless `cluster.addonVersions` pins
  one; a future version with smaller requests would make this bound a little strict.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class InstanceFacts:
    arch: str            # "x86_64" or "arm64"
    vcpus: int
    memory_mib: int      # nominal; the kubelet sees a few percent less
    default_enis: int
    ipv4_per_eni: int
    gpus: int = 0


INSTANCE_FACTS: dict[str, InstanceFacts] = {
    # m5
    "m5.large": InstanceFacts("x86_64", 2, 8192, 3, 10, 0),
    "m5.xlarge": InstanceFacts("x86_64", 4, 16384, 4, 15, 0),
    "m5.2xlarge": InstanceFacts("x86_64", 8, 32768, 4, 15, 0),
    "m5.4xlarge": InstanceFacts("x86_64", 16, 65536, 8, 30, 0),
    # m6i
    "m6i.large": InstanceFacts("x86_64", 2, 8192, 3, 10, 0),
    "m6i.xlarge": InstanceFacts("x86_64", 4, 16384, 4, 15, 0),
    "m6i.2xlarge": InstanceFacts("x86_64", 8, 32768, 4, 15, 0),
    "m6i.4xlarge": InstanceFacts("x86_64", 16, 65536, 8, 30, 0),
    "m6i.8xlarge": InstanceFacts("x86_64", 32, 131072, 8, 30, 0),
    # m6a
    "m6a.large": InstanceFacts("x86_64", 2, 8192, 3, 10, 0),
    "m6a.xlarge": InstanceFacts("x86_64", 4, 16384, 4, 15, 0),
    "m6a.2xlarge": InstanceFacts("x86_64", 8, 32768, 4, 15, 0),
    "m6a.4xlarge": InstanceFacts("x86_64", 16, 65536, 8, 30, 0),
    "m6a.8xlarge": InstanceFacts("x86_64", 32, 131072, 8, 30, 0),
    # m7i
    "m7i.large": InstanceFacts("x86_64", 2, 8192, 3, 10, 0),
    "m7i.xlarge": InstanceFacts("x86_64", 4, 16384, 4, 15, 0),
    "m7i.2xlarge": InstanceFacts("x86_64", 8, 32768, 4, 15, 0),
    "m7i.4xlarge": InstanceFacts("x86_64", 16, 65536, 8, 30, 0),
    "m7i.8xlarge": InstanceFacts("x86_64", 32, 131072, 8, 30, 0),
    # m7a
    "m7a.large": InstanceFacts("x86_64", 2, 8192, 3, 10, 0),
    "m7a.xlarge": InstanceFacts("x86_64", 4, 16384, 4, 15, 0),
    "m7a.2xlarge": InstanceFacts("x86_64", 8, 32768, 4, 15, 0),
    "m7a.4xlarge": InstanceFacts("x86_64", 16, 65536, 8, 30, 0),
    "m7a.8xlarge": InstanceFacts("x86_64", 32, 131072, 8, 30, 0),
    # c6i
    "c6i.large": InstanceFacts("x86_64", 2, 4096, 3, 10, 0),
    "c6i.xlarge": InstanceFacts("x86_64", 4, 8192, 4, 15, 0),
    "c6i.2xlarge": InstanceFacts("x86_64", 8, 16384, 4, 15, 0),
    "c6i.4xlarge": InstanceFacts("x86_64", 16, 32768, 8, 30, 0),
    # c7i
    "c7i.large": InstanceFacts("x86_64", 2, 4096, 3, 10, 0),
    "c7i.xlarge": InstanceFacts("x86_64", 4, 8192, 4, 15, 0),
    "c7i.2xlarge": InstanceFacts("x86_64", 8, 16384, 4, 15, 0),
    "c7i.4xlarge": InstanceFacts("x86_64", 16, 32768, 8, 30, 0),
    # r6i
    "r6i.large": InstanceFacts("x86_64", 2, 16384, 3, 10, 0),
    "r6i.xlarge": InstanceFacts("x86_64", 4, 32768, 4, 15, 0),
    "r6i.2xlarge": InstanceFacts("x86_64", 8, 65536, 4, 15, 0),
    "r6i.4xlarge": InstanceFacts("x86_64", 16, 131072, 8, 30, 0),
    # r7i
    "r7i.large": InstanceFacts("x86_64", 2, 16384, 3, 10, 0),
    "r7i.xlarge": InstanceFacts("x86_64", 4, 32768, 4, 15, 0),
    "r7i.2xlarge": InstanceFacts("x86_64", 8, 65536, 4, 15, 0),
    "r7i.4xlarge": InstanceFacts("x86_64", 16, 131072, 8, 30, 0),
    # t3
    "t3.medium": InstanceFacts("x86_64", 2, 4096, 3, 6, 0),
    "t3.large": InstanceFacts("x86_64", 2, 8192, 3, 12, 0),
    "t3.xlarge": InstanceFacts("x86_64", 4, 16384, 4, 15, 0),
    # m6g
    "m6g.large": InstanceFacts("arm64", 2, 8192, 3, 10, 0),
    "m6g.xlarge": InstanceFacts("arm64", 4, 16384, 4, 15, 0),
    "m6g.2xlarge": InstanceFacts("arm64", 8, 32768, 4, 15, 0),
    "m6g.4xlarge": InstanceFacts("arm64", 16, 65536, 8, 30, 0),
    "m6g.8xlarge": InstanceFacts("arm64", 32, 131072, 8, 30, 0),
    # m7g
    "m7g.large": InstanceFacts("arm64", 2, 8192, 3, 10, 0),
    "m7g.xlarge": InstanceFacts("arm64", 4, 16384, 4, 15, 0),
    "m7g.2xlarge": InstanceFacts("arm64", 8, 32768, 4, 15, 0),
    "m7g.4xlarge": InstanceFacts("arm64", 16, 65536, 8, 30, 0),
    "m7g.8xlarge": InstanceFacts("arm64", 32, 131072, 8, 30, 0),
    # m8g
    "m8g.large": InstanceFacts("arm64", 2, 8192, 3, 10, 0),
    "m8g.xlarge": InstanceFacts("arm64", 4, 16384, 4, 15, 0),
    "m8g.2xlarge": InstanceFacts("arm64", 8, 32768, 4, 15, 0),
    "m8g.4xlarge": InstanceFacts("arm64", 16, 65536, 8, 30, 0),
    "m8g.8xlarge": InstanceFacts("arm64", 32, 131072, 8, 30, 0),
    # c7g
    "c7g.large": InstanceFacts("arm64", 2, 4096, 3, 10, 0),
    "c7g.xlarge": InstanceFacts("arm64", 4, 8192, 4, 15, 0),
    "c7g.2xlarge": InstanceFacts("arm64", 8, 16384, 4, 15, 0),
    "c7g.4xlarge": InstanceFacts("arm64", 16, 32768, 8, 30, 0),
    # r7g
    "r7g.large": InstanceFacts("arm64", 2, 16384, 3, 10, 0),
    "r7g.xlarge": InstanceFacts("arm64", 4, 32768, 4, 15, 0),
    "r7g.2xlarge": InstanceFacts("arm64", 8, 65536, 4, 15, 0),
    "r7g.4xlarge": InstanceFacts("arm64", 16, 131072, 8, 30, 0),
    # t4g
    "t4g.medium": InstanceFacts("arm64", 2, 4096, 3, 6, 0),
    "t4g.large": InstanceFacts("arm64", 2, 8192, 3, 12, 0),
    "t4g.xlarge": InstanceFacts("arm64", 4, 16384, 4, 15, 0),
    # g4dn
    "g4dn.xlarge": InstanceFacts("x86_64", 4, 16384, 3, 10, 1),
    "g4dn.2xlarge": InstanceFacts("x86_64", 8, 32768, 3, 10, 1),
    "g4dn.4xlarge": InstanceFacts("x86_64", 16, 65536, 3, 10, 1),
    "g4dn.8xlarge": InstanceFacts("x86_64", 32, 131072, 4, 15, 1),
    "g4dn.12xlarge": InstanceFacts("x86_64", 48, 196608, 8, 30, 4),
    "g4dn.16xlarge": InstanceFacts("x86_64", 64, 262144, 4, 15, 1),
    "g4dn.metal": InstanceFacts("x86_64", 96, 393216, 15, 50, 8),
    # g5
    "g5.xlarge": InstanceFacts("x86_64", 4, 16384, 4, 15, 1),
    "g5.2xlarge": InstanceFacts("x86_64", 8, 32768, 4, 15, 1),
    "g5.4xlarge": InstanceFacts("x86_64", 16, 65536, 8, 30, 1),
    "g5.8xlarge": InstanceFacts("x86_64", 32, 131072, 8, 30, 1),
    "g5.12xlarge": InstanceFacts("x86_64", 48, 196608, 15, 50, 4),
    "g5.16xlarge": InstanceFacts("x86_64", 64, 262144, 8, 30, 1),
    "g5.24xlarge": InstanceFacts("x86_64", 96, 393216, 15, 50, 4),
    "g5.48xlarge": InstanceFacts("x86_64", 192, 786432, 7, 50, 8),
    # g6
    "g6.xlarge": InstanceFacts("x86_64", 4, 16384, 4, 15, 1),
    "g6.2xlarge": InstanceFacts("x86_64", 8, 32768, 4, 15, 1),
    "g6.4xlarge": InstanceFacts("x86_64", 16, 65536, 8, 30, 1),
    "g6.8xlarge": InstanceFacts("x86_64", 32, 131072, 8, 30, 1),
    "g6.12xlarge": InstanceFacts("x86_64", 48, 196608, 8, 30, 4),
    "g6.16xlarge": InstanceFacts("x86_64", 64, 262144, 15, 50, 1),
    "g6.24xlarge": InstanceFacts("x86_64", 96, 393216, 15, 50, 4),
    "g6.48xlarge": InstanceFacts("x86_64", 192, 786432, 15, 50, 8),
    # g6e
    "g6e.xlarge": InstanceFacts("x86_64", 4, 32768, 4, 15, 1),
    "g6e.2xlarge": InstanceFacts("x86_64", 8, 65536, 4, 15, 1),
    "g6e.4xlarge": InstanceFacts("x86_64", 16, 131072, 8, 30, 1),
    "g6e.8xlarge": InstanceFacts("x86_64", 32, 262144, 8, 30, 1),
    "g6e.12xlarge": InstanceFacts("x86_64", 48, 393216, 10, 30, 4),
    "g6e.16xlarge": InstanceFacts("x86_64", 64, 524288, 15, 50, 1),
    "g6e.24xlarge": InstanceFacts("x86_64", 96, 786432, 10, 50, 4),
    "g6e.48xlarge": InstanceFacts("x86_64", 192, 1572864, 10, 50, 8),
    # p4d
    "p4d.24xlarge": InstanceFacts("x86_64", 96, 1179648, 15, 50, 8),
    # p4de
    "p4de.24xlarge": InstanceFacts("x86_64", 96, 1179648, 15, 50, 8),
    # p5
    "p5.4xlarge": InstanceFacts("x86_64", 16, 262144, 4, 30, 1),
    "p5.48xlarge": InstanceFacts("x86_64", 192, 2097152, 2, 50, 8),
    # p5e
    "p5e.48xlarge": InstanceFacts("x86_64", 192, 2097152, 2, 50, 8),
    # p5en
    "p5en.48xlarge": InstanceFacts("x86_64", 192, 2097152, 4, 50, 8),
}

DCGM_EXPORTER_INSTANCE_TYPES: frozenset[str] = frozenset({
    "g3.16xlarge", "g3.4xlarge", "g3.8xlarge", "g3s.xlarge", "g4ad.16xlarge", "g4ad.2xlarge",
    "g4ad.4xlarge", "g4ad.8xlarge", "g4ad.xlarge", "g4dn.12xlarge", "g4dn.16xlarge",
    "g4dn.2xlarge", "g4dn.4xlarge", "g4dn.8xlarge", "g4dn.metal", "g4dn.xlarge", "g5.12xlarge",
    "g5.16xlarge", "g5.24xlarge", "g5.2xlarge", "g5.48xlarge", "g5.4xlarge", "g5.8xlarge",
    "g5.xlarge", "g5g.16xlarge", "g5g.2xlarge", "g5g.4xlarge", "g5g.8xlarge", "g5g.metal",
    "g5g.xlarge", "g6.12xlarge", "g6.16xlarge", "g6.24xlarge", "g6.2xlarge", "g6.48xlarge",
    "g6.4xlarge", "g6.8xlarge", "g6.xlarge", "g6e.12xlarge", "g6e.16xlarge", "g6e.24xlarge",
    "g6e.2xlarge", "g6e.48xlarge", "g6e.4xlarge", "g6e.8xlarge", "g6e.xlarge", "gr6.4xlarge",
    "gr6.8xlarge", "p2.16xlarge", "p2.8xlarge", "p2.xlarge", "p3.16xlarge", "p3.2xlarge",
    "p3.8xlarge", "p3dn.24xlarge", "p4d.24xlarge", "p4de.24xlarge", "p5.48xlarge", "p5e.48xlarge",
    "p5en.48xlarge", "p6-b200.48xlarge", "p6-b300.48xlarge", "p6e-gb200.36xlarge",
})


def max_pods(instance_type: str) -> int:
    """Pods a managed node group's node of this type runs: the ENI formula, capped by EKS."""
    facts = INSTANCE_FACTS[instance_type]
    return min(facts.default_enis * (facts.ipv4_per_eni - 1) + 2, 250 if facts.vcpus > 30 else 110)


def _kube_reserved_cpu_millicores(vcpus: int) -> int:
    # 6% of the first core, 1% of the second, 0.5% of cores 3-4, 0.25% of every further core.
    total, reserved = vcpus * 1000, 0
    for start, end, basis_points in ((0, 1000, 600), (1000, 2000, 100), (2000, 4000, 50),
                                     (4000, total, 25)):
        if total > start:
            reserved += (min(total, end) - start) * basis_points // 10000
    return reserved


@dataclass(frozen=True)
class DaemonSetRequests:
    name: str
    cpu_millicores: int
    memory_mib: int
    gpu_nodes_only: bool = False


DAEMONSETS = (
    DaemonSetRequests("aws-node", 50, 0),
    DaemonSetRequests("cloudwatch-agent", 250, 128),
    DaemonSetRequests("fluent-bit", 50, 25),
    DaemonSetRequests("dcgm-exporter", 250, 128, gpu_nodes_only=True),
)


def pod_room(instance_type: str) -> tuple[int, int]:
    """(millicores, MiB) one pod can request at most on a node of `instance_type`."""
    facts = INSTANCE_FACTS[instance_type]
    cpu = facts.vcpus * 1000 - _kube_reserved_cpu_millicores(facts.vcpus)
    memory = facts.memory_mib - (11 * max_pods(instance_type) + 255) - 100
    for daemonset in DAEMONSETS:
        if daemonset.gpu_nodes_only and instance_type not in DCGM_EXPORTER_INSTANCE_TYPES:
            continue
        cpu -= daemonset.cpu_millicores
        memory -= daemonset.memory_mib
    return cpu, memory


# Karpenter subtracts this share of an instance type's memory before it packs pods onto it
# (chart karpenter v1.14.1 values.yaml settings.vmMemoryOverheadPercent, default 0.075).
KARPENTER_VM_MEMORY_OVERHEAD = 0.075


def karpenter_pod_room(instance_type: str) -> tuple[int, int]:
    """pod_room as Karpenter sees a node it is about to launch: less its VM memory overhead."""
    cpu, memory = pod_room(instance_type)
    return cpu, memory - math.ceil(INSTANCE_FACTS[instance_type].memory_mib * KARPENTER_VM_MEMORY_OVERHEAD)


def nodes_to_pack(pods: list[tuple[int, int, int]], room: tuple[int, int, int]) -> int:
    """How many nodes first-fit decreasing needs for `pods` of (GPUs or GPU slices, millicores,
    MiB), each node offering `room` of the same (a pod lands on one node whole). A heuristic,
    like the scheduler's and Karpenter's own: it can take a node more than the best packing."""
    nodes: list[list[int]] = []
    for pod in sorted(pods, reverse=True):
        for node in nodes:
            if all(used + wanted <= limit for used, wanted, limit in zip(node, pod, room, strict=True)):
                node[:] = [used + wanted for used, wanted in zip(node, pod, strict=True)]
                break
        else:
            nodes.append(list(pod))
    return len(nodes)


@dataclass(frozen=True)
class GpuInstanceType:
    gpus: int
    gpu_model: str
    gpu_memory_gb: int  # per GPU, as marketed (an L4's 24 GB is 23034 MiB to CUDA)


def _family(gpu_model: str, memory_gb: int, sizes: dict[str, int]) -> dict[str, GpuInstanceType]:
    return {size: GpuInstanceType(count, gpu_model, memory_gb) for size, count in sizes.items()}


_SINGLE_TO_OCTO = {
    "xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1,
    "12xlarge": 4, "24xlarge": 4, "48xlarge": 8,
}

GPU_FAMILIES: dict[str, dict[str, GpuInstanceType]] = {
    "g4dn": _family("T4", 16, {
        "xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1,
        "12xlarge": 4, "metal": 8,
    }),
    "g5": _family("A10G", 24, _SINGLE_TO_OCTO),
    "g6": _family("L4", 24, _SINGLE_TO_OCTO),
    "g6e": _family("L40S", 48, _SINGLE_TO_OCTO),
    "p4d": _family("A100", 40, {"24xlarge": 8}),
    "p4de": _family("A100", 80, {"24xlarge": 8}),
    "p5": _family("H100", 80, {"4xlarge": 1, "48xlarge": 8}),
    "p5e": _family("H200", 141, {"48xlarge": 8}),
    "p5en": _family("H200", 141, {"48xlarge": 8}),
}

GPU_INSTANCE_TYPES: dict[str, GpuInstanceType] = {
    f"{family}.{size}": spec
    for family, sizes in GPU_FAMILIES.items()
    for size, spec in sizes.items()
}


# Value of the Cluster Autoscaler's GPU label per GPU model. kubernetes/autoscaler
# cluster-autoscaler/cloudprovider/aws/aws_cloud_provider.go (tag cluster-autoscaler-1.35.2):
# `GPULabel = "k8s.amazonaws.com/accelerator"` and availableGPUTypes, which lists the first five
# names below; H100/H200 are named the same way (CA reports unlisted values as "not-listed" in
# its metrics only; utils/gpu/gpu.go NodeHasGpu looks at the label's presence).
ACCELERATOR_LABEL_VALUES: dict[str, str] = {
    "T4": "nvidia-tesla-t4",
    "A10G": "nvidia-a10g",
    "L4": "nvidia-l4",
    "L40S": "nvidia-l40s",
    "A100": "nvidia-tesla-a100",
    "H100": "nvidia-h100",
    "H200": "nvidia-h200",
}


def accelerator_label_value(instance_types: list[str]) -> str:
    """The GPU type a node group's nodes announce: the first (preferred) instance type's GPU.

    A managed node group has one set of labels for all its nodes; the value only names the GPU
    in the autoscaler's metrics and `--gpu-total` limits, while its presence is what matters.
    """
    return ACCELERATOR_LABEL_VALUES[GPU_INSTANCE_TYPES[instance_types[0]].gpu_model]


# EC2's naming: a `g` right after the generation is a Graviton (arm64) processor (m7g, c7gn,
# x2gd, im4gn, g5g); a1 is the first Graviton.
GRAVITON_FAMILY = re.compile(r"^([a-z]+\d+g|a1$)")


def architecture(instance_type: str) -> str:
    """x86_64 or arm64: from the table, else from the family's name."""
    facts = INSTANCE_FACTS.get(instance_type)
    if facts is not None:
        return facts.arch
    return "arm64" if GRAVITON_FAMILY.match(instance_family(instance_type)) else "x86_64"


def instance_family(instance_type: str) -> str:
    return instance_type.split(".", 1)[0]


def is_gpu_instance_type(instance_type: str) -> bool:
    return instance_type in GPU_INSTANCE_TYPES
