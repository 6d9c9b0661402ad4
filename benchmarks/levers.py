"""Lever ranking speed: synthetic books of growing size, every candidate driver, timed by stage.

    python benchmarks/levers.py --sizes 1e5,1e6 [--drivers 30]

Books are cached under benchmarks/.data/levers (synthesised and ingested once). Prints a table of
seconds per stage (features, fits, thresholds, money, robustness) and peak memory; the figures go
into docs/benchmarks.md. No peer library ranks CX levers, so there is no side-by-side column.

The synthetic book has 11 candidate drivers. ``--drivers N`` (N > 11) measures more: a copy of
the book whose customers table has N - 11 more numeric attributes (each a noisy copy of another
attribute or of a planted driver, or pure noise: candidates a real book would have), ingested
into its own workspace.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cxasset.book import Workspace
from cxasset.exceptions import BookWarning
from cxasset.levers.rank import rank_levers
from cxasset.synth import generate

DATA = Path(__file__).resolve().parent / ".data" / "levers"
BASE_DRIVERS = 11  # numeric candidate features of the synthetic book


def with_extra_drivers(book: Path, out: Path, extra: int, seed: int = 7) -> None:
    """A copy of ``book`` (other tables linked) whose customers have ``extra`` more numeric
    attributes ``x01..``: in turn pure noise, a noisy training_hours, a noisy log company size,
    a uniform score."""
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in book.iterdir():  # the other tables are shared
        if f.name != "customers.parquet":
            (tmp / f.name).symlink_to(f.resolve())
    t = pq.read_table(book / "customers.parquet")
    rng = np.random.default_rng(seed)
    n = t.num_rows
    training = np.nan_to_num(t["training_hours"].to_numpy(zero_copy_only=False), nan=0.0)
    size = np.log(t["employees"].to_numpy(zero_copy_only=False).astype(float))
    for k in range(extra):
        kind = k % 4
        if kind == 0:
            x = rng.normal(50.0, 10.0, n)
        elif kind == 1:
            x = np.maximum(training + rng.normal(0.0, 2.0 * training.std() + 1.0, n), 0.0)
        elif kind == 2:
            x = size + rng.normal(0.0, size.std(), n)
        else:
            x = np.round(rng.uniform(0.0, 10.0, n), 1)
        t = t.append_column(f"x{k + 1:02d}", pa.array(np.round(x, 3)))
    pq.write_table(t, tmp / "customers.parquet")
    tmp.rename(out)


def workspace(n: int, drivers: int = BASE_DRIVERS) -> Workspace:
    book, ws_dir = DATA / f"book_{n}", DATA / f"ws_{n}"
    if not (book / "truth.json").exists():
        generate(book, customers=n, seed=1)
    if drivers > BASE_DRIVERS:
        wide = DATA / f"book_{n}_d{drivers}"
        if not wide.exists():
            with_extra_drivers(book, wide, drivers - BASE_DRIVERS)
        book, ws_dir = wide, DATA / f"ws_{n}_d{drivers}"
    ws = Workspace(ws_dir)
    if not ws_dir.exists() or "customers" not in ws.tables():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BookWarning)
            ws.ingest(book)
    return ws


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e5", help="comma-separated customer counts")
    ap.add_argument("--drivers", type=int, default=BASE_DRIVERS,
                    help=f"candidate drivers (default {BASE_DRIVERS}, the synthetic book's; "
                         "more adds numeric attributes to a copy of the book)")
    ap.add_argument("--no-robustness", action="store_true")
    args = ap.parse_args()
    rows = []
    for size in (int(float(s)) for s in args.sizes.split(",")):
        ws = workspace(size, args.drivers)
        t0, c0 = time.perf_counter(), time.process_time()
        marks: list[tuple[float, float, str]] = [(0.0, 0.0,
                                                  "features, design, plain purchase model")]
        rep = rank_levers(ws, robustness=not args.no_robustness,
                          progress=lambda m, t0=t0, c0=c0, marks=marks: marks.append(
                              (time.perf_counter() - t0, time.process_time() - c0, m)))
        total, cpu = time.perf_counter() - t0, time.process_time() - c0
        ws.close()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        n_drivers = len({e["driver"] for e in rep.levers})
        rows.append((size, n_drivers, total, cpu, peak, marks))
    print(f"{'customers':>10} {'drivers':>8} {'total s':>8} {'CPU s':>7} {'peak GiB':>9}   "
          "(CPU: this process's threads, not the parallel workers')")
    for size, nd, total, cpu, peak, marks in rows:
        print(f"{size:>10,} {nd:>8} {total:>8.1f} {cpu:>7.1f} {peak:>9.2f}")
        for i, (t, c, m) in enumerate(marks):
            end, cend = marks[i + 1][:2] if i + 1 < len(marks) else (total, cpu)
            print(f"{'':>10} {end - t:>8.1f}s {cend - c:>6.1f}s  {m}")


if __name__ == "__main__":
    main()
