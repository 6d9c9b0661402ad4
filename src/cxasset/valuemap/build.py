"""The Customer Asset Value Map: every declared CX variable linked, through a mechanism, to a
financial variable and to customer equity, with the effect and its money translation.

``cxasset map --workspace WS --spec map.yaml`` runs :func:`value_map`; the result is saved in the
workspace (artifact ``valuemap``) and can be drawn (:mod:`cxasset.valuemap.graph`).

Observational links are associations adjusted for the other drivers and the controls, not proven
causes; every number says which evidence it stands on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from cxasset.exceptions import ModelDataError
from cxasset.money import money
from cxasset.valuemap.estimate import Estimate, Evidence, by_timing, estimate
from cxasset.valuemap.mechanisms import MECHANISMS
from cxasset.valuemap.spec import SpecError, ValueMapSpec

Z975 = 1.959963984540054
MECHANISM_NEEDS = {"cost_to_serve": "an interactions table", "referrals": "a referrals table "
                   "and a referral acquisition channel or assumptions.referred_customer_value",
                   "spend": "transactions", "purchase_rate": "transactions",
                   "dropout": "transactions", "retention": "a subscriptions table"}


def quantiles(draws: np.ndarray) -> dict[str, float]:
    """``estimate`` (the first draw: the point estimate), ``p5, p50, p95, mean`` of draws."""
    p5, p50, p95 = np.percentile(draws, [5, 50, 95])
    return {"estimate": float(draws[0]), "p5": float(p5), "p50": float(p50),
            "p95": float(p95), "mean": float(np.mean(draws))}


@dataclass
class LinkResult:
    """One driver -> mechanism link: effect with 95% interval and p-value, money with 90%."""

    driver: str
    label: str
    mechanism: str
    step: float  # signed, in the driver's unit: the realistic improvement
    unit: str
    effect: float
    std_err: float
    p_value: float
    impact: dict[str, float]  # change in customer equity for the step
    impact_per_unit: dict[str, float]
    impact_per_sd: dict[str, float]
    evidence: str
    extra: dict[str, Any] = field(default_factory=dict)
    draws: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)  # of ``impact``

    @property
    def outcome(self) -> str:
        return MECHANISMS[self.mechanism][0]

    def to_dict(self) -> dict[str, Any]:
        lo, hi = self.effect - Z975 * self.std_err, self.effect + Z975 * self.std_err
        return {"driver": self.driver, "label": self.label, "mechanism": self.mechanism,
                "outcome": self.outcome, "unit": self.unit, "step": self.step,
                "effect": {"estimate": self.effect, "std_err": self.std_err,
                           "ci95": [lo, hi], "p_value": self.p_value,
                           "scale": MECHANISMS[self.mechanism][1]},
                "impact": self.impact, "impact_per_unit": self.impact_per_unit,
                "impact_per_sd": self.impact_per_sd, "evidence": self.evidence, **self.extra}


def effect_with_evidence(est: Estimate, driver: str, mechanism: str,
                         evidence: Evidence | None = None) -> tuple[float, float, float, str]:
    """A link's effect per unit, its standard error and p-value, and the evidence they stand on:
    the fitted one, or combined with an experiment's (precision-weighted), or the experiment's."""
    b, se, p = est.fits[mechanism].effect(driver, est.design)
    if evidence is None:
        return b, se, p, "observational"
    if evidence.use == "override":
        b, se, kind = evidence.effect, evidence.std_err, "experiment"
    else:
        w_o, w_x = 1 / se**2, 1 / evidence.std_err**2
        b = (w_o * b + w_x * evidence.effect) / (w_o + w_x)
        se = float(np.sqrt(1 / (w_o + w_x)))
        kind = "observational+experiment"
    return b, se, float(2 * stats.norm.sf(abs(b) / se)), kind


def assess(est: Estimate, driver: str, mechanism: str, step: float, *, label: str = "",
           unit: str = "", evidence: Evidence | None = None, draws: int = 400, seed: int = 0,
           rows: np.ndarray | None = None, per_unit: bool = True) -> LinkResult:
    """Effect and money of one link; ``step`` signed in the driver's unit (``per_unit=False``
    skips the money of one unit, which lever ranking does not show)."""
    if not est.supports(mechanism):
        raise ModelDataError(f"the book cannot support mechanism {mechanism!r} (it needs "
                             f"{MECHANISM_NEEDS[mechanism]}); supported: "
                             f"{', '.join(est.mechanisms)}")
    b, se, p, kind = effect_with_evidence(est, driver, mechanism, evidence)
    sd = est.design.drivers[driver].raw_sd
    kw = {"draws": draws, "seed": seed, "rows": rows, "evidence": evidence}
    imp = est.impact(driver, mechanism, step, **kw)
    per_sd = est.impact(driver, mechanism, sd, **kw)
    unit_q = quantiles(est.impact(driver, mechanism, 1.0, **kw)) if per_unit else {}
    return LinkResult(driver, label or driver, mechanism, step, unit, b, se, p, quantiles(imp),
                      unit_q, quantiles(per_sd), kind,
                      {"driver_scale": est.design.drivers[driver].scale}, imp)


@dataclass
class ValueMap:
    """The estimated map: links, the base's customer equity, and how it was estimated."""

    links: list[LinkResult]
    equity: float
    currency: str
    settings: dict[str, Any]
    notes: list[str]
    referred_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"customer_equity": self.equity, "currency": self.currency,
                "referred_value": self.referred_value,
                "settings": self.settings, "links": [k.to_dict() for k in self.links],
                "translation": translation(self.links, self.currency, self.settings),
                "notes": self.notes,
                "wording": "observational links are associations adjusted for the other "
                           "drivers and the controls, not proven causes"}


#: CX metric -> (what it measures, the mechanisms that translate it, how to say it).
TRANSLATION = {
    "csat": ("satisfaction with an interaction", ("dropout", "retention"), "retention"),
    "nps": ("willingness to recommend", ("referrals", "purchase_rate"), "referrals and growth"),
    "ces": ("effort to get things done", ("cost_to_serve",), "service"),
    "onboarding_days": ("time to value", ("dropout", "retention", "purchase_rate"),
                        "retention and growth"),
}


def translation(links: list[LinkResult], currency: str, settings: dict[str, Any]
                ) -> list[dict[str, Any]]:
    """The seed's translation table with the book's own figures: each CX metric, what it
    measures, and what one unit of it is worth through its mechanisms ("each point of CES costs
    $X in service over the horizon")."""
    span = f"{settings['horizon']} {settings['period']}s"
    out = []
    for metric, (measures, mechs, words) in TRANSLATION.items():
        ks = [k for k in links if k.driver == metric and k.mechanism in mechs
              and k.impact_per_unit]
        if not ks:
            continue
        est = sum(k.impact_per_unit["estimate"] for k in ks)
        lo = sum(k.impact_per_unit["p5"] for k in ks)
        hi = sum(k.impact_per_unit["p95"] for k in ks)
        verb = "is worth" if est >= 0 else "costs"
        a, b = sorted((abs(lo), abs(hi))) if est < 0 and hi <= 0 else (lo, hi)
        out.append({"metric": metric, "measures": measures,
                    "mechanisms": [k.mechanism for k in ks], "per_unit": est,
                    "p5": lo, "p95": hi,
                    "translation": f"each unit more of {metric} {verb} "
                                   f"{money(abs(est), currency)} in {words} over the next "
                                   f"{span} (90%: {money(a, currency)} to {money(b, currency)};"
                                   f" {', '.join(k.evidence for k in ks[:1])})"})
    return out


def starter_spec(ws: Any) -> ValueMapSpec:
    """A starter spec from the book's features (``cxasset map init``): its CX metrics, onboarding
    and channel shares, each with a realistic step from its spread. Customer attributes such as
    company size stay candidates for ``cxasset levers``, not declared CX variables."""
    from cxasset.features import feature_frame
    from cxasset.valuemap.drivers import (
        build_design,
        candidate_names,
        source_of,
        with_channel_shares,
    )
    from cxasset.valuemap.spec import KNOWN, starter

    f = with_channel_shares(feature_frame(ws))
    names = [n for n in candidate_names(f) if n in KNOWN or source_of(n)[1]]
    d = build_design(f, names)
    return starter(names, {k: v.sd for k, v in d.drivers.items()})


def value_map(ws: Any, spec: ValueMapSpec, *, draws: int = 400, seed: int = 0,
              max_fit: int = 200_000, max_score: int = 20_000,
              progress: Callable[[str], None] | None = None) -> ValueMap:
    """Estimate every link of ``spec`` on the workspace's book."""
    if not spec.cx_variables:
        raise SpecError("the spec declares no cx_variables; write a starter with "
                        "`cxasset map init --workspace WS`")
    est = estimate(ws, [v.feature for v in spec.cx_variables], spec.controls,
                   referred_value=spec.assumptions.referred_customer_value, seed=seed,
                   max_fit=max_fit, max_score=max_score, progress=progress)
    of, note = by_timing(est, spec.controls, progress=progress)
    links = []
    for var, mech, link in spec.declared_links(est.mechanisms):
        ev = None
        if link is not None and link.experiment is not None:
            ev = Evidence(link.experiment.effect, link.experiment.std_err, link.experiment.use)
        step = var.step if var.better == "higher" else -var.step
        links.append(assess(of[var.feature], var.feature, mech, step, label=var.name,
                            unit=var.unit, evidence=ev, draws=draws, seed=seed))
    result = ValueMap(links, est.equity, est.settings.currency, est.settings.to_dict(),
                      [*est.notes, *([note] if note else [])], est.referred_value)
    ws.save_artifact("valuemap", result.to_dict())
    return result
