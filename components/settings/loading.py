"""Reading the stack configuration and turning validation failures into one clear report."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Mapping
from typing import Any

from pydantic import ValidationError

from ..versions import EKS_STANDARD_SUPPORT_ENDS
from .base import PROJECT_NAMESPACE, ConfigProblem, SettingsError
from .stack import StackSettings


def check_kubernetes_version(version: str, today: dt.date) -> None:
    """Raise ConfigProblem unless `version` is an EKS version in standard support on `today`."""
    supported = {v: end for v, end in EKS_STANDARD_SUPPORT_ENDS.items() if end >= today}
    if version not in supported:
        known = EKS_STANDARD_SUPPORT_ENDS.get(version)
        why = (
            f"its standard support ended on {known.isoformat()}" if known
            else "it is not an EKS version this code knows"
        )
        allowed = ", ".join(f"{v} (until {end.isoformat()})" for v, end in supported.items())
        raise ConfigProblem(
            "cluster.kubernetesVersion", f"{version!r} is not allowed: {why}; allowed: {allowed}",
        )


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


def _describe(error: Mapping[str, Any]) -> str:
    loc = tuple(part for part in error["loc"] if part not in {"function-after", "function-before"})
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, ConfigProblem):
        # Cross-field problems name their path relative to the model that found them.
        return f"{_join(_format_loc(loc), cause.path)}: {cause.message}"
    path = _format_loc(loc)
    if error["type"] == "extra_forbidden":
        return f"{path}: unknown key (check the spelling; keys are camelCase)"
    if error["type"] == "missing":
        return f"{path}: required key is missing"
    return f"{path}: {error['msg']} (got {json.dumps(error.get('input'), default=str)})"


# Config keys that hold credentials: accepted only as Pulumi secrets, so that they are
# encrypted in the stack file and stay secret in state.
SECRET_KEYS = ("huggingFaceToken",)


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
    their values; `secret_keys` names the keys that were set as secrets. Raises
    SettingsError listing every problem, with its key path.
    """
    plaintext = [key for key in SECRET_KEYS if key in raw and key not in secret_keys]
    if plaintext:
        raise SettingsError(_report(stack, [
            f"{key}: must be a secret; set it with `pulumi config set --secret "
            f"{PROJECT_NAMESPACE}:{key}` so it is encrypted in Pulumi.{stack}.yaml and in state"
            for key in plaintext
        ]))
    data = {key: value for key, value in raw.items() if key != "aws:region"}
    data.update(project=project, stack=stack, region=raw.get("aws:region"))
    try:
        settings = StackSettings.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors()]
        raise SettingsError(_report(stack, problems)) from None
    try:
        check_kubernetes_version(settings.cluster.kubernetes_version, today or dt.date.today())
    except ConfigProblem as problem:
        raise SettingsError(_report(stack, [f"{problem.path}: {problem.message}"])) from None
    return settings


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
    miscased = sorted(key for key in all_keys if ":" in key and key.split(":", 1)[0] != PROJECT_NAMESPACE
                      and key.split(":", 1)[0].lower() == PROJECT_NAMESPACE)
    if miscased:
        raise SettingsError(_report(pulumi.get_stack(), [
            f"{key}: the namespace is {PROJECT_NAMESPACE!r} (lowercase); this key is in another "
            "namespace, which the program never reads" for key in miscased]))
    prefix = f"{PROJECT_NAMESPACE}:"
    for full_key, value in all_keys.items():
        if full_key.startswith(prefix):
            key = full_key[len(prefix):]
            values[key] = _decode(value)
    region = pulumi.Config("aws").get("region")
    if region is not None:
        values["aws:region"] = region
    return values


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
    """Read and validate this stack's configuration; the composition root calls this once."""
    import pulumi

    return parse_settings(
        read_raw_config(), project=pulumi.get_project(), stack=pulumi.get_stack(),
        secret_keys=read_secret_keys(),
    )

