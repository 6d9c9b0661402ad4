"""Mechanism models and responses: exact Response arithmetic, the Poisson GLM against
statsmodels, and the purchase responses against the CLV of :mod:`cxasset.valuation.clv`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import integrate

from cxasset.exceptions import ModelDataError
from cxasset.valuation.clv import customer_value
from cxasset.valuemap.drivers import build_design
from cxasset.valuemap.estimate import RFM, Estimate, fit_spend
from cxasset.valuemap.mechanisms import (
    GRID,
    MechanismFit,
    Response,
    _filled,
    _quantile_drop_table,
    _time_weights,
    _value_of_curve,
    fit_purchase,
    poisson_glm,
    prefixed,
    purchase_params,
)

MID = len(GRID) // 2


# --------------------------------------------------------------------------- Response
def test_base_response_is_exact() -> None:
    base = np.array([10.0, 20.0, 5.0])
    r = Response(base=base, scale=3.0)
    d = np.array([0.1, -0.2, 0.5])
    assert r.change(d) == pytest.approx(3.0 * np.sum(base * (np.exp(d) - 1)), rel=1e-14)
    assert r.change(np.zeros(3)) == 0.0
    dd = np.column_stack([d, 2 * d, np.zeros(3)])
    np.testing.assert_allclose(r.change(dd), [r.change(d), r.change(2 * d), 0.0], rtol=1e-14)


def test_table_response_interpolates_by_local_cubics() -> None:
    rng = np.random.default_rng(0)
    tab = np.cumsum(rng.uniform(0, 1, (4, len(GRID))), axis=1)
    r = Response(table=tab, scale=2.0)
    zero = tab[:, MID]
    for j in (0, 3, MID, len(GRID) - 1):  # at grid points: exact
        got = r.change(np.full(4, GRID[j]))
        assert got == pytest.approx(2.0 * np.sum(tab[:, j] - zero), rel=1e-12)
    # per customer a different point, between grid points: the cubic through the 4 nearest
    # grid points (the first or last 4 at the ends)
    j = np.array([0, 5, 9, 15])
    w = np.array([0.25, 0.5, 0.9, 0.7])
    d = GRID[j] + w * (GRID[1] - GRID[0])
    f = np.empty(4)
    for i in range(4):
        first = min(max(j[i] - 1, 0), len(GRID) - 4)
        k = np.arange(first, first + 4)
        f[i] = np.polyval(np.polyfit(GRID[k], tab[i, k], 3), d[i])
    assert r.change(d) == pytest.approx(2.0 * np.sum(f - zero), rel=1e-9)
    # beyond the grid: clipped, not extrapolated
    assert r.change(np.full(4, 5.0)) == pytest.approx(r.change(np.full(4, GRID[-1])), rel=1e-12)
    assert r.change(np.full(4, -9.0)) == pytest.approx(r.change(np.full(4, GRID[0])), rel=1e-12)
    # (n, draws) deltas: one total per draw
    dd = np.column_stack([d, np.zeros(4), np.full(4, GRID[2])])
    np.testing.assert_allclose(r.change(dd), [r.change(d), 0.0, r.change(np.full(4, GRID[2]))],
                               rtol=1e-12)


def test_table_and_base_agree_for_exponential_table() -> None:
    base = np.array([3.0, 7.0])
    tab = base[:, None] * np.exp(GRID)[None, :]
    d = np.array([GRID[4], GRID[12]])
    assert Response(table=tab).change(d) == pytest.approx(Response(base=base).change(d),
                                                          rel=1e-12)


def test_response_makes_only_the_cells_a_valuation_reads() -> None:
    """A response given as ``make`` computes, for each customer, the grid columns around the
    shifts it is asked to value (and no shift), once each, with the same result as the whole
    table; customers a step moves far (across a threshold) alone get the far columns."""
    rng = np.random.default_rng(3)
    n = 50
    full = np.cumsum(rng.uniform(0, 1, (n, len(GRID))), axis=1)
    made = np.zeros(full.shape, int)

    def make(cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
        made[np.ix_(rows, cols)] += 1
        return full[np.ix_(rows, cols)]

    lazy, whole = Response(make=make, scale=2.0, rows=n), Response(table=full, scale=2.0)
    d = rng.uniform(-0.2, 0.2, (n, 30))
    assert lazy.change(d) == pytest.approx(whole.change(d), rel=1e-12)
    assert set(np.flatnonzero(made.any(axis=0))) == {MID - 2, MID - 1, MID, MID + 1, MID + 2}
    # grouped customers (change_of): 10 of them move 20x further, and alone read far columns
    dz = np.repeat(np.array([[0.0], [1.0], [20.0]]), [20, 20, 10], axis=0)
    coefs = rng.normal(0.05, 0.01, (40, 1))
    np.testing.assert_allclose(lazy.change_of(dz, coefs), whole.change_of(dz, coefs),
                               rtol=1e-12)
    assert made.max() == 1  # nothing made twice
    far = made[:, MID + 3:].any(axis=1)
    assert far[40:].all() and not far[:40].any()
    np.testing.assert_array_equal(lazy.at_zero(), full[:, MID])
    np.testing.assert_array_equal(lazy.table, full)  # every cell on request


def test_table_response_small_steps_of_a_convex_value() -> None:
    """A rate's value grows like exp(delta): a straight line between grid points 0.25 apart
    overstated a 2% change by 12%; the cubic is within 0.2% of it."""
    base = np.array([3.0, 7.0])
    tab = base[:, None] * np.exp(GRID)[None, :]
    for step in (0.02, -0.05, 0.13, -0.6):
        d = np.full(2, step)
        assert Response(table=tab).change(d) == pytest.approx(Response(base=base).change(d),
                                                              rel=2e-3)


def test_filled_carries_nearest_value() -> None:
    t = np.array([[1.0, np.nan, 3.0, np.nan], [np.nan, 2.0, 2.5, 4.0], [np.nan] * 4])
    np.testing.assert_array_equal(_filled(t), [[1, 1, 3, 3], [2, 2, 2.5, 4], [0, 0, 0, 0]])
    ok = np.ones((2, 3))
    assert _filled(ok) is ok


# --------------------------------------------------------------------------- MechanismFit
def test_effect_is_per_unit_of_the_driver() -> None:
    f = pd.DataFrame({"customer_id": np.arange(100), "x": np.arange(100.0) * 2})
    d = build_design(f, ["x"], [])
    sd = d.drivers["x"].sd
    fit = MechanismFit("dropout", ["x", "c"], np.array([0.5, 1.0]),
                       np.diag([0.04, 1.0]), 100, "test")
    b, se, p = fit.effect("x", d)
    assert (b, se) == pytest.approx((0.5 / sd, 0.2 / sd), rel=1e-14)
    assert p == pytest.approx(2 * 0.006209665325776132, rel=1e-9)  # 2 * Phi(-2.5)
    assert fit.effect("c", d)[:2] == (1.0, 1.0)  # a 0/1 term: per unit of itself


# --------------------------------------------------------------------------- Poisson GLM
def simulated_counts(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray,
                                                             pd.DataFrame]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"z": rng.normal(size=n), "flag": (rng.random(n) < 0.3).astype(float)})
    exposure = rng.uniform(0.5, 10, n)
    mu = exposure * np.exp(-1.0 + 0.4 * x["z"] + np.log(1.5) * x["flag"])
    y = rng.poisson(mu * rng.gamma(2.0, 0.5, n)).astype(float)  # overdispersed
    return y, exposure, x


def test_poisson_glm_matches_statsmodels() -> None:
    y, exposure, x = simulated_counts()
    exposure[:50] = 0.0  # no exposure: not fitted
    fit = poisson_glm(y, exposure, x, "cost_to_serve")
    ok = exposure > 0
    ref = sm.GLM(y[ok], sm.add_constant(x[ok].to_numpy()), family=sm.families.Poisson(),
                 offset=np.log(exposure[ok])).fit(cov_type="HC0")
    np.testing.assert_allclose(fit.coef, ref.params[1:], rtol=0, atol=1e-8)
    assert fit.intercept == pytest.approx(ref.params[0], abs=1e-8)
    np.testing.assert_allclose(fit.cov, np.asarray(ref.cov_params())[1:, 1:], rtol=1e-6)
    assert fit.n_obs == ok.sum() and fit.terms == ["z", "flag"] and fit.notes == []
    assert fit.name == "cost_to_serve" and fit.model == "poisson_glm"


def test_poisson_glm_recovers_planted_rate_ratio() -> None:
    y, exposure, x = simulated_counts(n=20_000, seed=1)
    fit = poisson_glm(y, exposure, x, "referrals")
    b, se = fit.coef[1], np.sqrt(fit.cov[1, 1])
    assert abs(b - np.log(1.5)) < 4 * se
    assert se < 0.03
    assert abs(fit.coef[0] - 0.4) < 4 * np.sqrt(fit.cov[0, 0])
    # sandwich errors exceed the model-based ones under overdispersion
    naive = sm.GLM(y, sm.add_constant(x.to_numpy()), family=sm.families.Poisson(),
                   exposure=exposure).fit()
    assert se > 1.2 * naive.bse[2]


def test_poisson_glm_without_events() -> None:
    _, exposure, x = simulated_counts(n=200)
    with pytest.raises(ModelDataError, match="referrals: nobody has any event"):
        poisson_glm(np.zeros(200), exposure, x, "referrals")


def test_prefixed() -> None:
    df = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0], "c": [5.0, 6.0]})
    out = prefixed(df, ["a", "b"], ["alpha", "a"])
    assert list(out.columns) == ["alpha:a", "alpha:b", "a:a", "a:b"]
    np.testing.assert_array_equal(out["a:b"], [3.0, 4.0])


# --------------------------------------------------------------------------- purchase responses
def test_value_of_curve() -> None:
    disc = 0.9 ** np.arange(1, 6)

    def g(h: np.ndarray) -> np.ndarray:
        return np.vstack([h**2, np.sqrt(h)])

    h = np.arange(6.0)
    want = [np.sum(np.diff(h**2) * disc), np.sum(np.diff(np.sqrt(h)) * disc)]
    np.testing.assert_allclose(_value_of_curve(g, 5, disc), want, rtol=1e-14)


def test_time_weights() -> None:
    h = np.arange(0, 53.0)
    g = np.vstack([1 - np.exp(-h / 20), np.sqrt(h)])
    for rate in (0.0, 0.002, 0.01):
        disc = (1 + rate) ** -np.arange(1, 53.0)
        t, w = _time_weights(disc)
        want = np.diff(g, axis=1) @ disc
        got = np.vstack([1 - np.exp(-t / 20), np.sqrt(t)]) @ w
        np.testing.assert_allclose(got, want, rtol=1e-3 if rate else 1e-14)
        if rate == 0.0:  # undiscounted: only the last period counts
            assert list(t) == [52.0]


def _bg_expected(a: float, b: float, r: float, alpha: float, x: float, T: float, t: float
                 ) -> float:
    """E[purchases in (T, T+t] | alive] of BG/NBD (p ~ Beta(a, b + x) given alive)."""
    from scipy import stats

    def f(p: float) -> float:
        return (-np.expm1(-(r + x) * np.log1p(p * t / (alpha + T))) / p
                * stats.beta.pdf(p, a, b + x))
    return integrate.quad(f, 0, 1, limit=200, points=[1e-6, 1e-3, 0.1])[0]


def test_dropout_table_keeps_the_customers_quantile() -> None:
    """Dropout ``a`` times ``c``: the customer's ``p`` moves to the same quantile of
    ``Beta(a c, b)``, averaged over its posterior ``Beta(a, b + x)`` (checked by adaptive
    quadrature: 12 nodes are within 3e-4 of the value and 3e-3 of its change); a customer without
    repeat purchases has the prior as posterior, so their future is the model's with ``a c``."""
    from scipy import special, stats

    r, alpha, b, horizon = 0.75, 9.0, 3.2, 52
    a = np.array([0.7, 0.7, 2.0, 0.3])
    x = np.array([0.0, 6.0, 15.0, 40.0])
    T = np.array([60.0, 80.0, 70.0, 100.0])
    tab = _quantile_drop_table({"r": r, "alpha": alpha, "a": a, "b": b}, x, T, 0, horizon,
                               np.ones(horizon))

    def value(i: int, c: float) -> float:
        def f(p: float) -> float:
            q = special.betaincinv(a[i] * c, b, special.betainc(a[i], b, p))
            return (-np.expm1(-(r + x[i]) * np.log1p(q * horizon / (alpha + T[i]))) / q
                    * stats.beta.pdf(p, a[i], b + x[i]))
        return integrate.quad(f, 0, 1, limit=200, points=[1e-6, 1e-3, 0.1])[0]

    for i in range(len(x)):
        want0 = value(i, 1.0)
        assert tab[i, MID] == pytest.approx(want0, rel=3e-4)
        for g in (MID - 4, MID - 1, MID + 1, MID + 4):
            c = np.exp(GRID[g])
            assert tab[i, g] - tab[i, MID] == pytest.approx(value(i, c) - want0, rel=3e-3)
            if i == 0:  # no repeat purchase: p' ~ Beta(a c, b), the model's own future
                assert value(i, c) == pytest.approx(_bg_expected(a[0] * c, b, r, alpha, 0.0,
                                                                 T[0], horizon), rel=1e-6)
    assert (np.diff(tab, axis=1) < 0).all()  # more dropout, fewer purchases


def refit(est: Estimate) -> tuple[object, object, pd.DataFrame]:
    """The estimate's purchase and spend models fitted again, and the scored customers' data."""
    f, terms, cls = est.features, est.design.terms, est.purchase_cls
    pp = purchase_params(cls())

    def data(rows: np.ndarray) -> pd.DataFrame:
        return pd.concat([f[[*RFM, "monetary_value"]].iloc[rows].reset_index(drop=True),
                          prefixed(est.design.frame.iloc[rows].reset_index(drop=True), terms,
                                   [*pp.values(), "gamma"])], axis=1)

    fdata = data(est.fit_rows)
    model, fits = fit_purchase(cls, fdata, terms)
    for m in ("purchase_rate", "dropout"):
        np.testing.assert_allclose(fits[m].coef, est.fits[m].coef, rtol=1e-10)
    spend, _ = fit_spend(fdata, terms)
    return model, spend, data(est.scored)


def test_equity_is_the_zero_shift_of_the_purchase_response(vm_est: Estimate) -> None:
    r = vm_est.responses["purchase_rate"]
    assert r.table is not None
    assert vm_est.equity == pytest.approx(r.scale * r.table[:, MID].sum(), rel=1e-12)
    spend = vm_est.responses["spend"]
    assert spend.base is not None
    np.testing.assert_allclose(spend.base, r.table[:, MID], rtol=1e-12)
    d = vm_est.responses["dropout"]
    assert d.table is not None
    # the dropout table is evaluated at whole periods, the rate table interpolated on a fine
    # grid of times: the same value to the interpolation error (about 4e-4)
    np.testing.assert_allclose(d.table[:, MID], r.table[:, MID], rtol=2e-3)
    assert r.scale == pytest.approx(len(vm_est.features) / len(vm_est.scored))


def test_purchase_response_at_zero_is_the_clv(vm_est: Estimate) -> None:
    """margin * spend * DET of the same fitted models: cxasset.valuation.clv and a direct sum
    of conditional_expected_purchases."""
    model, spend, sdata = refit(vm_est)
    s = vm_est.settings
    clv0 = vm_est.responses["purchase_rate"].table[:, MID]  # type: ignore[index]
    v = customer_value(model, spend, sdata, s, interval=False)
    np.testing.assert_allclose(clv0, v.customers["clv"].to_numpy(), rtol=2e-3, atol=1e-6)
    assert clv0.sum() == pytest.approx(v.customers["clv"].sum(), rel=5e-4)

    h = np.arange(1, s.horizon + 1, dtype=float)
    cum = np.column_stack([np.zeros(len(sdata))]
                          + [model.conditional_expected_purchases(t, sdata) for t in h])
    det = np.diff(cum, axis=1) @ (1 + s.period_rate) ** -h
    direct = s.margin_rate * spend.conditional_expected_average_profit(sdata) * det
    np.testing.assert_allclose(clv0, direct, rtol=2e-3, atol=1e-6)


def test_purchase_rate_up_adds_value_dropout_up_destroys_it(vm_est: Estimate) -> None:
    rate = vm_est.responses["purchase_rate"].table
    drop = vm_est.responses["dropout"].table
    assert rate is not None and drop is not None
    assert np.isfinite(rate).all() and np.isfinite(drop).all() and (rate >= 0).all()
    tol = 1e-9 * rate.max()
    assert (np.diff(rate, axis=1) >= -tol).all()  # every customer, every grid step
    assert (np.diff(drop, axis=1) <= tol).all()
    assert np.diff(rate.sum(axis=0)).min() > 0
    assert np.diff(drop.sum(axis=0)).max() < 0
    # BG/NBD purchase rate c times higher: the value is below c times the value (discounting
    # and dropout come sooner in event time) and above the value itself
    assert rate[:, MID + 2].sum() < np.exp(GRID[MID + 2]) * rate[:, MID].sum()
