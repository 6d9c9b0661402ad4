"""The scenario spec: parsing, defaults, one-line errors naming field and value, checks against a
book's features, Change.apply, ramps, cost schedules, files and the JSON Schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from cxasset.scenarios.spec import (
    Change,
    Cost,
    Initiative,
    Scenario,
    SpecError,
    check_scenario,
    example_yaml,
    load_scenarios,
    parse_scenarios,
    scenario_schema,
    target_mask,
)
from cxasset.valuemap import spec as vm_spec

DRIVERS = ["onboarding_days", "nps", "training_hours"]


@pytest.fixture
def features() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ["a", "b", "c", "d", "e"],
        "segment": ["smb", "smb", "mid", "enterprise", "mid"],
        "onboarding_days": [10.0, np.nan, 7.0, 21.0, 4.0],
        "tenure": [3, 12, 24, 36, 6],
    })


def change(**kw: Any) -> dict[str, Any]:
    return {"driver": "onboarding_days", **kw}


def scen(*initiatives: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"name": "S", "horizon_months": 12, "initiatives": list(initiatives), **kw}


def init(name: str = "I", **kw: Any) -> dict[str, Any]:
    return {"name": name, "changes": [change(shift=-3)], **kw}


def one(raw: dict[str, Any]) -> Scenario:
    (s,) = parse_scenarios(raw)
    return s


# parsing and defaults

def test_example_parses() -> None:
    (s,) = parse_scenarios(yaml.safe_load(example_yaml()))
    assert (s.name, s.horizon_months, s.discount_rate, s.new_customers) == \
        ("Faster onboarding", 36, 0.10, "forecast")
    (i,) = s.initiatives
    assert i.target == {"segment": "smb"} and i.applies_to == "existing" and i.ramp_months == 3
    (c,) = i.changes
    assert (c.kind, c.amount, c.uncertainty_sd) == ("shift", -3.0, 1.0)
    assert i.cost == Cost(upfront=250000, per_month=10000)
    assert s.drivers == ["onboarding_days"] and i.drivers == ["onboarding_days"]


def test_spec_error_is_the_value_map_one() -> None:
    assert SpecError is vm_spec.SpecError and issubclass(SpecError, ValueError)


def test_mapping_or_list() -> None:
    assert [s.name for s in parse_scenarios(scen())] == ["S"]
    both = parse_scenarios([scen(), scen(init(), name="T")])
    assert [s.name for s in both] == ["S", "T"]


def test_defaults() -> None:
    s = one(scen(init(cost={"upfront": 100})))
    assert s.discount_rate is None and s.new_customers == "forecast"
    (i,) = s.initiatives
    assert i.target == {} and i.applies_to == "existing" and i.ramp_months == 0
    assert (i.cost.upfront, i.cost.per_month, i.cost.per_customer) == (100, 0, 0)
    assert i.changes[0].uncertainty_sd == 0
    assert one(scen(init())).initiatives[0].cost == Cost()
    base = one({"name": "Baseline", "horizon_months": 24})
    assert base.initiatives == [] and base.drivers == []


def test_drivers_sorted_unique() -> None:
    s = one(scen(init("A", changes=[change(shift=1), {"driver": "nps", "scale": 1.1}]),
                 init("B", changes=[{"driver": "csat", "set": 5}, change(set=2)])))
    assert s.drivers == ["csat", "nps", "onboarding_days"]
    assert s.initiatives[1].drivers == ["csat", "onboarding_days"]


# bad specs: one line naming field and value

@pytest.mark.parametrize(("raw", "match"), [
    (scen(init(changes=[change(shift=-3, scale=0.8)])),
     r"initiatives\.0\.changes\.0: change of 'onboarding_days': give exactly one of shift, "
     r"scale or set; got shift=-3, scale=0\.8"),
    (scen(init(changes=[change()])), "give exactly one of shift, scale or set; got none"),
    (scen(init(changes=[change(scale=0)])), r"changes\.0\.scale: .*greater than 0 \(got 0\)"),
    (scen(init(changes=[change(scale=-0.5)])), r"scale: .*greater than 0 \(got -0\.5\)"),
    (scen(init(changes=[change(shift=1, uncertainty_sd=-1)])), r"uncertainty_sd: .*\(got -1\)"),
    (scen(horizon_months=-6), r"horizon_months: .*greater than 0 \(got -6\)"),
    (scen(horizon_months=0), r"horizon_months: .*greater than 0 \(got 0\)"),
    (scen(horizon_months=121), r"horizon_months: .*less than or equal to 120"),
    (scen(discount_rate=1.5), r"discount_rate: .*less than 1 \(got 1\.5\)"),
    (scen(init(changes=[change(shfit=-3)])),
     r"changes\.0\.shfit: Extra inputs are not permitted \(got -3\); did you mean 'shift'\?"),
    (scen(init(applies_to="all")), r"applies_to: .*'existing', 'new' or 'both' \(got 'all'\)"),
    (scen(new_customers="some"), r"new_customers: .*\(got 'some'\)"),
    (scen(init("Concierge"), init("Concierge")),
     r"initiative names must be unique; repeated: 'Concierge'"),
    (scen(init(cost=5000)), r"initiatives\.0\.cost: .*dictionary.*\(got 5000\)"),
    (scen(init(cost={"upfront": -1})), r"cost\.upfront: .*greater than or equal to 0 \(got -1\)"),
    (scen(init(changes=[])), r"initiatives\.0\.changes: .*at least 1"),
    (scen(init(target={"tenure": {"min": 12, "max": 6}})), "tenure: min 12 is above max 6"),
    (scen(init(target={"tenure": {"low": 3}})), r"tenure: a range is \{min: number"),
    (scen(init(target={"segment": []})), "segment: the list of values is empty"),
    ({"horizon_months": 12}, r"scenario 1: name: Field required"),
])
def test_bad_spec(raw: dict[str, Any], match: str) -> None:
    with pytest.raises(SpecError, match=match):
        parse_scenarios(raw, "f.yaml")


def test_error_names_file_and_scenario() -> None:
    bad = scen(init(changes=[change(shift=1, scale=2)]), name="Second")
    with pytest.raises(SpecError, match=r"^f\.yaml: scenario 2 \('Second'\): initiatives\.0\."):
        parse_scenarios([scen(), bad], "f.yaml")


@pytest.mark.parametrize("raw", [None, [], 5, "text", [scen(), 3]])
def test_not_a_scenario(raw: Any) -> None:
    with pytest.raises(SpecError, match="f.yaml: "):
        parse_scenarios(raw, "f.yaml")


def test_duplicate_scenario_names() -> None:
    with pytest.raises(SpecError, match="scenario names must be unique; repeated: 'S'"):
        parse_scenarios([scen(), scen(init())])


# checks against a book

def test_check_scenario_passes(features: pd.DataFrame) -> None:
    s = one(scen(init("A", target={"segment": ["smb", "mid"], "tenure": {"max": 12}}),
                 init("B", applies_to="new")))
    check_scenario(s, features, DRIVERS)
    check_scenario(one(scen()), features, [])


@pytest.mark.parametrize(("initiative", "match"), [
    (init(changes=[{"driver": "onboardng_days", "shift": -1}]),
     r"scenario 'S', initiative 'I': 'onboardng_days' is not a driver of the book \(valid: "
     r"nps, onboarding_days, training_hours\); did you mean 'onboarding_days'\?"),
    (init(target={"segmnt": "smb"}),
     r"initiative 'I', target: no customer feature 'segmnt'; available: customer_id, segment, "),
    (init(target={"segment": "smbb"}),
     "segment has no customer with 'smbb'; values: enterprise, mid, smb"),
    (init(target={"segment": ["smb", "smbb"]}), "segment has no customer with 'smbb'"),
    (init(target={"segment": "smb", "tenure": {"min": 20}}),
     r"initiative 'I', target: \{'segment': 'smb', 'tenure': \{'min': 20\}\} matches no "
     r"customer of the book \(5 customers\)"),
    (init(applies_to="new", target={"tenure": {"min": 100}}), "matches no customer"),
    (init(target={"segment": {"min": 1}}),
     r"a range needs a numeric column; segment holds .* \(enterprise, mid, smb\)"),
])
def test_check_scenario_errors(features: pd.DataFrame, initiative: dict[str, Any],
                               match: str) -> None:
    with pytest.raises(SpecError, match=match):
        check_scenario(one(scen(init("Fine"), initiative)), features, DRIVERS)


def test_target_mask(features: pd.DataFrame) -> None:
    assert target_mask({}, features).tolist() == [True] * 5
    assert target_mask({"segment": "mid"}, features).tolist() == [False, False, True, False, True]
    assert target_mask({"segment": ["smb", "enterprise"]}, features).tolist() == \
        [True, True, False, True, False]
    # inclusive range; a missing value never matches
    assert target_mask({"onboarding_days": {"min": 7, "max": 10}}, features).tolist() == \
        [True, False, True, False, False]
    assert target_mask({"segment": "mid", "tenure": {"max": 6}}, features).tolist() == \
        [False, False, False, False, True]
    assert target_mask({"tenure": 12}, features).tolist() == [False, True, False, False, False]


def test_target_mask_lists_at_most_15_columns() -> None:
    wide = pd.DataFrame({f"c{k:02d}": [1.0] for k in range(20)})
    with pytest.raises(SpecError, match=r"^target: no customer feature 'x'; available: c00, .*"
                                        r"c14, \.\.\. \(5 more\)$"):
        target_mask({"x": 1}, wide)


def test_target_mask_shows_five_values() -> None:
    f = pd.DataFrame({"region": list("abcdefg")})
    with pytest.raises(SpecError, match=r"values: a, b, c, d, e, \.\.\.$"):
        target_mask({"region": "z"}, f)


# Change.apply, describe

X = np.array([10.0, np.nan, 4.0])


def test_apply_shift_scale_set_keep_nan() -> None:
    np.testing.assert_array_equal(Change(driver="d", shift=-3).apply(X), [7.0, np.nan, 1.0])
    np.testing.assert_array_equal(Change(driver="d", scale=0.5).apply(X), [5.0, np.nan, 2.0])
    np.testing.assert_array_equal(Change(driver="d", set=5).apply(X), [5.0, np.nan, 5.0])
    np.testing.assert_array_equal(Change(driver="d", shift=1).apply(X, 0.5), [11.5, np.nan, 5.5])


def test_apply_with_offset_draws() -> None:
    off = np.array([[0.0], [1.0]])
    got = Change(driver="d", shift=-3).apply(X, off)
    np.testing.assert_array_equal(got, [[7.0, np.nan, 1.0], [8.0, np.nan, 2.0]])
    got = Change(driver="d", scale=0.5).apply(X, np.array([[0.0], [0.5], [-1.0]]))
    np.testing.assert_array_equal(got, [[5.0, np.nan, 2.0], [10.0, np.nan, 4.0],
                                        [0.0, np.nan, 0.0]])   # a factor below 0 is 0
    got = Change(driver="d", set=5).apply(X, off)
    np.testing.assert_array_equal(got, [[5.0, np.nan, 5.0], [6.0, np.nan, 6.0]])
    full = np.array([[0.0, 0.0, 1.0], [2.0, 2.0, 2.0]])
    np.testing.assert_array_equal(Change(driver="d", set=5).apply(X, full),
                                  [[5.0, np.nan, 6.0], [7.0, np.nan, 7.0]])


def test_kind_amount_describe() -> None:
    assert (Change(driver="d", scale=0.8).kind, Change(driver="d", scale=0.8).amount) == \
        ("scale", 0.8)
    assert Change(driver="onboarding_days", shift=-3).describe("days") == "onboarding_days -3 days"
    assert Change(driver="nps", shift=1).describe() == "nps +1"
    assert Change(driver="onboarding_days", scale=0.8).describe("days") == "onboarding_days x0.8"
    assert Change(driver="onboarding_days", set=5).describe("days") == \
        "onboarding_days set to 5 days"


# ramp, cost schedule

def test_ramp() -> None:
    i = Initiative.model_validate(init(ramp_months=3))
    np.testing.assert_allclose(i.ramp(5), [1 / 3, 2 / 3, 1, 1, 1])
    np.testing.assert_allclose(Initiative.model_validate(init(ramp_months=2.5)).ramp(3),
                               [0.4, 0.8, 1.0])
    np.testing.assert_array_equal(Initiative.model_validate(init()).ramp(4), np.ones(4))


def test_cost_schedule() -> None:
    c = Cost(upfront=1000, per_month=100, per_customer=2)
    np.testing.assert_array_equal(c.schedule(4, np.array([50, 0, 3, 0])),
                                  [1000 + 100 + 100, 100, 106, 100])
    np.testing.assert_array_equal(Cost().schedule(3, np.zeros(3)), np.zeros(3))
    with pytest.raises(ValueError, match=r"reached_per_month must have shape \(4,\); got \(3,\)"):
        c.schedule(4, np.zeros(3))


# files

def test_load_scenarios(tmp_path: Path) -> None:
    one_file = tmp_path / "one.yaml"
    one_file.write_text(example_yaml())
    assert [s.name for s in load_scenarios(one_file)] == ["Faster onboarding"]
    many = tmp_path / "many.yaml"
    many.write_text(yaml.safe_dump([scen(), scen(init(), name="T")]))
    assert [s.name for s in load_scenarios(str(many))] == ["S", "T"]


def test_load_scenarios_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"does not exist; write one with `cxasset init`"):
        load_scenarios(tmp_path / "missing.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    with pytest.raises(SpecError, match="empty.yaml is empty"):
        load_scenarios(empty)
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="broken.yaml is not valid YAML"):
        load_scenarios(broken)
    bad = tmp_path / "bad.yaml"
    bad.write_text(example_yaml().replace("shift: -3", "shift: -3\n        scale: 0.8"))
    with pytest.raises(SpecError, match=r"bad\.yaml: scenario 1 \('Faster onboarding'\): "
                                        r"initiatives\.0\.changes\.0: .*got shift=-3, scale=0\.8"):
        load_scenarios(bad)


# schema

def test_schema_describes_every_property() -> None:
    schema = scenario_schema()
    assert schema["title"] == "Scenario" and set(schema["required"]) == {"name", "horizon_months"}
    models = [schema, *schema["$defs"].values()]
    assert {m["title"] for m in models} == {"Scenario", "Initiative", "Change", "Cost"}
    for m in models:
        for name, prop in m["properties"].items():
            assert prop.get("description"), f"{m['title']}.{name} has no description"
    props = schema["$defs"]["Change"]["properties"]
    assert "driver's own unit" in props["shift"]["description"]
    assert "Relative factor" in props["scale"]["description"]
    assert "annual, compounded monthly" in schema["properties"]["discount_rate"]["description"]


def test_docs_publish_the_current_json_schema() -> None:
    """docs/scenarios.md carries the scenario JSON Schema; it must be the code's."""
    import json
    import re
    from pathlib import Path

    from cxasset.scenarios.spec import scenario_schema

    doc = (Path(__file__).resolve().parents[2] / "docs" / "scenarios.md").read_text()
    block = re.search(r"JSON Schema of a scenario</summary>\s*```json\n(.*?)```", doc, re.S)
    assert block is not None
    assert json.loads(block.group(1)) == scenario_schema()
