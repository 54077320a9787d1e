"""What this project's stacks left in an account after they were destroyed: every resource the
project's tags or its names find whose stack's cluster no longer exists.

- **Tags.** Every AWS resource the program creates carries `anythingllm:project` and
  `anythingllm:stack` (components/naming.common_tags), and so do what AWS and the controllers
  create for it: node instances and volumes (launch templates, Karpenter's EC2NodeClass tags),
  RDS snapshots (copyTagsToSnapshot), AWS Backup recovery points (the plan's recovery point
  tags). The Resource Groups Tagging API lists them in one call per page. It also returns
  resources that were tagged and are gone or going, so each instance and key is checked: a
  terminated instance is dropped, a key pending deletion is reported as such.
- **IAM**, which the tagging API never returns: roles tagged with the project (ListRoles, then
  their tags), and the instance profiles Karpenter names `<cluster>_<hash>`.
- **Names**, for what AWS or a controller creates untagged: log groups under the cluster's name
  (EKS re-creates `/aws/eks/<cluster>/cluster` by itself after a destroy, untagged), manual
  snapshots of the stack's database, the dashboard named after the cluster, and the network
  interfaces the VPC CNI tags with the cluster's name.

A stack is gone when no cluster of its name is in ListClusters of `clusters_region` (the stack's
home region; a copy region's vault belongs to a stack whose cluster lives elsewhere). A stack
that is only being created or destroyed has no cluster either, so what carries an expiry still to
come (`anythingllm:expires-at`, every throwaway stack) and what names find that is younger than
`MIN_AGE` is not reported yet. What the load
balancer controller left (ELBv2 resources and security groups with its cluster tag) is left to
tools/aws_inventory.py, which can delete it. What prod keeps on purpose when it is destroyed (its
final snapshots, retained log groups, keys, recovery points) is marked as kept.

Used by `python -m tools.sweep`. boto3 clients are passed in; tests pass moto's.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from components.naming import cluster_name, db_instance_identifier

from .aws_inventory import CLUSTER_TAG, existing_clusters

PROJECT_TAG, STACK_TAG = "anythingllm:project", "anythingllm:stack"
EXPIRES_TAG = "anythingllm:expires-at"
# A stack's log group exists some minutes before its cluster (and a destroy deletes the cluster
# first): what names find is reported once it is older than the longest create or destroy.
MIN_AGE = dt.timedelta(hours=2)
ENVIRONMENT_TAG = "anythingllm:environment"
# Log groups the stack's services write, by cluster or database name (LogEncryption's prefixes).
LOG_GROUP_PATTERN = re.compile(r"^/aws/(eks|containerinsights|vpc)/(?P<cluster>[^/]+)/"
                               r"|^/aws/rds/instance/(?P<database>[^/]+)/")
# The VPC CNI tags the network interfaces it creates with the cluster's name.
CNI_CLUSTER_TAG = "cluster.k8s.amazonaws.com/name"
# Services whose ARNs name the resource with no type before it.
UNTYPED_ARNS = {"sns": "topic", "sqs": "queue", "s3": "bucket"}
# What prod keeps when it is destroyed (retainOnDelete, final snapshots, protected keys).
PROD_KEEPS = {"logs:log-group", "rds:snapshot", "elasticache:snapshot", "kms:key",
              "backup:recovery-point", "rds:db"}
# Tagging records that are no resource to delete.
NOT_RESOURCES = {"ec2:fleet"}


@dataclass(frozen=True)
class Leftover:
    """A resource of a destroyed stack: its stack (or, found by name, its cluster), its kind
    (`service:type`), its ARN, and why it stays on purpose, if it does (`kept`)."""

    stack: str
    kind: str
    arn: str
    kept: str = ""


def kind_of(arn: str) -> str:
    """`rds:snapshot`, `ec2:instance`, `logs:log-group`, `sns:topic`... from an ARN."""
    service, resource = arn.split(":", 5)[2], arn.split(":", 5)[5]
    if service in UNTYPED_ARNS:
        return f"{service}:{UNTYPED_ARNS[service]}"
    cut = min((i for i in (resource.find("/"), resource.find(":")) if i >= 0), default=len(resource))
    return f"{service}:{resource[:cut]}"


class TagInventory:
    """Finds leftovers in one region (the clients') for clusters of `eks`'s region."""

    def __init__(self, *, tagging: Any, eks: Any, logs: Any, rds: Any, ec2: Any, kms: Any,
                 iam: Any, cloudwatch: Any,
                 now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)):
        self.tagging, self.eks, self.logs, self.rds = tagging, eks, logs, rds
        self.ec2, self.kms, self.iam, self.cloudwatch = ec2, kms, iam, cloudwatch
        self.now = now

    @classmethod
    def for_region(cls, region: str | None = None, clusters_region: str | None = None) -> TagInventory:
        import boto3  # only the tools need it

        session = boto3.session.Session(region_name=region)
        clusters = boto3.session.Session(region_name=clusters_region or region)
        return cls(tagging=session.client("resourcegroupstaggingapi"), eks=clusters.client("eks"),
                   logs=session.client("logs"), rds=session.client("rds"), ec2=session.client("ec2"),
                   kms=session.client("kms"), iam=session.client("iam"),
                   cloudwatch=session.client("cloudwatch"))

    def leftovers(self, project: str) -> list[Leftover]:
        """Every resource of the project's stacks whose cluster is gone, by stack and ARN."""
        existing = existing_clusters(self.eks)
        prefix = f"{project}-"
        found: dict[str, Leftover] = {}
        for arn, tags in self._tagged(project):
            stack = tags.get(STACK_TAG)
            kind = kind_of(arn)
            if (stack is None or cluster_name(project, stack) in existing or CLUSTER_TAG in tags
                    or kind in NOT_RESOURCES or self._not_expired(tags)):
                continue  # a live stack's, the controller's, no resource, or a stack not done yet
            kept = self._kept(kind, arn, tags)
            if kept is not None:
                found[arn] = Leftover(stack, kind, arn, kept)
        for cluster, arn in self._named(prefix, existing):
            found.setdefault(arn, Leftover(cluster, kind_of(arn), arn))
        return sorted(found.values(), key=lambda r: (r.stack, r.kind, r.arn))

    # ---- tags
    def _tagged(self, project: str) -> Iterator[tuple[str, dict[str, str]]]:
        paginator = self.tagging.get_paginator("get_resources")
        for page in paginator.paginate(TagFilters=[{"Key": PROJECT_TAG, "Values": [project]}]):
            for mapping in page["ResourceTagMappingList"]:
                yield mapping["ResourceARN"], {t["Key"]: t["Value"] for t in mapping.get("Tags", [])}
        for page in self.iam.get_paginator("list_roles").paginate():
            for role in page["Roles"]:
                tags = {t["Key"]: t["Value"]
                        for t in self.iam.list_role_tags(RoleName=role["RoleName"])["Tags"]}
                if tags.get(PROJECT_TAG) == project:
                    yield role["Arn"], tags

    def _not_expired(self, tags: dict[str, str]) -> bool:
        expires = tags.get(EXPIRES_TAG)
        if not expires:
            return False
        try:
            return dt.datetime.fromisoformat(expires.replace("Z", "+00:00")) > self.now()
        except ValueError:
            return False

    def _kept(self, kind: str, arn: str, tags: dict[str, str]) -> str | None:
        """Why the resource stays on purpose ("" if it should not), or None when it is gone (the
        tagging API still lists resources for a while after they were deleted: boto/boto3#3341)."""
        try:
            if kind == "ec2:instance":
                reservations = self.ec2.describe_instances(
                    InstanceIds=[arn.rsplit("/", 1)[1]])["Reservations"]
                states = [i["State"]["Name"] for r in reservations for i in r["Instances"]]
                if not states or all(state in ("terminated", "shutting-down") for state in states):
                    return None
            elif kind == "ec2:volume":
                self.ec2.describe_volumes(VolumeIds=[arn.rsplit("/", 1)[1]])
            elif kind == "rds:snapshot":
                self.rds.describe_db_snapshots(DBSnapshotIdentifier=arn.rsplit(":snapshot:", 1)[1])
            elif kind == "kms:key":
                metadata = self.kms.describe_key(KeyId=arn)["KeyMetadata"]
                if metadata["KeyState"] == "PendingDeletion":
                    return f"pending deletion since the destroy, gone on {metadata.get('DeletionDate')}"
        except Exception as error:  # botocore's ClientError: a NotFound code means it is gone
            code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
            if "NotFound" in code or code in ("DBSnapshotNotFound", "InvalidInstanceID.Malformed"):
                return None
            raise
        if tags.get(ENVIRONMENT_TAG) == "prod" and kind in PROD_KEEPS:
            return "prod keeps it when it is destroyed"
        return ""

    # ---- names
    def _named(self, prefix: str, existing: set[str]) -> Iterator[tuple[str, str]]:
        """(cluster, ARN) of what only a name of a gone cluster finds."""
        databases = {db_instance_identifier(cluster): cluster for cluster in existing}
        for page in self.logs.get_paginator("describe_log_groups").paginate():
            for group in page["logGroups"]:
                match = LOG_GROUP_PATTERN.match(group["logGroupName"])
                if match is None:
                    continue
                owner = match["cluster"] or match["database"]
                created = dt.datetime.fromtimestamp(group.get("creationTime", 0) / 1000, dt.UTC)
                if (owner.startswith(prefix) and owner not in existing and owner not in databases
                        and self.now() - created >= MIN_AGE):
                    yield owner, group["arn"].removesuffix(":*")
        # Manual snapshots: final snapshots and snapshots taken by hand (automated ones go with
        # the instance; AWS Backup's are recovery points, tagged).
        for page in self.rds.get_paginator("describe_db_snapshots").paginate(SnapshotType="manual"):
            for snapshot in page["DBSnapshots"]:
                database = snapshot["DBInstanceIdentifier"]
                created = snapshot.get("SnapshotCreateTime") or self.now()
                if (database.startswith(prefix) and database not in databases
                        and self.now() - created >= MIN_AGE):
                    yield database, snapshot["DBSnapshotArn"]
        for page in self.cloudwatch.get_paginator("list_dashboards").paginate(DashboardNamePrefix=prefix):
            for dashboard in page["DashboardEntries"]:
                if dashboard["DashboardName"] not in existing:
                    yield dashboard["DashboardName"], dashboard["DashboardArn"]
        for page in self.iam.get_paginator("list_instance_profiles").paginate():
            for profile in page["InstanceProfiles"]:
                cluster = profile["InstanceProfileName"].rsplit("_", 1)[0]
                if "_" in profile["InstanceProfileName"] and cluster.startswith(prefix) \
                        and cluster not in existing:
                    yield cluster, profile["Arn"]
        paginator = self.ec2.get_paginator("describe_network_interfaces")
        for page in paginator.paginate(Filters=[{"Name": "tag-key", "Values": [CNI_CLUSTER_TAG]}]):
            for interface in page["NetworkInterfaces"]:
                tags = {t["Key"]: t["Value"] for t in interface.get("TagSet", [])}
                cluster = tags.get(CNI_CLUSTER_TAG, "")
                if cluster.startswith(prefix) and cluster not in existing:
                    region = self.ec2.meta.region_name
                    owner = interface.get("OwnerId", "")
                    yield cluster, (f"arn:aws:ec2:{region}:{owner}:network-interface/"
                                    f"{interface['NetworkInterfaceId']}")
