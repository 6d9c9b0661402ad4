"""Value the customer base of a workspace with the models ``cxasset fit`` saved."""

from __future__ import annotations

from typing import Any

from cxasset.features import workspace_features
from cxasset.models.workflow import encode_covariates, load_models
from cxasset.valuation.clv import Valuation, ValuationSettings, customer_value


def value_workspace(ws: Any, horizon: int | None = None, interval: bool = True) -> Valuation:
    """CLV of every customer as of the book's ``as_of`` and customer equity, with a 90% interval.

    Horizon in periods (default ``book.yaml``'s ``horizon``); discount rate, margin and currency
    from ``book.yaml``.
    """
    s = ws.settings
    purchase, spend = load_models(ws)
    feats, _ = encode_covariates(workspace_features(ws).to_pandas(),
                                 ws.load_artifact("covariates"))
    vs = ValuationSettings(horizon=horizon or s.horizon, period=s.period,
                           period_days=s.period_days, discount_rate=s.discount_rate,
                           margin_rate=s.margin_rate, currency=s.currency)
    return customer_value(purchase, spend, feats, vs, interval=interval)
