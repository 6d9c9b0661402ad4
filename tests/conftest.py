"""Shared fixtures: the CDNOW sample book ingested (once per session) and fitted with BG/NBD, and
synthetic books made and ingested once per session (:func:`synth_ws`)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests explore the same examples on every run: CI stays reproducible, and a failure
# found once is found again. Set HYPOTHESIS_PROFILE=explore for fresh random examples.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

from cxasset.book import Workspace  # noqa: E402 (after the hypothesis profile is loaded)
from cxasset.exceptions import BookWarning  # noqa: E402 (after the hypothesis profile is loaded)
from cxasset.models.workflow import FitReport, fit_workspace  # noqa: E402 (after the hypothesis profile is loaded)

#: ``shared/data`` sits next to the repository.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CDNOW_BOOK = SHARED_DATA / "cdnow_sample"


def _ingest_quietly(book: Path, ws_dir: Path) -> Workspace:
    ws = Workspace(ws_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BookWarning)
        ws.ingest(book)
    return ws


@pytest.fixture(scope="session")
def ingest_quietly() -> Callable[[Path, Path], Workspace]:
    """``ingest_quietly(book, ws_dir)``: a new workspace holding ``book``; BookWarnings ignored."""
    return _ingest_quietly


@pytest.fixture(scope="session")
def cdnow_book() -> Path:
    """The CDNOW sample book (2,357 customers, weekly)."""
    return CDNOW_BOOK


@pytest.fixture(scope="session")
def cdnow_ws_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace holding the CDNOW sample book, no models fitted; copy it before writing."""
    path = tmp_path_factory.mktemp("cdnow") / "ws"
    _ingest_quietly(CDNOW_BOOK, path).close()
    return path


@pytest.fixture(scope="session")
def copy_cdnow_ws(tmp_path_factory: pytest.TempPathFactory, cdnow_ws_template: Path
                  ) -> Callable[[], Path]:
    """``copy_cdnow_ws()``: a fresh copy of the ingested CDNOW workspace in its own folder."""

    def copy() -> Path:
        dest = tmp_path_factory.mktemp("cdnow_copy") / "ws"
        shutil.copytree(cdnow_ws_template, dest)
        return dest

    return copy


@pytest.fixture(scope="session")
def cdnow_fitted(copy_cdnow_ws: Callable[[], Path]) -> tuple[Path, FitReport]:
    """A CDNOW workspace after ``fit_workspace(ws, model="bgnbd")``, and its report. Read only."""
    path = copy_cdnow_ws()
    with Workspace(path) as ws:
        report = fit_workspace(ws, model="bgnbd")
    return path, report


def steady_book(root: Path, customers: int, seed: int, kind: str = "transactions",
                steady: bool = True, drop: tuple[str, ...] = ()) -> Path:
    """A synthetic book ingested into ``root/ws`` (returned); ``steady``: customers are acquired
    over the whole 104-week window (so there are new cohorts), else the generator's default;
    the tables named in ``drop`` are deleted from the book before ingest."""
    from cxasset.synth import SynthParams, generate

    p = SynthParams()
    if steady:
        p = dataclasses.replace(p, calendar={**p.calendar, "acquisition_weeks": 104})
    generate(root / "book", customers=customers, seed=seed, kind=kind, params=p)
    for table in drop:
        (root / "book" / f"{table}.parquet").unlink()
    _ingest_quietly(root / "book", root / "ws").close()
    return root / "ws"


@pytest.fixture(scope="session")
def synth_ws(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``synth_ws(customers, seed, kind="transactions", steady=True, fit=None, drop=())``: the
    workspace of a synthetic book (see :func:`steady_book`), made once per session for each set
    of arguments; ``fit`` names a model to fit with ``fit_workspace`` ("auto", "bgbb", ...).
    Read only: copy it (``shutil.copytree``) before writing."""
    made: dict[tuple, Path] = {}

    def get(customers: int, seed: int, kind: str = "transactions", steady: bool = True,
            fit: str | None = None, drop: tuple[str, ...] = ()) -> Path:
        key = (customers, seed, kind, steady, fit, drop)
        if key not in made:
            path = steady_book(tmp_path_factory.mktemp("synth"), customers, seed, kind, steady,
                               drop)
            if fit is not None:
                with Workspace(path) as ws:
                    fit_workspace(ws, model=fit)
            made[key] = path
        return made[key]

    return get
