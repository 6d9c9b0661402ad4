"""Tests of the synthetic book generator: contract, determinism, planted effects, moments and the
counterfactual future (common random numbers)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.special import betaln, hyp2f1

from cxasset.book.settings import BookSettings
from cxasset.exceptions import CxassetError
from cxasset.synth import (
    Intervention,
    SynthError,
    SynthParams,
    generate,
    simulate_future,
    true_state,
)
from cxasset.synth import _state as S
from cxasset.synth.future import _recouple

TABLES_T = ("customers", "transactions", "interactions", "surveys", "referrals", "engagement")
TS = pa.timestamp("us")
EXPECTED = {
    "customers": {"customer_id": pa.int64(), "acquired_at": TS, "segment": pa.string(),
                  "acquisition_channel": pa.string(), "acquisition_cost": pa.float64(),
                  "onboarded_at": TS, "employees": pa.int64(), "training_hours": pa.float64()},
    "transactions": {"customer_id": pa.int64(), "occurred_at": TS, "amount": pa.float64(),
                     "transaction_id": pa.int64()},
    "subscriptions": {"customer_id": pa.int64(), "started_at": TS,
                      "recurring_revenue": pa.float64(), "ended_at": TS, "plan": pa.string()},
    "interactions": {"customer_id": pa.int64(), "occurred_at": TS, "channel": pa.string(),
                     "cost": pa.float64(), "effort": pa.float64(), "resolved": pa.bool_()},
    "surveys": {"customer_id": pa.int64(), "occurred_at": TS, "metric": pa.string(),
                "score": pa.int64()},
    "referrals": {"referrer_id": pa.int64(), "occurred_at": TS,
                  "referred_customer_id": pa.int64()},
    "engagement": {"customer_id": pa.int64(), "occurred_at": TS, "event": pa.string(),
                   "count": pa.int64()},
}


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "tx"
    generate(out, customers=20_000, seed=7)
    return out


@pytest.fixture(scope="module")
def subs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "subs"
    generate(out, customers=8_000, seed=7, kind="subscriptions")
    return out


def read(book: Path, table: str) -> pd.DataFrame:
    return pd.read_parquet(book / f"{table}.parquet")


def digest(folder: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.iterdir())}


def per_customer(book: Path) -> pd.DataFrame:
    """Customers with tenure T (weeks), repeat purchases, contacts, referrals, survey means."""
    c = read(book, "customers").set_index("customer_id")
    as_of = pd.Timestamp(BookSettings.from_yaml(book / "book.yaml").as_of)
    c["T"] = ((as_of - c.acquired_at).dt.days + 1) / 7
    c["onb"] = (c.onboarded_at - c.acquired_at).dt.days
    c["repeat"] = read(book, "transactions").groupby("customer_id").size().reindex(c.index) - 1
    inter = read(book, "interactions")
    c["contacts"] = inter.groupby("customer_id").size().reindex(c.index, fill_value=0)
    c["effort"] = inter.groupby("customer_id").effort.mean()
    c["referrals"] = read(book, "referrals").groupby("referrer_id").size().reindex(
        c.index, fill_value=0)
    sv = read(book, "surveys")
    c["nps"] = sv[sv.metric == "nps"].groupby("customer_id").score.mean()
    return c


# ---------------------------------------------------------------------------------------------
# contract


def test_contract_files_columns_and_types(book: Path, subs: Path) -> None:
    for folder, tables in ((book, TABLES_T), (subs, ("customers", "subscriptions"))):
        for t in tables:
            schema = pq.read_schema(folder / f"{t}.parquet")
            assert dict(zip(schema.names, schema.types, strict=True)) == EXPECTED[t], t
    assert not (book / "subscriptions.parquet").exists()
    assert not (subs / "transactions.parquet").exists()


def test_events_within_acquisition_and_as_of(book: Path, subs: Path) -> None:
    for folder in (book, subs):
        settings = BookSettings.from_yaml(folder / "book.yaml")
        assert settings.calibration_end < settings.as_of
        as_of = pd.Timestamp(settings.as_of)
        acq = read(folder, "customers").set_index("customer_id").acquired_at
        for t in ("transactions", "subscriptions", "interactions", "surveys", "referrals",
                  "engagement"):
            if not (folder / f"{t}.parquet").exists():
                continue
            df = read(folder, t)
            who = df["referrer_id" if t == "referrals" else "customer_id"]
            when = df["started_at" if t == "subscriptions" else "occurred_at"]
            assert who.isin(acq.index).all(), t
            assert (when.to_numpy() >= acq.loc[who].to_numpy()).all(), t
            assert (when < as_of + pd.Timedelta(days=1)).all(), t  # through the as_of day
        c = read(folder, "customers")
        ok = c.onboarded_at.notna()
        assert ((c.onboarded_at[ok] >= c.acquired_at[ok]) & (c.onboarded_at[ok] <= as_of)).all()
        assert 0 < (~ok).mean() < 0.1


def test_value_ranges_and_channel_costs(book: Path) -> None:
    settings = BookSettings.from_yaml(book / "book.yaml")
    sv = read(book, "surveys")
    assert set(sv.metric) == {"nps", "csat", "ces"}
    for metric, (lo, hi) in {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}.items():
        s = sv.score[sv.metric == metric]
        assert s.between(lo, hi).all() and s.nunique() == hi - lo + 1, metric
    inter = read(book, "interactions")
    assert inter.effort.dropna().between(1, 7).all() and 0.3 < inter.effort.isna().mean() < 0.7
    assert set(inter.channel) == set(settings.channel_costs)
    assert (inter.cost == inter.channel.map(settings.channel_costs)).all()
    assert (read(book, "transactions").amount > 0).all()
    assert (read(book, "engagement")["count"] > 0).all()
    assert read(book, "transactions").transaction_id.is_unique


def test_truth_json_layout(book: Path) -> None:
    truth = json.loads((book / "truth.json").read_text())
    for key in ("seed", "customers", "kind", "rng", "time_unit", "dates", "labels", "covariates",
                "mechanisms", "drivers", "params", "rows"):
        assert key in truth, key
    assert truth["time_unit"] == "week" and truth["customers"] == 20_000
    purchase = truth["params"]["purchase"]
    for key in ("r", "alpha0", "a0", "b0", "gamma_purch", "gamma_drop_a", "gamma_drop_b"):
        assert key in purchase
    assert set(truth["covariates"]["order"]) == set(truth["covariates"]["definitions"])
    assert truth["params"]["purchase"]["gamma_purch"]["employees"] == 0  # the placebo
    assert SynthParams.from_dict(truth["params"]) == SynthParams()
    assert truth["covariates"]["order"][:2] == ["onboarding", "onboarding_late"]
    assert truth["dates"]["as_of"] == str(BookSettings.from_yaml(book / "book.yaml").as_of)


def test_old_truth_without_the_threshold_still_reads() -> None:
    """A truth.json written before onboarding_late existed: its missing onboarding key takes the
    default and its coefficient mappings (without onboarding_late) are kept, so the old book's
    truth (no step) is rebuilt."""
    old = SynthParams().to_dict()
    del old["onboarding"]["threshold_days"]
    for section, key in (("purchase", "gamma_drop_a"), ("subscription", "gamma_churn_a")):
        del old[section][key]["onboarding_late"]
    params = SynthParams.from_dict(old)
    assert params.onboarding["threshold_days"] == 21
    assert "onboarding_late" not in params.purchase["gamma_drop_a"]
    assert "onboarding_late" not in params.subscription["gamma_churn_a"]
    assert params.purchase["r"] == SynthParams().purchase["r"]
    none = SynthParams.no_covariates()
    assert not none.purchase["gamma_drop_a"] and not none.subscription["gamma_churn_a"]


def test_bad_arguments_raise_named_errors(tmp_path: Path) -> None:
    with pytest.raises(SynthError, match=r"customers must be an integer >= 1; got 0"):
        generate(tmp_path / "x", customers=0)
    with pytest.raises(CxassetError, match="kind must be"):
        generate(tmp_path / "x", customers=10, kind="orders")  # type: ignore[arg-type]
    with pytest.raises(SynthError, match="seed"):
        generate(tmp_path / "x", customers=10, seed=-1)
    with pytest.raises(SynthError, match="exactly one of shift or scale"):
        Intervention("onboarding_days", shift=1, scale=2)
    with pytest.raises(SynthError, match="driver 'nps' is unknown"):
        Intervention("nps", shift=1)
    with pytest.raises(SynthError, match="segment"):
        Intervention("effort", shift=1, segment="retail")
    with pytest.raises(SynthError, match="truth.json"):
        simulate_future(tmp_path, 30)


# ---------------------------------------------------------------------------------------------
# determinism


def test_same_seed_same_book_whatever_the_chunk_size(tmp_path: Path) -> None:
    done: list[int] = []
    generate(tmp_path / "a", customers=2_500, seed=3, chunk_size=1_000, progress=done.append)
    generate(tmp_path / "b", customers=2_500, seed=3, chunk_size=200_000)
    generate(tmp_path / "c", customers=2_500, seed=4)
    assert done == [1_000, 2_000, 2_500]
    for t in TABLES_T:
        a, b, c = (pq.read_table(tmp_path / d / f"{t}.parquet") for d in "abc")
        assert a.equals(b), t
        if t != "referrals":
            assert not a.equals(c), t
    generate(tmp_path / "b2", customers=2_500, seed=3)
    assert digest(tmp_path / "b") == digest(tmp_path / "b2")


# ---------------------------------------------------------------------------------------------
# planted effects are visible in the data


def test_longer_onboarding_fewer_repeat_purchases(book: Path) -> None:
    c = per_customer(book)
    smb = c[c.segment == "smb"]
    rate = smb.repeat / smb["T"]
    fast, slow = rate[smb.onb <= 6].mean(), rate[smb.onb >= 16].mean()
    assert slow < 0.85 * fast, (fast, slow)
    big = smb.employees > smb.employees.median()  # the placebo: no effect within a segment
    assert 0.88 < rate[big].mean() / rate[~big].mean() < 1.12


def test_planted_onboarding_threshold_is_visible(book: Path, subs: Path) -> None:
    """Dropout and churn jump once onboarding takes more than threshold_days (21) days."""
    assert SynthParams().onboarding["threshold_days"] == 21
    st = true_state(book)
    days = st.onboarding_days

    def p_drop(lo: int, hi: int) -> float:
        return float(st.p_drop[days.between(lo, hi)].mean())

    step = p_drop(22, 24) / p_drop(19, 21)  # across the threshold: linear part and the jump
    slope = p_drop(19, 21) / p_drop(16, 18)  # below it: the linear part only
    assert step > 1.35 and slope < 1.15 and step > slope + 0.25, (step, slope)
    dropped = ~st.alive_at_as_of
    early, late = days.between(15, 21), days.between(22, 28)
    assert dropped[late].mean() > dropped[early].mean() + 0.08
    assert st.theta[late].mean() > 1.4 * st.theta[early].mean()
    c = read(subs, "customers").merge(read(subs, "subscriptions")[["customer_id", "ended_at"]])
    onb = (c.onboarded_at - c.acquired_at).dt.days  # observed in the book
    churned = c.ended_at.notna()
    assert churned[onb.between(22, 28)].mean() > churned[onb.between(15, 21)].mean() + 0.1


def test_higher_effort_more_contacts_and_more_phone(book: Path) -> None:
    c = per_customer(book)
    rate = c.contacts / c["T"]
    low, high = rate[c.effort <= 3].mean(), rate[c.effort >= 5].mean()
    assert high > 1.5 * low, (low, high)
    inter = read(book, "interactions")
    phone = inter.channel == "phone"
    assert phone[inter.effort >= 5].mean() > phone[inter.effort <= 3].mean() + 0.05


def test_promoters_refer_more(book: Path) -> None:
    c = per_customer(book)
    rate = c.referrals / c["T"]
    detractors, promoters = rate[c.nps <= 6].mean(), rate[c.nps >= 9].mean()
    assert promoters > 1.8 * detractors, (detractors, promoters)


def test_engagement_relates_to_purchases_and_survey_response(book: Path) -> None:
    c = per_customer(book)
    st = true_state(book).set_index("customer_id")
    eng = st.engagement
    assert c.repeat[eng > 1].mean() > 1.3 * c.repeat[eng < -1].mean()
    assert c.nps[eng > 1].notna().mean() > c.nps[eng < -1].notna().mean() + 0.1
    sessions = read(book, "engagement").groupby("customer_id")["count"].sum()
    assert np.corrcoef(eng.loc[sessions.index], np.log(sessions))[0, 1] > 0.3


# ---------------------------------------------------------------------------------------------
# empirical moments match the planted parameters (no-covariate BG/NBD, Gamma-Gamma, sBG)


def test_bgnbd_moments_match_truth(tmp_path: Path) -> None:
    params = SynthParams.no_covariates()
    generate(tmp_path / "b", customers=20_000, seed=11, params=params)
    c = per_customer(tmp_path / "b")
    pu = params.purchase
    r, alpha, a, b = pu["r"], pu["alpha0"], pu["a0"], pu["b0"]
    t = c["T"].to_numpy()
    p_zero = (alpha / (alpha + t)) ** r
    assert abs((c.repeat == 0).mean() - p_zero.mean()) < 0.015
    ex = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r
                                  * hyp2f1(r, b, a + b - 1, t / (alpha + t)))
    se = c.repeat.std() / np.sqrt(len(c))
    assert abs(c.repeat.mean() - ex.mean()) < 4 * se, (c.repeat.mean(), ex.mean(), se)
    sp = params.spend
    mean_spend = read(tmp_path / "b", "transactions").groupby("customer_id").amount.mean()
    expected = sp["p"] * sp["gamma"] / (sp["q"] - 1)
    assert abs(mean_spend.mean() / expected - 1) < 0.04
    mbg = SynthParams.no_covariates(model="mbgnbd")
    generate(tmp_path / "m", customers=5_000, seed=11, params=mbg)
    m = per_customer(tmp_path / "m")
    assert (m.repeat == 0).mean() > (c.repeat == 0).mean() + 0.05


def test_sbg_survival_matches_truth(tmp_path: Path) -> None:
    params = SynthParams.no_covariates()
    generate(tmp_path / "s", customers=10_000, seed=5, kind="subscriptions", params=params)
    sub = read(tmp_path / "s", "subscriptions")
    cal = S.Calendar.of(params)
    acq_day = (sub.started_at - pd.Timestamp(cal.start)).dt.days.to_numpy()
    m = S.renewals_by(acq_day, cal.as_of, cal)
    al, be = params.subscription["alpha0"], params.subscription["beta0"]
    survive = np.exp(betaln(al, be + m) - betaln(al, be))  # P(months paid > m) under sBG
    assert abs(sub.ended_at.isna().mean() - survive.mean()) < 0.02
    revenue = sub.plan.map(params.subscription["plan_revenue"])
    assert (sub.recurring_revenue == revenue).all()


# ---------------------------------------------------------------------------------------------
# the counterfactual future


def test_simulate_future_is_deterministic(book: Path) -> None:
    a = simulate_future(book, 182)
    assert a.equals(simulate_future(book, 182))
    assert not a.equals(simulate_future(book, 182, seed=99))
    assert len(a) == 20_000 and a.customer_id.is_unique
    assert (a.future_transactions[~a.alive_at_as_of] == 0).all()
    assert (a.alive_at_end <= a.alive_at_as_of).all()
    truth = true_state(book)
    assert (truth.alive_at_as_of.to_numpy() == a.alive_at_as_of.to_numpy()).all()


def test_onboarding_intervention_moves_only_its_segment(book: Path) -> None:
    before = digest(book)
    base = simulate_future(book, 364)
    shorter = simulate_future(book, 364, intervention=Intervention(
        "onboarding_days", shift=-3, segment="smb"))
    assert digest(book) == before  # the past is untouched
    smb = base.segment == "smb"
    assert base[~smb].equals(shorter[~smb])  # common random numbers
    assert (base.alive_at_as_of == shorter.alive_at_as_of).all()
    b, s = base[smb], shorter[smb]
    assert (s.future_transactions >= b.future_transactions).all()
    assert s.future_transactions.sum() > b.future_transactions.sum()
    assert s.alive_at_end.sum() > b.alive_at_end.sum()
    assert s.future_spend.sum() > b.future_spend.sum()
    longer = simulate_future(book, 364, intervention=Intervention("onboarding_days", scale=2.0))
    assert longer.future_transactions.sum() < base.future_transactions.sum()


def book_state(book: Path) -> tuple[SynthParams, dict[str, np.ndarray]]:
    """The true latent state of every customer of ``book`` (replayed from its truth.json)."""
    truth = json.loads((book / "truth.json").read_text())
    params = SynthParams.from_dict(truth["params"])
    n = truth["customers"]
    blocks = list(range(-(-n // S.BLOCK)))
    sizes = [min(S.BLOCK, n - b * S.BLOCK) for b in blocks]
    return params, S.latent_state(params, truth["seed"], blocks, sizes, S.Calendar.of(params))


def test_onboarding_intervention_crosses_the_threshold(book: Path) -> None:
    """Shifting onboarding by -3 days moves customers at 22-24 days below the threshold: their
    dropout a_i and churn alpha_i fall by the linear part and the planted jump; customers away
    from the threshold only by the linear part."""
    params, st = book_state(book)
    new, touched = Intervention("onboarding_days", shift=-3).apply(params, st)
    a, b, lam = S.purchase_params(params, st)
    a2, b2, lam2 = S.purchase_params(params, new)
    al, _ = S.churn_params(params, st)
    al2, _ = S.churn_params(params, new)
    ob = params.onboarding
    linear = params.purchase["gamma_drop_a"]["onboarding"] * -3 / ob["scale_days"]
    jump = params.purchase["gamma_drop_a"]["onboarding_late"]
    assert jump == params.subscription["gamma_churn_a"]["onboarding_late"] == 0.5
    days, never = st["onboarding_days"], st["never_onboarded"]
    cross = ~never & (days > ob["threshold_days"]) & (days - 3 <= ob["threshold_days"])
    far = ~never & (((days >= 3) & (days <= 18)) | ((days >= 25) & (days <= ob["cap_days"])))
    assert cross.sum() > 500 and far.sum() > 10_000
    assert np.array_equal(cross, ~never & (days >= 22) & (days <= 24))
    np.testing.assert_allclose(np.log(a2 / a)[cross], linear - jump)
    np.testing.assert_allclose(np.log(a2 / a)[far], linear)
    np.testing.assert_allclose(np.log(al2 / al)[cross], linear - jump)
    np.testing.assert_allclose(np.log(al2 / al)[far], linear)
    assert (a2[never] == a[never]).all() and not touched[never].any()
    np.testing.assert_array_equal(b2, b)  # gamma_drop_b is 0
    # the true dropout probability moves to the same quantile of the new Beta: down for
    # everyone moved, by much more for those who cross the threshold
    p, p2 = st["p_drop"], _recouple(a, b, a2, b2, st["p_drop"])
    assert (p2[cross | far] <= p[cross | far]).all()
    drop = 1 - p2 / p
    assert np.mean(drop[cross]) > 2 * np.mean(drop[far]), (
        np.mean(drop[cross]), np.mean(drop[far]))
    ratio = np.log(lam2 / lam)  # purchase rate: linear part only (no onboarding_late term)
    np.testing.assert_allclose(ratio[cross], ratio[far][0])


def test_placebo_and_effort_interventions(book: Path) -> None:
    base = simulate_future(book, 364)
    placebo = simulate_future(book, 364, intervention=Intervention("employees", scale=10.0))
    assert placebo.equals(base)
    easier = simulate_future(book, 364, intervention=Intervention("effort", shift=-1.0))
    alive = base.alive_at_as_of
    rate_b = base.future_contacts[alive].sum() / base.future_transactions[alive].clip(1).sum()
    rate_e = easier.future_contacts[alive].sum() / easier.future_transactions[alive].clip(1).sum()
    assert rate_e < 0.75 * rate_b
    assert easier.alive_at_end.sum() > base.alive_at_end.sum()  # via satisfaction
    assert (easier.future_service_cost.sum() < base.future_service_cost.sum())


def test_subscription_future_and_intervention(subs: Path) -> None:
    base = simulate_future(subs, 364)
    assert {"churned", "periods_active"} <= set(base.columns)
    assert (base.churned == (base.alive_at_as_of & ~base.alive_at_end)).all()
    assert base.periods_active.between(0, 12).all()
    assert (base.future_transactions == base.periods_active).all()
    better = simulate_future(subs, 364, intervention=Intervention("satisfaction", shift=1.0,
                                                                  segment="mid"))
    mid = base.segment == "mid"
    assert base[~mid].equals(better[~mid])
    assert better.churned[mid].sum() < base.churned[mid].sum()
    assert (better.periods_active[mid] >= base.periods_active[mid]).all()
