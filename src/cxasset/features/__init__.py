"""Per-customer features as of a date, computed in the engine as ibis expressions.

No DuckDB-only SQL: the same expressions run on any ibis backend (tested on DuckDB and Polars).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir
import numpy as np

from cxasset.features.build import FeatureWindow, customer_features, customer_ids
from cxasset.features.cx import NPS_CLASSES
from cxasset.features.discrete import (
    DISCRETE_COLUMNS,
    DISCRETE_HOLDOUT_COLUMNS,
    discrete_stats,
    discrete_tracking,
)
from cxasset.features.rfm import HOLDOUT_COLUMNS, RFM_COLUMNS, holdout_tracking, rfm
from cxasset.features.subscriptions import cohort_survival, lifetimes, person_periods

if TYPE_CHECKING:
    import pandas as pd

    from cxasset.book import Workspace


def _tables(ws: Workspace) -> dict[str, ir.Table]:
    return {n: ws.table(n) for n in ws.tables()}


def workspace_features(
    ws: Workspace, as_of: dt.date | None = None, calibration_end: dt.date | None = None,
    customers: np.ndarray | None = None,
) -> ir.Table:
    """:func:`customer_features` of the book held in workspace ``ws`` (of the ``customers`` ids
    given, default all)."""
    only = None if customers is None else ibis.memtable(
        {"customer_id": np.asarray(customers)})
    return customer_features(_tables(ws), ws.settings, as_of, calibration_end, customers=only)


def feature_frame(
    ws: Workspace, as_of: dt.date | None = None, calibration_end: dt.date | None = None,
    customers: np.ndarray | None = None,
) -> pd.DataFrame:
    """:func:`workspace_features` computed in the engine and handed to pandas through Arrow: the
    same frame as ibis' ``to_pandas()`` (tested), whose own conversion takes as long again as the
    query (a million customers: 9.8 s against 4.7 s). ``customers``: ids of the customers wanted
    (e.g. a random sample; their rows of the whole book's frame, computed in a fraction of the
    time: 200,000 of a million customers in 1.5 s instead of 4.5 s)."""
    return workspace_features(ws, as_of, calibration_end, customers).to_pyarrow().to_pandas()


def feature_ids(ws: Workspace, as_of: dt.date | None = None) -> np.ndarray:
    """The ``customer_id`` of every row of :func:`feature_frame`, in its order."""
    return customer_ids(_tables(ws), ws.settings, as_of).to_pyarrow().column(0).to_numpy()


__all__ = [
    "DISCRETE_COLUMNS",
    "DISCRETE_HOLDOUT_COLUMNS",
    "HOLDOUT_COLUMNS",
    "NPS_CLASSES",
    "RFM_COLUMNS",
    "FeatureWindow",
    "cohort_survival",
    "customer_features",
    "discrete_stats",
    "discrete_tracking",
    "customer_ids",
    "feature_frame",
    "feature_ids",
    "holdout_tracking",
    "lifetimes",
    "person_periods",
    "rfm",
    "workspace_features",
]
