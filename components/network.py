"""Network: the VPC the cluster and the data services live in."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from . import iam
from .options import named
from .settings import NetworkSettings

ELB_ROLE_TAG = "kubernetes.io/role/elb"
INTERNAL_ELB_ROLE_TAG = "kubernetes.io/role/internal-elb"


def cluster_tag(cluster_name: str) -> str:
    return f"kubernetes.io/cluster/{cluster_name}"


def subnet_tags(*, public: bool, cluster_name: str, ownership: str) -> dict[str, str]:
    """Tags the AWS Load Balancer Controller uses to discover subnets for ALBs.

    Public subnets host internet-facing load balancers, private ones internal load
    balancers; the cluster tag scopes discovery to this cluster (`owned` for subnets this
    stack created, `shared` for an existing VPC's).
    """
    role = ELB_ROLE_TAG if public else INTERNAL_ELB_ROLE_TAG
    return {role: "1", cluster_tag(cluster_name): ownership}


class Network(pulumi.ComponentResource):
    """A VPC over 2-3 AZs with public and private subnets, or an existing VPC's subnets.

    New VPC (`settings.existing` unset) creates: the VPC (DNS support and hostnames on),
    an internet gateway, per AZ a public subnet (ELB role tag) and a private subnet
    (internal-ELB role tag), both tagged for the cluster; NAT gateways with Elastic IPs, one
    per AZ (`natGateways: perAz`) or one in the first AZ (`single`); a public route table
    and one private route table per AZ; and a gateway VPC endpoint for S3 so image layers
    and model downloads from S3 skip the NAT gateways; the default security group emptied of
    its allow-all rules; VPC flow logs (all traffic) into a log group encrypted with the logs
    key, through a delivery role only VPC Flow Logs of this account may assume.

    Existing VPC: creates only `aws.ec2.Tag` resources that add the ELB role and cluster
    (`shared`) tags to the given subnets.

    Args:
        name: logical name prefix.
        settings: the stack's `network` settings.
        cluster_name: the EKS cluster name used in the `kubernetes.io/cluster/<name>` tags.
        region: AWS region (for the S3 endpoint's service name).
        tags: common tags for every resource.
        logs_key_arn: the KMS key of the flow-log group (LogEncryption).

    Attributes:
        vpc_id, private_subnet_ids, public_subnet_ids: Outputs the cluster and data services
        take. Node groups and data services use only the private subnets.
        private_subnet_cidrs: their CIDR blocks (NetworkPolicies that admit the managed
            Prometheus scraper's interfaces there).
        zone_count: the number of private subnets (one per AZ), a plain int.
    """

    def __init__(
        self,
        name: str,
        settings: NetworkSettings,
        *,
        cluster_name: str,
        region: str,
        tags: dict[str, str],
        logs_key_arn: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("anythingllm:network:Network", name, None, opts)
        self._logs_key_arn = logs_key_arn
        self._name = name
        self._tags = tags
        # Known before deployment, so consumers can create one resource per private subnet.
        self.zone_count = settings.zone_count
        child = pulumi.ResourceOptions(parent=self)
        if settings.existing is not None:
            self._tag_existing(settings, cluster_name, child)
        else:
            self._create_vpc(settings, cluster_name, region, child)
        self.register_outputs({
            "vpc_id": self.vpc_id,
            "private_subnet_ids": self.private_subnet_ids,
            "public_subnet_ids": self.public_subnet_ids,
        })

    def _tag_existing(self, settings: NetworkSettings, cluster_name: str,
                      child: pulumi.ResourceOptions) -> None:
        existing = settings.existing
        assert existing is not None
        for public, subnet_ids in ((False, existing.private_subnet_ids),
                                   (True, existing.public_subnet_ids)):
            tags = subnet_tags(public=public, cluster_name=cluster_name, ownership="shared")
            for subnet_id in subnet_ids:
                for key, value in tags.items():
                    aws.ec2.Tag(
                        f"{self._name}-{subnet_id}-{key.rsplit('/', 1)[-1]}",
                        resource_id=subnet_id, key=key, value=value, opts=child,
                    )
        self.vpc_id = pulumi.Output.from_input(existing.vpc_id)
        self.private_subnet_ids = pulumi.Output.from_input(list(existing.private_subnet_ids))
        self.public_subnet_ids = pulumi.Output.from_input(list(existing.public_subnet_ids))
        self.private_subnet_cidrs = pulumi.Output.all(*[
            aws.ec2.get_subnet_output(id=subnet_id).cidr_block
            for subnet_id in existing.private_subnet_ids])

    def _create_vpc(self, settings: NetworkSettings, cluster_name: str, region: str,
                    child: pulumi.ResourceOptions) -> None:
        name = self._name
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=settings.vpc_cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,  # required for EKS private endpoint resolution
            tags={**self._tags, "Name": f"{cluster_name}-vpc"},
            opts=child,
        )
        vpc_child = pulumi.ResourceOptions(parent=vpc)
        gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags={**self._tags, "Name": f"{cluster_name}-igw"},
            opts=vpc_child,
        )
        public_routes = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": gateway.id}],
            tags={**self._tags, "Name": f"{cluster_name}-public"},
            opts=vpc_child,
        )

        public_subnets, private_subnets, nat_gateways = [], [], []
        zones = settings.availability_zones
        for index, (zone, public_cidr, private_cidr) in enumerate(
            zip(zones, settings.public_cidrs, settings.private_cidrs, strict=True)
        ):
            public_subnet = self._subnet("public", zone, public_cidr, vpc, cluster_name, vpc_child)
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{zone}", subnet_id=public_subnet.id,
                route_table_id=public_routes.id, opts=pulumi.ResourceOptions(parent=public_subnet),
            )
            public_subnets.append(public_subnet)

            if settings.nat_gateways == "perAz" or index == 0:
                eip = aws.ec2.Eip(
                    f"{name}-nat-{zone}", domain="vpc",
                    tags={**self._tags, "Name": f"{cluster_name}-nat-{zone}"},
                    opts=pulumi.ResourceOptions(parent=public_subnet),
                )
                nat_gateways.append(aws.ec2.NatGateway(
                    f"{name}-nat-{zone}",
                    allocation_id=eip.id,
                    subnet_id=public_subnet.id,
                    tags={**self._tags, "Name": f"{cluster_name}-nat-{zone}"},
                    opts=pulumi.ResourceOptions(parent=public_subnet, depends_on=[gateway]),
                ))

            private_subnet = self._subnet("private", zone, private_cidr, vpc, cluster_name,
                                          vpc_child)
            nat = nat_gateways[index] if settings.nat_gateways == "perAz" else nat_gateways[0]
            private_routes = aws.ec2.RouteTable(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}],
                tags={**self._tags, "Name": f"{cluster_name}-private-{zone}"},
                opts=vpc_child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone}", subnet_id=private_subnet.id,
                route_table_id=private_routes.id, opts=pulumi.ResourceOptions(parent=private_subnet),
            )
            private_subnets.append((private_subnet, private_routes))

        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[routes.id for _, routes in private_subnets],
            tags={**self._tags, "Name": f"{cluster_name}-s3"},
            opts=vpc_child,
        )
        # Nothing may use the default security group: its allow-all rules are removed.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg", vpc_id=vpc.id, ingress=[], egress=[],  # and kept empty on each up
            tags={**self._tags, "Name": f"{cluster_name}-default-unused"}, opts=vpc_child)
        self._flow_logs(vpc, settings, cluster_name, region, vpc_child)
        self.vpc_id = vpc.id
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s, _ in private_subnets])
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public_subnets])
        self.private_subnet_cidrs = pulumi.Output.all(*[s.cidr_block for s, _ in private_subnets])

    def _flow_logs(self, vpc: aws.ec2.Vpc, settings: NetworkSettings, cluster_name: str,
                   region: str, opts: pulumi.ResourceOptions) -> None:
        """Every accepted and rejected flow of the VPC, aggregated over 10 minutes, into an
        encrypted log group through a delivery role only VPC Flow Logs of this account assumes."""
        name = self._name
        identity = aws.get_caller_identity_output()
        partition = aws.get_partition_output().partition
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs", name=f"/aws/vpc/{cluster_name}/flow-logs",
            retention_in_days=settings.flow_log_retention_days, kms_key_id=self._logs_key_arn,
            tags=self._tags, opts=pulumi.ResourceOptions.merge(opts, named()))
        role = aws.iam.Role(
            f"{name}-flow-logs",
            description=f"VPC flow-log delivery of {cluster_name}",
            assume_role_policy=pulumi.Output.all(identity.account_id, partition).apply(
                lambda values: iam.to_json(iam.flow_log_trust_policy(
                    account_id=values[0], partition=values[1], region=region))),
            tags=self._tags, opts=opts)
        delivery = aws.iam.RolePolicy(
            f"{name}-flow-logs", role=role.id,
            policy=log_group.arn.apply(lambda arn: iam.to_json(iam.flow_log_delivery_policy(
                log_group_arn=arn))),
            opts=opts)
        aws.ec2.FlowLog(
            f"{name}-flow-logs", vpc_id=vpc.id, traffic_type="ALL",
            log_destination_type="cloud-watch-logs", log_destination=log_group.arn,
            iam_role_arn=role.arn, max_aggregation_interval=600,
            tags={**self._tags, "Name": f"{cluster_name}-flow-logs"},
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[delivery])))

    def _subnet(self, kind: str, zone: str, cidr: str, vpc: aws.ec2.Vpc, cluster_name: str,
                opts: pulumi.ResourceOptions) -> aws.ec2.Subnet:
        return aws.ec2.Subnet(
            f"{self._name}-{kind}-{zone}",
            vpc_id=vpc.id,
            cidr_block=cidr,
            availability_zone=zone,
            # Nothing launched in either kind needs a public IP by default: ALBs and NAT
            # gateways get theirs explicitly.
            map_public_ip_on_launch=False,
            tags={**self._tags, "Name": f"{cluster_name}-{kind}-{zone}",
                  **subnet_tags(public=kind == "public", cluster_name=cluster_name,
                                ownership="owned")},
            opts=opts,
        )
