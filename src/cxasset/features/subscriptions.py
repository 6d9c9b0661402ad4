"""Contractual books: lifetimes, person-period rows for hazard models, cohort survival tables.

A customer's lifetime runs from the start of their first subscription to the end of their last
one; they are active at the cut-off while any subscription has started and not ended by then (an
``ended_at`` after the cut-off counts as still active, so nothing after the cut-off leaks in).
Periods of a lifetime are counted from its start, ``period = 1, 2, ...``; the last period holds the
churn event (``churned = 1``) for customers who churned, every period of an active customer is
censored (``churned = 0``). ``n_periods`` is the period a churned customer left in (their lifetime
in periods, rounded up) and the number of periods an active customer has completed (rounded
down); an end within a tenth of a period of a boundary counts as on it, so that lifetimes of
calendar months (28-31 days) count whole renewals.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from cxasset.features._time import day_number

#: Share of a period by which an end may miss a period boundary and still count as on it
#: (calendar months are 28-31 days long).
JITTER = 0.1


def lifetimes(subscriptions: ir.Table, cut_day: int, period_days: float) -> ir.Table:
    """Per customer: ``start_day, tenure, active, churned, recurring_revenue, n_periods``.

    ``recurring_revenue`` is the revenue per period of the subscriptions active at the cut-off.
    """
    s = subscriptions.mutate(
        start=day_number(subscriptions.started_at),
        end=day_number(subscriptions.ended_at) if "ended_at" in subscriptions.columns
        else ibis.null("int64"),
    )
    s = s.filter(s.start <= cut_day)
    running = s.end.isnull() | (s.end > cut_day)
    g = s.group_by("customer_id").aggregate(
        start_day=s.start.min(),
        n_active=running.sum().cast("int64"),
        last_end=s.end.max(),
        recurring_revenue=ibis.ifelse(running, s.recurring_revenue, 0.0).sum(),
        subscriptions=s.count(),
    )
    active = g.n_active > 0
    end = ibis.ifelse(active, cut_day, ibis.least(g.last_end, cut_day))
    span = (end - g.start_day).cast("float64")
    return g.select(
        "customer_id",
        "start_day",
        "recurring_revenue",
        "subscriptions",
        active=active,
        churned=~active,
        tenure=span / period_days,
        n_periods=ibis.ifelse(active, (span / period_days + JITTER).floor(),
                              ibis.greatest((span / period_days - JITTER).ceil(), 1)
                              ).cast("int64"),
    )


def person_periods(
    subscriptions: ir.Table, cut_day: int, period_days: float, customers: ir.Table | None = None
) -> ir.Table:
    """One row per customer and period at risk: ``customer_id, period, churned`` (+ covariates).

    The discrete-time hazard model's data: row ``period = k`` says the customer was at risk in
    their k-th period and whether they churned in it. ``customers`` (any per-customer table, e.g.
    the feature table) is joined on to carry covariates.
    """
    life = lifetimes(subscriptions, cut_day, period_days)
    max_n = life.n_periods.max().to_pyarrow().as_py() or 0
    periods = ibis.memtable({"period": np.arange(1, max_n + 1, dtype="int64")})
    rows = life.cross_join(periods).filter(lambda r: r.period <= r.n_periods)
    rows = rows.select(
        "customer_id",
        "period",
        churned=((rows.period == rows.n_periods) & rows.churned).cast("int8"),
    )
    if customers is not None:
        rows = rows.left_join(customers, "customer_id").drop("customer_id_right")
    return rows


def cohort_survival(subscriptions: ir.Table, cut_day: int, period_days: float) -> pd.DataFrame:
    """Kaplan-Meier survival by start cohort (calendar month of the first subscription).

    Columns: ``cohort`` (YYYY-MM), ``period``, ``at_risk``, ``churned``, ``survival`` (share of the
    cohort still active after ``period`` periods; censored customers leave the risk set).
    """
    life = lifetimes(subscriptions, cut_day, period_days)
    first = subscriptions.group_by("customer_id").aggregate(first=subscriptions.started_at.min())
    life = life.join(first, "customer_id")
    life = life.mutate(cohort=life.first.year() * 100 + life.first.month())
    counts = life.group_by(["cohort", "n_periods", "churned"]).aggregate(n=life.count())
    df = counts.to_pandas()
    out = []
    for cohort, g in df.groupby("cohort"):
        n = int(g.n_periods.max())
        ends = np.zeros(n + 2)
        events = np.zeros(n + 2)
        np.add.at(ends, g.n_periods.to_numpy(), g.n.to_numpy())
        np.add.at(events, g.n_periods.to_numpy(), np.where(g.churned, g.n, 0))
        k = np.arange(1, n + 1)
        at_risk = ends[::-1].cumsum()[::-1][1 : n + 1]
        churned = events[1 : n + 1]
        hazard = np.divide(churned, at_risk, out=np.zeros(n), where=at_risk > 0)
        out.append(pd.DataFrame({
            "cohort": f"{int(cohort) // 100:04d}-{int(cohort) % 100:02d}",
            "period": k, "at_risk": at_risk.astype("int64"), "churned": churned.astype("int64"),
            "survival": np.cumprod(1 - hazard),
        }))
    cols = ["cohort", "period", "at_risk", "churned", "survival"]
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=cols)
