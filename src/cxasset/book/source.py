"""Where a book's tables come from: files in a folder, or tables and frames handed over in Python."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cxasset.book.contract import ACTIVITY_TABLES, TABLES
from cxasset.book.settings import BookSettings
from cxasset.book.validate import Problem
from cxasset.exceptions import BookError, SchemaError

SUFFIXES = {".csv": "csv", ".csv.gz": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class TableSource:
    """One table of a book: a file (CSV or Parquet) or an in-memory object (ibis table, frame)."""

    name: str
    fmt: str  # csv | parquet | object
    path: Path | None = None
    obj: Any = None

    @property
    def label(self) -> str:
        return self.path.name if self.path else f"{self.name} (in-memory table)"

    def fingerprint(self) -> str:
        """SHA-256 of the file's bytes (``-`` for in-memory tables)."""
        if self.path is None:
            return "-"
        with open(self.path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()


@dataclass(frozen=True)
class Book:
    """A customer book: its tables and its settings (``book.yaml``)."""

    tables: dict[str, TableSource]
    settings: BookSettings = field(default_factory=BookSettings)
    origin: str = "-"

    @classmethod
    def from_dir(cls, path: str | Path) -> Book:
        """Find the contract's tables in folder ``path`` (``<table>.csv`` or ``<table>.parquet``)."""
        root = Path(path)
        if not root.is_dir():
            raise BookError(f"Book folder {root} does not exist or is not a folder")
        found: dict[str, TableSource] = {}
        for f in sorted(root.iterdir()):
            suffix = next((s for s in SUFFIXES if f.name.endswith(s)), None)
            if suffix is None or not f.is_file():
                continue
            name = f.name[: -len(suffix)]
            if name not in TABLES:
                continue
            if name in found:
                raise BookError(
                    f"{root}: table {name} is given twice ({found[name].label} and {f.name}); "
                    "keep one file per table"
                )
            found[name] = TableSource(name, SUFFIXES[suffix], path=f)
        settings = BookSettings.from_yaml(root / "book.yaml")
        return cls._checked(found, settings, str(root.resolve()))

    @classmethod
    def from_tables(
        cls, tables: Mapping[str, Any], settings: BookSettings | Mapping[str, Any] | None = None
    ) -> Book:
        """A book from ibis tables (of any backend), pandas/polars frames or pyarrow tables."""
        unknown = sorted(set(tables) - set(TABLES))
        if unknown:
            raise BookError(f"Unknown table(s) {unknown}; valid tables: {', '.join(TABLES)}")
        if settings is None:
            settings = BookSettings()
        elif not isinstance(settings, BookSettings):
            settings = BookSettings.model_validate(dict(settings))
        found = {n: TableSource(n, "object", obj=obj) for n, obj in tables.items()}
        return cls._checked(found, settings, "in-memory tables")

    @classmethod
    def _checked(cls, found: dict[str, TableSource], settings: BookSettings, origin: str) -> Book:
        where = origin if origin.startswith("in-memory") else f"Book folder {origin}"
        if "customers" not in found:
            _missing_table(
                where, "customers", "required table customers is missing",
                "Add customers.csv (or .parquet) with columns customer_id, acquired_at.",
            )
        if not any(t in found for t in ACTIVITY_TABLES):
            _missing_table(
                where, "transactions",
                "a book needs transactions (non-contractual) or subscriptions (contractual); "
                "neither was found",
                "Add transactions.csv with columns customer_id, occurred_at, amount, or "
                "subscriptions.csv with customer_id, started_at, recurring_revenue.",
            )
        return cls(found, settings, origin)

    @property
    def kind(self) -> str:
        """``transactions`` (non-contractual) or ``subscriptions`` (contractual)."""
        return "subscriptions" if "subscriptions" in self.tables else "transactions"


def _missing_table(where: str, table: str, what: str, fix: str) -> None:
    """Refuse a book without a table the contract requires (a :class:`SchemaError`)."""
    problem = Problem(table, where, None, 0, 0, what, fix)
    raise SchemaError(f"{where}: {what}. {fix}", [problem])
