"""Find what destroyed stacks left behind; with --delete, delete what the AWS Load Balancer
Controller left for clusters that no longer exist: load balancers, target groups and security
groups.

    python -m tools.sweep [--region us-east-1] [--cluster-prefix anythingllm-]
                          [--project anythingllm] [--delete]

First, every resource this project's tags or names find whose stack has no cluster any more
(tools/leftovers.py: instances and volumes of nodes, snapshots, log groups, access points,
recovery points...), with what prod keeps on purpose marked as kept; these are listed, for a
person to delete. Then the controller's leftovers:

A destroy that lost the controller before its Ingresses (a failed run, a cluster deleted by
hand) leaves these behind; the ALB keeps costing money and its security group blocks the
VPC's deletion. Only resources tagged `elbv2.k8s.aws/cluster=<name>` whose cluster is gone and
whose name starts with `--cluster-prefix` are touched (the default is this project's prefix,
so other teams' clusters in the account are never considered). Without `--delete` it only
lists. Deletion goes load balancers first (their listeners go with them), then target
groups, then security groups (retried: ENIs of a just-deleted ALB take a while to go);
a load balancer with deletion protection is reported and kept.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from tools.aws_inventory import ControllerInventory, ControllerResource
from tools.leftovers import Leftover, TagInventory

ORDER = ("load-balancer", "target-group", "security-group")
DEFAULT_PREFIX = "anythingllm-"


def orphans(inventory: ControllerInventory, *, cluster_prefix: str) -> list[ControllerResource]:
    """Resources of clusters that do not exist (any more), in deletion order."""
    existing = inventory.existing_clusters()
    found = [r for r in inventory.resources()
             if r.cluster.startswith(cluster_prefix) and r.cluster not in existing]
    return sorted(found, key=lambda r: (ORDER.index(r.kind), r.cluster, r.name))


def sweep(inventory: ControllerInventory, *, cluster_prefix: str, delete: bool,
          log: Callable[[str], None] = print, sleep: Callable[[float], None] = time.sleep,
          attempts: int = 10) -> list[ControllerResource]:
    """List the orphans; with `delete`, delete them. Returns what is (or would be) deleted."""
    found = orphans(inventory, cluster_prefix=cluster_prefix)
    if not found:
        log("nothing to sweep")
        return []
    chosen = []
    for resource in found:
        if inventory.deletion_protected(resource):
            log(f"keep   {resource.kind:<15} {resource.name}  (cluster {resource.cluster}): "
                "deletion protection is on")
            continue
        chosen.append(resource)
        verb = "delete" if delete else "orphan"
        log(f"{verb} {resource.kind:<15} {resource.name}  (cluster {resource.cluster})")
    if not delete:
        return chosen
    for resource in chosen:
        for attempt in range(1, attempts + 1):
            try:
                inventory.delete(resource)
                break
            except Exception as error:  # DependencyViolation / ResourceInUse while ENIs drain
                if attempt == attempts:
                    raise RuntimeError(
                        f"could not delete {resource.kind} {resource.name}: {error}") from error
                sleep(15)
    return chosen


def report_leftovers(tags: TagInventory, *, project: str,
                     log: Callable[[str], None] = print) -> list[Leftover]:
    """List every leftover of the project's destroyed stacks; returns those not kept on purpose."""
    found = tags.leftovers(project)
    for item in found:
        state = f"kept   ({item.kept})" if item.kept else "left  "
        log(f"{state} {item.kind:<32} {item.arn}  ({item.stack})")
    if not found:
        log(f"nothing left of a destroyed {project} stack")
    return [item for item in found if not item.kept]


def main(argv: list[str] | None = None, inventory: ControllerInventory | None = None,
         tags: TagInventory | None = None) -> int:
    """Exit status 1 when something is left that a person must delete, or could not be
    listed: the daily reap job (.github/workflows/staging.yml) then fails and says so."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", default=None)
    parser.add_argument("--clusters-region", default=None,
                        help="where the stacks' clusters are, when --region is a copy region")
    parser.add_argument("--cluster-prefix", default=DEFAULT_PREFIX)
    parser.add_argument("--project", default=DEFAULT_PREFIX.rstrip("-"),
                        help="the anythingllm:project tag (Pulumi.yaml's name)")
    parser.add_argument("--delete", action="store_true",
                        help="delete the load balancer controller's leftovers, not only list")
    args = parser.parse_args(argv)
    if not args.cluster_prefix:
        parser.error("--cluster-prefix must not be empty: it limits the sweep to this project's clusters")
    # The controller's leftovers first: deleting them is what unblocks a failed destroy.
    orphaned = sweep(inventory or ControllerInventory.for_region(args.region),
                     cluster_prefix=args.cluster_prefix, delete=args.delete)
    try:
        left = report_leftovers(tags or TagInventory.for_region(args.region, args.clusters_region),
                                project=args.project)
    except Exception as error:  # denied or throttled: say so, and fail
        print(f"could not list what destroyed stacks left: {error}", file=sys.stderr)
        return 1
    if left:
        print(f"{len(left)} resources of destroyed stacks are left: delete them by ARN "
              "(README, \"Nothing left behind\")", file=sys.stderr)
    if orphaned and not args.delete:
        print(f"{len(orphaned)} load balancer controller leftovers: --delete deletes them",
              file=sys.stderr)
    return 1 if left or (orphaned and not args.delete) else 0


if __name__ == "__main__":
    sys.exit(main())
