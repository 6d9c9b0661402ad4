"""``cxasset init``: the project files load with the loaders that will read them, a non-empty
folder is refused and left untouched, ``--force`` keeps the user's files, a failure leaves nothing,
and the README's commands run as written on a synthetic book."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

import cxasset.project as project
from cxasset.book.contract import TABLES
from cxasset.book.settings import BookSettings
from cxasset.cli import app
from cxasset.scenarios.spec import load_scenarios
from cxasset.valuemap.spec import ValueMapSpec

runner = CliRunner()
FILES = ["README.md", "book/book.yaml", "book/README.md", "map.yaml", "scenarios.yaml"]


def run(*args: Any, code: int = 0) -> Result:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result


def run_json(*args: Any) -> dict[str, Any]:
    result = run(*args, "--json")
    assert result.stderr.strip() == ""
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def error_line(result: Result) -> str:
    assert "Traceback" not in result.output and result.stdout.strip() == ""
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file and folder under ``root``: relative path -> bytes (None for a folder)."""
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes()
            for p in sorted(root.rglob("*"))}


def test_files_written_and_loaded_by_the_real_loaders(tmp_path: Path) -> None:
    d = run_json("init", tmp_path / "proj")
    assert set(d) == {"project", "files", "overwritten", "next_steps"}
    assert d["project"] == str(tmp_path / "proj") and d["overwritten"] == []
    assert sorted(d["files"].values()) == sorted(str(tmp_path / "proj" / f) for f in FILES)
    assert sorted(snapshot(tmp_path)) == sorted(["proj", "proj/book", *(f"proj/{f}"
                                                                        for f in FILES)])
    root = tmp_path / "proj"
    # book.yaml: every setting, each after a comment, loading to the defaults
    text = (root / "book/book.yaml").read_text()
    assert set(yaml.safe_load(text)) == set(BookSettings.model_fields)
    lines = text.splitlines()
    for name in BookSettings.model_fields:
        i = next(i for i, ln in enumerate(lines) if ln.startswith(f"{name}:"))
        assert lines[i - 1].startswith("# ")
    assert "annual" in text.lower() and "in periods" in text and "ISO 4217" in text
    assert BookSettings.from_yaml(root / "book/book.yaml") == BookSettings()
    spec = ValueMapSpec.from_yaml(root / "map.yaml")
    assert [v.feature for v in spec.cx_variables] == ["nps", "csat", "ces", "onboarding_days",
                                                      "resolved_rate"]
    scenarios = load_scenarios(root / "scenarios.yaml")
    assert [s.name for s in scenarios] == ["Faster onboarding", "Easier service"]
    assert {dr for s in scenarios for dr in s.drivers} <= {v.feature for v in spec.cx_variables}
    book_readme = (root / "book/README.md").read_text()
    for t in TABLES.values():
        assert f"`{t.name}`" in book_readme
        assert all(f"`{c}`" in book_readme for c in t.required)
    readme = (root / "README.md").read_text()
    assert all(c in readme for c in d["next_steps"])
    assert "cxasset map init --workspace ws --out map.yaml --force" in readme


def test_human_output_lists_files_and_next_steps(tmp_path: Path) -> None:
    r = run("init", tmp_path / "p")
    text = " ".join(r.stdout.split())
    assert all(str(tmp_path / "p" / f) in text for f in FILES)
    assert "cxasset ingest book --workspace ws" in text and "cxasset fit --workspace ws" in text


def test_an_empty_existing_folder_is_used(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    run_json("init", tmp_path / "p")
    assert all((tmp_path / "p" / f).is_file() for f in FILES)


def test_non_empty_folder_refused_and_left_byte_identical(tmp_path: Path) -> None:
    root = tmp_path / "p"
    (root / "book").mkdir(parents=True)
    (root / "book" / "customers.csv").write_text("customer_id,acquired_at\n1,2024-01-01\n")
    (root / "map.yaml").write_text("cx_variables: []  # mine\n")
    before = snapshot(tmp_path)
    r = run("init", root, code=2)
    msg = error_line(r)
    assert "is not empty" in msg and "--force" in msg and "book" in msg
    assert snapshot(tmp_path) == before  # nothing changed, no temporary folder left


def test_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    assert "not a folder" in error_line(run("init", tmp_path / "f", code=2))
    # a parent that is a file: an OSError, one line, exit 2
    error_line(run("init", tmp_path / "f" / "p", code=2))
    assert sorted(snapshot(tmp_path)) == ["f"]


def test_force_rewrites_the_project_files_and_keeps_the_others(tmp_path: Path) -> None:
    root = tmp_path / "p"
    (root / "book").mkdir(parents=True)
    mine = "customer_id,acquired_at\n1,2024-01-01\n"
    (root / "book" / "customers.csv").write_text(mine)
    (root / "map.yaml").write_text("cx_variables: []  # mine\n")
    d = run_json("init", root, "--force")
    assert d["overwritten"] == [str(root / "map.yaml")]
    assert (root / "book" / "customers.csv").read_text() == mine
    assert len(ValueMapSpec.from_yaml(root / "map.yaml").cx_variables) == 5
    assert all((root / f).is_file() for f in FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]


def test_a_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file the loaders refuse stops init before anything is moved into place, and the missing
    parents it created are removed again."""
    monkeypatch.setattr(project, "MAP_YAML", "cx_variables:\n  - {name: x, feature: x}\n")
    r = run("init", tmp_path / "a" / "b" / "p", code=2)
    assert "map.yaml" in error_line(r)
    assert list(tmp_path.iterdir()) == []


def test_unexpected_error_is_one_line_exit_1(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: Any, **__: Any) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(project, "init_project", boom)
    msg = error_line(run("init", tmp_path / "p", code=1))
    assert "ZeroDivisionError" in msg and "--debug" in msg
    r = runner.invoke(app, ["--debug", "init", str(tmp_path / "p")])
    assert r.exit_code == 1 and isinstance(r.exception, ZeroDivisionError)


def test_interrupt_exits_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_: Any, **__: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(project, "init_project", interrupted)
    assert error_line(run("init", tmp_path / "p", code=130)) == "error: interrupted"


# --------------------------------------------------------------------------- end to end
def readme_commands(readme: Path) -> list[list[str]]:
    """The commands of the README's ``sh`` block, as argument lists without ``cxasset``."""
    block = re.search(r"```sh\n(.*?)```", readme.read_text(), re.S)
    assert block is not None
    out = []
    for line in block.group(1).splitlines():
        if line.startswith("cxasset "):
            out.append(shlex.split(line, comments=True)[1:])
    return out


def test_readme_steps_on_a_synthetic_book(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    """Follow the project README on a synthetic book whose tables the user drops into book/:
    the scaffolded book.yaml is the one ingest reads, and its map.yaml and scenarios.yaml run."""
    root = tmp_path / "proj"
    run_json("init", root)
    # seed 1: `fit` chooses BG/NBD; on books where it chooses Pareto/NBD (seed 5) the value map
    # refits Pareto/NBD with covariates for minutes, too slow for this test
    run_json("synth", tmp_path / "synth", "--customers", "2000", "--seed", "1")
    for table in (tmp_path / "synth").glob("*.parquet"):
        shutil.copy(table, root / "book")
    settings = root / "book" / "book.yaml"
    settings.write_text(settings.read_text().replace("currency: USD", "currency: EUR"))
    commands = readme_commands(root / "README.md")
    assert [c[0] for c in commands] == ["ingest", "info", "features", "fit", "value", "map",
                                        "map", "levers", "simulate", "compare", "optimize",
                                        "report"]
    monkeypatch.chdir(root)
    results = {}
    for args in commands:
        name = " ".join(args[:2]) if args[:2] == ["map", "init"] else args[0]
        if name not in {"ingest", "fit", "value", "map", "simulate"}:
            continue  # levers, compare, optimize, report: covered by their own tests
        extra = ["--draws", "50"] if name in {"map", "simulate"} else []
        results[name] = run_json(*args, *extra)
    ing = results["ingest"]
    assert ing["rows"]["customers"] == 2000 and ing["settings"]["currency"] == "EUR"
    assert ing["settings"]["calibration_end"] is None  # the scaffold's null: fit picks 2/3
    assert results["fit"]["model"] in {"bgnbd", "mbgnbd", "pnbd"}
    v = results["value"]
    assert v["customers"] == 2000 and v["settings"]["currency"] == "EUR"
    ce = v["customer_equity"]
    assert 0 < ce["p5"] < ce["estimate"] < ce["p95"]
    assert (root / "clv.parquet").is_file()
    linked = {link["driver"] for link in results["map"]["links"]}
    assert {"nps", "csat", "ces", "onboarding_days", "resolved_rate"} <= linked
    assert (root / "valuemap" / "valuemap.svg").is_file()
    sims = results["simulate"]["scenarios"]
    assert [s["name"] for s in sims] == ["Faster onboarding", "Easier service"]
    assert all(s["npv"]["p5"] <= s["npv"]["p95"] for s in sims)
