"""Fixtures of the lever tests: one small synthetic book ingested once per session."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from cxasset.book import Workspace
from cxasset.exceptions import BookWarning
from cxasset.synth import generate


@pytest.fixture(scope="session")
def lv_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2,000-customer synthetic transactions book (seed 11), ingested; copy before writing."""
    root = tmp_path_factory.mktemp("levers")
    generate(root / "book", customers=2000, seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BookWarning)
        ws = Workspace(root / "ws")
        ws.ingest(root / "book")
        ws.close()
    return root / "ws"
