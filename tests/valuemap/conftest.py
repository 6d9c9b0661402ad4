"""Fixtures of the value-map tests: one small synthetic book ingested once, and one estimate."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from cxasset.book import Workspace
from cxasset.exceptions import BookWarning
from cxasset.synth import generate
from cxasset.valuemap.estimate import Estimate, estimate

#: The drivers of the shared estimate: onboarding (planted effects on purchase rate and
#: dropout), two survey scores with non-response, training hours.
DRIVERS = ["onboarding_days", "nps", "ces", "training_hours"]


def ingest_synthetic(root: Path, customers: int, seed: int, drop: tuple[str, ...] = ()) -> Path:
    """A synthetic book written to ``root/book`` (tables in ``drop`` deleted) and ingested into
    ``root/ws``; BookWarnings ignored. Returns the workspace folder."""
    generate(root / "book", customers=customers, seed=seed)
    for table in drop:
        (root / "book" / f"{table}.parquet").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BookWarning)
        ws = Workspace(root / "ws")
        ws.ingest(root / "book")
        ws.close()
    return root / "ws"


@pytest.fixture(scope="session")
def vm_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3,000-customer synthetic transactions book (seed 5), ingested. Read only."""
    return ingest_synthetic(tmp_path_factory.mktemp("vm"), 3000, 5)


@pytest.fixture(scope="session")
def vm_est(vm_ws: Path) -> Estimate:
    """Every mechanism fitted on :data:`DRIVERS` of ``vm_ws`` (all 3,000 customers scored)."""
    with Workspace(vm_ws) as ws:
        return estimate(ws, DRIVERS, seed=0)


@pytest.fixture(scope="session")
def noref_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2,000-customer synthetic book (seed 7) whose referrals table was deleted, ingested."""
    return ingest_synthetic(tmp_path_factory.mktemp("noref"), 2000, 7, drop=("referrals",))
