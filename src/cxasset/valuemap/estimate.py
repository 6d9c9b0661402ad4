"""Estimate every mechanism of a book on a set of drivers, and value any driver change.

:func:`estimate` is shared by the value map (declared drivers) and lever discovery (every
candidate). It fits the mechanisms on a random sample of at most ``max_fit`` customers, scores a
sample of at most ``max_score`` of them, and scales money up to the whole base (``scale`` =
customers / scored customers), so its cost does not grow with the size of the book beyond the
feature query. :meth:`Estimate.impact` turns a driver step into draws of the change in customer
equity: coefficients are drawn from their fitted covariance (or from experiment evidence) and
pushed through each customer's forward response (:mod:`cxasset.valuemap.mechanisms`).
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from cxasset.exceptions import ConvergenceWarning, ModelDataError, WorkspaceError
from cxasset.features import feature_frame, feature_ids
from cxasset.models._base import on_one_blas_thread
from cxasset.valuation.clv import ValuationSettings
from cxasset.valuemap.drivers import Design, build_design, candidate_names, with_channel_shares
from cxasset.valuemap.mechanisms import (
    MechanismFit,
    Response,
    alive_periods,
    fit_purchase,
    poisson_glm,
    prefixed,
    purchase_params,
    purchase_responses,
)
from cxasset.valuemap.retention import (
    customer_age,
    fit_retention_mechanism,
    retention_response,
    shifted_survival,
)

Progress = Callable[[str], None]
PURCHASE = {"bgnbd": ("cxasset.models.bgnbd", "BetaGeoModel"),
            "mbgnbd": ("cxasset.models.mbgnbd", "ModifiedBetaGeoModel"),
            "pnbd": ("cxasset.models.paretonbd", "ParetoNBDModel")}
RFM = ["frequency", "recency", "T"]


@dataclass(frozen=True)
class Evidence:
    """A measured effect from an experiment, per unit of the driver on the mechanism's log
    scale: combined with the observational estimate by precision weighting, or overriding it."""

    effect: float
    std_err: float
    use: str = "combine"  # combine | override


@dataclass
class Estimate:
    """Fitted mechanisms on a design, and the scored customers' responses."""

    design: Design
    features: pd.DataFrame
    fits: dict[str, MechanismFit]
    responses: dict[str, Response]
    scored: np.ndarray  # rows of the design that were scored
    equity: float  # customer equity of the base from these models (margin over the horizon)
    settings: ValuationSettings
    referred_value: float | None = None
    notes: list[str] = field(default_factory=list)
    fit_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    purchase_cls: Any = None  # None for a subscription book (retention through the hazard)
    seed: int = 0
    ws: Any = None
    models: dict[str, Any] = field(default_factory=dict)  # purchase, spend or retention model
    design_args: tuple[Any, ...] = ()  # drivers, controls, winsor the design was built from
    customers: int = 0  # customers in the book (``features`` may be a random sample of them)

    @on_one_blas_thread
    def refit(self, rows: np.ndarray, frame: pd.DataFrame | None = None,
              terms: list[str] | None = None) -> dict[str, MechanismFit]:
        """The mechanisms fitted again on customers ``rows`` (positions in the design), on the
        design's columns or on ``frame`` and its ``terms`` (e.g. a driver shuffled or binned)."""
        frame = self.design.frame if frame is None else frame
        terms = self.design.terms if terms is None else terms
        f = self.features
        X = frame.iloc[rows][terms].reset_index(drop=True)
        exposure = f["alive_exposure"].to_numpy(dtype=float)[rows]
        fits: dict[str, MechanismFit] = {}
        if self.purchase_cls is None:  # subscription book
            design = Design(frame, self.design.drivers, [t for t in terms
                                                         if t not in self.design.drivers])
            fits["retention"] = fit_retention_mechanism(self.ws, f, design, rows, terms)[1]
        else:
            fits.update(self._refit_purchase(rows, frame, terms))
        for mech, col in (("cost_to_serve", "contacts"), ("referrals", "referrals")):
            if mech in self.fits:
                y = f[col].iloc[rows].to_numpy(dtype=float)
                fits[mech] = poisson_glm(y, exposure, X, mech, start=self.fits[mech])
        return fits

    def _refit_purchase(self, rows: np.ndarray, frame: pd.DataFrame, terms: list[str]
                        ) -> dict[str, MechanismFit]:
        pp = purchase_params(self.purchase_cls())
        f = self.features
        data = pd.concat([f[[*RFM, "monetary_value"]].iloc[rows].reset_index(drop=True),
                          prefixed(frame.iloc[rows].reset_index(drop=True), terms,
                                   [*pp.values(), "gamma"])], axis=1)
        with warnings.catch_warnings():  # a check's refit that stops early says so in notes
            warnings.simplefilter("ignore", ConvergenceWarning)
            _, fits = fit_purchase(self.purchase_cls, data, terms, max_iter=200,
                                   start=_params(self.models.get("purchase")))
        fits["spend"] = fit_spend(data, terms, start=_params(self.models.get("spend")))[1]
        return fits

    @cached_property
    def scored_frame(self) -> pd.DataFrame:
        """The design's rows of the scored customers (taken once: every valued step reads
        them, and taking columns of the whole book first would copy a million rows a step)."""
        return self.design.frame.iloc[self.scored]

    @property
    def mechanisms(self) -> list[str]:
        return list(self.fits)

    def supports(self, mechanism: str) -> bool:
        return mechanism in self.fits

    def term_shift(self, driver: str, step: float, rows: np.ndarray | None = None
                   ) -> tuple[list[str], np.ndarray]:
        """The terms a driver step moves and their change per scored customer (standardised);
        ``rows`` (bool per scored customer) limits the change to some of them."""
        terms = [driver, *[t for t, (d, _) in self.design.extra.items() if d == driver]]
        cols = [*terms, *[c for c in (f"{driver}:missing",) if c in self.design.frame.columns]]
        frame = self.scored_frame[cols]
        moved = self.design.shifted(driver, step, frame)
        delta = moved[terms].to_numpy(dtype=float) - frame[terms].to_numpy(dtype=float)
        if rows is not None:
            delta = delta * np.asarray(rows, dtype=float)[:, None]
        return terms, delta

    def coefficient_draws(self, mechanism: str, terms: list[str], draws: int,
                          rng: np.random.Generator, evidence: Evidence | None = None
                          ) -> np.ndarray:
        """Draws (draws, len(terms)) of the standardised coefficients of ``terms``; experiment
        evidence replaces or is combined with the driver's own coefficient."""
        fit = self.fits[mechanism]
        idx = [fit.terms.index(t) for t in terms]
        mean = fit.coef[idx].copy()
        cov = fit.cov[np.ix_(idx, idx)].copy()
        if evidence is not None:
            sd = self.design.drivers[terms[0]].sd
            e, se = evidence.effect * sd, evidence.std_err * sd
            if evidence.use == "override":
                mean[0], var = e, se**2
            else:
                w_o, w_x = 1 / cov[0, 0], 1 / se**2
                mean[0], var = (w_o * mean[0] + w_x * e) / (w_o + w_x), 1 / (w_o + w_x)
            cov[0, :] = cov[:, 0] = 0.0
            cov[0, 0] = var
        out = rng.multivariate_normal(mean, cov, size=draws, method="eigh")
        out[0] = mean  # the first draw is the point estimate
        return out

    def impact(self, driver: str, mechanism: str, step: float, draws: int = 400,
               seed: int = 0, rows: np.ndarray | None = None,
               evidence: Evidence | None = None) -> np.ndarray:
        """Change in customer equity (currency) of moving ``driver`` by ``step`` (its unit) for
        every customer (or the scored customers flagged in ``rows``), through ``mechanism``:
        an array of ``draws`` values, the first at the point estimate."""
        terms, dz = self.term_shift(driver, step, rows)
        coefs = self.coefficient_draws(mechanism, terms, draws, np.random.default_rng(seed),
                                       evidence)
        return np.asarray(self.responses[mechanism].change_of(dz, coefs), dtype=float)


def _params(model: Any) -> dict[str, float] | None:
    """A fitted model's parameters by name, to start a refit from (None without a model)."""
    return None if model is None else dict(model.params_)


def book_features(ws: Any, customers: np.ndarray | None = None) -> pd.DataFrame:
    """The feature frame the mechanisms are fitted on: `cxasset features` plus channel shares
    (of the ``customers`` given, default all)."""
    return with_channel_shares(feature_frame(ws, customers=customers))


def sampled_features(ws: Any, max_rows: int, seed: int = 0) -> tuple[pd.DataFrame, int]:
    """The book's feature frame, or that of a random sample of ``max_rows`` customers of a
    larger book (computed for them alone, in the book's order), and the number of customers in
    the book."""
    ids = feature_ids(ws)
    n = len(ids)
    if n <= max_rows:
        return book_features(ws), n
    # the same customers as estimate() fits on a whole frame with this seed
    rows = np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))
    f = book_features(ws, ids[rows])
    if len(f) != max_rows:
        raise AssertionError(f"features of {len(f):,} customers for a sample of {max_rows:,}")
    return f, n


def per_period_alive(f: pd.DataFrame, cls: Any) -> pd.DataFrame:
    """Turn ``*_per_period`` drivers into rates per period *alive*.

    Engagement, contacts and referrals happen only while a customer is alive, so per period of
    calendar exposure they fall mechanically once a customer has silently left, and would look
    like causes of dropout. Dividing by the expected time alive so far, ``t_x + P(alive) (T - t_x)``
    (a plain purchase model of the same kind), removes that artefact. Adds ``alive_exposure``.
    """
    if "exposure" not in f.columns or "alive_exposure" in f.columns:
        return f
    plain = cls().fit(f[RFM])
    p = np.asarray(plain.probability_alive(f[RFM]), dtype=float)
    rec, T = f["recency"].to_numpy(dtype=float), f["T"].to_numpy(dtype=float)
    alive = np.maximum(rec + p * (T - rec), 0.0) + (f["exposure"].to_numpy(dtype=float) - T)
    return _with_alive_exposure(f, alive)


def _with_alive_exposure(f: pd.DataFrame, alive: np.ndarray) -> pd.DataFrame:
    """``f`` with ``alive_exposure`` and its ``*_per_period`` drivers per period alive."""
    out = f.copy()
    out["alive_exposure"] = np.maximum(alive, 1e-3)
    if "exposure" in f.columns:
        ratio = f["exposure"].to_numpy(dtype=float) / out["alive_exposure"].to_numpy()
        for c in f.columns:
            if c.endswith("_per_period") and c not in ("contacts_per_period",
                                                        "cost_to_serve_per_period"):
                out[c] = f[c].to_numpy(dtype=float) * ratio
    return out


def purchase_class(ws: Any) -> tuple[str, Any]:
    """The purchase model ``cxasset fit`` chose (BG/NBD when nothing was fitted)."""
    try:
        name = ws.load_artifact("fit").get("model", "bgnbd")
    except WorkspaceError:
        name = "bgnbd"
    if name not in PURCHASE:
        name = "bgnbd"
    module, cls = PURCHASE[name]
    return name, getattr(importlib.import_module(module), cls)


def valuation_settings(ws: Any, horizon: int | None = None) -> ValuationSettings:
    s = ws.settings
    return ValuationSettings(horizon=s.horizon if horizon is None else horizon, period=s.period,
                             period_days=s.period_days, discount_rate=s.discount_rate,
                             margin_rate=s.margin_rate, currency=s.currency)


@on_one_blas_thread
def estimate(ws: Any, drivers: Sequence[str] | None = None, controls: Sequence[str] | None = None,
             *, horizon: int | None = None, max_fit: int = 200_000, max_score: int = 20_000,
             seed: int = 0, referred_value: float | None = None,
             thresholds: dict[str, float] | None = None,
             features: pd.DataFrame | None = None, progress: Progress | None = None,
             winsor: float | None = None, robust: bool = False,
             start: Estimate | None = None, customers: int | None = None) -> Estimate:
    """Fit every mechanism the book supports on ``drivers`` (default: every candidate).

    Parameters
    ----------
    ws : Workspace
    drivers : list of str, optional
        Numeric features; default every candidate (:func:`candidate_names`).
    controls : list of str, optional
        Text features to adjust for; default every text feature with 2-30 levels.
    horizon : int, optional
        Periods valued (default ``book.yaml``'s ``horizon``).
    max_fit, max_score : int
        Customers sampled to fit the mechanisms and to score money (scaled to the base).
    referred_value : float, optional
        Value of one referred customer; default the mean value of the book's customers acquired
        through a referral channel.
    thresholds : dict, optional
        ``driver -> cut``: add a step term ``1{driver > cut}`` to every mechanism.
    winsor : float, optional
        Clip drivers to these tail quantiles in the models (see :func:`build_design`).
    robust : bool, default=False
        Sandwich covariance for the purchase model's coefficients (the GLMs' always are).
    features : DataFrame, optional
        The feature frame (:func:`book_features`, or an earlier estimate's ``features``);
        default the book's, and for a book of more than ``max_fit`` customers a random sample
        of ``max_fit`` of them (the models only see that many), so the rates per period alive
        and the design are computed for the customers fitted, not the whole book.
    start : Estimate, optional
        A previous estimate on (mostly) the same terms, e.g. before threshold terms were added:
        every model starts from its parameters (new terms at 0), which saves most iterations.
    customers : int, optional
        Customers in the book when ``features`` is a sample of them (default ``len(features)``):
        money is scaled to them.
    """
    say = progress or (lambda _m: None)
    contractual = ws.meta()["kind"] == "subscriptions"
    if features is None:
        f, customers = sampled_features(ws, max_fit, seed)
    else:
        f = features
    name, cls = ("hazard", None) if contractual else purchase_class(ws)
    f = per_period_active(f) if contractual else per_period_alive(f, cls)
    names = candidate_names(f) if drivers is None else list(drivers)
    if not names:
        raise ModelDataError("the book has no numeric customer feature to use as a driver")
    design_args = (tuple(names), None if controls is None else tuple(controls), winsor)
    if start is not None and start.design_args == design_args and not start.design.extra \
            and start.features is f:  # the same design: copied, not rebuilt
        design = start.design.copy()
    else:
        design = build_design(f, names, controls, winsor=winsor)
    for d, cut in (thresholds or {}).items():
        design.add_threshold(d, cut)
    rng = np.random.default_rng(seed)
    n = len(f)
    customers = n if customers is None else customers
    fit_rows = np.sort(rng.choice(n, size=min(n, max_fit), replace=False))
    score_rows = np.sort(rng.choice(fit_rows, size=min(len(fit_rows), max_score), replace=False))
    scale = customers / len(score_rows)
    vs = valuation_settings(ws, horizon)
    terms = design.terms
    notes: list[str] = ["customer equity here comes from the mechanism models with every driver "
                        "as a covariate; `cxasset value` uses the model `cxasset fit` chose"]
    fits: dict[str, MechanismFit] = {}
    if len(fit_rows) < customers:
        notes.append(f"mechanisms fitted on a random {len(fit_rows):,} of {customers:,} "
                     "customers")
    if len(score_rows) < customers:
        notes.append(f"money scored on a random {len(score_rows):,} customers, scaled by "
                     f"{scale:,.1f}")

    scored_design = design.frame.iloc[score_rows].reset_index(drop=True)
    if contractual:
        say(f"fitting the churn hazard with {len(terms)} terms")
        model, fits["retention"] = fit_retention_mechanism(ws, f, design, fit_rows, terms)
        responses = {"retention": retention_response(model, f, design, score_rows,
                                                     vs.margin_rate, vs.horizon, vs.period_rate,
                                                     scale)}
        age = customer_age(f.iloc[score_rows])
        active = (f["churned"].iloc[score_rows].to_numpy() == 0) if "churned" in f else True
        disc = (1.0 + vs.period_rate) ** -np.arange(1, vs.horizon + 1, dtype=float)
        surv = shifted_survival(model, scored_design, age, vs.horizon, 0.0)
        a_i = np.where(active, surv @ disc, 0.0)
        clv_i = responses["retention"].at_zero()
        models = {"retention": model}
    else:
        models, fits, responses, clv_i, a_i = _purchase_mechanisms(
            f, design, fit_rows, score_rows, terms, cls, vs, scale, say, name, robust,
            None if start is None else start.models)
    equity = float(scale * clv_i.sum())

    exposure = f["alive_exposure"].iloc[fit_rows].to_numpy(dtype=float)
    X = design.frame.iloc[fit_rows][terms].reset_index(drop=True)
    Xs = scored_design[terms].to_numpy(dtype=float)
    if "contacts" in f.columns:
        say("fitting contacts per period alive (cost to serve)")
        y = f["contacts"].iloc[fit_rows].to_numpy(dtype=float)
        fit = poisson_glm(y, exposure, X, "cost_to_serve",
                          start=None if start is None else start.fits.get("cost_to_serve"))
        fits["cost_to_serve"] = fit
        cost = f["cost_to_serve_per_period"].to_numpy(dtype=float)
        cpp = f["contacts_per_period"].to_numpy(dtype=float)
        unit_all = cost.sum() / max(cpp.sum(), 1e-12)
        with np.errstate(invalid="ignore", divide="ignore"):
            unit = np.where(cpp > 0, cost / cpp, unit_all)[score_rows]
        rate = np.exp(fit.intercept + Xs @ fit.coef)
        responses["cost_to_serve"] = Response(base=-unit * rate * a_i, scale=scale)
    if "referrals" in f.columns:
        ref_val = referred_value
        if ref_val is None:
            ref_val = _referred_value(f, clv_i, score_rows, vs)
        if ref_val is None:
            notes.append("referrals: no referral acquisition channel and no "
                         "assumptions.referred_customer_value, so referrals carry no money")
        else:
            say("fitting referrals per period alive")
            y = f["referrals"].iloc[fit_rows].to_numpy(dtype=float)
            fit = poisson_glm(y, exposure, X, "referrals",
                              start=None if start is None else start.fits.get("referrals"))
            fits["referrals"] = fit
            rate = np.exp(fit.intercept + Xs @ fit.coef)
            responses["referrals"] = Response(base=rate * a_i * ref_val, scale=scale)
        referred_value = ref_val
    return Estimate(design, f, fits, responses, score_rows, equity, vs, referred_value, notes,
                    fit_rows, cls, seed, ws, models, design_args, customers)


def by_timing(est: Estimate, controls: Sequence[str] | None = None,
              thresholds: dict[str, float] | None = None, progress: Progress | None = None
              ) -> tuple[dict[str, Estimate], str | None]:
    """The estimate each driver of ``est`` is valued on, and a note saying so (None when all are
    valued on ``est``).

    A driver fixed at the start of the relationship (onboarding, training, attributes) is valued
    on the mechanisms refitted with only such drivers, their ``thresholds`` and the controls:
    drivers measured while the outcomes happen (surveys, contacts, engagement) come after it, so
    adjusting for them takes out part of its total effect (whatever works through them) and, as
    their answers and missing-value flags depend on how long a customer stayed, turns retention
    into a covariate (a "bad control"). On 100k synthetic books that moved part of onboarding's
    planted dropout effect to the purchase rate (rate coefficient 1.6x the planted plus a
    spurious step, dropout 0.6-0.67x); without them 0.83-0.88x and 0.73-0.77x
    (docs/valuemap.md, Verified). Drivers measured during the window stay on ``est``."""
    drivers = list(est.design.drivers)
    start = [d for d in drivers if not est.design.drivers[d].concurrent]
    of = dict.fromkeys(drivers, est)
    if not start or len(start) == len(drivers):
        return of, None
    if progress:
        progress(f"refitting the mechanisms on the drivers fixed at the start "
                 f"({', '.join(start)})")
    pre = estimate(est.ws, start, controls, referred_value=est.referred_value, seed=est.seed,
                   max_fit=len(est.fit_rows), max_score=len(est.scored), features=est.features,
                   customers=est.customers, winsor=est.design_args[2],
                   thresholds={d: c for d, c in (thresholds or {}).items() if d in start},
                   start=est)
    of.update(dict.fromkeys(start, pre))
    return of, (f"drivers fixed at the start of the relationship ({', '.join(start)}) are "
                "valued on mechanisms fitted without the drivers measured later (which could "
                "carry part of their effect)")


def _purchase_mechanisms(f: pd.DataFrame, design: Design, fit_rows: np.ndarray,
                         score_rows: np.ndarray, terms: list[str], cls: Any,
                         vs: ValuationSettings, scale: float, say: Progress, name: str,
                         robust: bool = False, start: dict[str, Any] | None = None
                         ) -> tuple[dict[str, Any], dict[str, MechanismFit], dict[str, Response],
                                    np.ndarray, np.ndarray]:
    """Purchase rate, dropout and spend of a non-contractual book: the fitted purchase and
    spend models, the fits, the responses, each scored customer's CLV and discounted periods
    alive."""
    say(f"fitting {name} with {len(terms)} terms on purchase rate and dropout")
    pp = purchase_params(cls())

    def model_frame(rows: np.ndarray) -> pd.DataFrame:
        return pd.concat([f[[*RFM, "monetary_value"]].iloc[rows].reset_index(drop=True),
                          prefixed(design.frame.iloc[rows].reset_index(drop=True), terms,
                                   [*pp.values(), "gamma"])], axis=1)

    fdata, sdata = model_frame(fit_rows), model_frame(score_rows)
    start = start or {}
    model, fits = fit_purchase(cls, fdata, terms, robust=robust,
                               start=_params(start.get("purchase")))
    say("fitting the spend model with covariates")
    spend, fits["spend"] = fit_spend(fdata, terms, start=_params(start.get("spend")))
    spend_i = np.asarray(spend.conditional_expected_average_profit(sdata), dtype=float)
    say("scoring customers' forward responses")
    responses = purchase_responses(model, sdata, spend_i, vs.margin_rate, vs.horizon,
                                   vs.period_rate, scale)
    clv_i = responses["purchase_rate"].at_zero()
    responses["spend"] = Response(base=clv_i, scale=scale)
    return ({"purchase": model, "spend": spend}, fits, responses, clv_i,
            alive_periods(model, sdata, vs.horizon, vs.period_rate))


def per_period_active(f: pd.DataFrame) -> pd.DataFrame:
    """Subscription books: a customer's time active is known (``tenure``, to churn or now), so
    ``*_per_period`` drivers and the GLMs' exposure are per period active (see
    :func:`per_period_alive`)."""
    if "alive_exposure" in f.columns:
        return f
    return _with_alive_exposure(f, f["tenure"].to_numpy(dtype=float))


def fit_spend(data: pd.DataFrame, terms: list[str], start: dict[str, float] | None = None
              ) -> tuple[Any, MechanismFit]:
    """Gamma-Gamma with every term on its scale (``gamma_i = gamma exp(g'z)``: mean spend up by
    ``exp(g)``), fitted on the repeat buyers of ``data`` (from ``start``, another fit's
    ``params_``, if given)."""
    from cxasset.models.gammagamma import GammaGammaModel

    spend = GammaGammaModel().fit(data, covariates={"gamma": [f"gamma:{t}" for t in terms]},
                                  start_params=start)
    cov = spend.result_.cov_unconstrained
    order = list(spend.result_.params)
    idx = [order.index(f"gamma[gamma:{t}]") for t in terms]
    coef = np.array([spend.result_.params[order[i]] for i in idx])
    return spend, MechanismFit("spend", terms, coef, cov[np.ix_(idx, idx)], spend.n_obs_,
                               "GammaGammaModel")


def _referred_value(f: pd.DataFrame, clv: np.ndarray, rows: np.ndarray,
                    vs: ValuationSettings) -> float | None:
    """Mean value of a referred customer: margin to date plus expected margin over the horizon
    of the customers acquired through a channel named like 'referral'."""
    if "acquisition_channel" not in f.columns:
        return None
    ch = f["acquisition_channel"].iloc[rows].astype("string").str.lower().fillna("")
    is_ref = ch.str.contains("referr").to_numpy(dtype=bool)
    if is_ref.sum() < 30:
        return None
    if "recurring_revenue" in f.columns:  # subscription: revenue per period times periods lived
        spent = f["recurring_revenue"].fillna(0.0) * f["tenure"].fillna(0.0)
    else:
        spent = f["frequency"] * f["monetary_value"]
    past = (vs.margin_rate * spent).to_numpy(dtype=float)[rows]
    return float((clv + past)[is_ref].mean())
