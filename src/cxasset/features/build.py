"""The per-customer feature table as of a date: one ibis expression over the book's tables.

The expression runs in whichever engine holds the tables (DuckDB for a workspace; any ibis backend
for tables handed over directly). Feature names are canonical and documented in
``docs/features.md``; the later value map and levers refer to them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from cxasset.book.settings import BookSettings
from cxasset.exceptions import BookError
from cxasset.features import cx, rfm, subscriptions
from cxasset.features._time import date_day, day_number

#: Customer columns that are bookkeeping, not candidate drivers.
_CUSTOMER_BOOKKEEPING = ("acquired_at", "onboarded_at")


@dataclass(frozen=True)
class FeatureWindow:
    """Where features are cut: ``cutoff`` (inclusive) and, for backtests, the holdout end."""

    cutoff: dt.date
    holdout_end: dt.date | None
    period: str
    period_days: float

    @classmethod
    def resolve(
        cls,
        settings: BookSettings,
        as_of: dt.date | None = None,
        calibration_end: dt.date | None = None,
    ) -> FeatureWindow:
        as_of = as_of or settings.as_of
        if as_of is None:
            raise BookError("No as_of date: set as_of in book.yaml or pass as_of")
        if calibration_end is not None and calibration_end >= as_of:
            raise BookError(
                f"calibration_end ({calibration_end}) must be before as_of ({as_of})"
            )
        if calibration_end is None:
            return cls(as_of, None, settings.period, settings.period_days)
        return cls(calibration_end, as_of, settings.period, settings.period_days)


def customer_features(
    tables: Mapping[str, ir.Table],
    settings: BookSettings,
    as_of: dt.date | None = None,
    calibration_end: dt.date | None = None,
    customers: ir.Table | None = None,
) -> ir.Table:
    """Per-customer features as of a date, as an ibis expression.

    Parameters
    ----------
    tables : mapping of str to ibis Table
        The book's tables (``customers`` and ``transactions`` or ``subscriptions`` at least), all
        on one backend.
    settings : BookSettings
        Period unit, channel costs and default ``as_of``.
    as_of : date, optional
        Observation end (inclusive); default ``settings.as_of``.
    calibration_end : date, optional
        When given, every feature is computed as of this date (nothing later leaks in) and the
        holdout columns ``frequency_holdout``, ``spend_holdout``, ``duration_holdout`` count what
        happened after it up to ``as_of``.
    customers : ibis Table, optional
        A ``customer_id`` column: the features of only these customers (e.g. a random sample),
        every table cut to them before it is aggregated, so the engine's work shrinks with
        them. Their rows are the same as in the features of the whole book.

    Returns
    -------
    ibis Table
        One row per customer acquired on or before the cut-off, ordered by ``customer_id``.
    """
    w = FeatureWindow.resolve(settings, as_of, calibration_end)
    cut = date_day(w.cutoff)
    per = w.period_days
    # the survey metrics and contact channels of the whole book name the columns
    metrics = _distinct(tables["surveys"].metric.strip().lower()) if "surveys" in tables else []
    channels = _distinct(tables["interactions"].channel) if "interactions" in tables else []
    if customers is not None:
        tables = _only(tables, customers)
    customers = tables["customers"]
    c = customers.mutate(acq_day=day_number(customers.acquired_at))
    c = c.filter(c.acq_day <= cut)
    exposure = (cut - c.acq_day + 1) / per
    onboard = {}
    if "onboarded_at" in c.columns:
        ob = day_number(c.onboarded_at)
        known = ob.notnull() & (ob <= cut)
        onboard = {
            "onboarded": known,
            "onboarding_days": ibis.ifelse(known, (ob - c.acq_day).cast("float64"),
                                           ibis.null("float64")),
        }
    extras = [k for k in c.columns
              if k not in ("customer_id", "acq_day", *_CUSTOMER_BOOKKEEPING)]
    base = c.select("customer_id", *extras, exposure=exposure.cast("float64"),
                    tenure=((cut - c.acq_day) / per).cast("float64"), **onboard)

    parts: list[ir.Table] = []
    if "transactions" in tables:
        hold = date_day(w.holdout_end) if w.holdout_end else None
        parts.append(rfm.rfm(customers, tables["transactions"], cut, per, hold,
                             settings.transaction_grain))
    if "subscriptions" in tables:
        life = subscriptions.lifetimes(tables["subscriptions"], cut, per)
        parts.append(life.select("customer_id", "active", "churned", "recurring_revenue",
                                 "subscriptions", subscription_tenure=life.tenure))
    if "surveys" in tables:
        s = tables["surveys"]
        parts.append(cx.surveys(s.mutate(metric=s.metric.strip().lower()), cut, metrics))
    if "interactions" in tables:
        parts.append(cx.interactions(tables["interactions"], cut, channels,
                                     settings.channel_costs))
    if "referrals" in tables:
        parts.append(cx.referrals(tables["referrals"], cut))
    if "engagement" in tables:
        parts.append(cx.engagement(tables["engagement"], cut))

    f = base
    for p in parts:
        f = f.left_join(p, "customer_id").drop("customer_id_right")
    f = _derived(f, per)
    return f.order_by("customer_id")


def _derived(f: ir.Table, per: float) -> ir.Table:
    """Rates per period and combined scores from the raw aggregates."""
    cols = set(f.columns)
    new: dict[str, ir.Value] = {}
    drop: list[str] = []
    if "tenure" in cols and "subscription_tenure" in cols:
        new["tenure"] = f.subscription_tenure.fill_null(f.tenure)
        drop.append("subscription_tenure")
    if "contacts" in cols:
        new["contacts"] = f.contacts.fill_null(0)
        new["contacts_per_period"] = f.contacts.fill_null(0) / f.exposure
        new["cost_to_serve_per_period"] = f.service_cost.fill_null(0.0) / f.exposure
        for k in sorted(cols):
            if k.startswith("contacts_") and k != "contacts_per_period":
                new[f"contacts_per_period_{k.removeprefix('contacts_')}"] = (
                    f[k].fill_null(0) / f.exposure)
                drop.append(k)
        drop.append("service_cost")
    ces_parts = [(f[s], f[n]) for s, n in (("survey_ces_sum", "survey_ces_n"),
                                             ("effort_sum", "effort_n")) if s in cols]
    if ces_parts:
        total = sum((s.fill_null(0.0) for s, _ in ces_parts), ibis.literal(0.0))
        count = sum((n.fill_null(0) for _, n in ces_parts), ibis.literal(0))
        new["ces"] = ibis.ifelse(count > 0, total / count, ibis.null("float64"))
        drop += [k for k in ("survey_ces_sum", "survey_ces_n", "effort_sum", "effort_n")
                 if k in cols]
    if "referrals" in cols:
        new["referrals"] = f.referrals.fill_null(0)
        new["referrals_per_period"] = f.referrals.fill_null(0) / f.exposure
    if "engagement_events" in cols:
        new["engagement_per_period"] = f.engagement_events.fill_null(0) / f.exposure
        drop.append("engagement_events")
    if "nps_responses" in cols:
        new["nps_responses"] = f.nps_responses.fill_null(0)
    return f.mutate(**new).drop(*drop)


def _only(tables: Mapping[str, ir.Table], customers: ir.Table) -> dict[str, ir.Table]:
    """Every table cut to the rows of ``customers`` (referrals: those they made)."""
    ids = customers.select("customer_id")
    out = {}
    for name, t in tables.items():
        col = "referrer_id" if name == "referrals" else "customer_id"
        out[name] = t.semi_join(ids, t[col] == ids.customer_id) if col in t.columns else t
    return out


def customer_ids(tables: Mapping[str, ir.Table], settings: BookSettings,
                 as_of: dt.date | None = None, calibration_end: dt.date | None = None
                 ) -> ir.Table:
    """The ``customer_id`` of every row :func:`customer_features` has, in its order."""
    cut = date_day(FeatureWindow.resolve(settings, as_of, calibration_end).cutoff)
    c = tables["customers"]
    return c.filter(day_number(c.acquired_at) <= cut).select("customer_id").order_by(
        "customer_id")


def _distinct(col: ir.Column) -> list[str]:
    values = col.name("v").as_table().distinct().to_pyarrow().column("v").to_pylist()
    return sorted(str(v) for v in values if v is not None)
