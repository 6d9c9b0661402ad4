"""Discrete-time hazard model with covariates for subscription (contractual) books.

Data are person-period rows (:func:`cxasset.features.person_periods`): one row per customer and
period at risk, ``churned = 1`` in the period a customer left. The hazard of churning in period k
given survival to it is a binary GLM,

    cloglog(h_k(z)) = log(-log(1 - h_k(z))) = a_k + b' z,

Link: complementary log-log by default, because it is the exact grouped-time version of a
continuous-time proportional hazards model (Prentice & Gloeckler 1978): ``exp(b)`` is a hazard
ratio that does not depend on the period length, so monthly and quarterly books give the same
coefficients. ``link="logit"`` (proportional odds, Cox's discrete model) is offered for comparison.

Baseline: one coefficient per period (``baseline="periods"``, the default; a non-parametric
baseline that follows any shape, e.g. the churn spike at the first renewal), periods from
``max_period`` on pooled into one tail band, and any band without events (or without survivors)
merged into its neighbour so every band is identified. ``baseline="log"`` is a smooth
``a + c log(period)`` (a Weibull-like baseline) for short or sparse books.

The person-period likelihood is a product of conditional Bernoulli terms, so identical rows
(band, covariates) are compressed into binomial counts (churned, at risk) without changing the
estimates or the model-based standard errors, and the GLM is fitted by Fisher scoring (IRLS) on
the normal equations, written here rather than with statsmodels' GLM: its least-squares step
costs about 15x more on millions of distinct cells (continuous covariates); the estimates agree
with statsmodels to 1e-6 (tested). The design's one-hot period block is never materialised. Covariates may
vary over time (each row's own values); predictions hold the given values fixed into the future.

References
----------
.. [1] Allison, P. D. (1982). Discrete-time methods for the analysis of event histories.
   Sociological Methodology, 13, 61-98.
.. [2] Prentice, R. L., & Gloeckler, L. A. (1978). Regression analysis of grouped survival data
   with application to breast cancer data. Biometrics, 34(1), 57-67.
.. [3] Singer, J. D., & Willett, J. B. (2003). Applied Longitudinal Data Analysis. Oxford UP, ch. 11-12.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Literal, Self

import numpy as np
import pandas as pd

from cxasset.exceptions import ConvergenceError, ModelDataError, NotFittedError
from cxasset.models._base import Z95, FitResult

Link = Literal["cloglog", "logit"]


class _Design:
    """A design matrix ``[one-hot(band), dense]`` kept in its sparse structure, so that the
    normal equations cost O(cells * (n_dense^2 + n_dense)) rather than O(cells * k^2)."""

    def __init__(self, band: np.ndarray | None, n_bands: int, dense: np.ndarray) -> None:
        self.band, self.nb, self.dense = band, n_bands, dense
        self.n, self.k = len(dense), n_bands + dense.shape[1]

    def xb(self, beta: np.ndarray) -> np.ndarray:
        eta = self.dense @ beta[self.nb:]
        return eta + beta[: self.nb][self.band] if self.nb else eta

    def xtv(self, v: np.ndarray) -> np.ndarray:
        head = np.bincount(self.band, weights=v, minlength=self.nb) if self.nb else []
        return np.r_[head, self.dense.T @ v]

    def xtwx(self, wt: np.ndarray) -> np.ndarray:
        out = np.zeros((self.k, self.k))
        nb = self.nb
        out[nb:, nb:] = (self.dense.T * wt) @ self.dense
        if nb:
            out[np.arange(nb), np.arange(nb)] = np.bincount(self.band, weights=wt, minlength=nb)
            cross = np.column_stack([np.bincount(self.band, weights=wt * c, minlength=nb)
                                     for c in self.dense.T]) if self.dense.shape[1] else None
            if cross is not None:
                out[:nb, nb:] = cross
                out[nb:, :nb] = cross.T
        return out

    def full_rank(self) -> bool:
        g = self.xtwx(np.ones(self.n))
        d = np.sqrt(np.diag(g))
        if np.any(d == 0):
            return False
        ev = np.linalg.eigvalsh(g / np.outer(d, d))
        return bool(ev.min() > 1e-10 * ev.max())


class DiscreteHazardModel:
    """Discrete-time proportional hazards model (binomial GLM on person-periods).

    Parameters
    ----------
    baseline : {"periods", "log"}, default="periods"
        One coefficient per period (pooled from ``max_period`` on), or ``a + c log(period)``.
    max_period : int, default=24
        First period of the pooled tail band (``baseline="periods"``).
    link : {"cloglog", "logit"}, default="cloglog"
        Grouped proportional hazards (cloglog) or proportional odds (logit).
    cov_type : {"nonrobust", "cluster"}, default="nonrobust"
        Standard errors from the Fisher information (correct for the person-period
        likelihood, which factors into conditional Bernoulli terms), or a sandwich clustered by
        ``customer_id`` (robust to a misspecified hazard; needs the ``customer_id`` column).

    Attributes
    ----------
    params_ : dict
        ``period[k]`` (or ``intercept``, ``log_period``) baseline coefficients on the link scale
        and one coefficient per covariate (``exp`` of a cloglog coefficient is a hazard ratio).
    result_ : FitResult
        Standard errors, 95% intervals, log-likelihood (Bernoulli, per person-period), AIC/BIC.
    bands_ : list of (int, int | None)
        The period bands of the baseline (first and last period; ``None`` for the open tail).
    n_customers_ : int
        Customers in the fit (when ``customer_id`` is present).

    Examples
    --------
    >>> m = DiscreteHazardModel().fit(pp, covariates=["nps", "tickets"])  # doctest: +SKIP
    >>> m.churn_probability(12, customers)                               # doctest: +SKIP
    """

    def __init__(self, baseline: Literal["periods", "log"] = "periods", max_period: int = 24,
                 link: Link = "cloglog",
                 cov_type: Literal["nonrobust", "cluster"] = "nonrobust") -> None:
        self.baseline = baseline
        self.max_period = max_period
        self.link = link
        self.cov_type = cov_type

    # ------------------------------------------------------------------ fitting
    def _check_hyper(self) -> None:
        name = type(self).__name__
        if self.baseline not in ("periods", "log"):
            raise ValueError(f"The 'baseline' parameter of {name} must be 'periods' or 'log'. "
                             f"Got {self.baseline!r} instead.")
        if self.link not in ("cloglog", "logit"):
            raise ValueError(f"The 'link' parameter of {name} must be 'cloglog' or 'logit'. "
                             f"Got {self.link!r} instead.")
        if self.cov_type not in ("nonrobust", "cluster"):
            raise ValueError(f"The 'cov_type' parameter of {name} must be 'nonrobust' or "
                             f"'cluster'. Got {self.cov_type!r} instead.")
        if not (isinstance(self.max_period, int | np.integer) and self.max_period >= 1):
            raise ValueError(f"The 'max_period' parameter of {name} must be an int >= 1. "
                             f"Got {self.max_period!r} instead.")

    def fit(self, data: pd.DataFrame, covariates: Sequence[str] | None = None,
            weights: np.ndarray | None = None) -> Self:
        """Fit to person-period rows.

        Parameters
        ----------
        data : DataFrame
            Columns ``period`` (1, 2, ...), ``churned`` (0/1), optionally ``customer_id``, and
            the covariate columns.
        covariates : list of str, optional
            Numeric covariate columns (encode categories as 0/1 dummies).
        weights : array, optional
            Person-periods each row stands for.
        """
        self._check_hyper()
        covs = list(covariates or [])
        name = type(self).__name__
        missing = [c for c in ("period", "churned", *covs) if c not in data.columns]
        if missing:
            raise ModelDataError(f"{name}: required column(s) {missing} missing; data has "
                                 f"{list(data.columns)}")
        period = data["period"].to_numpy(dtype=float)
        y = data["churned"].to_numpy(dtype=float)
        if np.any(~np.isfinite(period)) or np.any(period < 1) or np.any(period != np.round(period)):
            raise ModelDataError(f"{name}: period must be whole numbers >= 1 (the k-th period of "
                                 "a customer's lifetime)")
        if np.any(~np.isin(y, (0, 1))):
            raise ModelDataError(f"{name}: churned must be 0 or 1")
        w = np.ones(len(data)) if weights is None else np.asarray(weights, dtype=float)
        if not np.any(y * w > 0):
            raise ModelDataError(f"{name}: nobody churned in these data, so the hazard cannot be "
                                 "estimated (it is 0 on every row); use a longer observation "
                                 "window or a book with ended subscriptions")
        if not np.any((1 - y) * w > 0):
            raise ModelDataError(f"{name}: every row is a churn, so nobody survives a period; "
                                 "check that active periods are included (person_periods)")
        self._check_covariates(data, covs)
        notes: list[str] = []
        period = period.astype(np.int64)
        if self.baseline == "periods":
            self.bands_ = self._make_bands(period, y, w, notes)
            key = self._band_index(period)
        else:
            self.bands_ = []
            key = period
        zrows = data[covs].to_numpy(dtype=float) if covs else np.zeros((len(data), 0))
        if covs:
            cell = (pd.DataFrame(zrows).assign(_key=key)
                    .groupby(["_key", *range(len(covs))], sort=False).ngroup().to_numpy())
        else:
            cell = pd.factorize(key)[0]
        n_cells = int(cell.max()) + 1
        succ = np.bincount(cell, weights=y * w, minlength=n_cells)
        tot = np.bincount(cell, weights=w, minlength=n_cells)
        first = np.empty(n_cells, dtype=np.int64)
        first[cell[::-1]] = np.arange(len(cell) - 1, -1, -1)
        self.covariates_ = covs
        X, names = self._design(key[first], zrows[first])
        if not X.full_rank():
            raise ModelDataError(f"{name}: covariates {covs} are collinear with each other or "
                                 "with the period baseline (e.g. a covariate that is a function "
                                 "of tenure); drop one of them")
        beta, n_iter = self._irls(X, succ, tot)
        meat = None
        if self.cov_type == "cluster":
            if "customer_id" not in data.columns:
                raise ModelDataError(f"{name}: cov_type='cluster' needs a customer_id column")
            meat = self._cluster_meat(X, beta, cell, y, w, data["customer_id"].to_numpy())
        self._finish(X, beta, succ, tot, names, notes, n_iter, float(w.sum()), meat)
        self.n_customers_ = (int(data["customer_id"].nunique()) if "customer_id" in data.columns
                             else None)
        return self

    def _check_covariates(self, data: pd.DataFrame, covs: list[str]) -> None:
        name = type(self).__name__
        bad = [c for c in covs if not pd.api.types.is_numeric_dtype(data[c])]
        if bad:
            raise ModelDataError(f"{name}: covariate(s) {bad} are not numeric; encode categories "
                                 "as 0/1 dummy columns (one level left out as the baseline)")
        nan = [c for c in covs if data[c].isna().any()]
        if nan:
            raise ModelDataError(f"{name}: covariate(s) {nan} have missing values; impute them "
                                 "or drop those rows")
        flat = [c for c in covs if data[c].nunique() < 2]
        if flat:
            raise ModelDataError(f"{name}: covariate(s) {flat} have no variance: every row has "
                                 "the same value, so their effect cannot be estimated; drop them")

    def _make_bands(self, period: np.ndarray, y: np.ndarray, w: np.ndarray,
                    notes: list[str]) -> list[tuple[int, int | None]]:
        cap = int(min(self.max_period, period.max()))
        b = np.minimum(period, cap)
        ev = np.bincount(b, weights=y * w, minlength=cap + 1)[1:]
        risk = np.bincount(b, weights=w, minlength=cap + 1)[1:]
        bands = [[k, k, ev[k - 1], risk[k - 1]] for k in range(1, cap + 1) if risk[k - 1] > 0]
        merged = False
        i = len(bands) - 1
        while len(bands) > 1 and i >= 0:  # merge unidentified bands into their neighbour
            lo, hi, e, r = bands[i]
            if e > 0 and e < r:
                i -= 1
                continue
            j = i - 1 if i > 0 else i + 1
            a, c = sorted((i, j))
            bands[a] = [bands[a][0], bands[c][1], bands[a][2] + bands[c][2],
                        bands[a][3] + bands[c][3]]
            del bands[c]
            merged = True
            i = min(i, len(bands) - 1)
        if merged:
            notes.append("periods without churn (or without survivors) were pooled with a "
                         "neighbouring period so that each baseline hazard is identified")
        out: list[tuple[int, int | None]] = [(int(lo), int(hi)) for lo, hi, _, _ in bands]
        out[0] = (1, out[0][1])
        out[-1] = (out[-1][0], None)
        return out

    def _band_index(self, period: np.ndarray) -> np.ndarray:
        starts = np.array([lo for lo, _ in self.bands_])
        return np.searchsorted(starts, np.asarray(period), side="right") - 1

    def _band_names(self) -> list[str]:
        names = []
        for lo, hi in self.bands_:
            names.append(f"period[{lo}+]" if hi is None else
                         f"period[{lo}]" if lo == hi else f"period[{lo}-{hi}]")
        return names

    def _design(self, key: np.ndarray, z: np.ndarray) -> tuple[_Design, list[str]]:
        if self.baseline == "periods":
            return _Design(key.astype(np.int64), len(self.bands_), z), self._band_names() + \
                self.covariates_
        dense = np.column_stack([np.ones(len(key)), np.log(key.astype(float)), z])
        return _Design(None, 0, dense), ["intercept", "log_period", *self.covariates_]

    def _irls(self, X: _Design, succ: np.ndarray, tot: np.ndarray) -> tuple[np.ndarray, int]:
        """Fisher scoring (IRLS) for the binomial GLM on cells, with step halving."""
        beta = np.zeros(X.k)  # start: the pooled hazard in every band, no covariate effects
        start = self._link(np.array([succ.sum() / tot.sum()]))[0]
        if X.nb:
            beta[: X.nb] = start
        else:
            beta[0] = start
        ll_old = self._loglik(X.xb(beta), succ, tot)
        for it in range(1, 101):
            eta = X.xb(beta)
            mu, dmu = self._inv_link(eta), self._dmu(eta)
            var = np.maximum(mu * (1 - mu), 1e-300)
            wt = tot * dmu**2 / var
            z = eta + (succ / tot - mu) / np.maximum(dmu, 1e-300)
            try:
                new = np.linalg.solve(X.xtwx(wt), X.xtv(wt * z))
            except np.linalg.LinAlgError as exc:
                raise ConvergenceError(self._help("the information matrix is singular")) from exc
            step = new - beta
            for _ in range(30):  # step halving keeps every iteration an ascent
                ll = self._loglik(X.xb(beta + step), succ, tot)
                if ll >= ll_old - 1e-12 * abs(ll_old):
                    break
                step /= 2
            beta = beta + step
            done = abs(ll - ll_old) <= 1e-12 * (abs(ll_old) + 1) and np.max(np.abs(step)) < 1e-7
            ll_old = ll
            if done:
                return beta, it
        raise ConvergenceError(self._help("100 IRLS iterations did not settle"))

    def _help(self, what: str) -> str:
        return (f"{type(self).__name__} did not converge: {what}. Check, in order:\n"
                "  1. a covariate that (nearly) perfectly predicts churn or survival: drop it\n"
                "  2. sparse late periods: lower max_period or use baseline='log'\n"
                "  3. centre and scale continuous covariates")

    def _link(self, mu: np.ndarray) -> np.ndarray:
        mu = np.clip(mu, 1e-12, 1 - 1e-12)
        return np.log(-np.log1p(-mu)) if self.link == "cloglog" else np.log(mu / (1 - mu))

    def _dmu(self, eta: np.ndarray) -> np.ndarray:
        if self.link == "cloglog":
            eta = np.minimum(eta, 700.0)
            return np.exp(eta - np.exp(eta))
        mu = self._inv_link(eta)
        return mu * (1 - mu)

    def _loglik(self, eta: np.ndarray, succ: np.ndarray, tot: np.ndarray) -> float:
        """Bernoulli log-likelihood of the person-periods (no binomial coefficients)."""
        if self.link == "cloglog":
            eta = np.minimum(eta, 700.0)
            log_surv = -np.exp(eta)                        # log(1 - h)
            log_h = np.log(-np.expm1(log_surv))
        else:
            log_h, log_surv = -np.logaddexp(0, -eta), -np.logaddexp(0, eta)
        fail = tot - succ
        with np.errstate(invalid="ignore"):
            val = (np.where(succ > 0, succ * log_h, 0.0) + np.where(fail > 0, fail * log_surv, 0.0))
        return float(np.sum(val))

    def _cluster_meat(self, X: _Design, beta: np.ndarray, cell: np.ndarray, y: np.ndarray,
                      w: np.ndarray, cust: np.ndarray) -> tuple[np.ndarray, int]:
        """Sum over customers of the outer product of their summed score (sandwich meat)."""
        eta = X.xb(beta)
        mu, dmu = self._inv_link(eta), self._dmu(eta)
        g = dmu / np.maximum(mu * (1 - mu), 1e-300)
        r = w * (y - mu[cell]) * g[cell]
        codes, uniq = pd.factorize(cust)
        cols = []
        if X.nb:
            from scipy import sparse

            a = sparse.csr_matrix((r, (codes, X.band[cell])), shape=(len(uniq), X.nb))
            cols.append(a.toarray())
        cols += [np.bincount(codes, weights=r * c[cell], minlength=len(uniq))[:, None]
                 for c in X.dense.T]
        s = np.hstack(cols)
        return s.T @ s, len(uniq)

    def _finish(self, X: _Design, beta: np.ndarray, succ: np.ndarray, tot: np.ndarray,
                names: list[str], notes: list[str], n_iter: int, n_obs: float,
                meat: tuple[np.ndarray, int] | None) -> None:
        eta = X.xb(beta)
        mu, dmu = self._inv_link(eta), self._dmu(eta)
        wt = tot * dmu**2 / np.maximum(mu * (1 - mu), 1e-300)
        info = X.xtwx(wt)
        try:
            cov = np.linalg.inv(info)
        except np.linalg.LinAlgError:
            cov = np.linalg.pinv(info)
            notes.append("the information matrix is singular: standard errors are unreliable")
        method = f"IRLS (binomial GLM, {self.link} link)"
        if meat is not None:
            m, n_groups = meat
            cov = cov @ m @ cov * n_groups / max(n_groups - 1, 1)
            method += ", standard errors clustered by customer"
        se = np.sqrt(np.clip(np.diag(cov), 0, None))
        ll = self._loglik(eta, succ, tot)
        k = len(beta)
        self._beta = beta
        self.params_ = {n: float(b) for n, b in zip(names, beta, strict=True)}
        self.result_ = FitResult(
            params=self.params_,
            std_err={n: float(s) for n, s in zip(names, se, strict=True)},
            conf_int={n: (float(b - Z95 * s), float(b + Z95 * s))
                      for n, b, s in zip(names, beta, se, strict=True)},
            log_likelihood=ll, aic=2 * k - 2 * ll, bic=float(np.log(max(n_obs, 1.0))) * k - 2 * ll,
            n_obs=int(round(n_obs)), n_cells=X.n, converged=True, method=method,
            iterations=n_iter, cov_unconstrained=cov, notes=tuple(notes))
        self.n_obs_ = int(round(n_obs))

    # ------------------------------------------------------------------ predictions
    def _inv_link(self, eta: np.ndarray) -> np.ndarray:
        eta = np.asarray(eta, dtype=float)
        if self.link == "cloglog":
            return -np.expm1(-np.exp(np.minimum(eta, 700.0)))
        return 1.0 / (1.0 + np.exp(-eta))

    def _check_is_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet; call fit(data) "
                                 "first")

    def _linear_z(self, data: pd.DataFrame | None) -> np.ndarray:
        """b' z per customer (shape (n,)); a single zero when there are no covariates."""
        if not self.covariates_:
            return np.zeros(1 if data is None else len(data))
        if data is None:
            raise ModelDataError("this model has covariates: pass the customers' data")
        missing = [c for c in self.covariates_ if c not in data.columns]
        if missing:
            raise ModelDataError(f"covariate column(s) {missing} missing from the data")
        b = self._beta[len(self._beta) - len(self.covariates_):]
        return data[self.covariates_].to_numpy(dtype=float) @ b

    def _baseline_eta(self, period: np.ndarray) -> np.ndarray:
        period = np.maximum(np.asarray(period, dtype=float), 1.0)
        if self.baseline == "periods":
            return self._beta[self._band_index(period.astype(np.int64))]
        return self._beta[0] + self._beta[1] * np.log(period)

    def hazard(self, period: int | np.ndarray, data: pd.DataFrame | None = None) -> np.ndarray:
        """P(churn in ``period`` | active at its start), per customer of ``data`` (rows) and
        period (columns if ``period`` is an array)."""
        self._check_is_fitted()
        p = np.asarray(period)
        eta = self._linear_z(data)[:, None] + self._baseline_eta(np.atleast_1d(p))[None, :]
        h = self._inv_link(eta)
        return h[:, 0] if p.ndim == 0 else h

    def _tenure(self, data: pd.DataFrame | None, tenure: Any, n: int) -> np.ndarray:
        if tenure is None:
            tenure = (np.floor(data["tenure"].to_numpy(dtype=float))
                      if data is not None and "tenure" in data.columns else 0)
        t = np.broadcast_to(np.asarray(tenure, dtype=float), (n,))
        if np.any(t < 0) or np.any(~np.isfinite(t)):
            raise ModelDataError("tenure (periods completed) must be finite and >= 0")
        return np.floor(t)

    def _survival_curve(self, horizon: int, data: pd.DataFrame | None, tenure: Any
                        ) -> np.ndarray:
        """S(j | k) for j = 0..horizon: shape (n, horizon + 1)."""
        self._check_is_fitted()
        if int(horizon) != horizon or horizon < 0:
            raise ValueError(f"horizon must be a whole number of periods >= 0; got {horizon}")
        lz = self._linear_z(data)
        k = self._tenure(data, tenure, len(lz))
        steps = np.arange(1, int(horizon) + 1)
        eta = lz[:, None] + self._baseline_eta(k[:, None] + steps[None, :])
        log_s = np.cumsum(np.log1p(-self._inv_link(eta)), axis=1)
        return np.exp(np.column_stack([np.zeros(len(lz)), log_s]))

    def survival(self, horizon: int, data: pd.DataFrame | None = None,
                 tenure: float | np.ndarray | None = None) -> np.ndarray:
        """P(still active after ``horizon`` more periods | active now, ``tenure`` periods done).

        ``tenure`` defaults to ``floor(data["tenure"])`` when that column exists (the output of
        :func:`cxasset.features.lifetimes`), else 0 (a new customer).
        """
        return self._survival_curve(horizon, data, tenure)[:, -1]

    def churn_probability(self, horizon: int, data: pd.DataFrame | None = None,
                          tenure: float | np.ndarray | None = None) -> np.ndarray:
        """P(churn within the next ``horizon`` periods | active now)."""
        return 1.0 - self.survival(horizon, data, tenure)

    def expected_lifetime_remaining(self, data: pd.DataFrame | None = None, horizon: int = 120,
                                    tenure: float | np.ndarray | None = None) -> np.ndarray:
        """Expected number of the next ``horizon`` periods a customer active now is active in
        (the coming period included): ``sum_{j=0..horizon-1} S(j | tenure)``, in periods."""
        return self._survival_curve(horizon, data, tenure)[:, :-1].sum(axis=1)

    # ------------------------------------------------------------------ state
    @property
    def _theta(self) -> np.ndarray:
        return self._beta

    def with_theta(self, theta: np.ndarray) -> DiscreteHazardModel:
        """A copy at other coefficients (e.g. a draw from ``result_.cov_unconstrained``)."""
        self._check_is_fitted()
        other = copy.copy(self)
        other._beta = np.asarray(theta, dtype=float)
        return other

    def to_state(self) -> dict[str, Any]:
        """A plain, JSON-serialisable form of the fitted model (see :meth:`from_state`)."""
        self._check_is_fitted()
        return {"model": type(self).__name__,
                "hyperparameters": {"baseline": self.baseline, "max_period": self.max_period,
                                    "link": self.link, "cov_type": self.cov_type},
                "covariates": list(self.covariates_), "bands": [list(b) for b in self.bands_],
                "beta": self._beta.tolist(), "n_obs": self.n_obs_,
                "result": self.result_.to_state()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> DiscreteHazardModel:
        """The model saved by :meth:`to_state`."""
        if state.get("model") != cls.__name__:
            raise ValueError(f"state is of a {state.get('model')}, not a {cls.__name__}")
        m = cls(**state["hyperparameters"])
        m.covariates_ = list(state["covariates"])
        m.bands_ = [tuple(b) for b in state["bands"]]
        m._beta = np.asarray(state["beta"], dtype=float)
        m.n_obs_ = int(state["n_obs"])
        m.result_ = FitResult.from_state(state["result"])
        m.params_ = dict(m.result_.params)
        return m

    def summary(self) -> pd.DataFrame:
        """Estimates, standard errors and 95% intervals (link scale)."""
        self._check_is_fitted()
        return self.result_.summary()

    def __repr__(self) -> str:
        if not hasattr(self, "params_"):
            return f"{type(self).__name__}(unfitted)"
        covs = ", ".join(f"{c}={self.params_[c]:.3g}" for c in self.covariates_)
        return (f"{type(self).__name__}({self.link}, {len(self.params_) - len(self.covariates_)} "
                f"baseline terms{'; ' + covs if covs else ''}; "
                f"LL={self.result_.log_likelihood:.2f}, n={self.n_obs_:,})")
