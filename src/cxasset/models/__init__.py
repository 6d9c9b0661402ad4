"""Mechanism models of the customer base: purchase and dropout, spend, retention.

numpy + scipy kernels written here (the product's hot path); maximum likelihood in :mod:`._base`.
"""

from __future__ import annotations

from cxasset.models._base import BaseModel, FitResult
from cxasset.models.bgbb import BetaGeoBetaBinomModel
from cxasset.models.bgnbd import BetaGeoModel
from cxasset.models.gammagamma import GammaGammaModel
from cxasset.models.hazard import DiscreteHazardModel
from cxasset.models.sbg import ShiftedBetaGeoModel

__all__ = [
    "BaseModel",
    "BetaGeoBetaBinomModel",
    "BetaGeoModel",
    "DiscreteHazardModel",
    "FitResult",
    "GammaGammaModel",
    "ShiftedBetaGeoModel",
]
