"""Retention models of a subscription book: fit on the calibration period, backtest the holdout,
refit on the whole window, save.

- ``sbg``: shifted-beta-geometric churn over renewal periods (Fader & Hardie 2007), with optional
  covariates on its two parameters; a customer contributes the periods they lived (``t``) and
  whether they churned.
- ``hazard``: a discrete-time proportional-hazards GLM on person-period rows, with covariates.

The backtest follows the customers active at the calibration end through the holdout: predicted
vs actual customers still active after each holdout period, churned in total, and the mean
absolute error between each customer's predicted churn probability and what happened.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cxasset.exceptions import ModelDataError
from cxasset.features import feature_frame, lifetimes, person_periods
from cxasset.features._time import date_day
from cxasset.models.hazard import DiscreteHazardModel
from cxasset.models.sbg import ShiftedBetaGeoModel

RETENTION_MODELS: dict[str, Any] = {"sbg": ShiftedBetaGeoModel, "hazard": DiscreteHazardModel}


def retention_rows(ws: Any, cut: dt.date, spec: dict[str, list[str] | None]) -> pd.DataFrame:
    """Per customer started by ``cut``: lifetime (``t`` periods lived, ``churned``), tenure,
    recurring revenue and the encoded covariates of ``spec``."""
    from cxasset.models.workflow import encode_covariates

    s = ws.settings
    life = lifetimes(ws.table("subscriptions"), date_day(cut), s.period_days).to_pandas()
    feats = feature_frame(ws, as_of=cut)
    keep = ["customer_id", *[c for c in spec if c not in life.columns]]
    df = life.merge(feats[keep], on="customer_id", how="left")
    df["churned"] = df["churned"].astype(int)
    df["t"] = df["n_periods"]  # the churn period, or the periods an active customer completed
    df["age"] = df["n_periods"]
    return encode_covariates(df, spec)


def survival_after(model: Any, k: int, data: pd.DataFrame) -> np.ndarray:
    """P(still active after ``k`` more periods | active now, ``data.age`` periods done)."""
    if isinstance(model, DiscreteHazardModel):
        return model.survival(k, data, tenure=data["age"].to_numpy())
    return model.survival(k, data, age=data["age"].to_numpy())


def fit_retention(name: str, rows: pd.DataFrame, ws: Any, cut: dt.date, covs: list[str]) -> Any:
    if name not in RETENTION_MODELS:
        raise ModelDataError(f"unknown model {name!r} for a subscription book; choose one of "
                             f"{', '.join(RETENTION_MODELS)}")
    if name == "sbg":
        return ShiftedBetaGeoModel().fit(rows, covariates=covs or None)
    s = ws.settings
    pp = person_periods(ws.table("subscriptions"), date_day(cut), s.period_days).to_pandas()
    pp = pp.merge(rows[["customer_id", *covs]], on="customer_id", how="left")
    return DiscreteHazardModel().fit(pp, covariates=covs or None)


@dataclass(frozen=True)
class RetentionBacktest:
    """Holdout accuracy of a retention model, on the customers active at the calibration end."""

    tracking: pd.DataFrame  # period, actual, predicted (customers still active)
    customers: int
    actual_total: float  # churned in the holdout
    predicted_total: float
    mae: float  # mean |P(churn by the holdout end) - churned|
    period: str

    @property
    def aggregate_error(self) -> float:
        return (self.predicted_total - self.actual_total) / max(self.actual_total, 1e-12)

    def to_dict(self) -> dict[str, Any]:
        return {"period": self.period, "holdout_periods": len(self.tracking),
                "customers": self.customers, "measure": "churned customers",
                "actual_total": self.actual_total, "predicted_total": self.predicted_total,
                "aggregate_error": self.aggregate_error, "mae_per_customer": self.mae,
                "tracking": self.tracking.to_dict("list")}


def retention_backtest(model: Any, cal: pd.DataFrame, full: pd.DataFrame, periods: int,
                       period: str) -> RetentionBacktest:
    """Follow the customers active in ``cal`` through ``periods`` holdout periods."""
    act = cal[cal.churned == 0]
    fut = full.set_index("customer_id").loc[act.customer_id]
    lived = fut["tenure"].to_numpy() - act["tenure"].to_numpy()  # periods after the cut-off
    gone = fut["churned"].to_numpy(bool)
    k = np.arange(1, periods + 1)
    actual = np.array([np.sum(~gone | (lived > kk)) for kk in k], dtype=float)
    predicted = np.array([survival_after(model, int(kk), act).sum() for kk in k])
    p_churn = 1.0 - survival_after(model, periods, act)
    churned = (gone & (lived <= periods)).astype(float)
    track = pd.DataFrame({"period": k, "actual": actual, "predicted": predicted})
    return RetentionBacktest(track, len(act), float(churned.sum()), float(p_churn.sum()),
                             float(np.mean(np.abs(p_churn - churned))), period)


@dataclass(frozen=True)
class RetentionReport:
    """What ``cxasset fit`` did on a subscription book."""

    chosen: str
    reason: str
    candidates: list[tuple[str, Any, RetentionBacktest]]
    model: Any
    calibration_end: dt.date
    as_of: dt.date
    period: str

    def to_dict(self) -> dict[str, Any]:
        r = self.model.result_
        bt = next(b for n, _, b in self.candidates if n == self.chosen)
        return {"model": self.chosen, "kind": "subscriptions", "reason": self.reason,
                "period": self.period, "calibration_end": str(self.calibration_end),
                "as_of": str(self.as_of), "params": r.params, "std_err": r.std_err,
                "conf_int": {k: list(v) for k, v in r.conf_int.items()},
                "log_likelihood": r.log_likelihood, "aic": r.aic, "bic": r.bic,
                "n_obs": r.n_obs, "converged": r.converged, "notes": list(r.notes),
                "backtest": bt.to_dict(),
                "candidates": [{"model": n, "log_likelihood": m.result_.log_likelihood,
                                "backtest": b.to_dict()} for n, m, b in self.candidates]}


def fit_contractual(ws: Any, model: str, covariates: Sequence[str], cal_end: dt.date,
                    say: Callable[[str], None]) -> RetentionReport:
    """Fit, backtest, choose and save the retention model of a subscription book."""
    from cxasset.models.workflow import covariate_names, covariate_spec

    s = ws.settings
    names = list(RETENTION_MODELS) if model == "auto" else [model]
    say("building calibration lifetimes")
    base = feature_frame(ws, as_of=cal_end)
    spec = covariate_spec(base, covariates)
    covs = covariate_names(spec)
    cal = retention_rows(ws, cal_end, spec)
    full = retention_rows(ws, s.as_of, spec)
    periods = int((date_day(s.as_of) - date_day(cal_end)) // s.period_days)
    if periods < 1:
        raise ModelDataError(f"the holdout ({cal_end} to {s.as_of}) is shorter than one {s.period}")
    cands = []
    for name in names:
        say(f"fitting {name} on the calibration period")
        m = fit_retention(name, cal, ws, cal_end, covs)
        cands.append((name, m, retention_backtest(m, cal, full, periods, s.period)))
    best = min(cands, key=lambda c: c[2].mae)
    reason = (f"{best[0]} as requested" if model != "auto" else
              f"{best[0]} has the lowest holdout error per customer") + (
        f"; holdout MAE {best[2].mae:.3f}, churned {best[2].actual_total:,.0f} actual vs "
        f"{best[2].predicted_total:,.0f} predicted")
    say(f"refitting {best[0]} on the whole window to {s.as_of}")
    final = fit_retention(best[0], full, ws, s.as_of, covs)
    report = RetentionReport(best[0], reason, cands, final, cal_end, s.as_of, s.period)
    ws.save_artifact("fit", report.to_dict())
    ws.save_artifact("model:retention", final.to_state())
    ws.save_artifact("covariates", spec)
    return report


def load_retention(ws: Any) -> Any:
    state = ws.load_artifact("model:retention")
    cls = next(c for c in RETENTION_MODELS.values() if c.__name__ == state["model"])
    return cls.from_state(state)
