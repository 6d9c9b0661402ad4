"""The customer asset statement: the roll-forward adds up, both ends agree with the valuation of
each date, subscription churn matches the book, and the expected number of customers lost matches
the truth of a simulated BG/NBD base across seeds."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxasset.book import Workspace
from cxasset.exceptions import ModelDataError
from cxasset.features import workspace_features
from cxasset.models import BetaGeoModel, GammaGammaModel
from cxasset.models.contractual import retention_rows
from cxasset.models.workflow import covariate_expressions, load_models
from cxasset.valuation import ValuationSettings, customer_value, value_workspace
from cxasset.valuation.statement import (
    LINES,
    Side,
    Statement,
    asset_statement,
    build_statement,
    purchase_parts,
)


def _adds_up(st: Statement) -> None:
    total = st.opening["estimate"] + sum(x["estimate"] for x in st.lines)
    assert total == pytest.approx(st.closing["estimate"], rel=1e-9)
    assert [x["key"] for x in st.lines] == list(LINES)
    for q in [st.opening, st.closing, *st.lines]:
        assert q["p5"] is None or q["p5"] <= q["estimate"] <= q["p95"]


@pytest.fixture(scope="module")
def tx_ws(synth_ws: Callable[..., Path]) -> Path:
    return synth_ws(3000, 5, fit="auto")


@pytest.fixture(scope="module")
def tx_statement(tx_ws: Path) -> Statement:
    with Workspace(tx_ws) as ws:
        return asset_statement(ws)


def test_transactions_roll_forward(tx_ws: Path, tx_statement: Statement) -> None:
    st = tx_statement
    _adds_up(st)
    with Workspace(tx_ws) as ws:
        end = ws.settings.as_of
        start = end - dt.timedelta(days=365)
        assert (st.start, st.end) == (start, end)
        # the closing margin is the customer equity `cxasset value` reports
        assert st.closing["margin"] == pytest.approx(value_workspace(ws).equity, rel=1e-9)
        # the opening margin is the customer equity of the base as of the start, same models
        purchase, spend = load_models(ws)
        f = workspace_features(ws, as_of=start)
        f = f.mutate(**covariate_expressions(f, ws.load_artifact("covariates"))).to_pandas()
        vs = ValuationSettings(horizon=ws.settings.horizon, period=ws.settings.period,
                               period_days=ws.settings.period_days,
                               discount_rate=ws.settings.discount_rate,
                               margin_rate=ws.settings.margin_rate)
        opening = customer_value(purchase, spend, f, vs, interval=False)
        assert st.opening["margin"] == pytest.approx(opening.equity, rel=1e-9)
        assert st.customers["opening"] == len(f)
        acquired = ws.table("customers").to_pandas()["acquired_at"]
    assert st.customers["closing"] == 3000
    assert st.customers["acquired"] == 3000 - len(f)
    assert (pd.to_datetime(acquired).dt.date > start).sum() == st.customers["acquired"]
    # acquisition by cohort adds up to the acquisition line; values are money, customers counts
    acq = st.line("acquisition")["estimate"]
    assert sum(c["value"] for c in st.acquisition_by_cohort) == pytest.approx(acq, rel=1e-9)
    assert sum(c["customers"] for c in st.acquisition_by_cohort) == st.customers["acquired"]
    assert acq > 0 and st.line("retention")["estimate"] < 0  # a year of silent leavers
    lost = st.leakage["customers_lost"]["estimate"]
    assert 0 < lost < st.customers["opening"]
    assert st.leakage["annual_revenue"]["estimate"] > 0
    assert 0 < st.leakage["share_of_run_rate"] < 1
    assert st.referred_value is not None and st.referred_value > 0  # referral channel in synth
    d = st.to_dict()
    assert d["change"] == pytest.approx(st.closing["estimate"] - st.opening["estimate"])


def test_statement_start_checked(tx_ws: Path) -> None:
    with Workspace(tx_ws) as ws:
        with pytest.raises(ModelDataError, match="before as_of"):
            asset_statement(ws, start=ws.settings.as_of)
        with pytest.raises(ModelDataError, match="no customers had been acquired"):
            asset_statement(ws, start=dt.date(1990, 1, 1), interval=False)


def test_later_start_and_referred_value(tx_ws: Path, tx_statement: Statement) -> None:
    with Workspace(tx_ws) as ws:
        half = asset_statement(ws, start=ws.settings.as_of - dt.timedelta(days=182),
                               referred_value=0.0, interval=False)
    _adds_up(half)
    assert half.customers["opening"] > tx_statement.customers["opening"]
    assert half.line("referrals")["estimate"] == 0.0  # referrals valued at 0 as asked
    assert half.closing["margin"] == pytest.approx(tx_statement.closing["margin"], rel=1e-9)


def test_subscription_statement(synth_ws: Callable[..., Path]) -> None:
    path = synth_ws(2000, 4, kind="subscriptions", fit="auto")
    with Workspace(path) as ws:
        st = asset_statement(ws)
        _adds_up(st)
        assert st.kind == "subscriptions"
        assert st.closing["margin"] == pytest.approx(value_workspace(ws).equity, rel=1e-9)
        spec = ws.load_artifact("covariates")
        a = retention_rows(ws, st.start, spec)
        b = retention_rows(ws, st.end, spec).set_index("customer_id")
    # subscribers are 0 or 1 alive: the customers lost are exactly those who churned
    active_a = a.loc[a.churned == 0, "customer_id"]
    churned = int((b.loc[active_a, "churned"] == 1).sum())
    assert churned > 0
    assert st.leakage["customers_lost"]["estimate"] == pytest.approx(churned)
    assert st.line("retention")["estimate"] < 0


def test_bgbb_statement(synth_ws: Callable[..., Path]) -> None:
    path = synth_ws(2000, 6, fit="bgbb")
    with Workspace(path) as ws:
        st = asset_statement(ws)
        assert st.closing["margin"] == pytest.approx(value_workspace(ws).equity, rel=1e-9)
    _adds_up(st)


# --------------------------------------------------------------------------- planted truth
TRUE = {"r": 0.6, "alpha": 6.0, "a": 0.8, "b": 4.0}


def _simulate(seed: int, n: int, A: float, B: float) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """BG/NBD customers acquired uniformly over (0, B) (first purchase at acquisition), observed
    at A and at B: their RFM at each date and the true number alive at A and gone by B."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(0, B, n)
    lam = rng.gamma(TRUE["r"], 1 / TRUE["alpha"], n)
    drop_at = rng.geometric(rng.beta(TRUE["a"], TRUE["b"], n))  # dies at this repeat purchase
    k = 400
    times = u[:, None] + np.cumsum(rng.exponential(1.0, (n, k)) / lam[:, None], axis=1)
    made = np.arange(1, k + 1)[None, :] <= drop_at[:, None]  # purchases made before dying
    assert np.all((times[:, -1] > B) | ~made[:, -1])  # k purchases cover the window

    def at(t: float) -> tuple[pd.DataFrame, np.ndarray]:
        keep = u <= t
        seen = made & (times <= t)
        x = seen.sum(axis=1)
        last = np.where(x > 0, np.where(seen, times, -np.inf).max(axis=1), u)
        alive = (times <= t).sum(axis=1) < drop_at
        f = pd.DataFrame({"customer_id": np.arange(n), "frequency": x.astype(float),
                          "recency": last - u, "T": t - u, "monetary_value": 20.0})
        return f[keep].reset_index(drop=True), alive[keep]

    f0, alive0 = at(A)
    f1, alive1 = at(B)
    gone = alive0 & ~pd.Series(alive1, index=f1.customer_id).loc[f0.customer_id].to_numpy()
    return f0, f1, int(gone.sum())


def _side(f: pd.DataFrame) -> Side:
    z = np.zeros(len(f))
    return Side(f["customer_id"].to_numpy(), f, z, z, z + 1.0, z)


def test_customers_lost_match_the_truth_across_seeds() -> None:
    """E[sum P(alive at A) - P(alive at B)] is the expected number of customers who leave between
    A and B; with the true model the estimate tracks the simulated truth in every seed and has
    no bias across seeds."""
    model = BetaGeoModel.from_params(**TRUE)
    spend = GammaGammaModel.from_params(p=6.0, q=4.0, gamma=15.0)
    vs = ValuationSettings(horizon=52, period="week", period_days=7.0, discount_rate=0.1,
                           margin_rate=0.3)
    rel = []
    for seed in range(12):
        f0, f1, truth = _simulate(seed, 8000, 52.0, 104.0)
        st = build_statement([model, spend], purchase_parts, _side(f0), _side(f1), vs,
                             start=dt.date(2025, 1, 1), end=dt.date(2026, 1, 1),
                             kind="transactions", interval=False)
        est = st.leakage["customers_lost"]["estimate"]
        rel.append(est / truth - 1)
        assert abs(est / truth - 1) < 0.12, (seed, est, truth)
    assert abs(np.mean(rel)) < 0.03, rel
