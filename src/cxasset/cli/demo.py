"""A synthetic book and the main job on it: ``synth``, ``demo``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.table import Table

from cxasset.cli._app import (
    JsonOpt,
    _command,
    _emit_json,
    _progress,
    app,
    out,
)


@app.command()
@_command
def synth(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the book into.")],
    customers: Annotated[int, typer.Option(help="Number of customers.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    kind: Annotated[Literal["transactions", "subscriptions"], typer.Option(
        help="Non-contractual (transactions) or contractual (subscriptions) book.")
    ] = "transactions",
    as_json: JsonOpt = False,
) -> None:
    """Write a synthetic customer book with planted CX effects and its truth.json.

    Example:

        cxasset synth book --customers 100000 --seed 1
    """
    from cxasset.synth import generate

    with _progress(not as_json, total=customers) as update:
        update(description="generating customers")
        summary = generate(out_dir, customers=customers, seed=seed, kind=kind,
                           progress=lambda n: update(completed=n))
    data = _synth_dict(summary)
    if as_json:
        _emit_json(data)
        return
    table = Table("table", "rows", title=f"Synthetic {kind} book in {out_dir} (seed {seed})")
    for name, n in data.get("rows", {}).items():
        table.add_row(name, f"{n:,}")
    out.print(table)


def _synth_dict(summary: Any) -> dict[str, Any]:
    from dataclasses import asdict, is_dataclass

    data = asdict(summary) if is_dataclass(summary) else dict(summary)
    return json.loads(json.dumps(data, default=str))


@app.command()
@_command
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the demo's book and "
                                          "workspace.")] = Path("demo"),
    customers: Annotated[int, typer.Option(help="Customers in the synthetic book.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    as_json: JsonOpt = False,
) -> None:
    """The main job end to end on a synthetic book, from synth to the board report.

    synth -> ingest -> features -> fit -> value -> value map -> levers -> scenarios ->
    portfolio -> report (:func:`cxasset.demo.run_demo`).

    Example:

        cxasset demo --out demo --customers 20000
    """
    from cxasset.demo import run_demo
    from cxasset.report.text import (
        fit_tables,
        levers_table,
        portfolio_table,
        ranking_table,
        value_table,
    )

    with _progress(not as_json, total=customers) as update:
        r = run_demo(out_dir, customers=customers, seed=seed, progress=update)
    if as_json:
        _emit_json(r.to_dict())
        return
    f, cur = r.files, r.figures["currency"]
    table = Table("measure", "value", title=f"Customer book {f['book']} · "
                  f"{r.rows['customers']:,} customers")
    for k, v in r.book_summary.items():
        table.add_row(k, v)
    out.print(table)
    for renderable in fit_tables(r.fit):
        out.print(renderable)
    out.print(value_table(r.value))
    out.print(levers_table(r.levers, top=10))
    for t in r.valuemap["translation"]:
        out.print(f"{t['metric'].upper()} ({t['measures']}): {t['translation']}", highlight=False)
    for d, t in r.levers["thresholds"].items():
        out.print(f"Threshold: the effect of {d} jumps above {t['cut']:g} ({t['mechanism']})")
    if r.levers["undeclared_levers"]:
        out.print("Undeclared levers the data shows: " + ", ".join(r.levers["undeclared_levers"]))
    out.print(ranking_table(r.scenarios, cur))
    for d in r.scenarios["scenarios"]:
        out.print(d["sentence"], highlight=False)
    out.print(portfolio_table(r.portfolio, cur))
    out.print("Executive summary", style="bold")
    for sentence in r.figures["summary"]:
        out.print(sentence, highlight=False)
    out.print(f"Report: {f['report']} · workspace: {f['workspace']} · value map: "
              f"{f['valuemap']} · spec: {f['spec']} · scenarios: {f['scenarios']} · try: "
              f"cxasset simulate {f['scenarios']} --workspace {f['workspace']}", highlight=False)
