"""Maximum likelihood for the customer-base models: transforms, optimiser, Hessian, results.

A concrete model declares its scalar parameters with their constraint (``positive`` via log,
``unit`` via logit), which of them covariates act on (``_covariate_params``, each with a sign:
``alpha_i = alpha0 * exp(-gamma' z_i)`` has sign -1), and implements ``_log_likelihood(p, data)``
returning one log-likelihood per data row, where ``p`` maps every parameter name to a scalar or,
for covariate-driven ones, a per-row array. The base class compresses the data on identical rows
(weights), optimises on the unconstrained scale from good starting values, and computes standard
errors from the observed information (numerical Hessian of the weighted log-likelihood).
"""

from __future__ import annotations

import copy
import functools
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Self, TypeVar

import numpy as np
import pandas as pd
from scipy import optimize

from cxasset.exceptions import ConvergenceError, ConvergenceWarning, ModelDataError, NotFittedError

Constraint = Literal["positive", "unit", "real"]
F = TypeVar("F", bound=Callable[..., Any])
Z95 = 1.959963984540054
#: Cells above which a fit first warm-starts on a random 5% of them.
WARM_START_CELLS = 100_000


@dataclass(frozen=True)
class FitResult:
    """The outcome of a maximum-likelihood fit (statsmodels-like, frozen)."""

    params: dict[str, float]
    std_err: dict[str, float]
    conf_int: dict[str, tuple[float, float]]
    log_likelihood: float
    aic: float
    bic: float
    n_obs: int
    n_cells: int
    converged: bool
    method: str
    iterations: int
    cov_unconstrained: np.ndarray = field(repr=False)
    notes: tuple[str, ...] = ()

    def summary(self) -> pd.DataFrame:
        """Estimates with standard errors and 95% intervals, one row per parameter."""
        rows = {k: {"estimate": v, "std_err": self.std_err[k], "ci_lower": self.conf_int[k][0],
                    "ci_upper": self.conf_int[k][1]} for k, v in self.params.items()}
        return pd.DataFrame.from_dict(rows, orient="index")[
            ["estimate", "std_err", "ci_lower", "ci_upper"]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "std_err": self.std_err,
            "conf_int": {k: list(v) for k, v in self.conf_int.items()},
            "log_likelihood": self.log_likelihood,
            "aic": self.aic,
            "bic": self.bic,
            "n_obs": self.n_obs,
            "n_cells": self.n_cells,
            "converged": self.converged,
            "method": self.method,
            "iterations": self.iterations,
            "notes": list(self.notes),
        }

    def to_state(self) -> dict[str, Any]:
        """:meth:`to_dict` plus the covariance, for saving a fit (see :meth:`from_state`)."""
        return {**self.to_dict(), "cov_unconstrained": self.cov_unconstrained.tolist()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> FitResult:
        r = dict(state)
        r["conf_int"] = {k: tuple(v) for k, v in r["conf_int"].items()}
        r["cov_unconstrained"] = np.asarray(r["cov_unconstrained"], dtype=float)
        r["notes"] = tuple(r["notes"])
        return cls(**r)


def compress(df: pd.DataFrame, columns: Sequence[str],
             weights: np.ndarray | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Unique rows of ``df[columns]`` (in order of first appearance) and their total weight: the
    sufficient-statistic cells."""
    w = np.ones(len(df)) if weights is None else np.asarray(weights, dtype=float)
    first, inv = unique_rows(df[list(columns)].to_numpy(dtype=float))
    cells = df[list(columns)].iloc[first].reset_index(drop=True)
    if len(first) == len(df):
        return cells, w[first]
    return cells, np.bincount(inv, weights=w, minlength=len(first))


def unique_rows(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first row of each distinct row of the 2-D float array ``a`` (in order of first
    appearance; NaN equals NaN) and each row's group: ``a[first][inv] == a``.

    Each column's unique values are combined into one integer code, renumbered after every
    column so it stays small; once every row has its own code the remaining columns cannot
    merge any (covariates with continuous values: no grouping work). About 50x faster than
    ``np.unique(axis=0)`` (which sorts a structured view) and than pandas' group-by on many
    columns."""
    n = len(a)
    code = np.zeros(n, dtype=np.int64)
    for j in range(a.shape[1]):
        u, col = np.unique(a[:, j], return_inverse=True)
        code = np.unique(code * len(u) + col.ravel(), return_inverse=True)[1].ravel()
        if code.max(initial=-1) == n - 1:  # every row distinct
            return np.arange(n), np.arange(n)
    _, first, inv = np.unique(code, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # groups in order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order], rank[inv.ravel()]


class BaseModel(ABC):
    """Shared fitting machinery; see the module docstring for what a model provides."""

    _param_names: ClassVar[tuple[str, ...]]
    _constraints: ClassVar[dict[str, Constraint]]
    _data_columns: ClassVar[tuple[str, ...]]
    #: parameter -> sign of the covariate effect in ``param_i = param0 * exp(sign * gamma' z)``
    _covariate_params: ClassVar[dict[str, int]] = {}

    def __init__(self, penalizer: float = 0.0, tol: float = 1e-8, max_iter: int = 500) -> None:
        self.penalizer = penalizer
        self.tol = tol
        self.max_iter = max_iter

    # ------------------------------------------------------------------ to implement
    @abstractmethod
    def _log_likelihood(self, p: Mapping[str, Any], data: Mapping[str, np.ndarray]) -> np.ndarray:
        """Log-likelihood of each data row given parameters ``p`` (scalars or per-row arrays)."""

    @abstractmethod
    def _initial_params(self, data: Mapping[str, np.ndarray], w: np.ndarray) -> dict[str, float]:
        """Starting values on the natural scale (method of moments or a rule of thumb)."""

    def _check_data(self, data: pd.DataFrame) -> None:  # noqa: B027 (optional hook)
        """Model-specific data checks (raise ModelDataError)."""

    def _prepare(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Precompute what the likelihood reuses at every evaluation (e.g. unique values)."""
        return data

    def _ll_grad(self, p: Mapping[str, Any], data: Mapping[str, np.ndarray]
                 ) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
        """Per-row log-likelihood and its derivatives with respect to each natural parameter
        (per row), or None when the model has no analytic gradient (then it is numerical)."""
        return None

    def _row_scores(self, p: Mapping[str, Any], data: Mapping[str, np.ndarray]
                    ) -> dict[str, np.ndarray]:
        """The derivatives of :meth:`_ll_grad` alone (a model may skip the log-likelihood)."""
        return self._ll_grad(p, data)[1]  # type: ignore[index]

    # ------------------------------------------------------------------ fitting
    def fit(self, data: pd.DataFrame, covariates: Mapping[str, Sequence[str]] | Sequence[str]
            | None = None, weights: np.ndarray | None = None,
            start_params: Mapping[str, float] | None = None) -> Self:
        """Fit by maximum likelihood.

        Parameters
        ----------
        data : DataFrame
            One row per customer (or per cell, with ``weights``) with the model's data columns
            and any covariate columns.
        covariates : list of str, or mapping of parameter name to list of str, optional
            Time-invariant covariates. A list applies to every covariate-driven parameter; a
            mapping chooses per parameter (e.g. ``{"alpha": ["nps"], "a": ["onboarding_days"]}``).
        weights : array, optional
            Row weights (number of customers a row stands for).
        start_params : dict, optional
            Starting values by name, as in ``params_`` (e.g. another fit's ``params_``: a refit
            on a subsample or with one covariate changed starts at the optimum it is close to);
            names not given start as usual (coefficients at 0).
        """
        if self.penalizer < 0:
            raise ValueError(f"The 'penalizer' parameter of {type(self).__name__} must be a "
                             f"float in the range [0, inf). Got {self.penalizer!r} instead.")
        self.covariates_ = self._covariate_spec(covariates)
        cov_cols = sorted({c for cols in self.covariates_.values() for c in cols})
        missing = [c for c in (*self._data_columns, *cov_cols) if c not in data.columns]
        if missing:
            raise ModelDataError(f"{type(self).__name__}: required column(s) {missing} missing; "
                                 f"data has {list(data.columns)}")
        self._check_data(data)
        self._check_covariates(data, cov_cols)
        self._last_hessian: tuple[np.ndarray, np.ndarray] | None = None
        cells, w = compress(data, [*self._data_columns, *cov_cols], weights)
        arrays = {c: cells[c].to_numpy(dtype=float) for c in cells.columns}
        self._arrays, self._w = self._prepare(arrays), w
        for name, cols in self.covariates_.items():
            self._arrays[f"__z__:{name}"] = np.column_stack([arrays[c] for c in cols])
        theta0 = self._pack_start(self._initial_params(arrays, w))
        if start_params:
            for i, name in enumerate(self._names()):
                if name in start_params:
                    kind = self._constraints[name] if i < len(self._param_names) else "real"
                    theta0[i] = _to_free(float(start_params[name]), kind)
        with one_blas_thread():
            res = self._optimise(theta0, warm=not start_params)
            self._theta = res.x
            self._finish(res, int(round(w.sum())), len(w))
        return self

    def _covariate_spec(self, covariates: Any) -> dict[str, list[str]]:
        if not covariates:
            return {}
        if not self._covariate_params:
            raise ModelDataError(f"{type(self).__name__} takes no covariates")
        if isinstance(covariates, Mapping):
            bad = sorted(set(covariates) - set(self._covariate_params))
            if bad:
                raise ModelDataError(
                    f"{type(self).__name__}: covariates can act on "
                    f"{sorted(self._covariate_params)}, not {bad}")
            return {k: list(v) for k, v in covariates.items() if v}
        return {k: list(covariates) for k in self._covariate_params}

    def _check_covariates(self, data: pd.DataFrame, cols: list[str]) -> None:
        if not cols:
            return
        z = data[cols]
        bad = [c for c in cols if not np.issubdtype(z[c].dtype, np.number)]
        if bad:
            raise ModelDataError(f"covariate(s) {bad} are not numeric; encode categories as "
                                 "0/1 dummy columns (one level left out as the baseline)")
        nan = [c for c in cols if z[c].isna().any()]
        if nan:
            raise ModelDataError(f"covariate(s) {nan} have missing values "
                                 f"({', '.join(str(int(z[c].isna().sum())) for c in nan)} rows); "
                                 "impute them or drop those customers")
        flat = [c for c in cols if z[c].std() == 0 or len(z) < 2]
        if flat:
            raise ModelDataError(f"covariate(s) {flat} have no variance: every customer has the "
                                 "same value, so their effect cannot be estimated; drop them")
        for param, pcols in self.covariates_.items():
            m = z[pcols].to_numpy(dtype=float)
            m = np.column_stack([np.ones(len(m)), m])
            if np.linalg.matrix_rank(m) < m.shape[1]:
                raise ModelDataError(
                    f"covariates {pcols} of {param} are perfectly collinear (one is a linear "
                    "combination of the others, or of the intercept); drop one of them")

    # -- parameter vector: scalars on the unconstrained scale, then coefficient blocks
    def _names(self) -> list[str]:
        names = list(self._param_names)
        for p, cols in getattr(self, "covariates_", {}).items():
            names += [f"{p}[{c}]" for c in cols]
        return names

    def _pack_start(self, start: Mapping[str, float]) -> np.ndarray:
        head = [_to_free(start[n], self._constraints[n]) for n in self._param_names]
        n_coef = sum(len(c) for c in self.covariates_.values())
        return np.array(head + [0.0] * n_coef)

    def _unpack(self, theta: np.ndarray, arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
        k = len(self._param_names)
        p: dict[str, Any] = {n: _from_free(theta[i], self._constraints[n])
                             for i, n in enumerate(self._param_names)}
        i = k
        for name, cols in self.covariates_.items():
            gamma = theta[i : i + len(cols)]
            i += len(cols)
            z = arrays.get(f"__z__:{name}")  # stacked once per fit by fit()
            if z is None or z.shape[1] != len(cols):
                z = np.column_stack([arrays[c] for c in cols])
            p[name] = p[name] * np.exp(self._covariate_params[name] * (z @ gamma))
        return p

    def _objective(self, theta: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            ll = self._log_likelihood(self._unpack(theta, self._arrays), self._arrays)
        val = -wsum(self._w, ll)
        if self.penalizer:
            val += self.penalizer * float(np.sum(theta[len(self._param_names):] ** 2))
        return val if np.isfinite(val) else 1e300

    def _summed_ll_grad(self, p: Mapping[str, float], data: Mapping[str, np.ndarray],
                        w: np.ndarray) -> tuple[float, dict[str, float]] | None:
        """Total weighted log-likelihood and its derivatives with respect to each (scalar)
        parameter, for fits without covariates; None to use :meth:`_ll_grad` row by row. A
        model overrides it when sums over unique values make the evaluation much cheaper."""
        return None

    def _objective_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray] | None:
        """Negative log-likelihood and its analytic gradient on the free scale, if available."""
        k = len(self._param_names)
        w = self._w
        with np.errstate(all="ignore"):
            p = self._unpack(theta, self._arrays)
            summed = None if self.covariates_ else self._summed_ll_grad(p, self._arrays, w)
            out = None if summed is not None else self._ll_grad(p, self._arrays)
        if summed is None and out is None:
            return None
        grad = np.empty(len(theta))
        if summed is not None:
            total, dsum = summed
            val = -total
            for i, name in enumerate(self._param_names):
                grad[i] = -dsum[name] * _dnat(theta[i], self._constraints[name])
            return (val, grad) if np.isfinite(val) and np.all(np.isfinite(grad)) else (
                1e300, np.zeros(len(theta)))
        ll, dp = out  # type: ignore[misc]
        val = -wsum(w, ll)
        for i, name in enumerate(self._param_names):
            kind = self._constraints[name]
            d = np.asarray(dp[name]) * (p[name] if kind == "positive" else
                                        p[name] * (1 - p[name]) if kind == "unit" else 1.0)
            grad[i] = -float(np.sum(w * d))
        i = k
        for name, cols in self.covariates_.items():
            d = w * np.asarray(dp[name]) * p[name] * self._covariate_params[name]
            for c in cols:
                grad[i] = -wsum(d, self._arrays[c])
                i += 1
        if self.penalizer:
            val += self.penalizer * float(np.sum(theta[k:] ** 2))
            grad[k:] += 2 * self.penalizer * theta[k:]
        if not np.isfinite(val) or not np.all(np.isfinite(grad)):
            return 1e300, np.zeros(len(theta))
        return val, grad

    def _warm_start(self, theta0: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """On many cells, start from the fit to a fixed random 5% of them (weights scaled up):
        the full fit then needs a few iterations instead of dozens."""
        n = len(self._w)
        if n < WARM_START_CELLS:
            return theta0, None
        keep = np.random.default_rng(0).random(n) < 0.05
        full = self._arrays, self._w
        self._arrays = {k: v[keep] for k, v in full[0].items() if len(v) == n}
        self._w = full[1][keep] / 0.05
        try:
            self._arrays = self._prepare(self._arrays)
            res = self._optimise(theta0)
        finally:
            self._arrays, self._w = full
        if not (np.all(np.isfinite(res.x)) and res.fun < 1e299):
            return theta0, None
        h = getattr(res, "hess_inv", None)
        try:
            h = (np.asarray(h) + np.asarray(h).T) / 2
            np.linalg.cholesky(h)
        except (np.linalg.LinAlgError, ValueError, TypeError):
            h = None
        return res.x, h

    def _optimise(self, theta0: np.ndarray, warm: bool = True) -> optimize.OptimizeResult:
        scale = max(float(self._w.sum()), 1.0)
        fun = lambda th: self._objective(th) / scale  # noqa: E731 - scaled for the optimiser
        if self._objective_grad(theta0) is not None:
            theta0, hess_inv0 = self._warm_start(theta0) if warm else (theta0, None)

            def fun_grad(th: np.ndarray) -> tuple[float, np.ndarray]:
                v, g = self._objective_grad(th)  # type: ignore[misc]
                return v / scale, g / scale

            if self._newton():  # covariates: trust-region Newton on the rows' Hessian

                def hess(th: np.ndarray) -> np.ndarray:
                    h = self._row_hessian(th)
                    if h is None:
                        h = _hessian_from_grad(lambda t: self._objective_grad(t)[1], th)  # type: ignore[index]
                    self._last_hessian = (th.copy(), h)  # the last is usually at the optimum
                    return h / scale

                res = optimize.minimize(fun_grad, theta0, jac=True, hess=hess,
                                        method="trust-exact",
                                        options={"maxiter": self.max_iter, "gtol": self.tol})
                # near the optimum the predicted gains fall below rounding ("a bad
                # approximation"): converged when the gradient is small (as _finish judges it)
                res.success = bool(res.success) or (
                    res.fun < 1e299 and self._small_gradient(res.x, int(scale)))
            else:
                res = optimize.minimize(fun_grad, theta0, jac=True, method="BFGS",
                                        options={"maxiter": self.max_iter * len(theta0),
                                                 "gtol": self.tol, "hess_inv0": hess_inv0})
            if res.success and res.fun < 1e299:
                res.fun = res.fun * scale
                return res
            theta0 = res.x if np.all(np.isfinite(res.x)) and res.fun < 1e299 else theta0
        best = None
        for method in ("BFGS", "Nelder-Mead"):
            res = optimize.minimize(fun, theta0 if best is None else best.x, method=method,
                                    options={"maxiter": self.max_iter * len(theta0),
                                             "gtol": self.tol} if method == "BFGS" else
                                    {"maxiter": 4000 * len(theta0), "xatol": 1e-10,
                                     "fatol": 1e-12})
            if best is None or res.fun < best.fun:
                best = res
            if method == "BFGS" and np.isfinite(res.fun) and (
                    res.success or self._small_gradient(res.x, int(scale))):
                break  # BFGS "precision loss" at a stationary point is a converged fit
        assert best is not None
        if not np.isfinite(best.fun) or best.fun >= 1e299:
            raise ConvergenceError(self._convergence_help("the log-likelihood is not finite at "
                                                          "any point the optimiser tried"))
        best.fun = best.fun * scale
        return best

    def _small_gradient(self, theta: np.ndarray, n_obs: int) -> bool:
        """The gradient of the objective is below ``1e-3 sqrt(n)`` in every direction (the
        analytic one when the model has it, else forward differences)."""
        out = self._objective_grad(theta)
        if out is None or out[0] >= 1e299:
            return _gradient_small(self._objective, theta, n_obs)
        return bool(np.all(np.abs(out[1]) < 1e-3 * max(n_obs, 1) ** 0.5))

    def _convergence_help(self, what: str) -> str:
        return (f"{type(self).__name__} did not converge: {what}. Check, in order:\n"
                "  1. the data: are there repeat buyers, and is T >= recency for every row?\n"
                "  2. covariates: centre and scale them (mean 0, sd 1); drop near-constant ones\n"
                "  3. add a small ridge penalty on the coefficients: penalizer=0.01\n"
                "  4. fewer covariates, or a simpler model (e.g. without covariates)")

    def _newton(self) -> bool:
        """Whether :meth:`_row_hessian` applies: covariates on positive parameters only, and an
        analytic per-row gradient."""
        return bool(self.covariates_) and all(
            self._constraints[n] == "positive" for n in self.covariates_) and (
            type(self)._ll_grad is not BaseModel._ll_grad)

    def _row_hessian(self, theta: np.ndarray) -> np.ndarray | None:
        """Hessian of the objective through each row's second derivatives, for fits with
        covariates on positive parameters (else None).

        With ``eta_k`` each row's parameter on the free scale (``log p_k``; for a covariate-driven
        one ``log p_k0 + sign * gamma' z``), ``eta = A_i theta`` is linear in the parameter
        vector, so ``H = -sum_i w_i A_i' (d^2 ll_i / d eta^2) A_i`` exactly. The per-row
        ``K x K`` second derivatives are central differences of the analytic per-row gradient
        (``2 K`` evaluations of :meth:`_ll_grad`, where differencing the whole gradient needs two
        per free parameter, dozens with covariates)."""
        if not self._newton():
            return None
        names, arrays, w = self._param_names, self._arrays, self._w
        with np.errstate(all="ignore"):
            p0 = self._unpack(theta, arrays)
            if self._ll_grad(p0, arrays) is None:
                return None

            def grad_eta(p: Mapping[str, Any]) -> list[np.ndarray]:
                dp = self._row_scores(p, arrays)
                out = []
                for n in names:
                    v, kind = p[n], self._constraints[n]
                    chain = v if kind == "positive" else v * (1 - v) if kind == "unit" else 1.0
                    out.append(np.broadcast_to(np.asarray(dp[n]) * chain, w.shape))
                return out

            K = len(names)
            h2 = np.empty((K, K, len(w)))
            for k, n in enumerate(names):
                h = 1e-5 * max(abs(float(theta[k])), 1.0)
                up, down = dict(p0), dict(p0)
                kind = self._constraints[n]
                if n in self.covariates_ or kind == "positive":
                    up[n], down[n] = p0[n] * np.exp(h), p0[n] * np.exp(-h)
                else:
                    up[n] = _from_free(theta[k] + h, kind)
                    down[n] = _from_free(theta[k] - h, kind)
                gu, gd = grad_eta(up), grad_eta(down)
                for j in range(K):
                    h2[j, k] = (gu[j] - gd[j]) / (2 * h)
        # the free parameters each eta_k depends on: its head parameter, then its coefficients
        blocks: list[tuple[list[int], np.ndarray | None]] = []
        i = K
        for k, n in enumerate(names):
            cols = self.covariates_.get(n)
            if cols is None:
                blocks.append(([k], None))
                continue
            z = arrays.get(f"__z__:{n}")
            if z is None or z.shape[1] != len(cols):
                z = np.column_stack([arrays[c] for c in cols])
            blocks.append(([k, *range(i, i + len(cols))], self._covariate_params[n] * z))
            i += len(cols)
        hess = np.zeros((len(theta), len(theta)))
        for k in range(K):
            ik, zk = blocks[k]
            for j in range(k, K):
                ij, zj = blocks[j]
                c = w * (h2[k, j] + h2[j, k]) / 2
                if not np.all(np.isfinite(c)):
                    return None
                top = np.concatenate([[c.sum()], c @ zj]) if zj is not None else np.array(
                    [c.sum()])
                if zk is None:
                    blk = top[None, :]
                else:
                    cz = zk * c[:, None]
                    rest = np.column_stack([cz.sum(axis=0), cz.T @ zj]) if zj is not None \
                        else cz.sum(axis=0)[:, None]
                    blk = np.vstack([top, rest])
                hess[np.ix_(ik, ij)] = -blk
                hess[np.ix_(ij, ik)] = -blk.T
        if self.penalizer:
            hess[K:, K:] += 2 * self.penalizer * np.eye(len(theta) - K)
        return hess

    def _finish(self, res: optimize.OptimizeResult, n_obs: int, n_cells: int) -> None:
        theta = res.x
        last = getattr(self, "_last_hessian", None)
        fast = last[1] if last is not None and np.array_equal(last[0], theta) \
            else self._row_hessian(theta)
        self._last_hessian = None
        if fast is not None:
            hess = fast
        elif self._objective_grad(theta) is not None:
            hess = _hessian_from_grad(lambda th: self._objective_grad(th)[1], theta)  # type: ignore[index]
        else:
            hess = _hessian(self._objective, theta)
        notes = []
        try:
            cov = np.linalg.inv(hess)
            if not np.all(np.isfinite(cov)) or np.any(np.diag(cov) <= 0):
                raise np.linalg.LinAlgError
        except np.linalg.LinAlgError:
            cov = np.linalg.pinv(hess)
            notes.append("the Hessian is singular: standard errors are unreliable (a parameter "
                         "is not identified by these data)")
        se_free = np.sqrt(np.clip(np.diag(cov), 0, None))
        names = self._names()
        params, se, ci = {}, {}, {}
        k = len(self._param_names)
        for i, n in enumerate(names):
            kind = self._constraints[n] if i < k else "real"
            est = _from_free(theta[i], kind)
            params[n] = float(est)
            se[n] = float(se_free[i] * _dnat(theta[i], kind))
            lo, hi = theta[i] - Z95 * se_free[i], theta[i] + Z95 * se_free[i]
            ci[n] = (float(_from_free(lo, kind)), float(_from_free(hi, kind)))
        converged = bool(res.success) or self._small_gradient(theta, n_obs)
        if not converged:
            notes.append(f"optimiser: {res.message}")
            warnings.warn(self._convergence_help(str(res.message)), ConvergenceWarning,
                          stacklevel=3)
        ll = -float(res.fun) + (self.penalizer * float(np.sum(theta[k:] ** 2))
                                if self.penalizer else 0.0)
        n_par = len(theta)
        self.params_ = params
        self.result_ = FitResult(
            params=params, std_err=se, conf_int=ci, log_likelihood=ll,
            aic=2 * n_par - 2 * ll, bic=np.log(max(n_obs, 1)) * n_par - 2 * ll, n_obs=n_obs,
            n_cells=n_cells, converged=converged, method=str(res.get("method", "BFGS")),
            iterations=int(res.get("nit", 0)), cov_unconstrained=cov, notes=tuple(notes))
        self.n_obs_ = n_obs

    def robust_cov(self) -> np.ndarray:
        """Sandwich (Huber-White) covariance of the free parameters, ``H^-1 (sum_i s_i s_i')
        H^-1`` with ``s_i`` each customer's score: valid when the model is misspecified (e.g.
        heterogeneity the covariates do not capture), where the Hessian's inverse understates
        the uncertainty of covariate effects. Falls back to the model-based covariance without
        an analytic per-row gradient."""
        self._check_is_fitted()
        bread = self.result_.cov_unconstrained
        with np.errstate(all="ignore"):
            p = self._unpack(self._theta, self._arrays)
            out = self._ll_grad(p, self._arrays)
        if out is None:
            return bread
        _, dp = out
        cols = []
        for name in self._param_names:
            kind = self._constraints[name]
            v = p[name]
            chain = v if kind == "positive" else v * (1 - v) if kind == "unit" else 1.0
            cols.append(np.broadcast_to(np.asarray(dp[name]) * chain, self._w.shape))
        for name, cs in self.covariates_.items():
            d = np.asarray(dp[name]) * p[name] * self._covariate_params[name]
            cols += [d * self._arrays[c] for c in cs]
        S = np.column_stack(cols)
        meat = S.T @ (S * self._w[:, None])
        return bread @ meat @ bread

    @classmethod
    def from_params(cls, **params: float) -> Self:
        """A model with given parameters and no covariates (e.g. published estimates), for
        predictions; it has no standard errors."""
        missing = [n for n in cls._param_names if n not in params]
        if missing or set(params) - set(cls._param_names):
            raise ValueError(f"{cls.__name__}.from_params needs exactly {cls._param_names}; "
                             f"got {sorted(params)}")
        m = cls()
        m.covariates_ = {}
        m._theta = np.array([_to_free(params[n], cls._constraints[n]) for n in cls._param_names])
        m.params_ = {n: float(params[n]) for n in cls._param_names}
        m.n_obs_ = 0
        return m

    # ------------------------------------------------------------------ after the fit
    def _check_is_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet; call fit(data) "
                                 "first")

    def individual_params(self, data: pd.DataFrame, theta: np.ndarray | None = None
                          ) -> dict[str, Any]:
        """Each customer's parameters (covariate-driven ones per row) at the fit or ``theta``."""
        self._check_is_fitted()
        cols = sorted({c for cs in self.covariates_.values() for c in cs})
        arrays = {c: data[c].to_numpy(dtype=float) for c in cols}
        return self._unpack(self._theta if theta is None else theta, arrays)

    def sample_theta(self, n: int, random_state: int | np.random.Generator | None = None
                     ) -> np.ndarray:
        """Draws of the unconstrained parameter vector from its asymptotic normal distribution."""
        self._check_is_fitted()
        rng = np.random.default_rng(random_state)
        return rng.multivariate_normal(self._theta, self.result_.cov_unconstrained, size=n,
                                       method="eigh")

    def to_state(self) -> dict[str, Any]:
        """A plain, JSON-serialisable form of the fitted model (see :meth:`from_state`)."""
        self._check_is_fitted()
        state: dict[str, Any] = {
            "model": type(self).__name__,
            "hyperparameters": {"penalizer": self.penalizer, "tol": self.tol,
                                "max_iter": self.max_iter},
            "covariates": self.covariates_,
            "theta": self._theta.tolist(),
            "params": self.params_,
            "n_obs": self.n_obs_,
        }
        if hasattr(self, "result_"):
            state["result"] = self.result_.to_state()
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """The model saved by :meth:`to_state`."""
        if state.get("model") != cls.__name__:
            raise ValueError(f"state is of a {state.get('model')}, not a {cls.__name__}")
        m = cls(**state["hyperparameters"])
        m.covariates_ = {k: list(v) for k, v in state["covariates"].items()}
        m._theta = np.asarray(state["theta"], dtype=float)
        m.params_ = dict(state["params"])
        m.n_obs_ = int(state["n_obs"])
        if "result" in state:
            m.result_ = FitResult.from_state(state["result"])
        return m

    def with_theta(self, theta: np.ndarray) -> Self:
        """A copy of the fitted model at another parameter vector (e.g. a draw of
        :meth:`sample_theta`), for predictions under parameter uncertainty."""
        self._check_is_fitted()
        other = copy.copy(self)
        other._theta = np.asarray(theta, dtype=float)
        return other

    def summary(self) -> pd.DataFrame:
        self._check_is_fitted()
        return self.result_.summary()

    def __repr__(self) -> str:
        if not hasattr(self, "params_"):
            return f"{type(self).__name__}(unfitted)"
        inner = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
        if not hasattr(self, "result_"):
            return f"{type(self).__name__}({inner})"
        return (f"{type(self).__name__}({inner}; LL={self.result_.log_likelihood:.2f}, "
                f"n={self.n_obs_:,})")


def one_blas_thread() -> Any:
    """A context in which BLAS runs on one thread (``with one_blas_thread(): ...``).

    The fits multiply tall, narrow matrices (customers x terms), where OpenBLAS's threads gain
    little; on a machine whose cores are shared with other jobs their synchronisation made such
    products a hundred times slower (measured: the 200,000 x 50 cross-product ``Z' diag(c) Z``
    took 4.5 s on two threads, 0.06 s on one). threadpoolctl comes with scikit-learn."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def on_one_blas_thread(fn: F) -> F:
    """Decorator: ``fn`` runs inside :func:`one_blas_thread`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with one_blas_thread():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def wsum(a: np.ndarray, b: np.ndarray) -> float:
    """sum(a * b): an elementwise product and a sum, not BLAS's dot, which is several times
    slower on the OpenBLAS builds this project runs on (OPENBLAS_CORETYPE set)."""
    return float(np.multiply(a, b).sum())


def logaddexp(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """log(exp(u) + exp(v)), stable; several times faster than ``np.logaddexp``."""
    m = np.maximum(u, v)
    with np.errstate(invalid="ignore"):
        d = np.where(np.isfinite(m), -np.abs(u - v), -np.inf)
    return m + np.log1p(np.exp(d))


def _to_free(v: float, kind: Constraint) -> float:
    if kind == "positive":
        return float(np.log(v))
    if kind == "unit":
        return float(np.log(v) - np.log1p(-v))
    return float(v)


def _from_free(t: Any, kind: Constraint) -> Any:
    if kind == "positive":
        return np.exp(t)
    if kind == "unit":
        return 1.0 / (1.0 + np.exp(-t))
    return t


def _dnat(t: float, kind: Constraint) -> float:
    """Derivative of the natural parameter with respect to the free one (delta method)."""
    if kind == "positive":
        return float(np.exp(t))
    if kind == "unit":
        s = 1.0 / (1.0 + np.exp(-t))
        return float(s * (1 - s))
    return 1.0


def _hessian(f: Any, x: np.ndarray) -> np.ndarray:
    """Central-difference Hessian of a scalar function."""
    n = len(x)
    h = 1e-4 * np.maximum(np.abs(x), 1.0)
    hess = np.empty((n, n))
    f0 = f(x)
    for i in range(n):
        ei = np.zeros(n)
        ei[i] = h[i]
        hess[i, i] = (f(x + ei) - 2 * f0 + f(x - ei)) / h[i] ** 2
        for j in range(i):
            ej = np.zeros(n)
            ej[j] = h[j]
            v = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (
                4 * h[i] * h[j])
            hess[i, j] = hess[j, i] = v
    return hess


def _hessian_from_grad(g: Any, x: np.ndarray) -> np.ndarray:
    """Central differences of an analytic gradient, symmetrised."""
    n = len(x)
    h = 1e-5 * np.maximum(np.abs(x), 1.0)
    hess = np.empty((n, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = h[i]
        hess[:, i] = (g(x + e) - g(x - e)) / (2 * h[i])
    return (hess + hess.T) / 2


def _gradient_small(f: Any, x: np.ndarray, n_obs: int) -> bool:
    g = optimize.approx_fprime(x, f, 1e-7)
    return bool(np.all(np.abs(g) < 1e-3 * max(n_obs, 1) ** 0.5))


def _combine(ca: np.ndarray, ua: np.ndarray, cb: np.ndarray, ub: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of two factorised columns: each row's pair index and the pairs' values."""
    nb = max(len(ub), 1)
    key = ca.astype(np.int64) * nb + cb
    if len(ua) * nb <= 4 * len(key) + 1024:  # dense map: no hashing
        present = np.zeros(len(ua) * nb, dtype=bool)
        present[key] = True
        ukey = np.flatnonzero(present)
        ids = np.cumsum(present) - 1
        inv = ids[key]
    else:
        inv, ukey = pd.factorize(key)
    return inv, np.asarray(ua, dtype=float)[ukey // nb], np.asarray(ub, dtype=float)[ukey % nb]


def pair_index(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique pairs ``(a, b)``: each row's pair index and the pairs' values (O(n), no sort)."""
    ca, ua = pd.factorize(a)
    cb, ub = pd.factorize(b)
    return _combine(ca, ua, cb, ub)


def rfm_pairs(x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> dict[str, np.ndarray]:
    """Unique ``x``, ``(x, T)`` and ``(x, t_x)``, with each row's index into them."""
    cx, ux = pd.factorize(x)
    cT, uT = pd.factorize(T)
    ctx, utx = pd.factorize(tx)
    out = {"_i:frequency": cx, "_u:frequency": np.asarray(ux, dtype=float)}
    out["_i:xT"], out["_x:xT"], out["_u:xT"] = _combine(cx, ux, cT, uT)
    out["_i:xtx"], out["_x:xtx"], out["_u:xtx"] = _combine(cx, ux, ctx, utx)
    return out
