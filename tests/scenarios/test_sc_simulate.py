"""Monte Carlo scenarios (cxasset.scenarios.simulate, .result, .plan) on the ``planner`` fixture
(a 4,000-customer BG/NBD book with a steady inflow, 24 months prepared) and ``sub_planner``.

Known answers: a scenario without effect changes nothing and returns minus its discounted cost;
cost schedules follow the spec; the synthetic generator's placebo driver (``employees``, every
true coefficient 0) has an interval covering 0. Properties: larger improvements return more, a
narrower target or a ramp less, ``applies_to`` moves only its customers, the same seed gives the
same draws (common random numbers across scenarios).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from cxasset.scenarios.plan import compare, optimize_portfolio
from cxasset.scenarios.result import SERIES, TOTALS, ScenarioResult, quantiles
from cxasset.scenarios.simulate import Planner
from cxasset.scenarios.spec import Scenario, SpecError, parse_scenarios

DRAWS = 200
COST = {"upfront": 5_000, "per_month": 500}  # 11,000 over 12 months
QKEYS = {"p5", "p50", "p95", "mean"}


def scenario(*initiatives: dict[str, Any], name: str = "S", horizon: int = 12,
             **kw: Any) -> Scenario:
    return parse_scenarios({"name": name, "horizon_months": horizon,
                            "initiatives": list(initiatives), **kw})[0]


def initiative(name: str = "Onboarding", driver: str = "onboarding_days", shift: float = -3.0,
               change: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    return {"name": name, "changes": [change or {"driver": driver, "shift": shift}], **kw}


def run(pl: Planner, s: Scenario, draws: int = DRAWS, seed: int = 1) -> ScenarioResult:
    return pl.simulate(s, draws=draws, seed=seed)


def delta_series(r: ScenarioResult, key: str) -> np.ndarray:
    return r.scenario_series[key] - r.baseline[key]


def discount(months: int, rate: float = 0.10) -> np.ndarray:
    """End-of-month discount factors (the book's 10% a year, compounded monthly)."""
    return (1.0 + rate) ** (-np.arange(1, months + 1) / 12.0)


@pytest.fixture(scope="module")
def onboarding(planner: Planner) -> ScenarioResult:
    """Onboarding 3 days faster for every existing customer, 12 months, with costs."""
    return run(planner, scenario(initiative(cost=COST)))


# ---------------------------------------------------------------------------- no effect
def test_baseline_alone_changes_nothing(planner: Planner) -> None:
    r = run(planner, scenario(name="Baseline", horizon=12))
    for k, v in r.delta_totals.items():
        assert_array_equal(v, 0.0, err_msg=k)
    assert_array_equal(r.npv, 0.0)
    assert np.isnan(r.roi).all()
    assert_array_equal(r.payback, 1.0)  # nothing invested: never below 0
    b = r.baseline_totals
    assert (b["revenue"] > 0).all() and (b["active_customers_end"] > 0).all()
    assert (0 < b["churn_rate"]).all() and (b["churn_rate"] < 1).all()
    assert_allclose(b["margin"], 0.3 * b["revenue"])  # the book's margin_rate
    d = r.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["roi"] is None and d["target_churn"] is None
    assert d["sentence"].startswith("Baseline: without new initiatives")
    assert "$" in d["sentence"] and "90% interval" in d["sentence"]


def test_zero_shift_costs_its_discounted_schedule(planner: Planner) -> None:
    s = scenario(initiative(name="Nothing", shift=0.0,
                            cost={"upfront": 12_000, "per_month": 500}))
    r = run(planner, s)
    for k, v in r.delta_totals.items():
        assert_array_equal(v, 0.0, err_msg=k)
    schedule = np.full(12, 500.0)
    schedule[0] += 12_000
    assert_allclose(r.cost[:, 0], np.broadcast_to(schedule, (DRAWS, 12)))
    pv = schedule @ discount(12)
    assert_allclose(r.npv, -pv, rtol=1e-12)
    assert_allclose(r.cost_pv, pv, rtol=1e-12)
    assert_allclose(r.roi, -1.0, rtol=1e-12)
    assert np.isinf(r.payback).all()
    d = r.to_dict()
    assert d["payback_month"] == {"p5": None, "p50": None, "p95": None, "mean": None}
    assert d["prob_payback"] == 0.0 and d["prob_npv_positive"] == 0.0
    assert d["roi"]["p50"] == pytest.approx(-1.0)
    assert "no payback within 12 months" in d["sentence"]
    json.dumps(d, allow_nan=False)


def test_discount_rate_of_the_scenario(planner: Planner) -> None:
    s = scenario(initiative(shift=0.0, cost={"per_month": 1_000}), discount_rate=0.0)
    assert_allclose(run(planner, s, draws=20).npv, -12_000.0, rtol=1e-12)


# ---------------------------------------------------------------------------- placebo
def test_placebo_driver_is_worth_nothing(planner: Planner) -> None:
    """``employees`` has no true effect in the generator: 20% more employees (with a cost)
    gives a delta customer equity whose 90% interval covers 0, and an NPV about minus the
    cost (within that interval's half-width)."""
    r = run(planner, scenario(initiative(name="Placebo", change={"driver": "employees",
                                                                 "scale": 1.2},
                                         cost={"upfront": 5_000})))
    eq = quantiles(r.delta_totals["customer_equity"])
    assert eq["p5"] < 0 < eq["p95"], eq
    half = (eq["p95"] - eq["p5"]) / 2
    assert abs(float(r.npv.mean()) + float(r.cost_pv.mean())) < half
    assert (eq["p95"] - eq["p5"]) > 0  # parameter uncertainty is carried


# ---------------------------------------------------------------------------- monotone
def test_larger_improvements_return_more(planner: Planner) -> None:
    point = [run(planner, scenario(initiative(shift=d))).delta_totals["revenue"][0]
             for d in (-1.0, -3.0, -6.0)]
    assert 0 < point[0] < point[1] < point[2], point
    # first order: roughly proportional to the size of the change
    assert point[1] / point[0] == pytest.approx(3.0, rel=0.15)


def test_target_and_ramp_return_less(planner: Planner, onboarding: ScenarioResult) -> None:
    full = delta_series(onboarding, "revenue")[0]
    smb = run(planner, scenario(initiative(target={"segment": "smb"})))
    ramp = run(planner, scenario(initiative(ramp_months=6)))
    total = onboarding.delta_totals["revenue"][0]
    assert 0 < smb.delta_totals["revenue"][0] < total
    assert 0 < ramp.delta_totals["revenue"][0] < total
    step = delta_series(ramp, "revenue")[0]
    assert step[0] / full[0] == pytest.approx(1 / 6, rel=0.05)  # first order in the shift
    # the state is read at the shift averaged since today: for an effect linear in time the
    # month's flow is the month's ramp level (3/6); dropout's memory makes it a little less
    assert 0.8 * 3 / 6 < step[2] / full[2] <= 3 / 6 * 1.02
    assert (step[5:] <= full[5:] * (1 + 1e-9)).all()  # full effect from month 6 at most
    # a ramp has memory: customers not kept during it are not counted as kept afterwards
    alive_ramp = ramp.scenario_series["active_customers"] - ramp.baseline["active_customers"]
    alive_full = (onboarding.scenario_series["active_customers"]
                  - onboarding.baseline["active_customers"])
    assert alive_ramp[0, 11] < 0.95 * alive_full[0, 11]


def test_applies_to(planner: Planner) -> None:
    new = run(planner, scenario(initiative(applies_to="new")))
    old = run(planner, scenario(initiative(applies_to="existing")))
    both = run(planner, scenario(initiative(applies_to="both")))
    assert_array_equal(delta_series(new, "revenue_existing"), 0.0)
    assert (delta_series(new, "revenue_new")[0, 1:] > 0).all()
    assert_array_equal(delta_series(old, "revenue_new"), 0.0)
    assert (delta_series(old, "revenue_existing")[0] > 0).all()
    assert_allclose(both.delta_totals["revenue"],
                    new.delta_totals["revenue"] + old.delta_totals["revenue"], rtol=1e-9)
    # new customers acquired in month m have had less time: the effect grows with the cohorts
    assert (np.diff(delta_series(new, "revenue_new")[0]) > 0).all()


def test_without_new_customers(planner: Planner) -> None:
    r = run(planner, scenario(initiative(applies_to="both"), new_customers="none"))
    assert_array_equal(r.baseline["new_customers"], 0.0)
    # the scenario's new customers are only the referred ones its referral change brings
    assert_allclose(r.scenario_series["new_customers"], r.scenario_series["referred_customers"])
    for k in ("revenue_new",):
        assert_array_equal(r.scenario_series[k], 0.0)
        assert_array_equal(r.baseline[k], 0.0)
    assert_array_equal(r.scenario_series["revenue"], r.scenario_series["revenue_existing"])
    with_new = run(planner, scenario(initiative(applies_to="both")))
    # existing customers' change does not depend on acquisitions
    assert_allclose(r.delta_totals["revenue"],
                    delta_series(with_new, "revenue_existing").sum(axis=1), rtol=1e-9)
    assert (with_new.scenario_series["new_customers"].mean(axis=0) > 100).all()


# ---------------------------------------------------------------------------- draws
def test_effect_uncertainty_widens_the_interval(planner: Planner,
                                                onboarding: ScenarioResult) -> None:
    sure = onboarding.npv
    s = scenario(initiative(change={"driver": "onboarding_days", "shift": -3,
                                    "uncertainty_sd": 2.0},
                            cost=COST))
    unsure = run(planner, s).npv
    assert unsure[0] == pytest.approx(sure[0], rel=1e-12)  # draw 0: the point estimate
    w = [np.subtract(*np.percentile(v, [95, 5])) for v in (sure, unsure)]
    assert w[1] > 2 * w[0], w


def test_same_seed_same_draws(planner: Planner, onboarding: ScenarioResult) -> None:
    s = scenario(initiative(cost=COST))
    again = run(planner, s)
    assert_array_equal(again.npv, onboarding.npv)
    for k in TOTALS:
        assert_array_equal(again.scenario_totals[k], onboarding.scenario_totals[k])
    other_seed = run(planner, s, seed=2)
    assert not np.array_equal(other_seed.npv, onboarding.npv)
    assert other_seed.npv[0] == pytest.approx(onboarding.npv[0], rel=1e-9)  # point estimate
    # common random numbers: another scenario shares acquisitions and coefficient draws
    nps = run(planner, scenario(initiative(name="NPS", driver="nps", shift=1.0)))
    assert_array_equal(nps.baseline["new_customers"], onboarding.baseline["new_customers"])
    assert_allclose(nps.scenario_series["new_customers"] - nps.scenario_series[
        "referred_customers"], onboarding.scenario_series["new_customers"]
        - onboarding.scenario_series["referred_customers"])
    assert_array_equal(nps.baseline_totals["revenue"], onboarding.baseline_totals["revenue"])
    # the first draw is the point estimate whatever the number of draws
    few = run(planner, s, draws=20)
    assert few.delta_totals["revenue"][0] == pytest.approx(
        onboarding.delta_totals["revenue"][0], rel=1e-9)


def test_npv_is_equity_gain_minus_cost(onboarding: ScenarioResult) -> None:
    r = onboarding
    assert_allclose(r.npv, r.delta_totals["customer_equity"] - r.cost_pv, rtol=1e-9)
    value = lambda x: x["margin"] - x["cost_to_serve"] + x["referral_value"]  # noqa: E731
    assert_allclose(r.scenario_totals["customer_equity"],
                    value(r.scenario_series) @ discount(12), rtol=1e-12)
    assert_allclose(r.npv, np.cumsum(r.cash, axis=1)[:, -1], rtol=1e-12)
    # payback: first month from which the cumulative net return stays >= 0
    cum = np.cumsum(r.cash, axis=1)
    for k in range(0, DRAWS, 17):
        neg = np.flatnonzero(cum[k] < 0)
        want = np.inf if cum[k, -1] < 0 else (neg[-1] + 2 if len(neg) else 1)
        assert r.payback[k] == want
    assert np.isfinite(r.payback).any()


def test_churn_of_the_target(planner: Planner, onboarding: ScenarioResult) -> None:
    """With every customer targeted and a 12-month horizon the target's churn is the base's."""
    tc = onboarding.target_churn
    assert tc is not None and tc["months"] == 12 and tc["initiative"] == "Onboarding"
    assert tc["baseline"] == pytest.approx(onboarding.baseline_totals["churn_rate"][0])
    assert_allclose(tc["scenario"], onboarding.scenario_totals["churn_rate"], rtol=1e-9)
    assert (tc["scenario"] < tc["baseline"]).all()
    assert "cut 12-month churn from" in onboarding.sentence()
    smb = run(planner, scenario(initiative(target={"segment": "smb"})), draws=20)
    assert " among smb customers" in smb.sentence()


def test_per_customer_cost(planner: Planner) -> None:
    n_smb = int((planner.est.features["segment"] == "smb").sum())
    old = run(planner, scenario(initiative(target={"segment": "smb"},
                                           cost={"per_customer": 10.0})), draws=20)
    assert_allclose(old.cost[:, 0, 0], 10.0 * n_smb * planner.scale)
    assert_array_equal(old.cost[:, 0, 1:], 0.0)
    new = run(planner, scenario(initiative(applies_to="new", cost={"per_customer": 10.0})),
              draws=20)
    assert_allclose(new.cost[:, 0], 10.0 * new.baseline["new_customers"])
    assert planner.scale == 1.0  # every customer scored on this book


def test_two_changes_of_one_driver_add_up(planner: Planner) -> None:
    twice = run(planner, scenario(initiative("A"), initiative("B")), draws=20)
    once = run(planner, scenario(initiative("A", shift=-6.0)), draws=20)
    assert twice.delta_totals["revenue"][0] == pytest.approx(once.delta_totals["revenue"][0],
                                                            rel=1e-9)


# ---------------------------------------------------------------------------- outputs
def test_to_dict_shape(onboarding: ScenarioResult) -> None:
    d = onboarding.to_dict()
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text) == d
    for k in ("baseline", "scenario", "delta"):
        assert set(d[k]) == set(TOTALS)
        for q in d[k].values():
            assert set(q) == QKEYS
    for k in ("npv", "cost", "payback_month"):
        assert set(d[k]) == QKEYS
    assert set(d["roi"]) == QKEYS
    assert 0.0 <= d["prob_npv_positive"] <= 1.0 and d["draws"] == DRAWS
    assert d["horizon_months"] == 12 and d["currency"] == "USD"
    m = d["monthly"]
    assert m["month"] == list(range(1, 13))
    for side in ("baseline", "scenario"):
        assert set(m[side]) == set(SERIES)
        assert all(len(v) == 12 for v in m[side].values())
    for q in [*m["delta"].values(), m["cost"], m["cumulative_npv"]]:
        assert set(q) == QKEYS and all(len(v) == 12 for v in q.values())
    assert d["delta"]["revenue"]["mean"] == pytest.approx(
        float(onboarding.delta_totals["revenue"].mean()))
    assert d["npv"]["p50"] == pytest.approx(float(np.median(onboarding.npv)))
    assert m["cost"]["mean"][0] == pytest.approx(5_500)
    assert d["initiatives"][0]["changes"] == ["onboarding_days -3"]
    s = d["sentence"]
    assert "Onboarding" in s and s.startswith("Investing $11k over 1 year")
    assert len([w for w in s.replace("%", " ").split() if any(c.isdigit() for c in w)]) >= 4


def test_subscription_book(sub_planner: Planner) -> None:
    s = scenario(initiative(cost={"upfront": 10_000}))
    r = run(sub_planner, s, draws=100)
    q = quantiles(r.delta_totals["revenue"])
    assert q["p5"] > 0
    assert (r.delta_totals["churn_rate"] < 0).all()
    assert (r.delta_totals["transactions"] > 0).all()  # renewal payments
    assert_allclose(r.npv, r.delta_totals["customer_equity"] - r.cost_pv, rtol=1e-9)
    worse = run(sub_planner, scenario(initiative(shift=3.0)), draws=20)
    assert worse.delta_totals["revenue"][0] < 0 < r.delta_totals["revenue"][0]
    json.dumps(r.to_dict(), allow_nan=False)


# ---------------------------------------------------------------------------- bad scenarios
@pytest.mark.parametrize(("ini", "horizon", "match"), [
    (initiative(driver="onboardingdays"), 12, "not a driver of the book.*did you mean "
                                              "'onboarding_days'"),
    (initiative(target={"segment": "tiny"}), 12, "segment has no customer with 'tiny'"),
    (initiative(target={"region": "north"}), 12, "no customer feature 'region'"),
    (initiative(target={"segment": "smb", "employees": {"min": 1e9}}), 12,
     "matches no customer"),
    (initiative(), 36, "horizon_months 36 is beyond the 24 months prepared"),
])
def test_bad_scenarios(planner: Planner, ini: dict[str, Any], horizon: int, match: str) -> None:
    s = scenario(ini, horizon=horizon)
    with pytest.raises(SpecError, match=match):
        planner.check(s)
    with pytest.raises(SpecError, match=match):
        planner.simulate(s, draws=10)


# ---------------------------------------------------------------------------- plan
def test_compare_ranks_by_mean_npv(planner: Planner) -> None:
    ss = [scenario(initiative(shift=-1.0, cost={"upfront": 1_000}), name="Small"),
          scenario(initiative(shift=-6.0, cost={"upfront": 1_000}), name="Large"),
          scenario(initiative(name="Placebo", driver="employees", shift=5.0,
                              cost={"upfront": 50_000}), name="Placebo")]
    rep = compare(planner, ss, draws=100, seed=3)
    ranking = rep["ranking"]
    assert [r["name"] for r in ranking] == ["Large", "Small", "Placebo"]
    means = [r["npv"]["mean"] for r in ranking]
    assert means == sorted(means, reverse=True)
    assert sum(r["prob_best"] for r in ranking) == pytest.approx(1.0)
    assert [r["rank"] for r in ranking] == [1, 2, 3]
    by_name = {d["name"]: d for d in rep["scenarios"]}
    for r in ranking:
        assert r["npv"]["mean"] == pytest.approx(by_name[r["name"]]["npv"]["mean"])
    json.dumps(rep, allow_nan=False)


def test_optimize_portfolio(planner: Planner) -> None:
    ss = [scenario(initiative("Onboarding", cost={"upfront": 5_000}), name="A",
                   new_customers="none"),
          scenario(initiative("Training", driver="training_hours", shift=5.0,
                              cost={"upfront": 10_000}),
                   initiative("Placebo", driver="employees", shift=5.0,
                              cost={"upfront": 20_000}), name="B", new_customers="none")]
    rep = optimize_portfolio(planner, ss, 12_000, draws=60, seed=4)
    cands = {c["name"]: c for c in rep["candidates"]}
    assert set(cands) == {"Onboarding", "Training", "Placebo"}
    mean = {n: c["npv"]["mean"] for n, c in cands.items()}
    assert mean["Onboarding"] > 0 and mean["Training"] > 0 > mean["Placebo"], mean
    # within 12,000 only one of the two real initiatives fits (5,000 + 10,000): the better one
    p = rep["portfolio"]
    assert p["cost"] <= 12_000
    assert p["names"] == [max(("Onboarding", "Training"), key=mean.__getitem__)]
    joint = rep["joint"]
    assert joint is not None and joint["name"] == "Optimised portfolio"
    assert joint["npv"]["mean"] == pytest.approx(p["npv"]["mean"], rel=1e-9)  # alone = together
    assert [f["cost"] for f in rep["frontier"]] == sorted(f["cost"] for f in rep["frontier"])
    json.dumps(rep, allow_nan=False)
    # a large budget takes both real initiatives, not the placebo; simulated together they are
    # worth about the sum of their values alone (the same customers, nearly additive effects)
    big = optimize_portfolio(planner, ss, 1e6, draws=60, seed=4)
    assert sorted(big["portfolio"]["names"]) == ["Onboarding", "Training"]
    assert big["portfolio"]["cost"] == pytest.approx(15_000)
    assert big["joint"]["npv"]["mean"] == pytest.approx(mean["Onboarding"] + mean["Training"],
                                                        rel=0.1)
    none = optimize_portfolio(planner, ss, 0.0, draws=20, seed=4)
    assert none["portfolio"]["names"] == [] and none["joint"] is None


def test_optimize_needs_one_shape(planner: Planner) -> None:
    ss = [scenario(initiative("A"), name="A", horizon=12),
          scenario(initiative("B"), name="B", horizon=24)]
    with pytest.raises(SpecError, match="must share horizon_months"):
        optimize_portfolio(planner, ss, 1e6, draws=10)
    with pytest.raises(SpecError, match="no initiatives"):
        optimize_portfolio(planner, [scenario(name="Empty")], 1e6, draws=10)
