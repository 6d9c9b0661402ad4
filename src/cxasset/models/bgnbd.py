"""BG/NBD: beta-geometric / negative binomial purchase and dropout model.

While alive a customer buys at Poisson rate lambda ~ Gamma(r, alpha); after every purchase they drop
out with probability p ~ Beta(a, b). With covariates z (time-invariant), as in CLVTools and Fader &
Hardie's covariate note: ``alpha_i = alpha * exp(-g1' z_i)`` (a positive coefficient raises the
purchase rate), ``a_i = a * exp(g2' z_i)``, ``b_i = b * exp(g3' z_i)``.

References
----------
.. [1] Fader, P. S., Hardie, B. G. S., & Lee, K. L. (2005). "Counting your customers" the easy way:
   An alternative to the Pareto/NBD model. Marketing Science, 24(2), 275-284.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import betaln, gammaln, hyp2f1

from cxasset.exceptions import ModelDataError
from cxasset.models._base import BaseModel, Constraint

RFM = ("frequency", "recency", "T")


def check_rfm(data: pd.DataFrame, name: str) -> None:
    """Shared checks of RFM data: non-negative, recency <= T, someone repeats."""
    x, tx, T = (data[c].to_numpy(dtype=float) for c in RFM)
    if np.any(~np.isfinite(x) | ~np.isfinite(tx) | ~np.isfinite(T)):
        raise ModelDataError(f"{name}: frequency, recency and T must be finite numbers")
    if np.any(x < 0) or np.any(tx < 0):
        raise ModelDataError(f"{name}: frequency and recency must be >= 0")
    if np.any(tx > T + 1e-9):
        n = int(np.sum(tx > T + 1e-9))
        raise ModelDataError(f"{name}: recency is larger than T for {n} customers; both are "
                             "measured from the first purchase, recency to the last one")
    if np.any((x == 0) & (tx > 0)):
        raise ModelDataError(f"{name}: customers with frequency 0 must have recency 0")
    if not np.any(x > 0):
        raise ModelDataError(f"{name}: nobody made a repeat purchase, so the purchase and dropout "
                             "processes cannot be told apart; use a longer calibration period")


class BetaGeoModel(BaseModel):
    """BG/NBD model, optionally with covariates on ``alpha``, ``a`` and ``b``.

    Parameters
    ----------
    penalizer : float, default=0.0
        Ridge penalty on covariate coefficients (never on ``r, alpha, a, b``).

    Attributes
    ----------
    params_ : dict
        ``r, alpha, a, b`` and covariate coefficients ``alpha[z]``, ``a[z]``, ``b[z]``.
    result_ : FitResult
        Standard errors, intervals, log-likelihood, AIC/BIC, convergence.

    Examples
    --------
    >>> m = BetaGeoModel().fit(rfm)                       # doctest: +SKIP
    >>> m.params_                                          # doctest: +SKIP
    {'r': 0.2426, 'alpha': 4.4136, 'a': 0.7929, 'b': 2.4259}
    """

    _param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    _constraints: ClassVar[dict[str, Constraint]] = {
        "r": "positive", "alpha": "positive", "a": "positive", "b": "positive"}
    _data_columns: ClassVar[tuple[str, ...]] = RFM
    _covariate_params: ClassVar[dict[str, int]] = {"alpha": -1, "a": 1, "b": 1}

    def _check_data(self, data: pd.DataFrame) -> None:
        check_rfm(data, type(self).__name__)

    def _initial_params(self, data: Mapping[str, np.ndarray], w: np.ndarray) -> dict[str, float]:
        x, T = data["frequency"], data["T"]
        rate = float(np.dot(w, x) / max(np.dot(w, T), 1e-9))
        r = 0.5
        return {"r": r, "alpha": r / max(rate, 1e-6), "a": 1.0, "b": 2.0}

    def _log_likelihood(self, p: Mapping[str, Any], data: Mapping[str, np.ndarray]) -> np.ndarray:
        r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
        x, tx, T = data["frequency"], data["recency"], data["T"]
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = betaln(a, b + x) - betaln(a, b)
        a3 = -(r + x) * np.log(alpha + T)
        a4 = np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + tx)
        a4 = np.where(x > 0, a4, -np.inf)
        return a1 + a2 + np.logaddexp(a3, a4)

    # ------------------------------------------------------------------ predictions
    def _p(self, data: pd.DataFrame | None, theta: np.ndarray | None = None) -> dict[str, Any]:
        if self.covariates_ and data is None:
            raise ModelDataError("this model has covariates: pass the customers' data")
        return self.individual_params(data if data is not None else pd.DataFrame(), theta)

    def expected_purchases(self, t: float | np.ndarray, data: pd.DataFrame | None = None
                           ) -> np.ndarray:
        """E[X(t)]: expected purchases of a new customer in ``t`` periods since their first."""
        p = self._p(data)
        r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
        t = np.asarray(t, dtype=float)
        z = t / (alpha + t)
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))

    def probability_alive(self, data: pd.DataFrame, theta: np.ndarray | None = None
                          ) -> np.ndarray:
        """P(alive at T | x, t_x, T) for each row of ``data``."""
        p = self._p(data, theta)
        x, tx, T = (data[c].to_numpy(dtype=float) for c in RFM)
        return np.exp(-self._log_odds_dead(p, x, tx, T))

    @staticmethod
    def _log_odds_dead(p: Mapping[str, Any], x: np.ndarray, tx: np.ndarray, T: np.ndarray
                       ) -> np.ndarray:
        """log(1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)), computed stably."""
        r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
        with np.errstate(divide="ignore"):
            term = (np.log(a) - np.log(np.maximum(b + x - 1, 1e-300))
                    + (r + x) * (np.log(alpha + T) - np.log(alpha + tx)))
        return np.where(x > 0, np.logaddexp(0.0, term), 0.0)

    def conditional_expected_purchases(self, t: float | np.ndarray, data: pd.DataFrame,
                                       theta: np.ndarray | None = None) -> np.ndarray:
        """E[Y(t) | x, t_x, T]: expected purchases in the next ``t`` periods of each customer."""
        p = self._p(data, theta)
        r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
        x, tx, T = (data[c].to_numpy(dtype=float) for c in RFM)
        t = np.asarray(t, dtype=float)
        ratio = (alpha + T) / (alpha + T + t)
        hyp = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
        num = (a + b + x - 1) / (a - 1) * (1 - ratio ** (r + x) * hyp)
        return num * np.exp(-self._log_odds_dead(p, x, tx, T))
