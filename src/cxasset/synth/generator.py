"""Generate a synthetic customer book with planted, documented truth (``docs/synth.md``).

:func:`generate` draws customers in chunks, vectorised with numpy over customers and events,
and streams every chunk to Parquet, so memory stays flat in the number of customers. The result
is a book folder in the data contract of :mod:`cxasset.book` plus ``truth.json``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cxasset.synth import _state as S
from cxasset.synth._params import (
    ACQUISITION_CHANNELS,
    CHANNELS,
    COVARIATE_DEFINITIONS,
    COVARIATES,
    DRIVER_EFFECTS,
    MECHANISMS,
    PLANS,
    SEGMENTS,
    SynthError,
    SynthParams,
    small_design,
)

Kind = Literal["transactions", "subscriptions"]
TABLE_NAMES = ("customers", "transactions", "subscriptions", "interactions", "surveys",
               "referrals", "engagement")
_TS = pa.timestamp("us")
_US_PER_DAY = 86_400_000_000
SCHEMAS = {
    "customers": pa.schema([
        ("customer_id", pa.int64()), ("acquired_at", _TS), ("segment", pa.string()),
        ("acquisition_channel", pa.string()), ("acquisition_cost", pa.float64()),
        ("onboarded_at", _TS), ("employees", pa.int64()), ("training_hours", pa.float64())]),
    "transactions": pa.schema([
        ("customer_id", pa.int64()), ("occurred_at", _TS), ("amount", pa.float64()),
        ("transaction_id", pa.int64())]),
    "subscriptions": pa.schema([
        ("customer_id", pa.int64()), ("started_at", _TS), ("recurring_revenue", pa.float64()),
        ("ended_at", _TS), ("plan", pa.string())]),
    "interactions": pa.schema([
        ("customer_id", pa.int64()), ("occurred_at", _TS), ("channel", pa.string()),
        ("cost", pa.float64()), ("effort", pa.float64()), ("resolved", pa.bool_())]),
    "surveys": pa.schema([
        ("customer_id", pa.int64()), ("occurred_at", _TS), ("metric", pa.string()),
        ("score", pa.int64())]),
    "referrals": pa.schema([
        ("referrer_id", pa.int64()), ("occurred_at", _TS), ("referred_customer_id", pa.int64())]),
    "engagement": pa.schema([
        ("customer_id", pa.int64()), ("occurred_at", _TS), ("event", pa.string()),
        ("count", pa.int64())]),
}


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`generate` wrote: file paths and row counts per table, and the book's dates."""

    out_dir: Path
    kind: str
    customers: int
    seed: int
    as_of: dt.date
    calibration_end: dt.date
    paths: Mapping[str, Path] = field(default_factory=dict)
    rows: Mapping[str, int] = field(default_factory=dict)


def generate(out_dir: str | Path, customers: int = 10_000, seed: int = 0,
             kind: Kind = "transactions", chunk_size: int = 200_000,
             progress: Callable[[int], None] | None = None, *,
             params: SynthParams | None = None) -> SynthSummary:
    """Write a synthetic customer book with planted truth to folder ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        Folder to write (created if missing; files of an earlier synthetic book are replaced).
    customers : int, default=10_000
        Number of customers (> 0).
    seed : int, default=0
        Seed (>= 0). The book depends only on ``seed``, ``customers``, ``kind`` and ``params``,
        not on ``chunk_size``.
    kind : {"transactions", "subscriptions"}, default="transactions"
        Non-contractual (BG/NBD purchases) or contractual (monthly subscriptions) book.
    chunk_size : int, default=200_000
        Customers per chunk held in memory (rounded up to a multiple of 1000).
    progress : callable, optional
        Called with the number of customers done after each chunk.
    params : SynthParams, optional
        True parameters; default :class:`SynthParams` (the documented book).

    Returns
    -------
    SynthSummary
        Paths, row counts and dates of the book.

    Examples
    --------
    >>> from cxasset.synth import generate
    >>> summary = generate("book", customers=2_000, seed=1)  # doctest: +SKIP
    >>> summary.rows["customers"]  # doctest: +SKIP
    2000
    """
    _check_int("customers", customers, 1)
    _check_int("seed", seed, 0)
    _check_int("chunk_size", chunk_size, 1)
    if kind not in ("transactions", "subscriptions"):
        raise SynthError(f"kind must be 'transactions' or 'subscriptions'; got {kind!r}")
    params = params or SynthParams()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SynthError(f"out_dir {str(out)!r} exists and is not a folder; pass a folder path")
    out.mkdir(parents=True, exist_ok=True)
    other = "subscriptions" if kind == "transactions" else "transactions"
    (out / f"{other}.parquet").unlink(missing_ok=True)
    names = [t for t in TABLE_NAMES if t != other]
    cal = S.Calendar.of(params)
    n_blocks = -(-customers // S.BLOCK)
    per_chunk = max(1, -(-chunk_size // S.BLOCK))
    writers = {t: pq.ParquetWriter(out / f"{t}.parquet", SCHEMAS[t]) for t in names}
    rows = dict.fromkeys(names, 0)
    try:
        for b0 in range(0, n_blocks, per_chunk):
            blocks = list(range(b0, min(b0 + per_chunk, n_blocks)))
            sizes = [min(S.BLOCK, customers - b * S.BLOCK) for b in blocks]
            tables = _chunk(params, seed, blocks, sizes, cal, kind, rows.get("transactions", 0))
            for name, table in tables.items():
                writers[name].write_table(table)
                rows[name] += table.num_rows
            if progress is not None:
                progress(blocks[-1] * S.BLOCK + sizes[-1])
    finally:
        for w in writers.values():
            w.close()
    _write_settings(out, params, cal, kind)
    truth = truth_dict(params, seed=seed, customers=customers, kind=kind, rows=rows)
    (out / "truth.json").write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    return SynthSummary(out, kind, customers, seed, cal.date(cal.as_of),
                        cal.date(cal.calibration_end),
                        {t: out / f"{t}.parquet" for t in names}, rows)


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise SynthError(f"{name} must be an integer >= {low}; got {value!r}")


def truth_dict(params: SynthParams, *, seed: int, customers: int, kind: str,
               rows: Mapping[str, int]) -> dict[str, Any]:
    """The content of ``truth.json`` (layout documented in ``docs/synth.md``)."""
    from cxasset import __version__

    cal = S.Calendar.of(params)
    return {
        "format": "cxasset.synth/1",
        "cxasset_version": __version__,
        "seed": seed, "customers": customers, "kind": kind,
        "rng": {"block": S.BLOCK, "streams": S.STREAMS,
                "scheme": "default_rng(SeedSequence(seed, spawn_key=(block, stream))); "
                          "customer_id = block * block_size + row + 1"},
        "time_unit": "week", "currency": params.settings["currency"],
        "dates": {"start": cal.start.isoformat(),
                  "acquisition_end": cal.date(cal.acquisition_days - 1).isoformat(),
                  "calibration_end": cal.date(cal.calibration_end).isoformat(),
                  "as_of": cal.date(cal.as_of).isoformat()},
        "labels": {"segments": list(SEGMENTS), "baseline_segment": SEGMENTS[0],
                   "acquisition_channels": list(ACQUISITION_CHANNELS),
                   "channels": list(CHANNELS), "plans": list(PLANS)},
        "covariates": {"order": list(COVARIATES), "definitions": COVARIATE_DEFINITIONS},
        "mechanisms": MECHANISMS,
        "drivers": DRIVER_EFFECTS,
        "params": params.to_dict(),
        "rows": dict(rows),
    }


def _write_settings(out: Path, params: SynthParams, cal: S.Calendar, kind: str) -> None:
    """book.yaml; a subscription book of monthly contracts is measured in months (two years'
    horizon), so its retention models count renewals."""
    s = params.settings
    period, horizon = ("month", 24) if kind == "subscriptions" else (s["period"], s["horizon"])
    lines = [f"currency: {s['currency']}", f"period: {period}",
             f"as_of: {cal.date(cal.as_of).isoformat()}",
             f"calibration_end: {cal.date(cal.calibration_end).isoformat()}",
             f"margin_rate: {s['margin_rate']}", f"discount_rate: {s['discount_rate']}",
             "channel_costs:"]
    lines += [f"  {c}: {v}" for c, v in params.interactions["channel_costs"].items()]
    lines.append(f"horizon: {horizon}")
    (out / "book.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# one chunk of customers -> Arrow tables


def _ts(cal: S.Calendar, day: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    return pa.array((cal.epoch_day + day.astype(np.int64)) * _US_PER_DAY, type=_TS, mask=mask)


def _labels(values: tuple[str, ...], codes: np.ndarray) -> pa.Array:
    return pa.array(list(values), pa.string()).take(pa.array(codes.astype(np.int32)))


def _per_block(counts: np.ndarray, sizes: list[int]) -> np.ndarray:
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    return np.add.reduceat(counts, starts) if counts.size else np.zeros(len(sizes), np.int64)


def _events(rng: S.BlockRng, sizes: list[int], count: np.ndarray, span: np.ndarray,
            ) -> tuple[np.ndarray, np.ndarray]:
    """Customer index and time (weeks after acquisition) of ``count`` uniform events in ``span``."""
    cidx = np.repeat(np.arange(count.size), count)
    u = rng.draw(_per_block(count, sizes), lambda g, sl, n: g.random(n))
    return cidx, u * span[cidx]


def _day(st: dict[str, np.ndarray], cidx: np.ndarray, t: np.ndarray, cal: S.Calendar) -> np.ndarray:
    return np.minimum(st["acq_day"][cidx] + np.floor(7.0 * t).astype(np.int64), cal.as_of)


def _stamp(st: dict[str, np.ndarray], cidx: np.ndarray, t: np.ndarray, cal: S.Calendar
           ) -> pa.Array:
    """Exact purchase times (to the microsecond), so that a book read at
    ``transaction_grain: timestamp`` sees the planted continuous-time process itself."""
    us = np.round(7.0 * t * _US_PER_DAY).astype(np.int64)
    start = (cal.epoch_day + st["acq_day"][cidx].astype(np.int64)) * _US_PER_DAY
    end = (cal.epoch_day + cal.as_of + 1) * _US_PER_DAY - 1
    return pa.array(np.minimum(start + us, end), type=_TS)


def _sorted(cidx: np.ndarray, day: np.ndarray) -> np.ndarray:
    return np.lexsort((day, cidx))


def _chunk(params: SynthParams, seed: int, blocks: list[int], sizes: list[int],
           cal: S.Calendar, kind: str, tx_offset: int) -> dict[str, pa.Table]:
    st = S.latent_state(params, seed, blocks, sizes, cal)
    life = S.lifetime(params, seed, blocks, sizes, st, cal)
    ids = blocks[0] * S.BLOCK + 1 + np.arange(sum(sizes), dtype=np.int64)
    out = {"customers": _customers(st, ids, cal)}
    if kind == "transactions":
        out["transactions"], alive_weeks = _transactions(params, seed, blocks, sizes, st, life,
                                                         ids, cal, tx_offset)
    else:
        out["subscriptions"], alive_weeks = _subscriptions(params, st, life, ids, cal)
    out.update(_service(params, seed, blocks, sizes, st, alive_weeks, ids, cal))
    return out


def _customers(st: dict[str, np.ndarray], ids: np.ndarray, cal: S.Calendar) -> pa.Table:
    return pa.Table.from_arrays([
        pa.array(ids), _ts(cal, st["acq_day"]), _labels(SEGMENTS, st["segment"]),
        _labels(ACQUISITION_CHANNELS, st["channel"]), pa.array(st["acquisition_cost"]),
        _ts(cal, st["acq_day"] + st["onboarding_days"], mask=~st["onboarded"]),
        pa.array(st["employees"]), pa.array(st["training_hours"])], schema=SCHEMAS["customers"])


def _transactions(params: SynthParams, seed: int, blocks: list[int], sizes: list[int],
                  st: dict[str, np.ndarray], life: dict[str, np.ndarray], ids: np.ndarray,
                  cal: S.Calendar, offset: int) -> tuple[pa.Table, np.ndarray]:
    """First purchase at acquisition, then the first ``min(J, N)`` of ``N`` uniform times."""
    rng = S.BlockRng(seed, blocks, "purchases")
    n_opp, j, t_weeks = life["N"], life["J"], life["T"]
    cidx, t = _events(rng, sizes, n_opp, t_weeks)
    order = np.argsort(cidx + t / (t_weeks[cidx] + 1.0), kind="stable")
    t = t[order]
    first = np.concatenate([[0], np.cumsum(n_opp)[:-1]]).astype(np.int64)
    rank = np.arange(cidx.size) - first[cidx]
    x = np.minimum(j, n_opp)
    keep = rank < x[cidx]
    alive_weeks = t_weeks.copy()
    died = ~life["alive_tx"] & (j >= 1)
    alive_weeks[died] = t[first[died] + j[died] - 1]
    alive_weeks[j == 0] = 0.0
    n = ids.size
    cust = np.concatenate([np.arange(n), cidx[keep]])
    tt = np.concatenate([np.zeros(n), t[keep]])
    o = np.lexsort((tt, cust))
    cust, tt = cust[o], tt[o]
    sp, nu = params.spend, st["nu"]
    amount = rng.draw(_per_block(1 + x, sizes),
                      lambda g, sl, m: g.gamma(sp["p"], 1.0 / nu[cust[sl]]))
    amount = np.maximum(np.round(amount, 2), 0.01)
    table = pa.Table.from_arrays([
        pa.array(ids[cust]), _stamp(st, cust, tt, cal), pa.array(amount),
        pa.array(offset + 1 + np.arange(cust.size, dtype=np.int64))],
        schema=SCHEMAS["transactions"])
    return table, alive_weeks


def _subscriptions(params: SynthParams, st: dict[str, np.ndarray], life: dict[str, np.ndarray],
                   ids: np.ndarray, cal: S.Calendar) -> tuple[pa.Table, np.ndarray]:
    alive = life["alive_sub"]
    revenue = np.array([params.subscription["plan_revenue"][p] for p in PLANS])[st["plan"]]
    alive_weeks = np.where(alive, life["T"], (life["end_day"] - st["acq_day"]) / 7.0)
    table = pa.Table.from_arrays([
        pa.array(ids), _ts(cal, st["acq_day"]), pa.array(revenue),
        _ts(cal, np.minimum(life["end_day"], cal.as_of), mask=alive), _labels(PLANS, st["plan"])],
        schema=SCHEMAS["subscriptions"])
    return table, alive_weeks


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def channel_probs(params: SynthParams, effort: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Multinomial-logit channel probabilities (customers x :data:`CHANNELS`)."""
    it = params.interactions
    u = (np.array([it["utility0"][c] for c in CHANNELS])[None, :]
         + np.outer(effort, [it["utility_effort"][c] for c in CHANNELS])
         + np.outer(segment == 1, [it["utility_mid"][c] for c in CHANNELS])
         + np.outer(segment == 2, [it["utility_enterprise"][c] for c in CHANNELS]))
    e = np.exp(u - u.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def rates(params: SynthParams, st: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Weekly contact, referral and engagement-session rates of each customer while alive."""
    kw = dict(effort=st["effort"], segment=st["segment"], satisfaction=st["satisfaction"],
              engagement=st["engagement"])
    out = {}
    for name in ("interactions", "referrals", "engagement"):
        spec = getattr(params, name)
        out[name] = spec["rate0"] * np.exp(small_design(spec["beta"], **kw))
    return out


def _service(params: SynthParams, seed: int, blocks: list[int], sizes: list[int],
             st: dict[str, np.ndarray], alive: np.ndarray, ids: np.ndarray, cal: S.Calendar,
             ) -> dict[str, pa.Table]:
    """Interactions, surveys, referrals and engagement while alive (``alive`` weeks each)."""
    rate = rates(params, st)
    it, sv = params.interactions, params.surveys
    # interactions
    rng = S.BlockRng(seed, blocks, "interactions")
    m = alive.size
    count = rng.draw(sizes, lambda g, sl, n: g.poisson(rate["interactions"][sl] * alive[sl]))
    ci, t = _events(rng, sizes, count, alive)
    ev = _per_block(count, sizes)
    ch = S.categorical(rng.draw(ev, lambda g, sl, n: g.random(n)),
                channel_probs(params, st["effort"][ci], st["segment"][ci]))
    eff = np.clip(np.round(it["effort_intercept"] + it["effort_slope"] * st["effort"][ci]
                           + it["effort_noise_sd"] * rng.draw(ev, lambda g, sl, n:
                                                              g.standard_normal(n))), 1, 7)
    eff[rng.draw(ev, lambda g, sl, n: g.random(n)) < it["effort_missing"]] = np.nan
    res_c = np.array([it["resolved_channel"][c] for c in CHANNELS])
    resolved = rng.draw(ev, lambda g, sl, n: g.random(n)) < _sigmoid(
        it["resolved_intercept"] + it["resolved_effort"] * st["effort"][ci] + res_c[ch])
    day = _day(st, ci, t, cal)
    o = _sorted(ci, day)
    ci, day, ch, eff, resolved = ci[o], day[o], ch[o], eff[o], resolved[o]
    cost = np.array([it["channel_costs"][c] for c in CHANNELS])[ch]
    out = {"interactions": pa.Table.from_arrays([
        pa.array(ids[ci]), _ts(cal, day), _labels(CHANNELS, ch), pa.array(cost),
        pa.array(eff, mask=np.isnan(eff)), pa.array(resolved)], schema=SCHEMAS["interactions"])}
    # surveys: relationship NPS while alive, CSAT and CES after contacts
    rng = S.BlockRng(seed, blocks, "surveys")
    unif = lambda g, sl, n: g.random(n)  # noqa: E731
    norm = lambda g, sl, n: g.standard_normal(n)  # noqa: E731
    invites = rng.draw(sizes, lambda g, sl, n: g.poisson(sv["nps_invite_rate"] * alive[sl]))
    ni, nt = _events(rng, sizes, invites, alive)
    iv = _per_block(invites, sizes)
    eng, sat, effort = st["engagement"], st["satisfaction"], st["effort"]
    answer = rng.draw(iv, unif) < _sigmoid(sv["nps_response_intercept"]
                                           + sv["nps_response_engagement"] * eng[ni])
    nps = np.clip(np.round(sv["nps_intercept"] + sv["nps_satisfaction"] * sat[ni]
                           + sv["nps_noise_sd"] * rng.draw(iv, norm)), 0, 10)
    p_post = _sigmoid(sv["post_contact_response_intercept"]
                      + sv["post_contact_response_engagement"] * eng[ci])
    csat_ok = rng.draw(ev, unif) < p_post
    csat = np.clip(np.round(sv["csat_intercept"] + sv["csat_satisfaction"] * sat[ci]
                            + sv["csat_effort"] * effort[ci] + sv["csat_resolved"] * resolved
                            + sv["csat_noise_sd"] * rng.draw(ev, norm)), 1, 5)
    ces_ok = rng.draw(ev, unif) < p_post
    ces = np.clip(np.round(sv["ces_intercept"] + sv["ces_effort"] * effort[ci]
                           + sv["ces_noise_sd"] * rng.draw(ev, norm)), 1, 7)
    s_c = np.concatenate([ni[answer], ci[csat_ok], ci[ces_ok]])
    s_d = np.concatenate([_day(st, ni[answer], nt[answer], cal), day[csat_ok], day[ces_ok]])
    s_m = np.concatenate([np.zeros(answer.sum(), np.int8), np.ones(csat_ok.sum(), np.int8),
                          np.full(ces_ok.sum(), 2, np.int8)])
    s_v = np.concatenate([nps[answer], csat[csat_ok], ces[ces_ok]]).astype(np.int64)
    o = np.lexsort((s_m, s_d, s_c))
    out["surveys"] = pa.Table.from_arrays([
        pa.array(ids[s_c[o]]), _ts(cal, s_d[o]), _labels(("nps", "csat", "ces"), s_m[o]),
        pa.array(s_v[o])], schema=SCHEMAS["surveys"])
    # referrals
    rng = S.BlockRng(seed, blocks, "referrals")
    count = rng.draw(sizes, lambda g, sl, n: g.poisson(rate["referrals"][sl] * alive[sl]))
    ri, rt = _events(rng, sizes, count, alive)
    rd = _day(st, ri, rt, cal)
    o = _sorted(ri, rd)
    out["referrals"] = pa.Table.from_arrays([
        pa.array(ids[ri[o]]), _ts(cal, rd[o]), pa.nulls(ri.size, pa.int64())],
        schema=SCHEMAS["referrals"])
    # engagement: weekly session counts from acquisition while alive
    rng = S.BlockRng(seed, blocks, "engagement")
    weeks = np.ceil(alive).astype(np.int64)
    wi = np.repeat(np.arange(m), weeks)
    k = np.arange(wi.size) - np.repeat(np.cumsum(weeks) - weeks, weeks)
    mu = rate["engagement"][wi] * np.minimum(1.0, alive[wi] - k)
    sessions = rng.draw(_per_block(weeks, sizes), lambda g, sl, n: g.poisson(mu[sl]))
    on = sessions > 0
    wi, k, sessions = wi[on], k[on], sessions[on]
    out["engagement"] = pa.Table.from_arrays([
        pa.array(ids[wi]), _ts(cal, st["acq_day"][wi] + 7 * k),
        _labels((params.engagement["event"],), np.zeros(wi.size, np.int32)),
        pa.array(sessions.astype(np.int64))],
        schema=SCHEMAS["engagement"])
    return out
