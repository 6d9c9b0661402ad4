"""MBG/NBD: CDNOW fit (BTYDplus), cross-check against lifetimes' ModifiedBetaGeoFitter."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxasset.exceptions import NotFittedError
from cxasset.models.bgnbd import BetaGeoModel
from cxasset.models.mbgnbd import ModifiedBetaGeoModel
from reference import cdnow as ref

from .test_bgnbd import NEAR_ONE, check_continuous_at_a1, check_covariates_at_a1

RFM = ["frequency", "recency", "T"]
NAMES = ("r", "alpha", "a", "b")


@pytest.fixture(scope="module")
def fitted(cdnow: pd.DataFrame) -> ModifiedBetaGeoModel:
    return ModifiedBetaGeoModel().fit(cdnow)


def test_cdnow_fit_matches_btydplus(fitted: ModifiedBetaGeoModel) -> None:
    assert fitted.result_.converged
    for k, v in ref.MBGNBD_PUBLISHED.items():
        assert fitted.params_[k] == pytest.approx(v, abs=1e-3), k
    assert fitted.result_.log_likelihood == pytest.approx(ref.MBGNBD_LL, abs=1e-3)
    # on CDNOW the MBG/NBD fits slightly better than BG/NBD with as many parameters
    assert fitted.result_.log_likelihood > ref.BGNBD_LL


def test_matches_lifetimes(cdnow: pd.DataFrame, fitted: ModifiedBetaGeoModel) -> None:
    lifetimes = pytest.importorskip("lifetimes")
    x, tx, T = (cdnow[c].to_numpy(float) for c in RFM)
    t = np.array([1.0, 10.0, 39.0, 78.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lt = lifetimes.ModifiedBetaGeoFitter().fit(x, tx, T)
        lt_pa = lt.conditional_probability_alive(x, tx, T)
        lt_ce = lt.conditional_expected_number_of_purchases_up_to_time(39.0, x, tx, T)
        lt_ue = lt.expected_number_of_purchases_up_to_time(t)
    for k in NAMES:
        assert fitted.params_[k] == pytest.approx(lt.params_[k], rel=1e-4), k
    np.testing.assert_allclose(fitted.probability_alive(cdnow), lt_pa, rtol=1e-4)
    np.testing.assert_allclose(fitted.conditional_expected_purchases(39.0, cdnow), lt_ce,
                               rtol=1e-4)
    same = ModifiedBetaGeoModel.from_params(**{k: float(lt.params_[k]) for k in NAMES})
    np.testing.assert_allclose(same.probability_alive(cdnow), lt_pa, rtol=1e-10)
    np.testing.assert_allclose(same.conditional_expected_purchases(39.0, cdnow), lt_ce,
                               rtol=1e-10)
    np.testing.assert_allclose(same.expected_purchases(t), lt_ue, rtol=1e-10)


def test_one_time_buyers_may_be_dead(cdnow: pd.DataFrame, fitted: ModifiedBetaGeoModel) -> None:
    once = cdnow[cdnow["frequency"] == 0]
    pa = fitted.probability_alive(once)
    assert np.all(pa < 1) and np.all(pa > 0)
    # BG/NBD says every one-time buyer is alive (lifetimes #239)
    assert np.all(BetaGeoModel().fit(cdnow).probability_alive(once) == 1)
    # older one-time buyers are less likely alive
    two = pd.DataFrame({"frequency": [0.0, 0.0], "recency": [0.0, 0.0], "T": [10.0, 40.0]})
    p10, p40 = fitted.probability_alive(two)
    assert p40 < p10


def test_analytic_gradient_matches_numerical(cdnow: pd.DataFrame) -> None:
    from scipy.optimize import approx_fprime

    rng = np.random.default_rng(3)
    df = cdnow.assign(z=rng.standard_normal(len(cdnow)))
    m = ModifiedBetaGeoModel().fit(df, covariates={"alpha": ["z"], "b": ["z"]})
    theta = m._theta + 0.05
    _, grad = m._objective_grad(theta)
    np.testing.assert_allclose(grad, approx_fprime(theta, m._objective, 1e-6), rtol=1e-4,
                               atol=1e-2)


def test_summed_gradient_matches_numerical(cdnow: pd.DataFrame) -> None:
    """Without covariates the fit uses the summed likelihood over unique values: its total
    equals the per-row sum, its gradient central differences and the per-row gradient."""
    m = ModifiedBetaGeoModel().fit(cdnow)
    for theta in (m._theta, m._theta + np.array([0.3, -0.2, 0.4, -0.5]), m._theta - 0.3):
        val, grad = m._objective_grad(theta)
        assert val == pytest.approx(m._objective(theta), rel=1e-12)
        h = 1e-5
        num = np.array([(m._objective(theta + e) - m._objective(theta - e)) / (2 * h)
                        for e in np.eye(4) * h])
        np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-4)
        p = m._unpack(theta, m._arrays)
        ll, dp = m._ll_grad(p, m._arrays)
        total, dsum = m._summed_ll_grad(p, m._arrays, m._w)
        assert total == pytest.approx(float(np.sum(m._w * ll)), rel=1e-12)
        for k in NAMES:
            assert dsum[k] == pytest.approx(float(np.sum(m._w * dp[k])), rel=1e-9, abs=1e-6)


def test_large_sample_recovery() -> None:
    from .test_bgnbd import check_recovery, simulate_bgnbd

    truth = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
    df = simulate_bgnbd(200_000, truth, {}, seed=5, modified=True)[RFM]
    m = ModifiedBetaGeoModel().fit(df)
    assert m.result_.converged
    check_recovery(m, truth, rel=0.1)


def test_pairwise_predictions_equal_rowwise(cdnow: pd.DataFrame,
                                            fitted: ModifiedBetaGeoModel) -> None:
    """E[Y(t)] on many rows (computed once per unique (x, T)) equals row by row, and an array
    of horizons still broadcasts row by row."""
    ce = fitted.conditional_expected_purchases(39.0, cdnow)
    rows = [cdnow.iloc[i : i + 1] for i in range(0, len(cdnow), 29)]
    np.testing.assert_allclose(
        ce[::29], [fitted.conditional_expected_purchases(39.0, r)[0] for r in rows], rtol=1e-13)
    t = np.linspace(1.0, 52.0, len(cdnow))
    ce_t = fitted.conditional_expected_purchases(t, cdnow)
    np.testing.assert_allclose(
        ce_t[::29], [fitted.conditional_expected_purchases(t[i], cdnow.iloc[i : i + 1])[0]
                     for i in range(0, len(cdnow), 29)], rtol=1e-13)


@settings(max_examples=60, deadline=None)
@given(x=st.integers(0, 1000), tx_frac=st.floats(0, 1), T=st.floats(0.01, 1000),
       t=st.floats(0, 1000), r=st.floats(0.05, 5), alpha=st.floats(0.1, 100),
       a=st.one_of(st.floats(0.05, 5), st.sampled_from(NEAR_ONE)), b=st.floats(0.05, 10))
def test_predictions_are_valid(x: int, tx_frac: float, T: float, t: float, r: float,
                               alpha: float, a: float, b: float) -> None:
    m = ModifiedBetaGeoModel.from_params(r=r, alpha=alpha, a=a, b=b)
    one = pd.DataFrame({"frequency": [float(x)], "recency": [T * tx_frac if x else 0.0],
                        "T": [T]})
    pa = m.probability_alive(one)
    ce = m.conditional_expected_purchases(t, one)
    assert np.all((pa >= 0) & (pa <= 1))
    assert np.all(np.isfinite(ce)) and np.all(ce >= 0)


def test_continuous_at_a_equal_1() -> None:
    """At a = 1 the expectations are the limit (p ~ Beta(1, b+x+1) given alive: the customer
    also survived the first purchase), and continuous across it."""
    check_continuous_at_a1(ModifiedBetaGeoModel, extra=1)


def test_covariates_with_a_equal_1() -> None:
    check_covariates_at_a1(ModifiedBetaGeoModel, modified=True)


def test_not_fitted(cdnow: pd.DataFrame) -> None:
    with pytest.raises(NotFittedError, match="not fitted yet"):
        ModifiedBetaGeoModel().probability_alive(cdnow)
    with pytest.raises(NotFittedError):
        ModifiedBetaGeoModel().expected_purchases(10.0)
