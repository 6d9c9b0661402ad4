"""Every figure of the board report, from a workspace, as JSON-ready data.

:func:`report_figures` reads what the pipeline saved (the fit with its backtest, the value map,
the levers, the scenarios) and computes what is not stored (customer equity with its interval and
the CLV distribution, through :func:`cxasset.valuation.value_workspace`). A stage that has not been
run leaves its section with ``available: False`` and the command that creates it. Nothing here is
invented: a figure the pipeline cannot support yet is marked as such, with what it needs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cxasset.exceptions import ModelDataError, WorkspaceError
from cxasset.money import money

__all__ = ["report_figures"]

#: The command that creates each optional artifact.
MAKES = {"valuemap": "cxasset map --workspace WS --spec map.yaml",
         "levers": "cxasset levers --workspace WS",
         "scenarios": "cxasset simulate scenarios.yaml --workspace WS"}

def _load(ws: Any, key: str) -> Any | None:
    try:
        return ws.load_artifact(key)
    except WorkspaceError:
        return None


def _num(x: Any) -> Any:
    """Plain floats for JSON (numpy scalars out; NaN and infinities to None)."""
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def _missing(key: str) -> dict[str, Any]:
    return {"available": False, "missing": f"run `{MAKES[key]}`", "command": MAKES[key]}


def _settings(ws: Any) -> dict[str, Any]:
    s = ws.settings
    return {"currency": s.currency, "period": s.period, "as_of": str(s.as_of),
            "calibration_end": None if s.calibration_end is None else str(s.calibration_end),
            "margin_rate": s.margin_rate, "discount_rate": s.discount_rate,
            "channel_costs": dict(s.channel_costs or {}), "horizon": s.horizon}


def _histogram(clv: np.ndarray, bins: int = 30) -> dict[str, Any]:
    """Bins up to the 99th percentile; the top 1% share the last bin (so a few whales do not
    squash the picture)."""
    clv = clv[np.isfinite(clv)]
    if clv.size == 0:
        return {"edges": [], "counts": [], "top_bin_open": False}
    top = float(np.quantile(clv, 0.99))
    lo = float(min(clv.min(), 0.0))
    if top <= lo:
        top = float(clv.max()) + 1.0
    edges = np.linspace(lo, top, bins + 1)
    counts, _ = np.histogram(np.clip(clv, lo, top), bins=edges)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts],
            "top_bin_open": bool(clv.max() > top)}


def _splits(ws: Any, customers: Any) -> dict[str, list[dict[str, Any]] | None]:
    """Equity, customers, mean CLV and share alive by the book's ``segment`` column (if any) and
    by acquisition cohort (the quarter of ``acquired_at``)."""
    out: dict[str, list[dict[str, Any]] | None] = {"segments": None, "cohorts": None}
    if customers is None or len(customers) == 0 or "clv" not in customers:
        return out
    try:
        cust = ws.table("customers")
    except Exception:  # noqa: BLE001 - a book without a customers table simply has no split
        return out
    cols = [c for c in ("segment", "acquired_at") if c in cust.columns]
    if not cols:
        return out
    df = customers.merge(cust.select("customer_id", *cols).to_pandas(), on="customer_id",
                         how="left")
    if "segment" in cols:
        df["segment"] = df["segment"].fillna("(none)").astype(str)
        out["segments"] = sorted(_groups(df, "segment"), key=lambda r: -r["equity"])
    if "acquired_at" in cols:
        from cxasset.valuation.statement import cohort_labels

        df["cohort"] = cohort_labels(df["acquired_at"])
        out["cohorts"] = sorted(_groups(df, "cohort"), key=lambda r: r["cohort"])
    return out


def _groups(df: Any, by: str) -> list[dict[str, Any]]:
    alive = "p_alive" in df
    g = df.groupby(by).agg(customers=("clv", "size"), equity=("clv", "sum"), mean_clv=("clv", "mean"),
                           **({"share_alive": ("p_alive", "mean")} if alive else {}))
    return [{by: str(name), "customers": int(r["customers"]), "equity": float(r["equity"]),
             "mean_clv": float(r["mean_clv"]),
             "share_alive": _num(r["share_alive"]) if alive else None} for name, r in g.iterrows()]


def _statement(ws: Any, start: Any, vmap: dict[str, Any] | None) -> dict[str, Any]:
    """The customer asset statement (:func:`cxasset.valuation.statement.asset_statement`), or why
    the book cannot have one (e.g. no customers before the start)."""
    from cxasset.valuation.statement import asset_statement

    ref = (vmap or {}).get("referred_value")
    try:
        st = asset_statement(ws, start=start, referred_value=ref)
    except ModelDataError as exc:
        return {"available": False, "missing": str(exc), "command": None}
    return {"available": True, **st.to_dict()}


def _health(ws: Any, v: Any, scen: dict[str, Any] | None, cur: str,
            st: dict[str, Any]) -> dict[str, Any]:
    d = v.to_dict()
    ce = d["customer_equity"]
    customers = v.customers
    clv = (np.asarray(customers["clv"], dtype=float) if customers is not None and len(customers)
           and "clv" in customers else np.array([]))
    q = ({k: float(np.quantile(clv, p)) for k, p in (("p10", .1), ("p50", .5), ("p90", .9),
                                                      ("p99", .99))} if clv.size else {})
    top_share = None
    if clv.size and clv.sum() > 0:
        top = np.sort(clv)[::-1][: max(1, clv.size // 10)]
        top_share = float(top.sum() / clv.sum())
    churn = None
    if scen and scen.get("scenarios"):
        s0 = scen["scenarios"][0]
        churn = {"share": s0["baseline"]["churn_rate"]["p50"], "months": s0["horizon_months"],
                 "p5": s0["baseline"]["churn_rate"]["p5"], "p95": s0["baseline"]["churn_rate"]["p95"],
                 "source": f"baseline of scenario {s0['name']!r} (existing customers, no action)"}
    return {
        "customer_equity": {k: _num(ce.get(k)) for k in ("estimate", "p5", "p95", "std_err")},
        "customers": int(d["customers"]), "mean_clv": _num(d["mean_clv"]),
        "median_clv": _num(d["median_clv"]), "share_alive": _num(d["mean_p_alive"]),
        "expected_transactions": _num(d["expected_transactions"]),
        "kind": ws.meta().get("kind", "transactions"),
        "churn": churn,
        "leakage": ({**st["leakage"], "start": st["start"], "end": st["end"]}
                    if st.get("available") else None),
        "churn_missing": None if churn else f"run `{MAKES['scenarios']}` (its baseline forecasts "
        "churn of today's customers)",
        "clv_quantiles": q, "top_decile_share": top_share,
        "clv_histogram": _histogram(clv), **_splits(ws, customers),
        "valuation": {"horizon": d["settings"]["horizon"], "period": d["settings"]["period"],
                      "discount_rate_annual": d["settings"]["discount_rate_annual"],
                      "margin_rate": d["settings"]["margin_rate"]},
        "notes": list(d.get("notes", [])),
        "formatted": {"equity": money(ce["estimate"], cur),
                      "interval": f"{money(ce['p5'], cur)} – {money(ce['p95'], cur)}"},
    }


def _growth(vmap: dict[str, Any] | None, lev: dict[str, Any] | None, cur: str,
            top: int = 15) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if vmap is None:
        out["valuemap"] = _missing("valuemap")
    else:
        from cxasset.valuemap.graph import graph

        out["valuemap"] = {"available": True, "graph": graph(vmap), "wording": vmap.get("wording"),
                           "customer_equity": vmap.get("customer_equity"),
                           "links": len(vmap["links"]), "notes": vmap.get("notes", [])}
    if lev is None:
        out["levers"] = _missing("levers")
        return out
    ranked = [e for e in lev["levers"] if e["significant"]] or lev["levers"]
    rows = []
    for e in ranked[:top]:
        rows.append({"driver": e["driver"], "label": e.get("label", e["driver"]),
                     "mechanism": e["mechanism"], "step": e["step"], "unit": e.get("unit"),
                     "impact": {k: e["impact"][k] for k in ("mean", "p5", "p50", "p95")},
                     "q_value": e["q_value"], "significant": e["significant"],
                     "robust": e.get("robust"), "evidence": e["evidence"],
                     "declared": e["declared"], "collinear": e["collinear"],
                     "reverse_causality": e["reverse_causality"], "threshold": e["threshold"]})
    out["levers"] = {
        "available": True, "levers": rows, "significant": sum(e["significant"] for e in lev["levers"]),
        "candidates": len(lev["levers"]), "undeclared": list(lev["undeclared_levers"]),
        "thresholds": [{"driver": d, "cut": t["cut"], "mechanism": t["mechanism"],
                        "p_value": t["p_value"], "jump": t.get("jump")}
                       for d, t in lev["thresholds"].items()],
        "segments": {s: [{"driver": r["driver"], "mechanism": r["mechanism"],
                          "impact": r["impact"]["mean"]} for r in rs]
                     for s, rs in lev["segments"].items()},
        "referrals": [r for r in rows if r["mechanism"] == "referrals"],
        "fdr": lev["fdr"], "method": lev["method"], "notes": list(lev["notes"])}
    return out


def _portfolio(port: dict[str, Any] | None) -> dict[str, Any]:
    """The portfolio ``cxasset optimize`` saved: chosen initiatives, their NPV alone and together,
    and the efficient frontier."""
    if port is None:
        return {"available": False, "missing": "run `cxasset optimize scenarios.yaml "
                "--workspace WS --budget AMOUNT`"}
    p, joint = port["portfolio"], port.get("joint")
    return {"available": True, "budget": port["budget"], "objective": port["objective"],
            "chosen": list(p["names"]), "cost": p["cost"], "npv": p["npv"],
            "prob_npv_positive": p["prob_npv_positive"],
            "joint_npv": None if joint is None else joint["npv"],
            "sentence": None if joint is None else joint["sentence"],
            "frontier": [{"budget": f["budget"], "names": list(f["names"]), "cost": f["cost"],
                          "npv": f["npv"], "prob_npv_positive": f["prob_npv_positive"]}
                         for f in port["frontier"]]}


def _return(scen: dict[str, Any] | None, port: dict[str, Any] | None = None) -> dict[str, Any]:
    if scen is None or not scen.get("scenarios"):
        return _missing("scenarios")
    rows = []
    for s in scen["scenarios"]:
        m = s["monthly"]
        rows.append({"name": s["name"], "sentence": s["sentence"], "horizon_months": s["horizon_months"],
                     "draws": s["draws"], "npv": s["npv"], "roi": s["roi"],
                     "payback_month": s["payback_month"], "prob_payback": s.get("prob_payback"),
                     "prob_npv_positive": s.get("prob_npv_positive"), "cost": s["cost"],
                     "delta": {k: s["delta"][k] for k in ("margin", "revenue", "customer_equity",
                                                          "active_customers_end", "churn_rate")
                               if k in s["delta"]},
                     "initiatives": [{"name": i["name"], "changes": i["changes"]}
                                     for i in s["initiatives"]],
                     "fan": {"month": m["month"], **{k: m["cumulative_npv"][k]
                                                     for k in ("p5", "p50", "p95", "mean")}},
                     "notes": list(s.get("notes", []))})
    best = max(rows, key=lambda r: r["npv"]["mean"])
    return {"available": True, "scenarios": rows, "best": best["name"],
            "notes": list(scen.get("notes", [])),
            "portfolio": _portfolio(port)}


def _trust(fit: dict[str, Any], settings: dict[str, Any], lev: dict[str, Any] | None,
           vmap: dict[str, Any] | None, scen: dict[str, Any] | None) -> dict[str, Any]:
    bt = fit.get("backtest", {})
    subs = fit.get("kind") == "subscriptions"
    cands = [{"model": c["model"], "log_likelihood": c["log_likelihood"],
              "aggregate_error": c["backtest"].get("aggregate_error"),
              "mae_per_customer": c["backtest"].get("mae_per_customer")}
             for c in fit.get("candidates", [])]
    spend = fit.get("spend") or {}
    diagnostics = {"model": fit["model"], "reason": fit.get("reason"), "converged": fit.get("converged"),
                   "log_likelihood": fit.get("log_likelihood"), "aic": fit.get("aic"),
                   "n_obs": fit.get("n_obs"), "params": fit.get("params", {}),
                   "conf_int": fit.get("conf_int", {}), "candidates": cands,
                   "spend_model": spend.get("model"),
                   "spend_independence": (spend.get("independence") or {}).get("verdict")}
    evidence = [{"figure": "customer equity and CLV", "evidence": "model estimate",
                 "basis": f"{fit['model']} fitted to {fit.get('n_obs', 0):,} "
                 f"{'observations' if subs else 'customers'}; backtest "
                 f"aggregate error {bt.get('aggregate_error', float('nan')):+.1%} on the holdout"
                 if bt.get("aggregate_error") is not None else f"{fit['model']} fit"}]
    for name, art in (("value map links", vmap and vmap.get("links")),
                      ("growth levers", lev and lev.get("levers"))):
        if art:
            kinds: dict[str, int] = {}
            for k in art:
                kinds[k["evidence"]] = kinds.get(k["evidence"], 0) + 1
            evidence.append({"figure": name, "evidence": ", ".join(sorted(kinds)),
                             "basis": "; ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
                             + (" (associations adjusted for the other drivers, not proven causes)"
                                if "observational" in kinds else "")})
    if scen and scen.get("scenarios"):
        evidence.append({"figure": "scenario returns", "evidence": "assumption + model",
                         "basis": "the initiatives' changes and costs are assumptions of the "
                         "scenario file, carried to money through the value map's links"})
    evidence.append({"figure": "discount rate, margin, horizon, channel costs",
                     "evidence": "assumption", "basis": "book.yaml settings"})
    notes = list(fit.get("notes", [])) + list(spend.get("notes", []))
    unit = "active periods" if fit.get("model") == "bgbb" else "purchases"  # BG/BB: one a period
    return {"backtest": {**{k: bt.get(k) for k in ("period", "holdout_periods", "actual_total",
                                                  "predicted_total", "aggregate_error",
                                                  "mae_per_customer", "tracking", "conditional")},
                         "kind": "subscriptions" if subs else "transactions",
                         "counts": "churned subscribers" if subs else unit,
                         "tracks": "active subscribers" if subs else unit},
            "calibration_end": fit.get("calibration_end"), "as_of": fit.get("as_of"),
            "assumptions": settings, "diagnostics": diagnostics, "evidence": evidence,
            "notes": notes}


def _translation(vmap: dict[str, Any] | None) -> dict[str, Any]:
    if vmap is None:
        return _missing("valuemap")
    return {"available": True, "rows": [{"metric": t["metric"], "measures": t["measures"],
                                         "translation": t["translation"],
                                         "per_unit": t.get("per_unit"), "p5": t.get("p5"),
                                         "p95": t.get("p95")} for t in vmap["translation"]]}


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.0%}"


def _summary(h: dict[str, Any], st: dict[str, Any], g: dict[str, Any], r: dict[str, Any],
             t: dict[str, Any], cur: str) -> list[str]:
    """At most five sentences, each built from a number of the report."""
    val = h["valuation"]
    out = [f"Today's {h['customers']:,} customers are worth {h['formatted']['equity']} in "
           f"discounted margin over the next {val['horizon']} {val['period']}s (90% interval "
           f"{h['formatted']['interval']})."]
    if st.get("available"):
        out.append(_statement_sentence(st, cur))
    else:
        alive = f"{_pct(h['share_alive'])} of customers are still active"
        if h["churn"]:
            c = h["churn"]
            alive += (f", and {_pct(c['share'])} of today's customers are expected to be lost "
                      f"over the next {c['months']} months without action")
        out.append(alive + ".")
    lev = g["levers"]
    if lev.get("available") and lev["levers"]:
        e = lev["levers"][0]
        out.append(f"The strongest lever, {e['label']} {e['step']:+g} {e['unit'] or 'units'} "
                   f"through {e['mechanism'].replace('_', ' ')}, is worth "
                   f"{money(e['impact']['mean'], cur)} of customer equity "
                   f"({money(e['impact']['p5'], cur)} to {money(e['impact']['p95'], cur)}).")
    if r.get("available"):
        best = next(s for s in r["scenarios"] if s["name"] == r["best"])
        sentence = best["sentence"].split(":")[0].rstrip(".")
        if sentence[1:2].islower():
            sentence = sentence[:1].lower() + sentence[1:]
        out.append(f"Best scenario: {sentence}, for an NPV of {money(best['npv']['mean'], cur)} "
                   f"({money(best['npv']['p5'], cur)} to {money(best['npv']['p95'], cur)}).")
    bt = t["backtest"]
    if bt.get("aggregate_error") is not None and bt.get("holdout_periods"):
        out.append(f"On {bt['holdout_periods']} {bt['period']}s held out from the fit, the model "
                   f"predicted total {bt['counts']} within {abs(bt['aggregate_error']):.1%} of what "
                   f"happened.")
    elif bt.get("aggregate_error") is not None:
        out.append(f"On the held-out period the model's aggregate error was "
                   f"{abs(bt['aggregate_error']):.1%}.")
    return out[:5]


def period_words(start: str, end: str) -> str:
    """'over the year to END' for a year, else 'between START and END'."""
    import datetime as dt

    days = (dt.date.fromisoformat(end) - dt.date.fromisoformat(start)).days
    return f"over the year to {end}" if days in (365, 366) else f"between {start} and {end}"


def _statement_sentence(st: dict[str, Any], cur: str) -> str:
    o, c = st["opening"]["estimate"], st["closing"]["estimate"]
    lines = {x["key"]: x["estimate"] for x in st["lines"]}
    leak = st["leakage"]
    verb = "rose" if c >= o else "fell"
    ret = lines["retention"]
    churn = (f"churn took {money(-ret, cur)}" if ret < 0 else
             f"customers seen to be still active added {money(ret, cur)}")
    return (f"{capital(period_words(st['start'], st['end']))}, customer equity counting "
            f"referrals and net of service cost {verb} from {money(o, cur)} to "
            f"{money(c, cur)}: new customers added "
            f"{money(lines['acquisition'], cur)} and {churn} (about "
            f"{leak['customers_lost']['estimate']:,.0f} customers lost, "
            f"{money(leak['annual_revenue']['estimate'], cur)} of annual revenue).")


def capital(s: str) -> str:
    return s[:1].upper() + s[1:]


def report_figures(ws: Any, seed: int = 0, start: Any = None) -> dict[str, Any]:
    """Every figure of the report as JSON-ready data.

    Parameters
    ----------
    ws : Workspace
        An open workspace with at least a fit (``cxasset fit``).
    seed : int, default=0
        Recorded with the figures; the computations here are deterministic (the stored artifacts
        carry their own seeds).
    start : date, optional
        Start of the customer asset statement (default a year before ``as_of``).

    Returns
    -------
    dict
        Keys ``summary``, ``health``, ``statement``, ``growth``, ``return``, ``trust``,
        ``translation``, ``settings``, ``currency``, ``artifacts``, ``seed``.
    """
    from cxasset.valuation import value_workspace

    fit = _load(ws, "fit")
    if fit is None:
        raise WorkspaceError(f"workspace {ws.path} has no fit; run `cxasset fit --workspace "
                             f"{ws.path}` first")
    settings = _settings(ws)
    cur = settings["currency"]
    vmap, lev, scen = _load(ws, "valuemap"), _load(ws, "levers"), _load(ws, "scenarios")
    port = _load(ws, "portfolio")
    v = value_workspace(ws)
    statement = _statement(ws, start, vmap)
    health = _health(ws, v, scen, cur, statement)
    growth = {**_growth(vmap, lev, cur),
              "referred_value": (vmap or {}).get("referred_value") or statement.get(
                  "referred_value")}
    ret = _return(scen, port)
    trust = _trust(fit, settings, lev, vmap, scen)
    summary = _summary(health, statement, growth, ret, trust, cur)
    return {"title": "Customer Asset Report", "currency": cur, "seed": seed,
            "as_of": settings["as_of"], "settings": settings,
            "artifacts": ["fit"] + [k for k, a in (("valuemap", vmap), ("levers", lev),
                                                   ("scenarios", scen), ("portfolio", port))
                                    if a is not None],
            "summary": summary, "health": health,
            "statement": statement,
            "growth": growth, "return": ret, "trust": trust, "translation": _translation(vmap)}
