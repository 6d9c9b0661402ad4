"""Fit the customer-base models of a workspace: backtest on the calibration/holdout split, choose,
refit on the whole observation window, and save the fits in the workspace.

Used by ``cxasset fit`` and the Python API alike::

    from cxasset.book import Workspace
    from cxasset.models.workflow import fit_workspace
    report = fit_workspace(Workspace("ws"), model="auto", covariates=["nps"])

BG/BB (``model="bgbb"``) models a different unit of data, one yes/no opportunity per book period
(:mod:`cxasset.features.discrete`), so ``auto`` never chooses it; ask for it by name.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from cxasset.exceptions import ModelDataError
from cxasset.features import (
    discrete_stats,
    discrete_tracking,
    feature_frame,
    holdout_tracking,
)
from cxasset.features._time import date_day
from cxasset.models.backtest import Backtest, backtest, backtest_discrete
from cxasset.models.contractual import RETENTION_MODELS, RetentionReport, fit_contractual

#: ``--model`` name -> (module, class) of the purchase/dropout models of non-contractual books.
PURCHASE_MODELS: dict[str, tuple[str, str]] = {
    "bgnbd": ("cxasset.models.bgnbd", "BetaGeoModel"),
    "mbgnbd": ("cxasset.models.mbgnbd", "ModifiedBetaGeoModel"),
    "pnbd": ("cxasset.models.paretonbd", "ParetoNBDModel"),
}

#: ``--model`` name -> (module, class) of the models of discrete opportunities (one per period);
#: fitted only when asked for by name.
DISCRETE_MODELS: dict[str, tuple[str, str]] = {
    "bgbb": ("cxasset.models.bgbb", "BetaGeoBetaBinomModel"),
}

Progress = Callable[[str], None]


def model_class(name: str) -> Any:
    models = {**PURCHASE_MODELS, **DISCRETE_MODELS}
    if name not in models:
        raise ModelDataError(f"unknown model {name!r}; choose one of "
                             f"{', '.join([*PURCHASE_MODELS, 'auto'])} (the best of these), or "
                             f"{', '.join(DISCRETE_MODELS)} (discrete opportunities)")
    module, cls = models[name]
    return getattr(importlib.import_module(module), cls)


def model_name(model: Any) -> str:
    return next(k for k, (_, c) in {**PURCHASE_MODELS, **DISCRETE_MODELS}.items()
                if c == type(model).__name__)


@dataclass(frozen=True)
class Candidate:
    """One purchase model fitted on the calibration period and backtested on the holdout."""

    name: str
    model: Any
    backtest: Backtest

    def to_dict(self) -> dict[str, Any]:
        r = self.model.result_
        return {"model": self.name, "params": r.params, "std_err": r.std_err,
                "conf_int": {k: list(v) for k, v in r.conf_int.items()},
                "log_likelihood": r.log_likelihood, "aic": r.aic, "bic": r.bic,
                "converged": r.converged, "notes": list(r.notes),
                "backtest": self.backtest.to_dict()}


@dataclass(frozen=True)
class FitReport:
    """What ``cxasset fit`` did: every candidate's backtest, the choice and why, the final fits."""

    chosen: str
    reason: str
    candidates: list[Candidate]
    purchase: Any  # refitted on the whole window
    spend: Any
    calibration_end: dt.date
    as_of: dt.date
    period: str
    covariates: dict[str, list[str]] = field(default_factory=dict)

    def candidate(self, name: str) -> Candidate:
        return next(c for c in self.candidates if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        r = self.purchase.result_
        s = self.spend.result_
        return {
            "model": self.chosen,
            "reason": self.reason,
            "period": self.period,
            "calibration_end": str(self.calibration_end),
            "as_of": str(self.as_of),
            "covariates": self.covariates,
            "params": r.params, "std_err": r.std_err,
            "conf_int": {k: list(v) for k, v in r.conf_int.items()},
            "log_likelihood": r.log_likelihood, "aic": r.aic, "bic": r.bic,
            "n_obs": r.n_obs, "converged": r.converged, "notes": list(r.notes),
            "backtest": self.candidate(self.chosen).backtest.to_dict(),
            "spend": {"model": "gammagamma", "params": s.params, "std_err": s.std_err,
                      "conf_int": {k: list(v) for k, v in s.conf_int.items()},
                      "log_likelihood": s.log_likelihood, "notes": list(s.notes),
                      "independence": getattr(self.spend, "independence_", None) and
                      self.spend.independence_.to_dict()},
            "candidates": [c.to_dict() for c in self.candidates],
        }


def covariate_spec(df: pd.DataFrame, names: Sequence[str]) -> dict[str, list[str] | None]:
    """How each covariate enters the models: ``None`` for a number (or true/false), else the
    levels of a text column that get a 0/1 dummy (the most common level is the baseline)."""
    spec: dict[str, list[str] | None] = {}
    for name in names:
        if name not in df.columns:
            raise ModelDataError(f"covariate {name!r} is not a feature; features are: "
                                 f"{', '.join(df.columns)}")
        col = df[name]
        if col.isna().any():
            raise ModelDataError(f"covariate {name!r} has missing values for "
                                 f"{int(col.isna().sum()):,} of {len(col):,} customers; impute "
                                 "them (e.g. a 'none' level or the median) or choose another")
        numeric = pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)
        spec[name] = None if numeric else [str(v) for v in col.value_counts().index[1:]]
    return spec


def covariate_names(spec: dict[str, list[str] | None]) -> list[str]:
    """The model's covariate columns: numeric names, and ``<column>=<level>`` dummies."""
    return [c for name, levels in spec.items()
            for c in ([name] if levels is None else [f"{name}={lv}" for lv in levels])]


def encode_covariates(df: pd.DataFrame, spec: dict[str, list[str] | None]) -> pd.DataFrame:
    """``df`` with the covariate columns of ``spec`` (numbers as floats, text as dummies)."""
    out = df.copy()
    for name, levels in spec.items():
        if levels is None:
            out[name] = df[name].astype(float)
        for lv in levels or []:
            out[f"{name}={lv}"] = (df[name].astype(str) == lv).astype(float)
    return out


def covariate_expressions(table: Any, spec: dict[str, list[str] | None]) -> dict[str, Any]:
    """The covariate columns of ``spec`` as expressions on an ibis ``table`` (in the engine)."""
    out: dict[str, Any] = {}
    for name, levels in spec.items():
        if levels is None:
            out[name] = table[name].cast("float64")
        for lv in levels or []:
            out[f"{name}={lv}"] = (table[name].cast("string") == lv).cast("float64")
    return out


def fit_workspace(
    ws: Any,
    model: str = "auto",
    covariates: Sequence[str] = (),
    calibration_end: dt.date | None = None,
    progress: Progress | None = None,
) -> FitReport | RetentionReport:
    """Fit, backtest, choose and save the models of a workspace's book: purchase and spend
    models for transactions, a retention model for subscriptions
    (:mod:`cxasset.models.contractual`)."""
    say = progress or (lambda _m: None)
    s = ws.settings
    contractual = ws.meta()["kind"] == "subscriptions"
    cal_end = calibration_end or s.calibration_end or _default_calibration_end(ws, contractual)
    if contractual:
        if model in PURCHASE_MODELS or model in DISCRETE_MODELS:
            raise ModelDataError(f"{model} models purchases of a non-contractual book; this is "
                                 "a subscription book: use the contractual models "
                                 f"({', '.join(RETENTION_MODELS)} or auto)")
        return fit_contractual(ws, model, covariates, cal_end, say)
    if model in RETENTION_MODELS:
        raise ModelDataError(f"{model} models contract renewals; this book has transactions: "
                             f"use {', '.join([*PURCHASE_MODELS, *DISCRETE_MODELS])} or auto")
    if model in DISCRETE_MODELS:
        return _fit_discrete(ws, model, covariates, cal_end, say)
    say("computing calibration features")
    cal = feature_frame(ws, calibration_end=cal_end)
    spec = covariate_spec(cal, covariates)
    cov_cols = covariate_names(spec)
    cal = encode_covariates(cal, spec)
    tracking = holdout_tracking(ws.table("customers"), ws.table("transactions"),
                                date_day(cal_end), date_day(s.as_of), s.period_days,
                                s.transaction_grain).to_pandas()
    names = list(PURCHASE_MODELS) if model == "auto" else [model]
    candidates = []
    for name in names:
        say(f"fitting {name} on the calibration period")
        m = model_class(name)().fit(cal, covariates=cov_cols or None)
        candidates.append(Candidate(name, m, backtest(m, cal, tracking, s.period)))
    chosen, reason = _choose(candidates, model)
    say(f"refitting {chosen} on the whole window to {s.as_of}")
    full = encode_covariates(feature_frame(ws), spec)
    purchase = model_class(chosen)().fit(full, covariates=cov_cols or None)
    say("fitting the spend model")
    from cxasset.models.gammagamma import GammaGammaModel

    spend = GammaGammaModel().fit(full)
    report = FitReport(chosen, reason, candidates, purchase, spend, cal_end, s.as_of, s.period,
                       purchase.covariates_)
    ws.save_artifact("fit", report.to_dict())
    ws.save_artifact("model:purchase", purchase.to_state())
    ws.save_artifact("model:spend", spend.to_state())
    ws.save_artifact("covariates", spec)
    return report


def _fit_discrete(ws: Any, model: str, covariates: Sequence[str], cal_end: dt.date,
                  say: Progress) -> FitReport:
    """BG/BB on the book's discrete opportunities: fit on the calibration statistics, backtest
    on the holdout's active periods, refit on the whole window, fit Gamma-Gamma on the spend of
    the active periods, and save the fits (as :func:`fit_workspace` does for the others)."""
    if covariates:
        raise ModelDataError(f"{model} takes no covariates (got {', '.join(covariates)}); drop "
                             "--covariates, or use bgnbd, mbgnbd or pnbd, which take them")
    s = ws.settings
    customers, transactions = ws.table("customers"), ws.table("transactions")
    cls = model_class(model)
    say(f"computing the calibration opportunities (one per {s.period})")
    cal = discrete_stats(customers, transactions, cal_end, s.period, holdout_end=s.as_of
                         ).to_pandas()
    tracking = discrete_tracking(customers, transactions, cal_end, s.as_of, s.period
                                 ).to_pandas()
    say(f"fitting {model} on the calibration period")
    m = cls().fit(cal)
    cand = Candidate(model, m, backtest_discrete(m, cal, tracking, s.period))
    b = cand.backtest
    reason = (f"{model} as requested: one opportunity per {s.period} after the first purchase, "
              f"a transaction is a {s.period} with a purchase; holdout MAE {b.mae:.3f} active "
              f"{s.period}s per customer, aggregate error {b.aggregate_error:+.1%}")
    say(f"refitting {model} on the whole window to {s.as_of}")
    full = discrete_stats(customers, transactions, s.as_of, s.period).to_pandas()
    purchase = cls().fit(full)
    say("fitting the spend model (spend per active period)")
    from cxasset.models.gammagamma import GammaGammaModel

    spend = GammaGammaModel().fit(full)
    report = FitReport(model, reason, [cand], purchase, spend, cal_end, s.as_of, s.period, {})
    ws.save_artifact("fit", report.to_dict())
    ws.save_artifact("model:purchase", purchase.to_state())
    ws.save_artifact("model:spend", spend.to_state())
    ws.save_artifact("covariates", {})
    return report


def _default_calibration_end(ws: Any, contractual: bool = False) -> dt.date:
    """Without a calibration_end, the last third of the observation window is the holdout."""
    s = ws.settings
    t = ws.table("subscriptions" if contractual else "transactions")
    first = (t.started_at if contractual else t.occurred_at).min().to_pyarrow().as_py().date()
    return first + (s.as_of - first) * 2 / 3


def _choose(cands: list[Candidate], requested: str) -> tuple[str, str]:
    if requested != "auto":
        c = cands[0]
        return c.name, (f"{c.name} as requested; holdout MAE {c.backtest.mae:.3f} transactions "
                        f"per customer, aggregate error {c.backtest.aggregate_error:+.1%}")
    ok = [c for c in cands if c.model.result_.converged] or cands
    best = min(ok, key=lambda c: c.backtest.mae)
    others = "; ".join(f"{c.name} {c.backtest.mae:.3f}" for c in cands if c is not best)
    return best.name, (f"{best.name} has the lowest holdout error per customer (MAE "
                       f"{best.backtest.mae:.3f} transactions; {others}), aggregate error "
                       f"{best.backtest.aggregate_error:+.1%}")


def load_models(ws: Any) -> tuple[Any, Any]:
    """The purchase and spend models saved by :func:`fit_workspace`."""
    states = [ws.load_artifact("model:purchase"), ws.load_artifact("model:spend")]
    out = []
    for st in states:
        name = st["model"]
        module = next((m for m, c in [*PURCHASE_MODELS.values(), *DISCRETE_MODELS.values()]
                       if c == name),
                      "cxasset.models.gammagamma")
        out.append(getattr(importlib.import_module(module), name).from_state(st))
    return out[0], out[1]


__all__ = ["DISCRETE_MODELS", "PURCHASE_MODELS", "Candidate", "FitReport", "covariate_expressions",
           "covariate_names", "covariate_spec", "encode_covariates", "fit_workspace", "load_models"]
