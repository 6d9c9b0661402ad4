"""Re-checks of a lever before it is called one: a second estimator, a placebo, two halves.

- **Second estimator**: double machine learning (Chernozhukov et al. 2018), partially linear:
  an observable outcome of the mechanism and the driver are both residualised on every other
  driver and control with gradient boosting (scikit-learn, 2-fold cross-fitting), and the
  outcome residual is regressed on the driver residual (robust standard error). It assumes no
  functional form for the controls, unlike the mechanism model. Observable outcomes: repeat
  purchases per period alive (purchase rate), the share of the customer's window since their
  last purchase (dropout), log mean spend of repeat buyers (spend), contacts and referrals per
  period alive. It agrees when its estimate has the same sign and p < 0.05.
- **Placebo**: every lever's driver is shuffled across customers at once and the mechanisms
  refitted; a shuffled driver must show no effect (p > 0.05), or the estimator finds effects
  that are not there.
- **Subset stability**: the mechanisms are refitted on two random halves of the customers; the
  effect must keep its sign in both.

A significant lever passing all three is *robust*; otherwise *fragile*, with the reasons.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from cxasset.valuemap.estimate import Estimate
from cxasset.valuemap.mechanisms import MechanismFit


@dataclass
class Robustness:
    """Checks of one (driver, mechanism)."""

    dml: dict[str, float] = field(default_factory=dict)  # estimate, std_err, p_value
    placebo_p: float = float("nan")
    halves: list[float] = field(default_factory=list)  # the effect in each half
    reasons: list[str] = field(default_factory=list)

    @property
    def robust(self) -> bool:
        return not self.reasons

    def to_dict(self) -> dict[str, Any]:
        return {"robust": self.robust, "reasons": self.reasons, "dml": self.dml,
                "placebo_p_value": self.placebo_p, "halves": self.halves}


def observable(est: Estimate, mechanism: str) -> tuple[np.ndarray, np.ndarray]:
    """Per customer observable outcome of a mechanism and the mask of customers it applies to."""
    f = est.features
    alive = f["alive_exposure"].to_numpy(dtype=float)
    if mechanism == "retention":
        return f["churned"].to_numpy(dtype=float), np.ones(len(f), bool)
    if mechanism in ("cost_to_serve", "referrals"):
        col = {"cost_to_serve": "contacts", "referrals": "referrals"}[mechanism]
        return f[col].to_numpy(dtype=float) / alive, np.ones(len(f), bool)
    x = f["frequency"].to_numpy(dtype=float)
    if mechanism == "purchase_rate":
        return x / alive, np.ones(len(f), bool)
    if mechanism == "dropout":
        T, rec = f["T"].to_numpy(dtype=float), f["recency"].to_numpy(dtype=float)
        return (T - rec) / np.maximum(T, 1e-9), T > 0
    if mechanism == "spend":
        m = f["monetary_value"].to_numpy(dtype=float)
        ok = (x > 0) & (m > 0)
        return np.log(np.where(ok, m, 1.0)), ok
    raise ValueError(f"no observable outcome for mechanism {mechanism!r}")


class CrossFits:
    """Partially linear double machine learning estimates of ``(driver, mechanism)`` effects
    (per unit) on customers ``rows``, started on creation and collected by :meth:`result`. A
    driver's cross-fitted residual serves all its mechanisms; the drivers are cross-fitted in
    worker processes when the work is large enough (:data:`PARALLEL_MIN_ROWS`) and the machine
    has more than one core (same results), while the caller goes on with other work."""

    def __init__(self, est: Estimate, pairs: list[tuple[str, str]], rows: np.ndarray,
                 seed: int = 0) -> None:
        fold = np.random.default_rng(seed).integers(0, 2, len(rows))
        self.mechanisms: dict[str, list[str]] = {}
        for d, m in pairs:
            self.mechanisms.setdefault(d, []).append(m)
        self.outcome = {m: observable(est, m) for _, m in pairs}
        self.rows = rows
        design_rows = est.design.frame.iloc[rows]
        jobs = []
        for d, ms in self.mechanisms.items():
            others = [t for t in est.design.terms if t != d
                      and est.design.extra.get(t, ("",))[0] != d]
            jobs.append((design_rows[others].to_numpy(dtype=float), est.design.raw(d)[rows],
                         [(self.outcome[m][0][rows], self.outcome[m][1][rows]) for m in ms],
                         fold, seed))
        self._pending = _start(_cross_fit, jobs)

    def result(self) -> dict[tuple[str, str], dict[str, float]]:
        out = {}
        for (d, ms), (rd_all, rys) in zip(self.mechanisms.items(), self._pending(),
                                          strict=True):
            for m, ry in zip(ms, rys, strict=True):
                rd = rd_all[self.outcome[m][1][self.rows]]
                b = float(rd @ ry / (rd @ rd))
                e = ry - b * rd
                se = float(np.sqrt(np.sum(rd**2 * e**2)) / (rd @ rd))
                out[(d, m)] = {"estimate": b, "std_err": se,
                               "p_value": float(2 * stats.norm.sf(abs(b) / se)),
                               "outcome": OUTCOMES[m], "n": len(ry)}
        return out


def dml(est: Estimate, pairs: list[tuple[str, str]], rows: np.ndarray, seed: int = 0
        ) -> dict[tuple[str, str], dict[str, float]]:
    """:class:`CrossFits` of ``pairs``, waited for."""
    return CrossFits(est, pairs, rows, seed).result()


#: Rows of boosting fits (customers x models) from which the drivers' cross-fits run in parallel
#: processes: below it, starting the workers costs more than it saves.
PARALLEL_MIN_ROWS = 100_000


def _start(fn: Any, jobs: list[tuple[Any, ...]]) -> Callable[[], list[Any]]:
    """``[fn(*job) for job in jobs]``: submitted to worker processes (joblib's loky) when worth
    it, else computed when asked for; returns the function that waits for the results."""
    work = sum(len(j[1]) * (1 + len(j[2])) for j in jobs)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = min(len(jobs), cores or 1)
    if workers < 2 or work < PARALLEL_MIN_ROWS:
        return lambda: [fn(*j) for j in jobs]
    from joblib.externals.loky import get_reusable_executor  # joblib: scikit-learn's

    executor = get_reusable_executor(max_workers=workers)
    futures = [executor.submit(fn, *j) for j in jobs]
    return lambda: [f.result() for f in futures]


def _cross_fit(X: np.ndarray, x: np.ndarray, outcomes: list[tuple[np.ndarray, np.ndarray]],
               fold: np.ndarray, seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """A driver's residual and each outcome's (on the customers it applies to) on the other
    drivers and controls ``X``."""
    return (_residual(X, x, fold, seed),
            [_residual(X[ok], y[ok], fold[ok], seed) for y, ok in outcomes])


OUTCOMES = {"purchase_rate": "repeat purchases per period alive",
            "dropout": "share of the window since the last purchase",
            "spend": "log mean spend", "cost_to_serve": "contacts per period alive",
            "referrals": "referrals per period alive", "retention": "churned by now (0/1)"}


#: The nuisance learner: small trees (15 leaves, 63 bins) fit the few thousand customers of a
#: re-check as well as the default 31 leaves and 255 bins at half the time; on the 100,000-
#: customer benchmark book with 30 drivers they agreed on 28 of 30 verdicts, the two others
#: planted effects (training) that the smaller trees confirmed and the larger did not.
HGB = {"max_iter": 60, "learning_rate": 0.15, "max_leaf_nodes": 15, "max_bins": 63}


def _residual(X: np.ndarray, y: np.ndarray, fold: np.ndarray, seed: int) -> np.ndarray:
    """``y`` minus its 2-fold cross-fitted gradient-boosting prediction from ``X``.

    One OpenMP thread: on a few thousand rows the threads' synchronisation costs more than it
    saves, and on a machine shared with other jobs their spin-waiting made the boosting 10x
    slower (the fit is the same with any number of threads)."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    out = np.empty(len(y))
    with threadpool_limits(limits=1, user_api="openmp"):
        for k in (0, 1):
            tr, te = fold != k, fold == k
            m = HistGradientBoostingRegressor(random_state=seed, **HGB)
            m.fit(X[tr], y[tr])
            out[te] = y[te] - m.predict(X[te])
    return out


class Checks:
    """The re-checks of significant ``(driver, mechanism, effect)`` levers: created, they draw
    their customers and start the second estimator (in worker processes on a large book);
    :meth:`result` refits the placebo and the halves and gathers everything."""

    def __init__(self, est: Estimate, levers: list[tuple[str, str, float]],
                 max_rows: int = 10_000, dml_rows: int = 5_000, seed: int = 0) -> None:
        self.est, self.levers = est, levers
        rng = np.random.default_rng(seed + 1)
        n = len(est.fit_rows)
        self.sub = np.sort(rng.choice(est.fit_rows, size=min(n, max_rows), replace=False))
        if not levers:
            return
        # placebo: every lever driver (and its threshold terms) shuffled at once
        self.perms = {d: rng.permutation(len(est.design.frame))
                      for d in sorted({d for d, _, _ in levers})}
        self.half = rng.permutation(self.sub)
        dml_sub = np.sort(rng.choice(self.sub, size=min(len(self.sub), dml_rows),
                                     replace=False))
        self.second = CrossFits(est, [(d, m) for d, m, _ in levers], dml_sub, seed)

    def result(self) -> dict[tuple[str, str], Robustness]:
        est, levers = self.est, self.levers
        out = {(d, m): Robustness() for d, m, _ in levers}
        if not levers:
            return out
        frame = est.design.frame.copy()
        for d, perm in self.perms.items():
            cols = [d, *[t for t, (dd, _) in est.design.extra.items() if dd == d]]
            miss = f"{d}:missing"
            if miss in frame.columns:
                cols.append(miss)
            frame[cols] = frame[cols].to_numpy()[perm]
        placebo = est.refit(self.sub, frame)
        half = self.half
        halves = [est.refit(np.sort(half[: len(half) // 2])),
                  est.refit(np.sort(half[len(half) // 2:]))]
        second = self.second.result()
        for d, m, effect in levers:
            r = out[(d, m)]
            r.placebo_p = _p(placebo.get(m), est, d)
            if r.placebo_p < 0.05:
                r.reasons.append(f"the shuffled driver also shows an effect "
                                 f"(p = {r.placebo_p:.3f})")
            r.halves = [_effect(h.get(m), est, d) for h in halves]
            if any(np.sign(h) != np.sign(effect) for h in r.halves):
                r.reasons.append("the effect changes sign between two random halves of "
                                 "customers")
            r.dml = second[(d, m)]
            if np.sign(r.dml["estimate"]) != np.sign(effect) or r.dml["p_value"] >= 0.05:
                r.reasons.append(f"the second estimator (double machine learning on "
                                 f"{r.dml['outcome']}) does not confirm it "
                                 f"(estimate {r.dml['estimate']:+.3g}, "
                                 f"p = {r.dml['p_value']:.3f})")
        return out


def check_levers(est: Estimate, levers: list[tuple[str, str, float]], max_rows: int = 10_000,
                 dml_rows: int = 5_000, seed: int = 0) -> dict[tuple[str, str], Robustness]:
    """Robustness of each significant ``(driver, mechanism, effect)`` (:class:`Checks`)."""
    return Checks(est, levers, max_rows, dml_rows, seed).result()


def _p(fit: MechanismFit | None, est: Estimate, driver: str) -> float:
    return float("nan") if fit is None else fit.effect(driver, est.design)[2]


def _effect(fit: MechanismFit | None, est: Estimate, driver: str) -> float:
    return float("nan") if fit is None else fit.effect(driver, est.design)[0]
