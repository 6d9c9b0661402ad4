"""Commands for a book and its data: ``init``, ``ingest``, ``info``, ``features``."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from cxasset.cli._app import (
    JsonOpt,
    WorkspaceOpt,
    _command,
    _date,
    _emit_json,
    _progress,
    app,
    err,
    out,
)
from cxasset.exceptions import BookWarning


@app.command()
@_command
def init(
    project_dir: Annotated[Path, typer.Argument(help="Project folder to create (new or empty).")],
    force: Annotated[bool, typer.Option("--force", help="Write into a non-empty folder: rewrite "
                                        "the project files, keep every other file.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Start a project for your own data: settings, value-map spec, scenarios, next steps.

    Writes book/book.yaml (every setting, commented, with its unit), book/README.md (the tables
    to put there), map.yaml, scenarios.yaml and a README of the next commands. Refuses a
    non-empty folder unless --force; writes everything or nothing. Example:

        cxasset init myproject
    """
    from cxasset.project import STEPS, init_project

    done = init_project(project_dir, force=force)
    if as_json:
        _emit_json(done)
        return
    out.print(f"Created the cxasset project {project_dir}:", highlight=False)
    for path in done["files"].values():
        out.print(f"  {path}" + ("  (replaced)" if path in done["overwritten"] else ""),
                  highlight=False)
    out.print(f"Next: put your tables in {Path(project_dir) / 'book'} (see its README.md), edit "
              f"book.yaml, then from {project_dir}:", highlight=False)
    for command, _ in STEPS[:5]:
        out.print(f"  {command}", highlight=False)
    out.print(f"and the rest in {done['files']['readme']}.", highlight=False)


# --------------------------------------------------------------------------- ingest / info
@app.command()
@_command
def ingest(
    book_dir: Annotated[Path, typer.Argument(help="Book folder (CSV/Parquet tables, book.yaml).")],
    workspace: WorkspaceOpt = Path("workspace"),
    as_json: JsonOpt = False,
) -> None:
    """Validate a customer book and load it into a workspace, atomically.

    A book that fails validation changes nothing. Example:

        cxasset ingest shared/data/cdnow_sample --workspace ws
    """
    from cxasset.book import Workspace

    ws = Workspace(workspace)
    with _progress(not as_json) as update, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BookWarning)
        report = ws.ingest(book_dir, progress=lambda msg: update(description=msg))
    del caught  # the report carries the warnings
    if as_json:
        _emit_json(report.to_dict())
        return
    table = Table("table", "rows", title=f"Ingested {book_dir} into {workspace}")
    for name, n in report.rows.items():
        table.add_row(name, f"{n:,}")
    out.print(table)
    s = report.settings
    out.print(f"period: {s.period} · as_of: {s.as_of} · calibration_end: "
              f"{s.calibration_end or '-'} · currency: {s.currency}")
    for w in report.warnings:
        err.print(f"[yellow]warning:[/] {escape(str(w))}", highlight=False, soft_wrap=True)


@app.command()
@_command
def info(workspace: WorkspaceOpt = Path("workspace"), as_json: JsonOpt = False) -> None:
    """Show what a workspace holds: source, fingerprint, row counts, settings, time of ingest.

    Example:

        cxasset info --workspace ws
    """
    from cxasset.book import Workspace

    with Workspace(workspace) as ws:
        meta = ws.meta()
    if as_json:
        _emit_json(meta)
        return
    table = Table("table", "rows", "source", title=f"Workspace {workspace}")
    for name, n in meta["rows"].items():
        table.add_row(name, f"{n:,}", meta["files"][name]["source"])
    out.print(table)
    out.print(f"source: {meta['source']}\ningested: {meta['ingested_at']}\n"
              f"fingerprint: {meta['fingerprint'][:16]}…\nkind: {meta['kind']}")
    out.print("settings: " + ", ".join(f"{k}={v}" for k, v in meta["settings"].items()))
    if meta["warnings"]:
        out.print(f"{len(meta['warnings'])} warning(s) at ingest:")
        for w in meta["warnings"]:
            out.print(f"  - {escape(w['message'])}", highlight=False)


# --------------------------------------------------------------------------- features
@app.command()
@_command
def features(
    workspace: WorkspaceOpt = Path("workspace"),
    as_of: Annotated[str | None, typer.Option(help="Observation end, YYYY-MM-DD.")] = None,
    calibration_end: Annotated[
        str | None, typer.Option(help="Cut features here; count the holdout after it.")
    ] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write a Parquet file.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Per-customer features as of a date (RFM statistics, CX aggregates, ...).

    Without --out, prints a summary of every feature. Example:

        cxasset features --workspace ws --calibration-end 1997-09-30 --out features.parquet
    """
    from cxasset.book import Workspace
    from cxasset.features import FeatureWindow, workspace_features

    with Workspace(workspace) as ws, _progress(not as_json) as update:
        update(description="computing features in the engine")
        window = FeatureWindow.resolve(ws.settings, _date(as_of, "--as-of"),
                                       _date(calibration_end, "--calibration-end"))
        expr = workspace_features(ws, _date(as_of, "--as-of"),
                                  _date(calibration_end, "--calibration-end"))
        if out_file is not None:
            out_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = out_file.with_name(out_file.name + ".tmp")
            expr.to_parquet(tmp)
            tmp.replace(out_file)
            n = int(expr.count().to_pyarrow().as_py())
            summary = None
        else:
            df = expr.to_pandas()
            n = len(df)
            summary = _describe(df)
    head = {"customers": n, "cutoff": str(window.cutoff),
            "holdout_end": str(window.holdout_end) if window.holdout_end else None,
            "period": window.period}
    if as_json:
        _emit_json({**head, "out": str(out_file) if out_file else None, "features": summary})
        return
    if out_file is not None:
        out.print(f"Wrote {n:,} customers' features to {out_file}")
        return
    table = Table("feature", "type", "non-null", "mean", "min", "max",
                  title=f"{n:,} customers · features as of {window.cutoff} · period: "
                  f"{window.period}" + (f" · holdout to {window.holdout_end}"
                                         if window.holdout_end else ""))
    for row in summary or []:
        table.add_row(row["feature"], row["type"], f"{row['non_null']:,}",
                      *(_num(row[k]) for k in ("mean", "min", "max")))
    out.print(table)


def _describe(df: Any) -> list[dict[str, Any]]:
    rows = []
    for col in df.columns:
        s = df[col]
        numeric = s.dtype.kind in "iuf"
        rows.append({
            "feature": col,
            "type": str(s.dtype),
            "non_null": int(s.notna().sum()),
            "mean": float(s.mean()) if numeric and s.notna().any() else None,
            "min": float(s.min()) if numeric and s.notna().any() else None,
            "max": float(s.max()) if numeric and s.notna().any() else None,
            "top": None if numeric or not s.notna().any() else str(s.mode().iloc[0]),
        })
    return rows


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.3g}" if abs(v) < 1 else f"{v:,.2f}"
