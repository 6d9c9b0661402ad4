"""Estimate.impact on a synthetic book with planted effects: signs, zero steps, additivity over
customers, the point-estimate draw, experiment evidence; assess and quantiles."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from cxasset.book import Workspace
from cxasset.exceptions import ModelDataError
from cxasset.valuemap.build import Z975, assess, quantiles
from cxasset.valuemap.estimate import Estimate, Evidence, estimate


def test_estimate_supports_every_mechanism(vm_est: Estimate) -> None:
    assert vm_est.mechanisms == ["purchase_rate", "dropout", "spend", "cost_to_serve",
                                 "referrals"]
    assert vm_est.referred_value is not None and vm_est.referred_value > 0
    assert vm_est.equity > 0
    assert list(vm_est.design.drivers) == ["onboarding_days", "nps", "ces", "training_hours"]
    for fit in vm_est.fits.values():
        assert fit.terms == vm_est.design.terms
        assert np.all(np.isfinite(fit.coef)) and np.all(np.diag(fit.cov) > 0)


def test_planted_onboarding_effects(vm_est: Estimate) -> None:
    """The synthetic book plants slower onboarding -> more dropout and fewer purchases."""
    b, se, p = vm_est.fits["dropout"].effect("onboarding_days", vm_est.design)
    assert b > 0 and p < 1e-6
    b, se, p = vm_est.fits["purchase_rate"].effect("onboarding_days", vm_est.design)
    assert b < 0 and p < 1e-3
    slower = vm_est.impact("onboarding_days", "dropout", 3.0, draws=200)
    assert slower[0] < 0 and np.percentile(slower, 95) < 0
    faster = vm_est.impact("onboarding_days", "dropout", -3.0, draws=200)
    assert faster[0] > 0 and np.percentile(faster, 5) > 0
    assert vm_est.impact("onboarding_days", "purchase_rate", -3.0, draws=1)[0] > 0


@pytest.mark.parametrize("mechanism", ["purchase_rate", "dropout", "spend", "cost_to_serve",
                                       "referrals"])
def test_zero_step_and_additivity(vm_est: Estimate, mechanism: str) -> None:
    zero = vm_est.impact("nps", mechanism, 0.0, draws=20)
    np.testing.assert_array_equal(zero, np.zeros(20))
    whole = vm_est.impact("nps", mechanism, 1.5, draws=20, seed=4)
    half = np.random.default_rng(1).random(len(vm_est.scored)) < 0.5
    parts = (vm_est.impact("nps", mechanism, 1.5, draws=20, seed=4, rows=half)
             + vm_est.impact("nps", mechanism, 1.5, draws=20, seed=4, rows=~half))
    np.testing.assert_allclose(parts, whole, rtol=1e-9, atol=1e-6)
    nobody = vm_est.impact("nps", mechanism, 1.5, draws=5, rows=np.zeros(len(half), bool))
    np.testing.assert_array_equal(nobody, np.zeros(5))


def test_first_draw_is_the_point_estimate(vm_est: Estimate) -> None:
    draws = vm_est.impact("onboarding_days", "spend", -3.0, draws=50, seed=9)
    terms, dz = vm_est.term_shift("onboarding_days", -3.0)
    fit = vm_est.fits["spend"]
    b = fit.coef[[fit.terms.index(t) for t in terms]]
    resp = vm_est.responses["spend"]
    assert resp.base is not None
    point = resp.scale * np.sum(resp.base * np.expm1(dz @ b))
    assert draws[0] == pytest.approx(point, rel=1e-12)
    assert np.std(draws[1:]) > 0
    again = vm_est.impact("onboarding_days", "spend", -3.0, draws=50, seed=9)
    np.testing.assert_array_equal(draws, again)  # seeded


def test_term_shift_leaves_non_respondents_alone(vm_est: Estimate) -> None:
    terms, dz = vm_est.term_shift("nps", 1.0)
    assert terms == ["nps"]
    missing = vm_est.design.frame["nps:missing"].to_numpy()[vm_est.scored] == 1
    assert missing.any()
    np.testing.assert_array_equal(dz[missing, 0], 0.0)
    x = vm_est.design.raw("nps")[vm_est.scored]
    sd = vm_est.design.drivers["nps"].sd
    moved = ~missing & (x <= 9)  # nps tops out at 10
    np.testing.assert_allclose(dz[moved, 0] * sd, 1.0, rtol=1e-9)


def test_override_evidence_sets_the_spread(vm_est: Estimate) -> None:
    sd = vm_est.design.drivers["onboarding_days"].sd
    rng = np.random.default_rng(0)
    ev = Evidence(effect=-0.05, std_err=0.02, use="override")
    c = vm_est.coefficient_draws("dropout", ["onboarding_days"], 4000, rng, ev)[:, 0]
    assert c[0] == pytest.approx(-0.05 * sd, rel=1e-12)
    assert np.mean(c) / sd == pytest.approx(-0.05, abs=0.002)
    assert np.std(c) / sd == pytest.approx(0.02, rel=0.06)
    # the money follows: a precise experiment gives a narrow interval, a vague one a wide one
    narrow = vm_est.impact("onboarding_days", "dropout", 3.0, draws=400,
                           evidence=Evidence(-0.05, 0.001, "override"))
    wide = vm_est.impact("onboarding_days", "dropout", 3.0, draws=400,
                         evidence=Evidence(-0.05, 0.02, "override"))
    assert narrow[0] == pytest.approx(wide[0], rel=1e-12) and narrow[0] > 0  # -0.05: less dropout
    spread = [np.percentile(x, 95) - np.percentile(x, 5) for x in (narrow, wide)]
    assert spread[1] > 10 * spread[0]


def test_combined_evidence_is_precision_weighted(vm_est: Estimate) -> None:
    fit = vm_est.fits["dropout"]
    i = fit.terms.index("ces")
    sd = vm_est.design.drivers["ces"].sd
    b, v = fit.coef[i], fit.cov[i, i]
    ev = Evidence(effect=0.2, std_err=0.05, use="combine")
    e, ve = 0.2 * sd, (0.05 * sd) ** 2
    c = vm_est.coefficient_draws("dropout", ["ces"], 3, np.random.default_rng(0), ev)
    assert c[0, 0] == pytest.approx((b / v + e / ve) / (1 / v + 1 / ve), rel=1e-12)
    r = assess(vm_est, "ces", "dropout", -0.5, evidence=ev, draws=50)
    w_o, w_x = 1 / (v / sd**2), 1 / 0.05**2
    assert r.effect == pytest.approx((w_o * b / sd + w_x * 0.2) / (w_o + w_x), rel=1e-9)
    assert r.std_err == pytest.approx((w_o + w_x) ** -0.5, rel=1e-9)
    assert r.evidence == "observational+experiment"


def test_assess(vm_est: Estimate) -> None:
    r = assess(vm_est, "onboarding_days", "dropout", -3.0, label="Onboarding time", unit="days",
               draws=100)
    b, se, p = vm_est.fits["dropout"].effect("onboarding_days", vm_est.design)
    assert (r.effect, r.std_err, r.p_value) == (b, se, p)
    assert r.evidence == "observational" and r.outcome == "retention"
    d = r.to_dict()
    assert d["effect"]["ci95"] == pytest.approx([b - Z975 * se, b + Z975 * se])
    imp = d["impact"]
    assert imp["p5"] <= imp["p50"] <= imp["p95"]
    assert imp["estimate"] == pytest.approx(
        vm_est.impact("onboarding_days", "dropout", -3.0, draws=1)[0], rel=1e-12)
    # one unit of a lower-is-better driver: the sign flips with the step
    assert np.sign(d["impact_per_unit"]["estimate"]) == -np.sign(imp["estimate"])
    over = assess(vm_est, "onboarding_days", "dropout", -3.0,
                  evidence=Evidence(0.01, 0.004, "override"), draws=20, per_unit=False)
    assert (over.effect, over.std_err, over.evidence) == (0.01, 0.004, "experiment")
    assert over.p_value == pytest.approx(0.012419330651552318, rel=1e-6)  # z = 2.5
    assert over.impact_per_unit == {}


def test_quantiles() -> None:
    q = quantiles(np.array([5.0, 1.0, 2.0, 3.0, 4.0]))
    assert q == {"estimate": 5.0, "p5": pytest.approx(1.2), "p50": 3.0,
                 "p95": pytest.approx(4.8), "mean": 3.0}


def test_estimate_unknown_driver(vm_ws: Path) -> None:
    with Workspace(vm_ws) as ws, pytest.raises(ModelDataError, match="'happiness' is not a"):
        estimate(ws, ["happiness"])


def test_threshold_terms_do_not_warn(vm_ws: Path) -> None:
    with Workspace(vm_ws) as ws, warnings.catch_warnings():
        warnings.simplefilter("error")
        est = estimate(ws, None, thresholds={"engagement_per_period": 0.3749102167688802})
    assert np.isfinite(est.equity)
