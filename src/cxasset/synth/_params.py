"""The true parameters of a synthetic customer book and the covariate design they act on.

Every number the generator plants lives in :class:`SynthParams`; ``truth.json`` is its
:meth:`SynthParams.to_dict` plus the run's metadata, and :meth:`SynthParams.from_dict` reads it
back, so :func:`cxasset.synth.simulate_future` re-creates a book's latent state exactly.

Time unit of every rate: **weeks**. Money: the book's currency (USD). The covariate vector ``z``
shared by purchase, dropout and churn has the columns of :data:`COVARIATES`, defined in
:data:`COVARIATE_DEFINITIONS` (see ``docs/synth.md``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cxasset.exceptions import CxassetError

SEGMENTS = ("smb", "mid", "enterprise")
ACQUISITION_CHANNELS = ("paid_search", "organic", "partner", "referral", "outbound_sales")
CHANNELS = ("self_service", "email", "chat", "phone")
PLANS = ("basic", "pro", "enterprise")
COVARIATES = (
    "onboarding", "onboarding_late", "training", "employees", "satisfaction", "engagement",
    "seg_mid", "seg_enterprise",
)

#: Exact definition of each column of ``z`` (the design a model fit must rebuild to recover truth).
COVARIATE_DEFINITIONS = {
    "onboarding": "(min(onboarding_days, onboarding.cap_days) - onboarding.center_days) / "
    "onboarding.scale_days; never-onboarded customers count as cap_days",
    "onboarding_late": "1 if onboarding_days > onboarding.threshold_days or the customer was "
    "never onboarded, else 0 (a step on top of the linear onboarding term)",
    "training": "(training_hours - attributes.training_center) / attributes.training_scale",
    "employees": "(ln(employees) - attributes.employees_center_log) / "
    "attributes.employees_scale_log (placebo: every coefficient is 0)",
    "satisfaction": "latent satisfaction s ~ N(0, 1): s = rho * e + sqrt(1 - rho^2) * eps, "
    "rho = latent.effort_satisfaction_rho, e = latent effort; unobserved (surveys measure it)",
    "engagement": "latent engagement g ~ N(0, 1), independent; unobserved (engagement events "
    "and survey response measure it)",
    "seg_mid": "1 if segment == 'mid' else 0 (baseline segment: smb)",
    "seg_enterprise": "1 if segment == 'enterprise' else 0 (baseline segment: smb)",
}


class SynthError(CxassetError, ValueError):
    """A bad argument to the synthetic book generator or to :func:`simulate_future`."""


def _d(**kw: Any) -> Any:
    return field(default_factory=lambda: dict(kw))


@dataclass(frozen=True)
class SynthParams:
    """True parameters of a synthetic book, one JSON-ready section per mechanism.

    Rates are per week; coefficients act on the covariates of :data:`COVARIATES`. A coefficient
    missing from a mapping is 0.
    """

    calendar: dict[str, Any] = _d(
        start="2024-01-01", acquisition_weeks=52, observation_weeks=104, calibration_weeks=65,
    )
    settings: dict[str, Any] = _d(
        currency="USD", period="week", margin_rate=0.3, discount_rate=0.1, horizon=52,
    )
    segments: dict[str, float] = _d(smb=0.65, mid=0.27, enterprise=0.08)
    acquisition: dict[str, Any] = _d(
        channel_share={
            "smb": [0.40, 0.30, 0.10, 0.15, 0.05],
            "mid": [0.25, 0.20, 0.20, 0.10, 0.25],
            "enterprise": [0.05, 0.10, 0.25, 0.10, 0.50],
        },
        cost_base={"paid_search": 120.0, "organic": 20.0, "partner": 300.0, "referral": 50.0,
                   "outbound_sales": 900.0},
        cost_segment_multiplier={"smb": 1.0, "mid": 2.5, "enterprise": 6.0},
        cost_log_sd=0.3,
    )
    attributes: dict[str, Any] = _d(
        employees_median={"smb": 12.0, "mid": 150.0, "enterprise": 2500.0}, employees_log_sd=0.6,
        employees_center_log=4.0, employees_scale_log=2.0,
        training_mean={"smb": 3.0, "mid": 5.0, "enterprise": 8.0}, training_shape=2.0,
        training_center=4.0, training_scale=4.0,
    )
    onboarding: dict[str, Any] = _d(
        mean_days={"smb": 10.0, "mid": 18.0, "enterprise": 35.0}, nb_size=3.0,
        never_share={"smb": 0.04, "mid": 0.02, "enterprise": 0.01},
        cap_days=60.0, center_days=14.0, scale_days=7.0, threshold_days=21.0,
    )
    latent: dict[str, float] = _d(effort_satisfaction_rho=-0.4)
    purchase: dict[str, Any] = _d(
        model="bgnbd", r=0.75, alpha0=9.0, a0=0.7, b0=3.2,
        gamma_purch={"onboarding": -0.05, "training": 0.05, "employees": 0.0,
                     "satisfaction": 0.10, "engagement": 0.35, "seg_mid": 0.25,
                     "seg_enterprise": 0.50},
        gamma_drop_a={"onboarding": 0.30, "onboarding_late": 0.50, "training": -0.10,
                      "employees": 0.0, "satisfaction": -0.45, "engagement": -0.15,
                      "seg_mid": -0.20, "seg_enterprise": -0.40},
        gamma_drop_b={},
    )
    spend: dict[str, Any] = _d(
        p=6.0, q=3.5, gamma=45.0, segment_log_shift={"smb": 0.0, "mid": 0.4, "enterprise": 0.9},
    )
    subscription: dict[str, Any] = _d(
        alpha0=0.9, beta0=9.0,
        gamma_churn_a={"onboarding": 0.30, "onboarding_late": 0.50, "training": -0.10,
                       "employees": 0.0, "satisfaction": -0.45, "engagement": -0.20,
                       "seg_mid": -0.30, "seg_enterprise": -0.60},
        gamma_churn_b={},
        plan_share={"smb": [0.7, 0.3, 0.0], "mid": [0.2, 0.6, 0.2], "enterprise": [0.0, 0.2, 0.8]},
        plan_revenue={"basic": 49.0, "pro": 199.0, "enterprise": 1490.0},
    )
    interactions: dict[str, Any] = _d(
        rate0=0.04, beta={"effort": 0.6, "seg_mid": 0.3, "seg_enterprise": 0.7},
        channel_costs={"self_service": 0.4, "email": 3.5, "chat": 5.0, "phone": 11.0},
        utility0={"self_service": 0.8, "email": 0.0, "chat": 0.3, "phone": -0.3},
        utility_effort={"self_service": -0.4, "email": 0.0, "chat": 0.2, "phone": 0.6},
        utility_mid={"self_service": -0.2, "email": 0.0, "chat": 0.0, "phone": 0.4},
        utility_enterprise={"self_service": -0.5, "email": 0.0, "chat": 0.0, "phone": 0.8},
        effort_intercept=3.5, effort_slope=1.1, effort_noise_sd=0.9, effort_missing=0.5,
        resolved_intercept=1.8, resolved_effort=-0.6,
        resolved_channel={"self_service": -0.6, "email": 0.0, "chat": 0.2, "phone": 0.5},
    )
    surveys: dict[str, Any] = _d(
        nps_invite_rate=1 / 13, nps_response_intercept=-0.6, nps_response_engagement=0.9,
        nps_intercept=7.0, nps_satisfaction=2.2, nps_noise_sd=1.3,
        post_contact_response_intercept=-1.0, post_contact_response_engagement=0.6,
        csat_intercept=3.6, csat_satisfaction=0.6, csat_effort=-0.5, csat_resolved=0.5,
        csat_noise_sd=0.6,
        ces_intercept=3.5, ces_effort=1.1, ces_noise_sd=0.9,
    )
    referrals: dict[str, Any] = _d(
        rate0=0.006, beta={"satisfaction": 0.7, "engagement": 0.2},
    )
    engagement: dict[str, Any] = _d(
        rate0=0.8, beta={"engagement": 0.8, "seg_mid": 0.1, "seg_enterprise": 0.2},
        event="session",
    )

    def to_dict(self) -> dict[str, Any]:
        """The parameters as plain JSON-ready data (the ``params`` section of ``truth.json``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SynthParams:
        """Read parameters written by :meth:`to_dict`; unknown sections are an error.

        A key missing from a section (``truth.json`` of an older version) takes its default,
        e.g. ``onboarding.threshold_days``; a coefficient mapping is read as written (missing
        coefficients are 0), so an older book's truth is rebuilt as it was planted.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise SynthError(f"Unknown parameter section(s) {unknown}; valid: {sorted(names)}")
        base = cls()
        return cls(**{k: {**getattr(base, k), **v} for k, v in data.items()})

    def replace(self, **sections: dict[str, Any]) -> SynthParams:
        """A copy with some keys of some sections changed, e.g. ``replace(purchase={"r": 1.0})``."""
        merged = {k: {**getattr(self, k), **v} for k, v in sections.items()}
        return dataclasses.replace(self, **merged)

    @classmethod
    def no_covariates(cls, model: str = "bgnbd") -> SynthParams:
        """Defaults with every purchase, dropout and churn coefficient 0 (``onboarding_late``
        included) and no spend shift.

        Purchase and dropout are then plain BG/NBD (or MBG/NBD) with ``r, alpha0, a0, b0``,
        whose closed-form moments the tests check.
        """
        base = cls()
        return base.replace(
            purchase={"model": model, "gamma_purch": {}, "gamma_drop_a": {}, "gamma_drop_b": {}},
            subscription={"gamma_churn_a": {}, "gamma_churn_b": {}},
            spend={"segment_log_shift": {}},
        )


def coefficients(mapping: dict[str, float]) -> np.ndarray:
    """The coefficient vector over :data:`COVARIATES` (missing names are 0)."""
    unknown = sorted(set(mapping) - set(COVARIATES))
    if unknown:
        raise SynthError(f"Unknown covariate(s) {unknown} in coefficients; valid: {COVARIATES}")
    return np.array([float(mapping.get(c, 0.0)) for c in COVARIATES])


def design(params: SynthParams, *, segment: np.ndarray, onboarding_days: np.ndarray,
           onboarded: np.ndarray, training_hours: np.ndarray, employees: np.ndarray,
           satisfaction: np.ndarray, engagement: np.ndarray) -> np.ndarray:
    """The covariate matrix ``z`` (customers x :data:`COVARIATES`), as defined in the docs.

    ``segment`` holds codes into :data:`SEGMENTS`; ``onboarded`` is False for never-onboarded
    customers (their ``onboarding_days`` is ignored and counts as ``cap_days``, and as late).
    """
    ob, at = params.onboarding, params.attributes
    days = np.where(onboarded, np.minimum(onboarding_days, ob["cap_days"]), ob["cap_days"])
    late = ~np.asarray(onboarded, bool) | (np.asarray(onboarding_days) > ob["threshold_days"])
    return np.column_stack([
        (days - ob["center_days"]) / ob["scale_days"],
        late.astype(float),
        (training_hours - at["training_center"]) / at["training_scale"],
        (np.log(employees) - at["employees_center_log"]) / at["employees_scale_log"],
        satisfaction,
        engagement,
        (segment == 1).astype(float),
        (segment == 2).astype(float),
    ])


def small_design(beta: dict[str, float], *, effort: np.ndarray, segment: np.ndarray,
                 satisfaction: np.ndarray, engagement: np.ndarray) -> np.ndarray:
    """Linear predictor of a rate with coefficients on effort, satisfaction, engagement, segment."""
    unknown = sorted(set(beta) - {"effort", "satisfaction", "engagement", "seg_mid",
                                  "seg_enterprise"})
    if unknown:
        raise SynthError(f"Unknown rate covariate(s) {unknown}")
    return (beta.get("effort", 0.0) * effort + beta.get("satisfaction", 0.0) * satisfaction
            + beta.get("engagement", 0.0) * engagement
            + beta.get("seg_mid", 0.0) * (segment == 1) + beta.get("seg_enterprise", 0.0)
            * (segment == 2))


#: The planted mechanisms in formulas (``truth.json["mechanisms"]``); rates per week.
MECHANISMS = {
    "acquisition": "acquired_at uniform over the first calendar.acquisition_weeks weeks; segment "
    "~ Categorical(segments); acquisition_channel ~ "
    "Categorical(acquisition.channel_share[segment]) "
    "over labels.acquisition_channels; acquisition_cost = cost_base[channel] * "
    "cost_segment_multiplier[segment] * exp(cost_log_sd * N(0,1))",
    "attributes": "employees = max(1, round(employees_median[segment] * exp(employees_log_sd * "
    "N(0,1)))); training_hours = round_to_0.5(Gamma(shape=training_shape, mean="
    "training_mean[segment]))",
    "onboarding": "onboarding_days ~ NegBin(size=nb_size, mean=mean_days[segment]); never "
    "onboarded with prob never_share[segment]; onboarded_at = acquired_at + onboarding_days, "
    "NULL if never onboarded or later than as_of; z.onboarding is linear in the days (capped), "
    "z.onboarding_late = 1 above threshold_days (a step: dropout and churn jump there)",
    "latent": "effort e ~ N(0,1); satisfaction s = rho*e + sqrt(1-rho^2)*N(0,1); engagement "
    "g ~ N(0,1); all independent of segment and the observed attributes",
    "purchase": "time 0 = acquired_at = first purchase. lambda_i ~ Gamma(r, rate alpha_i), "
    "alpha_i = alpha0*exp(-gamma_purch'z_i); p_i ~ Beta(a_i, b_i), a_i = a0*exp(gamma_drop_a'z_i), "
    "b_i = b0*exp(gamma_drop_b'z_i). bgnbd: after each repeat purchase the customer drops out "
    "with prob p_i; mbgnbd: also right after the first purchase. Same-day purchases are kept "
    "as separate rows",
    "spend": "amount ~ Gamma(shape p, rate nu_i), nu_i ~ Gamma(shape q, rate gamma * "
    "exp(segment_log_shift[segment])): mean amount p*gamma*exp(shift)/(q-1), independent of "
    "purchase and dropout within a segment; rounded to cents",
    "subscription": "one monthly contract from acquired_at, plan ~ plan_share[segment], "
    "recurring_revenue = plan_revenue[plan] per month; theta_i ~ Beta(alpha_i, beta_i), "
    "alpha_i = alpha0*exp(gamma_churn_a'z_i), beta_i = beta0*exp(gamma_churn_b'z_i); at each "
    "monthly renewal the customer churns with prob theta_i (sBG): months paid ~ "
    "Geometric(theta_i) on 1, 2, ...; ended_at = acquired_at + months paid",
    "alive": "interactions, surveys, referrals and engagement happen only while alive: until "
    "the last purchase of a customer who dropped out (bgnbd), until ended_at (subscriptions), "
    "else until as_of",
    "interactions": "Poisson, rate rate0*exp(beta'x), x = (effort e, segment dummies); channel "
    "~ multinomial logit utility0 + utility_effort*e + utility_mid/enterprise; cost = "
    "channel_costs[channel]; effort (CES, 1 = low effort .. 7 = high) = clip(round("
    "effort_intercept + effort_slope*e + effort_noise_sd*N(0,1)), 1, 7), NULL with prob "
    "effort_missing; resolved ~ Bernoulli(sigmoid(resolved_intercept + resolved_effort*e + "
    "resolved_channel[channel]))",
    "surveys": "NPS invitations Poisson(nps_invite_rate) while alive, answered with prob "
    "sigmoid(nps_response_intercept + nps_response_engagement*g), score = clip(round("
    "nps_intercept + nps_satisfaction*s + nps_noise_sd*N(0,1)), 0, 10); after each interaction "
    "CSAT and CES answered (independently) with prob sigmoid(post_contact_response_intercept + "
    "post_contact_response_engagement*g), CSAT = clip(round(csat_intercept + "
    "csat_satisfaction*s + csat_effort*e + csat_resolved*resolved + csat_noise_sd*N(0,1)), 1, 5), "
    "CES = clip(round(ces_intercept + ces_effort*e + ces_noise_sd*N(0,1)), 1, 7)",
    "referrals": "Poisson, rate rate0*exp(beta'x), x = (satisfaction s, engagement g); "
    "referred_customer_id NULL",
    "engagement": "one row per week since acquisition with >= 1 session while alive: count ~ "
    "Poisson(rate0*exp(beta'x) * share of the week alive), x = (engagement g, segment dummies); "
    "occurred_at = acquired_at + 7*week",
}

#: What each intervention driver moves (``truth.json["drivers"]``, :class:`Intervention`).
DRIVER_EFFECTS = {
    "onboarding_days": "z.onboarding (linear) and z.onboarding_late (step: 1 above "
    "onboarding.threshold_days) -> alpha_i (purchase rate), a_i, b_i (dropout), "
    "subscription alpha_i, beta_i (churn); a customer moved across the threshold also gets the "
    "step (gamma_drop_a/gamma_churn_a onboarding_late); onboarded customers only "
    "(never-onboarded unchanged); clipped at 0 days",
    "training_hours": "z.training -> purchase rate, dropout, churn; clipped at 0",
    "employees": "z.employees -> nothing (placebo: all coefficients 0); clipped at 1",
    "satisfaction": "s -> purchase rate, dropout, churn (z.satisfaction), referral rate",
    "effort": "e -> contact rate, channel mix (so cost per contact), and satisfaction "
    "s' = s + rho*(e' - e) with everything satisfaction moves",
    "engagement": "g -> purchase rate, dropout, churn (z.engagement), referral rate",
}
