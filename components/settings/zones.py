"""The Availability Zone names each region can have, so that a zone that does not exist is
refused before the VPC is created (its subnet would fail after it).

A zone name maps to a zone ID per account in the older regions, and some IDs are withheld from
newer accounts: a name listed here exists in some account, not necessarily in yours (the
notes say where that matters). `aws ec2 describe-availability-zones --region <region>` is the
answer for one account.

Sources (AS_OF): the AWS "AWS Availability Zones" page (docs.aws.amazon.com/global-
infrastructure/latest/regions/aws-availability-zones.html: the zone IDs per region, including
euw2-az4, launched 2026-08-18) and its "AZ IDs" page (the independently mapped regions);
cross-checked with getmoto/moto moto/ec2/models/availability_zones_and_regions.py (tag 5.2.3),
aws-cloudformation/cfn-lint src/cfnlint/helpers.py (217397c8, 2026-08-19) and
eksctl-io/eksctl pkg/az/az.go (99984adb, 2026-08-21).
"""

from __future__ import annotations

AS_OF = "2026-08-22"

# Zone letters that exist in some account, per region.
REGION_ZONES: dict[str, str] = {
    "af-south-1": "abc", "ap-east-1": "abc", "ap-northeast-1": "abcd", "ap-northeast-2": "abcd",
    "ap-northeast-3": "abc", "ap-south-1": "abc", "ap-south-2": "abc", "ap-southeast-1": "abc",
    "ap-southeast-2": "abc", "ap-southeast-3": "abc", "ap-southeast-4": "abc",
    "ap-southeast-5": "abc", "ca-central-1": "abcd", "ca-west-1": "abc", "eu-central-1": "abc",
    "eu-central-2": "abc", "eu-north-1": "abc", "eu-south-1": "abc", "eu-south-2": "abc",
    "eu-west-1": "abc", "eu-west-2": "abcd", "eu-west-3": "abc", "il-central-1": "abc",
    "me-central-1": "abc", "me-south-1": "abc", "sa-east-1": "abc", "us-east-1": "abcdef",
    "us-east-2": "abc", "us-west-1": "abc", "us-west-2": "abcd",
}

# Where a listed name may still not be yours: zone IDs withheld from newer accounts or refused
# by EKS for the cluster's subnets (EKS user guide, "Subnet requirements": use1-az3, usw1-az2,
# cac1-az3; eksctl avoids the same IDs).
ACCOUNT_NOTES: dict[str, str] = {
    "us-west-1": "each account has two of us-west-1a/b/c (usw1-az2 is not offered to newer "
                 "accounts, and EKS refuses it)",
    "ap-northeast-1": "newer accounts have ap-northeast-1a, c and d only (apne1-az3 is constrained)",
    "ca-central-1": "ca-central-1c (cac1-az3) exists only in older accounts, and EKS refuses it",
    "us-east-1": "one of the six names is use1-az3 in your account, which EKS refuses for the "
                 "cluster's subnets and where newer instance types are not offered",
}


def zone_problem(region: str, zone: str) -> str | None:
    """Why `zone` cannot be a zone of `region`, or None."""
    letters = REGION_ZONES.get(region)
    if not zone.startswith(region) or len(zone) != len(region) + 1:
        return f"{zone!r} is not a zone of region {region!r} (aws:region)"
    if letters is None or zone[-1] in letters:
        return None
    names = ", ".join(f"{region}{letter}" for letter in letters)
    note = f"; {ACCOUNT_NOTES[region]}" if region in ACCOUNT_NOTES else ""
    return (f"{zone!r} does not exist: {region} has {len(letters)} zones, {names} (AWS, as of "
            f"{AS_OF}){note}; `aws ec2 describe-availability-zones --region {region}` lists yours")


# EKS user guide, "Subnet requirements and considerations": the cluster's subnets "can't reside"
# in these zone IDs (eksctl's pkg/az/az.go avoids the same ones). Which name each has differs per
# account, so only the account's own mapping tells.
EKS_REFUSED_ZONE_IDS = frozenset({"use1-az3", "usw1-az2", "cac1-az3"})


def account_zone_problems(zones: list[str], offered: dict[str, str]) -> list[tuple[str, str]]:
    """(key, message) for each configured zone this account does not offer, or offers as a zone
    ID EKS refuses; `offered` maps the account's available zone names to their zone IDs (what
    DescribeAvailabilityZones answers)."""
    usable = sorted(name for name, zone_id in offered.items() if zone_id not in EKS_REFUSED_ZONE_IDS)
    problems = []
    for index, zone in enumerate(zones):
        key = f"network.availabilityZones[{index}]"
        if zone not in offered:
            problems.append((key, f"{zone!r} is not offered to this AWS account (it has "
                                  f"{', '.join(sorted(offered))}); use one of {', '.join(usable)}"))
        elif offered[zone] in EKS_REFUSED_ZONE_IDS:
            problems.append((key, f"{zone!r} is zone {offered[zone]} in this AWS account, which EKS "
                                  "refuses for a cluster's subnets (EKS user guide, subnet "
                                  f"requirements); use one of {', '.join(usable)}"))
    return problems
