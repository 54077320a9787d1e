"""`make timeline STACK=<stack>`: predicted first-deploy and destroy critical paths of a stack.

Usage: python -m tools.timeline [STACK] [--json] [--base FILE] [--durations FILE]

Reads the recorded plan's graph and a table of typical create/delete seconds per resource type
kept in the repo (`tools/data/durations.json`, each figure with its source or marked as an
estimate, upper-typical values). Knows nothing of this stack's components: only resource
types, standard inputs and the engine's ordering model.

- Deploy (`pulumi up` on an empty stack): a resource starts once its creation prerequisites
  are done and finishes its create duration later; a component is done as soon as its own
  prerequisites are (it takes 0 s). The critical path is the chain that set the latest finish.
- Destroy (`pulumi destroy`): the engine deletes in waves of equal dependency height, each
  wave finishing before the next starts: the total is the sum of each wave's longest delete,
  and the path is that longest resource of each wave.

`--base FILE` (an earlier `--json` output, e.g. of the main branch) adds the change in minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

from .engine import Plan, Registration, run_stack

ROOT = Path(__file__).resolve().parent.parent
DURATIONS = Path(__file__).resolve().parent / "data" / "durations.json"

NODE_GROUP_TYPE = "aws:eks/nodeGroup:NodeGroup"
NODE_POOL_TYPE = "kubernetes:karpenter.sh/v1:NodePool"
SERVICE_TYPE = "kubernetes:core/v1:Service"
# Pod-managing kinds that pulumi-kubernetes deletes with foreground propagation and awaits.
WORKLOAD_PREFIX = "kubernetes:apps/v1:"
SKIP_AWAIT = "pulumi.com/skipAwait"
DELETION_PROPAGATION = "pulumi.com/deletionPropagationPolicy"

PREREQUISITE = "prerequisite"
PODS_READY = "its pods ready"  # the Service rule: see `_service_waits`

# Why components, retained and deleted-with resources take no time to delete
# (pulumi/pulumi pkg/resource/deploy/step.go, DeleteStep.Apply): only a custom resource that is
# not RetainOnDelete, and whose DeletedWith target is not being deleted too, calls the provider.
STEP_GO = "https://github.com/pulumi/pulumi/blob/master/pkg/resource/deploy/step.go, DeleteStep.Apply"
COMPONENT_SOURCE = f"a component makes no provider call ({STEP_GO})"


class DurationError(LookupError):
    """The durations table is malformed: an entry without seconds or without a source."""


@dataclass(frozen=True)
class Duration:
    seconds: float
    basis: str  # what decided the figure: the type, a variant, a rule, the default
    source: str  # a URL with what it shows, or "estimate: <reason>"


@dataclass(frozen=True)
class Step:
    """When one resource starts and finishes creating (or deleting, on a destroy path)."""

    urn: str
    type: str
    name: str
    start: float
    finish: float
    duration: Duration
    before: str | None = None  # the URN whose finish set this start (deploy), if any
    after: str = ""  # how it waited for `before`: PREREQUISITE or PODS_READY


@dataclass(frozen=True)
class Wave:
    """One antichain of `pulumi destroy`: deleted in parallel, all done before the next starts."""

    number: int
    start: float
    seconds: float
    members: tuple[str, ...]  # URNs
    longest: Step


@dataclass(frozen=True)
class Timeline:
    operation: str  # "deploy" or "destroy"
    total: float  # seconds
    path: list[Step]
    waves: list[Wave] = field(default_factory=list)


@dataclass(frozen=True)
class Prediction:
    stack: str
    deploy: Timeline
    destroy: Timeline
    unlisted_types: list[str]  # types that fell to the default without being listed there
    protected: list[str]  # names `pulumi destroy` refuses until they are unprotected


# --------------------------------------------------------------------------- the table


def load_durations(path: Path | None = None) -> dict[str, Any]:
    """The durations table, checked: every figure has seconds and a source."""
    path = path or DURATIONS
    if not path.exists():
        raise DurationError(f"no durations table {path}")
    table = json.loads(path.read_text())
    for problem in table_problems(table):
        raise DurationError(f"{path.name}: {problem}")
    return table


def table_problems(table: dict[str, Any]) -> list[str]:
    """What is wrong with the table: entries lacking seconds, or a source that is neither a URL
    nor an `estimate:` with its reason."""
    problems = []

    def check(where: str, entry: dict[str, Any], seconds: tuple[str, ...]) -> None:
        for key in seconds:
            if not isinstance(entry.get(key), (int, float)) or entry[key] < 0:
                problems.append(f"{where}: {key} must be a number of seconds")
        for key in ("source", "delete_source"):
            if (key in entry or key == "source") and not is_sourced(entry.get(key)):
                problems.append(f"{where}: {key} must be a URL or 'estimate: <reason>'")

    both = ("create_seconds", "delete_seconds")
    for type_token, entry in table["types"].items():
        check(type_token, entry, both)
        for variant in entry.get("variants", []):
            check(f"{type_token} when {variant.get('when')}", variant, ())
    for image, entry in table["images"].items():
        check(image, entry, ("ready_seconds",))
    for rule, entry in table["rules"].items():
        check(f"rule {rule}", entry, ())
    check("default", table["default"], both)
    return problems


def is_sourced(source: Any) -> bool:
    if not isinstance(source, str):
        return False
    if source.startswith("estimate:"):
        return len(source.removeprefix("estimate:").strip()) >= 10  # a reason, not a bare word
    return "https://" in source


def _input(inputs: dict[str, Any], path: str) -> Any:
    value: Any = inputs
    for key in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _by_type(resource: Registration, table: dict[str, Any], operation: str) -> Duration:
    """The table's figure for the resource's type (and the first variant its inputs match)."""
    seconds_key = f"{operation}_seconds"
    entry = table["types"].get(resource.type)
    if entry is None:
        default = table["default"]
        basis = "default" if resource.type in default["types"] else "default (type not in the table)"
        return Duration(default[seconds_key], basis, default["source"])
    for variant in entry.get("variants", []):
        if seconds_key in variant and all(_input(resource.inputs, path) == value
                                          for path, value in variant["when"].items()):
            when = ", ".join(f"{path}={json.dumps(value)}" for path, value in variant["when"].items())
            return Duration(variant[seconds_key], when, _source(variant, operation))
    return Duration(entry[seconds_key], "type", _source(entry, operation))


def _source(entry: dict[str, Any], operation: str) -> str:
    return entry.get("delete_source", entry["source"]) if operation == "delete" else entry["source"]


# --------------------------------------------------------------------------- rules


def _annotations(resource: Registration) -> dict[str, Any]:
    metadata = resource.inputs.get("metadata")
    return (metadata.get("annotations") or {}) if isinstance(metadata, dict) else {}


def _skips_await(resource: Registration) -> bool:
    """pulumi-kubernetes' `pulumi.com/skipAwait` annotation, or a Helm Release's `skipAwait`."""
    annotated = str(_annotations(resource).get(SKIP_AWAIT)).lower() == "true"
    return annotated or resource.inputs.get("skipAwait") is True


def _pod_spec(resource: Registration) -> dict[str, Any] | None:
    """The pod template's spec of a workload (Deployment, StatefulSet, Job, ...), else None."""
    spec = _input(resource.inputs, "spec.template.spec")
    return spec if isinstance(spec, dict) and spec.get("containers") else None


def _repository(image: str) -> str:
    """`registry/name` of an image reference, without its tag or digest."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def _scaled_from_zero(pod: dict[str, Any], node_groups: list[Registration]) -> list[str]:
    """The node groups a pod's nodeSelector can land on, when all of them run 0 nodes (so the
    pod waits for a scale-up); empty when any has nodes, or the pod selects no group."""
    selector = pod.get("nodeSelector") or {}
    if not selector:
        return []
    matching = [group for group in node_groups
                if selector.items() <= (group.inputs.get("labels") or {}).items()]
    if matching and all(_input(group.inputs, "scalingConfig.desiredSize") == 0 for group in matching):
        return [group.name for group in matching]
    return []


def _karpenter_pools(pod: dict[str, Any], node_pools: list[Registration]) -> list[str]:
    """The Karpenter NodePools a pod's nodeSelector lands on: a NodePool has no node until a pod
    is pending, so on a deploy the pod always waits for a launch."""
    selector = pod.get("nodeSelector") or {}
    return [pool.name for pool in node_pools if selector and selector.items() <= (
        _input(pool.inputs, "spec.template.metadata.labels") or {}).items()]


def create_duration(resource: Registration, table: dict[str, Any],
                    node_groups: list[Registration],
                    node_pools: list[Registration] = ()) -> Duration:
    """Seconds from the create call until Pulumi sees `resource` ready."""
    if not resource.custom:
        return Duration(0, "component", COMPONENT_SOURCE)
    if _skips_await(resource):
        rule = table["rules"]["skip_await"]
        return Duration(table["default"]["create_seconds"], SKIP_AWAIT, rule["source"])
    duration = _by_type(resource, table, "create")
    pod = _pod_spec(resource)
    if pod is None:
        return duration
    # A workload is ready once its slowest image is pulled and started (containers start in
    # parallel); images the table knows replace the type's generic figure when longer.
    images = [_repository(c["image"]) for c in [*pod.get("initContainers", []), *pod["containers"]]
              if c.get("image")]
    known = [(table["images"][repo]["ready_seconds"], repo) for repo in images if repo in table["images"]]
    if known:
        seconds, repo = max(known)
        if seconds > duration.seconds:
            duration = Duration(seconds, f"image {repo}", table["images"][repo]["source"])
    groups = _scaled_from_zero(pod, node_groups)
    if groups:
        rule = table["rules"]["node_scale_up"]
        duration = Duration(duration.seconds + rule["seconds"],
                            f"{duration.basis} + scale-up of {', '.join(groups)} from 0",
                            f"{duration.source} + {rule['source']}")
    pools = _karpenter_pools(pod, list(node_pools))
    if pools:
        rule = table["rules"]["karpenter_launch"]
        duration = Duration(duration.seconds + rule["seconds"],
                            f"{duration.basis} + a node of {', '.join(pools)}",
                            f"{duration.source} + {rule['source']}")
    return duration


def _stops_after_sigterm(pod: dict[str, Any], table: dict[str, Any]) -> tuple[float, str] | None:
    """Seconds until every container has exited after SIGTERM, when the table knows each image
    to exit on it (`stops_after_sigterm_seconds`); None if any image may ignore it."""
    repos = [_repository(c.get("image", "")) for c in pod["containers"]]
    known = [table["images"].get(repo, {}).get("stops_after_sigterm_seconds") for repo in repos]
    if not repos or any(seconds is None for seconds in known):
        return None
    return max(known), ", ".join(sorted(set(repos)))


def delete_duration(resource: Registration, table: dict[str, Any],
                    index: dict[str, Registration]) -> Duration:
    """Seconds from the delete call until Pulumi sees `resource` gone."""
    if not resource.custom:
        return Duration(0, "component", COMPONENT_SOURCE)
    if resource.retain_on_delete:
        return Duration(0, "retainOnDelete", f"the resource is only dropped from the state ({STEP_GO})")
    if resource.deleted_with in index:  # in a destroy its target is deleted too
        return Duration(0, f"deletedWith {index[resource.deleted_with].name}",
                        f"deleted by its target's deletion ({STEP_GO})")
    pod = _pod_spec(resource)
    propagation = str(_annotations(resource).get(DELETION_PROPAGATION, "foreground")).lower()
    if resource.type.startswith(WORKLOAD_PREFIX) and pod is not None and propagation == "foreground":
        # Foreground deletion keeps the object until its pods are gone; a pod whose PID 1 ignores
        # SIGTERM is killed only after its grace period, so that is the upper bound. Images the
        # table knows to exit on SIGTERM stop after their preStop hook and that exit time.
        rule = table["rules"]["pod_termination"]
        grace = pod.get("terminationGracePeriodSeconds", rule["default_grace_seconds"])
        stops = _stops_after_sigterm(pod, table)
        if stops is not None:
            seconds, repos = stops
            pre_stop = max((_input(c, "lifecycle.preStop.sleep.seconds") or 0
                            for c in pod["containers"]), default=0)
            if pre_stop + seconds < grace:
                sources = " + ".join(table["images"][repo]["stop_source"] for repo in repos.split(", "))
                return Duration(pre_stop + seconds, f"preStop {pre_stop} s + {repos} exits on SIGTERM",
                                sources)
        return Duration(grace, f"terminationGracePeriodSeconds={grace} (upper bound)", rule["source"])
    return _by_type(resource, table, "delete")


def _service_waits(plan: Plan) -> dict[str, list[str]]:
    """Service URN -> the workloads whose pods it selects.

    pulumi-kubernetes reports a Service with a selector ready only once its endpoints have ready
    addresses and none pending (provider/pkg/await/service.go), i.e. once those pods are ready:
    modelled as the Service starting when they are (its own seconds after them, a little long).
    Skipped where the workload itself waits for the Service (a cycle: the real await then ends
    at its timeout, with no endpoints pending).
    """
    workloads = [r for r in plan.resources if r.type.startswith(WORKLOAD_PREFIX) and _pod_spec(r)]
    waits: dict[str, list[str]] = {}
    for service in plan.of_type(SERVICE_TYPE):
        spec = service.inputs.get("spec") or {}
        selector = spec.get("selector") or {}
        if (not selector or spec.get("type") == "ExternalName" or spec.get("clusterIP") == "None"
                or _skips_await(service)):
            continue
        namespace = _input(service.inputs, "metadata.namespace") or "default"
        selected = [w.urn for w in workloads
                    if (_input(w.inputs, "metadata.namespace") or "default") == namespace
                    and selector.items() <= (_input(w.inputs, "spec.template.metadata.labels") or {}).items()
                    and not plan.waits_for(w, service)]
        if selected:
            waits[service.urn] = selected
    return waits


# --------------------------------------------------------------------------- the model


def create_schedule(plan: Plan, table: dict[str, Any]) -> dict[str, Step]:
    """When each resource of the plan starts and finishes creating, on an empty stack.

    Ordering is `Plan.creation_prerequisites` (checked against the Python SDK in
    tests/test_engine.py): a registration is sent once its dependencies, provider and parent
    have resolved. A custom prerequisite resolves when it is created; a component resolves once
    its own prerequisites have (0 s); a provider is a custom resource of ~0 s that waits for its
    inputs. The engine starts each create as soon as its registration arrives (no waves).
    """
    index = plan.by_urn()
    node_groups = plan.of_type(NODE_GROUP_TYPE)
    node_pools = plan.of_type(NODE_POOL_TYPE)
    waits = {r.urn: [(urn, PREREQUISITE) for urn in plan.creation_prerequisites(r) if urn in index]
             for r in plan.resources}  # the stack resource is not recorded: it is ready at 0
    for service, workloads in _service_waits(plan).items():
        waits[service] += [(urn, PODS_READY) for urn in workloads]

    steps: dict[str, Step] = {}
    for urn in TopologicalSorter({u: [w for w, _ in edges] for u, edges in waits.items()}).static_order():
        resource = index[urn]
        start, before, how = 0.0, None, ""
        for prerequisite, kind in waits[urn]:
            if steps[prerequisite].finish > start:
                start, before, how = steps[prerequisite].finish, prerequisite, kind
        duration = create_duration(resource, table, node_groups, node_pools)
        steps[urn] = Step(urn, resource.type, resource.name, start, start + duration.seconds, duration,
                          before, how)
    return steps


def deploy(plan: Plan, table: dict[str, Any]) -> Timeline:
    """Predicted `pulumi up` of the plan on an empty stack, and its critical path: from the
    latest finish back through whatever set each start."""
    steps = create_schedule(plan, table)
    if not steps:
        return Timeline("deploy", 0.0, [])
    custom = {r.urn for r in plan.resources if r.custom}
    last = max(sorted(steps), key=lambda urn: steps[urn].finish)
    path: list[Step] = []
    current: str | None = last
    while current is not None:
        if current in custom:  # components take 0 s: the chain runs through them
            path.append(steps[current])
        current = steps[current].before
    path.reverse()
    return Timeline("deploy", steps[last].finish, path)


def destroy(plan: Plan, table: dict[str, Any]) -> Timeline:
    """Predicted `pulumi destroy` of the plan, wave by wave, as the engine schedules it.

    pulumi/pulumi at 1b5949891b3c (2026-08-21), pkg/resource/deploy/step_generator.go,
    ScheduleDeletes: "1. While the set of condemned resources is not empty: 1a. Remove all
    resources with no outgoing edges from the graph and add them to the current antichain",
    then `slices.Reverse(antichains)`. So a resource's wave is set by its height (the longest
    chain of what it depends on, below it), counted back from the last wave, not by its depth
    from the top. pkg/resource/deploy/deployment_executor.go runs them: "Each list of steps can
    safely be executed in parallel, but each list must execute completes before the next list
    can safely begin executing" (`ExecuteParallel(antichain)`, then `tok.Wait(ctx)`). The edges
    are graph.DependenciesOf (pkg/resource/graph/dependency_graph.go): parent, dependencies,
    property dependencies, deletedWith and provider (pkg/resource/state.go GetAllDependencies);
    `Plan.deletion_prerequisites` plus `deleted_with`. The stack and the default providers,
    not recorded, would only add a last wave of 0 s.
    """
    index = plan.by_urn()
    edges = {r.urn: sorted({urn for urn in [*plan.deletion_prerequisites(r), r.deleted_with] if urn in index})
             for r in plan.resources}
    height: dict[str, int] = {}
    for urn in TopologicalSorter(edges).static_order():
        height[urn] = 1 + max((height[below] for below in edges[urn]), default=-1)

    clock, waves = 0.0, []
    top = max(height.values(), default=-1)
    for number, level in enumerate(range(top, -1, -1), start=1):
        members = [index[urn] for urn in sorted(height) if height[urn] == level]
        timed = [(delete_duration(r, table, index), r) for r in members]
        duration, longest = max(timed, key=lambda pair: (pair[0].seconds, pair[1].custom))
        step = Step(longest.urn, longest.type, longest.name, clock, clock + duration.seconds, duration)
        waves.append(Wave(number, clock, duration.seconds, tuple(r.urn for r in members), step))
        clock += duration.seconds
    return Timeline("destroy", clock, [wave.longest for wave in waves], waves)


def predict(plan: Plan, table: dict[str, Any]) -> Prediction:
    listed = set(table["types"]) | set(table["default"]["types"])
    unlisted = sorted({r.type for r in plan.resources if r.custom and r.type not in listed})
    protected = sorted(r.name for r in plan.resources if r.protect)
    return Prediction(plan.stack, deploy(plan, table), destroy(plan, table), unlisted, protected)


def totals(prediction: Prediction | dict[str, Any]) -> dict[str, float]:
    """{"deploy": s, "destroy": s} of a prediction or of its `--json` form."""
    if isinstance(prediction, Prediction):
        return {"deploy": prediction.deploy.total, "destroy": prediction.destroy.total}
    return {operation: prediction[operation]["total_seconds"] for operation in ("deploy", "destroy")}


def delta(before: Prediction | dict[str, Any], after: Prediction | dict[str, Any]) -> dict[str, float]:
    """Seconds `after` adds to (or, negative, saves on) `before`'s deploy and destroy."""
    old, new = totals(before), totals(after)
    return {operation: new[operation] - old[operation] for operation in ("deploy", "destroy")}


# --------------------------------------------------------------------------- output


def to_json(prediction: Prediction) -> dict[str, Any]:
    def timeline(t: Timeline) -> dict[str, Any]:
        data: dict[str, Any] = {"total_seconds": t.total, "path": [asdict(step) for step in t.path]}
        if t.operation == "destroy":
            data["waves"] = [{"number": w.number, "start": w.start, "seconds": w.seconds,
                              "size": len(w.members), "longest": w.longest.urn} for w in t.waves]
        return data

    return {"stack": prediction.stack, "deploy": timeline(prediction.deploy),
            "destroy": timeline(prediction.destroy), "unlisted_types": prediction.unlisted_types,
            "protected": prediction.protected}


def _clock(seconds: float) -> str:
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def render(prediction: Prediction, base: dict[str, Any] | None = None) -> str:
    sources: list[str] = []

    def note(source: str) -> str:
        if source not in sources:
            sources.append(source)
        number = sources.index(source) + 1
        return f"[{number}]{'E' if source.startswith('estimate:') else ''}"

    def resource(step: Step) -> str:
        return f"{step.type} {step.name}"

    deploy_t, destroy_t = prediction.deploy, prediction.destroy
    width = max((len(resource(s)) for s in [*deploy_t.path, *destroy_t.path]), default=8) + 2
    out = [f"Predicted timeline of stack {prediction.stack} (durations: tools/data/durations.json, "
           "upper-typical figures; E = estimate)", "",
           f"Deploy (`pulumi up` on an empty stack): {_minutes(deploy_t.total)} "
           f"({deploy_t.total:.0f} s), critical path:",
           f"  {'step':>4}  {'start':>6} {'finish':>6} {'duration':>8}  {'resource':<{width}} basis / source"]
    for number, step in enumerate(deploy_t.path, start=1):
        waited = " (waits for its pods)" if step.after == PODS_READY else ""
        out.append(f"  {number:>4}  {_clock(step.start):>6} {_clock(step.finish):>6} "
                   f"{step.duration.seconds:>6.0f} s  {resource(step):<{width}} "
                   f"{step.duration.basis}{waited} {note(step.duration.source)}")
    out += ["", f"Destroy (`pulumi destroy`): {_minutes(destroy_t.total)} ({destroy_t.total:.0f} s) "
                f"in {len(destroy_t.waves)} waves, each waiting for the one before; its longest delete:",
            f"  {'wave':>4}  {'start':>6} {'finish':>6} {'duration':>8}  {'resource':<{width}} "
            f"basis / source (resources in the wave)"]
    for wave in destroy_t.waves:
        step = wave.longest
        out.append(f"  {wave.number:>4}  {_clock(step.start):>6} {_clock(step.finish):>6} "
                   f"{step.duration.seconds:>6.0f} s  {resource(step):<{width}} "
                   f"{step.duration.basis} {note(step.duration.source)} ({len(wave.members)})")
    if base is not None:
        change = delta(base, prediction)
        out += ["", "Change against the base: " + ", ".join(
            f"{operation} {change[operation] / 60:+.1f} min" for operation in ("deploy", "destroy"))]
    if prediction.protected:
        out += ["", f"Protected ({len(prediction.protected)}): `pulumi destroy` refuses them until they are "
                    "unprotected; the destroy above assumes they were."]
    if prediction.unlisted_types:
        out += ["", "Not in the durations table (the default was used): "
                + ", ".join(prediction.unlisted_types)]
    out += ["", "Sources:"] + [f"  [{number}] {source}" for number, source in enumerate(sources, start=1)]
    return "\n".join(out)


def summary(prediction: Prediction, base: dict[str, Any] | None = None) -> str:
    """`make timeline` in one Markdown line: what a pull request adds to an `up` or a destroy."""
    parts = []
    for operation, timeline in (("deploy", prediction.deploy), ("destroy", prediction.destroy)):
        text = f"{operation} **{_minutes(timeline.total)}**"
        if base is not None:
            text += f" ({delta(base, prediction)[operation] / 60:+.1f} min)"
        parts.append(text)
    return f"Predicted `{prediction.stack}` timeline (make timeline): " + ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack", nargs="?", default="dev")
    parser.add_argument("--json", action="store_true", help="print the prediction as JSON")
    parser.add_argument("--base", type=Path, default=None,
                        help="an earlier --json output to compare against (e.g. of the main branch)")
    parser.add_argument("--durations", type=Path, default=None, help="durations table (JSON)")
    parser.add_argument("--summary", action="store_true",
                        help="one Markdown line of totals (and the change against --base), for PRs")
    args = parser.parse_args(argv)

    from components.settings import SettingsError

    try:
        table = load_durations(args.durations)
        base = json.loads(args.base.read_text()) if args.base else None
        prediction = predict(run_stack(ROOT, args.stack), table)
    except (SettingsError, FileNotFoundError, DurationError, json.JSONDecodeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        data = to_json(prediction)
        if base is not None:
            data["delta_seconds"] = delta(base, prediction)
        print(json.dumps(data, indent=2))
    elif args.summary:
        print(summary(prediction, base))
    else:
        print(render(prediction, base))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
