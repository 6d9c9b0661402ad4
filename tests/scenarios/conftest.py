"""Fixtures of the scenario tests: small synthetic books with a steady inflow of customers (so
new cohorts are forecast), ingested once, and planners prepared on them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cxasset.book import Workspace
from cxasset.scenarios.simulate import Planner, prepare


@pytest.fixture(scope="session")
def sc_ws(synth_ws: Callable[..., Path]) -> Path:
    """A 4,000-customer transactions book with a steady inflow (seed 3). Read only."""
    return synth_ws(4000, 3)


@pytest.fixture(scope="session")
def planner(sc_ws: Path) -> Planner:
    """A planner over 24 months on :func:`sc_ws`."""
    with Workspace(sc_ws) as ws:
        return prepare(ws, 24, max_score=4000, max_templates=800)


@pytest.fixture(scope="session")
def sub_planner(synth_ws: Callable[..., Path]) -> Planner:
    """A planner over 24 months on a 3,000-customer subscription book with a steady inflow."""
    path = synth_ws(3000, 4, kind="subscriptions")
    with Workspace(path) as ws:
        return prepare(ws, 24, max_templates=600)
