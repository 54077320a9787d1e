"""Reading the stack configuration and turning validation failures into one clear report."""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError, create_model

from .base import PROJECT_NAMESPACE, ConfigProblem, ConfigProblems, SettingsError
from .cluster import MANAGED_ADDONS
from .kubernetes_version import addon_change, supported_versions, upgrade_problem
from .postgres_version import major_upgrade_findings, restore_findings
from .rules import run_rules
from .stack import DEFAULTED_SECTIONS, StackFields, StackSettings
from .zones import account_zone_problems, zone_problem


def _format_loc(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif str(part).startswith("["):
            path += str(part)
        else:
            path += f".{part}" if path else str(part)
    return path


def _join(prefix: str, relative: str) -> str:
    if not relative:
        return prefix
    if relative.startswith("[") or not prefix:
        return prefix + relative
    return f"{prefix}.{relative}"


# Keys the program reads outside its namespace, named as the user writes them.
USER_KEYS = {"region": "aws:region"}
RESERVED_KEYS = {
    "region": "not read: the region is aws:region, which the AWS provider reads too "
              "(`pulumi config set aws:region <region>`)",
    "project": "not a setting: the project is Pulumi.yaml's name",
    "stack": "not a setting: the stack is the one selected (pulumi stack select)",
}
# What a missing top-level key takes, so that an empty file says what to write.
REQUIRED_KEY_HINTS = {
    "aws:region": "the AWS region, e.g. us-east-1",
    "environment": "dev, staging or prod",
    "network": "a new VPC (vpcCidr, availabilityZones) or an existing one (existing)",
    "cluster": "at least kubernetesVersion and adminRoleArns",
    "modelServing": "models: at least one chat and one embedding model",
}


def _describe(error: Mapping[str, Any]) -> list[str]:
    loc = tuple(part for part in error["loc"] if part not in {"function-after", "function-before"})
    if loc and loc[0] in USER_KEYS:
        loc = (USER_KEYS[loc[0]], *loc[1:])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, ConfigProblems | ConfigProblem):
        # Cross-field problems name their path relative to the model that found them.
        found = cause.problems if isinstance(cause, ConfigProblems) else [cause]
        return [f"{_join(_format_loc(loc), problem.path)}: {problem.message}" for problem in found]
    path = _format_loc(loc)
    if error["type"] == "extra_forbidden":
        return [f"{path}: unknown key (check the spelling; keys are camelCase)"]
    if error["type"] == "missing":
        hint = REQUIRED_KEY_HINTS.get(path)
        return [f"{path}: required key is missing" + (f" ({hint})" if hint else "")]
    if error.get("input", "") is None:
        return [f"{path}: required key is missing (it is there, with no value)"]
    return [f"{path}: {error['msg']} (got {json.dumps(error.get('input'), default=str)})"]


def _defaulted_by_environment(loc: tuple[Any, ...]) -> bool:
    """Whether every environment's defaults would have given the key at `loc` a value."""
    return all(loc[0] in table and (len(loc) == 1 or loc[1] in table[loc[0]])
               for table in DEFAULTED_SECTIONS.values())


# Config keys that hold credentials: accepted only as Pulumi secrets, so that they are
# encrypted in the stack file and stay secret in state.
SECRET_KEYS = ("huggingFaceToken", "oidcClientSecret")


def parse_settings(
    raw: Mapping[str, Any],
    *,
    project: str,
    stack: str,
    today: dt.date | None = None,
    secret_keys: Collection[str] = (),
) -> StackSettings:
    """Validate the stack configuration `raw` (keys without namespace) into StackSettings.

    `raw` maps the project's config keys (`network`, `cluster`, ...) plus `aws:region` to
    their values; `secret_keys` names the keys that were set as secrets; `today` is the date
    the warnings are for (the version-support phase; never a reason to refuse). Raises
    SettingsError listing every problem, each with its key path: the settings' own problems
    in the order of the file's sections, then those between sections (see rules.py).
    """
    problems = [
        f"{key}: must be a secret; set it with `pulumi config set --secret "
        f"{PROJECT_NAMESPACE}:{key}` so it is encrypted in Pulumi.{stack}.yaml and in state"
        for key in SECRET_KEYS if key in raw and key not in secret_keys
    ]
    # Fields the program fills in itself are not settings: `anythingllm:region` (what
    # `pulumi config set region` writes) would otherwise stand in for aws:region, which the AWS
    # provider reads.
    for key, why in RESERVED_KEYS.items():
        if key in raw:
            problems.append(f"{PROJECT_NAMESPACE}:{key}: {why}")
    # A key with no value (`anythingllm:gateway:` alone on its line) is a key not given.
    data = {key: value for key, value in raw.items()
            if key != "aws:region" and key not in RESERVED_KEYS and value is not None}
    data.update(project=project, stack=stack)
    if raw.get("aws:region") is not None:
        data["region"] = raw["aws:region"]
    settings = None
    try:
        settings = StackSettings.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        environment_invalid = any(error["loc"][:1] == ("environment",) for error in errors)
        for error in errors:
            if environment_invalid and error["type"] == "missing" and _defaulted_by_environment(error["loc"]):
                continue  # the environment's default would be there: one root cause, one line
            problems.extend(_describe(error))
        if any(error["loc"] for error in errors):
            problems.extend(f"{problem.path}: {problem.message}"
                            for problem in _rules_on_the_valid_part(data, errors))
    if problems:
        raise SettingsError(_report(stack, problems), problems)
    assert settings is not None
    if today is not None:
        settings._today = today
    return settings


def _rules_on_the_valid_part(data: Mapping[str, Any], errors: list[Any]) -> list[ConfigProblem]:
    """The rules between sections that read only settings which are valid on their own.

    A section with invalid keys is validated again without them (a key that has a default takes
    it; a required one takes a stand-in value); the keys are marked invalid, so no rule reads a
    stand-in. A section that still does not validate is left out whole.
    """
    fields = StackFields.model_fields
    names = {field.alias or name: name for name, field in fields.items()}
    filled = StackFields._environment_defaults(dict(data))
    invalid: set[str] = set()
    valid_part: dict[str, Any] = {}
    by_section: dict[str, set[str]] = {}
    for error in errors:
        if error["loc"]:
            section = error["loc"][0]
            sub_key = error["loc"][1] if len(error["loc"]) > 1 and isinstance(error["loc"][1], str) else ""
            by_section.setdefault(section, set()).add(sub_key)
    for key, value in filled.items():
        name = names.get(key, key)
        if key not in by_section:
            valid_part[key] = value
            continue
        recovered = _section_without(name, value, by_section[key])
        if recovered is None:
            invalid.add(name)
        else:
            valid_part[key] = recovered
            invalid.update(f"{name}.{_field_name(name, sub_key)}" for sub_key in by_section[key])
    invalid.update(names.get(key, key) for key in by_section if key not in filled)
    return run_rules(_partial_model().model_validate(valid_part), invalid=frozenset(invalid))


# Values that let a section validate while one of its required keys is invalid; the key is
# marked invalid, so no rule ever reads them.
STAND_INS: dict[tuple[str, str], Any] = {
    ("cluster", "kubernetesVersion"): supported_versions()[-1],
    ("cluster", "adminRoleArns"): ["arn:aws:iam::000000000000:role/stand-in"],
    ("ingress", "deletionProtection"): False,
    ("ingress", "deregistrationDelaySeconds"): 30,
    ("app", "replicas"): 2,
}


def _field_name(section: str, alias: str) -> str:
    model = StackFields.model_fields[section].annotation
    for name, field in getattr(model, "model_fields", {}).items():
        if (field.alias or name) == alias:
            return name
    return alias


def _section_without(section: str, value: Any, bad_keys: set[str]) -> Any:
    """The section `value` validated without `bad_keys`, or None when that is not possible."""
    field = StackFields.model_fields.get(section)
    model = getattr(field, "annotation", None)
    if "" in bad_keys or not isinstance(value, dict) or not isinstance(model, type) \
            or not issubclass(model, BaseModel):
        return None
    alias = field.alias or section
    kept = {key: item for key, item in value.items() if key not in bad_keys}
    for bad_key in bad_keys:
        if (alias, bad_key) in STAND_INS:
            kept[bad_key] = STAND_INS[(alias, bad_key)]
    try:
        return model.model_validate(kept)
    except ValidationError:
        return None


@functools.cache
def _partial_model() -> type[StackFields]:
    """StackFields with every required field optional, so that the valid part can be built."""
    optional: dict[str, Any] = {
        name: (field.annotation | None, None)
        for name, field in StackFields.model_fields.items() if field.is_required()
    }
    return create_model("PartialStackSettings", __base__=StackFields, **optional)


def _report(stack: str, problems: list[str]) -> str:
    lines = "\n".join(f"  - {problem}" for problem in problems)
    return f"invalid configuration in Pulumi.{stack}.yaml:\n{lines}"


def read_secret_keys() -> set[str]:
    """The project's config keys (without namespace) that were set as secrets."""
    from pulumi.runtime import config as runtime_config

    prefix = f"{PROJECT_NAMESPACE}:"
    return {key[len(prefix):] for key in _config_keys()
            if key.startswith(prefix) and runtime_config.is_config_secret(key)}


def _config_keys() -> set[str]:
    from pulumi.runtime import config as runtime_config

    return {*runtime_config.get_config_env(), *runtime_config.CONFIG.get()}


def read_raw_config() -> dict[str, Any]:
    """Every config value of this project's namespace plus `aws:region`, JSON decoded.

    Reads the whole config map (not only known keys) so that a misspelt top-level key is
    reported instead of silently ignored.
    """
    import pulumi
    from pulumi.runtime import config as runtime_config

    values: dict[str, Any] = {}
    all_keys = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}  # key -> value
    unread = unread_key_problems(all_keys)
    if unread:
        raise SettingsError(_report(pulumi.get_stack(), unread))
    prefix = f"{PROJECT_NAMESPACE}:"
    for full_key, value in all_keys.items():
        if full_key.startswith(prefix):
            key = full_key[len(prefix):]
            values[key] = _decode(value)
    region = pulumi.Config("aws").get("region")
    if region is not None:
        values["aws:region"] = region
    return values


# Keys outside the project's namespace that something in this program reads. The AWS provider
# is the default provider (no aws.Provider is created), so it reads every `aws:` key of its
# schema; Kubernetes, random and time resources use explicit providers or none, which read
# no stack config; `pulumi:tags` are the stack's tags in Pulumi Cloud.
OTHER_KEYS_READ = {"pulumi:tags"}


def aws_provider_keys() -> frozenset[str]:
    """The `aws:` config keys of the pinned pulumi-aws provider (its SDK's config/vars.py)."""
    import pulumi_aws

    source = (Path(pulumi_aws.__file__).parent / "config" / "vars.py").read_text()
    return frozenset(re.findall(r"__config__\.get\w*\('(\w+)'", source))


def unread_key_problems(keys: Collection[str]) -> list[str]:
    """A problem for every config key that nothing in this program reads: a namespace in
    another case (`anythingLLM:app`), another project's or provider's namespace, a key the AWS
    provider does not have (`aws:regoin`). Keys of the project's namespace are checked by the
    settings models."""
    problems = []
    aws_keys = aws_provider_keys()
    for key in sorted(keys):
        namespace, _, name = key.partition(":")
        if namespace == PROJECT_NAMESPACE or key in OTHER_KEYS_READ:
            continue
        if namespace.lower() == PROJECT_NAMESPACE:
            problems.append(f"{key}: the namespace is {PROJECT_NAMESPACE!r} (lowercase); this key is "
                            "in another namespace, which the program never reads")
        elif namespace == "aws":
            if name not in aws_keys:
                problems.append(f"{key}: the AWS provider has no such setting (it reads "
                                f"{', '.join(sorted(aws_keys))})")
        else:
            problems.append(f"{key}: nothing in this program reads the {namespace!r} namespace; "
                            f"its settings are {PROJECT_NAMESPACE}:<key> and aws:<provider setting>")
    return problems


def _decode(value: Any) -> Any:
    # Pulumi hands every config value over as a string; structured values are JSON text.
    # Only those are decoded, so that a scalar such as "1.35" stays a string.
    if isinstance(value, str) and value.lstrip().startswith(("{", "[")):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def load_settings() -> StackSettings:
    """Read and validate this stack's configuration; the composition root calls this once.

    Then asks the account which zones it has (DescribeAvailabilityZones): zone names map to
    zone IDs per account, so only the account says whether a zone the file names exists there
    and is one EKS takes. And asks EKS which version the stack's cluster runs, if it exists
    (ListClusters, DescribeCluster): skipping a minor or going back is refused here, where EKS
    would refuse it only once the update had begun. And asks RDS which version the stack's
    database runs (DescribeDBInstances): a major upgrade must keep the old parameter group
    (postgres_version.py). Their problems are reported with the file's, before anything is
    created; their warnings join the settings' own.
    """
    import pulumi

    raw = read_raw_config()
    settings, problems = None, []
    try:
        settings = parse_settings(raw, project=pulumi.get_project(), stack=pulumi.get_stack(),
                                  secret_keys=read_secret_keys())
    except SettingsError as error:
        problems = error.problems
    zones = _zones_to_ask_about(raw)
    if zones:
        import pulumi_aws as aws

        # Every zone of the account, whatever its state: an impaired zone is still the stack's.
        offered = aws.get_availability_zones()
        problems += [f"{key}: {message}" for key, message in account_zone_problems(
            zones, dict(zip(offered.names, offered.zone_ids, strict=True)))]
    account_problems, warnings = _account_findings(raw, settings)
    problems += account_problems
    if problems:
        raise SettingsError(_report(pulumi.get_stack(), problems), problems)
    assert settings is not None
    settings._account_warnings = warnings
    return settings


def _asked(key: str, question: str, actions: str, call):
    """`call()`, or a problem of `key` saying what could not be asked, and which IAM actions the
    role running the preview needs for it."""
    try:
        return call(), None
    except Exception as error:  # an invoke that failed: denied, throttled, unreachable
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return None, (f"{key}: could not ask AWS {question}; the role running the preview needs "
                      f"{actions} ({reason})")


def _account_findings(raw: Mapping[str, Any], settings: StackSettings | None) -> tuple[list[str], list[str]]:
    """What the running stack says about the file: problems and warnings (module docstring of
    kubernetes_version, postgres_version; add-on versions: addon_findings)."""
    import pulumi

    from ..naming import cluster_name, db_instance_identifier

    name = cluster_name(pulumi.get_project(), pulumi.get_stack())
    problems: list[str] = []
    warnings: list[str] = []
    cluster = raw.get("cluster")
    wanted = cluster.get("kubernetesVersion") if isinstance(cluster, dict) else None
    running_kubernetes = None
    if isinstance(wanted, str):
        running_kubernetes, failed = _asked(
            "cluster.kubernetesVersion", f"which version cluster {name} runs",
            "eks:ListClusters and eks:DescribeCluster", lambda: running_kubernetes_version(name))
        problems += [failed] if failed else []
        problem = upgrade_problem(running_kubernetes, wanted) if running_kubernetes else None
        if problem is not None:
            problems.append(f"cluster.kubernetesVersion: {problem}")
    if settings is None:
        return problems, warnings
    if running_kubernetes is not None:
        found, failed = _asked(
            "cluster.addonVersions", f"which add-on versions cluster {name} runs",
            "eks:DescribeAddon and eks:DescribeAddonVersions",
            lambda: addon_findings(name, settings.cluster.kubernetes_version,
                                   settings.cluster.addon_versions))
        problems += [failed] if failed else []
        for finding in found or []:
            (problems if finding.problem else warnings).append(f"{finding.key}: {finding.message}")
    identifier = db_instance_identifier(name)
    database, snapshot = settings.database, settings.restore.database_snapshot
    described, failed = _asked("database.engineVersion", f"which version instance {identifier} runs",
                               "rds:DescribeDBInstances", lambda: running_database(identifier))
    if failed:
        return [*problems, failed], warnings
    running, restored_from = described
    engine, failed = (None, None)
    if snapshot and running is None:
        engine, failed = _asked("restore.databaseSnapshot", f"about snapshot {snapshot}",
                                "rds:DescribeDBSnapshots", lambda: snapshot_engine(snapshot))
        problems += [failed] if failed else []
    findings = major_upgrade_findings(
        identifier=identifier, running=running, engine_version=database.engine_version,
        upgrading_from=database.upgrading_from, apply_immediately=database.apply_immediately,
        maintenance_window=database.maintenance_window)
    if not failed:
        findings += restore_findings(
            identifier=identifier, snapshot=snapshot, running=running, restored_from=restored_from,
            snapshot_engine=engine, engine_version=database.engine_version,
            allocated_storage_gib=database.allocated_storage_gib)
    for finding in findings:
        (problems if finding.problem else warnings).append(f"{finding.key}: {finding.message}")
    if engine is not None and engine[2] > database.allocated_storage_gib:
        settings._restore_storage_gib = engine[2]
    return problems, warnings


def installed_addon_version(cluster: str, addon: str) -> str | None:
    """The version of EKS add-on `addon` on `cluster`, or None when it is not installed."""
    import pulumi_aws as aws

    try:
        return aws.eks.get_addon(addon_name=addon, cluster_name=cluster).addon_version
    except Exception as error:
        if "ResourceNotFoundException" in str(error) or "couldn't find resource" in str(error):
            return None
        raise


def default_addon_version(addon: str, kubernetes_version: str) -> str:
    """EKS's default version of `addon` for a Kubernetes minor (what cluster.addon_version
    follows for an unpinned add-on)."""
    import pulumi_aws as aws

    return aws.eks.get_addon_version(addon_name=addon, kubernetes_version=kubernetes_version,
                                     most_recent=False).version


def addon_findings(cluster: str, kubernetes_version: str, pinned: Mapping[str, str]) -> list:
    """How this `up` moves the cluster's add-ons (kubernetes_version.addon_change)."""
    found = []
    for addon in MANAGED_ADDONS:
        installed = installed_addon_version(cluster, addon)
        if installed is None:
            continue
        target = pinned.get(addon) or default_addon_version(addon, kubernetes_version)
        finding = addon_change(addon, installed=installed, target=target,
                               pinned=addon in pinned, kubernetes_version=kubernetes_version)
        if finding is not None:
            found.append(finding)
    return found


def running_database(identifier: str) -> tuple[str | None, str | None]:
    """The engine version RDS reports for instance `identifier` and its restored-from tag, or
    (None, None) when there is no such instance."""
    import pulumi_aws as aws

    from ..naming import RESTORED_FROM_TAG

    found = aws.rds.get_instances(filters=[{"name": "db-instance-id", "values": [identifier]}])
    if identifier not in (found.instance_identifiers or []):
        return None, None
    instance = aws.rds.get_instance(db_instance_identifier=identifier)
    return instance.engine_version, (instance.tags or {}).get(RESTORED_FROM_TAG)


def snapshot_engine(snapshot: str) -> tuple[str, str, int] | None:
    """(engine, engine version, allocated GiB) of RDS snapshot `snapshot` (identifier or ARN),
    or None when RDS has none of that name here. AWS Backup's snapshots are listed only when
    asked for by their type (DescribeDBSnapshots returns automated and manual ones by default)."""
    import pulumi_aws as aws

    kind = "awsbackup" if snapshot.rsplit(":snapshot:", 1)[-1].startswith("awsbackup:") else None
    found = aws.rds.get_snapshots(db_snapshot_identifier=snapshot, include_shared=True,
                                  snapshot_type=kind).snapshots
    if not found:
        return None
    return found[0].engine, found[0].engine_version, found[0].allocated_storage


def running_kubernetes_version(name: str) -> str | None:
    """The Kubernetes version EKS reports for cluster `name`, or None when there is none yet."""
    import pulumi_aws as aws

    if name not in aws.eks.get_clusters().names:
        return None
    return aws.eks.get_cluster(name=name).version


def _zones_to_ask_about(raw: Mapping[str, Any]) -> list[str]:
    """The file's zones for a new VPC, when each is one of the region's (else it is reported on
    its own and the account's answer would add nothing)."""
    network, region = raw.get("network"), raw.get("aws:region")
    if not isinstance(network, dict) or network.get("existing") is not None or not isinstance(region, str):
        return []
    zones = network.get("availabilityZones")
    if not isinstance(zones, list) or not all(isinstance(zone, str) for zone in zones):
        return []
    return zones if all(zone_problem(region, zone) is None for zone in zones) else []
