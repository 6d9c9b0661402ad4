"""Portfolio choice: exact MILP answers checked against brute-force enumeration of every subset."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math

import numpy as np
import pytest

from cxasset.scenarios.portfolio import Portfolio, PortfolioError, frontier, optimize, rank


def lower_q(draws: np.ndarray, q: float = 0.10) -> float:
    """The documented p10: the largest t with at most floor(q D) draws below it."""
    return float(np.sort(draws)[math.floor(q * len(draws))])


def instance(k: int, seed: int, draws: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """Correlated NPV draws (a common shock with initiative-specific loadings) and costs."""
    rng = np.random.default_rng(seed)
    shock = rng.normal(size=(draws, 1))
    npv = rng.normal(rng.normal(0.5, 1.0, k), rng.uniform(0.5, 3.0, k), size=(draws, k))
    return 1e5 * (npv + shock * rng.normal(0, 1.5, k)), rng.uniform(1e4, 1e5, k)


def brute(npv, cost, budget, objective="mean", q=0.10, exclusive=(), required=(), forbidden=()):
    best, k = None, npv.shape[1]
    for x in itertools.product([0, 1], repeat=k):
        x = np.array(x)
        if (cost @ x > budget * (1 + 1e-12) or any(x[list(g)].sum() > 1 for g in exclusive)
                or not x[list(required)].all() or x[list(forbidden)].any()):
            continue
        s = npv @ x
        v = s.mean() if objective == "mean" else lower_q(s, q)
        best = v if best is None else max(best, v)
    return best


def check(p: Portfolio, npv: np.ndarray, cost: np.ndarray, budget: float, q: float = 0.10) -> None:
    assert p.cost <= budget * (1 + 1e-12)
    assert p.cost == pytest.approx(cost[list(p.chosen)].sum())
    np.testing.assert_allclose(p.npv, npv[:, list(p.chosen)].sum(axis=1))
    want = p.npv.mean() if p.objective == "mean" else lower_q(p.npv, q)
    assert p.value == pytest.approx(want, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("objective", ["mean", "p10"])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [2, 3, 5, 8, 10])
def test_matches_brute_force(k, seed, objective):
    npv, cost = instance(k, seed)
    budget = 0.4 * cost.sum()
    p = optimize(npv, cost, budget, objective=objective)
    check(p, npv, cost, budget)
    assert p.value == pytest.approx(brute(npv, cost, budget, objective), rel=1e-6, abs=1e-6)
    assert p.notes == ()


@pytest.mark.parametrize("q", [0.0, 0.25])
def test_other_quantile_levels(q):
    npv, cost = instance(7, 5, draws=90)
    p = optimize(npv, cost, cost.sum() / 2, objective="p10", quantile=q)
    check(p, npv, cost, cost.sum() / 2, q)
    assert p.value == pytest.approx(brute(npv, cost, cost.sum() / 2, "p10", q), rel=1e-6)


def test_budget_zero_gives_empty_portfolio():
    npv, cost = instance(6, 3)
    for objective in ("mean", "p10"):
        p = optimize(npv, cost, 0.0, objective=objective)
        assert (p.chosen, p.names, p.cost, p.value, p.prob_positive) == ((), (), 0.0, 0.0, 0.0)


def test_p10_may_pick_a_hedge_with_negative_mean():
    # the hedge loses on average but pays when the main initiative fails
    npv = np.array([[10.0, -6.0]] * 8 + [[-20.0, 22.0]] * 2)
    assert optimize(npv, np.ones(2), 2.0).chosen == (0,)
    assert optimize(npv, np.ones(2), 2.0, objective="p10", quantile=0.0).chosen == (0, 1)


@pytest.mark.parametrize("objective", ["mean", "p10"])
def test_exclusive_required_forbidden(objective):
    npv, cost = instance(9, 7)
    npv[:, :3] += 2e5  # the three variants of one programme are all attractive
    kw = {"exclusive": [[0, 1, 2], [4, 5]], "required": [6], "forbidden": [3]}
    budget = 0.5 * cost.sum()
    p = optimize(npv, cost, budget, objective=objective, **kw)
    check(p, npv, cost, budget)
    assert len({0, 1, 2} & set(p.chosen)) == 1 and len({4, 5} & set(p.chosen)) <= 1
    assert 6 in p.chosen and 3 not in p.chosen
    assert p.value == pytest.approx(brute(npv, cost, budget, objective, **kw), rel=1e-6)


def test_required_loser_is_kept():
    npv = np.array([[5.0, -3.0], [7.0, -1.0]])
    p = optimize(npv, np.array([1.0, 1.0]), 1.0, required=[1], names=["good", "bad"])
    assert (p.chosen, p.names, p.value) == ((1,), ("bad",), -2.0)


def test_subsampled_draws_and_report():
    npv, cost = instance(6, 11, draws=1000)
    p = optimize(npv, cost, cost.sum() / 2, objective="p10", names=list("abcdef"))
    assert p.npv.shape == (1000,) and p.value == lower_q(p.npv)
    assert any("334 of 1000 draws" in n for n in p.notes)
    d = json.loads(json.dumps(p.to_dict()))
    assert set(d["npv"]) == {"p5", "p50", "p95", "mean"}
    assert d["prob_npv_positive"] == pytest.approx(np.mean(p.npv > 0))
    assert d["names"] == [p.names[i] for i in range(len(p.chosen))] and "draws" not in d
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.value = 0.0  # type: ignore[misc]


@pytest.mark.parametrize(("args", "kw", "match"), [
    ((np.ones(3), np.ones(3), 1.0), {}, r"\(draws, initiatives\) matrix"),
    ((np.ones((4, 3)), np.ones(2), 1.0), {}, r"cost must have shape \(3,\)"),
    ((np.full((4, 2), np.nan), np.ones(2), 1.0), {}, "8 NaN"),
    ((np.ones((4, 2)), np.array([1.0, -2.0]), 1.0), {}, r"cost must be finite and >= 0; got \[-2.0\]"),
    ((np.ones((4, 2)), np.ones(2), -1.0), {}, "budget must be .* >= 0; got -1.0"),
    ((np.ones((4, 61)), np.ones(61), 1.0), {}, "at most 60 initiatives"),
    ((np.ones((4, 2)), np.ones(2), 1.0), {"names": ["a"]}, "names has 1 entries for 2"),
    ((np.ones((4, 2)), np.ones(2), 1.0), {"required": [2]}, r"required index 2 out of range: .*\(0..1\)"),
    ((np.ones((4, 2)), np.ones(2), 1.0), {"exclusive": [[0, -1]]}, "exclusive index -1"),
    ((np.ones((4, 2)), np.ones(2), 9.0), {"required": [0], "forbidden": [0]}, "both required and forb"),
    ((np.ones((4, 2)), np.ones(2), 9.0), {"required": [0, 1], "exclusive": [[0, 1]]}, "mutually excl"),
    ((np.ones((4, 2)), np.array([3e6, 2e6]), 4e6), {"required": [0, 1]},
     r"required initiatives cost \$5.00M, over the budget \$4.00M"),
    ((np.ones((4, 2)), np.ones(2), 1.0), {"objective": "p90"}, "objective must be 'mean' or 'p10'"),
    ((np.ones((4, 2)), np.ones(2), 1.0), {"quantile": 1.0}, r"quantile must be in \[0, 1\)"),
])
def test_bad_input(args, kw, match):
    with pytest.raises(PortfolioError, match=match):
        optimize(*args, **kw)
    assert issubclass(PortfolioError, ValueError)


@pytest.mark.parametrize("objective", ["mean", "p10"])
def test_frontier_is_monotone(objective):
    npv, cost = instance(8, 4)
    points = frontier(npv, cost, objective=objective, n=10)
    values = [p.value for p in points]
    assert values == sorted(values) and len(set(values)) == len(values)
    assert all(p.cost <= p.budget for p in points) and points[0].chosen == ()
    assert len({p.chosen for p in points}) == len(points)
    assert points[-1].value == pytest.approx(brute(npv, cost, points[-1].budget, objective), rel=1e-6)


def test_frontier_explicit_budgets_keep_smallest():
    npv = np.array([[3.0, 1.0], [1.0, 1.0]])
    points = frontier(npv, np.array([2.0, 1.0]), [3, 0, 1, 1.5, 2, 2.5])
    assert [(p.chosen, p.budget) for p in points] == [((), 0), ((1,), 1), ((0,), 2), ((0, 1), 3)]


def test_rank_orders_by_mean_and_prob_best_sums_to_one():
    npv, cost = instance(5, 9, draws=500)
    out = rank(npv, list("abcde"), cost)
    means = npv.mean(axis=0)
    assert [r["name"] for r in out] == ["abcde"[j] for j in np.argsort(-means)]
    assert [r["rank"] for r in out] == [1, 2, 3, 4, 5]
    assert sum(r["prob_best"] for r in out) == pytest.approx(1.0)
    top = out[0]
    j = "abcde".index(top["name"])
    assert top["roi"] == pytest.approx(means[j] / cost[j])
    assert top["npv"]["mean"] == pytest.approx(means[j])
    assert top["prob_npv_positive"] == pytest.approx(np.mean(npv[:, j] > 0))
    assert top["prob_best"] == pytest.approx(np.mean(npv.argmax(axis=1) == j))
    json.dumps(out)


def test_rank_ties_and_missing_cost():
    out = rank(np.array([[1.0, 1.0, 0.0], [2.0, 2.0, 5.0]]), ["a", "b", "c"], np.array([0.0, 1.0, 2.0]))
    assert [(r["name"], r["prob_best"], r["roi"]) for r in out] == [
        ("c", 0.5, 1.25), ("a", 0.25, None), ("b", 0.25, 1.5)]
    assert all(r["roi"] is None for r in rank(np.ones((3, 2)), ["a", "b"]))
    with pytest.raises(PortfolioError, match=r"\(draws, 3\) matrix"):
        rank(np.ones((3, 2)), ["a", "b", "c"])


def test_fifty_initiatives_p10():
    npv, cost = instance(50, 13, draws=400)
    budget = cost.sum() / 3
    p = optimize(npv, cost, budget, objective="p10", time_limit=5.0)
    check(p, npv, cost, budget)
    singles = [lower_q(npv[:, j]) for j in range(50) if cost[j] <= budget]
    assert p.value >= max(0.0, *singles)


def test_time_limit_returns_best_found_with_note():
    npv, cost = instance(40, 17, draws=400)
    p = optimize(npv, cost, cost.sum() / 3, objective="p10", time_limit=0.01)
    check(p, npv, cost, cost.sum() / 3)
    assert any("before proving optimality" in n for n in p.notes)
