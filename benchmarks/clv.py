"""BG/NBD + Gamma-Gamma: fit and CLV scoring, cxasset beside lifetimes, in one run.

    python benchmarks/clv.py [--sizes 1e4,1e5,1e6] [--score 1e7] [--pymc PYTHON|none]
                             [--pymc-priors default|flat] [--json]

Every measured step runs in a fresh subprocess (``python benchmarks/clv.py _run STEP N``), so its
peak memory is its own ``ru_maxrss``; times exclude imports and data loading. The data are drawn
from BG/NBD and Gamma-Gamma with known parameters (r=0.25, alpha=4, a=0.8, b=2.5; p=6, q=4,
gamma=15), T uniform over 1..78 weeks in whole days, purchase times in whole days, and cached as
Parquet under ``benchmarks/.data/``. Each tool also predicts every customer's expected purchases
in the next 52 weeks, E[Y(52) | x, t_x, T] (timed; the sum over customers is printed as a check).

PyMC-Marketing (0.19.2 is the newest for Python 3.11) is kept out of the project's environment: it
runs in its own venv, by default ``benchmarks/.venv-pymc`` (``python3 -m venv benchmarks/.venv-pymc
&& benchmarks/.venv-pymc/bin/pip install pymc-marketing==0.19.2 pyarrow``), as a subprocess of that
venv's python (``--pymc PYTHON``; ``--pymc none`` or no such venv: the column is skipped). It reads
the same cached Parquet and fits ``pymc_marketing.clv.BetaGeoModel(data=df).fit(method="map")``
(default priors, or flat priors on r, alpha, a, b with ``--pymc-priors flat``, which makes the MAP
the maximum-likelihood estimate). Its fit time includes PyTensor compiling the model's functions
(the C-code cache under ``~/.pytensor`` is warmed by a first, untimed call on the smallest size);
a second fit in the same process is reported as well.

CLV scoring (``--score``): fit on 1M customers, then score N customers held in DuckDB the way
``cxasset value`` does -- cells grouped in the engine, scored in numpy, CLV per customer joined back
in the engine and written to Parquet -- with the 90% interval of customer equity.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _util import GIB, Timer, peak_gib  # noqa: E402

DATA = Path(__file__).parent / ".data" / "clv"
TRUE = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5, "p": 6.0, "q": 4.0, "gamma": 15.0}
HORIZON = 52.0  # weeks: expected purchases E[Y(HORIZON) | x, t_x, T] of every customer
PYMC_VENV_PYTHON = Path(__file__).parent / ".venv-pymc" / "bin" / "python"

# Run by the PyMC venv's python: argv = parquet path, horizon, priors ("default" or "flat").
PYMC_SCRIPT = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import pandas as pd
import pymc_marketing
from pymc_marketing.clv import BetaGeoModel

path, horizon, priors = sys.argv[1], float(sys.argv[2]), sys.argv[3]
df = pd.read_parquet(path, columns=["customer_id", "frequency", "recency", "T"])
config = None
if priors == "flat":
    from pymc_extras.prior import Prior
    config = {k: Prior("HalfFlat") for k in ("r", "alpha", "a", "b")}
t0 = time.perf_counter()
m = BetaGeoModel(data=df, model_config=config)
m.fit(method="map", progressbar=False)
fit_s = time.perf_counter() - t0
post = m.idata.posterior
params = {k: float(post[k].values.ravel()[0]) for k in ("r", "alpha", "a", "b")}
t0 = time.perf_counter()
expected = float(m.expected_purchases(future_t=horizon).sum())
predict_s = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1024**3
t0 = time.perf_counter()
m.fit(method="map", progressbar=False)
refit_s = time.perf_counter() - t0
print(json.dumps({"seconds": fit_s, "refit_seconds": refit_s, "predict_seconds": predict_s,
                  "expected": expected, "params": params, "peak_gib": peak,
                  "version": pymc_marketing.__version__}))
"""


def simulate(n: int, seed: int = 7) -> pd.DataFrame:
    """RFM + mean spend of ``n`` customers from BG/NBD and Gamma-Gamma (vectorised)."""
    rng = np.random.default_rng([seed, n])
    lam = rng.gamma(TRUE["r"], 1 / TRUE["alpha"], n)
    p = rng.beta(TRUE["a"], TRUE["b"], n)
    T = rng.integers(7, 78 * 7 + 1, n) / 7.0
    x = np.zeros(n)
    tx = np.zeros(n)
    t = np.zeros(n)
    alive = np.ones(n, bool)
    while alive.any():
        idx = np.flatnonzero(alive)
        t[idx] += rng.exponential(1 / lam[idx])
        ok = t[idx] <= T[idx]
        alive[idx[~ok]] = False
        go = idx[ok]
        x[go] += 1
        tx[go] = np.floor(t[go] * 7) / 7
        alive[go[rng.random(len(go)) < p[go]]] = False
    nu = rng.gamma(TRUE["q"], 1 / TRUE["gamma"], n)
    m = np.where(x > 0, rng.gamma(TRUE["p"] * np.maximum(x, 1), 1) / (nu * np.maximum(x, 1)), 0)
    return pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1),
            "frequency": x,
            "recency": tx,
            "T": T,
            "monetary_value": np.round(m, 2),
        }
    )


def data(n: int) -> Path:
    path = DATA / f"rfm_{n}.parquet"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        parts = [simulate(min(1_000_000, n - i), seed=i) for i in range(0, n, 1_000_000)]
        df = pd.concat(parts, ignore_index=True)
        df["customer_id"] = np.arange(1, n + 1)
        df.to_parquet(path, index=False)
    return path


# ------------------------------------------------------------------ steps (in subprocesses)
def step_cxasset_fit(n: int) -> dict[str, Any]:
    from cxasset.models import BetaGeoModel, GammaGammaModel

    df = pd.read_parquet(data(n))
    with Timer() as t:
        m = BetaGeoModel().fit(df)
    with Timer() as t2:
        g = GammaGammaModel().fit(df)
    with Timer() as t3:
        expected = float(m.conditional_expected_purchases(HORIZON, df).sum())
    return {
        "seconds": t.seconds,
        "spend_seconds": t2.seconds,
        "predict_seconds": t3.seconds,
        "expected": expected,
        "params": m.params_,
        "spend_params": g.params_,
        "cells": m.result_.n_cells,
    }


def step_lifetimes_fit(n: int) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoFitter, GammaGammaFitter

        df = pd.read_parquet(data(n))
        with Timer() as t:
            m = BetaGeoFitter().fit(df.frequency, df.recency, df["T"])
        rep = df[df.frequency > 0]
        with Timer() as t2:
            g = GammaGammaFitter().fit(rep.frequency, rep.monetary_value)
        with Timer() as t3:
            expected = float(
                m.conditional_expected_number_of_purchases_up_to_time(
                    HORIZON, df.frequency, df.recency, df["T"]
                ).sum()
            )
    pr = {k: float(m.params_[k]) for k in ("r", "alpha", "a", "b")}
    gp = {"p": float(g.params_["p"]), "q": float(g.params_["q"]), "gamma": float(g.params_["v"])}
    return {
        "seconds": t.seconds,
        "spend_seconds": t2.seconds,
        "predict_seconds": t3.seconds,
        "expected": expected,
        "params": pr,
        "spend_params": gp,
    }


def step_cxasset_score(n: int) -> dict[str, Any]:
    import ibis

    from cxasset.features.cells import attach_cells, group_cells
    from cxasset.models import BetaGeoModel, GammaGammaModel
    from cxasset.valuation.clv import ValuationSettings, cell_columns, score_cells, summarise

    train = pd.read_parquet(data(1_000_000))
    p, g = BetaGeoModel().fit(train), GammaGammaModel().fit(train)
    del train
    con = ibis.duckdb.connect(memory_limit="3GB")
    feats = con.read_parquet(str(data(n)))
    vs = ValuationSettings(horizon=52, period="week", period_days=7.0, discount_rate=0.10, margin_rate=0.3)
    out = DATA / f"clv_{n}.parquet"
    with Timer() as t:
        key = cell_columns(p, g)
        cells = group_cells(feats, key).to_pandas()
        scored = score_cells(p, g, cells, vs)
        tt = attach_cells(feats, scored, key, ["det", "spend_0", "spend_1"])
        tt.select(
            "customer_id", clv=vs.margin_rate * (tt.spend_0 + tt.spend_1 * tt.monetary_value) * tt.det
        ).to_parquet(out)
    with Timer() as t2:
        v = summarise(p, g, scored, vs, scored.iloc[:0], interval=True)
    return {
        "seconds": t.seconds,
        "interval_seconds": t2.seconds,
        "cells": len(cells),
        "equity": v.equity,
        "p5": v.equity_interval[0],
        "p95": v.equity_interval[1],
    }


STEPS = {
    "cxasset-fit": step_cxasset_fit,
    "lifetimes-fit": step_lifetimes_fit,
    "cxasset-score": step_cxasset_score,
}


def spawn(step: str, n: int) -> dict[str, Any]:
    data(n)  # build the data outside the measured process
    proc = subprocess.run([sys.executable, __file__, "_run", step, str(n)], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"step": step, "n": n, "error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def spawn_pymc(python: str, n: int, priors: str) -> dict[str, Any]:
    """PyMC-Marketing's MAP fit of BG/NBD, in a fresh process of its own venv's python."""
    proc = subprocess.run(
        [python, "-c", PYMC_SCRIPT, str(data(n)), str(HORIZON), priors], capture_output=True, text=True
    )
    if proc.returncode != 0:
        return {"step": "pymc-fit", "n": n, "error": proc.stderr.strip().splitlines()[-1:]}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out.update(step="pymc-fit", n=n, priors=priors)
    return out


def max_rel_diff(ours: dict[str, Any], theirs: dict[str, Any]) -> float:
    if "params" not in ours or "params" not in theirs:
        return float("nan")
    return max(abs(theirs["params"][k] / ours["params"][k] - 1) for k in ("r", "alpha", "a", "b"))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1e4,1e5,1e6")
    ap.add_argument("--score", default="1e7", help="customers to score (0: skip)")
    ap.add_argument(
        "--pymc",
        default=str(PYMC_VENV_PYTHON) if PYMC_VENV_PYTHON.exists() else "none",
        help="python of a venv with pymc-marketing (default: benchmarks/.venv-pymc/bin/python if "
        "it exists); 'none' skips the PyMC-Marketing column",
    )
    ap.add_argument("--pymc-priors", choices=("default", "flat"), default="default")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    sizes = [int(float(s)) for s in a.sizes.split(",") if s]
    pymc = None if a.pymc == "none" else a.pymc
    tools = ("cxasset", "lifetimes") + (("pymc-mkt",) if pymc else ())
    if pymc and sizes:  # untimed warm-up: PyTensor compiles its C code once into ~/.pytensor
        spawn_pymc(pymc, min(sizes), a.pymc_priors)
    rows = []
    for n in sizes:
        r = {"n": n, "cxasset": spawn("cxasset-fit", n), "lifetimes": spawn("lifetimes-fit", n)}
        if pymc:
            r["pymc-mkt"] = spawn_pymc(pymc, n, a.pymc_priors)
        for tool in tools[1:]:
            r[tool]["max_rel_param_diff"] = max_rel_diff(r["cxasset"], r[tool])
        rows.append(r)
    score = spawn("cxasset-score", int(float(a.score))) if float(a.score) > 0 else None
    if a.json:
        print(json.dumps({"fit": rows, "score": score}, indent=2, default=str))
        return 0
    h = int(HORIZON)
    print(
        f"{'customers':>10} {'tool':>9} {'BG/NBD fit s':>13} {'x cxasset':>9} {'GG fit s':>9} "
        f"{f'E[Y({h})] s':>10} {'peak GiB':>9} {'max rel param diff':>19} {f'sum E[Y({h})]':>13}"
    )
    for r in rows:
        cx_s = r["cxasset"].get("seconds", np.nan)
        for tool in tools:
            d = r[tool]
            if "error" in d:
                print(f"{r['n']:>10,} {tool:>9} error: {d['error']}")
                continue
            gg = f"{d['spend_seconds']:>9.3f}" if "spend_seconds" in d else f"{'-':>9}"
            dev = f"{d['max_rel_param_diff']:>19.1e}" if tool != "cxasset" else f"{'-':>19}"
            print(
                f"{r['n']:>10,} {tool:>9} {d['seconds']:>13.3f} {d['seconds'] / cx_s:>8.1f}x {gg} "
                f"{d['predict_seconds']:>10.3f} {d['peak_gib']:>9.2f} {dev} {d['expected']:>13,.0f}"
            )
    if pymc:
        print(f"\nPyMC-Marketing MAP ({a.pymc_priors} priors) vs cxasset, r alpha a b:")
        for r in rows:
            d = r["pymc-mkt"]
            if "error" in d:
                continue
            ok = "yes" if d["max_rel_param_diff"] <= 1e-2 else "NO"
            ours = " ".join(f"{r['cxasset']['params'][k]:.4f}" for k in ("r", "alpha", "a", "b"))
            theirs = " ".join(f"{d['params'][k]:.4f}" for k in ("r", "alpha", "a", "b"))
            print(
                f"{r['n']:>10,}: cxasset {ours} | pymc {theirs} | max rel diff "
                f"{d['max_rel_param_diff']:.1e} (within 1e-2: {ok}); second fit in the same "
                f"process {d['refit_seconds']:.2f} s"
            )
    else:
        print("\nPyMC-Marketing column skipped (--pymc none, or no benchmarks/.venv-pymc/bin/python)")
    if score:
        if "error" in score:
            print(f"scoring error: {score['error']}")
        else:
            print(
                f"\nCLV of {int(float(a.score)):,} customers ({score['cells']:,} cells): "
                f"{score['seconds']:.2f} s, peak {score['peak_gib']:.2f} GiB; equity interval "
                f"+{score['interval_seconds']:.2f} s; equity {score['equity']:,.0f} "
                f"(90% {score['p5']:,.0f} - {score['p95']:,.0f})"
            )
    return 0


def runner(argv: list[str]) -> int:
    step, n = argv[0], int(argv[1])
    out = STEPS[step](n)
    out.update(step=step, n=n, peak_gib=peak_gib())
    print(json.dumps(out, default=float))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_run":
        sys.exit(runner(sys.argv[2:]))
    sys.exit(main(sys.argv[1:]))


__all__ = ["GIB", "main", "simulate"]
