"""Gamma-Gamma spend model: CDNOW known answers, lifetimes cross-check, independence check, errors."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest

from cxasset.exceptions import ModelDataError, NotFittedError
from cxasset.models.gammagamma import GammaGammaModel, IndependenceCheck, independence_check
from reference import published as pub


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return pub.load_cdnow_spend()


@pytest.fixture(scope="module")
def fitted(cdnow: pd.DataFrame) -> GammaGammaModel:
    return GammaGammaModel().fit(cdnow)


class TestCdnowKnownAnswers:
    """Fader & Hardie (2013) note; see tests/reference/published.py."""

    def test_full_precision_params_and_loglik(self) -> None:
        """The published optimum is on unrounded mean spends (recomputed from the raw book)."""
        m = GammaGammaModel().fit(pub.load_cdnow_spend_full_precision())
        assert m.n_obs_ == pub.GG_N_REPEAT
        assert m.result_.log_likelihood == pytest.approx(pub.GG_LOGLIK, abs=1e-3)
        for k, v in pub.GG_PARAMS.items():
            assert m.params_[k] == pytest.approx(v, abs=0.5 * 10**-pub.GG_PARAMS_DECIMALS)

    def test_summary_csv_params_and_loglik(self, fitted: GammaGammaModel) -> None:
        for k, v in pub.GG_PARAMS.items():
            assert fitted.params_[k] == pytest.approx(v, abs=0.01)
        assert fitted.result_.log_likelihood == pytest.approx(pub.GG_LOGLIK_ROUNDED_ZBAR, abs=1e-3)
        assert fitted.n_obs_ == pub.GG_N_REPEAT
        assert fitted.result_.converged
        assert any("1411 one-time buyers" in n for n in fitted.result_.notes)

    def test_expected_spend_first10(self, fitted: GammaGammaModel, cdnow: pd.DataFrame) -> None:
        got = fitted.conditional_expected_average_profit(cdnow.iloc[:10])
        np.testing.assert_allclose(got, pub.GG_SPEND_FIRST10, atol=0.01)

    def test_one_time_buyer_gets_population_mean(self, fitted: GammaGammaModel) -> None:
        p = fitted.params_
        got = fitted.conditional_expected_average_profit(
            pd.DataFrame({"frequency": [0], "monetary_value": [0.0]}))
        assert got[0] == pytest.approx(p["p"] * p["gamma"] / (p["q"] - 1))
        assert fitted.expected_spend() == pytest.approx(got[0])

    def test_summary_and_dict(self, fitted: GammaGammaModel) -> None:
        s = fitted.summary()
        assert list(s.columns) == ["estimate", "std_err", "ci_lower", "ci_upper"]
        assert (s["ci_lower"] < s["estimate"]).all() and (s["estimate"] < s["ci_upper"]).all()
        assert fitted.result_.to_dict()["params"]["gamma"] == fitted.params_["gamma"]

    def test_weights_equal_repeated_rows(self, cdnow: pd.DataFrame) -> None:
        cells = cdnow.groupby(["frequency", "monetary_value"]).size().reset_index(name="w")
        m = GammaGammaModel().fit(cells, weights=cells["w"].to_numpy())
        assert m.result_.log_likelihood == pytest.approx(pub.GG_LOGLIK_ROUNDED_ZBAR, abs=1e-3)
        assert m.independence_.pearson == pytest.approx(
            GammaGammaModel().fit(cdnow).independence_.pearson)


def test_cross_check_lifetimes(fitted: GammaGammaModel, cdnow: pd.DataFrame) -> None:
    lifetimes = pytest.importorskip("lifetimes")
    rep = cdnow[cdnow["frequency"] > 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lt = lifetimes.GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"])
        theirs = lt.conditional_expected_average_profit(cdnow["frequency"],
                                                        cdnow["monetary_value"]).to_numpy()
    for ours, their in (("p", "p"), ("q", "q"), ("gamma", "v")):
        assert fitted.params_[ours] == pytest.approx(lt.params_[their], rel=1e-4)
    np.testing.assert_allclose(fitted.conditional_expected_average_profit(cdnow), theirs,
                               rtol=1e-4)


class TestIndependence:
    def test_cdnow_weak_dependence(self, fitted: GammaGammaModel) -> None:
        ind = fitted.independence_
        assert isinstance(ind, IndependenceCheck)
        assert ind.n == pub.GG_N_REPEAT
        assert ind.pearson == pytest.approx(0.11, abs=0.01)  # the note reports 0.11
        assert ind.dependence == "weak"
        assert ind.to_dict()["verdict"] in fitted.result_.notes

    def test_material_dependence_flagged(self) -> None:
        rng = np.random.default_rng(1)
        x = rng.integers(1, 20, 400)
        m = 10 + 3 * x + rng.gamma(2, 2, 400)
        df = pd.DataFrame({"frequency": x, "monetary_value": m})
        model = GammaGammaModel().fit(df)
        assert model.independence_.dependence == "material"
        assert any("materially correlated" in n for n in model.result_.notes)

    def test_independent_data(self) -> None:
        rng = np.random.default_rng(2)
        x = rng.integers(1, 10, 300)
        ind = independence_check(x, rng.gamma(5, 3, 300))
        assert ind.dependence == "none"
        assert "holds" in ind.verdict

    def test_needs_integer_weights(self) -> None:
        with pytest.raises(ModelDataError, match="integer weights"):
            independence_check(np.array([1, 2, 3]), np.array([1.0, 2, 3]), np.array([0.5, 1, 1]))


class TestErrors:
    def test_too_few_repeat_buyers(self) -> None:
        df = pd.DataFrame({"frequency": [0, 1, 2, 0], "monetary_value": [0, 5.0, 6.0, 0]})
        with pytest.raises(ModelDataError, match="2 repeat buyers"):
            GammaGammaModel().fit(df)

    def test_zero_spend(self, cdnow: pd.DataFrame) -> None:
        bad = cdnow.copy()
        bad.loc[bad.index[0], "monetary_value"] = 0.0
        with pytest.raises(ModelDataError, match="monetary_value <= 0"):
            GammaGammaModel().fit(bad)

    def test_missing_column(self) -> None:
        with pytest.raises(ModelDataError, match="monetary_value"):
            GammaGammaModel().fit(pd.DataFrame({"frequency": [1]}))

    def test_q_at_most_one(self, cdnow: pd.DataFrame) -> None:
        m = GammaGammaModel.from_params(p=6.0, q=0.9, gamma=15.0)
        with pytest.raises(ModelDataError, match="q = 0.9 <= 1"):
            m.conditional_expected_average_profit(cdnow)

    def test_not_fitted(self, cdnow: pd.DataFrame) -> None:
        with pytest.raises(NotFittedError, match="not fitted"):
            GammaGammaModel().conditional_expected_average_profit(cdnow)


def test_covariate_on_gamma_recovers_effect() -> None:
    rng = np.random.default_rng(3)
    n = 3000
    z = rng.binomial(1, 0.5, n).astype(float)
    x = rng.integers(1, 8, n)
    gamma_i = 15.0 * np.exp(0.4 * z)
    nu = rng.gamma(4.0, 1 / gamma_i)  # nu ~ Gamma(q, rate gamma_i)
    m = rng.gamma(6.0 * x, 1 / (nu * x))  # mean of x draws of Gamma(p, nu)
    df = pd.DataFrame({"frequency": x, "monetary_value": m, "z": z})
    model = GammaGammaModel().fit(df, covariates=["z"])
    lo, hi = model.result_.conf_int["gamma[z]"]
    assert lo < 0.4 < hi
    spend = model.conditional_expected_average_profit(df.iloc[:5])
    assert np.all(spend > 0)


@pytest.mark.slow
def test_one_million_customers_fit_fast() -> None:
    rng = np.random.default_rng(4)
    n = 1_000_000
    x = rng.integers(0, 12, n)
    nu = rng.gamma(3.7, 1 / 15.4, n)
    m = np.where(x > 0, np.round(rng.gamma(6.25 * np.maximum(x, 1), 1 / (nu * np.maximum(x, 1))),
                                 2), 0.0)
    df = pd.DataFrame({"frequency": x, "monetary_value": m})
    t0 = time.perf_counter()
    model = GammaGammaModel().fit(df)
    assert time.perf_counter() - t0 < 60
    assert model.params_["p"] == pytest.approx(6.25, rel=0.05)
