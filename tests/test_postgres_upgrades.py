"""PostgreSQL major upgrades in two steps, proven from prod's plans: at 16, asking for 17 while
the instance runs 16 (the postgres16 parameter group kept), and at 17 once RDS has moved it.

RDS moves an instance to the new family's parameter group in the same ModifyDBInstance call as
the upgrade, refuses to delete a group an instance uses, and in prod applies the change in the
maintenance window: a single step would delete the old group while the instance still uses it.
"""

from __future__ import annotations

import pytest

from components.naming import cluster_name, db_instance_identifier
from components.settings import SettingsError, load_settings
from components.settings.postgres_version import major_upgrade_findings
from tests.conftest import ROOT, base_config, expect_settings_error, settings_from
from tools.engine import Plan, read_stack_config, run, run_stack
from tools.plan_diff import diff

RDS = "aws:rds/instance:Instance"
GROUP = "aws:rds/parameterGroup:ParameterGroup"
IDENTIFIER = db_instance_identifier(cluster_name("anythingllm", "prod"))


def _prod(**database) -> dict:
    config = read_stack_config(ROOT, "prod")
    config["anythingllm:database"] = {**config.get("anythingllm:database", {}), **database}
    return config


@pytest.fixture(scope="module")
def at_16() -> Plan:
    return run_stack(ROOT, "prod", config=_prod(engineVersion="16"))


@pytest.fixture(scope="module")
def upgrading() -> Plan:
    """Step 1: engineVersion 17 and upgradingFrom 16, the instance still on 16."""
    return run_stack(ROOT, "prod", config=_prod(engineVersion="17", upgradingFrom="16"),
                     databases={IDENTIFIER: "16.8"})


def test_step_one_adds_the_new_family_and_moves_the_instance_in_place(at_16, upgrading):
    added, removed, changed = diff(at_16.to_json(), upgrading.to_json())
    assert [r["inputs"]["family"] for r in added if r["type"] == GROUP] == ["postgres17"]
    assert [r for r in removed if r["type"] in (GROUP, RDS)] == []
    instance = next(c for c in changed if c.type == RDS)
    assert {p for p, _, _ in instance.properties} == {"engineVersion", "parameterGroupName",
                                                      "(option) dependencies"}
    assert instance.replaced_by == [] and instance.maybe == []
    new_group = next(r for r in upgrading.of_type(GROUP) if r.inputs["family"] == "postgres17")
    database = upgrading.one(RDS)
    assert plan_waits(upgrading, database, new_group)
    # Prod: RDS applies it in the maintenance window, with major upgrades allowed.
    assert database.inputs["applyImmediately"] is False
    assert database.inputs["allowMajorVersionUpgrade"] is True
    assert any("in the next maintenance window" in w and "remove database.upgradingFrom" in w
               for w in upgrading.warnings)


def plan_waits(plan: Plan, resource, target) -> bool:
    return plan.waits_for(plan.by_urn()[resource.urn], plan.by_urn()[target.urn])


def test_step_two_deletes_the_old_family_only(upgrading, stack_plans):
    """The committed prod runs 17 with no upgrade going on: what the stack becomes."""
    added, removed, changed = diff(upgrading.to_json(), stack_plans["prod"].to_json())
    assert [(r["type"], r["inputs"]["family"]) for r in removed if r["type"] == GROUP] == [
        (GROUP, "postgres16")]
    assert not any(c.type in (RDS, GROUP) for c in changed)
    assert not any(r["type"] in (RDS, GROUP) for r in added)


def test_a_stack_with_one_group_keeps_it(stack_plans):
    """Before upgrades were possible the group was registered as `database`: the group of the
    oldest major in use answers to that URN, so Pulumi keeps it instead of replacing it."""
    old_urn = ("urn:pulumi:prod::anythingllm::anythingllm:database:Database$"
               "aws:rds/parameterGroup:ParameterGroup::database")
    group = stack_plans["prod"].one(GROUP)
    assert group.aliases == [{"name": "database", "parentUrn": ""}]
    before = {"stack": "prod", "resources": [{**group.to_json(), "urn": old_urn, "name": "database",
                                              "aliases": []}]}
    added, removed, changed = diff(before, {"stack": "prod", "resources": [group.to_json()]})
    assert added == [] and removed == []
    assert [c.properties for c in changed] == [[
        ("(option) urn", "database", "database-postgres17 (alias: the same resource)")]]


def test_the_bootstrap_runs_again_after_each_step(at_16, upgrading, stack_plans):
    """It updates the vector extension to what the server ships (RDS leaves it at its old
    version through upgrades): its Job's name carries the server version."""
    names = [plan.one("kubernetes:batch/v1:Job", "database-bootstrap").inputs["metadata"]["name"]
             for plan in (at_16, upgrading, stack_plans["prod"])]
    assert len(set(names)) == 3
    script = stack_plans["prod"].one("kubernetes:core/v1:ConfigMap", "database-bootstrap-script")
    assert ("SELECT format('ALTER EXTENSION %I UPDATE', a.name)"
            in script.inputs["data"]["bootstrap.sql"])


# ---------------------------------------------------------------- what the instance says


def _load(config: dict, databases: dict[str, str]):
    loaded = []
    run(lambda: loaded.append(load_settings()), project="anythingllm", stack="prod", config=config,
        databases=databases)
    return loaded[0]


@pytest.mark.parametrize(("database", "running", "key", "says"), [
    ({"engineVersion": "17"}, "16.8", "database.upgradingFrom",
     "engineVersion '17' upgrades anythingllm-prod-postgres from 16.8: set upgradingFrom: \"16\""),
    ({"engineVersion": "16"}, "17.6", "database.engineVersion",
     "'16' is older than 17.6, which anythingllm-prod-postgres runs"),
])
def test_a_single_step_upgrade_or_a_downgrade_is_refused(database, running, key, says):
    with pytest.raises(SettingsError) as error:
        _load(_prod(**database), {IDENTIFIER: running})
    assert f"{key}: {says}" in str(error.value)


def test_removing_upgrading_from_before_the_window_is_refused():
    """The same refusal: the instance still runs 16, so its group must stay."""
    with pytest.raises(SettingsError) as error:
        _load(_prod(engineVersion="17"), {IDENTIFIER: "16.8"})
    assert 'set upgradingFrom: "16"' in str(error.value)


def test_once_the_instance_runs_the_new_major_the_preview_says_to_remove_upgrading_from():
    settings = _load(_prod(engineVersion="17", upgradingFrom="16"), {IDENTIFIER: "17.6"})
    assert any(w.startswith("database.upgradingFrom: anythingllm-prod-postgres runs 17.6 already")
               for w in settings.warnings)


def test_apply_immediately_is_a_reviewed_setting_that_upgrades_now():
    settings = _load(_prod(engineVersion="17", upgradingFrom="16", applyImmediately=True),
                     {IDENTIFIER: "16.8"})
    assert any("from 16.8 to 17 now: the database is unavailable while RDS upgrades it" in w
               for w in settings.warnings)


def test_findings_for_a_stack_without_an_instance():
    common = {"identifier": "x", "engine_version": "17", "apply_immediately": True,
              "maintenance_window": "sun:04:30-sun:05:30"}
    assert major_upgrade_findings(running=None, upgrading_from=None, **common) == []
    [finding] = major_upgrade_findings(running=None, upgrading_from="16", **common)
    assert finding.problem and finding.key == "database.upgradingFrom"
    assert major_upgrade_findings(running="17.6", upgrading_from=None, **common) == []


def test_upgrading_from_must_be_an_older_major():
    config = base_config("dev")
    config["database"] = {"engineVersion": "16", "upgradingFrom": "17"}
    expect_settings_error(config, "database.upgradingFrom", "'17' is not older than engineVersion '16'")
    config["database"] = {"engineVersion": "17", "upgradingFrom": "15"}
    expect_settings_error(config, "database.upgradingFrom",
                          "'15' is not a PostgreSQL major this code deploys")
    config["database"] = {"engineVersion": "17", "upgradingFrom": "16"}
    assert settings_from(config).database.parameter_group_majors == ["16", "17"]
