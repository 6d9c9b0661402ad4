"""Scenario simulation speed: prepare once, then simulate scenarios (Monte Carlo draws).

    python benchmarks/scenarios.py --sizes 1e5,1e6 --draws 1000

Reuses the lever benchmark's synthetic books (benchmarks/.data/levers, built on first use). For
each size prints the seconds to prepare the planner (features, the mechanisms fitted twice,
per-customer tables), to simulate one scenario with 1,000 draws, and to re-evaluate it (what a web
planner does when a slider moves), plus peak memory. Side by side, the same scenario valued the
naive way: every draw interpolating every scored customer's tables (no grouping), to show what
the grouping buys. No peer library simulates CX investments, so there is no peer column.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

from cxasset.scenarios.simulate import prepare
from cxasset.scenarios.spec import parse_scenarios
from cxasset.scenarios.tables import interpolate

SCENARIO = {"name": "Onboarding concierge for SMB", "horizon_months": 36,
            "initiatives": [{"name": "Onboarding concierge", "target": {"segment": "smb"},
                             "ramp_months": 3, "applies_to": "both",
                             "changes": [{"driver": "onboarding_days", "shift": -3,
                                          "uncertainty_sd": 1.0}],
                             "cost": {"upfront": 250_000, "per_month": 10_000}},
                            {"name": "Training", "changes": [{"driver": "training_hours",
                                                              "shift": 2}],
                             "cost": {"per_month": 5_000}}]}


def naive_seconds(planner, draws: int) -> float:
    """Every draw x every scored customer x every month: interpolate the customer's tables at
    the customer's own shift (what the grouping avoids)."""
    part = planner.parts[0]
    tab = part.base.cum["dropout"][:, :, 1:]
    coefs = planner.coefficients(0, draws, 0)["dropout"][1]
    terms = part.est.design.terms
    z = np.zeros(len(terms))
    z[terms.index("onboarding_days")] = -3 / part.est.design.drivers["onboarding_days"].sd
    t0 = time.perf_counter()
    for k in range(draws):
        d = np.broadcast_to(float(coefs[k] @ z), tab[:, 0, :].shape)
        interpolate(tab, d).sum()
    return time.perf_counter() - t0


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from levers import workspace  # the lever benchmark's cached books

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e5", help="comma-separated customer counts")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--max-score", type=int, default=10_000)
    a = ap.parse_args()
    s = parse_scenarios(SCENARIO)[0]
    print(f"{'customers':>10} {'scored':>7} {'prepare s':>10} {'simulate s':>11} "
          f"{'re-evaluate s':>14} {'naive s':>8} {'peak GiB':>9}")
    for size in (int(float(x)) for x in a.sizes.split(",")):
        ws = workspace(size)
        t0 = time.perf_counter()
        pl = prepare(ws, 36, max_score=a.max_score)
        prep = time.perf_counter() - t0
        ws.close()
        t0 = time.perf_counter()
        r = pl.simulate(s, draws=a.draws)
        sim = time.perf_counter() - t0
        t0 = time.perf_counter()
        pl.simulate(s.model_copy(update={"horizon_months": 24}), draws=a.draws)
        again = time.perf_counter() - t0
        naive = naive_seconds(pl, a.draws)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"{size:>10,} {len(pl.base.rows):>7,} {prep:>10.1f} {sim:>11.2f} {again:>14.2f} "
              f"{naive:>8.2f} {peak:>9.2f}", flush=True)
        print(f"{'':>10} {r.sentence()}")


if __name__ == "__main__":
    main()
