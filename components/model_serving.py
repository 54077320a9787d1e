"""ModelServing: vLLM model servers on the GPU node groups, reachable only from the gateway."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from . import cold_start, compile_cache
from .model_metrics import metrics_container, scraper_policy_spec
from .namespaces import GATEWAY, MODELS, WorkloadNamespaces
from .node_group import GPU_NODE_GROUP_LABEL, GPU_RESOURCE, GPU_TAINT, sharing_labels
from .settings import GpuNodeGroupSettings, ModelServingSettings, ModelSettings
from .shared_storage import MODEL_CACHE
from .versions import VLLM_IMAGE, VLLM_UID
from .workloads import (
    IMAGE_PULL_POLICY,
    SECRETS_AS_FILES_CHECK,
    container_security_context,
    disruption_budget,
    http_probe,
    http_service,
    image_version,
    ingress_only_from,
    pod_security_context,
    remember,
    scan_exceptions,
    secret_env,
    selector_labels,
    token_less_account,
    workload_labels,
)

VLLM_PORT = 8000
API_KEY_SECRET = "vllm-api-key"
HF_TOKEN_SECRET = "hugging-face-token"
SERVICE_ACCOUNT = "vllm"
# HF_HOME on the shared EFS claim: a model is downloaded once for every replica and restart.
# Not under HOME: the weights live on the shared EFS claim, every other cache per pod.
HF_HOME = "/models/huggingface"
# An emptyDir HOME for the caches vLLM, PyTorch, Triton and FlashInfer write under ~ (~/.cache,
# ~/.config, ~/.triton): the image's HOME is /root, which a non-root user cannot write.
VLLM_HOME = "/home/vllm"
# vLLM's default ($HOME/.cache/vllm, vllm envs.py), stated because the compile-cache containers
# copy from and into it.
VLLM_CACHE_ROOT = f"{VLLM_HOME}/.cache/vllm"
GATEWAY_APP = "litellm"
API_KEY_LENGTH = 48
MODEL_SCAN_EXCEPTIONS = {
    SECRETS_AS_FILES_CHECK: "vLLM takes its API key only from VLLM_API_KEY or the command line, "
                            "where it would be visible in the pod spec and the process list",
}


# The StatefulSet controller labels each pod with its own name, "so that you can attach a
# Service to a specific Pod" (kubernetes/website content/en/docs/concepts/workloads/controllers/
# statefulset.md, "Pod Name Label").
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
REPLICA_LABEL = "anythingllm.io/replica"


def service_name(model: ModelSettings) -> str:
    """The model's workload name (StatefulSet, ScaledObject, PodDisruptionBudget), its pods'
    `app.kubernetes.io/name`, and the prefix of its pods' and replica Services' names."""
    return f"vllm-{model.name}"


def replica_name(model: ModelSettings, ordinal: int) -> str:
    """Replica `ordinal`'s pod and its Service: `vllm-<model>-<ordinal>`. No model's names can
    meet another's: every other object of a model is named `vllm-<model>` and is not a Service,
    and an ordinal has no '-' in it."""
    return f"{service_name(model)}-{ordinal}"


def api_bases(model: ModelSettings) -> list[str]:
    """The OpenAI-compatible base URL of each replica the model may run (ordinal 0 up to
    `maxReplicas` - 1), in ordinal order (LiteLLM appends /chat/completions or /embeddings)."""
    return [f"http://{replica_name(model, ordinal)}.{MODELS.name}.svc.cluster.local:{VLLM_PORT}/v1"
            for ordinal in range(model.peak_replicas)]


# A leaving pod must stop getting new requests before vLLM stops taking them: after SIGTERM
# vLLM answers a new request with an empty `abort` completion (vllm 0.32.0 v1/engine/core.py
# `_reject_add_in_shutdown`). Leaving a replica's Service is not enough on its own: a pod that
# is terminating but still ready stays a *serving* endpoint, and kube-proxy sends new
# connections to serving terminating endpoints when a Service has no other (kubernetes/website
# content/en/docs/concepts/services-networking/endpoint-slices.md, "Serving"; kubernetes/
# kubernetes pkg/proxy/topology.go CategorizeEndpoints), which is always the case for a
# replica's own Service. So the preStop marks the pod as draining, the readiness probe fails
# on the mark (the kubelet keeps probing a terminating pod), and SIGTERM comes only once the
# pod has stopped serving: new connections to its Service are then refused, and the gateway
# cools the replica down and routes elsewhere.
DRAIN_MARK = "/tmp/vllm-draining"
READINESS_PERIOD_SECONDS = 5
READINESS_FAILURES = 3
# Long enough for the readiness probe to fail on the mark as often as it must, then for the
# EndpointSlice controller and every node's kube-proxy to catch up (10 s); vLLM serves normally
# meanwhile.
PRE_STOP_SECONDS = READINESS_PERIOD_SECONDS * READINESS_FAILURES + 10
GRACE_MARGIN_SECONDS = 30

# The postStart (argv: mark): a restarted container is not draining. The kubelet runs the
# preStop before a liveness kill too, and the mark is on the pod's /tmp, which outlives the
# container. Readiness is probed only after the startup probe succeeds, long after this ran.
POST_START_SCRIPT = """\
import os, sys
if os.path.exists(sys.argv[1]):
    os.remove(sys.argv[1])
"""
# The preStop (argv: mark, seconds): mark the pod as draining, then wait.
PRE_STOP_SCRIPT = """\
import pathlib, sys, time
pathlib.Path(sys.argv[1]).touch()
time.sleep(float(sys.argv[2]))
"""
# The readiness probe (argv: mark, health URL): not ready once draining, else vLLM's /health.
READINESS_SCRIPT = """\
import os, sys, urllib.request
if os.path.exists(sys.argv[1]):
    sys.exit(1)
with urllib.request.urlopen(sys.argv[2], timeout=4) as response:
    sys.exit(0 if response.status == 200 else 1)
"""


def termination_grace_seconds(stream_seconds: int) -> int:
    """preStop, then vLLM drains for up to `stream_seconds`, then the rest of its shutdown."""
    return PRE_STOP_SECONDS + stream_seconds + GRACE_MARGIN_SECONDS


def vllm_args(model: ModelSettings, *, stream_seconds: int) -> list[str]:
    """`vllm serve` arguments. The API key comes from VLLM_API_KEY, not the command line, so it
    never shows in the pod spec.

    `--shutdown-timeout`: on SIGTERM vLLM 0.32.0 aborts every request in flight unless this is
    above 0; with it, it stops taking new requests and lets those in flight finish for up to that
    long (v1/engine/core.py `_handle_shutdown`, "mode=abort" / "mode=drain"). A scale-down, a
    rollout or a node drain therefore never cuts an answer the gateway would still wait for
    (its request timeout, `stream_seconds`)."""
    args = [
        model.model,
        "--served-model-name", model.name,
        "--host", "0.0.0.0",
        "--port", str(VLLM_PORT),
        "--tensor-parallel-size", str(model.gpus),
        "--max-model-len", str(model.max_model_len),
        "--gpu-memory-utilization", str(model.gpu_memory_utilization),
        # The kubelet probes /health every few seconds; keep them out of the access log.
        "--disable-access-log-for-endpoints", "/health",
        "--shutdown-timeout", str(stream_seconds),
    ]
    if model.revision is not None:
        # The tokenizer comes from the same repository: pin it to the same revision.
        args += ["--revision", model.revision, "--tokenizer-revision", model.revision]
    if model.kind == "embedding":
        args += ["--runner", "pooling"]
    return args


def update_strategy() -> dict:
    """One replica at a time, the old pod gone before its successor starts: a StatefulSet has no
    surge (RollingUpdateStatefulSetStrategy has only `maxUnavailable` and `partition`), so
    neither a GPU group at its maximum nor a GPU shared with another model can hold a rollout.
    `maxUnavailable` counts under the Parallel policy (beta, on by default since 1.35:
    kubernetes/enhancements#961, gate MaxUnavailableStatefulSet)."""
    return {"type": "RollingUpdate", "rolling_update": {"max_unavailable": 1}}


def model_container(model: ModelSettings, *, with_hf_token: bool, stream_seconds: int) -> dict:
    env = [
        {"name": "HOME", "value": VLLM_HOME},
        # getpass.getuser() (PyTorch's compile cache) reads USER before the passwd file, which
        # has no entry for the pod's uid.
        {"name": "USER", "value": "vllm"},
        {"name": "HF_HOME", "value": HF_HOME},
        {"name": "VLLM_CACHE_ROOT", "value": VLLM_CACHE_ROOT},
        {"name": "VLLM_NO_USAGE_STATS", "value": "1"},
        {"name": "DO_NOT_TRACK", "value": "1"},
        secret_env("VLLM_API_KEY", API_KEY_SECRET),
    ]
    if with_hf_token:
        env.append(secret_env("HF_TOKEN", HF_TOKEN_SECRET))
    resources = model.resources.as_kubernetes()
    resources["requests"][GPU_RESOURCE] = str(model.gpus)
    resources["limits"][GPU_RESOURCE] = str(model.gpus)
    return {
        "name": "vllm",
        "image": VLLM_IMAGE,
        "image_pull_policy": IMAGE_PULL_POLICY,
        "command": ["vllm", "serve"],
        "args": vllm_args(model, stream_seconds=stream_seconds),
        "lifecycle": {
            "post_start": {"exec": {"command": ["python3", "-c", POST_START_SCRIPT, DRAIN_MARK]}},
            "pre_stop": {"exec": {"command": [
                "python3", "-c", PRE_STOP_SCRIPT, DRAIN_MARK, str(PRE_STOP_SECONDS)]}}},
        "env": env,
        "ports": [{"name": "http", "container_port": VLLM_PORT, "protocol": "TCP"}],
        "resources": resources,
        # /health is outside the API key's guard, which covers only /v1, /v2, /inference and
        # /cohere (vllm 0.32.0 entrypoints/serve/middleware/authenticate.py GUARDED_PREFIX);
        # /metrics, /tokenize, /pooling and /invocations are open too: the NetworkPolicy is the
        # boundary.
        # Sized from the model's weights: first download, load, compile (cold_start.py).
        "startup_probe": http_probe("/health", "http", period=cold_start.PROBE_PERIOD_SECONDS,
                                    failures=cold_start.startup_probe_failures(model)),
        # An exec probe in vLLM's own Python: a short process every 5 s.
        "readiness_probe": {
            "exec": {"command": ["python3", "-c", READINESS_SCRIPT, DRAIN_MARK,
                                 f"http://127.0.0.1:{VLLM_PORT}/health"]},
            "period_seconds": READINESS_PERIOD_SECONDS, "timeout_seconds": 5,
            "failure_threshold": READINESS_FAILURES, "success_threshold": 1},
        "liveness_probe": http_probe("/health", "http", period=30, failures=5, timeout=10),
        "volume_mounts": [
            {"name": "shm", "mount_path": "/dev/shm"},
            {"name": "model-cache", "mount_path": HF_HOME},
            {"name": "home", "mount_path": VLLM_HOME},
            {"name": "tmp", "mount_path": "/tmp"},
        ],
        # Non-root, no capabilities, no privilege escalation (Pod Security `restricted`) and a
        # read-only image: everything vLLM writes goes to HOME, /tmp, /dev/shm or the cache.
        "security_context": container_security_context(read_only_root=True),
    }


def node_selector(model: ModelSettings, group: GpuNodeGroupSettings | None) -> dict[str, str]:
    """The model's GPU group; on a group that shares its GPUs, also the device-plugin config of
    its nodes, so a pod that takes a slice never lands where a slice is a whole GPU."""
    return {GPU_NODE_GROUP_LABEL: model.node_group,
            **(sharing_labels(group) if group is not None else {})}


def model_pod_spec(model: ModelSettings, *, with_hf_token: bool, selector: dict[str, str],
                   stream_seconds: int, group: GpuNodeGroupSettings | None = None) -> dict:
    return {
        "service_account_name": SERVICE_ACCOUNT,
        "automount_service_account_token": False,
        "enable_service_links": False,
        "node_selector": node_selector(model, group),
        "tolerations": [{"key": GPU_TAINT.key, "operator": "Exists", "effect": "NoSchedule"}],
        "security_context": pod_security_context(uid=VLLM_UID),
        "termination_grace_period_seconds": termination_grace_seconds(stream_seconds),
        # Replicas in different zones where GPU capacity allows, so one zone's Spot reclaim or
        # outage does not take every replica at once; a preference only (Karpenter and the
        # scheduler relax it), since GPUs are often short in some zones.
        "topology_spread_constraints": [{
            "max_skew": 1, "topology_key": "topology.kubernetes.io/zone",
            "when_unsatisfiable": "ScheduleAnyway", "label_selector": {"match_labels": selector},
            # A StatefulSet's pods carry their revision here (no pod-template-hash): the spread
            # counts the pods of one revision, as the scheduler docs intend.
            "match_label_keys": ["controller-revision-hash"]}],
        **({"init_containers": compile_cache.init_containers(
            image=VLLM_IMAGE, image_pull_policy=IMAGE_PULL_POLICY,
            vllm_version=image_version(VLLM_IMAGE), model_name=model.name,
            vllm_cache_root=VLLM_CACHE_ROOT, home_mount=VLLM_HOME, port=VLLM_PORT)}
           if model.compile_cache == "shared" else {}),
        "containers": [
            model_container(model, with_hf_token=with_hf_token, stream_seconds=stream_seconds),
            # KEDA's load signal, scraped on a port of its own (model_metrics.py).
            *([metrics_container(image=VLLM_IMAGE, image_pull_policy=IMAGE_PULL_POLICY,
                                 upstream_port=VLLM_PORT,
                                 stays_seconds=PRE_STOP_SECONDS + stream_seconds)]
              if model.autoscaled else []),
        ],
        "volumes": [
            # NCCL and PyTorch workers exchange tensors through shared memory.
            {"name": "shm", "empty_dir": {"medium": "Memory", "size_limit": model.shm_size}},
            {"name": "model-cache", "persistent_volume_claim": {"claim_name": MODEL_CACHE.name}},
            # vLLM's caches (compiled kernels among them): seeded from and published to the
            # model-cache file system whole (compile_cache.py), bounded here.
            {"name": "home", "empty_dir": {"size_limit": "20Gi"}},
            # Scratch space of the compilers (Triton, FlashInfer, nvcc) and of Python.
            {"name": "tmp", "empty_dir": {"size_limit": "4Gi"}},
        ],
    }


def gateway_only_policy_spec() -> dict:
    """Every pod of the namespace accepts TCP 8000 from the LiteLLM pods and nothing else:
    vLLM's API key guards only /v1, /v2, /inference and /cohere (vllm 0.32.0 entrypoints/serve/
    middleware/authenticate.py); /invocations serves the same models without it, and /pooling,
    /tokenize and /metrics are open, so reachability is the real boundary. (Kubelet probes
    from the node are always allowed by the VPC CNI policy agent.)"""
    return ingress_only_from(namespace=GATEWAY.name, app=GATEWAY_APP, port=VLLM_PORT)

class ModelServing(pulumi.ComponentResource):
    """vLLM OpenAI-compatible servers: per configured model a StatefulSet, and a Service per
    replica it may run, which the gateway balances by load (litellm_config.py).

    Creates in `model-serving`: a ServiceAccount without token, the generated API key (a
    secret) as Secret `vllm-api-key` (also in `llm-gateway`, for the gateway), the optional
    Hugging Face token Secret, and per model a StatefulSet `vllm-<name>` (GPU node group's
    selector and toleration, `nvidia.com/gpu` = tensor-parallel size, /dev/shm in memory,
    weights on the shared `model-cache` claim, compiled kernels shared through it
    (compile_cache.py), a startup probe sized from the weights (cold_start.py), readiness and
    liveness on /health, a drain of the answers in flight before it stops, and for an
    autoscaled model the metrics sidecar and no replica count of its own), a ClusterIP Service
    `vllm-<name>-<i>` for each replica up to `maxReplicas` selecting that one pod, and a
    PodDisruptionBudget when it can have more than one replica; plus a NetworkPolicy admitting
    only the gateway's pods on the API port, and one admitting the private subnets (the managed
    scraper) on the metrics port when a model is autoscaled.

    Why a StatefulSet: its pods have stable names (`vllm-<name>-0`, `-1`, ...), so each replica
    can have a Service of its own and LiteLLM can count requests per replica; a Deployment's
    pods cannot be addressed one by one. Why a ClusterIP Service per replica rather than the
    pods' DNS names: its address never changes (LiteLLM's HTTP client caches DNS answers for
    300 s, litellm/constants.py AIOHTTP_TTL_DNS_CACHE), and while its replica is absent it
    refuses connections at once, which the gateway's router turns into a 10-second cooldown.

    Args:
        name: logical name prefix.
        settings: the stack's `modelServing` settings.
        gpu_node_groups: the GPU node groups by name (placement).
        namespaces: the workload namespaces.
        model_cache_claim: the shared EFS claim of the weights (waited for).
        hugging_face_token: optional secret Output of the token for gated models.
        provider: the cluster's kubernetes provider.
        gpu_ready: GPU group name -> what a model server on it waits for (its own group, the
            device plugin, the autoscaler for a group that starts at zero, DNS; Cluster.gpu_ready).
        stream_seconds: the longest answer the gateway waits for (its request timeout): how long
            a leaving pod drains.
        private_subnet_cidrs: where the managed scraper's interfaces are (the metrics port's
            NetworkPolicy, created when a model is autoscaled).
        scaled_by: model name -> its ScaledObject, which its StatefulSet waits for: the HPA
            then exists before a workload stops declaring its replica count.

    Attributes:
        api_bases: model name -> base URL of each of its replicas, in ordinal order.
        api_key_secret: the Secret in `llm-gateway` that holds VLLM_API_KEY.
        workloads: model name -> StatefulSet.
    """

    def __init__(self, name: str, settings: ModelServingSettings, *,
                 gpu_node_groups: dict[str, GpuNodeGroupSettings], namespaces: WorkloadNamespaces,
                 model_cache_claim: pulumi.Resource, hugging_face_token: pulumi.Output[str] | None,
                 provider: k8s.Provider, gpu_ready: dict[str, list[pulumi.Resource]],
                 stream_seconds: int, private_subnet_cidrs: pulumi.Input[list[str]],
                 scaled_by: dict[str, pulumi.Resource] | None = None,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("anythingllm:serving:ModelServing", name, None, opts)
        namespace = namespaces.by_name[MODELS.name].metadata.name
        in_cluster = pulumi.ResourceOptions(parent=self, provider=provider)
        api_key = random.RandomPassword(f"{name}-api-key", length=API_KEY_LENGTH, special=False,
                                        opts=pulumi.ResourceOptions(parent=self))
        key_secrets = [
            k8s.core.v1.Secret(
                f"{name}-api-key-{spec.name}",
                metadata={"name": API_KEY_SECRET, "namespace": namespaces.by_name[spec.name].metadata.name},
                type="Opaque",
                string_data={"VLLM_API_KEY": api_key.result},
                opts=in_cluster,
            )
            for spec in (MODELS, GATEWAY)
        ]
        for secret in key_secrets:
            remember(secret, api_key.result)
        self.api_key_secret = key_secrets[1]
        prerequisites: list[pulumi.Resource] = [key_secrets[0], model_cache_claim]
        if hugging_face_token is not None:
            prerequisites.append(k8s.core.v1.Secret(
                f"{name}-hf-token",
                metadata={"name": HF_TOKEN_SECRET, "namespace": namespace},
                type="Opaque",
                string_data={"HF_TOKEN": pulumi.Output.secret(hugging_face_token)},
                opts=in_cluster,
            ))
        prerequisites.append(token_less_account(f"{name}-vllm", account=SERVICE_ACCOUNT,
                                                namespace=namespace, opts=in_cluster))
        k8s.networking.v1.NetworkPolicy(
            f"{name}-gateway-only",
            metadata={"name": "allow-llm-gateway-only", "namespace": namespace},
            spec=gateway_only_policy_spec(),
            opts=in_cluster,
        )
        if any(model.autoscaled for model in settings.models):
            k8s.networking.v1.NetworkPolicy(
                f"{name}-metrics-scraper",
                metadata={"name": "allow-metrics-scraper", "namespace": namespace},
                spec=pulumi.Output.from_input(private_subnet_cidrs).apply(
                    lambda cidrs: scraper_policy_spec(list(cidrs))),
                opts=in_cluster,
            )

        self.api_bases: dict[str, list[str]] = {}
        self.workloads: dict[str, k8s.apps.v1.StatefulSet] = {}
        for model in settings.models:
            group = gpu_node_groups[model.node_group]
            # One pod at a time, each possibly on a new node, each after its predecessor's drain.
            minutes = cold_start.pulumi_wait_minutes(
                model, drain_seconds=termination_grace_seconds(stream_seconds))
            wait = f"{minutes}m"
            labels = workload_labels(service_name(model), "model-server", image_version(VLLM_IMAGE))
            selector = selector_labels(service_name(model), "model-server")
            metadata = {"name": service_name(model), "namespace": namespace, "labels": labels,
                        "annotations": {"anythingllm.io/model": model.model,
                                        **scan_exceptions(MODEL_SCAN_EXCEPTIONS, images=(VLLM_IMAGE,))}}
            self.workloads[model.name] = k8s.apps.v1.StatefulSet(
                f"{name}-{model.name}",
                metadata=metadata,
                spec={
                    # An autoscaled model's count is KEDA's (its HPA, and KEDA between 0 and
                    # 1): declaring it would undo every scaling on the next `up`.
                    **({} if model.autoscaled else {"replicas": model.replicas}),
                    # Replicas start and stop together, as a Deployment's do; the default
                    # (OrderedReady) would start replica 2 only once replica 1 is ready, each on
                    # a GPU node of its own. Scale-in still removes the highest ordinals first.
                    "pod_management_policy": "Parallel",
                    "update_strategy": update_strategy(),
                    "selector": {"match_labels": selector},
                    # No governing Service: nothing uses the pods' DNS names (see the class
                    # docstring); `serviceName` is optional in apps/v1.
                    "template": {
                        "metadata": {"labels": {**labels, GPU_NODE_GROUP_LABEL: model.node_group}},
                        "spec": model_pod_spec(model, with_hf_token=hugging_face_token is not None,
                                               selector=selector, group=group,
                                               stream_seconds=stream_seconds),
                    },
                },
                opts=pulumi.ResourceOptions(
                    parent=self, provider=provider,
                    depends_on=[*gpu_ready[model.node_group], *prerequisites,
                                *([scaled_by[model.name]] if scaled_by and model.name in scaled_by
                                  else [])],
                    # The first rollout may wait for a GPU node to join and a model download.
                    custom_timeouts=pulumi.CustomTimeouts(create=wait, update=wait),
                ),
            )
            for ordinal in range(model.peak_replicas):
                replica = replica_name(model, ordinal)
                http_service(f"{name}-{replica}", namespace=namespace,
                             labels={**labels, REPLICA_LABEL: str(ordinal)},
                             selector={**selector, POD_NAME_LABEL: replica}, port=VLLM_PORT,
                             object_name=replica, opts=in_cluster)
            if model.peak_replicas > 1:
                disruption_budget(f"{name}-{model.name}", namespace=namespace, labels=labels,
                                  selector=selector, opts=in_cluster)
            self.api_bases[model.name] = api_bases(model)
        self.register_outputs({})

