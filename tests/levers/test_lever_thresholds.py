"""The binned threshold check: bin edges, bin dummies, and the GLS line-vs-step comparison on
hand-made bin coefficients with a known answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxasset.levers.thresholds import bin_edges, binned_frame, check
from cxasset.valuemap.drivers import Design, build_design
from cxasset.valuemap.mechanisms import MechanismFit


def test_bin_edges_whole_numbers_inside_range() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 60, 5000).astype(float)
    e = bin_edges(x)
    assert np.array_equal(e, np.round(e))
    assert (e > x.min()).all() and (e < x.max()).all()
    assert (np.diff(e) > 0).all() and 3 <= len(e) <= 7


def test_bin_edges_continuous_and_degenerate() -> None:
    x = np.random.default_rng(1).normal(size=4000)
    e = bin_edges(x, bins=5)
    np.testing.assert_allclose(e, np.quantile(x, [0.2, 0.4, 0.6, 0.8]))
    assert len(bin_edges(np.r_[np.zeros(90), np.ones(10)])) == 0  # 0/1: nothing inside
    skew = np.r_[np.zeros(900), np.arange(1.0, 101.0)]  # mostly zeros: duplicate quantiles
    e = bin_edges(skew)
    assert len(e) == len(np.unique(e)) and (e > 0).all()


def design(n: int = 3000, seed: int = 0) -> Design:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 50, n).astype(float)
    x[rng.random(n) < 0.1] = np.nan
    return build_design(pd.DataFrame({"customer_id": np.arange(n), "days": x,
                                      "other": rng.normal(size=n)}), ["days", "other"], [])


def test_binned_frame() -> None:
    d = design()
    x = d.raw("days")
    miss = d.frame["days:missing"].to_numpy() == 1
    edges = bin_edges(x[~miss])
    frame, names = binned_frame(d, "days", edges)
    assert names == [f"days#bin{j}" for j in range(1, len(edges) + 1)]
    assert "days" not in frame and "other" in frame and "days:missing" in frame
    bins = frame[names].to_numpy()
    assert set(bins.sum(axis=1)) <= {0.0, 1.0}
    assert (bins[miss] == 0).all()  # missing: the baseline bin
    first = ~miss & (x <= edges[0])
    assert (bins[first] == 0).all()
    for j, name in enumerate(names, start=1):
        hi = edges[j] if j < len(edges) else np.inf
        want = ~miss & (x > edges[j - 1]) & (x <= hi)
        np.testing.assert_array_equal(frame[name].to_numpy() == 1, want)


def bin_fit(d: Design, edges: np.ndarray, names: list[str], c: np.ndarray,
            var: float = 1e-4) -> MechanismFit:
    terms = ["other", *names]
    coef = np.r_[0.1, c]
    return MechanismFit("dropout", terms, coef, np.eye(len(terms)) * var, 3000, "hand-made")


def centres(d: Design, edges: np.ndarray) -> np.ndarray:
    x = d.raw("days")
    seen = d.frame["days:missing"].to_numpy() == 0
    k = np.searchsorted(edges, x, side="left")
    m = np.array([x[seen & (k == j)].mean() for j in range(len(edges) + 1)])
    return m[1:] - m[0]


def test_check_line_has_no_threshold() -> None:
    d = design()
    edges = bin_edges(d.raw("days")[d.frame["days:missing"].to_numpy() == 0])
    _, names = binned_frame(d, "days", edges)
    c = 0.03 * centres(d, edges)
    t = check(bin_fit(d, edges, names, c), d, "days", names, edges)
    assert t.cut is None and t.jump == 0.0
    assert t.nonlinear_p == pytest.approx(1.0)
    assert t.p_value > 0.5
    assert t.bin_effects == pytest.approx([0.0, *c])
    assert t.edges == list(edges) and t.driver == "days" and t.mechanism == "dropout"


@pytest.mark.parametrize("j", [1, 3, 5])
def test_check_finds_a_planted_jump(j: int) -> None:
    d = design()
    edges = bin_edges(d.raw("days")[d.frame["days:missing"].to_numpy() == 0])
    _, names = binned_frame(d, "days", edges)
    c = 0.03 * centres(d, edges) + 0.5 * (np.arange(len(names)) >= j)
    t = check(bin_fit(d, edges, names, c), d, "days", names, edges)
    assert t.cut == edges[j]
    assert t.jump == pytest.approx(0.5, rel=1e-6)
    assert t.p_value < 1e-10 and t.nonlinear_p < 1e-10


def test_check_jump_drowned_in_noise_is_not_a_threshold() -> None:
    d = design()
    edges = bin_edges(d.raw("days")[d.frame["days:missing"].to_numpy() == 0])
    _, names = binned_frame(d, "days", edges)
    c = 0.03 * centres(d, edges) + 0.5 * (np.arange(len(names)) >= 3)
    t = check(bin_fit(d, edges, names, c, var=1.0), d, "days", names, edges)
    assert t.cut is None and t.p_value > 0.01
