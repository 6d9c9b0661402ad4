"""Scenario forecasts against the synthetic generator's true counterfactual future.

The generator plants the levers (docs/synth.md): onboarding time raises dropout (and jumps above
21 days), training lowers it and raises the purchase rate. Its intervention simulation gives the
true future with and without a change, from the same random numbers, so the true incremental
revenue of a scenario is known. The planner is given the threshold at 21 days, as
``cxasset levers`` finds it on these books (tests/levers/test_planted_truth.py).
The 20-book study at 100,000 customers is ``benchmarks/scenario_truth.py`` (docs/scenarios.md).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from cxasset.book import Workspace
from cxasset.exceptions import BookWarning
from cxasset.scenarios.simulate import prepare
from cxasset.scenarios.spec import parse_scenarios
from cxasset.synth import Intervention, generate, simulate_future

LEVERS = {"onboarding_days": -3.0, "training_hours": 2.0}


def forecast_vs_truth(root: Path, customers: int, seed: int, draws: int = 400
                      ) -> dict[str, tuple[np.ndarray, float]]:
    """Per planted lever: the forecast draws of incremental revenue over 12 months (existing
    base) and the true incremental revenue."""
    book = root / f"book{seed}"
    generate(book, customers=customers, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BookWarning)
        ws = Workspace(root / f"ws{seed}")
        ws.ingest(book)
    ws.save_artifact("levers", {"thresholds": {"onboarding_days": {"cut": 21.0}}})
    planner = prepare(ws, 12, seed=seed)
    ws.close()
    base = simulate_future(book, 365).future_spend.sum()
    out = {}
    for driver, shift in LEVERS.items():
        s = parse_scenarios({"name": driver, "horizon_months": 12, "new_customers": "none",
                             "initiatives": [{"name": driver, "changes": [
                                 {"driver": driver, "shift": shift}]}]})[0]
        r = planner.simulate(s, draws=draws, seed=seed)
        alt = simulate_future(book, 365, intervention=Intervention(driver, shift=shift))
        out[driver] = (r.scenario_totals["revenue"] - r.baseline_totals["revenue"],
                       float(alt.future_spend.sum() - base))
    return out


@pytest.mark.slow
def test_planted_levers_within_15_percent_at_100k(tmp_path: Path) -> None:
    res = forecast_vs_truth(tmp_path, 100_000, seed=5)
    for driver, (draws, true) in res.items():
        assert true > 0 and draws[0] > 0
        assert abs(draws[0] / true - 1) < 0.15, (driver, draws[0], true)


@pytest.mark.slow
def test_truth_inside_the_90_percent_interval_across_books(tmp_path: Path) -> None:
    """10 books of 20,000 customers: the truth of each lever lies in the 90% interval in at
    least 7 of 10 (a 90% interval misses 3 or more in 7% of such runs by chance alone)."""
    covered = {d: 0 for d in LEVERS}
    for seed in range(300, 310):
        for driver, (draws, true) in forecast_vs_truth(tmp_path, 20_000, seed, 300).items():
            lo, hi = np.percentile(draws, [5, 95])
            covered[driver] += int(lo <= true <= hi)
    assert all(c >= 7 for c in covered.values()), covered
