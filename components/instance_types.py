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


def instance_family(instance_type: str) -> str:
    return instance_type.split(".", 1)[0]


def is_gpu_instance_type(instance_type: str) -> bool:
    return instance_type in GPU_INSTANCE_TYPES
