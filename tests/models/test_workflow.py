"""fit_workspace: the report, the backtest figures against the holdout, the saved fits and their
round trip, covariates (numeric and text), and the refusals (unknown or incomplete covariates,
subscription books)."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cxasset.book import Workspace
from cxasset.exceptions import BookWarning, ModelDataError
from cxasset.features import workspace_features
from cxasset.models import BetaGeoModel, GammaGammaModel
from cxasset.models.workflow import FitReport, encode_covariates, fit_workspace, load_models
from cxasset.synth import generate
from cxasset.valuation import customer_value, value_workspace

CAL_END = dt.date(1997, 9, 30)
AS_OF = dt.date(1998, 6, 30)
REPORT_KEYS = {"model", "reason", "period", "calibration_end", "as_of", "covariates", "params",
               "std_err", "conf_int", "log_likelihood", "aic", "bic", "n_obs", "converged",
               "notes", "backtest", "spend", "candidates"}


@pytest.fixture(scope="module")
def synth_ws(tmp_path_factory: pytest.TempPathFactory,
             ingest_quietly: Callable[[Path, Path], Workspace]) -> Path:
    """A synthetic transactions book of 3,000 customers (segments, training hours, NPS...)."""
    root = tmp_path_factory.mktemp("synth")
    generate(root / "book", customers=3000, seed=1)
    ingest_quietly(root / "book", root / "ws").close()
    return root / "ws"


@pytest.fixture(scope="module")
def synth_fit(synth_ws: Path) -> FitReport:
    with Workspace(synth_ws) as ws:
        return fit_workspace(ws, model="bgnbd", covariates=["segment", "training_hours"])


# --------------------------------------------------------------------------- CDNOW, BG/NBD
def test_report(cdnow_fitted: tuple[Path, FitReport]) -> None:
    _, report = cdnow_fitted
    d = report.to_dict()
    assert set(d) == REPORT_KEYS
    assert d["model"] == report.chosen == "bgnbd"
    assert "as requested" in d["reason"]
    assert (d["calibration_end"], d["as_of"], d["period"]) == (str(CAL_END), str(AS_OF), "week")
    assert set(d["params"]) == set(d["std_err"]) == set(d["conf_int"]) == {"r", "alpha", "a", "b"}
    for k, v in d["params"].items():
        lo, hi = d["conf_int"][k]
        assert 0 < lo < v < hi
    assert d["n_obs"] == 2357 and d["converged"] and d["covariates"] == {}
    assert set(d["spend"]["params"]) == {"p", "q", "gamma"}
    assert [c["model"] for c in d["candidates"]] == ["bgnbd"]
    # the candidate is fitted on the calibration period: the published BG/NBD estimates
    cal = report.candidate("bgnbd").model.params_
    for k, v in {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}.items():
        assert cal[k] == pytest.approx(v, abs=0.0015)
    # the final fit is on the whole window to as_of: more data, different estimates
    assert report.purchase.result_.log_likelihood < report.candidate("bgnbd").model.result_.log_likelihood


def test_backtest_figures(cdnow_fitted: tuple[Path, FitReport]) -> None:
    path, report = cdnow_fitted
    with Workspace(path) as ws:
        cal = workspace_features(ws, calibration_end=CAL_END).to_pandas()
    b = report.candidate("bgnbd").backtest
    d = b.to_dict()
    assert d["actual_total"] == cal.frequency_holdout.sum()
    assert d["holdout_periods"] == len(b.tracking) == int(np.ceil(cal.duration_holdout.iloc[0]))
    track = b.tracking
    assert list(track.period) == list(range(1, len(track) + 1))
    assert track.actual_cumulative.iloc[-1] == pytest.approx(d["actual_total"], abs=1e-9)
    assert track.actual.sum() == pytest.approx(d["actual_total"], abs=1e-9)
    assert track.predicted_cumulative.iloc[-1] == pytest.approx(d["predicted_total"], rel=1e-9)
    assert np.all(np.diff(track.predicted_cumulative) > 0)
    cond = b.conditional
    assert list(cond.frequency) == list(range(8))
    assert cond.customers.sum() == 2357
    assert (cond.customers * cond.actual).sum() == pytest.approx(d["actual_total"], rel=1e-12)
    # 1,882 repeat transactions in weeks 40-78 (4,339 repeat days in all minus 2,457 calibrated);
    # the 39-week conditional expectations of BG/NBD add up to 1,653 (-12%)
    assert d["actual_total"] == 1882
    assert d["aggregate_error"] == pytest.approx(-0.121, abs=0.005)
    assert d["mae_per_customer"] == pytest.approx(np.mean(np.abs(
        report.candidate("bgnbd").model.conditional_expected_purchases(39.0, cal)
        - cal.frequency_holdout)), rel=1e-9)


def test_saved_artifacts_round_trip(cdnow_fitted: tuple[Path, FitReport]) -> None:
    path, report = cdnow_fitted
    with Workspace(path) as ws:
        assert {"fit", "model:purchase", "model:spend", "covariates"} <= set(ws.artifacts())
        saved = ws.load_artifact("fit")
        assert ws.load_artifact("covariates") == {}
        purchase, spend = load_models(ws)
        feats = workspace_features(ws).to_pandas()
    assert saved["model"] == "bgnbd" and saved["params"] == report.to_dict()["params"]
    assert isinstance(purchase, BetaGeoModel) and isinstance(spend, GammaGammaModel)
    assert purchase.params_ == report.purchase.params_
    assert spend.params_ == report.spend.params_
    np.testing.assert_array_equal(purchase.result_.cov_unconstrained,
                                  report.purchase.result_.cov_unconstrained)
    for t in (1.0, 52.0):
        np.testing.assert_array_equal(purchase.conditional_expected_purchases(t, feats),
                                      report.purchase.conditional_expected_purchases(t, feats))
    np.testing.assert_array_equal(purchase.probability_alive(feats),
                                  report.purchase.probability_alive(feats))
    np.testing.assert_array_equal(spend.conditional_expected_average_profit(feats),
                                  report.spend.conditional_expected_average_profit(feats))


# --------------------------------------------------------------------------- covariates
def test_text_and_numeric_covariates(synth_ws: Path, synth_fit: FitReport) -> None:
    d = synth_fit.to_dict()
    with Workspace(synth_ws) as ws:
        feats = workspace_features(ws, calibration_end=synth_fit.calibration_end).to_pandas()
        spec = ws.load_artifact("covariates")
        v = value_workspace(ws)
        purchase, spend = load_models(ws)
        full = encode_covariates(workspace_features(ws).to_pandas(), spec)
    # the most common segment is the baseline; the others get 0/1 dummies
    levels = list(feats.segment.value_counts().index)
    assert spec == {"segment": levels[1:], "training_hours": None}
    cols = [*(f"segment={lv}" for lv in levels[1:]), "training_hours"]
    assert d["covariates"] == {p: cols for p in ("alpha", "a", "b")}
    for p in ("alpha", "a", "b"):
        for c in cols:
            assert f"{p}[{c}]" in d["params"]
    assert "alpha[segment=mid]" in d["params"]
    assert f"alpha[segment={levels[0]}]" not in d["params"]
    assert v.n_customers == len(v.customers) == 3000
    assert np.isfinite(v.equity) and v.equity > 0
    assert v.equity_interval[0] < v.equity < v.equity_interval[1]
    assert np.all(np.isfinite(v.customers.clv)) and np.all(v.customers.clv >= 0)
    # dummies made in the engine (valuation) and in pandas (fit) agree
    pandas = customer_value(purchase, spend, full, v.settings, interval=False)
    assert pandas.equity == pytest.approx(v.equity, rel=1e-9)
    a = pandas.customers.sort_values("customer_id").clv.to_numpy()
    np.testing.assert_allclose(a, v.customers.clv.to_numpy(), rtol=1e-9)


def test_unknown_covariate_lists_features(synth_ws: Path) -> None:
    with Workspace(synth_ws) as ws, pytest.raises(
            ModelDataError, match="covariate 'happiness' is not a feature; features are: ") as info:
        fit_workspace(ws, model="bgnbd", covariates=["segment", "happiness"])
    for feature in ("frequency", "segment", "training_hours", "nps"):
        assert f" {feature}," in str(info.value)


@pytest.mark.parametrize("covariate", [
    "nps",
    "nps_class",
])
def test_covariate_with_missing_values_asks_to_impute(synth_ws: Path, covariate: str) -> None:
    with Workspace(synth_ws) as ws:
        assert workspace_features(ws).to_pandas()[covariate].isna().any()
        with pytest.raises(ModelDataError, match="missing values.*impute"):
            fit_workspace(ws, model="bgnbd", covariates=[covariate])


def test_subscriptions_book_needs_contractual_models(tmp_path: Path) -> None:
    generate(tmp_path / "book", customers=300, seed=1, kind="subscriptions")
    ws = Workspace(tmp_path / "ws")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BookWarning)
        ws.ingest(tmp_path / "book")
    with ws, pytest.raises(ModelDataError, match="contractual models"):
        fit_workspace(ws, model="bgnbd")
    with Workspace(tmp_path / "ws") as ws:
        assert ws.artifacts() == {}


def test_unknown_model(copy_cdnow_ws: Callable[[], Path]) -> None:
    with Workspace(copy_cdnow_ws()) as ws, pytest.raises(
            ModelDataError, match="unknown model 'gbnbd'; choose one of bgnbd, mbgnbd, pnbd, auto"):
        fit_workspace(ws, model="gbnbd")


def test_report_matches_calibration_features(cdnow_fitted: tuple[Path, FitReport]) -> None:
    """The candidate's calibration fit is the fit of the calibration features."""
    path, report = cdnow_fitted
    with Workspace(path) as ws:
        cal = workspace_features(ws, calibration_end=CAL_END).to_pandas()
    direct = BetaGeoModel().fit(cal)
    cand = report.candidate("bgnbd").model
    for k in ("r", "alpha", "a", "b"):
        assert cand.params_[k] == pytest.approx(direct.params_[k], rel=1e-9)
