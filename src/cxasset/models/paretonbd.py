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

``log 2F1`` (:func:`log_hyp2f1_1`): scipy's series for ``z <= 0.5``, else Gauss' continued fraction,
except near ``z = 1`` with ``P (1-z) <= 1``, where the fraction needs hundreds of iterations and the
series about ``z = 1`` (:func:`_log_hyp2f1_near1`) needs ~20 terms.

The fit uses the analytic gradient (:func:`log_tail_integral_grad`: closed form in ``alpha``, ``beta``;
the series differentiated term by term, or central differences of the kernel above
``z = 0.7``, in ``r``, ``s``). Without covariates the tail integrals are evaluated once per
unique ``(x, T)`` and ``(x, t_x)`` (15k and 21k pairs for 371k cells at 1M customers) and only the
mixture runs per cell (:meth:`ParetoNBDModel._summed_ll_grad`).

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
from scipy.special import betainc, betaln, digamma, expit, gammaln, hyp2f1, zeta

from cxasset.exceptions import ModelDataError
from cxasset.models._base import BaseModel, Constraint, logaddexp, wsum
from cxasset.models.bgnbd import RFM, as_column, check_rfm, future_times, on_unique

_TINY = 1e-300


def _hyp2f1_cf(P: np.ndarray, Q: np.ndarray, z: np.ndarray, max_iter: int = 400
               ) -> tuple[np.ndarray, np.ndarray]:
    """``2F1(1, P; P+Q; z)`` by Gauss' continued fraction (modified Lentz), vectorised.

    It is the continued fraction of the incomplete beta function (Numerical Recipes ``betacf``)
    with ``a = P+Q-1``, ``b = 1-Q``. Returns the values and a mask of the converged entries.
    An entry's value is taken at the first iteration with ``|step - 1| < 1e-15``; the arrays are
    compacted only when a quarter of the entries are done or every 32 iterations (the loop's cost
    is numpy's per-call overhead, not arithmetic).
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
    stored = np.zeros(x.shape, dtype=bool)
    n_stored, since = 0, 0
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
        new = (np.abs(step - 1.0) < 1e-15) & ~stored
        n_new = np.count_nonzero(new)
        if n_new:
            out[idx[new]], ok[idx[new]] = h[new], True
            stored |= new
            n_stored += n_new
        since += 1
        if n_stored == stored.size:
            break
        if n_stored and (4 * n_stored > stored.size or since >= 32):
            since, n_stored = 0, 0
            keep = ~stored
            idx, a, b, x, qab, qap, qam, c, d, h, stored = (
                v[keep] for v in (idx, a, b, x, qab, qap, qam, c, d, h, stored))
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


_EULER = 0.5772156649015329
_ZETA = zeta(np.arange(2.0, 64.0), 1.0)  # zeta(2), ..., zeta(63)
_NEAR1_MAX_PW = 1.0  # P (1-z) at most this: the z -> 1 series (the fraction is slow there)
_NEAR1_MAX_STEPS = 64  # recurrence steps in Q at most


def _ratio(num: np.ndarray, den: np.ndarray, limit: float | np.ndarray) -> np.ndarray:
    """``num / den``, ``limit`` where ``den == 0``."""
    zero = den == 0.0
    return np.where(zero, limit, num / np.where(zero, 1.0, den))


# Stirling's series: lgamma(x) = (x-1/2) log x - x + log(2 pi)/2 + sum_k c_k x^(1-2k)
_STIRLING = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188, -691 / 360360, 1 / 156,
             -3617 / 122400)


def _lgamma_quotient(x: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """``(lgamma(x+eps) - lgamma(x)) / eps`` for ``x >= 10``, ``|eps| <= 1/2`` (``digamma(x)`` at
    ``eps = 0``) without cancellation: Stirling's series differenced term by term (~1e-16)."""
    t = eps / x
    lt = np.log1p(t)
    out = (x - 0.5) * _ratio(lt, t, 1.0) / x + np.log(x + eps) - 1.0
    inv2 = 1.0 / (x * x)
    xp = inv2
    x_min = float(np.min(x, initial=np.inf))
    for k, c in enumerate(_STIRLING, start=1):
        m = 2 * k - 1
        if abs(c) * (m + 1) * x_min ** (-m - 1) < 1e-18:  # this term and the next are negligible
            break
        out = out + c * xp * _ratio(np.expm1(-m * lt), t, float(-m))
        xp = xp * inv2
    return out


def _lgamma_1m_quotient(eps: np.ndarray) -> np.ndarray:
    """``lgamma(1-eps) / eps`` for ``|eps| <= 1/2`` (Euler's constant at 0): its Taylor series
    ``gamma + sum_(k>=2) zeta(k) eps^(k-1) / k``, on the unique values of ``eps``."""
    u, inv = np.unique(eps, return_inverse=True)
    acc = np.zeros_like(u)
    for k in range(len(_ZETA) + 1, 1, -1):  # Horner, from the smallest term
        acc = acc * u + _ZETA[k - 2] / k
    return (_EULER + u * acc)[inv.reshape(eps.shape)]


def _log_hyp2f1_near1(P: np.ndarray, Q: np.ndarray, z: np.ndarray, max_terms: int = 400
                      ) -> tuple[np.ndarray, np.ndarray]:
    """``log 2F1(1, P; P+Q; z)`` near ``z = 1`` (``P w`` small, ``w = 1-z``) for ``Q >= 1/2``.

    With ``Q = k + eps`` (``k`` an integer, ``-1/2 <= eps < 1/2``), ``F(1+eps)`` by the ``z -> 1-z``
    connection formula (Abramowitz & Stegun 15.3.6) with its removable singularity at ``eps = 0``
    divided out: ``F = S + P (dS - z^-P dG)``, ``S = sum_n (P)_n w^n / (1-eps)_n``,
    ``dS = (S - z^-P)/eps = sum_n (P)_n w^n/n! (prod_(j<=n) j/(j-eps) - 1)/eps`` and
    ``dG = (G - 1)/eps``, ``G = (w/z)^eps Gamma(P+1+eps) Gamma(1-eps) / Gamma(P+1)``, every
    quotient by ``eps`` in a form without cancellation (``log1p``, ``expm1``, Stirling's series,
    the Taylor series of ``lgamma(1-eps)``); ``eps = 0`` is taken as ``1e-150``, at which each of
    them equals its limit in floating point. Then ``F(q+1) = (P+q)(1 - w F(q)) / (q z)`` (from the
    incomplete beta form) up to ``Q``, which multiplies a relative error by ``w F / (1 - w F)``
    (``0 < w F < 1`` for the true values).
    Returns the values and a mask of the entries where the series converged and a running bound
    on the relative error (cancellation, then the recurrence) stays below 256 roundings; the
    others go to the continued fraction.
    """
    w = 1.0 - z
    k0 = np.floor(Q + 0.5)
    eps = Q - k0
    eps = np.where(eps == 0.0, 1e-150, eps)
    n_pts = z.size
    S, dS = np.ones(n_pts), np.zeros(n_pts)
    u, le = np.ones(n_pts), np.zeros(n_pts)
    done = np.zeros(n_pts, dtype=bool)
    with np.errstate(all="ignore"):
        for n in range(1, max_terms + 1):
            u = u * (P + (n - 1)) * (w / n)          # (P)_n w^n / n!
            t = eps / n
            le = le - np.log1p(-t) / t / n           # L_n / eps, L_n = -sum_(j<=n) log(1 - eps/j)
            L = eps * le
            e = np.expm1(L)
            term = u + u * e
            d_term = u * (e / eps)
            S, dS = S + term, dS + d_term
            if n % 8 == 0:  # the terms fall at least geometrically at the ratio r from here
                r = (P + n) * w / (n + 0.5)
                done |= ((r < 0.9) & (term * r <= 1e-17 * (1 - r) * S)
                         & (d_term * 2 * r <= 1e-17 * (1 - r) * dS))
                if done.all():
                    break
        # R1 = (lgamma(P+1+eps) - lgamma(P+1))/eps, R2 = lgamma(1-eps)/eps; R1's argument first
        # raised to x >= 10 by lgamma(x+1) = lgamma(x) + log(x)
        shift = np.maximum(np.ceil(9.0 - P), 0.0)
        x = P + 1.0 + shift
        R1 = _lgamma_quotient(x, eps)
        for j in range(int(np.max(shift, initial=0.0))):
            t = eps / (P + 1.0 + j)
            R1 = R1 - np.where(j < shift, np.log1p(t) / eps, 0.0)
        R2 = _lgamma_1m_quotient(eps)
        lz = np.log(z)
        lw = np.log(w)
        lam_e = lw - lz + R1 + R2              # log(G) / eps
        lam = eps * lam_e
        g = np.exp(-P * lz) * (np.expm1(lam) / lam)
        F = S + P * (dS - g * lam_e)
        # a bound on the relative error in units of rounding: the cancellation in log(G)/eps and
        # in F, then e <- e w F/(1 - w F) + 1 per step of the recurrence; accepted up to 256
        scale = S + P * dS + P * g * (np.abs(lw) - lz + np.abs(R1) + np.abs(R2))
        err = np.where(F > 0.0, scale / np.where(F > 0.0, F, 1.0), np.inf)
        # the recurrence on the entries sorted by their number of steps: the active ones are a prefix
        steps = (k0 - 1.0).astype(np.int64)
        order = np.argsort(-steps, kind="stable")
        n_active = np.bincount(steps, minlength=int(steps.max(initial=0)) + 1)[::-1].cumsum()[::-1]
        Fs, Ps, ws, zs, qs = F[order], P[order], w[order], z[order], 1.0 + eps[order]
        es = err[order]
        for j in range(1, len(n_active)):
            n = n_active[j]
            wf = ws[:n] * Fs[:n]
            es[:n] = es[:n] * np.where((wf > 0.0) & (wf < 1.0), wf / (1.0 - wf), np.inf) + 1.0
            Fs[:n] = (Ps[:n] + qs[:n]) * (1.0 - wf) / (qs[:n] * zs[:n])
            qs[:n] += 1.0
        F[order] = Fs
        err[order] = es
        return np.log(F), done & (err <= 256.0)  # err is infinite unless F stayed positive


def log_hyp2f1_1(P: np.ndarray, Q: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``log 2F1(1, P; P+Q; z)`` for ``P, Q > 0`` and ``0 <= z < 1``, accurate to ~1e-12.

    Small ``z``: scipy's series. Otherwise the continued fraction; for ``Q < 1`` the regularised
    incomplete beta function (``2F1 = a z^-a (1-z)^(Q-1) B(a, 1-Q) I_z(a, 1-Q)``, ``a = P+Q-1``);
    for ``P (1-z) <= 1`` (where the fraction needs hundreds of iterations) the series about
    ``z = 1`` (:func:`_log_hyp2f1_near1`); quadrature of the integral where neither converges.
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
        # the series about z = 1 where the fraction is slow: z near 1, or near its turning point
        # z = (P+Q)/(P+2) (NR's criterion); elsewhere the fraction needs ~30 iterations at most
        rest = ~small
        w = 1.0 - z
        near = np.flatnonzero(rest & (Q >= 0.5) & (P * w <= _NEAR1_MAX_PW)
                              & (Q < _NEAR1_MAX_STEPS + 1.5)
                              & ((w < 0.1) | (z * (P + 2.0) > 0.9 * (P + Q))))
        if near.size:
            val, ok = _log_hyp2f1_near1(P[near], Q[near], z[near])
            out[near[ok]] = val[ok]
            rest[near[ok]] = False
        # Q < 1: incomplete beta where the fraction is slow (z above the mode, NR's criterion)
        beta_ok = rest & (Q < 1.0) & (z > (P + Q) / (P + 2.0))
        if beta_ok.any():
            p, q, zz = P[beta_ok], Q[beta_ok], z[beta_ok]
            a = p + q - 1.0
            out[beta_ok] = (np.log(a) - a * np.log(zz) + (q - 1.0) * np.log1p(-zz)
                            + betaln(a, 1.0 - q) + np.log(betainc(a, 1.0 - q, zz)))
            rest &= ~beta_ok
        rest = np.flatnonzero(rest)
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


_SERIES_MAX_Z = 0.7  # above it the continued fraction of log_hyp2f1_1 is cheaper


def _log_hyp2f1_1_series(P: np.ndarray, Q: np.ndarray, z: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``log F``, ``F = 2F1(1, P; P+Q; z)``, and its derivatives in ``P``, ``Q`` and ``z`` by the
    series (for ``0 <= z <= 0.7``, ~100 terms at most), differentiated term by term: every
    term is positive and
    ``t_n = t_(n-1) (P+n-1)/(P+Q+n-1) z``, so ``d log t_n/dP = sum_(k<n) 1/(P+k) - 1/(P+Q+k)``."""
    n_pts = z.size
    S, Sp, Sq, Sz = np.ones(n_pts), np.zeros(n_pts), np.zeros(n_pts), np.zeros(n_pts)
    out = [np.empty(n_pts) for _ in range(4)]
    idx = np.arange(n_pts)
    t, Lp, Lq, pq = np.ones(n_pts), np.zeros(n_pts), np.zeros(n_pts), P + Q
    n = 0
    while idx.size:
        for _ in range(4):
            k = float(n)
            n += 1
            inv_pq = 1.0 / (pq + k)
            wn = t * (P + k) * inv_pq  # t_n / z
            Lp = Lp + 1.0 / (P + k) - inv_pq
            Lq = Lq - inv_pq
            Sz = Sz + n * wn
            t = wn * z
            S = S + t
            Sp = Sp + t * Lp
            Sq = Sq + t * Lq
        # tail after term n <= t_n z/(1-z) <= t_n; the derivative terms grow at most ~n
        done = wn * (n + 1.0 + np.abs(Lp)) <= 1e-17 * S
        if n > 2000:
            done[:] = True
        n_done = np.count_nonzero(done)
        if n_done == done.size or n_done > done.size // 4:  # compacting costs a copy of all
            for o, v in zip(out, (S, Sp, Sq, Sz), strict=True):
                o[idx[done]] = v[done]
            keep = ~done
            idx, t, Lp, Lq, S, Sp, Sq, Sz, P, pq, z = (
                v[keep] for v in (idx, t, Lp, Lq, S, Sp, Sq, Sz, P, pq, z))
    S, Sp, Sq, Sz = out
    return np.log(S), Sp / S, Sq / S, Sz / S


def log_hyp2f1_1_grad(P: np.ndarray, Q: np.ndarray, z: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``log 2F1(1, P; P+Q; z)`` (as :func:`log_hyp2f1_1`) and its derivatives in ``P``, ``Q``, ``z``.

    For ``z <= 0.7`` (nearly always at sensible parameters) the series and its term-by-term
    derivatives. Otherwise the value from :func:`log_hyp2f1_1`, the ``z``-derivative in closed
    form from the value (``F`` is an incomplete beta function in ``z``:
    ``d log F/dz = -a/z + (1-Q)/(1-z) + a/(z (1-z) F)``, ``a = P+Q-1``) and the derivatives in
    ``P`` and ``Q`` by central differences of the value with steps ``1e-4 P`` and ``1e-4 Q``
    (truncation error ~1e-8 relative).
    """
    shape = np.broadcast_shapes(np.shape(P), np.shape(Q), np.shape(z))
    P, Q, z = (np.ravel(v).astype(float) for v in np.broadcast_arrays(P, Q, z))
    outs = [np.empty(z.shape) for _ in range(4)]
    with np.errstate(all="ignore"):
        small = z <= _SERIES_MAX_Z
        if small.all():
            outs = list(_log_hyp2f1_1_series(P, Q, z))
        else:
            if small.any():
                for o, v in zip(outs, _log_hyp2f1_1_series(P[small], Q[small], z[small]),
                                strict=True):
                    o[small] = v
            big = ~small
            p, q, zz = P[big], Q[big], z[big]
            hp, hq = 1e-4 * p, 1e-4 * q
            # the value and the four shifted ones in one call (one pass of the fraction's loop)
            val, p_up, p_dn, q_up, q_dn = np.split(log_hyp2f1_1(
                np.concatenate([p, p + hp, p - hp, p, p]),
                np.concatenate([q, q, q, q + hq, q - hq]), np.tile(zz, 5)), 5)
            dp = (p_up - p_dn) / (2 * hp)
            dq = (q_up - q_dn) / (2 * hq)
            a = p + q - 1.0
            dz = -a / zz + (1.0 - q) / (1.0 - zz) + a / (zz * (1.0 - zz)) * np.exp(-val)
            for o, v in zip(outs, (val, dp, dq, dz), strict=True):
                o[big] = v
    return tuple(o.reshape(shape) for o in outs)  # type: ignore[return-value]


def log_tail_integral_grad(P: Any, Q: Any, A: Any, B: Any, u: Any
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`log_tail_integral` and its derivatives with respect to ``P``, ``Q``, ``A``, ``B``.

    With ``h >= l`` the larger and smaller offset, ``p, q`` their exponents, ``z = (h-l)/(h+u)``
    and ``F = 2F1(1, p; p+q; z)``: ``log I = -p log(h+u) - (q-1) log(l+u) + log F - log(p+q-1)``,
    so ``d/dp = -log(h+u) + dlogF/dp - 1/(p+q-1)``, ``d/dq = -log(l+u) + dlogF/dq - 1/(p+q-1)``,
    ``d/dh = -p/(h+u) + dlogF/dz (l+u)/(h+u)^2``, ``d/dl = -(q-1)/(l+u) - dlogF/dz / (h+u)``.
    """
    P, Q, A, B, u = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (P, Q, A, B, u)))
    swap = A < B
    hi, lo = np.where(swap, B, A), np.where(swap, A, B)
    p, q = np.where(swap, Q, P), np.where(swap, P, Q)
    hu, lu = hi + u, lo + u
    lh, ll = np.log(hu), np.log(lu)
    F, Fp, Fq, Fz = log_hyp2f1_1_grad(p, q, (hi - lo) / hu)
    inv = 1.0 / (p + q - 1.0)
    val = -p * lh - (q - 1.0) * ll + F + np.log(inv)
    dp = Fp - lh - inv
    dq = Fq - ll - inv
    dh = Fz * lu / (hu * hu) - p / hu
    dl = -(q - 1.0) / lu - Fz / hu
    if not swap.any():
        return val, dp, dq, dh, dl
    return (val, np.where(swap, dq, dp), np.where(swap, dp, dq), np.where(swap, dl, dh),
            np.where(swap, dh, dl))


def _combine(ca: np.ndarray, ua: np.ndarray, cb: np.ndarray, ub: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of two factorised columns: each row's pair index and the pairs' values."""
    nb = max(len(ub), 1)
    key = ca.astype(np.int64) * nb + cb
    if len(ua) * nb <= 4 * len(key) + 1024:  # dense map: no hashing
        present = np.zeros(len(ua) * nb, dtype=bool)
        present[key] = True
        ukey = np.flatnonzero(present)
        ids = np.cumsum(present) - 1
        inv = ids[key]
    else:
        inv, ukey = pd.factorize(key)
    return inv, np.asarray(ua, dtype=float)[ukey // nb], np.asarray(ub, dtype=float)[ukey % nb]


def pair_index(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique pairs ``(a, b)``: each row's pair index and the pairs' values (O(n), no sort)."""
    ca, ua = pd.factorize(a)
    cb, ub = pd.factorize(b)
    return _combine(ca, ua, cb, ub)


def rfm_pairs(x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> dict[str, np.ndarray]:
    """Unique ``x``, ``(x, T)`` and ``(x, t_x)``, with each row's index into them."""
    cx, ux = pd.factorize(x)
    cT, uT = pd.factorize(T)
    ctx, utx = pd.factorize(tx)
    out = {"_i:frequency": cx, "_u:frequency": np.asarray(ux, dtype=float)}
    out["_i:xT"], out["_x:xT"], out["_u:xT"] = _combine(cx, ux, cT, uT)
    out["_i:xtx"], out["_x:xtx"], out["_u:xtx"] = _combine(cx, ux, ctx, utx)
    return out


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
