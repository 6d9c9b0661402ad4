"""Choosing between investments: rank scenarios (``cxasset compare``) and pick the portfolio of
initiatives that maximises NPV under a budget (``cxasset optimize``).

Every scenario and initiative is simulated with the same seed, so the draws are common random
numbers: draw ``d`` has the same coefficients, effect uncertainty and acquisitions everywhere,
and "A beats B in 80% of draws" is meaningful. The optimiser treats initiatives as additive (each
simulated alone); the chosen portfolio is then simulated *together*, and both figures are shown,
so interactions (two initiatives on the same customers) are visible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from cxasset.scenarios.portfolio import frontier, optimize, rank
from cxasset.scenarios.spec import Scenario, SpecError

Progress = Callable[[str], None]


def simulate_scenarios(planner: Any, scenarios: Sequence[Scenario], draws: int = 1000,
                       seed: int = 0, progress: Progress | None = None,
                       save_to: Any | None = None) -> dict[str, Any]:
    """Simulate every scenario (``cxasset simulate``): ``{"scenarios": [result.to_dict()],
    "notes", "acquisition"}``; with ``save_to`` (a workspace) the same is saved as its
    ``scenarios`` artifact, which the report reads."""
    say = progress or (lambda _m: None)
    results = []
    for i, s in enumerate(scenarios, start=1):
        say(f"scenario {i}/{len(scenarios)}: {s.name}")
        results.append(planner.simulate(s, draws=draws, seed=seed).to_dict())
    data = {"scenarios": results, "notes": list(planner.notes),
            "acquisition": planner.acquisition.to_dict()}
    if save_to is not None:
        save_to.save_artifact("scenarios", data)
    return data


def compare(planner: Any, scenarios: Sequence[Scenario], draws: int = 1000, seed: int = 0,
            progress: Progress | None = None) -> dict[str, Any]:
    """Simulate every scenario and rank them by expected NPV (with P(best) across draws)."""
    say = progress or (lambda _m: None)
    results = []
    for i, s in enumerate(scenarios, start=1):
        say(f"scenario {i}/{len(scenarios)}: {s.name}")
        results.append(planner.simulate(s, draws=draws, seed=seed))
    npv = np.column_stack([r.npv for r in results])
    cost = np.array([r.cost.sum(axis=(1, 2)).mean() for r in results])
    return {"ranking": rank(npv, [s.name for s in scenarios], cost),
            "scenarios": [r.to_dict() for r in results]}


def optimize_portfolio(planner: Any, scenarios: Sequence[Scenario], budget: float, *,
                       objective: Literal["mean", "p10"] = "mean", draws: int = 1000,
                       seed: int = 0, frontier_points: int = 8,
                       progress: Progress | None = None, save_to: Any | None = None
                       ) -> dict[str, Any]:
    """The portfolio of initiatives (from every scenario of the file) with the highest expected
    NPV (or 10th percentile) whose expected cost over the horizon fits ``budget``.

    Parameters
    ----------
    planner : Planner
    scenarios : list of Scenario
        Their initiatives are the candidates; all must share ``horizon_months``,
        ``discount_rate`` and ``new_customers`` (each initiative is valued as in its scenario).
    budget : float
        Money available for the initiatives' costs over the horizon (undiscounted, expected).
    objective : {"mean", "p10"}
        Expected NPV, or the 10th percentile of NPV (risk-averse).
    save_to : Workspace, optional
        Save the result as the workspace's ``portfolio`` artifact (the report shows it).
    """
    say = progress or (lambda _m: None)
    shapes = {(s.horizon_months, s.discount_rate, s.new_customers) for s in scenarios}
    if len(shapes) > 1:
        raise SpecError("optimize: every scenario of the file must share horizon_months, "
                        "discount_rate and new_customers; got " + "; ".join(
                            f"{s.name!r}: {s.horizon_months} months, discount "
                            f"{s.discount_rate}, new customers {s.new_customers}"
                            for s in scenarios))
    cands = [(s, ini) for s in scenarios for ini in s.initiatives]
    if not cands:
        raise SpecError("optimize: the scenarios have no initiatives to choose from")
    names = [ini.name for _, ini in cands]
    if len(set(names)) < len(names):
        names = [f"{s.name} / {ini.name}" for s, ini in cands]
    npv, cost = [], []
    for j, ((s, ini), name) in enumerate(zip(cands, names, strict=True), start=1):
        say(f"initiative {j}/{len(cands)}: {name}")
        alone = s.model_copy(update={"name": name, "initiatives": [ini]})
        r = planner.simulate(alone, draws=draws, seed=seed)
        npv.append(r.npv)
        cost.append(float(r.cost.sum(axis=(1, 2)).mean()))
    npv_m, cost_v = np.column_stack(npv), np.array(cost)
    best = optimize(npv_m, cost_v, budget, names=names, objective=objective)
    front = frontier(npv_m, cost_v, names=names, objective=objective, n=frontier_points)
    joint = None
    if best.chosen:
        say("simulating the chosen portfolio together")
        s0 = cands[0][0]
        together = s0.model_copy(update={
            "name": "Optimised portfolio",
            "initiatives": [cands[i][1].model_copy(update={"name": names[i]})
                            for i in best.chosen]})
        joint = planner.simulate(together, draws=draws, seed=seed).to_dict()
    rep = {"budget": float(budget), "objective": objective,
           "candidates": rank(npv_m, names, cost_v),
           "portfolio": best.to_dict(), "joint": joint,
           "frontier": [p.to_dict() for p in front],
           "units": "cost and budget: expected undiscounted spend on the initiatives over the "
                    "horizon; npv: discounted, after the initiatives' costs"}
    if save_to is not None:
        save_to.save_artifact("portfolio", rep)
    return rep
