"""Terminal rendering of fits and valuations (rich tables), from their ``to_dict()`` forms."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from cxasset.money import SYMBOLS, money  # noqa: F401 (re-exported for the report)


def fit_tables(d: dict[str, Any]) -> list[Any]:
    """Parameters of the chosen fit, the candidates' backtests, and the spend model."""
    params = Table("parameter", "estimate", "std. error", "95% interval",
                   title=f"{d['model']} fitted to {d['as_of']} ({d['n_obs']:,} customers, "
                   f"time in {d['period']}s) · LL {d['log_likelihood']:,.2f}")
    for k, v in d["params"].items():
        lo, hi = d["conf_int"][k]
        params.add_row(escape(k), f"{v:.4g}", f"{d['std_err'][k]:.3g}", f"{lo:.4g} – {hi:.4g}")
    cands = Table("model", "LL (calibration)", "holdout actual", "holdout predicted",
                  "aggregate error", "MAE / customer",
                  title=f"Backtest: calibration to {d['calibration_end']}, holdout to "
                  f"{d['as_of']}")
    if d.get("kind") == "subscriptions":
        cands = Table("model", "LL (calibration)", "active at start", "churned actual",
                      "churned predicted", "aggregate error", "MAE / customer",
                      title=f"Backtest: calibration to {d['calibration_end']}, holdout to "
                      f"{d['as_of']}")
    for c in d["candidates"]:
        b = c["backtest"]
        if d.get("kind") == "subscriptions":
            cands.add_row(c["model"] + (" ✓" if c["model"] == d["model"] else ""),
                          f"{c['log_likelihood']:,.1f}", f"{b['customers']:,}",
                          f"{b['actual_total']:,.0f}", f"{b['predicted_total']:,.0f}",
                          f"{b['aggregate_error']:+.1%}", f"{b['mae_per_customer']:.3f}")
            continue
        mark = " ✓" if c["model"] == d["model"] else ""
        cands.add_row(c["model"] + mark, f"{c['log_likelihood']:,.1f}",
                      f"{b['actual_total']:,.0f}", f"{b['predicted_total']:,.0f}",
                      f"{b['aggregate_error']:+.1%}", f"{b['mae_per_customer']:.3f}")
    if d.get("kind") == "subscriptions":
        return [params, cands, escape(f"Chosen: {d['reason']}" + "".join(
            f"\nNote: {n}" for n in d["notes"]))]
    sp = d["spend"]
    spend = Table("parameter", "estimate", "95% interval", title="Spend: Gamma-Gamma (repeat "
                  "buyers)")
    for k, v in sp["params"].items():
        lo, hi = sp["conf_int"][k]
        spend.add_row(escape(k), f"{v:.4g}", f"{lo:.4g} – {hi:.4g}")
    notes = [f"Chosen: {d['reason']}"]
    if sp.get("independence"):
        notes.append(f"Spend vs frequency: {sp['independence']['verdict']}")
    notes += [f"Note: {n}" for n in d["notes"] + sp["notes"]]
    return [params, cands, spend, escape("\n".join(notes))]


def value_table(d: dict[str, Any]) -> Table:
    s = d["settings"]
    cur = s["currency"]
    ce = d["customer_equity"]
    t = Table("measure", "value", title=f"Customer asset value over {s['horizon']} {s['period']}s "
              f"({s['discount_rate_annual']:.0%} annual discount, margin {s['margin_rate']:.0%})")
    t.add_row("customer equity", f"{money(ce['estimate'], cur)} (90% interval "
              f"{money(ce['p5'], cur)} – {money(ce['p95'], cur)})")
    t.add_row("customers", f"{d['customers']:,}")
    t.add_row("mean CLV", money(d["mean_clv"], cur))
    t.add_row("median CLV", "-" if d["median_clv"] is None else money(d["median_clv"], cur))
    t.add_row("expected transactions", f"{d['expected_transactions']:,.0f} over the horizon")
    t.add_row("mean P(alive)", "-" if d["mean_p_alive"] is None else f"{d['mean_p_alive']:.1%}")
    return t


def _interval(q: dict[str, float], cur: str) -> str:
    return f"{money(q['p5'], cur)} – {money(q['p95'], cur)}"


def map_table(d: dict[str, Any]) -> Table:
    """The value map: every link's effect (95% interval, p-value) and money (90% interval)."""
    cur = d["currency"]
    t = Table("CX variable", "mechanism", "effect (95% CI)", "p", "step",
              "Δ equity per step (90%)", "evidence",
              title=f"Customer Asset Value Map · customer equity {money(d['customer_equity'], cur)}"
              f" · {d['settings']['horizon']} {d['settings']['period']}s",
              caption=d["wording"] + "; effect: semi-elasticity per unit of the driver")
    for k in d["links"]:
        e = k["effect"]
        t.add_row(escape(k["driver"]), k["mechanism"],
                  f"{e['estimate']:+.2g} ({e['ci95'][0]:+.2g}, {e['ci95'][1]:+.2g})",
                  f"{e['p_value']:.1g}", f"{k['step']:+g}",
                  f"{money(k['impact']['estimate'], cur)} ({_interval(k['impact'], cur)})",
                  k["evidence"].replace("observational", "obs."))
    return t


def levers_table(d: dict[str, Any], top: int = 15) -> Table:
    """The ranked levers: significant ones first by their change in customer equity. Flags:
    C collinear, R measured during the outcome window (reverse causality possible), U undeclared."""
    cur = d["currency"]
    t = Table("#", "driver", "mechanism", "step", "Δ equity (90% interval)", "q", "verdict",
              "flags", title=f"Growth levers · FDR {d['fdr']:.0%} (two-stage) · customer equity "
              f"{money(d['customer_equity'], cur)} (lever models)",
              caption=d["method"] + ". Flags: C collinear, R reverse causality possible, "
              "U undeclared; > x: threshold")
    rows = [e for e in d["levers"] if e["significant"]] or d["levers"]
    for i, e in enumerate(rows[:top], 1):
        verdict = ("robust" if e["robust"] else "fragile" if e["robust"] is False
                   else "unchecked") if e["significant"] else "n.s."
        flags = "".join(f for f, on in (("C", e["collinear"]), ("R", e["reverse_causality"]),
                                         ("U", not e["declared"])) if on)
        if e["threshold"] is not None:
            flags += f" >{e['threshold']:g}"
        t.add_row(str(i), escape(e["driver"]), e["mechanism"], f"{e['step']:+g}",
                  f"{money(e['impact']['mean'], cur)} ({_interval(e['impact'], cur)})",
                  f"{e['q_value']:.1g}", verdict, flags)
    return t


_LABELS = {"revenue": "revenue", "margin": "margin", "transactions": "transactions",
           "active_customers_end": "customers at the end", "churn_rate": "churn over the horizon",
           "cost_to_serve": "cost to serve", "referrals": "referrals",
           "customer_equity": "customer equity (discounted)"}


def _fmt(k: str, v: float | None, cur: str) -> str:
    if v is None:
        return "–"
    if k == "churn_rate":
        return f"{v:.1%}"
    if k in ("transactions", "active_customers_end", "referrals"):
        return f"{v:,.0f}"
    return money(v, cur)


def scenario_table(d: dict[str, Any]) -> Table:
    """Baseline vs scenario totals over the horizon, the change with its 90% interval."""
    cur = d["currency"]
    t = Table("", "baseline", "scenario", "change (P50)", "90% interval",
              title=f"{escape(d['name'])} · {d['horizon_months']} months · {d['draws']:,} draws")
    for k, label in _LABELS.items():
        b, s, c = d["baseline"][k], d["scenario"][k], d["delta"][k]
        delta = (f"{c['p50']:+.2%} pts" if k == "churn_rate" and c["p50"] is not None
                 else _fmt(k, c["p50"], cur))
        rng = (f"{c['p5']:+.2%} to {c['p95']:+.2%}" if k == "churn_rate" and c["p5"] is not None
               else f"{_fmt(k, c['p5'], cur)} to {_fmt(k, c['p95'], cur)}")
        t.add_row(label, _fmt(k, b["p50"], cur), _fmt(k, s["p50"], cur), delta, rng)
    if d["initiatives"]:
        t.add_row("cost of the initiatives", "", "", _fmt("cost", d["cost"]["p50"], cur),
                  _interval(d["cost"], cur))
        t.add_row("NPV", "", "", _fmt("npv", d["npv"]["p50"], cur), _interval(d["npv"], cur))
        roi = d["roi"]
        if roi is not None and roi["p50"] is not None:
            t.add_row("ROI (NPV / cost)", "", "", f"{roi['p50']:.0%}",
                      f"{roi['p5']:.0%} to {roi['p95']:.0%}")
        pay = d["payback_month"]["p50"]
        t.add_row("payback month", "", "", "–" if pay is None else f"{pay:.0f}",
                  f"paid back within the horizon in {d['prob_payback']:.0%} of draws")
        t.add_row("P(NPV > 0)", "", "", f"{d['prob_npv_positive']:.0%}", "")
    return t


def ranking_table(d: dict[str, Any], currency: str) -> Table:
    """``cxasset compare``: scenarios ranked by expected NPV."""
    t = Table("rank", "scenario", "NPV (mean)", "90% interval", "P(NPV > 0)", "P(best)", "ROI",
              title="Scenarios ranked by expected NPV (common random numbers)")
    for r in d["ranking"]:
        t.add_row(str(r["rank"]), escape(r["name"]), money(r["npv"]["mean"], currency),
                  _interval(r["npv"], currency), f"{r['prob_npv_positive']:.0%}",
                  f"{r['prob_best']:.0%}", "–" if r["roi"] is None else f"{r['roi']:.0%}")
    return t


def portfolio_table(d: dict[str, Any], currency: str) -> Table:
    """``cxasset optimize``: the efficient frontier (budget -> best portfolio)."""
    t = Table("budget", "initiatives", "cost", "NPV (mean)", "90% interval", "P(NPV > 0)",
              title=f"Efficient frontier ({'expected NPV' if d['objective'] == 'mean' else 'P10 of NPV'})")
    for p in d["frontier"]:
        t.add_row(money(p["budget"], currency), escape(", ".join(p["names"]) or "none"),
                  money(p["cost"], currency), money(p["npv"]["mean"], currency),
                  _interval(p["npv"], currency), f"{p['prob_npv_positive']:.0%}")
    return t


def statement_table(d: dict[str, Any]) -> Table:
    """The customer asset statement: opening equity, the lines, closing equity (90% intervals)."""
    cur = d["currency"]
    n = d["customers"]
    t = Table("line", "value", "90% interval",
              title=f"Customer asset statement {d['start']} to {d['end']} (values over the next "
              f"{d['settings']['horizon']} {d['settings']['period']}s, net of cost to serve)")

    def iv(q: dict[str, Any]) -> str:
        return "-" if q.get("p5") is None else _interval(q, cur)

    t.add_row(f"customer equity at {d['start']} ({n['opening']:,} customers)",
              money(d["opening"]["estimate"], cur), iv(d["opening"]))
    for x in d["lines"]:
        v = x["estimate"]
        t.add_row(f"  {escape(x['label'])}", ("+" if v >= 0 else "") + money(v, cur), iv(x))
    t.add_row(f"customer equity at {d['end']} ({n['closing']:,} customers)",
              money(d["closing"]["estimate"], cur), iv(d["closing"]))
    return t
