"""The customer book: its data contract, validation, and the workspace it is ingested into.

This is the only package that imports DuckDB.
"""

from __future__ import annotations

from cxasset.book.contract import TABLES, Column, TableSpec
from cxasset.book.settings import PERIOD_DAYS, BookSettings
from cxasset.book.source import Book, TableSource
from cxasset.book.validate import Problem
from cxasset.book.workspace import IngestReport, Workspace

__all__ = [
    "PERIOD_DAYS",
    "TABLES",
    "Book",
    "BookSettings",
    "Column",
    "IngestReport",
    "Problem",
    "TableSource",
    "TableSpec",
    "Workspace",
]
