"""CLV and customer equity: a brute-force check of the cell scoring, the engine path against the
pandas path, discounting units, invariants, and the honesty of the delta-method interval.

Models are fitted on the published CDNOW summary (Fader, Hardie & Lee 2005; 2,357 customers, 39-week
calibration period) -- the fits themselves are checked against known answers in ``tests/models``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from rich.console import Console

from cxasset.book import PERIOD_DAYS, Workspace
from cxasset.exceptions import ModelDataError
from cxasset.features import workspace_features
from cxasset.models import BetaGeoModel, GammaGammaModel
from cxasset.models.mbgnbd import ModifiedBetaGeoModel
from cxasset.models.paretonbd import ParetoNBDModel
from cxasset.models.workflow import FitReport, load_models
from cxasset.report.text import value_table
from cxasset.valuation import ValuationSettings, customer_value, period_discount_rate, value_workspace
from cxasset.valuation.clv import equity_of

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
CDNOW_SUMMARY = SHARED_DATA / "published" / "cdnow_summary.csv"
WEEKS_PER_YEAR = 365.2425 / 7


def weekly(horizon: int = 52, discount_rate: float = 0.15, margin_rate: float = 0.30
           ) -> ValuationSettings:
    return ValuationSettings(horizon=horizon, period="week", period_days=7.0,
                             discount_rate=discount_rate, margin_rate=margin_rate, currency="USD")


@pytest.fixture(scope="module")
def rfm() -> pd.DataFrame:
    df = pd.read_csv(CDNOW_SUMMARY)
    return df.rename(columns={"ID": "customer_id", "x": "frequency", "t_x": "recency",
                              "zbar": "monetary_value"})


@pytest.fixture(scope="module")
def spend(rfm: pd.DataFrame) -> GammaGammaModel:
    return GammaGammaModel().fit(rfm)


@pytest.fixture(scope="module")
def purchase_models(rfm: pd.DataFrame) -> dict[str, Any]:
    return {cls.__name__: cls().fit(rfm)
            for cls in (BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel)}


@pytest.fixture(scope="module")
def models(purchase_models: dict[str, Any], spend: GammaGammaModel
           ) -> tuple[BetaGeoModel, GammaGammaModel]:
    return purchase_models["BetaGeoModel"], spend


PURCHASE = pytest.mark.parametrize("name", ["BetaGeoModel", "ModifiedBetaGeoModel",
                                            "ParetoNBDModel"])


def brute_force_clv(purchase: Any, spend: GammaGammaModel, data: pd.DataFrame,
                    s: ValuationSettings) -> np.ndarray:
    """Per-customer CLV from the definition: period by period, every customer on their own."""
    d = (1 + s.discount_rate) ** (s.period_days / 365.2425) - 1
    spend_i = spend.conditional_expected_average_profit(data)
    total = np.zeros(len(data))
    before = np.zeros(len(data))
    for t in range(1, s.horizon + 1):
        cum = purchase.conditional_expected_purchases(float(t), data)
        total += (cum - before) / (1 + d) ** t
        before = cum
    return s.margin_rate * spend_i * total


# --------------------------------------------------------------------------- exactness
@PURCHASE
def test_customer_value_equals_brute_force(rfm: pd.DataFrame, purchase_models: dict[str, Any],
                                           spend: GammaGammaModel, name: str) -> None:
    purchase = purchase_models[name]
    s = weekly()
    v = customer_value(purchase, spend, rfm, s, interval=False)
    expected = brute_force_clv(purchase, spend, rfm, s)
    c = v.customers
    assert list(c.customer_id) == list(rfm.customer_id)
    np.testing.assert_allclose(c.clv, expected, rtol=1e-9, atol=0)
    assert v.equity == pytest.approx(expected.sum(), rel=1e-9)
    assert v.n_customers == len(rfm)
    np.testing.assert_allclose(c.expected_transactions,
                               purchase.conditional_expected_purchases(52.0, rfm), rtol=1e-9)
    np.testing.assert_allclose(c.p_alive, purchase.probability_alive(rfm), rtol=1e-12)
    # the customers' expected transactions sum to the valuation's total
    assert v.expected_transactions == pytest.approx(c.expected_transactions.sum(), rel=1e-9)


def test_engine_path_equals_pandas_path(cdnow_fitted: tuple[Path, FitReport]) -> None:
    path, _ = cdnow_fitted
    with Workspace(path) as ws:
        engine = value_workspace(ws)
        purchase, spend = load_models(ws)
        feats = workspace_features(ws).to_pandas()
        st_ = ws.settings
    s = ValuationSettings(horizon=st_.horizon, period=st_.period, period_days=st_.period_days,
                          discount_rate=st_.discount_rate, margin_rate=st_.margin_rate,
                          currency=st_.currency)
    assert engine.settings == s
    pandas = customer_value(purchase, spend, feats, s)
    assert engine.n_customers == pandas.n_customers == 2357
    assert engine.equity == pytest.approx(pandas.equity, rel=1e-9)
    assert engine.equity_std_err == pytest.approx(pandas.equity_std_err, rel=1e-6)
    a = engine.customers.sort_values("customer_id").reset_index(drop=True)
    b = pandas.customers.sort_values("customer_id").reset_index(drop=True)
    assert list(a.customer_id) == list(b.customer_id)
    for col in ("clv", "expected_transactions", "p_alive", "expected_spend"):
        np.testing.assert_allclose(a[col], b[col], rtol=1e-9, atol=1e-12, err_msg=col)


def test_equity_without_per_customer_values(cdnow_fitted: tuple[Path, FitReport]) -> None:
    path, _ = cdnow_fitted
    with Workspace(path) as ws:
        full = value_workspace(ws, interval=False)
        cells_only = value_workspace(ws, interval=False, per_customer=False)
    assert cells_only.equity == pytest.approx(full.equity, rel=1e-12)
    d = cells_only.to_dict()
    assert d["median_clv"] is None and d["mean_p_alive"] is None
    text = Console(width=200, record=True, file=io.StringIO())
    text.print(value_table(d))
    assert "median CLV" in text.export_text()


# --------------------------------------------------------------------------- units
@pytest.mark.parametrize(("period", "per_year"), [("week", WEEKS_PER_YEAR), ("month", 12.0),
                                                   ("day", 365.2425)])
@pytest.mark.parametrize("annual", [0.0, 0.10, 0.35])
def test_period_rate_compounds_back_to_annual(period: str, per_year: float, annual: float) -> None:
    d = period_discount_rate(annual, PERIOD_DAYS[period])
    assert (1 + d) ** per_year - 1 == pytest.approx(annual, abs=1e-12)
    s = ValuationSettings(horizon=1, period=period, period_days=PERIOD_DAYS[period],
                          discount_rate=annual, margin_rate=0.3)
    assert s.period_rate == d


def test_weekly_rate_of_ten_percent() -> None:
    # 1.1 ** (7 / 365.2425) - 1, written out
    assert period_discount_rate(0.10, 7.0) == pytest.approx(0.0018284, rel=1e-4)


def test_doubling_margin_doubles_clv(rfm: pd.DataFrame, models: tuple) -> None:
    purchase, spend = models
    one = customer_value(purchase, spend, rfm, weekly(margin_rate=0.2), interval=False)
    two = customer_value(purchase, spend, rfm, weekly(margin_rate=0.4), interval=False)
    np.testing.assert_allclose(two.customers.clv, 2 * one.customers.clv, rtol=1e-12)
    assert two.equity == pytest.approx(2 * one.equity, rel=1e-12)


def test_longer_horizon_never_lowers_clv(rfm: pd.DataFrame, models: tuple) -> None:
    purchase, spend = models
    clvs = [customer_value(purchase, spend, rfm, weekly(horizon=h), interval=False).customers.clv
            .to_numpy() for h in (1, 13, 52, 104)]
    for shorter, longer in zip(clvs, clvs[1:], strict=False):
        assert np.all(longer >= shorter)
        assert longer.sum() > shorter.sum()


def test_zero_discount_is_undiscounted_sum(rfm: pd.DataFrame, models: tuple) -> None:
    purchase, spend = models
    s = weekly(horizon=52, discount_rate=0.0)
    v = customer_value(purchase, spend, rfm, s, interval=False)
    expected = (s.margin_rate * spend.conditional_expected_average_profit(rfm)
                * purchase.conditional_expected_purchases(52.0, rfm))
    np.testing.assert_allclose(v.customers.clv, expected, rtol=1e-9)
    # and discounting lowers every customer's value
    discounted = customer_value(purchase, spend, rfm, weekly(horizon=52), interval=False)
    assert np.all(discounted.customers.clv.to_numpy() <= v.customers.clv.to_numpy())


# --------------------------------------------------------------------------- invariants
@settings(max_examples=40, deadline=None)
@given(r=st.floats(0.05, 5.0), alpha=st.floats(0.5, 50.0), a=st.floats(0.05, 5.0),
       b=st.floats(0.1, 10.0), p=st.floats(0.5, 20.0), q=st.floats(1.05, 20.0),
       gamma=st.floats(0.5, 100.0), horizon=st.integers(1, 156))
def test_clv_finite_and_non_negative(rfm: pd.DataFrame, r: float, alpha: float, a: float,
                                     b: float, p: float, q: float, gamma: float,
                                     horizon: int) -> None:
    assume(abs(a - 1) > 1e-6 and abs(a + b - 1) > 1e-6)  # see test_bgnbd_removable_singularities
    purchase = BetaGeoModel.from_params(r=r, alpha=alpha, a=a, b=b)
    spend = GammaGammaModel.from_params(p=p, q=q, gamma=gamma)
    data = rfm.iloc[::10]
    v = customer_value(purchase, spend, data, weekly(horizon=horizon), interval=False)
    clv = v.customers.clv.to_numpy()
    assert np.all(np.isfinite(clv))
    assert np.all(clv >= 0)
    assert np.isfinite(v.equity)
    assert v.equity == pytest.approx(clv.sum(), rel=1e-9)
    assert "no interval requested" in v.notes


@pytest.mark.parametrize(("a", "b", "b_near"), [(1.0, 2.4, 2.4), (0.5, 0.5, 0.5 + 1e-6)])
def test_bgnbd_removable_singularities(rfm: pd.DataFrame, a: float, b: float, b_near: float
                                       ) -> None:
    """CLV is continuous across the removable singularities of BG/NBD's conditional
    expectation, (a+b+x-1)/(a-1) * (1 - 2F1(...; a+b+x-1; z)): a == 1 and, for x = 0,
    a + b == 1 (no NaN, no warning, equal to the value next to it)."""
    spend = GammaGammaModel.from_params(p=6.25, q=3.74, gamma=15.44)
    a_near = a + 1e-6 if b_near == b else a
    near = customer_value(BetaGeoModel.from_params(r=0.24, alpha=4.4, a=a_near, b=b_near),
                          spend, rfm, weekly(), interval=False)
    v = customer_value(BetaGeoModel.from_params(r=0.24, alpha=4.4, a=a, b=b), spend, rfm,
                       weekly(), interval=False)
    np.testing.assert_allclose(v.customers.clv, near.customers.clv, rtol=1e-4)


# --------------------------------------------------------------------------- interval
@PURCHASE
def test_delta_method_interval_matches_parameter_draws(rfm: pd.DataFrame,
                                                       purchase_models: dict[str, Any],
                                                       spend: GammaGammaModel, name: str) -> None:
    """The delta-method standard error of equity against the spread of equity over draws of both
    models' parameters from their asymptotic normal distributions."""
    purchase = purchase_models[name]
    s = weekly()
    v = customer_value(purchase, spend, rfm, s)
    lo, hi = v.equity_interval
    assert lo < v.equity < hi
    # the interval is symmetric on the log scale with z = 1.645
    assert np.log(hi / v.equity) == pytest.approx(np.log(v.equity / lo), rel=1e-9)
    assert np.log(hi / lo) / 2 / 1.6448536 == pytest.approx(v.equity_std_err / v.equity,
                                                             rel=1e-6)
    cells = (rfm.groupby(["frequency", "recency", "T"]).monetary_value.agg(["size", "mean"])
             .reset_index().rename(columns={"size": "n", "mean": "monetary_value"}))
    assert equity_of(purchase, spend, cells, s) == pytest.approx(v.equity, rel=1e-9)
    rng = np.random.default_rng(2005)
    n = 250
    draws_p, draws_s = purchase.sample_theta(n, rng), spend.sample_theta(n, rng)
    equity = np.array([equity_of(purchase.with_theta(draws_p[i]), spend.with_theta(draws_s[i]),
                                 cells, s) for i in range(n)])
    assert np.std(equity, ddof=1) == pytest.approx(v.equity_std_err, rel=0.15)
    assert np.median(equity) == pytest.approx(v.equity, rel=0.02)
    share_inside = np.mean((equity >= lo) & (equity <= hi))
    assert 0.82 <= share_inside <= 0.97


def test_from_params_models_have_no_interval(rfm: pd.DataFrame) -> None:
    purchase = BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
    spend = GammaGammaModel.from_params(p=6.25, q=3.74, gamma=15.44)
    v = customer_value(purchase, spend, rfm, weekly(), interval=False)
    assert np.isnan(v.equity_std_err)
    assert v.to_dict()["customer_equity"]["estimate"] == v.equity
    with pytest.raises(ModelDataError, match="BetaGeoModel has no standard errors.*interval=False"):
        customer_value(purchase, spend, rfm, weekly(), interval=True)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("drop", [["recency"], ["T", "monetary_value"]])
def test_missing_columns_are_named(rfm: pd.DataFrame, models: tuple, drop: list[str]) -> None:
    purchase, spend = models
    with pytest.raises(ModelDataError, match="valuation needs column") as info:
        customer_value(purchase, spend, rfm.drop(columns=drop), weekly())
    for col in drop:
        assert repr(col) in str(info.value)


@pytest.mark.parametrize("horizon", [0, -4])
def test_horizon_must_be_positive(rfm: pd.DataFrame, models: tuple, horizon: int) -> None:
    purchase, spend = models
    with pytest.raises(ModelDataError, match=f"horizon must be a positive.*got {horizon}"):
        customer_value(purchase, spend, rfm, weekly(horizon=horizon))
