"""Robustness re-checks of levers (:mod:`cxasset.levers.robustness`) on a synthetic book with
planted effects: a planted lever passes all three checks, a claimed effect of the wrong sign is
called fragile with its reasons, and the parallel cross-fits give the sequential results."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cxasset.book import Workspace
from cxasset.levers import robustness
from cxasset.levers.robustness import check_levers
from cxasset.valuemap.estimate import Estimate, estimate

DRIVERS = ["onboarding_days", "training_hours", "employees", "csat", "engagement_per_period"]


@pytest.fixture(scope="module")
def est(synth_ws: Callable[..., Path]) -> Estimate:
    with Workspace(synth_ws(20_000, 3)) as ws:
        return estimate(ws, DRIVERS, max_score=2_000)


def test_planted_lever_is_robust(est: Estimate) -> None:
    """Onboarding raises dropout (planted, docs/synth.md): significant in the model, confirmed
    by double machine learning, no effect once shuffled, the same sign in both halves."""
    b, _, p = est.fits["dropout"].effect("onboarding_days", est.design)
    assert b > 0 and p < 1e-6
    r = check_levers(est, [("onboarding_days", "dropout", b)])[("onboarding_days", "dropout")]
    assert r.robust, r.reasons
    assert r.dml["estimate"] > 0 and r.dml["p_value"] < 0.05
    assert r.placebo_p > 0.05
    assert all(h > 0 for h in r.halves)


def test_wrong_sign_claim_is_fragile(est: Estimate) -> None:
    """A claimed effect opposite to the data's fails the halves and the second estimator."""
    b = est.fits["dropout"].effect("onboarding_days", est.design)[0]
    r = check_levers(est, [("onboarding_days", "dropout", -b)])[("onboarding_days", "dropout")]
    assert not r.robust
    assert any("halves" in why for why in r.reasons)
    assert any("second estimator" in why for why in r.reasons)


def test_parallel_cross_fits_equal_sequential(est: Estimate,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    pairs = [("onboarding_days", "dropout"), ("onboarding_days", "purchase_rate"),
             ("training_hours", "dropout"), ("csat", "spend")]
    rows = est.fit_rows[:3_000]
    monkeypatch.setattr(robustness, "PARALLEL_MIN_ROWS", 10**12)
    sequential = robustness.dml(est, pairs, rows, seed=4)
    monkeypatch.setattr(robustness, "PARALLEL_MIN_ROWS", 0)
    parallel = robustness.dml(est, pairs, rows, seed=4)
    assert sequential.keys() == parallel.keys() == set(pairs)
    for k in pairs:
        assert sequential[k] == parallel[k]
    assert np.isfinite([v["std_err"] for v in parallel.values()]).all()
