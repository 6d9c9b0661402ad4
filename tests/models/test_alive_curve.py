"""P(alive at T + t) on the purchase models: exact at t = 0, a survival curve, the posterior
integral by quadrature, the generative process by Monte Carlo, covariates per row, CDNOW."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from scipy.special import betaln, gammaln

from cxasset.models import BetaGeoModel
from cxasset.models.mbgnbd import ModifiedBetaGeoModel
from cxasset.models.paretonbd import ParetoNBDModel
from reference import cdnow as ref

from .test_bgnbd import BG_COEFS, BG_TRUTH, simulate_bgnbd
from .test_paretonbd import PN_COEFS, PN_TRUTH, simulate_paretonbd

RFM = ["frequency", "recency", "T"]
MBG_CDNOW = {"r": 0.5250, "alpha": 6.1832, "a": 0.8911, "b": 1.6141}
MODELS = {
    "bgnbd": (BetaGeoModel, ref.BGNBD_FULL),
    "mbgnbd": (ModifiedBetaGeoModel, MBG_CDNOW),
    "pnbd": (ParetoNBDModel, ref.PNBD_FULL),
}
ALL = pytest.mark.parametrize("name", list(MODELS))
T_GRID = np.array([0.0, 0.5, 1.0, 4.0, 13.0, 52.0, 104.0, 520.0, 1e4])


def model(name: str) -> Any:
    cls, params = MODELS[name]
    return cls.from_params(**params)


def rows(*cases: tuple[float, float, float]) -> pd.DataFrame:
    return pd.DataFrame(cases, columns=RFM, dtype=float)


# ------------------------------------------------------------------------------ the curve
@ALL
def test_starts_at_probability_alive_and_decreases(cdnow: pd.DataFrame, name: str) -> None:
    m = model(name)
    curve = m.alive_curve(T_GRID, cdnow)
    assert curve.shape == (len(cdnow), len(T_GRID))
    assert np.all(np.isfinite(curve))
    np.testing.assert_allclose(curve[:, 0], m.probability_alive(cdnow), rtol=1e-14, atol=0)
    assert np.all(curve >= 0) and np.all(curve <= 1 + 1e-15)
    assert np.all(np.diff(curve, axis=1) <= 1e-15)
    assert np.all(curve[:, 3] < curve[:, 0])  # strictly below P(alive) once time passes
    # the survival factor beyond T depends on (x, T), not on t_x (it only enters P(alive at T))
    surv = curve / curve[:, :1]
    key = cdnow[["frequency", "T"]].astype(str).agg("/".join, axis=1)
    spread = pd.DataFrame(surv).groupby(key.to_numpy()).agg(np.ptp).to_numpy()
    assert spread.max() < 1e-12
    assert surv[:, -1].max() < 0.6


@ALL
def test_scalar_t_and_rowwise_equal_pairwise(cdnow: pd.DataFrame, name: str) -> None:
    """A scalar t is one column; the curve on many rows (computed once per unique (x, T)
    without covariates) equals the curve row by row."""
    m = model(name)
    one = m.alive_curve(13.0, cdnow)
    assert one.shape == (len(cdnow), 1)
    many = m.alive_curve(T_GRID, cdnow)
    np.testing.assert_array_equal(one[:, 0], many[:, 4])
    for i in range(0, len(cdnow), 97):
        np.testing.assert_allclose(m.alive_curve(T_GRID, cdnow.iloc[i : i + 1])[0], many[i],
                                   rtol=1e-13, atol=1e-300)


@ALL
def test_bad_times(cdnow: pd.DataFrame, name: str) -> None:
    m = model(name)
    for bad in (-1.0, [1.0, np.inf], [np.nan], np.ones((2, 2))):
        with pytest.raises(ValueError, match="t must"):
            m.alive_curve(bad, cdnow)


# ------------------------------------------------------------------------ the posterior integral
CASES = rows((0, 0, 39), (0, 0, 2), (1, 10, 39), (2, 30.43, 38.86), (7, 12, 39), (26, 30.857, 31),
             (60, 50, 52))
TIMES = [0.3, 5.0, 39.0, 400.0, 5000.0]
PARAMS_BG = [ref.BGNBD_FULL, MBG_CDNOW, {"r": 3.0, "alpha": 0.7, "a": 4.0, "b": 0.3},
             {"r": 0.1, "alpha": 40.0, "a": 0.2, "b": 12.0}, {"r": 2.0, "alpha": 5.0, "a": 1.0,
                                                              "b": 1.0}]


@pytest.mark.parametrize("cls", [BetaGeoModel, ModifiedBetaGeoModel])
@pytest.mark.parametrize("params", PARAMS_BG)
def test_beta_geometric_matches_quadrature(cls: type, params: dict[str, float]) -> None:
    """P(alive at T) * E[(1 + p t/(alpha+T))^-(r+x)], p ~ Beta(a, b+x+k), by adaptive
    quadrature with the Beta density's endpoint singularities as the weight (QAWS)."""
    m = cls.from_params(**params)
    k = 1 if cls is ModifiedBetaGeoModel else 0
    r, alpha, a, b = (params[n] for n in ("r", "alpha", "a", "b"))
    got = m.alive_curve(TIMES, CASES)
    p_alive = m.probability_alive(CASES)
    for i, (x, _, T) in enumerate(CASES.itertuples(index=False)):
        bx = b + x + k
        for j, t in enumerate(TIMES):
            w, c = t / (alpha + T), r + x
            val = integrate.quad(lambda p, w=w, c=c: np.exp(-c * np.log1p(p * w)), 0.0, 1.0,
                                 weight="alg", wvar=(a - 1.0, bx - 1.0), epsabs=1e-15,
                                 epsrel=1e-12, limit=200)[0] / np.exp(betaln(a, bx))
            assert got[i, j] == pytest.approx(p_alive[i] * val, rel=1e-8, abs=1e-12), (x, T, t)


@pytest.mark.parametrize("params", [ref.PNBD_FULL, {"r": 2.0, "alpha": 3.0, "s": 0.2, "beta": 0.5},
                                    {"r": 0.3, "alpha": 20.0, "s": 4.0, "beta": 80.0}])
def test_pareto_matches_quadrature(params: dict[str, float]) -> None:
    """P(alive at T) * E[exp(-mu t)], mu ~ Gamma(s, beta+T), by quadrature over mu."""
    m = ParetoNBDModel.from_params(**params)
    s, beta = params["s"], params["beta"]
    got = m.alive_curve(TIMES, CASES)
    p_alive = m.probability_alive(CASES)
    for i, T in enumerate(CASES["T"]):
        rate = beta + T
        for j, t in enumerate(TIMES):
            # mu = y / rate: E = int y^(s-1) e^(-y (1 + t/rate)) dy / Gamma(s); the endpoint
            # singularity at 0 as the weight on [0, 1]
            k = 1.0 + t / rate
            head = integrate.quad(lambda y, k=k: np.exp(-k * y), 0.0, 1.0, weight="alg",
                                  wvar=(s - 1.0, 0.0), epsabs=1e-15, epsrel=1e-12)[0]
            tail = integrate.quad(lambda y, k=k: np.exp((s - 1.0) * np.log(y) - k * y), 1.0,
                                  np.inf, epsabs=1e-15, epsrel=1e-12, limit=400)[0]
            val = (head + tail) / np.exp(gammaln(s))
            assert got[i, j] == pytest.approx(p_alive[i] * val, rel=1e-8, abs=1e-12), (T, t)


# ------------------------------------------------------------------------ the generative process
def simulate_alive(kind: str, params: dict[str, float], n: int, T_values: tuple[float, ...],
                   times: tuple[float, ...], seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Customers from the model's own generative process: RFM at T and whether each is alive
    at T + t for each t in ``times`` (times increasing).

    BG/NBD and MBG/NBD: with ``N(u)`` the Poisson(lambda) purchase count and ``M`` the purchase
    after which the customer drops out (geometric(p); MBG/NBD: minus 1, 0 = dropped at the
    first purchase), ``x = min(N(T), M)``, alive at ``u`` iff ``N(u) < M``, and ``t_x`` is the
    x-th of the ``N(T)`` uniform purchase times on ``(0, T]``. Pareto/NBD: lifetime
    ``tau ~ Exp(mu)``, ``x ~ Poisson(lambda min(tau, T))``, alive at ``u`` iff ``tau > u``.
    """
    rng = np.random.default_rng(seed)
    T = rng.choice(np.asarray(T_values, dtype=float), n)
    lam = rng.gamma(params["r"], 1.0 / params["alpha"], n)
    alive = np.empty((n, len(times)), dtype=bool)
    if kind == "pnbd":
        tau = rng.exponential(1.0 / rng.gamma(params["s"], 1.0 / params["beta"], n))
        active = np.minimum(tau, T)
        x = rng.poisson(lam * active)
        tx = np.where(x > 0, active * rng.random(n) ** (1.0 / np.maximum(x, 1)), 0.0)
        for j, t in enumerate(times):
            alive[:, j] = tau > T + t
    else:
        drop_after = rng.geometric(rng.beta(params["a"], params["b"], n)) - (kind == "mbgnbd")
        n_T = rng.poisson(lam * T)
        x = np.minimum(n_T, drop_after)
        tx = np.where(x > 0, T * rng.beta(np.maximum(x, 1), np.maximum(n_T - x + 1, 1)), 0.0)
        count, last = n_T, 0.0
        for j, t in enumerate(times):
            count = count + rng.poisson(lam * (t - last))
            last = t
            alive[:, j] = count < drop_after
    data = pd.DataFrame({"frequency": x.astype(float), "recency": tx, "T": T})
    return data, alive


MC_PARAMS = {
    "bgnbd": {"r": 1.0, "alpha": 4.0, "a": 1.2, "b": 3.0},
    "mbgnbd": {"r": 1.0, "alpha": 4.0, "a": 1.2, "b": 3.0},
    "pnbd": {"r": 1.0, "alpha": 4.0, "s": 1.2, "beta": 20.0},
}


def groups(data: pd.DataFrame) -> pd.Series:
    """Cells of (T, x binned, t_x/T in thirds): any function of the data is a valid group,
    since the curve is E[alive at T+t | x, t_x, T] and averages over the group's rows."""
    xb = np.minimum(data["frequency"].to_numpy(), 6).astype(int)
    third = np.where(data["frequency"] > 0,
                     np.minimum((3 * data["recency"] / data["T"]).astype(int), 2), -1)
    return pd.Series(list(zip(data["T"], xb, third, strict=True)))


@ALL
def test_monte_carlo_generative_process(name: str) -> None:
    """The empirical share alive at T + t within each (T, x, t_x) cell of 300k simulated
    customers against the mean of the curve over the cell, within 4 standard errors (the
    Bernoulli variance sum p(1-p) of the cell)."""
    cls = MODELS[name][0]
    params = MC_PARAMS[name]
    times = (3.0, 15.0, 60.0)
    data, alive = simulate_alive(name, params, 300_000, (8.0, 20.0), times, seed=11)
    curve = cls.from_params(**params).alive_curve(np.asarray(times), data)
    g = groups(data)
    checked = 0
    for _, idx in g.groupby(g).groups.items():
        if len(idx) < 400:
            continue
        for j in range(len(times)):
            pred = curve[idx, j]
            se = np.sqrt(np.sum(pred * (1 - pred))) / len(idx)
            emp = alive[idx, j].mean()
            assert abs(emp - pred.mean()) <= 4 * se + 1e-9, (name, g[idx[0]], times[j], emp,
                                                             pred.mean(), se)
            checked += 1
    assert checked >= 40
    # and overall: the whole base at each horizon
    for j in range(len(times)):
        se = np.sqrt(np.sum(curve[:, j] * (1 - curve[:, j]))) / len(data)
        assert abs(alive[:, j].mean() - curve[:, j].mean()) <= 4 * se


# ------------------------------------------------------------------------------ covariates
def _fit_with_covariates(name: str) -> Any:
    if name == "pnbd":
        df = simulate_paretonbd(3000, PN_TRUTH, PN_COEFS, seed=2)
        return ParetoNBDModel().fit(df, covariates=["z", "d"]), df
    df = simulate_bgnbd(3000, BG_TRUTH, BG_COEFS, seed=2, modified=name == "mbgnbd")
    cls = MODELS[name][0]
    return cls().fit(df, covariates=["z", "d"]), df


@ALL
def test_covariates_act_per_row(name: str) -> None:
    """With covariates each row's curve is the curve of a model at that row's parameters."""
    m, df = _fit_with_covariates(name)
    sub = df.iloc[:40]
    curve = m.alive_curve(T_GRID, sub)
    assert curve.shape == (len(sub), len(T_GRID)) and np.all(np.isfinite(curve))
    np.testing.assert_allclose(curve[:, 0], m.probability_alive(sub), rtol=1e-14)
    assert np.all(np.diff(curve, axis=1) <= 1e-15)
    ip = m.individual_params(sub)
    names = MODELS[name][0]._param_names
    for i in range(len(sub)):
        one = MODELS[name][0].from_params(
            **{k: float(np.asarray(ip[k])[i]) if np.ndim(ip[k]) else float(ip[k])
               for k in names})
        np.testing.assert_allclose(curve[i], one.alive_curve(T_GRID, sub.iloc[i : i + 1][RFM])[0],
                                   rtol=1e-12)
    # the covariates matter: rows with the same (x, t_x, T) differ through them
    ip_spread = [np.ptp(ip[k]) for k in names if np.ndim(ip[k])]
    assert min(ip_spread) > 0.1


def test_covariates_need_data_and_theta_draws(cdnow: pd.DataFrame) -> None:
    m = BetaGeoModel().fit(cdnow)
    theta = m.sample_theta(1, random_state=0)[0]
    np.testing.assert_allclose(m.alive_curve([0.0, 10.0], cdnow, theta=theta),
                               m.with_theta(theta).alive_curve([0.0, 10.0], cdnow), rtol=1e-14)
    assert not np.allclose(m.alive_curve(10.0, cdnow, theta=theta), m.alive_curve(10.0, cdnow))
