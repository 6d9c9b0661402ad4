"""Scenario forecasts against the synthetic generator's true counterfactual future
(:mod:`cxasset.scenarios.truth`). The 20-book study at 100,000 customers is
``benchmarks/scenario_truth.py`` (docs/scenarios.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cxasset.scenarios.truth import LEVERS, forecast_vs_truth


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
