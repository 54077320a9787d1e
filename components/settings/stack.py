"""The whole stack's settings and the cross-section rules that tie them to the environment."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator

from ..alb_controller_policy import TRACKING_TAG_KEYS
from ..instance_types import INSTANCE_FACTS, karpenter_pod_room, nodes_to_pack
from ..rds_ca import RDS_CA_IDENTIFIER, vendored_regions
from ..versions import KEDA_KUBERNETES, KEDA_VERSION
from .backup import BACKUP_ENVIRONMENT_DEFAULTS, BackupSettings, RestoreSettings
from .base import REGION_NAME, TAG_KEY, TAG_VALUE, ConfigProblem, _Model, raise_all, with_environment_defaults
from .cluster import FAST_PULL_MIN_THROUGHPUT_MIBPS, ClusterSettings
from .data import (
    ENVIRONMENT_DEFAULTS,
    CacheSettings,
    DatabaseSettings,
    StorageSettings,
)
from .kubernetes_version import minor, version_warnings
from .network import NetworkSettings
from .observability import OBSERVABILITY_ENVIRONMENT_DEFAULTS, ObservabilitySettings
from .rules import run_rules
from .serving import (
    SERVING_ENVIRONMENT_DEFAULTS,
    AppSettings,
    GatewaySettings,
    IngressSettings,
    ModelServingSettings,
    cpu_millicores,
    memory_mib,
)

DEFAULTED_SECTIONS = {
    environment: {**ENVIRONMENT_DEFAULTS[environment], **SERVING_ENVIRONMENT_DEFAULTS[environment],
                  **OBSERVABILITY_ENVIRONMENT_DEFAULTS[environment],
                  **BACKUP_ENVIRONMENT_DEFAULTS[environment]}
    for environment in ENVIRONMENT_DEFAULTS
}


# Characters kept for the header AnythingLLM puts in front of each chunk after splitting
# (`<document_metadata>` with the title, date and source URL; server/utils/TextSplitter/index.js
# stringifyHeader), which its splitter does not count against the chunk size.
CHUNK_HEADER_RESERVE = 2048
DEFAULT_ANSWER_TOKENS = 4096


# EC2NodeClass spec.tags may not name these (its CEL rules at Karpenter v1.14.1); the stack's tags
# go to every EC2NodeClass, so they are refused for every stack.
NODE_OWNERSHIP_TAG_PREFIXES = ("eks:eks-cluster-name", "kubernetes.io/cluster", "karpenter.sh/nodepool",
                               "karpenter.sh/nodeclaim", "karpenter.k8s.aws/ec2nodeclass")

# The parts of prod that `protect` keeps from being replaced, by the key that configures them,
# and what a replacement would create in their place.
REPLACEABLE = {
    "cluster": "the EKS cluster (every node and Kubernetes object is deleted first)",
    "database": "the RDS instance (a new, empty database; the old one leaves its final snapshot)",
    "cache": "the ElastiCache replication group (a new, empty cache)",
    "storage": "the EFS file system, its access points and claims (new, empty storage)",
    "edgeIdentity": "the Cognito user pool (no users, new client credentials)",
    "accessLogs": "the access-log bucket (it must be empty to be deleted)",
}
ReplaceableKey = Literal["cluster", "database", "cache", "storage", "edgeIdentity", "accessLogs"]


class StackFields(_Model):
    """The stack's settings, each valid on its own; StackSettings adds the rules between them."""

    project: str
    stack: str
    region: str
    environment: Literal["dev", "staging", "prod"]
    tags: dict[str, str] = Field(default_factory=dict)
    network: NetworkSettings
    cluster: ClusterSettings
    storage: StorageSettings
    database: DatabaseSettings
    cache: CacheSettings
    ingress: IngressSettings
    app: AppSettings
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    model_serving: ModelServingSettings
    observability: ObservabilitySettings
    backup: BackupSettings
    restore: RestoreSettings = Field(default_factory=RestoreSettings)
    # Read from a secret config value only (`pulumi config set --secret`); see loading.py.
    hugging_face_token: SecretStr | None = None
    # The OIDC client secret of `ingress.auth` (type oidc); a secret config value only.
    oidc_client_secret: SecretStr | None = None
    # Prod's stateful resources a reviewed change may replace (README, "Replacements").
    allow_replacement: list[ReplaceableKey] = Field(default_factory=list)
    # When a throwaway stack may be destroyed (`tools/staging.py reap`); set by that tool.
    expires_at: dt.datetime | None = None
    # The date the warnings are for (parse_settings sets it; tests inject one).
    _today: dt.date = PrivateAttr(default_factory=dt.date.today)
    # What the account said about the running stack (loading.py): warnings, shown by previews.
    _account_warnings: list[str] = PrivateAttr(default_factory=list)
    # The storage of restore.databaseSnapshot when it exceeds database.allocatedStorageGib
    # (loading.py asks RDS): RDS restores that much and cannot shrink it.
    _restore_storage_gib: int | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _environment_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        environment = data.get("environment")
        if not isinstance(environment, str) or environment not in DEFAULTED_SECTIONS:
            return data  # the environment is reported; what it would default is not
        # A section the file leaves out and the environment has no defaults for stays missing.
        sections = set(DEFAULTED_SECTIONS[environment])
        sections |= {name for table in DEFAULTED_SECTIONS.values() for name in table if name in data}
        return {**data, **{section: with_environment_defaults(DEFAULTED_SECTIONS, section, environment,
                                                              data.get(section))
                           for section in sorted(sections)}}

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not REGION_NAME.match(value):
            raise ConfigProblem("", f"{value!r} is not an AWS region name (e.g. us-east-1)")
        if value not in vendored_regions():
            raise ConfigProblem(
                "", f"{value!r} has no vendored RDS root certificate ({RDS_CA_IDENTIFIER}), so "
                "database clients could not verify the server; supported regions: "
                f"{', '.join(vendored_regions())} (see components/data/README.md to add one)",
            )
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        problems = []
        for key, tag_value in value.items():
            path = f"[{key!r}]"
            if not TAG_KEY.match(key) or key.lower().startswith("aws:"):
                problems.append(ConfigProblem(
                    path, "tag keys are 1-128 characters of letters, digits, spaces and _.:/+-@, "
                    "and must not start with aws:"))
            elif key in TRACKING_TAG_KEYS:
                problems.append(ConfigProblem(
                    path, f"{key!r} is a tag the AWS Load Balancer Controller tracks its own "
                    "resources by: it refuses to start with it in --default-tags, and on this "
                    "stack's resources it would hand them to the controller"))
            elif key.startswith(NODE_OWNERSHIP_TAG_PREFIXES):
                problems.append(ConfigProblem(
                    path, f"{key!r} is a tag EKS and Karpenter mark their nodes with; Karpenter's "
                    "EC2NodeClass refuses it (karpenter.k8s.aws_ec2nodeclasses.yaml, spec.tags)"))
            elif "=" in key:
                problems.append(ConfigProblem(
                    path, f"{key!r} contains '=': the AWS Load Balancer Controller reads "
                    "--default-tags as key=value pairs split at the first '='"))
            if isinstance(tag_value, str) and "," in tag_value:
                problems.append(ConfigProblem(
                    path, f"{tag_value!r} contains a comma: the AWS Load Balancer Controller's "
                    "chart joins the tags into --default-tags=k=v,k=v, so a comma would split "
                    "this value"))
            elif not isinstance(tag_value, str) or not TAG_VALUE.match(tag_value):
                problems.append(ConfigProblem(
                    path, f"{tag_value!r} is not a tag value RDS, ElastiCache and EKS all accept: "
                    "at most 256 letters, digits, spaces and _.:/=+-@"))
            for text in (key, tag_value if isinstance(tag_value, str) else ""):
                if ": " in text or text.endswith(":"):
                    # The chart writes the flag as a plain YAML scalar (templates/deployment.yaml
                    # at v3.5.0: `- --default-tags={{ ... }}`), where ': ' or a final ':' makes
                    # the argument a mapping and the Deployment invalid.
                    problems.append(ConfigProblem(
                        path, f"{text!r} contains ': ' or ends with ':', which the load balancer "
                        "controller chart's unquoted --default-tags argument cannot hold"))
        raise_all(problems)
        return value

    @field_validator("expires_at")
    @classmethod
    def _expires_at(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ConfigProblem("", f"{value.isoformat()!r} has no time zone; write it in UTC, "
                                    "e.g. 2026-11-30T18:00:00Z")
        return value.astimezone(dt.UTC) if value is not None else None

    @property
    def expires_at_text(self) -> str | None:
        """`expiresAt` as the tag value and stack output: UTC, to the second."""
        return self.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ") if self.expires_at is not None else None

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    @property
    def restore_storage_gib(self) -> int | None:
        return self._restore_storage_gib

    def protects(self, key: str) -> bool:
        """Whether the stateful resources configured by `key` (REPLACEABLE) are `protect`ed: in
        prod, unless `allowReplacement` names them."""
        return self.is_prod and key not in self.allow_replacement

    @field_validator("allow_replacement")
    @classmethod
    def _allow_replacement(cls, value: list[str]) -> list[str]:
        twice = sorted({key for key in value if value.count(key) > 1})
        if twice:
            raise ConfigProblem("", f"lists {', '.join(twice)} twice")
        return value

    @property
    def deletion_protection(self) -> bool:
        explicit = self.cluster.deletion_protection
        return self.is_prod if explicit is None else explicit

    def _unshared_gpu_warnings(self) -> list[str]:
        """A group that shares its GPUs but whose model pods cannot share a node (CPU or memory
        requests too large for two on one of its first listed type): the sharing saves no node."""
        found = []
        for index, group in enumerate(self.cluster.gpu_node_groups):
            instance_type = group.instance_types[0]
            if group.gpu_sharing is None or instance_type not in INSTANCE_FACTS:
                continue
            pods = [(model.gpus, cpu_millicores(model.resources.cpu) + model.sidecar_requests[0],
                     memory_mib(model.resources.memory) + model.sidecar_requests[1])
                    for model in self.model_serving.models if model.node_group == group.name
                    for _ in range(model.peak_replicas)]
            needed = nodes_to_pack(pods, (group.slices_per_node, *karpenter_pod_room(instance_type)))
            by_slices = -(-sum(pod[0] for pod in pods) // group.slices_per_node)
            if needed > by_slices:
                found.append(
                    f"cluster.gpuNodeGroups[{index}].gpuSharing: the models on {group.name} need "
                    f"{needed} {instance_type} nodes, not {by_slices}: their pods' CPU and memory "
                    "requests do not fit together on one, so they cannot share its GPU; use a "
                    "larger type or smaller requests (modelServing.models[].resources)")
        return found

    def _keda_version_warnings(self) -> list[str]:
        """KEDA runs when a model is autoscaled; a Kubernetes minor outside the window its
        release was tested on works as far as anyone knows, but nobody upstream has tried it."""
        if not any(model.autoscaled for model in self.model_serving.models):
            return []
        low, high = KEDA_KUBERNETES
        if minor(low) <= minor(self.cluster.kubernetes_version) <= minor(high):
            return []
        return [f"modelServing.models: KEDA {KEDA_VERSION}, which scales the autoscaled models, "
                f"is tested on Kubernetes {KEDA_KUBERNETES[0]}-{KEDA_KUBERNETES[1]} "
                f"(keda-docs operate/cluster.md), not cluster.kubernetesVersion "
                f"{self.cluster.kubernetes_version}; the "
                "HPA API it drives (autoscaling/v2) is GA and it serves the external metrics API "
                "itself, so it is expected to work: watch the first scale-up and scale-down "
                "after an upgrade (README, \"Scaling\")"]

    @property
    def warnings(self) -> list[str]:
        """Risks a valid configuration takes, shown by every preview: the Kubernetes version's
        phase on `today` (every environment) and, in prod, builds or weights that can change
        under the same name."""
        found = version_warnings(self.cluster.kubernetes_version, self.cluster.support_type,
                                 self._today)
        found += self._account_warnings
        found += [f"cluster.systemNodeGroup.instanceTypes[{index}]: {instance_type} is not in this "
                  "code's instance table (components/instance_types.py): it is taken as x86_64 by "
                  "its name, and pods' requests are not checked against what it can allocate"
                  for index, instance_type in self.cluster.system_node_group.unlisted_types]
        found += [f"modelServing.models[{index}].weightsGib: not set for {model.name}, so its "
                  "startup probe allows a fixed 20 minutes instead of a time sized from its "
                  "weights (README, \"Cold starts\"); set it to the size of the repository's "
                  "*.safetensors files" for index, model in enumerate(self.model_serving.models)
                  if model.weights_gib is None]
        # awslabs/amazon-eks-ami nodeadm/doc/examples.md, "Enabling fast image pull": at least
        # 600 MiB/s of volume throughput, "below that value, you may see longer image pull times".
        found += [f"cluster.gpuNodeGroups[{index}].diskThroughputMibps: {group.disk_throughput_mibps} "
                  f"MiB/s with fastImagePull on {group.name}: AWS recommends at least "
                  f"{FAST_PULL_MIN_THROUGHPUT_MIBPS}, below which parallel pulls may be slower than "
                  "serial ones" for index, group in enumerate(self.cluster.gpu_node_groups)
                  if group.fast_image_pull
                  and group.disk_throughput_mibps < FAST_PULL_MIN_THROUGHPUT_MIBPS]
        found += self._unshared_gpu_warnings()
        found += self._keda_version_warnings()
        groups = self.cluster.gpu_node_group_by_name
        for index, model in enumerate(self.model_serving.models):
            group = groups.get(model.node_group)
            if group is None or model.replicas >= 2 or model.sleeps:
                continue
            # EC2 gives two minutes' notice; Karpenter drains at once and starts a replacement
            # in parallel (disruption.md, "Interruption"). A node whose AMI pin or node class
            # changed is replaced too (drift): a new node first, then the old one drains. Either
            # way one replica serves again only after a node launch, an image pull and a model
            # load (README, "Cold starts").
            causes = [cause for cause, applies in (
                ("a Spot interruption", group.capacity_type == "SPOT"),
                ("a node replacement (an AMI bump in versions.py, a change of the stack's tags "
                 "or of the group's disk)", group.engine == "karpenter")) if applies]
            if causes:
                found.append(
                    f"modelServing.models[{index}].replicas: {model.name} has one replica on "
                    f"{group.name}: {' or '.join(causes)} takes it offline until its replacement "
                    "has started and loaded the model (minutes); set replicas: 2 to keep serving")
        if not self.is_prod:
            return found
        found += [f"allowReplacement: {key}: `up` may replace {REPLACEABLE[key]}; remove the key "
                  "once the reviewed replacement is done (README, \"Replacements\")"
                  for key in self.allow_replacement]
        tags = [("app.imageTag", self.app.image_tag)]
        if self.app.canary is not None:
            tags.append(("app.canary.imageTag", self.app.canary.image_tag))
        for key, tag in tags:
            if "@sha256:" not in tag:
                found.append(
                    f"{key}: {tag} is a mutable tag: AnythingLLM re-pushes pg-<version> on every "
                    "push to its pg branch (.github/workflows/build-and-push-pg-image.yaml there), "
                    "so replicas may run different builds; pin it as "
                    f"{tag}@sha256:<digest> (README, Versions)")
        for index, model in enumerate(self.model_serving.models):
            if not model.pinned:
                found.append(
                    f"modelServing.models[{index}].revision: {model.model} follows "
                    f"{model.revision or 'its main branch'}: a new push changes the weights a "
                    "restarted pod loads; set a 40-hex commit")
        return found

    @property
    def embedding_chunk_limit(self) -> int:
        """Characters a chunk may have so that, with its header, it fits the embedding model:
        every token covers at least one character, and the model adds 2 special tokens."""
        return self.model_serving.embedding_model.max_model_len - CHUNK_HEADER_RESERVE - 2

    @property
    def answer_tokens(self) -> int:
        """Tokens of the chat model's window kept for the answer (`app.answerTokens`)."""
        if self.app.answer_tokens is not None:
            return self.app.answer_tokens
        return min(DEFAULT_ANSWER_TOKENS, self.chat_model.max_model_len // 4)

    @property
    def chat_prompt_window(self) -> int:
        """AnythingLLM's `LITE_LLM_MODEL_TOKEN_LIMIT`: the window less the answer's share."""
        return self.chat_model.max_model_len - self.answer_tokens

    @property
    def chat_model(self):
        """The model AnythingLLM chats with: `app.chatModel`, else the first chat model."""
        name = self.app.chat_model or self.model_serving.chat_models[0].name
        return self.model_serving.by_name(name)


class StackSettings(StackFields):
    """The whole stack: identity, environment, network, cluster and the data services."""

    @model_validator(mode="after")
    def _rules(self) -> StackSettings:
        raise_all(run_rules(self))
        return self
