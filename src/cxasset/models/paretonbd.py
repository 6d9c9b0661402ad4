"""Pareto/NBD: Poisson purchases while alive, exponential lifetimes, gamma heterogeneity in both.

While alive a customer buys at Poisson rate lambda ~ Gamma(r, alpha) and dies at exponential rate
mu ~ Gamma(s, beta), independently (Schmittlein, Morrison & Colombo 1987). With time-invariant
covariates z, as CLVTools' static covariates: ``alpha_i = alpha * exp(-g_purch' z_i)`` and
``beta_i = beta * exp(-g_life' z_i)``, so a positive coefficient raises the purchase rate (on
``alpha``) or the dropout rate (on ``beta``).

The likelihood (Fader & Hardie 2005, eq. 18-22) is

    L = Gamma(r+x)/Gamma(r) alpha^r beta^s
        * [ (alpha+T)^-(r+x) (beta+T)^-s + s * (I(t_x) - I(T)) ],
    I(u) = int_u^inf (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau,

where ``(r+s+x) I(u)`` is the note's ``2F1(r+s+x, .; r+s+x+1; |alpha-beta| / (max+u)) / (max+u)^(r+s+x)``
(``A_0 = (r+s+x) (I(t_x) - I(T))``). Here ``I`` is evaluated in log space after Euler's
transformation, ``log I(u) = -P log(A+u) - (Q-1) log(B+u) + log 2F1(1, P; P+Q; z) - log(P+Q-1)``,
with ``A >= B`` the larger and smaller of ``alpha, beta``, ``P, Q`` their exponents and
``z = (A-B)/(A+u)`` in ``[0, 1)``: the remaining ``2F1`` lies in ``[1, (P+Q-1)/(Q-1)]`` when ``Q > 1``
(always when ``alpha >= beta``), so nothing overflows for any ``x`` or ``T``, unlike the note's
form (which overflows near ``x = 150``).

How ``log 2F1`` and its derivatives are evaluated: :mod:`cxasset.models._tail`.

The fit uses the analytic gradient (:func:`~cxasset.models._tail.log_tail_integral_grad`). Without
covariates the tail integrals are evaluated once per unique ``(x, T)`` and ``(x, t_x)`` (15k and
21k pairs for 371k cells at 1M customers) and only the mixture runs per cell
(:meth:`ParetoNBDModel._summed_ll_grad`).

References
----------
.. [1] Schmittlein, D. C., Morrison, D. G., & Colombo, R. (1987). Counting your customers: who
   are they and what will they do next? Management Science, 33(1), 1-24.
.. [2] Fader, P. S., & Hardie, B. G. S. (2005). A note on deriving the Pareto/NBD model and related
   expressions. http://brucehardie.com/notes/009/
.. [3] Fader, P. S., & Hardie, B. G. S. (2007). Incorporating time-invariant covariates into the
   Pareto/NBD and BG/NBD models. http://brucehardie.com/notes/019/
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import digamma, expit, gammaln

from cxasset.exceptions import ModelDataError
from cxasset.models._base import BaseModel, Constraint, logaddexp, rfm_pairs, wsum
from cxasset.models._tail import log_tail_integral, log_tail_integral_grad
from cxasset.models.bgnbd import RFM, as_column, check_rfm, future_times, on_unique


def _log1mexp(d: np.ndarray) -> np.ndarray:
    """``log(1 - exp(d))`` for ``d <= 0`` without loss of precision (``-inf`` at 0)."""
    with np.errstate(divide="ignore"):
        return np.where(d > -0.6931471805599453, np.log(-np.expm1(np.minimum(d, 0.0))),
                        np.log1p(-np.exp(np.minimum(d, 0.0))))

class ParetoNBDModel(BaseModel):
    """Pareto/NBD model, optionally with covariates on ``alpha`` (purchase) and ``beta`` (dropout).

    Parameters
    ----------
    penalizer : float, default=0.0
        Ridge penalty on covariate coefficients (never on ``r, alpha, s, beta``).
    tol : float, default=1e-8
        Gradient tolerance of the optimiser.
    max_iter : int, default=500
        Iterations per parameter of the optimiser.

    Attributes
    ----------
    params_ : dict
        ``r, alpha, s, beta`` and covariate coefficients ``alpha[z]``, ``beta[z]``.
    result_ : FitResult
        Standard errors, intervals, log-likelihood, AIC/BIC, convergence.

    Examples
    --------
    >>> m = ParetoNBDModel().fit(rfm)                      # doctest: +SKIP
    >>> m.params_                                          # doctest: +SKIP
    {'r': 0.5533, 'alpha': 10.5776, 's': 0.6061, 'beta': 11.6689}

    References
    ----------
    .. [1] Schmittlein, Morrison & Colombo (1987), Management Science 33(1).
    .. [2] Fader & Hardie (2005), "A note on deriving the Pareto/NBD model and related expressions".
    """

    _param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "s", "beta")
    _constraints: ClassVar[dict[str, Constraint]] = {
        "r": "positive", "alpha": "positive", "s": "positive", "beta": "positive"}
    _data_columns: ClassVar[tuple[str, ...]] = RFM
    _covariate_params: ClassVar[dict[str, int]] = {"alpha": -1, "beta": -1}

    def _check_data(self, data: pd.DataFrame) -> None:
        check_rfm(data, type(self).__name__)

    def _initial_params(self, data: Mapping[str, np.ndarray], w: np.ndarray) -> dict[str, float]:
        x, T = data["frequency"], data["T"]
        rate = float(np.dot(w, x) / max(np.dot(w, T), 1e-9))
        mean_T = float(np.dot(w, T) / max(w.sum(), 1e-9))
        r = 0.5
        return {"r": r, "alpha": r / max(rate, 1e-6), "s": 0.5, "beta": max(mean_T, 1e-3)}

    def _prepare(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Unique ``x``, ``(x, T)`` and ``(x, t_x)`` with each row's index: without covariates the
        tail integrals (the costly part) are evaluated once per pair, not once per cell."""
        return {**data, **rfm_pairs(data["frequency"], data["recency"], data["T"])}

    @staticmethod
    def _shared(p: Mapping[str, Any]) -> bool:
        return all(np.ndim(p[k]) == 0 for k in ("r", "alpha", "s", "beta"))

    @staticmethod
    def _side(p: Mapping[str, Any], x: np.ndarray, u: np.ndarray, grad: bool
              ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``log I(u)`` (without the factor ``s``) and, with ``grad``, its derivatives."""
        r, alpha, s, beta = p["r"], p["alpha"], p["s"], p["beta"]
        if not grad:
            return log_tail_integral(r + x, s + 1.0, alpha, beta, u), {}
        li, d_r, d_s, d_alpha, d_beta = log_tail_integral_grad(r + x, s + 1.0, alpha, beta, u)
        return li, {"r": d_r, "alpha": d_alpha, "s": d_s, "beta": d_beta}

    @classmethod
    def _log_terms(cls, p: Mapping[str, Any], x: np.ndarray, tx: np.ndarray, T: np.ndarray,
                   pairs: Mapping[str, np.ndarray] | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Common factor, log of the 'alive at T' term and log of the 'died in (t_x, T]' term.

        With ``pairs`` (see :meth:`_prepare`) and parameters shared by all rows, the terms are
        evaluated on the unique ``x``, ``(x, T)`` and ``(x, t_x)`` and gathered."""
        r, alpha, s, beta = p["r"], p["alpha"], p["s"], p["beta"]
        if pairs is not None and cls._shared(p):
            ux = pairs["_u:frequency"]
            head = (gammaln(r + ux) - gammaln(r))[pairs["_i:frequency"]]
            xT, uT, xtx, utx = pairs["_x:xT"], pairs["_u:xT"], pairs["_x:xtx"], pairs["_u:xtx"]
            alive = (-(r + xT) * np.log(alpha + uT) - s * np.log(beta + uT))[pairs["_i:xT"]]
            i_T = log_tail_integral(r + xT, s + 1.0, alpha, beta, uT)[pairs["_i:xT"]]
            i_tx = log_tail_integral(r + xtx, s + 1.0, alpha, beta, utx)[pairs["_i:xtx"]]
        else:
            head = gammaln(r + x) - gammaln(r)
            alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
            i_tx = log_tail_integral(r + x, s + 1.0, alpha, beta, tx)
            i_T = log_tail_integral(r + x, s + 1.0, alpha, beta, T)
        head = head + r * np.log(alpha) + s * np.log(beta)
        died = np.log(s) + i_tx + _log1mexp(i_T - i_tx)
        return head, alive, died

    def _log_likelihood(self, p: Mapping[str, Any], data: Mapping[str, np.ndarray]) -> np.ndarray:
        pairs = data if "_i:xT" in data else None
        head, alive, died = self._log_terms(p, data["frequency"], data["recency"], data["T"],
                                            pairs)
        return head + logaddexp(alive, died)

    def _ll_grad(self, p: Mapping[str, Any], data: Mapping[str, np.ndarray]
                 ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Per-row log-likelihood and its derivatives (used with covariates).

        ``ll = head + log(e^alive + e^died)``, ``died = log s + log(I(t_x) - I(T))``; with
        ``pi_a = e^(alive-ll+head)`` and ``c_u = s I(u) e^(head-ll)``, the derivative of the mixture
        is ``pi_a d alive + c_tx d log I(t_x) - c_T d log I(T)`` (+ ``(1 - pi_a)/s`` for ``s``),
        which needs no division by ``I(t_x) - I(T)`` and is exact (zero) when ``t_x = T``."""
        r, alpha, s, beta = p["r"], p["alpha"], p["s"], p["beta"]
        x, tx, T = data["frequency"], data["recency"], data["T"]
        n = len(x)
        # both tail integrals in one call (the kernel's loop costs per call, not per row)
        p2 = {k: np.concatenate([v, v]) if np.ndim(v) else v for k, v in p.items()}
        i_both, g_both = self._side(p2, np.concatenate([x, x]), np.concatenate([T, tx]),
                                    grad=True)
        i_T, i_tx = i_both[:n], i_both[n:]
        g_T = {k: v[:n] for k, v in g_both.items()}
        g_tx = {k: v[n:] for k, v in g_both.items()}
        la_T, lb_T, ls = np.log(alpha + T), np.log(beta + T), np.log(s)
        rx = r + x
        alive = -rx * la_T - s * lb_T
        died = ls + i_tx + _log1mexp(i_T - i_tx)
        mix = logaddexp(alive, died)
        ll = (on_unique(data, "frequency", lambda u: gammaln(r + u) - gammaln(r), True)
              + r * np.log(alpha) + s * np.log(beta) + mix)
        c_a = np.exp(alive - mix)
        c_tx, c_T = np.exp(ls + i_tx - mix), np.exp(ls + i_T - mix)
        d = {
            "r": (on_unique(data, "frequency", lambda u: digamma(r + u) - digamma(r), True)
                  + np.log(alpha) - c_a * la_T),
            "alpha": r / alpha - c_a * rx / (alpha + T),
            "s": np.log(beta) - c_a * lb_T + (1.0 - c_a) / s,
            "beta": s / beta - c_a * s / (beta + T),
        }
        for k in d:
            d[k] = d[k] + c_tx * g_tx[k] - c_T * g_T[k]
        return ll, d

    def _summed_ll_grad(self, p: Mapping[str, float], data: Mapping[str, np.ndarray],
                        w: np.ndarray) -> tuple[float, dict[str, float]]:
        """Total log-likelihood and gradient without covariates: the tail integrals and the
        'alive' term on the unique ``(x, T)`` and ``(x, t_x)`` pairs, the ``x`` terms on the unique
        ``x``; per cell only the mixture, whose weights are summed back onto the pairs."""
        r, alpha, s, beta = (float(p[k]) for k in ("r", "alpha", "s", "beta"))
        g = self._grouped(data, w)
        ux, Wx, N = data["_u:frequency"], g["Wx"], g["N"]
        xT, uT, iT = data["_x:xT"], data["_u:xT"], data["_i:xT"]
        xtx, utx, itx = data["_x:xtx"], data["_u:xtx"], data["_i:xtx"]
        n_T = len(uT)
        i_both, g_both = self._side(p, np.concatenate([xT, xtx]), np.concatenate([uT, utx]),
                                    grad=True)
        i_T, i_tx = i_both[:n_T], i_both[n_T:]
        g_T = {k: v[:n_T] for k, v in g_both.items()}
        g_tx = {k: v[n_T:] for k, v in g_both.items()}
        la_T, lb_T, ls = np.log(alpha + uT), np.log(beta + uT), np.log(s)
        alive = -(r + xT) * la_T - s * lb_T
        # per cell, in linear space scaled by m: L = e^alive + s I(t_x) - s I(T) (all / e^m);
        # s I(T) <= e^alive, so L >= e^(alive-m) and nothing cancels to 0 even when t_x = T
        a_c, iT_c, itx_c = alive[iT], i_T[iT] + ls, i_tx[itx] + ls
        m = np.maximum(a_c, itx_c)
        A, C_tx, C_T = np.exp(a_c - m), np.exp(itx_c - m), np.exp(iT_c - m)
        L = A + C_tx - C_T
        wL = w / L
        c_a, c_tx, c_T = wL * A, wL * C_tx, wL * C_T
        ll_mix = wsum(w, m) + wsum(w, np.log(L))
        # weights summed onto the pairs
        W_a = np.bincount(iT, c_a, minlength=n_T)
        W_T = np.bincount(iT, c_T, minlength=n_T)
        W_tx = np.bincount(itx, c_tx, minlength=len(utx))
        total = (wsum(Wx, gammaln(r + ux)) - N * gammaln(r) + N * (r * np.log(alpha)
                 + s * np.log(beta)) + ll_mix)
        d_alive = {"r": -la_T, "alpha": -(r + xT) / (alpha + uT), "s": -lb_T,
                   "beta": -s / (beta + uT)}
        head = {"r": wsum(Wx, digamma(r + ux)) - N * digamma(r) + N * np.log(alpha),
                "alpha": N * r / alpha, "s": N * np.log(beta) + (N - c_a.sum()) / s,
                "beta": N * s / beta}
        grad = {k: float(head[k] + wsum(W_a, d_alive[k]) + wsum(W_tx, g_tx[k])
                         - wsum(W_T, g_T[k])) for k in head}
        return float(total), grad

    def _grouped(self, data: Mapping[str, np.ndarray], w: np.ndarray) -> dict[str, Any]:
        """Weights summed by unique ``x`` (computed once per fit)."""
        cache = getattr(self, "_group_cache", None)
        if cache is not None and cache[0] is w:
            return cache[1]
        ix = data["_i:frequency"]
        g = {"Wx": np.bincount(ix, weights=w, minlength=len(data["_u:frequency"])), "N": float(w.sum())}
        self._group_cache = (w, g)
        return g

    # ------------------------------------------------------------------ predictions
    def _p(self, data: pd.DataFrame | None, theta: np.ndarray | None = None) -> dict[str, Any]:
        if self.covariates_ and data is None:
            raise ModelDataError("this model has covariates: pass the customers' data")
        return self.individual_params(data if data is not None else pd.DataFrame(), theta)

    @staticmethod
    def _lifetime_factor(s: Any, q: Any) -> Any:
        """``(1 - q^(s-1)) / (s-1)`` for ``0 < q <= 1``, with its limit ``-log q`` at ``s = 1``."""
        lq = np.log(q)
        sm1 = np.asarray(s - 1.0, dtype=float)
        near = np.abs(sm1) < 1e-10
        safe = np.where(near, 1.0, sm1)
        return np.where(near, -lq * (1 + sm1 * lq / 2), -np.expm1(safe * lq) / safe)

    def expected_purchases(self, t: float | np.ndarray, data: pd.DataFrame | None = None
                           ) -> np.ndarray:
        """E[X(t)]: expected purchases of a new customer in ``t`` periods since their first.

        ``r beta / (alpha (s-1)) * (1 - (beta/(beta+t))^(s-1))`` (Fader & Hardie 2005, eq. 27).
        """
        self._check_is_fitted()
        p = self._p(data)
        r, alpha, s, beta = p["r"], p["alpha"], p["s"], p["beta"]
        t = np.asarray(t, dtype=float)
        return r * beta / alpha * self._lifetime_factor(s, beta / (beta + t))

    def _log_odds_dead(self, p: Mapping[str, Any], data: pd.DataFrame) -> np.ndarray:
        x, tx, T = (data[c].to_numpy(dtype=float) for c in RFM)
        out = np.full(len(x), -np.inf)  # t_x = T: no time to have died, P(alive) = 1
        live = tx < T
        if not live.all():
            x, tx, T = x[live], tx[live], T[live]
            p = {k: v[live] if np.ndim(v) else v for k, v in p.items()}
        if len(x):
            # without covariates the tail integrals are evaluated once per unique (x, T), (x, t_x)
            pairs = (rfm_pairs(x, tx, T)
                     if self._shared(p) and len(x) > 16 else None)
            _, alive, died = self._log_terms(p, x, tx, T, pairs)
            out[live] = died - alive
        return out

    def probability_alive(self, data: pd.DataFrame, theta: np.ndarray | None = None
                          ) -> np.ndarray:
        """P(alive at T | x, t_x, T) for each row of ``data`` (Fader & Hardie 2005, eq. 36-37)."""
        self._check_is_fitted()
        p = self._p(data, theta)
        return expit(-self._log_odds_dead(p, data))

    def conditional_expected_purchases(self, t: float | np.ndarray, data: pd.DataFrame,
                                       theta: np.ndarray | None = None) -> np.ndarray:
        """E[Y(t) | x, t_x, T]: expected purchases in the next ``t`` periods of each customer.

        ``(r+x)(beta+T) / ((alpha+T)(s-1)) * (1 - ((beta+T)/(beta+T+t))^(s-1)) * P(alive)``
        (Fader & Hardie 2005, eq. 41).
        """
        self._check_is_fitted()
        p = self._p(data, theta)
        r, alpha, s, beta = p["r"], p["alpha"], p["s"], p["beta"]
        x, T = data["frequency"].to_numpy(dtype=float), data["T"].to_numpy(dtype=float)
        t = np.asarray(t, dtype=float)
        rate = (r + x) * (beta + T) / (alpha + T)
        p_alive = expit(-self._log_odds_dead(p, data))
        return rate * self._lifetime_factor(s, (beta + T) / (beta + T + t)) * p_alive

    def alive_curve(self, t: float | np.ndarray, data: pd.DataFrame,
                    theta: np.ndarray | None = None) -> np.ndarray:
        """P(alive at T + t | frequency, recency, T, covariates) for each row and future time.

        Parameters
        ----------
        t : float or 1-D array
            Future times in periods after ``T`` (``t >= 0``, finite).
        data : DataFrame
            ``frequency, recency, T`` (and the covariates of the fit), one row per customer.
        theta : array, optional
            Unconstrained parameter vector (default: the fit), as in :meth:`probability_alive`.

        Returns
        -------
        ndarray, shape ``(len(data), len(t))`` (a scalar ``t`` is one column); column ``t = 0``
        equals :meth:`probability_alive`.

        Notes
        -----
        Given alive at ``T``, the purchases in ``(0, T]`` carry no information on the dropout
        rate ``mu`` (they depend on ``lambda`` only), and surviving ``T`` periods has likelihood
        ``e^(-mu T)``, so ``mu | alive at T, data ~ Gamma(s, beta+T)`` (with covariates, the
        row's ``beta_i``). The lifetime is memoryless, so
        ``P(alive at T+t | alive at T) = E[e^(-mu t)] = ((beta+T)/(beta+T+t))^s`` and
        ``P(alive at T+t) = P(alive at T) * ((beta+T)/(beta+T+t))^s``.

        References
        ----------
        .. [1] Schmittlein, Morrison & Colombo (1987), Management Science 33(1), section 3.
        .. [2] Fader & Hardie (2005), "A note on deriving the Pareto/NBD model and related
           expressions", eq. 36-37 (P(alive at T)).
        """
        self._check_is_fitted()
        p = self._p(data, theta)
        t = future_times(t)
        T = data["T"].to_numpy(dtype=float)[:, None]
        s, beta = as_column(p["s"]), as_column(p["beta"])
        p_alive = expit(-self._log_odds_dead(p, data))
        return p_alive[:, None] * np.exp(-s * np.log1p(t / (beta + T)))
