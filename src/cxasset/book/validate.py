"""Validation of a staged book: typed columns and the data contract's rules.

Every check is an ibis boolean expression over a staged table; all checks of a table run as one
aggregate (one pass over the data) and only failing checks fetch their examples. A check that fails
becomes a :class:`Problem` naming the table, file, column, number of offending rows, up to five
examples with their line numbers, and how to fix it. Errors stop the ingest (nothing is written);
warnings are recorded in the workspace and shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from cxasset.book.contract import SCORE_RANGES, Column, TableSpec

Severity = Literal["error", "warning"]

MAX_EXAMPLES = 5

#: Date formats recognised when a date column is not ISO 8601, to say what the data looks like.
COMMON_DATE_FORMATS = ("%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%Y/%m/%d", "%d-%m-%Y", "%m-%d-%Y")

ISO_HELP = "ISO 8601 dates (YYYY-MM-DD, optionally with a time, e.g. 2024-03-31 14:05:00)"


@ibis.udf.scalar.builtin
def try_strptime(value: str, fmt: str) -> dt.timestamp:  # type: ignore[empty-body]
    """DuckDB's ``try_strptime``: NULL where the text does not match the format."""


@dataclass(frozen=True)
class Problem:
    """One broken rule of the data contract, with the evidence to fix it."""

    table: str
    source: str
    column: str | None
    rows: int
    total: int
    what: str
    fix: str
    examples: tuple[str, ...] = ()
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"{self.source}" + (f", column {self.column}" if self.column else "")
        count = f"{self.rows:,} of {self.total:,} rows " if self.total else ""
        eg = f" (e.g. {'; '.join(self.examples)})" if self.examples else ""
        fix = f" Fix: {self.fix}" if self.fix else ""
        return f"{where}: {count}{self.what}{eg}.{fix}"

    def to_dict(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "table": self.table,
            "source": self.source,
            "column": self.column,
            "rows": self.rows,
            "total": self.total,
            "problem": self.what,
            "examples": list(self.examples),
            "fix": self.fix,
            "message": str(self),
        }


@dataclass(frozen=True)
class Check:
    """A rule: rows where ``bad`` is true break it."""

    column: str | None
    bad: ir.BooleanValue
    what: str
    fix: str
    show: tuple[str, ...] = ()
    severity: Severity = "error"


@dataclass
class Staged:
    """A table of the book loaded into the staging database, with its provenance."""

    spec: TableSpec
    table: ir.Table  # has a ``_row`` column: 1-based row number in the source
    source: str  # file name or a label for an ibis table
    line_offset: int  # added to ``_row`` to give the line shown to the user (header = 1)
    rows: int = 0

    def where(self, row: int) -> str:
        return f"line {row + self.line_offset}" if self.line_offset else f"row {row}"


def run_checks(staged: Staged, checks: list[Check]) -> list[Problem]:
    """Evaluate ``checks`` in one pass over ``staged`` and describe the ones that fail."""
    if not checks:
        return []
    t = staged.table
    counts = t.aggregate(**{f"c{i}": c.bad.fill_null(False).sum() for i, c in enumerate(checks)})
    row = counts.to_pandas().iloc[0]
    problems = []
    for i, check in enumerate(checks):
        n = int(row[f"c{i}"] or 0)
        if n:
            problems.append(_problem(staged, check, n))
    return problems


def _problem(staged: Staged, check: Check, n: int) -> Problem:
    t = staged.table
    cols = list(dict.fromkeys(check.show or ((check.column,) if check.column else ())))
    sample = (
        t.filter(check.bad.fill_null(False)).order_by("_row").select("_row", *cols).limit(MAX_EXAMPLES)
    ).to_pandas()
    examples = []
    for rec in sample.to_dict("records"):
        values = ", ".join(
            f"{c}={_fmt(rec[c])}" if len(cols) > 1 else _fmt(rec[c]) for c in cols
        )
        where = staged.where(int(rec["_row"]))
        examples.append(f"{where}: {values}" if values else where)
    return Problem(
        table=staged.spec.name,
        source=staged.source,
        column=check.column,
        rows=n,
        total=staged.rows,
        what=check.what,
        fix=check.fix,
        examples=tuple(examples),
        severity=check.severity,
    )


def _fmt(value: object) -> str:
    if value is None or value != value:  # None or NaN
        return "<empty>"
    if hasattr(value, "isoformat"):
        return repr(value.isoformat(sep=" ") if hasattr(value, "hour") else value.isoformat())
    return repr(value)


# ---------------------------------------------------------------------------------------------
# typing: raw columns (text from CSV, or native types) -> contract types


#: Text accepted as a number. DuckDB's own casts are lenient ('1.5' -> 2 as an integer, '0x1F',
#: '1_000', 'NaN', 'inf'); data is typed by these patterns first, so nothing is silently changed.
INT_PATTERN = r"^[+-]?[0-9]+$"
ID_PATTERN = r"^-?(0|[1-9][0-9]*)$"  # no leading zeros: '007' stays a text id
FLOAT_PATTERN = r"^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$"


def as_integer(raw: ir.Column, pattern: str = INT_PATTERN) -> ir.IntegerValue:
    """``raw`` as int64; NULL where it is not a whole number (text must match ``pattern``)."""
    if raw.type().is_integer():
        return raw.cast("int64")
    if raw.type().is_string():
        text = raw.strip()
        return ibis.ifelse(text.re_search(pattern), text.try_cast("int64"), ibis.null("int64"))
    value = raw.try_cast("float64")
    return ibis.ifelse(value == value.floor(), value.try_cast("int64"), ibis.null("int64"))


def as_float(raw: ir.Column) -> ir.FloatingValue:
    """``raw`` as float64; NULL where it is not a finite number."""
    if raw.type().is_string():
        text = raw.strip()
        value = ibis.ifelse(text.re_search(FLOAT_PATTERN), text.try_cast("float64"),
                            ibis.null("float64"))
    else:
        value = raw.try_cast("float64")
    return ibis.ifelse(value.isnan() | value.isinf(), ibis.null("float64"), value)


def typed_column(raw: ir.Column, col: Column, id_type: str, date_format: str | None) -> ir.Value:
    """The contract type of ``raw``; NULL where a value cannot be converted."""
    kind = col.kind
    if kind == "id":
        if id_type == "string":
            return raw.cast("string").strip()
        return as_integer(raw, ID_PATTERN)
    if kind == "timestamp":
        return parse_timestamp(raw, date_format)
    if kind == "float":
        return as_float(raw)
    if kind == "int":
        return as_integer(raw)
    if kind == "bool":
        return raw.try_cast("boolean")
    return raw.cast("string")


def parse_timestamp(raw: ir.Column, date_format: str | None) -> ir.TimestampValue:
    if raw.type().is_timestamp():
        return raw.cast(dt.Timestamp())
    if raw.type().is_date():
        return raw.cast(dt.Timestamp())
    text = raw.cast("string").strip()
    if date_format:
        return try_strptime(text, date_format)
    return text.try_cast(dt.Timestamp())


def type_checks(staged: Staged, raw_cols: dict[str, ir.Column], typed: dict[str, ir.Value],
                date_format: str | None = None) -> list[Check]:
    """Checks that each present contract column converts to its type and is non-empty."""
    checks: list[Check] = []
    spec = staged.spec
    for name, raw in raw_cols.items():
        col = spec.column_map[name]
        if not col.nullable:
            checks.append(Check(name, raw.isnull() | (raw.cast("string").strip() == ""),
                                "are empty", f"every row needs a value in {name}" + (
                                    "; amounts of 0 are allowed" if name == "amount" else ""),
                                show=(name,)))
        bad = raw.notnull() & (raw.cast("string").strip() != "") & typed[name].isnull()
        what, fix = _type_message(col, date_format)
        checks.append(Check(name, bad, what, fix, show=(name,)))
    return checks


def _type_message(col: Column, date_format: str | None) -> tuple[str, str]:
    if col.kind == "timestamp":
        if date_format:
            return (f"are not dates in the format {date_format!r} set by book.yaml's date_format",
                    "write every date in that one format, or change date_format")
        return ("are not dates", f"write {ISO_HELP}, or set date_format in book.yaml")
    if col.kind in ("float", "int"):
        noun = "whole numbers" if col.kind == "int" else "numbers"
        return (f"are not {noun}",
                "write plain numbers with a dot as decimal separator, no currency symbols "
                "or thousands separators")
    if col.kind == "bool":
        return "are not true/false", "write true or false (or 1 / 0)"
    if col.kind == "id":
        return ("are not valid ids", "ids must be the same kind (all integers, or all text) "
                "in every table")
    return "have a wrong type", ""


def date_format_hint(staged: Staged, raw: ir.Column) -> str | None:
    """Say which common format the unparseable dates of ``raw`` follow, and if formats are mixed."""
    if not raw.type().is_string():
        return None
    text = raw.strip()
    iso_ok = text.try_cast(dt.Timestamp()).notnull()
    nonempty = text.notnull() & (text != "")
    aggs = {"iso": (iso_ok & nonempty).sum(), "n": nonempty.sum()}
    for i, fmt in enumerate(COMMON_DATE_FORMATS):
        aggs[f"f{i}"] = (~iso_ok & try_strptime(text, fmt).notnull()).sum()
    row = staged.table.aggregate(**aggs).to_pandas().iloc[0]
    n_iso, n = int(row["iso"] or 0), int(row["n"] or 0)
    n_bad = n - n_iso
    if not n_bad:
        return None
    matches = [(f, int(row[f"f{i}"] or 0)) for i, f in enumerate(COMMON_DATE_FORMATS)]
    full = [f for f, k in matches if k == n_bad]
    if n_iso and full:
        return (f"mixed date formats: {n_iso:,} rows are ISO 8601 and {n_bad:,} look like "
                f"{' or '.join(repr(f) for f in full)}; use one format for the whole column")
    if full:
        pick = full[0]
        more = " (ambiguous: also " + ", ".join(repr(f) for f in full[1:]) + ")" if len(full) > 1 else ""
        return f"the dates look like {pick!r}{more}: set date_format: {pick!r} in book.yaml"
    return None


# ---------------------------------------------------------------------------------------------
# rules of the contract on typed tables


def rule_checks(staged: Staged, as_of: ir.Value | None) -> list[Check]:
    """Checks of the contract's rules that need no other table."""
    t = staged.table
    name = staged.spec.name
    checks: list[Check] = []
    tcol = staged.spec.time_column
    if as_of is not None and tcol:
        checks.append(Check(tcol, t[tcol].date() > as_of, "are dated after as_of",
                            "drop events after the observation end, or set a later as_of in "
                            "book.yaml", show=(tcol,)))
    if name == "customers":
        if "onboarded_at" in t.columns:
            checks.append(Check("onboarded_at", t.onboarded_at.date() < t.acquired_at.date(),
                                "were onboarded before they were acquired",
                                "onboarded_at must be on or after acquired_at",
                                show=("customer_id", "acquired_at", "onboarded_at")))
            if as_of is not None:
                checks.append(Check("onboarded_at", t.onboarded_at.date() > as_of,
                                    "are onboarded after as_of",
                                    "leave onboarded_at empty for customers not onboarded by as_of",
                                    show=("customer_id", "onboarded_at")))
        if "acquisition_cost" in t.columns:
            checks.append(_negative(t, "acquisition_cost"))
    elif name == "transactions":
        checks.append(Check("amount", t.amount < 0,
                            "have negative amounts, taken as refunds: they are not counted as "
                            "purchases and are netted against the customer's spend",
                            "", show=("customer_id", "occurred_at", "amount"), severity="warning"))
    elif name == "subscriptions":
        checks.append(_negative(t, "recurring_revenue"))
        if "ended_at" in t.columns:
            checks.append(Check("ended_at", t.ended_at < t.started_at, "end before they start",
                                "ended_at must be on or after started_at (empty while active)",
                                show=("customer_id", "started_at", "ended_at")))
    elif name == "interactions":
        if "cost" in t.columns:
            checks.append(_negative(t, "cost"))
        if "effort" in t.columns:
            checks.append(Check("effort", (t.effort < 1) | (t.effort > 7),
                                "have effort outside the CES scale 1-7",
                                "record effort on the 1-7 Customer Effort Score scale",
                                show=("effort",)))
    elif name == "surveys":
        metric = t.metric
        for m, (lo, hi) in SCORE_RANGES.items():
            checks.append(Check("score", (metric == m) & ((t.score < lo) | (t.score > hi)),
                                f"are {m.upper()} scores outside {lo:g}-{hi:g}",
                                f"{m.upper()} is scored {lo:g} to {hi:g}; rescale or correct them",
                                show=("customer_id", "metric", "score")))
    elif name == "engagement" and "count" in t.columns:
        checks.append(_negative(t, "count"))
    return checks


def _negative(t: ir.Table, col: str) -> Check:
    return Check(col, t[col] < 0, f"have negative {col}", f"{col} must be 0 or more",
                 show=(col,))


def reference_checks(staged: Staged, customers: ir.Table) -> list[Check]:
    """Rows that name customers missing from the customers table."""
    t = staged.table
    checks = []
    for col in staged.spec.customer_columns:
        if col not in t.columns:
            continue
        known = t[col].isin(customers.customer_id)
        checks.append(Check(col, t[col].notnull() & ~known,
                            "name customers that are not in the customers table",
                            "add these customers to customers, or drop their rows",
                            show=(col,)))
    return checks


def duplicate_check(staged: Staged, key: str) -> list[Problem]:
    """Rows whose ``key`` is not unique."""
    t = staged.table
    dup = t.group_by(key).aggregate(n=t.count()).filter(lambda g: g.n > 1)
    stats = dup.aggregate(keys=dup.count(), rows=dup.n.sum()).to_pandas().iloc[0]
    if not int(stats["keys"]):
        return []
    sample = dup.order_by(ibis.desc("n"), key).limit(MAX_EXAMPLES).to_pandas()
    examples = tuple(f"{key}={_fmt(r[key])} appears {int(r['n'])} times"
                     for r in sample.to_dict("records"))
    return [Problem(staged.spec.name, staged.source, key, int(stats["rows"]), staged.rows,
                    f"share {int(stats['keys']):,} duplicated {key} values",
                    f"keep one row per {key}", examples)]
