"""Features: known answers (a hand-computed book, the published CDNOW summary), portability across
ibis backends, and no leakage past the cut-off."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest

from cxasset.book import Book, BookSettings, Workspace
from cxasset.exceptions import BookError, BookWarning
from cxasset.features import (
    FeatureWindow,
    cohort_survival,
    customer_features,
    feature_frame,
    feature_ids,
    lifetimes,
    person_periods,
    workspace_features,
)

TINY = Path(__file__).parent / "tiny"
SHARED = Path(__file__).parents[3] / "shared" / "data"
CAL_END = dt.date(2024, 1, 20)


def ingest(path: Path, ws_dir: Path) -> Workspace:
    ws = Workspace(ws_dir)
    with pytest.warns(BookWarning) if path == TINY else _nothing():
        ws.ingest(path)
    return ws


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.fixture(scope="module")
def tiny_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return ingest(TINY, tmp_path_factory.mktemp("tiny") / "ws")


def by_id(df: pd.DataFrame) -> dict[int, dict[str, object]]:
    return {int(r["customer_id"]): r for r in df.to_dict("records")}


# --------------------------------------------------------------------------- hand-computed book
def test_tiny_book_calibration_features(tiny_ws: Workspace) -> None:
    f = by_id(workspace_features(tiny_ws, calibration_end=CAL_END).to_pandas())
    # customer 3 was acquired after the cut-off: not a customer yet
    assert sorted(f) == [1, 2]
    c1, c2 = f[1], f[2]
    # two purchases on 2024-01-01 are one transaction; the refund is netted against repeat spend
    assert (c1["frequency"], c1["recency"], c1["T"], c1["monetary_value"]) == (1, 10.0, 19.0, 15.0)
    assert (c2["frequency"], c2["recency"], c2["T"], c2["monetary_value"]) == (0, 0.0, 14.0, 0.0)
    # holdout: 2024-01-21 and 2024-01-31 (as_of is inclusive), 11 days
    assert (c1["frequency_holdout"], c1["spend_holdout"], c1["duration_holdout"]) == (2, 37.0, 11.0)
    assert (c2["frequency_holdout"], c2["spend_holdout"]) == (0, 0.0)
    # exposure counts both ends: 2024-01-01..2024-01-20 is 20 days
    assert (c1["exposure"], c1["tenure"], c2["exposure"], c2["tenure"]) == (20.0, 19.0, 16.0, 15.0)
    # surveys up to the cut-off only: the NPS of 2 on 2024-01-25 is not seen
    assert (c1["nps"], c1["nps_mean"], c1["nps_class"], c1["nps_responses"]) == (
        9.0, 7.5, "promoter", 2)
    assert pd.isna(c2["nps"]) and c2["nps_class"] is None and c2["nps_responses"] == 0
    assert (c1["csat"], c2["csat"]) == (4.0, 2.0)
    # CES mixes survey answers (3, metric written 'CES') and interaction effort (5)
    assert (c1["ces"], c2["ces"]) == (4.0, 2.0)
    # contacts: phone costs its channel unit cost 5.0, chat its own cost 2.5; email has no cost
    assert c1["contacts"] == 2 and c1["contacts_per_period"] == pytest.approx(2 / 20)
    assert c1["contacts_per_period_phone"] == pytest.approx(1 / 20)
    assert c1["contacts_per_period_chat"] == pytest.approx(1 / 20)
    assert c2["contacts_per_period_email"] == pytest.approx(1 / 16)
    assert c1["cost_to_serve_per_period"] == pytest.approx(7.5 / 20)
    assert c2["cost_to_serve_per_period"] == 0.0
    assert (c1["referrals"], c1["referrals_per_period"]) == (1, pytest.approx(1 / 20))
    assert c2["referrals"] == 0
    # engagement counts default to 1
    assert c1["engagement_per_period"] == pytest.approx(4 / 20)
    assert c2["engagement_per_period"] == 0.0
    assert (c1["onboarding_days"], c1["onboarded"]) == (3.0, True)
    assert pd.isna(c2["onboarding_days"]) and not c2["onboarded"]
    assert (c1["segment"], c1["employees"]) == ("a", 10.0)


def test_tiny_book_full_window(tiny_ws: Workspace) -> None:
    f = by_id(workspace_features(tiny_ws).to_pandas())
    assert sorted(f) == [1, 2, 3]
    c1 = f[1]
    assert (c1["frequency"], c1["recency"], c1["T"]) == (3, 30.0, 30.0)
    assert c1["monetary_value"] == pytest.approx((20 + 30 + 7 - 5) / 3)
    assert (c1["nps"], c1["nps_class"]) == (2.0, "detractor")
    assert "frequency_holdout" not in workspace_features(tiny_ws).columns


def test_canonical_feature_names(tiny_ws: Workspace) -> None:
    cols = set(workspace_features(tiny_ws).columns)
    canonical = {"frequency", "recency", "T", "monetary_value", "nps", "nps_class", "csat", "ces",
                 "onboarding_days", "contacts_per_period", "cost_to_serve_per_period",
                 "referrals_per_period", "engagement_per_period", "tenure", "segment"}
    assert canonical <= cols


def test_week_period_scales_times(tiny_ws: Workspace) -> None:
    tables = {n: tiny_ws.table(n) for n in tiny_ws.tables()}
    weekly = tiny_ws.settings.model_copy(update={"period": "week"})
    f = by_id(customer_features(tables, weekly, calibration_end=CAL_END).to_pandas())
    assert f[1]["T"] == pytest.approx(19 / 7)
    assert f[1]["contacts_per_period"] == pytest.approx(2 / (20 / 7))


def test_calibration_end_must_precede_as_of() -> None:
    s = BookSettings(as_of=dt.date(2024, 1, 31))
    with pytest.raises(BookError, match=r"calibration_end \(2024-02-01\) must be before as_of"):
        FeatureWindow.resolve(s, calibration_end=dt.date(2024, 2, 1))


# --------------------------------------------------------------------------- CDNOW known answer
@pytest.fixture(scope="module")
def cdnow_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return ingest(SHARED / "cdnow_sample", tmp_path_factory.mktemp("cdnow") / "ws")


def test_cdnow_rfm_equals_published_summary(cdnow_ws: Workspace) -> None:
    """Fader, Hardie & Lee (2005): the 39-week calibration RFM summary of the CDNOW sample
    (shared/data/published/cdnow_summary.csv, rounded to 2 decimals)."""
    f = workspace_features(cdnow_ws, calibration_end=dt.date(1997, 9, 30)).to_pandas()
    pub = pd.read_csv(SHARED / "published" / "cdnow_summary.csv")
    assert len(f) == len(pub) == 2357
    f = f.set_index("customer_id").loc[pub.ID]
    np.testing.assert_array_equal(f.frequency.to_numpy(), pub.x.to_numpy())
    for ours, theirs in (("recency", "t_x"), ("T", "T"), ("monetary_value", "zbar")):
        np.testing.assert_allclose(f[ours].to_numpy(), pub[theirs].to_numpy(), rtol=0,
                                   atol=0.005 + 1e-9, err_msg=ours)
    assert (f.duration_holdout == 39).all()


# --------------------------------------------------------------------------- portability
def _frames(ws: Workspace) -> dict[str, pd.DataFrame]:
    return {n: ws.table(n).to_pandas() for n in ws.tables()}


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    a = a.sort_values("customer_id").reset_index(drop=True)
    b = b.sort_values("customer_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False, check_exact=False, rtol=1e-12)


@pytest.mark.parametrize("calibrated", [False, True])
def test_features_identical_on_polars(tiny_ws: Workspace, calibrated: bool) -> None:
    cal = CAL_END if calibrated else None
    duck = workspace_features(tiny_ws, calibration_end=cal).to_pandas()
    con = ibis.polars.connect()
    tables = {n: con.create_table(n, df) for n, df in _frames(tiny_ws).items()}
    pol = customer_features(tables, tiny_ws.settings, calibration_end=cal).to_pandas()
    _same(duck, pol)


def test_cdnow_features_identical_on_polars(cdnow_ws: Workspace) -> None:
    cal = dt.date(1997, 9, 30)
    duck = workspace_features(cdnow_ws, calibration_end=cal).to_pandas()
    con = ibis.polars.connect()
    tables = {n: con.create_table(n, df) for n, df in _frames(cdnow_ws).items()}
    _same(duck, customer_features(tables, cdnow_ws.settings, calibration_end=cal).to_pandas())


@pytest.mark.parametrize("kind", ["transactions", "subscriptions"])
@pytest.mark.parametrize("calibrated", [False, True])
def test_feature_frame_equals_ibis_to_pandas(synth_ws: Callable[..., Path], kind: str,
                                             calibrated: bool) -> None:
    """The Arrow hand-over gives exactly ibis' frame: same columns, dtypes (NULLs, text, flags)
    and values."""
    with Workspace(synth_ws(3000, 4, kind=kind)) as ws:
        cal = ws.settings.as_of - dt.timedelta(days=182) if calibrated else None
        ours = feature_frame(ws, calibration_end=cal)
        pd.testing.assert_frame_equal(ours, workspace_features(ws, calibration_end=cal)
                                      .to_pandas())
    assert ours.isna().to_numpy().any() and (ours.dtypes.astype(str) == "object").any()  # NULLs, text


@pytest.mark.parametrize("kind", ["transactions", "subscriptions"])
def test_features_of_some_customers_are_their_rows_of_the_whole_book(
        synth_ws: Callable[..., Path], kind: str) -> None:
    """Features computed for a sample alone (every table cut to it in the engine) equal the
    sample's rows of the whole book's frame, columns included (channels and survey metrics of
    the whole book, even when the sample never used one)."""
    with Workspace(synth_ws(3000, 4, kind=kind)) as ws:
        whole = feature_frame(ws)
        ids = feature_ids(ws)
        np.testing.assert_array_equal(ids, whole["customer_id"].to_numpy())
        rows = np.sort(np.random.default_rng(1).choice(len(ids), 40, replace=False))
        some = feature_frame(ws, customers=ids[rows])
        pd.testing.assert_frame_equal(some, whole.iloc[rows].reset_index(drop=True))
        one = feature_frame(ws, customers=ids[rows[:1]])
        assert list(one.columns) == list(whole.columns) and len(one) == 1


# --------------------------------------------------------------------------- no leakage
def test_no_leakage_after_cutoff(tiny_ws: Workspace, tmp_path: Path) -> None:
    """Events after the calibration end may change holdout columns and nothing else."""
    before = workspace_features(tiny_ws, calibration_end=CAL_END).to_pandas()
    book = tmp_path / "book"
    shutil.copytree(TINY, book)
    late = {
        "surveys.csv": "2,2024-01-21,nps,0\n1,2024-01-21,csat,1\n2,2024-01-30,ces,7\n",
        "transactions.csv": "2,2024-01-21,500.0\n1,2024-01-22,-100.0\n",
        "interactions.csv": "2,2024-01-21,phone,99.0,7\n",
        "referrals.csv": "2,2024-01-21,\n",
        "engagement.csv": "2,2024-01-21,login,50\n",
    }
    for name, rows in late.items():
        with open(book / name, "a") as fh:
            fh.write(rows)
    ws = Workspace(tmp_path / "ws")
    with pytest.warns(BookWarning):
        ws.ingest(book)
    after = workspace_features(ws, calibration_end=CAL_END).to_pandas()
    holdout = ["frequency_holdout", "spend_holdout"]
    _same(before.drop(columns=holdout), after.drop(columns=holdout))
    assert (after.set_index("customer_id").loc[2, "frequency_holdout"]) == 1


def test_in_memory_book_from_frames(tiny_ws: Workspace, tmp_path: Path) -> None:
    frames = _frames(tiny_ws)
    book = Book.from_tables(frames, tiny_ws.settings)
    ws = Workspace(tmp_path / "ws")
    with pytest.warns(BookWarning):
        ws.ingest(book)
    _same(workspace_features(tiny_ws).to_pandas(), workspace_features(ws).to_pandas())


# --------------------------------------------------------------------------- subscriptions
SUBS = pd.DataFrame({
    "customer_id": [1, 2, 3, 3, 4],
    "started_at": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-02-01", "2024-03-15",
                                  "2024-02-10"]),
    "recurring_revenue": [10.0, 20.0, 5.0, 7.0, 9.0],
    "ended_at": pd.to_datetime(["2024-02-20", None, "2024-03-01", None, "2024-06-01"]),
})
CUT = (dt.date(2024, 4, 30) - dt.date(1970, 1, 1)).days


@pytest.fixture(params=["duckdb", "polars"])
def subs(request: pytest.FixtureRequest) -> ibis.Table:
    return getattr(ibis, request.param).connect().create_table("subscriptions", SUBS)


def test_lifetimes(subs: ibis.Table) -> None:
    life = by_id(lifetimes(subs, CUT, 7.0).to_pandas())
    # 1: Jan 1 -> Feb 20 = 50 days, churned; 2: Jan 1 -> Apr 30 = 120 days, active
    assert (life[1]["active"], life[1]["n_periods"]) == (False, 8)
    assert (life[2]["active"], life[2]["n_periods"]) == (True, 17)  # completed periods
    assert (life[1]["tenure"], life[2]["tenure"]) == (pytest.approx(50 / 7), pytest.approx(120 / 7))
    # 3: first start Feb 1, a second subscription still running: active, revenue of the running one
    assert (life[3]["active"], life[3]["recurring_revenue"], life[3]["subscriptions"]) == (
        True, 7.0, 2)
    # 4 ends after the cut-off: still active at the cut-off (no leakage)
    assert life[4]["active"] and life[4]["recurring_revenue"] == 9.0


def test_person_periods(subs: ibis.Table) -> None:
    pp = person_periods(subs, CUT, 7.0).to_pandas().sort_values(["customer_id", "period"])
    one = pp[pp.customer_id == 1]
    assert one.period.tolist() == list(range(1, 9))
    assert one.churned.tolist() == [0] * 7 + [1]
    assert pp[pp.customer_id == 2].churned.sum() == 0
    assert len(pp) == 8 + 17 + 89 // 7 + 80 // 7


def test_cohort_survival(subs: ibis.Table) -> None:
    cs = cohort_survival(subs, CUT, 7.0)
    jan = cs[cs.cohort == "2024-01"].set_index("period")
    # two January starters: one churns in period 8, the other is censored after period 17
    assert jan.loc[7, "survival"] == 1.0 and jan.loc[8, "survival"] == 0.5
    assert jan.loc[8, "at_risk"] == 2 and jan.loc[9, "at_risk"] == 1
    assert jan.loc[17, "survival"] == 0.5


def test_timestamp_grain_counts_every_purchase_exactly(tiny_ws: Workspace) -> None:
    tables = {n: tiny_ws.table(n) for n in tiny_ws.tables()}
    exact = tiny_ws.settings.model_copy(update={"transaction_grain": "timestamp"})
    f = by_id(customer_features(tables, exact, calibration_end=CAL_END).to_pandas())
    c1 = f[1]
    # 09:00 and 17:30 on 2024-01-01 are two transactions; born at 09:00; T to the end of the cut-off day
    assert c1["frequency"] == 2
    assert c1["recency"] == pytest.approx(9 + 15 / 24)
    assert c1["T"] == pytest.approx(19 + 15 / 24)
    assert c1["monetary_value"] == pytest.approx((5 + 20 - 5) / 2)
    assert c1["frequency_holdout"] == 2
