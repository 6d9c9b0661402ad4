"""The retention mechanism of subscription books: churn hazard with the drivers, and its money."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxasset.book import Workspace
from cxasset.exceptions import BookWarning
from cxasset.features import workspace_features
from cxasset.models.contractual import retention_rows, survival_after
from cxasset.models.hazard import DiscreteHazardModel
from cxasset.synth import generate
from cxasset.valuemap.drivers import Design, build_design
from cxasset.valuemap.estimate import valuation_settings
from cxasset.valuemap.mechanisms import GRID, MechanismFit, Response
from cxasset.valuemap.retention import (
    customer_age,
    fit_retention_mechanism,
    retention_response,
    shifted_survival,
)

DRIVERS = ["onboarding_days", "training_hours", "employees"]


@dataclass
class Book:
    path: Path
    features: pd.DataFrame
    design: Design
    model: DiscreteHazardModel
    fit: MechanismFit
    response: Response


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Book:
    """A 4,000-customer synthetic subscription book (seed 1; planted sBG churn: onboarding up,
    training down, employees a placebo), the retention mechanism fitted and scored on all."""
    root = tmp_path_factory.mktemp("vm_retention")
    generate(root / "book", customers=4000, seed=1, kind="subscriptions")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BookWarning)
        ws = Workspace(root / "ws")
        ws.ingest(root / "book")
    with ws:
        features = workspace_features(ws).to_pandas()
        design = build_design(features, DRIVERS)
        rows = np.arange(len(features))
        model, fit = fit_retention_mechanism(ws, features, design, rows, design.terms)
        vs = valuation_settings(ws)
        response = retention_response(model, features, design, rows, vs.margin_rate, vs.horizon,
                                      vs.period_rate, 1.0)
    return Book(root / "ws", features, design, model, fit, response)


def test_fit_recovers_planted_churn_drivers(book: Book) -> None:
    fit, design = book.fit, book.design
    assert fit.name == "retention" and fit.model == "DiscreteHazardModel"
    assert fit.terms == design.terms and fit.coef.shape == (len(design.terms),)
    assert fit.cov.shape == (len(design.terms),) * 2
    np.testing.assert_allclose(fit.cov, fit.cov.T)
    assert np.all(np.linalg.eigvalsh(fit.cov) > 0)
    assert fit.n_obs == 4000  # customers; the notes count the person-periods
    assert "person-periods" in fit.notes[0]
    # coefficients are the hazard model's, on the cloglog scale (log hazard ratio per SD)
    for i, t in enumerate(design.terms):
        assert fit.coef[i] == pytest.approx(book.model.params_[t])
    b_on, _, p_on = fit.effect("onboarding_days", design)
    b_tr, _, _ = fit.effect("training_hours", design)
    _, _, p_emp = fit.effect("employees", design)
    assert b_on > 0 and p_on < 1e-6  # longer onboarding: more churn
    assert b_tr < 0  # more training: less churn
    assert p_emp > 0.05  # placebo


def test_response_at_zero_is_the_books_equity(book: Book) -> None:
    """f_i(0) = margin * rr * sum_t S(t | age) / (1+d)^t, computed independently: lifetimes of
    ``retention_rows`` and ``survival_after`` on the design's columns."""
    with Workspace(book.path) as ws:
        vs = valuation_settings(ws)
        life = retention_rows(ws, ws.settings.as_of, {})
    act = life[life.churned == 0][["customer_id", "age", "recurring_revenue"]]
    act = act.merge(book.design.frame, on="customer_id").reset_index(drop=True)
    disc = (1.0 + vs.period_rate) ** -np.arange(1, vs.horizon + 1, dtype=float)
    surv = np.column_stack([survival_after(book.model, k, act) for k in range(1, vs.horizon + 1)])
    clv = vs.margin_rate * act["recurring_revenue"].to_numpy() * (surv @ disc)

    at0 = book.response.table[:, np.flatnonzero(GRID == 0)[0]]
    by_id = pd.Series(at0, index=book.features["customer_id"].to_numpy())
    np.testing.assert_allclose(by_id.loc[act["customer_id"]].to_numpy(), clv, rtol=1e-10)
    assert at0.sum() == pytest.approx(clv.sum(), rel=1e-10)
    churned = ~by_id.index.isin(act["customer_id"])
    assert churned.sum() > 1000 and np.all(by_id[churned] == 0)  # churned customers: 0
    # the age of the feature frame is the lifetimes' age
    age = pd.Series(customer_age(book.features), index=by_id.index)
    np.testing.assert_array_equal(age.loc[act["customer_id"]].to_numpy(), act["age"].to_numpy())


def test_response_falls_with_the_hazard(book: Book) -> None:
    tab = book.response.table
    live = tab[:, 0] > 0
    assert np.all(np.diff(tab[live], axis=1) < 0)
    n = len(tab)
    worse = book.response.change(np.full(n, 0.5))
    better = book.response.change(np.full(n, -0.5))
    assert worse < 0 < better
    # draws: (n, draws) -> (draws,), and the scale multiplies money
    d = np.column_stack([np.zeros(n), np.full(n, 0.5)])
    np.testing.assert_allclose(book.response.change(d), [0.0, worse])
    scaled = Response(table=tab, scale=3.0)
    assert scaled.change(np.full(n, 0.5)) == pytest.approx(3 * worse)


def test_shift_multiplies_every_future_hazard(book: Book) -> None:
    """delta = log 2 doubles the (continuous-time) hazard of every coming period: under the
    cloglog link S(t | log 2) = S(t | 0)^2 exactly; and a Monte Carlo of exponential lifetimes
    with the doubled cumulative hazard gives the same survival."""
    f = book.features
    act = np.flatnonzero(f["active"].to_numpy(dtype=bool))[:300]
    data = book.design.frame.iloc[act]
    age = customer_age(f.iloc[act])
    H = 12
    s0 = shifted_survival(book.model, data, age, H)
    s2 = shifted_survival(book.model, data, age, H, np.log(2.0))
    for k in (1, 6, 12):
        np.testing.assert_allclose(s0[:, k - 1], book.model.survival(k, data, tenure=age),
                                   rtol=1e-12)
    np.testing.assert_allclose(s2, s0**2, rtol=1e-10)
    assert np.all(s2 < s0)
    # forward only: the shift keeps each customer's place on the baseline (their age)
    older = shifted_survival(book.model, data, age + 5, H)
    assert not np.allclose(older, s0)

    # Monte Carlo: per-period cumulative hazard -log(1 - h) = exp(eta), doubled
    i = int(np.argmax(s0[:, -1] < 0.8))  # a customer with some churn in the window
    eta = (book.model._linear_z(data.iloc[[i]])[0]
           + book.model._baseline_eta(age[i] + np.arange(1, H + 1)))
    cum = np.cumsum(2.0 * np.exp(eta))
    e = np.random.default_rng(0).exponential(size=200_000)
    mc = (e[:, None] > cum[None, :]).mean(axis=0)
    np.testing.assert_allclose(mc, s2[i], atol=0.005)


def test_fit_on_a_subset_with_a_flat_term(book: Book) -> None:
    """Fit on some customers only; a term without variance among them gets 0 (variance 0)."""
    design = Design(book.design.frame.assign(flat=1.0), book.design.drivers,
                    [*book.design.controls, "flat"])
    rows = np.arange(0, len(book.features), 2)
    with Workspace(book.path) as ws:
        model, fit = fit_retention_mechanism(ws, book.features, design, rows, design.terms,
                                             cov_type="nonrobust")
    j = design.terms.index("flat")
    assert fit.n_obs == len(rows) and fit.coef[j] == 0 and np.all(fit.cov[j] == 0)
    assert "flat" not in model.covariates_ and any("flat" in n for n in fit.notes)
    assert fit.coef[0] > 0
    resp = retention_response(model, book.features, design, rows[:50], 0.3, 6, 0.01, 2.0)
    assert resp.table.shape == (50, len(GRID)) and resp.scale == 2.0
