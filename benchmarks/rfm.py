"""RFM summary at scale: cxasset (DuckDB through ibis) against lifetimes, on the same transactions.

For each size (default 1M, 5M and 50M synthetic transactions, ~10 per customer over two years) the
script builds the same per-customer summary ``frequency, recency, T, monetary_value`` (weeks, counted
in whole days) with

- cxasset: ingest the book into a workspace (one-off: Parquet -> validated DuckDB), then the RFM
  expression (``cxasset.features.rfm``), then all features (``workspace_features``);
- a hand-written DuckDB SQL query on the same workspace (a reference for the engine's floor);
- lifetimes 0.11.3: read the Parquet into pandas, then ``summary_data_from_transaction_data``
  with ``freq="D", freq_multiplier=7``.

Every step runs in its own fresh Python process (``python benchmarks/rfm.py _run STEP --n N``), so
its peak memory is that process's ``ru_maxrss``; times exclude imports. lifetimes runs under an
address-space cap (``RLIMIT_AS``) and only when its memory, extrapolated from the previous size,
fits under the cap. At 1M (or the smallest size) both summaries are compared customer by customer.

Usage::

    python benchmarks/rfm.py                        # 1M, 5M, 50M
    python benchmarks/rfm.py --sizes 1e6,5e6 --json
    python benchmarks/rfm.py --with-100m            # adds 100M, cxasset only
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _util as u  # noqa: E402

STEPS = ("gen", "cxasset-ingest", "cxasset-rfm", "cxasset-features", "duckdb-sql", "lifetimes")
LIFETIMES_CAP_GIB = 18.0

DUCKDB_RFM_SQL = """
WITH d AS (
    SELECT customer_id, CAST(occurred_at AS DATE) AS day, sum(amount) AS amount
    FROM transactions WHERE amount >= 0 AND CAST(occurred_at AS DATE) <= DATE '{as_of}'
    GROUP BY ALL),
f AS (
    SELECT customer_id, min(day) AS first_day, max(day) AS last_day, count(*) AS n,
           sum(amount) AS spend, arg_min(amount, day) AS first_amount
    FROM d GROUP BY ALL)
SELECT customer_id, n - 1 AS frequency, (last_day - first_day) / 7.0 AS recency,
       (DATE '{as_of}' - first_day) / 7.0 AS T,
       CASE WHEN n > 1 THEN (spend - first_amount) / (n - 1) ELSE 0.0 END AS monetary_value
FROM f
"""


# ---------------------------------------------------------------------------- runner (child)
def run_step(
    step: str, n: int, data_dir: Path, memory_limit: str, save: Path | None, cap_gib: float | None
) -> dict[str, Any]:
    """One measured step, in this (fresh) process. Returns its figures."""
    if cap_gib:
        cap = int(cap_gib * u.GIB)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    rec: dict[str, Any] = {"step": step, "n": n}
    book = u.book_dir(data_dir, n)
    ws_path = data_dir / f"ws_{u.size_label(n)}"
    if step == "gen":
        with u.Timer() as t:
            u.make_book(data_dir, n)
        rec["seconds"] = t.seconds
    elif step.startswith("cxasset"):
        from cxasset.book import Workspace
        from cxasset.features import rfm, workspace_features
        from cxasset.features._time import date_day

        rec["baseline_gib"] = u.rss_gib()
        if step == "cxasset-ingest":
            with u.Timer() as t:
                report = Workspace(ws_path, memory_limit=memory_limit).ingest(book)
            rec["rows"] = report.rows["transactions"]
        else:
            with u.Timer() as t:
                ws = Workspace(ws_path, memory_limit=memory_limit)
                if step == "cxasset-rfm":
                    expr = rfm(
                        ws.table("customers"),
                        ws.table("transactions"),
                        cut_day=date_day(u.AS_OF),
                        period_days=7.0,
                    )
                else:
                    expr = workspace_features(ws)
                out = expr.to_pyarrow()
            rec["rows"] = out.num_rows
            rec["columns"] = len(out.columns)
            if save is not None:
                import pyarrow.parquet as pq

                pq.write_table(out, save)
        rec["seconds"] = t.seconds
    elif step == "duckdb-sql":
        import duckdb

        rec["baseline_gib"] = u.rss_gib()
        with u.Timer() as t:
            con = duckdb.connect(
                str(ws_path / "cxasset.duckdb"), read_only=True, config={"memory_limit": memory_limit}
            )
            out = con.sql(DUCKDB_RFM_SQL.format(as_of=u.AS_OF.isoformat())).fetch_arrow_table()
        rec["seconds"], rec["rows"] = t.seconds, out.num_rows
    elif step == "lifetimes":
        import pandas as pd
        import pyarrow.parquet as pq
        from lifetimes.utils import summary_data_from_transaction_data

        rec["baseline_gib"] = u.rss_gib()
        with u.Timer() as t:
            df = pq.read_table(book / "transactions.parquet").to_pandas()
        rec["read_seconds"], rec["read_peak_gib"] = t.seconds, u.peak_gib()
        with u.Timer() as t:
            out = summary_data_from_transaction_data(
                df,
                "customer_id",
                "occurred_at",
                monetary_value_col="amount",
                observation_period_end=pd.Timestamp(u.AS_OF),
                freq="D",
                freq_multiplier=7,
            )
        rec["seconds"], rec["rows"] = t.seconds, len(out)
        if save is not None:
            out.reset_index().to_parquet(save)
    else:
        raise SystemExit(f"unknown step {step!r}; steps: {', '.join(STEPS)}")
    rec["peak_gib"] = u.peak_gib()
    return rec


# ---------------------------------------------------------------------------- driver (parent)
def spawn(
    step: str, n: int, args: argparse.Namespace, save: Path | None = None, cap_gib: float | None = None
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "_run",
        step,
        "--n",
        str(n),
        "--data-dir",
        str(args.data_dir),
        "--memory-limit",
        args.memory_limit,
    ]
    if save is not None:
        cmd += ["--save", str(save)]
    if cap_gib:
        cmd += ["--cap-gib", f"{cap_gib:.2f}"]
    best: dict[str, Any] | None = None
    for _ in range(1 if step == "gen" else args.repeat):
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
        if p.returncode != 0:
            tail = (p.stderr.strip().splitlines() or [f"exit code {p.returncode}"])[-1]
            oom = (
                p.returncode < 0
                or "MemoryError" in p.stderr
                or "Unable to allocate" in p.stderr
                or "std::bad_alloc" in p.stderr
                or "Out of Memory" in p.stderr
            )
            return {"step": step, "n": n, "error": "out of memory at cap" if oom and cap_gib else tail[:200]}
        rec = json.loads(p.stdout.strip().splitlines()[-1])
        rec["runs"] = [*(best or {}).get("runs", []), round(rec["seconds"], 3)]
        if best is None or rec["seconds"] < best["seconds"]:
            best = {**rec, "runs": rec["runs"]}
        else:
            best["runs"] = rec["runs"]
    assert best is not None
    return best


def compare(cx_path: Path, lt_path: Path) -> dict[str, Any]:
    """Per-customer agreement of the two summaries (max absolute difference per column)."""
    import numpy as np
    import pandas as pd

    cx = pd.read_parquet(cx_path).set_index("customer_id").sort_index()
    lt = pd.read_parquet(lt_path).set_index("customer_id").sort_index()
    out: dict[str, Any] = {
        "customers_cxasset": len(cx),
        "customers_lifetimes": len(lt),
        "same_customers": bool(cx.index.equals(lt.index)),
    }
    if out["same_customers"]:
        for c in ("frequency", "recency", "T", "monetary_value"):
            out[f"max_abs_diff_{c}"] = float(np.abs(cx[c].to_numpy(float) - lt[c].to_numpy(float)).max())
    rfm_ok = out["same_customers"] and all(
        out[f"max_abs_diff_{c}"] <= 1e-9 for c in ("frequency", "recency", "T")
    )
    money_ok = out["same_customers"] and out["max_abs_diff_monetary_value"] <= 1e-9 * max(
        1.0, float(lt.monetary_value.abs().max())
    )
    out["agree"] = bool(rfm_ok and money_ok)
    return out


def lifetimes_guard(n: int, done: list[dict[str, Any]]) -> tuple[float, float | None]:
    """The address-space cap for lifetimes at ``n`` and its memory extrapolated from below."""
    cap = min(LIFETIMES_CAP_GIB, u.available_gib() - 3.0)
    prev = [r for r in done if r["step"] == "lifetimes" and "peak_gib" in r and r["n"] < n]
    if not prev:
        return cap, None
    p = max(prev, key=lambda r: r["n"])
    return cap, p["peak_gib"] * n / p["n"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--sizes", default="1e6,5e6,5e7", help="comma-separated numbers of transactions (default 1e6,5e6,5e7)"
    )
    ap.add_argument("--with-100m", action="store_true", help="add 100M transactions (cxasset only)")
    ap.add_argument("--data-dir", type=Path, default=HERE / ".data")
    ap.add_argument("--memory-limit", default="3GB", help="DuckDB memory limit (default 3GB, as Workspace)")
    ap.add_argument("--no-lifetimes", action="store_true", help="measure cxasset only")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per step")
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs per step, each in a fresh process; the fastest is reported",
    )
    ap.add_argument("--json", action="store_true", help="print the records as JSON")
    args = ap.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",") if s.strip()]
    if args.with_100m:
        sizes.append(100_000_000)
    sizes = sorted(set(sizes))
    args.data_dir.mkdir(parents=True, exist_ok=True)
    check_n = 1_000_000 if 1_000_000 in sizes else sizes[0]
    log = sys.stderr
    records: list[dict[str, Any]] = []
    agreement: dict[str, Any] | None = None
    for n in sizes:
        label = u.size_label(n)
        print(f"[{label}] generating (cached)", file=log, flush=True)
        spawn("gen", n, args)
        shutil.rmtree(args.data_dir / f"ws_{label}", ignore_errors=True)
        save = n == check_n and not args.no_lifetimes
        res = args.data_dir / "results"
        res.mkdir(exist_ok=True)
        for step in ("cxasset-ingest", "cxasset-rfm", "cxasset-features", "duckdb-sql"):
            print(f"[{label}] {step}", file=log, flush=True)
            r = spawn(
                step,
                n,
                args,
                save=res / f"{step}_{label}.parquet" if save and step == "cxasset-rfm" else None,
            )
            records.append(r)
            print(f"    {r}", file=log, flush=True)
        if args.no_lifetimes or n > 50_000_000:
            continue
        cap, est = lifetimes_guard(n, records)
        if est is not None and est > 1.5 * cap:
            records.append(
                {"step": "lifetimes", "n": n, "error": f"skipped: needs ~{est:.0f} GiB (cap {cap:.0f} GiB)"}
            )
            continue
        print(
            f"[{label}] lifetimes (cap {cap:.1f} GiB{f', estimated {est:.1f} GiB' if est else ''})",
            file=log,
            flush=True,
        )
        r = spawn(
            "lifetimes", n, args, save=res / f"lifetimes_{label}.parquet" if save else None, cap_gib=cap
        )
        if "error" in r and est is not None:
            r["estimated_gib"] = est
        r["cap_gib"] = cap
        records.append(r)
        print(f"    {r}", file=log, flush=True)
        if save and "error" not in r:
            agreement = compare(res / f"cxasset-rfm_{label}.parquet", res / f"lifetimes_{label}.parquet")
            agreement["n"] = n
    (args.data_dir / "results" / "last_run.json").write_text(
        json.dumps({"records": records, "agreement": agreement}, indent=2)
    )
    if args.json:
        print(json.dumps({"records": records, "agreement": agreement}, indent=2))
    else:
        print_table(records)
    if agreement is not None:
        print(
            f"agree: {'yes' if agreement['agree'] else 'no'} (at {u.size_label(agreement['n'])}: {agreement})"
        )
    return 0


def rows_for_table(records: list[dict[str, Any]]) -> list[list[str]]:
    """size, tool, step, seconds, peak GiB, baseline GiB, x faster / x less memory than lifetimes."""
    lt = {r["n"]: r for r in records if r["step"] == "lifetimes" and "seconds" in r}
    out = []
    for r in records:
        if r["step"] == "gen":
            continue
        tool, _, step = r["step"].partition("-")
        size = u.size_label(r["n"])
        if "error" in r:
            out.append([size, tool, step or "summary", "—", "—", "—", r["error"], ""])
            continue
        base = f"{r.get('baseline_gib', 0):.2f}"
        ref = lt.get(r["n"])
        if tool == "lifetimes":
            out.append(
                [
                    size,
                    tool,
                    "read parquet",
                    f"{r['read_seconds']:.2f}",
                    f"{r['read_peak_gib']:.2f}",
                    base,
                    "",
                    "",
                ]
            )
            out.append(
                [size, tool, "summary", f"{r['seconds']:.2f}", f"{r['peak_gib']:.2f}", base, "1.0", "1.0"]
            )
            continue
        speed = f"{ref['seconds'] / r['seconds']:.1f}" if ref and step != "ingest" else ""
        mem = f"{ref['peak_gib'] / r['peak_gib']:.1f}" if ref else ""
        out.append([size, tool, step, f"{r['seconds']:.2f}", f"{r['peak_gib']:.2f}", base, speed, mem])
    return out


HEADER = ["size", "tool", "step", "seconds", "peak GiB", "baseline GiB", "x faster", "x less memory"]


def print_table(records: list[dict[str, Any]]) -> None:
    rows = rows_for_table(records)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(" | ".join(HEADER))
        for row in rows:
            print(" | ".join(row))
        return
    t = Table(title="RFM summary: cxasset vs lifetimes (ratios vs lifetimes' summary step)")
    for h in HEADER:
        t.add_column(h, justify="left" if h in ("size", "tool", "step") else "right")
    for row in rows:
        t.add_row(*row)
    Console(width=120).print(t)


def runner(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="rfm.py _run")
    ap.add_argument("step", choices=STEPS)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--memory-limit", default="3GB")
    ap.add_argument("--save", type=Path)
    ap.add_argument("--cap-gib", type=float)
    a = ap.parse_args(argv)
    rec = run_step(a.step, a.n, a.data_dir, a.memory_limit, a.save, a.cap_gib)
    print(json.dumps(rec), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_run":
        raise SystemExit(runner(sys.argv[2:]))
    raise SystemExit(main())
