"""Physical names fit AWS limits and AWS's character rules for every stack name, and stay
distinct; common tags cannot be overridden."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.naming import (
    EKS_CLUSTER_NAME_MAX,
    EXPIRES_TAG,
    cluster_name,
    common_tags,
    physical_name,
    stack_physical_names,
)

LONG_BRANCHES = [
    "staging-feature-" + "x" * 120,
    "staging-feature-" + "x" * 120 + "-2",
    "staging-Fix/Some_Thing--Weird",
]
# AWS's rules for each name, as the service documents them (length and characters).
RULES = {
    # EKS CreateCluster: 1-100, ^[0-9A-Za-z][A-Za-z0-9\-_]*$
    "eksCluster": re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$"),
    # ELBv2 CreateLoadBalancer: at most 32 alphanumerics and hyphens, not starting or ending
    # with a hyphen, not starting with "internal-".
    "loadBalancer": re.compile(r"^(?!internal-)[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$"),
    # ElastiCache replication group id: 1-40, a letter first, no "--", no trailing hyphen.
    "cacheReplicationGroup": re.compile(r"^(?!.*--)[a-z](?:[a-z0-9-]{0,38}[a-z0-9])?$"),
    # RDS DB instance identifier: 1-63, a letter first, no "--", no trailing hyphen.
    "dbInstance": re.compile(r"^(?!.*--)[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$"),
    # EFS creation token: 1-64 characters.
    "efsCreationToken": re.compile(r"^.{1,64}$"),
}
# What a stack name may be (Pulumi: letters, digits, '-', '_', '.'; at most 100).
stack_names = st.from_regex(r"[A-Za-z0-9_.-]{1,100}", fullmatch=True)
# Throwaway stack names as tools/staging.py makes them (stack_name: lowercase words joined by
# single hyphens, none at the end). Names outside that form ("staging-0-") normalize onto one of
# these and may collide with it: the tool never creates them.
branch_like = st.builds(lambda suffix: f"staging-{suffix}",
                        st.from_regex(r"[a-z0-9]{1,20}(-[a-z0-9]{1,20}){0,4}", fullmatch=True))


@pytest.mark.parametrize("stack", ["dev", "prod", *LONG_BRANCHES])
def test_cluster_names_fit_the_eks_limit(stack):
    name = cluster_name("anythingllm", stack)
    assert len(name) <= EKS_CLUSTER_NAME_MAX
    assert name[0].isalnum() and all(c.isalnum() or c == "-" for c in name)


@settings(max_examples=400, deadline=None)
@given(stack=st.one_of(stack_names, branch_like))
def test_every_physical_name_follows_aws_rules_for_any_stack_name(stack):
    names = stack_physical_names("anythingllm", stack)
    assert set(names) == set(RULES)
    for kind, name in names.items():
        assert RULES[kind].match(name), (kind, name)


@settings(max_examples=300, deadline=None)
@given(first=branch_like, second=branch_like)
def test_different_stacks_never_share_a_physical_name(first, second):
    if first == second:
        return
    a, b = stack_physical_names("anythingllm", first), stack_physical_names("anythingllm", second)
    for kind in RULES:
        assert a[kind] != b[kind], (kind, first, second)


@settings(max_examples=100, deadline=None)
@given(prefix=st.from_regex(r"[a-z][a-z0-9-]{40,80}", fullmatch=True), a=st.text("abc", min_size=1),
       b=st.text("xyz", min_size=1))
def test_long_names_sharing_a_prefix_stay_distinct(prefix, a, b):
    """Branch names that agree on the first 40+ characters differ after truncation (hash)."""
    first = stack_physical_names("anythingllm", f"staging-{prefix}-{a}")
    second = stack_physical_names("anythingllm", f"staging-{prefix}-{b}")
    assert first["loadBalancer"] != second["loadBalancer"]
    assert first["cacheReplicationGroup"] != second["cacheReplicationGroup"]


def test_short_names_are_readable():
    assert cluster_name("anythingllm", "dev") == "anythingllm-dev"
    assert physical_name("a", "Fix/Some_Thing--Weird", max_length=32) == "a-fix-some-thing-weird"
    assert stack_physical_names("anythingllm", "staging-pr-42") == {
        "eksCluster": "anythingllm-staging-pr-42",
        "loadBalancer": "anythingllm-staging-pr-42",
        "cacheReplicationGroup": "anythingllm-staging-pr-42-cache",
        "dbInstance": "anythingllm-staging-pr-42-postgres",
        "efsCreationToken": "anythingllm-staging-pr-42-shared",
    }


def test_common_tags_win_over_user_tags():
    tags = common_tags(project="p", stack="s", environment="dev",
                       extra={"anythingllm:stack": "spoofed", EXPIRES_TAG: "never", "team": "ml"},
                       expires_at="2026-11-30T18:00:00Z")
    assert tags["anythingllm:stack"] == "s" and tags["team"] == "ml"
    assert tags[EXPIRES_TAG] == "2026-11-30T18:00:00Z"
