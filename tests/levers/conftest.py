"""Fixtures of the lever tests: one small synthetic book ingested once per session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def lv_ws(synth_ws: Callable[..., Path]) -> Path:
    """A 2,000-customer synthetic transactions book (seed 11), ingested; copy before writing."""
    return synth_ws(2000, 11, steady=False)
