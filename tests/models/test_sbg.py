"""sBG retention model and DERT: Fader & Hardie (2007) Table 1, (2010) Table 3, errors, covariates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxasset.exceptions import ModelDataError
from cxasset.models.sbg import ShiftedBetaGeoModel, survival_to_rows
from reference import published as pub

CAL = pub.SBG_CALIBRATION_YEARS


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return pub.load_sbg_survival()


@pytest.fixture(scope="module", params=["regular", "high_end"])
def segment(request: pytest.FixtureRequest, table: pd.DataFrame
            ) -> tuple[str, ShiftedBetaGeoModel]:
    col = request.param
    m = ShiftedBetaGeoModel().fit_survival(table[col].to_numpy()[: CAL + 1],
                                           n_customers=pub.SBG_N_CUSTOMERS)
    return col, m


class TestTable1:
    """Fader & Hardie (2007): fit on years 1-7."""

    def test_params_and_loglik(self, segment: tuple[str, ShiftedBetaGeoModel]) -> None:
        col, m = segment
        want = pub.SBG_FITS[col]
        assert m.params_["alpha"] == pytest.approx(want["alpha"], abs=5e-4)
        assert m.params_["beta"] == pytest.approx(want["beta"], abs=5e-4)
        assert m.result_.log_likelihood == pytest.approx(want["loglik"], abs=5e-3)
        assert m.n_obs_ == pub.SBG_N_CUSTOMERS

    def test_projects_holdout_years(self, segment: tuple[str, ShiftedBetaGeoModel],
                                    table: pd.DataFrame) -> None:
        """Years 8-12: within 2 percentage points (errors: regular <= 0.31, high end <= 1.6)."""
        col, m = segment
        years = table["year"].to_numpy()[CAL + 1:]
        proj = 100 * m.survival(years)
        actual = table[col].to_numpy()[CAL + 1:]
        assert np.max(np.abs(proj - actual)) < 2.0
        assert np.all(proj < actual)  # the sBG projections err on the low side here

    def test_fits_calibration_years(self, segment: tuple[str, ShiftedBetaGeoModel],
                                    table: pd.DataFrame) -> None:
        col, m = segment
        fitted = 100 * m.survival(np.arange(0, CAL + 1))
        assert np.max(np.abs(fitted - table[col].to_numpy()[: CAL + 1])) < 2.0

    def test_retention_rate_rises(self, segment: tuple[str, ShiftedBetaGeoModel]) -> None:
        _, m = segment
        r = m.retention_rate(np.arange(1, 13))
        assert np.all(np.diff(r) > 0)
        s = m.survival(np.arange(0, 13))
        np.testing.assert_allclose(s[1:] / s[:-1], r, rtol=1e-12)


@pytest.mark.parametrize(("params", "expected"), pub.DERT_TABLE3)
def test_dert_table3(params: dict[str, float], expected: np.ndarray) -> None:
    """Fader & Hardie (2010) Table 3; parameters printed rounded, so agreement is ~0.01."""
    m = ShiftedBetaGeoModel.from_params(**params)
    got = m.dert(pub.DERT_DISCOUNT, pub.DERT_RENEWALS)
    np.testing.assert_allclose(got, expected, atol=0.01)


def test_dert_equals_discounted_survival_sum() -> None:
    m = ShiftedBetaGeoModel.from_params(alpha=0.7, beta=1.2)
    for n in (1, 4):
        k = np.arange(0, 3000)
        brute = np.sum(m.survival(k + 1, age=n - 1) / 1.1**k)
        assert m.dert(0.1, n) == pytest.approx(brute, rel=1e-6)


class TestPredictions:
    def test_churn_and_conditional_survival(self) -> None:
        m = ShiftedBetaGeoModel.from_params(alpha=0.7, beta=1.2)
        assert m.churn_probability(3) == pytest.approx(1 - m.survival(3))
        assert m.survival(2, age=3) == pytest.approx(m.survival(5) / m.survival(3))

    def test_expected_lifetime(self) -> None:
        m = ShiftedBetaGeoModel.from_params(alpha=3.8, beta=15.2)
        assert m.expected_lifetime() == pytest.approx((3.8 + 15.2 - 1) / 2.8)
        assert m.expected_lifetime(horizon=20000) == pytest.approx(m.expected_lifetime(), rel=1e-8)
        assert m.expected_lifetime(age=4) == pytest.approx(m.expected_lifetime(horizon=20000,
                                                                               age=4), rel=1e-8)

    def test_infinite_lifetime_refused(self) -> None:
        m = ShiftedBetaGeoModel.from_params(alpha=0.7, beta=1.2)
        with pytest.raises(ModelDataError, match="pass a horizon"):
            m.expected_lifetime()
        assert 0 < m.expected_lifetime(horizon=10) <= 10

    def test_dert_needs_positive_discount(self) -> None:
        with pytest.raises(ModelDataError, match="discount rate d must be > 0"):
            ShiftedBetaGeoModel.from_params(alpha=0.7, beta=1.2).dert(0.0)


class TestPerCustomerRows:
    def test_rows_equal_survival_table(self, table: pd.DataFrame) -> None:
        rows, w = survival_to_rows(table["regular"].to_numpy()[: CAL + 1], 1000)
        expanded = rows.loc[rows.index.repeat(np.round(w).astype(int))].reset_index(drop=True)
        m = ShiftedBetaGeoModel().fit(expanded)
        assert m.params_["alpha"] == pytest.approx(pub.SBG_FITS["regular"]["alpha"], abs=5e-4)

    def test_covariates_recover_effect(self) -> None:
        rng = np.random.default_rng(7)
        n = 6000
        z = rng.binomial(1, 0.5, n).astype(float)
        theta = rng.beta(0.8 * np.exp(0.5 * z), 2.0)
        life = rng.geometric(np.clip(theta, 1e-9, 1))
        horizon = rng.integers(3, 10, n)
        df = pd.DataFrame({"t": np.minimum(life, horizon), "churned": (life <= horizon).astype(int),
                           "z": z})
        m = ShiftedBetaGeoModel().fit(df, covariates={"alpha": ["z"]})
        lo, hi = m.result_.conf_int["alpha[z]"]
        assert lo < 0.5 < hi
        s = m.survival(np.array([1, 5]), df.iloc[:4])
        assert s.shape == (4, 2)
        assert np.all(m.dert(0.1, 1, df.iloc[:4]) > 0)


class TestErrors:
    def test_increasing_survivors(self) -> None:
        with pytest.raises(ModelDataError, match="must not increase"):
            ShiftedBetaGeoModel().fit_survival([100, 80, 90])

    def test_nobody_churns(self) -> None:
        with pytest.raises(ModelDataError, match="nobody churned"):
            ShiftedBetaGeoModel().fit(pd.DataFrame({"t": [3, 4], "churned": [0, 0]}))

    def test_bad_churned(self) -> None:
        with pytest.raises(ModelDataError, match="churned must be 0 or 1"):
            ShiftedBetaGeoModel().fit(pd.DataFrame({"t": [3, 4], "churned": [0, 2]}))

    def test_churn_at_zero(self) -> None:
        with pytest.raises(ModelDataError, match="t >= 1"):
            ShiftedBetaGeoModel().fit(pd.DataFrame({"t": [0, 4], "churned": [1, 0]}))
