"""BG/BB in a workspace: ``fit_workspace(ws, model="bgbb")`` (backtest, refit, spend, saved fits),
``value_workspace`` on its discrete opportunities, and ``cxasset fit/value --model bgbb``."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cxasset.book import Workspace
from cxasset.cli import app
from cxasset.exceptions import ModelDataError
from cxasset.features import discrete_stats
from cxasset.models import BetaGeoBetaBinomModel, GammaGammaModel
from cxasset.models.workflow import PURCHASE_MODELS, FitReport, fit_workspace, load_models
from cxasset.synth import generate
from cxasset.valuation import value_workspace
from cxasset.valuation.clv import period_discount_rate

REPORT_KEYS = {"model", "reason", "period", "calibration_end", "as_of", "covariates", "params",
               "std_err", "conf_int", "log_likelihood", "aic", "bic", "n_obs", "converged",
               "notes", "backtest", "spend", "candidates"}
BACKTEST_KEYS = {"period", "holdout_periods", "actual_total", "predicted_total",
                 "aggregate_error", "mae_per_customer", "tracking", "conditional"}
PARAMS = {"alpha", "beta", "gamma", "delta"}


@pytest.fixture(scope="module")
def book_ws(tmp_path_factory: pytest.TempPathFactory,
            ingest_quietly: Callable[[Path, Path], Workspace]) -> Path:
    """A weekly synthetic transactions book of 1,500 customers, ingested, nothing fitted."""
    root = tmp_path_factory.mktemp("bgbb")
    generate(root / "book", customers=1500, seed=7)
    ingest_quietly(root / "book", root / "ws").close()
    return root / "ws"


@pytest.fixture(scope="module")
def fitted(book_ws: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, FitReport]:
    path = tmp_path_factory.mktemp("bgbb_fit") / "ws"
    shutil.copytree(book_ws, path)
    with Workspace(path) as ws:
        return path, fit_workspace(ws, model="bgbb")


def test_report(fitted: tuple[Path, FitReport]) -> None:
    path, report = fitted
    d = report.to_dict()
    assert set(d) == REPORT_KEYS
    assert d["model"] == "bgbb" and d["period"] == "week" and d["covariates"] == {}
    assert "as requested" in d["reason"] and "active weeks" in d["reason"]
    assert set(d["params"]) == set(d["std_err"]) == set(d["conf_int"]) == PARAMS
    for k, v in d["params"].items():
        lo, hi = d["conf_int"][k]
        assert 0 < lo < v < hi
    assert set(d["spend"]["params"]) == {"p", "q", "gamma"}
    assert [c["model"] for c in d["candidates"]] == ["bgbb"]
    assert set(d["backtest"]) == BACKTEST_KEYS
    json.dumps(d)  # the saved artifact is plain JSON
    with Workspace(path) as ws:
        assert ws.load_artifact("fit")["params"] == d["params"]
        full = discrete_stats(ws.table("customers"), ws.table("transactions"), ws.settings.as_of,
                              "week").to_pandas()
    # the final fit is on the whole window: every customer, the same statistics
    assert d["n_obs"] == len(full) == 1500
    again = BetaGeoBetaBinomModel().fit(full)
    for k in PARAMS:
        assert d["params"][k] == pytest.approx(again.params_[k], rel=1e-6)


def test_backtest_figures(fitted: tuple[Path, FitReport]) -> None:
    path, report = fitted
    with Workspace(path) as ws:
        s = ws.settings
        cal = discrete_stats(ws.table("customers"), ws.table("transactions"), report.calibration_end,
                             "week", holdout_end=s.as_of).to_pandas()
    b = report.candidate("bgbb").backtest
    d = b.to_dict()
    assert d["actual_total"] == cal.frequency_holdout.sum() > 0
    assert d["holdout_periods"] == len(b.tracking) == cal.n_periods_holdout.max()
    t = b.tracking
    assert list(t.period) == list(range(1, len(t) + 1))
    assert t.actual.sum() == pytest.approx(d["actual_total"])
    assert t.predicted_cumulative.iloc[-1] == pytest.approx(d["predicted_total"], rel=1e-9)
    # per customer: the model's expected active weeks over each customer's own holdout
    m = report.candidate("bgbb").model
    pred = m.conditional_expected_purchases(cal.n_periods_holdout.to_numpy(), cal)
    assert d["predicted_total"] == pytest.approx(pred.sum(), rel=1e-9)
    assert d["mae_per_customer"] == pytest.approx(
        np.mean(np.abs(pred - cal.frequency_holdout.to_numpy())), rel=1e-9)
    # a fair model: the total within 25% of what happened
    assert abs(d["aggregate_error"]) < 0.25
    assert int(b.conditional.customers.sum()) == len(cal)


def test_value(fitted: tuple[Path, FitReport]) -> None:
    path, _ = fitted
    with Workspace(path) as ws:
        purchase, spend = load_models(ws)
        assert isinstance(purchase, BetaGeoBetaBinomModel) and isinstance(spend, GammaGammaModel)
        v = value_workspace(ws, horizon=26)
        s = ws.settings
        full = discrete_stats(ws.table("customers"), ws.table("transactions"), s.as_of,
                              s.period).to_pandas()
    d = v.to_dict()
    ce = d["customer_equity"]
    assert np.isfinite(ce["estimate"]) and 0 < ce["p5"] < ce["estimate"] < ce["p95"]
    assert d["customers"] == 1500 and d["settings"]["horizon"] == 26
    c = v.customers
    assert len(c) == 1500 and np.all(np.isfinite(c.clv)) and np.all(c.clv >= 0)
    assert c.clv.sum() == pytest.approx(v.equity, rel=1e-9)
    assert np.all((c.p_alive >= 0) & (c.p_alive <= 1))
    assert np.all(c.expected_transactions <= 26)
    # the same CLV customer by customer, without cells: margin * E[spend] * discounted E[X]
    disc = (1 + period_discount_rate(s.discount_rate, s.period_days)) ** -np.arange(1, 27)
    by = purchase.expected_purchases_by_opportunity(26, full)
    clv = s.margin_rate * spend.conditional_expected_average_profit(full) * (by @ disc)
    got = c.set_index("customer_id").loc[full.customer_id, "clv"].to_numpy()
    np.testing.assert_allclose(got, clv, rtol=1e-9)
    # a longer horizon is worth more
    with Workspace(path) as ws:
        assert value_workspace(ws, horizon=52, interval=False).equity > v.equity


def test_refusals(book_ws: Path) -> None:
    assert set(PURCHASE_MODELS) == {"bgnbd", "mbgnbd", "pnbd"}  # auto never picks bgbb
    with Workspace(book_ws) as ws, pytest.raises(ModelDataError, match="bgbb takes no covariates"):
        fit_workspace(ws, model="bgbb", covariates=["segment"])
    with Workspace(book_ws) as ws, pytest.raises(ModelDataError, match="unknown model 'bbgb'.*bgbb"):
        fit_workspace(ws, model="bbgb")


def test_cli(book_ws: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    ws = tmp_path / "ws"
    shutil.copytree(book_ws, ws)
    helped = runner.invoke(app, ["fit", "--help"])
    assert helped.exit_code == 0 and "bgbb" in helped.stdout
    bad = runner.invoke(app, ["fit", "--workspace", str(ws), "--model", "bgbb",
                              "--covariates", "nps", "--json"])
    assert bad.exit_code == 2 and "takes no covariates" in bad.stderr
    r = runner.invoke(app, ["fit", "--workspace", str(ws), "--model", "bgbb", "--json"])
    assert r.exit_code == 0, (r.stdout, r.stderr, r.exception)
    d = json.loads(r.stdout)
    assert d["model"] == "bgbb" and set(d["params"]) == PARAMS
    assert set(d["backtest"]) == BACKTEST_KEYS
    r = runner.invoke(app, ["value", "--workspace", str(ws), "--json"])
    assert r.exit_code == 0, (r.stdout, r.stderr, r.exception)
    v = json.loads(r.stdout)
    ce = v["customer_equity"]
    assert np.isfinite(ce["estimate"]) and 0 < ce["p5"] < ce["estimate"] < ce["p95"]
    assert v["mean_clv"] > 0 and any("BG/BB" in n for n in v["notes"])
    human = runner.invoke(app, ["fit", "--workspace", str(ws), "--model", "bgbb"])
    assert human.exit_code == 0 and "alpha" in human.stdout and "delta" in human.stdout
