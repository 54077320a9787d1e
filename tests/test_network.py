"""Network alone: subnets per AZ with discovery tags, NAT per AZ or single, existing VPC."""

from __future__ import annotations

from components.network import ELB_ROLE_TAG, INTERNAL_ELB_ROLE_TAG, Network
from tests.conftest import base_config, record, settings_from

SUBNET = "aws:ec2/subnet:Subnet"
CLUSTER_TAG = "kubernetes.io/cluster/anythingllm-test"


def _network_plan(config):
    settings = settings_from(config)

    def program():
        Network("network", settings.network, cluster_name="anythingllm-test",
                region=settings.region, tags={"stack": "test"})

    return record(program, config=config)


def test_new_vpc_has_public_and_private_subnet_per_az_with_discovery_tags():
    plan = _network_plan(base_config())
    vpc = plan.one("aws:ec2/vpc:Vpc")
    assert vpc.inputs["cidrBlock"] == "10.10.0.0/16"
    assert vpc.inputs["enableDnsHostnames"] is True and vpc.inputs["enableDnsSupport"] is True
    subnets = plan.of_type(SUBNET)
    public = [s for s in subnets if ELB_ROLE_TAG in s.inputs["tags"]]
    private = [s for s in subnets if INTERNAL_ELB_ROLE_TAG in s.inputs["tags"]]
    assert len(public) == len(private) == 3
    assert {s.inputs["availabilityZone"] for s in private} == {
        "eu-west-1a", "eu-west-1b", "eu-west-1c"}
    for subnet in subnets:
        assert subnet.inputs["tags"][CLUSTER_TAG] == "owned"
        assert subnet.inputs["mapPublicIpOnLaunch"] is False
        assert subnet.inputs["tags"]["stack"] == "test"
    assert sorted(s.inputs["cidrBlock"] for s in private) == [
        "10.10.0.0/18", "10.10.128.0/18", "10.10.64.0/18"]


def test_per_az_nat_routes_each_private_subnet_through_its_own_zone():
    plan = _network_plan(base_config())
    nats = plan.of_type("aws:ec2/natGateway:NatGateway")
    assert len(nats) == 3
    private_tables = [t for t in plan.of_type("aws:ec2/routeTable:RouteTable")
                      if "private" in t.name]
    nat_ids = {t.inputs["routes"][0]["natGatewayId"] for t in private_tables}
    assert len(nat_ids) == 3
    for table in private_tables:
        zone = table.name.removeprefix("network-private-")
        nat = plan.one("aws:ec2/natGateway:NatGateway", f"network-nat-{zone}")
        public_subnet = plan.one(SUBNET, f"network-public-{zone}")
        assert nat.parent == public_subnet.urn
        assert table.property_dependencies["routes"]  # waits for its NAT gateway


def test_single_nat_is_shared_by_every_private_route_table():
    config = base_config()
    config["network"]["natGateways"] = "single"
    plan = _network_plan(config)
    assert len(plan.of_type("aws:ec2/natGateway:NatGateway")) == 1
    assert len(plan.of_type("aws:ec2/eip:Eip")) == 1
    private_tables = [t for t in plan.of_type("aws:ec2/routeTable:RouteTable")
                      if "private" in t.name]
    assert len({t.inputs["routes"][0]["natGatewayId"] for t in private_tables}) == 1


def test_s3_gateway_endpoint_serves_private_route_tables():
    plan = _network_plan(base_config())
    endpoint = plan.one("aws:ec2/vpcEndpoint:VpcEndpoint")
    assert endpoint.inputs["serviceName"] == "com.amazonaws.eu-west-1.s3"
    assert endpoint.inputs["vpcEndpointType"] == "Gateway"
    assert len(endpoint.inputs["routeTableIds"]) == 3


def test_existing_vpc_only_tags_its_subnets_as_shared():
    config = base_config()
    config["network"] = {"existing": {
        "vpcId": "vpc-0123456789abcdef0",
        "privateSubnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
        "publicSubnetIds": ["subnet-0123456789abcdef2"],
    }}
    plan = _network_plan(config)
    assert not plan.of_type("aws:ec2/vpc:Vpc") and not plan.of_type(SUBNET)
    tags = {(t.inputs["resourceId"], t.inputs["key"]): t.inputs["value"]
            for t in plan.of_type("aws:ec2/tag:Tag")}
    assert tags == {
        ("subnet-0123456789abcdef0", INTERNAL_ELB_ROLE_TAG): "1",
        ("subnet-0123456789abcdef0", CLUSTER_TAG): "shared",
        ("subnet-0123456789abcdef1", INTERNAL_ELB_ROLE_TAG): "1",
        ("subnet-0123456789abcdef1", CLUSTER_TAG): "shared",
        ("subnet-0123456789abcdef2", ELB_ROLE_TAG): "1",
        ("subnet-0123456789abcdef2", CLUSTER_TAG): "shared",
    }
