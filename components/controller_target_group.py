"""ControllerTargetGroup: waits for a target group the AWS Load Balancer Controller creates.

The controller creates an Ingress backend's target group when it reconciles the Ingress, some
seconds after the Kubernetes API accepted it. `aws.lb.get_target_group` fails unless exactly one
group matches (terraform-provider-aws `internal/service/elbv2/target_group_data_source.go`), so a
lookup that runs while the controller is still at work (a canary added to a running stack: the
Ingress already has its hostname, so nothing waits) fails the `up`, and a rerun passes. This
resource polls until exactly one group carries the controller's tags, for up to `timeout`
seconds, and then exposes its ARN suffix (what CloudWatch calls the `TargetGroup` dimension).

The controller names a group by a hash that includes its Service's UID
(aws-load-balancer-controller v3.5.0 pkg/ingress/model_build_target_group.go): a re-created
Service gets a new group while the old one may still exist for a few seconds. So the Service's UID
is an input, and when it changed the old group's ARN is not accepted.

It is a Pulumi dynamic resource: the provider runs inside `pulumi up` with boto3 and the ambient
AWS credentials and Region settings of the process (`aws:profile` or `aws:assumeRoles` stack
config does not reach it; the committed stacks set only `aws:region`, passed explicitly). It only
reads: `elasticloadbalancing:DescribeLoadBalancers`, `DescribeTargetGroups` and `DescribeTags`.
Pulumi's SDK stores the provider in the state by reference to this module and class, and its
host runs `python -m pulumi.dynamic` in the project directory (pulumi/pulumi
sdk/python/dist/pulumi-resource-pulumi-python): moving or renaming them would break refresh and
destroy of existing stacks, so keep an alias here if they ever move.
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
                      timeout: float, exclude: frozenset[str] = frozenset(),
                      poll: float = POLL_SECONDS, clock: Any = time.monotonic,
                      sleep: Any = time.sleep) -> str:
    """The ARN of the one target group of `load_balancer_name` tagged `tags`, other than those in
    `exclude` (groups about to be replaced); waits while there is none, and fails if there are
    several or the time runs out."""
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
        found = [arn for arn in matching(groups, tags_by_arn, tags) if arn not in exclude]
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


def stale_groups(olds: dict[str, Any], news: dict[str, Any]) -> frozenset[str]:
    """The old group, when its Service was re-created: the controller replaces that group."""
    if olds.get("arn") and olds.get("service_uid") != news.get("service_uid"):
        return frozenset({olds["arn"]})
    return frozenset()


class _Waiter(ResourceProvider):
    """Polls ELBv2 at create and update; delete is a no-op (the controller owns the group)."""

    def _lookup(self, props: dict[str, Any], exclude: frozenset[str] = frozenset()) -> dict[str, Any]:
        import boto3  # imported where the provider runs, not where the program is planned

        client = boto3.client("elbv2", region_name=props["region"])
        arn = find_target_group(client, load_balancer_name=props["load_balancer_name"],
                                tags=props["tags"], timeout=float(props["timeout_seconds"]),
                                exclude=exclude)
        return {**props, "arn": arn, "arn_suffix": arn_suffix(arn)}

    def create(self, props: dict[str, Any]) -> CreateResult:
        outputs = self._lookup(props)
        return CreateResult(id_=outputs["arn"], outs=outputs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        keys = ("region", "load_balancer_name", "tags", "trigger", "service_uid")
        changed = [key for key in keys if olds.get(key) != news.get(key)]
        return DiffResult(changes=bool(changed), replaces=[], stables=[], delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._lookup(news, exclude=stale_groups(olds, news)))

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
        service_uid: the backend Service's UID (a new one means a new group).
        timeout_seconds: how long to wait for the controller.

    Attributes:
        arn, arn_suffix (Outputs).
    """

    arn: pulumi.Output[str]
    arn_suffix: pulumi.Output[str]

    def __init__(self, name: str, *, region: str, load_balancer_name: str, tags: dict[str, str],
                 trigger: pulumi.Input[str], service_uid: pulumi.Input[str] | None = None,
                 timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(_Waiter(), name, {
            "kind": KIND,
            "region": region,
            "load_balancer_name": load_balancer_name,
            "tags": tags,
            "trigger": trigger,
            "service_uid": service_uid,
            "timeout_seconds": timeout_seconds,
            "arn": None,
            "arn_suffix": None,
        }, opts)
