"""The whole stack's settings and the cross-section rules that tie them to the environment."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .base import REGION_NAME, TAG_KEY, ConfigProblem, _Model
from .cluster import ClusterSettings
from .network import NetworkSettings


class StackSettings(_Model):
    """The whole stack: identity, environment, network and cluster."""

    project: str
    stack: str
    region: str
    environment: Literal["dev", "staging", "prod"]
    tags: dict[str, str] = Field(default_factory=dict)
    network: NetworkSettings
    cluster: ClusterSettings

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not REGION_NAME.match(value):
            raise ConfigProblem("", f"{value!r} is not an AWS region name (e.g. us-east-1)")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not TAG_KEY.match(key) or key.lower().startswith("aws:"):
                raise ConfigProblem(
                    f"[{key!r}]", "tag keys are 1-128 characters of letters, digits, spaces and "
                    "_.:/=+-@, and must not start with aws:",
                )
        return value

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    @property
    def deletion_protection(self) -> bool:
        explicit = self.cluster.deletion_protection
        return self.is_prod if explicit is None else explicit

    @model_validator(mode="after")
    def _cross_checks(self) -> StackSettings:
        network, cluster = self.network, self.cluster
        for index, zone in enumerate(network.availability_zones):
            if not zone.startswith(self.region) or len(zone) != len(self.region) + 1:
                raise ConfigProblem(
                    f"network.availabilityZones[{index}]",
                    f"{zone!r} is not a zone of region {self.region!r}",
                )
        if network.vpc_cidr is not None:
            vpc = ipaddress.ip_network(network.vpc_cidr)
            service = ipaddress.ip_network(cluster.service_ipv4_cidr)
            if vpc.overlaps(service):
                raise ConfigProblem(
                    "cluster.serviceIpv4Cidr",
                    f"{service} overlaps network.vpcCidr {vpc}; Service IPs must not collide "
                    "with node and pod addresses",
                )
        if self.is_prod:
            if network.zone_count < 2:
                raise ConfigProblem(
                    "network.existing.privateSubnetIds",
                    f"prod needs subnets in at least 2 availability zones; got {network.zone_count}",
                )
            if network.existing is None and network.nat_gateways != "perAz":
                raise ConfigProblem(
                    "network.natGateways",
                    f"{network.nat_gateways!r} is not allowed in prod: a single NAT gateway "
                    "is a single-AZ point of failure; use 'perAz'",
                )
            if "0.0.0.0/0" in cluster.public_access_cidrs:
                raise ConfigProblem(
                    "cluster.publicAccessCidrs",
                    "'0.0.0.0/0' is not allowed in prod; list the CIDRs of your CI runners and "
                    "VPN, or leave it empty for a private-only endpoint",
                )
            if cluster.deletion_protection is False:
                raise ConfigProblem("cluster.deletionProtection", "cannot be false in prod")
            if cluster.system_node_group.min_size < 2:
                raise ConfigProblem(
                    "cluster.systemNodeGroup.minSize",
                    f"{cluster.system_node_group.min_size} is below 2; prod keeps add-ons on "
                    "at least two nodes",
                )
        if self.environment == "staging" and cluster.deletion_protection:
            raise ConfigProblem(
                "cluster.deletionProtection",
                "cannot be true for staging: throwaway stacks must destroy in one run",
            )
        return self

