"""Future cohorts: how many customers the book will acquire each month, and who stands for them.

**How many.** :func:`acquisition_history` dates each customer's acquisition (``as_of`` minus
``exposure * period_days - 1`` days, else ``tenure * period_days``: a subscription's ``tenure``
stops at churn) and counts them per calendar month up to the month of ``as_of``, with the days
observed in each (``exposure_days``; ``as_of.day`` in the last, partial month).
:func:`forecast_acquisitions` takes the count of month ``i`` as Poisson with mean
``exposure_days_i * exp(b0 + b1 * x_i)``, ``x_i`` the middle of the month's observed days in
months from ``as_of``: a Poisson GLM (exposure offset, statsmodels) on the last
``window_months`` calendar months, that of ``as_of`` included for its observed days only (a book
ending mid-month does not pull the rate down; one that stopped acquiring a year ago has an empty
window). Overdispersion is the Pearson ``phi = max(1, X^2 / df)`` (quasi-Poisson): it scales the
coefficients' covariance and the slope gets a t test on ``df`` degrees of freedom. Guard rails,
each recorded in ``notes``:

- fewer than 6 complete months, ``trend=False``, or a slope not significant at 5 %: a constant
  daily rate, Gamma posterior (Jeffreys prior; counts and days divided by ``phi``);
- the trend's monthly mean stays within x3 and /3 of the window's mean monthly count;
- no customer acquired in the window (a closed cohort: CDNOW, or the default synthetic book,
  whose customers all joined in its first year): zero new customers.

Future month ``k`` is the ``k``-th average month (365.2425 / 12 days) after ``as_of``; its mean
integrates the daily rate over it. ``monthly_mean`` is the plug-in mean (fitted trend, or the
posterior mean of the constant rate). :meth:`AcquisitionForecast.draws` draws the parameters
(normal from the GLM covariance, or the Gamma posterior), turns each into monthly means (capped)
and draws counts: Poisson, or Gamma-Poisson with variance ``phi * mean`` if overdispersed.

**Who.** :func:`templates` picks the rows of the features frame acquired in the last ``months``
months, sampled down to ``max_rows``; with fewer than 30 of them, the most recent 30 % of the
book, or the whole book if that is still fewer than 30 rows (``Templates.basis`` says which).
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cxasset.exceptions import ModelDataError

MONTH_DAYS = 365.2425 / 12  #: days of one forecast month
MIN_MONTHS = 6  #: complete months needed to fit a trend
CAP = 3.0  #: the trend's monthly mean stays within [window mean / CAP, window mean * CAP]
MIN_TEMPLATES = 30


def _acquired_on(features: pd.DataFrame, as_of: dt.date, period_days: float) -> np.ndarray:
    """Acquisition day (datetime64[D]) of every row of ``features``."""
    if "exposure" in features:
        age = features["exposure"].to_numpy(dtype=float) * period_days - 1.0
    elif "tenure" in features:
        age = features["tenure"].to_numpy(dtype=float) * period_days
    else:
        raise ModelDataError("features need an exposure or tenure column to date acquisitions; "
                             f"got columns {list(features.columns)}")
    if np.isnan(age).any():
        raise ModelDataError(f"{int(np.isnan(age).sum())} customers have no exposure/tenure")
    return np.datetime64(pd.Timestamp(as_of).date(), "D") - np.rint(age).astype("timedelta64[D]")


def acquisition_history(features: pd.DataFrame, as_of: dt.date, period_days: float
                        ) -> pd.DataFrame:
    """Customers acquired per calendar month, up to the (partial) month of ``as_of``.

    Parameters
    ----------
    features : DataFrame
        One row per customer with ``exposure`` (or ``tenure``) in the book's periods.
    as_of : date
        The features' cut-off (the book's ``as_of``), inclusive.
    period_days : float
        Days per period of the book (``ws.settings.period_days``).

    Returns
    -------
    DataFrame
        ``month`` (Period[M]), ``acquired`` (int), ``exposure_days`` (days of the month observed:
        all of them, or ``as_of.day`` in the last month), one row per month from the first
        acquisition (or the month of ``as_of`` for an empty book) to the month of ``as_of``.
    """
    as_of = pd.Timestamp(as_of).date()
    end = pd.Period(as_of, "M")
    acq = pd.PeriodIndex(_acquired_on(features, as_of, period_days), freq="M")
    months = pd.period_range(min(acq.min(), end) if len(acq) else end, end, freq="M")
    counts = acq.value_counts().reindex(months, fill_value=0)
    days = months.days_in_month.to_numpy().astype(np.int64)
    days[-1] = as_of.day
    return pd.DataFrame({"month": months, "acquired": counts.to_numpy(dtype=np.int64),
                         "exposure_days": days})


def _sinhc(x: np.ndarray) -> np.ndarray:
    """sinh(x) / x, 1 at 0: with x = b / 2, a unit interval's integral of exp(b t) over its
    value at the midpoint."""
    safe = np.where(x == 0, 1.0, x)
    return np.where(x == 0, 1.0, np.sinh(safe) / safe)


@dataclass
class AcquisitionForecast:
    """Customers acquired in each of the next ``months`` months (see the module docstring)."""

    monthly_mean: np.ndarray
    method: str  # none | constant | trend
    notes: list[str]
    history: pd.DataFrame
    params: dict[str, Any] = field(default_factory=dict)

    def draws(self, n: int, rng: int | np.random.Generator | None = None) -> np.ndarray:
        """Draws (n, months) of the customers acquired per month.

        Parameters
        ----------
        n : int
            Number of draws.
        rng : int, Generator or None, default=None
            Seed or generator (through ``np.random.default_rng``).

        Returns
        -------
        ndarray
            Counts (int64), with parameter and count uncertainty.
        """
        rng, p, k = np.random.default_rng(rng), self.params, np.arange(len(self.monthly_mean))
        if self.method == "none":
            return np.zeros((n, k.size), np.int64)
        if self.method == "constant":
            mean = np.repeat(rng.gamma(p["shape"], 1.0 / p["rate"], (n, 1)) * MONTH_DAYS, k.size, 1)
        else:
            b = rng.multivariate_normal(p["coef"], p["cov"], n, method="cholesky")
            mean = MONTH_DAYS * np.exp(b[:, :1] + b[:, 1:] * (k + 0.5)) * _sinhc(b[:, 1:] / 2)
            mean = np.clip(mean, p["floor"], p["ceiling"])
        if p["dispersion"] > 1.0:
            mean = rng.gamma(mean / (p["dispersion"] - 1.0), p["dispersion"] - 1.0)
        return rng.poisson(mean).astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: method, notes, monthly means, parameters and history."""
        h = self.history.assign(month=self.history["month"].astype(str))
        return {"method": self.method, "notes": list(self.notes),
                "monthly_mean": [float(v) for v in self.monthly_mean],
                "params": {k: np.asarray(v).tolist() for k, v in self.params.items()},
                "history": h.to_dict(orient="records")}


def forecast_acquisitions(history: pd.DataFrame, months: int, *, window_months: int = 12,
                          trend: bool = True) -> AcquisitionForecast:
    """Forecast the customers acquired in each of the next ``months`` months.

    Parameters
    ----------
    history : DataFrame
        From :func:`acquisition_history`.
    months : int
        Forecast horizon in months (>= 1).
    window_months : int, default=12
        Calendar months the rate is fitted on (>= 1), ending with the month of ``as_of`` (partial
        unless ``as_of`` is its last day, and weighted by its observed days).
    trend : bool, default=True
        Fit a log-linear trend (kept only if significant at 5 %); False for a constant rate.

    Returns
    -------
    AcquisitionForecast
        Monthly means, a draw method and notes on the choices made.
    """
    for name, v in (("months", months), ("window_months", window_months)):
        if not isinstance(v, int | np.integer) or v < 1:
            raise ModelDataError(f"{name} must be an integer >= 1; got {v!r}")
    w = history.iloc[-window_months:]
    full = (w["exposure_days"].to_numpy() == pd.PeriodIndex(w["month"]).days_in_month.to_numpy())
    n_full = int(full.sum())
    y = w["acquired"].to_numpy(dtype=float)
    e = w["exposure_days"].to_numpy(dtype=float)
    if y.sum() == 0:
        note = f"no customer acquired in the last {len(w)} months: no new cohorts are forecast"
        return AcquisitionForecast(np.zeros(months), "none", [note], history)
    starts = pd.PeriodIndex(w["month"]).start_time
    end = starts[-1] + pd.Timedelta(days=float(e[-1]))  # end of the as_of day
    x = ((starts - end).days.to_numpy() + e / 2) / MONTH_DAYS
    window_mean = y.sum() / e.sum() * MONTH_DAYS
    notes = [f"window: {n_full} complete months" + ("" if full[-1] else " and the partial month"
             " of as_of") + f", {int(y.sum())} customers ({window_mean:.1f} a month)"]
    fit = _fit_trend(y, e, x) if trend and n_full >= MIN_MONTHS else None
    if fit is not None and fit[3] < 0.05:
        coef, cov, phi, p = fit
        raw = MONTH_DAYS * np.exp(coef[0] + coef[1] * (np.arange(months) + 0.5)) \
            * _sinhc(np.array(coef[1] / 2))
        lo, hi = window_mean / CAP, window_mean * CAP
        notes.append(f"log-linear trend of {100 * np.expm1(coef[1]):+.1f}% a month (p = {p:.3g})")
        capped = np.flatnonzero((raw < lo) | (raw > hi))
        if capped.size:
            notes.append(f"trend capped at x{CAP:g} or /{CAP:g} of the window's mean from month "
                         f"{capped[0] + 1} of the horizon")
        return AcquisitionForecast(np.clip(raw, lo, hi), "trend", _overdispersed(notes, phi),
                                   history, {"coef": coef, "cov": cov, "dispersion": phi,
                                             "floor": lo, "ceiling": hi})
    notes.append(("trend=False" if not trend else
                  f"fewer than {MIN_MONTHS} complete months of history" if n_full < MIN_MONTHS
                  else "the trend's fit failed" if fit is None else
                  f"trend of {100 * np.expm1(fit[0][1]):+.1f}% a month not significant "
                  f"(p = {fit[3]:.3g})") + ": constant rate")
    mu = e * y.sum() / e.sum()
    phi = max(1.0, float(((y - mu) ** 2 / mu).sum()) / (len(y) - 1)) if len(y) > 1 else 1.0
    shape, rate = y.sum() / phi + 0.5, e.sum() / phi
    return AcquisitionForecast(np.full(months, shape / rate * MONTH_DAYS), "constant",
                               _overdispersed(notes, phi), history,
                               {"shape": shape, "rate": rate, "dispersion": phi})


def _fit_trend(y: np.ndarray, e: np.ndarray, x: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, float, float] | None:
    """Coefficients, quasi-Poisson covariance, dispersion and the slope's p-value of the
    Poisson GLM ``log E[y] = log e + b0 + b1 x``; None if the fit fails."""
    import statsmodels.api as sm
    from scipy import stats
    from statsmodels.tools.sm_exceptions import ModelWarning

    with warnings.catch_warnings():  # a perfect fit warns; failures are checked below
        warnings.simplefilter("ignore", ModelWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        res = sm.GLM(y, np.column_stack([np.ones_like(x), x]), family=sm.families.Poisson(),
                     exposure=e).fit()
    phi = max(1.0, float(res.pearson_chi2) / res.df_resid)
    coef, cov = np.asarray(res.params), np.asarray(res.cov_params()) * phi
    if not res.converged or not (np.isfinite(coef).all() and np.isfinite(cov).all()):
        return None
    return coef, cov, phi, float(2 * stats.t.sf(abs(coef[1]) / np.sqrt(cov[1, 1]), res.df_resid))


def _overdispersed(notes: list[str], phi: float) -> list[str]:
    if phi > 1.0:
        notes.append(f"counts overdispersed (dispersion {phi:.2f}): intervals widened")
    return notes


@dataclass(frozen=True)
class Templates:
    """Rows (positions in the features frame) standing for future customers, and how chosen."""

    rows: np.ndarray
    basis: str  # recent | recent_share | all
    note: str


def templates(features: pd.DataFrame, as_of: dt.date, period_days: float, *, months: int = 12,
              max_rows: int = 5000, seed: int = 0) -> Templates:
    """Rows of ``features`` standing for future customers: the recent cohorts.

    Parameters
    ----------
    features : DataFrame
        One row per customer with ``exposure`` (or ``tenure``) in the book's periods.
    as_of : date
        The book's observation end.
    period_days : float
        Days per period of the book.
    months : int, default=12
        Customers acquired after ``as_of`` minus this many calendar months are recent.
    max_rows : int, default=5000
        At most this many rows, sampled without replacement.
    seed : int, default=0
        Seed of the sample.

    Returns
    -------
    Templates
        Sorted row positions, ``basis`` (recent, recent_share or all) and a ``note``.
    """
    acq = _acquired_on(features, as_of, period_days)
    since = np.datetime64((pd.Timestamp(as_of) - pd.DateOffset(months=months)).date(), "D")
    rows = np.flatnonzero(acq > since)
    basis, note = "recent", f"{len(rows)} customers acquired in the last {months} months"
    if len(rows) < MIN_TEMPLATES:
        share = np.argsort(acq, kind="stable")[::-1][: int(np.ceil(0.3 * len(acq)))]
        if len(share) >= MIN_TEMPLATES:
            basis, rows = "recent_share", np.sort(share)
            note = (f"only {note}: templates are the most recent 30 % of the book "
                    f"({len(rows)} customers)")
        else:
            basis, rows = "all", np.arange(len(acq))
            note = f"only {note}: templates are all {len(rows)} customers of the book"
    if len(rows) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_rows, replace=False))
        note += f", {max_rows} of them sampled"
    return Templates(rows.astype(np.int64), basis, note)
