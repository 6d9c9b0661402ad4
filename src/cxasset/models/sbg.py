"""Shifted-beta-geometric (sBG) model of contractual retention, and DERT.

At the end of every period a customer churns with probability theta, constant for the customer;
theta ~ Beta(alpha, beta) across customers. A customer's lifetime T (periods until and including the
one they churn in) has ``P(T = t) = B(alpha + 1, beta + t - 1) / B(alpha, beta)`` and survival
``S(t) = P(T > t) = B(alpha, beta + t) / B(alpha, beta)``. Retention rates rise with tenure,
``r_t = (beta + t - 1) / (alpha + beta + t - 1)``, because the customers likely to churn leave first.

Data, one row per customer (or per cell with weights): ``t``, the periods observed, and
``churned``: ``churned = 1`` means the customer churned in period ``t`` (T = t); ``churned = 0``
means they were still active after ``t`` periods (T > t, right-censored). A cohort survival table
(counts or percentages at the start of periods 0..n, the paper's Table 1) fits with
:meth:`ShiftedBetaGeoModel.fit_survival`.

With covariates: ``alpha_i = alpha * exp(g1' z_i)``, ``beta_i = beta * exp(g2' z_i)``; a positive
coefficient on ``alpha`` raises churn, a positive coefficient on ``beta`` raises retention.

References
----------
.. [1] Fader, P. S., & Hardie, B. G. S. (2007). How to project customer retention. Journal of
   Interactive Marketing, 21(1), 76-90.
.. [2] Fader, P. S., & Hardie, B. G. S. (2010). Customer-base valuation in a contractual setting:
   The perils of ignoring heterogeneity. Marketing Science, 29(1), 85-93.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from scipy.special import betaln, hyp2f1

from cxasset.exceptions import ModelDataError
from cxasset.models._base import BaseModel, Constraint


def survival_to_rows(survivors: np.ndarray | list[float], n_customers: float | None = None
                     ) -> tuple[pd.DataFrame, np.ndarray]:
    """Per-period cells ``(t, churned)`` and weights from a cohort survival table.

    ``survivors[k]`` is the number (or share) of the cohort active at the start of period k,
    ``k = 0..n``; ``n_customers`` rescales them to counts (for a table of percentages).
    """
    s = np.asarray(survivors, dtype=float)
    if s.ndim != 1 or len(s) < 2:
        raise ModelDataError("survivors must be a 1-D sequence with the cohort size at period 0 "
                             "and at least one later period")
    if np.any(~np.isfinite(s)) or np.any(s < 0) or s[0] <= 0:
        raise ModelDataError(f"survivors must be finite, >= 0, with survivors[0] > 0; got {s}")
    if np.any(np.diff(s) > 0):
        raise ModelDataError(f"survivors must not increase from one period to the next; got {s}")
    if n_customers is not None:
        s = s / s[0] * float(n_customers)
    n = len(s) - 1
    lost = -np.diff(s)
    t = np.r_[np.arange(1, n + 1), n]
    churned = np.r_[np.ones(n, dtype=int), 0]
    w = np.r_[lost, s[-1]]
    keep = w > 0
    return pd.DataFrame({"t": t[keep], "churned": churned[keep]}), w[keep]


class ShiftedBetaGeoModel(BaseModel):
    """Shifted-beta-geometric retention model, optionally with covariates on ``alpha``, ``beta``.

    Parameters
    ----------
    penalizer : float, default=0.0
        Ridge penalty on covariate coefficients.

    Attributes
    ----------
    params_ : dict
        ``alpha, beta`` (and covariate coefficients ``alpha[z]``, ``beta[z]``).
    result_ : FitResult
        Standard errors, intervals, log-likelihood.

    Examples
    --------
    >>> m = ShiftedBetaGeoModel().fit_survival([1000, 631, 468, 382, 326, 289, 262, 241])
    >>> round(m.params_["alpha"], 3), round(m.params_["beta"], 3)
    (0.704, 1.182)
    >>> m.survival([8, 9]).round(3)                        # doctest: +SKIP

    References
    ----------
    .. [1] Fader, P. S., & Hardie, B. G. S. (2007). How to project customer retention.
    """

    _param_names: ClassVar[tuple[str, ...]] = ("alpha", "beta")
    _constraints: ClassVar[dict[str, Constraint]] = {"alpha": "positive", "beta": "positive"}
    _data_columns: ClassVar[tuple[str, ...]] = ("t", "churned")
    _covariate_params: ClassVar[dict[str, int]] = {"alpha": 1, "beta": 1}

    def fit_survival(self, survivors: np.ndarray | list[float],
                     n_customers: float | None = None) -> Self:
        """Fit to one cohort's survival table.

        Parameters
        ----------
        survivors : array
            Customers active at the start of periods 0, 1, ..., n (period 0 is the cohort size).
        n_customers : float, optional
            Cohort size, when ``survivors`` are percentages or shares (the likelihood counts
            customers, so standard errors need the true size).
        """
        rows, w = survival_to_rows(survivors, n_customers)
        return self.fit(rows, weights=w)

    def _check_data(self, data: pd.DataFrame) -> None:
        t = data["t"].to_numpy(dtype=float)
        c = data["churned"].to_numpy(dtype=float)
        name = type(self).__name__
        if np.any(~np.isfinite(t)) or np.any(t != np.round(t)):
            raise ModelDataError(f"{name}: t must be whole periods")
        if np.any(~np.isin(c, (0, 1))):
            raise ModelDataError(f"{name}: churned must be 0 or 1")
        if np.any((t < 1) & (c == 1)) or np.any(t < 0):
            raise ModelDataError(f"{name}: a churned customer needs t >= 1 (the period they "
                                 "churned in) and t >= 0 otherwise")
        if not np.any(c == 1):
            raise ModelDataError(f"{name}: nobody churned, so the churn rate cannot be "
                                 "estimated; use a longer observation window")

    def _initial_params(self, data: Mapping[str, np.ndarray], w: np.ndarray) -> dict[str, float]:
        t, c = data["t"], data["churned"]
        # geometric MLE of the churn probability, split into a moderately heterogeneous Beta
        rate = float(np.dot(w, c) / max(np.dot(w, t), 1e-9))
        rate = min(max(rate, 1e-3), 0.999)
        return {"alpha": rate, "beta": 1.0 - rate}

    def _log_likelihood(self, p: Mapping[str, Any], data: Mapping[str, np.ndarray]) -> np.ndarray:
        a, b = p["alpha"], p["beta"]
        t, c = data["t"], data["churned"]
        base = betaln(a, b)
        churn = betaln(a + 1, b + np.maximum(t - 1, 0)) - base
        alive = betaln(a, b + t) - base
        return np.where(c == 1, churn, alive)

    # ------------------------------------------------------------------ predictions
    def _ab(self, data: pd.DataFrame | None) -> tuple[Any, Any]:
        self._check_is_fitted()
        if self.covariates_ and data is None:
            raise ModelDataError("this model has covariates: pass the customers' data")
        p = self.individual_params(data if data is not None else pd.DataFrame())
        if np.ndim(p["alpha"]) or np.ndim(p["beta"]):
            return tuple(np.broadcast_arrays(np.asarray(p["alpha"], dtype=float),
                                             np.asarray(p["beta"], dtype=float)))
        return p["alpha"], p["beta"]

    @staticmethod
    def _grid(t: Any, a: Any) -> tuple[np.ndarray, np.ndarray, bool]:
        """Broadcast periods ``t`` against per-customer parameters: (rows, len(t)) if both vary."""
        t_arr = np.asarray(t, dtype=float)
        a_arr = np.asarray(a, dtype=float)
        if a_arr.ndim and t_arr.ndim:
            return t_arr[None, :], np.ones((len(a_arr), 1)), True
        return t_arr, np.ones(()), False

    def survival(self, t: float | np.ndarray, data: pd.DataFrame | None = None,
                 age: float | np.ndarray = 0) -> np.ndarray:
        """P(still active after ``t`` more periods | active after ``age`` periods).

        With ``age = 0``, ``S(t)``: the share of a new cohort active at the start of period t.
        With covariates, one row per customer of ``data`` (by ``t`` if ``t`` is an array).
        """
        a, b = self._ab(data)
        tt, ones, two_d = self._grid(t, a)
        if two_d:
            a, b = np.asarray(a)[:, None], np.asarray(b)[:, None]
        age = np.asarray(age, dtype=float)
        if two_d and age.ndim:
            age = age[:, None]
        return np.exp(betaln(a, b + age + tt) - betaln(a, b + age)) * ones

    def retention_rate(self, t: float | np.ndarray, data: pd.DataFrame | None = None
                       ) -> np.ndarray:
        """``r_t = S(t) / S(t-1) = (beta + t - 1) / (alpha + beta + t - 1)``: the share of those
        active in period t who renew at its end."""
        a, b = self._ab(data)
        tt, ones, two_d = self._grid(t, a)
        if two_d:
            a, b = np.asarray(a)[:, None], np.asarray(b)[:, None]
        return (b + tt - 1) / (a + b + tt - 1) * ones

    def churn_probability(self, horizon: float | np.ndarray, data: pd.DataFrame | None = None,
                          age: float | np.ndarray = 0) -> np.ndarray:
        """P(churn within the next ``horizon`` periods | active after ``age`` periods)."""
        return 1.0 - self.survival(horizon, data, age)

    def expected_lifetime(self, data: pd.DataFrame | None = None, age: float | np.ndarray = 0,
                          horizon: int | None = None) -> np.ndarray | float:
        """Expected number of further periods, the current one included, that a customer
        active after ``age`` periods stays (``E[T - age | T > age]``).

        Without ``horizon``: ``(alpha + beta + age - 1) / (alpha - 1)``, finite only for
        ``alpha > 1``. With ``horizon``: truncated at ``horizon`` periods,
        ``E[min(T - age, horizon)] = sum_{k=0..horizon-1} S(k | age)``.

        Raises
        ------
        ModelDataError
            Without a horizon when ``alpha <= 1`` (the mean lifetime is infinite).
        """
        a, b = self._ab(data)
        age = np.asarray(age, dtype=float)
        if horizon is not None:
            k = np.arange(0, int(horizon), dtype=float)
            a_, b_ = np.asarray(a, dtype=float)[..., None], np.asarray(b, dtype=float)[..., None]
            ag = age[..., None]
            return np.sum(np.exp(betaln(a_, b_ + ag + k) - betaln(a_, b_ + ag)), axis=-1)
        if np.any(np.asarray(a) <= 1):
            raise ModelDataError(f"alpha = {np.min(a):.4g} <= 1: the expected lifetime is "
                                 "infinite under the sBG model (a share of customers almost "
                                 "never churns); pass a horizon, e.g. expected_lifetime("
                                 "horizon=120)")
        return (a + b + age - 1) / (a - 1)

    def dert(self, d: float, n: int | np.ndarray = 1, data: pd.DataFrame | None = None
             ) -> np.ndarray:
        """Discounted expected residual transactions of a customer who has made ``n - 1``
        renewals and is about to make the ``n``-th, at discount rate ``d`` per period
        (Fader & Hardie 2010, eq. 6): ``(beta + n - 1) / (alpha + beta + n - 1) *
        2F1(1, beta + n; alpha + beta + n; 1 / (1 + d))``. Multiply by the margin per period to
        get the residual value.
        """
        if not d > 0:
            raise ModelDataError(f"the discount rate d must be > 0 for DERT (got {d}): without "
                                 "discounting the residual lifetime can be infinite")
        a, b = self._ab(data)
        nn, ones, two_d = self._grid(n, a)
        if two_d:
            a, b = np.asarray(a)[:, None], np.asarray(b)[:, None]
        return (b + nn - 1) / (a + b + nn - 1) * hyp2f1(1.0, b + nn, a + b + nn, 1 / (1 + d)) * ones
