"""Discrete-time hazard model: recovery and coverage on simulated person-periods, agreement with
statsmodels' GLM, predictions, degenerate data."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from cxasset.exceptions import ModelDataError, NotFittedError
from cxasset.models.hazard import DiscreteHazardModel

PERIODS = 12
BASE_HAZARD = np.linspace(0.12, 0.05, PERIODS)
BETA = {"z1": 0.5, "z2": -0.3}


def simulate(seed: int, n: int = 4000) -> tuple[pd.DataFrame, dict[str, float]]:
    """Person-periods of ``n`` customers under a cloglog hazard with a known baseline (one value
    per period, the last pooled) and two covariates; random administrative censoring."""
    rng = np.random.default_rng(seed)
    a = np.log(-np.log1p(-BASE_HAZARD))
    z1 = rng.binomial(1, 0.4, n).astype(float)
    z2 = rng.normal(size=n)
    lz = BETA["z1"] * z1 + BETA["z2"] * z2
    haz = -np.expm1(-np.exp(a[None, :] + lz[:, None]))
    churn = rng.random((n, PERIODS)) < haz
    first = np.where(churn.any(axis=1), churn.argmax(axis=1) + 1, PERIODS + 1)
    cens = rng.integers(1, PERIODS + 1, n)
    last = np.minimum(first, cens)
    ids = np.repeat(np.arange(n), last)
    period = np.arange(len(ids)) - np.repeat(np.cumsum(last) - last, last) + 1
    churned = np.zeros(len(ids), dtype=np.int8)
    churned[(np.cumsum(last) - 1)[first <= cens]] = 1
    df = pd.DataFrame({"customer_id": ids, "period": period, "churned": churned,
                       "z1": z1[ids], "z2": z2[ids]})
    truth = {f"period[{k}]": float(a[k - 1]) for k in range(1, PERIODS)}
    truth[f"period[{PERIODS}+]"] = float(a[-1])
    return df, truth | BETA


@pytest.fixture(scope="module")
def sim() -> tuple[pd.DataFrame, dict[str, float]]:
    return simulate(0)


@pytest.fixture(scope="module")
def fitted(sim: tuple[pd.DataFrame, dict[str, float]]) -> DiscreteHazardModel:
    return DiscreteHazardModel(max_period=PERIODS).fit(sim[0], covariates=["z1", "z2"])


def covered(m: DiscreteHazardModel, truth: dict[str, float]) -> dict[str, bool]:
    ci = m.result_.conf_int
    return {k: ci[k][0] <= v <= ci[k][1] for k, v in truth.items()}


class TestRecovery:
    def test_parameter_names_and_cis(self, fitted: DiscreteHazardModel,
                                     sim: tuple[pd.DataFrame, dict[str, float]]) -> None:
        df, truth = sim
        assert list(fitted.params_) == list(truth)
        assert sum(covered(fitted, truth).values()) >= len(truth) - 1
        assert fitted.n_customers_ == 4000
        assert fitted.result_.n_obs == len(df)

    def test_fast(self, sim: tuple[pd.DataFrame, dict[str, float]]) -> None:
        t0 = time.perf_counter()
        DiscreteHazardModel(max_period=PERIODS).fit(sim[0], covariates=["z1", "z2"])
        assert time.perf_counter() - t0 < 3

    @pytest.mark.slow
    def test_coverage_20_seeds(self) -> None:
        """95% CIs cover the truth in at least 16 of 20 seeds for every parameter."""
        hits: dict[str, int] = {}
        for seed in range(1, 21):
            df, truth = simulate(seed)
            m = DiscreteHazardModel(max_period=PERIODS).fit(df, covariates=["z1", "z2"])
            for k, ok in covered(m, truth).items():
                hits[k] = hits.get(k, 0) + int(ok)
        assert min(hits.values()) >= 16, hits


def test_agrees_with_statsmodels_glm(fitted: DiscreteHazardModel,
                                     sim: tuple[pd.DataFrame, dict[str, float]]) -> None:
    """Our IRLS on compressed cells equals statsmodels' GLM on the raw person-periods."""
    sm = pytest.importorskip("statsmodels.api")
    df = sim[0]
    dummies = pd.get_dummies(df["period"].clip(upper=PERIODS)).to_numpy(dtype=float)
    X = np.column_stack([dummies, df[["z1", "z2"]].to_numpy()])
    fam = sm.families.Binomial(link=sm.families.links.CLogLog())
    res = sm.GLM(df["churned"].to_numpy(dtype=float), X, family=fam).fit(tol=1e-12)
    np.testing.assert_allclose(list(fitted.params_.values()), res.params, atol=1e-6)
    np.testing.assert_allclose(list(fitted.result_.std_err.values()), res.bse, rtol=1e-4)
    assert fitted.result_.log_likelihood == pytest.approx(res.llf, abs=1e-6)


class TestVariants:
    def test_weights_equal_repeated_rows(self, sim: tuple[pd.DataFrame, dict[str, float]],
                                         fitted: DiscreteHazardModel) -> None:
        df = sim[0]
        cells = df.groupby(["period", "churned", "z1"]).size().reset_index(name="w")
        a = DiscreteHazardModel(max_period=PERIODS).fit(cells, covariates=["z1"],
                                                        weights=cells["w"].to_numpy())
        b = DiscreteHazardModel(max_period=PERIODS).fit(df, covariates=["z1"])
        assert a.params_ == pytest.approx(b.params_, abs=1e-9)

    def test_cluster_se_close_to_model_se(self, sim: tuple[pd.DataFrame, dict[str, float]],
                                          fitted: DiscreteHazardModel) -> None:
        m = DiscreteHazardModel(max_period=PERIODS, cov_type="cluster").fit(
            sim[0], covariates=["z1", "z2"])
        assert m.params_ == pytest.approx(fitted.params_)
        for k in ("z1", "z2"):
            assert m.result_.std_err[k] == pytest.approx(fitted.result_.std_err[k], rel=0.1)
        assert "clustered" in m.result_.method

    def test_log_baseline_and_logit(self, sim: tuple[pd.DataFrame, dict[str, float]]) -> None:
        df, _ = sim
        m = DiscreteHazardModel(baseline="log").fit(df, covariates=["z1", "z2"])
        assert list(m.params_)[:2] == ["intercept", "log_period"]
        assert m.params_["log_period"] < 0  # the simulated hazard falls with tenure
        lg = DiscreteHazardModel(link="logit", max_period=PERIODS).fit(df, covariates=["z1"])
        assert lg.params_["z1"] == pytest.approx(0.5, abs=0.15)

    def test_empty_periods_are_pooled(self) -> None:
        df = pd.DataFrame({"period": [1, 1, 1, 2, 2, 3, 3, 3], "churned": [1, 0, 0, 0, 0, 1, 0, 0]})
        m = DiscreteHazardModel().fit(df)
        assert list(m.params_) == ["period[1-2]", "period[3+]"]  # into the earlier band
        assert any("pooled" in n for n in m.result_.notes)


class TestPredictions:
    def test_survival_is_product_of_hazards(self, fitted: DiscreteHazardModel,
                                            sim: tuple[pd.DataFrame, dict[str, float]]) -> None:
        cust = sim[0].drop_duplicates("customer_id").head(5)
        h = fitted.hazard(np.arange(4, 10), cust)
        s = fitted.survival(6, cust, tenure=3)
        np.testing.assert_allclose(s, np.prod(1 - h, axis=1))
        np.testing.assert_allclose(fitted.churn_probability(6, cust, tenure=3), 1 - s)

    def test_expected_lifetime_remaining(self, fitted: DiscreteHazardModel,
                                         sim: tuple[pd.DataFrame, dict[str, float]]) -> None:
        cust = sim[0].drop_duplicates("customer_id").head(5)
        e = fitted.expected_lifetime_remaining(cust, horizon=24)
        s = np.column_stack([np.ones(5)] + [fitted.survival(j, cust) for j in range(1, 24)])
        np.testing.assert_allclose(e, s.sum(axis=1))
        assert np.all((e >= 1) & (e <= 24))

    def test_tenure_column_is_used(self, fitted: DiscreteHazardModel) -> None:
        cust = pd.DataFrame({"z1": [1.0, 1.0], "z2": [0.0, 0.0], "tenure": [0.4, 5.7]})
        np.testing.assert_allclose(fitted.survival(3, cust),
                                   [fitted.survival(3, cust, tenure=0)[0],
                                    fitted.survival(3, cust, tenure=5)[1]])

    def test_tail_hazard_beyond_data(self, fitted: DiscreteHazardModel) -> None:
        cust = pd.DataFrame({"z1": [0.0], "z2": [0.0]})
        assert fitted.hazard(40, cust)[0] == pytest.approx(fitted.hazard(PERIODS, cust)[0])

    def test_needs_covariates(self, fitted: DiscreteHazardModel) -> None:
        with pytest.raises(ModelDataError, match="pass the customers' data"):
            fitted.survival(3)
        with pytest.raises(NotFittedError, match="not fitted"):
            DiscreteHazardModel().survival(3)


class TestDegenerate:
    def test_nobody_churns(self) -> None:
        df = pd.DataFrame({"period": [1, 2, 1], "churned": [0, 0, 0]})
        with pytest.raises(ModelDataError, match="nobody churned"):
            DiscreteHazardModel().fit(df)

    def test_no_variance(self, sim: tuple[pd.DataFrame, dict[str, float]]) -> None:
        with pytest.raises(ModelDataError, match=r"\['c'\] have no variance"):
            DiscreteHazardModel().fit(sim[0].assign(c=1.0), covariates=["z1", "c"])

    def test_collinear(self, sim: tuple[pd.DataFrame, dict[str, float]]) -> None:
        df = sim[0].assign(z3=lambda d: 2 * d["z1"] - d["z2"])
        with pytest.raises(ModelDataError, match="collinear.*drop one"):
            DiscreteHazardModel().fit(df, covariates=["z1", "z2", "z3"])

    def test_collinear_with_tenure(self, sim: tuple[pd.DataFrame, dict[str, float]]) -> None:
        df = sim[0].assign(late=lambda d: (d["period"] >= 6).astype(float))
        with pytest.raises(ModelDataError, match="collinear"):
            DiscreteHazardModel(max_period=PERIODS).fit(df, covariates=["late"])

    def test_bad_inputs(self) -> None:
        df = pd.DataFrame({"period": [0, 1], "churned": [1, 0]})
        with pytest.raises(ModelDataError, match="period must be whole numbers >= 1"):
            DiscreteHazardModel().fit(df)
        df = pd.DataFrame({"period": [1, 2], "churned": [1, 0], "plan": ["a", "b"]})
        with pytest.raises(ModelDataError, match="not numeric"):
            DiscreteHazardModel().fit(df, covariates=["plan"])
        with pytest.raises(ValueError, match="'link' parameter"):
            DiscreteHazardModel(link="probit").fit(df)  # type: ignore[arg-type]


@pytest.mark.slow
def test_five_million_person_periods() -> None:
    rng = np.random.default_rng(11)
    n = 5_000_000
    df = pd.DataFrame({"period": rng.integers(1, 37, n),
                       "plan": rng.binomial(1, 0.3, n).astype(float),
                       "nps": rng.integers(0, 11, n).astype(float)})
    eta = np.log(-np.log1p(-0.03)) + 0.3 * df["plan"] - 0.08 * (df["nps"] - 7)
    df["churned"] = (rng.random(n) < -np.expm1(-np.exp(eta))).astype(np.int8)
    t0 = time.perf_counter()
    m = DiscreteHazardModel().fit(df, covariates=["plan", "nps"])
    assert time.perf_counter() - t0 < 30
    assert m.params_["nps"] == pytest.approx(-0.08, abs=0.01)
