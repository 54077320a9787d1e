"""What the AWS Load Balancer Controller left in an account: its load balancers, target
groups and security groups, found by the tag it puts on each (`elbv2.k8s.aws/cluster`).

Used by `tools/staging.py` (wait until the controller has deleted a stack's ALB) and
`tools/sweep.py` (find and delete what belongs to clusters that no longer exist). boto3 is
imported only when a real client is built (`requirements-tools.txt`); tests pass clients
from moto.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

# The controller tags every ELBv2 resource and security group it creates with the cluster's
# name; the upstream IAM policy (components/data/) scopes its deletes by the same tag.
CLUSTER_TAG = "elbv2.k8s.aws/cluster"
DESCRIBE_TAGS_BATCH = 20  # DescribeTags takes at most 20 ARNs
# kind -> (describe operation, list key, ARN key, name key) of the ELBv2 API
ELBV2_LISTINGS = {
    "load-balancer": ("describe_load_balancers", "LoadBalancers", "LoadBalancerArn", "LoadBalancerName"),
    "target-group": ("describe_target_groups", "TargetGroups", "TargetGroupArn", "TargetGroupName"),
}


def existing_clusters(eks: Any) -> set[str]:
    """The names of the EKS clusters of `eks`'s region (ListClusters, every page)."""
    names: set[str] = set()
    for page in eks.get_paginator("list_clusters").paginate():
        names.update(page["clusters"])
    return names


@dataclass(frozen=True)
class ControllerResource:
    """One resource the controller created: kind (load-balancer, target-group,
    security-group), its ARN or id, its name and the cluster it was created for."""

    kind: str
    identifier: str
    name: str
    cluster: str


class ControllerInventory:
    """Lists and deletes the controller's resources through boto3 clients of one region."""

    def __init__(self, *, elbv2: Any, ec2: Any, eks: Any):
        self.elbv2, self.ec2, self.eks = elbv2, ec2, eks

    @classmethod
    def for_region(cls, region: str | None = None) -> ControllerInventory:
        import boto3  # only the tools need it, not the program or `make preview`

        session = boto3.session.Session(region_name=region)
        return cls(elbv2=session.client("elbv2"), ec2=session.client("ec2"), eks=session.client("eks"))

    # ---- listing
    def existing_clusters(self) -> set[str]:
        return existing_clusters(self.eks)

    def resources(self, cluster: str | None = None) -> list[ControllerResource]:
        """Every load balancer, target group and security group carrying the cluster tag
        (of `cluster`, or of any cluster)."""
        found = [*(r for kind in ELBV2_LISTINGS for r in self._elbv2(kind)), *self._security_groups()]
        return [r for r in found if cluster is None or r.cluster == cluster]

    def _elbv2(self, kind: str) -> Iterator[ControllerResource]:
        operation, list_key, arn_key, name_key = ELBV2_LISTINGS[kind]
        names = {item[arn_key]: item[name_key]
                 for page in self.elbv2.get_paginator(operation).paginate() for item in page[list_key]}
        arns = list(names)
        for start in range(0, len(arns), DESCRIBE_TAGS_BATCH):
            response = self.elbv2.describe_tags(ResourceArns=arns[start:start + DESCRIBE_TAGS_BATCH])
            for description in response["TagDescriptions"]:
                tags = {tag["Key"]: tag["Value"] for tag in description.get("Tags", [])}
                if CLUSTER_TAG in tags:
                    arn = description["ResourceArn"]
                    yield ControllerResource(kind, arn, names[arn], tags[CLUSTER_TAG])

    def _security_groups(self) -> Iterator[ControllerResource]:
        pages = self.ec2.get_paginator("describe_security_groups").paginate(
            Filters=[{"Name": "tag-key", "Values": [CLUSTER_TAG]}])
        for page in pages:
            for group in page["SecurityGroups"]:
                tags = {tag["Key"]: tag["Value"] for tag in group.get("Tags", [])}
                yield ControllerResource("security-group", group["GroupId"], group["GroupName"],
                                         tags[CLUSTER_TAG])

    # ---- waiting and deleting
    def wait_until_gone(self, cluster: str, *, timeout_seconds: float = 900, poll_seconds: float = 15,
                        sleep: Callable[[float], None] = time.sleep,
                        clock: Callable[[], float] = time.monotonic) -> None:
        """Block until no load balancer of `cluster` is left (the controller deletes the ALB
        when its Ingress goes); raise TimeoutError naming what is left."""
        deadline = clock() + timeout_seconds
        while True:
            left = [r for r in self.resources(cluster) if r.kind == "load-balancer"]
            if not left:
                return
            if clock() >= deadline:
                raise TimeoutError(
                    f"after {timeout_seconds:.0f}s the load balancers of {cluster} still exist: "
                    f"{', '.join(r.name for r in left)}; check the controller's logs "
                    "(kubectl -n kube-system logs deploy/aws-load-balancer-controller)")
            sleep(poll_seconds)

    def delete(self, resource: ControllerResource) -> None:
        if resource.kind == "load-balancer":
            self.elbv2.delete_load_balancer(LoadBalancerArn=resource.identifier)
        elif resource.kind == "target-group":
            self.elbv2.delete_target_group(TargetGroupArn=resource.identifier)
        elif resource.kind == "security-group":
            self.ec2.delete_security_group(GroupId=resource.identifier)
        else:
            raise ValueError(f"unknown kind {resource.kind!r}")

    def deletion_protected(self, resource: ControllerResource) -> bool:
        if resource.kind != "load-balancer":
            return False
        attributes = self.elbv2.describe_load_balancer_attributes(LoadBalancerArn=resource.identifier)
        return any(a["Key"] == "deletion_protection.enabled" and a["Value"] == "true"
                   for a in attributes["Attributes"])
