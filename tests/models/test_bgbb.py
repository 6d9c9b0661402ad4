"""BG/BB: Fader, Hardie & Shang (2010) donations known answers, lifetimes cross-check, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from cxasset.exceptions import ModelDataError
from cxasset.models.bgbb import BetaGeoBetaBinomModel
from reference import published as pub


@pytest.fixture(scope="module")
def donations() -> pd.DataFrame:
    return pub.load_donations()


@pytest.fixture(scope="module")
def fitted(donations: pd.DataFrame) -> BetaGeoBetaBinomModel:
    return BetaGeoBetaBinomModel().fit(donations, weights=donations["weights"].to_numpy())


class TestDonations:
    def test_params_and_loglik(self, fitted: BetaGeoBetaBinomModel) -> None:
        for k, v in pub.BGBB_PARAMS.items():
            assert fitted.params_[k] == pytest.approx(v, abs=5e-4)
        assert fitted.result_.log_likelihood == pytest.approx(pub.BGBB_LOGLIK, abs=5e-3)
        assert fitted.n_obs_ == pub.BGBB_N_DONORS
        assert fitted.result_.n_cells == 22

    def test_expected_purchases_new_donor(self, fitted: BetaGeoBetaBinomModel) -> None:
        got = fitted.expected_purchases(np.arange(1, 12))
        np.testing.assert_allclose(got, pub.BGBB_EXPECTED_FIRST_N, atol=5e-5)

    def test_expanded_rows_equal_weighted_cells(self, donations: pd.DataFrame,
                                                fitted: BetaGeoBetaBinomModel) -> None:
        rows = donations.loc[donations.index.repeat(donations["weights"])].reset_index(drop=True)
        m = BetaGeoBetaBinomModel().fit(rows)
        assert m.result_.log_likelihood == pytest.approx(fitted.result_.log_likelihood, abs=1e-6)

    def test_probabilities_in_range(self, fitted: BetaGeoBetaBinomModel,
                                    donations: pd.DataFrame) -> None:
        p0 = fitted.probability_alive(donations)
        p1 = fitted.probability_alive(donations, n_future=1)
        assert np.all((p1 > 0) & (p1 <= p0) & (p0 <= 1))
        # a donor who gave in the last opportunity is certainly alive then
        assert np.allclose(p0[donations["recency"] == donations["n_periods"]], 1.0)

    def test_conditional_expectation_for_new_customer(self, fitted: BetaGeoBetaBinomModel
                                                      ) -> None:
        """A customer with no history (n = 0) expects E[X(n*)] of a new customer."""
        new = pd.DataFrame({"frequency": [0], "recency": [0], "n_periods": [0]})
        got = fitted.conditional_expected_purchases(5, new)
        assert got[0] == pytest.approx(fitted.expected_purchases(5), rel=1e-10)


def test_cross_check_lifetimes(fitted: BetaGeoBetaBinomModel, donations: pd.DataFrame) -> None:
    lifetimes = pytest.importorskip("lifetimes")
    d = donations
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lt = lifetimes.BetaGeoBetaBinomFitter().fit(d["frequency"], d["recency"], d["n_periods"],
                                                    weights=d["weights"])
        alive0 = lt.conditional_probability_alive(0, d["frequency"], d["recency"], d["n_periods"])
        alive1 = lt.conditional_probability_alive(1, d["frequency"], d["recency"], d["n_periods"])
        cond = lt.conditional_expected_number_of_purchases_up_to_time(
            5, d["frequency"], d["recency"], d["n_periods"])
    for k in pub.BGBB_PARAMS:
        assert fitted.params_[k] == pytest.approx(lt.params_[k], rel=1e-4)
    np.testing.assert_allclose(fitted.probability_alive(d), np.asarray(alive0), rtol=1e-4)
    np.testing.assert_allclose(fitted.probability_alive(d, 1), np.asarray(alive1), rtol=1e-4)
    np.testing.assert_allclose(fitted.conditional_expected_purchases(5, d), np.asarray(cond),
                               rtol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cum = np.column_stack([np.asarray(lt.conditional_expected_number_of_purchases_up_to_time(
            k, d["frequency"], d["recency"], d["n_periods"])) for k in range(1, 6)])
    np.testing.assert_allclose(fitted.expected_purchases_by_opportunity(5, d),
                               np.diff(np.column_stack([np.zeros(len(d)), cum]), axis=1),
                               rtol=1e-4)


def test_by_opportunity_is_the_increment(fitted: BetaGeoBetaBinomModel,
                                         donations: pd.DataFrame) -> None:
    by = fitted.expected_purchases_by_opportunity(8, donations)
    assert by.shape == (len(donations), 8)
    cum = np.column_stack([fitted.conditional_expected_purchases(k, donations)
                           for k in range(1, 9)])
    np.testing.assert_allclose(by.cumsum(axis=1), cum, rtol=1e-10)
    # each increment is a probability, and it falls as the customer may die
    assert np.all((by > 0) & (by < 1)) and np.all(np.diff(by, axis=1) < 0)
    # a customer with no history: the new customer's E[X(n)] increments
    new = pd.DataFrame({"frequency": [0], "recency": [0], "n_periods": [0]})
    np.testing.assert_allclose(fitted.expected_purchases_by_opportunity(5, new)[0],
                               np.diff(fitted.expected_purchases(np.arange(6))), rtol=1e-10)
    with pytest.raises(ModelDataError, match="n_future must be a whole number"):
        fitted.expected_purchases_by_opportunity(0, donations)


def test_predictions_follow_theta(fitted: BetaGeoBetaBinomModel, donations: pd.DataFrame) -> None:
    """with_theta copies predict at their parameters (what the delta-method interval needs)."""
    moved = fitted.with_theta(fitted._theta + 0.1)
    base = fitted.conditional_expected_purchases(5, donations)
    assert np.all(np.abs(moved.conditional_expected_purchases(5, donations) - base) > 1e-6)
    back = BetaGeoBetaBinomModel.from_state(fitted.to_state())
    np.testing.assert_allclose(back.conditional_expected_purchases(5, donations), base)


def test_long_histories_are_stable() -> None:
    m = BetaGeoBetaBinomModel.from_params(alpha=1.2, beta=0.75, gamma=0.66, delta=2.8)
    df = pd.DataFrame({"frequency": [0, 300, 1, 500], "recency": [0, 400, 1, 500],
                       "n_periods": [1000, 1000, 1000, 500]})
    ll = m._log_likelihood(m.params_, {c: df[c].to_numpy(dtype=float) for c in df.columns})
    assert np.all(np.isfinite(ll))
    assert np.all(np.isfinite(m.conditional_expected_purchases(10, df)))
    by = m.expected_purchases_by_opportunity(520, df)
    assert np.all(np.isfinite(by)) and np.all((by >= 0) & (by <= 1))


class TestErrors:
    def test_frequency_above_recency(self) -> None:
        df = pd.DataFrame({"frequency": [3, 1], "recency": [2, 1], "n_periods": [6, 6]})
        with pytest.raises(ModelDataError, match="frequency <= recency <= n_periods"):
            BetaGeoBetaBinomModel().fit(df)

    def test_fractional_counts(self) -> None:
        df = pd.DataFrame({"frequency": [1.5, 1], "recency": [2, 1], "n_periods": [6, 6]})
        with pytest.raises(ModelDataError, match="whole numbers"):
            BetaGeoBetaBinomModel().fit(df)

    def test_nobody_repeats(self) -> None:
        df = pd.DataFrame({"frequency": [0, 0], "recency": [0, 0], "n_periods": [6, 6]})
        with pytest.raises(ModelDataError, match="nobody transacted"):
            BetaGeoBetaBinomModel().fit(df)

    def test_no_covariates(self, donations: pd.DataFrame) -> None:
        with pytest.raises(ModelDataError, match="takes no covariates"):
            BetaGeoBetaBinomModel().fit(donations.assign(z=1.0), covariates=["z"])
