"""Mechanism models of the customer base: purchase and dropout, spend, retention.

numpy + scipy kernels written here (the product's hot path); maximum likelihood in :mod:`._base`.
"""

from __future__ import annotations

from cxasset.models._base import BaseModel, FitResult
from cxasset.models.bgnbd import BetaGeoModel

__all__ = ["BaseModel", "BetaGeoModel", "FitResult"]
