"""`cxasset levers`: strict JSON with the documented keys per lever, and bad specs as one-line
errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from cxasset.cli import app

runner = CliRunner()
KEYS = {"driver", "mechanism", "step", "impact", "impact_per_sd", "p_value", "q_value",
        "significant", "robust", "evidence", "threshold"}


def run(*args: Any, code: int = 0) -> Result:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result


def no_constants(name: str) -> None:
    raise AssertionError(f"{name} in JSON")


@pytest.mark.slow
# thresholds found on this book can make bgnbd emit "invalid value" RuntimeWarnings (see
# tests/valuemap/test_vm_estimate.py::test_threshold_terms_do_not_warn)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_levers_json(lv_ws: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(lv_ws, ws)
    r = run("levers", "--workspace", ws, "--json", "--no-robustness", "--draws", "50")
    d = json.loads(r.stdout, parse_constant=no_constants)
    assert d["levers"]
    for e in d["levers"]:
        assert KEYS <= set(e), KEYS - set(e)
        assert {"p5", "p50", "p95", "mean"} <= set(e["impact"]) <= set(e["impact_per_sd"])
        assert e["significant"] == (e["q_value"] <= d["fdr"])
        assert e["robust"] is None
        assert e["threshold"] is None or e["threshold"] == d["thresholds"][e["driver"]]["cut"]
    means = [e["impact"]["mean"] for e in d["levers"]]
    assert means == sorted(means, reverse=True)
    assert d["fdr"] == 0.10 and d["customer_equity"] > 0
    assert set(d["undeclared_levers"]) <= {e["driver"] for e in d["levers"]}


def test_levers_bad_spec(lv_ws: Path, tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("cx_variables:\n  - {name: NPS, feature: nps, better: up, step: 1}\n")
    r = run("levers", "--workspace", lv_ws, "--spec", p, "--json", code=2)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "better" in lines[0]
    assert r.stdout.strip() == ""


def test_levers_missing_workspace(tmp_path: Path) -> None:
    r = run("levers", "--workspace", tmp_path / "nowhere", "--json", code=3)
    assert r.stdout.strip() == "" and r.stderr.startswith("error: ")
