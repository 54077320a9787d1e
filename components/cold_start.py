"""The cold-start budget of a model pod, and the startup probe sized from it.

A model pod's path from pending to ready: a node (Karpenter launch, boot, join, GPUs
advertised), vLLM's image on it, then in the container the weights (downloaded once per model
into the shared model cache, read from it afterwards), the load into GPU memory, compilation and
CUDA graph capture. The startup probe starts with the container, so it must cover the last
steps in their worst case: the first pod of a new model, which downloads and compiles. The
README's "Cold starts" table gives every step with its source; the rates here are floors this
stack budgets with, not measurements (no GPU node has run this code yet).
"""

from __future__ import annotations

import math

from .settings import ModelSettings

# A floor for one pod's download from the Hugging Face Hub through the NAT gateway. The Hub
# serves from a CDN and huggingface_hub downloads files in parallel; 50 MiB/s is our assumption
# of a bad day, not a measured or published figure.
HF_DOWNLOAD_MIBPS = 50
# Reading the weights back from EFS: the Amazon EFS performance table allows a Regional, Elastic
# file system 1,500 MiB/s per client; vLLM reads safetensors shards one after another, so we
# budget a sixth of it.
EFS_READ_MIBPS = 250
# Compilation (torch.compile, Inductor, Triton) and CUDA graph capture on a first start: vLLM
# publishes no figure (vllm 0.32.0 docs/design/torch_compile.md gives only "seconds to minutes"
# for autotuning); five minutes is our estimate for the 7-8B models of the committed stacks.
# A pod that finds the model's compiled entries in the shared cache loads them in seconds
# (compile_cache.py), but the probe must allow the first pod.
COMPILE_SECONDS = 300
# Headroom on the sum: a probe that fires before a slow first start restarts the pod, which
# starts the download over from the shared cache's partial files.
MARGIN = 1.5
# Without weightsGib (a warning says so): the fixed allowance this stack had before.
UNSIZED_STARTUP_SECONDS = 1200
PROBE_PERIOD_SECONDS = 10
# Before the container starts: a Karpenter node (launch, boot, join, device plugin) and the
# image pull; README "Cold starts" (~2.5 min for the node, ~1.5 min for the image at 600 MiB/s).
NODE_AND_IMAGE_SECONDS = 600
# The floor Pulumi's wait for a model rollout already had: 40 minutes.
MIN_PULUMI_WAIT_SECONDS = 2400


def weights_seconds(weights_gib: float) -> float:
    """First start: download into the shared cache, then read back into the GPU."""
    mib = weights_gib * 1024
    return mib / HF_DOWNLOAD_MIBPS + mib / EFS_READ_MIBPS


def startup_seconds(model: ModelSettings) -> int:
    """What the startup probe allows after the container starts."""
    if model.weights_gib is None:
        return UNSIZED_STARTUP_SECONDS
    return math.ceil((weights_seconds(model.weights_gib) + COMPILE_SECONDS) * MARGIN)


def startup_probe_failures(model: ModelSettings) -> int:
    return math.ceil(startup_seconds(model) / PROBE_PERIOD_SECONDS)


def pod_seconds(model: ModelSettings) -> int:
    """From a new pod to a ready one, worst case: a node and the image, then the startup probe's
    whole allowance."""
    return NODE_AND_IMAGE_SECONDS + startup_probe_failures(model) * PROBE_PERIOD_SECONDS


def pulumi_wait_minutes(model: ModelSettings, *, drain_seconds: int = 0) -> int:
    """How long Pulumi waits for a model's rollout: its StatefulSet replaces the replicas one
    after another (model_serving.update_strategy), as many as the model may run then
    (`maxReplicas`), each possibly on a new node and each after its predecessor's drain. A
    StatefulSet has no progress deadline of its own, so this wait is what bounds a stuck
    rollout: `pulumi up` fails when it ends."""
    per_pod = pod_seconds(model) + drain_seconds
    return math.ceil(max(MIN_PULUMI_WAIT_SECONDS, model.peak_replicas * per_pod) / 60)
