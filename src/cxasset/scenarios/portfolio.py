"""Portfolio of CX initiatives: the subset that fits a budget and maximises expected NPV or a low
quantile of NPV, solved exactly as a mixed-integer programme (``scipy.optimize.milp``, HiGHS).

``npv`` is a ``(draws, k)`` matrix of each initiative's incremental NPV (after its own cost), built
with common random numbers: row ``d`` is the same parameter draw for every column, so the row sum
over the chosen columns is the portfolio's NPV in draw ``d``.

* ``objective="mean"``: a 0/1 knapsack over the column means.
* ``objective="p10"``: maximise ``t`` subject to ``t <= sum_k npv[d, k] x_k + M_d y_d`` for every
  draw, ``sum_d y_d <= floor(q D)``, binary ``y`` (the usual MILP for a value at risk). Its optimum
  is the lower quantile used throughout (:func:`lower_quantile`): the largest ``t`` with at most
  ``floor(q D)`` draws below it. ``M_d`` is a bound of ``t`` (that order statistic of the rows' sums
  of positive parts) minus row ``d``'s sum of negative parts. A greedy-and-swap start bounds ``t``
  from below; with many initiatives the solver may stop at ``time_limit`` before proving optimality
  (the best portfolio found is returned with a note). At most ``max_draws`` rows enter the programme
  (rows ``0, s, 2s, ...``); the reported draws, value and quantiles use every row.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from cxasset.exceptions import CxassetError
from cxasset.money import money
from cxasset.scenarios.result import quantiles

MAX_INITIATIVES = 60
Objective = Literal["mean", "p10"]


class PortfolioError(CxassetError, ValueError):
    """Inputs a portfolio cannot be chosen from (shapes, costs, budget, indices)."""


def lower_quantile(draws: np.ndarray, quantile: float = 0.10) -> float:
    """The largest ``t`` with at most ``floor(quantile * D)`` of the ``D`` draws below it."""
    return float(np.sort(draws)[math.floor(quantile * len(draws))])


@dataclass(frozen=True)
class Portfolio:
    """A chosen set of initiatives, its cost and its NPV draws (row sums over the chosen columns)."""

    chosen: tuple[int, ...]
    names: tuple[str, ...]
    cost: float
    budget: float
    objective: Objective
    value: float
    npv: np.ndarray = field(repr=False, compare=False)
    notes: tuple[str, ...] = ()

    def quantiles(self) -> dict[str, float]:
        """``p5, p50, p95, mean`` of the portfolio's NPV draws."""
        return quantiles(self.npv)

    @property
    def prob_positive(self) -> float:
        """Share of draws in which the portfolio's NPV is above zero."""
        return float(np.mean(self.npv > 0))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (no raw draws)."""
        return {"chosen": list(self.chosen), "names": list(self.names), "cost": self.cost,
                "budget": self.budget, "objective": self.objective, "value": self.value,
                "npv": self.quantiles(), "prob_npv_positive": self.prob_positive,
                "notes": list(self.notes)}


def _indices(idx: Sequence[int], k: int, what: str) -> list[int]:
    bad = [i for i in idx if not 0 <= int(i) < k]
    if bad:
        raise PortfolioError(f"{what} index {bad[0]} out of range: there are {k} initiatives (0..{k - 1})")
    return sorted({int(i) for i in idx})


def _check(npv: Any, cost: Any, budget: float, names: Sequence[str] | None
           ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    npv, cost = np.asarray(npv, dtype=float), np.asarray(cost, dtype=float)
    if npv.ndim != 2 or npv.shape[0] < 1 or npv.shape[1] < 1:
        raise PortfolioError(f"npv must be a (draws, initiatives) matrix; got shape {npv.shape}")
    k = npv.shape[1]
    if cost.shape != (k,):
        raise PortfolioError(f"cost must have shape ({k},), one per npv column; got {cost.shape}")
    if not np.all(np.isfinite(npv)):
        raise PortfolioError(f"npv has {int(np.sum(~np.isfinite(npv)))} NaN or infinite values")
    if not np.all(np.isfinite(cost)) or np.any(cost < 0):
        raise PortfolioError(f"cost must be finite and >= 0; got {cost[~(cost >= 0)][:3].tolist()}")
    if not (math.isfinite(budget) and budget >= 0):
        raise PortfolioError(f"budget must be a finite number >= 0; got {budget}")
    if k > MAX_INITIATIVES:
        raise PortfolioError(f"at most {MAX_INITIATIVES} initiatives can be optimised exactly; got {k}")
    names = [f"initiative {i}" for i in range(k)] if names is None else [str(n) for n in names]
    if len(names) != k:
        raise PortfolioError(f"names has {len(names)} entries for {k} npv columns")
    return npv, cost, names


def _start(s: np.ndarray, m: int, x: np.ndarray, ok: Callable[[np.ndarray], bool]) -> np.ndarray:
    """A good feasible start for the quantile programme (its value bounds ``t`` from below): greedy
    additions keeping the best point of the path, then single flips and swaps while they help."""
    def val(z: np.ndarray) -> float:
        return float(np.sort(s @ z)[m])

    def flip(z: np.ndarray, js: tuple[int, ...]) -> np.ndarray:
        return np.where(np.isin(np.arange(len(z)), js), 1 - z, z)

    z, x = x.copy(), x.copy()
    while cand := [y for j in np.flatnonzero(z == 0) if ok(y := flip(z, (j,)))]:
        z = max(cand, key=val)
        x = z if val(z) > val(x) else x
    improved = True
    while improved:
        improved, best = False, val(x)
        on, off = np.flatnonzero(x == 1), np.flatnonzero(x == 0)
        for js in [(j,) for j in range(len(x))] + [(i, j) for i in on for j in off]:
            if ok(y := flip(x, js)) and val(y) > best + 1e-12:
                x, improved = y, True
                break
    return x


def optimize(npv: np.ndarray, cost: np.ndarray, budget: float, *, names: Sequence[str] | None = None,
             objective: Objective = "mean", quantile: float = 0.10,
             exclusive: Sequence[Sequence[int]] = (), required: Sequence[int] = (),
             forbidden: Sequence[int] = (), time_limit: float = 30.0, max_draws: int = 400) -> Portfolio:
    """The portfolio of initiatives within ``budget`` that maximises ``objective``.

    Parameters
    ----------
    npv : ndarray of shape (draws, k)
        Each initiative's incremental NPV per Monte Carlo draw (common random numbers).
    cost : ndarray of shape (k,)
        The budget each initiative needs (``>= 0``).
    budget : float
        Total budget (``>= 0``); the empty portfolio is always feasible.
    names : sequence of str, default=None
        Initiative names (default ``"initiative 0"``, ...).
    objective : {"mean", "p10"}, default="mean"
        Expected NPV, or the lower ``quantile`` of NPV (see the module docstring).
    quantile : float, default=0.10
        Level of the ``"p10"`` objective, in ``[0, 1)``.
    exclusive : sequence of sequence of int, default=()
        Groups of initiatives of which at most one may be chosen.
    required, forbidden : sequence of int, default=()
        Initiatives that must, or must not, be chosen.
    time_limit : float, default=30.0
        Seconds for the solver; on timeout the best portfolio found is returned with a note.
    max_draws : int, default=400
        Rows used by the ``"p10"`` programme (evenly spaced rows ``0, s, 2s, ...``).

    Returns
    -------
    Portfolio
        The chosen initiatives, their cost, the objective's value and the portfolio's draws.

    Examples
    --------
    >>> npv = np.array([[3.0, 1.0, 2.0], [1.0, 1.0, 2.0]])
    >>> optimize(npv, np.array([2.0, 1.0, 1.0]), budget=2.0).chosen
    (1, 2)
    """
    npv, cost, names = _check(npv, cost, budget, names)
    if objective not in ("mean", "p10"):
        raise PortfolioError(f"objective must be 'mean' or 'p10'; got {objective!r}")
    if not 0 <= quantile < 1:
        raise PortfolioError(f"quantile must be in [0, 1); got {quantile}")
    k = npv.shape[1]
    groups = [_indices(g, k, "exclusive") for g in exclusive]
    req, forb = _indices(required, k, "required"), _indices(forbidden, k, "forbidden")
    if set(req) & set(forb):
        raise PortfolioError(f"initiatives {sorted(set(req) & set(forb))} are both required and forbidden")
    for g in groups:
        if len(set(g) & set(req)) > 1:
            raise PortfolioError(f"required initiatives {sorted(set(g) & set(req))} are mutually exclusive")
    if cost[req].sum() > budget:
        raise PortfolioError(f"required initiatives cost {money(cost[req].sum())}, "
                             f"over the budget {money(budget)}")
    lb, ub = np.zeros(k), np.ones(k)
    lb[req], ub[forb] = 1.0, 0.0
    cs = max(float(cost.max()), budget, 1e-300)
    rows = np.array([cost / cs] + [np.isin(np.arange(k), g).astype(float) for g in groups if len(g) > 1])
    rhs = np.array([budget / cs] + [1.0] * (len(rows) - 1))
    notes: list[str] = []
    if objective == "mean":
        mu = npv.mean(axis=0)
        c, kind, x0, a, hi = -mu / max(float(np.abs(mu).max()), 1e-300), np.ones(k), lb, rows, rhs
    else:  # variables: x (k), t, y (n)
        step = math.ceil(npv.shape[0] / max(int(max_draws), 1))
        s = npv[::step] / max(float(np.abs(npv).max()), 1e-300)
        n, m = s.shape[0], math.floor(quantile * s.shape[0])
        if step > 1:
            notes.append(f"optimised on {n} of {npv.shape[0]} draws (every {step}th); value uses all")
        if quantile != 0.10:
            notes.append(f"objective 'p10' at quantile {quantile:g}")
        x0 = _start(s, m, lb, lambda y: bool(np.all((y >= lb) & (y <= ub)) and np.all(rows @ y <= rhs)))
        pos, neg = np.clip(s, 0, None).sum(axis=1), np.clip(s, None, 0).sum(axis=1)
        t_hi, t_lo = np.sort(pos)[m], np.sort(s @ x0)[m] - 1e-9
        c, kind = np.r_[np.zeros(k), -1.0, np.zeros(n)], np.r_[np.ones(k), 0, np.ones(n)]
        a = np.block([[rows, np.zeros((len(rows), n + 1))],
                      [-s, np.ones((n, 1)), -np.diag(t_hi - neg)],
                      [np.zeros((1, k + 1)), np.ones((1, n))]])
        hi = np.r_[rhs, np.zeros(n), m]
        lb, ub = np.r_[lb, t_lo, np.zeros(n)], np.r_[ub, t_hi, np.ones(n)]
    res = milp(c, integrality=kind, bounds=Bounds(lb, ub), constraints=LinearConstraint(a, -np.inf, hi),
               options={"time_limit": float(time_limit), "mip_rel_gap": 0.0})
    if res.x is None and res.status != 1:
        raise PortfolioError(f"the portfolio problem could not be solved: {res.message}")
    x = x0 if res.x is None else np.round(res.x[:k])
    if objective == "p10" and np.sort(s @ x0)[m] > np.sort(s @ x)[m]:
        x = x0
    if res.status != 0:
        g = getattr(res, "mip_gap", None)
        gap = f" (gap {g:.0%})" if g is not None and np.isfinite(g) else ""
        notes.append(f"solver stopped before proving optimality ({res.message.split('.')[0]}); "
                     f"best portfolio found{gap}")
    chosen = tuple(int(i) for i in np.flatnonzero(x > 0.5))
    draws = npv[:, list(chosen)].sum(axis=1)
    value = float(draws.mean()) if objective == "mean" else lower_quantile(draws, quantile)
    return Portfolio(chosen, tuple(names[i] for i in chosen), float(cost[list(chosen)].sum()),
                     float(budget), objective, value, draws, tuple(notes))


def frontier(npv: np.ndarray, cost: np.ndarray, budgets: Sequence[float] | None = None, *,
             names: Sequence[str] | None = None, objective: Objective = "mean", n: int = 12,
             **kw: Any) -> list[Portfolio]:
    """The efficient frontier: the optimal portfolio at each budget, cheapest budget first.

    ``budgets`` defaults to ``n`` evenly spaced from 0 to the total cost of the initiatives with
    positive mean NPV (objective ``"mean"``) or of all initiatives (``"p10"``); ``names``,
    ``objective`` and ``**kw`` (``exclusive``, ``required``, ...) go to :func:`optimize`. A point
    is kept only when its value beats the previous one, so each chosen set appears once, at the
    smallest listed budget that reaches it.

    Examples
    --------
    >>> npv = np.array([[3.0, 1.0], [1.0, 1.0]])
    >>> [p.chosen for p in frontier(npv, np.array([2.0, 1.0]), [0, 1, 2, 3])]
    [(), (1,), (0,), (0, 1)]
    """
    npv, cost, _ = _check(npv, cost, 0.0, names)
    if budgets is None:
        top = cost[npv.mean(axis=0) > 0].sum() if objective == "mean" else cost.sum()
        budgets = np.linspace(0.0, float(top), max(int(n), 1))
    out: list[Portfolio] = []
    for b in sorted(float(b) for b in budgets):
        p = optimize(npv, cost, b, names=names, objective=objective, **kw)
        if not out or p.value > out[-1].value + 1e-9 * max(1.0, abs(out[-1].value)):
            out.append(p)
    return out


def rank(npv: np.ndarray, names: Sequence[str], cost: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Scenarios ranked by expected NPV, with quantiles, P(NPV > 0), ROI and P(best).

    ``prob_best`` is the share of draws in which a column has the highest NPV (ties split evenly);
    with common random numbers the shares sum to 1 and compare like with like.

    Examples
    --------
    >>> npv = np.array([[1.0, 2.0], [3.0, 0.0]])
    >>> [(r["name"], r["prob_best"]) for r in rank(npv, ["a", "b"])]
    [('a', 0.5), ('b', 0.5)]
    """
    npv = np.asarray(npv, dtype=float)
    if npv.ndim != 2 or npv.shape[1] != len(names) or not np.all(np.isfinite(npv)):
        raise PortfolioError(f"npv must be a finite (draws, {len(names)}) matrix; got shape {npv.shape}")
    if cost is not None and np.shape(cost) != (len(names),):
        raise PortfolioError(f"cost must have shape ({len(names)},); got {np.shape(cost)}")
    top = npv == npv.max(axis=1, keepdims=True)
    best = (top / top.sum(axis=1, keepdims=True)).mean(axis=0)
    order = np.argsort(-npv.mean(axis=0), kind="stable")
    out = []
    for r, j in enumerate(order, start=1):
        mean, c = float(npv[:, j].mean()), None if cost is None else float(cost[j])
        out.append({"name": str(names[j]), "rank": r, "npv": quantiles(npv[:, j]),
                    "prob_npv_positive": float(np.mean(npv[:, j] > 0)),
                    "roi": mean / c if c is not None and c > 0 else None, "prob_best": float(best[j])})
    return out
