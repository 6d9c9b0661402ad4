"""Lever ranking: Benjamini-Hochberg q-values against statsmodels, the default step, and the
report of :func:`rank_levers` (thresholds and robustness off, so it runs in seconds)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from cxasset.book import Workspace
from cxasset.levers.rank import benjamini_hochberg, nice_step, rank_levers
from cxasset.valuemap.spec import ValueMapSpec


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bh_matches_statsmodels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = np.r_[rng.uniform(size=40), rng.uniform(0, 0.01, 10), [0.0, 1.0, 0.5, 0.5]]
    rng.shuffle(p)
    np.testing.assert_allclose(benjamini_hochberg(p), multipletests(p, method="fdr_bh")[1],
                               rtol=1e-12, atol=0)


def test_bh_nan_stays_nan_and_is_not_counted() -> None:
    p = np.array([0.01, np.nan, 0.04, 0.03, np.nan, 0.5])
    q = benjamini_hochberg(p)
    assert np.isnan(q[[1, 4]]).all()
    ok = np.isfinite(p)
    np.testing.assert_allclose(q[ok], multipletests(p[ok], method="fdr_bh")[1], rtol=1e-12)
    assert np.isnan(benjamini_hochberg(np.array([np.nan]))).all()
    assert benjamini_hochberg(np.array([])).shape == (0,)
    assert benjamini_hochberg(np.array([0.2])) == pytest.approx([0.2])


def test_nice_step() -> None:
    assert nice_step(980.0) == 490.0
    assert nice_step(11.9) == 6.0  # 5.95 to two significant digits
    assert nice_step(0.2456) == 0.12
    assert nice_step(3.0) == 1.5
    assert nice_step(0.0) == 1.0


LEVER_KEYS = {"driver", "mechanism", "step", "impact", "impact_per_sd", "p_value", "q_value",
              "significant", "robust", "evidence", "threshold"}


@pytest.fixture(scope="module")
def report(lv_ws: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    ws_dir = tmp_path_factory.mktemp("rank") / "ws"
    shutil.copytree(lv_ws, ws_dir)
    spec = ValueMapSpec.parse({
        "cx_variables": [{"name": "Onboarding time", "feature": "onboarding_days",
                          "better": "lower", "step": 3, "unit": "days"}],
        "links": [{"driver": "Onboarding time", "mechanism": "dropout",
                   "experiment": {"effect": 0.04, "std_err": 0.01, "use": "override"}}],
        "fdr": 0.05})
    with Workspace(ws_dir) as ws:
        rep = rank_levers(ws, spec, draws=60, robustness=False, thresholds=False).to_dict()
        saved = ws.load_artifact("levers")
    assert saved["levers"] == rep["levers"]
    return rep


def test_rank_levers_report(report: dict[str, Any]) -> None:
    levers = report["levers"]
    assert levers and all(LEVER_KEYS <= set(e) for e in levers)
    drivers = {e["driver"] for e in levers}
    assert {"onboarding_days", "nps", "training_hours"} <= drivers
    mechs = {e["mechanism"] for e in levers}
    assert mechs == {"purchase_rate", "dropout", "spend", "cost_to_serve", "referrals"}
    assert len(levers) == len(drivers) * len(mechs)
    means = [e["impact"]["mean"] for e in levers]
    assert means == sorted(means, reverse=True)
    p = np.array([e["p_value"] for e in levers])
    q = np.array([e["q_value"] for e in levers])
    # two-stage FDR (Benjamini-Bogomolov), recomputed independently with statsmodels
    drivers = [e["driver"] for e in levers]
    names = list(dict.fromkeys(drivers))
    fam = {d: np.array([i for i, x in enumerate(drivers) if x == d]) for d in names}
    simes = [min(1.0, float(np.min(np.sort(p[fam[d]]) * len(fam[d])
                                   / np.arange(1, len(fam[d]) + 1)))) for d in names]
    q_driver = multipletests(simes, method="fdr_bh")[1]
    selected = [d for d, qd in zip(names, q_driver, strict=True) if qd <= report["fdr"]]
    inflate = len(names) / max(len(selected), 1)
    for d, qd in zip(names, q_driver, strict=True):
        within = np.minimum(multipletests(p[fam[d]], method="fdr_bh")[1] * inflate, 1.0)
        want = within if d in selected else np.maximum(within, qd)
        np.testing.assert_allclose(q[fam[d]], want, rtol=1e-9)
        assert all(levers[i]["q_driver"] == pytest.approx(qd, rel=1e-9) for i in fam[d])
    for e in levers:
        assert e["significant"] == (e["q_value"] <= 0.05)
        assert e["robust"] is None and e["threshold"] is None
        assert e["impact"]["p5"] <= e["impact"]["p50"] <= e["impact"]["p95"]
        assert np.sign(e["step"]) == (1 if e["direction"] == "higher" else -1)
    assert report["fdr"] == 0.05 and report["thresholds"] == {}


def test_rank_levers_declared_and_default_steps(report: dict[str, Any]) -> None:
    onb = [e for e in report["levers"] if e["driver"] == "onboarding_days"]
    assert all(e["declared"] and e["step"] == -3.0 and e["label"] == "Onboarding time"
               for e in onb)
    emp = [e for e in report["levers"] if e["driver"] == "employees"]
    assert not any(e["declared"] for e in emp)
    assert len({e["step"] for e in emp}) == 1 and abs(emp[0]["step"]) > 0
    # the undeclared step goes the way that adds value across the mechanisms together
    by = {d["driver"]: d for d in report["drivers"]}
    assert by["employees"]["impact"]["estimate"] >= 0
    assert set(report["undeclared_levers"]) <= {e["driver"] for e in report["levers"]
                                                if not e["declared"] and e["significant"]}


def test_rank_levers_experiment_evidence_goes_to_its_link(report: dict[str, Any]) -> None:
    drop = {e["driver"]: e for e in report["levers"] if e["mechanism"] == "dropout"}
    others = {d: e["evidence"] for d, e in drop.items() if d != "onboarding_days"}
    assert others == dict.fromkeys(others, "observational")
    onb = drop["onboarding_days"]
    assert onb["evidence"] == "experiment"
    assert onb["effect"]["estimate"] == 0.04
    assert onb["p_value"] == pytest.approx(6.334e-5, rel=1e-3)  # z = 4
    assert onb["impact"]["p5"] > 0  # 3 days faster, 4% less dropout propensity a day


def test_rank_levers_flags(report: dict[str, Any]) -> None:
    for e in report["levers"]:
        assert e["collinear"] == (e["vif"] > 5)
        assert e["vif"] >= 1 - 1e-9
    nps = next(e for e in report["levers"] if e["driver"] == "nps")
    assert nps["reverse_causality"] and nps["measured_from"] == "surveys"
    onb = next(e for e in report["levers"] if e["driver"] == "onboarding_days")
    assert not onb["reverse_causality"]
