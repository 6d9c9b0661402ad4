"""BG/NBD + Gamma-Gamma: fit and CLV scoring, cxasset beside lifetimes, in one run.

    python benchmarks/clv.py [--sizes 1e4,1e5,1e6] [--score 1e7] [--json]

Every measured step runs in a fresh subprocess (``python benchmarks/clv.py _run STEP N``), so its
peak memory is its own ``ru_maxrss``; times exclude imports and data loading. The data are drawn
from BG/NBD and Gamma-Gamma with known parameters (r=0.25, alpha=4, a=0.8, b=2.5; p=6, q=4,
gamma=15), T uniform over 1..78 weeks in whole days, purchase times in whole days, and cached as
Parquet under ``benchmarks/.data/``. PyMC-Marketing is not installed in this environment; the
issue's reference figure for its MAP fit (about 4 s at 1M customers) is printed beside ours.

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
PYMC_REFERENCE_1M = 4.0  # seconds, MAP fit measured by the author on this machine


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
    return {
        "seconds": t.seconds,
        "spend_seconds": t2.seconds,
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
    pr = {k: float(m.params_[k]) for k in ("r", "alpha", "a", "b")}
    gp = {"p": float(g.params_["p"]), "q": float(g.params_["q"]), "gamma": float(g.params_["v"])}
    return {"seconds": t.seconds, "spend_seconds": t2.seconds, "params": pr, "spend_params": gp}


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


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1e4,1e5,1e6")
    ap.add_argument("--score", default="1e7", help="customers to score (0: skip)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    sizes = [int(float(s)) for s in a.sizes.split(",") if s]
    rows = []
    for n in sizes:
        cx, lt = spawn("cxasset-fit", n), spawn("lifetimes-fit", n)
        dev = (
            max(abs(cx["params"][k] / lt["params"][k] - 1) for k in cx["params"])
            if "params" in cx and "params" in lt
            else float("nan")
        )
        rows.append({"n": n, "cxasset": cx, "lifetimes": lt, "max_rel_param_diff": dev})
    score = spawn("cxasset-score", int(float(a.score))) if float(a.score) > 0 else None
    if a.json:
        print(json.dumps({"fit": rows, "score": score}, indent=2, default=str))
        return 0
    print(
        f"{'customers':>10} {'tool':>9} {'BG/NBD fit s':>13} {'GG fit s':>9} {'peak GiB':>9} "
        f"{'speed-up':>9} {'max |param diff|':>17}"
    )
    for r in rows:
        for tool in ("cxasset", "lifetimes"):
            d = r[tool]
            if "error" in d:
                print(f"{r['n']:>10,} {tool:>9} error: {d['error']}")
                continue
            up = (r["lifetimes"].get("seconds", np.nan) / d["seconds"]) if tool == "cxasset" else 1
            print(
                f"{r['n']:>10,} {tool:>9} {d['seconds']:>13.3f} {d['spend_seconds']:>9.3f} "
                f"{d['peak_gib']:>9.2f} {up:>8.1f}x {r['max_rel_param_diff']:>17.1e}"
            )
    if sizes and max(sizes) >= 1_000_000:
        print(
            f"{'1,000,000':>10} {'pymc-mkt':>9} {PYMC_REFERENCE_1M:>13.1f}   (reference, "
            "not run here: PyMC-Marketing is not installed)"
        )
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
