"""Latent state of synthetic customers: covariates, purchase/dropout/churn parameters, lifetimes.

Randomness is organised so that a book is reproducible from its seed alone and independent of
the chunk size: customers are cut into fixed blocks of :data:`BLOCK` customers and every block
draws from its own generators ``default_rng(SeedSequence(seed, spawn_key=(block, stream)))``, one
per :data:`STREAMS` entry. :func:`cxasset.synth.simulate_future` replays streams ``latent`` and
``lifetime`` only, to rebuild each customer's state at ``as_of`` without the event tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from cxasset.synth._params import SEGMENTS, SynthParams, coefficients, design

#: Customers per random-number block (fixed: changing it changes every book).
BLOCK = 1000

#: Independent random streams of a block, by purpose.
STREAMS = {"latent": 0, "lifetime": 1, "purchases": 2, "interactions": 3, "surveys": 4,
           "referrals": 5, "engagement": 6, "future": 7}

EPOCH = dt.date(1970, 1, 1)


class BlockRng:
    """The generators of one stream for consecutive blocks of customers (or of their events)."""

    def __init__(self, seed: int, blocks: Sequence[int], stream: str) -> None:
        key = STREAMS[stream]
        self.gens = [np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(b, key)))
                     for b in blocks]

    def draw(self, sizes: Sequence[int] | np.ndarray,
             fn: Callable[[np.random.Generator, slice, int], np.ndarray]) -> np.ndarray:
        """Concatenate ``fn(gen, rows, n)`` over the blocks; ``sizes`` are rows per block."""
        parts, start = [], 0
        for gen, n in zip(self.gens, sizes, strict=True):
            n = int(n)
            parts.append(np.asarray(fn(gen, slice(start, start + n), n)))
            start += n
        return np.concatenate(parts)


@dataclass(frozen=True)
class Calendar:
    """Day numbers (days since ``start``) of the observation window."""

    start: dt.date
    acquisition_days: int
    as_of: int
    calibration_end: int

    @classmethod
    def of(cls, params: SynthParams) -> Calendar:
        c = params.calendar
        return cls(dt.date.fromisoformat(c["start"]), 7 * int(c["acquisition_weeks"]),
                   7 * int(c["observation_weeks"]) - 1, 7 * int(c["calibration_weeks"]) - 1)

    def date(self, day: int) -> dt.date:
        return self.start + dt.timedelta(days=int(day))

    @property
    def epoch_day(self) -> int:
        """Days from 1970-01-01 to ``start`` (to turn day numbers into timestamps)."""
        return (self.start - EPOCH).days


def categorical(u: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Categorical codes from uniforms ``u`` and per-row probability rows ``probs``."""
    cum = np.cumsum(probs, axis=-1)
    cum = cum / cum[..., -1:]
    return (u[:, None] > cum[..., :-1]).sum(axis=1)


def latent_state(params: SynthParams, seed: int, blocks: Sequence[int], sizes: Sequence[int],
                 cal: Calendar) -> dict[str, np.ndarray]:
    """Draw the customers of ``blocks``: attributes, latent drivers and mechanism parameters.

    Every draw is taken for every customer whatever the book's kind, so both kinds share the
    same customers. Returns arrays keyed by name (one row per customer).
    """
    rng = BlockRng(seed, blocks, "latent")

    def std(kind: str) -> np.ndarray:
        return rng.draw(sizes, lambda g, sl, n: getattr(g, kind)(n))

    seg_p = np.array([params.segments[s] for s in SEGMENTS])
    seg = categorical(std("random"), seg_p)
    acq = rng.draw(sizes, lambda g, sl, n: g.integers(0, cal.acquisition_days, n))
    acq_p = params.acquisition
    ch_share = np.array([acq_p["channel_share"][s] for s in SEGMENTS])
    channel = categorical(std("random"), ch_share[seg])
    base = np.array(list(acq_p["cost_base"].values()))
    mult = np.array([acq_p["cost_segment_multiplier"][s] for s in SEGMENTS])
    noise = np.exp(acq_p["cost_log_sd"] * std("standard_normal"))
    cost = np.round(base[channel] * mult[seg] * noise, 2)
    at = params.attributes
    emp_med = np.array([at["employees_median"][s] for s in SEGMENTS])
    employees = np.maximum(1, np.round(emp_med[seg] * np.exp(at["employees_log_sd"]
                                                             * std("standard_normal"))))
    tr_mean = np.array([at["training_mean"][s] for s in SEGMENTS])[seg]
    shape = at["training_shape"]
    training = rng.draw(sizes, lambda g, sl, n: g.gamma(shape, tr_mean[sl] / shape))
    training = np.round(2 * training) / 2
    ob = params.onboarding
    ob_mean = np.array([ob["mean_days"][s] for s in SEGMENTS])[seg]
    nb_p = ob["nb_size"] / (ob["nb_size"] + ob_mean)
    ob_days = rng.draw(sizes, lambda g, sl, n: g.negative_binomial(ob["nb_size"], nb_p[sl]))
    never = std("random") < np.array([ob["never_share"][s] for s in SEGMENTS])[seg]
    onboarded = ~never & (acq + ob_days <= cal.as_of)
    effort = std("standard_normal")
    rho = params.latent["effort_satisfaction_rho"]
    sat = rho * effort + np.sqrt(1 - rho**2) * std("standard_normal")
    eng = std("standard_normal")
    pu = params.purchase
    g_rate = rng.draw(sizes, lambda g, sl, n: g.standard_gamma(pu["r"], n))
    sp = params.spend
    shift = np.array([sp["segment_log_shift"].get(s, 0.0) for s in SEGMENTS])[seg]
    nu = rng.draw(sizes, lambda g, sl, n: g.standard_gamma(sp["q"], n))
    nu = nu / (sp["gamma"] * np.exp(shift))
    state = dict(segment=seg, acq_day=acq, channel=channel, acquisition_cost=cost,
                 employees=employees.astype(np.int64), training_hours=training,
                 onboarding_days=ob_days.astype(np.int64), never_onboarded=never,
                 onboarded=onboarded, effort=effort, satisfaction=sat, engagement=eng,
                 g_rate=g_rate, nu=nu)
    a, b, lam = purchase_params(params, state)
    state.update(lam=lam, p_drop=rng.draw(sizes, lambda g, sl, n: g.beta(a[sl], b[sl])))
    alpha, beta = churn_params(params, state)
    state["theta"] = rng.draw(sizes, lambda g, sl, n: g.beta(alpha[sl], beta[sl]))
    su = params.subscription
    plan_p = np.array([su["plan_share"][s] for s in SEGMENTS])
    state["plan"] = categorical(std("random"), plan_p[seg])
    return state


def covariates(params: SynthParams, state: dict[str, np.ndarray]) -> np.ndarray:
    """The covariate matrix ``z`` of the customers in ``state``."""
    return design(params, segment=state["segment"], onboarding_days=state["onboarding_days"],
                  onboarded=~state["never_onboarded"], training_hours=state["training_hours"],
                  employees=state["employees"], satisfaction=state["satisfaction"],
                  engagement=state["engagement"])


def purchase_params(params: SynthParams, state: dict[str, np.ndarray],
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``a_i``, ``b_i`` of the dropout Beta and the purchase rate ``lambda_i`` (per week).

    ``alpha_i = alpha0 exp(-gamma_purch'z)``, ``lambda_i = G_i / alpha_i`` with
    ``G_i ~ Gamma(r, 1)`` (so ``lambda_i ~ Gamma(r, rate alpha_i)``);
    ``a_i = a0 exp(gamma_drop_a'z)``,
    ``b_i = b0 exp(gamma_drop_b'z)``.
    """
    pu = params.purchase
    z = covariates(params, state)
    alpha = pu["alpha0"] * np.exp(-z @ coefficients(pu["gamma_purch"]))
    a = pu["a0"] * np.exp(z @ coefficients(pu["gamma_drop_a"]))
    b = pu["b0"] * np.exp(z @ coefficients(pu["gamma_drop_b"]))
    return a, b, state["g_rate"] / alpha


def churn_params(params: SynthParams, state: dict[str, np.ndarray],
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Monthly churn Beta: ``alpha_i = alpha0 exp(gamma_churn_a'z)``,
    ``beta_i = beta0 exp(gamma_churn_b'z)``."""
    su = params.subscription
    z = covariates(params, state)
    return (su["alpha0"] * np.exp(z @ coefficients(su["gamma_churn_a"])),
            su["beta0"] * np.exp(z @ coefficients(su["gamma_churn_b"])))


def add_months(day: np.ndarray, months: np.ndarray, cal: Calendar) -> np.ndarray:
    """Day numbers ``months`` calendar months after ``day`` (day of month clipped to month end)."""
    date = np.datetime64(cal.start, "D") + day
    month0 = date.astype("datetime64[M]")
    dom = (date - month0.astype("datetime64[D]")).astype(np.int64)
    target = month0 + months
    first = target.astype("datetime64[D]")
    length = ((target + 1).astype("datetime64[D]") - first).astype(np.int64)
    out = first + np.minimum(dom, length - 1)
    return (out - np.datetime64(cal.start, "D")).astype(np.int64)


def renewals_by(acq_day: np.ndarray, day: np.ndarray | int, cal: Calendar) -> np.ndarray:
    """Number of monthly renewal dates ``add_months(acq_day, m)``, m >= 1, on or before ``day``."""
    start = np.datetime64(cal.start, "D")
    m0 = ((start + day).astype("datetime64[M]") - (start + acq_day).astype("datetime64[M]")
          ).astype(np.int64)
    n = m0 - (add_months(acq_day, m0, cal) > day)
    return np.maximum(n, 0)


def lifetime(params: SynthParams, seed: int, blocks: Sequence[int], sizes: Sequence[int],
             state: dict[str, np.ndarray], cal: Calendar) -> dict[str, np.ndarray]:
    """Dropout/churn draws up to ``as_of`` (stream ``lifetime``).

    Transactions: ``J_i`` repeat purchases until dropout (BG/NBD: ``J ~ Geometric(p_i)`` on 1, 2,
    ...; MBG/NBD: on 0, 1, ...), ``N_i ~ Poisson(lambda_i T_i)`` purchase opportunities in
    ``(0, T_i]``, ``T_i = (as_of - acquired_at + 1 day) / 7`` weeks; alive at ``as_of`` iff
    ``J_i > N_i``. Subscriptions: ``K_i ~ Geometric(theta_i)`` months paid, ended at
    ``acquired_at + K_i months`` (active at ``as_of`` if that is later).
    """
    rng = BlockRng(seed, blocks, "lifetime")
    p = np.clip(state["p_drop"], 1e-12, 1.0)
    j = rng.draw(sizes, lambda g, sl, n: g.geometric(p[sl])).astype(np.int64)
    if params.purchase["model"] == "mbgnbd":
        j -= 1
    t_weeks = (cal.as_of - state["acq_day"] + 1) / 7.0
    mu = state["lam"] * t_weeks
    n_opp = rng.draw(sizes, lambda g, sl, n: g.poisson(mu[sl])).astype(np.int64)
    theta = np.clip(state["theta"], 1e-12, 1.0)
    k = np.minimum(rng.draw(sizes, lambda g, sl, n: g.geometric(theta[sl])), 1200).astype(np.int64)
    end_day = add_months(state["acq_day"], k, cal)
    return dict(T=t_weeks, J=j, N=n_opp, alive_tx=j > n_opp, K=k, end_day=end_day,
                alive_sub=end_day > cal.as_of)
