"""Physical names fit AWS limits and stay distinct; common tags cannot be overridden."""

from __future__ import annotations

import pytest

from components.naming import EKS_CLUSTER_NAME_MAX, cluster_name, common_tags, physical_name

LONG_BRANCHES = [
    "staging-feature-" + "x" * 120,
    "staging-feature-" + "x" * 120 + "-2",
    "staging-Fix/Some_Thing--Weird",
]


@pytest.mark.parametrize("stack", ["dev", "prod", *LONG_BRANCHES])
def test_cluster_names_fit_the_eks_limit(stack):
    name = cluster_name("anythingllm", stack)
    assert len(name) <= EKS_CLUSTER_NAME_MAX
    assert name[0].isalnum() and all(c.isalnum() or c == "-" for c in name)


def test_truncated_names_stay_distinct():
    assert cluster_name("anythingllm", LONG_BRANCHES[0]) != cluster_name("anythingllm", LONG_BRANCHES[1])


def test_short_names_are_readable():
    assert cluster_name("anythingllm", "dev") == "anythingllm-dev"
    assert physical_name("a", "Fix/Some_Thing--Weird", max_length=32) == "a-fix-some-thing-weird"


def test_common_tags_win_over_user_tags():
    tags = common_tags(project="p", stack="s", environment="dev",
                       extra={"anythingllm:stack": "spoofed", "team": "ml"})
    assert tags["anythingllm:stack"] == "s" and tags["team"] == "ml"
