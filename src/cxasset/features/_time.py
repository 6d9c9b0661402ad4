"""Time on the day grain, the same on every ibis backend.

Events are placed on whole days (days since 1970-01-01, from ``epoch_seconds``) so that purchases on
the same calendar day count as one transaction, as in the BTYD literature; durations are then
expressed in the book's period unit (day, week, or mean Gregorian month). Only operations every
in-process backend compiles are used here (no window functions, no interval arithmetic).
"""

from __future__ import annotations

import datetime as dt

import ibis.expr.types as ir

EPOCH = dt.date(1970, 1, 1)


def day_number(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Whole days since 1970-01-01 of a timestamp column (the calendar day it falls on)."""
    return (ts.epoch_seconds() // 86400).cast("int64")


def date_day(d: dt.date) -> int:
    """Whole days since 1970-01-01 of a date."""
    return (d - EPOCH).days


def day_date(n: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(n))
