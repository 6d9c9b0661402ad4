"""``book.yaml``: the settings of a customer book, validated by pydantic."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cxasset.exceptions import BookError

Period = Literal["day", "week", "month"]

#: Length of one period in days. A month is the mean Gregorian month (365.2425 / 12 days).
PERIOD_DAYS: dict[str, float] = {"day": 1.0, "week": 7.0, "month": 365.2425 / 12}


class BookSettings(BaseModel):
    """Settings of a book, read from its ``book.yaml`` (every field optional).

    Money is in ``currency``; time is measured in days and expressed in ``period`` units; rates
    (``discount_rate``) are annual; ``horizon`` is in periods.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: str = Field("USD", description="ISO 4217 code of every money column")
    period: Period = Field("week", description="time unit of features and models")
    as_of: dt.date | None = Field(
        None, description="end of observation (inclusive); default: the last event in the book"
    )
    calibration_end: dt.date | None = Field(
        None, description="end of the calibration period (inclusive) for backtests"
    )
    margin_rate: float = Field(
        0.3, ge=0, le=1, description="gross margin share of amount, when no margin column"
    )
    discount_rate: float = Field(0.10, ge=0, lt=1, description="annual discount rate")
    channel_costs: dict[str, float] = Field(
        default_factory=dict, description="unit cost per interaction by channel, in currency"
    )
    horizon: int = Field(
        52, gt=0, description="forecast horizon in periods (weeks by default: one year)"
    )
    transaction_grain: Literal["day", "timestamp"] = Field(
        "day",
        description="what one transaction is: all purchases of a calendar day (the BTYD "
        "literature's convention) or each distinct timestamp, with times measured exactly",
    )
    date_format: str | None = Field(
        None,
        description="strptime format of date columns in CSV files (e.g. '%d/%m/%Y'); "
        "default: ISO 8601 (YYYY-MM-DD, optionally with a time)",
    )

    @model_validator(mode="after")
    def _calibration_before_as_of(self) -> BookSettings:
        if self.as_of and self.calibration_end and self.calibration_end >= self.as_of:
            raise ValueError(
                f"calibration_end ({self.calibration_end}) must be before as_of ({self.as_of})"
            )
        return self

    @property
    def period_days(self) -> float:
        return PERIOD_DAYS[self.period]

    @classmethod
    def from_yaml(cls, path: Path) -> BookSettings:
        """Read and validate ``book.yaml``; a missing file gives the defaults."""
        if not path.exists():
            return cls()
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8-sig")) or {}
        except (yaml.YAMLError, ValueError) as exc:  # ValueError: an impossible date (2024-13-01)
            raise BookError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise BookError(f"{path}: expected a mapping of settings, got {type(raw).__name__}")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            lines = [
                f"  - {'.'.join(map(str, e['loc'])) or 'book.yaml'}: {e['msg']}"
                f" (got {e.get('input')!r})"
                for e in exc.errors()
            ]
            valid = ", ".join(cls.model_fields)
            raise BookError(
                f"{path}: {len(lines)} invalid setting(s):\n" + "\n".join(lines)
                + f"\nValid settings: {valid}."
            ) from None
