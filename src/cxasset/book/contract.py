"""The data contract of a customer book: its tables, their columns and their types.

A book is a folder of tables (CSV or Parquet files named after the table, or tables of any ibis
backend) plus an optional ``book.yaml`` of settings (:mod:`cxasset.book.settings`). Column names are
fixed; extra columns are kept. Event times are called ``occurred_at`` (``at`` is reserved in DuckDB).
See ``docs/book.md`` for the contract in prose with a worked example.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["id", "timestamp", "float", "int", "string", "bool"]


@dataclass(frozen=True)
class Column:
    """One column of the contract: its name, kind, whether it is required and nullable."""

    name: str
    kind: Kind
    required: bool = True
    nullable: bool = False
    help: str = ""


@dataclass(frozen=True)
class TableSpec:
    """One table of the contract."""

    name: str
    columns: tuple[Column, ...]
    help: str
    time_column: str | None = None
    customer_columns: tuple[str, ...] = ("customer_id",)
    unique: tuple[str, ...] = ()
    keep_extra: bool = True
    column_map: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "column_map", {c.name: c for c in self.columns})

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]


TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (
        TableSpec(
            "customers",
            (
                Column("customer_id", "id", help="unique key of the customer"),
                Column("acquired_at", "timestamp", help="date the customer was acquired"),
                Column("segment", "string", required=False, nullable=True),
                Column("acquisition_channel", "string", required=False, nullable=True),
                Column("acquisition_cost", "float", required=False, nullable=True),
                Column("onboarded_at", "timestamp", required=False, nullable=True),
            ),
            help="one row per customer; extra numeric or categorical columns are candidate drivers",
            time_column="acquired_at",
            unique=("customer_id",),
        ),
        TableSpec(
            "transactions",
            (
                Column("customer_id", "id"),
                Column("occurred_at", "timestamp"),
                Column("amount", "float", help="money of the purchase; negative = refund"),
                Column("margin", "float", required=False, nullable=True),
                Column("transaction_id", "string", required=False, nullable=True),
            ),
            help="purchases of a non-contractual book",
            time_column="occurred_at",
        ),
        TableSpec(
            "subscriptions",
            (
                Column("customer_id", "id"),
                Column("started_at", "timestamp"),
                Column("recurring_revenue", "float", help="revenue per period while active"),
                Column("ended_at", "timestamp", required=False, nullable=True),
                Column("plan", "string", required=False, nullable=True),
            ),
            help="contracts of a contractual book; ended_at empty while active",
            time_column="started_at",
        ),
        TableSpec(
            "interactions",
            (
                Column("customer_id", "id"),
                Column("occurred_at", "timestamp"),
                Column("channel", "string"),
                Column("cost", "float", required=False, nullable=True),
                Column("effort", "float", required=False, nullable=True, help="CES scale 1-7"),
                Column("resolved", "bool", required=False, nullable=True),
            ),
            help="service touchpoints",
            time_column="occurred_at",
        ),
        TableSpec(
            "surveys",
            (
                Column("customer_id", "id"),
                Column("occurred_at", "timestamp"),
                Column("metric", "string", help="nps, csat, ces or another name"),
                Column("score", "float"),
            ),
            help="survey answers; NPS 0-10, CSAT 1-5, CES 1-7",
            time_column="occurred_at",
        ),
        TableSpec(
            "referrals",
            (
                Column("referrer_id", "id"),
                Column("occurred_at", "timestamp"),
                Column("referred_customer_id", "id", required=False, nullable=True),
            ),
            help="referrals made by customers",
            time_column="occurred_at",
            customer_columns=("referrer_id", "referred_customer_id"),
        ),
        TableSpec(
            "engagement",
            (
                Column("customer_id", "id"),
                Column("occurred_at", "timestamp"),
                Column("event", "string"),
                Column("count", "int", required=False, nullable=True, help="defaults to 1"),
            ),
            help="engagement events (logins, app sessions, ...)",
            time_column="occurred_at",
        ),
    )
}

#: Valid score ranges of the standard survey metrics (inclusive).
SCORE_RANGES: dict[str, tuple[float, float]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}

#: Tables that say what kind of book this is; a book needs at least one of them.
ACTIVITY_TABLES = ("transactions", "subscriptions")
