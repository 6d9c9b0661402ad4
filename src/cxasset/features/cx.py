"""CX aggregates per customer as of a cut-off day: sentiment, service, advocacy, engagement.

Rates are per period of exposure, exposure being the time from acquisition to the cut-off
(inclusive of both days, so a customer acquired on the cut-off day has one day of exposure). Every
aggregate uses only events on or before the cut-off day.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import ibis
import ibis.expr.types as ir

from cxasset.features._time import day_number

NPS_CLASSES = ("detractor", "passive", "promoter")


def _upto(t: ir.Table, cut_day: int) -> ir.Table:
    return t.filter(day_number(t.occurred_at) <= cut_day)


def slug(value: str) -> str:
    """A label as part of a column name: ``Self Service`` -> ``self_service``."""
    return re.sub(r"[^0-9a-z]+", "_", str(value).strip().lower()).strip("_") or "blank"


def surveys(t: ir.Table, cut_day: int, metrics: list[str]) -> ir.Table:
    """``nps`` (latest), ``nps_mean``, ``nps_class``, ``csat``, ``survey_ces``, other metrics' means."""
    s = _upto(t, cut_day)
    aggs: dict[str, ir.Value] = {}
    for m in metrics:
        hit = s.metric == m
        score = ibis.ifelse(hit, s.score, ibis.null("float64"))
        if m == "nps":
            aggs["nps"] = s.score.argmax(s.occurred_at, where=hit)
            aggs["nps_mean"] = score.mean()
            aggs["nps_responses"] = hit.sum().cast("int64")
        elif m == "csat":
            aggs["csat"] = score.mean()
        elif m == "ces":
            aggs["survey_ces_sum"] = score.sum()
            aggs["survey_ces_n"] = hit.sum().cast("int64")
        else:
            aggs[f"survey_{slug(m)}"] = score.mean()
    g = s.group_by("customer_id").aggregate(**aggs)
    if "nps" in aggs:
        g = g.mutate(nps_class=nps_class(g.nps))
    return g


def nps_class(score: ir.NumericValue) -> ir.StringValue:
    """Promoter 9-10, passive 7-8, detractor 0-6 (NULL without an answer)."""
    return ibis.cases((score >= 9, "promoter"), (score >= 7, "passive"), (score >= 0, "detractor"),
                      else_=ibis.null("string"))


def interactions(
    t: ir.Table, cut_day: int, channels: list[str], channel_costs: Mapping[str, float]
) -> ir.Table:
    """Contacts (in total and by channel), cost to serve, and effort sums per customer."""
    s = _upto(t, cut_day)
    unit = ibis.cases(*((s.channel == ch, float(c)) for ch, c in channel_costs.items()),
                      else_=ibis.null("float64")) if channel_costs else ibis.null("float64")
    cost = s.cost.fill_null(unit) if "cost" in s.columns else unit
    aggs: dict[str, ir.Value] = {
        "contacts": s.count(),
        "service_cost": cost.fill_null(0.0).sum(),
    }
    for ch in channels:
        aggs[f"contacts_{slug(ch)}"] = (s.channel == ch).sum().cast("int64")
    if "effort" in s.columns:
        aggs["effort_sum"] = s.effort.sum()
        aggs["effort_n"] = s.effort.count()
    if "resolved" in s.columns:
        aggs["resolved_rate"] = s.resolved.cast("float64").mean()
    return s.group_by("customer_id").aggregate(**aggs)


def referrals(t: ir.Table, cut_day: int) -> ir.Table:
    s = _upto(t, cut_day)
    return s.group_by(customer_id=s.referrer_id).aggregate(referrals=s.count())


def engagement(t: ir.Table, cut_day: int) -> ir.Table:
    s = _upto(t, cut_day)
    n = s["count"].fill_null(1) if "count" in s.columns else ibis.literal(1)
    return s.group_by("customer_id").aggregate(engagement_events=n.sum().cast("int64"))
