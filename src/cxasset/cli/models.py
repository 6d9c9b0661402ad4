"""Commands of the CLV engine: ``fit``, ``value``, ``statement``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from cxasset.cli._app import (
    JsonOpt,
    WorkspaceOpt,
    _command,
    _date,
    _emit_json,
    _progress,
    app,
    out,
)


@app.command()
@_command
def fit(
    workspace: WorkspaceOpt = Path("workspace"),
    model: Annotated[str, typer.Option(
        help="bgnbd, mbgnbd, pnbd, or auto (the best of these on the holdout); bgbb for "
        "discrete opportunities (one per book period: did the customer buy in it?).")] = "auto",
    covariates: Annotated[str | None, typer.Option(
        help="Comma-separated features acting on purchase and dropout, e.g. nps,segment "
        "(not with bgbb, which takes none).")
    ] = None,
    calibration_end: Annotated[str | None, typer.Option(
        help="End of the calibration period (default: book.yaml's, else 2/3 of the window).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit the customer-base models, backtest them on the holdout, and save the fits.

    Example:

        cxasset fit --workspace ws --model auto --covariates nps,onboarding_days

        cxasset fit --workspace ws --model bgbb
    """
    from cxasset.book import Workspace
    from cxasset.models.workflow import fit_workspace

    covs = [c.strip() for c in covariates.split(",") if c.strip()] if covariates else []
    with Workspace(workspace) as ws, _progress(not as_json) as update:
        report = fit_workspace(ws, model=model, covariates=covs,
                               calibration_end=_date(calibration_end, "--calibration-end"),
                               progress=lambda m: update(description=m))
    data = report.to_dict()
    if as_json:
        _emit_json(data)
        return
    from cxasset.report.text import fit_tables

    for renderable in fit_tables(data):
        out.print(renderable)


@app.command()
@_command
def value(
    workspace: WorkspaceOpt = Path("workspace"),
    horizon: Annotated[int | None, typer.Option(
        help="Periods ahead (default: book.yaml's horizon).")] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write per-customer CLV "
                                                  "(Parquet).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Customer lifetime value per customer and customer equity, with a 90% interval.

    Needs `cxasset fit` first; values with the model it saved (BG/BB: one opportunity per
    period of the horizon). Example:

        cxasset value --workspace ws --horizon 104 --out clv.parquet
    """
    from cxasset.book import Workspace
    from cxasset.valuation import value_workspace

    with Workspace(workspace) as ws, _progress(not as_json) as update:
        update(description="scoring customers")
        v = value_workspace(ws, horizon=horizon)
    if out_file is not None:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        v.customers.to_parquet(out_file, index=False)
    data = v.to_dict()
    if as_json:
        _emit_json({**data, "out": str(out_file) if out_file else None})
        return
    from cxasset.report.text import value_table

    out.print(value_table(data))
    if out_file is not None:
        out.print(f"Wrote {len(v.customers):,} customers' CLV to {out_file}")


@app.command()
@_command
def statement(
    workspace: WorkspaceOpt = Path("workspace"),
    start: Annotated[str | None, typer.Option(
        help="Start of the period, YYYY-MM-DD (default: a year before as_of).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Customer asset statement: customer equity at two dates and what changed it.

    Both dates are valued with today's fits (`cxasset fit`); the change splits exactly into
    acquisition, retention, purchase frequency, spend and margin, referrals and cost to serve,
    with 90% intervals, and the revenue leaked to churn.

    Example:

        cxasset statement --workspace ws --start 2025-01-01
    """
    from cxasset.book import Workspace
    from cxasset.report.text import money, statement_table
    from cxasset.valuation.statement import asset_statement

    with Workspace(workspace) as ws, _progress(not as_json) as update:
        update(description="valuing the customer base at both dates")
        d = asset_statement(ws, start=_date(start, "--start")).to_dict()
    if as_json:
        _emit_json(d)
        return
    cur = d["currency"]
    out.print(statement_table(d))
    lk = d["leakage"]
    share = lk["share_of_run_rate"]
    out.print(f"Revenue leakage from churn: about {lk['customers_lost']['estimate']:,.0f} "
              f"customers lost, {money(lk['annual_revenue']['estimate'], cur)} of annual revenue"
              + (f" ({share:.1%} of the run-rate)" if share is not None else "") + ".",
              highlight=False)
    for n in d["notes"]:
        out.print(f"note: {escape(n)}", highlight=False)
