"""Lever ranking speed: synthetic books of growing size, every candidate driver, timed by stage.

    python benchmarks/levers.py --sizes 1e5,1e6

Books are cached under benchmarks/.data/levers (synthesised and ingested once). Prints a table of
seconds per stage (features, fits, thresholds, money, robustness) and peak memory; the figures go
into docs/benchmarks.md. No peer library ranks CX levers, so there is no side-by-side column.
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings
from pathlib import Path

from cxasset.book import Workspace
from cxasset.exceptions import BookWarning
from cxasset.levers.rank import rank_levers
from cxasset.synth import generate

DATA = Path(__file__).resolve().parent / ".data" / "levers"


def workspace(n: int) -> Workspace:
    book, ws_dir = DATA / f"book_{n}", DATA / f"ws_{n}"
    if not (book / "truth.json").exists():
        generate(book, customers=n, seed=1)
    ws = Workspace(ws_dir)
    if not ws_dir.exists() or "customers" not in ws.tables():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BookWarning)
            ws.ingest(book)
    return ws


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e5", help="comma-separated customer counts")
    ap.add_argument("--no-robustness", action="store_true")
    args = ap.parse_args()
    rows = []
    for size in (int(float(s)) for s in args.sizes.split(",")):
        ws = workspace(size)
        marks: list[tuple[float, str]] = []
        t0 = time.perf_counter()
        rep = rank_levers(ws, robustness=not args.no_robustness,
                          progress=lambda m, t0=t0, marks=marks: marks.append(
                              (time.perf_counter() - t0, m)))
        total = time.perf_counter() - t0
        ws.close()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        n_drivers = len({e["driver"] for e in rep.levers})
        rows.append((size, n_drivers, total, peak, marks))
    print(f"{'customers':>10} {'drivers':>8} {'total s':>8} {'peak GiB':>9}")
    for size, nd, total, peak, marks in rows:
        print(f"{size:>10,} {nd:>8} {total:>8.1f} {peak:>9.2f}")
        for i, (t, m) in enumerate(marks):
            end = marks[i + 1][0] if i + 1 < len(marks) else total
            print(f"{'':>10} {end - t:>8.1f}s  {m}")


if __name__ == "__main__":
    main()
