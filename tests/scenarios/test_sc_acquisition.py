"""Acquisition forecast and template customers (cxasset.scenarios.acquisition).

Hand-made features frames with known daily inflow (constant, exponential growth, closed cohort),
and small synthetic books whose acquisition dates are known from ``customers.parquet``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxasset.book import Workspace
from cxasset.exceptions import BookWarning, ModelDataError
from cxasset.features import workspace_features
from cxasset.scenarios.acquisition import (
    MONTH_DAYS,
    acquisition_history,
    forecast_acquisitions,
    templates,
)
from cxasset.synth import SynthParams, generate

AS_OF = dt.date(2025, 6, 30)


def frame(acquired: np.ndarray, as_of: dt.date, period_days: float = 7.0) -> pd.DataFrame:
    """A features frame (``tenure``, ``T`` in periods) of customers acquired on ``acquired``."""
    age = (np.datetime64(as_of, "D") - acquired.astype("datetime64[D]")).astype(float)
    return pd.DataFrame({"tenure": age / period_days, "T": age / period_days})


def inflow(rate, months: int, as_of: dt.date, rng: np.random.Generator) -> np.ndarray:
    """Acquisition dates over ``months`` average months up to ``as_of``: Poisson per day with
    mean ``rate(x)``, ``x`` the day's offset from ``as_of`` in months (<= 0)."""
    offsets = np.arange(-int(months * MONTH_DAYS) + 1, 1)
    counts = rng.poisson(rate(offsets / MONTH_DAYS))
    return np.datetime64(as_of, "D") + np.repeat(offsets, counts).astype("timedelta64[D]")


def forecast(acquired: np.ndarray, as_of: dt.date, months: int = 12, **kw):
    return forecast_acquisitions(acquisition_history(frame(acquired, as_of), as_of, 7.0),
                                 months, **kw)


def test_history_counts_months_and_partial_month():
    days = np.array(["2025-01-31", "2025-01-01", "2025-03-15", "2025-06-03", "2025-06-03"],
                    dtype="datetime64[D]")
    as_of = dt.date(2025, 6, 10)
    h = acquisition_history(frame(days, as_of), as_of, 7.0)
    assert [str(m) for m in h["month"]] == ["2025-01", "2025-02", "2025-03", "2025-04",
                                            "2025-05", "2025-06"]
    assert h["acquired"].tolist() == [2, 0, 1, 0, 0, 2]
    assert h["exposure_days"].tolist() == [31, 28, 31, 30, 31, 10]
    # exposure (inclusive of the as_of day) wins over tenure, which stops at churn
    f = frame(days, as_of).assign(exposure=lambda d: d["tenure"] + 1 / 7, tenure=0.0)
    assert acquisition_history(f, as_of, 7.0)["acquired"].tolist() == [2, 0, 1, 0, 0, 2]
    with pytest.raises(ModelDataError, match="exposure or tenure"):
        acquisition_history(pd.DataFrame({"x": [1.0]}), as_of, 7.0)


def test_constant_rate_recovered():
    rng = np.random.default_rng(1)
    fc = forecast(inflow(lambda x: np.full_like(x, 30.0), 36, AS_OF, rng), AS_OF)
    assert fc.method == "constant"
    assert fc.monthly_mean == pytest.approx(30 * MONTH_DAYS, rel=0.03)
    d = fc.draws(2000, 0)
    assert d.shape == (2000, 12) and d.dtype == np.int64
    assert d.mean() == pytest.approx(30 * MONTH_DAYS, rel=0.03)
    json.dumps(fc.to_dict())


@pytest.mark.parametrize("as_of", [dt.date(2025, 6, 3), dt.date(2025, 6, 17), AS_OF])
def test_partial_month_does_not_bias_rate(as_of):
    days = np.datetime64(as_of, "D") - np.arange(3 * 365).astype("timedelta64[D]")
    fc = forecast(np.repeat(days, 5), as_of)  # exactly 5 a day
    assert fc.monthly_mean == pytest.approx(5 * MONTH_DAYS, rel=0.005)
    h = acquisition_history(frame(np.repeat(days, 5), as_of), as_of, 7.0)
    if as_of.day < 30:  # counting the partial month as a full one would pull the rate down
        assert "partial month" in fc.notes[0]
        naive = forecast_acquisitions(h.assign(exposure_days=pd.PeriodIndex(h["month"])
                                               .days_in_month), 12, trend=False)
        assert naive.monthly_mean[0] < 0.97 * fc.monthly_mean[0]


def test_growth_trend_recovered_and_covered():
    g, lam0 = np.log(1.04), 15.0
    fc = forecast(inflow(lambda x: lam0 * np.exp(g * x), 36, AS_OF, np.random.default_rng(2)),
                  AS_OF)
    assert fc.method == "trend"
    b, se = fc.params["coef"][1], np.sqrt(fc.params["cov"][1, 1])
    assert b - 1.96 * se < g < b + 1.96 * se
    k = np.arange(12) + 0.5
    truth = MONTH_DAYS * lam0 * np.exp(g * k) * np.sinh(g / 2) / (g / 2)
    assert fc.monthly_mean == pytest.approx(truth, rel=0.2)  # 12 months of extrapolation
    lo, hi = np.quantile(fc.draws(4000, 3), [0.05, 0.95], axis=0)
    assert np.all((lo <= truth) & (truth <= hi))
    assert not any("capped" in n for n in fc.notes)


@pytest.mark.parametrize("growth", [1.15, 1 / 1.15])
def test_trend_extrapolation_capped(growth):
    fc = forecast(inflow(lambda x: 20 * growth**x, 24, AS_OF, np.random.default_rng(4)), AS_OF)
    h = fc.history.iloc[-12:]
    window_mean = h["acquired"].sum() / h["exposure_days"].sum() * MONTH_DAYS
    assert fc.method == "trend" and any("capped" in n for n in fc.notes)
    assert fc.monthly_mean.max() <= 3 * window_mean * (1 + 1e-9)
    assert fc.monthly_mean.min() >= window_mean / 3 * (1 - 1e-9)
    d = fc.draws(500, 0)
    assert d.mean(0)[-1] == pytest.approx(fc.monthly_mean[-1], rel=0.1)


def test_constant_interval_coverage():
    """90 % predictive interval of the 12-month total over 50 histories (as_of mid-month)."""
    rng = np.random.default_rng(11)
    as_of, lam, hits = dt.date(2025, 6, 15), 5.0, 0
    for _ in range(50):
        fc = forecast(inflow(lambda x: np.full_like(x, lam), 24, as_of, rng), as_of)
        lo, hi = np.quantile(fc.draws(2000, rng).sum(1), [0.05, 0.95])
        hits += lo <= rng.poisson(lam * 12 * MONTH_DAYS) <= hi
    assert 0.80 <= hits / 50 <= 0.97


def test_closed_cohort_forecasts_zero():
    """CDNOW-like: everyone joined in the first 12 weeks of 1997, the book runs to mid-1998."""
    rng = np.random.default_rng(5)
    days = np.datetime64("1997-01-01") + rng.integers(0, 84, 2357).astype("timedelta64[D]")
    fc = forecast(days, dt.date(1998, 6, 30), months=24)
    assert fc.method == "none" and fc.monthly_mean.shape == (24,) and not fc.monthly_mean.any()
    assert fc.notes == ["no customer acquired in the last 12 months: no new cohorts are forecast"]
    assert not fc.draws(10, 0).any()
    json.dumps(fc.to_dict())
    empty = forecast_acquisitions(acquisition_history(frame(days[:0], AS_OF), AS_OF, 7.0), 3)
    assert empty.method == "none" and len(empty.history) == 1


def test_short_history_and_no_trend_fall_back_to_constant():
    rng = np.random.default_rng(6)
    days = inflow(lambda x: 10 * np.exp(0.3 * x), 4, AS_OF, rng)  # steep, but only 4 months
    fc = forecast(days, AS_OF)
    assert fc.method == "constant" and any("fewer than 6" in n for n in fc.notes)
    assert fc.monthly_mean[0] > 0
    fc = forecast(inflow(lambda x: 10 * np.exp(0.1 * x), 24, AS_OF, rng), AS_OF, trend=False)
    assert fc.method == "constant" and any("trend=False" in n for n in fc.notes)
    with pytest.raises(ModelDataError, match="months must be an integer >= 1"):
        forecast(days, AS_OF, months=0)


def test_templates_pick_recent_customers():
    rng = np.random.default_rng(7)
    days = inflow(lambda x: np.full_like(x, 3.0), 36, AS_OF, rng)
    f = frame(days, AS_OF)
    recent = np.flatnonzero(days > np.datetime64("2024-06-30"))
    t = templates(f, AS_OF, 7.0)
    assert t.basis == "recent" and np.array_equal(t.rows, recent)
    s = templates(f, AS_OF, 7.0, max_rows=100, seed=1)
    assert len(s.rows) == 100 and set(s.rows) <= set(recent) and "100 of them sampled" in s.note
    assert np.array_equal(s.rows, templates(f, AS_OF, 7.0, max_rows=100, seed=1).rows)
    assert not np.array_equal(s.rows, templates(f, AS_OF, 7.0, max_rows=100, seed=2).rows)
    # 10 recent customers: the newest 30 % of the book; a tiny book: all of it
    old = np.datetime64("2022-01-01") + rng.integers(0, 700, 200).astype("timedelta64[D]")
    f2 = frame(np.concatenate([old, days[-10:]]), AS_OF)
    w = templates(f2, AS_OF, 7.0)
    assert w.basis == "recent_share" and len(w.rows) == 63 and "30 %" in w.note
    assert set(range(200, 210)) <= set(w.rows)
    a = templates(frame(old[:50], AS_OF), AS_OF, 7.0)
    assert a.basis == "all" and np.array_equal(a.rows, np.arange(50))


def _book(root: Path, kind: str, acquisition_weeks: int) -> tuple[pd.DataFrame, Workspace]:
    p = SynthParams()
    p = dataclasses.replace(p, calendar={**p.calendar, "acquisition_weeks": acquisition_weeks})
    generate(root / "book", customers=3000, seed=5, kind=kind, params=p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BookWarning)
        ws = Workspace(root / "ws")
        ws.ingest(root / "book")
    return pd.read_parquet(root / "book" / "customers.parquet"), ws


@pytest.mark.parametrize("kind", ["transactions", "subscriptions"])
def test_synthetic_steady_inflow(tmp_path, kind):
    """Acquisition uniform over the whole 104-week window: 3000 / 728 customers a day."""
    customers, ws = _book(tmp_path, kind, 104)
    with ws:
        f, s = workspace_features(ws).to_pandas(), ws.settings
        h = acquisition_history(f, s.as_of, s.period_days)
    truth = customers["acquired_at"].dt.to_period("M").value_counts().sort_index()
    assert h.set_index("month")["acquired"].to_dict() == truth.to_dict()
    fc = forecast_acquisitions(h, 12)
    assert fc.monthly_mean == pytest.approx(3000 / 728 * MONTH_DAYS, rel=0.1)


def test_synthetic_default_book_is_closed(tmp_path):
    """The documented book acquires in its first 52 weeks only, a year before as_of."""
    _, ws = _book(tmp_path, "transactions", 52)
    with ws:
        f, s = workspace_features(ws).to_pandas(), ws.settings
    fc = forecast_acquisitions(acquisition_history(f, s.as_of, s.period_days), 12)
    assert fc.method == "none" and "no new cohorts" in fc.notes[0]
    assert fc.history["acquired"].sum() == 3000
    t = templates(f, s.as_of, s.period_days)
    assert t.basis in ("recent", "recent_share") and len(t.rows) >= 30
