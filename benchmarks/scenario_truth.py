"""Scenario forecasts against the synthetic generator's true counterfactual, over many books.

For each seed: a synthetic book (default 100,000 customers) is generated and ingested, the
planner is prepared (the planted onboarding threshold at 21 days given, as `cxasset levers`
finds it), and each planted lever's scenario (onboarding -3 days, training +2 hours, all
customers, 12 months, existing base) is simulated. The truth is the generator's own future with
and without the intervention (same random numbers). Prints, per lever, the forecast/truth ratio
and whether the truth lies in the 90% interval; then the share of books within 15% and covered.

    .venv/bin/python benchmarks/scenario_truth.py --customers 100000 --seeds 20
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from cxasset.scenarios.truth import LEVERS, forecast_vs_truth


def one_book(root: Path, customers: int, seed: int, draws: int) -> list[dict]:
    rows = []
    for driver, (d, true) in forecast_vs_truth(root, customers, seed, draws).items():
        lo, hi = np.percentile(d, [5, 95])
        rows.append({"seed": seed, "driver": driver, "forecast": d[0], "truth": true,
                     "ratio": d[0] / true, "covered": lo <= true <= hi, "lo": lo, "hi": hi})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=100)
    ap.add_argument("--draws", type=int, default=1000)
    a = ap.parse_args()
    rows = []
    print(f"{'seed':>5} {'lever':<16} {'forecast':>12} {'truth':>12} {'ratio':>6} "
          f"{'90% interval':>27} covered")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(a.first_seed, a.first_seed + a.seeds):
            t0 = time.perf_counter()
            for r in one_book(Path(tmp), a.customers, seed, a.draws):
                rows.append(r)
                print(f"{r['seed']:>5} {r['driver']:<16} {r['forecast']:>12,.0f} "
                      f"{r['truth']:>12,.0f} {r['ratio']:>6.3f} {r['lo']:>13,.0f}-"
                      f"{r['hi']:<13,.0f} {'yes' if r['covered'] else 'NO'}", flush=True)
            print(f"      book {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
    for driver in LEVERS:
        rs = [r for r in rows if r["driver"] == driver]
        ratios = np.array([r["ratio"] for r in rs])
        print(f"{driver}: within 15% in {np.mean(np.abs(ratios - 1) < 0.15):.0%} of "
              f"{len(rs)} books (median ratio {np.median(ratios):.3f}), truth in the 90% "
              f"interval in {np.mean([r['covered'] for r in rs]):.0%}")


if __name__ == "__main__":
    main()
