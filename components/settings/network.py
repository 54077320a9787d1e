"""Network settings: a new VPC over 2-3 AZs, or an existing one."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .base import AZ_NAME, RFC1918, SUBNET_ID, VPC_ID, ConfigProblem, _cidr, _Model, _within, log_retention


class ExistingNetworkSettings(_Model):
    """Bring-your-own VPC: subnets are tagged for the cluster but never created."""

    vpc_id: str
    private_subnet_ids: list[str] = Field(min_length=1)
    public_subnet_ids: list[str] = Field(default_factory=list)

    @field_validator("vpc_id")
    @classmethod
    def _vpc_id(cls, value: str) -> str:
        if not VPC_ID.match(value):
            raise ConfigProblem("", f"{value!r} is not a VPC id (vpc- followed by 8 or 17 hex digits)")
        return value

    @model_validator(mode="after")
    def _subnet_ids(self) -> ExistingNetworkSettings:
        for key, ids in (("privateSubnetIds", self.private_subnet_ids),
                         ("publicSubnetIds", self.public_subnet_ids)):
            for index, subnet_id in enumerate(ids):
                if not SUBNET_ID.match(subnet_id):
                    raise ConfigProblem(
                        f"{key}[{index}]",
                        f"{subnet_id!r} is not a subnet id (subnet- followed by 8 or 17 hex digits)",
                    )
            if len(set(ids)) != len(ids):
                raise ConfigProblem(key, f"lists a subnet twice: {ids}")
        shared = set(self.private_subnet_ids) & set(self.public_subnet_ids)
        if shared:
            raise ConfigProblem("publicSubnetIds", f"{sorted(shared)} also listed as private")
        return self


class NetworkSettings(_Model):
    """A new VPC over 2-3 AZs (default) or an existing one (`existing`)."""

    vpc_cidr: str | None = None
    availability_zones: list[str] = Field(default_factory=list)
    nat_gateways: Literal["single", "perAz"] = "perAz"
    private_subnet_cidrs: list[str] | None = None
    public_subnet_cidrs: list[str] | None = None
    existing: ExistingNetworkSettings | None = None
    # Flow logs of a new VPC (every accepted and rejected flow) into an encrypted log group.
    flow_log_retention_days: int = 30

    @field_validator("flow_log_retention_days")
    @classmethod
    def _flow_log_retention(cls, value: int) -> int:
        return log_retention(value)

    @model_validator(mode="after")
    def _shape(self) -> NetworkSettings:
        if self.existing is not None:
            own = {
                "vpcCidr": self.vpc_cidr,
                "privateSubnetCidrs": self.private_subnet_cidrs,
                "publicSubnetCidrs": self.public_subnet_cidrs,
                "availabilityZones": self.availability_zones or None,
            }
            for key, value in own.items():
                if value is not None:
                    raise ConfigProblem(
                        key, "cannot be combined with `existing`: an existing VPC brings its own "
                        "subnets; remove one of the two",
                    )
            return self

        if self.vpc_cidr is None:
            raise ConfigProblem("vpcCidr", "is required when no `existing` VPC is given")
        vpc = _cidr(self.vpc_cidr, "vpcCidr")
        if not 16 <= vpc.prefixlen <= 20:
            raise ConfigProblem(
                "vpcCidr", f"{self.vpc_cidr!r} has prefix /{vpc.prefixlen}; allowed /16 to /20 "
                "(pods take VPC addresses with the VPC CNI, so the VPC must be large)",
            )
        if not any(_within(vpc, block) for block in RFC1918):
            raise ConfigProblem("vpcCidr", f"{self.vpc_cidr!r} is not in RFC 1918 private space")

        zones = self.availability_zones
        if not 2 <= len(zones) <= 3:
            raise ConfigProblem(
                "availabilityZones", f"{zones} has {len(zones)} zones; allowed 2 or 3",
            )
        for index, zone in enumerate(zones):
            if not AZ_NAME.match(zone):
                raise ConfigProblem(
                    f"availabilityZones[{index}]",
                    f"{zone!r} is not an availability zone name (e.g. us-east-1a)",
                )
        if len(set(zones)) != len(zones):
            raise ConfigProblem("availabilityZones", f"{zones} lists a zone twice")

        for key, cidrs in (("privateSubnetCidrs", self.private_subnet_cidrs),
                           ("publicSubnetCidrs", self.public_subnet_cidrs)):
            if cidrs is not None and len(cidrs) != len(zones):
                raise ConfigProblem(
                    key, f"has {len(cidrs)} entries; it needs one per availability zone "
                    f"({len(zones)})",
                )
        subnets = self.subnet_plan()
        seen: list[tuple[str, ipaddress.IPv4Network]] = []
        for key, network in subnets:
            if not _within(network, vpc):
                raise ConfigProblem(key, f"{network} is outside vpcCidr {vpc}")
            for other_key, other in seen:
                if network.overlaps(other):
                    raise ConfigProblem(key, f"{network} overlaps {other_key} ({other})")
            seen.append((key, network))
        return self

    def subnet_plan(self) -> list[tuple[str, ipaddress.IPv4Network]]:
        """(config key, CIDR) of every subnet: configured ones, else carved from vpcCidr.

        The default gives each AZ a private subnet of a quarter of the VPC (pods use VPC
        addresses) and a small public subnet from the last quarter (only load balancers and
        NAT gateways live there).
        """
        vpc = _cidr(self.vpc_cidr or "", "vpcCidr")
        quarters = list(vpc.subnets(prefixlen_diff=2))
        default_private = quarters[: len(self.availability_zones)]
        default_public = list(quarters[3].subnets(prefixlen_diff=2))
        plan = []
        for kind, configured, default in (
            ("private", self.private_subnet_cidrs, default_private),
            ("public", self.public_subnet_cidrs, default_public),
        ):
            key = f"{kind}SubnetCidrs"
            for index in range(len(self.availability_zones)):
                if configured is not None:
                    plan.append((f"{key}[{index}]", _cidr(configured[index], f"{key}[{index}]")))
                else:
                    plan.append((f"{key}[{index}]", default[index]))
        return plan

    @property
    def private_cidrs(self) -> list[str]:
        return [str(net) for key, net in self.subnet_plan() if key.startswith("private")]

    @property
    def public_cidrs(self) -> list[str]:
        return [str(net) for key, net in self.subnet_plan() if key.startswith("public")]

    @property
    def zone_count(self) -> int:
        if self.existing is not None:
            return len(self.existing.private_subnet_ids)
        return len(self.availability_zones)

