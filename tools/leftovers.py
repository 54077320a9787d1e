"""What this project's stacks left in an account after they were destroyed: every resource the
project's tags or its names find whose stack has no EKS cluster any more.

Every AWS resource the program creates carries `anythingllm:project` and `anythingllm:stack`
(components/naming.common_tags), and so do what AWS and the controllers create for it: the EC2
instances and volumes of nodes (launch templates, Karpenter's EC2NodeClass tags), the load
balancers of the AWS Load Balancer Controller (its --default-tags), RDS snapshots
(copyTagsToSnapshot), AWS Backup recovery points (the plan's recovery point tags). The Resource
Groups Tagging API lists them all in one call per page, whatever the service. Names find what a
tag cannot: log groups under the stack's cluster name that AWS created itself, and RDS snapshots
of the stack's instance. A stack is gone when its cluster (components/naming.cluster_name) is
not in ListClusters; what prod keeps on purpose when it is destroyed (its final snapshots, its
audit logs, its keys) is listed as kept, not as a leftover.

Used by `python -m tools.sweep`, which deletes only what the load balancer controller left (the
rest is listed with the command that deletes it: README, "Nothing left behind"). boto3 clients
are passed in; tests pass moto's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from components.naming import cluster_name, db_instance_identifier

PROJECT_TAG, STACK_TAG = "anythingllm:project", "anythingllm:stack"
ENVIRONMENT_TAG = "anythingllm:environment"
# Log groups the stack's services write, by the cluster's name (LogEncryption's prefixes).
LOG_GROUP_PREFIXES = ("/aws/eks/{cluster}/", "/aws/rds/instance/{database}/",
                      "/aws/containerinsights/{cluster}/", "/aws/vpc/{cluster}/")


@dataclass(frozen=True)
class Leftover:
    """A resource of a destroyed stack: its ARN, its kind (`service:type`), the stack, and why it
    is still there on purpose, if it is (`kept`)."""

    stack: str
    kind: str
    arn: str
    kept: str = ""


# Services whose ARNs name the resource with no type before it.
UNTYPED_ARNS = {"sns": "topic", "sqs": "queue"}


def kind_of(arn: str) -> str:
    """`rds:snapshot`, `ec2:instance`, `logs:log-group`, `sns:topic`... from an ARN."""
    service, resource = arn.split(":", 5)[2], arn.split(":", 5)[5]
    if service in UNTYPED_ARNS:
        return f"{service}:{UNTYPED_ARNS[service]}"
    cut = min((i for i in (resource.find("/"), resource.find(":")) if i >= 0), default=len(resource))
    return f"{service}:{resource[:cut]}"


class TagInventory:
    """Finds leftovers through the tagging API, CloudWatch Logs and RDS of one region."""

    def __init__(self, *, tagging: Any, eks: Any, logs: Any, rds: Any):
        self.tagging, self.eks, self.logs, self.rds = tagging, eks, logs, rds

    @classmethod
    def for_region(cls, region: str | None = None) -> TagInventory:
        import boto3  # only the tools need it

        session = boto3.session.Session(region_name=region)
        return cls(tagging=session.client("resourcegroupstaggingapi"), eks=session.client("eks"),
                   logs=session.client("logs"), rds=session.client("rds"))

    def existing_clusters(self) -> set[str]:
        names: set[str] = set()
        for page in self.eks.get_paginator("list_clusters").paginate():
            names.update(page["clusters"])
        return names

    def tagged(self, project: str) -> Iterator[tuple[str, dict[str, str]]]:
        """(ARN, tags) of every resource tagged with the project."""
        paginator = self.tagging.get_paginator("get_resources")
        for page in paginator.paginate(TagFilters=[{"Key": PROJECT_TAG, "Values": [project]}]):
            for mapping in page["ResourceTagMappingList"]:
                yield mapping["ResourceARN"], {t["Key"]: t["Value"] for t in mapping.get("Tags", [])}

    def leftovers(self, project: str) -> list[Leftover]:
        """Every resource of the project's stacks whose cluster is gone, by stack and ARN."""
        existing = self.existing_clusters()
        found: dict[str, Leftover] = {}
        stacks: set[str] = set()
        for arn, tags in self.tagged(project):
            stack = tags.get(STACK_TAG)
            if stack is None or cluster_name(project, stack) in existing:
                continue
            stacks.add(stack)
            kept = ("prod keeps it when it is destroyed" if tags.get(ENVIRONMENT_TAG) == "prod"
                    else "")
            found[arn] = Leftover(stack, kind_of(arn), arn, kept)
        for stack in sorted(stacks):
            for arn in self._named(project, stack):
                found.setdefault(arn, Leftover(stack, kind_of(arn), arn))
        return sorted(found.values(), key=lambda r: (r.stack, r.kind, r.arn))

    def _named(self, project: str, stack: str) -> Iterator[str]:
        """What a tag may miss: log groups and RDS snapshots named after the stack."""
        cluster = cluster_name(project, stack)
        database = db_instance_identifier(cluster)
        for prefix in LOG_GROUP_PREFIXES:
            name = prefix.format(cluster=cluster, database=database)
            for page in self.logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name):
                for group in page["logGroups"]:
                    yield group["arn"].removesuffix(":*")
        # Manual ones: final snapshots and snapshots taken by hand (automated ones go with the
        # instance; AWS Backup's are recovery points, tagged).
        for page in self.rds.get_paginator("describe_db_snapshots").paginate(
                DBInstanceIdentifier=database, SnapshotType="manual"):
            for snapshot in page["DBSnapshots"]:
                yield snapshot["DBSnapshotArn"]
