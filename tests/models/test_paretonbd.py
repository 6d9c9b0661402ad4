"""Pareto/NBD: known answers on CDNOW, cross-check against lifetimes, stability, covariates."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxasset.exceptions import ModelDataError, NotFittedError
from cxasset.models._tail import (
    _hyp2f1_cf,
    _lgamma_quotient,
    _log_hyp2f1_near1,
    log_hyp2f1_1,
    log_hyp2f1_1_grad,
    log_tail_integral,
    log_tail_integral_grad,
)
from cxasset.models.paretonbd import ParetoNBDModel
from reference import cdnow as ref

from .test_bgnbd import check_coverage, check_recovery, rfm_frame

RFM = ["frequency", "recency", "T"]
NAMES = ("r", "alpha", "s", "beta")


def simulate_paretonbd(n: int, params: dict, coefs: dict, seed: int, T_range: tuple = (52, 104)
                       ) -> pd.DataFrame:
    """Pareto/NBD customers with ``z ~ N(0,1)`` and a 0/1 dummy ``d``: Poisson purchases at
    ``lambda ~ Gamma(r, alpha_i)`` until an exponential lifetime at ``mu ~ Gamma(s, beta_i)``,
    ``alpha_i = alpha exp(-g'z)``, ``beta_i = beta exp(-g'z)``, observed for ``T`` weeks."""
    rng = np.random.default_rng(seed)
    z, d = rng.standard_normal(n), rng.integers(0, 2, n).astype(float)

    def eff(p: str) -> np.ndarray:
        c = coefs.get(p, {})
        return c.get("z", 0.0) * z + c.get("d", 0.0) * d

    alpha = params["alpha"] * np.exp(-eff("alpha"))
    beta = params["beta"] * np.exp(-eff("beta"))
    T = rng.integers(T_range[0] * 7, T_range[1] * 7 + 1, n) / 7
    lam = rng.gamma(params["r"], 1 / alpha)
    mu = rng.gamma(params["s"], 1 / beta)
    active = np.minimum(rng.exponential(1 / mu), T)
    x = rng.poisson(lam * active)
    tx = np.where(x > 0, active * rng.random(n) ** (1 / np.maximum(x, 1)), 0.0)  # the last one
    return rfm_frame(x, tx, T, z, d)


PN_TRUTH = {"r": 0.6, "alpha": 8.0, "s": 0.8, "beta": 15.0}
PN_COEFS = {"alpha": {"z": 0.3, "d": -0.2}, "beta": {"z": 0.3, "d": 0.2}}


def _all(coefs: dict) -> dict[str, float]:
    return {**PN_TRUTH, **{f"{p}[{c}]": g for p, cs in coefs.items() for c, g in cs.items()}}


@pytest.fixture(scope="module")
def fitted(cdnow: pd.DataFrame) -> ParetoNBDModel:
    return ParetoNBDModel().fit(cdnow)


@pytest.fixture(scope="module")
def published() -> ParetoNBDModel:
    return ParetoNBDModel.from_params(**ref.PNBD_FULL)


# ------------------------------------------------------------------------------- known answers
def test_cdnow_fit_matches_published(fitted: ParetoNBDModel, cdnow: pd.DataFrame) -> None:
    assert fitted.result_.converged
    for k, v in ref.PNBD_FULL.items():
        assert fitted.params_[k] == pytest.approx(v, rel=1e-3), k
    assert fitted.result_.log_likelihood == pytest.approx(ref.PNBD_LL, abs=0.01)
    assert fitted.result_.log_likelihood >= ref.PNBD_LL - 1e-3  # at least as good an optimum
    data = {c: cdnow[c].to_numpy(float) for c in RFM}
    ll_pub = float(np.sum(fitted._log_likelihood(ref.PNBD_FULL, data)))
    assert ll_pub == pytest.approx(ref.PNBD_LL, abs=0.01)


def test_published_predictions(published: ParetoNBDModel) -> None:
    case = ref.PNBD_X26
    one = ref.one_customer(case)
    assert float(published.conditional_expected_purchases(case["t"], one)[0]) == pytest.approx(
        case["expected"], rel=1e-4)
    assert float(published.probability_alive(one)[0]) == pytest.approx(case["p_alive"], rel=1e-4)
    r, alpha, s, beta = (ref.PNBD_FULL[k] for k in NAMES)
    t = np.array([1.0, 39.0, 78.0])
    expected = r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1))
    np.testing.assert_allclose(published.expected_purchases(t), expected, rtol=1e-12)


# ---------------------------------------------------------------------------- vs lifetimes
def test_matches_lifetimes(cdnow: pd.DataFrame, fitted: ParetoNBDModel) -> None:
    lifetimes = pytest.importorskip("lifetimes")
    x, tx, T = (cdnow[c].to_numpy(float) for c in RFM)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lt = lifetimes.ParetoNBDFitter().fit(x, tx, T)
        params = {k: float(lt.params_[k]) for k in NAMES}
        lt_pa = lt.conditional_probability_alive(x, tx, T)
        lt_ce = lt.conditional_expected_number_of_purchases_up_to_time(39.0, x, tx, T)
        lt_ue = lt.expected_number_of_purchases_up_to_time(np.array([1.0, 39.0, 78.0]))
        lt_ll = lifetimes.ParetoNBDFitter._conditional_log_likelihood(
            [params[k] for k in NAMES], x, tx, T)
    # lifetimes' Nelder-Mead stops early: parameters agree to ~1e-3, predictions at the SAME
    # parameters to 1e-4 (in fact to rounding)
    for k in NAMES:
        assert fitted.params_[k] == pytest.approx(params[k], rel=1e-3), k
    same = ParetoNBDModel.from_params(**params)
    np.testing.assert_allclose(same.probability_alive(cdnow), lt_pa, rtol=1e-4)
    np.testing.assert_allclose(same.conditional_expected_purchases(39.0, cdnow), lt_ce, rtol=1e-4)
    np.testing.assert_allclose(same.expected_purchases(np.array([1.0, 39.0, 78.0])), lt_ue,
                               rtol=1e-10)
    data = {c: cdnow[c].to_numpy(float) for c in RFM}
    np.testing.assert_allclose(same._log_likelihood(params, data), lt_ll, rtol=1e-10)


def test_loglikelihood_matches_lifetimes_on_a_grid() -> None:
    """Per-customer log-likelihood against lifetimes wherever lifetimes' form is finite
    (both alpha >= beta and alpha < beta), and finite everywhere for ours."""
    lifetimes = pytest.importorskip("lifetimes")
    grid = [(x, txf, T) for x in (0, 1, 2, 10, 50, 140) for txf in (0.0, 0.3, 0.99, 1.0)
            for T in (0.5, 10.0, 40.0, 300.0) if x > 0 or txf == 0.0]
    x, txf, T = (np.array(v, dtype=float) for v in zip(*grid, strict=True))
    tx = txf * T
    data = {"frequency": x, "recency": tx, "T": T}
    for params in ([0.55, 10.6, 0.61, 11.7], [0.55, 2.0, 0.61, 40.0], [2.0, 40.0, 3.0, 1.5],
                   [0.2, 0.5, 1.0, 0.5], [5.0, 1.0, 0.1, 100.0]):
        p = dict(zip(NAMES, params, strict=True))
        ours = ParetoNBDModel.from_params(**p)._log_likelihood(p, data)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            theirs = lifetimes.ParetoNBDFitter._conditional_log_likelihood(params, x, tx, T)
        assert np.all(np.isfinite(ours))
        ok = np.isfinite(theirs)
        assert ok.mean() > 0.75  # lifetimes' 2F1 overflows for the larger x
        np.testing.assert_allclose(ours[ok], theirs[ok], rtol=1e-8, atol=1e-8)


def test_stable_at_extremes() -> None:
    """No overflow for large x or T (lifetimes' form overflows around x = 150): the
    log-likelihood is finite, and matches brute-force quadrature of its integral."""
    from scipy.integrate import quad
    from scipy.special import gammaln

    p = {"r": 0.55, "alpha": 10.6, "s": 0.61, "beta": 11.7}
    m = ParetoNBDModel.from_params(**p)
    x = np.array([0, 500, 500, 1000, 300, 10, 0.0])
    tx = np.array([0, 100, 9999, 52, 299.9, 1e5, 0.0])
    T = np.array([1e6, 104, 1e4, 104, 300, 1e6, 1e-6])
    ll = m._log_likelihood(p, {"frequency": x, "recency": tx, "T": T})
    assert np.all(np.isfinite(ll))
    r, a, s, b = p.values()
    for i in (1, 3, 4):   # brute force in relative terms: integrand scaled at t_x
        rx = r + x[i]

        def g(tau: float, i: int = i, rx: float = rx) -> float:
            return float(np.exp(-rx * np.log((a + tau) / (a + tx[i])) - (s + 1) * np.log(b + tau)))

        kinks = [tx[i] + (a + tx[i]) / rx * k for k in (1, 5, 20)]
        integral, _ = quad(g, tx[i], T[i], points=kinks, epsabs=0, epsrel=1e-12, limit=200)
        died = np.log(s) + np.log(integral) - rx * np.log(a + tx[i])
        alive = -rx * np.log(a + T[i]) - s * np.log(b + T[i])
        expected = (gammaln(rx) - gammaln(r) + r * np.log(a) + s * np.log(b)
                    + np.logaddexp(alive, died))
        assert ll[i] == pytest.approx(expected, rel=1e-9)
    one = pd.DataFrame({"frequency": x, "recency": tx, "T": T})
    pa = m.probability_alive(one)
    ce = m.conditional_expected_purchases(52.0, one)
    assert np.all((pa >= 0) & (pa <= 1)) and np.all(np.isfinite(ce)) and np.all(ce >= 0)


def test_hypergeometric_kernel() -> None:
    """log 2F1(1, P; P+Q; z) against values from mpmath (50 digits), in every branch."""
    cases = [  # P, Q, z, log 2F1 (mpmath.hyp2f1, mp.dps = 50)
        (0.55, 1.6, 0.1, 0.026567213175714813), (500.5, 1.6, 0.999, 5.791210535692764),
        (1.5, 0.3, 0.99, 3.5082761715407846), (26.5, 2.0, 0.99999, 3.3121587729705864),
        (0.05, 1.0, 0.999999999, 0.7091163714005596), (5000.5, 300.0, 0.5, 0.6381014757439116)]
    P, Q, z, want = (np.array(v) for v in zip(*cases, strict=True))
    np.testing.assert_allclose(log_hyp2f1_1(P, Q, z), want, rtol=1e-9)
    # the tail integral is symmetric in which offset is larger
    a = log_tail_integral(3.0, 1.6, 2.0, 7.0, 1.0)
    b = log_tail_integral(1.6, 3.0, 7.0, 2.0, 1.0)
    assert float(a) == pytest.approx(float(b), rel=1e-12)


NEAR1_CASES = [  # P, Q, z, log 2F1(1, P; P+Q; z) (mpmath.hyp2f1, mp.dps = 50); P (1-z) <= 1
    (13119.44, 2.1164, 0.999935, 8.606535371484801),  # as met by a covariate fit (s -> inf)
    (13119.44, 1.1164, 0.99998, 9.6544607032245219),
    (6863.1, 28.1174, 0.9999231, 5.5176917302653919),
    (4542.46, 1.0, 0.9999, 8.396478953489264),        # integer Q: the removable singularity
    (2.2, 1.0, 0.8, 0.95839231851840355),
    (2.2, 1.3, 0.8, 0.84250544897311272),
    (0.05, 37.5, 0.99999999, 0.0013689255932571836),
    (0.3, 2.000000001, 0.9999999997, 0.26236426229999241),
    (35.0, 0.5, 0.999, 5.603535880258555),
    (500.0, 64.49, 0.999, 2.1752988863345658),        # 63 steps of the recurrence
    (7.5, 2.9999, 0.9, 1.1496885206322762),
    (1.5, 3.0, 0.5, 0.19829751499194298),
    (0.05, 1.000000000001, 0.9999862027033853, 0.44185089525223514),
    (0.1464901207362255, 64.5, 0.999999, 0.002304271811348387),
    (0.1464901207362255, 1.0, 0.5, 0.08665935089015514),
    (795.2707287670507, 0.51, 0.9999487503384947, 8.615511913698349),
    (20000.0, 2.0, 0.9999862027033853, 9.469481482730938),
    (0.42918710946627847, 30.0, 0.9999862027033853, 0.014690899238042015)]


def test_near_one_series_against_mpmath() -> None:
    """The series about z = 1 (and log_hyp2f1_1, which routes these points to it) against
    mpmath, near integer Q included: ~1e-14 where the continued fraction needs hundreds of
    iterations (and is good to only ~1e-11 there)."""
    P, Q, z, want = (np.array(v) for v in zip(*NEAR1_CASES, strict=True))
    got, ok = _log_hyp2f1_near1(P, Q, z)
    assert ok.all()
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=2e-14)
    np.testing.assert_allclose(log_hyp2f1_1(P, Q, z), want, rtol=1e-13, atol=2e-14)


def test_near_one_series_against_continued_fraction() -> None:
    """On a grid of small and large P, Q across and next to the integers (the connection
    formula's removable singularities) and z towards 1, with P (1-z) <= 1: the error bound
    accepts the series nearly everywhere, and the series equals the continued fraction where
    that converges in 400 iterations, to the fraction's own accuracy there (against mpmath at
    50 digits on this grid: the series 1.7e-14 absolute in log, the fraction 1.6e-11)."""
    P, Q, w = (v.ravel() for v in np.meshgrid(
        np.geomspace(0.05, 2e4, 13),
        [0.5, 0.51, 0.99, 1.0, 1.0 + 1e-12, 1.0 - 1e-9, 1.4999, 1.5, 2.0, 2.49, 3.0 + 1e-6,
         7.3, 30.0, 64.5, 65.49],
        np.geomspace(1e-6, 0.5, 11)))
    keep = (P * w <= 1.0) & (P + Q > 1.0)
    P, Q, z = P[keep], Q[keep], 1.0 - w[keep]
    ref, conv = _hyp2f1_cf(P, Q, z)
    assert conv.mean() > 0.5
    got, ok = _log_hyp2f1_near1(P, Q, z)
    assert ok.mean() > 0.99
    both = ok & conv
    np.testing.assert_allclose(got[both], np.log(ref[both]), rtol=0, atol=3e-11)
    fast = log_hyp2f1_1(P, Q, z)
    np.testing.assert_allclose(fast[ok], got[ok], rtol=0, atol=1e-13)
    np.testing.assert_allclose(fast[conv], np.log(ref[conv]), rtol=0, atol=3e-11)


def test_near_one_series_rejects_what_it_cannot_do() -> None:
    """Beyond P (1-z) ~ 1 the series' terms cancel (they grow like e^(P(1-z))): its error bound
    must then refuse the value rather than return a wrong one (the continued fraction, fast
    there, is the reference)."""
    rng = np.random.default_rng(8)
    n = 4000
    P = np.exp(rng.uniform(np.log(1.0), np.log(2e4), n))
    w = np.exp(rng.uniform(np.log(1.0), np.log(300.0), n)) / P
    keep = w < 0.5
    P, w = P[keep], w[keep]
    Q = rng.uniform(0.5, 65.4, P.size)
    z = 1.0 - w
    got, ok = _log_hyp2f1_near1(P, Q, z)
    ref, conv = _hyp2f1_cf(P, Q, z)
    assert ok.mean() < 0.5 and conv[ok].all()
    np.testing.assert_allclose(got[ok], np.log(ref[ok]), rtol=1e-12, atol=1e-12)


def test_lgamma_quotient() -> None:
    """(lgamma(x+eps) - lgamma(x))/eps by Stirling's series: digamma at eps = 0, the difference
    of lgamma where it does not cancel, and the Taylor series in eps (polygamma)."""
    from scipy.special import digamma, gammaln, polygamma

    x = np.geomspace(10.0, 1e6, 9)
    np.testing.assert_allclose(_lgamma_quotient(x, np.zeros_like(x)), digamma(x), rtol=1e-15)
    e = np.full_like(x, 0.5)
    small = x < 100
    np.testing.assert_allclose(_lgamma_quotient(x, e)[small],
                               ((gammaln(x + e) - gammaln(x)) / e)[small], rtol=1e-13)
    for eps in (1e-9, -0.3, 0.49):
        e = np.full_like(x, eps)
        taylor = sum(polygamma(k - 1, x) * eps ** (k - 1) / np.prod(np.arange(1.0, k + 1))
                     for k in range(1, 25))
        np.testing.assert_allclose(_lgamma_quotient(x, e), taylor, rtol=1e-15)


def _central(f, theta: np.ndarray, h: float = 1e-5) -> np.ndarray:
    return np.array([(f(theta + e) - f(theta - e)) / (2 * h) for e in np.eye(len(theta)) * h])


def test_kernel_derivatives() -> None:
    """d log 2F1(1, P; P+Q; z)/d(P, Q, z) against central differences of the value, in the
    series range and above it (continued fraction, incomplete beta, quadrature)."""
    rng = np.random.default_rng(5)
    n = 300
    P = np.exp(rng.uniform(np.log(0.05), np.log(1000), n))
    Q = np.maximum(np.exp(rng.uniform(np.log(0.05), np.log(300), n)), 1.05 - P)
    z = np.concatenate([rng.uniform(0, 0.7, n // 2), rng.uniform(0.7, 0.9999, n // 2)])
    z[:3] = 0.0
    val, dP, dQ, dz = log_hyp2f1_1_grad(P, Q, z)
    np.testing.assert_allclose(val, log_hyp2f1_1(P, Q, z), rtol=1e-13, atol=1e-14)
    h = 1e-6  # relative steps; compare d/dlog(P), d/dlog(Q)
    num_P = (log_hyp2f1_1(P * (1 + h), Q, z) - log_hyp2f1_1(P * (1 - h), Q, z)) / (2 * h)
    num_Q = (log_hyp2f1_1(P, Q * (1 + h), z) - log_hyp2f1_1(P, Q * (1 - h), z)) / (2 * h)
    np.testing.assert_allclose(dP * P, num_P, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(dQ * Q, num_Q, rtol=1e-6, atol=1e-9)
    pos = z > 0
    hz = 1e-6 * np.minimum(z, 1 - z)[pos]
    zp, Pp, Qp = z[pos], P[pos], Q[pos]
    num_z = (log_hyp2f1_1(Pp, Qp, zp + hz) - log_hyp2f1_1(Pp, Qp, zp - hz)) / (2 * hz)
    np.testing.assert_allclose(dz[pos], num_z, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dz[:3], P[:3] / (P[:3] + Q[:3]), rtol=1e-14)  # z = 0


def test_tail_integral_derivatives() -> None:
    """log_tail_integral_grad: the value of log_tail_integral and its derivatives in
    (P, Q, A, B), either offset the larger, against central differences."""
    rng = np.random.default_rng(6)
    n = 200
    P = 0.55 + rng.integers(0, 300, n)
    Q = np.full(n, 1.6)
    A, B = np.exp(rng.uniform(-1, 4, n)), np.exp(rng.uniform(-1, 4, n))
    A[:5] = B[:5]  # z = 0
    u = np.concatenate([np.zeros(20), rng.uniform(0, 200, n - 20)])
    val, *grads = log_tail_integral_grad(P, Q, A, B, u)
    args = [P, Q, A, B, u]
    np.testing.assert_allclose(val, log_tail_integral(*args), rtol=1e-14)
    for k, got in enumerate(grads):
        h = 1e-6 * args[k]
        up, dn = list(args), list(args)
        up[k], dn[k] = args[k] + h, args[k] - h
        num = (log_tail_integral(*up) - log_tail_integral(*dn)) / (2 * h)
        np.testing.assert_allclose(got * args[k], num * args[k], rtol=1e-6, atol=1e-7)


def test_analytic_gradient_matches_numerical(cdnow: pd.DataFrame) -> None:
    """The summed gradient (no covariates) and the per-row one (covariates) against central
    differences of the objective; and the summed total equals the per-row sum."""
    m = ParetoNBDModel().fit(cdnow)
    for theta in (m._theta + np.array([0.3, -0.2, 0.4, -0.5]),
                  np.log([2.0, 1.0, 0.3, 60.0]),      # alpha << beta: the z > 0.7 branch
                  np.log([0.3, 40.0, 2.0, 1.0])):    # alpha >> beta: the other way round
        val, grad = m._objective_grad(theta)
        assert val == pytest.approx(m._objective(theta), rel=1e-12)
        np.testing.assert_allclose(grad, _central(m._objective, theta), rtol=1e-6, atol=1e-4)
        p = m._unpack(theta, m._arrays)
        ll, dp = m._ll_grad(p, m._arrays)
        total, dsum = m._summed_ll_grad(p, m._arrays, m._w)
        assert total == pytest.approx(float(np.sum(m._w * ll)), rel=1e-12)
        for k in NAMES:
            assert dsum[k] == pytest.approx(float(np.sum(m._w * dp[k])), rel=1e-9, abs=1e-6)
    rng = np.random.default_rng(3)
    df = cdnow.assign(z=rng.standard_normal(len(cdnow)))
    mc = ParetoNBDModel().fit(df, covariates={"alpha": ["z"], "beta": ["z"]})
    theta = mc._theta + 0.05
    _, grad = mc._objective_grad(theta)
    np.testing.assert_allclose(grad, _central(mc._objective, theta), rtol=1e-6, atol=1e-4)


def test_recency_equal_to_T_gives_zero_died_term(published: ParetoNBDModel) -> None:
    """t_x = T: the 'died in (t_x, T]' term is empty, P(alive) = 1 and the gradient is finite."""
    one = pd.DataFrame({"frequency": [3.0, 0.0, 5.0], "recency": [20.0, 0.0, 19.0],
                        "T": [20.0, 20.0, 20.0]})
    pa = published.probability_alive(one)
    assert pa[0] == 1.0 and 0 < pa[1] < 1 and 0 < pa[2] < 1
    # likelihood and gradient with such cells: summed form = per-row form = numerical
    m = ParetoNBDModel()
    data = m._prepare({c: one[c].to_numpy(float) for c in RFM})
    w = np.array([2.0, 3.0, 1.0])
    p = dict(ref.PNBD_FULL)
    total, dsum = m._summed_ll_grad(p, data, w)
    ll, drow = m._ll_grad(p, data)
    assert total == pytest.approx(float(np.sum(w * ll)), rel=1e-13)
    for k in NAMES:
        h = 1e-6 * p[k]

        def f(d: float, k: str = k) -> float:
            return float(np.sum(w * m._log_likelihood({**p, k: p[k] + d}, data)))

        num = (f(h) - f(-h)) / (2 * h)
        assert dsum[k] == pytest.approx(num, rel=1e-6), k
        assert float(np.sum(w * drow[k])) == pytest.approx(dsum[k], rel=1e-10), k


def test_pairwise_predictions_equal_rowwise(published: ParetoNBDModel) -> None:
    """Predictions on many rows (tail integrals on unique (x, T), (x, t_x)) equal row by row."""
    df = simulate_paretonbd(3_000, PN_TRUTH, {}, seed=11)[RFM]
    pa = published.probability_alive(df)
    ce = published.conditional_expected_purchases(26.0, df)
    rows = [df.iloc[i : i + 1] for i in range(0, len(df), 37)]
    np.testing.assert_allclose(pa[::37], [published.probability_alive(r)[0] for r in rows],
                               rtol=1e-13)
    np.testing.assert_allclose(
        ce[::37], [published.conditional_expected_purchases(26.0, r)[0] for r in rows],
        rtol=1e-13)


def test_large_sample_recovery_without_covariates() -> None:
    """200k customers: the summed likelihood on unique pairs recovers the truth (and is fast)."""
    df = simulate_paretonbd(200_000, PN_TRUTH, {}, seed=3)[RFM]
    m = ParetoNBDModel().fit(df)
    assert m.result_.converged
    check_recovery(m, PN_TRUTH, rel=0.05)
    assert m.result_.n_cells < len(df)


@settings(max_examples=60, deadline=None)
@given(x=st.integers(0, 1000), tx_frac=st.floats(0, 1), T=st.floats(0.01, 1000),
       t=st.floats(0, 1000), r=st.floats(0.05, 5), alpha=st.floats(0.1, 100),
       s=st.floats(0.05, 5), beta=st.floats(0.1, 100))
def test_predictions_are_valid(x: int, tx_frac: float, T: float, t: float, r: float,
                               alpha: float, s: float, beta: float) -> None:
    m = ParetoNBDModel.from_params(r=r, alpha=alpha, s=s, beta=beta)
    one = pd.DataFrame({"frequency": [float(x)], "recency": [T * tx_frac if x else 0.0],
                        "T": [T]})
    pa = m.probability_alive(one)
    ce = m.conditional_expected_purchases(t, one)
    assert np.all((pa >= 0) & (pa <= 1))
    assert np.all(np.isfinite(ce)) and np.all(ce >= 0)
    assert np.all(np.isfinite(m.expected_purchases(t)))


# ------------------------------------------------------------------------------- contract
def test_bad_input_and_not_fitted(cdnow: pd.DataFrame) -> None:
    with pytest.raises(NotFittedError, match="not fitted yet"):
        ParetoNBDModel().probability_alive(cdnow)
    bad = cdnow.copy()
    bad.loc[0, "recency"] = bad.loc[0, "T"] + 1
    with pytest.raises(ModelDataError, match="recency is larger than T"):
        ParetoNBDModel().fit(bad)
    with pytest.raises(ModelDataError, match="covariates can act on"):
        ParetoNBDModel().fit(cdnow.assign(z=np.arange(len(cdnow))), covariates={"s": ["z"]})


def test_weights_equal_expanded_rows(cdnow: pd.DataFrame, fitted: ParetoNBDModel) -> None:
    cells = cdnow.groupby(RFM).size().reset_index(name="n")
    weighted = ParetoNBDModel().fit(cells[RFM], weights=cells["n"].to_numpy())
    assert weighted.result_.log_likelihood == pytest.approx(fitted.result_.log_likelihood,
                                                            abs=1e-5)
    for k in fitted.params_:  # a flat direction (s, beta): the optimum is found to ~1e-4
        assert weighted.params_[k] == pytest.approx(fitted.params_[k], rel=1e-3)


# ------------------------------------------------------------------------------- covariates
@pytest.mark.slow
def test_covariate_recovery_large_sample() -> None:
    coefs = {"alpha": {"z": 0.3}, "beta": {"d": 0.2}}
    df = simulate_paretonbd(50_000, PN_TRUTH, coefs, seed=1)
    m = ParetoNBDModel().fit(df, covariates={"alpha": ["z"], "beta": ["d"]})
    assert m.result_.converged
    check_recovery(m, _all(coefs))


@pytest.mark.slow
def test_covariate_interval_coverage() -> None:
    coefs = {"alpha": {"z": 0.3, "d": -0.2}, "beta": {"z": 0.3, "d": 0.2}}

    def fit_one(seed: int) -> ParetoNBDModel:
        df = simulate_paretonbd(5_000, PN_TRUTH, coefs, seed=200 + seed)
        return ParetoNBDModel().fit(df, covariates=["z", "d"])

    check_coverage(fit_one, _all(coefs))
