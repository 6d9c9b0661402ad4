"""`cxasset map init` and `cxasset map`: the starter spec, strict JSON, the picture, and bad specs
as one-line errors with exit code 2."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from cxasset.cli import app
from cxasset.valuemap.spec import ValueMapSpec

runner = CliRunner()
SPEC = """\
cx_variables:
  - {name: Onboarding time, feature: onboarding_days, unit: days, better: lower, step: 3}
  - {name: NPS, feature: nps, unit: points, better: higher, step: 1}
links:
  - {driver: Onboarding time, mechanism: dropout}
  - {driver: Onboarding time, mechanism: purchase_rate}
  - driver: NPS
    mechanism: referrals
    experiment: {effect: 0.05, std_err: 0.01, use: override}
"""


def run(*args: Any, code: int = 0) -> Result:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result


def strict_json(text: str) -> Any:
    def no_constants(name: str) -> None:
        raise AssertionError(f"{name} in JSON")

    return json.loads(text, parse_constant=no_constants)


def one_line_error(result: Result) -> str:
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert result.stdout.strip() == ""
    return lines[0]


@pytest.fixture(scope="module")
def ws(vm_ws: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shared book's workspace (the commands save artifacts in it)."""
    dest = tmp_path_factory.mktemp("vmcli") / "ws"
    shutil.copytree(vm_ws, dest)
    return dest


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("spec") / "map.yaml"
    p.write_text(SPEC)
    return p


@pytest.fixture(scope="module")
def map_json(ws: Path, spec_file: Path, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("mapout") / "out"
    r = run("map", "--workspace", ws, "--spec", spec_file, "--json", "--draws", "100",
            "--out", out)
    assert r.stderr.strip() == ""
    return strict_json(r.stdout), out


# --------------------------------------------------------------------------- map init
def test_map_init_writes_a_readable_spec(ws: Path, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "map.yaml"
    r = run("map", "init", "--workspace", ws, "--out", out)
    assert "Wrote" in r.stdout
    sp = ValueMapSpec.from_yaml(out)
    features = [v.feature for v in sp.cx_variables]
    assert "onboarding_days" in features and "nps" in features
    assert "employees" not in features  # an attribute: a lever candidate, not a CX variable
    assert all(v.step > 0 for v in sp.cx_variables)
    assert out.read_text().startswith("# cxasset value map")

    r = run("map", "init", "--workspace", ws, "--out", out, code=2)
    msg = one_line_error(r)
    assert "exists" in msg and "--force" in msg
    out.write_text("edited")
    d = strict_json(run("map", "init", "--workspace", ws, "--out", out, "--force",
                        "--json").stdout)
    assert d["spec"] == str(out)
    assert [v["feature"] for v in d["cx_variables"]] == features
    assert ValueMapSpec.from_yaml(out) == sp


# --------------------------------------------------------------------------- map
def test_map_json(map_json: tuple[dict[str, Any], Path]) -> None:
    d, _ = map_json
    assert d["customer_equity"] > 0 and d["currency"] == "USD"
    links = d["links"]
    assert [(k["driver"], k["mechanism"]) for k in links] == [
        ("onboarding_days", "dropout"), ("onboarding_days", "purchase_rate"),
        ("nps", "referrals")]
    for k in links:
        assert {"driver", "mechanism", "effect", "impact", "evidence", "step"} <= set(k)
        e = k["effect"]
        assert {"estimate", "std_err", "ci95", "p_value"} <= set(e)
        lo, hi = e["ci95"]
        assert lo < e["estimate"] < hi
        assert hi - e["estimate"] == pytest.approx(1.959963984540054 * e["std_err"])
        assert 0 <= e["p_value"] <= 1
        imp = k["impact"]
        assert {"p5", "p50", "p95", "mean"} <= set(imp)
        assert imp["p5"] <= imp["p50"] <= imp["p95"]
    onb = links[0]
    assert onb["step"] == -3.0 and onb["label"] == "Onboarding time" and onb["unit"] == "days"
    assert onb["evidence"] == "observational"
    assert onb["effect"]["estimate"] > 0  # slower onboarding, more dropout (planted)
    assert onb["impact"]["p5"] > 0  # 3 days faster adds value
    nps = links[2]
    assert nps["evidence"] == "experiment"
    assert (nps["effect"]["estimate"], nps["effect"]["std_err"]) == (0.05, 0.01)
    assert nps["impact"]["p5"] > 0
    g = d["graph"]
    ids = {n["id"] for n in g["nodes"]}
    assert {"cx:onboarding_days", "cx:nps", "fin:retention", "fin:transactions",
            "fin:referral value", "equity"} == ids
    total = [e for e in g["edges"] if e["source"] == "fin:retention"]
    assert total[0]["impact"] == pytest.approx(onb["impact"]["estimate"])


def test_map_out_writes_json_and_svg(map_json: tuple[dict[str, Any], Path]) -> None:
    d, out = map_json
    assert d["written"] == {"json": str(out / "valuemap.json"), "svg": str(out / "valuemap.svg")}
    saved = strict_json((out / "valuemap.json").read_text())
    assert saved["links"] == d["links"]
    root = ET.fromstring((out / "valuemap.svg").read_text())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "Onboarding time" in texts and "Customer equity" in texts
    assert not list(root.iter("{http://www.w3.org/2000/svg}script"))


def test_map_table(ws: Path, spec_file: Path) -> None:
    r = run("map", "--workspace", ws, "--spec", spec_file, "--draws", "20")
    assert "Customer Asset Value Map" in r.stdout and "customer equity $" in r.stdout


# --------------------------------------------------------------------------- bad specs
@pytest.mark.parametrize(("text", "words"), [
    ("cx_variables:\n  - {name: Joy, feature: joy_index, better: higher, step: 1}\n",
     ["joy_index", "not a feature"]),
    ("cx_variables:\n  - {name: NPS, feature: nps, better: up, step: 1}\n",
     ["better", "'up'"]),
    ("cx_variables:\n  - {name: NPS, feature: nps, better: higher, step: -1}\n", ["step"]),
    ("cx_variables:\n  - {name: NPS, feature: nps, better: higher, step: 1}\n"
     "links:\n  - {driver: CES, mechanism: dropout}\n", ["'CES'", "not a CX variable"]),
    ("cx_variables: []\n", ["no cx_variables"]),
    ("cx_variables:\n  - {name: Seg, feature: segment, better: higher, step: 1}\n",
     ["segment", "not numeric"]),
])
def test_bad_spec_is_a_one_line_error(ws: Path, tmp_path: Path, text: str,
                                      words: list[str]) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    msg = one_line_error(run("map", "--workspace", ws, "--spec", p, "--json", code=2))
    for w in words:
        assert w in msg, msg


def test_missing_spec_file(ws: Path, tmp_path: Path) -> None:
    msg = one_line_error(run("map", "--workspace", ws, "--spec", tmp_path / "no.yaml", code=2))
    assert "does not exist" in msg


def test_referrals_link_without_referrals_table(noref_ws: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(noref_ws, ws)
    p = tmp_path / "map.yaml"
    p.write_text("cx_variables:\n"
                 "  - {name: Onboarding time, feature: onboarding_days, better: lower, step: 3}\n"
                 "links:\n  - {driver: Onboarding time, mechanism: referrals}\n")
    msg = one_line_error(run("map", "--workspace", ws, "--spec", p, "--json", code=2))
    assert "'referrals'" in msg and "referrals table" in msg
    assert "supported: purchase_rate, dropout, spend, cost_to_serve" in msg
