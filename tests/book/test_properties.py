"""Property-based tests of validation: a valid random book ingests; the same book with one random
breaking mutation is refused with a message naming the table and column, and the already-populated
workspace it was ingested into is left byte-for-byte untouched."""

from __future__ import annotations

import csv
import datetime as dt
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from book_helpers import snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxasset.book import Workspace
from cxasset.exceptions import SchemaError

START = dt.date(2023, 1, 1)
Rows = list[dict[str, str]]

COLUMNS = {
    "customers": ["customer_id", "acquired_at", "segment", "onboarded_at"],
    "transactions": ["customer_id", "occurred_at", "amount"],
    "subscriptions": ["customer_id", "started_at", "recurring_revenue", "ended_at"],
    "surveys": ["customer_id", "occurred_at", "metric", "score"],
    "interactions": ["customer_id", "occurred_at", "channel", "effort"],
    "referrals": ["referrer_id", "occurred_at", "referred_customer_id"],
}


@dataclass
class RandomBook:
    """A valid book as rows of text, and its observation end."""

    tables: dict[str, Rows]
    as_of: dt.date
    text_ids: bool
    columns: dict[str, list[str]] = field(default_factory=lambda: {k: list(v) for k, v in
                                                                  COLUMNS.items()})

    def write(self, root: Path) -> Path:
        for name, rows in self.tables.items():
            with open(root / f"{name}.csv", "w", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, self.columns[name], extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)
        (root / "book.yaml").write_text(f"as_of: {self.as_of.isoformat()}\n")
        return root


def day(offset: int) -> str:
    return (START + dt.timedelta(days=offset)).isoformat()


@st.composite
def books(draw: st.DrawFn) -> RandomBook:
    """Small valid books: every customer has a transaction and a subscription, scores on scale."""
    n = draw(st.integers(2, 6))
    text_ids = draw(st.booleans())
    ids = [f"K{i:03d}" if text_ids else str(i + 1) for i in range(n)]
    acquired = [draw(st.integers(0, 200)) for _ in ids]
    last = max(acquired)
    customers, transactions, subscriptions, surveys, interactions = [], [], [], [], []
    for cid, a in zip(ids, acquired, strict=True):
        onboarded = draw(st.one_of(st.none(), st.integers(a, a + 10)))
        last = max(last, a if onboarded is None else onboarded)  # onboarding is by as_of too
        customers.append({"customer_id": cid, "acquired_at": day(a),
                          "segment": draw(st.sampled_from(["retail", "business", ""])),
                          "onboarded_at": "" if onboarded is None else day(onboarded)})
        for _ in range(draw(st.integers(1, 3))):
            t = a + draw(st.integers(0, 60))
            last = max(last, t)
            cents = draw(st.integers(0, 50_000))
            transactions.append({"customer_id": cid, "occurred_at": day(t),
                                 "amount": f"{cents / 100:.2f}"})
        end = draw(st.one_of(st.none(), st.integers(a, a + 90)))
        subscriptions.append({"customer_id": cid, "started_at": day(a),
                              "recurring_revenue": str(draw(st.integers(0, 100))),
                              "ended_at": "" if end is None else day(end)})
        if draw(st.booleans()):
            metric, lo, hi = draw(st.sampled_from([("nps", 0, 10), ("csat", 1, 5),
                                                   ("ces", 1, 7), ("loyalty", 0, 100)]))
            surveys.append({"customer_id": cid, "occurred_at": day(a + 1), "metric": metric,
                            "score": str(draw(st.integers(lo, hi)))})
        interactions.append({"customer_id": cid, "occurred_at": day(a + 2),
                             "channel": draw(st.sampled_from(["phone", "chat", "email"])),
                             "effort": str(draw(st.integers(1, 7)))})
        last = max(last, a + 2)
    if not surveys:
        surveys.append({"customer_id": ids[0], "occurred_at": day(acquired[0]), "metric": "nps",
                        "score": "10"})
    referrals = [{"referrer_id": ids[0], "occurred_at": day(acquired[0] + 3),
                  "referred_customer_id": ids[-1]}]
    last = max(last, acquired[0] + 3)
    as_of = START + dt.timedelta(days=last + draw(st.integers(0, 30)))
    tables = {"customers": customers, "transactions": transactions,
              "subscriptions": subscriptions, "surveys": surveys, "interactions": interactions,
              "referrals": referrals}
    return RandomBook(tables, as_of, text_ids)


# ------------------------------------------------------------------ breaking mutations
# Each takes the book and a draw function, breaks the book in place, and returns the words the
# error message must contain (file and column first).
Mutation = Callable[[RandomBook, st.DrawFn], list[str]]


def _pick(draw: st.DrawFn, rows: Rows) -> dict[str, str]:
    return rows[draw(st.integers(0, len(rows) - 1))]


def blank_required_cell(b: RandomBook, draw: st.DrawFn) -> list[str]:
    table, col = draw(st.sampled_from([
        ("customers", "customer_id"), ("customers", "acquired_at"),
        ("transactions", "customer_id"), ("transactions", "occurred_at"),
        ("transactions", "amount"), ("subscriptions", "started_at"), ("surveys", "score"),
        ("surveys", "metric"), ("interactions", "channel"), ("referrals", "referrer_id")]))
    _pick(draw, b.tables[table])[col] = draw(st.sampled_from(["", "  "]))
    return [f"{table}.csv, column {col}:", "rows are empty"]


def text_in_numeric_column(b: RandomBook, draw: st.DrawFn) -> list[str]:
    table, col = draw(st.sampled_from([("transactions", "amount"), ("surveys", "score"),
                                       ("subscriptions", "recurring_revenue"),
                                       ("interactions", "effort")]))
    value = draw(st.sampled_from(["abc", "12,50", "$3", "1 000", "NaN", "inf", "0x10", "n/a"]))
    _pick(draw, b.tables[table])[col] = value
    return [f"{table}.csv, column {col}:", "rows are not numbers", repr(value)]


def unparseable_date(b: RandomBook, draw: st.DrawFn) -> list[str]:
    table, col = draw(st.sampled_from([("customers", "acquired_at"),
                                       ("transactions", "occurred_at"),
                                       ("subscriptions", "ended_at"), ("surveys", "occurred_at")]))
    value = draw(st.sampled_from(["2024-13-01", "2023-02-30", "yesterday", "1 Jan 2023", "2023"]))
    _pick(draw, b.tables[table])[col] = value
    return [f"{table}.csv, column {col}:", "rows are not dates", repr(value)]


def duplicate_customer_id(b: RandomBook, draw: st.DrawFn) -> list[str]:
    row = dict(_pick(draw, b.tables["customers"]))
    b.tables["customers"].insert(draw(st.integers(0, len(b.tables["customers"]))), row)
    return ["customers.csv, column customer_id:", "duplicated customer_id",
            f"customer_id={row['customer_id']!r}" if b.text_ids else
            f"customer_id={row['customer_id']} appears 2 times"]


def unknown_customer(b: RandomBook, draw: st.DrawFn) -> list[str]:
    table, col = draw(st.sampled_from([("transactions", "customer_id"),
                                       ("interactions", "customer_id"),
                                       ("surveys", "customer_id"), ("referrals", "referrer_id"),
                                       ("referrals", "referred_customer_id")]))
    stranger = "Z999" if b.text_ids else str(draw(st.integers(1000, 10**6)))
    row = dict(b.tables[table][0])
    row[col] = stranger
    b.tables[table].append(row)
    return [f"{table}.csv, column {col}:", "not in the customers table", stranger]


def event_after_as_of(b: RandomBook, draw: st.DrawFn) -> list[str]:
    table, col = draw(st.sampled_from([("transactions", "occurred_at"),
                                       ("customers", "acquired_at"),
                                       ("subscriptions", "started_at"),
                                       ("interactions", "occurred_at")]))
    late = b.as_of + dt.timedelta(days=draw(st.integers(1, 400)))
    row = _pick(draw, b.tables[table])
    row[col] = late.isoformat()
    if table == "subscriptions" and row["ended_at"]:
        row["ended_at"] = ""
    if table == "customers":  # keep onboarding after acquisition: only as_of is broken
        row["onboarded_at"] = ""
    return [f"{table}.csv, column {col}:", "dated after as_of", late.isoformat()]


def score_off_scale(b: RandomBook, draw: st.DrawFn) -> list[str]:
    metric, bad = draw(st.sampled_from([("nps", "11"), ("nps", "-1"), ("csat", "0"),
                                        ("csat", "6"), ("ces", "8"), ("ces", "0.5")]))
    row = dict(b.tables["surveys"][0], metric=draw(st.sampled_from([metric, metric.upper()])),
               score=bad)
    b.tables["surveys"].append(row)
    return ["surveys.csv, column score:", f"{metric.upper()} scores outside"]


def effort_off_scale(b: RandomBook, draw: st.DrawFn) -> list[str]:
    _pick(draw, b.tables["interactions"])["effort"] = draw(st.sampled_from(["0", "8", "7.5", "-3"]))
    return ["interactions.csv, column effort:", "outside the CES scale 1-7"]


def end_before_start(b: RandomBook, draw: st.DrawFn) -> list[str]:
    row = _pick(draw, b.tables["subscriptions"])
    start = dt.date.fromisoformat(row["started_at"])
    row["ended_at"] = (start - dt.timedelta(days=draw(st.integers(1, 100)))).isoformat()
    return ["subscriptions.csv, column ended_at:", "end before they start"]


def onboarded_before_acquired(b: RandomBook, draw: st.DrawFn) -> list[str]:
    row = _pick(draw, b.tables["customers"])
    acquired = dt.date.fromisoformat(row["acquired_at"])
    row["onboarded_at"] = (acquired - dt.timedelta(days=draw(st.integers(1, 100)))).isoformat()
    return ["customers.csv, column onboarded_at:", "onboarded before they were acquired"]


def drop_required_column(b: RandomBook, draw: st.DrawFn) -> list[str]:
    table, col = draw(st.sampled_from([("customers", "acquired_at"), ("transactions", "amount"),
                                       ("surveys", "metric"), ("referrals", "occurred_at"),
                                       ("subscriptions", "recurring_revenue")]))
    b.columns[table].remove(col)
    return [f"{table}.csv, column {col}:", f"required column(s) {col} missing"]


def negative_recurring_revenue(b: RandomBook, draw: st.DrawFn) -> list[str]:
    _pick(draw, b.tables["subscriptions"])["recurring_revenue"] = "-5"
    return ["subscriptions.csv, column recurring_revenue:", "negative recurring_revenue"]


MUTATIONS: list[Mutation] = [
    blank_required_cell, text_in_numeric_column, unparseable_date, duplicate_customer_id,
    unknown_customer, event_after_as_of, score_off_scale, effort_off_scale, end_before_start,
    onboarded_before_acquired, drop_required_column, negative_recurring_revenue,
]


@pytest.fixture(scope="module")
def populated(template_ws: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One populated workspace for all examples (a refused ingest must not change it)."""
    dest = tmp_path_factory.mktemp("prop") / "ws"
    shutil.copytree(template_ws, dest)
    return dest


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(book=books(), mutation=st.sampled_from(MUTATIONS), data=st.data())
def test_broken_book_is_refused_and_workspace_untouched(populated, book, mutation, data):
    words = mutation(book, data.draw)
    before = snapshot(populated)
    with tempfile.TemporaryDirectory() as tmp:
        path = book.write(Path(tmp))
        with pytest.raises(SchemaError, match=re.escape(words[0])) as info:
            Workspace(populated).ingest(path)
    message = str(info.value)
    for w in words[1:]:
        assert w in message, f"{mutation.__name__}: {w!r} not in\n{message}"
    assert re.search(r"\d+ of \d+ rows|required column", message), message
    assert info.value.problems and all(p.severity == "error" for p in info.value.problems)
    assert snapshot(populated) == before
    assert not list(populated.glob(".ingest-*"))


@settings(max_examples=8, deadline=None)
@given(book=books())
def test_valid_random_book_ingests(book):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "book").mkdir()
        with Workspace(root / "ws") as ws:
            report = ws.ingest(book.write(root / "book"))
            assert report.rows == {n: len(r) for n, r in book.tables.items()}
            assert ws.settings.as_of == book.as_of
            assert report.warnings == []
