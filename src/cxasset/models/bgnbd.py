"""BG/NBD: beta-geometric / negative binomial purchase and dropout model.

While alive a customer buys at Poisson rate lambda ~ Gamma(r, alpha); after every purchase they drop
out with probability p ~ Beta(a, b). With covariates z (time-invariant), as in CLVTools and Fader &
Hardie's covariate note: ``alpha_i = alpha * exp(-g1' z_i)`` (a positive coefficient raises the
purchase rate), ``a_i = a * exp(g2' z_i)``, ``b_i = b * exp(g3' z_i)``.

References
----------
.. [1] Fader, P. S., Hardie, B. G. S., & Lee, K. L. (2005). "Counting your customers" the easy way:
   An alternative to the Pareto/NBD model. Marketing Science, 24(2), 275-284.
.. [2] Abramowitz, M., & Stegun, I. A. (1972). Handbook of Mathematical Functions, 15.1.20,
   15.3.3-15.3.5 (Gauss' summation, Euler's and Pfaff's transformations of 2F1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import betaln, digamma, expit, exprel, gammaln, hyp2f1

from cxasset.exceptions import ModelDataError
from cxasset.models._base import BaseModel, Constraint, logaddexp, pair_index, wsum

RFM = ("frequency", "recency", "T")


def unique_index(data: Mapping[str, np.ndarray], columns: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Unique values of each column and the index of every row's value (``_u:<c>``, ``_i:<c>``)."""
    out = {}
    for c in columns:
        uniq, inv = np.unique(data[c], return_inverse=True)
        out[f"_u:{c}"], out[f"_i:{c}"] = uniq, inv
    return out


def on_unique(data: Mapping[str, np.ndarray], column: str, fn: Any, shared: bool) -> np.ndarray:
    """``fn(data[column])``, evaluated once per unique value when the parameters inside ``fn``
    are shared by all rows (``shared``) and the unique values were prepared."""
    if shared and f"_u:{column}" in data:
        return np.asarray(fn(data[f"_u:{column}"]))[data[f"_i:{column}"]]
    return np.asarray(fn(data[column]))


def hyp2f1_safe(a: Any, b: Any, c: Any, z: Any) -> np.ndarray:
    """scipy's ``hyp2f1``, nudging ``b`` by 1e-9 (relative) where it returns inf or nan: scipy
    fails for ``z > 0.9`` when ``c-a-b`` is an integer, and the function is smooth in ``b``."""
    out = np.asarray(hyp2f1(a, b, c, z), dtype=float)
    bad = ~np.isfinite(out)
    if np.any(bad):
        out = np.where(bad, hyp2f1(a, np.asarray(b, dtype=float) * (1 + 1e-9), c, z), out)
    return out


#: Half-width of the interval around ``a = 1`` on which the expectations are interpolated in ``a``
#: (for ``z > 0.5``; below, the series form is regular at ``a = 1``).
A1_HALF_WIDTH = 1e-3
_SERIES_MAX_Z = 0.5


def _kernel_direct(C: np.ndarray, R: np.ndarray, e: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``C/e (1 - (1-z)^e 2F1(C-R, e; C; z))`` for ``e != 0``, with its limit at ``C = 0``."""
    zero = np.abs(C) < 1e-9
    c = np.where(zero, 1.0, C)
    out = c / e * (1.0 - (1.0 - z) ** e * hyp2f1_safe(c - R, e, c, z))
    if np.any(zero):
        # C 2F1(A, B; C; z) -> A B z 2F1(A+1, B+1; 2; z) as C -> 0 (A&S 15.1.2), A = -R, B = e
        out = np.where(zero, R * z * (1.0 - z) ** e * hyp2f1_safe(1.0 - R, e + 1.0, 2.0, z), out)
    return out


def _kernel_series(C: np.ndarray, R: np.ndarray, e: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The same for ``z <= 0.5`` in a form regular at ``e = 0`` and ``C = 0``:
    ``-C log(1-z) exprel(e log(1-z)) - A z (1-z)^e G``, ``A = C-R``,
    ``G = sum_(m>=0) (A+1)_m (e+1)_m / ((C+1)_m (m+1)!) z^m`` (``2F1 - 1`` with the factor
    ``A e z / C`` taken out of every term); the series converges at least as ``0.5^m``."""
    A = C - R
    L = np.log1p(-z)
    term = np.ones_like(z)
    G = np.ones_like(z)
    for m in range(400):
        term = term * (A + 1.0 + m) * (e + 1.0 + m) / ((C + 1.0 + m) * (m + 2.0)) * z
        G = G + term
        if np.all(np.abs(term) <= 1e-17 * np.abs(G)):
            break
    return -C * L * exprel(e * L) - A * z * (1.0 - z) ** e * G


def expected_if_alive(C: Any, R: Any, a: Any, z: Any, h: float = A1_HALF_WIDTH) -> np.ndarray:
    """``K = C/(a-1) * (1 - (1-z)^(a-1) 2F1(C-R, a-1; C; z))``, the BG/NBD family's expected
    purchases of a customer alive at ``T`` over the next ``t`` periods, ``z = t/(alpha+T+t)``
    (BG/NBD: ``C = a+b+x-1``, MBG/NBD: ``C = a+b+x``; ``R = r+x``), across its removable
    singularities.

    ``K = E[(1 - exp(-lambda p t)) / p]`` over the posterior ``lambda ~ Gamma(R, alpha+T)``,
    ``p ~ Beta(a, C+1-a)``, which is analytic in ``a`` and ``C``; the closed form (Euler's
    transformation of Fader, Hardie & Lee 2005, eq. 10) is ``0/0`` at ``a = 1`` (the ``2F1`` is
    1) and ``0 * inf`` at ``C = 0`` (``x = 0, a + b = 1`` in BG/NBD, a pole of the ``2F1``), and
    near ``a = 1`` the difference ``1 - (...)`` cancels (relative error ``~1e-16/|a-1|``).

    - ``z <= 0.5`` and ``|a-1| < 0.1``: the series form of :func:`_kernel_series`, in which
      ``1/(a-1)`` and ``1/C`` cancel analytically (its value at ``a = 1`` is the L'Hopital limit
      ``-C log(1-z) - (C-R) z G``).
    - ``z > 0.5`` (where the series would be slow): the closed form; within ``|a-1| < h`` the
      cubic through it at ``a - 1 = -2h, -h, h, 2h`` (Lagrange; truncation ``~h^4``, rounding
      ``~1e-16/h`` relative, both ~1e-12 at ``h = 1e-3``), and at ``|C| < 1e-9`` the limit
      ``R z (1-z)^(a-1) 2F1(1-R, a; 2; z)`` (``C 2F1(A, B; C; z) -> A B z 2F1(A+1, B+1; 2; z)``).

    At ``a = 1`` the value is ``C int_0^1 (1-p)^(C-1) (1 - (1 + p w)^-R) / p dp``,
    ``w = t/(alpha+T)``, which the tests check by quadrature.

    References
    ----------
    .. [1] Fader, Hardie & Lee (2005), Marketing Science 24(2), eq. 10.
    .. [2] Abramowitz & Stegun (1972), 15.1.2 (2F1 at a non-positive integer C), 15.3.3 (Euler).
    """
    C, R, a, z = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (C, R, a, z)))
    shape = C.shape
    C, R, a, z = (v.ravel() for v in (C, R, a, z))
    e = a - 1.0
    out = np.empty(C.shape)
    series = (z <= _SERIES_MAX_Z) & (np.abs(e) < 0.1)
    near = ~series & (np.abs(e) < h)
    far = ~series & ~near
    if series.any():
        out[series] = _kernel_series(C[series], R[series], e[series], z[series])
    if far.any():
        out[far] = _kernel_direct(C[far], R[far], e[far], z[far])
    if near.any():
        c, r_, u, zz = C[near], R[near], e[near] / h, z[near]
        nodes = (-2.0, -1.0, 1.0, 2.0)
        cubic = np.zeros(c.shape)
        for nj in nodes:
            lj = np.prod([(u - nk) / (nj - nk) for nk in nodes if nk != nj], axis=0)
            # a-1 = nj h moves C with it (C = a+b+x(-1)): the kernel at that a
            cubic += lj * _kernel_direct(c + (nj * h - e[near]), r_, np.full(c.shape, nj * h), zz)
        out[near] = cubic
    return out.reshape(shape)


def future_times(t: Any) -> np.ndarray:
    """Future times as a 1-D float array, checked to be finite and >= 0."""
    t = np.atleast_1d(np.asarray(t, dtype=float))
    if t.ndim != 1:
        raise ValueError(f"t must be a number or a 1-D array of future times; got shape {t.shape}")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError("t must hold finite future times >= 0 (in periods after T); got "
                         f"{t[~np.isfinite(t) | (t < 0)][:5].tolist()}")
    return t


def as_column(v: Any) -> Any:
    """A per-row parameter as a column (rows x 1) to broadcast against future times; scalars
    unchanged."""
    return np.asarray(v, dtype=float)[:, None] if np.ndim(v) else v


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

    def _prepare(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {**data, **unique_index(data, RFM)}

    def _log_likelihood(self, p: Mapping[str, Any], data: Mapping[str, np.ndarray]) -> np.ndarray:
        return self._ll_grad(p, data, grad=False)[0]

    def _summed_ll_grad(self, p: Mapping[str, float], data: Mapping[str, np.ndarray],
                        w: np.ndarray) -> tuple[float, dict[str, float]]:
        """Total log-likelihood and gradient without covariates: terms of x alone or T alone are
        summed over their unique values with aggregated weights; only the mixture term needs
        every cell with a repeat purchase."""
        r, alpha, a, b = (float(p[k]) for k in ("r", "alpha", "a", "b"))
        g = self._grouped(data, w)
        ux, Wx, N = g["ux"], g["Wx"], g["N"]
        uT, W0 = g["uT"], g["W0"]
        xs, ws, iT, itx, ix = g["x"], g["w"], g["iT"], g["itx"], g["ix"]
        lT, ltx = np.log(alpha + g["uT_pos"]), np.log(alpha + g["utx_pos"])
        la_T, la_tx = lT[iT], ltx[itx]
        rx = r + xs
        u = -rx * la_T
        log_bx1 = np.log(b + ux - 1.0, where=ux > 0, out=np.zeros_like(ux))
        v = np.log(a) - log_bx1[ix] - rx * la_tx
        mix = logaddexp(u, v)
        pi = expit(v - u)
        wpi = ws * pi
        total = (np.dot(Wx, gammaln(r + ux) - gammaln(r) + betaln(a, b + ux) - betaln(a, b))
                 + N * r * np.log(alpha) - r * np.dot(W0, np.log(alpha + uT)) + wsum(ws, mix))
        d_r = (np.dot(Wx, digamma(r + ux) - digamma(r)) + N * np.log(alpha)
               - np.dot(W0, np.log(alpha + uT)) - wsum(ws - wpi, la_T) - wsum(wpi, la_tx))
        d_alpha = (N * r / alpha - r * np.dot(W0, 1.0 / (alpha + uT))
                   - wsum((ws - wpi) * rx, (1.0 / (alpha + g["uT_pos"]))[iT])
                   - wsum(wpi * rx, (1.0 / (alpha + g["utx_pos"]))[itx]))
        sum_pi = wpi.sum()
        d_a = np.dot(Wx, digamma(a + b) - digamma(a + b + ux)) + sum_pi / a
        inv_bx1 = np.divide(1.0, b + ux - 1.0, where=ux > 0, out=np.zeros_like(ux))
        d_b = (np.dot(Wx, digamma(b + ux) - digamma(a + b + ux) - digamma(b) + digamma(a + b))
               - wsum(wpi, inv_bx1[ix]))
        return float(total), {"r": float(d_r), "alpha": float(d_alpha), "a": float(d_a),
                              "b": float(d_b)}

    def _grouped(self, data: Mapping[str, np.ndarray], w: np.ndarray) -> dict[str, Any]:
        """Weights aggregated by unique x and by unique T (x = 0), and the repeat buyers' cells
        with indices into their unique values; computed once per fit."""
        cache = getattr(self, "_group_cache", None)
        if cache is not None and cache[0] is w:
            return cache[1]
        x, tx, T = data["frequency"], data["recency"], data["T"]
        ux, ix_all = np.unique(x, return_inverse=True)
        zero, pos = x == 0, x > 0
        uT, iT0 = np.unique(T[zero], return_inverse=True)
        uT_pos, iT = np.unique(T[pos], return_inverse=True)
        utx_pos, itx = np.unique(tx[pos], return_inverse=True)
        g = {"ux": ux, "Wx": np.bincount(ix_all, weights=w, minlength=len(ux)), "N": w.sum(),
             "uT": uT, "W0": np.bincount(iT0, weights=w[zero], minlength=len(uT)),
             "x": x[pos], "w": w[pos], "ix": ix_all[pos], "iT": iT, "itx": itx,
             "uT_pos": uT_pos, "utx_pos": utx_pos}
        self._group_cache = (w, g)
        return g

    def _row_scores(self, p: Mapping[str, Any], data: Mapping[str, np.ndarray]
                    ) -> dict[str, np.ndarray]:
        if type(self)._ll_grad is not BetaGeoModel._ll_grad:  # a subclass's own likelihood
            return super()._row_scores(p, data)
        return self._ll_grad(p, data, value=False)[1]

    def _ll_grad(self, p: Mapping[str, Any], data: Mapping[str, np.ndarray], grad: bool = True,
                 value: bool = True) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Log-likelihood (Fader, Hardie & Lee 2005, eq. 6) in log space, and its gradient
        (``value=False``: the gradient only, an empty log-likelihood).

        Terms that depend on one statistic only are evaluated on its unique values when the
        parameters they involve are the same for every row (no covariates on them).
        """
        r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
        x = data["frequency"]
        ab_scalar = np.ndim(a) == 0 and np.ndim(b) == 0

        def on_x(fn: Any) -> np.ndarray:
            return on_unique(data, "frequency", fn, ab_scalar)

        la_T = on_unique(data, "T", lambda T: np.log(alpha + T), np.ndim(alpha) == 0)
        la_tx = on_unique(data, "recency", lambda tx: np.log(alpha + tx), np.ndim(alpha) == 0)
        rx = r + x
        log_bx1 = on_x(lambda u: np.log(np.maximum(b + u - 1, 1e-300)))
        u = -rx * la_T
        v = np.where(x > 0, np.log(a) - log_bx1 - rx * la_tx, -np.inf)
        ll = np.empty(0)
        if value:
            a1 = on_unique(data, "frequency", lambda u: gammaln(r + u) - gammaln(r), True) + r * np.log(alpha)
            a2 = on_x(lambda u: betaln(a, b + u) - betaln(a, b))
            ll = a1 + a2 + np.logaddexp(u, v)
        if not grad:
            return ll, {}
        pi = np.where(x > 0, 1.0 / (1.0 + np.exp(u - v)), 0.0)  # share of the "dropped at t_x" term
        T, tx = data["T"], data["recency"]
        d_r = (on_unique(data, "frequency", lambda u_: digamma(r + u_) - digamma(r), True)
               + np.log(alpha) - (1 - pi) * la_T - pi * la_tx)
        d_alpha = r / alpha - (1 - pi) * rx / (alpha + T) - pi * rx / (alpha + tx)
        d_a = on_x(lambda u_: digamma(a + b) - digamma(a + b + u_)) + pi / a
        d_b = (on_x(lambda u_: digamma(b + u_) - digamma(a + b + u_) - digamma(b) + digamma(a + b))
               - pi * on_x(lambda u_: 1.0 / np.maximum(b + u_ - 1, 1e-300)))
        return ll, {"r": d_r, "alpha": d_alpha, "a": d_a, "b": d_b}

    # ------------------------------------------------------------------ predictions
    def _p(self, data: pd.DataFrame | None, theta: np.ndarray | None = None) -> dict[str, Any]:
        self._check_is_fitted()
        if self.covariates_ and data is None:
            raise ModelDataError("this model has covariates: pass the customers' data")
        return self.individual_params(data if data is not None else pd.DataFrame(), theta)

    def expected_purchases(self, t: float | np.ndarray, data: pd.DataFrame | None = None
                           ) -> np.ndarray:
        """E[X(t)]: expected purchases of a new customer in ``t`` periods since their first.

        ``(a+b-1)/(a-1) * (1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t)))`` (Fader, Hardie
        & Lee 2005, eq. 9): the conditional expectation at ``x = 0, T = 0``, so computed by
        the same kernel (after Euler's transformation, continuous at ``a = 1`` and
        ``a + b = 1``, see :meth:`_expected_if_alive`).
        """
        p = self._p(data)
        t = np.asarray(t, dtype=float)
        return self._expected_if_alive(p, t, np.zeros(()), np.zeros(()))

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
        """E[Y(t) | x, t_x, T]: expected purchases in the next ``t`` periods of each customer.

        ``(a+b+x-1)/(a-1) * (1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z))
        * P(alive)`` with ``z = t/(alpha+T+t)`` (Fader, Hardie & Lee 2005, eq. 10), continuous
        across ``a = 1`` and ``a + b + x = 1`` (see :meth:`_expected_if_alive`).
        """
        p = self._p(data, theta)
        x, tx, T = (data[c].to_numpy(dtype=float) for c in RFM)
        t = np.asarray(t, dtype=float)
        return self._expected_if_alive(p, t, x, T) * np.exp(-self._log_odds_dead(p, x, tx, T))

    @staticmethod
    def _expected_if_alive(p: Mapping[str, Any], t: np.ndarray, x: np.ndarray, T: np.ndarray
                           ) -> np.ndarray:
        """E[Y(t) | alive at T, x, T] = ``C/(a-1) (1 - (1-z)^(a-1) 2F1(C-r-x, a-1; C; z))``,
        ``C = a+b+x-1``, ``z = t/(alpha+T+t)``: Euler's transformation of eq. 10 (neither
        overflows nor gives ``0 * inf`` for large ``x``), continuous across ``a = 1`` and ``C = 0``
        (see :func:`expected_if_alive`)."""
        r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
        return expected_if_alive(a + b + x - 1, r + x, a, t / (alpha + T + t))

    # ------------------------------------------------------------------ alive at future times
    #: Dropout opportunities a customer alive at T has survived besides their x repeat purchases
    #: (MBG/NBD: 1, the first purchase).
    _extra_survivals: ClassVar[int] = 0

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
        A customer alive at ``T`` with ``x`` repeat purchases in ``(0, T]`` has survived ``x``
        dropout opportunities (one after each repeat purchase; MBG/NBD: ``x + 1``, the first
        purchase too) and bought at rate ``lambda`` for ``T`` periods, so the posterior is
        ``lambda^x e^(-lambda T) (1-p)^(x+k)`` times the priors: ``lambda ~ Gamma(r+x,
        alpha+T)`` and ``p ~ Beta(a, b+x+k)``, independent (``k = 0`` BG/NBD, ``k = 1`` MBG/NBD;
        ``t_x`` only enters P(alive at T)). Dropout happens after each future purchase, so with
        ``N(t) ~ Poisson(lambda t)``: ``P(survive t | lambda, p) = E[(1-p)^N(t)] = exp(-lambda p
        t)``. Integrating ``lambda`` out gives ``(1 + p w)^-(r+x)``, ``w = t/(alpha+T)``, and
        integrating ``p`` out (Euler's integral, then Pfaff's transformation to ``z = w/(1+w) =
        t/(alpha+T+t)`` in ``[0, 1)``)::

            S(t) = E[(1 + p w)^-(r+x)] = 2F1(r+x, a; a+b'; -w)
                 = (1-z)^a 2F1(a+b-r+k, a; a+b+x+k; z),     b' = b+x+k,

        where ``x`` only enters the last argument (no overflow for large ``x``) and the series
        converges for every ``t``. Then ``P(alive at T+t) = P(alive at T) * S(t)``. Without
        covariates ``S`` is computed once per unique ``(x, T)``.

        References
        ----------
        .. [1] Fader, Hardie & Lee (2005), Marketing Science 24(2) (the posterior of ``lambda``
           and ``p`` given alive).
        .. [2] Abramowitz & Stegun (1972), 15.3.1 (Euler's integral) and 15.3.4 (Pfaff).
        """
        p = self._p(data, theta)
        t = future_times(t)
        x, tx, T = (data[c].to_numpy(dtype=float) for c in RFM)
        p_alive = np.exp(-self._log_odds_dead(p, x, tx, T))
        if all(np.ndim(v) == 0 for v in p.values()) and len(x) > 16:
            ipair, ux, uT = pair_index(x, T)
            return p_alive[:, None] * self._survival_if_alive(p, t, ux, uT)[ipair]
        return p_alive[:, None] * self._survival_if_alive(p, t, x, T)

    @classmethod
    def _survival_if_alive(cls, p: Mapping[str, Any], t: np.ndarray, x: np.ndarray,
                           T: np.ndarray) -> np.ndarray:
        """P(alive at T+t | alive at T, x, T): rows x future times (see :meth:`alive_curve`)."""
        r, alpha, a, b = (as_column(p[k]) for k in ("r", "alpha", "a", "b"))
        k = cls._extra_survivals
        x, T = x[:, None], T[:, None]
        z = t / (alpha + T + t)
        log_1mz = -np.log1p(t / (alpha + T))
        return np.exp(a * log_1mz) * hyp2f1_safe(a + b - r + k, a, a + b + x + k, z)
