"""docs/tutorial.md runs as written: its ```python blocks, in order, in one namespace.

The tutorial reads the CDNOW book from ``CXASSET_SHARED_DATA`` (else ``../shared/data``) and
writes into ``CXASSET_TUTORIAL_OUT`` (else ``demo/tutorial``, relative to the working directory).
The test runs it in a temporary folder with ``CXASSET_SHARED_DATA`` pointing at the shared data,
so nothing is written into the repository, then checks a few of its results against the
published ones (``tests/reference``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from reference import cdnow as ref
from reference import published as pub

TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "tutorial.md"
BLOCK = re.compile(r"^```python\n(.*?)^```\s*$", re.DOTALL | re.MULTILINE)


def blocks() -> list[str]:
    """The tutorial's python blocks, in order."""
    return BLOCK.findall(TUTORIAL.read_text(encoding="utf-8"))


def test_every_code_block_is_python() -> None:
    """A block in another language (or none) would not be run by the test: the tutorial has
    only ```python blocks."""
    fences = re.findall(r"^```(\S*)\s*$", TUTORIAL.read_text(encoding="utf-8"), re.MULTILINE)
    opening = fences[::2]
    assert opening and set(opening) == {"python"}, opening
    assert len(blocks()) == len(opening)


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The namespace after running every block in a temporary working folder."""
    work = tmp_path_factory.mktemp("tutorial")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.setenv("CXASSET_SHARED_DATA", str(ref.DATA_DIR))
        mp.delenv("CXASSET_TUTORIAL_OUT", raising=False)
        ns: dict[str, Any] = {"__name__": "tutorial"}
        for k, code in enumerate(blocks(), start=1):
            try:
                exec(compile(code, f"{TUTORIAL.name}, block {k}", "exec"), ns)
            except Exception as exc:
                raise AssertionError(f"block {k} of {TUTORIAL} failed:\n{code}") from exc
    ns["_work"] = work
    return ns


@pytest.mark.slow
def test_tutorial_runs_and_reproduces_the_published_results(ran: dict[str, Any]) -> None:
    out = ran["_work"] / "demo" / "tutorial"
    assert ran["OUT"] == Path("demo/tutorial")
    # Part 1: CDNOW (Fader, Hardie & Lee 2005)
    f = ran["f"]
    assert len(f) == ref.N_CUSTOMERS
    assert max(float(v) for v in ran["largest_gap"].values()) <= 0.005 + 1e-9
    bgnbd = ran["bgnbd"]
    for k, v in ref.BGNBD_FULL.items():
        assert bgnbd.params_[k] == pytest.approx(v, rel=1e-3), k
    for k, v in ref.BGNBD_PUBLISHED.items():
        assert round(bgnbd.params_[k], 3) == v, k
    assert bgnbd.result_.log_likelihood == pytest.approx(ref.BGNBD_LL, abs=0.01)
    for name, published in (("mbgnbd", ref.MBGNBD_PUBLISHED), ("pnbd", ref.PNBD_FULL)):
        params = ran["fit"].candidate(name).model.params_
        for k, v in published.items():
            assert params[k] == pytest.approx(v, rel=2e-3), (name, k)
    spend = ran["spend_cal"].params_
    assert {k: round(v, pub.GG_PARAMS_DECIMALS) for k, v in spend.items()} == pub.GG_PARAMS
    bt = ran["bt"]
    assert bt.actual_total == 1882
    assert bt.predicted_total == pytest.approx(1653.4, abs=0.5)
    x26 = ref.BGNBD_X26
    assert float(bgnbd.probability_alive(ran["one"])[0]) == pytest.approx(x26["p_alive"], abs=1e-4)
    value = ran["value"]
    lo, hi = value.equity_interval
    assert 0 < lo < value.equity < hi
    assert len(value.customers) == ref.N_CUSTOMERS
    assert (out / "cdnow-clv.parquet").is_file()
    # Part 2: the synthetic book
    lo, hi = ran["value2"].equity_interval
    assert 0 < lo < ran["value2"].equity < hi
    st = ran["st"]
    assert st.opening["estimate"] + sum(x["estimate"] for x in st.lines) == pytest.approx(
        st.closing["estimate"], rel=1e-9)
    assert st.closing["margin"] == pytest.approx(ran["value2"].equity, rel=1e-9)
    assert (out / "valuemap.svg").read_text().lstrip().startswith("<svg")
    significant = {lv["driver"] for lv in ran["levers"].levers if lv["significant"]}
    assert "nps" in significant and "employees" not in significant  # the planted placebo
    assert ran["levers"].thresholds["onboarding_days"]["cut"] == 21  # the planted step
    r = ran["r"]
    assert r["npv"]["p5"] <= r["npv"]["p50"] <= r["npv"]["p95"]
    assert r["roi"] is not None and "payback_month" in r
    assert ran["result"].sentence().startswith("Investing ")
    assert len(ran["compared"]["ranking"]) == len(ran["scenarios"]) == 3
    portfolio = ran["portfolio"]["portfolio"]
    assert portfolio["cost"] <= 50_000
    figures = ran["figures"]
    assert figures["summary"] and figures["statement"]["available"]
    assert figures["return"]["available"] and figures["return"]["portfolio"]["available"]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html") and len(html) > 1_000_000
