"""Pareto/NBD's tail integral ``I(u)`` and the ``log 2F1(1, P; P+Q; z)`` it reduces to.

``log I(u) = -P log(A+u) - (Q-1) log(B+u) + log 2F1(1, P; P+Q; z) - log(P+Q-1)`` with ``A >= B``
the larger and smaller of ``alpha, beta``, ``P, Q`` their exponents and ``z = (A-B)/(A+u)`` in
``[0, 1)`` (:mod:`cxasset.models.paretonbd` derives it). ``log 2F1`` (:func:`log_hyp2f1_1`):
scipy's series for ``z <= 0.5``, else Gauss' continued fraction, except near ``z = 1`` with
``P (1-z) <= 1``, where the fraction needs hundreds of iterations and the series about ``z = 1``
(:func:`_log_hyp2f1_near1`: the ``z -> 1-z`` connection formula with the integer-``Q``
singularity divided out, an upward recurrence in ``Q`` and a running error bound) needs ~20 terms.
Gradients (:func:`log_tail_integral_grad`): closed form in ``A``, ``B``; the series differentiated
term by term, or central differences of the kernel above ``z = 0.7``, in ``P``, ``Q``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import betainc, betaln, hyp2f1, zeta

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
