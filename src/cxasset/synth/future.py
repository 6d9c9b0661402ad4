"""The true future of a synthetic book, with and without an intervention on a CX driver.

:func:`simulate_future` rebuilds every customer's latent state at ``as_of`` from ``truth.json``
(replaying the book's own random streams) and simulates the next ``horizon_days``. Future draws
are per-customer uniforms turned into outcomes by monotone inverse CDFs, so an
:class:`Intervention` changes outcomes only through the changed parameters (common random
numbers): customers it does not touch get bit-identical outcomes, touched ones move in the
direction of the planted effect. The past is never re-simulated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import special
from scipy.stats import poisson

from cxasset.synth import _state as S
from cxasset.synth._params import CHANNELS, DRIVER_EFFECTS, PLANS, SEGMENTS, SynthError, SynthParams
from cxasset.synth.generator import channel_probs, rates

_CHUNK_BLOCKS = 200


@dataclass(frozen=True)
class Intervention:
    """Change one driver from ``as_of`` on: ``x' = x + shift`` or ``x' = x * scale``.

    Parameters
    ----------
    driver : str
        One of ``onboarding_days``, ``training_hours``, ``employees`` (placebo),
        ``satisfaction``, ``effort``, ``engagement`` (latent ones in standard deviations).
        What each moves is in ``DRIVER_EFFECTS`` and ``docs/synth.md``.
    shift, scale : float, optional
        Exactly one of them.
    segment : str, optional
        Only customers of this segment (``smb``, ``mid``, ``enterprise``); default all.
    """

    driver: str
    shift: float | None = None
    scale: float | None = None
    segment: str | None = None

    def __post_init__(self) -> None:
        if self.driver not in DRIVER_EFFECTS:
            raise SynthError(f"Intervention driver {self.driver!r} is unknown; valid drivers: "
                             f"{', '.join(DRIVER_EFFECTS)}")
        if (self.shift is None) == (self.scale is None):
            raise SynthError(f"Intervention needs exactly one of shift or scale; got "
                             f"shift={self.shift!r}, scale={self.scale!r}")
        if self.segment is not None and self.segment not in SEGMENTS:
            raise SynthError(f"Intervention segment {self.segment!r} is unknown; valid segments: "
                             f"{', '.join(SEGMENTS)}")

    def _move(self, x: np.ndarray) -> np.ndarray:
        return x * self.scale if self.scale is not None else x + float(self.shift or 0.0)

    def apply(self, params: SynthParams, st: dict[str, np.ndarray],
              ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The state with the driver changed, and the mask of customers it touches."""
        mask = np.ones(st["segment"].size, bool)
        if self.segment is not None:
            mask = st["segment"] == SEGMENTS.index(self.segment)
        new = dict(st)
        d = self.driver
        if d == "onboarding_days":
            mask = mask & ~st["never_onboarded"]
            moved = np.maximum(self._move(st[d].astype(float)), 0.0)
        elif d == "training_hours":
            moved = np.maximum(self._move(st[d]), 0.0)
        elif d == "employees":
            moved = np.maximum(self._move(st[d].astype(float)), 1.0)
        else:
            moved = self._move(st[d])
        new[d] = np.where(mask, moved, st[d])
        if d == "effort":
            rho = params.latent["effort_satisfaction_rho"]
            new["satisfaction"] = st["satisfaction"] + rho * (new["effort"] - st["effort"])
        return new, mask


def _read_truth(book_dir: str | Path) -> dict[str, Any]:
    path = Path(book_dir) / "truth.json"
    if not path.is_file():
        raise SynthError(f"{path} not found: book_dir must be a book written by "
                         "cxasset.synth.generate")
    truth = json.loads(path.read_text(encoding="utf-8"))
    if truth.get("rng", {}).get("block") != S.BLOCK:
        raise SynthError(f"{path}: written with random block {truth.get('rng')}, this version "
                         f"uses {S.BLOCK}; regenerate the book")
    return truth


def _chunks(customers: int) -> list[tuple[list[int], list[int]]]:
    n_blocks = -(-customers // S.BLOCK)
    out = []
    for b0 in range(0, n_blocks, _CHUNK_BLOCKS):
        blocks = list(range(b0, min(b0 + _CHUNK_BLOCKS, n_blocks)))
        out.append((blocks, [min(S.BLOCK, customers - b * S.BLOCK) for b in blocks]))
    return out


def _recouple(a: np.ndarray, b: np.ndarray, a2: np.ndarray, b2: np.ndarray, x: np.ndarray,
              ) -> np.ndarray:
    """``x ~ Beta(a, b)`` moved to the same quantile of ``Beta(a2, b2)`` where those differ."""
    out = x.copy()
    ch = (a2 != a) | (b2 != b)
    if ch.any():
        out[ch] = special.betaincinv(a2[ch], b2[ch], special.betainc(a[ch], b[ch], x[ch]))
    return out


def _poisson_q(u: np.ndarray, mu: np.ndarray) -> np.ndarray:
    out = np.zeros(u.size, np.int64)
    pos = mu > 0
    out[pos] = np.maximum(poisson.ppf(u[pos], mu[pos]), 0).astype(np.int64)
    return out


def _geometric_q(u: np.ndarray, p: np.ndarray, start: int) -> np.ndarray:
    """Inverse CDF of the geometric distribution on ``start, start + 1, ...``."""
    p = np.clip(p, 1e-12, 1 - 1e-12)
    k = np.floor(np.log1p(-u) / np.log1p(-p))
    return np.minimum(k, 1e15).astype(np.int64) + start


def simulate_future(book_dir: str | Path, horizon_days: int, seed: int | None = None,
                    intervention: Intervention | None = None) -> pd.DataFrame:
    """Simulate every customer over the ``horizon_days`` days after the book's ``as_of``.

    Parameters
    ----------
    book_dir : str or Path
        A book written by :func:`cxasset.synth.generate` (needs its ``truth.json``).
    horizon_days : int
        Days simulated after ``as_of`` (> 0).
    seed : int, optional
        Seed of the future draws; default the book's seed. Same seed, same result.
    intervention : Intervention, optional
        A driver change applied from ``as_of`` on (forward only; the past stays as written).

    Returns
    -------
    pandas.DataFrame
        One row per customer: ``customer_id, segment, alive_at_as_of, future_transactions``
        (repeat purchases, or monthly renewals paid for subscriptions), ``future_spend``,
        ``alive_at_end, future_contacts, future_service_cost`` (contacts times the expected
        channel cost), ``future_referrals``; for subscriptions also ``churned`` (within the
        horizon) and ``periods_active`` (monthly periods paid in the horizon).

    Examples
    --------
    >>> from cxasset.synth import Intervention, generate, simulate_future
    >>> _ = generate("book", customers=5_000, seed=1)  # doctest: +SKIP
    >>> base = simulate_future("book", 364)  # doctest: +SKIP
    >>> faster = simulate_future("book", 364, intervention=Intervention(
    ...     "onboarding_days", shift=-3, segment="smb"))  # doctest: +SKIP
    """
    if isinstance(horizon_days, bool) or not isinstance(horizon_days, (int, np.integer)) \
            or horizon_days <= 0:
        raise SynthError(f"horizon_days must be an integer > 0; got {horizon_days!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                             or seed < 0):
        raise SynthError(f"seed must be None or an integer >= 0; got {seed!r}")
    truth = _read_truth(book_dir)
    params = SynthParams.from_dict(truth["params"])
    cal = S.Calendar.of(params)
    fseed = int(truth["seed"]) if seed is None else int(seed)
    parts = [_future_chunk(params, int(truth["seed"]), fseed, blocks, sizes, cal, truth["kind"],
                           horizon_days, intervention)
             for blocks, sizes in _chunks(int(truth["customers"]))]
    return pd.concat(parts, ignore_index=True)


def _future_chunk(params: SynthParams, seed: int, fseed: int, blocks: list[int], sizes: list[int],
                  cal: S.Calendar, kind: str, horizon_days: int,
                  intervention: Intervention | None) -> pd.DataFrame:
    st = S.latent_state(params, seed, blocks, sizes, cal)
    life = S.lifetime(params, seed, blocks, sizes, st, cal)
    new, _ = intervention.apply(params, st) if intervention else (st, None)
    u = S.BlockRng(fseed, blocks, "future").draw(sizes, lambda g, sl, n: g.random((n, 6)))
    h = horizon_days / 7.0
    out: dict[str, Any] = {
        "customer_id": blocks[0] * S.BLOCK + 1 + np.arange(sum(sizes), dtype=np.int64),
        "segment": np.array(SEGMENTS)[st["segment"]],
    }
    if kind == "transactions":
        alive0 = life["alive_tx"]
        a, b, _ = S.purchase_params(params, st)
        a2, b2, lam2 = S.purchase_params(params, new)
        p2 = _recouple(a, b, a2, b2, st["p_drop"])
        j = _geometric_q(u[:, 0], p2, 1)
        n_opp = _poisson_q(u[:, 1], lam2 * h)
        x = np.where(alive0, np.minimum(j, n_opp), 0)
        alive_end = alive0 & (j > n_opp)
        span = np.where(alive_end, h, 0.0)
        died = alive0 & ~alive_end
        span[died] = h * special.betaincinv(j[died], n_opp[died] - j[died] + 1, u[died, 2])
        spend = np.zeros(x.size)
        buy = x > 0
        spend[buy] = special.gammaincinv(x[buy] * params.spend["p"], u[buy, 3]) / st["nu"][buy]
        out.update(alive_at_as_of=alive0, future_transactions=x, future_spend=spend,
                   alive_at_end=alive_end)
    else:
        alive0 = life["alive_sub"]
        al, be = S.churn_params(params, st)
        al2, be2 = S.churn_params(params, new)
        theta2 = _recouple(al, be, al2, be2, st["theta"])
        paid = _geometric_q(u[:, 0], theta2, 0)
        done = S.renewals_by(st["acq_day"], cal.as_of, cal)
        renewals = S.renewals_by(st["acq_day"], cal.as_of + horizon_days, cal) - done
        periods = np.where(alive0, np.minimum(paid, renewals), 0)
        churned = alive0 & (paid < renewals)
        alive_end = alive0 & ~churned
        end = S.add_months(st["acq_day"], np.where(churned, done + paid + 1, 0), cal)
        span = np.where(alive_end, h, np.where(churned, (end - cal.as_of) / 7.0, 0.0))
        revenue = np.array([params.subscription["plan_revenue"][p] for p in PLANS])[st["plan"]]
        out.update(alive_at_as_of=alive0, future_transactions=periods,
                   future_spend=periods * revenue, alive_at_end=alive_end)
    rate = rates(params, new)
    contacts = _poisson_q(u[:, 4], rate["interactions"] * span)
    unit = channel_probs(params, new["effort"], st["segment"]) @ np.array(
        [params.interactions["channel_costs"][c] for c in CHANNELS])
    out.update(future_contacts=contacts, future_service_cost=contacts * unit,
               future_referrals=_poisson_q(u[:, 5], rate["referrals"] * span))
    if kind == "subscriptions":
        out.update(churned=churned, periods_active=periods)
    return pd.DataFrame(out)


def true_state(book_dir: str | Path) -> pd.DataFrame:
    """Each customer's true latent state at ``as_of`` (for checking fitted models).

    Columns: ``customer_id, segment, lambda`` (purchases per week), ``p_drop, theta`` (monthly
    churn), ``mean_spend`` (``p / nu``), ``effort, satisfaction, engagement, onboarding_days,
    alive_at_as_of``.
    """
    truth = _read_truth(book_dir)
    params = SynthParams.from_dict(truth["params"])
    cal = S.Calendar.of(params)
    seed, parts = int(truth["seed"]), []
    for blocks, sizes in _chunks(int(truth["customers"])):
        st = S.latent_state(params, seed, blocks, sizes, cal)
        life = S.lifetime(params, seed, blocks, sizes, st, cal)
        alive = life["alive_tx"] if truth["kind"] == "transactions" else life["alive_sub"]
        parts.append(pd.DataFrame({
            "customer_id": blocks[0] * S.BLOCK + 1 + np.arange(sum(sizes), dtype=np.int64),
            "segment": np.array(SEGMENTS)[st["segment"]], "lambda": st["lam"],
            "p_drop": st["p_drop"], "theta": st["theta"],
            "mean_spend": params.spend["p"] / st["nu"], "effort": st["effort"],
            "satisfaction": st["satisfaction"], "engagement": st["engagement"],
            "onboarding_days": np.where(st["never_onboarded"], np.nan, st["onboarding_days"]),
            "alive_at_as_of": alive}))
    return pd.concat(parts, ignore_index=True)
