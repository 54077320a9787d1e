"""The offline engine: run a Pulumi program under mocks and record every registration.

`RecordingMonitor` subclasses `pulumi.runtime.mocks.MockMonitor`: plain mocks never see
resource options, the monitor does. For each `RegisterResourceRequest` it records the type,
name, parent, provider, inputs (secrets masked, and which paths were secret), dependencies,
property dependencies and the options (protect, retainOnDelete, deletedWith, ignoreChanges,
customTimeouts, aliases, ...). `run_stack` runs `__main__.py` with a stack's config file; `run`
runs any callable, which is how tests build one component alone.

The engine knows nothing of this project's components.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import runpy
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from google.protobuf import json_format
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime import resource as runtime_resource
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from .fake_cloud import FakeCloud

# The SDK walks the Python stack for every registration to send the CLI a source position
# (pulumi/runtime/resource.py `_get_stack_trace`); nothing here reads it, and it is about a
# third of a recorded run. The plans are the same without it (the resources' inputs, options
# and dependencies are all that is recorded).
runtime_resource._get_stack_trace = source_pb2.StackTrace

SECRET_MASK = "[secret]"
UNKNOWN_MASK = "[unknown]"
STACK_TYPE = "pulumi:pulumi:Stack"
DYNAMIC_PROVIDER_KEY = "__provider"
DYNAMIC_PROVIDER_MASK = "[dynamic provider code]"


@dataclass
class Registration:
    """One resource as the program asked the engine to register it."""

    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    provider: str | None
    inputs: dict[str, Any]
    secret_paths: list[str]
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    protect: bool
    retain_on_delete: bool
    deleted_with: str | None
    ignore_changes: list[str]
    replace_on_changes: list[str]
    delete_before_replace: bool
    custom_timeouts: dict[str, str]
    # Earlier identities the resource answers to (`aliases`): a URN, or the parts of an alias
    # spec that were set (name, type, parent...).
    aliases: list[dict[str, str]] = field(default_factory=list)
    # Inputs with secrets revealed: for tests only, never written to disk.
    raw_inputs: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("raw_inputs")
        return data


@dataclass
class Plan:
    """Everything a program registered, in registration order, plus its stack outputs."""

    project: str
    stack: str
    resources: list[Registration]
    outputs: dict[str, Any]
    secret_outputs: list[str]
    raw_outputs: dict[str, Any] = field(default_factory=dict, repr=False)
    # What the program logged with pulumi.log.warn (`pulumi preview` shows these too).
    warnings: list[str] = field(default_factory=list)

    # ---- queries used by the preview, the tests and the policies
    def by_urn(self) -> dict[str, Registration]:
        return {resource.urn: resource for resource in self.resources}

    def of_type(self, type_token: str) -> list[Registration]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name: str | None = None) -> Registration:
        found = [r for r in self.of_type(type_token) if name is None or r.name == name]
        if len(found) != 1:
            names = [r.name for r in self.of_type(type_token)]
            raise LookupError(f"expected one {type_token} named {name!r}, found {names}")
        return found[0]

    def children(self, urn: str) -> list[Registration]:
        return [r for r in self.resources if r.parent == urn]

    def ancestors(self, resource: Registration) -> list[Registration]:
        index, chain, parent = self.by_urn(), [], resource.parent
        while parent in index:
            chain.append(index[parent])
            parent = index[parent].parent
        return chain

    def creation_prerequisites(self, resource: Registration) -> list[str]:
        """The URNs whose creation `resource`'s registration waits for, one step deep.

        This is how the Pulumi Python SDK orders registrations (checked under the mock runtime
        in tests/test_engine.py): a registration is sent once the URNs of its dependencies have
        resolved, i.e. once those resources exist. The recorded `dependencies` are already
        expanded by the SDK (a component stands for its custom descendants, not for the children
        of a custom resource), so they are followed as they are. A child registers only after its
        parent: after a custom parent is created, and after a component parent has registered,
        which itself waited for the component's `depends_on`. So children wait for their
        component's dependencies, and depending on a custom resource does not wait for its
        children.
        """
        edges = list(resource.dependencies)
        for urns in resource.property_dependencies.values():
            edges.extend(urns)
        if resource.provider:
            edges.append(resource.provider)
        if resource.parent:
            edges.append(resource.parent)
        return sorted(set(edges))

    def deletion_prerequisites(self, resource: Registration) -> list[str]:
        """The URNs `pulumi destroy` deletes only after `resource` is gone, one step deep: what it
        depends on (dependencies, property dependencies, its provider) and its parent (children
        go before their parent)."""
        return self.creation_prerequisites(resource)

    def waits_for(self, resource: Registration, target: Registration) -> bool:
        """Is `resource` created only after `target` exists? (`creation_prerequisites`, transitively)"""
        return self._reachable(resource, target, self.creation_prerequisites)

    def deleted_before(self, resource: Registration, target: Registration) -> bool:
        """Does `pulumi destroy` delete `resource` before `target`? (`deletion_prerequisites`,
        transitively)"""
        return self._reachable(resource, target, self.deletion_prerequisites)

    def _reachable(self, resource: Registration, target: Registration,
                   edges_of: Callable[[Registration], list[str]]) -> bool:
        index = self.by_urn()
        seen: set[str] = set()
        pending = [resource.urn]
        while pending:
            current = index.get(pending.pop())
            if current is None or current.urn in seen:
                continue
            seen.add(current.urn)
            edges = edges_of(current)
            if target.urn in edges:
                return True
            pending.extend(edges)
        return False

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "stack": self.stack,
            "outputs": self.outputs,
            "secretOutputs": self.secret_outputs,
            # Sorted by URN: registration order follows async timing, and plans are diffed.
            "resources": [r.to_json() for r in sorted(self.resources, key=lambda r: r.urn)],
        }


# --------------------------------------------------------------------------- values


def _plain(value: Any, path: str, secrets: list[str], reveal: bool) -> Any:
    """Turn a deserialized protobuf value into JSON data, masking (or revealing) secrets."""
    if isinstance(value, dict):
        signature = value.get(rpc._special_sig_key)
        if signature == rpc._special_secret_sig:
            secrets.append(path or "$")
            inner = _plain(value.get("value"), path, [], reveal)
            return inner if reveal else SECRET_MASK
        if signature == rpc._special_resource_sig:
            return value.get("urn")
        if signature is not None:
            return {k: v for k, v in value.items() if k != rpc._special_sig_key}
        return {k: _plain(v, f"{path}.{k}" if path else k, secrets, reveal)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, f"{path}[{i}]", secrets, reveal) for i, v in enumerate(value)]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the wire format carries every number as a double
    if value == rpc.UNKNOWN:
        return UNKNOWN_MASK
    return value


def _alias(alias) -> dict[str, str]:
    if alias.urn:
        return {"urn": alias.urn}
    spec = json_format.MessageToDict(alias.spec, preserving_proto_field_name=True)
    return {key: str(value) for key, value in sorted(spec.items())}


def _strip_id(reference: str) -> str | None:
    # Provider references are "<urn>::<id>".
    return reference.rsplit("::", 1)[0] if reference else None


class RecordingMonitor(mocks.MockMonitor):
    """A MockMonitor that keeps every RegisterResourceRequest as a `Registration`.

    `delays` (resource name -> seconds) holds a registration back before it answers, as a real
    create would; `events` then shows the order the SDK sent and finished registrations in
    ("start"/"end", name), which is how the tests check the ordering model of `Plan.waits_for`.
    """

    def __init__(self, cloud: mocks.Mocks, delays: dict[str, float] | None = None):
        super().__init__(cloud)
        self.registrations: list[Registration] = []
        self.delays = dict(delays or {})
        self.events: list[tuple[str, str]] = []
        self._events_lock = threading.Lock()

    def RegisterResource(self, request):
        if self.delays:
            with self._events_lock:
                self.events.append(("start", request.name))
            time.sleep(self.delays.get(request.name, 0))
        response = super().RegisterResource(request)
        if self.delays:
            with self._events_lock:
                self.events.append(("end", request.name))
        if request.type == STACK_TYPE:
            return response
        raw_struct = json_format.MessageToDict(request.object, preserving_proto_field_name=True)
        if DYNAMIC_PROVIDER_KEY in raw_struct:
            # A dynamic resource carries its provider's code, pickled: not a plan input, and
            # different bytes on every Python build.
            raw_struct[DYNAMIC_PROVIDER_KEY] = DYNAMIC_PROVIDER_MASK
        secret_paths: list[str] = []
        inputs = _plain(raw_struct, "", secret_paths, reveal=False)
        raw_inputs = _plain(raw_struct, "", [], reveal=True)
        timeouts = request.customTimeouts
        self.registrations.append(Registration(
            urn=response.urn,
            type=request.type,
            name=request.name,
            parent=request.parent or None,
            custom=bool(request.custom),
            provider=_strip_id(request.provider),
            inputs=inputs,
            secret_paths=sorted(secret_paths),
            # Sets in meaning, sent in the order inputs resolved: sorted so that two runs of
            # the same program record the same plan.
            dependencies=sorted(request.dependencies),
            property_dependencies={
                key: sorted(deps.urns)
                for key, deps in sorted(request.propertyDependencies.items())
            },
            protect=bool(request.protect),
            retain_on_delete=bool(request.retainOnDelete),
            deleted_with=request.deletedWith or None,
            ignore_changes=list(request.ignoreChanges),
            replace_on_changes=list(request.replaceOnChanges),
            delete_before_replace=bool(request.deleteBeforeReplace),
            custom_timeouts={k: v for k, v in (("create", timeouts.create),
                                               ("update", timeouts.update),
                                               ("delete", timeouts.delete)) if v},
            aliases=[_alias(alias) for alias in request.aliases],
            raw_inputs=raw_inputs,
        ))
        return response


# --------------------------------------------------------------------------- config


class StackFileError(ValueError):
    """A stack file the Pulumi CLI would refuse or misread, with where and why."""


class _StackFileLoader(yaml.SafeLoader):
    """YAML as the Pulumi CLI reads a stack file: a key given twice is an error (PyYAML would
    keep the later one silently), and a scalar that is not a boolean or a number stays the text
    written (an unquoted date is the string "2026-12-31", not a date object)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise StackFileError(f"line {key_node.start_mark.line + 1}: key {key!r} is given "
                                     f"twice (first on line {seen[key]}); the later one would "
                                     "silently replace it")
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


_StackFileLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_stack_config(program_dir: Path, stack: str) -> dict[str, Any]:
    """The `config:` map of `Pulumi.<stack>.yaml`, keys fully qualified (`ns:key`).

    Raises StackFileError for what the CLI refuses or would silently misread: a key given
    twice, a document or `config:` that is not a mapping, a namespace that is this project's in
    another case (`AnythingLLM:app` would be another project's key, ignored by the program).
    """
    project = read_project_name(program_dir)
    path = program_dir / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no stack file {path.name} in {program_dir}")
    try:
        document = yaml.load(path.read_text(), Loader=_StackFileLoader) or {}
    except StackFileError as error:
        raise StackFileError(f"{path.name}: {error}") from None
    except yaml.YAMLError as error:
        raise StackFileError(f"{path.name}: not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise StackFileError(f"{path.name}: the document must be a mapping with a `config:` key")
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise StackFileError(f"{path.name}: `config:` must be a mapping of keys to values")
    for key in config:
        namespace = str(key).split(":", 1)[0] if ":" in str(key) else None
        if namespace is not None and namespace != project and namespace.lower() == project.lower():
            raise StackFileError(f"{path.name}: {key!r}: the namespace is {project!r} (lowercase); "
                                 f"{namespace!r} is another namespace, which the program never reads")
    return {(key if ":" in key else f"{project}:{key}"): value for key, value in config.items()}


def read_project_name(program_dir: Path) -> str:
    return yaml.safe_load((program_dir / "Pulumi.yaml").read_text())["name"]


def _config_strings(config: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Config values as the Pulumi CLI hands them to a program: strings, objects as JSON."""
    values, secret_keys = {}, []
    for key, value in config.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            # Ciphertext cannot be decrypted offline; the program sees a placeholder secret.
            values[key] = SECRET_MASK
            secret_keys.append(key)
        elif isinstance(value, str):
            values[key] = value
        elif isinstance(value, bool):
            values[key] = "true" if value else "false"
        elif isinstance(value, (int, float)):
            values[key] = str(value)
        else:
            values[key] = json.dumps(value)
    return values, secret_keys


# --------------------------------------------------------------------------- running


@contextlib.contextmanager
def _program_path(program_dir: Path) -> Iterator[None]:
    old_cwd, old_path = os.getcwd(), list(sys.path)
    os.chdir(program_dir)
    sys.path.insert(0, str(program_dir))
    try:
        yield
    finally:
        os.chdir(old_cwd)
        sys.path[:] = old_path


def run(
    program: Callable[[], None],
    *,
    project: str,
    stack: str,
    config: dict[str, Any] | None = None,
    preview: bool = False,
    monitor: RecordingMonitor | None = None,
    clusters: dict[str, str] | None = None,
    databases: dict[str, Any] | None = None,
    snapshots: dict[str, str] | None = None,
) -> Plan:
    """Run `program` under the recording monitor with `config` and return its plan.

    `monitor`: a RecordingMonitor of the caller's (e.g. with `delays`); its cloud is replaced
    by this run's FakeCloud. `clusters`, `databases`, `snapshots`: what the fake account
    already has, as for a stack deployed before (FakeCloud says how each is given).

    `config` maps fully qualified keys (`aws:region`, `<project>:cluster`) to values as
    they appear in a stack file. Exceptions raised by the program (or by an apply inside
    it) propagate after the runtime has been shut down.
    """
    values, secret_keys = _config_strings(config or {})
    cloud = FakeCloud(region=values.get("aws:region", "us-east-1"), clusters=clusters,
                      databases=databases, snapshots=snapshots)
    if monitor is None:
        monitor = RecordingMonitor(cloud)
    else:
        monitor.mocks = cloud
    settings.reset_options(project=project, stack=stack, preview=preview)
    pulumi.runtime.set_all_config(values, secret_keys)
    warnings: list[str] = []
    mocks.set_mocks(cloud, project=project, stack=stack, preview=preview, monitor=monitor,
                    logger=_collecting_logger(warnings))
    try:
        _sync_await(run_pulumi_func(program))
        root = settings.get_root_resource()
        exported = dict(getattr(root, "outputs", {}) or {})
        outputs, raw_outputs, secret_outputs = _sync_await(_resolve_outputs(exported))
    finally:
        pulumi.runtime.set_all_config({}, [])
        settings.reset_options()
    return Plan(project=project, stack=stack, resources=monitor.registrations,
                outputs=outputs, secret_outputs=secret_outputs, raw_outputs=raw_outputs,
                warnings=sorted(set(warnings)))


def _collecting_logger(warnings: list[str]) -> logging.Logger:
    """The mock engine's logger: warnings the program logs are kept for the plan."""
    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                warnings.append(record.getMessage())

    logger = logging.getLogger(f"pulumi-offline-{id(warnings)}")
    logger.propagate = False
    logger.handlers = [Collect()]
    logger.setLevel(logging.WARNING)
    return logger


async def _resolve_outputs(exported: dict[str, Any]) -> tuple[dict, dict, list[str]]:
    outputs, raw, secret = {}, {}, []
    for name, value in sorted(exported.items()):
        output = pulumi.Output.from_input(value)
        resolved = await output.future(with_unknowns=True)
        is_secret = await output.is_secret()
        plain = _plain(rpc_ready(resolved), name, [], reveal=True)
        raw[name] = plain
        outputs[name] = SECRET_MASK if is_secret else plain
        if is_secret:
            secret.append(name)
    return outputs, raw, secret


def rpc_ready(value: Any) -> Any:
    """Stack outputs are Python values already; unknowns are the rpc sentinel."""
    if isinstance(value, pulumi.output.Unknown):
        return rpc.UNKNOWN
    return value


def run_stack(program_dir: Path | str, stack: str, *, preview: bool = False,
              config_from: str | None = None, config: dict[str, Any] | None = None,
              clusters: dict[str, str] | None = None, databases: dict[str, Any] | None = None,
              snapshots: dict[str, str] | None = None,
              monitor: RecordingMonitor | None = None) -> Plan:
    """Run `<program_dir>/__main__.py` with `Pulumi.<stack>.yaml`, as `pulumi preview` would.

    `config_from` names another stack whose file to use, as a throwaway stack created from a
    template (`staging-<branch>` from `Pulumi.staging.yaml`) would; `config` replaces the
    file altogether (fully qualified keys, as in a stack file); `clusters`, `databases`,
    `snapshots` and `monitor` as for `run`.
    """
    program_dir = Path(program_dir).resolve()
    project = read_project_name(program_dir)
    if config is None:
        config = read_stack_config(program_dir, config_from or stack)
    main = program_dir / "__main__.py"

    def program() -> None:
        with _program_path(program_dir):
            runpy.run_path(str(main), run_name="__main__")

    return run(program, project=project, stack=stack, config=config, preview=preview,
               clusters=clusters, databases=databases, snapshots=snapshots, monitor=monitor)
