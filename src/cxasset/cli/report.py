"""The board report: ``report``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from cxasset.cli._app import (
    DrawsOpt,
    JsonOpt,
    SeedOpt,
    WorkspaceOpt,
    _command,
    _date,
    _emit_json,
    _planner,
    _progress,
    app,
    out,
)


@app.command()
@_command
def report(
    workspace: WorkspaceOpt = Path("workspace"),
    out_file: Annotated[Path, typer.Option("--out", help="File to write (HTML or Markdown).")
                        ] = Path("report.html"),
    fmt: Annotated[Literal["html", "md"], typer.Option(
        "--format", help="html: one self-contained page (charts, prints well, opens offline); "
        "md: plain Markdown without charts.")] = "html",
    scenarios_file: Annotated[Path | None, typer.Option(
        "--scenarios", help="Simulate this scenario file first (as `cxasset simulate`) and report "
        "it; otherwise the scenarios saved in the workspace.")] = None,
    draws: DrawsOpt = 1000,
    seed: SeedOpt = 0,
    start: Annotated[str | None, typer.Option(
        help="Start of the customer asset statement, YYYY-MM-DD (default: a year before "
        "as_of).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The board report: executive summary, health, asset statement, growth, return and trust.

    Reads what the other commands saved in the workspace (fit, value map, levers, scenarios); a
    missing stage gets a section saying which command makes it. With --json, prints every
    figure of the report instead of writing the file.

    Example:

        cxasset report --workspace ws --out report.html

        cxasset report --workspace ws --scenarios scenarios.yaml --format md --out report.md

        cxasset report --workspace ws --start 2025-01-01 --json
    """
    from cxasset.book import Workspace
    from cxasset.report.figures import report_figures

    with Workspace(workspace) as ws, _progress(not as_json) as update:
        ws.con  # noqa: B018 - a missing workspace says so before the report looks for its parts
        if scenarios_file is not None:
            from cxasset.scenarios.plan import simulate_scenarios
            from cxasset.scenarios.spec import load_scenarios

            scenarios = load_scenarios(scenarios_file)
            pl = _planner(ws, scenarios, seed, update)
            simulate_scenarios(pl, scenarios, draws=draws, seed=seed, save_to=ws,
                               progress=lambda m: update(description=m))
        update(description="valuing customers and gathering the figures")
        figures = report_figures(ws, seed=seed, start=_date(start, "--start"))
        if not as_json:
            from cxasset.report.html import render_html, render_markdown

            update(description="rendering the report")
            text = render_html(figures) if fmt == "html" else render_markdown(figures)
    if as_json:
        _emit_json(figures)
        return
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(text, encoding="utf-8")
    for sentence in figures["summary"]:
        out.print(sentence, highlight=False)
    size = out_file.stat().st_size
    out.print(f"Wrote {out_file} ({fmt}, " + (f"{size / 1e6:.1f} MB)" if size >= 1e5 else
                                             f"{size / 1e3:.0f} kB)"), highlight=False)
