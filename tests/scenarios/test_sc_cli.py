"""`cxasset simulate`, `compare`, `optimize`: strict JSON with the documented keys, the sentence in
the human output, bad scenario files as one-line errors (exit 2).

One invocation runs end to end (``prepare`` on a copy of the ``sc_ws`` workspace takes 15-20 s on
two cores); the others replace ``prepare`` by the session ``planner`` fixture (prepared on the
same book), so they exercise the commands' own work (loading, checks, simulation, output).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from cxasset.book import Workspace
from cxasset.cli import app
from cxasset.scenarios.result import TOTALS
from cxasset.scenarios.simulate import Planner
from cxasset.scenarios.spec import parse_scenarios

runner = CliRunner()
QKEYS = {"p5", "p50", "p95", "mean"}
SCENARIOS = [
    {"name": "Faster onboarding", "horizon_months": 12, "initiatives": [
        {"name": "Onboarding concierge", "target": {"segment": "smb"},
         "changes": [{"driver": "onboarding_days", "shift": -3}],
         "cost": {"upfront": 20_000, "per_month": 1_000}}]},
    {"name": "Better support", "horizon_months": 12, "initiatives": [
        {"name": "Support training", "changes": [{"driver": "nps", "shift": 1}],
         "cost": {"upfront": 30_000}}]},
]


def run(*args: Any, code: int = 0) -> Result:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result


def no_constants(name: str) -> None:
    raise AssertionError(f"{name} in JSON")


def write(path: Path, scenarios: Any) -> Path:
    path.write_text(yaml.safe_dump(scenarios, sort_keys=False))
    return path


def check_result(d: dict[str, Any], name: str, draws: int) -> None:
    assert d["name"] == name and d["draws"] == draws and d["horizon_months"] == 12
    for k in ("baseline", "scenario", "delta"):
        assert set(d[k]) == set(TOTALS), k
        assert all(set(q) == QKEYS for q in d[k].values())
    assert set(d["npv"]) == QKEYS and set(d["payback_month"]) == QKEYS
    assert 0 <= d["prob_npv_positive"] <= 1
    assert len(d["monthly"]["month"]) == 12
    assert d["initiatives"][0]["name"] in d["sentence"]


def one_error_line(r: Result) -> str:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr and r.stdout.strip() == ""
    return lines[0]


@pytest.fixture
def ws(sc_ws: Path, tmp_path: Path) -> Path:
    """A copy of the shared workspace (the commands save an artifact into it)."""
    shutil.copytree(sc_ws, tmp_path / "ws")
    return tmp_path / "ws"


@pytest.fixture
def prepared(planner: Planner, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """``prepare`` replaced by the session planner; returns the months each call prepares (as
    ``prepare`` does: those asked for, else the longest horizon of the scenarios passed)."""
    calls: list[int] = []

    def fake(ws: Any, months: int | None = None, **kw: Any) -> Planner:
        assert ws.settings.currency == "USD"
        calls.append(months or max(s.horizon_months for s in kw["scenarios"]))
        return planner

    monkeypatch.setattr("cxasset.scenarios.simulate.prepare", fake)
    return calls


@pytest.mark.slow
def test_simulate_json_end_to_end(ws: Path, tmp_path: Path) -> None:
    f = write(tmp_path / "scenarios.yaml", SCENARIOS)
    r = run("simulate", f, "--workspace", ws, "--draws", 50, "--json")
    d = json.loads(r.stdout, parse_constant=no_constants)
    assert [s["name"] for s in d["scenarios"]] == ["Faster onboarding", "Better support"]
    for s, spec in zip(d["scenarios"], SCENARIOS, strict=True):
        check_result(s, spec["name"], 50)
    first = d["scenarios"][0]
    assert first["cost"]["mean"] == pytest.approx(32_000)
    assert first["delta"]["revenue"]["p50"] > 0
    assert first["target_churn"]["target"] == {"segment": "smb"}
    assert d["notes"]
    with Workspace(ws) as w:
        saved = w.load_artifact("scenarios")
    assert [s["name"] for s in saved["scenarios"]] == ["Faster onboarding", "Better support"]
    assert saved["acquisition"]["method"] in {"constant", "trend"}


def test_simulate_human_output(ws: Path, tmp_path: Path, planner: Planner,
                               prepared: list[int]) -> None:
    f = write(tmp_path / "one.yaml", SCENARIOS[0])
    r = run("simulate", f, "--workspace", ws, "--draws", 20)
    assert prepared == [12]
    want = planner.simulate(parse_scenarios(SCENARIOS[0])[0], draws=20, seed=0).sentence()
    flat = " ".join(r.stdout.split())
    assert " ".join(want.split()) in flat
    assert "Faster onboarding" in flat and "note: " in r.stdout


def test_compare_and_optimize_json(ws: Path, tmp_path: Path, prepared: list[int]) -> None:
    f = write(tmp_path / "two.yaml", SCENARIOS)
    d = json.loads(run("compare", f, "--workspace", ws, "--draws", 30, "--json").stdout,
                   parse_constant=no_constants)
    ranking = d["ranking"]
    assert sorted(x["name"] for x in ranking) == ["Better support", "Faster onboarding"]
    assert sum(x["prob_best"] for x in ranking) == pytest.approx(1.0)
    means = [x["npv"]["mean"] for x in ranking]
    assert means == sorted(means, reverse=True)
    for s in d["scenarios"]:
        check_result(s, s["name"], 30)
    o = json.loads(run("optimize", f, "--workspace", ws, "--budget", 100_000, "--draws", 30,
                       "--json").stdout, parse_constant=no_constants)
    assert o["budget"] == 100_000 and o["objective"] == "mean"
    assert {c["name"] for c in o["candidates"]} == {"Onboarding concierge", "Support training"}
    assert o["portfolio"]["cost"] <= 100_000
    assert (o["joint"] is None) == (not o["portfolio"]["names"])
    assert o["frontier"] and o["notes"]
    assert prepared == [12, 12]
    with Workspace(ws) as w:  # saved for the report
        assert w.load_artifact("portfolio")["portfolio"] == o["portfolio"]


def test_bad_driver_is_one_line(ws: Path, tmp_path: Path, prepared: list[int]) -> None:
    bad = [{**SCENARIOS[0], "initiatives": [{**SCENARIOS[0]["initiatives"][0], "changes": [
        {"driver": "onboardng_days", "shift": -3}]}]}]
    r = run("simulate", write(tmp_path / "bad.yaml", bad), "--workspace", ws, "--json", code=2)
    line = one_error_line(r)
    assert "'onboardng_days' is not a driver" in line and "did you mean 'onboarding_days'" in line


def test_invalid_or_missing_scenario_file(ws: Path, tmp_path: Path) -> None:
    """Caught before any model is fitted."""
    line = one_error_line(run("simulate", tmp_path / "nowhere.yaml", "--workspace", ws,
                              "--json", code=2))
    assert "does not exist" in line
    bad = [{**SCENARIOS[1], "initiatives": [{**SCENARIOS[1]["initiatives"][0], "changes": [
        {"driver": "nps", "shift": 1, "scale": 1.1}]}]}]
    line = one_error_line(run("compare", write(tmp_path / "two_kinds.yaml", bad),
                              "--workspace", ws, "--json", code=2))
    assert "give exactly one of shift, scale or set" in line
