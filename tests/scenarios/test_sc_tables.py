"""Each customer's monthly future under shifts of a mechanism (cxasset.scenarios.tables).

Known answers come from the purchase models' own closed forms (BG/NBD, MBG/NBD and Pareto/NBD
``conditional_expected_purchases``, ``alive_curve``, ``expected_purchases``; Fader, Hardie & Lee
2005, Schmittlein, Morrison & Colombo 1987) evaluated at scaled times, from a Monte Carlo of the
BG/NBD story for the rank-preserving dropout map, and from ``shifted_survival`` for the discrete
hazard of subscription books. Fitted models are those of the ``planner`` fixture; published
parameters (CDNOW, lifetimes' tests) give models without covariates.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy import special

from cxasset.models.bgnbd import BetaGeoModel
from cxasset.models.gammagamma import GammaGammaModel
from cxasset.models.mbgnbd import ModifiedBetaGeoModel
from cxasset.models.paretonbd import ParetoNBDModel
from cxasset.scenarios.simulate import Planner
from cxasset.scenarios.tables import (
    MONTH_DAYS,
    RFM,
    SHIFTS,
    ZERO,
    Tables,
    customer_tables,
    interpolate,
    plain_models,
)
from cxasset.valuemap.mechanisms import prefixed, purchase_params
from cxasset.valuemap.retention import customer_age, shifted_survival

M = 24  # months tabulated in these tests (the planner fixture's horizon)
#: Published parameters (weekly CDNOW fits, lifetimes' tests): models without covariates.
BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
MBGNBD = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}
PNBD = {"r": 0.553, "alpha": 10.58, "s": 0.606, "beta": 11.67}
GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def model_data(est: Any, rows: np.ndarray, new: bool = False) -> pd.DataFrame:
    """The purchase model's frame for ``rows``, built as ``_purchase_tables`` builds it: RFM
    (zeros for new customers) and the design's terms once per model parameter."""
    model = est.models["purchase"]
    rfm = est.features[[*RFM, "monetary_value"]].iloc[rows].reset_index(drop=True)
    if new:
        rfm[:] = 0.0
    terms = prefixed(est.design.frame.iloc[rows].reset_index(drop=True), est.design.terms,
                     [*purchase_params(model).values(), "gamma"])
    return pd.concat([rfm, terms], axis=1)


def months_in_periods(est: Any, months: int = M) -> np.ndarray:
    """``t_m = m * MONTH_DAYS / period_days`` for m = 0..months."""
    return np.arange(months + 1) * MONTH_DAYS / est.settings.period_days


def expected(model: Any, t: np.ndarray, data: pd.DataFrame) -> np.ndarray:
    """``conditional_expected_purchases`` at every time of ``t``: (rows, len(t))."""
    return np.column_stack([model.conditional_expected_purchases(float(x), data) for x in t])


def fake_estimate(model: Any, features: pd.DataFrame) -> SimpleNamespace:
    """What ``customer_tables`` reads of an Estimate, for a purchase model without covariates
    (no design terms, no cost-to-serve or referral fits; weekly periods)."""
    return SimpleNamespace(
        models={"purchase": model, "spend": GammaGammaModel.from_params(**GG)},
        design=SimpleNamespace(frame=pd.DataFrame(index=features.index), terms=[]),
        features=features, settings=SimpleNamespace(period_days=7.0), fits={})


def param(p: dict[str, Any], name: str, i: int) -> float:
    """Row ``i``'s value of a parameter that is a scalar or one value per row."""
    v = np.asarray(p[name], dtype=float)
    return float(v if v.ndim == 0 else v[i])


@pytest.fixture(scope="module")
def est(planner: Planner) -> Any:
    """The mechanisms fitted on the attributes (BG/NBD with covariates on alpha and a)."""
    e = planner.parts[0].est
    assert type(e.models["purchase"]) is BetaGeoModel
    return e


@pytest.fixture(scope="module")
def rows(est: Any) -> np.ndarray:
    """80 scored customers, with the most and the least frequent buyers among them."""
    x = est.features["frequency"].to_numpy()[est.scored]
    pick = np.random.default_rng(11).choice(len(est.scored), 78, replace=False)
    return est.scored[np.unique(np.r_[pick, np.argmax(x), np.argmin(x)])]


@pytest.fixture(scope="module")
def tab(est: Any, rows: np.ndarray) -> Tables:
    return customer_tables(est, rows, M)


@pytest.fixture(scope="module")
def book_rfm(planner: Planner) -> pd.DataFrame:
    return planner.est.features


# ---------------------------------------------------------------------------- shift 0
def test_shift_zero_is_the_fitted_model(est: Any, rows: np.ndarray, tab: Tables) -> None:
    model = est.models["purchase"]
    data = model_data(est, rows)
    t = months_in_periods(est)
    E, S = expected(model, t, data), model.alive_curve(t, data)
    cum, alive = tab.cum["purchase_rate"][:, ZERO], tab.alive["purchase_rate"][:, ZERO]
    assert cum.shape == alive.shape == (len(rows), M + 1)
    # months 0..6 are evaluated exactly; later months are PCHIP between knots
    assert_allclose(cum[:, :7], E[:, :7], rtol=1e-9, atol=1e-12)
    assert_allclose(alive[:, :7], S[:, :7], rtol=1e-9)
    assert_allclose(cum[:, 1:], E[:, 1:], rtol=1e-3)
    assert_allclose(alive, S, rtol=1e-3, atol=2e-4)
    assert_array_equal(cum[:, 0], 0.0)
    assert_allclose(alive[:, 0], model.probability_alive(data), rtol=1e-12)
    # both purchase mechanisms share the baseline
    assert_allclose(tab.cum["dropout"][:, ZERO], cum, rtol=1e-12)
    assert_allclose(tab.alive["dropout"][:, ZERO], alive, rtol=1e-12)
    assert_allclose(tab.spend, est.models["spend"].conditional_expected_average_profit(data),
                    rtol=1e-12)
    assert tab.months == M and list(tab.rows) == list(rows)


def test_rate_shift_runs_the_future_faster(est: Any, rows: np.ndarray, tab: Tables) -> None:
    """BG/NBD purchase rate times c: E and S of the fitted model at time c * t_m."""
    model = est.models["purchase"]
    data = model_data(est, rows)
    t = months_in_periods(est)
    for g, d in enumerate(SHIFTS):
        c = np.exp(d)
        E, S = expected(model, c * t, data), model.alive_curve(c * t, data)
        assert_allclose(tab.cum["purchase_rate"][:, g, 1:], E[:, 1:], rtol=1e-3, err_msg=str(d))
        assert_allclose(tab.alive["purchase_rate"][:, g], S, rtol=3e-3, atol=2e-4,
                        err_msg=str(d))


def test_tables_are_monotone_in_time_and_shift(tab: Tables) -> None:
    for mech in ("purchase_rate", "dropout"):
        cum, alive = tab.cum[mech], tab.alive[mech]
        assert np.isfinite(cum).all() and np.isfinite(alive).all()
        assert (np.diff(cum, axis=2) >= -1e-12).all(), mech
        # the dropout map's 16-node quadrature is accurate to ~2e-4 relative; where survival
        # is almost flat (shifts -2, -1.4) that can show as a tiny rise, never within -1..2
        rise = np.diff(alive, axis=2)
        assert (rise[:, SHIFTS >= -1.0] <= 1e-12).all() and (rise <= 5e-4).all(), mech
        assert (alive >= 0).all() and (alive <= alive[:, :, :1] + 5e-4).all(), mech
        assert_allclose(alive[:, :, 0], alive[:, ZERO, :1].repeat(len(SHIFTS), axis=1))
    # a faster rate buys more and (dropout happening at purchases) dies sooner; a larger
    # dropout propensity buys less and dies sooner: strictly, at every month > 0
    assert (np.diff(tab.cum["purchase_rate"][:, :, 1:], axis=1) > 0).all()
    assert (np.diff(tab.alive["purchase_rate"][:, :, 1:], axis=1) < 0).all()
    assert (np.diff(tab.cum["dropout"][:, :, 1:], axis=1) < 0).all()
    assert (np.diff(tab.alive["dropout"][:, :, 1:], axis=1) < 0).all()


def test_planner_tables_stay_probabilities(planner: Planner) -> None:
    """With the plain models' levels (what ``prepare`` tabulates) a customer's P(alive) must
    still lie in [0, P(alive now)] and not rise over the months, at every shift."""
    for part in planner.parts:
        for tables in (part.base, part.new):
            for mech, alive in tables.alive.items():
                assert (alive <= alive[:, :, :1] + 1e-9).all(), (part.label, mech)
                assert (np.diff(alive, axis=2) <= 1e-9).all(), (part.label, mech)


# ---------------------------------------------------------------------------- dropout
@pytest.mark.parametrize("kind", ["bgnbd-fitted", "mbgnbd-cdnow"])
def test_dropout_map_matches_a_simulated_future(kind: str, est: Any, book_rfm: pd.DataFrame
                                               ) -> None:
    """Monte Carlo of the rank-preserving dropout map for a few customers: p from its posterior
    given alive, moved to the same quantile of Beta(a c, b); lambda from Gamma(r + x, alpha + T);
    purchases Poisson(lambda t) with dropout (probability p') after each. The table, divided by
    P(alive now), is the mean of purchases by t_m and of survival to t_m."""
    if kind == "bgnbd-fitted":
        e, k = est, 0
    else:
        e, k = fake_estimate(ModifiedBetaGeoModel.from_params(**MBGNBD), book_rfm), 1
    model = e.models["purchase"]
    x_all = e.features["frequency"].to_numpy()
    scored = np.arange(len(x_all)) if kind != "bgnbd-fitted" else e.scored
    rows = np.array([scored[np.argmin(np.abs(x_all[scored] - v))] for v in (0, 2, 8)])
    tab = customer_tables(e, rows, M)
    data = model_data(e, rows)
    p, p_alive = model.individual_params(data), model.probability_alive(data)
    shifts = [SHIFTS.tolist().index(v) for v in (-1.0, 0.0, 1.0)]
    months = [3, 12, 24]
    n = 100_000
    rng = np.random.default_rng(2024)
    for i in range(len(rows)):
        r, alpha, a, b = (param(p, nm, i) for nm in ("r", "alpha", "a", "b"))
        x, T = data["frequency"][i], data["T"][i]
        # the posterior given alive, and its quantile in the population's Beta(a, b)
        q = special.betainc(a, b, special.betaincinv(a, b + x + k, rng.random(n)))
        lam = rng.gamma(r + x, 1.0 / (alpha + T), n)
        v = rng.random(n)  # purchases until dropout: geometric, by inversion (common numbers)
        dies_at = {g: np.maximum(np.ceil(np.log(v) / np.log1p(
            -special.betaincinv(a * np.exp(SHIFTS[g]), b, q))), 1) for g in shifts}
        for m in months:
            bought = rng.poisson(lam * m * MONTH_DAYS / 7.0)
            for g in shifts:
                for what, y, y0 in (
                        ("cum", np.minimum(bought, dies_at[g]), np.minimum(bought, dies_at[ZERO])),
                        ("alive", bought < dies_at[g], bought < dies_at[ZERO])):
                    table = tab.cum if what == "cum" else tab.alive
                    want = table["dropout"][i, g, m] / p_alive[i]
                    y = y.astype(float)
                    label = f"{kind} row {i} month {m} shift {SHIFTS[g]} {what}"
                    se = y.std() / np.sqrt(n)
                    assert abs(y.mean() - want) < 4 * se + 1e-3 * want, label
                    # paired with shift 0 (same draws): the ratio the table applies
                    ratio = table["dropout"][i, g, m] / table["dropout"][i, ZERO, m]
                    dd = y - ratio * y0
                    assert abs(dd.mean()) < 4 * dd.std() / np.sqrt(n) + 1e-3 * want, label


# ---------------------------------------------------------------------------- other models
def test_pareto_nbd_shifts(book_rfm: pd.DataFrame) -> None:
    """Pareto/NBD: rate times c buys c G(t) with the same lifetime; death rate times c gives
    G(c t) / c and S(c t) (closed forms at scaled times)."""
    model = ParetoNBDModel.from_params(**PNBD)
    rows = np.arange(0, len(book_rfm), 53)
    tab = customer_tables(fake_estimate(model, book_rfm), rows, M)
    data = book_rfm[RFM].iloc[rows].reset_index(drop=True)
    t = np.arange(M + 1) * MONTH_DAYS / 7.0
    cum0, alive0 = tab.cum["purchase_rate"][:, ZERO], tab.alive["purchase_rate"][:, ZERO]
    assert_allclose(cum0[:, 1:], expected(model, t, data)[:, 1:], rtol=1e-3)
    assert_allclose(alive0, model.alive_curve(t, data), rtol=1e-3)
    for g, d in enumerate(SHIFTS):
        c = np.exp(d)
        assert_allclose(tab.cum["purchase_rate"][:, g], c * cum0, rtol=1e-12)
        assert_allclose(tab.alive["purchase_rate"][:, g], alive0, rtol=1e-12)
        assert_allclose(tab.cum["dropout"][:, g, 1:], expected(model, c * t, data)[:, 1:] / c,
                        rtol=1e-3, err_msg=str(d))
        assert_allclose(tab.alive["dropout"][:, g], model.alive_curve(c * t, data), rtol=1e-3,
                        err_msg=str(d))


NEW_MODELS = [
    pytest.param(BetaGeoModel, BGNBD, id="bgnbd"),
    pytest.param(ParetoNBDModel, PNBD, id="pnbd"),
    pytest.param(ModifiedBetaGeoModel, MBGNBD, id="mbgnbd"),
]


@pytest.mark.parametrize(("cls", "params"), NEW_MODELS)
def test_new_customers_follow_the_prior(cls: Any, params: dict[str, float],
                                        book_rfm: pd.DataFrame) -> None:
    model = cls.from_params(**params)
    tab = customer_tables(fake_estimate(model, book_rfm), np.arange(5), M, new=True)
    t = np.arange(M + 1) * MONTH_DAYS / 7.0
    # alive after the first purchase: MBG/NBD drops out there with probability p, E[p] = a/(a+b)
    alive0 = params["b"] / (params["a"] + params["b"]) if cls is ModifiedBetaGeoModel else 1.0
    for mech in ("purchase_rate", "dropout"):
        assert_allclose(tab.alive[mech][:, :, 0], alive0, rtol=1e-12)
        assert_array_equal(tab.cum[mech][:, :, 0], 0.0)
    assert_allclose(tab.cum["purchase_rate"][:, ZERO, 1:],
                    np.broadcast_to(model.expected_purchases(t)[1:], (5, M)), rtol=1e-3)
    # GG: a customer without purchases spends the population mean
    assert_allclose(tab.spend, GG["p"] * GG["gamma"] / (GG["q"] - 1), rtol=1e-9)


def test_new_customers_with_covariates(est: Any, rows: np.ndarray) -> None:
    """Templates with the fitted covariates: alive at age 0 in every shift, the model's E[X(t)]
    for their own parameters at shift 0, the rate shift scaling time."""
    model = est.models["purchase"]
    tab = customer_tables(est, rows[:20], M, new=True)
    data = model_data(est, rows[:20], new=True)
    t = months_in_periods(est)
    for mech in ("purchase_rate", "dropout"):
        assert_array_equal(tab.alive[mech][:, :, 0], 1.0)
    for g in (ZERO, 3, 11):
        c = np.exp(SHIFTS[g])
        want = np.column_stack([model.expected_purchases(c * x, data) for x in t[1:]])
        assert_allclose(tab.cum["purchase_rate"][:, g, 1:], want, rtol=1e-3)


# ---------------------------------------------------------------------------- plain levels
def test_plain_levels_keep_the_mechanisms_relative_change(planner: Planner, est: Any,
                                                          rows: np.ndarray, tab: Tables) -> None:
    """``plain``: shift 0 is the plain (no-driver) model's future, every shift keeps the full
    model's ratio to shift 0, spend is the plain Gamma-Gamma's; and ``prepare`` tabulated
    exactly this."""
    plain = plain_models(est)
    pm, ps = plain
    assert not pm.covariates_ and not ps.covariates_
    lv = customer_tables(est, rows, M, plain=plain)
    data = est.features[[*RFM, "monetary_value"]].iloc[rows].reset_index(drop=True)
    t = months_in_periods(est)
    # where the two models agree within the bound (x3) the relative change is the full model's
    ok = np.ones(len(rows), bool)
    for k in ("cum", "alive"):
        base = getattr(tab, k)["dropout"][:, ZERO, 1:]
        r = expected(pm, t, data)[:, 1:] / base if k == "cum" else pm.alive_curve(t, data)[
            :, 1:] / base
        ok &= ((r > 1 / 2.9) & (r < 2.9)).all(axis=1)
    assert_allclose(lv.cum["dropout"][ok, ZERO, 1:], expected(pm, t, data)[ok, 1:], rtol=1e-3)
    assert_allclose(lv.alive["purchase_rate"][ok, ZERO], pm.alive_curve(t, data)[ok], rtol=1e-3,
                    atol=2e-4)
    assert ok.mean() > 0.8
    for mech in ("purchase_rate", "dropout"):
        for k in ("cum", "alive"):
            full, level = getattr(tab, k)[mech][ok, :, 1:], getattr(lv, k)[mech][ok, :, 1:]
            want, got = full / full[:, ZERO:ZERO + 1], level / level[:, ZERO:ZERO + 1]
            if k == "cum":
                assert_allclose(got, want, rtol=5e-3)  # purchases kept non-decreasing
            else:  # survival is capped where the level ratio would make it rise: only lower
                assert (got <= want * (1 + 2e-3)).all()
                assert np.mean(np.isclose(got, want, rtol=2e-3)) > 0.9
    assert_allclose(lv.spend, ps.conditional_expected_average_profit(data), rtol=1e-12)
    assert_allclose(lv.cost_rate, tab.cost_rate, rtol=1e-12)
    assert_allclose(lv.referral_rate, tab.referral_rate, rtol=1e-12)
    pos = np.searchsorted(planner.base.rows, rows)
    assert_array_equal(planner.base.rows[pos], rows)
    for mech in lv.cum:
        assert_allclose(planner.base.cum[mech][pos], lv.cum[mech], rtol=1e-9, atol=1e-12)
        assert_allclose(planner.base.alive[mech][pos], lv.alive[mech], rtol=1e-9, atol=1e-12)


def test_money_rates_are_per_month(est: Any, rows: np.ndarray, tab: Tables) -> None:
    """Cost to serve and referrals per month alive: the fitted per-period rates times the
    periods in a month (a 4.35-week month on this weekly book)."""
    per_month = MONTH_DAYS / est.settings.period_days
    X = est.design.frame[est.design.terms].iloc[rows].to_numpy(dtype=float)
    fit = est.fits["referrals"]
    assert_allclose(tab.referral_rate, np.exp(fit.intercept + X @ fit.coef) * per_month,
                    rtol=1e-12)
    assert (tab.cost_rate > 0).all() and (tab.spend > 0).all()


# ---------------------------------------------------------------------------- subscriptions
def test_subscription_retention_tables(sub_planner: Planner) -> None:
    """Renewal payments at period boundaries while active: cumulative payments and P(active)
    at t_m interpolated linearly between boundaries, from ``shifted_survival`` at every shift;
    a cloglog hazard shifted by d gives S ** exp(d)."""
    part = sub_planner.parts[0]
    e, tab = part.est, part.base
    model = e.models["retention"]
    assert model.link == "cloglog" and list(tab.cum) == ["retention"]
    f = e.features.iloc[tab.rows]
    active = f["active"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    assert 0 < active.sum() < len(active)
    age = customer_age(f)
    data = e.design.frame.iloc[tab.rows]
    t = months_in_periods(e)
    periods = int(np.ceil(t[-1])) + 1
    grid = np.arange(periods + 1, dtype=float)
    base = shifted_survival(model, data, age, periods, 0.0)
    for g, d in enumerate(SHIFTS):
        S = np.where(active[:, None], shifted_survival(model, data, age, periods, d), 0.0)
        assert_allclose(S, np.where(active[:, None], base ** np.exp(d), 0.0), rtol=1e-9,
                        atol=1e-15)
        paid = np.column_stack([np.zeros(len(S)), np.cumsum(S, axis=1)])
        alive = np.column_stack([active, S])
        for i in range(0, len(S), 97):
            assert_allclose(tab.cum["retention"][i, g], np.interp(t, grid, paid[i]),
                            rtol=1e-9, atol=1e-12)
            assert_allclose(tab.alive["retention"][i, g], np.interp(t, grid, alive[i]),
                            rtol=1e-9, atol=1e-12)
    assert_array_equal(tab.alive["retention"][~active], 0.0)
    assert_array_equal(tab.cum["retention"][~active], 0.0)
    rr = np.nan_to_num(f["recurring_revenue"].to_numpy(dtype=float), nan=0.0)
    assert_array_equal(tab.spend, rr)
    # churn up (d > 0) pays less, at every month > 0, for every active customer
    on = tab.cum["retention"][active][:, :, 1:]
    assert (np.diff(on, axis=1) < 0).all()


def test_subscription_new_customers(sub_planner: Planner) -> None:
    part = sub_planner.parts[0]
    e, tab = part.est, part.new
    assert tab is not None
    model = e.models["retention"]
    assert_array_equal(tab.alive["retention"][:, :, 0], 1.0)
    t = months_in_periods(e)
    periods = int(np.ceil(t[-1])) + 1
    S = shifted_survival(model, e.design.frame.iloc[tab.rows], np.zeros(len(tab.rows)),
                         periods, 0.0)
    paid = np.column_stack([np.zeros(len(S)), np.cumsum(S, axis=1)])
    grid = np.arange(periods + 1, dtype=float)
    for i in range(0, len(S), 61):
        assert_allclose(tab.cum["retention"][i, ZERO], np.interp(t, grid, paid[i]), rtol=1e-9)


# ---------------------------------------------------------------------------- interpolate
def test_interpolate_hand_made_table() -> None:
    months = 3
    table = np.stack([SHIFTS ** 2 + 10 * m for m in range(months)], axis=-1)[None]  # (1, G, M)
    table = np.concatenate([table, -table], axis=0)  # two customers
    for g, s in enumerate(SHIFTS):  # exact at grid points
        assert_array_equal(interpolate(table, np.full((2, months), s)), table[:, g])
    d = np.array([[0.05, -1.2, 0.3]] * 2)  # between 0 and 0.1, -1.4 and -1.0, 0.25 and 0.45
    want = np.array([0.5 * 0.0 + 0.5 * 0.01, 0.5 * 1.96 + 0.5 * 1.0,
                     0.75 * 0.0625 + 0.25 * 0.2025]) + 10 * np.arange(months)
    assert_allclose(interpolate(table, d), np.stack([want, -want]), rtol=1e-12)
    far = np.array([[5.0, -9.0, 2.0]] * 2)  # clipped to the grid's ends
    want = np.array([4.0, 4.0, 4.0]) + 10 * np.arange(months)
    assert_allclose(interpolate(table, far), np.stack([want, -want]), rtol=1e-12)
    # leading axes (draws) broadcast against the table
    many = interpolate(table[None], np.stack([d, far]))
    assert many.shape == (2, 2, months)
    assert_allclose(many[1], interpolate(table, far))


@settings(max_examples=60, deadline=None)
@given(a=st.floats(-5, 5), b=st.floats(-5, 5),
       d=st.lists(st.floats(-10, 10), min_size=4, max_size=4))
def test_interpolate_is_exact_on_linear_tables(a: float, b: float, d: list[float]) -> None:
    table = (a + b * SHIFTS)[None, :, None].repeat(4, axis=2)  # (1, G, 4)
    out = interpolate(table, np.asarray(d)[None, :])
    assert_allclose(out[0], a + b * np.clip(d, SHIFTS[0], SHIFTS[-1]), rtol=1e-9, atol=1e-9)
