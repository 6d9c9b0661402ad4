"""Growth levers: every candidate driver, declared in the value map or not, ranked by the change in
customer equity of a realistic improvement, with the false discovery rate controlled.

``cxasset levers --workspace WS [--spec map.yaml]`` runs :func:`rank_levers`:

1. every mechanism is fitted on every candidate driver at once (adjusted associations);
2. drivers with a significant effect are checked for a threshold (:mod:`.thresholds`); a found
   threshold becomes a step term of the final models, so money follows the jump;
3. each (driver, mechanism) gets its effect and p-value, from mechanisms refitted without the
   drivers measured later for a driver fixed at the start of the relationship
   (:func:`~cxasset.valuemap.estimate.by_timing`);
4. false discovery rate control in two stages (:func:`hierarchical_q`): drivers first, then
   the mechanisms of the selected drivers; a pair is *significant* when ``q <= fdr``;
5. significant pairs are re-checked (:mod:`.robustness`, started here: its second estimator
   runs in worker processes meanwhile) and called *robust* or *fragile*;
6. each pair gets the change in customer equity of a realistic step (declared in the spec;
   otherwise half a standard deviation, rounded, in the direction that adds value) and of one
   standard deviation, with draws from the coefficients' uncertainty;
7. collinear drivers (variance inflation above 5) and drivers measured during the outcome window
   (reverse causality possible) are flagged; top levers per segment; undeclared levers listed.

Thresholds are checked for at most ``max_checks`` significant drivers: those fixed at the start
of the relationship (onboarding, attributes) first, then by significance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from cxasset.levers.robustness import Checks
from cxasset.levers.thresholds import Threshold, bin_edges, binned_frame, check
from cxasset.models._base import on_one_blas_thread
from cxasset.valuemap.build import LinkResult, assess, effect_with_evidence, quantiles
from cxasset.valuemap.drivers import candidate_names, collinearity
from cxasset.valuemap.estimate import Estimate, Evidence, by_timing, estimate
from cxasset.valuemap.spec import ValueMapSpec

VIF_LIMIT = 5.0
MIN_THRESHOLD_ROWS = 5_000
MIN_ROBUSTNESS_ROWS = 4_000
Progress = Callable[[str], None]


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """q-values of Benjamini & Hochberg (1995) (NaN p-values stay NaN and are not counted)."""
    p = np.asarray(p, dtype=float)
    q = np.full(len(p), np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if not m:
        return q
    order = np.argsort(p[ok])
    ranked = p[ok][order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    vals = np.empty(m)
    vals[order] = np.minimum(ranked, 1.0)
    q[ok] = vals
    return q


def simes(p: np.ndarray) -> float:
    """Simes' combined p-value of a family (valid under independence and positive dependence)."""
    p = np.sort(np.asarray(p, dtype=float)[np.isfinite(p)])
    if not len(p):
        return float("nan")
    return float(min(1.0, np.min(p * len(p) / np.arange(1, len(p) + 1))))


def hierarchical_q(drivers: list[str], p: np.ndarray, fdr: float
                   ) -> tuple[np.ndarray, dict[str, float]]:
    """Two-stage FDR control (Benjamini & Bogomolov 2014): drivers are tested first (Simes'
    combination of their mechanisms' p-values, BH across drivers); within each of the R drivers
    selected at level ``fdr`` (of M), the mechanisms' BH q-values are inflated by ``M / R``, so a
    (driver, mechanism) pair is significant when its q-value is ``<= fdr``. A driver with no
    effect is flagged with probability about the FDR level, however many mechanisms it is tested
    through. Pairs of unselected drivers get a q-value above ``fdr`` (at least their driver's).
    Returns the pairs' q-values and each driver's q-value."""
    p = np.asarray(p, dtype=float)
    names = list(dict.fromkeys(drivers))
    fam = {d: np.array([i for i, x in enumerate(drivers) if x == d]) for d in names}
    qd = benjamini_hochberg(np.array([simes(p[fam[d]]) for d in names]))
    selected = {d for d, q in zip(names, qd, strict=True) if q <= fdr}
    inflate = len(names) / max(len(selected), 1)
    q = np.full(len(p), np.nan)
    for d, qdi in zip(names, qd, strict=True):
        within = np.minimum(benjamini_hochberg(p[fam[d]]) * inflate, 1.0)
        q[fam[d]] = within if d in selected else np.maximum(within, qdi)
    return q, {d: float(v) for d, v in zip(names, qd, strict=True)}


def nice_step(sd: float) -> float:
    """Half a standard deviation to two significant digits."""
    return float(f"{0.5 * sd:.2g}") if sd > 0 else 1.0


@dataclass
class LeverReport:
    """The ranked levers and how they were found."""

    levers: list[dict[str, Any]]  # one per (driver, mechanism), ranked by impact
    drivers: list[dict[str, Any]]  # one per driver: all mechanisms together
    segments: dict[str, list[dict[str, Any]]]
    undeclared: list[str]
    thresholds: dict[str, dict[str, Any]]
    fdr: float
    equity: float
    currency: str
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"levers": self.levers, "drivers": self.drivers, "segments": self.segments,
                "undeclared_levers": self.undeclared, "thresholds": self.thresholds,
                "fdr": self.fdr, "customer_equity": self.equity, "currency": self.currency,
                "notes": self.notes,
                "method": f"false discovery rate {self.fdr:.0%}, two-stage: Benjamini-Hochberg "
                          "across drivers (Simes over each driver's mechanisms), then across the "
                          "mechanisms of the selected drivers (Benjamini-Bogomolov), "
                          f"{len(self.levers)} driver-mechanism pairs; effects are associations "
                          "adjusted for the other drivers and the controls"}


@on_one_blas_thread
def rank_levers(ws: Any, spec: ValueMapSpec | None = None, *, draws: int = 400, seed: int = 0,
                max_fit: int = 200_000, max_score: int = 20_000, robustness: bool = True,
                thresholds: bool = True, threshold_rows: int = 40_000, max_checks: int = 3,
                progress: Progress | None = None) -> LeverReport:
    """Rank every candidate driver of the workspace's book (see the module docstring)."""
    say = progress or (lambda _m: None)
    spec = spec or ValueMapSpec()
    declared = {v.feature: v for v in spec.cx_variables}
    est = estimate(ws, None, spec.controls, referred_value=spec.assumptions.referred_customer_value,
                   seed=seed, max_fit=max_fit, max_score=max_score, progress=progress)
    missing = [d for d in declared if d not in est.design.drivers]
    if missing:
        names = candidate_names(est.features)
        est = estimate(ws, [*names, *[d for d in missing if d not in names]], spec.controls,
                       referred_value=spec.assumptions.referred_customer_value, seed=seed,
                       max_fit=max_fit, max_score=max_score, features=est.features,
                       customers=est.customers)
    drivers = list(est.design.drivers)
    pairs = [(d, m) for d in drivers for m in est.mechanisms]
    p0 = np.array([est.fits[m].effect(d, est.design)[2] for d, m in pairs])
    q0, _ = hierarchical_q([d for d, _ in pairs], p0, spec.fdr)
    found: dict[str, Threshold] = {}
    notes: list[str] = []
    if thresholds and len(est.fit_rows) < MIN_THRESHOLD_ROWS:
        notes.append(f"no threshold checks: they need at least {MIN_THRESHOLD_ROWS:,} customers "
                     f"(10 bins of every driver), the book has {len(est.fit_rows):,}")
    elif thresholds:
        best_q: dict[str, float] = {}
        for (d, _), qi in zip(pairs, q0, strict=True):
            if qi <= spec.fdr:
                best_q[d] = min(best_q.get(d, 1.0), qi)
        # drivers fixed at the start of the relationship first, then the most significant
        cands = sorted(best_q, key=lambda d: (est.design.drivers[d].concurrent, best_q[d]))
        for d in cands[:max_checks]:
            x = est.design.raw(d)
            if len(np.unique(x)) < 6:
                continue
            say(f"checking {d} for a threshold")
            t = _threshold(est, d, threshold_rows, seed)
            if t is not None:
                found[d] = t
        if found:
            say(f"refitting with threshold terms for {', '.join(found)}")
            est = estimate(ws, drivers, spec.controls,
                           referred_value=spec.assumptions.referred_customer_value, seed=seed,
                           max_fit=max_fit, max_score=max_score, features=est.features,
                           customers=est.customers,
                           thresholds={d: t.cut for d, t in found.items() if t.cut is not None},
                           start=est, progress=progress)

    of, note = by_timing(est, spec.controls, {d: t.cut for d, t in found.items()
                                              if t.cut is not None}, progress=progress)
    notes += [note] if note else []
    # significance first (it needs no money), so the re-checks run while money is valued
    evidence: dict[tuple[str, str], Evidence | None] = {}
    for k in spec.links or []:
        if k.experiment is not None:
            evidence[(spec.variable(k.driver).feature, k.mechanism)] = Evidence(
                k.experiment.effect, k.experiment.std_err, k.experiment.use)
    pairs = [(d, m) for d in drivers for m in of[d].mechanisms]
    tested = {}
    for d, m in pairs:
        ev = evidence.get((d, m))
        b, _se, p, _kind = effect_with_evidence(of[d], d, m, ev)
        tested[(d, m)] = (b, _joint_p(of[d], d, m) if ev is None else p)
    q, q_driver = hierarchical_q([d for d, _ in pairs],
                                 np.array([tested[k][1] for k in pairs]), spec.fdr)
    sig = [k for k, qi in zip(pairs, q, strict=True) if qi <= spec.fdr]
    started = None
    if robustness and sig and len(est.fit_rows) < MIN_ROBUSTNESS_ROWS:
        notes.append(f"no robustness re-checks: they need at least {MIN_ROBUSTNESS_ROWS:,} "
                     f"customers (two halves refitted), the book has {len(est.fit_rows):,}; "
                     "significant levers show robust = null")
    elif robustness and sig:
        started = Checks(est, [(d, m, tested[(d, m)][0]) for d, m in sig], seed=seed)

    say("valuing every driver and mechanism")
    results: list[LinkResult] = []
    for d in drivers:
        var = declared.get(d)
        e = of[d]
        sd = e.design.drivers[d].raw_sd
        if var is not None:
            step = var.step if var.better == "higher" else -var.step
        else:
            trial = sum(e.impact(d, m, nice_step(sd), draws=1)[0] for m in e.mechanisms)
            step = nice_step(sd) * (1 if trial >= 0 else -1)
        for m in e.mechanisms:
            r = assess(e, d, m, step, label=var.name if var else d,
                       unit=var.unit if var else "", evidence=evidence.get((d, m)),
                       draws=draws, seed=seed, per_unit=False)
            r.p_value = tested[(d, m)][1]
            results.append(r)
    vif = collinearity(est.design)
    checks = {}
    if started is not None:
        say(f"re-checking {len(sig)} significant levers (placebo, halves, second estimator)")
        checks = started.result()
    entries = []
    for r, qi in zip(results, q, strict=True):
        drv = est.design.drivers[r.driver]
        t = found.get(r.driver)
        rob = checks.get((r.driver, r.mechanism))
        significant = bool(qi <= spec.fdr)
        entries.append({
            "driver": r.driver, "label": r.label, "mechanism": r.mechanism,
            "outcome": r.outcome, "unit": r.unit, "step": r.step,
            "direction": "higher" if r.step > 0 else "lower",
            "impact": _q(r.impact), "impact_per_sd": _q(r.impact_per_sd),
            "effect": r.to_dict()["effect"], "p_value": r.p_value, "q_value": float(qi),
            "q_driver": q_driver[r.driver],
            "significant": significant,
            "robust": (rob.robust if rob is not None else None) if significant else None,
            "robustness": rob.to_dict() if rob is not None else None,
            "evidence": r.evidence,
            "threshold": t.cut if t is not None else None,
            "declared": r.driver in declared,
            "vif": vif[r.driver], "collinear": vif[r.driver] > VIF_LIMIT,
            "reverse_causality": drv.concurrent,
            "measured_from": drv.source,
        })
    entries.sort(key=lambda e: -e["impact"]["mean"])
    by_driver = _by_driver(drivers, results, entries)
    segments = _segments(est, [e for e in entries if e["significant"]], draws, seed, of)
    undeclared = sorted({e["driver"] for e in entries if e["significant"] and not e["declared"]
                         and e["impact"]["mean"] > 0})
    notes = [*est.notes, *notes]
    if any(e["collinear"] for e in entries):
        notes.append("collinear drivers (VIF > 5): their separate effects are poorly "
                     "identified; read them together")
    report = LeverReport(entries, by_driver, segments, undeclared,
                         {d: t.to_dict() for d, t in found.items()}, spec.fdr, est.equity,
                         est.settings.currency, notes)
    ws.save_artifact("levers", report.to_dict())
    return report


def _q(d: dict[str, float]) -> dict[str, float]:
    return {k: d[k] for k in ("p5", "p50", "p95", "mean", "estimate")}


def _joint_p(est: Estimate, driver: str, mechanism: str) -> float:
    """Wald test of the driver's linear and threshold terms together."""
    fit = est.fits[mechanism]
    terms = [driver, *[t for t, (d, _) in est.design.extra.items() if d == driver]]
    idx = [fit.terms.index(t) for t in terms]
    b, V = fit.coef[idx], fit.cov[np.ix_(idx, idx)]
    stat = float(b @ np.linalg.pinv(V) @ b)
    return float(stats.chi2.sf(stat, len(idx)))


def _threshold(est: Estimate, driver: str, max_rows: int, seed: int) -> Threshold | None:
    """The binned check in every mechanism; the most significant threshold found, if any."""
    x = est.design.raw(driver)
    miss = est.design.frame.get(f"{driver}:missing")
    seen = np.ones(len(x), bool) if miss is None else miss.to_numpy() == 0
    edges = bin_edges(x[seen], bins=10)
    if len(edges) < 3:
        return None
    frame, names = binned_frame(est.design, driver, edges)
    terms = [t for t in est.design.terms if t != driver] + names
    rng = np.random.default_rng(seed + 2)
    rows = np.sort(rng.choice(est.fit_rows, size=min(len(est.fit_rows), max_rows),
                              replace=False))
    fits = est.refit(rows, frame, terms)
    found = [check(fit, est.design, driver, names, edges) for fit in fits.values()]
    best = min(found, key=lambda t: t.p_value if np.isfinite(t.p_value) else 1.0)
    return best if best.cut is not None else None


def _by_driver(drivers: list[str], results: list[LinkResult], entries: list[dict[str, Any]]
               ) -> list[dict[str, Any]]:
    """One entry per driver: its mechanisms' money draws added up."""
    out = []
    for d in drivers:
        rs = [r for r in results if r.driver == d]
        total = sum(r.draws for r in rs)
        es = [e for e in entries if e["driver"] == d]
        out.append({"driver": d, "label": rs[0].label, "step": rs[0].step,
                    "impact": _q(quantiles(np.asarray(total))),
                    "significant": any(e["significant"] for e in es),
                    "robust": any(e["robust"] for e in es if e["robust"] is not None),
                    "mechanisms": [e["mechanism"] for e in es if e["significant"]]})
    out.sort(key=lambda e: -e["impact"]["mean"])
    return out


def _segments(est: Estimate, sig: list[dict[str, Any]], draws: int, seed: int,
              of: dict[str, Estimate] | None = None, top: int = 3
              ) -> dict[str, list[dict[str, Any]]]:
    """Top significant levers by their change in each segment's equity (same coefficients;
    ``of``: the estimate each driver is valued on, default ``est``)."""
    if "segment" not in est.features.columns or not sig:
        return {}
    of = of or {}
    out = {}
    segs = {}
    for e in sig:
        x = of.get(e["driver"], est)
        if id(x) not in segs:
            segs[id(x)] = x.features["segment"].astype("string").fillna("(missing)").to_numpy()[
                x.scored]
    for level in sorted({v for s in segs.values() for v in s}):
        rows = []
        for e in sig:
            x = of.get(e["driver"], est)
            imp = x.impact(e["driver"], e["mechanism"], e["step"], draws=draws, seed=seed,
                           rows=segs[id(x)] == level)
            rows.append({"driver": e["driver"], "mechanism": e["mechanism"],
                         "step": e["step"], "impact": _q(quantiles(imp))})
        rows.sort(key=lambda r: -r["impact"]["mean"])
        out[str(level)] = rows[:top]
    return out
