"""BG/BB: beta-geometric / beta-Bernoulli model of discrete transaction opportunities.

For repeated yes/no opportunities (annual donations, event attendance, a monthly purchase flag):
while alive, a customer transacts at each opportunity with probability p ~ Beta(alpha, beta); at the
start of each opportunity they die with probability theta ~ Beta(gamma, delta). Data per customer
(or per cell with weights): ``frequency`` x (transactions in the ``n_periods`` opportunities after
the first), ``recency`` t_x (the opportunity of the last transaction, 0 if none) and ``n_periods``.

Likelihood (Fader, Hardie & Shang 2010, eq. 5), computed on the log scale with ``betaln`` and
``logsumexp`` over the finite sum (vectorised on padded blocks of rows sorted by n - t_x, each term
from the previous one by a ratio of gamma functions):

    L = B(a+x, b+n-x)/B(a,b) B(g, d+n)/B(g,d)
        + sum_{i=0}^{n-t_x-1} B(a+x, b+t_x-x+i)/B(a,b) B(g+1, d+t_x+i)/B(g,d)

References
----------
.. [1] Fader, P. S., Hardie, B. G. S., & Shang, J. (2010). Customer-base analysis in a
   discrete-time noncontractual setting. Marketing Science, 29(6), 1086-1108.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import betaln, gammaln, logsumexp

from cxasset.exceptions import ModelDataError
from cxasset.models._base import BaseModel, Constraint

BGBB_COLUMNS = ("frequency", "recency", "n_periods")
#: padded cells of the likelihood's finite sum evaluated at once (bounds the memory)
_BLOCK = 1 << 20


class BetaGeoBetaBinomModel(BaseModel):
    """BG/BB model of discrete transaction opportunities.

    Parameters
    ----------
    penalizer : float, default=0.0
        Unused (the model takes no covariates); kept for a uniform signature.

    Attributes
    ----------
    params_ : dict
        ``alpha, beta`` (transaction probability), ``gamma, delta`` (dropout probability).
    result_ : FitResult
        Standard errors, intervals, log-likelihood.

    Examples
    --------
    >>> m = BetaGeoBetaBinomModel().fit(donations, weights=donations["weights"])  # doctest: +SKIP
    >>> m.params_                                                                 # doctest: +SKIP
    {'alpha': 1.204, 'beta': 0.750, 'gamma': 0.657, 'delta': 2.783}

    References
    ----------
    .. [1] Fader, P. S., Hardie, B. G. S., & Shang, J. (2010). Customer-base analysis in a
       discrete-time noncontractual setting. Marketing Science, 29(6), 1086-1108.
    """

    _param_names: ClassVar[tuple[str, ...]] = ("alpha", "beta", "gamma", "delta")
    _constraints: ClassVar[dict[str, Constraint]] = {
        "alpha": "positive", "beta": "positive", "gamma": "positive", "delta": "positive"}
    _data_columns: ClassVar[tuple[str, ...]] = BGBB_COLUMNS

    def _check_data(self, data: pd.DataFrame) -> None:
        check_bgbb(data, type(self).__name__)
        if not np.any(data["frequency"].to_numpy(dtype=float) > 0):
            raise ModelDataError(f"{type(self).__name__}: nobody transacted after the first "
                                 "opportunity, so transaction and dropout cannot be told apart")

    def _initial_params(self, data: Mapping[str, np.ndarray], w: np.ndarray) -> dict[str, float]:
        x, n = data["frequency"], data["n_periods"]
        share = float(np.dot(w, x) / max(np.dot(w, n), 1e-9))
        share = min(max(share, 0.02), 0.98)
        return {"alpha": share, "beta": 1.0 - share, "gamma": 1.0, "delta": 2.0}

    def _log_likelihood(self, p: Mapping[str, Any], data: Mapping[str, np.ndarray]) -> np.ndarray:
        a, b, g, d = p["alpha"], p["beta"], p["gamma"], p["delta"]
        x, tx, n = data["frequency"], data["recency"], data["n_periods"]
        bab, bgd = betaln(a, b), betaln(g, d)
        alive = betaln(a + x, b + n - x) - bab + betaln(g, d + n) - bgd
        # the finite sum over i = 0..n-t_x-1: rows sorted by their gap n - t_x and taken in
        # blocks of bounded padded size; within a row, term i follows from term i-1 by
        # B(u, v+1) = B(u, v) v / (u+v), so only the first term needs betaln
        gap = (n - tx).astype(np.int64)
        out = alive.copy()
        rows = np.flatnonzero(gap > 0)
        rows = rows[np.argsort(gap[rows], kind="stable")]
        start = 0
        while start < len(rows):
            guess = min(start + max(_BLOCK // int(gap[rows[start]]), 1), len(rows))
            stop = min(start + max(_BLOCK // int(gap[rows[guess - 1]]), 1), len(rows))
            r = rows[start:stop]
            out[r] = self._gap_sum(a, b, g, d, x[r], tx[r], gap[r], alive[r], bab, bgd)
            start = stop
        return out

    @staticmethod
    def _gap_sum(a: float, b: float, g: float, d: float, x: np.ndarray, tx: np.ndarray,
                 gap: np.ndarray, alive: np.ndarray, bab: float, bgd: float) -> np.ndarray:
        """log(alive term + sum_{i<gap} B(a+x, b+t_x-x+i)/B(a,b) B(g+1, d+t_x+i)/B(g,d))."""
        first = betaln(a + x, b + tx - x) - bab + betaln(g + 1, d + tx) - bgd
        width = int(gap.max())
        i = np.arange(1, width, dtype=float)[None, :]
        u, v = (b + tx - x)[:, None] + i - 1, (d + tx)[:, None] + i - 1
        step = np.log(u * v / ((a + b + tx[:, None] + i - 1) * (g + 1 + v)))
        terms = first[:, None] + np.concatenate([np.zeros((len(x), 1)),
                                                 np.cumsum(step, axis=1)], axis=1)
        terms = np.where(np.arange(width)[None, :] < gap[:, None], terms, -np.inf)
        return logsumexp(np.column_stack([alive, terms]), axis=1)

    # ------------------------------------------------------------------ predictions
    def _abgd(self) -> tuple[float, float, float, float]:
        """The parameters at ``_theta`` (so :meth:`with_theta` copies predict at theirs)."""
        self._check_is_fitted()
        p = self.individual_params(pd.DataFrame())
        return float(p["alpha"]), float(p["beta"]), float(p["gamma"]), float(p["delta"])

    def expected_purchases(self, n: float | np.ndarray) -> np.ndarray:
        """E[X(n)]: expected transactions of a new customer in the first ``n`` opportunities
        (eq. 7)."""
        a, b, g, d = self._abgd()
        n = np.asarray(n, dtype=float)
        ratio = np.exp(gammaln(g + d) - gammaln(g + d + n) + gammaln(1 + d + n) - gammaln(1 + d))
        return a / (a + b) * d / (g - 1) * (1 - ratio)

    def _log_lik_rows(self, data: pd.DataFrame) -> tuple[np.ndarray, ...]:
        check_bgbb(data, type(self).__name__)
        arr = {c: data[c].to_numpy(dtype=float) for c in BGBB_COLUMNS}
        a, b, g, d = self._abgd()
        ll = self._log_likelihood({"alpha": a, "beta": b, "gamma": g, "delta": d}, arr)
        return ll, arr["frequency"], arr["recency"], arr["n_periods"]

    def probability_alive(self, data: pd.DataFrame, n_future: int | float = 0) -> np.ndarray:
        """P(alive at opportunity ``n_periods + n_future`` | history) for each row.

        ``n_future = 0`` is the probability of being alive at the last observed opportunity
        (as lifetimes' ``conditional_probability_alive(0, ...)``); ``n_future = 1`` is the
        paper's eq. (11), alive at the next opportunity.
        """
        a, b, g, d = self._abgd()
        ll, x, _, n = self._log_lik_rows(data)
        num = betaln(a + x, b + n - x) - betaln(a, b) + betaln(g, d + n + n_future) - betaln(g, d)
        return np.exp(num - ll)

    def conditional_expected_purchases(self, n_future: int | float, data: pd.DataFrame
                                       ) -> np.ndarray:
        """E[X(n, n + n_future) | x, t_x, n]: expected transactions in the next ``n_future``
        opportunities of each row (eq. 13)."""
        a, b, g, d = self._abgd()
        ll, x, _, n = self._log_lik_rows(data)
        lead = (betaln(a + x + 1, b + n - x) - betaln(a, b) - ll
                + gammaln(g + d) - gammaln(1 + d))
        k1 = np.exp(gammaln(1 + d + n) - gammaln(g + d + n))
        k2 = np.exp(gammaln(1 + d + n + n_future) - gammaln(g + d + n + n_future))
        return np.exp(lead) * d / (g - 1) * (k1 - k2)

    def expected_purchases_by_opportunity(self, n_future: int, data: pd.DataFrame
                                          ) -> np.ndarray:
        """Expected transactions of each row at each of its next ``n_future`` opportunities.

        Parameters
        ----------
        n_future : int
            How many future opportunities (``>= 1``).
        data : DataFrame
            ``frequency, recency, n_periods`` per row.

        Returns
        -------
        ndarray of shape (len(data), n_future)
            Column k - 1 is P(transaction at opportunity n + k | x, t_x, n), the increment of
            :meth:`conditional_expected_purchases` from k - 1 to k; the row sums are
            ``conditional_expected_purchases(n_future, data)``.
        """
        if int(n_future) != n_future or n_future < 1:
            raise ModelDataError(f"n_future must be a whole number of opportunities >= 1; got "
                                 f"{n_future!r}")
        a, b, g, d = self._abgd()
        ll, x, _, n = self._log_lik_rows(data)
        # P(transact at n + k | history) = E[p | x, n] P(alive at n + k | history): the closed
        # form of the increments, stable for long horizons (no difference of large terms)
        k = np.arange(1, int(n_future) + 1, dtype=float)[None, :]
        log_p = (betaln(a + x + 1, b + n - x) - betaln(a + x, b + n - x))[:, None]
        log_alive = (betaln(a + x, b + n - x) - betaln(a, b) - ll)[:, None] + (
            betaln(g, d + n[:, None] + k) - betaln(g, d))
        return np.exp(log_p + log_alive)


def check_bgbb(data: pd.DataFrame, name: str) -> None:
    """Checks of BG/BB data: whole numbers, ``0 <= frequency <= recency <= n_periods``."""
    missing = [c for c in BGBB_COLUMNS if c not in data.columns]
    if missing:
        raise ModelDataError(f"{name}: required column(s) {missing} missing; data has "
                             f"{list(data.columns)}")
    x, tx, n = (data[c].to_numpy(dtype=float) for c in BGBB_COLUMNS)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(tx)) and np.all(np.isfinite(n))):
        raise ModelDataError(f"{name}: frequency, recency and n_periods must be finite")
    if np.any(x != np.round(x)) or np.any(tx != np.round(tx)) or np.any(n != np.round(n)):
        raise ModelDataError(f"{name}: frequency, recency and n_periods count opportunities and "
                             "must be whole numbers")
    if np.any(x < 0) or np.any(x > tx) or np.any(tx > n):
        bad = int(np.sum((x < 0) | (x > tx) | (tx > n)))
        raise ModelDataError(f"{name}: {bad} rows break 0 <= frequency <= recency <= n_periods")
    if np.any((x == 0) & (tx > 0)):
        raise ModelDataError(f"{name}: rows with frequency 0 must have recency 0")
