"""Helpers of the book tests: a valid small book as CSV text, and an already-populated workspace.

Every refusal test ingests into a workspace that already holds a book and checks that the refused
ingest leaves it byte-for-byte as it was (:func:`assert_refused`).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from cxasset.book import Workspace
from cxasset.exceptions import SchemaError

#: A valid book: every customer has transactions, every event is on or after its customer's
#: acquisition, scores are on their scales. ``None`` as an override removes a table.
BASE: dict[str, str] = {
    "customers.csv": (
        "customer_id,acquired_at,segment,onboarded_at\n"
        "1,2024-01-02,retail,2024-01-03\n"
        "2,2024-01-10,retail,\n"
        "3,2024-02-01,business,2024-02-05\n"
        "4,2024-02-15,business,2024-02-15\n"
    ),
    "transactions.csv": (
        "customer_id,occurred_at,amount\n"
        "1,2024-01-02,25.50\n"
        "1,2024-02-11,12.00\n"
        "2,2024-01-10,40.00\n"
        "3,2024-02-01,99.90\n"
        "3,2024-03-20,15.00\n"
        "4,2024-02-15,8.25\n"
    ),
    "interactions.csv": (
        "customer_id,occurred_at,channel,effort,resolved\n"
        "1,2024-01-05,phone,3,true\n"
        "3,2024-02-10,chat,6,false\n"
    ),
    "surveys.csv": (
        "customer_id,occurred_at,metric,score\n"
        "1,2024-01-06,nps,9\n"
        "2,2024-01-12,csat,4\n"
        "3,2024-02-11,ces,2\n"
    ),
    "referrals.csv": (
        "referrer_id,occurred_at,referred_customer_id\n"
        "1,2024-02-14,4\n"
        "3,2024-03-01,\n"
    ),
    "engagement.csv": (
        "customer_id,occurred_at,event,count\n"
        "1,2024-01-04,login,2\n"
        "4,2024-02-20,app_session,1\n"
    ),
}


def write_book(root: Path, files: dict[str, str | bytes | None] | None = None,
               base: dict[str, str] = BASE) -> Path:
    """Write ``base`` updated with ``files`` (text, bytes, or ``None`` to leave a file out)."""
    root.mkdir(parents=True, exist_ok=True)
    merged: dict[str, str | bytes | None] = {**base, **(files or {})}
    for name, content in merged.items():
        if content is None:
            continue
        path = root / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_bytes(content.encode("utf-8"))  # no newline translation
    return root


def snapshot(folder: Path) -> dict[str, str] | None:
    """SHA-256 of every file in ``folder`` (``None`` when the folder does not exist)."""
    if not folder.exists():
        return None
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


def assert_refused(ws_path: Path, book: object, *fragments: str,
                   error: type[Exception] = SchemaError) -> Exception:
    """Ingest ``book`` into ``ws_path``, expect ``error`` naming every fragment, and the workspace
    (or its absence) unchanged. The first fragment is the ``match`` of ``pytest.raises``."""
    before = snapshot(ws_path)
    parent_before = sorted(p.name for p in ws_path.parent.iterdir())
    with pytest.raises(error, match=re.escape(fragments[0])) as info:
        Workspace(ws_path).ingest(book)  # type: ignore[arg-type]
    message = str(info.value)
    for fragment in fragments[1:]:
        assert fragment in message, f"{fragment!r} not in:\n{message}"
    assert snapshot(ws_path) == before
    if ws_path.exists():
        assert not list(ws_path.glob(".ingest-*")), list(ws_path.iterdir())
    assert sorted(p.name for p in ws_path.parent.iterdir()) == parent_before
    return info.value
