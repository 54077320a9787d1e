"""The data services under configurations the stack files do not use."""

from __future__ import annotations

import pytest

from components.cache import connection_secret_data, node_layout
from components.settings import CacheSettings
from tests.conftest import ROOT, base_config, namespaced, settings_from
from tools.engine import Plan, run_stack

REDIS = "aws:elasticache/replicationGroup:ReplicationGroup"
RDS = "aws:rds/instance:Instance"


def _plan(config) -> Plan:
    settings_from(config)  # fail here, with the settings message, if the config is invalid
    return run_stack(ROOT, "variant", config=namespaced(config))


@pytest.fixture(scope="module")
def variant() -> Plan:
    config = base_config("dev")
    config["storage"] = {"transitionToIaDays": None}
    config["database"] = {"engineVersion": "16", "instanceClass": "db.t4g.small",
                          "performanceInsights": False, "maxAllocatedStorageGib": None}
    config["cache"] = {"engine": "redis", "replicas": 1}
    return _plan(config)


def test_redis_oss_with_a_replica(variant):
    redis = variant.one(REDIS)
    assert redis.inputs["clusterMode"] == "disabled" and redis.inputs["numCacheClusters"] == 2
    assert redis.inputs["parameterGroupName"] == "default.redis7"
    assert redis.inputs["engineVersion"] == "7.1"
    data = variant.one("kubernetes:core/v1:Secret", "cache-connection").raw_inputs["stringData"]
    assert data["REDIS_HOST"].startswith("master.")


def test_the_cache_component_still_lays_out_cluster_mode():
    """The stack refuses cluster mode for LiteLLM; the reusable component keeps its layout."""
    cache = CacheSettings(engine="redis", nodeType="cache.t4g.small", clusterMode="enabled",
                          shards=2, replicas=1, snapshotRetentionDays=0)
    assert node_layout(cache) == {"automatic_failover_enabled": True, "multi_az_enabled": True,
                                  "cluster_mode": "enabled", "num_node_groups": 2,
                                  "replicas_per_node_group": 1}
    assert cache.parameter_group_name == "default.redis7.cluster.on"


def test_performance_insights_off_and_no_storage_autoscaling(variant):
    inputs = variant.one(RDS).inputs
    assert inputs["performanceInsightsEnabled"] is False
    assert "performanceInsightsKmsKeyId" not in inputs
    assert inputs["maxAllocatedStorage"] == 0
    assert inputs["engineVersion"] == "16"
    family = variant.one("aws:rds/parameterGroup:ParameterGroup").inputs["family"]
    assert family == "postgres16"


def test_no_lifecycle_policy_when_transition_is_off(variant):
    efs = variant.one("aws:efs/fileSystem:FileSystem")
    assert efs.inputs.get("lifecyclePolicies", []) == []


def test_node_layout_without_replicas_has_no_failover():
    settings = settings_from(base_config("dev")).cache
    assert node_layout(settings) == {"automatic_failover_enabled": False, "multi_az_enabled": False,
                                     "cluster_mode": "disabled", "num_cache_clusters": 1}


def test_redis_url_escapes_the_token():
    data = connection_secret_data(host="h", password="a/b@c")
    assert data["REDIS_URL"] == "rediss://:a%2Fb%40c@h:6379/0"
