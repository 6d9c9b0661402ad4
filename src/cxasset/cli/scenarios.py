"""Commands of scenario simulation: ``simulate``, ``compare``, ``optimize``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.markup import escape

from cxasset.cli._app import (
    DrawsOpt,
    JsonOpt,
    ScenariosArg,
    SeedOpt,
    WorkspaceOpt,
    _command,
    _emit_json,
    _planner,
    _progress,
    app,
    out,
)


@app.command()
@_command
def simulate(
    scenarios_file: ScenariosArg,
    workspace: WorkspaceOpt = Path("workspace"),
    draws: DrawsOpt = 1000,
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Forecast what each scenario's investments return: NPV, ROI, payback, with 90% intervals.

    Baseline vs scenario over the horizon, month by month; saved in the workspace for the
    report. Example:

        cxasset simulate scenarios.yaml --workspace ws --draws 1000 --json
    """
    from cxasset.book import Workspace
    from cxasset.report.text import scenario_table
    from cxasset.scenarios.plan import simulate_scenarios
    from cxasset.scenarios.spec import load_scenarios

    scenarios = load_scenarios(scenarios_file)
    with Workspace(workspace) as ws, _progress(not as_json) as update:
        pl = _planner(ws, scenarios, seed, update)
        res = simulate_scenarios(pl, scenarios, draws=draws, seed=seed, save_to=ws,
                                 progress=lambda m: update(description=m))["scenarios"]
    if as_json:
        _emit_json({"scenarios": res, "notes": pl.notes})
        return
    for d in res:
        out.print(scenario_table(d))
        out.print(d["sentence"])
    for n in pl.notes:
        out.print(f"note: {escape(n)}", highlight=False)


@app.command()
@_command
def compare(
    scenarios_file: ScenariosArg,
    workspace: WorkspaceOpt = Path("workspace"),
    draws: DrawsOpt = 1000,
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Rank the scenarios of a file by expected NPV, with P(NPV > 0) and P(best).

    Example:

        cxasset compare scenarios.yaml --workspace ws
    """
    from cxasset.book import Workspace
    from cxasset.report.text import ranking_table
    from cxasset.scenarios.plan import compare as compare_scenarios
    from cxasset.scenarios.spec import load_scenarios

    scenarios = load_scenarios(scenarios_file)
    with Workspace(workspace) as ws, _progress(not as_json) as update:
        pl = _planner(ws, scenarios, seed, update)
        rep = compare_scenarios(pl, scenarios, draws=draws, seed=seed,
                                progress=lambda m: update(description=m))
    if as_json:
        _emit_json({**rep, "notes": pl.notes})
        return
    out.print(ranking_table(rep, pl.est.settings.currency))
    for d in rep["scenarios"]:
        out.print(d["sentence"])


@app.command()
@_command
def optimize(
    scenarios_file: ScenariosArg,
    budget: Annotated[float, typer.Option(help="Money for the initiatives over the horizon "
                                          "(expected, undiscounted).", min=0)],
    workspace: WorkspaceOpt = Path("workspace"),
    objective: Annotated[Literal["mean", "p10"], typer.Option(
        help="Maximise expected NPV, or its 10th percentile (risk-averse).")] = "mean",
    draws: DrawsOpt = 1000,
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Pick the portfolio of initiatives with the highest NPV within a budget, and the frontier.

    The initiatives of every scenario in the file are candidates; the choice is an exact MILP.
    Example:

        cxasset optimize scenarios.yaml --workspace ws --budget 500000 --objective p10
    """
    from cxasset.book import Workspace
    from cxasset.report.text import money, portfolio_table
    from cxasset.scenarios.plan import optimize_portfolio
    from cxasset.scenarios.spec import load_scenarios

    scenarios = load_scenarios(scenarios_file)
    with Workspace(workspace) as ws, _progress(not as_json) as update:
        pl = _planner(ws, scenarios, seed, update)
        rep = optimize_portfolio(pl, scenarios, budget, objective=objective, draws=draws,
                                 seed=seed, progress=lambda m: update(description=m),
                                 save_to=ws)
    if as_json:
        _emit_json({**rep, "notes": pl.notes})
        return
    cur = pl.est.settings.currency
    out.print(portfolio_table(rep, cur))
    p = rep["portfolio"]
    out.print(f"Best portfolio within {money(budget, cur)}: "
              + (", ".join(p["names"]) or "none (no initiative pays within the budget)")
              + f" · cost {money(p['cost'], cur)} · NPV {money(p['npv']['mean'], cur)} "
              f"(sum of initiatives alone)")
    if rep["joint"] is not None:
        out.print(f"Simulated together: {rep['joint']['sentence']}")
