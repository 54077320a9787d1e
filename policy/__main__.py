"""Entry point of the policy pack. Constructing a PolicyPack starts its gRPC server and blocks,
so it stays here, out of reach of the tests; the rules are in rules.py."""

from pulumi_policy import EnforcementLevel, PolicyPack
from rules import POLICIES

PolicyPack(name="anythingllm-platform", enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
