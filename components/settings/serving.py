"""Settings of the serving path: the ALB ingress, AnythingLLM, the LiteLLM gateway, the vLLM models.

As for the data services, fields whose safe value depends on the environment (replica counts,
ALB deletion protection) have no default here: `SERVING_ENVIRONMENT_DEFAULTS` fills them in,
and `StackSettings` checks the result against the environment's rules.
"""

from __future__ import annotations

import re
import zoneinfo
from decimal import Decimal
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..versions import ANYTHINGLLM_TAG
from .base import ConfigProblem, _Model, cidr_list, raise_all
from .edge_auth import EdgeAuthSettings

# The deregistration delay is also how long a leaving AnythingLLM pod lives (its preStop outlasts
# it, and bash as PID 1 ignores SIGTERM): prod drains streams for 5 minutes; dev and staging,
# destroyed and redeployed often, let a leaving pod finish for 30 s (an answer still streaming
# then is cut, which a developer can retry).
SERVING_ENVIRONMENT_DEFAULTS: dict[str, dict[str, dict]] = {
    "prod": {"ingress": {"deletionProtection": True, "deregistrationDelaySeconds": 300},
             "app": {"replicas": 3}},
    "dev": {"ingress": {"deletionProtection": False, "deregistrationDelaySeconds": 30},
            "app": {"replicas": 2}},
}
SERVING_ENVIRONMENT_DEFAULTS["staging"] = SERVING_ENVIRONMENT_DEFAULTS["dev"]

# The region part is a region name: the rules compare it with aws:region.
ACM_CERTIFICATE_ARN = re.compile(
    r"^arn:aws(-cn|-us-gov)?:acm:[a-z]{2}(-gov)?-[a-z]+-\d:\d{12}:certificate/"
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
WAFV2_ACL_ARN = re.compile(
    r"^arn:aws(-cn|-us-gov)?:wafv2:[a-z]{2}(-gov)?-[a-z]+-\d:\d{12}:regional/webacl/[\w-]{1,128}/"
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
HOSTED_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")
DNS_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
S3_PREFIX = re.compile(r"^[A-Za-z0-9!_.*'()/-]{0,200}$")
SUCCESS_CODES = re.compile(r"^\d{3}(-\d{3})?(,\d{3}(-\d{3})?)*$")
# TLS 1.2 and 1.3 only: the ELB policies whose name says so.
SSL_POLICY = re.compile(r"^ELBSecurityPolicy-TLS13-1-[23]-[\w-]+$")
# A model's name is its served name, a Service name (vllm-<name>) and a label value.
MODEL_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,40}[a-z0-9])?$")
HF_MODEL_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
CPU_QUANTITY = re.compile(r"^(\d+(\.\d{1,3})?|\d+m)$")
MEMORY_QUANTITY = re.compile(r"^\d+(Mi|Gi)$")
# Only releases of the PostgreSQL build, pinned: `pg-<major>.<minor>.<patch>`. The floating `pg`
# tag would change what runs on a pod restart; the SQLite build cannot be replicated. An optional
# `@sha256:<digest>` pins the content too.
ANYTHINGLLM_TAG_PATTERN = re.compile(r"^pg-\d+\.\d+\.\d+(@sha256:[0-9a-f]{64})?$")
# An HTTP header field name (RFC 9110 token), at most 40 characters as ALB conditions allow.
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,40}$")
# ALB matches header values with `*` and `?` as wildcards: a canary value is literal text.
HEADER_VALUE = re.compile(r"^[A-Za-z0-9._~-]{1,128}$")
# pgvector's `vector` type holds at most 16000 dimensions.
# pgvector's HNSW index (which AnythingLLM's similarity search needs at any size) takes `vector`
# columns of at most 2000 dimensions (pgvector README, "HNSW").
MAX_VECTOR_DIMENSIONS = 2000
ADMIN_USERNAME = r"^[a-z][a-z0-9._@-]{1,63}$"
HF_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")
HF_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def cpu_millicores(value: str) -> int:
    return int(value[:-1]) if value.endswith("m") else int(Decimal(value) * 1000)


def memory_mib(value: str) -> int:
    return int(value[:-2]) * (1024 if value.endswith("Gi") else 1)


class ResourceSettings(_Model):
    """Requests and limits of one container (Kubernetes quantities, e.g. `500m`, `2Gi`)."""

    cpu: str
    memory: str
    cpu_limit: str
    memory_limit: str

    @field_validator("cpu", "cpu_limit", mode="before")
    @classmethod
    def _number_as_quantity(cls, value: object) -> object:
        # Kubernetes accepts `cpu: 1` unquoted, and YAML (then the CLI's JSON) makes it a number:
        # take it as the quantity it is, rendered as text.
        if isinstance(value, int | float) and not isinstance(value, bool):
            return format(value, "g")
        return value

    @field_validator("cpu", "cpu_limit")
    @classmethod
    def _cpu(cls, value: str) -> str:
        if not CPU_QUANTITY.match(value) or cpu_millicores(value) <= 0:
            raise ConfigProblem("", f"{value!r} is not a CPU quantity; use cores (`2`, `0.5`) or "
                                    "millicores (`500m`)")
        return value

    @field_validator("memory", "memory_limit")
    @classmethod
    def _memory(cls, value: str) -> str:
        if not MEMORY_QUANTITY.match(value) or memory_mib(value) <= 0:
            raise ConfigProblem("", f"{value!r} is not a memory quantity; use Mi or Gi, e.g. `2Gi`")
        return value

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> ResourceSettings:
        if cpu_millicores(self.cpu_limit) < cpu_millicores(self.cpu):
            raise ConfigProblem("cpuLimit", f"{self.cpu_limit} is below the request {self.cpu}")
        if memory_mib(self.memory_limit) < memory_mib(self.memory):
            raise ConfigProblem("memoryLimit", f"{self.memory_limit} is below the request {self.memory}")
        return self

    def as_kubernetes(self) -> dict:
        return {"requests": {"cpu": self.cpu, "memory": self.memory},
                "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit}}


class HealthCheckSettings(_Model):
    """The ALB target group's health check of AnythingLLM (always `GET /api/ping`)."""

    interval_seconds: int = Field(default=15, ge=5, le=300)
    timeout_seconds: int = Field(default=5, ge=2, le=120)
    healthy_threshold: int = Field(default=2, ge=2, le=10)
    unhealthy_threshold: int = Field(default=3, ge=2, le=10)
    success_codes: str = "200"

    @field_validator("success_codes")
    @classmethod
    def _codes(cls, value: str) -> str:
        if not SUCCESS_CODES.match(value):
            raise ConfigProblem("", f"{value!r} is not an HTTP code list; use e.g. `200`, `200,204` "
                                    "or `200-299`")
        return value

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> HealthCheckSettings:
        if self.timeout_seconds >= self.interval_seconds:
            raise ConfigProblem(
                "timeoutSeconds", f"{self.timeout_seconds} must be below intervalSeconds "
                f"({self.interval_seconds}); ELB rejects a timeout that is not shorter",
            )
        return self


class AccessLogSettings(_Model):
    """ALB access logs into an S3 bucket the stack creates with the policy ELB needs.

    `createBucket` names the new bucket (globally unique, not existing yet). An existing bucket is
    not accepted: whether its policy admits ELB cannot be checked before `up` (without it the
    controller fails and the Ingress never gets an address), and taking it over would replace its
    policy and lifecycle rules.
    """

    create_bucket: str
    prefix: str = ""
    retention_days: int = Field(default=90, ge=1, le=3650)

    @model_validator(mode="before")
    @classmethod
    def _existing_bucket(cls, value: object) -> object:
        if isinstance(value, dict) and "bucket" in value:
            raise ConfigProblem(
                "bucket", "the stack now creates the access-log bucket with the policy ELB log "
                "delivery needs: name a new bucket in `createBucket` (an existing bucket is not "
                "taken over; README, 'Stacks deployed before the stack created its access-log "
                "bucket')")
        return value

    @field_validator("create_bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if not S3_BUCKET.match(value):
            raise ConfigProblem("", f"{value!r} is not an S3 bucket name")
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not S3_PREFIX.match(value) or "AWSLogs" in value or value.startswith("/"):
            raise ConfigProblem("", f"{value!r} is not an access-log prefix (no leading '/', and "
                                    "ELB forbids `AWSLogs` in it)")
        return value


class DnsSettings(_Model):
    """An alias A record for the ALB in a Route 53 hosted zone."""

    hosted_zone_id: str
    name: str

    @field_validator("hosted_zone_id")
    @classmethod
    def _zone(cls, value: str) -> str:
        if not HOSTED_ZONE_ID.match(value):
            raise ConfigProblem("", f"{value!r} is not a Route 53 hosted zone id (Z...)")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not DNS_NAME.match(value):
            raise ConfigProblem("", f"{value!r} is not a lowercase DNS name, e.g. chat.example.com")
        return value


class IngressSettings(_Model):
    """The ALB in front of AnythingLLM, as annotations of its Ingress."""

    scheme: Literal["internet-facing", "internal"] = "internet-facing"
    inbound_cidrs: list[str] = Field(default_factory=lambda: ["0.0.0.0/0"], min_length=1)
    certificate_arn: str | None = None
    ssl_policy: str = "ELBSecurityPolicy-TLS13-1-2-2021-06"
    # AnythingLLM's agent WebSocket sends no pings and waits up to 300 s for the user.
    idle_timeout_seconds: int = Field(default=600, ge=300, le=4000)
    sticky_session_seconds: int = Field(default=86400, ge=1, le=604800)
    # In-flight requests (streamed answers) get this long to finish when a pod leaves; pods
    # stay up longer than this (preStop), so the ALB never cuts a stream a pod could finish.
    # No default: the environment's (SERVING_ENVIRONMENT_DEFAULTS).
    deregistration_delay_seconds: int = Field(ge=0, le=3600)
    health_check: HealthCheckSettings = Field(default_factory=HealthCheckSettings)
    deletion_protection: bool
    access_logs: AccessLogSettings | None = None
    waf_acl_arn: str | None = None
    dns: DnsSettings | None = None
    auth: EdgeAuthSettings | None = None

    @field_validator("inbound_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        # Kept in canonical form: EC2 refuses a bare address as a rule's CIDR. Each CIDR is
        # one rule per listener port of the ALB's security group, named after it, so a CIDR
        # listed twice (also as 203.0.113.7 and 203.0.113.7/32) is refused.
        cidrs = cidr_list(value)
        raise_all([ConfigProblem(f"[{index}]", f"{cidr!r} is listed twice")
                   for index, cidr in enumerate(cidrs) if cidr in cidrs[:index]])
        return cidrs

    @field_validator("certificate_arn")
    @classmethod
    def _certificate(cls, value: str | None) -> str | None:
        if value is not None and not ACM_CERTIFICATE_ARN.match(value):
            raise ConfigProblem("", f"{value!r} is not an ACM certificate ARN "
                                    "(arn:aws:acm:<region>:<account>:certificate/<uuid>)")
        return value

    @field_validator("ssl_policy")
    @classmethod
    def _ssl_policy(cls, value: str) -> str:
        if not SSL_POLICY.match(value):
            raise ConfigProblem("", f"{value!r} is not allowed; use a TLS 1.2+ policy such as "
                                    "ELBSecurityPolicy-TLS13-1-2-2021-06")
        return value

    @field_validator("waf_acl_arn")
    @classmethod
    def _waf(cls, value: str | None) -> str | None:
        # "none" takes an attached web ACL off (the controller's `wafv2-acl-arn: none`); leaving
        # the key out leaves whatever is attached alone, Firewall Manager's included.
        if value is not None and value != "none" and not WAFV2_ACL_ARN.match(value):
            raise ConfigProblem("", f"{value!r} is not a regional WAFv2 web ACL ARN "
                                    "(arn:aws:wafv2:<region>:<account>:regional/webacl/<name>/<id>) "
                                    "or 'none'")
        return value

    @property
    def https(self) -> bool:
        return self.certificate_arn is not None


# The compile cache's native sidecar: copies only (compile_cache.py).
SHARED_COMPILE_CACHE_REQUESTS = (100, 128)
# The metrics sidecar: forwards the scraper's GET /metrics to vLLM (model_metrics.py).
METRICS_SIDECAR_REQUESTS = (20, 64)
# Concurrent requests (running + waiting) per replica that scaling aims at, by kind: a 7B chat
# model on one L4/A10G keeps its answers streaming at reading speed up to about this many;
# embedding requests are short and batch well.
DEFAULT_TARGET_REQUESTS = {"chat": 16, "embedding": 64}
DEFAULT_IDLE_MINUTES = 30
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
CLOCK_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def cron_days(value: str) -> str:
    """`Mon-Fri`, `Mon,Wed,Fri`, `Sat-Sun` as a cron day-of-week field (0 = Sunday); ranges run
    Monday to Sunday and do not wrap."""
    order = [*WEEKDAYS[1:], WEEKDAYS[0]]
    fields = []
    for item in value.lower().replace(" ", "").split(","):
        first, _, last = item.partition("-")
        if first not in order or (last and last not in order):
            raise ConfigProblem("", f"{value!r} is not a list of days; use e.g. `Mon-Fri` or "
                                    "`Mon,Wed,Fri` (Mon Tue Wed Thu Fri Sat Sun)")
        last = last or first
        if order.index(last) < order.index(first):
            raise ConfigProblem("", f"{item!r} runs backwards; ranges run from Mon to Sun "
                                    "(write Fri-Sun,Mon for a wrapping range)")
        days = order[order.index(first):order.index(last) + 1]
        fields += [str(WEEKDAYS.index(day)) for day in days]
    numbers = sorted(set(fields), key=int)
    return ",".join(numbers)


class AwakeHoursSettings(_Model):
    """Hours in which a model keeps at least `replicas` warm (a KEDA cron trigger), e.g. the
    working day of its users; outside them it falls back to its floor (`replicas`, 0 for a
    model that sleeps)."""

    time_zone: str
    days: str = "Mon-Fri"
    start: str
    end: str
    replicas: int = Field(default=1, ge=1, le=32)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        # KEDA's cron scaler loads the zone with Go's time.LoadLocation: an IANA name.
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigProblem("", f"{value!r} is not an IANA time zone, e.g. `Europe/Berlin` or "
                                    "`America/New_York`") from None
        return value

    @field_validator("days")
    @classmethod
    def _days(cls, value: str) -> str:
        cron_days(value)
        return value

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not CLOCK_TIME.match(value):
            raise ConfigProblem("", f"{value!r} is not a time of day; use 24-hour `HH:MM`, e.g. `08:00`")
        return value

    @model_validator(mode="after")
    def _window(self) -> AwakeHoursSettings:
        if self.end <= self.start:
            raise ConfigProblem("end", f"{self.end} is not after start ({self.start}); a window "
                                       "runs within one day")
        return self

    def cron(self, clock: str) -> str:
        hour, minute = clock.split(":")
        return f"{int(minute)} {int(hour)} * * {cron_days(self.days)}"


class ModelSettings(_Model):
    """One vLLM model server: a StatefulSet, and a Service per replica, on one GPU node group."""

    name: str
    model: str
    kind: Literal["chat", "embedding"]
    node_group: str
    gpus: Literal[1, 2, 4, 8] = 1
    # The floor: replicas kept however quiet it is. 0: the model sleeps when idle (not in prod).
    replicas: int = Field(default=1, ge=0, le=32)
    # The ceiling KEDA scales up to on vLLM's load (model_autoscaling.py); unset: the floor,
    # or 1 for a model that sleeps.
    max_replicas: int | None = Field(default=None, ge=1, le=32)
    # What one replica should carry: concurrent requests (running + waiting), and for chat
    # models the share of its KV cache in use. Unset: DEFAULT_TARGET_REQUESTS by kind; 0.8.
    target_requests_per_replica: int | None = Field(default=None, ge=1, le=1024)
    target_kv_cache_usage: float | None = Field(default=None, ge=0.1, le=1.0)
    # A model with replicas 0 sleeps this long after its last request (unset: 30).
    idle_minutes: int | None = Field(default=None, ge=5, le=1440)
    awake_hours: AwakeHoursSettings | None = None
    max_model_len: int = Field(ge=512, le=1048576)
    # Below 0.5 only on a group that shares its GPUs (rules.py): elsewhere the rest would idle.
    gpu_memory_utilization: float = Field(default=0.9, ge=0.05, le=0.95)
    dimensions: int | None = Field(default=None, ge=1, le=MAX_VECTOR_DIMENSIONS)
    shm_size: str = "2Gi"
    resources: ResourceSettings = Field(default_factory=lambda: ResourceSettings(
        cpu="3", memory="12Gi", cpu_limit="3", memory_limit="12Gi"))
    # The Hugging Face revision of the weights and tokenizer (vLLM `--revision` and
    # `--tokenizer-revision`): a 40-hex commit pins them; unset follows the repository's main.
    revision: str | None = None
    # The size of the weights vLLM downloads (the repository's *.safetensors files): the startup
    # probe is sized from it (cold_start.py). Unset: a fixed allowance, with a warning.
    weights_gib: float | None = Field(default=None, gt=0, le=4096)
    # `shared`: compiled kernels are published to the model-cache file system and seeded into
    # the next pod of the model (compile_cache.py); `pod`: every pod compiles for itself.
    compile_cache: Literal["shared", "pod"] = "shared"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not MODEL_NAME.match(value):
            raise ConfigProblem("", f"{value!r} is not allowed; use 1-42 lowercase letters, digits and "
                                    "'-', starting with a letter (it is the served model name and part "
                                    "of a Service name)")
        return value

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        if not HF_MODEL_ID.match(value):
            raise ConfigProblem("", f"{value!r} is not a Hugging Face model id (<org>/<model>)")
        return value

    @field_validator("revision")
    @classmethod
    def _revision(cls, value: str | None) -> str | None:
        if value is not None and not HF_REVISION.match(value):
            raise ConfigProblem("", f"{value!r} is not a Hugging Face revision (a 40-hex commit, or "
                                    "a branch or tag name)")
        return value

    @property
    def sidecar_requests(self) -> tuple[int, int]:
        """(CPU millicores, memory MiB) the pod requests beside vLLM: the compile cache's
        publishing sidecar runs as long as the pod (compile_cache.py), and so does the metrics
        sidecar of an autoscaled model (model_metrics.py)."""
        cache = SHARED_COMPILE_CACHE_REQUESTS if self.compile_cache == "shared" else (0, 0)
        metrics = METRICS_SIDECAR_REQUESTS if self.autoscaled else (0, 0)
        return cache[0] + metrics[0], cache[1] + metrics[1]

    @property
    def peak_replicas(self) -> int:
        """The most replicas the model can run: what its node group must hold."""
        return self.max_replicas if self.max_replicas is not None else max(self.replicas, 1)

    @property
    def sleeps(self) -> bool:
        return self.replicas == 0

    @property
    def autoscaled(self) -> bool:
        """KEDA owns the replica count: the model scales with load, sleeps, or keeps awake
        hours."""
        return self.peak_replicas > self.replicas or self.awake_hours is not None

    @property
    def requests_per_replica(self) -> int:
        return self.target_requests_per_replica or DEFAULT_TARGET_REQUESTS[self.kind]

    @property
    def kv_cache_usage(self) -> float | None:
        """The KV-cache target of a chat model (an encoder keeps no KV cache)."""
        if self.kind != "chat":
            return None
        return self.target_kv_cache_usage if self.target_kv_cache_usage is not None else 0.8

    @property
    def idle_period_minutes(self) -> int | None:
        if not self.sleeps:
            return None
        return self.idle_minutes if self.idle_minutes is not None else DEFAULT_IDLE_MINUTES

    @property
    def pinned(self) -> bool:
        return self.revision is not None and bool(HF_COMMIT.match(self.revision))

    @field_validator("shm_size")
    @classmethod
    def _shm(cls, value: str) -> str:
        if not MEMORY_QUANTITY.match(value):
            raise ConfigProblem("", f"{value!r} is not a memory quantity; use Mi or Gi, e.g. `2Gi`")
        return value

    @model_validator(mode="after")
    def _kind_rules(self) -> ModelSettings:
        if self.kind == "embedding" and self.dimensions is None:
            raise ConfigProblem("dimensions", "an embedding model must declare its vector dimensions "
                                              "(the pgvector column is created with them)")
        if self.kind == "chat" and self.dimensions is not None:
            raise ConfigProblem("dimensions", "only embedding models have dimensions")
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            raise ConfigProblem("maxReplicas", f"{self.max_replicas} is below replicas ({self.replicas})")
        if self.idle_minutes is not None and not self.sleeps:
            raise ConfigProblem("idleMinutes", "only a model that sleeps (replicas: 0) has an idle "
                                               f"period; {self.name} keeps {self.replicas}")
        if self.target_kv_cache_usage is not None and self.kind != "chat":
            raise ConfigProblem("targetKvCacheUsage", "only chat models keep a KV cache to scale on")
        if self.awake_hours is not None:
            if self.awake_hours.replicas <= self.replicas:
                raise ConfigProblem("awakeHours.replicas",
                                    f"{self.awake_hours.replicas} is not above the floor (replicas: "
                                    f"{self.replicas}), so the awake hours would change nothing")
            if self.awake_hours.replicas > self.peak_replicas:
                raise ConfigProblem("awakeHours.replicas",
                                    f"{self.awake_hours.replicas} is above maxReplicas "
                                    f"({self.peak_replicas})")
        if memory_mib(self.shm_size) >= memory_mib(self.resources.memory_limit):
            raise ConfigProblem("shmSize", f"{self.shm_size} must stay below resources.memoryLimit "
                                           f"({self.resources.memory_limit}): /dev/shm counts against it")
        return self


class ModelServingSettings(_Model):
    """The vLLM model servers. Exactly one embedding model; at least one chat model."""

    models: list[ModelSettings] = Field(min_length=2)

    @model_validator(mode="after")
    def _models(self) -> ModelServingSettings:
        names = [model.name for model in self.models]
        for index, name in enumerate(names):
            if names.index(name) != index:
                raise ConfigProblem(f"models[{index}].name", f"{name!r} is used twice")
        if not self.chat_models:
            raise ConfigProblem("models", "no model has kind 'chat'; AnythingLLM needs one")
        embedding = [m.name for m in self.models if m.kind == "embedding"]
        if len(embedding) != 1:
            raise ConfigProblem("models", f"exactly one model must have kind 'embedding' "
                                          f"(AnythingLLM uses one embedder); got {embedding}")
        return self

    @property
    def chat_models(self) -> list[ModelSettings]:
        return [model for model in self.models if model.kind == "chat"]

    @property
    def embedding_model(self) -> ModelSettings:
        return next(model for model in self.models if model.kind == "embedding")

    def by_name(self, name: str) -> ModelSettings:
        return next(model for model in self.models if model.name == name)


class _Autoscaled(_Model):
    """Replicas behind a CPU HorizontalPodAutoscaler: `replicas` is its minimum."""

    replicas: int = Field(default=2, ge=2, le=50)
    max_replicas: int | None = Field(default=None, ge=2, le=100)
    target_cpu_utilization: int = Field(default=70, ge=20, le=95)

    @model_validator(mode="after")
    def _scaling(self) -> _Autoscaled:
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            raise ConfigProblem("maxReplicas", f"{self.max_replicas} is below replicas ({self.replicas})")
        return self

    @property
    def replica_ceiling(self) -> int:
        return self.max_replicas if self.max_replicas is not None else 2 * self.replicas


def _anythingllm_tag(value: str) -> str:
    if not ANYTHINGLLM_TAG_PATTERN.match(value):
        raise ConfigProblem("", f"{value!r} is not a pinned release of AnythingLLM's PostgreSQL "
                                f"build; use pg-<major>.<minor>.<patch> (e.g. {ANYTHINGLLM_TAG}), optionally "
                                f"followed by @sha256:<64 hex digits>")
    return value


class CanaryHeaderSettings(_Model):
    """Requests carrying `name: value` go to the canary, whatever the weight."""

    name: str
    value: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not HEADER_NAME.match(value):
            raise ConfigProblem("", f"{value!r} is not an HTTP header name of at most 40 characters "
                                    "(letters, digits and !#$%&'*+.^_`|~-)")
        if value.lower() in {"host", "cookie"}:
            raise ConfigProblem("", f"{value!r} cannot route a canary: the ALB matches Host with a "
                                    "host-header condition, and cookies carry the stickiness")
        return value

    @field_validator("value")
    @classmethod
    def _value(cls, value: str) -> str:
        if not HEADER_VALUE.match(value):
            raise ConfigProblem("", f"{value!r}: use 1-128 letters, digits and ._~- (the ALB "
                                    "treats * and ? as wildcards)")
        return value


class CanarySettings(_Autoscaled):
    """A second AnythingLLM Deployment running `imageTag`, which the ALB sends `weight` percent
    of new sessions (and every request carrying `header`) to.

    `isolation` has no default, because the two choices fail differently: `shared` runs the
    canary on stable's database and storage, so a schema migration in the new release changes
    them under stable's pods; `isolated` gives it its own database and storage directory, so
    its users start from an empty instance.
    """

    image_tag: str
    weight: int = Field(default=0, ge=0, le=100)
    header: CanaryHeaderSettings | None = None
    isolation: Literal["shared", "isolated"]
    # One pod is enough for a canary; maxReplicas and targetCpuUtilization as for `app`.
    replicas: int = Field(default=1, ge=1, le=50)

    @field_validator("image_tag")
    @classmethod
    def _image_tag(cls, value: str) -> str:
        return _anythingllm_tag(value)

    @model_validator(mode="before")
    @classmethod
    def _isolation_is_a_choice(cls, data: object) -> object:
        if isinstance(data, dict) and "isolation" not in data:
            raise ConfigProblem(
                "isolation", "required: 'shared' (the canary uses stable's database and storage; a "
                "schema migration in it changes them for stable too) or 'isolated' (its own "
                "database and storage directory; its users start from an empty instance)")
        return data

    @property
    def isolated(self) -> bool:
        return self.isolation == "isolated"


class AppSettings(_Autoscaled):
    """AnythingLLM: replicas behind the ALB, autoscaled on CPU, and optionally a canary."""

    # No default: the environment's (SERVING_ENVIRONMENT_DEFAULTS) applies.
    replicas: int = Field(ge=2, le=50)
    # Promoting a canary = setting this to the canary's tag.
    image_tag: str = ANYTHINGLLM_TAG
    canary: CanarySettings | None = None
    chat_model: str | None = None
    resources: ResourceSettings = Field(default_factory=lambda: ResourceSettings(
        cpu="500m", memory="2Gi", cpu_limit="2", memory_limit="4Gi"))
    # The admin the stack creates when it switches AnythingLLM to multi-user mode (its password
    # is generated: stack output `anythingllmAdmin`). AnythingLLM's rule: server/models/user.js.
    admin_username: str = "admin"
    # Characters per chunk and overlap of AnythingLLM's text splitter (its defaults 1000 / 20,
    # server/utils/TextSplitter/index.js); the header it adds to each chunk comes on top.
    chunk_size: int = Field(default=1000, ge=100, le=100000)
    chunk_overlap: int = Field(default=20, ge=0, le=10000)
    # Tokens kept free for the answer in the chat model's window: AnythingLLM sends no
    # max_tokens and fills `LITE_LLM_MODEL_TOKEN_LIMIT` (less its 600-token margin) with the
    # prompt; vLLM then allows max_model_len - prompt for the answer. Default: a quarter of the
    # chat model's window, at most 4096 (StackSettings.answer_tokens).
    answer_tokens: int | None = Field(default=None, ge=256, le=65536)

    @field_validator("admin_username")
    @classmethod
    def _admin_username(cls, value: str) -> str:
        if not re.match(ADMIN_USERNAME, value):
            raise ConfigProblem("", f"{value!r} is not an AnythingLLM username: 2-64 characters, "
                                    "lowercase letters, digits and . _ @ -, starting with a letter")
        return value

    @model_validator(mode="after")
    def _splitter(self) -> AppSettings:
        if self.chunk_overlap >= self.chunk_size:
            raise ConfigProblem("chunkOverlap", f"{self.chunk_overlap} must be below chunkSize "
                                                f"({self.chunk_size})")
        return self

    @field_validator("image_tag")
    @classmethod
    def _image_tag(cls, value: str) -> str:
        return _anythingllm_tag(value)

    @field_validator("resources")
    @classmethod
    def _memory_floor(cls, value: ResourceSettings) -> ResourceSettings:
        if memory_mib(value.memory) < 2048:
            raise ConfigProblem("memory", f"{value.memory} is below 2Gi, the least AnythingLLM runs in")
        return value


class GatewaySettings(_Autoscaled):
    """The LiteLLM gateway: replicas (one worker each) sharing limits and cache in Redis."""

    cache_ttl_seconds: int = Field(default=600, ge=0, le=604800)
    # Cache chat answers too (off: "regenerate" would repeat the cached answer for the TTL).
    cache_chat_completions: bool = False
    # Limits of AnythingLLM's virtual key (unset: none beyond the models it may call).
    client_rpm_limit: int | None = Field(default=None, ge=1)
    client_tpm_limit: int | None = Field(default=None, ge=1)
    client_max_parallel_requests: int | None = Field(default=None, ge=1)
    request_timeout_seconds: int = Field(default=600, ge=30, le=3600)
    resources: ResourceSettings = Field(default_factory=lambda: ResourceSettings(
        cpu="500m", memory="1Gi", cpu_limit="2", memory_limit="4Gi"))


__all__ = [
    "SERVING_ENVIRONMENT_DEFAULTS",
    "AccessLogSettings",
    "AppSettings",
    "CanaryHeaderSettings",
    "CanarySettings",
    "DnsSettings",
    "GatewaySettings",
    "HealthCheckSettings",
    "IngressSettings",
    "ModelServingSettings",
    "ModelSettings",
    "ResourceSettings",
]
