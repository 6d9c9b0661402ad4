"""The ``cxasset`` command line: one command per pipeline step, ``--json`` on every one.

Errors cxasset raises on purpose print as one line (``--debug`` shows the traceback) and exit with
code 2 for bad input (book, settings, arguments) and 3 for a missing or unusable workspace.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cxasset.exceptions import BookWarning, CxassetError, WorkspaceError

app = typer.Typer(
    name="cxasset",
    help="The Customer Asset Model: customer data in; CLV, customer equity and the return of "
    "CX investments out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
out = Console()
err = Console(stderr=True)

WorkspaceOpt = Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON only.")]
_state = {"debug": False}


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug


def _command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command: CxassetError -> one line on stderr and a meaningful exit code."""

    @wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # typer's own exits and usage errors (exit code 2), printed by typer
        except KeyboardInterrupt:
            if _state["debug"]:
                raise
            err.print("[bold red]error:[/] interrupted", highlight=False)
            raise typer.Exit(130) from None
        except Exception as exc:
            if _state["debug"]:
                raise
            raise typer.Exit(_report(exc)) from None

    return run


def _report(exc: Exception) -> int:
    """Print an error as one line on stderr; return its exit code: 2 bad input (including a file
    that cannot be read or written), 3 an unusable workspace, 1 anything unexpected (a bug)."""
    if isinstance(exc, CxassetError):
        msg, code = str(exc), 3 if isinstance(exc, WorkspaceError) else 2
    elif isinstance(exc, OSError):
        msg, code = str(exc), 2
    else:
        msg, code = (f"unexpected {type(exc).__name__}: {exc} (a bug in cxasset; rerun with "
                     "--debug for the traceback and report it)"), 1
    err.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)
    return code


@contextmanager
def _progress(enabled: bool, total: int | None = None) -> Iterator[Callable[..., None]]:
    """A rich progress display on stderr; yields ``update(description=..., completed=...)``."""
    if not enabled:
        yield lambda **_: None
        return
    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    if total:
        columns += [BarColumn(), TextColumn("{task.completed:,}/{task.total:,}")]
    with Progress(*columns, TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("starting", total=total)
        yield lambda **kw: bar.update(task, **kw)


def _emit_json(data: Any) -> None:
    """Strict JSON on stdout: NaN and infinities become null."""
    sys.stdout.write(json.dumps(_finite(data), indent=2, default=str, allow_nan=False) + "\n")


def _finite(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def _date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CxassetError(f"{option} must be a date as YYYY-MM-DD; got {value!r}") from None


# --------------------------------------------------------------------------- init
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


# --------------------------------------------------------------------------- fit / value
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


# --------------------------------------------------------------------------- value map / levers
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
    from cxasset.valuemap.build import value_map
    from cxasset.valuemap.graph import graph, svg

    sp = _spec(spec) if spec is not None else None
    with Workspace(workspace) as ws, _progress(not as_json) as update:
        if sp is None:
            sp = _starter(ws)
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


def _starter(ws: Any) -> Any:
    """The starter spec of ``cxasset map init`` (:func:`cxasset.valuemap.build.starter_spec`)."""
    from cxasset.valuemap.build import starter_spec

    return starter_spec(ws)


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

    if out_file.exists() and not force:
        raise CxassetError(f"{out_file} exists; pass --force to overwrite it")
    with Workspace(workspace) as ws, _progress(not as_json) as update:
        update(description="computing features in the engine")
        sp = _starter(ws)
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


# --------------------------------------------------------------------------- scenarios
ScenariosArg = Annotated[Path, typer.Argument(help="Scenario file (YAML): one scenario or a "
                                              "list; see docs/scenarios.md.")]
DrawsOpt = Annotated[int, typer.Option(help="Monte Carlo draws.", min=10)]
SeedOpt = Annotated[int, typer.Option(help="Random seed (the same seed gives common random "
                                      "numbers across scenarios).")]


def _planner(ws: Any, scenarios: list[Any], seed: int, update: Callable[..., None]) -> Any:
    from cxasset.scenarios.simulate import prepare

    months = max(s.horizon_months for s in scenarios)
    return prepare(ws, months, seed=seed, progress=lambda m: update(description=m),
                   scenarios=scenarios)


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


# --------------------------------------------------------------------------- report
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
    as_json: JsonOpt = False,
) -> None:
    """The board report: executive summary, health, growth, return and trust in one file.

    Reads what the other commands saved in the workspace (fit, value map, levers, scenarios); a
    missing stage gets a section saying which command makes it. With --json, prints every
    figure of the report instead of writing the file.

    Example:

        cxasset report --workspace ws --out report.html

        cxasset report --workspace ws --scenarios scenarios.yaml --format md --out report.md
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
        figures = report_figures(ws, seed=seed)
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


# --------------------------------------------------------------------------- synth / demo
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

    synth -> ingest -> features -> fit -> value -> value map -> levers -> scenarios -> report.
    Example:

        cxasset demo --out demo --customers 20000
    """
    import yaml

    from cxasset.book import Workspace
    from cxasset.features import workspace_features
    from cxasset.levers.rank import rank_levers
    from cxasset.models.workflow import fit_workspace
    from cxasset.report.figures import report_figures
    from cxasset.report.html import render_html
    from cxasset.report.text import money
    from cxasset.scenarios.plan import compare as compare_scenarios
    from cxasset.scenarios.simulate import prepare
    from cxasset.scenarios.spec import parse_scenarios
    from cxasset.synth import generate
    from cxasset.valuation import value_workspace
    from cxasset.valuemap.build import value_map
    from cxasset.valuemap.graph import graph, svg

    book = out_dir / "book"
    ws = Workspace(out_dir / "workspace")
    steps = 9
    with _progress(not as_json, total=customers) as update:
        update(description=f"1/{steps} synthesising the customer book")
        generate(book, customers=customers, seed=seed,
                 progress=lambda n: update(completed=n))
        update(description=f"2/{steps} validating and ingesting", completed=customers)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BookWarning)
            report = ws.ingest(book)
        update(description=f"3/{steps} computing features in the engine")
        s = ws.settings
        feats = workspace_features(ws, calibration_end=s.calibration_end).to_pandas()
        fitted = fit_workspace(ws, model="auto",
                               progress=lambda m: update(description=f"4/{steps} {m}"))
        update(description=f"5/{steps} valuing the customer base")
        valuation = value_workspace(ws)
        spec = _starter(ws)
        (out_dir / "map.yaml").write_text(spec.to_yaml())
        vmap = value_map(ws, spec, progress=lambda m: update(description=f"6/{steps} map: {m}"))
        lever_report = rank_levers(ws, spec, progress=lambda m: update(
            description=f"7/{steps} levers: {m}"))
        (out_dir / "scenarios.yaml").write_text(DEMO_SCENARIOS)
        scenarios = parse_scenarios(yaml.safe_load(DEMO_SCENARIOS), "demo scenarios")
        planner = prepare(ws, 36, seed=seed, scenarios=scenarios,
                          progress=lambda m: update(description=f"8/{steps} scenarios: {m}"))
        compared = compare_scenarios(planner, scenarios, draws=1000, seed=seed)
        ws.save_artifact("scenarios", {"scenarios": compared["scenarios"],
                                       "notes": planner.notes})
        update(description=f"9/{steps} writing the board report")
        figures = report_figures(ws, seed=seed)
        (out_dir / "report.html").write_text(render_html(figures), encoding="utf-8")
        ws.close()
    vmap_d, levers_d = vmap.to_dict(), lever_report.to_dict()
    g = graph(vmap_d)
    (out_dir / "valuemap.svg").write_text(svg(g, lambda v: money(v, vmap_d["currency"])))
    summary = _demo_summary(feats, s)
    fit_d, value_d = fitted.to_dict(), valuation.to_dict()
    if as_json:
        _emit_json({"book": str(book), "workspace": str(ws.path), "rows": report.rows,
                    "summary": summary, "fit": fit_d, "value": value_d, "valuemap": vmap_d,
                    "levers": levers_d, "scenarios": compared,
                    "report": str(out_dir / "report.html"), "summary_sentences": figures["summary"]})
        return
    from cxasset.report.text import fit_tables, levers_table, value_table

    table = Table("measure", "value", title=f"Customer book {book} · {report.rows['customers']:,}"
                  f" customers · features as of {s.calibration_end or s.as_of}")
    for k, v in summary.items():
        table.add_row(k, v)
    out.print(table)
    for renderable in fit_tables(fit_d):
        out.print(renderable)
    out.print(value_table(value_d))
    out.print(levers_table(levers_d, top=10))
    for t in vmap_d["translation"]:
        out.print(f"{t['metric'].upper()} ({t['measures']}): {t['translation']}")
    for d, t in levers_d["thresholds"].items():
        out.print(f"Threshold: the effect of {d} jumps above {t['cut']:g} ({t['mechanism']})")
    if levers_d["undeclared_levers"]:
        out.print("Undeclared levers the data shows: " + ", ".join(levers_d["undeclared_levers"]))
    from cxasset.report.text import ranking_table

    out.print(ranking_table(compared, s.currency))
    for d in compared["scenarios"]:
        out.print(d["sentence"])
    out.print("Executive summary", style="bold")
    for sentence in figures["summary"]:
        out.print(sentence, highlight=False)
    out.print(f"Report: {out_dir / 'report.html'} · workspace: {ws.path} · value map: "
              f"{out_dir / 'valuemap.svg'} · spec: {out_dir / 'map.yaml'} · scenarios: "
              f"{out_dir / 'scenarios.yaml'} · try: cxasset simulate "
              f"{out_dir / 'scenarios.yaml'} --workspace {ws.path}")


#: The demo's scenarios: the synthetic book's planted levers, with costs in its currency.
DEMO_SCENARIOS = """\
- name: Onboarding concierge
  horizon_months: 36
  initiatives:
    - name: Onboarding concierge
      target: {segment: [smb, mid]}
      changes:
        - {driver: onboarding_days, shift: -4, uncertainty_sd: 1.0}
      applies_to: both
      ramp_months: 3
      cost: {upfront: 40000, per_month: 3000}
- name: Training programme
  horizon_months: 36
  initiatives:
    - name: Two more hours of training
      changes:
        - {driver: training_hours, shift: 2, uncertainty_sd: 0.5}
      ramp_months: 6
      cost: {upfront: 20000, per_customer: 4}
- name: Both
  horizon_months: 36
  initiatives:
    - name: Onboarding concierge
      target: {segment: [smb, mid]}
      changes:
        - {driver: onboarding_days, shift: -4, uncertainty_sd: 1.0}
      applies_to: both
      ramp_months: 3
      cost: {upfront: 40000, per_month: 3000}
    - name: Two more hours of training
      changes:
        - {driver: training_hours, shift: 2, uncertainty_sd: 0.5}
      ramp_months: 6
      cost: {upfront: 20000, per_customer: 4}
"""


def _demo_summary(f: Any, s: Any) -> dict[str, str]:
    cur = s.currency
    rows = {
        "customers": f"{len(f):,}",
        "repeat buyers": f"{(f.frequency > 0).mean():.1%}",
        "mean repeat transactions (x)": f"{f.frequency.mean():.2f} in {f['T'].mean():.1f} "
                                        f"{s.period}s on average",
        "mean repeat spend": f"{cur} {f.monetary_value[f.frequency > 0].mean():,.2f}",
    }
    if "frequency_holdout" in f:
        rows["holdout transactions"] = (f"{int(f.frequency_holdout.sum()):,} over "
                                        f"{f.duration_holdout.iloc[0]:.0f} {s.period}s")
    if "nps" in f:
        share = f.nps_class.value_counts(normalize=True)
        nps = 100 * (share.get("promoter", 0) - share.get("detractor", 0))
        rows["NPS (latest answer)"] = f"{nps:+.0f} ({f.nps.notna().mean():.0%} answered)"
    for col, label in (("csat", "mean CSAT (1-5)"), ("ces", "mean CES (1-7)"),
                       ("onboarding_days", "mean onboarding days")):
        if col in f:
            rows[label] = f"{f[col].mean():.2f}"
    if "cost_to_serve_per_period" in f:
        rows["cost to serve"] = f"{cur} {f.cost_to_serve_per_period.mean():,.2f} per {s.period}"
    if "referrals_per_period" in f:
        rows["referrals"] = f"{f.referrals_per_period.mean():.4f} per customer per {s.period}"
    return rows


def main() -> None:  # pragma: no cover - entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
