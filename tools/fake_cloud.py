"""Deterministic stand-ins for what AWS would return, for the offline engine.

The engine records inputs; these fake outputs only exist so that programs which read
outputs (ids, ARNs, endpoints) can run to the end. Values are derived from the resource's
URN, so every run of the same program yields the same plan. An invoke this module does not
know fails loudly rather than returning something empty.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs, Mocks

ACCOUNT_ID = "123456789012"
PARTITION = "aws"

# Resource-type token -> prefix of the physical id AWS would assign.
_ID_PREFIXES = {
    "aws:ec2/vpc:Vpc": "vpc",
    "aws:ec2/subnet:Subnet": "subnet",
    "aws:ec2/internetGateway:InternetGateway": "igw",
    "aws:ec2/natGateway:NatGateway": "nat",
    "aws:ec2/eip:Eip": "eipalloc",
    "aws:ec2/routeTable:RouteTable": "rtb",
    "aws:ec2/securityGroup:SecurityGroup": "sg",
    "aws:ec2/launchTemplate:LaunchTemplate": "lt",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce",
    "aws:efs/fileSystem:FileSystem": "fs",
    "aws:efs/mountTarget:MountTarget": "fsmt",
    "aws:efs/accessPoint:AccessPoint": "fsap",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "sgr",
}
# Pulumi dynamic resources (a provider written in the program) register under this type.
DYNAMIC_RESOURCE = "pulumi-python:dynamic:Resource"
# Services whose ARNs have no region (IAM) or a different resource path.
_GLOBAL_SERVICES = {"iam"}


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


class FakeCloud(Mocks):
    """`pulumi.runtime.mocks.Mocks` that answers like a small, predictable AWS account."""

    def __init__(self, region: str = "us-east-1",
                 clusters: dict[str, str | tuple[str, dict[str, str]]] | None = None,
                 databases: dict[str, str | tuple[str, dict[str, str]]] | None = None,
                 snapshots: dict[str, str | tuple[str, int]] | None = None):
        """What the account already has (a stack at its last `up`); nothing by default, as for a
        first deploy. `clusters`: EKS cluster name -> Kubernetes version, or (version, add-on
        name -> installed version; unnamed add-ons run EKS's default of that version); `databases`: RDS
        identifier -> engine version, or (engine version, tags); `snapshots`: RDS snapshot
        identifier or ARN -> PostgreSQL version, or (version, allocated GiB)."""
        self.region = region
        self.clusters = {key: value if isinstance(value, tuple) else (value, {})
                         for key, value in (clusters or {}).items()}
        self.databases = {key: value if isinstance(value, tuple) else (value, {})
                          for key, value in (databases or {}).items()}
        self.snapshots = dict(snapshots or {})

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        key = f"{args.typ}::{args.name}"
        inputs = dict(args.inputs)
        prefix = _ID_PREFIXES.get(args.typ)
        physical = (inputs.get("name") or inputs.get("identifier") or inputs.get("bucket")
                    or f"{args.name}-{_digest(key, 7)}")
        resource_id = f"{prefix}-{_digest(key, 17)}" if prefix else str(physical)
        if args.typ == "aws:cognito/userPool:UserPool":  # <region>_<9 characters>
            resource_id = f"{self.region}_{_digest(key, 9)}"
        elif args.typ == "aws:amp/workspace:Workspace":  # ws-<uuid>, named by its alias
            digest = _digest(key, 32)
            resource_id = physical = (f"ws-{digest[:8]}-{digest[8:12]}-{digest[12:16]}-"
                                      f"{digest[16:20]}-{digest[20:]}")
        elif args.typ == "aws:cognito/userPoolClient:UserPoolClient":  # 26 lowercase alphanumerics
            resource_id = _digest(key, 26)
        state: dict[str, Any] = {**inputs, **self._outputs(args.typ, args.name, inputs, physical)}
        if args.typ.startswith("aws:"):
            state.setdefault("arn", self._arn(args.typ, resource_id if "cognito" in args.typ else physical))
            state.setdefault("name", physical)
        if args.typ.startswith("kubernetes:") and isinstance(state.get("metadata"), dict):
            # The API server's UID of the object (a UUID; deterministic here).
            digest = _digest(key + "/uid", 32)
            state["metadata"] = {**state["metadata"], "uid": "-".join(
                (digest[:8], digest[8:12], digest[12:16], digest[16:20], digest[20:]))}
        return resource_id, state

    def call(self, args: MockCallArgs) -> dict[str, Any]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:{PARTITION}:iam::{ACCOUNT_ID}:role/offline",
                "userId": "AROAOFFLINE", "id": ACCOUNT_ID,
            }
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": PARTITION, "dnsSuffix": "amazonaws.com", "id": PARTITION}
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region}
        if args.token == "aws:lb/getHostedZoneId:getHostedZoneId":
            # The canonical hosted zone of ALBs in the region (us-east-1's real one).
            zone = "Z35SXDOTRQ7X7K" if self.region == "us-east-1" else f"Z{_digest(self.region, 12).upper()}"
            return {"id": zone, "loadBalancerType": args.args.get("loadBalancerType", "application")}
        if args.token == "aws:lb/getLoadBalancer:getLoadBalancer":
            # What the AWS Load Balancer Controller created for the Ingress.
            name = args.args["name"]
            suffix = f"app/{name}/{_digest(name, 16)}"
            arn = self._elb_arn(f"loadbalancer/{suffix}")
            return {"name": name, "arnSuffix": suffix, "id": arn, "arn": arn}
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            # Every zone the region has (settings/zones.py), with zone IDs of this fake account.
            from components.settings.zones import REGION_ZONES

            letters = REGION_ZONES.get(self.region, "abc")
            return {"names": [f"{self.region}{letter}" for letter in letters],
                    "zoneIds": [f"offline{index + 1}-az{index + 1}" for index in range(len(letters))],
                    "groupNames": [self.region] * len(letters), "id": self.region,
                    "state": args.args.get("state")}
        if args.token == "aws:ec2/getSubnet:getSubnet":
            # An existing network's subnet: a /20 of 10.250.0.0/16 picked by its id.
            third = int(_digest(args.args["id"], 4), 16) % 16 * 16
            return {"id": args.args["id"], "cidrBlock": f"10.250.{third}.0/20",
                    "vpcId": "vpc-offline", "availabilityZone": f"{self.region}a"}
        if args.token == "aws:iam/getRoles:getRoles":
            # A fresh account: no role under the path asked for (e.g. no service-linked role yet).
            return {"arns": [], "names": [], "id": self.region,
                    "pathPrefix": args.args.get("pathPrefix"), "nameRegex": args.args.get("nameRegex")}
        if args.token == "aws:eks/getClusters:getClusters":
            return {"names": sorted(self.clusters), "id": self.region}
        if args.token == "aws:eks/getCluster:getCluster":
            name = args.args["name"]
            if name not in self.clusters:
                raise LookupError(f"ResourceNotFoundException: No cluster found for name: {name}.")
            return {"name": name, "version": self.clusters[name][0], "id": name, "status": "ACTIVE"}
        if args.token == "aws:eks/getAddon:getAddon":
            cluster, addon = args.args["clusterName"], args.args["addonName"]
            if cluster not in self.clusters:
                raise LookupError(f"ResourceNotFoundException: No cluster found for name: {cluster}.")
            version, addons = self.clusters[cluster]
            installed = addons.get(addon) or self._default_addon_version(addon, version)
            return {"addonName": addon, "clusterName": cluster, "addonVersion": installed,
                    "id": f"{cluster}:{addon}"}
        if args.token == "aws:rds/getInstances:getInstances":
            wanted = {value for f in args.args.get("filters") or [] if f["name"] == "db-instance-id"
                      for value in f["values"]}
            found = sorted(i for i in self.databases if not wanted or i in wanted)
            return {"instanceIdentifiers": found, "id": self.region,
                    "instanceArns": [f"arn:{PARTITION}:rds:{self.region}:{ACCOUNT_ID}:db:{i}"
                                     for i in found]}
        if args.token == "aws:rds/getInstance:getInstance":
            identifier = args.args["dbInstanceIdentifier"]
            if identifier not in self.databases:
                raise LookupError(f"DBInstanceNotFound: DBInstance {identifier} not found.")
            version, tags = self.databases[identifier]
            return {"dbInstanceIdentifier": identifier, "id": identifier,
                    "engine": "postgres", "engineVersion": version, "tags": tags}
        if args.token == "aws:rds/getSnapshots:getSnapshots":
            name = args.args.get("dbSnapshotIdentifier")
            # As DescribeDBSnapshots: AWS Backup's snapshots only when asked for by their type.
            backup = name is not None and name.rsplit(":snapshot:", 1)[-1].startswith("awsbackup:")
            found = ([name] if name in self.snapshots
                     and backup == (args.args.get("snapshotType") == "awsbackup") else [])
            return {"id": self.region, "snapshots": [self._snapshot(n) for n in found]}
        if args.token == "aws:eks/getAddonVersion:getAddonVersion":
            # A stand-in for EKS's default version of an add-on for a Kubernetes minor (what
            # DescribeAddonVersions marks `defaultVersion`): the offline engine cannot know the
            # real ones, only that they differ from minor to minor.
            addon, kubernetes = args.args["addonName"], args.args["kubernetesVersion"]
            return {"addonName": addon, "kubernetesVersion": kubernetes, "id": addon,
                    "mostRecent": args.args.get("mostRecent", False),
                    "version": self._default_addon_version(addon, kubernetes)}
        raise NotImplementedError(f"the offline engine has no answer for invoke {args.token!r}")

    @staticmethod
    def _default_addon_version(addon: str, kubernetes: str) -> str:
        """A stand-in for EKS's default version of an add-on for a Kubernetes minor: the offline
        engine cannot know the real ones, only that they differ from minor to minor."""
        build = int(_digest(f"{addon}/{kubernetes}", 2), 16) % 9 + 1
        return f"v1.{kubernetes.split('.')[1]}.0-eksbuild.{build}"

    def _snapshot(self, name: str) -> dict[str, Any]:
        """An RDS snapshot as DescribeDBSnapshots lists it (every field the SDK's type requires)."""
        identifier = name.rsplit(":snapshot:", 1)[-1]
        version, storage = (self.snapshots[name] if isinstance(self.snapshots[name], tuple)
                            else (self.snapshots[name], 20))
        return {"allocatedStorage": storage, "availabilityZone": f"{self.region}a",
                "dbInstanceIdentifier": "source", "dbSnapshotIdentifier": identifier,
                "dbSnapshotArn": f"arn:{PARTITION}:rds:{self.region}:{ACCOUNT_ID}:snapshot:{identifier}",
                "encrypted": True, "engine": "postgres", "engineVersion": version,
                "iops": 0, "kmsKeyId": f"arn:{PARTITION}:kms:{self.region}:{ACCOUNT_ID}:key/source",
                "licenseModel": "postgresql-license", "optionGroupName": "default:postgres",
                "originalSnapshotCreateTime": "", "port": 5432,
                "snapshotCreateTime": "2026-12-01T05:00:00Z", "snapshotType": "awsbackup",
                "sourceDbSnapshotIdentifier": "", "sourceRegion": "", "status": "available",
                "storageType": "gp3", "tagLists": [], "vpcId": "vpc-source"}

    def _elb_arn(self, resource: str) -> str:
        """`loadbalancer/app/<name>/<id>` or `targetgroup/<name>/<id>` as a full ELBv2 ARN."""
        return f"arn:{PARTITION}:elasticloadbalancing:{self.region}:{ACCOUNT_ID}:{resource}"

    def _arn(self, type_token: str, physical: str) -> str:
        module = type_token.split(":")[1].split("/")[0]
        kind = type_token.rsplit(":", 1)[1]
        resource = kind[0].lower() + kind[1:]
        region = "" if module in _GLOBAL_SERVICES else self.region
        if type_token == "aws:s3/bucket:Bucket":  # arn:aws:s3:::<bucket>
            return f"arn:{PARTITION}:s3:::{physical}"
        if type_token == "aws:cognito/userPool:UserPool":  # ...:userpool/<pool id>
            return f"arn:{PARTITION}:cognito-idp:{region}:{ACCOUNT_ID}:userpool/{physical}"
        if type_token == "aws:amp/workspace:Workspace":  # AMP's service prefix is `aps`
            return f"arn:{PARTITION}:aps:{region}:{ACCOUNT_ID}:workspace/{physical}"
        if type_token == "aws:sns/topic:Topic":  # arn:aws:sns:<region>:<account>:<name>
            return f"arn:{PARTITION}:sns:{region}:{ACCOUNT_ID}:{physical}"
        return f"arn:{PARTITION}:{module}:{region}:{ACCOUNT_ID}:{resource}/{physical}"

    def _outputs(self, typ: str, name: str, inputs: dict[str, Any], physical: str) -> dict[str, Any]:
        key = f"{typ}::{name}"
        if typ == "aws:eks/cluster:Cluster":
            return {
                "endpoint": f"https://{_digest(key, 32).upper()}.gr7.{self.region}.eks.amazonaws.com",
                "certificateAuthority": {
                    "data": base64.b64encode(b"-----BEGIN CERTIFICATE-----offline").decode(),
                },
                "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.{self.region}."
                                                    f"amazonaws.com/id/{_digest(key, 32)}"}]}],
                "vpcConfig": {**inputs.get("vpcConfig", {}),
                              "clusterSecurityGroupId": f"sg-{_digest(key + 'csg', 17)}"},
                "status": "ACTIVE",
            }
        if typ == "aws:eks/nodeGroup:NodeGroup":
            return {"resources": [{"autoscalingGroups": [
                {"name": f"eks-{physical}-{_digest(key, 8)}"}]}], "status": "ACTIVE"}
        if typ == "aws:amp/workspace:Workspace":
            # As AMP returns it: with a trailing slash.
            return {"prometheusEndpoint": f"https://aps-workspaces.{self.region}.amazonaws.com/"
                                          f"workspaces/{physical}/"}
        if typ == "aws:kms/key:Key":
            return {"keyId": _digest(key, 32)}
        if typ == "aws:ec2/launchTemplate:LaunchTemplate":
            return {"latestVersion": 1, "defaultVersion": 1}
        if typ == "aws:rds/instance:Instance":
            host = f"{physical}.c{_digest(key, 12)}.{self.region}.rds.amazonaws.com"
            return {"address": host, "endpoint": f"{host}:{int(inputs.get('port', 5432))}"}
        if typ == "aws:elasticache/replicationGroup:ReplicationGroup":
            group = inputs.get("replicationGroupId", physical)
            suffix = f"{_digest(key, 6)}.cache.amazonaws.com"
            return {"primaryEndpointAddress": f"master.{group}.{suffix}",
                    "readerEndpointAddress": f"replica.{group}.{suffix}",
                    "configurationEndpointAddress": f"clustercfg.{group}.{suffix}"}
        if typ == "kubernetes:networking.k8s.io/v1:Ingress":
            # What the AWS Load Balancer Controller writes once the ALB exists.
            annotations = (inputs.get("metadata") or {}).get("annotations") or {}
            lb_name = annotations.get("alb.ingress.kubernetes.io/load-balancer-name", physical)
            scheme = annotations.get("alb.ingress.kubernetes.io/scheme", "internal")
            prefix = "internal-" if scheme == "internal" else ""
            host = f"{prefix}{lb_name}-{int(_digest(key, 8), 16) % 10**10}.{self.region}.elb.amazonaws.com"
            return {"status": {"loadBalancer": {"ingress": [{"hostname": host}]}}}
        if typ == DYNAMIC_RESOURCE and inputs.get("kind") == "elbv2-target-group-by-tags":
            # The target group the load balancer controller created for an Ingress backend.
            resource = inputs["tags"]["ingress.k8s.aws/resource"]
            suffix = f"targetgroup/k8s-{_digest(resource, 18)}/{_digest(resource + '/id', 16)}"
            return {"arn": self._elb_arn(suffix), "arn_suffix": suffix}
        if typ == DYNAMIC_RESOURCE and inputs.get("kind") == "efs-restore-job":
            # An AWS Backup restore job that completed.
            return {"restore_job_id": _digest(key, 8).upper() + "-RESTORE", "status": "COMPLETED"}
        if typ == "random:index/randomPassword:RandomPassword":
            # Deterministic, never a real secret: enough characters of the requested length.
            length = int(inputs.get("length", 16))
            return {"result": (_digest(key, 64) * 4)[:length]}
        if typ == "random:index/randomId:RandomId":
            return {"hex": _digest(key, 2 * int(inputs.get("byteLength", 4)))}
        if typ == "aws:iam/role:Role":
            return {"arn": f"arn:{PARTITION}:iam::{ACCOUNT_ID}:role/{physical}",
                    "uniqueId": f"AROA{_digest(key, 16).upper()}"}
        return {}
