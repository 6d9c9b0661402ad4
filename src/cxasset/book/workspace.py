"""The workspace: a folder holding one validated book in a DuckDB database, and what it holds.

Ingest is atomic. The book is loaded and validated in a new database file beside the workspace's;
only when every table is written and checked does it replace the old one (``os.replace``). A book
that fails validation, or any error on the way, leaves the workspace exactly as it was.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import gzip
import hashlib
import json
import os
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import ibis
import ibis.expr.types as ir
import pyarrow as pa

from cxasset import __version__
from cxasset.book.contract import TABLES
from cxasset.book.settings import BookSettings
from cxasset.book.source import Book, TableSource
from cxasset.book.validate import (
    ID_PATTERN,
    MAX_EXAMPLES,
    Check,
    Problem,
    Staged,
    as_float,
    as_integer,
    date_format_hint,
    duplicate_check,
    reference_checks,
    rule_checks,
    run_checks,
    type_checks,
    typed_column,
)
from cxasset.exceptions import BookWarning, SchemaError, WorkspaceError

DB_NAME = "cxasset.duckdb"
META = "_cxasset_meta"
ARTIFACTS = "_cxasset_artifacts"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class IngestReport:
    """What an ingest wrote: row counts, fingerprint, warnings."""

    workspace: Path
    rows: dict[str, int]
    fingerprint: str
    warnings: list[Problem]
    settings: BookSettings
    kind: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "workspace": str(self.workspace),
            "kind": self.kind,
            "rows": self.rows,
            "fingerprint": self.fingerprint,
            "warnings": [w.to_dict() for w in self.warnings],
            "settings": self.settings.model_dump(mode="json"),
        }


class Workspace:
    """A cxasset workspace folder (created on first ingest).

    Parameters
    ----------
    path : str or Path
        The workspace folder.
    memory_limit : str, default="3GB"
        DuckDB's memory limit; larger work spills to disk (3GB keeps a 50M-transaction book
        under 4 GiB of process memory, see docs/benchmarks.md).
    threads : int or None, default=None
        DuckDB threads (default: one per core).

    Examples
    --------
    >>> ws = Workspace("ws")                                  # doctest: +SKIP
    >>> ws.ingest("shared/data/cdnow_sample")                 # doctest: +SKIP
    >>> ws.table("transactions").count().execute()            # doctest: +SKIP
    6919
    """

    def __init__(self, path: str | Path, memory_limit: str = "3GB", threads: int | None = None):
        self.path = Path(path)
        self.memory_limit = memory_limit
        self.threads = threads
        self._con: ibis.BaseBackend | None = None

    # ------------------------------------------------------------------ reading
    @property
    def db_path(self) -> Path:
        return self.path / DB_NAME

    @property
    def exists(self) -> bool:
        return self.db_path.is_file()

    def _connect(self, path: Path, read_only: bool = False) -> Any:
        config: dict[str, Any] = {"memory_limit": self.memory_limit}
        if self.threads:
            config["threads"] = self.threads
        return ibis.duckdb.connect(str(path), read_only=read_only, **config)

    @property
    def con(self) -> Any:
        """The ibis DuckDB connection of the workspace (opened on first use)."""
        if self._con is None:
            if not self.exists:
                raise WorkspaceError(
                    f"{self.path} is not a cxasset workspace (no {DB_NAME}); create it with "
                    f"`cxasset ingest BOOK_DIR --workspace {self.path}`"
                )
            self._con = self._connect(self.db_path)
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.disconnect()
            self._con = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def tables(self) -> list[str]:
        """The book's tables held in the workspace."""
        return [t for t in TABLES if t in self.con.list_tables()]

    def table(self, name: str) -> ir.Table:
        """A book table as an ibis table."""
        if name not in self.tables():
            raise WorkspaceError(
                f"The workspace {self.path} holds no {name} table; it holds: "
                f"{', '.join(self.tables())}"
            )
        return self.con.table(name)

    def meta(self) -> dict[str, Any]:
        """What the workspace holds: source, fingerprint, row counts, settings, time of ingest."""
        rows = self.con.table(META).to_pyarrow().to_pylist()
        return {r["key"]: json.loads(r["value"]) for r in rows}

    @property
    def settings(self) -> BookSettings:
        return BookSettings.model_validate(self.meta()["settings"])

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r})"

    # ------------------------------------------------------------------ artifacts
    def save_artifact(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable result (a fitted model, a backtest) under ``key``.

        Artifacts belong to the book they were computed from: a new ingest drops them all.
        """
        raw = self.con.con
        raw.execute(f"CREATE TABLE IF NOT EXISTS {ARTIFACTS} (key VARCHAR PRIMARY KEY, "
                    "value VARCHAR, saved_at TIMESTAMP)")
        raw.execute(f"INSERT OR REPLACE INTO {ARTIFACTS} VALUES (?, ?, ?)",
                    [key, json.dumps(value, default=str),
                     dt.datetime.now(dt.UTC).replace(tzinfo=None)])

    def load_artifact(self, key: str) -> Any:
        """The artifact saved under ``key``; WorkspaceError if there is none."""
        found = self.artifacts()
        if key not in found:
            raise WorkspaceError(
                f"The workspace {self.path} holds no {key!r}" + (
                    f"; it holds: {', '.join(sorted(found))}" if found else "")
                + ". Run the step that makes it first (e.g. `cxasset fit`).")
        row = self.con.con.execute(f"SELECT value FROM {ARTIFACTS} WHERE key = ?", [key])
        return json.loads(row.fetchone()[0])

    def artifacts(self) -> dict[str, str]:
        """Saved artifacts: key -> time saved (UTC)."""
        if ARTIFACTS not in self.con.list_tables():
            return {}
        rows = self.con.con.execute(f"SELECT key, saved_at FROM {ARTIFACTS}").fetchall()
        return {k: v.isoformat(timespec="seconds") for k, v in rows}

    # ------------------------------------------------------------------ ingest
    def ingest(self, book: Book | str | Path, progress: Progress | None = None) -> IngestReport:
        """Validate ``book`` and make it the workspace's book, atomically.

        Raises
        ------
        SchemaError
            If the book breaks the contract; ``.problems`` lists every problem found. The
            workspace is left untouched.
        """
        if not isinstance(book, Book):
            book = Book.from_dir(book)
        say = progress or (lambda _msg: None)
        # the folders this ingest creates (the workspace and any missing parents), innermost first
        created = [d for d in (self.path, *self.path.parents) if not d.exists()]
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / f".ingest-{uuid.uuid4().hex}.duckdb"
        try:
            with _cleanup(tmp):
                con = self._connect(tmp)
                try:
                    report = _Ingest(con, book, say).run()
                    _write_meta(con, book, report)
                    con.raw_sql("CHECKPOINT")
                finally:
                    con.disconnect()
                self.close()
                os.replace(tmp, self.db_path)
        except BaseException:
            for d in created:
                with contextlib.suppress(OSError):
                    d.rmdir()
            raise
        for w in report["warnings"]:
            warnings.warn(str(w), BookWarning, stacklevel=2)
        return IngestReport(self.path, report["rows"], report["fingerprint"],
                            report["warnings"], report["settings"], book.kind)


@contextlib.contextmanager
def _cleanup(tmp: Path) -> Iterator[None]:
    try:
        yield
    finally:
        for p in (tmp, tmp.with_name(tmp.name + ".wal")):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


class _Ingest:
    """One ingest into a fresh staging database: stage, type, check, write."""

    def __init__(self, con: Any, book: Book, say: Progress):
        self.con = con
        self.book = book
        self.say = say
        self.settings = book.settings
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []

    def run(self) -> dict[str, Any]:
        raw = {n: self._stage(src) for n, src in self.book.tables.items()}
        self._raise_if_errors()  # files whose rows cannot be split into the header's columns
        id_type = self._id_type(raw["customers"])
        typed: dict[str, Staged] = {}
        for name, staged in raw.items():
            self.say(f"checking {staged.source}")
            t = self._typed(staged, id_type)
            if t is not None:
                typed[name] = t
        self._raise_if_errors()
        settings = self._settings(typed)
        as_of = ibis.literal(settings.as_of) if settings.as_of else None
        customers = typed["customers"].table
        self.errors += duplicate_check(typed["customers"], "customer_id")
        for name, staged in typed.items():
            checks = rule_checks(staged, as_of)
            if name != "customers":
                checks += reference_checks(staged, customers)
            for p in run_checks(staged, checks):
                (self.errors if p.severity == "error" else self.warnings).append(p)
        self._raise_if_errors()
        self.warnings += self._coverage_warnings(typed)
        rows = {}
        for name, staged in typed.items():
            self.say(f"writing {name}")
            self.con.create_table(name, staged.table.drop("_row"))
            rows[name] = staged.rows
        for name in list(self.con.list_tables()):
            if name.startswith("_stage_"):
                self.con.drop_table(name)
        files = {n: {"source": s.label, "sha256": s.fingerprint()}
                 for n, s in sorted(self.book.tables.items())}
        fingerprint = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
        return {"rows": rows, "files": files, "fingerprint": fingerprint,
                "warnings": self.warnings, "settings": settings}

    # -- staging: raw rows, with their row number, into a temporary table
    def _stage(self, src: TableSource) -> Staged:
        spec = TABLES[src.name]
        self.say(f"reading {src.label}")
        stage = f"_stage_{src.name}"
        try:
            if src.fmt == "csv":
                _read_csv(self.con.con, stage, src.path)
                offset = 1  # line = row + 1 (the header is line 1)
            elif src.fmt == "parquet":
                self.con.con.execute(
                    f"CREATE TABLE {stage} AS SELECT * FROM read_parquet(?)", [str(src.path)])
                offset = 0
            else:
                self.con.create_table(stage, _as_arrow(src.obj))
                offset = 0
        except (duckdb.Error, OSError, TypeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SchemaError(f"{src.label}: cannot be read as {src.fmt.upper()}: {first}",
                              []) from None
        table = self.con.sql(f"SELECT rowid + 1 AS _row, * FROM {stage}")
        table = table.rename({_clean(c): c for c in table.columns if _clean(c) != c})
        staged = Staged(spec, table, src.label, offset)
        staged.rows = int(table.count().to_pyarrow().as_py())
        if src.fmt == "csv" and len(table.columns) == 2 and src.path is not None:
            # one column only: DuckDB's sniffer found no delimiter that splits every row alike
            ragged = _ragged_rows(spec.name, src.path, src.label, table.columns[1])
            if ragged is not None:
                self.errors.append(ragged)
        return staged

    def _id_type(self, customers: Staged) -> str:
        """``int64`` when every customer_id is an integer, else ``string``."""
        t = customers.table
        if "customer_id" not in t.columns:
            return "string"
        col = t.customer_id
        if col.type().is_integer():
            return "int64"
        bad = (col.notnull() & as_integer(col, ID_PATTERN).isnull()).sum().to_pyarrow().as_py()
        return "string" if bad else "int64"

    def _typed(self, staged: Staged, id_type: str) -> Staged | None:
        spec, t = staged.spec, staged.table
        missing = [c for c in spec.required if c not in t.columns]
        if missing:
            self.errors.append(Problem(
                spec.name, staged.source, ", ".join(missing), 0, 0,
                f"required column(s) {', '.join(missing)} missing (found: "
                f"{', '.join(c for c in t.columns if c != '_row') or 'none'})",
                f"the {spec.name} table needs {', '.join(spec.required)}"))
            return None
        if staged.rows == 0:
            self.errors.append(Problem(
                spec.name, staged.source, None, 0, 0, "the table is empty",
                "add its rows, or remove the file if the book has no such data"))
            return None
        fmt = self.settings.date_format if staged.source.endswith((".csv", ".gz", ".tsv")) else None
        present = {c.name: t[c.name] for c in spec.columns if c.name in t.columns}
        typed = {n: typed_column(col, spec.column_map[n], id_type, fmt)
                 for n, col in present.items()}
        if spec.name == "surveys":
            typed["metric"] = typed["metric"].strip().lower()
        problems = run_checks(staged, type_checks(staged, present, typed, fmt))
        for p in problems:
            col = spec.column_map.get(p.column or "")
            if col is not None and col.kind == "timestamp" and not fmt and "not dates" in p.what:
                hint = date_format_hint(staged, t[p.column])
                if hint:
                    p = Problem(p.table, p.source, p.column, p.rows, p.total,
                                f"{p.what}: {hint}", "", p.examples)
            self.errors.append(p)
        extras = _typed_extras(t, [c for c in t.columns if c not in present and c != "_row"])
        out = t.select("_row", **typed, **extras)
        name = f"_stage_typed_{spec.name}"
        self.con.create_table(name, out)
        return Staged(spec, self.con.table(name), staged.source, staged.line_offset, staged.rows)

    def _settings(self, typed: dict[str, Staged]) -> BookSettings:
        """Settings with as_of filled in (the last event of the book) when book.yaml omits it."""
        s = self.settings
        if s.as_of is not None:
            return s
        last = [st.table[st.spec.time_column].max() for st in typed.values() if st.spec.time_column]
        values = [v.to_pyarrow().as_py() for v in last]
        as_of = max(v for v in values if v is not None).date()
        if s.calibration_end and s.calibration_end >= as_of:
            raise SchemaError(
                f"book.yaml: calibration_end ({s.calibration_end}) must be before as_of, which "
                f"defaults to the last event of the book ({as_of}); set as_of in book.yaml", [])
        return s.model_copy(update={"as_of": as_of})

    def _coverage_warnings(self, typed: dict[str, Staged]) -> list[Problem]:
        out = []
        cust = typed["customers"]
        for name in ("transactions", "subscriptions"):
            if name not in typed:
                continue
            t = cust.table
            check = [_no_rows_check(t, typed[name].table, name)]
            out += run_checks(cust, check)
        return out

    def _raise_if_errors(self) -> None:
        if self.errors:
            n = len(self.errors)
            msg = f"The book has {n} problem{'s' if n > 1 else ''}; nothing was changed:\n" + \
                "\n".join(f"  {i}. {p}" for i, p in enumerate(self.errors, 1))
            raise SchemaError(msg, self.errors)


def _read_csv(con: duckdb.DuckDBPyConnection, stage: str, path: Path | None) -> None:
    """Every column as text (typing is ours, so nothing is guessed or lost).

    Strict parsing first; files with mixed line endings (a header ending in LF, rows in CRLF, as
    spreadsheet exports make) fail DuckDB's strict sniffer and are read again non-strictly.
    """
    sql = f"CREATE TABLE {stage} AS SELECT * FROM read_csv(?, all_varchar=true, header=true{{}})"
    try:
        con.execute(sql.format(""), [str(path)])
    except duckdb.InvalidInputException as exc:
        if "sniffing" not in str(exc):
            raise
        con.execute(sql.format(", strict_mode=false"), [str(path)])


def _ragged_rows(table: str, path: Path, source: str, header: str) -> Problem | None:
    """The rows of a delimited file whose number of fields differs from its header's."""
    delims = {d: header.count(d) for d in ",;\t|" if d in header}
    if not delims:
        return None
    delim = max(delims, key=lambda d: delims[d])
    opener: Any = gzip.open if path.name.endswith(".gz") else open
    bad, total, width = [], 0, 0
    with opener(path, "rt", encoding="utf-8-sig", newline="", errors="replace") as fh:
        reader = csv.reader(fh, delimiter=delim)
        width = len(next(reader, []))
        for fields in reader:
            if not fields:  # a blank line
                continue
            total += 1
            if len(fields) != width:
                bad.append((reader.line_num, len(fields)))
    if not bad:
        return None
    return Problem(
        table, source, None, len(bad), total,
        f"have a different number of fields than the header ({width}, separated by {delim!r})",
        f"give every row the header's {width} fields; quote values that contain {delim!r}",
        tuple(f"line {line}: {n} fields" for line, n in bad[:MAX_EXAMPLES]),
    )


def _no_rows_check(customers: ir.Table, events: ir.Table, name: str) -> Check:
    return Check("customer_id", ~customers.customer_id.isin(events.customer_id),
                 f"have no {name}", "", show=("customer_id",), severity="warning")


def _clean(name: str) -> str:
    return name.replace("\ufeff", "").strip()


def _typed_extras(t: ir.Table, names: list[str]) -> dict[str, ir.Value]:
    """Extra columns are kept; text columns whose every value is a number become numbers."""
    text = [c for c in names if t[c].type().is_string()]
    out: dict[str, ir.Value] = {c: t[c] for c in names}
    if text:
        bad = t.aggregate(**{c: (t[c].notnull() & as_float(t[c]).isnull()).sum()
                             for c in text}).to_pyarrow().to_pylist()[0]
        out.update({c: as_float(t[c]) for c in text if not bad[c]})
    return out


def _as_arrow(obj: Any) -> pa.Table:
    if isinstance(obj, ir.Table):
        return obj.to_pyarrow()
    if isinstance(obj, pa.Table):
        return obj
    if hasattr(obj, "to_arrow"):  # polars
        return obj.to_arrow()
    return pa.Table.from_pandas(obj, preserve_index=False)


def _write_meta(con: Any, book: Book, report: dict[str, Any]) -> None:
    meta = {
        "cxasset_version": __version__,
        "ingested_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "source": book.origin,
        "kind": book.kind,
        "fingerprint": report["fingerprint"],
        "files": report["files"],
        "rows": report["rows"],
        "settings": report["settings"].model_dump(mode="json"),
        "warnings": [w.to_dict() for w in report["warnings"]],
    }
    con.create_table(META, pa.table({"key": list(meta), "value": [json.dumps(v) for v in
                                                                 meta.values()]}))


__all__ = ["IngestReport", "Workspace"]
