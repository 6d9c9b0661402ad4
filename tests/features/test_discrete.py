"""Discrete-opportunity (BG/BB) statistics: hand-computed books by week, month and day, whole
periods only, holdout columns, tracking, and the same answers on DuckDB and Polars."""

from __future__ import annotations

import datetime as dt

import ibis
import pandas as pd
import pytest

from cxasset.exceptions import BookError
from cxasset.features import discrete_stats, discrete_tracking
from cxasset.features.discrete import date_period, last_whole_period

# 2024-01-01 is a Monday: ISO weeks w0 = Jan 1-7, w1 = Jan 8-14, w2 = Jan 15-21, w3 = Jan 22-28,
# w4 = Jan 29 - Feb 4 (running on the cut-off, Wed Jan 31), w5 = Feb 5-11, ..., w7 = Feb 19-25.
CUT = dt.date(2024, 1, 31)
HOLD = dt.date(2024, 2, 25)

CUSTOMERS = pd.DataFrame({
    "customer_id": [1, 2, 3, 4, 5],
    "acquired_at": pd.to_datetime(["2024-01-01", "2024-01-05", "2024-01-29", "2024-02-02",
                                   "2023-12-20"]),
})
TRANSACTIONS = pd.DataFrame({
    "customer_id": [1, 1, 1, 1, 1, 1, 1, 2, 3, 3, 4, 5, 5],
    "occurred_at": pd.to_datetime([
        "2024-01-01 00:00", "2024-01-03 15:00",  # w0: the first-purchase period
        "2024-01-10",                      # w1
        "2024-01-24", "2024-01-25",        # w3: a purchase and a refund
        "2024-01-30",                      # w4: partial at the cut-off -> first holdout period
        "2024-02-07",                      # w5
        "2024-02-20",                      # customer 2, w7
        "2024-01-30", "2024-02-14",        # customer 3: born in w4, buys again in w6
        "2024-02-03",                      # customer 4: acquired after the cut-off
        "2024-01-16", "2024-01-17",        # customer 5: first purchases in w2
    ], format="ISO8601"),
    "amount": [10.0, 5.0, 20.0, 30.0, -5.0, 8.0, 7.0, 4.0, 3.0, 3.0, 9.0, 6.0, 6.0],
})


def by_id(df: pd.DataFrame) -> dict[int, dict[str, object]]:
    return {int(r["customer_id"]): r for r in df.to_dict("records")}


@pytest.fixture(params=["duckdb", "polars"])
def book(request: pytest.FixtureRequest) -> tuple[ibis.Table, ibis.Table]:
    con = getattr(ibis, request.param).connect()
    return (con.create_table("customers", CUSTOMERS),
            con.create_table("transactions", TRANSACTIONS))


def test_periods_are_calendar_periods() -> None:
    assert date_period(dt.date(2024, 1, 7), "week") == date_period(dt.date(2024, 1, 1), "week")
    assert date_period(dt.date(2024, 1, 8), "week") == date_period(dt.date(2024, 1, 1), "week") + 1
    assert date_period(dt.date(2024, 3, 1), "month") - date_period(dt.date(2024, 1, 31),
                                                                    "month") == 2
    # a Sunday closes its week; a Wednesday does not
    assert last_whole_period(dt.date(2024, 1, 28), "week") == date_period(dt.date(2024, 1, 28),
                                                                          "week")
    assert last_whole_period(CUT, "week") == date_period(CUT, "week") - 1
    assert last_whole_period(dt.date(2024, 2, 29), "month") == date_period(dt.date(2024, 2, 1),
                                                                           "month")
    assert last_whole_period(dt.date(2024, 2, 28), "month") == date_period(dt.date(2024, 1, 1),
                                                                           "month")


def test_weekly_calibration_stats(book: tuple[ibis.Table, ibis.Table]) -> None:
    f = by_id(discrete_stats(*book, CUT, "week").to_pandas())
    assert sorted(f) == [1, 2, 3, 5]  # 4 was acquired after the cut-off
    c1, c2, c3, c5 = f[1], f[2], f[3], f[5]
    # 1: born w0; opportunities w1..w3 (w4 is not complete); active in w1 and w3
    assert (c1["frequency"], c1["recency"], c1["n_periods"]) == (2, 3, 3)
    # the spend of w1 (20) and w3 (30 less a 5 refund); w0's and w4's purchases left out
    assert c1["monetary_value"] == pytest.approx(22.5)
    # 2: no purchase by the cut-off: born in the week of acquisition
    assert (c2["frequency"], c2["recency"], c2["n_periods"], c2["monetary_value"]) == (0, 0, 3, 0)
    # 3: acquired in the running week: no opportunity yet
    assert (c3["frequency"], c3["recency"], c3["n_periods"]) == (0, 0, 0)
    # 5: first purchases both in w2 (one active period); one opportunity since, unused
    assert (c5["frequency"], c5["recency"], c5["n_periods"]) == (0, 0, 1)


def test_weekly_holdout_and_tracking(book: tuple[ibis.Table, ibis.Table]) -> None:
    f = by_id(discrete_stats(*book, CUT, "week", holdout_end=HOLD).to_pandas())
    got = {k: (v["frequency_holdout"], v["n_periods_holdout"]) for k, v in f.items()}
    # holdout opportunities: w4..w7 for everyone born by w3; w5..w7 for 3 (born in w4)
    assert got == {1: (2, 4), 2: (1, 4), 3: (1, 3), 5: (0, 4)}
    # calibration columns do not change with a holdout end
    assert f[1]["frequency"] == 2 and f[1]["n_periods"] == 3
    track = discrete_tracking(*book, CUT, HOLD, "week").to_pandas()
    # opportunity 1 after the calibration: 1 (w4); 2: 1 (w5) and 3 (w6, its first); 4: 2 (w7)
    assert dict(zip(track["period"], track["transactions"], strict=True)) == {1: 1, 2: 2, 4: 1}
    assert track["transactions"].sum() == sum(v[0] for v in got.values())


def test_whole_periods_only(book: tuple[ibis.Table, ibis.Table]) -> None:
    """Cut on the Sunday closing w4: it becomes an opportunity, and its purchase counts."""
    f = by_id(discrete_stats(*book, dt.date(2024, 2, 4), "week").to_pandas())
    assert (f[1]["frequency"], f[1]["recency"], f[1]["n_periods"]) == (3, 4, 4)
    assert f[1]["monetary_value"] == pytest.approx((20 + 25 + 8) / 3)
    # 3 is born in w4 with its first purchase: still no opportunity after it
    assert (f[3]["frequency"], f[3]["n_periods"]) == (0, 0)


def test_monthly_and_daily() -> None:
    customers = pd.DataFrame({"customer_id": [1],
                              "acquired_at": pd.to_datetime(["2024-01-15"])})
    tx = pd.DataFrame({"customer_id": [1] * 4,
                       "occurred_at": pd.to_datetime(["2024-01-15", "2024-02-01", "2024-02-28",
                                                      "2024-04-10"]),
                       "amount": [1.0, 2.0, 3.0, 4.0]})
    c, t = ibis.memtable(customers), ibis.memtable(tx)
    # April complete on the 30th: opportunities Feb, Mar, Apr; active in Feb and Apr
    m = discrete_stats(c, t, dt.date(2024, 4, 30), "month").to_pandas().iloc[0]
    assert (m["frequency"], m["recency"], m["n_periods"]) == (2, 3, 3)
    assert m["monetary_value"] == pytest.approx((5 + 4) / 2)
    # on the 29th April is still running: Feb and Mar only
    m = discrete_stats(c, t, dt.date(2024, 4, 29), "month").to_pandas().iloc[0]
    assert (m["frequency"], m["recency"], m["n_periods"]) == (1, 1, 2)
    # days: Jan 15 .. Apr 10 is 86 days later; the cut-off day itself is complete
    d = discrete_stats(c, t, dt.date(2024, 4, 10), "day").to_pandas().iloc[0]
    assert (d["frequency"], d["recency"], d["n_periods"]) == (3, 86, 86)


def test_identical_on_duckdb_and_polars() -> None:
    out = []
    for name in ("duckdb", "polars"):
        con = getattr(ibis, name).connect()
        c = con.create_table("customers", CUSTOMERS)
        t = con.create_table("transactions", TRANSACTIONS)
        out.append(discrete_stats(c, t, CUT, "week", holdout_end=HOLD).to_pandas())
    pd.testing.assert_frame_equal(out[0].reset_index(drop=True), out[1].reset_index(drop=True),
                                  check_dtype=False)


def test_errors() -> None:
    c, t = ibis.memtable(CUSTOMERS), ibis.memtable(TRANSACTIONS)
    with pytest.raises(BookError, match="period 'year' is not a book period"):
        discrete_stats(c, t, CUT, "year")
    with pytest.raises(BookError, match="must be after the cut-off"):
        discrete_stats(c, t, CUT, "week", holdout_end=CUT)
