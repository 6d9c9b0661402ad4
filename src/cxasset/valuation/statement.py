"""The customer asset statement: customer equity at two dates and what changed it.

Like a financial statement's roll-forward, it starts from the customer equity of the base at the
start of a period, adds what each source of change contributed, and ends at the equity of the base
at the end. Both dates are valued with the *same* fitted models (today's), so the change reflects
what customers did (bought, went quiet, spent more, called service, referred friends), not a
re-estimation.

The value of customer i as of a date, over the valuation horizon, is::

    V_i = p_i * u_i,   u_i = margin * s_i * g_i - c_i * d_i + rho_i * R * d_i

with ``p_i`` P(alive) (1 or 0 for a subscriber), ``s_i`` the expected spend per transaction (the
recurring revenue per period of a subscriber), ``g_i`` the discounted expected transactions given
alive (paid periods of a subscriber), ``d_i`` the discounted expected periods alive given alive,
``c_i`` the cost to serve and ``rho_i`` the referrals per period alive (the customer's own rates
so far), and ``R`` the value of a referred customer. The first term summed over the base is the
customer equity of :func:`cxasset.valuation.value_workspace`; the statement's equity is *net* of
cost to serve and with the value of referrals.

For the customers already in the base at the start (0) and still there at the end (1), the change
``p1 u1 - p0 u0`` splits exactly (midpoint, or Bennet, decomposition: each factor's change times
the mean of the others) into

- retention: ``(p1 - p0) * mean(u)``, customers lost (or found to be still active),
- purchase frequency (renewal outlook of subscribers): ``mean(p) * margin * mean(s) * (g1 - g0)``,
- spend and margin: ``mean(p) * margin * (s1 - s0) * mean(g)``,
- cost to serve: ``-mean(p) * (c1 d1 - c0 d0)``, and referrals: ``mean(p) * R * (rho1 d1 - rho0 d0)``,

and customers acquired in the period add their value at the end (acquisition, by cohort). The
lines add up to the change to rounding. A subscriber who churned keeps the start's ``u`` (only
retention moves). Intervals (90%) are the delta method over the fitted models' parameters; the
cost-to-serve and referral rates are the book's observed rates and add no uncertainty of their own.

Revenue leakage from churn: ``sum_i (p0_i - p1_i) * r_i``, the expected number of customers lost in
the period (P(alive) at the start minus at the end; its expectation is the number who leave) times
each one's annual revenue while active ``r_i = s_i * (expected transactions in a year given alive)``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cxasset.exceptions import ModelDataError
from cxasset.money import money
from cxasset.valuation.clv import (
    DAYS_PER_YEAR,
    Z90,
    ValuationSettings,
    cell_columns,
    conditional_curves,
    delta_std_err,
    spend_line,
)

#: The statement's lines between the opening and the closing equity, in order.
LINES = ("acquisition", "retention", "frequency", "spend_margin", "referrals", "cost_to_serve")
LABELS = {
    "transactions": {
        "acquisition": "Acquisition (new customers)",
        "retention": "Retention (customers lost or still active)",
        "frequency": "Purchase frequency",
        "spend_margin": "Spend and margin",
        "referrals": "Referrals",
        "cost_to_serve": "Cost to serve"},
    "subscriptions": {
        "acquisition": "Acquisition (new subscribers)",
        "retention": "Retention (subscribers who churned)",
        "frequency": "Renewal outlook (tenure)",
        "spend_margin": "Recurring revenue and margin",
        "referrals": "Referrals",
        "cost_to_serve": "Cost to serve"},
}
#: What each customer's parts are: see the module docstring.
PARTS = ("p", "s", "g", "d", "y")
#: A referred customer is valued when at least this many customers came through referral.
MIN_REFERRED = 30


@dataclass(frozen=True)
class Statement:
    """Customer equity at ``start`` and ``end`` and the lines that connect them (all in the book's
    currency, over the valuation horizon of ``settings``), with 90% intervals."""

    start: dt.date
    end: dt.date
    kind: str
    opening: dict[str, Any]
    closing: dict[str, Any]
    lines: list[dict[str, Any]]
    acquisition_by_cohort: list[dict[str, Any]]
    customers: dict[str, int]
    leakage: dict[str, Any]
    referred_value: float | None
    settings: ValuationSettings
    notes: tuple[str, ...] = field(default=())

    def line(self, key: str) -> dict[str, Any]:
        return next(r for r in self.lines if r["key"] == key)

    def to_dict(self) -> dict[str, Any]:
        return {"start": str(self.start), "end": str(self.end), "kind": self.kind,
                "currency": self.settings.currency, "opening": self.opening,
                "closing": self.closing, "change": self.closing["estimate"]
                - self.opening["estimate"], "lines": self.lines,
                "acquisition_by_cohort": self.acquisition_by_cohort,
                "customers": self.customers, "leakage": self.leakage,
                "referred_value": self.referred_value, "settings": self.settings.to_dict(),
                "notes": list(self.notes)}


# --------------------------------------------------------------------------- per-customer parts
def purchase_parts(models: Sequence[Any], frame: pd.DataFrame, vs: ValuationSettings,
                   cache: dict[Any, Any] | None = None) -> dict[str, np.ndarray]:
    """``p, s, g, d, y`` of every row of ``frame`` under a purchase and a spend model.

    ``frame``: the purchase model's statistics (``frequency, recency, T`` and covariates, or
    ``frequency, recency, n_periods`` for BG/BB) and ``monetary_value``. Rows are scored on cells
    of identical statistics. With ``cache``, the purchase model's parts are kept per (model,
    frame), so moving only the spend model does not recompute them.
    """
    purchase, spend = models
    key_ = (id(purchase), id(frame))
    if cache is not None and key_ in cache:
        _, codes, cells, p, g, d, y = cache[key_]
    else:
        codes, cells, p, g, d, y = _purchase_cells(purchase, spend, frame, vs)
        if cache is not None:  # the model is kept with its parts, so its id stays unique
            cache[key_] = (purchase, codes, cells, p, g, d, y)
    s0, s1 = spend_line(spend, cells)
    m = frame["monetary_value"].to_numpy(dtype=float)
    return {"p": p[codes], "s": s0[codes] + s1[codes] * m, "g": g[codes], "d": d[codes],
            "y": y[codes]}


def _purchase_cells(purchase: Any, spend: Any, frame: pd.DataFrame, vs: ValuationSettings
                    ) -> tuple[np.ndarray, pd.DataFrame, np.ndarray, np.ndarray, np.ndarray,
                               np.ndarray]:
    """Each row's cell, the cells, and per cell ``p, g, d, y`` of the purchase model."""
    discrete = hasattr(purchase, "expected_purchases_by_opportunity")
    key = (["frequency", "recency", "n_periods"] if discrete
           else cell_columns(purchase, spend))
    codes = frame.groupby(key, sort=False, dropna=False).ngroup().to_numpy()
    first = pd.Series(np.arange(len(frame))).groupby(codes).first().to_numpy()
    cells = frame.iloc[first][key].reset_index(drop=True)
    cells["monetary_value"] = 0.0  # the spend line is linear in m: intercept and slope per cell
    year = DAYS_PER_YEAR / vs.period_days
    if not discrete:
        p, g, _, d, y = conditional_curves(purchase, cells, vs, year)
        return codes, cells, p, g, d, y
    disc = (1.0 + vs.period_rate) ** -np.arange(1, vs.horizon + 1, dtype=float)
    p = np.asarray(purchase.probability_alive(cells), dtype=float)
    by = purchase.expected_purchases_by_opportunity(vs.horizon, cells)
    a_by = np.column_stack([purchase.probability_alive(cells, k)
                            for k in range(1, vs.horizon + 1)])
    safe = np.maximum(p, 1e-300)
    return (codes, cells, p, (by @ disc) / safe, (a_by @ disc) / safe,
            by[:, : max(1, round(year))].sum(axis=1) / safe)


def subscription_parts(models: Sequence[Any], rows: pd.DataFrame, vs: ValuationSettings,
                       cache: dict[Any, Any] | None = None) -> dict[str, np.ndarray]:
    """``p, s, g, d, y`` of subscribers (:func:`cxasset.models.contractual.retention_rows`): p = 1
    while active (0 once churned), s the recurring revenue per period, g = d the discounted
    expected paid periods ahead, y the expected paid periods in the next year."""
    from cxasset.models.contractual import survival_after

    (model,) = models
    active = rows["churned"].to_numpy() == 0
    act = rows[active].reset_index(drop=True)
    disc = (1.0 + vs.period_rate) ** -np.arange(1, vs.horizon + 1, dtype=float)
    k_year = max(1, round(DAYS_PER_YEAR / vs.period_days))
    ks = max(vs.horizon, k_year)
    surv = np.column_stack([survival_after(model, k, act) for k in range(1, ks + 1)])
    out = {k: np.zeros(len(rows)) for k in PARTS}
    out["p"][active] = 1.0
    out["s"][active] = act["recurring_revenue"].to_numpy(dtype=float)
    out["g"][active] = out["d"][active] = surv[:, : vs.horizon] @ disc
    out["y"][active] = surv[:, :k_year].sum(axis=1)
    return out


# --------------------------------------------------------------------------- the statement
@dataclass(frozen=True)
class Side:
    """One date's customers: ids, what the scorer needs, the observed service cost and referrals
    to date, and the periods alive they accrued over, ``base + slope * P(alive)`` (a
    non-contractual customer: ``t_x + P(alive) (T - t_x)`` plus the time from acquisition to
    the first purchase; a subscriber: tenure)."""

    ids: np.ndarray
    frame: pd.DataFrame
    cost: np.ndarray
    referrals: np.ndarray
    base: np.ndarray
    slope: np.ndarray


def _rates(side: Side, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cost to serve and referrals per period alive (at least one period of exposure)."""
    ex = np.maximum(side.base + side.slope * p, 1.0)
    return side.cost / ex, side.referrals / ex


def _values(parts: dict[str, np.ndarray], c: np.ndarray, rho: np.ndarray, margin: float,
            R: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """u (value if alive), and the margin and net value p * u of each customer."""
    mg = margin * parts["s"] * parts["g"]
    u = mg - c * parts["d"] + rho * R * parts["d"]
    return u, parts["p"] * mg, parts["p"] * u


def _lines(parts0: dict[str, np.ndarray], parts1: dict[str, np.ndarray], idx: np.ndarray,
           new: np.ndarray, rates: tuple[np.ndarray, ...], margin: float, R: float
           ) -> dict[str, Any]:
    """Every figure of the statement for one set of parts (the estimate or a moved model)."""
    c0, r0, c1, r1 = rates
    u0, mg0, v0 = _values(parts0, c0, r0, margin, R)
    u1, mg1, v1 = _values(parts1, c1, r1, margin, R)
    # the start's customers at the end; a customer who is certainly gone keeps the start's u
    e = {k: parts1[k][idx].copy() for k in PARTS}
    ce, re_ = c1[idx].copy(), r1[idx].copy()
    gone = e["p"] == 0
    for k in ("s", "g", "d", "y"):
        e[k][gone] = parts0[k][gone]
    ce[gone], re_[gone] = c0[gone], r0[gone]
    ue = _values(e, ce, re_, margin, R)[0]
    p0, p1 = parts0["p"], e["p"]
    pm = (p0 + p1) / 2
    rev0, rev1 = parts0["s"] * parts0["y"], e["s"] * e["y"]
    return {
        "opening": v0.sum(), "closing": v1.sum(),
        "opening_margin": mg0.sum(), "closing_margin": mg1.sum(),
        "acquisition": v1[new].sum(),
        "retention": ((p1 - p0) * (u0 + ue) / 2).sum(),
        "frequency": (pm * margin * (parts0["s"] + e["s"]) / 2 * (e["g"] - parts0["g"])).sum(),
        "spend_margin": (pm * margin * (e["s"] - parts0["s"]) * (parts0["g"] + e["g"]) / 2).sum(),
        "referrals": (pm * R * (re_ * e["d"] - r0 * parts0["d"])).sum(),
        "cost_to_serve": -(pm * (ce * e["d"] - c0 * parts0["d"])).sum(),
        "lost": (p0 - p1).sum(), "alive0": p0.sum(),
        "leakage": ((p0 - p1) * (rev0 + rev1) / 2).sum(),
        "run_rate": (parts1["p"] * parts1["s"] * parts1["y"]).sum(),
        "new_value": v1[new],
    }


def build_statement(models: Sequence[Any], scorer: Callable[..., dict[str, np.ndarray]],
                    side0: Side, side1: Side, vs: ValuationSettings, *, start: dt.date,
                    end: dt.date, kind: str, cohorts: np.ndarray | None = None,
                    referred_value: float | None = None,
                    referral_mask: np.ndarray | None = None, interval: bool = True,
                    notes: Sequence[str] = ()) -> Statement:
    """The statement from two dates' customers (``side0`` at ``start``, ``side1`` at ``end``),
    scored by ``scorer(models, frame, vs)`` (:func:`purchase_parts` or
    :func:`subscription_parts`). ``cohorts`` labels ``side1``'s customers for the acquisition
    split; ``referral_mask`` marks ``side1``'s customers acquired through referral (to value a
    referred customer when ``referred_value`` is not given)."""
    pos = pd.Index(side1.ids).get_indexer(side0.ids)
    if np.any(pos < 0):
        raise ModelDataError(f"{int((pos < 0).sum()):,} customers of {start} are missing at {end}")
    new = np.ones(len(side1.ids), dtype=bool)
    new[pos] = False
    notes = list(notes)
    cache: dict[Any, Any] = {}

    def both(ms: Sequence[Any]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        return scorer(ms, side0.frame, vs, cache), scorer(ms, side1.frame, vs, cache)

    parts0, parts1 = both(models)
    rates = (*_rates(side0, parts0["p"]), *_rates(side1, parts1["p"]))
    R = referred_value
    if R is None and referral_mask is not None and referral_mask.sum() >= MIN_REFERRED:
        _, mg1, _ = _values(parts1, rates[2], rates[3], vs.margin_rate, 0.0)
        past = vs.margin_rate * _past_revenue(side1.frame)
        R = float((mg1 + past)[referral_mask].mean())
        notes.append(f"a referred customer is worth {money(R, vs.currency)} (margin to date plus "
                     f"expected margin of the {int(referral_mask.sum()):,} customers acquired "
                     "through referral)")
    if R is None and side1.referrals.sum() > 0:
        notes.append("referrals are not valued: no referral acquisition channel with "
                      f"{MIN_REFERRED}+ customers and no referred customer value given (set "
                      "assumptions.referred_customer_value in the map spec)")
    R_ = 0.0 if R is None else R

    def figures(parts: tuple[dict[str, np.ndarray], dict[str, np.ndarray]]) -> dict[str, Any]:
        return _lines(*parts, pos, new, rates, vs.margin_rate, R_)

    est = figures((parts0, parts1))
    keys = ["opening", "closing", "opening_margin", "closing_margin", *LINES, "lost", "leakage"]
    se = dict.fromkeys(keys, float("nan"))
    if interval:
        def vector(ms: Sequence[Any]) -> np.ndarray:
            f = figures(both(ms))
            return np.array([f[k] for k in keys])

        se = dict(zip(keys, delta_std_err(models, vector, "the statement"), strict=True))
    else:
        notes.append("no interval requested")

    def entry(k: str, positive: bool = False) -> dict[str, Any]:
        v, s = float(est[k]), float(se[k])
        if not interval:
            return {"estimate": v, "p5": None, "p95": None, "std_err": None}
        if positive and v > 0:
            lo, hi = v * np.exp(-Z90 * s / v), v * np.exp(Z90 * s / v)
        else:
            lo, hi = v - Z90 * s, v + Z90 * s
        return {"estimate": v, "p5": float(lo), "p95": float(hi), "std_err": s}

    labels = LABELS[kind]
    lines = [{"key": k, "label": labels[k], **entry(k, positive=k == "acquisition")}
             for k in LINES]
    by_cohort: list[dict[str, Any]] = []
    if cohorts is not None and new.any():
        df = pd.DataFrame({"cohort": cohorts[new], "value": est["new_value"]})
        g = df.groupby("cohort", sort=True)["value"].agg(["size", "sum"])
        by_cohort = [{"cohort": str(c), "customers": int(r["size"]), "value": float(r["sum"])}
                     for c, r in g.iterrows()]
    rr = float(est["run_rate"])
    alive0 = float(est["alive0"])
    leak = {"customers_lost": entry("lost"), "annual_revenue": entry("leakage"),
            "active_at_start": alive0,
            "churn_rate": float(est["lost"]) / alive0 if alive0 > 0 else None,
            "share_of_run_rate": float(est["leakage"]) / rr if rr > 0 else None,
            "revenue_run_rate": rr,
            "definition": "expected customers lost between start and end (P(alive) at the start "
                          "minus at the end), times the annual revenue each brought while active"}
    return Statement(start, end, kind,
                     {**entry("opening", True), "margin": float(est["opening_margin"])},
                     {**entry("closing", True), "margin": float(est["closing_margin"])},
                     lines, by_cohort,
                     {"opening": len(side0.ids), "acquired": int(new.sum()),
                      "closing": len(side1.ids)},
                     leak, R, vs, tuple(notes))


def _past_revenue(frame: pd.DataFrame) -> np.ndarray:
    if "recurring_revenue" in frame.columns:
        return (frame["recurring_revenue"].fillna(0.0) * frame["tenure"].fillna(0.0)).to_numpy()
    return (frame["frequency"] * frame["monetary_value"]).to_numpy(dtype=float)


# --------------------------------------------------------------------------- from a workspace
def default_start(ws: Any) -> dt.date:
    """A year before ``as_of``."""
    return ws.settings.as_of - dt.timedelta(days=365)


def asset_statement(ws: Any, start: dt.date | None = None, referred_value: float | None = None,
                    interval: bool = True) -> Statement:
    """The customer asset statement of a workspace between ``start`` (default a year before
    ``as_of``) and ``as_of``, valued with the models ``cxasset fit`` saved.

    Parameters
    ----------
    ws : Workspace
        An open workspace with a fit.
    start : date, optional
        Start of the period; must be after the first customer was acquired and before ``as_of``.
    referred_value : float, optional
        Value of one referred customer (the value map's ``assumptions.referred_customer_value``);
        by default the mean value of the customers acquired through a referral channel.
    interval : bool, default=True
        90% intervals from the models' parameter uncertainty.
    """
    from cxasset.features import discrete_stats, workspace_features
    from cxasset.models.contractual import load_retention, retention_rows
    from cxasset.models.workflow import covariate_expressions, load_models

    s = ws.settings
    end = s.as_of
    start = default_start(ws) if start is None else start
    if start >= end:
        raise ModelDataError(f"the statement's start ({start}) must be before as_of ({end})")
    vs = ValuationSettings(horizon=s.horizon, period=s.period, period_days=s.period_days,
                           discount_rate=s.discount_rate, margin_rate=s.margin_rate,
                           currency=s.currency)
    kind = ws.meta()["kind"]
    spec = ws.load_artifact("covariates")
    cust = ws.table("customers")
    extra = [c for c in ("acquired_at", "acquisition_channel") if c in cust.columns]
    info = cust.select("customer_id", *extra).to_pandas()

    def features(day: dt.date) -> pd.DataFrame:
        f = workspace_features(ws, as_of=day)
        return f.mutate(**covariate_expressions(f, spec)).to_pandas()

    if kind == "subscriptions":
        models: list[Any] = [load_retention(ws)]
        scorer: Callable[..., dict[str, np.ndarray]] = subscription_parts

        def side(day: dt.date) -> Side:
            rows = retention_rows(ws, day, spec)
            f = features(day).set_index("customer_id").reindex(rows["customer_id"])
            frame = rows.assign(tenure=f["tenure"].to_numpy(dtype=float))
            tenure = frame["tenure"].to_numpy(dtype=float)
            return Side(rows["customer_id"].to_numpy(), frame, *_observed(f), tenure,
                         np.zeros(len(tenure)))
    else:
        models = list(load_models(ws))
        scorer = purchase_parts
        discrete = hasattr(models[0], "expected_purchases_by_opportunity")

        def side(day: dt.date) -> Side:
            f = features(day).sort_values("customer_id").reset_index(drop=True)
            frame = f
            if discrete:
                d = discrete_stats(cust, ws.table("transactions"), day, s.period).to_pandas()
                frame = f[["customer_id"]].merge(d, on="customer_id", how="left")
                if frame["n_periods"].isna().any():
                    raise ModelDataError(f"customers without discrete statistics at {day}")
                frame = frame.assign(T=frame["n_periods"].astype(float))
            rec, T = frame["recency"].to_numpy(dtype=float), frame["T"].to_numpy(dtype=float)
            ex = f["exposure"].to_numpy(dtype=float) if "exposure" in f.columns else T
            return Side(f["customer_id"].to_numpy(), frame, *_observed(f), rec + ex - T,
                         np.maximum(T - rec, 0.0))
    side0, side1 = side(start), side(end)
    if len(side0.ids) == 0:
        raise ModelDataError(f"no customers had been acquired by the statement's start ({start}); "
                             "choose a later start")
    info = info.set_index("customer_id").reindex(side1.ids)
    cohorts = None
    if "acquired_at" in info.columns:
        cohorts = cohort_labels(info["acquired_at"]).to_numpy()
    ref = None
    if "acquisition_channel" in info.columns:
        ref = (info["acquisition_channel"].astype("string").str.lower().fillna("")
               .str.contains("referr").to_numpy(dtype=bool))
    notes = ["both dates are valued with today's models, so the change reflects what customers "
             "did, not a re-estimation",
             f"values over the next {vs.horizon} {vs.period}s from each date, net of cost to "
             "serve and with the value of referrals"]
    return build_statement(models, scorer, side0, side1, vs, start=start, end=end, kind=kind,
                           cohorts=cohorts, referred_value=referred_value, referral_mask=ref,
                           interval=interval, notes=notes)


def cohort_labels(acquired_at: pd.Series) -> pd.Series:
    """The acquisition cohort of each customer: the quarter of ``acquired_at`` ("2025-Q3"), or
    "(unknown)" without a date."""
    when = pd.to_datetime(acquired_at)
    label = (when.dt.year.astype("Int64").astype(str) + "-Q"
             + when.dt.quarter.astype("Int64").astype(str))
    return label.where(when.notna(), "(unknown)")


def _observed(f: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Service cost and referrals to date (zeros where the book has none)."""
    n = len(f)
    ex = f["exposure"].to_numpy(dtype=float) if "exposure" in f.columns else np.zeros(n)
    cost = (np.nan_to_num(f["cost_to_serve_per_period"].to_numpy(dtype=float)) * ex
            if "cost_to_serve_per_period" in f.columns else np.zeros(n))
    refs = (np.nan_to_num(f["referrals"].to_numpy(dtype=float)) if "referrals" in f.columns
            else np.zeros(n))
    return cost, refs


__all__ = ["LINES", "Side", "Statement", "asset_statement", "build_statement", "cohort_labels",
           "purchase_parts", "subscription_parts"]
