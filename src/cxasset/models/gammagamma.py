"""Gamma-Gamma model of the mean spend per transaction.

A customer's transaction values are Gamma(p, nu); across customers nu ~ Gamma(q, gamma). Only the
customer's number of transactions ``x`` and their mean value ``m`` enter the likelihood, and only
repeat buyers (``x > 0``) carry information: customers with ``frequency == 0`` are dropped before the
fit. The model assumes that spend is independent of purchase frequency; :meth:`fit` checks it
(:meth:`GammaGammaModel.independence_check`) and notes a material dependence.

With covariates (optional) on ``gamma``: ``gamma_i = gamma * exp(g' z_i)``, a positive
coefficient raises the expected spend.

Lifetimes calls ``gamma`` ``v``; here the parameters keep the note's names ``p, q, gamma``.

References
----------
.. [1] Fader, P. S., & Hardie, B. G. S. (2013). The Gamma-Gamma model of monetary value.
   http://www.brucehardie.com/notes/025/
.. [2] Fader, P. S., Hardie, B. G. S., & Lee, K. L. (2005). RFM and CLV: Using iso-value curves for
   customer base analysis. Journal of Marketing Research, 42(4), 415-430.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import digamma, gammaln

from cxasset.exceptions import ModelDataError
from cxasset.models._base import BaseModel, Constraint

#: fewest repeat buyers a fit accepts
MIN_REPEAT_BUYERS = 10
#: |correlation| at or above which spend and frequency are called materially dependent
MATERIAL_CORRELATION = 0.3
#: |correlation| at or above which a significant (p < SIGNIFICANCE) correlation is called weak dependence
WEAK_CORRELATION = 0.1
SIGNIFICANCE = 0.01


@dataclass(frozen=True)
class IndependenceCheck:
    """Correlation between purchase frequency and mean spend among repeat buyers.

    The rule (also in ``verdict``): *material* if either |correlation| >= 0.3; *weak* if either
    |correlation| >= 0.1 with p < 0.01; otherwise *none*. A material dependence means the
    Gamma-Gamma model's spend predictions are biased for frequent (or infrequent) buyers.
    """

    n: int
    pearson: float
    pearson_pvalue: float
    spearman: float
    spearman_pvalue: float
    dependence: str
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def independence_check(frequency: np.ndarray, monetary_value: np.ndarray,
                       weights: np.ndarray | None = None) -> IndependenceCheck:
    """Pearson and Spearman correlation of frequency and mean spend of repeat buyers.

    Integer ``weights`` (customers per row) repeat rows; other weights are not supported.
    """
    x = np.asarray(frequency, dtype=float)
    m = np.asarray(monetary_value, dtype=float)
    keep = x > 0
    x, m = x[keep], m[keep]
    if weights is not None:
        w = np.asarray(weights, dtype=float)[keep]
        if not np.allclose(w, np.round(w)):
            raise ModelDataError("independence_check needs integer weights (customers per row)")
        x, m = np.repeat(x, w.astype(int)), np.repeat(m, w.astype(int))
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(m) == 0:
        return IndependenceCheck(len(x), float("nan"), float("nan"), float("nan"), float("nan"),
                                 "unknown", "too few distinct repeat buyers to check the "
                                 "independence of spend and frequency")
    pr = stats.pearsonr(x, m)
    sr = stats.spearmanr(x, m)
    rp, pp, rs, ps = float(pr.statistic), float(pr.pvalue), float(sr.statistic), float(sr.pvalue)
    big = max(abs(rp), abs(rs))
    sig = min(pp, ps) < SIGNIFICANCE
    if big >= MATERIAL_CORRELATION:
        dep = "material"
        verdict = (f"spend and frequency are materially correlated (Pearson {rp:.2f}, Spearman "
                   f"{rs:.2f}): the Gamma-Gamma model assumes independence, so expected spend is "
                   "biased for frequent buyers; model spend with a covariate or by segment")
    elif big >= WEAK_CORRELATION and sig:
        dep = "weak"
        verdict = (f"spend and frequency are weakly but significantly correlated (Pearson "
                   f"{rp:.2f}, Spearman {rs:.2f}); the independence assumption is a reasonable "
                   "approximation")
    else:
        dep = "none"
        verdict = (f"no material correlation between spend and frequency (Pearson {rp:.2f}, "
                   f"Spearman {rs:.2f}): the independence assumption holds")
    return IndependenceCheck(len(x), rp, pp, rs, ps, dep, verdict)


class GammaGammaModel(BaseModel):
    """Gamma-Gamma model of mean spend per transaction, fitted on repeat buyers.

    Parameters
    ----------
    penalizer : float, default=0.0
        Ridge penalty on covariate coefficients (never on ``p, q, gamma``).

    Attributes
    ----------
    params_ : dict
        ``p, q, gamma`` (and ``gamma[z]`` for covariates).
    result_ : FitResult
        Standard errors, intervals, log-likelihood; ``notes`` says how many one-time buyers were
        left out and whether spend depends on frequency.
    independence_ : IndependenceCheck
        Correlation of frequency and mean spend among the repeat buyers used in the fit.

    Examples
    --------
    >>> m = GammaGammaModel().fit(rfm)                    # doctest: +SKIP
    >>> m.params_                                          # doctest: +SKIP
    {'p': 6.2488, 'q': 3.7443, 'gamma': 15.4442}
    >>> m.conditional_expected_average_profit(rfm)        # doctest: +SKIP

    References
    ----------
    .. [1] Fader, P. S., & Hardie, B. G. S. (2013). The Gamma-Gamma model of monetary value.
    """

    _param_names: ClassVar[tuple[str, ...]] = ("p", "q", "gamma")
    _constraints: ClassVar[dict[str, Constraint]] = {
        "p": "positive", "q": "positive", "gamma": "positive"}
    _data_columns: ClassVar[tuple[str, ...]] = ("frequency", "monetary_value")
    _covariate_params: ClassVar[dict[str, int]] = {"gamma": 1}

    def fit(self, data: pd.DataFrame, covariates: Mapping[str, Sequence[str]] | Sequence[str]
            | None = None, weights: np.ndarray | None = None,
            start_params: Mapping[str, float] | None = None) -> Self:
        """Fit on the repeat buyers (``frequency > 0``) of ``data``; one-time buyers are dropped.

        Parameters
        ----------
        data : DataFrame
            Columns ``frequency`` (repeat transactions) and ``monetary_value`` (mean value of the
            repeat transactions), plus any covariate columns.
        covariates : list of str, optional
            Covariates acting on ``gamma``.
        weights : array, optional
            Customers each row stands for.
        start_params : dict, optional
            Starting values by name (see :meth:`BaseModel.fit`).
        """
        name = type(self).__name__
        missing = [c for c in self._data_columns if c not in data.columns]
        if missing:
            raise ModelDataError(f"{name}: required column(s) {missing} missing; data has "
                                 f"{list(data.columns)}")
        x = data["frequency"].to_numpy(dtype=float)
        m = data["monetary_value"].to_numpy(dtype=float)
        if np.any(~np.isfinite(x) | ~np.isfinite(m)) or np.any(x < 0):
            raise ModelDataError(f"{name}: frequency and monetary_value must be finite, and "
                                 "frequency >= 0")
        repeat = x > 0
        w = np.ones(len(data)) if weights is None else np.asarray(weights, dtype=float)
        n_repeat = float(w[repeat].sum())
        if n_repeat < MIN_REPEAT_BUYERS:
            raise ModelDataError(f"{name}: {n_repeat:g} repeat buyers (frequency > 0); the model "
                                 f"needs at least {MIN_REPEAT_BUYERS} to estimate spend")
        bad = repeat & (m <= 0)
        if np.any(bad):
            raise ModelDataError(f"{name}: {int(bad.sum())} repeat buyers have monetary_value <= "
                                 "0; the model needs positive spend: drop returns/refunds or "
                                 "customers with zero-value transactions")
        super().fit(data.loc[repeat], covariates=covariates, weights=w[repeat],
                    start_params=start_params)
        self.independence_ = independence_check(x[repeat], m[repeat],
                                                None if weights is None else w[repeat])
        notes = list(self.result_.notes)
        n_dropped = float(w[~repeat].sum())
        if n_dropped:
            notes.append(f"fitted on {n_repeat:g} repeat buyers; {n_dropped:g} one-time buyers "
                         "(frequency 0) carry no spend information and were left out")
        if self.independence_.dependence in ("material", "weak"):
            notes.append(self.independence_.verdict)
        self.result_ = replace(self.result_, notes=tuple(notes))
        return self

    def _initial_params(self, data: Mapping[str, np.ndarray], w: np.ndarray) -> dict[str, float]:
        # method of moments on the customer means: E[m] = p gamma / (q - 1)
        m = data["monetary_value"]
        mean = float(np.dot(w, m) / w.sum())
        return {"p": 2.0, "q": 3.0, "gamma": max(mean, 1e-6)}

    def _prepare(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        # data-only terms, computed once per fit rather than at every evaluation
        x, m = data["frequency"], data["monetary_value"]
        return {**data, "_log_mx": np.log(m * x), "_log_m": np.log(m)}

    def _log_likelihood(self, p: Mapping[str, Any], data: Mapping[str, np.ndarray]) -> np.ndarray:
        pp, q, g = p["p"], p["q"], p["gamma"]
        x, m = data["frequency"], data["monetary_value"]
        log_mx = data["_log_mx"] if "_log_mx" in data else np.log(m * x)
        log_m = data["_log_m"] if "_log_m" in data else np.log(m)
        px = pp * x
        return (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(g)
                + px * log_mx - log_m - (px + q) * np.log(g + m * x))

    def _ll_grad(self, p: Mapping[str, Any], data: Mapping[str, np.ndarray]
                 ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Per-row log-likelihood and its derivatives in ``p, q, gamma`` (analytic)."""
        pp, q, g = p["p"], p["q"], p["gamma"]
        x, m = data["frequency"], data["monetary_value"]
        log_mx = data["_log_mx"] if "_log_mx" in data else np.log(m * x)
        log_m = data["_log_m"] if "_log_m" in data else np.log(m)
        px = pp * x
        gmx = g + m * x
        log_gmx = np.log(gmx)
        dg_pxq = digamma(px + q)
        ll = (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(g)
              + px * log_mx - log_m - (px + q) * log_gmx)
        return ll, {"p": x * (dg_pxq - digamma(px) + log_mx - log_gmx),
                    "q": dg_pxq - digamma(q) + np.log(g) - log_gmx,
                    "gamma": q / g - (px + q) / gmx}

    # ------------------------------------------------------------------ predictions
    def _p(self, data: pd.DataFrame | None, theta: np.ndarray | None = None) -> dict[str, Any]:
        if self.covariates_ and data is None:
            raise ModelDataError("this model has covariates: pass the customers' data")
        return self.individual_params(data if data is not None else pd.DataFrame(), theta)

    def expected_spend(self, data: pd.DataFrame | None = None,
                       theta: np.ndarray | None = None) -> np.ndarray | float:
        """Population mean spend per transaction, ``p gamma / (q - 1)`` (per row with covariates)."""
        p = self._p(data, theta)
        if np.any(np.asarray(p["q"]) <= 1):
            raise ModelDataError(f"q = {self.params_['q']:.4g} <= 1: the mean spend of the "
                                 "Gamma-Gamma model is infinite; the data have a very heavy "
                                 "spend tail (cap outliers or model spend by segment)")
        return p["p"] * p["gamma"] / (p["q"] - 1)

    def conditional_expected_average_profit(self, data: pd.DataFrame,
                                            theta: np.ndarray | None = None) -> np.ndarray:
        """Expected mean spend per transaction of each customer given ``frequency`` and
        ``monetary_value``: ``(gamma + m x) p / (p x + q - 1)``; for ``x = 0`` the population mean
        ``p gamma / (q - 1)``.

        Raises
        ------
        ModelDataError
            If ``q <= 1`` (the mean spend is then infinite).
        """
        self._check_is_fitted()
        x = data["frequency"].to_numpy(dtype=float)
        m = np.where(x > 0, data["monetary_value"].to_numpy(dtype=float), 0.0)
        p = self._p(data, theta)
        pp, q, g = p["p"], p["q"], p["gamma"]
        if np.any(np.asarray(q) <= 1):
            raise ModelDataError(f"q = {self.params_['q']:.4g} <= 1: the mean spend of the "
                                 "Gamma-Gamma model is infinite; the data have a very heavy "
                                 "spend tail (cap outliers or model spend by segment)")
        return np.asarray((g + m * x) * pp / (pp * x + q - 1), dtype=float)

    def independence_check(self, data: pd.DataFrame,
                           weights: np.ndarray | None = None) -> IndependenceCheck:
        """Correlation of ``frequency`` and ``monetary_value`` among the repeat buyers of ``data``
        (Pearson and Spearman with p-values, and a verdict). Needs no fit."""
        return independence_check(data["frequency"].to_numpy(dtype=float),
                                  data["monetary_value"].to_numpy(dtype=float), weights)
