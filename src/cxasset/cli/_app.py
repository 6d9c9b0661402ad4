"""The command line's shared parts: the typer app, the error policy (one line, meaningful exit
code; ``--debug`` shows the traceback), progress displays, strict JSON output, common options.

Exit codes: 0 ok, 1 an unexpected error (a bug), 2 bad input (book, settings, arguments, files),
3 a missing or unusable workspace, 130 interrupted.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from cxasset.exceptions import CxassetError, WorkspaceError

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


# --------------------------------------------------------------------------- shared options
ScenariosArg = Annotated[Path, typer.Argument(help="Scenario file (YAML): one scenario or a "
                                              "list; see docs/scenarios.md.")]
DrawsOpt = Annotated[int, typer.Option(help="Monte Carlo draws.", min=10)]
SeedOpt = Annotated[int, typer.Option(help="Random seed (the same seed gives common random "
                                      "numbers across scenarios).")]


def _planner(ws: Any, scenarios: list[Any], seed: int, update: Callable[..., None]) -> Any:
    from cxasset.scenarios.simulate import prepare

    return prepare(ws, seed=seed, progress=lambda m: update(description=m), scenarios=scenarios)
