"""Ingest of good books: sources (CSV, Parquet, frames, ibis tables), encodings, settings, warnings,
the workspace's metadata, re-ingest, and the example book of ``docs/book.md``."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import ibis
import pandas as pd
import pytest
from book_helpers import BASE, assert_refused, snapshot

from cxasset.book import Book, BookSettings, Workspace
from cxasset.exceptions import BookWarning, SchemaError, WorkspaceError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "book"


def ingest(ws_path: Path, book: object) -> Workspace:
    ws = Workspace(ws_path)
    ws.ingest(book)  # type: ignore[arg-type]
    return ws


def test_base_book_ingests_every_table(tmp_path, make_book):
    with ingest(tmp_path / "ws", make_book()) as ws:
        assert ws.tables() == ["customers", "transactions", "interactions", "surveys",
                               "referrals", "engagement"]
        assert ws.meta()["rows"] == {"customers": 4, "transactions": 6, "interactions": 2,
                                     "surveys": 3, "referrals": 2, "engagement": 2}
        schema = ws.table("transactions").schema()
        assert (schema["customer_id"].is_integer(), schema["occurred_at"].is_timestamp(),
                schema["amount"].is_floating()) == (True, True, True)
        assert ws.table("interactions").schema()["resolved"].is_boolean()
        assert ws.table("engagement").schema()["count"].is_integer()
        # as_of defaults to the last event of the book
        assert ws.settings.as_of == dt.date(2024, 3, 20)
    assert sorted(p.name for p in (tmp_path / "ws").iterdir()) == ["cxasset.duckdb"]


def test_meta_records_rows_fingerprint_and_time(tmp_path, make_book):
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with ingest(tmp_path / "ws", make_book()) as ws:
        meta = ws.meta()
    assert re.fullmatch(r"[0-9a-f]{64}", meta["fingerprint"])
    ingested = dt.datetime.fromisoformat(meta["ingested_at"])
    assert before <= ingested <= dt.datetime.now(dt.UTC)
    assert meta["rows"]["transactions"] == 6
    assert meta["kind"] == "transactions"
    assert set(meta["files"]) == {t.removesuffix(".csv") for t in BASE}
    assert all(re.fullmatch(r"[0-9a-f]{64}", f["sha256"]) for f in meta["files"].values())
    assert meta["warnings"] == []
    assert meta["settings"]["period"] == "week"


def test_reingest_replaces_the_book(ws_path, template_ws, make_book):
    with Workspace(ws_path) as ws:
        old = ws.meta()
        assert ws.table("customers").count().execute() == 4
        tx = BASE["transactions.csv"] + "2,2024-03-25,30\n4,2024-03-26,2\n"
        customers = BASE["customers.csv"] + "5,2024-03-01,retail,\n"
        tx += "5,2024-03-02,11\n"
        report = ws.ingest(make_book({"transactions.csv": tx, "customers.csv": customers,
                                      "surveys.csv": None}))
        new = ws.meta()
        assert report.rows == new["rows"]
        assert new["rows"]["transactions"] == 9 and new["rows"]["customers"] == 5
        assert "surveys" not in new["rows"] and "surveys" not in ws.tables()
        assert new["fingerprint"] != old["fingerprint"]
        assert ws.table("customers").count().execute() == 5
        assert ws.settings.as_of == dt.date(2024, 3, 26)
    assert not list(ws_path.glob(".ingest-*"))


def test_same_files_give_the_same_fingerprint(tmp_path, make_book):
    book = make_book()
    with ingest(tmp_path / "a", book) as a, ingest(tmp_path / "b", book) as b:
        assert a.meta()["fingerprint"] == b.meta()["fingerprint"]


def test_refused_ingest_into_new_folder_leaves_nothing(tmp_path, make_book):
    book = make_book({"transactions.csv": "customer_id,occurred_at,amount\n1,2024-01-02,x\n"})
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(SchemaError, match="column amount: 1 of 1 rows are not numbers"):
        Workspace(tmp_path / "new" / "nested" / "ws").ingest(book)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not (tmp_path / "new").exists()


def test_refused_ingest_into_new_workspace_folder(tmp_path, make_book):
    book = make_book({"customers.csv": "customer_id,acquired_at\n"})
    assert_refused(tmp_path / "ws", book, "customers.csv: the table is empty")
    assert not (tmp_path / "ws").exists()


def test_empty_workspace_is_not_a_workspace(tmp_path):
    with pytest.raises(WorkspaceError, match="is not a cxasset workspace"):
        Workspace(tmp_path / "none").meta()


# ------------------------------------------------------------------ encodings and line endings
def test_utf8_bom_in_customers(tmp_path, make_book):
    book = make_book({"customers.csv": "\ufeff" + BASE["customers.csv"]})
    assert (book / "customers.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    with ingest(tmp_path / "ws", book) as ws:
        assert ws.table("customers").columns[:2] == ("customer_id", "acquired_at")
        assert ws.table("customers").count().execute() == 4


@pytest.mark.parametrize("mode", ["rows_crlf", "alternating", "all_crlf"])
def test_mixed_line_endings(tmp_path, make_book, mode):
    lines = BASE["transactions.csv"].splitlines()
    if mode == "rows_crlf":  # header LF, rows CRLF
        text = lines[0] + "\n" + "".join(line + "\r\n" for line in lines[1:])
    elif mode == "alternating":
        text = "".join(line + ("\r\n" if i % 2 else "\n") for i, line in enumerate(lines))
    else:
        text = "".join(line + "\r\n" for line in lines)
    with ingest(tmp_path / "ws", make_book({"transactions.csv": text})) as ws:
        tx = ws.table("transactions").to_pandas()
    assert len(tx) == 6
    assert tx.amount.tolist() == [25.5, 12.0, 40.0, 99.9, 15.0, 8.25]


def test_whitespace_around_values(tmp_path, make_book):
    tx = ("customer_id,occurred_at,amount\n 1 ,2024-01-02 , 25.50\n1,2024-02-11,12\n"
          "2,2024-01-10,40\n3,2024-02-01,99.9\n4, 2024-02-15,8.25\n")
    with ingest(tmp_path / "ws", make_book({"transactions.csv": tx})) as ws:
        tx = ws.table("transactions").to_pandas()
    assert tx.customer_id.tolist() == [1, 1, 2, 3, 4]
    assert tx.amount.iloc[0] == 25.5


# ------------------------------------------------------------------ dates
def test_date_format_from_book_yaml(tmp_path, make_book):
    customers = ("customer_id,acquired_at\n1,02/01/2024\n2,10/01/2024\n3,01/02/2024\n"
                 "4,15/02/2024\n")
    tx = ("customer_id,occurred_at,amount\n1,02/01/2024,25.5\n2,10/01/2024,40\n3,15/03/2024,9\n"
          "4,15/02/2024,8\n")
    only = {t: None for t in BASE if t not in ("customers.csv", "transactions.csv")}
    book = make_book({**only, "customers.csv": customers, "transactions.csv": tx,
                      "book.yaml": "date_format: '%d/%m/%Y'\nperiod: month\n"})
    with ingest(tmp_path / "ws", book) as ws:
        acquired = ws.table("customers").to_pandas().acquired_at
        assert acquired.dt.date.tolist() == [dt.date(2024, 1, 2), dt.date(2024, 1, 10),
                                             dt.date(2024, 2, 1), dt.date(2024, 2, 15)]
        assert ws.settings.as_of == dt.date(2024, 3, 15)
        assert ws.settings.date_format == "%d/%m/%Y"


def test_timestamps_with_time_and_zone(tmp_path, make_book):
    tx = ("customer_id,occurred_at,amount\n1,2024-01-02T10:30:00,25.5\n2,2024-01-10 08:00,40\n"
          "3,2024-02-01T23:59:59Z,9\n4,2024-02-15,8\n")
    with ingest(tmp_path / "ws", make_book({"transactions.csv": tx})) as ws:
        times = ws.table("transactions").to_pandas().occurred_at
    assert times.iloc[0] == pd.Timestamp("2024-01-02 10:30:00")


def test_subscriptions_book_ended_after_as_of_is_active(tmp_path, make_book):
    subs = ("customer_id,started_at,recurring_revenue,ended_at,plan\n"
            "1,2024-01-02,10,2024-02-01,basic\n2,2024-01-10,10,2025-01-01,pro\n"
            "3,2024-02-01,12.5,,basic\n4,2024-02-15,10,,pro\n")
    book = make_book({"transactions.csv": None, "subscriptions.csv": subs,
                      "book.yaml": "as_of: 2024-06-30\n"})
    with ingest(tmp_path / "ws", book) as ws:
        assert ws.meta()["kind"] == "subscriptions"
        assert ws.table("subscriptions").count().execute() == 4


# ------------------------------------------------------------------ warnings
def test_refunds_warn_and_ingest(tmp_path, make_book):
    tx = BASE["transactions.csv"] + "1,2024-02-20,-12.00\n"
    with pytest.warns(BookWarning, match=re.escape(
            "transactions.csv, column amount: 1 of 7 rows have negative amounts, taken as refunds: "
            "they are not counted as purchases and are netted against the customer's spend "
            "(e.g. line 8: customer_id=1, occurred_at='2024-02-20 00:00:00', amount=-12.0)")):
        ws = ingest(tmp_path / "ws", make_book({"transactions.csv": tx}))
    with ws:
        (w,) = ws.meta()["warnings"]
        assert (w["severity"], w["column"], w["rows"]) == ("warning", "amount", 1)
        assert ws.table("transactions").amount.min().execute() == -12.0


def test_customers_without_transactions_warn(tmp_path, make_book):
    customers = BASE["customers.csv"] + "5,2024-03-01,retail,\n6,2024-03-02,,\n"
    with pytest.warns(BookWarning, match=re.escape(
            "customers.csv, column customer_id: 2 of 6 rows have no transactions "
            "(e.g. line 6: 5; line 7: 6)")):
        report = Workspace(tmp_path / "ws").ingest(make_book({"customers.csv": customers}))
    assert [w.severity for w in report.warnings] == ["warning"]
    assert report.rows["customers"] == 6


def test_customers_without_subscriptions_warn(tmp_path, make_book):
    subs = "customer_id,started_at,recurring_revenue\n1,2024-01-02,10\n"
    book = make_book({"transactions.csv": None, "subscriptions.csv": subs})
    with pytest.warns(BookWarning, match="3 of 4 rows have no subscriptions"):
        Workspace(tmp_path / "ws").ingest(book)


# ------------------------------------------------------------------ other sources
def _frames() -> dict[str, pd.DataFrame]:
    return {
        "customers": pd.DataFrame({"customer_id": ["a", "b", "c"],
                                   "acquired_at": pd.to_datetime(["2024-01-01", "2024-01-05",
                                                                  "2024-02-01"]),
                                   "tenure_score": [1.5, 2.0, None]}),
        "transactions": pd.DataFrame({"customer_id": ["a", "a", "b", "c"],
                                      "occurred_at": pd.to_datetime(["2024-01-01", "2024-01-09",
                                                                     "2024-01-05", "2024-02-01"]),
                                      "amount": [10.0, 20.0, 5.0, 7.5]}),
        "surveys": pd.DataFrame({"customer_id": ["a"], "occurred_at": [dt.date(2024, 1, 3)],
                                 "metric": ["NPS"], "score": [10]}),
    }


def test_parquet_book(tmp_path):
    book = tmp_path / "pq"
    book.mkdir()
    for name, frame in _frames().items():
        frame.to_parquet(book / f"{name}.parquet")
    (book / "book.yaml").write_text("currency: EUR\n")
    with ingest(tmp_path / "ws", book) as ws:
        assert ws.meta()["rows"] == {"customers": 3, "transactions": 4, "surveys": 1}
        assert ws.meta()["files"]["customers"]["source"] == "customers.parquet"
        assert ws.settings.currency == "EUR"
        assert ws.table("surveys").to_pandas().metric.tolist() == ["nps"]
        assert ws.table("customers").schema()["tenure_score"].is_floating()


def test_from_tables_pandas(tmp_path):
    book = Book.from_tables(_frames(), {"period": "day"})
    with ingest(tmp_path / "ws", book) as ws:
        meta = ws.meta()
        assert meta["rows"]["transactions"] == 4
        assert meta["source"] == "in-memory tables"
        assert ws.settings.period == "day"
        assert ws.table("customers").schema()["customer_id"].is_string()


def test_from_tables_ibis_memtable(tmp_path):
    tables = {name: ibis.memtable(frame) for name, frame in _frames().items()}
    book = Book.from_tables(tables, BookSettings(as_of=dt.date(2024, 3, 31)))
    with ingest(tmp_path / "ws", book) as ws:
        assert ws.meta()["rows"] == {"customers": 3, "transactions": 4, "surveys": 1}
        assert ws.settings.as_of == dt.date(2024, 3, 31)


def test_from_tables_ibis_table_of_another_connection(tmp_path):
    con = ibis.duckdb.connect()
    tables = {name: con.create_table(name, frame) for name, frame in _frames().items()}
    with ingest(tmp_path / "ws", Book.from_tables(tables)) as ws:
        assert ws.table("transactions").amount.sum().execute() == pytest.approx(42.5)
    con.disconnect()


def test_from_tables_needs_customers_and_activity():
    frames = _frames()
    with pytest.raises(SchemaError, match="in-memory tables: required table customers is missing"):
        Book.from_tables({"transactions": frames["transactions"]})
    with pytest.raises(SchemaError, match="needs transactions .* or subscriptions"):
        Book.from_tables({"customers": frames["customers"]})


def test_extra_columns_are_kept(tmp_path, make_book):
    tx = ("customer_id,occurred_at,amount,quantity,store\n1,2024-01-02,25.5,2,north\n"
          "2,2024-01-10,40,1,south\n3,2024-02-01,9,3,north\n4,2024-02-15,8,1,\n")
    with ingest(tmp_path / "ws", make_book({"transactions.csv": tx})) as ws:
        schema = ws.table("transactions").schema()
    assert schema["quantity"].is_floating() and schema["store"].is_string()


def test_text_ids_with_leading_zeros_stay_text(tmp_path, make_book):
    customers = "customer_id,acquired_at\n007,2024-01-02\n7,2024-01-03\n"
    tx = "customer_id,occurred_at,amount\n007,2024-01-02,1\n7,2024-01-03,2\n"
    only = {t: None for t in BASE if t not in ("customers.csv", "transactions.csv")}
    book = make_book({**only, "customers.csv": customers, "transactions.csv": tx})
    with ingest(tmp_path / "ws", book) as ws:
        assert sorted(ws.table("customers").to_pandas().customer_id) == ["007", "7"]


# ------------------------------------------------------------------ the example of docs/book.md
def test_example_book_ingests_cleanly(tmp_path):
    before = snapshot(EXAMPLE)
    # the one expected warning: the example shows a refund (a negative amount)
    with pytest.warns(BookWarning, match=r"transactions\.csv, column amount: 1 of 13 rows have "
                      r"negative amounts, taken as refunds") as record:
        ws = ingest(tmp_path / "ws", EXAMPLE)
    assert len(record) == 1
    with ws:
        meta = ws.meta()
        assert ws.settings.as_of == dt.date(2024, 6, 30)
        assert ws.table("customers").schema()["customer_id"].is_string()
    assert [w["column"] for w in meta["warnings"]] == ["amount"]
    assert set(meta["rows"]) == {"customers", "transactions", "interactions", "surveys",
                                 "referrals", "engagement"}
    assert all(n >= 3 for n in meta["rows"].values())
    assert snapshot(EXAMPLE) == before
