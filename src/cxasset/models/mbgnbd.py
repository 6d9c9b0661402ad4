"""MBG/NBD: the BG/NBD with a chance to drop out right after the first purchase too.

While alive a customer buys at Poisson rate lambda ~ Gamma(r, alpha); at time 0 (the first
purchase) and after every repeat purchase they drop out with probability p ~ Beta(a, b)
(Batislam, Denizel & Filiztekin 2007). Unlike BG/NBD, a one-time buyer may be dead, so P(alive)
is below 1 for everyone with no repeat purchase. Covariates as in BG/NBD: ``alpha_i = alpha *
exp(-g1' z_i)``, ``a_i = a * exp(g2' z_i)``, ``b_i = b * exp(g3' z_i)``.

The likelihood of ``(x, t_x, T)`` is

    B(a, b+x+1)/B(a, b) * Gamma(r+x)/Gamma(r) alpha^r
        * [ (alpha+T)^-(r+x) + a/(b+x) (alpha+t_x)^-(r+x) ],

as in BTYDplus ``mbgcnbd`` (k = 1) and lifetimes' ``ModifiedBetaGeoFitter``.

References
----------
.. [1] Batislam, E. P., Denizel, M., & Filiztekin, A. (2007). Empirical validation and comparison
   of models for customer base analysis. International Journal of Research in Marketing, 24(3),
   201-209.
.. [2] Wagner, U., & Hoppe, D. (2008). Erratum on the MBG/NBD model. International Journal of
   Research in Marketing, 25(3), 225-226.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import betaln, digamma, expit, gammaln

from cxasset.models._base import logaddexp, pair_index, wsum
from cxasset.models.bgnbd import RFM, BetaGeoModel, expected_if_alive, on_unique


class ModifiedBetaGeoModel(BetaGeoModel):
    """MBG/NBD model, optionally with covariates on ``alpha``, ``a`` and ``b``.

    Parameters
    ----------
    penalizer : float, default=0.0
        Ridge penalty on covariate coefficients (never on ``r, alpha, a, b``).
    tol : float, default=1e-8
        Gradient tolerance of the optimiser.
    max_iter : int, default=500
        Iterations per parameter of the optimiser.

    Attributes
    ----------
    params_ : dict
        ``r, alpha, a, b`` and covariate coefficients ``alpha[z]``, ``a[z]``, ``b[z]``.
    result_ : FitResult
        Standard errors, intervals, log-likelihood, AIC/BIC, convergence.

    Examples
    --------
    >>> m = ModifiedBetaGeoModel().fit(rfm)                # doctest: +SKIP
    >>> m.params_                                          # doctest: +SKIP
    {'r': 0.5250, 'alpha': 6.1832, 'a': 0.8911, 'b': 1.6141}

    References
    ----------
    .. [1] Batislam, Denizel & Filiztekin (2007), IJRM 24(3).
    """

    _param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    #: a customer alive at T also survived the dropout chance at the first purchase: p | alive,
    #: x ~ Beta(a, b+x+1) (see :meth:`BetaGeoModel.alive_curve`)
    _extra_survivals: ClassVar[int] = 1

    def _summed_ll_grad(self, p: Mapping[str, float], data: Mapping[str, np.ndarray],
                        w: np.ndarray) -> tuple[float, dict[str, float]]:
        """Total log-likelihood and gradient without covariates: the terms of ``x`` alone summed
        over its unique values with aggregated weights, ``log(alpha+T)``, ``log(alpha+t_x)``
        on the unique ``T`` and ``t_x``; the mixture runs over every cell, one-time buyers
        included (unlike BG/NBD, they may have dropped out at time 0)."""
        r, alpha, a, b = (float(p[k]) for k in ("r", "alpha", "a", "b"))
        g = self._grouped(data, w)
        ux, Wx, N, ix, iT, itx = g["ux"], g["Wx"], g["N"], g["ix"], g["iT"], g["itx"]
        la_T, la_tx = np.log(alpha + g["uT"]), np.log(alpha + g["utx"])
        lc_T, lc_tx = la_T[iT], la_tx[itx]
        rx = r + g["x"]
        u = -rx * lc_T
        v = (np.log(a) - np.log(b + ux))[ix] - rx * lc_tx
        mix = logaddexp(u, v)
        pi = expit(v - u)  # share of the "dropped out after the last purchase" term
        wpi = w * pi
        wpa = w - wpi
        sum_pi = float(wpi.sum())
        total = (wsum(Wx, gammaln(r + ux) + betaln(a, b + ux + 1.0)) - N * (gammaln(r)
                 + betaln(a, b)) + N * r * np.log(alpha) + wsum(w, mix))
        d_r = (wsum(Wx, digamma(r + ux)) - N * digamma(r) + N * np.log(alpha)
               - wsum(wpa, lc_T) - wsum(wpi, lc_tx))
        d_alpha = (N * r / alpha - wsum(wpa * rx, (1.0 / (alpha + g["uT"]))[iT])
                   - wsum(wpi * rx, (1.0 / (alpha + g["utx"]))[itx]))
        dg_abx = digamma(a + b + ux + 1.0)
        d_a = N * digamma(a + b) - wsum(Wx, dg_abx) + sum_pi / a
        d_b = (wsum(Wx, digamma(b + ux + 1.0) - dg_abx) + N * (digamma(a + b) - digamma(b))
               - wsum(np.bincount(ix, wpi, minlength=len(ux)), 1.0 / (b + ux)))
        return float(total), {"r": float(d_r), "alpha": float(d_alpha), "a": float(d_a),
                              "b": float(d_b)}

    def _grouped(self, data: Mapping[str, np.ndarray], w: np.ndarray) -> dict[str, Any]:
        """Weights summed by unique ``x``, and every cell's index into the unique ``x``, ``T``
        and ``t_x``; computed once per fit."""
        cache = getattr(self, "_group_cache", None)
        if cache is not None and cache[0] is w:
            return cache[1]
        x, tx, T = data["frequency"], data["recency"], data["T"]
        ux, ix = np.unique(x, return_inverse=True)
        uT, iT = np.unique(T, return_inverse=True)
        utx, itx = np.unique(tx, return_inverse=True)
        g = {"ux": ux, "Wx": np.bincount(ix, weights=w, minlength=len(ux)), "N": float(w.sum()),
             "x": x, "ix": ix, "uT": uT, "iT": iT, "utx": utx, "itx": itx}
        self._group_cache = (w, g)
        return g

    def _ll_grad(self, p: Mapping[str, Any], data: Mapping[str, np.ndarray], grad: bool = True
                 ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Log-likelihood in log space and its gradient (terms in one statistic evaluated on its
        unique values when the parameters involved are shared by all rows)."""
        r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
        x = data["frequency"]
        ab_scalar = np.ndim(a) == 0 and np.ndim(b) == 0

        def on_x(fn: Any) -> np.ndarray:
            return on_unique(data, "frequency", fn, ab_scalar)

        la_T = on_unique(data, "T", lambda T: np.log(alpha + T), np.ndim(alpha) == 0)
        la_tx = on_unique(data, "recency", lambda tx: np.log(alpha + tx), np.ndim(alpha) == 0)
        rx = r + x
        a1 = on_unique(data, "frequency", lambda u: gammaln(r + u) - gammaln(r), True) + r * np.log(alpha)
        a2 = on_x(lambda u: betaln(a, b + u + 1) - betaln(a, b))
        log_bx = on_x(lambda u: np.log(b + u))
        u = -rx * la_T
        v = np.log(a) - log_bx - rx * la_tx
        ll = a1 + a2 + np.logaddexp(u, v)
        if not grad:
            return ll, {}
        pi = 1.0 / (1.0 + np.exp(u - v))  # share of the "dropped out after the last purchase" term
        T, tx = data["T"], data["recency"]
        d_r = (on_unique(data, "frequency", lambda u_: digamma(r + u_) - digamma(r), True)
               + np.log(alpha) - (1 - pi) * la_T - pi * la_tx)
        d_alpha = r / alpha - (1 - pi) * rx / (alpha + T) - pi * rx / (alpha + tx)
        d_a = on_x(lambda u_: digamma(a + b) - digamma(a + b + u_ + 1)) + pi / a
        d_b = (on_x(lambda u_: digamma(b + u_ + 1) - digamma(a + b + u_ + 1) - digamma(b)
                    + digamma(a + b)) - pi * on_x(lambda u_: 1.0 / (b + u_)))
        return ll, {"r": d_r, "alpha": d_alpha, "a": d_a, "b": d_b}

    def expected_purchases(self, t: float | np.ndarray, data: pd.DataFrame | None = None
                           ) -> np.ndarray:
        """E[X(t)]: expected repeat purchases of a new customer in ``t`` periods since their first.

        ``b/(a-1) * (1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; t/(alpha+t)))``: P(no dropout at
        the first purchase) ``b/(a+b)`` times the expectation of a customer alive at ``T = 0``
        with ``x = 0``, continuous across ``a = 1`` (see
        :func:`~cxasset.models.bgnbd.expected_if_alive`).
        """
        self._check_is_fitted()
        p = self._p(data)
        r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
        t = np.asarray(t, dtype=float)
        return b / (a + b) * expected_if_alive(a + b, r, a, t / (alpha + t))

    @staticmethod
    def _log_odds_dead(p: Mapping[str, Any], x: np.ndarray, tx: np.ndarray, T: np.ndarray
                       ) -> np.ndarray:
        """log(1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x)): every customer may be dead."""
        r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
        term = np.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
        return logaddexp(np.zeros_like(term), term)

    def conditional_expected_purchases(self, t: float | np.ndarray, data: pd.DataFrame,
                                       theta: np.ndarray | None = None) -> np.ndarray:
        """E[Y(t) | x, t_x, T]: expected purchases in the next ``t`` periods of each customer.

        ``(a+b+x)/(a-1) * (1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x+1; a+b+x; z))
        * P(alive)`` with ``z = t/(alpha+T+t)``, computed after Euler's transformation so that
        it neither overflows nor cancels for large ``x``.
        """
        self._check_is_fitted()
        p = self._p(data, theta)
        x, tx, T = (data[c].to_numpy(dtype=float) for c in RFM)
        t = np.asarray(t, dtype=float)
        p_alive = np.exp(-self._log_odds_dead(p, x, tx, T))
        if t.ndim == 0 and all(np.ndim(v) == 0 for v in p.values()) and len(x) > 16:
            # the factor besides P(alive) depends on (x, T) only: once per unique pair
            ipair, x, T = pair_index(x, T)
            return self._expected_if_alive(p, t, x, T)[ipair] * p_alive
        return self._expected_if_alive(p, t, x, T) * p_alive

    @staticmethod
    def _expected_if_alive(p: Mapping[str, Any], t: np.ndarray, x: np.ndarray, T: np.ndarray
                           ) -> np.ndarray:
        """``(a+b+x)/(a-1) (1 - (1-z)^(a-1) 2F1(a+b-r, a-1; a+b+x; z))``, ``z = t/(alpha+T+t)``
        (Euler's transformation of ``(1-z)^(r+x) 2F1(r+x, b+x+1; a+b+x; z)``), continuous across
        ``a = 1`` (see :func:`~cxasset.models.bgnbd.expected_if_alive`)."""
        r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
        return expected_if_alive(a + b + x, r + x, a, t / (alpha + T + t))
