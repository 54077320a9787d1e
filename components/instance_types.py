"""What the stack knows about EC2 GPU instance types.

Only x86_64 NVIDIA types are listed: the EKS NVIDIA AMIs (`AL2023_x86_64_NVIDIA`,
`BOTTLEROCKET_x86_64_NVIDIA`) are x86_64. The GPU count per type is what the Cluster
Autoscaler and the model servers' `nvidia.com/gpu` limits rely on.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuInstanceType:
    gpus: int
    gpu_model: str
    gpu_memory_gib: int  # per GPU


def _family(gpu_model: str, memory_gib: int, sizes: dict[str, int]) -> dict[str, GpuInstanceType]:
    return {size: GpuInstanceType(count, gpu_model, memory_gib) for size, count in sizes.items()}


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


def instance_family(instance_type: str) -> str:
    return instance_type.split(".", 1)[0]


def is_gpu_instance_type(instance_type: str) -> bool:
    return instance_type in GPU_INSTANCE_TYPES
