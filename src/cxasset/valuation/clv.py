"""Customer lifetime value and customer equity, with intervals from parameter uncertainty.

CLV of a customer over a horizon of H periods, t = 1..H, with per-period discount rate d::

    CLV = sum_t  margin * E[spend] * (E[Y(t)] - E[Y(t-1)]) / (1 + d)^t

where E[Y(t)] is the purchase model's expected number of transactions in the next t periods given
the customer's history (and covariates) -- so it is already weighted by the probability of being
alive -- and E[spend] the spend model's expected amount per transaction. Transactions of period t
are discounted at its end. The annual ``discount_rate`` is turned into the per-period rate
``(1 + annual) ** (period_days / 365.2425) - 1``; every figure is in the book's currency.

How it scales
-------------
- Customers are scored on *cells* of identical ``(frequency, recency, T, covariates)``, each with
  its count ``n`` and mean ``monetary_value``. Gamma-Gamma's expected spend is linear in the
  customer's mean spend m, so a cell's total value is exact from its mean m; per-customer CLV is
  ``margin * (spend_0 + spend_1 * m) * DET`` with the cell's ``spend_0, spend_1, DET``. Cost grows
  with the number of cells, not customers, and the grouping can run in the engine
  (:mod:`cxasset.valuation.engine`).
- For BG/NBD, MBG/NBD and Pareto/NBD, E[Y(t) | x, t_x, T] = P(alive | x, t_x, T) * G(t | x, T): the
  expensive curve G (hypergeometric functions) is computed once per distinct ``(x, T, covariates)``.

Customer equity is the sum over the base; its 90% interval comes from the delta method on
log(equity) over both models' unconstrained parameters and their estimated covariances.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cxasset.exceptions import ModelDataError

Z90 = 1.6448536269514722
DAYS_PER_YEAR = 365.2425
RFM_KEY = ("frequency", "recency", "T")


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

    def to_dict(self) -> dict[str, Any]:
        return {"horizon": self.horizon, "period": self.period,
                "discount_rate_annual": self.discount_rate,
                "discount_rate_per_period": self.period_rate,
                "margin_rate": self.margin_rate, "currency": self.currency}


@dataclass(frozen=True)
class Valuation:
    """Customer equity with a 90% interval, and per-customer CLV."""

    customers: pd.DataFrame  # customer_id (if given), expected_transactions, p_alive, spend, clv
    equity: float
    equity_interval: tuple[float, float]
    equity_std_err: float
    settings: ValuationSettings
    n_customers: int
    expected_transactions: float
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        c = self.customers
        has = len(c) > 0
        return {
            "customer_equity": {"estimate": self.equity, "p5": self.equity_interval[0],
                                "p95": self.equity_interval[1], "std_err": self.equity_std_err,
                                "unit": self.settings.currency},
            "customers": self.n_customers,
            "mean_clv": self.equity / max(self.n_customers, 1),
            "median_clv": float(c.clv.median()) if has else None,
            "expected_transactions": self.expected_transactions,
            "mean_p_alive": float(c.p_alive.mean()) if has else None,
            "settings": self.settings.to_dict(),
            "notes": list(self.notes),
        }


def cell_columns(purchase: Any, spend: Any) -> list[str]:
    """What identifies a cell: the RFM statistics and every covariate of either model."""
    cov = sorted({c for m in (purchase, spend) for cs in getattr(m, "covariates_", {}).values()
                  for c in cs})
    return [*RFM_KEY, *cov]


def score_cells(purchase: Any, spend: Any, cells: pd.DataFrame, s: ValuationSettings,
                ) -> pd.DataFrame:
    """Score cells (``cell_columns`` + ``n`` + ``monetary_value`` = the cell's mean m).

    Adds ``p_alive``, ``expected_transactions`` (over the horizon), ``det`` (discounted expected
    transactions), ``spend_0``, ``spend_1`` (expected spend = spend_0 + spend_1 * m) and ``clv``
    (of a customer with the cell's mean m).
    """
    if s.horizon <= 0:
        raise ModelDataError(f"horizon must be a positive number of periods; got {s.horizon}")
    alive, det, tx = _det(purchase, cells, s)
    return with_clv(spend, cells, alive, tx, det, s)


def with_clv(spend: Any, cells: pd.DataFrame, alive: np.ndarray, tx: np.ndarray,
             det: np.ndarray, s: ValuationSettings) -> pd.DataFrame:
    """``cells`` with ``p_alive``, ``expected_transactions``, ``det``, the spend line
    ``spend_0, spend_1`` and ``clv``, refusing a CLV that is not finite or negative (any purchase
    model's scoring ends here)."""
    s0, s1 = spend_line(spend, cells)
    out = cells.copy()
    out["p_alive"], out["expected_transactions"], out["det"] = alive, tx, det
    out["spend_0"], out["spend_1"] = s0, s1
    out["clv"] = s.margin_rate * (s0 + s1 * cells["monetary_value"].to_numpy()) * det
    clv = out["clv"].to_numpy()
    if np.any(~np.isfinite(clv)):
        raise ModelDataError("CLV is not finite for some customers: the fitted parameters give "
                             "an undefined expectation (e.g. Gamma-Gamma q <= 1)")
    if np.any(clv < 0):
        raise ModelDataError("negative CLV: expected spend or transactions came out negative; "
                             "check the models' fits")
    return out


def _det(purchase: Any, cells: pd.DataFrame, s: ValuationSettings
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(alive), discounted expected transactions and expected transactions per cell."""
    alive, g, tx, _, _ = conditional_curves(purchase, cells, s)
    return alive, alive * g, alive * tx


def conditional_curves(purchase: Any, cells: pd.DataFrame, s: ValuationSettings,
                       year: float | None = None) -> tuple[np.ndarray, ...]:
    """Per cell: P(alive), and given alive: discounted expected transactions over the horizon,
    expected transactions over the horizon, and (with ``year``, in periods) discounted expected
    periods alive over the horizon and expected transactions in the next ``year`` periods (NaN
    without ``year``).

    Given alive, the future does not depend on recency, so the curves are computed once per
    distinct ``(x, T, covariates)`` at recency = T. Without an ``alive_curve`` the model's
    periods alive are held at 1 per period (an upper bound).
    """
    t = np.arange(1, s.horizon + 1, dtype=float)
    disc = (1.0 + s.period_rate) ** -t
    alive = np.asarray(purchase.probability_alive(cells), dtype=float)
    key = [c for c in cells.columns if c not in ("recency", "n", "monetary_value")
           and c in cell_columns(purchase, purchase)]
    uniq, inv = np.unique(cells[key].to_numpy(dtype=float), axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    probe = pd.DataFrame(uniq, columns=key)
    probe["recency"] = probe["T"]  # G does not depend on recency; this point keeps P(alive) > 0
    a_probe = np.asarray(purchase.probability_alive(probe), dtype=float)
    curve = np.column_stack([purchase.conditional_expected_purchases(ti, probe) for ti in t])
    g = curve / a_probe[:, None]
    per = np.diff(np.column_stack([np.zeros(len(probe)), g]), axis=1)
    d = y = np.full(len(probe), np.nan)
    if year is not None:
        y = np.asarray(purchase.conditional_expected_purchases(year, probe), dtype=float) / a_probe
        d = np.full(len(probe), disc.sum())
        if hasattr(purchase, "alive_curve"):
            d = (np.asarray(purchase.alive_curve(t, probe), dtype=float) / a_probe[:, None]) @ disc
    return alive, (per @ disc)[inv], g[inv, -1], d[inv], y[inv]


def spend_line(spend: Any, cells: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Expected spend as intercept + slope * m per cell; checked to be linear in m."""
    probe = cells.copy()
    probe["monetary_value"] = 0.0
    s0 = np.asarray(spend.conditional_expected_average_profit(probe), dtype=float)
    probe["monetary_value"] = 1.0
    s1 = np.asarray(spend.conditional_expected_average_profit(probe), dtype=float) - s0
    check = np.asarray(spend.conditional_expected_average_profit(cells), dtype=float)
    fit = s0 + s1 * cells["monetary_value"].to_numpy(dtype=float)
    if not np.allclose(check, fit, rtol=1e-8, atol=1e-8):
        raise ModelDataError(f"{type(spend).__name__}'s expected spend is not linear in the "
                             "customer's mean spend; cell scoring needs it to be")
    return s0, s1


def equity_of(purchase: Any, spend: Any, cells: pd.DataFrame, s: ValuationSettings) -> float:
    """Customer equity of scored or unscored cells: sum of n * CLV(mean m)."""
    alive, det, _ = _det(purchase, cells, s)
    s0, s1 = spend_line(spend, cells)
    m = cells["monetary_value"].to_numpy(dtype=float)
    return float(np.dot(cells["n"].to_numpy(dtype=float), s.margin_rate * (s0 + s1 * m) * det))


def delta_std_err(models: Sequence[Any], f: Callable[[list[Any]], np.ndarray | float],
                  what: str = "customer equity") -> np.ndarray:
    """Standard errors of ``f(models)`` (a number or a vector) by the delta method over the
    parameters of ``models``: each model is moved along its unconstrained parameters with
    ``with_theta`` (central differences) and its covariance comes from ``result_``."""
    for model in models:
        if not hasattr(model, "result_"):
            raise ModelDataError(f"{type(model).__name__} has no standard errors (it was not "
                                 f"fitted, e.g. made with from_params), so {what} has no "
                                 "interval; pass interval=False")
    var: np.ndarray | float = 0.0
    for j, model in enumerate(models):
        theta = np.asarray(model._theta, dtype=float)
        cols = []
        for i in range(len(theta)):
            h = 1e-5 * max(1.0, abs(theta[i]))
            vals = []
            for sign in (1, -1):
                th = theta.copy()
                th[i] += sign * h
                moved = list(models)
                moved[j] = model.with_theta(th)
                vals.append(np.asarray(f(moved), dtype=float))
            cols.append((vals[0] - vals[1]) / (2 * h))
        jac = np.stack(cols, axis=-1)  # (..., parameters)
        var = var + np.einsum("...i,ij,...j->...", jac, model.result_.cov_unconstrained, jac)
    return np.sqrt(np.maximum(var, 0.0))


def log_delta_interval(models: Sequence[Any], value_at: Callable[[list[Any]], float],
                       value: float) -> tuple[float, float, float]:
    """90% interval and standard error of a positive total (delta method on its log) over the
    parameters of ``models``: ``value_at(models)`` recomputes the total."""
    se_log = float(delta_std_err(models, lambda ms: np.log(value_at(ms))))
    return value * np.exp(-Z90 * se_log), value * np.exp(Z90 * se_log), value * se_log


def equity_interval(purchase: Any, spend: Any, cells: pd.DataFrame, s: ValuationSettings,
                    equity: float) -> tuple[float, float, float]:
    """90% interval and standard error of customer equity over both models' parameters."""
    return log_delta_interval([purchase, spend],
                              lambda ms: equity_of(ms[0], ms[1], cells, s), equity)


def summarise(purchase: Any, spend: Any, scored: pd.DataFrame, s: ValuationSettings,
              customers: pd.DataFrame, interval: bool) -> Valuation:
    """A :class:`Valuation` from scored cells and the per-customer frame."""
    n = scored["n"].to_numpy(dtype=float)
    equity = float(np.dot(n, scored["clv"].to_numpy()))
    notes: list[str] = []
    lo = hi = se = float("nan")
    if interval:
        lo, hi, se = equity_interval(purchase, spend, scored, s, equity)
    else:
        notes.append("no interval requested")
    return Valuation(customers, equity, (float(lo), float(hi)), float(se), s, int(n.sum()),
                     float(np.dot(n, scored["expected_transactions"].to_numpy())), tuple(notes))


def customer_value(purchase: Any, spend: Any, data: pd.DataFrame, settings: ValuationSettings,
                   interval: bool = True) -> Valuation:
    """CLV of every customer in ``data`` (a DataFrame) and customer equity with a 90% interval.

    Parameters
    ----------
    purchase : fitted purchase/dropout model (BG/NBD, MBG/NBD, Pareto/NBD)
    spend : fitted spend model (Gamma-Gamma)
    data : DataFrame
        ``frequency, recency, T, monetary_value``, the models' covariates, and optionally
        ``customer_id``: features as of the valuation date.
    settings : ValuationSettings
        Horizon, period, discount rate, margin and currency.
    interval : bool, default=True
        Compute the equity interval from both models' parameter uncertainty.
    """
    cols = cell_columns(purchase, spend)
    missing = [c for c in [*cols, "monetary_value"] if c not in data.columns]
    if missing:
        raise ModelDataError(f"valuation needs column(s) {missing}; data has {list(data.columns)}")
    codes = data.groupby(cols, sort=False, dropna=False).ngroup().to_numpy()
    g = pd.DataFrame({"code": codes, "m": data["monetary_value"].to_numpy(dtype=float)})
    agg = g.groupby("code").m.agg(["size", "mean"])
    first = pd.Series(np.arange(len(data))).groupby(codes).first().to_numpy()
    cells = data.iloc[first][cols].reset_index(drop=True)
    cells["n"] = agg["size"].to_numpy()
    cells["monetary_value"] = agg["mean"].to_numpy()
    scored = score_cells(purchase, spend, cells, settings)
    m = data["monetary_value"].to_numpy(dtype=float)
    sc = scored.iloc[codes]
    spend_i = sc["spend_0"].to_numpy() + sc["spend_1"].to_numpy() * m
    out = pd.DataFrame({
        "expected_transactions": sc["expected_transactions"].to_numpy(),
        "p_alive": sc["p_alive"].to_numpy(),
        "expected_spend": spend_i,
        "clv": settings.margin_rate * spend_i * sc["det"].to_numpy(),
    })
    if "customer_id" in data.columns:
        out.insert(0, "customer_id", data["customer_id"].to_numpy())
    return summarise(purchase, spend, scored, settings, out, interval)
