"""Value the customer base of a workspace with the models ``cxasset fit`` saved, in the engine."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cxasset.exceptions import ModelDataError
from cxasset.features import discrete_stats, workspace_features
from cxasset.features.cells import attach_cells, group_cells
from cxasset.models.contractual import load_retention, retention_rows, survival_after
from cxasset.models.workflow import covariate_expressions, load_models
from cxasset.valuation.clv import (
    Valuation,
    ValuationSettings,
    cell_columns,
    log_delta_interval,
    score_cells,
    summarise,
    with_clv,
)

#: What identifies a cell of a discrete-opportunity (BG/BB) book.
DISCRETE_KEY = ("frequency", "recency", "n_periods")


def value_workspace(ws: Any, horizon: int | None = None, interval: bool = True,
                    per_customer: bool = True) -> Valuation:
    """CLV of every customer as of the book's ``as_of`` and customer equity, with a 90% interval.

    Horizon in periods (default ``book.yaml``'s ``horizon``); discount rate, margin and currency
    from ``book.yaml``. Customers are grouped into cells in the engine; only the cells come out
    to be scored, and per-customer CLV is computed back in the engine. A book fitted with BG/BB
    is valued on its discrete opportunities (:func:`value_discrete`).
    """
    s = ws.settings
    if ws.meta()["kind"] == "subscriptions":
        return value_subscriptions(ws, horizon, interval)
    purchase, spend = load_models(ws)
    vs = ValuationSettings(horizon=s.horizon if horizon is None else horizon, period=s.period,
                           period_days=s.period_days, discount_rate=s.discount_rate,
                           margin_rate=s.margin_rate, currency=s.currency)
    if hasattr(purchase, "expected_purchases_by_opportunity"):
        return value_discrete(ws, purchase, spend, vs, interval, per_customer)
    feats = workspace_features(ws)
    feats = feats.mutate(**covariate_expressions(feats, ws.load_artifact("covariates")))
    key = cell_columns(purchase, spend)
    cells = group_cells(feats, key).to_pandas()
    scored = score_cells(purchase, spend, cells, vs)
    customers = scored.iloc[:0]
    if per_customer:
        t = attach_cells(feats, scored, key, ["p_alive", "expected_transactions", "det",
                                              "spend_0", "spend_1"])
        spend_i = t.spend_0 + t.spend_1 * t.monetary_value
        customers = t.select("customer_id", "expected_transactions", "p_alive",
                             expected_spend=spend_i,
                             clv=vs.margin_rate * spend_i * t.det).order_by("customer_id")
        customers = customers.to_pandas()
    return summarise(purchase, spend, scored, vs, customers, interval)


def value_discrete(ws: Any, purchase: Any, spend: Any, vs: ValuationSettings,
                   interval: bool = True, per_customer: bool = True) -> Valuation:
    """CLV on discrete opportunities (BG/BB) as of the book's ``as_of``, with customer equity.

    Each of the next ``vs.horizon`` periods is one opportunity, t = 1..H::

        CLV = margin * E[spend per active period] * sum_t P(active at n + t | x, t_x, n) / (1+d)^t

    with the BG/BB probabilities (already weighted by the chance of being alive), Gamma-Gamma's
    expected spend of an active period, and the period discount rate ``d`` of ``vs``; period t
    is discounted at its end. The statistics are :func:`cxasset.features.discrete_stats` (whole
    periods only); customers are scored on cells of identical ``(frequency, recency,
    n_periods)`` and per-customer CLV is joined back in the engine. The 90% interval of customer
    equity is the delta method on its log over both models' parameters.
    """
    s = ws.settings
    feats = discrete_stats(ws.table("customers"), ws.table("transactions"), s.as_of, s.period)
    cells = group_cells(feats, list(DISCRETE_KEY)).to_pandas()
    scored = score_discrete_cells(purchase, spend, cells, vs)
    customers = scored.iloc[:0]
    if per_customer:
        t = attach_cells(feats, scored, list(DISCRETE_KEY),
                         ["p_alive", "expected_transactions", "det", "spend_0", "spend_1"])
        spend_i = t.spend_0 + t.spend_1 * t.monetary_value
        customers = t.select("customer_id", "expected_transactions", "p_alive",
                             expected_spend=spend_i,
                             clv=vs.margin_rate * spend_i * t.det).order_by("customer_id")
        customers = customers.to_pandas()
    n = scored["n"].to_numpy(dtype=float)
    equity = float(np.dot(n, scored["clv"].to_numpy()))
    notes = [f"BG/BB: one opportunity per {vs.period}; expected_transactions are expected "
             f"active {vs.period}s and p_alive is P(alive at the last whole {vs.period})"]
    lo = hi = se = float("nan")
    if interval:
        def equity_at(ms: list[Any]) -> float:
            sc = score_discrete_cells(ms[0], ms[1], cells, vs)
            return float(np.dot(n, sc["clv"].to_numpy()))

        lo, hi, se = log_delta_interval([purchase, spend], equity_at, equity)
    else:
        notes.append("no interval requested")
    return Valuation(customers, equity, (float(lo), float(hi)), float(se), vs, int(n.sum()),
                     float(np.dot(n, scored["expected_transactions"].to_numpy())), tuple(notes))


def score_discrete_cells(purchase: Any, spend: Any, cells: pd.DataFrame, s: ValuationSettings
                         ) -> pd.DataFrame:
    """Score BG/BB cells (``frequency, recency, n_periods``, ``n`` and the mean
    ``monetary_value`` m), as :func:`cxasset.valuation.clv.score_cells` does for the others.

    Adds ``p_alive``, ``expected_transactions`` (active periods over the horizon), ``det``
    (discounted), ``spend_0``, ``spend_1`` (expected spend = spend_0 + spend_1 * m) and ``clv``.
    """
    if s.horizon <= 0:
        raise ModelDataError(f"horizon must be a positive number of periods; got {s.horizon}")
    by = purchase.expected_purchases_by_opportunity(s.horizon, cells)
    disc = (1.0 + s.period_rate) ** -np.arange(1, s.horizon + 1, dtype=float)
    return with_clv(spend, cells, np.asarray(purchase.probability_alive(cells), dtype=float),
                    by.sum(axis=1), by @ disc, s)


def value_subscriptions(ws: Any, horizon: int | None = None, interval: bool = True) -> Valuation:
    """CLV of a subscription book's active customers: their future renewals' margin.

    ``CLV = margin * recurring_revenue * sum_{t=1..H} S(t | age) / (1 + d)^t``: the revenue of
    each coming period is collected at its start if the customer is still active then (the
    current period is already paid), ``S(t | age)`` from the retention model ``cxasset fit``
    saved. Churned customers are worth 0 (their rows are kept).
    """
    s = ws.settings
    model = load_retention(ws)
    vs = ValuationSettings(horizon=s.horizon if horizon is None else horizon, period=s.period,
                           period_days=s.period_days, discount_rate=s.discount_rate,
                           margin_rate=s.margin_rate, currency=s.currency)
    rows = retention_rows(ws, s.as_of, ws.load_artifact("covariates"))
    act = rows[rows.churned == 0].reset_index(drop=True)
    disc = (1.0 + vs.period_rate) ** -np.arange(1, vs.horizon + 1, dtype=float)

    def per_customer(m: Any) -> tuple[np.ndarray, np.ndarray]:
        surv = np.column_stack([survival_after(m, k, act) for k in range(1, vs.horizon + 1)])
        rr = act["recurring_revenue"].to_numpy(dtype=float)
        return vs.margin_rate * rr * (surv * disc).sum(axis=1), surv

    clv, surv = per_customer(model)
    renewals = surv.sum(axis=1)  # expected renewals (paid periods) over the horizon
    equity = float(clv.sum())
    lo = hi = se = float("nan")
    notes = [f"{int((rows.churned == 1).sum()):,} churned customers are worth 0"]
    if interval:
        lo, hi, se = log_delta_interval([model], lambda ms: per_customer(ms[0])[0].sum(), equity)
    customers = pd.DataFrame({"customer_id": rows.customer_id})
    customers = customers.merge(pd.DataFrame({
        "customer_id": act.customer_id, "p_alive": 1.0, "p_active_at_horizon": surv[:, -1],
        "expected_transactions": renewals, "clv": clv}), on="customer_id", how="left")
    customers["p_alive"] = customers["p_alive"].fillna(0.0)
    customers = customers.fillna({"clv": 0.0, "expected_transactions": 0.0,
                                  "p_active_at_horizon": 0.0})
    notes.append("expected_transactions of a subscription book are expected renewals")
    return Valuation(customers, equity, (float(lo), float(hi)), float(se), vs, len(rows),
                     float(renewals.sum()), tuple(notes))
