"""Discrete-opportunity statistics for the BG/BB model, computed in the engine.

Every book period (``settings.period``: day, week or month) after the customer's first purchase is
one *opportunity* to transact; a period with at least one purchase is an active period (BG/BB's
"transaction"). Periods are calendar periods, the same for every customer:

- ``day``: calendar days;
- ``week``: ISO weeks, Monday to Sunday;
- ``month``: calendar months (not the mean month of ``BookSettings.period_days``: an opportunity
  per calendar month is what a monthly book means).

Per customer, as of a cut-off day (inclusive):

- ``n_periods`` n: the whole periods after the first-purchase period up to the last period that is
  complete on the cut-off day, the opportunities after the first. **Only whole periods count**: a
  period still running on the cut-off day is not an opportunity yet, and purchases in it are left
  out of every calibration column (they are counted once the period is complete);
- ``frequency`` x: how many of those n periods have at least one purchase;
- ``recency`` t_x: the index (1..n) of the last such period, 0 if none;
- ``monetary_value``: the mean spend of the x active periods (a period's spend is the total of its
  purchases); refunds (negative amounts) in the birth period or later are netted against it
  (floored at 0), as in :func:`cxasset.features.rfm.rfm`. The Gamma-Gamma spend model fitted on
  ``frequency`` and ``monetary_value`` then predicts the spend of an active period.

Customers acquired on or before the cut-off count; one with no purchase in a whole period by then is
born in the period of ``acquired_at`` with x = 0, as in the RFM statistics. Purchases on the same
calendar day or in the same period are one active period whatever the transaction grain.

With a holdout end: the holdout opportunities of a customer are the whole periods after the later
of their birth period and the last whole calibration period, up to the last period complete on the
holdout end. ``n_periods_holdout`` counts them and ``frequency_holdout`` counts the active ones. The
first holdout period is the one running on the cut-off day, if any: it is the next opportunity
after the calibration data ends, so BG/BB's prediction for opportunity n + 1 is compared with it.

Only group-by, equality joins and literal arithmetic on day numbers are used, so the expressions run
on every in-process ibis backend (tested on DuckDB and Polars).
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from cxasset.exceptions import BookError
from cxasset.features._time import date_day, day_number

DISCRETE_COLUMNS = ("frequency", "recency", "n_periods", "monetary_value")
DISCRETE_HOLDOUT_COLUMNS = ("frequency_holdout", "n_periods_holdout")
PERIODS = ("day", "week", "month")

#: ISO weeks start on Monday; 1970-01-01 was a Thursday, so day number + 3 counts from a Monday.
_MONDAY_SHIFT = 3


def _check_period(period: str) -> None:
    if period not in PERIODS:
        raise BookError(f"period {period!r} is not a book period; choose one of "
                        f"{', '.join(PERIODS)}")


def period_index(ts: ir.TimestampValue, period: str) -> ir.IntegerValue:
    """The calendar period a timestamp falls in, as a whole number that grows by 1 a period."""
    _check_period(period)
    if period == "month":
        return (ts.year().cast("int64") * 12 + ts.month().cast("int64") - 1).cast("int64")
    day = day_number(ts)
    if period == "week":
        return ((day + _MONDAY_SHIFT) // 7).cast("int64")
    return day


def date_period(d: dt.date, period: str) -> int:
    """:func:`period_index` of a date, in Python."""
    _check_period(period)
    if period == "month":
        return d.year * 12 + d.month - 1
    if period == "week":
        return (date_day(d) + _MONDAY_SHIFT) // 7
    return date_day(d)


def last_whole_period(cut: dt.date, period: str) -> int:
    """The last period complete on day ``cut`` (inclusive): the one before the period of the next
    day."""
    return date_period(cut + dt.timedelta(days=1), period) - 1


def _period_rows(transactions: ir.Table, period: str) -> ir.Table:
    """One row per customer and period with a transaction: ``customer_id, per, spend`` (purchases,
    null if none) and ``refund`` (negative amounts, null if none)."""
    t = transactions.mutate(per=period_index(transactions.occurred_at, period))
    buy = t.amount >= 0
    return t.group_by(["customer_id", "per"]).aggregate(
        spend=t.amount.sum(where=buy), refund=t.amount.sum(where=~buy))


def _births(customers: ir.Table, rows: ir.Table, cut_day: int, last_cal: int,
            period: str) -> ir.Table:
    """``customer_id, birth`` of the customers acquired by ``cut_day``: the period of their first
    purchase in a whole period by the cut-off, else the period of ``acquired_at``."""
    cal = rows.filter(rows.spend.notnull() & (rows.per <= last_cal))
    first = cal.group_by("customer_id").aggregate(first=cal.per.min())
    c = customers.filter(day_number(customers.acquired_at) <= cut_day)
    c = c.select("customer_id", acq=period_index(c.acquired_at, period))
    j = c.left_join(first, "customer_id").drop("customer_id_right")
    return j.select("customer_id", birth=j["first"].fill_null(j.acq).cast("int64"))


def discrete_stats(
    customers: ir.Table,
    transactions: ir.Table,
    cutoff: dt.date,
    period: str,
    holdout_end: dt.date | None = None,
) -> ir.Table:
    """Per-customer BG/BB statistics as of ``cutoff`` (inclusive), see the module docstring.

    Parameters
    ----------
    customers : ibis Table
        ``customer_id, acquired_at``.
    transactions : ibis Table
        ``customer_id, occurred_at, amount`` on the same backend.
    cutoff : date
        Last day of the calibration data (inclusive).
    period : {"day", "week", "month"}
        The book period: one opportunity per period.
    holdout_end : date, optional
        When given, add :data:`DISCRETE_HOLDOUT_COLUMNS` for the holdout to this day (inclusive).

    Returns
    -------
    ibis Table
        ``customer_id`` and :data:`DISCRETE_COLUMNS` (plus the holdout columns), one row per
        customer acquired on or before the cut-off, ordered by ``customer_id``.
    """
    if holdout_end is not None and holdout_end <= cutoff:
        raise BookError(f"holdout_end ({holdout_end}) must be after the cut-off ({cutoff})")
    cut_day, last_cal = date_day(cutoff), last_whole_period(cutoff, period)
    rows = _period_rows(transactions, period)
    base = _births(customers, rows, cut_day, last_cal, period)

    r = rows.join(base, "customer_id")
    window = (r.per >= r.birth) & (r.per <= last_cal)
    repeat = window & (r.per > r.birth) & r.spend.notnull()
    per_cust = r.group_by("customer_id").aggregate(
        x=repeat.sum().cast("int64"),
        last=r.per.max(where=repeat),
        repeat_spend=r.spend.sum(where=repeat),
        refund=r.refund.sum(where=window),
    )
    j = base.left_join(per_cust, "customer_id").drop("customer_id_right")
    x = j.x.fill_null(0)
    net = ibis.greatest(j.repeat_spend.fill_null(0.0) + j.refund.fill_null(0.0), 0.0)
    out = j.select(
        "customer_id", "birth",
        frequency=x.cast("int64"),
        recency=(j["last"] - j.birth).fill_null(0).cast("int64"),
        n_periods=ibis.greatest(last_cal - j.birth, 0).cast("int64"),
        monetary_value=ibis.ifelse(x > 0, net / x.cast("float64"), 0.0).cast("float64"),
    )
    if holdout_end is None:
        return out.drop("birth").order_by("customer_id")

    last_hold = last_whole_period(holdout_end, period)
    start = ibis.greatest(out.birth, last_cal)
    o = out.mutate(start=start)
    h = rows.join(o.select("customer_id", "start"), "customer_id")
    active = h.spend.notnull() & (h.per > h.start) & (h.per <= last_hold)
    held = h.group_by("customer_id").aggregate(active=active.sum().cast("int64"))
    k = o.left_join(held, "customer_id").drop("customer_id_right")
    return k.select(
        "customer_id", *DISCRETE_COLUMNS,
        frequency_holdout=k.active.fill_null(0).cast("int64"),
        n_periods_holdout=ibis.greatest(last_hold - k.start, 0).cast("int64"),
    ).order_by("customer_id")


def discrete_tracking(
    customers: ir.Table,
    transactions: ir.Table,
    cutoff: dt.date,
    holdout_end: dt.date,
    period: str,
) -> ir.Table:
    """Active customers per holdout opportunity, for the BG/BB backtest's tracking.

    Returns ``period`` (1 = a customer's first holdout opportunity, which for every customer born
    by the last whole calibration period is the same calendar period) and ``transactions`` (the
    number of customers active in it), over the customers of :func:`discrete_stats`.
    """
    if holdout_end <= cutoff:
        raise BookError(f"holdout_end ({holdout_end}) must be after the cut-off ({cutoff})")
    last_cal = last_whole_period(cutoff, period)
    last_hold = last_whole_period(holdout_end, period)
    rows = _period_rows(transactions, period)
    base = _births(customers, rows, date_day(cutoff), last_cal, period)
    b = base.mutate(start=ibis.greatest(base.birth, last_cal))
    h = rows.join(b.select("customer_id", "start"), "customer_id")
    h = h.filter(h.spend.notnull() & (h.per > h.start) & (h.per <= last_hold))
    h = h.mutate(period=(h.per - h.start).cast("int64"))
    return h.group_by("period").aggregate(transactions=h.count()).order_by("period")
