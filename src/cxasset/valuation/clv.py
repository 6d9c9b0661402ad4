"""Customer lifetime value and customer equity, with intervals from parameter uncertainty.

CLV of a customer over a horizon of H periods, t = 1..H, with per-period discount rate d::

    CLV = sum_t  margin * E[spend] * (E[Y(t)] - E[Y(t-1)]) / (1 + d)^t

where E[Y(t)] is the purchase model's expected number of transactions in the next t periods given
the customer's history (and covariates) -- so it is already weighted by the probability of being
alive -- and E[spend] the spend model's expected amount per transaction. Transactions of period t
are discounted at its end. The annual ``discount_rate`` is turned into the per-period rate
``(1 + annual) ** (period_days / 365.2425) - 1``; every figure is in the book's currency.

Customers are scored on their unique sufficient statistics (the cells), so cost grows with the
number of distinct cells, not customers. Customer equity is the sum over the base; its interval
comes from the delta method on the log of equity, with the gradient taken numerically over both
models' unconstrained parameters and their estimated covariances.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cxasset.exceptions import ModelDataError

Z90 = 1.6448536269514722
DAYS_PER_YEAR = 365.2425


def period_discount_rate(annual: float, period_days: float) -> float:
    """Per-period rate equivalent to an annual rate: ``(1 + annual)^(period_days/365.2425) - 1``."""
    return float((1.0 + annual) ** (period_days / DAYS_PER_YEAR) - 1.0)


@dataclass(frozen=True)
class ValuationSettings:
    """Units of a valuation, stated once and applied everywhere."""

    horizon: int  # periods
    period: str  # day | week | month
    period_days: float
    discount_rate: float  # annual
    margin_rate: float  # share of spend
    currency: str = "USD"

    @property
    def period_rate(self) -> float:
        return period_discount_rate(self.discount_rate, self.period_days)

    def describe(self) -> str:
        return (f"{self.horizon} {self.period}s, {self.discount_rate:.1%} annual discount "
                f"({self.period_rate:.4%} per {self.period}), margin {self.margin_rate:.0%} of "
                f"spend, in {self.currency}")


@dataclass(frozen=True)
class Valuation:
    """Per-customer CLV and customer equity with a 90% interval."""

    customers: pd.DataFrame  # customer_id (if given), expected_transactions, p_alive, ...
    equity: float
    equity_interval: tuple[float, float]
    equity_std_err: float
    settings: ValuationSettings
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        s = self.settings
        c = self.customers
        return {
            "customer_equity": {"estimate": self.equity, "p5": self.equity_interval[0],
                                "p95": self.equity_interval[1], "std_err": self.equity_std_err,
                                "unit": s.currency},
            "customers": len(c),
            "mean_clv": float(c.clv.mean()) if len(c) else 0.0,
            "median_clv": float(c.clv.median()) if len(c) else 0.0,
            "expected_transactions": float(c.expected_transactions.sum()),
            "mean_p_alive": float(c.p_alive.mean()) if len(c) else 0.0,
            "settings": {"horizon": s.horizon, "period": s.period,
                         "discount_rate_annual": s.discount_rate,
                         "discount_rate_per_period": s.period_rate,
                         "margin_rate": s.margin_rate, "currency": s.currency},
            "notes": list(self.notes),
        }


def _cells(data: pd.DataFrame, cols: Sequence[str]) -> tuple[pd.DataFrame, np.ndarray]:
    codes = data.groupby(list(cols), sort=False, dropna=False).ngroup().to_numpy()
    first = pd.Series(np.arange(len(data))).groupby(codes).first().to_numpy()
    return data.iloc[first].reset_index(drop=True), codes


def _clv_cells(purchase: Any, spend: Any, cells: pd.DataFrame, s: ValuationSettings
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """CLV, expected transactions over the horizon, P(alive) and expected spend per cell."""
    t = np.arange(1, s.horizon + 1, dtype=float)
    cum = np.column_stack([purchase.conditional_expected_purchases(ti, cells) for ti in t])
    per = np.diff(np.column_stack([np.zeros(len(cells)), cum]), axis=1)
    disc = (1.0 + s.period_rate) ** -t
    spend_mean = np.asarray(spend.conditional_expected_average_profit(cells), dtype=float)
    clv = s.margin_rate * spend_mean * (per @ disc)
    return clv, cum[:, -1], purchase.probability_alive(cells), spend_mean


def customer_value(
    purchase: Any,
    spend: Any,
    data: pd.DataFrame,
    settings: ValuationSettings,
    interval: bool = True,
) -> Valuation:
    """CLV of every customer in ``data`` and customer equity with a 90% interval.

    Parameters
    ----------
    purchase : fitted purchase/dropout model (BG/NBD, MBG/NBD, Pareto/NBD)
        Needs ``conditional_expected_purchases(t, df)`` and ``probability_alive(df)``.
    spend : fitted spend model (Gamma-Gamma)
        Needs ``conditional_expected_average_profit(df)``.
    data : DataFrame
        ``frequency, recency, T, monetary_value``, the models' covariates, and optionally
        ``customer_id``; features as of the valuation date.
    settings : ValuationSettings
        Horizon, period, discount rate, margin and currency.
    interval : bool, default=True
        Compute the equity interval from both models' parameter uncertainty.
    """
    if settings.horizon <= 0:
        raise ModelDataError(f"horizon must be a positive number of periods; got {settings.horizon}")
    cov = sorted({c for m in (purchase, spend) for cs in getattr(m, "covariates_", {}).values()
                  for c in cs})
    cols = ["frequency", "recency", "T", "monetary_value", *cov]
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise ModelDataError(f"valuation needs column(s) {missing}; data has {list(data.columns)}")
    cells, codes = _cells(data, cols)
    w = np.bincount(codes, minlength=len(cells)).astype(float)
    clv, tx, alive, spend_mean = _clv_cells(purchase, spend, cells, settings)
    notes = []
    if np.any(~np.isfinite(clv)):
        raise ModelDataError("CLV is not finite for some customers: the fitted parameters give "
                             "an undefined expectation (e.g. Gamma-Gamma q <= 1)")
    if np.any(clv < 0):
        raise ModelDataError("negative CLV: expected spend or transactions came out negative; "
                             "check the models' fits")
    equity = float(np.dot(w, clv))
    lo = hi = se = float("nan")
    if interval:
        se_log = _equity_se_log(purchase, spend, cells, w, settings, equity)
        se = equity * se_log
        lo, hi = equity * np.exp(-Z90 * se_log), equity * np.exp(Z90 * se_log)
    else:
        notes.append("no interval requested")
    out = pd.DataFrame({
        "expected_transactions": tx[codes],
        "p_alive": alive[codes],
        "expected_spend": spend_mean[codes],
        "clv": clv[codes],
    })
    if "customer_id" in data.columns:
        out.insert(0, "customer_id", data["customer_id"].to_numpy())
    return Valuation(out, equity, (float(lo), float(hi)), float(se), settings, tuple(notes))


def _equity_se_log(purchase: Any, spend: Any, cells: pd.DataFrame, w: np.ndarray,
                   s: ValuationSettings, equity: float) -> float:
    """Delta-method standard error of log(equity) over both models' parameters."""
    grads, covs = [], []
    for which, model in (("purchase", purchase), ("spend", spend)):
        theta = np.asarray(model._theta, dtype=float)
        g = np.empty(len(theta))
        for i in range(len(theta)):
            h = 1e-5 * max(1.0, abs(theta[i]))
            vals = []
            for sign in (1, -1):
                th = theta.copy()
                th[i] += sign * h
                m2 = model.with_theta(th)
                pm, sm = (m2, spend) if which == "purchase" else (purchase, m2)
                vals.append(float(np.dot(w, _clv_cells(pm, sm, cells, s)[0])))
            g[i] = (np.log(vals[0]) - np.log(vals[1])) / (2 * h)
        grads.append(g)
        covs.append(model.result_.cov_unconstrained)
    var = sum(float(g @ c @ g) for g, c in zip(grads, covs, strict=True))
    return float(np.sqrt(max(var, 0.0)))
