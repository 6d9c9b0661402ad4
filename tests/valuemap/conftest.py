"""Fixtures of the value-map tests: one small synthetic book ingested once, and one estimate."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cxasset.book import Workspace
from cxasset.valuemap.estimate import Estimate, estimate

#: The drivers of the shared estimate: onboarding (planted effects on purchase rate and
#: dropout), two survey scores with non-response, training hours.
DRIVERS = ["onboarding_days", "nps", "ces", "training_hours"]


@pytest.fixture(scope="session")
def vm_ws(synth_ws: Callable[..., Path]) -> Path:
    """A 3,000-customer synthetic transactions book (seed 5), ingested. Read only."""
    return synth_ws(3000, 5, steady=False)


@pytest.fixture(scope="session")
def vm_est(vm_ws: Path) -> Estimate:
    """Every mechanism fitted on :data:`DRIVERS` of ``vm_ws`` (all 3,000 customers scored)."""
    with Workspace(vm_ws) as ws:
        return estimate(ws, DRIVERS, seed=0)


@pytest.fixture(scope="session")
def noref_ws(synth_ws: Callable[..., Path]) -> Path:
    """A 2,000-customer synthetic book (seed 7) whose referrals table was deleted, ingested."""
    return synth_ws(2000, 7, steady=False, drop=("referrals",))
