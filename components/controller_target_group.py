"""ControllerTargetGroup: waits for a target group the AWS Load Balancer Controller creates.

The controller creates an Ingress backend's target group when it reconciles the Ingress, some
seconds after the Kubernetes API accepted it. `aws.lb.get_target_group` fails unless exactly one
group matches (terraform-provider-aws `internal/service/elbv2/target_group_data_source.go`), so a
lookup that runs while the controller is still at work (a canary added to a running stack: the
Ingress already has its hostname, so nothing waits) fails the `up`, and a rerun passes. This
resource polls until exactly one group carries the controller's tags, for up to `timeout`
seconds, and then exposes its ARN suffix (what CloudWatch calls the `TargetGroup` dimension).

It is a Pulumi dynamic resource: the provider runs inside `pulumi up` with boto3 and the
ambient AWS credentials (the ones the `aws` provider uses when it has no explicit
configuration). It reads only: `elasticloadbalancing:DescribeTargetGroups` and
`elasticloadbalancing:DescribeTags`.
"""

from __future__ import annotations

import time
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

# The marker the offline engine's FakeCloud answers by (tools/fake_cloud.py).
KIND = "elbv2-target-group-by-tags"
DEFAULT_TIMEOUT_SECONDS = 900
POLL_SECONDS = 10
TAGS_PER_CALL = 20  # DescribeTags takes at most 20 ARNs


def arn_suffix(target_group_arn: str) -> str:
    """`targetgroup/<name>/<id>`: the part of the ARN after the account."""
    return target_group_arn.split(":", 5)[5]


def matching(groups: list[dict[str, Any]], tags_by_arn: dict[str, dict[str, str]],
             wanted: dict[str, str]) -> list[str]:
    """ARNs of the groups whose tags include every wanted key and value."""
    return sorted(group["TargetGroupArn"] for group in groups
                  if all(tags_by_arn.get(group["TargetGroupArn"], {}).get(key) == value
                         for key, value in wanted.items()))


def find_target_group(client: Any, *, load_balancer_name: str, tags: dict[str, str],
                      timeout: float, poll: float = POLL_SECONDS,
                      clock: Any = time.monotonic, sleep: Any = time.sleep) -> str:
    """The ARN of the one target group of `load_balancer_name` tagged `tags`; waits while there
    is none, and fails with both counts if there are several or the time runs out."""
    deadline = clock() + timeout
    while True:
        load_balancers = client.describe_load_balancers(Names=[load_balancer_name])["LoadBalancers"]
        groups = client.describe_target_groups(
            LoadBalancerArn=load_balancers[0]["LoadBalancerArn"])["TargetGroups"]
        tags_by_arn: dict[str, dict[str, str]] = {}
        arns = [group["TargetGroupArn"] for group in groups]
        for start in range(0, len(arns), TAGS_PER_CALL):
            described = client.describe_tags(ResourceArns=arns[start:start + TAGS_PER_CALL])
            for entry in described["TagDescriptions"]:
                tags_by_arn[entry["ResourceArn"]] = {t["Key"]: t["Value"] for t in entry["Tags"]}
        found = matching(groups, tags_by_arn, tags)
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise RuntimeError(f"{len(found)} target groups of {load_balancer_name} carry {tags}: "
                               f"{found}; expected one")
        if clock() >= deadline:
            raise TimeoutError(f"no target group of {load_balancer_name} carries {tags} after "
                               f"{timeout:.0f} s: is the AWS Load Balancer Controller running, and "
                               "does `kubectl describe ingress` show a reconcile error?")
        sleep(poll)


class _Waiter(ResourceProvider):
    """Polls ELBv2 at create and update; delete is a no-op (the controller owns the group)."""

    def _lookup(self, props: dict[str, Any]) -> dict[str, Any]:
        import boto3  # imported where the provider runs, not where the program is planned

        client = boto3.client("elbv2", region_name=props["region"])
        arn = find_target_group(client, load_balancer_name=props["load_balancer_name"],
                                tags=props["tags"], timeout=float(props["timeout_seconds"]))
        return {**props, "arn": arn, "arn_suffix": arn_suffix(arn)}

    def create(self, props: dict[str, Any]) -> CreateResult:
        outputs = self._lookup(props)
        return CreateResult(id_=outputs["arn"], outs=outputs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        keys = ("region", "load_balancer_name", "tags", "trigger")
        changed = [key for key in keys if olds.get(key) != news.get(key)]
        return DiffResult(changes=bool(changed), replaces=[], stables=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._lookup(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_=id_, outs=props)


class ControllerTargetGroup(Resource):
    """The target group the controller made for one Ingress backend, once it exists.

    Args:
        name: logical name.
        region: the ALB's region.
        load_balancer_name: the ALB's name (the Ingress's `load-balancer-name` annotation).
        tags: the controller's tags on the group (`elbv2.k8s.aws/cluster`,
            `ingress.k8s.aws/resource`, see ingress.target_group_resource_id).
        trigger: an Output that changes when the Ingress is changed (re-polled then); its
            resolution is also what the lookup waits for (the Ingress's hostname).
        timeout_seconds: how long to wait for the controller.

    Attributes:
        arn, arn_suffix (Outputs).
    """

    arn: pulumi.Output[str]
    arn_suffix: pulumi.Output[str]

    def __init__(self, name: str, *, region: str, load_balancer_name: str, tags: dict[str, str],
                 trigger: pulumi.Input[str], timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(_Waiter(), name, {
            "kind": KIND,
            "region": region,
            "load_balancer_name": load_balancer_name,
            "tags": tags,
            "trigger": trigger,
            "timeout_seconds": timeout_seconds,
            "arn": None,
            "arn_suffix": None,
        }, opts)
