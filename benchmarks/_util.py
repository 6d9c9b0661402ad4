"""Helpers of the benchmarks: a synthetic transaction book written in chunks, and measurement.

The book is deterministic for a given size (seeded), written with ``pyarrow.parquet.ParquetWriter``
one chunk of customers at a time, so 100M transactions never need 100M-row arrays at once.
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

START = dt.date(2023, 1, 1)
WINDOW_DAYS = 730  # two years: days 0..729
AS_OF = START + dt.timedelta(days=WINDOW_DAYS - 1)
MEAN_TX = 10  # transactions per customer: 1 + Poisson(9)
CHUNK_CUSTOMERS = 500_000  # ~5M transactions per written chunk
ID_OFFSET = 10_000_000
GIB = 1024**3

TX_SCHEMA = pa.schema(
    [("customer_id", pa.int64()), ("occurred_at", pa.timestamp("us")), ("amount", pa.float64())]
)
CUST_SCHEMA = pa.schema([("customer_id", pa.int64()), ("acquired_at", pa.timestamp("us"))])


def size_label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n / 1e6:g}M"


def book_dir(data_dir: Path, n: int) -> Path:
    return data_dir / f"book_{size_label(n)}"


def make_book(data_dir: Path, n: int, seed: int = 20261) -> Path:
    """Write (once; cached) a book of exactly ``n`` transactions and return its folder.

    Each customer is born on a uniform day of the window; their first transaction is on that day
    (so ``acquired_at`` is the first purchase date, as lifetimes assumes), the other ``Poisson(9)``
    fall on uniform days between birth and the end of the window, each at a uniform time of day.
    Amounts are lognormal (median about 20), in cents. Rows are ordered by day within a chunk.
    """
    out = book_dir(data_dir, n)
    if (out / "book.yaml").is_file():
        return out
    tmp = out.with_name(out.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, n])
    start_us = int((START - dt.date(1970, 1, 1)).days) * 86_400 * 1_000_000
    remaining, next_id = n, ID_OFFSET
    with (
        pq.ParquetWriter(tmp / "transactions.parquet", TX_SCHEMA) as tw,
        pq.ParquetWriter(tmp / "customers.parquet", CUST_SCHEMA) as cw,
    ):
        while remaining > 0:
            k = 1 + rng.poisson(MEAN_TX - 1, CHUNK_CUSTOMERS)
            cs = np.cumsum(k)
            if cs[-1] >= remaining:  # last chunk: cut at the customer that reaches n exactly
                last = int(np.searchsorted(cs, remaining))
                k = k[: last + 1]
                k[-1] = remaining - (cs[last - 1] if last else 0)
                cs = np.cumsum(k)
            m, rows = len(k), int(cs[-1])
            birth = rng.integers(0, WINDOW_DAYS, m)
            owner = np.repeat(np.arange(m), k)
            b = birth[owner]
            day = b + np.floor(rng.random(rows) * (WINDOW_DAYS - b)).astype(np.int64)
            day[cs - k] = birth  # the first transaction is on the day of birth
            order = np.argsort(day, kind="stable")
            secs = rng.integers(0, 86_400, rows)
            ts = start_us + (day * 86_400 + secs) * 1_000_000
            amount = np.round(rng.lognormal(3.0, 1.0, rows), 2)
            ids = next_id + owner
            tw.write_table(
                pa.table(
                    {
                        "customer_id": ids[order],
                        "occurred_at": pa.array(ts[order], pa.timestamp("us")),
                        "amount": amount[order],
                    },
                    schema=TX_SCHEMA,
                )
            )
            cw.write_table(
                pa.table(
                    {
                        "customer_id": next_id + np.arange(m),
                        "acquired_at": pa.array(start_us + birth * 86_400 * 1_000_000, pa.timestamp("us")),
                    },
                    schema=CUST_SCHEMA,
                )
            )
            remaining -= rows
            next_id += m
    (tmp / "book.yaml").write_text(f"period: week\nas_of: {AS_OF.isoformat()}\n")
    tmp.rename(out)
    return out


def rss_gib() -> float:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / GIB


def peak_gib() -> float:
    """Peak resident set size of this process so far (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB


def available_gib() -> float:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 / GIB
    return 0.0


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self) -> Timer:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.t0
