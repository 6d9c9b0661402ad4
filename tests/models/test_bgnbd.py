"""BG/NBD: known answers on CDNOW, cross-check against lifetimes, invariants, covariates.

Known answers and their provenance are in :mod:`reference.cdnow` (Fader, Hardie & Lee 2005;
R BTYD / CLVTools full precision).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy.special import betaln

from cxasset.exceptions import ModelDataError, NotFittedError
from cxasset.models.bgnbd import BetaGeoModel
from reference import cdnow as ref

RFM = ["frequency", "recency", "T"]


# ------------------------------------------------------------------------ simulation (tests only)
def simulate_bgnbd(n: int, params: dict, coefs: dict, seed: int, T_range: tuple = (52, 104),
                   modified: bool = False) -> pd.DataFrame:
    """BG/NBD customers with ``z ~ N(0,1)`` and a 0/1 dummy ``d`` (MBG/NBD with ``modified``).

    ``coefs`` maps a parameter to ``{"z": g, "d": g}``, applied as the model does:
    ``alpha_i = alpha exp(-g'z)``, ``a_i = a exp(g'z)``, ``b_i = b exp(g'z)``. Ages are whole days
    (in weeks) and recency is rounded to days, so identical histories compress.
    """
    rng = np.random.default_rng(seed)
    z, d = rng.standard_normal(n), rng.integers(0, 2, n).astype(float)

    def eff(p: str) -> np.ndarray:
        c = coefs.get(p, {})
        return c.get("z", 0.0) * z + c.get("d", 0.0) * d

    alpha = params["alpha"] * np.exp(-eff("alpha"))
    a, b = params["a"] * np.exp(eff("a")), params["b"] * np.exp(eff("b"))
    T = rng.integers(T_range[0] * 7, T_range[1] * 7 + 1, n) / 7
    lam = rng.gamma(params["r"], 1 / alpha)
    k = rng.poisson(lam * T)                                      # purchases if alive throughout
    survived = rng.geometric(rng.beta(a, b)) - int(modified)      # repeat purchases before dropout
    x = np.minimum(k, survived)
    # the x-th of k uniform purchase times on (0, T]
    tx = np.where(x > 0, T * rng.beta(np.maximum(x, 1), np.maximum(k - x + 1, 1)), 0.0)
    return rfm_frame(x, tx, T, z, d)


def rfm_frame(x: np.ndarray, tx: np.ndarray, T: np.ndarray, z: np.ndarray, d: np.ndarray
              ) -> pd.DataFrame:
    tx = np.minimum(np.round(tx * 7) / 7, T)
    tx = np.where(x > 0, np.maximum(tx, 1 / 7), 0.0)
    return pd.DataFrame({"frequency": x.astype(float), "recency": tx, "T": T, "z": z, "d": d})


def check_recovery(model, truth: dict[str, float], rel: float = 0.10, coef_abs: float = 0.10
                   ) -> None:
    for k, v in truth.items():
        est = model.params_[k]
        if "[" in k:
            assert abs(est - v) < coef_abs, (k, est, v)
        else:
            assert abs(est / v - 1) < rel, (k, est, v)


def check_coverage(fit_one, truth: dict[str, float], n_seeds: int = 20) -> dict[str, int]:
    """95% intervals over ``n_seeds`` seeds: each parameter covered in >= 16 seeds, overall
    coverage in [0.85, 0.99] (a coverage study, not one lucky seed)."""
    hits = dict.fromkeys(truth, 0)
    for seed in range(n_seeds):
        model = fit_one(seed)
        assert model.result_.converged
        for k, v in truth.items():
            lo, hi = model.result_.conf_int[k]
            hits[k] += int(lo <= v <= hi)
    assert min(hits.values()) >= 16, hits
    overall = sum(hits.values()) / (n_seeds * len(truth))
    assert 0.85 <= overall <= 0.99, (overall, hits)
    return hits


BG_TRUTH = {"r": 0.5, "alpha": 5.0, "a": 0.8, "b": 2.5}
BG_COEFS = {"alpha": {"z": 0.3, "d": -0.2}, "a": {"z": 0.2, "d": 0.1}, "b": {"z": -0.2, "d": 0.3}}
#: values of a at and around the removable singularity a = 1
NEAR_ONE = [1.0, 1 - 1e-12, 1 + 1e-9, 1 - 1e-6, 1 + 5e-5, 1 - 1e-4, 1 + 1e-4, 1 - 2e-4]
BG_ALL = {**BG_TRUTH, **{f"{p}[{c}]": g for p, cs in BG_COEFS.items() for c, g in cs.items()}}


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def fitted(cdnow: pd.DataFrame) -> BetaGeoModel:
    return BetaGeoModel().fit(cdnow)


@pytest.fixture(scope="module")
def published() -> BetaGeoModel:
    return BetaGeoModel.from_params(**ref.BGNBD_FULL)


# ------------------------------------------------------------------------------- known answers
def test_cdnow_fit_matches_published(fitted: BetaGeoModel) -> None:
    assert fitted.result_.converged
    for k, v in ref.BGNBD_FULL.items():
        assert fitted.params_[k] == pytest.approx(v, rel=1e-3), k
    for k, v in ref.BGNBD_PUBLISHED.items():
        assert round(fitted.params_[k], 3) == v, k
    assert fitted.result_.log_likelihood == pytest.approx(ref.BGNBD_LL, abs=0.01)
    assert fitted.result_.n_obs == ref.N_CUSTOMERS
    assert set(fitted.summary().columns) == {"estimate", "std_err", "ci_lower", "ci_upper"}


def test_published_unconditional_expectations(published: BetaGeoModel) -> None:
    t = np.array(list(ref.BGNBD_EXPECTED))
    got = published.expected_purchases(t)
    np.testing.assert_allclose(got, list(ref.BGNBD_EXPECTED.values()), atol=5e-4)
    assert float(published.expected_purchases(52.0)) == pytest.approx(ref.BGNBD_EXPECTED_52,
                                                                       rel=1e-4)


def test_published_conditional_expectations(published: BetaGeoModel) -> None:
    case = ref.BGNBD_CONDITIONAL_39
    got = published.conditional_expected_purchases(case["t"], ref.one_customer(case))
    assert float(got[0]) == pytest.approx(case["value"], abs=1e-3)
    case = ref.BGNBD_X26
    one = ref.one_customer(case)
    assert float(published.conditional_expected_purchases(case["t"], one)[0]) == pytest.approx(
        case["expected"], rel=1e-4)
    assert float(published.probability_alive(one)[0]) == pytest.approx(case["p_alive"], rel=1e-4)


def test_loglikelihood_stable_at_extremes() -> None:
    m = BetaGeoModel.from_params(**ref.BGNBD_STABILITY_PARAMS)
    for case, value in ref.BGNBD_STABILITY:
        data = {"frequency": np.array([case["x"]], float), "recency": np.array([case["t_x"]]),
                "T": np.array([case["T"]])}
        assert float(m._log_likelihood(m.params_, data)[0]) == pytest.approx(value, rel=1e-6)


# ---------------------------------------------------------------------------- vs lifetimes
def test_matches_lifetimes(cdnow: pd.DataFrame, fitted: BetaGeoModel) -> None:
    lifetimes = pytest.importorskip("lifetimes")
    x, tx, T = (cdnow[c].to_numpy(float) for c in RFM)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lt = lifetimes.BetaGeoFitter().fit(x, tx, T)
        lt_pa = lt.conditional_probability_alive(x, tx, T)
        lt_ce = lt.conditional_expected_number_of_purchases_up_to_time(39.0, x, tx, T)
    for k in ("r", "alpha", "a", "b"):
        assert fitted.params_[k] == pytest.approx(lt.params_[k], rel=1e-4), k
    ours = BetaGeoModel.from_params(**{k: float(lt.params_[k]) for k in ("r", "alpha", "a", "b")})
    np.testing.assert_allclose(ours.probability_alive(cdnow), lt_pa, rtol=1e-4)
    np.testing.assert_allclose(ours.conditional_expected_purchases(39.0, cdnow), lt_ce, rtol=1e-4)


# ------------------------------------------------------------------------------- invariants
@settings(max_examples=60, deadline=None)
@given(x=st.integers(0, 1000), tx_frac=st.floats(0, 1), T=st.floats(0.01, 1000),
       t=st.floats(0, 1000), r=st.floats(0.05, 5), alpha=st.floats(0.1, 100),
       a=st.one_of(st.floats(0.05, 5), st.sampled_from(NEAR_ONE)), b=st.floats(0.05, 10))
def test_predictions_are_valid(x: int, tx_frac: float, T: float, t: float, r: float,
                               alpha: float, a: float, b: float) -> None:
    m = BetaGeoModel.from_params(r=r, alpha=alpha, a=a, b=b)
    tx = T * tx_frac if x > 0 else 0.0
    one = pd.DataFrame({"frequency": [float(x)], "recency": [tx], "T": [T]})
    pa = m.probability_alive(one)
    ce = m.conditional_expected_purchases(t, one)
    assert np.all((pa >= 0) & (pa <= 1))
    assert np.all(np.isfinite(ce)) and np.all(ce >= 0)


def test_weights_equal_expanded_rows(cdnow: pd.DataFrame) -> None:
    cells = cdnow.groupby(RFM).size().reset_index(name="n")
    weighted = BetaGeoModel().fit(cells[RFM], weights=cells["n"].to_numpy())
    full = BetaGeoModel().fit(cdnow)
    for k in full.params_:
        assert weighted.params_[k] == pytest.approx(full.params_[k], rel=1e-6)
    assert weighted.result_.log_likelihood == pytest.approx(full.result_.log_likelihood, abs=1e-6)
    assert weighted.result_.n_obs == full.result_.n_obs


# ------------------------------------------------------------------ removable singularities
SINGULAR_ROWS = pd.DataFrame({"frequency": [0.0, 0.0, 2.0, 26.0, 60.0],
                              "recency": [0.0, 0.0, 30.43, 30.857, 50.0],
                              "T": [0.0, 20.0, 38.86, 31.0, 52.0]})


def limit_at_a1(r: float, alpha: float, b_eff: float, x: float, T: float, t: float) -> float:
    """E[(1 - exp(-lambda p t)) / p | alive] at a = 1 by quadrature: lambda ~ Gamma(r+x,
    alpha+T) gives ``(1 - (1 + p w)^-(r+x)) / p``, ``w = t/(alpha+T)``, and ``p ~ Beta(1, C)``,
    ``C = b_eff``, has density ``C (1-p)^(C-1)`` (the weight)."""
    w, c = t / (alpha + T), r + x

    def f(p: float) -> float:
        return -np.expm1(-c * np.log1p(p * w)) / p if p > 0 else c * w

    return b_eff * integrate.quad(f, 0.0, 1.0, weight="alg", wvar=(0.0, b_eff - 1.0),
                                  epsabs=0.0, epsrel=1e-13, limit=200)[0]


def check_continuous_at_a1(cls: type, extra: int) -> None:
    """Expectations at and near a = 1: equal to the limit by quadrature at a = 1, within
    2|a-1| relative next to it (2e-4 at a = 1 +- 1e-4, 2e-12 at 1 - 1e-12), and smooth in a
    (third differences on a fine grid across the interpolation window are those of a smooth
    function: no jump at its edges)."""
    r, alpha, b = 0.24, 4.4, 2.4
    t = np.array([0.5, 39.0, 520.0])
    at_one = cls.from_params(r=r, alpha=alpha, a=1.0, b=b)
    ce = np.column_stack([at_one.conditional_expected_purchases(ti, SINGULAR_ROWS) for ti in t])
    pa = at_one.probability_alive(SINGULAR_ROWS)
    for i, (x, _, T) in enumerate(SINGULAR_ROWS.itertuples(index=False)):
        for j, ti in enumerate(t):
            want = pa[i] * limit_at_a1(r, alpha, b + x + extra, x, T, ti)
            assert ce[i, j] == pytest.approx(want, rel=1e-9), (x, T, ti)
    # E[X(t)] is the x = 0, T = 0 conditional expectation (MBG/NBD: times P(survive t=0) = b/(a+b))
    want = [limit_at_a1(r, alpha, b + extra, 0, 0, ti) * (b / (1 + b) if extra else 1.0)
            for ti in t]
    np.testing.assert_allclose(at_one.expected_purchases(t), want, rtol=1e-9)
    for a in NEAR_ONE[1:]:
        # Lipschitz: |d log K / da| < 2 at these parameters, so next to 1 the values are tight
        rtol = 2 * abs(a - 1) + 1e-9
        near = cls.from_params(r=r, alpha=alpha, a=a, b=b)
        for ti in t:
            np.testing.assert_allclose(near.conditional_expected_purchases(ti, SINGULAR_ROWS),
                                       at_one.conditional_expected_purchases(ti, SINGULAR_ROWS),
                                       rtol=rtol)
        np.testing.assert_allclose(near.expected_purchases(t), at_one.expected_purchases(t),
                                   rtol=rtol)
    # across the interpolation window (|a - 1| < 1e-3, z > 0.5) and the series (z <= 0.5): third
    # differences at step 1e-4 of a smooth function are ~1e-12; a jump would show in full
    grid = 1.0 + np.linspace(-3e-3, 3e-3, 61)
    for ti in t:
        vals = np.array([cls.from_params(r=r, alpha=alpha, a=a, b=b)
                        .conditional_expected_purchases(ti, SINGULAR_ROWS) for a in grid])
        assert np.all(np.abs(np.diff(vals, 3, axis=0)) <= 1e-10 * np.abs(vals[2:-1])), ti


def check_covariates_at_a1(cls: type, modified: bool) -> None:
    """Per-row a (covariates) at, next to and away from 1: each row as a model at its a."""
    df = simulate_bgnbd(3000, BG_TRUTH, {"a": {"z": 0.3}}, seed=4, modified=modified)
    m = cls().fit(df, covariates={"a": ["z"]})
    theta = m._theta.copy()
    theta[m._names().index("a")] = 0.0  # log a0 = 0: a_i = exp(0.3 z_i)
    m = m.with_theta(theta)
    rows = pd.DataFrame({"frequency": [0.0, 2.0, 2.0, 5.0, 5.0, 1.0], "recency": [0, 20, 20, 30, 30, 3.0],
                         "T": [39.0] * 6, "z": [0.0, 0.0, 1e-7 / 0.3, -1e-4, 2.0, -3.0]})
    a_i = m.individual_params(rows)["a"]
    assert a_i[0] == 1.0 and a_i[1] == 1.0
    for t in (39.0, 200.0):
        ce = m.conditional_expected_purchases(t, rows)
        assert np.all(np.isfinite(ce)) and np.all(ce > 0)
        for i in range(len(rows)):
            one = cls.from_params(r=m.params_["r"], alpha=m.params_["alpha"], a=float(a_i[i]),
                                  b=m.params_["b"])
            assert ce[i] == pytest.approx(
                one.conditional_expected_purchases(t, rows.iloc[i : i + 1])[0], rel=1e-12)
    ep = m.expected_purchases(39.0, rows)
    assert np.all(np.isfinite(ep)) and ep[0] == pytest.approx(ep[1], rel=1e-14)


def test_continuous_at_a_equal_1() -> None:
    check_continuous_at_a1(BetaGeoModel, extra=0)


def test_covariates_with_a_equal_1() -> None:
    check_covariates_at_a1(BetaGeoModel, modified=False)


@pytest.mark.parametrize("a", [0.5, 0.3, 0.9])
def test_continuous_at_a_plus_b_equal_1(a: float) -> None:
    """For x = 0, C = a+b-1 = 0 is a pole of 2F1(.; C; z) but not of C * 2F1: the limit
    r z (1-z)^(a-1) 2F1(1-r, a; 2; z) against E[(1 - (1 + p w)^-r) / p], p ~ Beta(a, 1-a), by
    quadrature, and continuity in b."""
    r, alpha, T = 0.24, 4.4, 10.0
    one = pd.DataFrame({"frequency": [0.0], "recency": [0.0], "T": [T]})
    m = BetaGeoModel.from_params(r=r, alpha=alpha, a=a, b=1.0 - a)
    for t in (0.5, 20.0, 520.0):
        w = t / (alpha + T)

        def f(p: float, w: float = w) -> float:
            return -np.expm1(-r * np.log1p(p * w)) / p if p > 0 else r * w

        want = integrate.quad(f, 0.0, 1.0, weight="alg", wvar=(a - 1.0, -a), epsabs=0.0,
                              epsrel=1e-13)[0] / np.exp(betaln(a, 1.0 - a))
        got = m.conditional_expected_purchases(t, one)[0]
        assert got == pytest.approx(want, rel=1e-10)
        for db in (-1e-6, 1e-12, 1e-6):
            near = BetaGeoModel.from_params(r=r, alpha=alpha, a=a, b=1.0 - a + db)
            assert near.conditional_expected_purchases(t, one)[0] == pytest.approx(got, rel=1e-4)
    want0 = m.conditional_expected_purchases(20.0, one.assign(T=0.0))[0]
    assert float(m.expected_purchases(20.0)) == pytest.approx(want0, rel=1e-14)


# ------------------------------------------------------------------------------- bad input
def test_bad_input(cdnow: pd.DataFrame) -> None:
    bad = cdnow.copy()
    bad.loc[0, "recency"] = bad.loc[0, "T"] + 1
    with pytest.raises(ModelDataError, match="recency is larger than T"):
        BetaGeoModel().fit(bad)
    nobody = cdnow.assign(frequency=0.0, recency=0.0)
    with pytest.raises(ModelDataError, match="nobody made a repeat purchase"):
        BetaGeoModel().fit(nobody)
    with pytest.raises(ModelDataError, match=r"required column\(s\) \['T'\] missing"):
        BetaGeoModel().fit(cdnow.drop(columns="T"))
    with pytest.raises(ValueError, match="'penalizer' parameter of BetaGeoModel"):
        BetaGeoModel(penalizer=-1).fit(cdnow)


def test_bad_covariates(cdnow: pd.DataFrame) -> None:
    rng = np.random.default_rng(0)
    z = rng.standard_normal(len(cdnow))
    df = cdnow.assign(z=z, flat=1.0, z2=2 * z + 1, word="a", gap=np.where(z > 1, np.nan, z))
    with pytest.raises(ModelDataError, match="no variance"):
        BetaGeoModel().fit(df, covariates=["flat"])
    with pytest.raises(ModelDataError, match="perfectly collinear"):
        BetaGeoModel().fit(df, covariates=["z", "z2"])
    with pytest.raises(ModelDataError, match="not numeric"):
        BetaGeoModel().fit(df, covariates=["word"])
    with pytest.raises(ModelDataError, match="missing values"):
        BetaGeoModel().fit(df, covariates=["gap"])
    with pytest.raises(ModelDataError, match="covariates can act on"):
        BetaGeoModel().fit(df, covariates={"r": ["z"]})


def test_from_params_and_not_fitted(cdnow: pd.DataFrame) -> None:
    with pytest.raises(NotFittedError, match="not fitted yet"):
        BetaGeoModel().probability_alive(cdnow)
    with pytest.raises(NotFittedError):
        BetaGeoModel().conditional_expected_purchases(10.0, cdnow)
    with pytest.raises(ValueError, match="from_params needs exactly"):
        BetaGeoModel.from_params(r=1.0, alpha=1.0)
    m = BetaGeoModel.from_params(**ref.BGNBD_FULL)
    assert m.params_ == pytest.approx(ref.BGNBD_FULL)
    assert "BetaGeoModel(r=0.2426" in repr(m)


# ------------------------------------------------------------------------------- covariates
def test_covariate_recovery_large_sample() -> None:
    df = simulate_bgnbd(50_000, BG_TRUTH, BG_COEFS, seed=1)
    m = BetaGeoModel().fit(df, covariates=["z", "d"])
    assert m.result_.converged
    check_recovery(m, BG_ALL)


@pytest.mark.slow
def test_covariate_interval_coverage() -> None:
    def fit_one(seed: int) -> BetaGeoModel:
        df = simulate_bgnbd(5_000, BG_TRUTH, BG_COEFS, seed=100 + seed)
        return BetaGeoModel().fit(df, covariates=["z", "d"])

    check_coverage(fit_one, BG_ALL)
