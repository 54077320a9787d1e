"""The rules that tie the stack's sections to each other and to the environment.

Each rule names the top-level settings it reads and yields every problem it finds. They all
run, in the order below (identity and network first, so that a root cause comes before what
follows from it), and a rule is skipped only when a setting it reads is itself invalid: its
problems then would be consequences of one already reported.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ..instance_types import GPU_INSTANCE_TYPES, INSTANCE_FACTS, pod_room
from .base import ConfigProblem
from .data import BURSTABLE_CACHE, BURSTABLE_DB
from .serving import cpu_millicores, memory_mib

if TYPE_CHECKING:
    from .stack import StackSettings

# What one CUDA process holds on its GPU outside vLLM's share (context, cuBLAS/NCCL
# workspaces): an estimate, 0.5-0.75 GiB on the GPUs of the instance table.
CUDA_CONTEXT_GIB = 0.75

PROD_MIN_BACKUP_RETENTION_DAYS = 14
PROD_MIN_APP_REPLICAS = 3
# Audit trails (the Kubernetes audit log, the PostgreSQL log) are kept at least a year in prod.
PROD_MIN_AUDIT_LOG_DAYS = 365

Rule = Callable[["StackSettings"], Iterator[ConfigProblem]]
RULES: list[tuple[frozenset[str], Rule]] = []


def rule(*reads: str) -> Callable[[Rule], Rule]:
    """Register a rule that reads the top-level settings `reads` (field names)."""
    def register(function: Rule) -> Rule:
        RULES.append((frozenset(reads), function))
        return function
    return register


def run_rules(settings: StackSettings, *, invalid: frozenset[str] = frozenset()) -> list[ConfigProblem]:
    """Every problem the rules find in `settings`, skipping rules that read an `invalid` setting.

    Settings are named by field (`cluster`, `cluster.system_node_group`): a rule that reads a
    section is skipped when any key of it is invalid, one that reads a key only when that key is.
    """
    return [problem for reads, check in RULES
            if not any(_overlap(read, bad) for read in reads for bad in invalid)
            for problem in check(settings)]


def _overlap(read: str, bad: str) -> bool:
    return read == bad or read.startswith(bad + ".") or bad.startswith(read + ".")


def region_partition(region: str) -> str:
    """The AWS partition of a region (the ARN prefix its resources carry)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


@rule("region", "network.availability_zones")
def _zones_of_the_region(s: StackSettings) -> Iterator[ConfigProblem]:
    from .zones import zone_problem

    for index, zone in enumerate(s.network.availability_zones):
        message = zone_problem(s.region, zone)
        if message is not None:
            yield ConfigProblem(f"network.availabilityZones[{index}]", message)


@rule("network.vpc_cidr", "cluster.service_ipv4_cidr")
def _service_cidr_outside_the_vpc(s: StackSettings) -> Iterator[ConfigProblem]:
    if s.network.vpc_cidr is None:
        return
    vpc = ipaddress.ip_network(s.network.vpc_cidr)
    service = ipaddress.ip_network(s.cluster.service_ipv4_cidr)
    if vpc.overlaps(service):
        yield ConfigProblem("cluster.serviceIpv4Cidr",
                            f"{service} overlaps network.vpcCidr {vpc}; Service IPs must not collide "
                            "with node and pod addresses")


@rule("environment", "network.existing", "network.availability_zones", "network.nat_gateways")
def _prod_network(s: StackSettings) -> Iterator[ConfigProblem]:
    network = s.network
    if not s.is_prod:
        return
    if network.zone_count < 2:
        key = "network.existing.privateSubnetIds" if network.existing else "network.availabilityZones"
        yield ConfigProblem(key, f"prod needs at least 2 availability zones; got {network.zone_count}")
    if network.existing is None and network.nat_gateways != "perAz":
        yield ConfigProblem("network.natGateways",
                            f"{network.nat_gateways!r} is not allowed in prod: a single NAT gateway "
                            "is a single-AZ point of failure; use 'perAz'")


@rule("environment", "allow_replacement", "cluster.deletion_protection", "database.deletion_protection")
def _replacements_allowed(s: StackSettings) -> Iterator[ConfigProblem]:
    """`allowReplacement` lifts prod's `protect` from what it names. A replacement of a resource
    with a fixed name deletes the old one first, which EKS and RDS refuse while their own
    deletion protection is on: it is turned off in the same reviewed change."""
    if not s.allow_replacement:
        return
    if not s.is_prod:
        yield ConfigProblem("allowReplacement", f"only prod protects its stateful resources; in "
                                                f"{s.environment} a replacement needs no permission: "
                                                "remove the key")
        return
    for key, protected, setting, service in (
            ("cluster", s.deletion_protection, "cluster.deletionProtection", "EKS"),
            ("database", s.database.deletion_protection, "database.deletionProtection", "RDS")):
        if key in s.allow_replacement and protected:
            yield ConfigProblem("allowReplacement", f"{key}: a replacement deletes the old {key} "
                                f"first, which {service} refuses while {setting} is true: set it "
                                "false in this change (and back once the replacement is done)")


@rule("environment", "cluster.public_access_cidrs", "cluster.deletion_protection",
      "cluster.system_node_group", "cluster.log_types", "cluster.log_retention_days",
      "allow_replacement")
def _cluster_for_the_environment(s: StackSettings) -> Iterator[ConfigProblem]:
    cluster = s.cluster
    if s.is_prod:
        if "0.0.0.0/0" in cluster.public_access_cidrs:
            yield ConfigProblem("cluster.publicAccessCidrs",
                                "'0.0.0.0/0' is not allowed in prod; list the CIDRs of your CI "
                                "runners and VPN, or leave it empty for a private-only endpoint")
        if cluster.deletion_protection is False and "cluster" not in s.allow_replacement:
            yield ConfigProblem("cluster.deletionProtection", "cannot be false in prod (except "
                                "with allowReplacement: [cluster], for a reviewed replacement)")
        if "audit" in cluster.log_types and cluster.log_retention_days < PROD_MIN_AUDIT_LOG_DAYS:
            yield ConfigProblem("cluster.logRetentionDays",
                                f"{cluster.log_retention_days} is below {PROD_MIN_AUDIT_LOG_DAYS}: prod "
                                "keeps the Kubernetes audit log at least a year")
        if "audit" not in cluster.log_types:
            yield ConfigProblem("cluster.logTypes", "must include 'audit' in prod: who changed what in "
                                                    "the cluster")
        if cluster.system_node_group.min_size < 2:
            yield ConfigProblem("cluster.systemNodeGroup.minSize",
                                f"{cluster.system_node_group.min_size} is below 2; prod keeps "
                                "add-ons on at least two nodes")
    if s.environment == "staging" and cluster.deletion_protection:
        yield ConfigProblem("cluster.deletionProtection",
                            "cannot be true for staging: throwaway stacks must destroy in one run")


@rule("environment", "expires_at")
def _prod_never_expires(s: StackSettings) -> Iterator[ConfigProblem]:
    if s.is_prod and s.expires_at is not None:
        yield ConfigProblem("expiresAt", "cannot be set in prod: prod never expires")


@rule("region", "cluster.admin_role_arns")
def _admin_roles_in_the_partition(s: StackSettings) -> Iterator[ConfigProblem]:
    for index, arn in enumerate(s.cluster.admin_role_arns):
        yield from _partition_problem(s.region, f"cluster.adminRoleArns[{index}]", arn)


@rule("region", "ingress.certificate_arn", "ingress.waf_acl_arn")
def _ingress_arns_in_the_region(s: StackSettings) -> Iterator[ConfigProblem]:
    for key, arn in (("ingress.certificateArn", s.ingress.certificate_arn),
                     ("ingress.wafAclArn", s.ingress.waf_acl_arn)):
        if arn is None or arn == "none":
            continue
        wrong_partition = list(_partition_problem(s.region, key, arn))
        yield from wrong_partition
        # An ALB takes a certificate and a regional web ACL of its own region only.
        region = arn.split(":")[3]
        if not wrong_partition and region != s.region:
            yield ConfigProblem(key, f"is in {region}, but the ALB is in {s.region} (aws:region): "
                                     f"use one from {s.region}")


def _partition_problem(region: str, key: str, arn: str) -> Iterator[ConfigProblem]:
    partition = region_partition(region)
    if arn.split(":")[1] != partition:
        yield ConfigProblem(key, f"is in partition {arn.split(':')[1]!r}, but {region} (aws:region) "
                                 f"is in {partition!r}")


@rule("environment", "region", "storage.backups", "backup")
def _backups(s: StackSettings) -> Iterator[ConfigProblem]:
    backup = s.backup
    if s.is_prod and not backup.enabled:
        yield ConfigProblem("backup.enabled", "cannot be false in prod: AWS Backup keeps the "
                                              "database and the file system")
    if backup.enabled and s.storage.backups:
        # AWS Backup runs one job per resource at a time, and both would be paid for.
        yield ConfigProblem("storage.backups", "must be false with backup.enabled: AWS Backup "
                                               "backs up the file system already, and EFS's "
                                               "automatic backups would be a second job on it")
    if backup.enabled and s.is_prod and backup.retention_days < PROD_MIN_BACKUP_RETENTION_DAYS:
        yield ConfigProblem("backup.retentionDays", f"{backup.retention_days} is below "
                                                    f"{PROD_MIN_BACKUP_RETENTION_DAYS}, the minimum "
                                                    "in prod")
    if s.environment == "staging":
        # Throwaway stacks must destroy in one run and leave nothing behind.
        if s.storage.backups:
            yield ConfigProblem("storage.backups", "cannot be true for staging: EFS keeps its "
                                                   "automatic recovery points 35 days in a vault "
                                                   "nobody may empty, after the stack is gone")
        if backup.enabled and backup.vault_lock is not None and backup.vault_lock.changeable_for_days:
            yield ConfigProblem("backup.vaultLock.changeableForDays",
                                "cannot be set for staging: a compliance lock keeps the vault and "
                                "its recovery points until they expire, so the stack could not be "
                                "destroyed")
    if backup.copy_to_region is not None:
        if backup.copy_to_region == s.region:
            yield ConfigProblem("backup.copyToRegion", f"{backup.copy_to_region!r} is the stack's "
                                                       "own region; a copy is for another one")
        elif region_partition(backup.copy_to_region) != region_partition(s.region):
            yield ConfigProblem("backup.copyToRegion", f"{backup.copy_to_region!r} is in another "
                                                       "partition than aws:region")


@rule("environment", "database", "allow_replacement")
def _database_durability(s: StackSettings) -> Iterator[ConfigProblem]:
    database = s.database
    if s.is_prod:
        checks = [
            (not database.multi_az, "database.multiAz",
             "cannot be false in prod: a single-AZ instance is down for the whole AZ outage"),
            (database.backup_retention_days < PROD_MIN_BACKUP_RETENTION_DAYS,
             "database.backupRetentionDays",
             f"{database.backup_retention_days} is below {PROD_MIN_BACKUP_RETENTION_DAYS}, "
             f"the minimum in prod (allowed {PROD_MIN_BACKUP_RETENTION_DAYS}..35)"),
            (not database.deletion_protection and "database" not in s.allow_replacement,
             "database.deletionProtection", "cannot be false in prod (except with "
             "allowReplacement: [database], for a reviewed replacement)"),
            (bool(BURSTABLE_DB.match(database.instance_class)), "database.instanceClass",
             f"{database.instance_class!r} is burstable; prod needs a fixed-performance class "
             "(e.g. db.m7g.large or db.r7g.large)"),
            (database.log_retention_days < PROD_MIN_AUDIT_LOG_DAYS, "database.logRetentionDays",
             f"{database.log_retention_days} is below {PROD_MIN_AUDIT_LOG_DAYS}: prod keeps the "
             "PostgreSQL log, an audit trail, at least a year"),
            (database.enhanced_monitoring_seconds == 0, "database.enhancedMonitoringSeconds",
             "cannot be 0 in prod: OS metrics (memory, swap, processes) are what explain a slow "
             "database; allowed 1, 5, 10, 15, 30, 60"),
        ]
        yield from (ConfigProblem(key, message) for failed, key, message in checks if failed)
    if s.environment == "staging" and database.deletion_protection:
        yield ConfigProblem("database.deletionProtection",
                            "cannot be true for staging: throwaway stacks must destroy in one run")


@rule("environment", "cache")
def _cache_durability(s: StackSettings) -> Iterator[ConfigProblem]:
    cache = s.cache
    if s.is_prod:
        checks = [
            (cache.replicas < 1, "cache.replicas",
             f"{cache.replicas} leaves no replica to fail over to; prod needs at least 1"),
            (cache.snapshot_retention_days < 1, "cache.snapshotRetentionDays",
             "cannot be 0 in prod; allowed 1..35"),
            (bool(BURSTABLE_CACHE.match(cache.node_type)), "cache.nodeType",
             f"{cache.node_type!r} is burstable; prod needs a fixed-performance type "
             "(e.g. cache.m7g.large or cache.r7g.large)"),
        ]
        yield from (ConfigProblem(key, message) for failed, key, message in checks if failed)


@rule("cache.cluster_mode")
def _cache_mode(s: StackSettings) -> Iterator[ConfigProblem]:
    if s.cache.cluster_mode == "enabled":
        yield ConfigProblem(
            "cache.clusterMode", "'enabled' is not supported: the cache serves only LiteLLM, "
            "which builds a plain Redis client unless given startup nodes (litellm/_redis.py) "
            "and has open cluster-mode bugs (MOVED/CROSSSLOT, rate-limiter slot errors: "
            "BerriAI/litellm #8159, #8878, #15066); use 'disabled' (a primary and replicas "
            "across zones with automatic failover)")


@rule("cluster.gpu_node_groups", "model_serving")
def _models_fit_their_node_groups(s: StackSettings) -> Iterator[ConfigProblem]:
    groups = s.cluster.gpu_node_group_by_name
    gpus_wanted: dict[str, int] = {}
    for index, model in enumerate(s.model_serving.models):
        key = f"modelServing.models[{index}]"
        group = groups.get(model.node_group)
        if group is None:
            yield ConfigProblem(f"{key}.nodeGroup",
                                f"{model.node_group!r} is not a GPU node group; declared: "
                                f"{sorted(groups) or 'none (add cluster.gpuNodeGroups)'}")
            continue
        if model.gpus > group.gpus_per_node:
            yield ConfigProblem(f"{key}.gpus",
                                f"{model.gpus} GPUs (tensor parallel) do not fit on one node of "
                                f"{group.name!r} ({group.instance_types[0]}: {group.gpus_per_node} GPU)")
            continue  # the group's capacity is judged on models that fit one of its nodes
        if group.gpu_sharing is not None and model.gpus > 1:
            # Two slices may be two turns on the same GPU (the device plugin's
            # failRequestsGreaterThanOne refuses such pods): tensor parallelism needs whole GPUs.
            yield ConfigProblem(f"{key}.gpus",
                                f"is {model.gpus}, but {group.name!r} shares its GPUs "
                                "(gpuSharing): a model there takes one slice; put a "
                                "tensor-parallel model on a group without sharing")
            continue
        gpus_wanted[group.name] = gpus_wanted.get(group.name, 0) + model.gpus * model.peak_replicas
    for index, group in enumerate(s.cluster.gpu_node_groups):
        capacity = group.max_size * group.slices_per_node
        unit = "GPUs" if group.gpu_sharing is None else f"GPU slices ({group.slices_per_gpu} per GPU)"
        if gpus_wanted.get(group.name, 0) > capacity:
            yield ConfigProblem(f"cluster.gpuNodeGroups[{index}].maxSize",
                                f"{group.max_size} nodes give {capacity} {unit}, but the models "
                                f"placed on {group.name!r} need {gpus_wanted[group.name]} "
                                "at their peak (gpus x maxReplicas)")


@rule("cluster.gpu_node_groups", "model_serving")
def _shared_gpus_fit_their_models_memory(s: StackSettings) -> Iterator[ConfigProblem]:
    """The device plugin hands out a GPU's slices to any pods of the group, two replicas of one
    model included, with no memory isolation; vLLM takes `gpuMemoryUtilization` of the whole
    GPU's memory and refuses to start when less is free. So the largest fractions that can meet
    on one GPU, one per slice, plus a CUDA context per process, must fit the GPU."""
    groups = s.cluster.gpu_node_group_by_name
    for index, model in enumerate(s.model_serving.models):
        group = groups.get(model.node_group)
        if group is not None and group.gpu_sharing is None and model.gpu_memory_utilization < 0.5:
            yield ConfigProblem(
                f"modelServing.models[{index}].gpuMemoryUtilization",
                f"{model.gpu_memory_utilization} leaves most of a whole GPU idle on "
                f"{group.name!r}, which does not share its GPUs; use 0.5-0.95, or gpuSharing on "
                "the group")
    for index, group in enumerate(s.cluster.gpu_node_groups):
        if group.gpu_sharing is None:
            continue
        pods = sorted(((model.gpu_memory_utilization, model.name)
                       for model in s.model_serving.models if model.node_group == group.name
                       for _ in range(model.peak_replicas)), reverse=True)
        together = pods[:group.slices_per_gpu]
        total = round(sum(fraction for fraction, _ in together), 4)
        # Each process's CUDA context sits outside its share (vLLM takes its startup snapshot
        # after creating it: v1/worker/gpu_worker.py, utils.py request_memory).
        # vLLM's share is of what CUDA reports: the marketed GB, counted in GiB.
        gpu_gb = min(GPU_INSTANCE_TYPES[t].gpu_memory_gb for t in group.instance_types)
        gpu_gib = round(gpu_gb * 1e9 / 2**30, 2)
        limit = round(1 - len(together) * CUDA_CONTEXT_GIB / gpu_gib, 4)
        if total > limit:
            names = " + ".join(f"{name} {fraction}" for fraction, name in together)
            yield ConfigProblem(
                f"cluster.gpuNodeGroups[{index}].gpuSharing",
                f"{group.slices_per_gpu} slices per GPU can put {names} = {total} of one GPU's "
                f"memory on it; at most {limit} fits a {gpu_gb} GB ({gpu_gib} GiB) GPU beside "
                f"{len(together)} CUDA contexts of about {CUDA_CONTEXT_GIB} GiB (vLLM's "
                "gpuMemoryUtilization is a share of the whole GPU, and it refuses to start when "
                "less is free); lower the models' gpuMemoryUtilization or maxReplicas")


@rule("app.chat_model", "app.chunk_size", "app.answer_tokens", "model_serving")
def _app_fits_its_models(s: StackSettings) -> Iterator[ConfigProblem]:
    from .stack import CHUNK_HEADER_RESERVE

    chat_names = [model.name for model in s.model_serving.chat_models]
    if s.app.chat_model is not None and s.app.chat_model not in chat_names:
        yield ConfigProblem("app.chatModel", f"{s.app.chat_model!r} is not a chat model; "
                                             f"chat models: {chat_names}")
        return
    embedder = s.model_serving.embedding_model
    if s.app.chunk_size > s.embedding_chunk_limit:
        yield ConfigProblem(
            "app.chunkSize", f"{s.app.chunk_size} characters plus the chunk header "
            f"({CHUNK_HEADER_RESERVE} reserved) do not fit {embedder.name!r}'s "
            f"{embedder.max_model_len} tokens: at most {s.embedding_chunk_limit}")
    chat = s.chat_model
    if s.answer_tokens > chat.max_model_len // 2:
        yield ConfigProblem(
            "app.answerTokens", f"{s.answer_tokens} leaves too little of {chat.name!r}'s "
            f"{chat.max_model_len}-token window for the prompt: at most {chat.max_model_len // 2}")


@rule("environment", "model_serving")
def _prod_models_keep_a_floor(s: StackSettings) -> Iterator[ConfigProblem]:
    """Prod's models never sleep: a user's first question would wait for a cold start."""
    if not s.is_prod:
        return
    for index, model in enumerate(s.model_serving.models):
        if model.sleeps:
            yield ConfigProblem(f"modelServing.models[{index}].replicas",
                                f"is 0 for {model.name}: a prod model keeps a floor of at least 1 "
                                "(sleeping models are for dev and staging)")


@rule("environment", "app.replicas")
def _prod_app(s: StackSettings) -> Iterator[ConfigProblem]:
    if s.is_prod and s.app.replicas < PROD_MIN_APP_REPLICAS:
        yield ConfigProblem("app.replicas", f"{s.app.replicas} is below {PROD_MIN_APP_REPLICAS}, "
                                            "the minimum in prod (one per availability zone)")


@rule("environment", "ingress")
def _ingress_for_the_environment(s: StackSettings) -> Iterator[ConfigProblem]:
    ingress = s.ingress
    if s.is_prod:
        if ingress.certificate_arn is None:
            yield ConfigProblem("ingress.certificateArn",
                                "is required in prod: chat traffic and session cookies only over HTTPS")
        if ingress.scheme == "internet-facing" and ingress.waf_acl_arn in (None, "none"):
            yield ConfigProblem("ingress.wafAclArn", "is required in prod for an internet-facing ALB")
        if not ingress.deletion_protection:
            yield ConfigProblem("ingress.deletionProtection", "cannot be false in prod")
        # The certificate is the root cause of what plain HTTP forbids below (open CIDRs, a DNS
        # name): those are fine once it is set, so prod reports only the certificate.
        return
    if s.environment == "staging" and ingress.deletion_protection:
        yield ConfigProblem("ingress.deletionProtection",
                            "cannot be true for staging: throwaway stacks must destroy in one run")
    if ingress.certificate_arn is None:
        if ingress.scheme == "internet-facing" and "0.0.0.0/0" in ingress.inbound_cidrs:
            yield ConfigProblem(
                "ingress.inboundCidrs", "an internet-facing ALB without certificateArn serves plain "
                "HTTP; it may not be open to 0.0.0.0/0: set certificateArn, list the CIDRs allowed "
                "in, or use scheme 'internal'")
        if ingress.dns is not None:
            yield ConfigProblem("ingress.dns", "a DNS name needs certificateArn (HTTPS) for that name")


@rule("environment", "observability", "database.instance_class")
def _observability(s: StackSettings) -> Iterator[ConfigProblem]:
    observability = s.observability
    if s.is_prod and not observability.alarm_emails:
        yield ConfigProblem("observability.alarmEmails",
                            "is required in prod: alarms that reach nobody are not monitoring")
    if observability.database_connections_threshold(s.database.instance_class) is None:
        yield ConfigProblem(
            "observability.thresholds.databaseConnections",
            f"is required for {s.database.instance_class!r}: its max_connections is not known here "
            "(m, r and t classes are); set the alarm's connection count")


@rule("cluster.system_node_group", "cluster.gpu_node_groups", "app.resources",
      "gateway.resources", "model_serving")
def _pods_fit_their_nodes(s: StackSettings) -> Iterator[ConfigProblem]:
    # A node group may launch any of its instance types, so a pod must fit every one of them.
    system = ("cluster.systemNodeGroup", s.cluster.system_node_group.instance_types)
    # (key, resources, (group key, types), what else the pod requests: (millicores, MiB))
    placements = [("app.resources", s.app.resources, system, (0, 0)),
                  ("gateway.resources", s.gateway.resources, system, (0, 0))]
    for index, group in enumerate(s.cluster.gpu_node_groups):
        for model_index, model in enumerate(s.model_serving.models):
            if model.node_group == group.name:
                placements.append((f"modelServing.models[{model_index}].resources", model.resources,
                                   (f"cluster.gpuNodeGroups[{index}]", group.instance_types),
                                   model.sidecar_requests))
    for key, resources, (group_key, instance_types), (extra_cpu, extra_memory) in placements:
        for instance_type in instance_types:
            if instance_type not in INSTANCE_FACTS:
                continue  # accepted with a warning (StackSettings.warnings): not sized here
            cpu_room, memory_room = pod_room(instance_type)
            cpu_room, memory_room = cpu_room - extra_cpu, memory_room - extra_memory
            too_big = [f"{what} {asked}" for what, asked, wanted, room in (
                ("cpu", resources.cpu, cpu_millicores(resources.cpu), cpu_room),
                ("memory", resources.memory, memory_mib(resources.memory), memory_room)) if wanted > room]
            if too_big:
                beside = (f" beside the compile-cache sidecar's {extra_cpu}m and {extra_memory}Mi"
                          if extra_cpu or extra_memory else "")
                yield ConfigProblem(
                    key, f"requests {' and '.join(too_big)}, but a {instance_type} node of "
                    f"{group_key} can give it at most {cpu_room}m CPU and {memory_room}Mi{beside} "
                    "after the kubelet's reservation and the DaemonSets on every node: the pod "
                    "could never be scheduled there (lower the request or use a larger type)")
                break


@rule("environment", "ingress.auth", "ingress.certificate_arn", "ingress.dns", "oidc_client_secret")
def _edge_authentication(s: StackSettings) -> Iterator[ConfigProblem]:
    auth = s.ingress.auth
    if auth is None:
        if s.is_prod:
            yield ConfigProblem(
                "ingress.auth", "is required in prod: authenticate users at the ALB (type oidc or "
                "cognito), or record why this ALB needs none (type none with a reason)")
        if s.oidc_client_secret is not None:
            yield ConfigProblem("oidcClientSecret", "is set, but ingress.auth is not: nothing reads it")
        return
    if auth.enabled and s.ingress.certificate_arn is None and not s.is_prod:
        # (prod reports the missing certificate itself)
        yield ConfigProblem("ingress.auth", "needs ingress.certificateArn: the ALB authenticates "
                                            "on HTTPS listeners only")
    if auth.cognito is not None and auth.cognito.created and s.ingress.dns is None:
        yield ConfigProblem("ingress.auth.cognito.domainPrefix",
                            "needs ingress.dns: the app client's callback URL is "
                            "https://<dns name>/oauth2/idpresponse, the name users browse")
    if auth.type == "oidc" and s.oidc_client_secret is None:
        yield ConfigProblem("oidcClientSecret", "is required with ingress.auth type oidc: set it "
                                                "with `pulumi config set --secret oidcClientSecret`")
    if auth.type != "oidc" and s.oidc_client_secret is not None:
        yield ConfigProblem("oidcClientSecret", f"is set, but ingress.auth type is {auth.type!r}: "
                                                "nothing reads it")
