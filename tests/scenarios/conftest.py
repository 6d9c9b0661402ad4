"""Fixtures of the scenario tests: small synthetic books with a steady inflow of customers (so
new cohorts are forecast), ingested once, and planners prepared on them."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import pytest

from cxasset.book import Workspace
from cxasset.exceptions import BookWarning
from cxasset.scenarios.simulate import Planner, prepare
from cxasset.synth import SynthParams, generate


def steady_book(root: Path, customers: int, seed: int, kind: str = "transactions") -> Path:
    """A synthetic book acquiring customers over its whole 104-week window, ingested into
    ``root/ws``; returns the workspace folder."""
    p = SynthParams()
    p = dataclasses.replace(p, calendar={**p.calendar, "acquisition_weeks": 104})
    generate(root / "book", customers=customers, seed=seed, kind=kind, params=p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BookWarning)
        ws = Workspace(root / "ws")
        ws.ingest(root / "book")
        ws.close()
    return root / "ws"


@pytest.fixture(scope="session")
def sc_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4,000-customer transactions book with a steady inflow (seed 3). Read only."""
    return steady_book(tmp_path_factory.mktemp("sc"), 4000, 3)


@pytest.fixture(scope="session")
def planner(sc_ws: Path) -> Planner:
    """A planner over 24 months on :func:`sc_ws`."""
    with Workspace(sc_ws) as ws:
        return prepare(ws, 24, max_score=4000, max_templates=800)


@pytest.fixture(scope="session")
def sub_planner(tmp_path_factory: pytest.TempPathFactory) -> Planner:
    """A planner over 24 months on a 3,000-customer subscription book with a steady inflow."""
    path = steady_book(tmp_path_factory.mktemp("scsub"), 3000, 4, kind="subscriptions")
    with Workspace(path) as ws:
        return prepare(ws, 24, max_templates=600)
