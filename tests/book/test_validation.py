"""Books that break the data contract are refused with a message that says where and how to fix it.

Each test ingests a broken book into a workspace that already holds a book, and checks (through
``assert_refused``) that the SchemaError names the file, the column, the number of offending rows and
examples with their line numbers, and that the workspace is byte-for-byte untouched.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from book_helpers import BASE, assert_refused

from cxasset.book import Book, Problem
from cxasset.exceptions import BookError, SchemaError

TX = "customer_id,occurred_at,amount\n"


# ------------------------------------------------------------------ missing tables and columns
def test_missing_customers_file(ws_path, make_book):
    err = assert_refused(ws_path, make_book({"customers.csv": None}),
                         "required table customers is missing", "customers.csv",
                         "customer_id, acquired_at")
    assert [p.table for p in err.problems] == ["customers"]


def test_missing_both_activity_tables(ws_path, make_book):
    assert_refused(ws_path, make_book({"transactions.csv": None}),
                   "needs transactions (non-contractual) or subscriptions (contractual)",
                   "transactions.csv", "subscriptions.csv")


def test_missing_required_column(ws_path, make_book):
    book = make_book({"transactions.csv": "customer_id,amount\n1,3.0\n2,4.0\n"})
    err = assert_refused(ws_path, book,
                         "transactions.csv, column occurred_at: required column(s) occurred_at "
                         "missing (found: customer_id, amount)",
                         "needs customer_id, occurred_at, amount")
    (p,) = err.problems
    assert (p.table, p.column, p.severity) == ("transactions", "occurred_at", "error")


# ------------------------------------------------------------------ types
def test_text_in_amount(ws_path, make_book):
    book = make_book({"transactions.csv": TX + "1,2024-01-02,10\n2,2024-01-10,abc\n"
                      "3,2024-02-01,$5\n4,2024-02-15,1 000\n"})
    err = assert_refused(ws_path, book,
                         "transactions.csv, column amount: 3 of 4 rows are not numbers "
                         "(e.g. line 3: 'abc'; line 4: '$5'; line 5: '1 000')",
                         "no currency symbols")
    (p,) = err.problems
    assert (p.rows, p.total) == (3, 4)
    assert p.examples[0] == "line 3: 'abc'"


@pytest.mark.parametrize("value", ["NaN", "inf", "-Infinity"])
def test_non_finite_amount_is_not_a_number(ws_path, make_book, value):
    book = make_book({"transactions.csv": TX + f"1,2024-01-02,10\n2,2024-01-10,{value}\n"
                      "3,2024-02-01,5\n4,2024-02-15,1\n"})
    assert_refused(ws_path, book, "transactions.csv, column amount: 1 of 4 rows are not numbers "
                   f"(e.g. line 3: '{value}')")


def test_text_in_survey_score_and_bool(ws_path, make_book):
    book = make_book({
        "surveys.csv": "customer_id,occurred_at,metric,score\n1,2024-01-06,nps,nine\n",
        "interactions.csv": "customer_id,occurred_at,channel,resolved\n1,2024-01-05,phone,maybe\n",
    })
    assert_refused(ws_path, book, "surveys.csv, column score: 1 of 1 rows are not numbers "
                   "(e.g. line 2: 'nine')",
                   "interactions.csv, column resolved: 1 of 1 rows are not true/false "
                   "(e.g. line 2: 'maybe')")


def test_text_id_where_customer_ids_are_integers(ws_path, make_book):
    book = make_book({"transactions.csv": TX + "1,2024-01-02,10\nC2,2024-01-10,3\n3,2024-02-01,5\n"
                      "2,2024-01-10,1\n4,2024-02-15,1\n"})
    assert_refused(ws_path, book, "transactions.csv, column customer_id: 1 of 5 rows are not "
                   "valid ids (e.g. line 3: 'C2')")


def test_ragged_rows(ws_path, make_book):
    book = make_book({"transactions.csv": TX + "1,2024-01-02,10\n2,2024-01-10,3,4\n"
                      "3,2024-02-01\n4,2024-02-15,1\n"})
    err = assert_refused(ws_path, book,
                         "transactions.csv: 2 of 4 rows have a different number of fields than "
                         "the header (3, separated by ',') (e.g. line 3: 4 fields; line 4: 2 fields)")
    assert err.problems[0].column is None


# ------------------------------------------------------------------ dates
def test_unparseable_dates(ws_path, make_book):
    book = make_book({"transactions.csv": TX + "1,2024-01-02,10\n2,yesterday,3\n3,2024-02-31,5\n"
                      "4,2024-02-15,1\n"})
    assert_refused(ws_path, book,
                   "transactions.csv, column occurred_at: 2 of 4 rows are not dates "
                   "(e.g. line 3: 'yesterday'; line 4: '2024-02-31')",
                   "ISO 8601", "date_format")


def test_mixed_date_formats(ws_path, make_book):
    book = make_book({"transactions.csv": TX + "1,2024-01-02,10\n2,03/15/2024,3\n3,2024-02-01,5\n"
                      "4,2024-02-15,1\n"})
    assert_refused(ws_path, book,
                   "transactions.csv, column occurred_at: 1 of 4 rows are not dates: "
                   "mixed date formats: 3 rows are ISO 8601 and 1 look like '%m/%d/%Y'",
                   "(e.g. line 3: '03/15/2024')")


def test_non_iso_dates_suggest_date_format(ws_path, make_book):
    customers = "customer_id,acquired_at\n1,01/02/2024\n2,01/10/2024\n3,02/01/2024\n4,02/15/2024\n"
    book = make_book({"customers.csv": customers})
    assert_refused(ws_path, book, "customers.csv, column acquired_at: 4 of 4 rows are not dates: "
                   "the dates look like '%m/%d/%Y': set date_format: '%m/%d/%Y' in book.yaml",
                   "line 2: '01/02/2024'")


def test_dates_not_in_the_date_format(ws_path, make_book):
    book = make_book({"book.yaml": "date_format: '%d/%m/%Y'\n",
                      "customers.csv": "customer_id,acquired_at\n1,02/01/2024\n2,10/01/2024\n"
                                       "3,01/02/2024\n4,2024-02-15\n"})
    # transactions are ISO too: they break the format as well, both reported
    err = assert_refused(ws_path, book,
                         "customers.csv, column acquired_at: 1 of 4 rows are not dates in the "
                         "format '%d/%m/%Y' set by book.yaml's date_format (e.g. line 5: "
                         "'2024-02-15')",
                         "transactions.csv, column occurred_at: 6 of 6 rows are not dates in the "
                         "format")
    assert len(err.problems) > 2


def test_dates_after_as_of(ws_path, make_book):
    book = make_book({"book.yaml": "as_of: 2024-03-01\n"})
    err = assert_refused(ws_path, book,
                         "transactions.csv, column occurred_at: 1 of 6 rows are dated after as_of "
                         "(e.g. line 6: '2024-03-20 00:00:00')",
                         "set a later as_of")
    assert [p.table for p in err.problems] == ["transactions"]


def test_ended_before_started(ws_path, make_book):
    subs = ("customer_id,started_at,recurring_revenue,ended_at\n1,2024-01-02,10,2024-02-01\n"
            "2,2024-01-10,10,2024-01-01\n3,2024-02-01,10,\n4,2024-02-15,10,\n")
    book = make_book({"transactions.csv": None, "subscriptions.csv": subs})
    assert_refused(ws_path, book,
                   "subscriptions.csv, column ended_at: 1 of 4 rows end before they start "
                   "(e.g. line 3: customer_id=2, started_at='2024-01-10 00:00:00', "
                   "ended_at='2024-01-01 00:00:00')")


def test_onboarded_before_acquired(ws_path, make_book):
    customers = ("customer_id,acquired_at,onboarded_at\n1,2024-01-02,2023-12-01\n2,2024-01-10,\n"
                 "3,2024-02-01,2024-02-05\n4,2024-02-15,2024-01-15\n")
    assert_refused(ws_path, make_book({"customers.csv": customers}),
                   "customers.csv, column onboarded_at: 2 of 4 rows were onboarded before they "
                   "were acquired (e.g. line 2: customer_id=1",
                   "line 5: customer_id=4")


# ------------------------------------------------------------------ keys and references
def test_duplicate_customer_id(ws_path, make_book):
    customers = BASE["customers.csv"] + "2,2024-03-01,retail,\n2,2024-03-02,retail,\n"
    err = assert_refused(ws_path, make_book({"customers.csv": customers}),
                         "customers.csv, column customer_id: 3 of 6 rows share 1 duplicated "
                         "customer_id values (e.g. customer_id=2 appears 3 times)",
                         "keep one row per customer_id")
    assert err.problems[0].rows == 3


def test_transactions_of_unknown_customers(ws_path, make_book):
    tx = BASE["transactions.csv"] + "9,2024-02-01,5\n77,2024-02-02,5\n"
    assert_refused(ws_path, make_book({"transactions.csv": tx}),
                   "transactions.csv, column customer_id: 2 of 8 rows name customers that are "
                   "not in the customers table (e.g. line 8: 9; line 9: 77)")


def test_referrals_of_unknown_referrer(ws_path, make_book):
    refs = BASE["referrals.csv"] + "7,2024-03-02,\n"
    assert_refused(ws_path, make_book({"referrals.csv": refs}),
                   "referrals.csv, column referrer_id: 1 of 3 rows name customers that are not in "
                   "the customers table (e.g. line 4: 7)")


def test_text_ids_unknown_customer(ws_path, make_book):
    customers = "customer_id,acquired_at\nA1,2024-01-02\nB2,2024-01-10\n"
    tx = TX + "A1,2024-01-02,10\nB2,2024-01-10,5\nb2,2024-01-11,5\n"
    book = make_book({"customers.csv": customers, "transactions.csv": tx, "interactions.csv": None,
                      "surveys.csv": None, "referrals.csv": None, "engagement.csv": None})
    assert_refused(ws_path, book, "transactions.csv, column customer_id: 1 of 3 rows name "
                   "customers that are not in the customers table (e.g. line 4: 'b2')")


# ------------------------------------------------------------------ values
def test_missing_amounts(ws_path, make_book):
    tx = TX + "1,2024-01-02,10\n2,2024-01-10,\n3,2024-02-01,  \n4,2024-02-15,1\n"
    err = assert_refused(ws_path, make_book({"transactions.csv": tx}),
                         "transactions.csv, column amount: 2 of 4 rows are empty "
                         "(e.g. line 3: <empty>; line 4:",
                         "amounts of 0 are allowed")
    assert err.problems[0].severity == "error"


def test_missing_customer_id(ws_path, make_book):
    customers = "customer_id,acquired_at\n1,2024-01-02\n,2024-01-10\n3,2024-02-01\n4,2024-02-15\n"
    assert_refused(ws_path, make_book({"customers.csv": customers}),
                   "customers.csv, column customer_id: 1 of 4 rows are empty (e.g. line 3: <empty>)")


@pytest.mark.parametrize(("metric", "score", "words"), [
    ("nps", "11", "are NPS scores outside 0-10"),
    ("nps", "-1", "are NPS scores outside 0-10"),
    ("csat", "0", "are CSAT scores outside 1-5"),
    ("CSAT", "6", "are CSAT scores outside 1-5"),
    ("ces", "8", "are CES scores outside 1-7"),
    (" Ces ", "0.5", "are CES scores outside 1-7"),
])
def test_survey_scores_off_their_scale(ws_path, make_book, metric, score, words):
    surveys = BASE["surveys.csv"] + f"4,2024-02-20,{metric},{score}\n"
    err = assert_refused(ws_path, make_book({"surveys.csv": surveys}),
                         f"surveys.csv, column score: 1 of 4 rows {words} (e.g. line 5: "
                         f"customer_id=4, metric='{metric.strip().lower()}', score={float(score)})")
    assert err.problems[0].column == "score"


def test_interaction_effort_off_scale(ws_path, make_book):
    inter = BASE["interactions.csv"] + "2,2024-01-15,email,0,true\n4,2024-02-16,chat,8,\n"
    assert_refused(ws_path, make_book({"interactions.csv": inter}),
                   "interactions.csv, column effort: 2 of 4 rows have effort outside the CES "
                   "scale 1-7 (e.g. line 4: 0.0; line 5: 8.0)")


@pytest.mark.parametrize(("table", "header"), [
    ("transactions.csv", TX),
    ("customers.csv", "customer_id,acquired_at\n"),
    ("surveys.csv", "customer_id,occurred_at,metric,score\n"),
])
def test_empty_table(ws_path, make_book, table, header):
    assert_refused(ws_path, make_book({table: header}),
                   f"{table}: the table is empty", "remove the file")


def test_negative_costs_and_revenue(ws_path, make_book):
    subs = ("customer_id,started_at,recurring_revenue\n1,2024-01-02,-10\n2,2024-01-10,10\n"
            "3,2024-02-01,10\n4,2024-02-15,10\n")
    inter = "customer_id,occurred_at,channel,cost\n1,2024-01-05,phone,-2.5\n"
    book = make_book({"transactions.csv": None, "subscriptions.csv": subs,
                      "interactions.csv": inter})
    assert_refused(ws_path, book,
                   "interactions.csv, column cost: 1 of 1 rows have negative cost "
                   "(e.g. line 2: -2.5)",
                   "subscriptions.csv, column recurring_revenue: 1 of 4 rows have negative "
                   "recurring_revenue (e.g. line 2: -10.0)")


# ------------------------------------------------------------------ many problems at once
def test_every_problem_reported_in_one_numbered_error(ws_path, make_book):
    surveys = BASE["surveys.csv"] + "4,2024-02-20,nps,11\n"
    inter = BASE["interactions.csv"] + "4,2024-02-16,chat,9,\n"
    tx = BASE["transactions.csv"] + "9,2024-02-01,5\n"
    customers = BASE["customers.csv"] + "4,2024-03-01,retail,\n"
    book = make_book({"surveys.csv": surveys, "interactions.csv": inter, "transactions.csv": tx,
                      "customers.csv": customers})
    err = assert_refused(ws_path, book, "The book has 4 problems; nothing was changed:\n  1. ",
                         "\n  2. ", "\n  3. ", "\n  4. ", "duplicated customer_id",
                         "interactions.csv, column effort", "surveys.csv, column score",
                         "transactions.csv, column customer_id")
    assert len(err.problems) == 4
    assert all(isinstance(p, Problem) for p in err.problems)
    assert {p.to_dict()["severity"] for p in err.problems} == {"error"}


def test_type_problems_of_several_tables_reported_together(ws_path, make_book):
    book = make_book({
        "transactions.csv": TX + "1,2024-01-02,abc\n2,2024-01-10,\n",
        "customers.csv": "customer_id,acquired_at\n1,2024-01-02\n2,someday\n",
        "engagement.csv": "customer_id,occurred_at,event,count\n1,2024-01-04,login,1.5\n",
    })
    err = assert_refused(ws_path, book, "The book has 4 problems",
                         "customers.csv, column acquired_at: 1 of 2 rows are not dates",
                         "transactions.csv, column amount: 1 of 2 rows are empty",
                         "transactions.csv, column amount: 1 of 2 rows are not numbers",
                         "engagement.csv, column count: 1 of 1 rows are not whole numbers")
    assert len(err.problems) == 4


# ------------------------------------------------------------------ in-memory and Parquet sources
def test_in_memory_problems_give_row_numbers(ws_path):
    customers = pd.DataFrame({"customer_id": [1, 2, 3],
                              "acquired_at": pd.to_datetime(["2024-01-01"] * 3)})
    tx = pd.DataFrame({"customer_id": [1, 2, 3, 3],
                       "occurred_at": pd.to_datetime(["2024-01-02"] * 4),
                       "amount": [1.0, None, 3.0, float("nan")]})
    err = assert_refused(ws_path, Book.from_tables({"customers": customers, "transactions": tx}),
                         "transactions (in-memory table), column amount: 2 of 4 rows are empty "
                         "(e.g. row 2: <empty>; row 4: <empty>)")
    assert err.problems[0].source == "transactions (in-memory table)"


def test_parquet_problems_give_row_numbers(ws_path, tmp_path):
    book = tmp_path / "pq"
    book.mkdir()
    pd.DataFrame({"customer_id": [1, 2, 2], "acquired_at": pd.to_datetime(["2024-01-01"] * 3)}
                 ).to_parquet(book / "customers.parquet")
    pd.DataFrame({"customer_id": [1, 5], "occurred_at": pd.to_datetime(["2024-01-02"] * 2),
                  "amount": [1.0, 2.0]}).to_parquet(book / "transactions.parquet")
    assert_refused(ws_path, book,
                   "customers.parquet, column customer_id: 2 of 3 rows share 1 duplicated",
                   "transactions.parquet, column customer_id: 1 of 2 rows name customers that "
                   "are not in the customers table (e.g. row 2: 5)")


# ------------------------------------------------------------------ book.yaml
def test_invalid_book_yaml_names_key_and_lists_settings(ws_path, make_book):
    book = make_book({"book.yaml": "currency: EUR\nperiods: week\nperiod: fortnight\n"})
    with pytest.raises(BookError) as info:
        Book.from_dir(book)
    assert not isinstance(info.value, SchemaError)
    assert_refused(ws_path, book, "book.yaml: 2 invalid setting(s)",
                   "period: Input should be 'day', 'week' or 'month' (got 'fortnight')",
                   "periods: Extra inputs are not permitted",
                   "Valid settings: currency, period, as_of, calibration_end, margin_rate, "
                   "discount_rate, channel_costs, horizon, transaction_grain, date_format.",
                   error=BookError)


@pytest.mark.parametrize(("yaml", "words"), [
    ("margin_rate: 1.5\n", "margin_rate: Input should be less than or equal to 1"),
    ("as_of: 2024-13-01\n", "not valid YAML: month must be in 1..12"),
    ("as_of: [1\n", "not valid YAML"),
    ("- period\n", "expected a mapping of settings, got list"),
    ("as_of: 2024-03-01\ncalibration_end: 2024-04-01\n", "calibration_end (2024-04-01) must be "
                                                        "before as_of (2024-03-01)"),
])
def test_bad_book_yaml(ws_path, make_book, yaml, words):
    assert_refused(ws_path, make_book({"book.yaml": yaml}), words, error=BookError)


def test_calibration_end_after_default_as_of(ws_path, make_book):
    assert_refused(ws_path, make_book({"book.yaml": "calibration_end: 2024-12-31\n"}),
                   "calibration_end (2024-12-31) must be before as_of, which defaults to the "
                   "last event of the book (2024-03-20)")


def test_unknown_in_memory_table(ws_path):
    with pytest.raises(BookError, match=r"Unknown table\(s\) \['orders'\]; valid tables: customers"):
        Book.from_tables({"orders": pd.DataFrame()})


def test_book_folder_missing(tmp_path: Path):
    assert_refused(tmp_path / "ws", tmp_path / "nope", "does not exist or is not a folder",
                   error=BookError)


@pytest.mark.parametrize("value", ["0x1F", "1_000", "1,5", "12e", "--3"])
def test_lenient_number_spellings_are_refused(ws_path, make_book, value):
    book = make_book({"transactions.csv": TX + f'1,2024-01-02,10\n2,2024-01-10,"{value}"\n'
                      "3,2024-02-01,5\n4,2024-02-15,1\n"})
    assert_refused(ws_path, book, "transactions.csv, column amount: 1 of 4 rows are not numbers "
                   f"(e.g. line 3: '{value}')")


def test_fractional_count_is_not_rounded(ws_path, make_book):
    book = make_book({"engagement.csv": "customer_id,occurred_at,event,count\n"
                                        "1,2024-01-04,login,1.5\n2,2024-01-11,login,2\n"})
    assert_refused(ws_path, book, "engagement.csv, column count: 1 of 2 rows are not whole "
                   "numbers (e.g. line 2: '1.5')")


# ------------------------------------------------------------------ docs/book.md shows real messages
ROOT = Path(__file__).resolve().parents[2]


def test_error_messages_in_the_docs_are_real(ws_path, tmp_path):
    docs = (ROOT / "docs" / "book.md").read_text()
    book = tmp_path / "ex"
    shutil.copytree(ROOT / "examples" / "book", book)
    surveys = (book / "surveys.csv").read_text()
    surveys = surveys.replace("C003,2024-03-05,csat,5\n", "C003,2024-03-05,csat,9\n")
    surveys = surveys.replace("C005,2024-03-01,nps,8\n", "C005,2024-03-01,nps,11\n")
    (book / "surveys.csv").write_text(surveys)
    with open(book / "transactions.csv", "a") as fh:
        fh.write("T0014,C009,2024-03-02,19.90,5.97\n")
    err = assert_refused(ws_path, book, "The book has 3 problems; nothing was changed:")
    for line in str(err).splitlines():
        assert line in docs, line

    customers = (book / "customers.csv").read_text().replace("C004,2024-02-02", "C004,02/02/2024")
    (book / "customers.csv").write_text(customers)
    err = assert_refused(ws_path, book, "The book has 1 problem; nothing was changed:")
    for line in str(err).splitlines():
        assert line in docs, line
