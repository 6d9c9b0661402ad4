"""RFM sufficient statistics as the BTYD models need them, computed in the engine.

Conventions (the literature's, e.g. Fader, Hardie & Lee 2005 on CDNOW, with the default
``transaction_grain: day``):

- purchases on the same calendar day are one transaction, its amount the day's total;
- ``frequency`` x is the number of repeat transactions (purchase days after the first);
- ``recency`` t_x is the time from the first to the last purchase, ``T`` from the first purchase
  to the cut-off day (both in periods); a customer with no purchase by the cut-off is born at
  ``acquired_at`` with x = 0;
- ``monetary_value`` is the mean amount of the repeat transactions (0 when x = 0);
- negative amounts are refunds: they are not transactions and are netted against the repeat spend
  of the same window (floored at 0);
- only events on or before the cut-off day count (no leakage); holdout columns count the
  transactions after the cut-off up to and including ``holdout_end`` (``frequency_holdout``) and
  their total net spend (``spend_holdout``).

With ``transaction_grain: timestamp`` every distinct timestamp is a transaction and times are
exact (seconds): ``T`` runs from the first purchase to the end of the cut-off day. Use it when the
book records purchase times and customers may buy more than once a day.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import ibis
import ibis.expr.types as ir

from cxasset.features._time import day_number

RFM_COLUMNS = ("frequency", "recency", "T", "monetary_value")
HOLDOUT_COLUMNS = ("frequency_holdout", "spend_holdout", "duration_holdout")

Grain = Literal["day", "timestamp"]


@dataclass(frozen=True)
class Clock:
    """Ticks of a transaction grain: whole days, or seconds."""

    grain: Grain = "day"

    @property
    def per_day(self) -> int:
        return 1 if self.grain == "day" else 86_400

    def tick(self, ts: ir.TimestampValue) -> ir.IntegerValue:
        if self.grain == "day":
            return day_number(ts)
        return ts.epoch_seconds().cast("int64")

    def last(self, day: int) -> int:
        """Last tick of calendar day ``day`` (days since 1970-01-01)."""
        return (day + 1) * self.per_day - 1

    def end(self, day: int) -> int:
        """Where ``T`` is measured to at a cut-off day: its start (day grain, the literature's
        convention) or its end (timestamp grain)."""
        return day if self.grain == "day" else (day + 1) * self.per_day

    def periods(self, ticks: ir.NumericValue | int, period_days: float) -> ir.FloatingValue:
        return (ticks / (self.per_day * period_days)).cast("float64")


def purchase_days(transactions: ir.Table, clock: Clock = Clock()) -> ir.Table:
    """One row per customer and transaction: ``customer_id, day, amount`` (refunds excluded);
    ``day`` is the tick of the clock (calendar day, or second)."""
    t = transactions.mutate(day=clock.tick(transactions.occurred_at))
    t = t.filter(t.amount >= 0)
    return t.group_by(["customer_id", "day"]).aggregate(amount=t.amount.sum())


def rfm(
    customers: ir.Table,
    transactions: ir.Table,
    cut_day: int,
    period_days: float,
    holdout_end_day: int | None = None,
    grain: Grain = "day",
) -> ir.Table:
    """Per-customer RFM statistics as of ``cut_day`` (days since 1970-01-01, inclusive).

    Returns one row per customer acquired on or before the cut-off, with ``customer_id`` and
    :data:`RFM_COLUMNS` (and :data:`HOLDOUT_COLUMNS` when ``holdout_end_day`` is given).
    """
    clock = Clock(grain)
    cut = clock.last(cut_day)
    tx = transactions.mutate(day=clock.tick(transactions.occurred_at))
    cal = _per_customer(tx.filter(tx.day <= cut))
    c = customers.mutate(acq=clock.tick(customers.acquired_at))
    c = c.filter(c.acq <= cut).select("customer_id", "acq")
    j = c.left_join(cal, "customer_id").drop("customer_id_right")
    birth = j.first_day.fill_null(j.acq)
    x = ibis.greatest(j.n_days.fill_null(1) - 1, 0).cast("int64")
    repeat_spend = j.spend.fill_null(0) - j.first_amount.fill_null(0) + j.refund.fill_null(0)
    monetary = ibis.ifelse(x > 0, ibis.greatest(repeat_spend, 0) / x.cast("float64"), 0.0)
    out = j.select(
        "customer_id",
        frequency=x,
        recency=clock.periods(j.last_day.fill_null(birth) - birth, period_days),
        T=clock.periods(clock.end(cut_day) - birth, period_days),
        monetary_value=monetary.cast("float64"),
    )
    if holdout_end_day is None:
        return out
    end = clock.last(holdout_end_day)
    hold = _per_customer(tx.filter((tx.day > cut) & (tx.day <= end)))
    h = out.left_join(hold, "customer_id").drop("customer_id_right")
    return h.select(
        "customer_id", *RFM_COLUMNS,
        frequency_holdout=h.n_days.fill_null(0).cast("int64"),
        spend_holdout=(h.spend.fill_null(0) + h.refund.fill_null(0)).cast("float64"),
        duration_holdout=ibis.literal((holdout_end_day - cut_day) / period_days, "float64"),
    )


def _per_customer(tx: ir.Table) -> ir.Table:
    """Per customer, in two aggregations and no self-join: first and last purchase tick, number
    of purchase ticks (transactions), total purchases, total refunds, the first tick's amount."""
    buy = tx.amount >= 0
    d = tx.group_by(["customer_id", "day"]).aggregate(
        amount=tx.amount.sum(where=buy), refund=tx.amount.sum(where=~buy))
    bought = d.amount.notnull()
    return d.group_by("customer_id").aggregate(
        first_day=d.day.min(where=bought), last_day=d.day.max(where=bought),
        n_days=bought.sum().cast("int64"), spend=d.amount.sum(), refund=d.refund.sum(),
        first_amount=d.amount.argmin(d.day, where=bought))


def holdout_tracking(
    customers: ir.Table,
    transactions: ir.Table,
    cut_day: int,
    holdout_end_day: int,
    period_days: float,
    grain: Grain = "day",
) -> ir.Table:
    """Repeat transactions per holdout period of the customers who bought by the cut-off.

    Returns ``period`` (1 = the first period after the cut-off) and ``transactions``, for the
    backtest's tracking plot of actual against predicted.
    """
    clock = Clock(grain)
    cut, end = clock.last(cut_day), clock.last(holdout_end_day)
    days = purchase_days(transactions, clock)
    known = days.filter(days.day <= cut).select("customer_id").distinct()
    hold = days.filter((days.day > cut) & (days.day <= end))
    hold = hold.semi_join(known, "customer_id")
    period = (clock.periods(hold.day - (cut + 1), period_days).floor() + 1).cast("int64")
    hold = hold.mutate(period=period)
    return hold.group_by("period").aggregate(transactions=hold.count()).order_by("period")
