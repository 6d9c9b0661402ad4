"""Thresholds and non-linearity of a driver's effect: a binned check.

The driver is cut into up to ``bins`` quantile bins and its linear term is replaced by one 0/1
term per bin (the first bin is the baseline; the other drivers and the controls stay as they
are). The bins' coefficients ``c_k`` (with their covariance ``V``) are then compared, by
generalised least squares, with

- a straight line through the bins' mean values (the linear model): the lack of fit
  ``(c - X b)' V^-1 (c - X b)`` is chi-square with ``bins - 2`` degrees of freedom, and
- a line plus a step between two neighbouring bins: the best step's improvement is
  chi-square with 1 degree of freedom, Bonferroni-adjusted over the possible cuts.

A step significant at ``alpha`` (default 1%) after that adjustment is a *threshold*: the
driver value (a bin edge) above which the effect jumps, e.g. "dropout jumps once onboarding
takes more than 21 days".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from cxasset.valuemap.drivers import Design
from cxasset.valuemap.mechanisms import MechanismFit


@dataclass(frozen=True)
class Threshold:
    """The result of the binned check of one driver in one mechanism."""

    driver: str
    mechanism: str
    cut: float | None  # the driver value above which the effect jumps (None: no threshold)
    jump: float  # the step on the mechanism's log scale
    p_value: float  # of the best step, Bonferroni-adjusted
    nonlinear_p: float  # lack of fit of the straight line
    edges: list[float]
    bin_effects: list[float]  # per bin, the first 0

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def bin_edges(x: np.ndarray, bins: int = 8) -> np.ndarray:
    """Inner bin edges at quantiles (whole numbers for a whole-number driver): a customer is in
    bin k when ``edges[k-1] < x <= edges[k]``."""
    q = np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1])
    if np.allclose(x, np.round(x)):
        q = np.round(q)
    edges = np.unique(q)
    return edges[(edges > x.min()) & (edges < x.max())]


def binned_frame(design: Design, driver: str, edges: np.ndarray) -> tuple[Any, list[str]]:
    """The design with the driver's linear term replaced by bin dummies (missing values keep
    their flag and sit in the baseline bin)."""
    x = design.raw(driver)
    miss = design.frame.get(f"{driver}:missing")
    k = np.searchsorted(edges, x, side="left")  # bin index: x <= edges[k]
    if miss is not None:
        k = np.where(miss.to_numpy() == 1, 0, k)
    frame = design.frame.drop(columns=[driver])
    names = []
    for j in range(1, len(edges) + 1):
        name = f"{driver}#bin{j}"
        frame[name] = (k == j).astype(float)
        names.append(name)
    return frame, names


def check(fit: MechanismFit, design: Design, driver: str, names: list[str], edges: np.ndarray,
          alpha: float = 0.01) -> Threshold:
    """The GLS comparison of the bins' effects with a line, and with a line plus a step."""
    idx = [fit.terms.index(n) for n in names]
    c = fit.coef[idx]
    V = fit.cov[np.ix_(idx, idx)]
    x = design.raw(driver)
    miss = design.frame.get(f"{driver}:missing")
    seen = np.ones(len(x), bool) if miss is None else miss.to_numpy() == 0
    k = np.searchsorted(edges, x, side="left")
    means = np.array([x[seen & (k == j)].mean() if np.any(seen & (k == j)) else np.nan
                      for j in range(len(edges) + 1)])
    centre = means[1:] - means[0]
    W = np.linalg.pinv(V)

    def rss(X: np.ndarray) -> tuple[float, np.ndarray]:
        b = np.linalg.lstsq(X.T @ W @ X, X.T @ W @ c, rcond=None)[0]
        r = c - X @ b
        return float(r @ W @ r), b

    lin, _ = rss(centre[:, None])
    nonlinear_p = float(stats.chi2.sf(lin, max(len(c) - 1, 1)))
    best, cut_at, jump = 0.0, None, 0.0
    for j in range(1, len(edges)):  # step between bin j and j+1 (c index j-1 | j)
        step = (np.arange(len(c)) >= j).astype(float)
        val, b = rss(np.column_stack([centre, step]))
        if lin - val > best:
            best, cut_at, jump = lin - val, j, float(b[1])
    n_cuts = max(len(edges) - 1, 1)
    p = float(min(1.0, stats.chi2.sf(best, 1) * n_cuts)) if cut_at else 1.0
    cut = float(edges[cut_at]) if cut_at is not None and p < alpha else None
    return Threshold(driver, fit.name, cut, jump if cut is not None else 0.0, p, nonlinear_p,
                     [float(e) for e in edges], [0.0, *[float(v) for v in c]])
