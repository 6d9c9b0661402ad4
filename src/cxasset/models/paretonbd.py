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
from scipy.special import betainc, betaln, gammaln, hyp2f1

from cxasset.exceptions import ModelDataError
from cxasset.models._base import BaseModel, Constraint
from cxasset.models.bgnbd import RFM, check_rfm

_TINY = 1e-300


def _hyp2f1_cf(P: np.ndarray, Q: np.ndarray, z: np.ndarray, max_iter: int = 400
               ) -> tuple[np.ndarray, np.ndarray]:
    """``2F1(1, P; P+Q; z)`` by Gauss' continued fraction (modified Lentz), vectorised.

    It is the continued fraction of the incomplete beta function (Numerical Recipes ``betacf``)
    with ``a = P+Q-1``, ``b = 1-Q``. Returns the values and a mask of the converged entries.
    """
    a, b, x = P + Q - 1.0, 1.0 - Q, z
    out = np.full(x.shape, np.nan)
    ok = np.zeros(x.shape, dtype=bool)
    idx = np.arange(x.size)
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = np.ones_like(x)
    d = 1.0 - qab * x / qap
    d = 1.0 / np.where(np.abs(d) < _TINY, _TINY, d)
    h = d.copy()
    for m in range(1, max_iter + 1):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                   -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / np.where(np.abs(d) < _TINY, _TINY, d)
            c = 1.0 + aa / c
            c = np.where(np.abs(c) < _TINY, _TINY, c)
            step = d * c
            h = h * step
        done = np.abs(step - 1.0) < 1e-15
        if done.any():
            out[idx[done]], ok[idx[done]] = h[done], True
            keep = ~done
            idx, a, b, x, qab, qap, qam, c, d, h = (
                v[keep] for v in (idx, a, b, x, qab, qap, qam, c, d, h))
            if idx.size == 0:
                break
    return out, ok


_GL_X, _GL_W = np.polynomial.legendre.leggauss(12)


def _log_hyp2f1_quad(P: np.ndarray, Q: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``log 2F1(1, P; P+Q; z)`` by Gauss-Legendre quadrature (for the rare ``z`` near 1).

    ``2F1 = a z^-a (1-z)^(Q-1) int_0^Y (1-e^-y)^(a-1) e^((Q-1) y) dy`` with ``a = P+Q-1`` and
    ``Y = -log(1-z)``, on panels graded geometrically towards both ends; ``[0, 1e-10]`` in closed
    form (``y^a / a``), which also takes care of the endpoint singularity when ``a < 1``.
    """
    a = P + Q - 1.0
    Y = -np.log1p(-z)
    y0 = 1e-10
    half = np.maximum(Y / 2, 2 * y0)[:, None]
    left = y0 * (half / y0) ** np.linspace(0.0, 1.0, 40)
    right = Y[:, None] - (Y[:, None] - half) * np.append(np.geomspace(1.0, 1e-9, 40)[1:], 0.0)
    edges = np.concatenate([left, right], axis=1)
    lo, hi = edges[:, :-1, None], edges[:, 1:, None]
    y = (lo + hi) / 2 + (hi - lo) / 2 * _GL_X
    lw = np.log((hi - lo) / 2 * _GL_W)
    lf = ((a - 1.0)[:, None, None] * np.log(-np.expm1(-y)) + (Q - 1.0)[:, None, None] * y + lw)
    m = lf.max(axis=(1, 2))
    body = m + np.log(np.exp(lf - m[:, None, None]).sum(axis=(1, 2)))
    integral = np.logaddexp(body, a * np.log(y0) - np.log(a))
    return np.log(a) - a * np.log(z) + (Q - 1.0) * np.log1p(-z) + integral


def log_hyp2f1_1(P: np.ndarray, Q: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``log 2F1(1, P; P+Q; z)`` for ``P, Q > 0`` and ``0 <= z < 1``, accurate to ~1e-12.

    Small ``z``: scipy's series. Otherwise the continued fraction; for ``Q < 1`` the regularised
    incomplete beta function (``2F1 = a z^-a (1-z)^(Q-1) B(a, 1-Q) I_z(a, 1-Q)``, ``a = P+Q-1``),
    and quadrature of its integral where the fraction is slow (``z`` very near 1).
    """
    shape = np.broadcast_shapes(np.shape(P), np.shape(Q), np.shape(z))
    if np.all(np.asarray(z) <= 0.5):  # the common case: scipy's series throughout, no masks
        with np.errstate(all="ignore"):
            return np.broadcast_to(np.log(hyp2f1(1.0, P, np.add(P, Q), z)), shape).copy()
    P, Q, z = (np.ravel(v).astype(float) for v in np.broadcast_arrays(P, Q, z))
    out = np.empty(z.shape)
    with np.errstate(all="ignore"):
        small = z <= 0.5
        out[small] = np.log(hyp2f1(1.0, P[small], P[small] + Q[small], z[small]))
        # Q < 1: incomplete beta where the fraction is slow (z above the mode, NR's criterion)
        beta_ok = ~small & (Q < 1.0) & (z > (P + Q) / (P + 2.0))
        if beta_ok.any():
            p, q, zz = P[beta_ok], Q[beta_ok], z[beta_ok]
            a = p + q - 1.0
            out[beta_ok] = (np.log(a) - a * np.log(zz) + (q - 1.0) * np.log1p(-zz)
                            + betaln(a, 1.0 - q) + np.log(betainc(a, 1.0 - q, zz)))
        rest = np.flatnonzero(~small & ~beta_ok)
        if rest.size:
            val, ok = _hyp2f1_cf(P[rest], Q[rest], z[rest])
            out[rest[ok]] = np.log(val[ok])
            slow = rest[~ok]
            if slow.size:
                out[slow] = _log_hyp2f1_quad(P[slow], Q[slow], z[slow])
    return out.reshape(shape)


def log_tail_integral(P: Any, Q: Any, A: Any, B: Any, u: Any) -> np.ndarray:
    """``log int_u^inf (A+tau)^-P (B+tau)^-Q dtau`` for positive offsets and ``P+Q > 1``.

    Either offset may be the larger (elementwise); see the module docstring for the form used.
    """
    P, Q, A, B, u = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (P, Q, A, B, u)))
    swap = A < B
    # (hi offset, its exponent), (lo offset, its exponent)
    hi, lo = np.where(swap, B, A), np.where(swap, A, B)
    p_hi, q_lo = np.where(swap, Q, P), np.where(swap, P, Q)
    z = (hi - lo) / (hi + u)
    return (-p_hi * np.log(hi + u) - (q_lo - 1.0) * np.log(lo + u)
            + log_hyp2f1_1(p_hi, q_lo, z) - np.log(p_hi + q_lo - 1.0))


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

    @staticmethod
    def _log_terms(p: Mapping[str, Any], x: np.ndarray, tx: np.ndarray, T: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Common factor, log of the 'alive at T' term and log of the 'died in (t_x, T]' term."""
        r, alpha, s, beta = p["r"], p["alpha"], p["s"], p["beta"]
        head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
        i_tx = log_tail_integral(r + x, s + 1.0, alpha, beta, tx)
        i_T = log_tail_integral(r + x, s + 1.0, alpha, beta, T)
        died = np.log(s) + i_tx + _log1mexp(i_T - i_tx)
        return head, alive, died

    def _log_likelihood(self, p: Mapping[str, Any], data: Mapping[str, np.ndarray]) -> np.ndarray:
        head, alive, died = self._log_terms(p, data["frequency"], data["recency"], data["T"])
        return head + np.logaddexp(alive, died)

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
        _, alive, died = self._log_terms(p, x, tx, T)
        return died - alive

    def probability_alive(self, data: pd.DataFrame, theta: np.ndarray | None = None
                          ) -> np.ndarray:
        """P(alive at T | x, t_x, T) for each row of ``data`` (Fader & Hardie 2005, eq. 36-37)."""
        self._check_is_fitted()
        p = self._p(data, theta)
        return np.exp(-np.logaddexp(0.0, self._log_odds_dead(p, data)))

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
        p_alive = np.exp(-np.logaddexp(0.0, self._log_odds_dead(p, data)))
        return rate * self._lifetime_factor(s, (beta + T) / (beta + T + t)) * p_alive
