"""The ``retention`` mechanism of subscription books: churn hazard with the drivers as covariates.

**Model.** A discrete-time proportional-hazards GLM (:class:`DiscreteHazardModel`, cloglog link)
on person-period rows (:func:`cxasset.features.person_periods`): one row per customer and period
at risk, ``churned = 1`` in the period they left. The design's terms (standardised drivers,
threshold terms, controls) enter as time-invariant covariates joined by ``customer_id``::

    cloglog(h_ik) = log(-log(1 - h_ik)) = a_k + b' z_i

so a term's coefficient ``b`` is a **log hazard ratio** per standardised unit: one unit more
multiplies the churn hazard of every period by ``exp(b)`` (positive ``b``: more churn, less
customer equity; ``EQUITY_SIGN["retention"] = -1``).

**Money.** As :func:`cxasset.valuation.workspace.value_subscriptions` values a subscription book,
an active customer of age ``k_i`` (periods completed, ``n_periods`` of
:func:`cxasset.features.lifetimes`) with recurring revenue ``rr_i`` is worth

    f_i(delta) = margin * rr_i * sum_{t=1..H} S_i(t | k_i, delta) / (1 + d)^t,
    S_i(t | k_i, delta) = prod_{j=1..t} (1 - h(a_{k_i + j} + b' z_i + delta)),

where ``h`` is the model's inverse link. A shift ``delta`` of the linear predictor acts **forward
only**: the customer's current age (and so where they are on the baseline hazard) is kept, and
every future period's hazard ratio is multiplied by ``exp(delta)``; for the cloglog link this is
exactly ``S_i(t | delta) = S_i(t | 0) ** exp(delta)``. ``S`` is built from the model's own pieces
(``_baseline_eta``, ``_linear_z``, ``_inv_link``), the same ones
:meth:`DiscreteHazardModel.survival` uses, so at ``delta = 0`` the value is exactly the one of
``survival_after``. Churned customers (and customers without a running subscription) are worth 0.
"""

from __future__ import annotations

from typing import Any, Literal

import ibis
import numpy as np
import pandas as pd

from cxasset.features import person_periods
from cxasset.features._time import date_day
from cxasset.features.subscriptions import JITTER
from cxasset.models.hazard import DiscreteHazardModel
from cxasset.valuemap.drivers import Design
from cxasset.valuemap.mechanisms import GRID, MechanismFit, Response


def retention_person_periods(ws: Any, customer_ids: np.ndarray) -> pd.DataFrame:
    """Person-period rows (``customer_id, period, churned``) as of the book's ``as_of`` of the
    customers ``customer_ids``; the subscriptions are filtered to them in the engine."""
    s = ws.settings
    subs = ws.table("subscriptions")
    ids = ibis.memtable({"customer_id": np.asarray(customer_ids, dtype=np.int64)})
    subs = subs.filter(subs.customer_id.isin(ids.customer_id))
    return person_periods(subs, date_day(s.as_of), s.period_days).to_pandas()


def fit_retention_mechanism(ws: Any, features: pd.DataFrame, design: Design, rows: np.ndarray,
                            terms: list[str],
                            cov_type: Literal["cluster", "nonrobust"] = "cluster"
                            ) -> tuple[DiscreteHazardModel, MechanismFit]:
    """Discrete-time (cloglog) hazard of churn per period with ``terms`` as covariates.

    Parameters
    ----------
    ws : Workspace
        A subscription book (its ``subscriptions`` table, ``as_of`` and period length).
    features : DataFrame
        The feature frame the design was built from (``customer_id``; rows aligned with
        ``design.frame``).
    design : Design
        ``terms`` are columns of ``design.frame`` (standardised drivers, thresholds, controls).
    rows : array of int
        Positions in ``features``/``design.frame`` of the customers to fit on.
    terms : list of str
        Time-invariant covariates, joined onto each customer's person-period rows.
    cov_type : {"cluster", "nonrobust"}
        Standard errors clustered by customer (default: robust to the hazard's misspecification,
        e.g. unobserved heterogeneity in churn, as the count GLMs' sandwich errors are) or from
        the Fisher information.

    Returns
    -------
    (DiscreteHazardModel, MechanismFit)
        The fitted model and ``MechanismFit("retention", terms, coef, cov, n_obs, ...)``:
        one coefficient per term on the cloglog scale (log hazard ratio per standardised unit),
        ``n_obs`` the customers with person-periods. A term without variance among the fitted
        customers cannot be estimated: it is left out of the model and gets coefficient 0 with
        variance 0 (so no p-value), and a note says so.
    """
    rows = np.asarray(rows)
    ids = features["customer_id"].to_numpy()[rows]
    pp = retention_person_periods(ws, ids)
    cov = design.frame.iloc[rows][["customer_id", *terms]]
    pp = pp.merge(cov, on="customer_id", how="inner", validate="many_to_one")
    flat = [t for t in terms if pp[t].nunique() < 2]
    used = [t for t in terms if t not in flat]
    model = DiscreteHazardModel(cov_type=cov_type).fit(pp, covariates=used)
    full = model.result_.cov_unconstrained
    k0 = len(model._beta) - len(used)
    coef = np.zeros(len(terms))
    var = np.zeros((len(terms), len(terms)))
    pos = [terms.index(t) for t in used]
    coef[pos] = [model.params_[t] for t in used]
    var[np.ix_(pos, pos)] = full[k0:, k0:]
    notes = [f"fitted on {len(pp):,} person-periods of {model.n_customers_:,} customers "
             f"({int(pp['churned'].sum()):,} churned)"]
    notes += list(model.result_.notes)
    if flat:
        notes.append(f"no variance among the fitted customers, effect not estimated: "
                     f"{', '.join(flat)}")
    fit = MechanismFit("retention", list(terms), coef, var, int(model.n_customers_ or 0),
                       "DiscreteHazardModel", notes)
    return model, fit


def customer_age(features: pd.DataFrame) -> np.ndarray:
    """Periods an active customer has completed (``n_periods`` of
    :func:`cxasset.features.lifetimes`, the ``age`` of ``retention_rows``): the feature frame's
    subscription ``tenure`` rounded down, an end within a tenth of a period of a boundary
    counting as on it."""
    if "n_periods" in features.columns:
        return features["n_periods"].to_numpy(dtype=float)
    t = features["tenure"].to_numpy(dtype=float)
    return np.floor(np.nan_to_num(t, nan=0.0) + JITTER)


def shifted_survival(model: DiscreteHazardModel, data: pd.DataFrame, age: np.ndarray,
                     horizon: int, delta: float | np.ndarray = 0.0) -> np.ndarray:
    """``S_i(t | age_i, delta)`` for t = 1..horizon, shape (n, horizon): survival of the next
    periods with the linear predictor shifted by ``delta`` (a float or one per customer).

    ``eta_it = baseline_eta(age_i + t) + b' z_i + delta``, ``S_i(t) = prod_{j<=t} (1 - h(eta_ij))``;
    at ``delta = 0`` this is :meth:`DiscreteHazardModel.survival` with ``tenure=age``.
    """
    lz = model._linear_z(data)
    k = np.floor(np.asarray(age, dtype=float))
    steps = np.arange(1, int(horizon) + 1)
    d = np.broadcast_to(np.asarray(delta, dtype=float), lz.shape)
    eta = (lz + d)[:, None] + model._baseline_eta(k[:, None] + steps[None, :])
    return np.exp(np.cumsum(np.log1p(-model._inv_link(eta)), axis=1))


def retention_response(model: DiscreteHazardModel, features: pd.DataFrame, design: Design,
                       rows: np.ndarray, margin: float, horizon: int, period_rate: float,
                       scale: float) -> Response:
    """Value at stake per customer at ``rows`` as a function of the shift of the hazard's linear
    predictor, tabulated on :data:`GRID`.

    ``f_i(delta) = margin * rr_i * sum_{t=1..H} S_i(t | age_i, delta) / (1+d)^t`` for active
    customers (``features.active``; ``rr_i`` their ``recurring_revenue``, ``age_i`` from
    :func:`customer_age`), 0 for the others. Row ``i`` of the table is ``rows[i]``, so the
    response lines up with the design's scored rows.
    """
    rows = np.asarray(rows)
    f = features.iloc[rows]
    if "active" in f.columns:
        active = f["active"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    else:
        active = ~f["churned"].astype("boolean").fillna(True).to_numpy(dtype=bool)
    rr = np.nan_to_num(f["recurring_revenue"].to_numpy(dtype=float), nan=0.0)
    weight = np.where(active, margin * rr, 0.0)
    table = np.zeros((len(rows), len(GRID)))
    on = np.flatnonzero(weight != 0)
    if len(on) and horizon > 0:
        data = design.frame.iloc[rows[on]]
        age = customer_age(f)[on]
        disc = (1.0 + period_rate) ** -np.arange(1, int(horizon) + 1, dtype=float)
        for g, d in enumerate(GRID):
            table[on, g] = weight[on] * (shifted_survival(model, data, age, horizon, d) @ disc)
    return Response(table=table, scale=scale)
