"""Backtests of a purchase model on a calibration/holdout split: how accurate is it?

Shown with every fit: the tracking of cumulative repeat transactions over the holdout (actual vs
predicted, per period), conditional expectations by calibration frequency (the classic
"conditional expectations" plot), the aggregate error over the holdout and per-customer MAE.
:func:`backtest` serves BG/NBD, MBG/NBD and Pareto/NBD (continuous time); :func:`backtest_discrete`
gives the same figures for BG/BB, whose transactions are active periods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cxasset.exceptions import ModelDataError

FREQ_CAP = 7  # calibration frequencies of 7 and more are pooled, as in Fader, Hardie & Lee (2005)


@dataclass(frozen=True)
class Backtest:
    """Holdout accuracy of a purchase model."""

    tracking: pd.DataFrame  # period, actual, predicted, actual_cumulative, predicted_cumulative
    conditional: pd.DataFrame  # frequency (capped), customers, actual, predicted (mean per customer)
    actual_total: float
    predicted_total: float
    mae: float  # mean absolute error per customer, transactions
    period: str

    @property
    def aggregate_error(self) -> float:
        """Relative error of total holdout transactions, (predicted - actual) / actual."""
        return (self.predicted_total - self.actual_total) / max(self.actual_total, 1e-12)

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "holdout_periods": len(self.tracking),
            "actual_total": self.actual_total,
            "predicted_total": self.predicted_total,
            "aggregate_error": self.aggregate_error,
            "mae_per_customer": self.mae,
            "tracking": self.tracking.to_dict("list"),
            "conditional": self.conditional.to_dict("list"),
        }


def backtest(model: Any, calibration: pd.DataFrame, tracking: pd.DataFrame, period: str
             ) -> Backtest:
    """Compare ``model``'s holdout predictions with what happened.

    Parameters
    ----------
    model : fitted purchase model
        Needs ``conditional_expected_purchases(t, df)``.
    calibration : DataFrame
        Calibration features with ``frequency, recency, T, frequency_holdout, duration_holdout``
        and the model's covariates.
    tracking : DataFrame
        ``period, transactions``: actual repeat transactions per holdout period
        (:func:`cxasset.features.holdout_tracking`).
    period : str
        The period unit, for labels.
    """
    duration = float(calibration["duration_holdout"].iloc[0])
    n = int(np.ceil(duration - 1e-9))
    ts = np.minimum(np.arange(1, n + 1, dtype=float), duration)
    cum = np.array([model.conditional_expected_purchases(t, calibration).sum() for t in ts])
    pred_i = model.conditional_expected_purchases(duration, calibration)
    return _assemble(cum, tracking, calibration, pred_i, period)


def backtest_discrete(model: Any, calibration: pd.DataFrame, tracking: pd.DataFrame,
                      period: str) -> Backtest:
    """Holdout accuracy of a BG/BB model: expected against actual active periods.

    Parameters
    ----------
    model : fitted BetaGeoBetaBinomModel
        Needs ``expected_purchases_by_opportunity(n, df)``.
    calibration : DataFrame
        :func:`cxasset.features.discrete_stats` with a holdout end: ``frequency, recency,
        n_periods, frequency_holdout, n_periods_holdout``.
    tracking : DataFrame
        ``period, transactions``: customers active at each holdout opportunity
        (:func:`cxasset.features.discrete_tracking`).
    period : str
        The period unit, for labels.

    Returns
    -------
    Backtest
        As :func:`backtest`, with transactions counted as active periods; the tracking runs over
        the holdout opportunities (a customer's k-th is counted only if it is in their holdout).
    """
    need = ["frequency", "recency", "n_periods", "frequency_holdout", "n_periods_holdout"]
    missing = [c for c in need if c not in calibration.columns]
    if missing:
        raise ModelDataError(f"backtest_discrete needs column(s) {missing}; compute the "
                             "calibration statistics with discrete_stats(..., holdout_end=...)")
    nh = calibration["n_periods_holdout"].to_numpy(dtype=int)
    n = int(nh.max()) if len(nh) else 0
    if n == 0:
        raise ModelDataError(f"the holdout has no whole {period}: every holdout opportunity is a "
                             f"complete {period}; choose an earlier calibration_end")
    # score the distinct histories only, then spread back to customers
    key = calibration[["frequency", "recency", "n_periods", "n_periods_holdout"]]
    uniq, inv, counts = np.unique(key.to_numpy(dtype=float), axis=0, return_inverse=True,
                                  return_counts=True)
    cells = pd.DataFrame(uniq, columns=key.columns)
    by = model.expected_purchases_by_opportunity(n, cells)
    by = by * (np.arange(1, n + 1)[None, :] <= cells["n_periods_holdout"].to_numpy()[:, None])
    cum = np.cumsum(counts @ by)
    pred_i = by.sum(axis=1)[inv.reshape(-1)]
    return _assemble(cum, tracking, calibration, pred_i, period)


def _assemble(cum: np.ndarray, tracking: pd.DataFrame, calibration: pd.DataFrame,
              pred_i: np.ndarray, period: str) -> Backtest:
    """A :class:`Backtest` from the predicted cumulative total per holdout period, the actual
    transactions per period, and the per-customer predictions."""
    n = len(cum)
    actual = np.zeros(n)
    k = tracking["period"].to_numpy(dtype=int)
    ok = (k >= 1) & (k <= n)
    actual[k[ok] - 1] = tracking["transactions"].to_numpy(dtype=float)[ok]
    track = pd.DataFrame({
        "period": np.arange(1, n + 1),
        "actual": actual,
        "predicted": np.diff(np.concatenate([[0.0], cum])),
        "actual_cumulative": actual.cumsum(),
        "predicted_cumulative": cum,
    })
    act_i = calibration["frequency_holdout"].to_numpy(dtype=float)
    capped = np.minimum(calibration["frequency"].to_numpy(dtype=int), FREQ_CAP)
    cond = (pd.DataFrame({"frequency": capped, "actual": act_i, "predicted": pred_i})
            .groupby("frequency").agg(customers=("actual", "size"), actual=("actual", "mean"),
                                      predicted=("predicted", "mean")).reset_index())
    return Backtest(track, cond, float(act_i.sum()), float(pred_i.sum()),
                    float(np.mean(np.abs(pred_i - act_i))), period)
