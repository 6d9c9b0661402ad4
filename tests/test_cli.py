"""The command line: every command run for people and with ``--json``, and its errors (one line,
exit code 2 for bad input and 3 for a missing workspace, the traceback only with ``--debug``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner, Result

from cxasset.cli import app
from cxasset.exceptions import WorkspaceError
from cxasset.features import RFM_COLUMNS

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CDNOW = SHARED_DATA / "cdnow_sample"
EXAMPLE_BOOK = Path(__file__).resolve().parents[1] / "examples" / "book"
COMMANDS = ["ingest", "info", "features", "fit", "value", "statement", "map", "levers",
            "simulate", "compare", "optimize", "report", "init", "synth", "demo"]


def registered(command: Any = None, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path of the app, sub-commands of groups included (``("map", "init")``),
    walked from typer's command tree so a new command is covered without listing it here."""
    command = typer.main.get_command(app) if command is None else command
    found = [path] if path else []
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        found += registered(sub, (*path, name))
    return found

runner = CliRunner()


def run(*args: Any, code: int = 0) -> Result:
    """Invoke ``cxasset *args`` and check its exit code."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result


def flat(text: str) -> str:
    """Text with runs of whitespace as one space (rich wraps at 80 columns under the runner)."""
    return " ".join(text.split())


def run_json(*args: Any) -> dict[str, Any]:
    result = run(*args, "--json")
    assert result.stderr.strip() == ""  # no progress display, no warnings: JSON only
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def one_line_error(result: Result) -> str:
    """The error message, after checking it is one line with no traceback."""
    assert result.exit_code in (2, 3)
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert result.stdout.strip() == ""
    return lines[0]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """``cxasset ingest`` of the CDNOW sample: the workspace and the JSON it printed."""
    ws = tmp_path_factory.mktemp("cli") / "ws"
    return ws, run_json("ingest", CDNOW, "--workspace", ws)


@pytest.fixture(scope="module")
def fitted(ingested: tuple[Path, dict[str, Any]]) -> tuple[Path, dict[str, Any]]:
    """``cxasset fit --model bgnbd`` on it: the workspace and the JSON it printed."""
    ws, _ = ingested
    return ws, run_json("fit", "--workspace", ws, "--model", "bgnbd")


# --------------------------------------------------------------------------- ingest / info
def test_ingest_json(ingested: tuple[Path, dict[str, Any]]) -> None:
    _, d = ingested
    assert {"rows", "fingerprint", "warnings", "settings", "kind"} <= set(d)
    assert d["rows"] == {"customers": 2357, "transactions": 6919}
    assert d["kind"] == "transactions"
    assert len(d["fingerprint"]) == 64 and int(d["fingerprint"], 16) >= 0
    assert d["warnings"] == []
    s = d["settings"]
    assert (s["period"], s["as_of"], s["calibration_end"]) == ("week", "1998-06-30", "1997-09-30")
    assert (s["margin_rate"], s["discount_rate"], s["currency"]) == (0.30, 0.15, "USD")


def test_ingest_human_shows_rows_and_warnings(tmp_path: Path) -> None:
    r = run("ingest", EXAMPLE_BOOK, "--workspace", tmp_path / "ws")
    assert "transactions" in flat(r.stdout) and "13" in flat(r.stdout)
    assert "period: week" in flat(r.stdout) and "calibration_end: 2024-04-30" in flat(r.stdout)
    # the example book has a refund: warned about on stderr, not an error
    assert "warning:" in r.stderr and "amount" in r.stderr


def test_ingest_json_reports_warnings(tmp_path: Path) -> None:
    d = run_json("ingest", EXAMPLE_BOOK, "--workspace", tmp_path / "ws")
    assert d["rows"]["customers"] == 6
    assert len(d["warnings"]) == 1
    assert d["warnings"][0]["column"] == "amount"


def test_info(ingested: tuple[Path, dict[str, Any]]) -> None:
    ws, ing = ingested
    d = run_json("info", "--workspace", ws)
    assert d["fingerprint"] == ing["fingerprint"]
    assert d["rows"] == ing["rows"]
    assert d["kind"] == "transactions"
    assert Path(d["source"]).resolve() == CDNOW.resolve()
    assert {"settings", "ingested_at", "files", "warnings"} <= set(d)
    r = run("info", "--workspace", ws)
    assert "customers" in flat(r.stdout) and "2,357" in flat(r.stdout) and "6,919" in flat(r.stdout)
    assert f"fingerprint: {ing['fingerprint'][:16]}" in flat(r.stdout)


# --------------------------------------------------------------------------- features
def test_features_json(ingested: tuple[Path, dict[str, Any]]) -> None:
    ws, _ = ingested
    d = run_json("features", "--workspace", ws)
    assert (d["customers"], d["cutoff"], d["holdout_end"], d["period"], d["out"]) == (
        2357, "1998-06-30", None, "week", None)
    by_name = {f["feature"]: f for f in d["features"]}
    assert {"customer_id", *RFM_COLUMNS} <= set(by_name)
    assert set(by_name["frequency"]) == {"feature", "type", "non_null", "mean", "min", "max",
                                         "top"}
    assert by_name["frequency"]["non_null"] == 2357 and by_name["frequency"]["min"] == 0
    cal = run_json("features", "--workspace", ws, "--calibration-end", "1997-09-30")
    assert (cal["cutoff"], cal["holdout_end"]) == ("1997-09-30", "1998-06-30")
    names = [f["feature"] for f in cal["features"]]
    assert {"frequency_holdout", "duration_holdout"} <= set(names)
    # the published summary: 2,457 repeat transactions in the calibration period
    freq = next(f for f in cal["features"] if f["feature"] == "frequency")
    assert freq["mean"] * 2357 == pytest.approx(2457)


def test_features_human(ingested: tuple[Path, dict[str, Any]]) -> None:
    ws, _ = ingested
    r = run("features", "--workspace", ws, "--calibration-end", "1997-09-30")
    assert "2,357 customers" in flat(r.stdout)
    assert "frequency" in flat(r.stdout) and "monetary_value" in flat(r.stdout)


def test_features_out_parquet(ingested: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    ws, _ = ingested
    out = tmp_path / "sub" / "f.parquet"
    d = run_json("features", "--workspace", ws, "--calibration-end", "1997-09-30", "--out", out)
    assert d["out"] == str(out) and d["features"] is None and d["customers"] == 2357
    f = pd.read_parquet(out).sort_values("customer_id").reset_index(drop=True)
    assert {"customer_id", *RFM_COLUMNS} <= set(f.columns)
    assert not list(out.parent.glob("*.tmp"))
    # the features reproduce the published CDNOW summary
    ref = pd.read_csv(SHARED_DATA / "published" / "cdnow_summary.csv")
    assert list(f.customer_id) == list(ref.ID)
    np.testing.assert_array_equal(f.frequency, ref.x)
    np.testing.assert_allclose(f.recency, ref.t_x, atol=0.006)
    np.testing.assert_allclose(f["T"], ref["T"], atol=0.006)
    r = run("features", "--workspace", ws, "--out", tmp_path / "g.parquet")
    assert "Wrote 2,357 customers' features to" in flat(r.stdout)
    assert len(pd.read_parquet(tmp_path / "g.parquet")) == 2357


# --------------------------------------------------------------------------- fit / value
def test_fit_json(fitted: tuple[Path, dict[str, Any]]) -> None:
    _, d = fitted
    assert {"model", "reason", "params", "std_err", "conf_int", "log_likelihood", "backtest",
            "spend", "candidates"} <= set(d)
    assert d["model"] == "bgnbd"
    assert set(d["params"]) == set(d["std_err"]) == set(d["conf_int"]) == {"r", "alpha", "a", "b"}
    assert all(len(ci) == 2 for ci in d["conf_int"].values())
    assert {"tracking", "conditional", "aggregate_error", "mae_per_customer"} <= set(d["backtest"])
    assert d["backtest"]["actual_total"] == 1882
    assert len(d["backtest"]["tracking"]["period"]) == 39
    assert d["backtest"]["conditional"]["frequency"] == list(range(8))
    assert set(d["spend"]["params"]) == {"p", "q", "gamma"}
    assert [c["model"] for c in d["candidates"]] == ["bgnbd"]
    assert d["candidates"][0]["backtest"] == d["backtest"]


def test_fit_human(fitted: tuple[Path, dict[str, Any]]) -> None:
    ws, _ = fitted
    r = run("fit", "--workspace", ws, "--model", "bgnbd")
    out = flat(r.stdout)
    assert "bgnbd fitted to 1998-06-30" in out
    for text in ("alpha", "Backtest", "holdout", "Gamma-Gamma", "Chosen: bgnbd as requested"):
        assert text in out


def test_value_json_and_out(fitted: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    ws, _ = fitted
    out = tmp_path / "clv.parquet"
    d = run_json("value", "--workspace", ws, "--out", out)
    ce = d["customer_equity"]
    assert set(ce) == {"estimate", "p5", "p95", "std_err", "unit"}
    assert ce["p5"] < ce["estimate"] < ce["p95"] and ce["std_err"] > 0 and ce["unit"] == "USD"
    assert d["customers"] == 2357
    assert d["mean_clv"] == pytest.approx(ce["estimate"] / 2357, rel=1e-12)
    assert d["settings"]["horizon"] == 52 and d["out"] == str(out)
    clv = pd.read_parquet(out)
    assert list(clv.columns) == ["customer_id", "expected_transactions", "p_alive",
                                 "expected_spend", "clv"]
    assert len(clv) == 2357 and clv.customer_id.is_unique
    assert clv.clv.sum() == pytest.approx(ce["estimate"], rel=1e-9)
    longer = run_json("value", "--workspace", ws, "--horizon", "104")
    assert longer["settings"]["horizon"] == 104
    assert longer["customer_equity"]["estimate"] > ce["estimate"]


def test_value_human(fitted: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    ws, _ = fitted
    r = run("value", "--workspace", ws, "--out", tmp_path / "clv.parquet")
    for text in ("customer equity", "90% interval", "mean CLV", "2,357", "52 weeks"):
        assert text in flat(r.stdout)
    assert "Wrote 2,357 customers' CLV to" in flat(r.stdout)


def test_statement_json_and_human(fitted: tuple[Path, dict[str, Any]]) -> None:
    """CDNOW's one cohort was acquired in early 1997: over the year to 1998-06-30 nothing is
    acquired, and the equity of the base only falls."""
    ws, _ = fitted
    d = run_json("statement", "--workspace", ws, "--start", "1997-06-30")
    assert (d["start"], d["end"]) == ("1997-06-30", "1998-06-30")
    assert d["customers"] == {"opening": 2357, "acquired": 0, "closing": 2357}
    lines = {x["key"]: x for x in d["lines"]}
    assert lines["acquisition"]["estimate"] == 0
    assert d["opening"]["estimate"] + sum(x["estimate"] for x in d["lines"]) == pytest.approx(
        d["closing"]["estimate"], rel=1e-9)
    assert d["closing"]["estimate"] < d["opening"]["estimate"]
    assert lines["retention"]["p5"] <= lines["retention"]["estimate"] <= lines["retention"]["p95"]
    assert d["leakage"]["customers_lost"]["estimate"] > 0
    text = flat(run("statement", "--workspace", ws).stdout)
    for t in ("Customer asset statement", "customer equity at 1997-06-30", "Retention",
              "Revenue leakage from churn", "customers lost"):
        assert t in text
    run("statement", "--workspace", ws, "--start", "1999-01-01", code=2)


def test_subscriptions_book_end_to_end(tmp_path: Path) -> None:
    book, ws = tmp_path / "book", tmp_path / "ws"
    run_json("synth", book, "--customers", "500", "--kind", "subscriptions")
    assert run_json("ingest", book, "--workspace", ws)["kind"] == "subscriptions"
    fit = run_json("fit", "--workspace", ws)
    assert fit["kind"] == "subscriptions" and fit["model"] in {"sbg", "hazard"}
    assert fit["backtest"]["actual_total"] >= 0
    d = run_json("value", "--workspace", ws)
    assert d["customers"] == 500 and d["settings"]["period"] == "month"
    ce = d["customer_equity"]
    assert ce["p5"] < ce["estimate"] < ce["p95"]
    r = run("fit", "--workspace", ws, "--model", "bgnbd", code=2)
    assert "contractual models" in one_line_error(r)


# --------------------------------------------------------------------------- synth / demo
def test_synth(tmp_path: Path) -> None:
    d = run_json("synth", tmp_path / "book", "--customers", "300", "--seed", "3")
    assert (d["customers"], d["seed"], d["kind"]) == (300, 3, "transactions")
    assert d["rows"]["customers"] == 300
    assert (tmp_path / "book" / "book.yaml").is_file()
    assert (tmp_path / "book" / "truth.json").is_file()
    r = run("synth", tmp_path / "sub", "--customers", "300", "--kind", "subscriptions")
    assert "Synthetic subscriptions book" in flat(r.stdout) and "300" in flat(r.stdout)


def test_demo_json(tmp_path: Path) -> None:
    d = run_json("demo", "--out", tmp_path / "demo", "--customers", "1500")
    assert {"book", "workspace", "rows", "summary", "fit", "value", "valuemap", "levers",
            "scenarios", "portfolio", "report", "spec", "summary_sentences"} <= set(d)
    assert d["portfolio"]["portfolio"]["cost"] <= d["portfolio"]["budget"]
    ranking = d["scenarios"]["ranking"]
    assert [r["rank"] for r in ranking] == [1, 2, 3]
    assert sum(r["prob_best"] for r in ranking) == pytest.approx(1.0)
    assert all(sc["sentence"] and sc["npv"]["p5"] <= sc["npv"]["p95"]
               for sc in d["scenarios"]["scenarios"])
    assert Path(d["report"]).stat().st_size > 100_000 and 1 <= len(d["summary_sentences"]) <= 5
    assert d["valuemap"]["links"] and d["levers"]["levers"]
    assert {"driver", "mechanism", "step", "impact", "q_value", "significant", "robust",
            "threshold"} <= set(d["levers"]["levers"][0])
    assert d["rows"]["customers"] == 1500
    assert d["fit"]["model"] in {"bgnbd", "mbgnbd", "pnbd"}
    assert {c["model"] for c in d["fit"]["candidates"]} == {"bgnbd", "mbgnbd", "pnbd"}
    assert d["value"]["customers"] == 1500
    assert d["value"]["customer_equity"]["estimate"] > 0
    # the workspace it leaves behind can be valued again
    again = run_json("value", "--workspace", d["workspace"])
    assert again["customer_equity"]["estimate"] == pytest.approx(
        d["value"]["customer_equity"]["estimate"], rel=1e-12)


def test_demo_human(tmp_path: Path) -> None:
    r = run("demo", "--out", tmp_path / "demo", "--customers", "1000", "--seed", "2")
    for text in ("1,000 customers", "repeat buyers", "Backtest", "customer equity",
                 "Growth levers", "ranked by expected NPV", "Investing", "Executive summary",
                 "report.html", "cxasset simulate"):
        assert text in flat(r.stdout)


# --------------------------------------------------------------------------- errors
def workspace_commands() -> list[tuple[str, ...]]:
    """Every command path that reads a workspace (has a --workspace option; ingest makes one)."""
    out = []
    for path in registered():
        if path == ("ingest",):
            continue
        cmd = typer.main.get_command(app)
        for name in path:
            cmd = cmd.commands[name]  # type: ignore[attr-defined]
        if any("--workspace" in getattr(p, "opts", []) for p in cmd.params):
            out.append(path)
    return out


def test_workspace_commands_are_found() -> None:
    assert {"info", "fit", "map", "map init", "simulate", "optimize", "report"} <= {
        " ".join(p) for p in workspace_commands()}


@pytest.mark.parametrize("path", workspace_commands(), ids=" ".join)
def test_missing_workspace_exits_3(tmp_path: Path, path: tuple[str, ...]) -> None:
    """Every workspace command, for people and with --json: one line on stderr, nothing on
    stdout, exit 3, and no workspace folder created."""
    from cxasset.project import SCENARIOS_YAML

    scenarios = tmp_path / "scenarios.yaml"
    scenarios.write_text(SCENARIOS_YAML)
    args: list[Any] = [*path]
    args += [scenarios] if path[0] in {"simulate", "compare", "optimize"} else []
    args += ["--budget", "1000"] if path[0] == "optimize" else []
    for extra in ([], ["--json"]):
        r = run(*args, "--workspace", tmp_path / "nope", *extra, code=3)
        msg = one_line_error(r)
        assert "is not a cxasset workspace" in msg and "cxasset ingest" in msg
        assert not (tmp_path / "nope").exists()


def test_broken_book_exits_2_naming_the_column(tmp_path: Path) -> None:
    book = tmp_path / "book"
    shutil.copytree(EXAMPLE_BOOK, book)
    tx = book / "transactions.csv"
    lines = tx.read_text().splitlines()
    tx.write_text("\n".join([lines[0].replace("amount", "amt"), *lines[1:]]) + "\n")
    r = run("ingest", book, "--workspace", tmp_path / "ws", code=2)
    assert "Traceback" not in r.output
    assert "error:" in r.stderr
    assert "column amount" in r.stderr and "transactions" in r.stderr
    assert not (tmp_path / "ws").exists()


@pytest.mark.parametrize("option", ["--as-of", "--calibration-end"])
def test_bad_date_exits_2(ingested: tuple[Path, dict[str, Any]], option: str) -> None:
    ws, _ = ingested
    r = run("features", "--workspace", ws, option, "1998-13-01", code=2)
    msg = one_line_error(r)
    assert option in msg and "YYYY-MM-DD" in msg and "'1998-13-01'" in msg


def test_value_before_fit(copy_cdnow_ws: Callable[[], Path]) -> None:
    r = runner.invoke(app, ["value", "--workspace", str(copy_cdnow_ws())])
    assert r.exit_code != 0
    msg = one_line_error(r)
    assert "cxasset fit" in msg


def test_unknown_model_exits_2(ingested: tuple[Path, dict[str, Any]]) -> None:
    ws, _ = ingested
    r = run("fit", "--workspace", ws, "--model", "gbnbd", "--json", code=2)
    assert "unknown model 'gbnbd'" in one_line_error(r)


def test_horizon_must_be_positive(fitted: tuple[Path, dict[str, Any]]) -> None:
    ws, _ = fitted
    r = run("value", "--workspace", ws, "--horizon", "0", code=2)
    assert "horizon must be a positive number of periods; got 0" in one_line_error(r)


def test_debug_shows_the_exception(tmp_path: Path) -> None:
    r = runner.invoke(app, ["--debug", "info", "--workspace", str(tmp_path / "nope")])
    assert r.exit_code != 0
    assert isinstance(r.exception, WorkspaceError)
    assert r.exc_info is not None
    # and the next run without --debug is back to one line
    one_line_error(run("info", "--workspace", tmp_path / "nope", code=3))


def test_every_command_is_walked() -> None:
    paths = registered()
    assert {p[0] for p in paths} == set(COMMANDS)
    assert ("map", "init") in paths and len(paths) == len(COMMANDS) + 1


@pytest.mark.parametrize("path", registered(), ids=" ".join)
def test_help(path: tuple[str, ...]) -> None:
    r = run(*path, "--help")
    text = flat(r.stdout)
    assert "Example" in text
    assert "--json" in text
    assert f"cxasset {' '.join(path)}" in text  # the example runs this very command


def test_no_command_shows_help() -> None:
    r = runner.invoke(app, [])
    assert all(c in r.output for c in COMMANDS)


@pytest.mark.parametrize("args", [["info", "--bogus"], ["fit", "--model"], ["synth"],
                                  ["simulate", "s.yaml", "--draws", "3"], ["nope"]],
                         ids=" ".join)
def test_usage_errors_exit_2_without_traceback(args: list[str]) -> None:
    """typer's own usage errors (unknown option or command, missing value or argument, a value
    out of range) exit with 2 and a short message, like cxasset's bad input."""
    r = run(*args, code=2)
    assert "Traceback" not in r.output
    assert "Error" in r.stderr and r.stdout.strip() == ""


def test_file_errors_are_bad_input(fitted: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """An output path that cannot be written (OSError) is one line, exit 2."""
    ws, _ = fitted
    (tmp_path / "f").write_text("")
    r = run("value", "--workspace", ws, "--out", tmp_path / "f" / "clv.parquet", code=2)
    assert str(tmp_path / "f") in one_line_error(r)


def test_messages_are_printed_verbatim(tmp_path: Path) -> None:
    """Square brackets in a message (here a folder name) are text, not rich markup."""
    ws = tmp_path / "[old]" / "ws"
    assert str(ws) in one_line_error(run("info", "--workspace", ws, code=3))


@pytest.mark.parametrize("debug", [False, True])
def test_debug_traceback_in_a_real_process(tmp_path: Path, debug: bool) -> None:
    """As a user runs it: one line and exit 3 for a missing workspace; with --debug, Python's
    traceback of the WorkspaceError (exit 1)."""
    args = [sys.executable, "-m", "cxasset.cli", *(["--debug"] if debug else []),
            "info", "--workspace", str(tmp_path / "nope")]
    p = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    if debug:
        assert p.returncode == 1
        assert "Traceback (most recent call last)" in p.stderr
        assert "cxasset.exceptions.WorkspaceError" in p.stderr
    else:
        assert p.returncode == 3 and "Traceback" not in p.stderr
        assert [ln for ln in p.stderr.splitlines() if ln.strip()][0].startswith("error: ")
        assert len([ln for ln in p.stderr.splitlines() if ln.strip()]) == 1
