"""Commands of the value map and the growth levers: ``map``, ``map init``, ``levers``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from cxasset.cli._app import (
    JsonOpt,
    WorkspaceOpt,
    _command,
    _emit_json,
    _finite,
    _progress,
    app,
    out,
)
from cxasset.exceptions import CxassetError

map_app = typer.Typer(help="The Customer Asset Value Map: every CX variable linked, through a "
                      "mechanism, to money, with intervals.\n\nExample:\n\n    cxasset map init "
                      "--workspace ws --out map.yaml\n\n    cxasset map --workspace ws --spec "
                      "map.yaml --out ws-map",
                      invoke_without_command=True, no_args_is_help=False)
app.add_typer(map_app, name="map")
SpecOpt = Annotated[Path | None, typer.Option("--spec", help="Value-map spec (YAML); "
                                              "`cxasset map init` writes a starter.")]


def _spec(path: Path | None) -> Any:
    from cxasset.valuemap.spec import ValueMapSpec

    return ValueMapSpec() if path is None else ValueMapSpec.from_yaml(path)


@map_app.callback()
@_command
def map_estimate(
    ctx: typer.Context,
    workspace: WorkspaceOpt = Path("workspace"),
    spec: SpecOpt = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Folder for valuemap.json and "
                                                 "valuemap.svg.")] = None,
    draws: Annotated[int, typer.Option(help="Draws of the coefficients for intervals.")] = 400,
    as_json: JsonOpt = False,
) -> None:
    """Estimate every link of the value map and translate it into money.

    Example:

        cxasset map init --workspace ws --out map.yaml
        cxasset map --workspace ws --spec map.yaml --out ws-map
    """
    if ctx.invoked_subcommand is not None:
        return
    from cxasset.book import Workspace
    from cxasset.report.text import map_table, money
    from cxasset.valuemap.build import starter_spec, value_map
    from cxasset.valuemap.graph import graph, svg

    sp = _spec(spec) if spec is not None else None
    with Workspace(workspace) as ws, _progress(not as_json) as update:
        if sp is None:
            sp = starter_spec(ws)
        vmap = value_map(ws, sp, draws=draws,
                         progress=lambda m: update(description=m)).to_dict()
    g = graph(vmap)
    written = {}
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "valuemap.json").write_text(json.dumps(_finite({**vmap, "graph": g}),
                                                          indent=2, default=str))
        (out_dir / "valuemap.svg").write_text(svg(g, lambda v: money(v, vmap["currency"])))
        written = {"json": str(out_dir / "valuemap.json"), "svg": str(out_dir / "valuemap.svg")}
    if as_json:
        _emit_json({**vmap, "graph": g, "written": written})
        return
    out.print(map_table(vmap))
    for t in vmap["translation"]:
        out.print(f"{t['metric'].upper()} ({t['measures']}): {t['translation']}")
    if written:
        out.print(f"Wrote {written['json']} and {written['svg']}")


@map_app.command("init")
@_command
def map_init(
    workspace: WorkspaceOpt = Path("workspace"),
    out_file: Annotated[Path, typer.Option("--out", help="Spec file to write.")] = Path("map.yaml"),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a starter value-map spec from the book's features, to review and edit.

    Example:

        cxasset map init --workspace ws --out map.yaml
    """
    from cxasset.book import Workspace
    from cxasset.valuemap.build import starter_spec

    if out_file.exists() and not force:
        raise CxassetError(f"{out_file} exists; pass --force to overwrite it")
    with Workspace(workspace) as ws, _progress(not as_json) as update:
        update(description="computing features in the engine")
        sp = starter_spec(ws)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    header = ("# cxasset value map: CX variables (a numeric feature each), which way is better, a "
              "realistic step.\n# Add `links:` to choose mechanisms, `experiment:` evidence, "
              "`assumptions:`; see docs/valuemap.md\n")
    out_file.write_text(header + sp.to_yaml())
    if as_json:
        _emit_json({"spec": str(out_file), **sp.model_dump(exclude_none=True)})
        return
    out.print(f"Wrote {out_file} with {len(sp.cx_variables)} CX variables: "
              + ", ".join(v.feature for v in sp.cx_variables))


@app.command()
@_command
def levers(
    workspace: WorkspaceOpt = Path("workspace"),
    spec: SpecOpt = None,
    draws: Annotated[int, typer.Option(help="Draws of the coefficients for intervals.")] = 200,
    robustness: Annotated[bool, typer.Option(help="Re-check significant levers (placebo, "
                                             "halves, double ML).")] = True,
    thresholds: Annotated[bool, typer.Option(help="Check significant drivers for a threshold "
                                             "(binned refits).")] = True,
    top: Annotated[int, typer.Option(help="Levers shown in the table.")] = 15,
    as_json: JsonOpt = False,
) -> None:
    """Rank every candidate driver by the change in customer equity of a realistic step.

    Example:

        cxasset levers --workspace ws --spec map.yaml --json
    """
    from cxasset.book import Workspace
    from cxasset.levers.rank import rank_levers
    from cxasset.report.text import levers_table, money

    sp = _spec(spec)
    with Workspace(workspace) as ws, _progress(not as_json) as update:
        rep = rank_levers(ws, sp, draws=draws, robustness=robustness, thresholds=thresholds,
                          progress=lambda m: update(description=m)).to_dict()
    if as_json:
        _emit_json(rep)
        return
    out.print(levers_table(rep, top))
    if rep["undeclared_levers"]:
        out.print("Undeclared levers the data shows: " + ", ".join(rep["undeclared_levers"]))
    for d, t in rep["thresholds"].items():
        out.print(f"Threshold: the effect of {d} jumps above {t['cut']:g} ({t['mechanism']}, "
                  f"p = {t['p_value']:.2g})")
    for seg, rows in rep["segments"].items():
        out.print(f"Top levers in {seg}: " + "; ".join(
            f"{r['driver']} ({r['mechanism']}) {money(r['impact']['mean'], rep['currency'])}"
            for r in rows))
    for n in rep["notes"]:
        out.print(f"note: {escape(n)}", highlight=False)
