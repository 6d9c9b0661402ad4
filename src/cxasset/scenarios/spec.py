"""The scenario spec: initiatives that move CX drivers for some customers, at a cost (YAML,
validated by pydantic; JSON Schema from :func:`scenario_schema`, example in :data:`EXAMPLE`).

A file holds one scenario (a mapping) or several (a list of mappings). A scenario without
initiatives is the baseline alone. Book-dependent checks (drivers, targets) are in
:func:`check_scenario`.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cxasset.valuemap.spec import SpecError

__all__ = ["EXAMPLE", "Change", "Cost", "Initiative", "Scenario", "SpecError", "check_scenario",
           "example_yaml", "load_scenarios", "parse_scenarios", "scenario_schema", "target_mask"]

EXAMPLE = """\
name: Faster onboarding
horizon_months: 36
discount_rate: 0.10            # annual; default (null) = the book's discount_rate from book.yaml
new_customers: forecast        # forecast future cohorts (default), or none: the existing base alone
initiatives:
  - name: Onboarding concierge
    target: {segment: smb}       # any filter on customer features; default {}: all customers
    changes:
      - driver: onboarding_days
        shift: -3                # or: scale: 0.8, or: set: 5
        uncertainty_sd: 1.0      # optional: sd of the effect itself, in the unit of the amount
    applies_to: existing         # existing | new | both
    ramp_months: 3               # linear ramp to full effect (0 = immediate)
    cost: {upfront: 250000, per_month: 10000, per_customer: 0}
"""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Change(_Strict):
    """A change of one driver: ``shift`` adds, ``scale`` multiplies, ``set`` replaces."""

    driver: str = Field(description="Driver (numeric customer feature) the change moves")
    shift: float | None = Field(default=None, description="Amount added, in the driver's own unit")
    scale: float | None = Field(default=None, gt=0, description="Relative factor (0.8 = 20% less)")
    set: float | None = Field(default=None, description="New value, in the driver's own unit")
    uncertainty_sd: float = Field(default=0.0, ge=0, description=(
        "Standard deviation of the effect itself: of the shift or set value in the driver's "
        "unit, or of the scale factor"))

    @model_validator(mode="after")
    def _one_kind(self) -> Change:
        given = {k: v for k in ("shift", "scale", "set") if (v := getattr(self, k)) is not None}
        if len(given) != 1:
            got = ", ".join(f"{k}={v:g}" for k, v in given.items()) or "none"
            raise ValueError(f"change of {self.driver!r}: give exactly one of shift, scale or set; "
                             f"got {got}")
        return self

    @property
    def kind(self) -> Literal["shift", "scale", "set"]:
        return "shift" if self.shift is not None else "scale" if self.scale is not None else "set"

    @property
    def amount(self) -> float:
        return float(getattr(self, self.kind))

    def apply(self, x: np.ndarray, offset: float | np.ndarray = 0.0) -> np.ndarray:
        """New driver values, ``x`` and ``offset`` broadcast together.

        Parameters
        ----------
        x : ndarray of shape (n,)
            Current driver values. NaN (a missing value) stays NaN: it is not moved, not set.
        offset : float or ndarray, default=0.0
            A draw of the effect uncertainty, added to the shift, scale or set value; shape
            (k, 1) or (k, n) gives k versions. A scale factor below 0 is taken as 0.
        """
        x = np.asarray(x, dtype=float)
        a = self.amount + np.asarray(offset, dtype=float)
        if self.kind == "shift":
            return x + a
        if self.kind == "scale":
            return x * np.maximum(a, 0.0)
        return np.where(np.isnan(x), np.nan, a)

    def describe(self, unit: str = "") -> str:
        """One-line label, e.g. ``onboarding_days -3 days`` or ``onboarding_days x0.8``."""
        u = f" {unit}" if unit else ""
        how = {"shift": f"{self.amount:+g}{u}", "scale": f"x{self.amount:g}",
               "set": f"set to {self.amount:g}{u}"}
        return f"{self.driver} {how[self.kind]}"


class Cost(_Strict):
    """What an initiative costs, in the book's currency; omitted parts are 0."""

    upfront: float = Field(default=0.0, ge=0, description="One-off cost in month 1 (currency)")
    per_month: float = Field(default=0.0, ge=0, description="Running cost every month (currency)")
    per_customer: float = Field(default=0.0, ge=0, description=(
        "One-off cost per customer reached: targeted existing customers at the start, targeted "
        "new customers when acquired (currency per customer)"))

    def schedule(self, months: int, reached_per_month: np.ndarray) -> np.ndarray:
        """Cost in each month 1..months, shape (months,): upfront in month 1, per_month every
        month, per_customer x the customers first reached that month.

        Parameters
        ----------
        months : int
            Horizon in months.
        reached_per_month : ndarray of shape (months,)
            Customers first reached in each month.
        """
        reached = np.asarray(reached_per_month, dtype=float)
        if reached.shape != (months,):
            raise ValueError(f"reached_per_month must have shape ({months},); got {reached.shape}")
        out = self.per_month + self.per_customer * reached
        out[:1] += self.upfront
        return out


class Initiative(_Strict):
    """An initiative: changes to drivers for the customers its target selects.

    The target is a filter on customer features: ``{column: value}`` is equality,
    ``{column: [v1, v2]}`` membership, ``{column: {min: a, max: b}}`` an inclusive numeric range
    (either bound optional); several keys are ANDed, and ``{}`` selects every customer.
    """

    name: str = Field(description="Label shown in tables")
    target: dict[str, Any] = Field(default_factory=dict, description=(
        "Filter on customer features: value (equality), list (membership) or {min, max} "
        "(inclusive range); keys are ANDed; {} = all customers"))
    changes: list[Change] = Field(min_length=1, description="Driver changes, applied together")
    applies_to: Literal["existing", "new", "both"] = Field(default="existing", description=(
        "Customers reached: the existing base, new (future) customers, or both"))
    ramp_months: float = Field(default=0.0, ge=0, description=(
        "Months of linear ramp to the full effect (0 = full effect from month 1)"))
    cost: Cost = Field(default_factory=Cost, description="Cost of the initiative (currency)")

    @field_validator("target")
    @classmethod
    def _target_shape(cls, t: dict[str, Any]) -> dict[str, Any]:
        for col, v in t.items():
            if isinstance(v, dict):
                bad = set(v) - {"min", "max"}
                if bad or not v or not all(isinstance(b, int | float) for b in v.values()):
                    raise ValueError(f"{col}: a range is {{min: number, max: number}} "
                                     f"(either bound optional); got {v!r}")
                if v.get("min", -np.inf) > v.get("max", np.inf):
                    raise ValueError(f"{col}: min {v['min']} is above max {v['max']}")
            elif isinstance(v, list) and not v:
                raise ValueError(f"{col}: the list of values is empty")
        return t

    def ramp(self, months: int) -> np.ndarray:
        """Share of the full effect in months 1..months: ``min(1, m / ramp_months)``."""
        m = np.arange(1, months + 1, dtype=float)
        return np.ones(months) if self.ramp_months == 0 else np.minimum(1.0, m / self.ramp_months)

    @property
    def drivers(self) -> list[str]:
        return list(dict.fromkeys(c.driver for c in self.changes))


class Scenario(_Strict):
    """A scenario: initiatives run together over a horizon (none = the baseline alone)."""

    name: str = Field(description="Label shown in tables and charts")
    horizon_months: int = Field(gt=0, le=120, description="Months simulated (1..120)")
    discount_rate: float | None = Field(default=None, ge=0, lt=1, description=(
        "Discount rate, annual, compounded monthly; null = the book's discount_rate (book.yaml)"))
    new_customers: Literal["forecast", "none"] = Field(default="forecast", description=(
        "forecast: add future cohorts; none: the existing customer base alone"))
    initiatives: list[Initiative] = Field(default_factory=list, description=(
        "Initiatives run together; empty = the baseline"))

    @model_validator(mode="after")
    def _unique(self) -> Scenario:
        names = [i.name for i in self.initiatives]
        if dup := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"scenario {self.name!r}: initiative names must be unique; "
                             f"repeated: {', '.join(map(repr, dup))}")
        return self

    @property
    def drivers(self) -> list[str]:
        return sorted({d for i in self.initiatives for d in i.drivers})


def _examples(col: pd.Series, k: int = 5) -> str:
    vals = sorted(map(str, col.dropna().unique()))
    return ", ".join(vals[:k]) + (", ..." if len(vals) > k else "")


def target_mask(target: dict[str, Any], features: pd.DataFrame, where: str = "target") -> np.ndarray:
    """Boolean mask of the customers (rows of ``features``) a target selects (see
    :class:`Initiative`); SpecError, prefixed by ``where``, for an unknown column, a value the
    column never takes, a range on a non-numeric column, or a filter matching no customer."""
    mask = np.ones(len(features), dtype=bool)
    for col, v in target.items():
        if col not in features.columns:
            cols = [str(c) for c in features.columns]
            more = f", ... ({len(cols) - 15} more)" if len(cols) > 15 else ""
            raise SpecError(f"{where}: no customer feature {col!r}; available: "
                            f"{', '.join(cols[:15])}{more}")
        s = features[col]
        if isinstance(v, dict):
            if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
                raise SpecError(f"{where}: a range needs a numeric column; {col} holds "
                                f"{s.dtype} values ({_examples(s)})")
            x = s.to_numpy(dtype=float)
            with np.errstate(invalid="ignore"):
                mask &= (x >= v.get("min", -np.inf)) & (x <= v.get("max", np.inf))
            continue
        for val in v if isinstance(v, list) else [v]:
            if not (s == val).any():
                raise SpecError(f"{where}: {col} has no customer with {val!r}; values: "
                                f"{_examples(s)}")
        mask &= s.isin(v if isinstance(v, list) else [v]).to_numpy()
    if not mask.any():
        raise SpecError(f"{where}: {target} matches no customer of the book "
                        f"({len(features)} customers)")
    return mask


def check_scenario(s: Scenario, features: pd.DataFrame, drivers: Collection[str]) -> None:
    """Check a scenario against a book: every changed driver is one of ``drivers`` and every
    target is valid and selects at least one customer (also for ``applies_to: new``, whose
    customers are drawn from the book's). Raises SpecError naming scenario and initiative."""
    valid = sorted(drivers)
    for i in s.initiatives:
        where = f"scenario {s.name!r}, initiative {i.name!r}"
        for d in i.drivers:
            if d not in drivers:
                close = difflib.get_close_matches(d, valid, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise SpecError(f"{where}: {d!r} is not a driver of the book (valid: "
                                f"{', '.join(valid) or 'none'}){hint}")
        target_mask(i.target, features, where=f"{where}, target")


_FIELDS = sorted({f for m in (Change, Cost, Initiative, Scenario) for f in m.model_fields})


def _problems(e: ValidationError) -> str:
    out = []
    for err in e.errors():
        msg = err["msg"].removeprefix("Value error, ")
        if not isinstance(err.get("input"), dict | list):
            msg += f" (got {err['input']!r})"
        if err["type"] == "extra_forbidden" and (close := difflib.get_close_matches(
                str(err["loc"][-1]), _FIELDS, n=1)):
            msg += f"; did you mean {close[0]!r}?"
        out.append(f"{'.'.join(str(x) for x in err['loc']) or '(top)'}: {msg}")
    return "; ".join(out)


def parse_scenarios(raw: Any, where: str = "scenarios") -> list[Scenario]:
    """Validate one scenario (a mapping) or several (a list of mappings)."""
    items = [raw] if isinstance(raw, dict) else raw
    if not isinstance(items, list) or not items:
        raise SpecError(f"{where}: expected a scenario (a mapping with name, horizon_months, ...) "
                        f"or a list of them; got {raw!r}")
    out = []
    for k, item in enumerate(items, 1):
        name = f" ({item.get('name')!r})" if isinstance(item, dict) and "name" in item else ""
        try:
            out.append(Scenario.model_validate(item))
        except ValidationError as e:
            raise SpecError(f"{where}: scenario {k}{name}: {_problems(e)}") from None
    names = [s.name for s in out]
    if dup := sorted({n for n in names if names.count(n) > 1}):
        raise SpecError(f"{where}: scenario names must be unique; repeated: "
                        f"{', '.join(map(repr, dup))}")
    return out


def load_scenarios(path: str | Path) -> list[Scenario]:
    """Read and validate a scenario file; SpecError names the file, scenario, field and value."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"scenario file {p} does not exist; write one with `cxasset init`")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise SpecError(f"{p} is not valid YAML: {e}") from None
    if raw is None:
        raise SpecError(f"{p} is empty; it should hold a scenario (see `cxasset init`)")
    return parse_scenarios(raw, str(p))


def scenario_schema() -> dict[str, Any]:
    """JSON Schema of one scenario (every property has a description)."""
    return Scenario.model_json_schema()


def example_yaml() -> str:
    """The example scenario file (what ``cxasset init`` writes)."""
    return EXAMPLE
