"""Scenario simulation: what a CX investment returns, month by month, with intervals.

:func:`prepare` fits the value map's mechanisms twice (on the drivers measured before the
outcomes, and on every driver; see :class:`Planner`), with the thresholds ``cxasset levers``
found, tabulates each scored customer's forward-only future (:mod:`cxasset.scenarios.tables`),
forecasts acquisitions (:mod:`cxasset.scenarios.acquisition`) and tabulates template new
customers.
:meth:`Planner.simulate` then runs a scenario as a Monte Carlo, cheaply enough for a web planner:

1. each initiative's changes move its target customers' drivers (in order: a later change sees
   the earlier ones), giving per customer the change ``dz`` of every model term; customers with
   the same changes (rounded to 1e-4 standard deviations) form a group, so the work per draw is
   per group, not per customer;
2. every draw takes the mechanisms' coefficients from their fitted covariance (common to all
   initiatives: the draws are *common random numbers*), the effect uncertainty of each change
   (``uncertainty_sd``, scaling the change's effect proportionally) and a path of acquisitions;
3. each mechanism's log scale moves by ``delta = ramp(month) * b' dz``; the groups' tables at
   that ``delta`` give transactions, revenue, customers alive, cost to serve and referrals per
   month. Mechanisms combine additively in their changes (the effect of purchase rate and dropout
   on transactions add up; spend, contacts and referrals multiply what they act on).

New customers acquired in month ``m`` get the effect at the ramp level of month ``m`` for life,
and buy once at acquisition (subscriptions: pay once) before their first repeat. A referral is
worth the value of a referred customer (``Estimate.referred_value``). Money is undiscounted in
totals; ``customer_equity`` (margin minus cost to serve plus referral value over the horizon) and
``npv`` are discounted monthly at ``(1 + annual rate) ** (m / 12)``, flows at the end of month
``m``. Intervals carry parameter, effect and acquisition uncertainty, and the sampling error of
valuing a random sample of the customers (``max_score``) as the whole base; the baseline curves
are held at the plain models' estimates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from cxasset.scenarios.result import ScenarioResult
from cxasset.scenarios.spec import Scenario, SpecError, check_scenario, target_mask
from cxasset.scenarios.tables import (
    ZERO,
    Tables,
    cohort_totals,
    customer_tables,
    interpolate,
    monthly_totals,
    plain_models,
)

Progress = Callable[[str], None]
#: Tail share of each driver clipped in the planner's models (see ``build_design``).
WINSOR = 0.01


@dataclass
class _Moves:
    """The changes of a scenario owned by one :class:`Part`, on some customers: per change its
    terms, its ``dz`` per group, its ramp per month and its position among all the scenario's
    changes (for its effect multiplier)."""

    inverse: np.ndarray  # customer -> group
    groups: int
    terms: list[list[str]]
    dz: list[np.ndarray]  # (groups, len(terms)) per change
    ramps: list[np.ndarray]  # (months,) per change
    change_ids: list[int]
    scale_sd: list[float]  # sd of the effect multiplier of each change

    @property
    def since(self) -> list[np.ndarray]:
        """Each change's ramp averaged from today to the end of every month: the level at
        which existing customers' state is read (a ramp has memory)."""
        return [np.cumsum(r) / np.arange(1, len(r) + 1) for r in self.ramps]


@dataclass
class Part:
    """One family of fitted mechanisms, the drivers whose changes it values, and its tables."""

    est: Any
    base: Tables
    new: Tables | None
    owns: list[str]
    label: str


@dataclass
class Planner:
    """Everything a scenario needs, prepared once (see :func:`prepare`).

    ``parts``: the mechanisms fitted on the drivers known before the outcomes (attributes such as
    onboarding time or training), which value changes to those drivers; and the mechanisms fitted
    on every driver, which value changes to drivers measured while the outcomes happen (surveys,
    engagement, contacts). Adjusting an attribute's effect for survey answers would condition on
    what the attribute causes (only customers still alive answer), which biases it (see
    ``docs/scenarios.md``).
    """

    parts: list[Part]
    acquisition: Any
    months: int
    notes: list[str] = field(default_factory=list)
    _coefs: dict[Any, Any] = field(default_factory=dict, repr=False)

    @property
    def est(self) -> Any:
        return self.parts[-1].est

    @property
    def base(self) -> Tables:
        return self.parts[0].base

    @property
    def new(self) -> Tables | None:
        return self.parts[0].new

    @property
    def scale(self) -> float:
        return len(self.est.features) / len(self.base.rows)

    @property
    def drivers(self) -> list[str]:
        return list(self.est.design.drivers)

    def owner(self, driver: str) -> int:
        return next(i for i, p in enumerate(self.parts) if driver in p.owns)

    def check(self, s: Scenario) -> None:
        """SpecError for a scenario this book cannot run (drivers, targets, horizon)."""
        check_scenario(s, self.est.features, self.drivers)
        if s.horizon_months > self.months:
            raise SpecError(f"scenario {s.name!r}: horizon_months {s.horizon_months} is beyond "
                            f"the {self.months} months prepared; prepare with months >= "
                            f"{s.horizon_months}")

    def coefficients(self, part: int, draws: int, seed: int
                     ) -> dict[str, tuple[list[str], np.ndarray]]:
        """Draws of every mechanism's coefficients on every term of a part, the same for every
        scenario and initiative run with this ``seed`` (common random numbers); the first draw
        is the point estimate."""
        key = (part, draws, seed)
        if key not in self._coefs:
            rng = np.random.default_rng([seed, 1, part])
            est = self.parts[part].est
            terms = est.design.terms
            self._coefs[key] = {m: (terms, est.coefficient_draws(m, terms, draws, rng))
                                for m in est.fits}
        return self._coefs[key]

    # ------------------------------------------------------------------ moves
    def _targets(self, s: Scenario, tables: Tables, new: bool) -> np.ndarray:
        """(customers, initiatives): who each initiative reaches among ``tables``' rows."""
        feats = self.est.features.iloc[tables.rows].reset_index(drop=True)
        out = np.zeros((len(tables.rows), len(s.initiatives)), bool)
        for i, ini in enumerate(s.initiatives):
            if ini.applies_to == ("existing" if new else "new"):
                continue
            try:
                out[:, i] = target_mask(ini.target, feats, f"initiative {ini.name!r}")
            except SpecError:
                if not new:  # the book was checked: new customers may just lack the target
                    raise
        return out

    def _moves(self, s: Scenario, part: int, tables: Tables, targeted: np.ndarray,
               new: bool) -> _Moves | None:
        """The changes of ``s`` owned by ``part`` on ``tables``' customers (None: none)."""
        design = self.parts[part].est.design
        rows = tables.rows
        frame = design.frame.iloc[rows].reset_index(drop=True)
        terms, dzs, ramps, ids, sds = [], [], [], [], []
        j = -1
        for i, ini in enumerate(s.initiatives):
            for ch in ini.changes:
                j += 1
                if ini.applies_to == ("existing" if new else "new") or \
                        self.owner(ch.driver) != part:
                    continue
                mask = targeted[:, i]
                cur = frame
                frame = design.moved(ch.driver, lambda x, ch=ch, mask=mask: np.where(
                    mask, ch.apply(x), x), cur)
                ts = [ch.driver, *[t for t, (d, _) in design.extra.items() if d == ch.driver]]
                terms.append(ts)
                dzs.append(frame[ts].to_numpy(dtype=float) - cur[ts].to_numpy(dtype=float))
                ramps.append(ini.ramp(s.horizon_months))
                ids.append(j)
                sds.append(_effect_sd(ch, design.raw(ch.driver, cur)[mask]))
        if not dzs:
            return None
        key = np.column_stack([np.round(d, 4) for d in dzs] + [targeted])
        uniq, inverse = np.unique(key, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        G = sparse.csr_matrix((np.ones(len(rows)), (inverse, np.arange(len(rows)))),
                              shape=(len(uniq), len(rows)))
        counts = np.asarray(G.sum(axis=1)).ravel()
        gdz = [np.asarray(G @ d) / counts[:, None] for d in dzs]
        return _Moves(inverse, len(uniq), terms, gdz, ramps, ids, sds)

    @staticmethod
    def _deltas(mv: _Moves, coefs: dict[str, Any], effect: np.ndarray, months: np.ndarray,
                ramps: list[np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Shift of every mechanism's log scale: (draws, groups, len(months)) per mechanism,
        the ramp read at ``months`` (1-based)."""
        out = {}
        for mech, (terms, c) in coefs.items():
            d = np.zeros((len(effect), mv.groups, len(months)))
            for k, (ts, dz) in enumerate(zip(mv.terms, mv.dz, strict=True)):
                idx = [terms.index(t) for t in ts]
                D = (c[:, idx] @ dz.T) * effect[:, mv.change_ids[k]][:, None]  # (draws, groups)
                ramp = (mv.ramps if ramps is None else ramps)[k][months - 1]
                d += D[:, :, None] * ramp[None, None, :]
            out[mech] = d
        return out

    # ------------------------------------------------------------------ simulate
    def simulate(self, s: Scenario, draws: int = 1000, seed: int = 0,
                 progress: Progress | None = None) -> ScenarioResult:
        """Monte Carlo of scenario ``s`` against the baseline (see the module docstring)."""
        self.check(s)
        say = progress or (lambda _m: None)
        H = s.horizon_months
        vs = self.est.settings
        rate = vs.discount_rate if s.discount_rate is None else s.discount_rate
        disc = (1.0 + rate) ** (-np.arange(1, H + 1) / 12.0)
        tg = self._targets(s, self.base, new=False)
        tg_new = self._targets(s, self.new, new=True) if self.new is not None else None
        mvs = [self._moves(s, k, self.base, tg, new=False) for k in range(len(self.parts))]
        mvs_new = [self._moves(s, k, p.new, tg_new, new=True) if p.new is not None and
                   tg_new is not None else None for k, p in enumerate(self.parts)]
        coefs = [self.coefficients(k, draws, seed) for k in range(len(self.parts))]
        n_changes = sum(len(i.changes) for i in s.initiatives)
        effect = np.ones((draws, n_changes))
        sds = np.zeros(n_changes)
        for mv in [*mvs, *mvs_new]:
            if mv is not None:
                for j, sd in zip(mv.change_ids, mv.scale_sd, strict=True):
                    sds[j] = max(sds[j], sd)
        if sds.any():  # one multiplier per change, shared by existing and new customers
            z = np.random.default_rng([seed, 2]).standard_normal((draws, n_changes))
            effect = 1.0 + z * sds
            effect[0] = 1.0
        if s.new_customers == "forecast" and self.new is not None:
            acq = self.acquisition.draws(draws, np.random.default_rng([seed, 3]))[:, :H]
            acq = acq.astype(float)
        else:
            acq = np.zeros((draws, H))
        say(f"simulating {draws:,} draws over {H} months")
        base_ex, scen_ex = self._existing(mvs, coefs, effect, H)
        rel_base, rel_delta = self._sampling(mvs, coefs, effect, H)
        if rel_base or rel_delta:  # customers valued on a sample: its error, per draw
            z = np.random.default_rng([seed, 4]).standard_normal((draws, 2))
            z[0] = 0.0
            for k in base_ex:
                moved = base_ex[k] * (1 + rel_base * z[:, :1])
                scen_ex[k] = moved + (scen_ex[k] - base_ex[k]) * (1 + rel_delta * z[:, 1:])
                base_ex[k] = moved
        base_nw, scen_nw = self._new(mvs_new, coefs, effect, acq, H)
        cost = self._costs(s, tg, tg_new, acq)
        churn = self._target_churn(s, tg, mvs, coefs, effect)
        return ScenarioResult.assemble(s, base_ex, scen_ex, base_nw, scen_nw, cost, disc, vs,
                                       self.est.referred_value or 0.0, acq, churn, self.notes)

    @staticmethod
    def _aggregate(tables: Tables, inverse: np.ndarray, groups: int, weights: np.ndarray
                   ) -> dict[str, dict[str, np.ndarray]]:
        """Group sums (weighted per customer) of every table: per purchase mechanism ``cum``,
        ``scum`` (spend-weighted), ``alive``, ``calive`` (cost-weighted), ``ralive``
        (referral-weighted), each (groups, shifts, months + 1). The per-customer weights go
        into the sparse group matrix, so the tables are never copied."""
        n = len(tables.rows)
        cols = np.arange(n)

        def agg(a: np.ndarray, w: np.ndarray) -> np.ndarray:
            G = sparse.csr_matrix((weights * w, (inverse, cols)), shape=(groups, n))
            return np.asarray(G @ a.reshape(n, -1)).reshape(groups, *a.shape[1:])

        one = np.ones(n)
        return {mech: {"cum": agg(tables.cum[mech], one),
                       "scum": agg(tables.cum[mech], tables.spend),
                       "alive": agg(tables.alive[mech], one),
                       "calive": agg(tables.alive[mech], tables.cost_rate),
                       "ralive": agg(tables.alive[mech], tables.referral_rate)}
                for mech in tables.cum}

    def _existing(self, mvs: list[_Moves | None], coefs: list[dict[str, Any]],
                  effect: np.ndarray, H: int
                  ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Existing customers' monthly totals: the baseline (1, H) and the scenario (draws, H),
        the baseline plus every part's change."""
        n = len(self.base.rows)
        w = np.full(n, self.scale)
        base = monthly_totals(self._aggregate(self.base, np.zeros(n, int), 1, w), {}, 1, H)
        scen = {k: np.repeat(v, len(effect), axis=0) for k, v in base.items()}
        months = np.arange(1, H + 1)
        for part, mv, c in zip(self.parts, mvs, coefs, strict=True):
            if mv is None:
                continue
            agg = self._aggregate(part.base, mv.inverse, mv.groups, w)
            own = monthly_totals(agg, {}, 1, H)  # the part's own baseline: its change is relative
            since = mv.since
            for lo in range(0, len(effect), 250):
                sl = slice(lo, lo + 250)
                d = self._deltas(mv, {m: (t, v[sl]) for m, (t, v) in c.items()}, effect[sl],
                                 months, since)
                for k, v in monthly_totals(agg, d, len(effect[sl]), H, memory=True).items():
                    scen[k][sl] += v - own[k]
        return base, scen

    def _new(self, mvs: list[_Moves | None], coefs: list[dict[str, Any]], effect: np.ndarray,
             acq: np.ndarray, H: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """New cohorts: per-customer flows by age (each ramp level once), convolved with the
        acquisitions of every draw."""
        K = len(acq)
        if self.new is None or not acq.any():
            zero = {k: np.zeros((K, H)) for k in ("revenue", "transactions", "alive_end",
                                                  "cost_to_serve", "referrals")}
            return zero, {k: v.copy() for k, v in zero.items()}
        n = len(self.new.rows)
        w = np.full(n, 1.0 / n)
        first_rev = float(self.new.spend.mean())
        per_new = monthly_totals(self._aggregate(self.new, np.zeros(n, int), 1, w), {}, 1, H)
        base = cohort_totals(per_new, acq, first_rev)
        scen = {k: v.copy() for k, v in base.items()}
        ages = np.arange(1, H + 1)
        for part, mv, c in zip(self.parts, mvs, coefs, strict=True):
            if mv is None or part.new is None:
                continue
            agg = self._aggregate(part.new, mv.inverse, mv.groups, w)
            own = monthly_totals(agg, {}, 1, H)
            ramp = np.stack(mv.ramps, axis=1)  # (months, changes)
            levels, level_of = np.unique(np.round(ramp, 6), axis=0, return_inverse=True)
            for lev, r in enumerate(levels):  # a cohort keeps its month's ramp level for life
                d = self._deltas(mv, c, effect, ages, [np.full(H, x) for x in r])
                cohorts = acq * (level_of.ravel() == lev)[None, :]
                moved = cohort_totals(monthly_totals(agg, d, K, H), cohorts, first_rev)
                still = cohort_totals(own, cohorts, first_rev)
                for k in scen:
                    scen[k] += moved[k] - still[k]
        return base, scen

    def _sampling(self, mvs: list[_Moves | None], coefs: list[dict[str, Any]],
                  effect: np.ndarray, H: int) -> tuple[float, float]:
        """Relative standard errors of the baseline revenue and of its change over the horizon
        that come from valuing a random sample of the customers (0 when every customer is
        scored): ``sqrt((1 - n/N) n var(v_i)) / |sum v_i|`` over the scored customers' values
        ``v_i`` at the point estimate (cumulative to the horizon, at the horizon's ramp)."""
        n, N = len(self.base.rows), len(self.est.features)
        if n >= N or n < 2:
            return 0.0, 0.0
        t0 = self.base
        mech0 = next(iter(t0.cum))
        base_i = t0.spend * t0.cum[mech0][:, ZERO, H]
        delta_i = np.zeros(n)
        for part, mv, c in zip(self.parts, mvs, coefs, strict=True):
            if mv is None:
                continue
            d = self._deltas(mv, {m: (t, v[:1]) for m, (t, v) in c.items()}, effect[:1],
                             np.array([H]), mv.since)
            di = {m: v[0, mv.inverse, 0] for m, v in d.items()}  # per customer
            tb = part.base
            zero = next(iter(tb.cum.values()))[:, ZERO, H]
            tx = zero + sum(interpolate(tb.cum[m][:, :, H:H + 1], di[m][:, None])[:, 0] - zero
                            for m in tb.cum if m in di)
            moved = tb.spend * tx * np.exp(di.get("spend", 0.0))
            delta_i += moved - tb.spend * zero

        def rel(v: np.ndarray) -> float:
            total = abs(v.sum())
            return float(np.sqrt((1 - n / N) * n * v.var(ddof=1)) / total) if total > 0 else 0.0

        return rel(base_i), rel(delta_i)

    def _costs(self, s: Scenario, tg: np.ndarray, tg_new: np.ndarray | None, acq: np.ndarray
               ) -> np.ndarray:
        """Cost of every initiative per draw and month: (draws, initiatives, months)."""
        H = s.horizon_months
        out = np.zeros((len(acq), len(s.initiatives), H))
        for i, ini in enumerate(s.initiatives):
            reached = np.zeros((len(acq), H))
            if ini.applies_to != "new":
                reached[:, 0] += tg[:, i].sum() * self.scale
            if ini.applies_to != "existing" and tg_new is not None:
                reached += acq * tg_new[:, i].mean()
            out[:, i] = [ini.cost.schedule(H, r) for r in reached]
        return out

    def _target_churn(self, s: Scenario, tg: np.ndarray, mvs: list[_Moves | None],
                      coefs: list[dict[str, Any]], effect: np.ndarray) -> dict[str, Any] | None:
        """12-month churn (or over the horizon if shorter) among the first existing-customer
        initiative's target: baseline and scenario draws."""
        idx = [i for i, ini in enumerate(s.initiatives) if ini.applies_to != "new"]
        if not idx or not tg[:, idx[0]].any():
            return None
        m = min(12, s.horizon_months)
        w = np.where(tg[:, idx[0]], self.scale, 0.0)
        n = len(self.base.rows)
        tab = next(iter(self._aggregate(self.base, np.zeros(n, int), 1, w).values()))["alive"]
        now, end0 = tab[0, ZERO, 0], tab[0, ZERO, m]
        end = np.full(len(effect), end0)
        for part, mv, c in zip(self.parts, mvs, coefs, strict=True):
            if mv is None:
                continue
            d = self._deltas(mv, c, effect, np.array([m]), mv.since)
            for mech, a in self._aggregate(part.base, mv.inverse, mv.groups, w).items():
                t = a["alive"]
                end += interpolate(t[None, :, :, m:m + 1], d[mech]).sum(axis=(1, 2)) - \
                    t[:, ZERO, m].sum()
        return {"initiative": s.initiatives[idx[0]].name, "target": s.initiatives[idx[0]].target,
                "months": m, "baseline": 1 - end0 / now, "scenario": 1 - end / now}


def prepare(ws: Any, months: int | None = None, *, max_fit: int = 200_000, max_score: int = 10_000,
            max_templates: int = 2_000, seed: int = 0, progress: Progress | None = None,
            scenarios: list[Scenario] | None = None) -> Planner:
    """Fit and tabulate everything scenarios on this book need, once.

    Parameters
    ----------
    ws : Workspace
        An ingested book (``cxasset levers`` run first lends its thresholds: a driver with a
        found threshold gets its step term, so a change that crosses it moves it).
    months : int, optional
        Longest horizon the planner can simulate; default the longest of ``scenarios``
        (36 months without them).
    max_fit, max_score : int
        Customers sampled to fit the mechanisms and to tabulate (money is scaled to the base).
    max_templates : int
        Recent customers standing for future acquisitions.
    scenarios : list of Scenario, optional
        Checked against the book (drivers, targets) before anything is fitted.
    """
    from cxasset.exceptions import WorkspaceError
    from cxasset.scenarios.acquisition import (
        acquisition_history,
        forecast_acquisitions,
        templates,
    )
    from cxasset.valuemap.drivers import candidate_names, source_of
    from cxasset.valuemap.estimate import book_features, estimate

    say = progress or (lambda _m: None)
    if months is None:
        months = max((s.horizon_months for s in scenarios or ()), default=36)
    try:
        found = ws.load_artifact("levers").get("thresholds") or {}
        cuts = {d: float(t["cut"]) for d, t in found.items()}
    except WorkspaceError:
        cuts = {}
    f = book_features(ws)
    names = candidate_names(f)
    for s in scenarios or []:
        check_scenario(s, f, names)
    attributes = [d for d in names if not source_of(d)[1]]
    groups = [(attributes, "attributes (measured before the outcomes)")] \
        if attributes and len(attributes) < len(names) else []
    groups.append((names, "every driver"))
    st = ws.settings
    hist = acquisition_history(f, st.as_of, st.period_days)
    acq = forecast_acquisitions(hist, months)
    tpl = templates(f, st.as_of, st.period_days, max_rows=max_templates, seed=seed) \
        if acq.method != "none" else None
    parts, notes, plain = [], [], None
    owned: set[str] = set()
    for drivers, label in groups:
        say(f"fitting the mechanisms on {label}")
        # the second fit reuses the first's frame: its rates per period alive are done
        frame = parts[0].est.features if parts else f
        est = estimate(ws, drivers, max_fit=max_fit, max_score=max_score, seed=seed,
                       thresholds={d: c for d, c in cuts.items() if d in drivers},
                       features=frame, progress=say, winsor=WINSOR, robust=True)
        if plain is None and "retention" not in est.models:
            plain = plain_models(est)
        say(f"tabulating {len(est.scored):,} customers' futures over {months} months")
        base = customer_tables(est, est.scored, months, plain=plain)
        new = None if tpl is None else customer_tables(est, tpl.rows, months, new=True,
                                                      plain=plain)
        if parts and not np.array_equal(est.scored, parts[0].base.rows):
            raise AssertionError("the parts of a planner must score the same customers")
        owns = [d for d in drivers if d not in owned]
        owned.update(owns)
        parts.append(Part(est, base, new, owns, label))
    notes += parts[-1].est.notes[1:]
    if len(parts) > 1:
        notes.append("changes to " + ", ".join(parts[0].owns) + " are valued by mechanisms "
                     "fitted on the drivers measured before the outcomes; changes to the others "
                     "by mechanisms fitted on every driver")
    if cuts:
        notes.append("thresholds from `cxasset levers`: " + ", ".join(
            f"{d} > {c:g}" for d, c in cuts.items()))
    if plain is not None:
        notes.append("baseline levels from the plain purchase and spend models (no drivers); "
                     "the mechanisms give the relative changes")
    notes += acq.notes
    if tpl is not None:
        notes.append(f"new customers: {tpl.note}")
    return Planner(parts, acq, months, notes)


def _effect_sd(ch: Any, x: np.ndarray) -> float:
    """Sd of a change's effect multiplier: its ``uncertainty_sd`` relative to the size of the
    change (first order: an effect proportional to the change)."""
    if ch.uncertainty_sd == 0:
        return 0.0
    size = {"shift": abs(ch.amount), "scale": abs(ch.amount - 1.0),
            "set": float(np.mean(np.abs(ch.amount - x))) if len(x) else 0.0}[ch.kind]
    return ch.uncertainty_sd / size if size > 0 else 0.0
