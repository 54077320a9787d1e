"""`make cost STACK=<stack>`: the monthly cost of a stack's recorded plan, per component.

Usage: python -m tools.cost [STACK] [--efs-gib N] [--alb-lcus N] [--prices FILE]

Prices come from a table kept in the repo (`tools/data/aws-prices-<region>.json`, with its
region, date and source). Two columns:
- idle: every model at its floor (`replicas`; 0 for a model that sleeps), raised to its
  `awakeHours.replicas` inside its awake hours, averaged over a week;
- peak: every model at `maxReplicas` all month.
GPU capacity is what the models force: their pods packed by GPUs (or time-sliced slices), CPU
and memory onto the first listed instance type of their group (a managed group never below its
`minSize`). The system node group is at its `desiredSize` in both columns, everything else is
the same in both. Spot capacity is priced on-demand, with the table's Spot discount range shown
beside it. Usage-based charges the plan cannot know are either assumed and labelled (EFS GiB
stored, ALB capacity units) or listed as not included.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import sys
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.instance_types import GPU_INSTANCE_TYPES, karpenter_pod_room, nodes_to_pack
from components.node_group import GPU_NODE_GROUP_LABEL as GPU_GROUP_LABEL
from components.node_group import slices_per_gpu
from components.settings.serving import cpu_millicores, memory_mib

from .engine import Plan, Registration, read_stack_config, run_stack

ROOT = Path(__file__).resolve().parent.parent
PRICES_DIR = Path(__file__).resolve().parent / "data"
COMPONENT_PREFIX = "anythingllm:"
NOT_INCLUDED = ("data transfer and NAT data processing", "CloudWatch Logs and Container Insights "
                "ingestion", "backups and snapshots beyond the free allowance",
                "an emptied Karpenter node's 10 idle minutes and "
                "a woken model's hours outside its schedule")
# AMP's collector-hours and samples: their prices could not be checked offline (README, "Scaling").
NOT_PRICED_TYPES = {"aws:amp/scraper:Scraper": "the managed Prometheus collector and its samples "
                                                "(collector-hours, ingestion, queries)"}
# A week of 15-minute slots, from a Monday in January (no daylight-saving change in it): awake
# hours are evaluated slot by slot in each model's own time zone.
WEEK_START = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
SLOT_MINUTES = 15
SLOTS_PER_WEEK = 7 * 24 * 60 // SLOT_MINUTES
HOURS_PER_WEEK = 168


class PriceError(LookupError):
    """The price table has no price for something the plan creates."""


@dataclass(frozen=True)
class Line:
    component: str
    item: str
    idle: float  # USD per month, models at their floor (and awake hours)
    peak: float  # models at maxReplicas
    spot: bool = False  # Spot first: the discount range applies
    note: str = ""  # where a GPU line's figures come from


@dataclass(frozen=True)
class Assumptions:
    efs_gib: float = 100  # GiB stored on EFS (documents and model weights)
    alb_lcus: float = 1  # average load balancer capacity units


def load_prices(region: str, path: Path | None = None) -> dict[str, Any]:
    path = path or PRICES_DIR / f"aws-prices-{region}.json"
    if not path.exists():
        raise PriceError(f"no price table for region {region!r} ({path.name}); copy "
                         f"{PRICES_DIR.name}/aws-prices-us-east-1.json and fill in that region's prices")
    prices = json.loads(path.read_text())
    if prices["region"] != region:
        raise PriceError(f"{path.name} holds {prices['region']} prices, the stack runs in {region}")
    return prices


def _price(table: dict[str, float], key: str, what: str) -> float:
    if key not in table:
        raise PriceError(f"no {what} price for {key!r} in the price table; add it "
                         f"(known: {', '.join(sorted(table))})")
    return table[key]


def _component(plan: Plan, resource: Registration) -> str:
    """The top-level component (`network`, `cluster`, ...) a resource belongs to."""
    components = [r for r in [resource, *plan.ancestors(resource)] if r.type.startswith(COMPONENT_PREFIX)]
    return components[-1].name if components else "stack"


def _node_group(plan: Plan, group: Registration, prices: dict[str, Any], hours: float) -> list[Line]:
    """A managed node group. A GPU group runs the nodes its models force (never fewer than its
    `minSize`, never more than its `maxSize`); the system group runs its `desiredSize`."""
    inputs = group.inputs
    instance_type = inputs["instanceTypes"][0]  # the first type is the one priced
    hourly = _price(prices["ec2"], instance_type, "EC2")
    scaling = inputs["scalingConfig"]
    index = plan.by_urn()
    templates = [index[urn] for urn in group.property_dependencies.get("launchTemplate", [])]
    volumes = [mapping["ebs"] for template in templates
               for mapping in template.inputs.get("blockDeviceMappings") or []]
    disk_gib = sum(volume["volumeSize"] for volume in volumes)
    node_month = hourly * hours + sum(_gp3_month(volume, volume["volumeSize"], prices) for volume in volumes)
    spot = inputs.get("capacityType") == "SPOT"
    component = _component(plan, group)
    gpu_group = (inputs.get("labels") or {}).get(GPU_GROUP_LABEL)
    if gpu_group is None:
        label = (f"node group {group.name.removeprefix('cluster-')}: {scaling['desiredSize']} "
                 f"(desired) x {instance_type} + {disk_gib} GiB gp3")
        monthly = scaling["desiredSize"] * node_month
        return [Line(component, label, monthly, monthly, spot)]
    room = (GPU_INSTANCE_TYPES[instance_type].gpus, *karpenter_pod_room(instance_type))
    loads = _model_loads(plan, gpu_group)
    idle, peak = _node_hours(loads, room, floor=scaling["minSize"], ceiling=scaling["maxSize"])
    label = (f"node group {group.name.removeprefix('cluster-')}: {_nodes_text(idle, peak)} x "
             f"{instance_type} + {disk_gib} GiB gp3")
    note = (f"min {scaling['minSize']}, max {scaling['maxSize']} nodes; one GPU per model pod; "
            f"{_loads_text(loads)}")
    return [Line(component, label, idle * node_month, peak * node_month, spot, note)]


def _gp3_month(volume: dict[str, Any], gib: int, prices: dict[str, Any]) -> float:
    """A gp3 volume per month: its size, and IOPS and throughput above the 3000 IOPS and
    125 MiB/s every gp3 volume includes."""
    return (gib * prices["ebsGp3GbMonth"]
            + max(0, (volume.get("iops") or 3000) - 3000) * prices["ebsGp3IopsMonth"]
            + max(0, (volume.get("throughput") or 125) - 125) * prices["ebsGp3MiBpsMonth"])


def _pod_requests(pod: dict[str, Any]) -> tuple[int, int, int]:
    """(GPUs, millicores, MiB) a pod requests: its containers and its native sidecars (init
    containers that keep running), which count toward the pod's requests for its whole life."""
    containers = [*pod["containers"],
                  *(c for c in pod.get("initContainers", []) if c.get("restartPolicy") == "Always")]
    requests = [c.get("resources", {}).get("requests", {}) for c in containers]
    return (sum(int(r.get("nvidia.com/gpu", 0)) for r in requests),
            sum(cpu_millicores(r["cpu"]) for r in requests if "cpu" in r),
            sum(memory_mib(r["memory"]) for r in requests if "memory" in r))


def _node_pool(plan: Plan, pool: Registration, prices: dict[str, Any], hours: float) -> list[Line]:
    """A Karpenter GPU NodePool runs the nodes its model servers need: their replicas packed by
    GPUs (or time-sliced GPU slices), CPU and memory onto the first listed instance type, priced
    as that type (Karpenter may pick another of
    the list, the cheapest offered), each with its EC2NodeClass's volumes (gp3 size, and
    provisioned IOPS and throughput above the baseline). Both columns are the same: a NodePool
    has no minimum of its own. Not counted: the extra node while a model rolls out, and the ten
    minutes an emptied node waits before it goes."""
    spec = pool.inputs["spec"]
    requirements = {r["key"]: r["values"] for r in spec["template"]["spec"]["requirements"]}
    instance_type = requirements["node.kubernetes.io/instance-type"][0]
    hourly = _price(prices["ec2"], instance_type, "EC2")
    group = spec["template"]["metadata"]["labels"][GPU_GROUP_LABEL]
    labels = spec["template"]["metadata"]["labels"]
    # A group that time-slices its GPUs advertises `replicas` nvidia.com/gpu per GPU.
    slices = slices_per_gpu(labels)
    gpus_per_node = GPU_INSTANCE_TYPES[instance_type].gpus * slices
    loads = _model_loads(plan, group)
    # Packed by GPUs (or slices), CPU and memory together: two models that share a GPU still
    # need a node with room for both pods.
    idle, peak = _node_hours(loads, (gpus_per_node, *karpenter_pod_room(instance_type)))
    node_class = next(c for c in plan.of_type("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass")
                      if c.inputs["metadata"]["name"] == spec["template"]["spec"]["nodeClassRef"]["name"])
    volumes = [(m["ebs"], int(m["ebs"]["volumeSize"].removesuffix("Gi")))
               for m in node_class.inputs["spec"]["blockDeviceMappings"]]
    volume, _ = max(volumes, key=lambda pair: pair[1])  # the data volume
    disk_gib = sum(gib for _, gib in volumes)
    node_month = hourly * hours + sum(_gp3_month(v, gib, prices) for v, gib in volumes)
    spot = "spot" in requirements["karpenter.sh/capacity-type"]
    unit = "a GPU" if slices == 1 else f"a GPU slice ({slices} per GPU)"
    label = (f"node pool {group}: {_nodes_text(idle, peak)} x {instance_type} + {disk_gib} GiB gp3 "
             f"({volume['iops']} IOPS, {volume['throughput']} MiB/s)")
    note = (f"the first listed type; a model pod takes {unit}; {_loads_text(loads)}")
    return [Line(_component(plan, pool), label, idle * node_month, peak * node_month, spot, note)]


@dataclass(frozen=True)
class ModelLoad:
    """One model's pods on a GPU group, as the plan declares them: its workload's pod, and its
    ScaledObject's bounds and cron trigger (or the workload's fixed count)."""

    name: str
    pod: tuple[int, int, int]
    floor: int
    peak: int
    # (replicas, time zone, cron days, start minute of the day, end minute) of awake hours
    awake: tuple[int, str, frozenset[int], int, int] | None = None

    def replicas(self, when: dt.datetime) -> int:
        if self.awake is None:
            return self.floor
        replicas, zone, days, start, end = self.awake
        local = when.astimezone(zoneinfo.ZoneInfo(zone))
        minute = local.hour * 60 + local.minute
        cron_day = (local.weekday() + 1) % 7  # cron counts from Sunday = 0
        return replicas if cron_day in days and start <= minute < end else self.floor


def _cron_minute(expression: str) -> tuple[int, frozenset[int]]:
    """`M H * * D,D` (what model_autoscaling.py writes) -> (minute of the day, days)."""
    minute, hour, _, _, days = expression.split()
    return int(hour) * 60 + int(minute), frozenset(int(day) for day in days.split(","))


def _model_loads(plan: Plan, group: str) -> list[ModelLoad]:
    scaled = {so.inputs["spec"]["scaleTargetRef"]["name"]: so.inputs["spec"]
              for so in plan.of_type("kubernetes:keda.sh/v1alpha1:ScaledObject")}
    loads = []
    workloads = [*plan.of_type("kubernetes:apps/v1:Deployment"),
                 *plan.of_type("kubernetes:apps/v1:StatefulSet")]
    for workload in workloads:
        template = workload.inputs["spec"]["template"]["spec"]
        if (template.get("nodeSelector") or {}).get(GPU_GROUP_LABEL) != group:
            continue
        name = workload.inputs["metadata"]["name"]
        pod = _pod_requests(template)
        spec = scaled.get(name)
        if spec is None:
            count = workload.inputs["spec"].get("replicas", 1)
            loads.append(ModelLoad(name, pod, count, count))
            continue
        awake = None
        for trigger in spec["triggers"]:
            if trigger["type"] == "cron":
                meta = trigger["metadata"]
                start, days = _cron_minute(meta["start"])
                end, _ = _cron_minute(meta["end"])
                # A model that sleeps stays up its idle period after the window closes (KEDA
                # counts the cooldown from the last active poll); not past midnight, here.
                if spec["minReplicaCount"] == 0:
                    end = min(24 * 60, end + spec.get("cooldownPeriod", 300) // 60)
                awake = (int(meta["desiredReplicas"]), meta["timezone"], days, start, end)
        loads.append(ModelLoad(name, pod, spec["minReplicaCount"], spec["maxReplicaCount"], awake))
    return loads


def _node_hours(loads: list[ModelLoad], room: tuple[int, int, int], *, floor: int = 0,
                ceiling: int | None = None) -> tuple[float, float]:
    """(idle, peak) in nodes running all month: idle averaged over the week's slots, each
    packed on its own; peak with every model at its ceiling."""
    @functools.cache
    def nodes(counts: tuple[int, ...]) -> int:
        pods = [load.pod for load, count in zip(loads, counts, strict=True) for _ in range(count)]
        needed = max(floor, nodes_to_pack(pods, room) if pods else 0)
        return needed if ceiling is None else min(ceiling, needed)

    week = [nodes(tuple(load.replicas(WEEK_START + dt.timedelta(minutes=SLOT_MINUTES * slot))
                        for load in loads)) for slot in range(SLOTS_PER_WEEK)]
    return sum(week) / SLOTS_PER_WEEK, float(nodes(tuple(load.peak for load in loads)))


def _nodes_text(idle: float, peak: float) -> str:
    return f"{idle:.2f} / {peak:g}"


def _loads_text(loads: list[ModelLoad]) -> str:
    """Where the columns come from: each model's floor, awake hours and ceiling."""
    parts = []
    for load in loads:
        text = f"{load.name.removeprefix('vllm-')} {load.floor}"
        if load.awake is not None:
            replicas, zone, days, start, end = load.awake
            hours = len(days) * (end - start) / 60
            text += f" ({replicas} for {hours:g} h/week, {zone})"
        parts.append(f"{text}-{load.peak}")
    return "replicas (floor-peak): " + ", ".join(parts)


def _cache_nodes(inputs: dict[str, Any]) -> int:
    if inputs.get("numCacheClusters") is not None:
        return inputs["numCacheClusters"]
    return inputs["numNodeGroups"] * (1 + inputs["replicasPerNodeGroup"])


def _alarm_metrics(inputs: dict[str, Any]) -> int:
    queries = inputs.get("metricQueries") or []
    return sum(1 for query in queries if query.get("metric")) or 1


def estimate(plan: Plan, prices: dict[str, Any], assumptions: Assumptions = Assumptions()) -> list[Line]:
    """Monthly cost lines of every priced resource of the plan (a model that sleeps all week
    forces no GPU node: its line is 0 at idle)."""
    hours = prices["hoursPerMonth"]
    lines: list[Line] = []

    def fixed(resource: Registration, item: str, monthly: float) -> None:
        lines.append(Line(_component(plan, resource), item, monthly, monthly))

    for resource in plan.resources:
        inputs, kind = resource.inputs, resource.type
        if kind == "aws:eks/cluster:Cluster":
            fixed(resource, "EKS control plane (standard support)", prices["eks"]["clusterHour"] * hours)
        elif kind == "aws:eks/nodeGroup:NodeGroup":
            lines += _node_group(plan, resource, prices, hours)
        elif kind == "kubernetes:karpenter.sh/v1:NodePool":
            lines += _node_pool(plan, resource, prices, hours)
        elif kind == "aws:ec2/natGateway:NatGateway":
            fixed(resource, f"NAT gateway {resource.name}", prices["natGatewayHour"] * hours)
        elif kind == "aws:ec2/eip:Eip":
            fixed(resource, f"public IPv4 {resource.name}", prices["publicIpv4Hour"] * hours)
        elif kind == "aws:ec2/vpcEndpoint:VpcEndpoint" and inputs.get("vpcEndpointType") == "Interface":
            zones = len(inputs.get("subnetIds") or [])
            fixed(resource, f"interface endpoint {inputs['serviceName']} in {zones} AZs",
                  prices["interfaceEndpointHourPerAz"] * zones * hours)
        elif kind == "aws:rds/instance:Instance":
            rds = prices["rds"]
            copies = rds["multiAzFactor"] if inputs.get("multiAz") else 1
            instance = _price(rds["instanceHour"], inputs["instanceClass"], "RDS") * copies * hours
            storage = inputs["allocatedStorage"] * rds["gp3GbMonth"] * copies
            layout = "Multi-AZ" if copies > 1 else "single-AZ"
            fixed(resource, f"RDS {inputs['instanceClass']} {layout}", instance)
            fixed(resource, f"RDS storage {inputs['allocatedStorage']} GiB gp3 {layout}", storage)
        elif kind == "aws:elasticache/replicationGroup:ReplicationGroup":
            cache = prices["elasticache"]
            nodes = _cache_nodes(inputs)
            hourly = (_price(cache["nodeHour"], inputs["nodeType"], "ElastiCache")
                      * cache["engineFactor"][inputs["engine"]])
            fixed(resource, f"ElastiCache {nodes} x {inputs['nodeType']} ({inputs['engine']})",
                  nodes * hourly * hours)
        elif kind == "aws:efs/fileSystem:FileSystem":
            fixed(resource, f"EFS Standard, {assumptions.efs_gib:g} GiB stored (assumed)",
                  assumptions.efs_gib * prices["efsStandardGbMonth"])
        elif kind == "aws:kms/key:Key":
            fixed(resource, f"KMS key {resource.name}", prices["kmsKeyMonth"])
        elif kind == "aws:cloudwatch/metricAlarm:MetricAlarm":
            fixed(resource, "CloudWatch alarms",
                  _alarm_metrics(inputs) * prices["cloudwatchAlarmMetricMonth"])
        elif kind == "aws:cloudwatch/dashboard:Dashboard":
            fixed(resource, "CloudWatch dashboard", prices["cloudwatchDashboardMonth"])
        elif kind == "kubernetes:networking.k8s.io/v1:Ingress" and _is_alb(inputs):
            lines += _load_balancer(plan, resource, prices, assumptions, hours)
    return _merge(lines)


def _is_alb(inputs: dict[str, Any]) -> bool:
    return (inputs.get("spec") or {}).get("ingressClassName") == "alb"


def _load_balancer(plan: Plan, ingress: Registration, prices: dict[str, Any],
                   assumptions: Assumptions, hours: float) -> list[Line]:
    """The ALB the controller creates for the Ingress (not a Pulumi resource): hours, assumed
    capacity units, and one public IPv4 address per AZ when internet-facing."""
    component = _component(plan, ingress)
    annotations = ingress.inputs["metadata"].get("annotations") or {}
    alb = prices["albHour"] * hours + assumptions.alb_lcus * prices["albLcuHour"] * hours
    lines = [Line(component, f"ALB (by the controller), {assumptions.alb_lcus:g} LCU assumed", alb, alb)]
    if annotations.get("alb.ingress.kubernetes.io/scheme") == "internet-facing":
        public_subnets = [r for r in plan.of_type("aws:ec2/subnet:Subnet")
                          if "kubernetes.io/role/elb" in (r.inputs.get("tags") or {})]
        monthly = len(public_subnets) * prices["publicIpv4Hour"] * hours
        lines.append(Line(component, f"ALB public IPv4 x {len(public_subnets)}", monthly, monthly))
    return lines


def _merge(lines: list[Line]) -> list[Line]:
    """One line per (component, item): alarms and keys are summed, not listed one by one."""
    merged: dict[tuple[str, str], Line] = {}
    counts: dict[tuple[str, str], int] = {}
    for line in lines:
        item = "KMS keys" if line.item.startswith("KMS key ") else line.item
        key = (line.component, item)
        previous = merged.get(key)
        counts[key] = counts.get(key, 0) + 1
        merged[key] = Line(line.component, item, line.idle + (previous.idle if previous else 0),
                           line.peak + (previous.peak if previous else 0), line.spot, line.note)
    return [Line(line.component, f"{line.item} x {counts[key]}" if counts[key] > 1 else line.item,
                 line.idle, line.peak, line.spot, line.note) for key, line in merged.items()]


def totals(lines: list[Line]) -> dict[str, tuple[float, float]]:
    """Per component, (idle, peak); and the stack under "total"."""
    result: dict[str, tuple[float, float]] = {}
    for line in lines:
        low, high = result.get(line.component, (0.0, 0.0))
        result[line.component] = (low + line.idle, high + line.peak)
    result["total"] = (sum(v[0] for v in result.values()), sum(v[1] for v in result.values()))
    return result


def render(stack: str, lines: list[Line], prices: dict[str, Any], assumptions: Assumptions,
           not_priced: list[str] | tuple[str, ...] = ()) -> str:
    width = max(len(line.item) for line in lines) + 2
    out = [f"Monthly cost estimate of stack {stack} ({prices['region']}, prices of {prices['date']}, "
           f"{prices['currency']}, {prices['hoursPerMonth']} h/month)", "",
           f"  {'component / item':<{width}} {'idle':>11} {'peak':>11}"]
    sums = totals(lines)
    for component in sorted({line.component for line in lines}, key=lambda c: -sums[c][1]):
        low, high = sums[component]
        out.append(f"  {component:<{width}} {low:>11,.2f} {high:>11,.2f}")
        for line in sorted((x for x in lines if x.component == component), key=lambda x: -x.peak):
            out.append(f"    {line.item:<{width - 2}} {line.idle:>11,.2f} {line.peak:>11,.2f}")
    low, high = sums["total"]
    out += ["", f"  {'total':<{width}} {low:>11,.2f} {high:>11,.2f}", "",
            f"Assumed: {assumptions.efs_gib:g} GiB on EFS, {assumptions.alb_lcus:g} ALB LCU."]
    notes = [line for line in lines if line.note]
    if notes:
        out.append("GPU nodes (idle: the week's average count of nodes the models' pods need, "
                   "packed by GPU, CPU and memory; peak: every model at maxReplicas):")
        out += [f"  {line.item.split(':')[0]}: {line.note}" for line in notes]
    spot = [line for line in lines if line.spot]
    if spot:
        discount = prices["spotDiscount"]
        low_rate, high_rate = 1 - discount["high"], 1 - discount["low"]
        idle, peak = sum(x.idle for x in spot), sum(x.peak for x in spot)
        out.append(f"Spot first ({', '.join(x.item.split(':')[0] for x in spot)}): priced "
                   f"on-demand above; at {discount['low']:.0%}-{discount['high']:.0%} below "
                   f"on-demand (an estimate, the price table's spotDiscount) they would cost "
                   f"{idle * low_rate:,.2f}-{idle * high_rate:,.2f} idle and "
                   f"{peak * low_rate:,.2f}-{peak * high_rate:,.2f} at peak.")
    out.append("Not included: " + "; ".join([*NOT_INCLUDED, *not_priced]) + ".")
    return "\n".join(out)


def not_priced(plan: Plan) -> list[str]:
    """What the plan creates that the price table cannot price (NOT_PRICED_TYPES)."""
    return [what for kind, what in NOT_PRICED_TYPES.items() if plan.of_type(kind)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack", nargs="?", default="dev")
    parser.add_argument("--efs-gib", type=float, default=Assumptions.efs_gib)
    parser.add_argument("--alb-lcus", type=float, default=Assumptions.alb_lcus)
    parser.add_argument("--prices", type=Path, default=None, help="price table (JSON)")
    args = parser.parse_args(argv)

    from components.settings import SettingsError

    try:
        plan = run_stack(ROOT, args.stack)
        prices = load_prices(read_stack_config(ROOT, args.stack)["aws:region"], args.prices)
        assumptions = Assumptions(efs_gib=args.efs_gib, alb_lcus=args.alb_lcus)
        lines = estimate(plan, prices, assumptions)
    except (SettingsError, FileNotFoundError, PriceError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(render(args.stack, lines, prices, assumptions, not_priced(plan)))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
