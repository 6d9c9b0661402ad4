"""Compress customers to cells of identical sufficient statistics in the engine, and join cell-level
scores back onto customers there: scoring cost grows with distinct cells, not customers."""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir
import pandas as pd


def group_cells(table: ir.Table, key: Sequence[str], mean_of: str = "monetary_value") -> ir.Table:
    """One row per distinct ``key``: the key, ``n`` (customers) and the mean of ``mean_of``."""
    return table.group_by(list(key)).aggregate(n=table.count(), **{mean_of: table[mean_of].mean()})


def attach_cells(table: ir.Table, cells: pd.DataFrame, key: Sequence[str],
                 columns: Sequence[str]) -> ir.Table:
    """``table`` with ``columns`` of ``cells`` joined on ``key`` (computed in the engine)."""
    scores = ibis.memtable(cells[[*key, *columns]].rename(columns={k: f"_k_{k}" for k in key}))
    joined = table.join(scores, [table[k] == scores[f"_k_{k}"] for k in key])
    return joined.drop(*[f"_k_{k}" for k in key])
