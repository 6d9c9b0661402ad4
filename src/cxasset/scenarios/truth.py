"""Scenario forecasts against the synthetic generator's true counterfactual future.

The generator plants the levers (docs/synth.md): onboarding time raises dropout (and jumps above
21 days), training lowers it and raises the purchase rate. Its intervention simulation gives the
true future with and without a change, from the same random numbers, so the true incremental
revenue of a scenario is known. Used by ``tests/scenarios/test_sc_planted_truth.py`` and the
many-book study ``benchmarks/scenario_truth.py`` (docs/scenarios.md).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from cxasset.book import Workspace
from cxasset.exceptions import BookWarning
from cxasset.scenarios.simulate import prepare
from cxasset.scenarios.spec import parse_scenarios
from cxasset.synth import Intervention, generate, simulate_future

#: The planted levers and the step each scenario takes.
LEVERS = {"onboarding_days": -3.0, "training_hours": 2.0}


def forecast_vs_truth(root: Path, customers: int, seed: int, draws: int = 400
                      ) -> dict[str, tuple[np.ndarray, float]]:
    """Per planted lever: the forecast draws of incremental revenue over 12 months (existing
    base, the lever moved for every customer; draw 0 is the point forecast) and the true
    incremental revenue.

    A book of ``customers`` is generated with ``seed`` under ``root`` and ingested; the planner is
    given the planted onboarding threshold at 21 days, as ``cxasset levers`` finds it
    (tests/levers/test_planted_truth.py).
    """
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
