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
    return {line.item: (line.idle, line.peak) for line in estimate(plan, PRICES)
            if line.component == component}


def test_price_table_names_its_region_date_and_source():
    assert PRICES["region"] == "us-east-1" and PRICES["currency"] == "USD"
    assert PRICES["date"] == "2026-11-23" and "Pricing Calculator" in PRICES["source"]


def test_dev_is_visibly_cheaper_than_prod(stack_plans):
    dev, prod = totals(estimate(stack_plans["dev"], PRICES)), totals(estimate(stack_plans["prod"], PRICES))
    assert dev["total"][1] < prod["total"][0] / 2
    assert dev["total"][0] < dev["total"][1]


def _dev_disk() -> float:
    """Dev's GPU volume: 200 GiB gp3 with 6000 IOPS and 600 MiB/s (parallel image pull): $0.005
    per IOPS above 3000 and $0.04 per MiB/s above 125 (EBS pricing, us-east-1)."""
    return 200 * PRICES["ebsGp3GbMonth"] + 3000 * 0.005 + 475 * 0.04


# Dev's models are awake weekdays 08:00-19:00 New York time and for their 30 idle minutes after
# it: 5 x 11.5 = 57.5 of the week's 168 hours.
DEV_AWAKE = 57.5 / 168


def test_dev_gpus_cost_only_its_awake_hours(stack_plans):
    """Dev's two models sleep outside weekdays 08:00-19:00 New York time, 30 minutes after the
    window closes (KEDA's cooldown from the last active poll), and share one time-sliced GPU when
    awake: idle is one g6.2xlarge for 57.5/168 of the month, peak one all month. The estimate
    before scaling (one replica each, always up, from the Deployments' counts) said 763.65 a
    month for what now costs 261.37 at idle."""
    node = PRICES["ec2"]["g6.2xlarge"] * HOURS + _dev_disk()
    (pool,) = [value for item, value in _lines(stack_plans["dev"], "cluster").items()
               if item.startswith("node pool inference: 0.34 / 1 x g6.2xlarge")]
    assert pool == (pytest.approx(node * DEV_AWAKE), pytest.approx(node))
    assert (round(node * DEV_AWAKE, 2), round(node, 2)) == (261.37, 763.65)


def test_a_model_that_sleeps_all_week_costs_nothing_at_idle(stack_plans):
    """Staging's models sleep until woken: no GPU node at idle, two g6.xlarge (one GPU each, no
    sharing) at peak."""
    (pool,) = [value for item, value in _lines(stack_plans["staging"], "cluster").items()
               if item.startswith("node pool inference: 0.00 / 2 x g6.xlarge")]
    node = PRICES["ec2"]["g6.xlarge"] * HOURS + _dev_disk()
    assert pool == (0.0, pytest.approx(2 * node))


def test_two_slices_still_need_two_nodes_when_their_pods_do_not_fit_one(stack_plans):
    """Slices are not enough: on a g6.xlarge (4 vCPUs) the two pods' CPU requests (3 + 0.12
    each, with their sidecars) do not fit together, so dev at peak needs a node per model, as
    an estimate by GPUs alone would not have said."""
    config = copy.deepcopy(read_stack_config(ROOT, "dev"))
    config["anythingllm:cluster"]["gpuNodeGroups"][0]["instanceTypes"] = ["g6.xlarge"]
    (pool,) = [value for item, value in _lines(run_stack(ROOT, "dev", config=config), "cluster").items()
               if item.startswith("node pool inference: 0.68 / 2 x g6.xlarge")]
    small = PRICES["ec2"]["g6.xlarge"] * HOURS + _dev_disk()
    assert pool == (pytest.approx(2 * small * DEV_AWAKE), pytest.approx(2 * small))


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


def test_prod_gpus_by_hand_at_the_floor_and_at_peak(stack_plans):
    """Prod's chat model keeps 2 replicas (one g6e.xlarge each; the managed group's minSize is
    1) and reaches 5; its embedder keeps 2 and reaches 3 on the embed-pool's g6.xlarge."""
    lines = _lines(stack_plans["prod"], "cluster")
    chat = next(value for item, value in lines.items() if item.startswith("node group gpu-chat: 2.00 / 5"))
    node = PRICES["ec2"]["g6e.xlarge"] * HOURS + 300 * PRICES["ebsGp3GbMonth"] + 3000 * 0.005 + 375 * 0.04
    assert chat == (pytest.approx(2 * node), pytest.approx(5 * node))
    embed = next(value for item, value in lines.items() if item.startswith("node pool embed-pool: 2.00 / 3"))
    # Bottlerocket: the 200 GiB data volume and its 4 GiB OS volume (baseline gp3).
    small = (PRICES["ec2"]["g6.xlarge"] * HOURS + 204 * PRICES["ebsGp3GbMonth"] + 3000 * 0.005
             + 475 * 0.04)
    assert embed == (pytest.approx(2 * small), pytest.approx(3 * small))
    system = next(value for item, value in lines.items() if item.startswith("node group system"))
    assert system[0] == system[1]


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
    # Spot is priced on-demand, with the table's discount range (an estimate) beside it.
    low, high = PRICES["spotDiscount"]["low"], PRICES["spotDiscount"]["high"]
    assert (low, high) == (0.3, 0.7) and PRICES["spotDiscount"]["source"].startswith("estimate")
    assert (f"they would cost {261.37 * (1 - high):,.2f}-{261.37 * (1 - low):,.2f} idle" in out)
    # Where the GPU line comes from, per model.
    assert "replicas (floor-peak): " in out
    for model in ("qwen2-5-7b-instruct", "bge-m3"):
        assert f"{model} 0 (1 for 57.5 h/week, America/New_York)-1" in out
    # AMP's prices are not in the table: said, not guessed.
    assert "the managed Prometheus collector and its samples" in out
    assert main(["nonexistent"]) == 2
