"""Synthetic customer books with planted, documented truth (``docs/synth.md``).

:func:`generate` writes a book (Parquet tables, ``book.yaml``) and ``truth.json``;
:func:`simulate_future` gives the true future of its customers, with or without an
:class:`Intervention` on a CX driver; :func:`true_state` their true latent state at ``as_of``.
"""

from __future__ import annotations

from cxasset.synth._params import (
    COVARIATE_DEFINITIONS,
    COVARIATES,
    DRIVER_EFFECTS,
    SEGMENTS,
    SynthError,
    SynthParams,
)
from cxasset.synth.future import Intervention, simulate_future, true_state
from cxasset.synth.generator import SynthSummary, generate

__all__ = [
    "COVARIATES",
    "COVARIATE_DEFINITIONS",
    "DRIVER_EFFECTS",
    "SEGMENTS",
    "Intervention",
    "SynthError",
    "SynthParams",
    "SynthSummary",
    "generate",
    "simulate_future",
    "true_state",
]
