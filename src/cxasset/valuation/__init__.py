"""Customer asset value: CLV per customer and customer equity, with intervals."""

from __future__ import annotations

from cxasset.valuation.clv import (
    Valuation,
    ValuationSettings,
    customer_value,
    period_discount_rate,
)
from cxasset.valuation.workspace import value_workspace

__all__ = [
    "Valuation",
    "ValuationSettings",
    "customer_value",
    "period_discount_rate",
    "value_workspace",
]
