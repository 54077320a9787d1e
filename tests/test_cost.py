"""`make cost`: per-component monthly estimates from the repo's price table."""

from __future__ import annotations

import copy

import pytest

from tests.conftest import ROOT
from tools.cost import Assumptions, PriceError, estimate, load_prices, main, totals
from tools.engine import read_stack_config, run_stack

PRICES = load_prices("us-east-1")
HOURS = 730


def _lines(plan, component: str) -> dict[str, tuple[float, float]]:
    return {line.item: (line.at_min, line.at_desired) for line in estimate(plan, PRICES)
            if line.component == component}


def test_price_table_names_its_region_date_and_source():
    assert PRICES["region"] == "us-east-1" and PRICES["currency"] == "USD"
    assert PRICES["date"] == "2026-11-23" and "Pricing Calculator" in PRICES["source"]


def test_dev_is_visibly_cheaper_than_prod(stack_plans):
    dev, prod = totals(estimate(stack_plans["dev"], PRICES)), totals(estimate(stack_plans["prod"], PRICES))
    assert dev["total"][1] < prod["total"][0] / 2


def test_a_node_pool_costs_the_nodes_its_models_keep_running(stack_plans):
    """Dev's two models take one slice each of a time-sliced GPU (2 per GPU), so they keep one
    1-GPU node up: a NodePool has no minimum of its own, but nodes run as long as model pods do.
    gp3 beyond its baseline: $0.005 per IOPS above 3000 and $0.04 per MiB/s above 125 (EBS
    pricing, us-east-1); 600 MiB/s for parallel image pull."""
    (pool,) = [value for item, value in _lines(stack_plans["dev"], "cluster").items()
               if item.startswith("node pool inference: 1 x g6.2xlarge (first listed type) for 2 "
                                  "model GPU slices (2 per GPU)")]
    disk = 200 * PRICES["ebsGp3GbMonth"] + 3000 * 0.005 + 475 * 0.04
    node = PRICES["ec2"]["g6.2xlarge"] * HOURS + disk
    assert pool == (pytest.approx(node), pytest.approx(node))
    # Slices are not enough: on a g6.xlarge (4 vCPUs) the two pods' CPU requests (3 + 0.1
    # each) do not fit together, so the models still need a node each, as the old estimate
    # (GPUs only) would not have said.
    config = copy.deepcopy(read_stack_config(ROOT, "dev"))
    config["anythingllm:cluster"]["gpuNodeGroups"][0]["instanceTypes"] = ["g6.xlarge"]
    (pool,) = [value for item, value in _lines(run_stack(ROOT, "dev", config=config), "cluster").items()
               if item.startswith("node pool inference: 2 x g6.xlarge (first listed type) for 2 "
                                  "model GPU slices")]
    small = PRICES["ec2"]["g6.xlarge"] * HOURS + disk
    assert pool == (pytest.approx(2 * small), pytest.approx(2 * small))


def test_prod_database_matches_a_hand_computation(stack_plans):
    """db.r7g.large Multi-AZ (two instances) and 100 GiB gp3 stored twice."""
    rds = PRICES["rds"]
    instance = 2 * rds["instanceHour"]["db.r7g.large"] * HOURS
    storage = 2 * 100 * rds["gp3GbMonth"]
    assert instance == pytest.approx(348.94) and storage == pytest.approx(23.0)
    lines = _lines(stack_plans["prod"], "database")
    assert lines["RDS db.r7g.large Multi-AZ"] == (pytest.approx(instance), pytest.approx(instance))
    assert lines["RDS storage 100 GiB gp3 Multi-AZ"][0] == pytest.approx(storage)
    assert totals(estimate(stack_plans["prod"], PRICES))["database"][0] == pytest.approx(
        instance + storage + PRICES["kmsKeyMonth"])


def test_node_groups_are_priced_at_min_and_desired_with_their_disks(stack_plans):
    lines = _lines(stack_plans["prod"], "cluster")
    chat = next(value for item, value in lines.items() if "gpu-chat" in item)
    node = PRICES["ec2"]["g6e.xlarge"] * HOURS + 300 * PRICES["ebsGp3GbMonth"] + 3000 * 0.005 + 375 * 0.04
    assert chat == (pytest.approx(1 * node), pytest.approx(2 * node))


def test_valkey_is_priced_below_redis(stack_plans):
    config = copy.deepcopy(read_stack_config(ROOT, "prod"))
    config["anythingllm:cache"] = {**config["anythingllm:cache"], "engine": "redis"}
    redis = totals(estimate(run_stack(ROOT, "prod", config=config), PRICES))["cache"][0]
    valkey = totals(estimate(stack_plans["prod"], PRICES))["cache"][0]
    nodes = 3 * PRICES["elasticache"]["nodeHour"]["cache.r7g.large"] * HOURS
    assert redis == pytest.approx(nodes + 1) and valkey == pytest.approx(0.8 * nodes + 1)


def test_assumptions_change_only_their_lines(stack_plans):
    base = totals(estimate(stack_plans["dev"], PRICES))
    more = totals(estimate(stack_plans["dev"], PRICES, Assumptions(efs_gib=1100)))
    assert more["storage"][0] - base["storage"][0] == pytest.approx(1000 * PRICES["efsStandardGbMonth"])
    assert more["cluster"] == base["cluster"]


def test_unknown_prices_and_regions_are_clear_errors(stack_plans):
    prices = copy.deepcopy(PRICES)
    del prices["ec2"]["m6i.large"]
    with pytest.raises(PriceError, match=r"no EC2 price for 'm6i\.large'"):
        estimate(stack_plans["dev"], prices)
    with pytest.raises(PriceError, match="no price table for region 'eu-west-1'"):
        load_prices("eu-west-1")


def test_cli_prints_every_component_and_the_total(capsys):
    assert main(["dev"]) == 0
    out = capsys.readouterr().out
    for component in ("cluster", "network", "database", "cache", "storage", "anythingllm",
                      "observability", "total"):
        assert f"\n  {component} " in out
    assert "prices of 2026-11-23" in out and "Not included:" in out
    assert main(["nonexistent"]) == 2
