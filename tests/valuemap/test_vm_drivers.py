"""Candidate drivers and the design matrix: channel shares, which columns may be drivers or
controls, standardisation, median imputation with missing flags, dummies, shifts and VIFs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxasset.exceptions import ModelDataError
from cxasset.valuemap.drivers import (
    MAX_LEVELS,
    build_design,
    candidate_names,
    collinearity,
    control_names,
    independent,
    source_of,
    with_channel_shares,
)


def frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """A feature frame: numeric drivers (one with missing values, one a share, one
    non-negative), outcomes, a bool, text controls."""
    rng = np.random.default_rng(seed)
    nps = rng.integers(0, 11, n).astype(float)
    nps[rng.random(n) < 0.3] = np.nan
    seg = rng.choice(["smb", "mid", "enterprise"], n, p=[0.6, 0.3, 0.1])
    return pd.DataFrame({
        "customer_id": np.arange(n),
        "onboarding_days": rng.integers(0, 40, n).astype(float),
        "nps": nps,
        "resolved_rate": rng.uniform(0, 1, n),
        "training_hours": rng.normal(5, 2, n),
        "frequency": rng.poisson(3, n),
        "recency": rng.uniform(0, 50, n),
        "T": np.full(n, 60.0),
        "monetary_value": rng.gamma(2, 50, n),
        "contacts_per_period": rng.uniform(0, 1, n),
        "cost_to_serve_per_period": rng.uniform(0, 1, n),
        "frequency_holdout": rng.poisson(1, n),
        "onboarded": rng.random(n) < 0.9,
        "constant": np.ones(n),
        "segment": seg,
        "nps_class": np.where(nps >= 9, "promoter", "other"),
        "one_level": ["x"] * n,
        "many_levels": [f"l{i % (MAX_LEVELS + 5)}" for i in range(n)],
    })


# --------------------------------------------------------------------------- channel shares
def test_channel_shares_sum_to_one_minus_baseline() -> None:
    f = pd.DataFrame({
        "customer_id": [1, 2, 3, 4],
        "contacts_per_period": [1.0, 0.0, 4.0, 2.0],
        "contacts_per_period_phone": [0.5, 0.0, 3.0, 1.0],  # most used: the baseline
        "contacts_per_period_email": [0.5, 0.0, 0.0, 0.5],
        "contacts_per_period_chat": [0.0, 0.0, 1.0, 0.5],
    })
    out = with_channel_shares(f)
    assert "share_contacts_phone" not in out
    assert not any(c.startswith("contacts_per_period_") for c in out.columns)
    assert "contacts_per_period" in out
    email, chat = out["share_contacts_email"].to_numpy(), out["share_contacts_chat"].to_numpy()
    np.testing.assert_allclose(email[[0, 2, 3]], [0.5, 0.0, 0.25])
    np.testing.assert_allclose(chat[[0, 2, 3]], [0.0, 0.25, 0.25])
    phone_share = np.array([0.5, 0.75, 0.5])
    np.testing.assert_allclose((email + chat)[[0, 2, 3]], 1 - phone_share)
    assert np.isnan(email[1]) and np.isnan(chat[1])  # no contacts: no mix
    assert f.shape[1] == 5  # input left alone


def test_channel_shares_without_channels_is_identity() -> None:
    f = pd.DataFrame({"customer_id": [1, 2], "contacts_per_period": [1.0, 2.0]})
    assert with_channel_shares(f) is f


# --------------------------------------------------------------------------- names
def test_candidate_names_exclude_outcomes_bools_text_and_constants() -> None:
    names = candidate_names(frame())
    assert names == ["onboarding_days", "nps", "resolved_rate", "training_hours"]


def test_candidate_names_skip_per_channel_and_holdout_columns() -> None:
    f = pd.DataFrame({"x_holdout": [1.0, 2.0], "contacts_per_period_phone": [1.0, 2.0],
                      "referrals_per_period": [1.0, 2.0], "ok": [1.0, 2.0]})
    assert candidate_names(f) == ["ok"]


def test_control_names() -> None:
    assert control_names(frame()) == ["segment"]


def test_source_of() -> None:
    assert source_of("nps") == ("surveys", True)
    assert source_of("share_contacts_email") == ("interactions", True)
    table, concurrent = source_of("onboarding_days")
    assert not concurrent and table.startswith("customers")
    assert source_of("employees") == ("customers (attributes)", False)


# --------------------------------------------------------------------------- design
def test_design_standardises_and_imputes_median() -> None:
    f = frame()
    d = build_design(f, ["onboarding_days", "nps", "training_hours"], ["segment"])
    for name in d.drivers:
        z = d.frame[name].to_numpy()
        assert abs(z.mean()) < 1e-12 and abs(z.std() - 1) < 1e-12
    raw = f["nps"].to_numpy()
    seen = np.isfinite(raw)
    info = d.drivers["nps"]
    assert info.median == np.median(raw[seen])
    assert info.missing_share == pytest.approx(1 - seen.mean())
    np.testing.assert_allclose(d.raw("nps")[~seen], info.median)
    np.testing.assert_allclose(d.raw("nps")[seen], raw[seen])
    np.testing.assert_allclose(d.frame["nps:missing"], (~seen).astype(float))
    assert "nps:missing" in d.controls
    assert "onboarding_days:missing" not in d.frame  # nothing missing, no flag
    assert info.source == "surveys" and info.concurrent
    assert info.q05 == pytest.approx(np.quantile(raw[seen], 0.05))


def test_design_controls_are_dummies_with_most_common_baseline() -> None:
    f = frame()
    d = build_design(f, ["training_hours"], ["segment"])
    assert set(d.controls) == {"segment=mid", "segment=enterprise"}  # smb (60%) is the baseline
    np.testing.assert_array_equal(d.frame["segment=mid"], (f["segment"] == "mid").astype(float))
    assert d.terms == ["training_hours", "segment=mid", "segment=enterprise"]


def test_design_default_controls_are_text_features() -> None:
    d = build_design(frame(), ["training_hours"])
    assert {c.split("=")[0] for c in d.controls} == {"segment"}


def test_missing_text_control_level() -> None:
    f = frame()
    f.loc[:9, "segment"] = None
    d = build_design(f, ["training_hours"], ["segment"])
    assert "segment=(missing)" in d.controls


def test_driver_bounds() -> None:
    d = build_design(frame(), ["onboarding_days", "resolved_rate", "training_hours"], [])
    assert (d.drivers["onboarding_days"].lower, d.drivers["onboarding_days"].upper) == (0, np.inf)
    assert (d.drivers["resolved_rate"].lower, d.drivers["resolved_rate"].upper) == (0, 1)
    assert d.drivers["training_hours"].lower == -np.inf  # normal draws go below 0


def test_duplicate_missing_flags_dropped() -> None:
    f = frame()
    f["csat"] = np.where(f["nps"].isna(), np.nan, np.random.default_rng(1).integers(1, 6, len(f)))
    d = build_design(f, ["nps", "csat"], [])
    assert "nps:missing" in d.controls
    assert "csat:missing" not in d.controls and "csat:missing" in d.dropped
    assert "csat:missing" not in d.frame


@pytest.mark.parametrize(("driver", "words"), [
    ("satisfaction", ["'satisfaction'", "not a feature", "onboarding_days"]),
    ("segment", ["'segment'", "not numeric"]),
    ("onboarded", ["'onboarded'", "not numeric"]),
    ("constant", ["'constant'", "standard deviation"]),
])
def test_design_bad_driver(driver: str, words: list[str]) -> None:
    with pytest.raises(ModelDataError) as e:
        build_design(frame(), [driver], [])
    for w in words:
        assert w in str(e.value)


def test_design_too_few_answers() -> None:
    f = frame()
    f["rare"] = np.nan
    f.loc[:28, "rare"] = np.arange(29.0)
    with pytest.raises(ModelDataError, match=r"'rare' has 29 customers.*need >= 30"):
        build_design(f, ["rare"], [])
    f.loc[:29, "rare"] = np.arange(30.0)
    assert "rare" in build_design(f, ["rare"], []).drivers


def test_design_unknown_control() -> None:
    with pytest.raises(ModelDataError, match="control 'plan' is not a feature"):
        build_design(frame(), ["training_hours"], ["plan"])


def test_design_linear_combination_of_drivers() -> None:
    f = frame()
    f["sum"] = f["onboarding_days"] + 2 * f["training_hours"]
    with pytest.raises(ModelDataError, match=r"\['sum'\].*linear combination"):
        build_design(f, ["onboarding_days", "training_hours", "sum"], [])


def test_independent_keeps_first_of_duplicates() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=100), rng.normal(size=100)
    df = pd.DataFrame({"a": a, "b": b, "a2": 3 * a + 1, "ab": a - b, "c": np.ones(100),
                       "d": rng.normal(size=100)})
    kept, dropped = independent(df, ["a", "b", "a2", "ab", "c", "d"])
    assert kept == ["a", "b", "d"]
    assert dropped == ["a2", "ab", "c"]


# --------------------------------------------------------------------------- shifts
def test_shifted_moves_only_answered_and_clips() -> None:
    f = frame()
    d = build_design(f, ["nps", "onboarding_days", "resolved_rate"], [])
    seen = f["nps"].notna().to_numpy()
    before = d.frame.copy()
    up = d.shifted("nps", 2.0)
    pd.testing.assert_frame_equal(d.frame, before)  # not in place
    x0, x1 = d.raw("nps"), up["nps"].to_numpy() * d.drivers["nps"].sd + d.drivers["nps"].mean
    np.testing.assert_allclose((x1 - x0)[seen], 2.0, atol=1e-9)
    np.testing.assert_array_equal(x1[~seen], x0[~seen])
    pd.testing.assert_frame_equal(up.drop(columns="nps"), before.drop(columns="nps"))

    down = d.shifted("onboarding_days", -10.0)
    info = d.drivers["onboarding_days"]
    x = down["onboarding_days"].to_numpy() * info.sd + info.mean
    np.testing.assert_allclose(x, np.maximum(d.raw("onboarding_days") - 10, 0), atol=1e-9)
    assert x.min() == pytest.approx(0, abs=1e-9)

    share = d.drivers["resolved_rate"]
    hi = d.shifted("resolved_rate", 0.3)["resolved_rate"].to_numpy() * share.sd + share.mean
    lo = d.shifted("resolved_rate", -0.3)["resolved_rate"].to_numpy() * share.sd + share.mean
    np.testing.assert_allclose(hi, np.minimum(d.raw("resolved_rate") + 0.3, 1), atol=1e-9)
    np.testing.assert_allclose(lo, np.maximum(d.raw("resolved_rate") - 0.3, 0), atol=1e-9)


def test_threshold_term_and_shift_recompute_it() -> None:
    f = frame()
    d = build_design(f, ["nps", "onboarding_days"], [])
    t_nps = d.add_threshold("nps", 8.0)
    t_onb = d.add_threshold("onboarding_days", 20.0)
    assert (t_nps, t_onb) == ("nps>8", "onboarding_days>20")
    assert d.terms[:4] == ["nps", "onboarding_days", "nps>8", "onboarding_days>20"]
    raw = f["nps"].to_numpy()
    expect = np.where(np.isnan(raw), 0.0, (raw > 8).astype(float))  # missing: not above
    np.testing.assert_array_equal(d.frame["nps>8"], expect)
    up = d.shifted("nps", 1.0)
    np.testing.assert_array_equal(up["nps>8"], np.where(np.isnan(raw), 0.0, raw + 1 > 8))
    np.testing.assert_array_equal(up["onboarding_days>20"], d.frame["onboarding_days>20"])
    down = d.shifted("onboarding_days", -5.0)
    onb = f["onboarding_days"].to_numpy()
    np.testing.assert_array_equal(down["onboarding_days>20"], (np.maximum(onb - 5, 0) > 20))


# --------------------------------------------------------------------------- collinearity
def test_vif_independent_vs_near_duplicates() -> None:
    rng = np.random.default_rng(3)
    n = 5000
    a, b = rng.normal(size=n), rng.normal(size=n)
    f = pd.DataFrame({"customer_id": np.arange(n), "a": a, "b": b,
                      "a_twin": a + 0.05 * rng.normal(size=n)})
    vif = collinearity(build_design(f, ["a", "b"], []))
    assert vif == pytest.approx({"a": 1.0, "b": 1.0}, abs=0.01)
    vif = collinearity(build_design(f, ["a", "b", "a_twin"], []))
    assert vif["b"] == pytest.approx(1.0, abs=0.01)
    # R^2 of a on a_twin = 1 / (1 + 0.05^2): VIF = 1 + 1/0.05^2 = 401
    assert vif["a"] == pytest.approx(401, rel=0.1)
    assert vif["a_twin"] == pytest.approx(401, rel=0.1)
