"""Fixtures of the book tests: an already-populated workspace, and a factory of books."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from book_helpers import BASE, write_book

from cxasset.book import Workspace


@pytest.fixture(scope="session")
def template_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace holding the base book, ingested once per session."""
    root = tmp_path_factory.mktemp("template")
    ws = Workspace(root / "ws")
    ws.ingest(write_book(root / "book"))
    ws.close()
    return root / "ws"


@pytest.fixture
def ws_path(tmp_path: Path, template_ws: Path) -> Path:
    """A fresh copy of the populated workspace, in its own folder."""
    dest = tmp_path / "wsroot" / "ws"
    dest.parent.mkdir()
    shutil.copytree(template_ws, dest)
    return dest


@pytest.fixture
def make_book(tmp_path: Path) -> Callable[..., Path]:
    """``make_book({"transactions.csv": "...", "book.yaml": "..."})``: the base book with overrides."""
    count = 0

    def make(files: dict[str, str | bytes | None] | None = None,
             base: dict[str, str] = BASE) -> Path:
        nonlocal count
        count += 1
        return write_book(tmp_path / f"book{count}", files, base)

    return make
