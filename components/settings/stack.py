"""The whole stack's settings and the cross-section rules that tie them to the environment."""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from ..rds_ca import RDS_CA_IDENTIFIER, vendored_regions
from .base import REGION_NAME, TAG_KEY, TAG_VALUE, ConfigProblem, _Model, with_environment_defaults
from .cluster import ClusterSettings
from .data import (
    BURSTABLE_CACHE,
    BURSTABLE_DB,
    ENVIRONMENT_DEFAULTS,
    CacheSettings,
    DatabaseSettings,
    StorageSettings,
)
from .network import NetworkSettings
from .observability import OBSERVABILITY_ENVIRONMENT_DEFAULTS, ObservabilitySettings
from .serving import (
    SERVING_ENVIRONMENT_DEFAULTS,
    AppSettings,
    GatewaySettings,
    IngressSettings,
    ModelServingSettings,
)

PROD_MIN_BACKUP_RETENTION_DAYS = 14
PROD_MIN_APP_REPLICAS = 3
DEFAULTED_SECTIONS = {
    environment: {**ENVIRONMENT_DEFAULTS[environment], **SERVING_ENVIRONMENT_DEFAULTS[environment],
                  **OBSERVABILITY_ENVIRONMENT_DEFAULTS[environment]}
    for environment in ENVIRONMENT_DEFAULTS
}


def region_partition(region: str) -> str:
    """The AWS partition of a region (the ARN prefix its resources carry)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


# Characters kept for the header AnythingLLM puts in front of each chunk after splitting
# (`<document_metadata>` with the title, date and source URL; server/utils/TextSplitter/index.js
# stringifyHeader), which its splitter does not count against the chunk size.
CHUNK_HEADER_RESERVE = 2048
DEFAULT_ANSWER_TOKENS = 4096


class StackSettings(_Model):
    """The whole stack: identity, environment, network, cluster and the data services."""

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
    # Read from a secret config value only (`pulumi config set --secret`); see loading.py.
    hugging_face_token: SecretStr | None = None
    # When a throwaway stack may be destroyed (`tools/staging.py reap`); set by that tool.
    expires_at: dt.datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _environment_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        environment = data.get("environment")
        sections = {name for table in DEFAULTED_SECTIONS.values() for name in table}
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
        for key, tag_value in value.items():
            if not TAG_KEY.match(key) or key.lower().startswith("aws:"):
                raise ConfigProblem(
                    f"[{key!r}]", "tag keys are 1-128 characters of letters, digits, spaces and "
                    "_.:/=+-@, and must not start with aws:",
                )
            if "," in str(tag_value):
                raise ConfigProblem(
                    f"[{key!r}]", f"{tag_value!r} contains a comma: the AWS Load Balancer "
                    "Controller's chart joins the tags into --default-tags=k=v,k=v, so a comma "
                    "would split this value")
            if not isinstance(tag_value, str) or not TAG_VALUE.match(tag_value):
                raise ConfigProblem(
                    f"[{key!r}]", f"{tag_value!r} is not a tag value RDS, ElastiCache and EKS all "
                    "accept: at most 256 letters, digits, spaces and _.:/=+-@")
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
    def deletion_protection(self) -> bool:
        explicit = self.cluster.deletion_protection
        return self.is_prod if explicit is None else explicit

    @model_validator(mode="after")
    def _cross_checks(self) -> StackSettings:
        network, cluster = self.network, self.cluster
        for index, zone in enumerate(network.availability_zones):
            if not zone.startswith(self.region) or len(zone) != len(self.region) + 1:
                raise ConfigProblem(
                    f"network.availabilityZones[{index}]",
                    f"{zone!r} is not a zone of region {self.region!r}",
                )
        if network.vpc_cidr is not None:
            vpc = ipaddress.ip_network(network.vpc_cidr)
            service = ipaddress.ip_network(cluster.service_ipv4_cidr)
            if vpc.overlaps(service):
                raise ConfigProblem(
                    "cluster.serviceIpv4Cidr",
                    f"{service} overlaps network.vpcCidr {vpc}; Service IPs must not collide "
                    "with node and pod addresses",
                )
        if self.is_prod:
            if network.zone_count < 2:
                raise ConfigProblem(
                    "network.existing.privateSubnetIds",
                    f"prod needs subnets in at least 2 availability zones; got {network.zone_count}",
                )
            if network.existing is None and network.nat_gateways != "perAz":
                raise ConfigProblem(
                    "network.natGateways",
                    f"{network.nat_gateways!r} is not allowed in prod: a single NAT gateway "
                    "is a single-AZ point of failure; use 'perAz'",
                )
            if "0.0.0.0/0" in cluster.public_access_cidrs:
                raise ConfigProblem(
                    "cluster.publicAccessCidrs",
                    "'0.0.0.0/0' is not allowed in prod; list the CIDRs of your CI runners and "
                    "VPN, or leave it empty for a private-only endpoint",
                )
            if cluster.deletion_protection is False:
                raise ConfigProblem("cluster.deletionProtection", "cannot be false in prod")
            if cluster.system_node_group.min_size < 2:
                raise ConfigProblem(
                    "cluster.systemNodeGroup.minSize",
                    f"{cluster.system_node_group.min_size} is below 2; prod keeps add-ons on "
                    "at least two nodes",
                )
        if self.is_prod and self.expires_at is not None:
            raise ConfigProblem("expiresAt", "cannot be set in prod: prod never expires")
        if self.environment == "staging" and cluster.deletion_protection:
            raise ConfigProblem(
                "cluster.deletionProtection",
                "cannot be true for staging: throwaway stacks must destroy in one run",
            )
        return self

    @model_validator(mode="after")
    def _data_durability(self) -> StackSettings:
        storage, database, cache = self.storage, self.database, self.cache
        if self.is_prod:
            rules = [
                (not storage.backups, "storage.backups", "cannot be false in prod"),
                (not database.multi_az, "database.multiAz",
                 "cannot be false in prod: a single-AZ instance is down for the whole AZ outage"),
                (database.backup_retention_days < PROD_MIN_BACKUP_RETENTION_DAYS,
                 "database.backupRetentionDays",
                 f"{database.backup_retention_days} is below {PROD_MIN_BACKUP_RETENTION_DAYS}, "
                 f"the minimum in prod (allowed {PROD_MIN_BACKUP_RETENTION_DAYS}..35)"),
                (not database.deletion_protection, "database.deletionProtection",
                 "cannot be false in prod"),
                (bool(BURSTABLE_DB.match(database.instance_class)), "database.instanceClass",
                 f"{database.instance_class!r} is burstable; prod needs a fixed-performance class "
                 "(e.g. db.m7g.large or db.r7g.large)"),
                (cache.replicas < 1, "cache.replicas",
                 f"{cache.replicas} leaves no replica to fail over to; prod needs at least 1"),
                (cache.snapshot_retention_days < 1, "cache.snapshotRetentionDays",
                 "cannot be 0 in prod; allowed 1..35"),
                (bool(BURSTABLE_CACHE.match(cache.node_type)), "cache.nodeType",
                 f"{cache.node_type!r} is burstable; prod needs a fixed-performance type "
                 "(e.g. cache.m7g.large or cache.r7g.large)"),
            ]
            for failed, key, message in rules:
                if failed:
                    raise ConfigProblem(key, message)
        if self.environment == "staging" and database.deletion_protection:
            raise ConfigProblem(
                "database.deletionProtection",
                "cannot be true for staging: throwaway stacks must destroy in one run",
            )
        return self

    @model_validator(mode="after")
    def _serving(self) -> StackSettings:
        groups = self.cluster.gpu_node_group_by_name
        gpus_wanted: dict[str, int] = {}
        for index, model in enumerate(self.model_serving.models):
            key = f"modelServing.models[{index}]"
            group = groups.get(model.node_group)
            if group is None:
                raise ConfigProblem(
                    f"{key}.nodeGroup", f"{model.node_group!r} is not a GPU node group; "
                    f"declared: {sorted(groups) or 'none (add cluster.gpuNodeGroups)'}",
                )
            if model.gpus > group.gpus_per_node:
                raise ConfigProblem(
                    f"{key}.gpus", f"{model.gpus} GPUs (tensor parallel) do not fit on one node of "
                    f"{group.name!r} ({group.instance_types[0]}: {group.gpus_per_node} GPU)",
                )
            gpus_wanted[group.name] = gpus_wanted.get(group.name, 0) + model.gpus * model.replicas
        for index, group in enumerate(self.cluster.gpu_node_groups):
            capacity = group.max_size * group.gpus_per_node
            if gpus_wanted.get(group.name, 0) > capacity:
                raise ConfigProblem(
                    f"cluster.gpuNodeGroups[{index}].maxSize",
                    f"{group.max_size} nodes give {capacity} GPUs, but the models placed on "
                    f"{group.name!r} need {gpus_wanted[group.name]} (gpus x replicas)",
                )
        chat_names = [model.name for model in self.model_serving.chat_models]
        if self.app.chat_model is not None and self.app.chat_model not in chat_names:
            raise ConfigProblem("app.chatModel", f"{self.app.chat_model!r} is not a chat model; "
                                                 f"chat models: {chat_names}")
        if self.cache.cluster_mode == "enabled":
            raise ConfigProblem(
                "cache.clusterMode", "'enabled' is not supported: the cache serves only LiteLLM, "
                "which builds a plain Redis client unless given startup nodes (litellm/_redis.py) "
                "and has open cluster-mode bugs (MOVED/CROSSSLOT, rate-limiter slot errors: "
                "BerriAI/litellm #8159, #8878, #15066); use 'disabled' (a primary and replicas "
                "across zones with automatic failover)")
        partition = region_partition(self.region)
        arns = [(f"cluster.adminRoleArns[{i}]", arn) for i, arn in enumerate(self.cluster.admin_role_arns)]
        for key, arn in (("ingress.certificateArn", self.ingress.certificate_arn),
                         ("ingress.wafAclArn", self.ingress.waf_acl_arn)):
            if arn is None:
                continue
            arns.append((key, arn))
            # An ALB takes a certificate and a regional web ACL of its own region only.
            if arn.split(":")[3] != self.region:
                raise ConfigProblem(key, f"is in {arn.split(':')[3]}, but the ALB is in "
                                         f"{self.region} (aws:region): use one from {self.region}")
        for key, arn in arns:
            if arn.split(":")[1] != partition:
                raise ConfigProblem(key, f"is in partition {arn.split(':')[1]!r}, but {self.region} "
                                         f"(aws:region) is in {partition!r}")
        embedder = self.model_serving.embedding_model
        if self.app.chunk_size > self.embedding_chunk_limit:
            raise ConfigProblem(
                "app.chunkSize", f"{self.app.chunk_size} characters plus the chunk header "
                f"({CHUNK_HEADER_RESERVE} reserved) do not fit {embedder.name!r}'s {embedder.max_model_len} "
                f"tokens: at most {self.embedding_chunk_limit}")
        chat = self.chat_model
        if self.answer_tokens > chat.max_model_len // 2:
            raise ConfigProblem(
                "app.answerTokens", f"{self.answer_tokens} leaves too little of {chat.name!r}'s "
                f"{chat.max_model_len}-token window for the prompt: at most {chat.max_model_len // 2}")
        if self.is_prod:
            ingress = self.ingress
            rules = [
                (self.app.replicas < PROD_MIN_APP_REPLICAS, "app.replicas",
                 f"{self.app.replicas} is below {PROD_MIN_APP_REPLICAS}, the minimum in prod "
                 "(one per availability zone)"),
                (not ingress.deletion_protection, "ingress.deletionProtection", "cannot be false in prod"),
                (ingress.certificate_arn is None, "ingress.certificateArn",
                 "is required in prod: chat traffic and session cookies only over HTTPS"),
                (ingress.scheme == "internet-facing" and ingress.waf_acl_arn is None,
                 "ingress.wafAclArn", "is required in prod for an internet-facing ALB"),
            ]
            for failed, key, message in rules:
                if failed:
                    raise ConfigProblem(key, message)
        if self.environment == "staging" and self.ingress.deletion_protection:
            raise ConfigProblem("ingress.deletionProtection",
                                "cannot be true for staging: throwaway stacks must destroy in one run")
        return self

    @model_validator(mode="after")
    def _observability(self) -> StackSettings:
        observability = self.observability
        if self.is_prod and not observability.alarm_emails:
            raise ConfigProblem("observability.alarmEmails",
                                "is required in prod: alarms that reach nobody are not monitoring")
        if observability.database_connections_threshold(self.database.instance_class) is None:
            raise ConfigProblem(
                "observability.thresholds.databaseConnections",
                f"is required for {self.database.instance_class!r}: its max_connections is not "
                "known here (m, r and t classes are); set the alarm's connection count",
            )
        return self

    @property
    def warnings(self) -> list[str]:
        """Risks a valid configuration takes, shown by every preview (prod only): builds or
        weights that can change under the same name."""
        if not self.is_prod:
            return []
        found = []
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
