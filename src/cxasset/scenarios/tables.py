"""Each customer's month-by-month future under a shift of each mechanism: the forward-only
tables a scenario is simulated from.

For a set of customers (rows of the value map's design) and the months ``m = 0..M`` from now,
:func:`customer_tables` tabulates, on a grid of shifts ``delta`` (:data:`SHIFTS`) of a
mechanism's log scale:

- ``cum[mech][i, g, m]``: expected transactions from now to the end of month ``m`` (repeat
  purchases; subscription books: renewal payments);
- ``alive[mech][i, g, m]``: probability of being alive (a customer) at the end of month ``m``;

and per customer the expected revenue per transaction, cost to serve and referrals per month
alive. A scenario moves drivers, so each customer's mechanisms by ``delta = b' dz``; interpolating
these tables at that ``delta`` gives their future.

**Forward only.** Existing customers' histories are kept: their probability of being alive today
and the posterior of their latent rates are those of the actual covariates. What moves is the
future (see :mod:`cxasset.valuemap.mechanisms`):

- purchase rate, BG/NBD and MBG/NBD: the rate ``lambda ~ Gamma(r, alpha_i)`` is mapped to the same
  quantile of ``Gamma(r, alpha_i / c)``, i.e. ``lambda' = c lambda`` (rank-preserving); the posterior
  given the history scales likewise, and as dropout happens at purchases the whole future runs
  ``c`` times faster: ``G(c t)``, ``S(c t)``. Pareto/NBD: purchases ``c G(t)``, lifetime unchanged;
- dropout, BG/NBD and MBG/NBD: each customer's dropout probability ``p`` keeps its quantile in
  the population's Beta when the propensity ``a`` becomes ``a c`` (rank-preserving), averaged
  over its posterior given the history; Pareto/NBD: the death rate ``mu' = c mu`` (rank-preserving within
  ``Gamma(s, beta_i / c)``): ``G(c t) / c``, ``S(c t)``;
- retention (subscription books): every future period's churn hazard times ``c`` from the
  customer's current age (``S ** c`` for the cloglog link);
- spend per transaction, contacts and referrals per period alive: times ``exp(delta)``.

**New customers** are template customers (recent acquisitions' drivers) with no history: at age
0, alive, the model's prior for their covariates (BG/NBD ``x = 0, T = 0``).

Curves are evaluated at a few times (:data:`_KNOTS` months) and interpolated monotonically to
every month (PCHIP on cumulative curves; relative error below 1e-3 on BG/NBD checks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.interpolate import PchipInterpolator

from cxasset.valuemap.mechanisms import prefixed, purchase_params

#: Days in a month (365.25 / 12): scenario months are calendar-average months.
MONTH_DAYS = 365.25 / 12
#: Shifts of a mechanism's log scale tabulated per customer (dense near 0, where effects are).
SHIFTS = np.array([-2.0, -1.4, -1.0, -0.7, -0.45, -0.25, -0.1, 0.0, 0.1, 0.25, 0.45, 0.7, 1.0,
                   1.4, 2.0])
ZERO = int(np.flatnonzero(SHIFTS == 0.0)[0])
RFM = ["frequency", "recency", "T"]


@dataclass
class Tables:
    """Monthly tables of some customers (see the module docstring). ``cum`` and ``alive`` map a
    mechanism (``purchase_rate``, ``dropout`` or ``retention``) to arrays (n, len(SHIFTS), M+1)."""

    rows: np.ndarray  # positions in the design / features
    cum: dict[str, np.ndarray]
    alive: dict[str, np.ndarray]
    spend: np.ndarray  # revenue per transaction (currency)
    cost_rate: np.ndarray  # cost to serve per month alive (currency)
    referral_rate: np.ndarray  # referrals per month alive

    @property
    def months(self) -> int:
        return next(iter(self.cum.values())).shape[2] - 1


def interpolate(table: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """``table`` (..., len(SHIFTS), M+1) at shifts ``delta`` (..., M+1) per month, linearly
    between grid shifts (beyond the grid: clipped to it)."""
    d = np.clip(delta, SHIFTS[0], SHIFTS[-1])
    j = np.clip(np.searchsorted(SHIFTS, d) - 1, 0, len(SHIFTS) - 2)
    w = (d - SHIFTS[j]) / (SHIFTS[j + 1] - SHIFTS[j])
    lo = np.take_along_axis(table, j[..., None, :], axis=-2)[..., 0, :]
    hi = np.take_along_axis(table, j[..., None, :] + 1, axis=-2)[..., 0, :]
    return lo * (1 - w) + hi * w


def _knots(months: int) -> np.ndarray:
    """Months at which curves are evaluated (then interpolated): every month up to 6, then
    about 14 more spread to the horizon."""
    head = np.arange(0, min(months, 6) + 1, dtype=float)
    tail = np.unique(np.round(np.geomspace(7, months, 14))) if months > 6 else np.zeros(0)
    return np.unique(np.concatenate([head, tail]))


def _to_months(values: np.ndarray, knots: np.ndarray, months: int) -> np.ndarray:
    """Curves at ``knots`` (last axis) to every month 0..months (monotone PCHIP)."""
    if len(knots) == months + 1:
        return values
    return PchipInterpolator(knots, values, axis=-1)(np.arange(months + 1, dtype=float))


def _finite(a: np.ndarray) -> np.ndarray:
    """Far out (a rate e^2 times higher over long horizons) a hypergeometric value can fail to
    evaluate for a few customers: carry the nearest evaluated value along the time axis."""
    if np.isfinite(a).all():
        return a
    shape = a.shape
    df = pd.DataFrame(np.where(np.isfinite(a), a, np.nan).reshape(-1, shape[-1]))
    return df.ffill(axis=1).bfill(axis=1).fillna(0.0).to_numpy().reshape(shape)


def _if_alive(model: Any, p: dict[str, Any], x: np.ndarray, T: np.ndarray, t: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Expected purchases in ``(T, T+t]`` and survival to ``T+t``, given alive at ``T``, per row
    (per-row parameters ``p``) and time: two arrays (rows, times)."""
    col = {k: (np.asarray(v, dtype=float)[:, None] if np.ndim(v) else v) for k, v in p.items()}
    tt = np.asarray(t, dtype=float)[None, :]
    xc, Tc = x[:, None], T[:, None]
    with np.errstate(all="ignore"):
        if "beta" in model._param_names:  # Pareto/NBD
            q = (col["beta"] + Tc) / (col["beta"] + Tc + tt)
            rate = (col["r"] + xc) * (col["beta"] + Tc) / (col["alpha"] + Tc)
            return (_finite(rate * model._lifetime_factor(col["s"], q)),
                    _finite(np.exp(col["s"] * np.log(q))))
        e = model._expected_if_alive(col, tt, xc, Tc)
        s = type(model)._survival_if_alive(p, np.asarray(t, dtype=float), x, T)
    return _finite(np.broadcast_to(e, (len(x), tt.shape[1])).copy()), _finite(s)


def customer_tables(est: Any, rows: np.ndarray, months: int, new: bool = False,
                    plain: tuple[Any, Any] | None = None) -> Tables:
    """Monthly tables of customers ``rows`` (positions in ``est.design``) over ``months``.

    Parameters
    ----------
    est : cxasset.valuemap.estimate.Estimate
        Fitted mechanisms (``est.models`` holds the purchase and spend models, or the hazard).
    rows : array of int
    months : int
    new : bool, default=False
        Treat the rows as templates of new customers (no history, alive, age 0).
    plain : (purchase model, spend model), optional
        Models without the drivers (see :func:`plain_models`): they give each customer's
        baseline level; the fitted mechanisms then give the *relative* change of a shift.
    """
    rows = np.asarray(rows, dtype=int)
    vs = est.settings
    per_month = MONTH_DAYS / vs.period_days  # model periods per month
    if "retention" in est.models:
        cum, alive, spend = _subscription_tables(est, rows, months, per_month, new)
    else:
        cum, alive, spend = _purchase_tables(est, rows, months, per_month, new, plain)
    X = est.design.frame[est.design.terms].iloc[rows].to_numpy(dtype=float)
    f = est.features.iloc[rows]
    cost = np.zeros(len(rows))
    if "cost_to_serve" in est.fits:
        fit = est.fits["cost_to_serve"]
        cpp = est.features["contacts_per_period"].to_numpy(dtype=float)
        total = est.features["cost_to_serve_per_period"].to_numpy(dtype=float)
        unit_all = total.sum() / max(cpp.sum(), 1e-12)
        c_i, t_i = f["contacts_per_period"].to_numpy(dtype=float), \
            f["cost_to_serve_per_period"].to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            unit = np.where(c_i > 0, t_i / c_i, unit_all)
        cost = unit * np.exp(fit.intercept + X @ fit.coef) * per_month
    ref = np.zeros(len(rows))
    if "referrals" in est.fits:
        fit = est.fits["referrals"]
        ref = np.exp(fit.intercept + X @ fit.coef) * per_month
    c_order = {k: np.ascontiguousarray(v) for k, v in cum.items()}  # row-major: cheap group sums
    a_order = {k: np.ascontiguousarray(v) for k, v in alive.items()}
    return Tables(rows, c_order, a_order, spend, cost, ref)


def _purchase_tables(est: Any, rows: np.ndarray, months: int, per_month: float, new: bool,
                     plain: tuple[Any, Any] | None
                     ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    model, spend_model = est.models["purchase"], est.models["spend"]
    pp = purchase_params(model)
    terms = est.design.terms
    rfm = est.features[[*RFM, "monetary_value"]].iloc[rows].reset_index(drop=True)
    if new:
        rfm[:] = 0.0
    data = pd.concat([rfm, prefixed(est.design.frame.iloc[rows].reset_index(drop=True), terms,
                                    [*pp.values(), "gamma"])], axis=1)
    spend = np.asarray(spend_model.conditional_expected_average_profit(data), dtype=float)
    p = model.individual_params(data)
    x, T = data["frequency"].to_numpy(dtype=float), data["T"].to_numpy(dtype=float)
    p_alive = _new_alive(model, p, len(rows)) if new else np.asarray(
        model.probability_alive(data), float)
    knots = _knots(months)
    tk = knots * per_month
    c = np.exp(SHIFTS)
    pnbd = "beta" in model._param_names

    def tabulate(fn: Any) -> tuple[np.ndarray, np.ndarray]:
        """(E, S) at every shift (axis 1) and knot, from ``fn(g) -> (E, S)`` at the knots."""
        es = [fn(g) for g in range(len(SHIFTS))]
        e = np.stack([v[0] for v in es], axis=1)
        s = np.stack([v[1] for v in es], axis=1)
        return (p_alive[:, None, None] * _to_months(e, knots, months),
                p_alive[:, None, None] * _to_months(s, knots, months))

    # one evaluation at every (shift, knot) time serves the time-scaled mechanisms
    scaled_t = np.outer(c, tk).ravel()
    e_all, s_all = _if_alive(model, p, x, T, scaled_t)
    e_all = e_all.reshape(len(x), len(SHIFTS), len(tk))
    s_all = s_all.reshape(len(x), len(SHIFTS), len(tk))
    cum, alive = {}, {}
    if pnbd:
        cum["purchase_rate"], alive["purchase_rate"] = tabulate(
            lambda g: (c[g] * e_all[:, ZERO], s_all[:, ZERO]))
        cum["dropout"], alive["dropout"] = tabulate(lambda g: (e_all[:, g] / c[g], s_all[:, g]))
    else:
        cum["purchase_rate"], alive["purchase_rate"] = tabulate(
            lambda g: (e_all[:, g], s_all[:, g]))
        e_drop, s_drop = _dropout_rank_preserving(model, p, x, T, tk, c)
        cum["dropout"], alive["dropout"] = tabulate(
            lambda g: (e_all[:, ZERO] * e_drop[:, g], s_all[:, ZERO] * s_drop[:, g]))
    if plain is not None:  # levels from the plain models, changes relative to the full ones
        pm, ps = plain
        e0, s0 = _if_alive(pm, pm.individual_params(data), x, T, tk)
        a0 = _new_alive(pm, pm.individual_params(data), len(rows)) if new else \
            np.asarray(pm.probability_alive(data), float)
        level_cum = a0[:, None] * _to_months(e0, knots, months)
        level_alive = a0[:, None] * _to_months(s0, knots, months)
        for mech in cum:
            cum[mech] = cum[mech] * _ratio(level_cum, cum[mech][:, ZERO])[:, None, :]
            alive[mech] = alive[mech] * _ratio(level_alive, alive[mech][:, ZERO])[:, None, :]
            # survival never rises and purchases never fall over the months
            alive[mech] = np.minimum.accumulate(alive[mech], axis=2)
            cum[mech] = np.maximum.accumulate(cum[mech], axis=2)
        spend = np.asarray(ps.conditional_expected_average_profit(data), dtype=float)
    return cum, alive, spend


def _new_alive(model: Any, p: dict[str, Any], n: int) -> np.ndarray:
    """P(alive) of a new customer right after the first purchase: 1, except MBG/NBD, where the
    first purchase is itself a dropout opportunity: ``E[1 - p] = b / (a + b)``."""
    if getattr(type(model), "_extra_survivals", 0) == 0 or "a" not in p:
        return np.ones(n)
    a, b = np.broadcast_to(p["a"], (n,)), np.broadcast_to(p["b"], (n,))
    return np.asarray(b / (a + b), dtype=float)


def _ratio(level: np.ndarray, full: np.ndarray, bound: float = 3.0) -> np.ndarray:
    """``level / full`` per customer and month, kept within ``[1/bound, bound]`` (where the two
    models disagree wildly, e.g. one thinks the customer long gone, the relative change is not
    blown up), and 1 where the full model's value is 0 (month 0 of a cumulative curve)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(full > 1e-12, level / np.maximum(full, 1e-12), 1.0)
    return np.clip(r, 1.0 / bound, bound)


def _dropout_rank_preserving(model: Any, p: dict[str, Any], x: np.ndarray, T: np.ndarray,
                             t: np.ndarray, c: np.ndarray, nodes: int = 16
                             ) -> tuple[np.ndarray, np.ndarray]:
    """BG/NBD and MBG/NBD dropout moved rank-preservingly: each customer's dropout probability
    ``p`` goes to the same quantile of the population's ``Beta(a c, b)`` (the new covariates),
    ``p' = Q(a c, b; F(a, b; p))``, averaged over the posterior ``p ~ Beta(a, b + x + k)`` given
    alive (Gauss-Legendre in the posterior's quantile); the rate keeps its posterior
    ``Gamma(r + x, alpha + T)``, so ``E[Y(t) | p'] = (1 - ((alpha+T)/(alpha+T+p't))^(r+x)) / p'``
    and ``S(t | p') = ((alpha+T)/(alpha+T+p't))^(r+x)``.

    Returns the expected purchases and survival at each shift relative to shift 0 (arrays
    (n, len(c), len(t))), so the quadrature's own error cancels against the closed forms.
    """
    from scipy import special

    n = len(x)

    def col(v: Any) -> np.ndarray:
        return np.broadcast_to(np.asarray(v, dtype=float), (n,))[:, None]

    r, alpha, a, b = (col(p[k]) for k in ("r", "alpha", "a", "b"))
    k = type(model)._extra_survivals
    u, w = np.polynomial.legendre.leggauss(nodes)
    u, w = (u + 1) / 2, w / 2
    post = special.betaincinv(a, b + x[:, None] + k, u[None, :])  # (n, nodes)
    F = special.betainc(a, b, post)
    A, R = (alpha + T[:, None])[:, :, None], (r + x[:, None])[:, :, None]  # (n, 1, 1)
    E = np.empty((n, len(c), len(t)))
    S = np.empty((n, len(c), len(t)))
    with np.errstate(all="ignore"):
        for g, cg in enumerate(c):
            p2 = np.clip(special.betaincinv(a * cg, b, F), 1e-12, 1.0)[:, :, None]  # (n, J, 1)
            surv = np.exp(-R * np.log1p(p2 * t[None, None, :] / A))
            E[:, g] = np.einsum("j,njt->nt", w, -np.expm1(-R * np.log1p(
                p2 * t[None, None, :] / A)) / p2)
            S[:, g] = np.einsum("j,njt->nt", w, surv)
        zero = int(np.argmin(np.abs(np.log(c))))
        E = _finite(_ratio(E, E[:, zero:zero + 1], np.inf))
        S = _finite(_ratio(S, S[:, zero:zero + 1], np.inf))
    return E, S


def plain_models(est: Any) -> tuple[Any, Any]:
    """The purchase model of the estimate's kind and Gamma-Gamma, without covariates, fitted on
    every customer: the baseline levels of a scenario.

    Drivers measured while the outcomes happen (surveys, engagement: only customers still alive
    answer and engage) carry information on being alive that the covariate models put into the
    dropout prior, which biases each customer's baseline future (on the planted-truth books the
    base's 12-month revenue by +4-8%, the plain model's within 2%). So levels come from the plain
    models, as ``cxasset value``'s do, and the mechanisms give relative changes.
    """
    from cxasset.models.gammagamma import GammaGammaModel

    f = est.features
    purchase = est.purchase_cls().fit(f[RFM])
    spend = GammaGammaModel().fit(f[[*RFM, "monetary_value"]])
    return purchase, spend


def _subscription_tables(est: Any, rows: np.ndarray, months: int, per_month: float, new: bool
                         ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """Renewals of a subscription book: payments at each period boundary while active (as
    :func:`cxasset.valuation.workspace.value_subscriptions` values them)."""
    from cxasset.valuemap.retention import customer_age, shifted_survival

    model = est.models["retention"]
    f = est.features.iloc[rows]
    if new:
        active, age = np.ones(len(rows), bool), np.zeros(len(rows))
    else:
        if "active" in f.columns:
            active = f["active"].astype("boolean").fillna(False).to_numpy(dtype=bool)
        else:
            active = ~f["churned"].astype("boolean").fillna(True).to_numpy(dtype=bool)
        age = customer_age(f)
    rr = np.nan_to_num(f["recurring_revenue"].to_numpy(dtype=float), nan=0.0)
    periods = int(np.ceil(months * per_month)) + 1
    data = est.design.frame.iloc[rows]
    base = shifted_survival(model, data, age, periods, 0.0)  # (n, periods)
    t_month = np.arange(months + 1) * per_month
    k = np.arange(1, periods + 1, dtype=float)
    cum, alive = np.zeros((len(rows), len(SHIFTS), months + 1)), np.zeros(
        (len(rows), len(SHIFTS), months + 1))
    for g, d in enumerate(SHIFTS):
        s = base ** np.exp(d) if model.link == "cloglog" else shifted_survival(
            model, data, age, periods, d)
        s = np.where(active[:, None], s, 0.0)
        paid = np.cumsum(s, axis=1)
        # payments to the end of month m: the boundaries k <= t_m (linear between them)
        cum[:, g] = np.column_stack([np.zeros(len(rows)), paid]) @ _linear_weights(
            np.concatenate([[0.0], k]), t_month)
        alive[:, g] = np.column_stack([active.astype(float), s]) @ _linear_weights(
            np.concatenate([[0.0], k]), t_month)
    return {"retention": cum}, {"retention": alive}, rr


def _linear_weights(grid: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Matrix W (len(grid), len(at)) so that ``values @ W`` interpolates linearly at ``at``."""
    W = np.zeros((len(grid), len(at)))
    j = np.clip(np.searchsorted(grid, at) - 1, 0, len(grid) - 2)
    w = np.clip((at - grid[j]) / (grid[j + 1] - grid[j]), 0.0, 1.0)
    W[j, np.arange(len(at))] = 1 - w
    W[j + 1, np.arange(len(at))] += w
    return W


def monthly_totals(agg: dict[str, dict[str, np.ndarray]], deltas: dict[str, np.ndarray], K: int,
            H: int, by_group: bool = False, memory: bool = False) -> dict[str, np.ndarray]:
    """Monthly totals (K, H) over groups (``by_group``: per group, (K, groups, H)): revenue,
    transactions, alive at the start and end of the month, cost to serve, referrals.

    ``deltas[mech]`` (K, groups, H) is the shift in each month. Without ``memory`` (a cohort at
    a fixed level) both ends of month ``m`` are read at month ``m``'s shift. With ``memory`` (a
    ramp on customers alive today), ``deltas`` holds the shift *averaged since today*: the state
    at the end of month ``m`` is read at that month's average and the start at the previous
    month's, so customers not kept during the ramp are not counted as kept afterwards.
    """
    def shift(mech: str) -> np.ndarray:
        return deltas[mech] if mech in deltas else np.zeros((K, 1, 1))

    def before(d: np.ndarray) -> np.ndarray:
        if not memory or d.shape[-1] == 1:
            return d
        return np.concatenate([np.zeros_like(d[..., :1]), d[..., :-1]], axis=-1)

    def at(tab: np.ndarray, d: np.ndarray, cols: slice) -> np.ndarray:
        sub = tab[None, :, :, cols]
        if not np.any(d):
            return np.broadcast_to(sub[:, :, ZERO, :], (K, tab.shape[0], H))
        dd = np.broadcast_to(d, (K, tab.shape[0], H))
        return interpolate(sub, dd)

    tx = rev = alive0 = alive1 = cmid = rmid = 0.0
    start, end = slice(0, H), slice(1, H + 1)
    base_parts = []
    for mech, a in agg.items():
        d = shift(mech)
        d0 = before(d)
        parts = {}
        for k in ("cum", "scum"):
            parts[k] = at(a[k], d, end) - at(a[k], d0, start)
        for k in ("alive", "calive", "ralive"):
            parts[k + "1"] = at(a[k], d, end)
            parts[k + "0"] = at(a[k], d0, start)
        zero = {k: a[k][None, :, ZERO, end] - a[k][None, :, ZERO, start] for k in ("cum", "scum")}
        zero.update({k + "1": a[k][None, :, ZERO, end] for k in ("alive", "calive", "ralive")})
        zero.update({k + "0": a[k][None, :, ZERO, start] for k in ("alive", "calive", "ralive")})
        base_parts.append(zero)
        tx = tx + parts["cum"] - zero["cum"]
        rev = rev + parts["scum"] - zero["scum"]
        alive0 = alive0 + parts["alive0"] - zero["alive0"]
        alive1 = alive1 + parts["alive1"] - zero["alive1"]
        cmid = cmid + (parts["calive0"] + parts["calive1"] - zero["calive0"] - zero["calive1"]) / 2
        rmid = rmid + (parts["ralive0"] + parts["ralive1"] - zero["ralive0"] - zero["ralive1"]) / 2
    z = base_parts[0]  # the baseline is the same in every purchase mechanism's table
    tx = tx + z["cum"]
    rev = (rev + z["scum"]) * np.exp(shift("spend"))
    alive0, alive1 = alive0 + z["alive0"], alive1 + z["alive1"]
    cost = (cmid + (z["calive0"] + z["calive1"]) / 2) * np.exp(shift("cost_to_serve"))
    refs = (rmid + (z["ralive0"] + z["ralive1"]) / 2) * np.exp(shift("referrals"))

    groups = next(iter(agg.values()))["cum"].shape[0]

    def total(v: Any) -> np.ndarray:
        full = np.broadcast_to(v, (K, groups, H))
        return full if by_group else full.sum(axis=1)

    return {"revenue": total(rev), "transactions": total(tx), "alive_start": total(alive0),
            "alive_end": total(alive1), "cost_to_serve": total(cost), "referrals": total(refs)}


def cohort_totals(per: dict[str, np.ndarray], acq: np.ndarray, first_revenue: float
              ) -> dict[str, np.ndarray]:
    """Calendar-month totals of cohorts ``acq`` (draws, months) whose per-customer flows by age
    are ``per`` (1 or draws, months); each new customer buys once at acquisition."""
    K, H = acq.shape
    out = {}
    for k in ("revenue", "transactions", "alive_end", "cost_to_serve", "referrals"):
        f = np.broadcast_to(per[k], (K, H))
        v = np.zeros((K, H))
        for m0 in range(H):  # cohort acquired at the start of month m0 + 1
            v[:, m0:] += acq[:, m0:m0 + 1] * f[:, : H - m0]
        out[k] = v
    out["transactions"] = out["transactions"] + acq
    out["revenue"] = out["revenue"] + acq * first_revenue
    return out
