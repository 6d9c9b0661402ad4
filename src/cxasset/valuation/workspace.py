"""Value the customer base of a workspace with the models ``cxasset fit`` saved, in the engine."""

from __future__ import annotations

from typing import Any

from cxasset.features import workspace_features
from cxasset.features.cells import attach_cells, group_cells
from cxasset.models.workflow import covariate_expressions, load_models
from cxasset.valuation.clv import Valuation, ValuationSettings, cell_columns, score_cells, summarise


def value_workspace(ws: Any, horizon: int | None = None, interval: bool = True,
                    per_customer: bool = True) -> Valuation:
    """CLV of every customer as of the book's ``as_of`` and customer equity, with a 90% interval.

    Horizon in periods (default ``book.yaml``'s ``horizon``); discount rate, margin and currency
    from ``book.yaml``. Customers are grouped into cells in the engine; only the cells come out
    to be scored, and per-customer CLV is computed back in the engine.
    """
    s = ws.settings
    purchase, spend = load_models(ws)
    feats = workspace_features(ws)
    feats = feats.mutate(**covariate_expressions(feats, ws.load_artifact("covariates")))
    vs = ValuationSettings(horizon=horizon or s.horizon, period=s.period,
                           period_days=s.period_days, discount_rate=s.discount_rate,
                           margin_rate=s.margin_rate, currency=s.currency)
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
