"""Lever discovery against planted truth: synthetic books (docs/synth.md) whose CX effects are
known, and the generator's intervention simulation as the true counterfactual.

Planted: onboarding time raises dropout linearly and jumps above 21 days (and slightly lowers the
purchase rate); training lowers dropout and raises the purchase rate; company size (`employees`)
is a placebo, correlated with segment only. The latent drivers (satisfaction, engagement, effort)
are observed only through noisy survey answers and events, so their money is attenuated and is not
compared with truth here.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from cxasset.book import Workspace
from cxasset.exceptions import BookWarning
from cxasset.levers.rank import rank_levers
from cxasset.synth import Intervention, generate, simulate_future
from cxasset.valuemap.spec import ValueMapSpec

SPEC = ValueMapSpec.parse({"cx_variables": [
    {"name": "Onboarding", "feature": "onboarding_days", "unit": "days", "better": "lower",
     "step": 3},
    {"name": "Training", "feature": "training_hours", "unit": "hours", "better": "higher",
     "step": 2},
]})
MARGIN_MECHANISMS = ("purchase_rate", "dropout", "spend")
STEPS = {"onboarding_days": -3.0, "training_hours": 2.0}


def workspace(tmp: Path, customers: int, seed: int, discount: float | None = None) -> Workspace:
    book = tmp / f"book{seed}"
    generate(book, customers=customers, seed=seed)
    if discount is not None:  # undiscounted, to compare with the simulated future's totals
        text = (book / "book.yaml").read_text().splitlines()
        (book / "book.yaml").write_text("\n".join(
            f"discount_rate: {discount}" if line.startswith("discount_rate:") else line
            for line in text) + "\n")
    ws = Workspace(tmp / f"ws{seed}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BookWarning)
        ws.ingest(book)
    return ws


def ranked_book(tmp: Path, seed: int) -> tuple[Path, dict]:
    """A 100k-customer book (undiscounted) and its lever report."""
    ws = workspace(tmp, 100_000, seed=seed, discount=0.0)
    report = rank_levers(ws, SPEC, robustness=False, draws=200).to_dict()
    ws.close()
    return tmp / f"book{seed}", report


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    return ranked_book(tmp_path_factory.mktemp("planted"), 5)


def money(report: dict) -> dict[str, float]:
    """Each planted lever's change in margin (purchase rate, dropout, spend) at its step."""
    return {d: sum(e["impact"]["estimate"] for e in report["levers"]
                   if e["driver"] == d and e["mechanism"] in MARGIN_MECHANISMS) for d in STEPS}


def true_money(book: Path, futures: int = 8) -> dict[str, float]:
    """The expected counterfactual: the margin each step adds over the next 52 weeks, the mean
    over ``futures`` simulated futures (one future is off its mean by 2-3%)."""
    total = dict.fromkeys(STEPS, 0.0)
    for k in range(futures):
        base = simulate_future(book, 364, seed=k).future_spend.sum()
        for d, s in STEPS.items():
            alt = simulate_future(book, 364, seed=k, intervention=Intervention(d, shift=s))
            total[d] += 0.3 * (alt.future_spend.sum() - base) / futures
    return total


@pytest.mark.slow
def test_placebo_not_flagged_and_planted_levers_in_true_order(big: tuple[Path, dict]) -> None:
    book, rep = big
    assert not any(e["significant"] for e in rep["levers"] if e["driver"] == "employees")
    est, true = money(rep), true_money(book, futures=2)
    assert sorted(est, key=est.get) == sorted(true, key=true.get), (est, true)
    assert all(est[d] > 0 and true[d] > 0 for d in STEPS)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [5, 6, 7])
def test_planted_levers_money_within_20_percent(seed: int, big: tuple[Path, dict],
                                                tmp_path: Path) -> None:
    """The issue's target on three books: every planted lever's money within 20% of the
    expected true counterfactual (measured: docs/valuemap.md, Verified)."""
    book, rep = big if seed == 5 else ranked_book(tmp_path, seed)
    est, true = money(rep), true_money(book)
    for d in STEPS:
        assert abs(est[d] / true[d] - 1) < 0.2, (seed, d, est[d], true[d])


@pytest.mark.slow
def test_planted_onboarding_threshold_found_within_one_bin(big: tuple[Path, dict]) -> None:
    _, rep = big
    t = rep["thresholds"].get("onboarding_days")
    assert t is not None, rep["thresholds"]
    edges = np.asarray(t["edges"])
    # the planted jump is above 21 days: the found cut is at most one bin edge away from it
    k_true = int(np.searchsorted(edges, 21.0))
    k_found = int(np.searchsorted(edges, t["cut"]))
    assert abs(k_found - k_true) <= 1, (t["cut"], list(edges))


@pytest.mark.slow
def test_placebo_not_flagged_in_90_percent_of_20_books(tmp_path: Path) -> None:
    """The planted null (company size) stays below FDR 10% in at least 18 of 20 books."""
    flagged = 0
    for seed in range(20):
        ws = workspace(tmp_path, 4_000, seed=200 + seed)
        rep = rank_levers(ws, None, robustness=False, thresholds=False, draws=50,
                          max_score=2_000).to_dict()
        ws.close()
        flagged += any(e["significant"] for e in rep["levers"] if e["driver"] == "employees")
    assert flagged <= 2, flagged
