"""Candidate CX drivers of a book and the design matrix the mechanism models are fitted on.

A *driver* is a numeric per-customer feature a company can move (onboarding days, CES, NPS,
training hours, the share of contacts on a channel, ...). Outcomes of the mechanisms (purchases,
spend, contacts, cost to serve, referrals, tenure) and bookkeeping columns are never drivers.
Text columns (segment, acquisition channel, plan) become *controls*: 0/1 dummies every mechanism
is adjusted for, so a driver's effect is an association adjusted for the other drivers and the
controls, not a raw correlation.

Missing values (a customer who never answered a survey, never contacted service, was never
onboarded) are filled with the driver's median and flagged by a 0/1 ``<driver>:missing``
control, so nobody is dropped and non-response cannot masquerade as a driver effect. Drivers
enter the models standardised (mean 0, standard deviation 1); effects are reported per unit of
the driver's own scale; a positive driver with a heavy right tail (skewness above 3, e.g. company
size) enters as its logarithm, so its effect is an elasticity (``Driver.log``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from cxasset.exceptions import ModelDataError

#: Feature columns that are outcomes of a mechanism, exposure or bookkeeping, never drivers.
NOT_DRIVERS = frozenset({
    "customer_id", "frequency", "recency", "T", "monetary_value", "exposure", "tenure",
    "frequency_holdout", "spend_holdout", "duration_holdout", "n_periods", "n_periods_holdout",
    "contacts", "contacts_per_period", "cost_to_serve_per_period", "referrals",
    "referrals_per_period", "active", "churned", "recurring_revenue", "subscriptions",
    "nps_responses", "acquisition_cost", "onboarded", "nps_mean", "alive_exposure",
})
#: Text columns never used as controls (derived from a driver).
NOT_CONTROLS = frozenset({"nps_class", "customer_id"})
#: Where a feature comes from: attributes fixed at acquisition vs events during the window.
_EVENT_SOURCES = (
    ("nps", "surveys"), ("csat", "surveys"), ("ces", "surveys and interactions"),
    ("survey_", "surveys"), ("resolved_rate", "interactions"), ("share_contacts_", "interactions"),
    ("engagement_per_period", "engagement"),
)
MAX_LEVELS = 30


@dataclass(frozen=True)
class Driver:
    """A candidate driver: its scale, how it was measured, and its realistic improvement."""

    name: str
    mean: float
    sd: float
    median: float
    q05: float
    q95: float
    missing_share: float
    source: str  # the book table it is measured from
    concurrent: bool  # measured during the outcome window (reverse causality possible)
    lower: float = -np.inf  # a change never moves the driver outside [lower, upper]
    upper: float = np.inf
    log: bool = False  # enters the models as log(x): its effect is an elasticity
    raw_sd: float = 0.0  # standard deviation on the driver's own scale
    cap_lo: float = -np.inf  # winsorised: the models see the value clipped to [cap_lo, cap_hi]
    cap_hi: float = np.inf

    @property
    def scale(self) -> str:
        return "per log unit (elasticity)" if self.log else "per unit"

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class Design:
    """Standardised drivers and 0/1 controls for every customer, in model-ready columns."""

    frame: pd.DataFrame  # customer_id + driver columns (z-scores) + controls + extra terms
    drivers: dict[str, Driver]
    controls: list[str]
    extra: dict[str, tuple[str, float]] = field(default_factory=dict)  # term -> (driver, cut)
    dropped: list[str] = field(default_factory=list)  # controls implied by others

    @property
    def terms(self) -> list[str]:
        """Model columns: the drivers (standardised), threshold terms, then the controls."""
        return [*self.drivers, *self.extra, *self.controls]

    def copy(self) -> Design:
        """A copy whose frame and term lists can be changed (e.g. threshold terms added)."""
        return Design(self.frame.copy(), dict(self.drivers), list(self.controls),
                      dict(self.extra), list(self.dropped))

    def raw(self, name: str, frame: pd.DataFrame | None = None) -> np.ndarray:
        """A driver back on its own scale (missing values at the median; a winsorised driver
        keeps its actual values in the column ``<name>:raw``)."""
        d = self.drivers[name]
        fr = self.frame if frame is None else frame
        if f"{name}:raw" in fr.columns:
            return fr[f"{name}:raw"].to_numpy(dtype=float)
        m = fr[name].to_numpy(dtype=float) * d.sd + d.mean
        return np.exp(m) if d.log else m

    def shifted(self, name: str, step: float, frame: pd.DataFrame | None = None
                ) -> pd.DataFrame:
        """The model columns (of ``frame``, default all customers) with ``name`` moved by
        ``step`` in its own unit (see :meth:`moved`)."""
        return self.moved(name, lambda x: x + step, frame)

    def moved(self, name: str, change: Callable[[np.ndarray], np.ndarray],
              frame: pd.DataFrame | None = None) -> pd.DataFrame:
        """The model columns (of ``frame``, default all customers) with the raw values ``x`` of
        ``name`` replaced by ``change(x)`` (kept within the driver's range: a non-negative driver
        stays >= 0, a share within [0, 1]) and its threshold terms recomputed; missing values stay
        missing (their flag is a control) and are not moved."""
        out = (self.frame if frame is None else frame).copy()
        d = self.drivers[name]
        move = np.ones(len(out), bool)
        miss = f"{name}:missing"
        if miss in out.columns:
            move &= out[miss].to_numpy() == 0
        z = out[name].to_numpy(dtype=float)
        x0 = self.raw(name, out)
        x = np.clip(change(x0), d.lower, d.upper)
        m = np.log(x) if d.log else np.clip(x, d.cap_lo, d.cap_hi)
        out[name] = np.where(move, (m - d.mean) / d.sd, z)
        if f"{name}:raw" in out.columns:
            out[f"{name}:raw"] = np.where(move, x, x0)
        x = self.raw(name, out)
        for term, (drv, cut) in self.extra.items():
            if drv == name:
                out[term] = np.where(move, (x > cut).astype(float), out[term].to_numpy())
        return out

    def add_threshold(self, name: str, cut: float) -> str:
        """Add a step term ``1{driver > cut}`` (missing values count as not above)."""
        term = f"{name}>{cut:g}"
        x = self.raw(name)
        miss = f"{name}:missing"
        above = x > cut
        if miss in self.frame.columns:
            above &= self.frame[miss].to_numpy() == 0
        self.frame[term] = above.astype(float)
        self.extra[term] = (name, cut)
        return term


def source_of(name: str) -> tuple[str, bool]:
    """The table a feature is measured from and whether it is measured during the window in
    which the outcomes happen (then the outcome may drive the feature, not only the reverse)."""
    for prefix, table in _EVENT_SOURCES:
        if name == prefix or name.startswith(prefix):
            return table, True
    if name == "onboarding_days":
        return "customers (onboarded_at, at the start of the relationship)", False
    return "customers (attributes)", False


def with_channel_shares(f: pd.DataFrame) -> pd.DataFrame:
    """Add ``share_contacts_<channel>``: each channel's share of a customer's contacts (empty
    without contacts), the channel-mix drivers."""
    per = [c for c in f.columns if c.startswith("contacts_per_period_")]
    if not per or "contacts_per_period" not in f.columns:
        return f
    total = f["contacts_per_period"].to_numpy(dtype=float)
    # shares sum to 1: the most used channel is the baseline a share moves away from
    per.remove(max(per, key=lambda c: float(np.nansum(f[c].to_numpy(dtype=float)))))
    out = f.copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        for c in per:
            share = f[c].to_numpy(dtype=float) / total
            out[f"share_contacts_{c.removeprefix('contacts_per_period_')}"] = np.where(
                total > 0, share, np.nan)
    return out.drop(columns=[c for c in f.columns if c.startswith("contacts_per_period_")])


def candidate_names(f: pd.DataFrame) -> list[str]:
    """Every numeric feature that can be a driver (not an outcome or bookkeeping)."""
    out = []
    for c in f.columns:
        if c in NOT_DRIVERS or c.endswith("_holdout") or c.startswith("contacts_per_period_"):
            continue
        col = f[c]
        if pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
            continue
        x = col.dropna().to_numpy(dtype=float)
        if len(x) >= 2 and np.nanstd(x) > 0:
            out.append(c)
    return out


def control_names(f: pd.DataFrame) -> list[str]:
    """Text columns with 2..MAX_LEVELS levels: segment, acquisition channel, plan, ..."""
    out = []
    for c in f.columns:
        if c in NOT_CONTROLS or pd.api.types.is_numeric_dtype(f[c]) \
                or pd.api.types.is_bool_dtype(f[c]):
            continue
        if 2 <= f[c].nunique(dropna=True) <= MAX_LEVELS:
            out.append(c)
    return out


def build_design(f: pd.DataFrame, drivers: Sequence[str], controls: Sequence[str] | None = None,
                 min_answered: int = 30, winsor: float | None = None) -> Design:
    """Standardise ``drivers`` of the feature frame ``f`` and encode the ``controls``.

    ``winsor`` (e.g. 0.01): drivers not on the log scale enter the models clipped to their
    ``winsor`` and ``1 - winsor`` quantiles, so a few extreme values (a handful of customers with
    very long onboarding, where the effect has long levelled off) cannot flatten a linear effect
    fitted to everybody else; their actual values are kept (``<name>:raw``) and moved exactly.

    Raises ModelDataError for an unknown or non-numeric driver, or one with too few answers to
    estimate anything (fewer than ``min_answered`` customers with a value, or no variance).
    """
    controls = control_names(f) if controls is None else list(controls)
    cols: dict[str, np.ndarray] = {"customer_id": f["customer_id"].to_numpy()}
    info: dict[str, Driver] = {}
    ctrl: list[str] = []
    for name in drivers:
        if name not in f.columns:
            raise ModelDataError(f"driver {name!r} is not a feature of this book; numeric "
                                 f"features are: {', '.join(candidate_names(f))}")
        if not pd.api.types.is_numeric_dtype(f[name]) or pd.api.types.is_bool_dtype(f[name]):
            raise ModelDataError(f"driver {name!r} is not numeric (dtype {f[name].dtype}); text "
                                 "columns are controls, not drivers")
        x = f[name].to_numpy(dtype=float)
        seen = np.isfinite(x)
        if seen.sum() < min_answered or np.std(x[seen]) == 0:
            raise ModelDataError(
                f"driver {name!r} has {int(seen.sum()):,} customers with a value of "
                f"{len(x):,} and standard deviation {np.std(x[seen]) if seen.any() else 0:.3g}: "
                f"too little to estimate an effect (need >= {min_answered} and some variance)")
        med = float(np.median(x[seen]))
        filled = np.where(seen, x, med)
        lo, hi = float(x[seen].min()), float(x[seen].max())
        log = lo > 0 and float(stats.skew(x[seen])) > 3  # heavy right tail: log scale
        cap = (-np.inf, np.inf)
        if winsor and not log:
            cap = tuple(float(v) for v in np.quantile(x[seen], [winsor, 1 - winsor]))
            if cap[0] < cap[1]:
                cols[f"{name}:raw"] = filled
            else:
                cap = (-np.inf, np.inf)
        model = np.log(filled) if log else np.clip(filled, *cap)
        mean, sd = float(model.mean()), float(model.std())
        table, concurrent = source_of(name)
        info[name] = Driver(name, mean, sd, med, float(np.quantile(x[seen], 0.05)),
                            float(np.quantile(x[seen], 0.95)), float(1 - seen.mean()), table,
                            concurrent, lo if log else (0.0 if lo >= 0 else -np.inf),
                            1.0 if lo >= 0 and hi <= 1 and not np.allclose(x[seen], 1) else np.inf,
                            log, float(filled.std()), cap[0], cap[1])
        filled = model
        cols[name] = (filled - mean) / sd
        if not seen.all():
            cols[f"{name}:missing"] = (~seen).astype(float)
            ctrl.append(f"{name}:missing")
    for name in controls:
        if name not in f.columns:
            raise ModelDataError(f"control {name!r} is not a feature; text features are: "
                                 f"{', '.join(control_names(f))}")
        v = f[name].astype("string").fillna("(missing)")
        for level in v.value_counts().index[1:]:  # the most common level is the baseline
            col = f"{name}={level}"
            cols[col] = (v == level).to_numpy(dtype=float)
            ctrl.append(col)
    frame = pd.DataFrame(cols)
    kept, dropped = independent(frame, [*info, *[c for c in ctrl if frame[c].std() > 0]])
    bad = [d for d in info if d not in kept]
    if bad:
        raise ModelDataError(f"driver(s) {bad} are a linear combination of other drivers or "
                             "controls (e.g. shares that add up to 1); drop them")
    keep = [c for c in kept if c not in info]
    raws = [f"{d}:raw" for d in info if f"{d}:raw" in frame.columns]
    return Design(frame[["customer_id", *info, *keep, *raws]], info, keep, dropped=dropped)


def independent(frame: pd.DataFrame, columns: list[str], tol: float = 1e-9
                ) -> tuple[list[str], list[str]]:
    """Keep columns in order while each adds something beyond the intercept and the columns
    kept before it (e.g. two identical missing-value flags keep the first)."""
    x = frame[columns].to_numpy(dtype=float)
    x = x - x.mean(axis=0)
    g = x.T @ x
    kept: list[int] = []
    for j in range(len(columns)):
        var = g[j, j]
        if var <= 0:
            continue
        if kept:
            k = np.array(kept)
            coef = np.linalg.lstsq(g[np.ix_(k, k)], g[k, j], rcond=None)[0]
            var = var - g[j, k] @ coef
        if var > tol * g[j, j]:
            kept.append(j)
    names = [columns[j] for j in kept]
    return names, [c for c in columns if c not in names]


def collinearity(design: Design) -> dict[str, float]:
    """Variance inflation factor of each driver given the other drivers and the controls
    (``1 / (1 - R^2)``); above 5 the driver's separate effect is poorly identified."""
    names = list(design.drivers)
    x = design.frame[[*names, *design.controls]].to_numpy(dtype=float)
    x = np.column_stack([np.ones(len(x)), x])
    xtx = x.T @ x
    try:
        inv = np.linalg.inv(xtx)
    except np.linalg.LinAlgError:
        inv = np.linalg.pinv(xtx)
    n = len(x)
    # for standardised columns, VIF_j = (X'X)^-1_jj * (n * var_j) with var_j = 1
    return {d: float(inv[i + 1, i + 1] * n * x[:, i + 1].var()) for i, d in enumerate(names)}
