"""The board report as one self-contained HTML file (or Markdown), from the report's figures.

Sections follow the C-suite's questions: Executive summary, Health, Customer asset statement,
Growth, CX metrics in money, Return, Trust. Each section is first laid out as blocks (paragraphs,
tables, lists, charts, the value-map picture), then rendered to HTML (:func:`render_html`: inline
CSS with print rules, plotly's JS embedded once, no external resources) or to Markdown
(:func:`render_markdown`: the same words and tables, charts left out).
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

from cxasset.money import money
from cxasset.report.figures import capital, period_words

__all__ = ["SECTIONS", "render_html", "render_markdown", "sections"]

#: Section ids and headings, in order.
SECTIONS = [("summary", "Executive summary"), ("health", "Health"),
            ("statement", "Customer asset statement"), ("growth", "Growth"),
            ("translation", "CX metrics in money"), ("return", "Return"), ("trust", "Trust")]

Block = tuple[Any, ...]


def _pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{x:.{digits}%}"


def _iv(q: dict[str, Any], cur: str) -> str:
    return f"{money(q['p5'], cur)} to {money(q['p95'], cur)}"


def _missing(d: dict[str, Any], what: str) -> Block:
    return ("missing", f"{what}: not in this workspace yet; {d['missing']}.")


def _health(f: dict[str, Any]) -> list[Block]:
    h, cur = f["health"], f["currency"]
    v = h["valuation"]
    rows = [["customer equity", f"{h['formatted']['equity']} (90% interval "
             f"{h['formatted']['interval']})"],
            ["customers", f"{h['customers']:,}"],
            ["share of customers alive (mean P(alive))", _pct(h["share_alive"])],
            ["mean CLV", money(h["mean_clv"], cur)],
            ["median CLV", "–" if h["median_clv"] is None else money(h["median_clv"], cur)],
            ["expected payments (subscriber-periods) over the horizon"
             if h.get("kind") == "subscriptions" else "expected purchases over the horizon",
             f"{h['expected_transactions']:,.0f}"]]
    if h["top_decile_share"] is not None:
        rows.append(["share of equity in the top 10% of customers", _pct(h["top_decile_share"])])
    if h.get("leakage") and h["leakage"]["churn_rate"] is not None:
        lk = h["leakage"]
        rows.append([f"churn and retention ({period_words(lk['start'], lk['end'])})",
                     f"{_pct(lk['churn_rate'])} of the about {lk['active_at_start']:,.0f} "
                     f"customers active at {lk['start']} were lost; retention "
                     f"{_pct(1 - lk['churn_rate'])}"])
    if h.get("leakage"):
        lk = h["leakage"]
        share = lk["share_of_run_rate"]
        rows.append([f"revenue leakage from churn ({period_words(lk['start'], lk['end'])})",
                     f"{money(lk['annual_revenue']['estimate'], cur)} a year"
                     + (f" ({_pct(share)} of the revenue run-rate)" if share is not None else "")
                     + f": about {lk['customers_lost']['estimate']:,.0f} customers lost "
                     f"(90% interval {_iv(lk['annual_revenue'], cur)})"])
    if h["churn"]:
        c = h["churn"]
        rows.append([f"expected churn of today's customers over {c['months']} months",
                     f"{_pct(c['share'])}: {c['source']}"])
    out: list[Block] = [
        ("p", f"Customer equity is the discounted margin today's customers are expected to bring "
              f"over the next {v['horizon']} {v['period']}s ({v['discount_rate_annual']:.0%} annual "
              f"discount rate, {v['margin_rate']:.0%} margin), as of {f['as_of']}."),
        ("table", ["measure", "value"], rows)]
    if not h["churn"]:
        out.append(("missing", f"Churn over a future horizon: {h['churn_missing']}."))
    if h["segments"]:
        out.append(("h3", "By segment"))
        out.append(("table", ["segment", "customers", "customer equity", "share of equity",
                              "mean CLV", "share alive"],
                    [[s["segment"], f"{s['customers']:,}", money(s["equity"], cur),
                      _pct(s["equity"] / (sum(x["equity"] for x in h["segments"]) or 1)),
                      money(s["mean_clv"], cur), _pct(s["share_alive"])] for s in h["segments"]]))
    if h.get("cohorts"):
        total = sum(x["equity"] for x in h["cohorts"]) or None
        out.append(("h3", "By acquisition cohort"))
        out.append(("table", ["cohort (quarter acquired)", "customers", "customer equity",
                              "share of equity", "mean CLV", "share alive"],
                    [[c["cohort"], f"{c['customers']:,}", money(c["equity"], cur),
                      _pct(c["equity"] / total if total else None), money(c["mean_clv"], cur),
                      _pct(c["share_alive"])] for c in h["cohorts"]]))
    out.append(("chart", "clv-distribution"))
    if h["clv_quantiles"]:
        q = h["clv_quantiles"]
        out.append(("p", f"CLV percentiles: 10% of customers are worth less than "
                         f"{money(q['p10'], cur)}, half less than {money(q['p50'], cur)}, and the "
                         f"top 10% more than {money(q['p90'], cur)}."))
    return out


def _statement(f: dict[str, Any]) -> list[Block]:
    st, cur = f["statement"], f["currency"]
    if not st.get("available"):
        return [("missing", f"No customer asset statement for this book: {st['missing']}")]
    o, c = st["opening"], st["closing"]
    n = st["customers"]
    rows = [[f"Customer equity at {st['start']} ({n['opening']:,} customers)",
             money(o["estimate"], cur), _iv(o, cur)]]
    rows += [[x["label"], _signed(x["estimate"], cur), _iv(x, cur)] for x in st["lines"]]
    rows.append([f"Customer equity at {st['end']} ({n['closing']:,} customers)",
                 money(c["estimate"], cur), _iv(c, cur)])
    change = c["estimate"] - o["estimate"]
    out: list[Block] = [
        ("p", f"Like a financial statement: the customer equity of the base at the start and the "
              f"end of the period ({period_words(st['start'], st['end'])}), both valued with "
              f"today's models over the next {st['settings']['horizon']} "
              f"{st['settings']['period']}s, net of the expected cost to serve and with the value "
              f"of expected referrals, and what changed it. The change is "
              f"{_signed(change, cur)} ({_pct(change / o['estimate'] if o['estimate'] else None)})."),
        ("table", ["line", f"value ({cur})", "90% interval"], rows),
        ("chart", "asset-statement")]
    if st["acquisition_by_cohort"]:
        out.append(("h3", "Acquisition by cohort"))
        out.append(("table", ["cohort (quarter acquired)", "new customers", "customer equity"],
                    [[r["cohort"], f"{r['customers']:,}", money(r["value"], cur)]
                     for r in st["acquisition_by_cohort"]]))
    out.append(("list", [capital(x) + "." for x in st["notes"]]
                + ["Intervals cover the purchase and spend (or retention) models' parameters; the "
                   "cost-to-serve and referral rates are the book's observed rates."]))
    return out


def _signed(x: float, cur: str) -> str:
    return ("+" if x >= 0 else "") + money(x, cur)


def _growth(f: dict[str, Any]) -> list[Block]:
    g, cur = f["growth"], f["currency"]
    out: list[Block] = [("h3", "The value map")]
    vm = g["valuemap"]
    if vm["available"]:
        out.append(("svg", vm["graph"]))
        out.append(("p", f"Each CX variable is linked through a mechanism to money; wider lines "
                         f"move more customer equity ({vm['links']} links). "
                         f"{capital(vm['wording'] or '')}."))
    else:
        out.append(_missing(vm, "The value map"))
    out.append(("h3", "Ranked levers"))
    lev = g["levers"]
    if not lev["available"]:
        out.append(_missing(lev, "The lever ranking"))
        return out
    out.append(("p", f"{lev['significant']} of {lev['candidates']} candidate driver–mechanism "
                     f"pairs are significant ({lev['method']})."))
    out.append(("table", ["#", "lever", "step", "mechanism", "Δ customer equity (mean)",
                          "90% interval", "q", "evidence", "flags"],
                [[str(i), e["label"], f"{e['step']:+g} {e['unit'] or ''}".strip(),
                  e["mechanism"].replace("_", " "), money(e["impact"]["mean"], cur),
                  _iv(e["impact"], cur), f"{e['q_value']:.1g}",
                  e["evidence"] + ("" if e["robust"] is None else
                                   ", robust" if e["robust"] else ", fragile"),
                  ", ".join(n for n, on in (("collinear", e["collinear"]),
                                             ("reverse causality possible", e["reverse_causality"]),
                                             ("undeclared", not e["declared"])) if on) or "–"]
                 for i, e in enumerate(lev["levers"], 1)]))
    out.append(("chart", "levers-chart"))
    ref = g.get("referred_value")
    if lev["referrals"] or ref:
        parts = ([f"a referred customer is worth {money(ref, cur)} (margin to date plus expected "
                  "margin of the customers acquired through referral, or the spec's "
                  "assumption)"] if ref else [])
        parts += [f"{e['label']} {e['step']:+g} adds {money(e['impact']['mean'], cur)} through "
                  "referrals" for e in lev["referrals"]]
        out.append(("p", "Referral value: " + "; ".join(parts) + "."))
    out.append(("h3", "Undeclared levers"))
    out.append(("p", ("Drivers the data shows matter but the value-map spec did not declare: "
                      + ", ".join(lev["undeclared"]) + ".") if lev["undeclared"]
                else "None: every significant lever was declared in the value-map spec."))
    out.append(("h3", "Thresholds"))
    if lev["thresholds"]:
        out.append(("table", ["driver", "mechanism", "effect jumps above", "p-value"],
                    [[t["driver"], t["mechanism"].replace("_", " "), f"{t['cut']:g}",
                      f"{t['p_value']:.2g}"] for t in lev["thresholds"]]))
    else:
        out.append(("p", "No threshold found (or the threshold check was not run)."))
    if lev["segments"]:
        out.append(("h3", "Top levers by segment"))
        out.append(("table", ["segment", "top levers"],
                    [[s, "; ".join(f"{r['driver']} ({r['mechanism'].replace('_', ' ')}) "
                                   f"{money(r['impact'], cur)}" for r in rows)]
                     for s, rows in lev["segments"].items()]))
    return out


def _translation(f: dict[str, Any]) -> list[Block]:
    t = f["translation"]
    if not t["available"]:
        return [_missing(t, "The translation of CX metrics into money")]
    return [("p", "What each CX metric measures and what one unit of it is worth in this book."),
            ("table", ["CX metric", "what it measures", "business translation"],
             [[r["metric"].upper(), r["measures"], r["translation"]] for r in t["rows"]])]


def _return(f: dict[str, Any]) -> list[Block]:
    r, cur = f["return"], f["currency"]
    if not r["available"]:
        return [_missing(r, "Scenario returns")]
    out: list[Block] = [("list", [f"{s['name']}: {s['sentence']}" for s in r["scenarios"]]),
                        ("chart", "scenario-fan")]
    out.append(("table", ["scenario", "cost", "NPV (mean)", "NPV 90% interval", "ROI (P50)",
                          "ROI 90% interval", "payback month (P50)", "P(NPV > 0)"],
                [[s["name"], money(s["cost"]["mean"], cur), money(s["npv"]["mean"], cur),
                  _iv(s["npv"], cur), _pct(s["roi"]["p50"], 0),
                  f"{_pct(s['roi']['p5'], 0)} to {_pct(s['roi']['p95'], 0)}",
                  "–" if s["payback_month"]["p50"] is None else f"{s['payback_month']['p50']:.0f}",
                  _pct(s["prob_npv_positive"], 0)] for s in r["scenarios"]]))
    out.append(("p", f"Best by expected NPV: {r['best']}. NPV is discounted monthly; ROI is NPV "
                     "over the initiatives' cost."))
    out.append(("h3", "Portfolio under a budget"))
    p = r["portfolio"]
    if not p["available"]:
        out.append(_missing(p, "The optimised portfolio"))
        return out
    goal = "expected NPV" if p["objective"] == "mean" else "the 10th percentile of NPV"
    chosen = ", ".join(p["chosen"]) or "no initiative"
    text = (f"Within a budget of {money(p['budget'], cur)}, maximising {goal}: {chosen} "
            f"(cost {money(p['cost'], cur)}; NPV {money(p['npv']['mean'], cur)} as the sum of the "
            f"initiatives alone, {_iv(p['npv'], cur)}).")
    if p["sentence"]:
        text += f" Simulated together: {p['sentence']}"
    out.append(("p", text))
    out.append(("table", ["budget", "initiatives", "cost", "NPV (mean)", "NPV 90% interval",
                          "P(NPV > 0)"],
                [[money(f["budget"], cur), ", ".join(f["names"]) or "none",
                  money(f["cost"], cur), money(f["npv"]["mean"], cur), _iv(f["npv"], cur),
                  _pct(f["prob_npv_positive"], 0)] for f in p["frontier"]]))
    return out


def _trust(f: dict[str, Any]) -> list[Block]:
    t, cur = f["trust"], f["currency"]
    bt, dg, a = t["backtest"], t["diagnostics"], t["assumptions"]
    out: list[Block] = [("h3", "Backtest")]
    if bt.get("aggregate_error") is not None:
        out.append(("p", f"Calibrated to {t['calibration_end']}, predicted the holdout to "
                         f"{t['as_of']}: {bt['actual_total']:,.0f} {bt['counts']} actual vs "
                         f"{bt['predicted_total']:,.0f} predicted "
                         f"({bt['aggregate_error']:+.1%}); mean absolute error "
                         f"{bt['mae_per_customer']:.2f} per customer."))
    out += [("chart", "backtest-tracking"), ("chart", "backtest-cumulative"),
            ("chart", "backtest-conditional"), ("h3", "Evidence behind the numbers"),
            ("table", ["figure", "evidence", "basis"],
             [[e["figure"], e["evidence"], e["basis"]] for e in t["evidence"]]),
            ("h3", "Assumptions"),
            ("table", ["setting", "value"],
             [["currency", a["currency"]], ["time unit", a["period"]],
              ["observed up to (as of)", a["as_of"]],
              ["calibration end", a["calibration_end"] or "2/3 of the window"],
              ["annual discount rate", _pct(a["discount_rate"])],
              ["margin rate", _pct(a["margin_rate"])],
              ["horizon", f"{a['horizon']} {a['period']}s"],
              ["channel costs (per interaction)", ", ".join(
                  f"{k} {money(v, cur)}" for k, v in a["channel_costs"].items()) or "none set"]]),
            ("h3", "Model diagnostics"),
            ("p", f"Model: {dg['model']} ({dg['reason']}); converged: {dg['converged']}; "
                  f"{dg['n_obs']:,} customers; log-likelihood {dg['log_likelihood']:,.1f}."),
            ("table", ["parameter", "estimate", "95% interval"],
             [[k, f"{v:.4g}", f"{dg['conf_int'][k][0]:.4g} – {dg['conf_int'][k][1]:.4g}"]
              for k, v in dg["params"].items()])]
    if dg["candidates"]:
        out.append(("table", ["candidate model", "log-likelihood (calibration)",
                              "holdout aggregate error", "MAE per customer"],
                    [[c["model"], f"{c['log_likelihood']:,.1f}", _pct(c["aggregate_error"]),
                      "–" if c["mae_per_customer"] is None else f"{c['mae_per_customer']:.3f}"]
                     for c in dg["candidates"]]))
    if dg["spend_independence"]:
        out.append(("p", f"Spend model {dg['spend_model']}: {dg['spend_independence']}"))
    notes = t["notes"] + f["health"]["notes"]
    for key in ("levers", "valuemap"):
        notes += f["growth"][key].get("notes", [])
    if f["return"].get("available"):
        notes += f["return"]["notes"]
    if notes:
        out += [("h3", "Notes"), ("list", list(dict.fromkeys(notes)))]
    return out


def sections(f: dict[str, Any]) -> list[tuple[str, str, list[Block]]]:
    """The report laid out as (id, heading, blocks)."""
    body = {"summary": [("summary", f["summary"])], "health": _health(f),
            "statement": _statement(f), "growth": _growth(f),
            "translation": _translation(f), "return": _return(f), "trust": _trust(f)}
    return [(k, title, body[k]) for k, title in SECTIONS]


_CSS = """
body{font-family:Helvetica,Arial,sans-serif;color:#222;max-width:1100px;margin:2em auto;padding:0 1em;
line-height:1.45}
h1{font-size:1.9em;margin-bottom:.1em}h2{border-bottom:2px solid #1f77b4;padding-bottom:.2em;margin-top:2em}
.sub{color:#666;margin-top:0}.summary{font-size:1.15em;background:#f3f7fb;border-left:4px solid #1f77b4;
padding:.8em 1.2em}.summary p{margin:.4em 0}
table{border-collapse:collapse;margin:.8em 0;width:100%;font-size:.92em}
th,td{border-bottom:1px solid #ddd;padding:.35em .6em;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.num{text-align:right;white-space:nowrap}
.missing{background:#fff8e1;border-left:4px solid #f0ad4e;padding:.6em 1em}
.chart{margin:1em 0;page-break-inside:avoid;break-inside:avoid}.valuemap svg{max-width:100%;height:auto}
@media print{body{max-width:none;margin:0;font-size:10pt}section{page-break-before:always;
break-before:page}section#summary{page-break-before:avoid;break-before:avoid}
.chart,table,.valuemap{page-break-inside:avoid;break-inside:avoid}.modebar{display:none!important}}
"""


_DATE_LIKE = re.compile(r"\d{4}-(Q[1-4]|\d{2}(-\d{2})?)")


def _cell(x: str) -> str:
    s = str(x)
    num = (bool(s) and (s[0].isdigit() or s[0] in "$€£¥-+–") and len(s) < 40
           and not _DATE_LIKE.fullmatch(s))  # a cohort or a date is a label, not a number
    return f'<td class="num">{escape(s)}</td>' if num else f"<td>{escape(s)}</td>"


def _html_block(b: Block, divs: dict[str, str], cur: str) -> str:
    kind = b[0]
    if kind == "p":
        return f"<p>{escape(b[1])}</p>"
    if kind == "h3":
        return f"<h3>{escape(b[1])}</h3>"
    if kind == "missing":
        return f'<p class="missing">{escape(b[1])}</p>'
    if kind in ("list", "summary"):
        if kind == "summary":
            return '<div class="summary">' + "".join(f"<p>{escape(s)}</p>" for s in b[1]) + "</div>"
        return "<ul>" + "".join(f"<li>{escape(s)}</li>" for s in b[1]) + "</ul>"
    if kind == "table":
        head = "".join(f"<th>{escape(h)}</th>" for h in b[1])
        rows = "".join("<tr>" + "".join(_cell(c) for c in r) + "</tr>" for r in b[2])
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    if kind == "chart":
        return f'<div class="chart">{divs[b[1]]}</div>' if b[1] in divs else ""
    if kind == "svg":
        from cxasset.valuemap.graph import svg

        return f'<div class="valuemap">{svg(b[1], lambda v: money(v, cur))}</div>'
    raise ValueError(f"unknown block kind {kind!r}")


def render_html(figures: dict[str, Any]) -> str:
    """One self-contained HTML page: inline CSS, plotly's JS once, no external resources."""
    from cxasset.report.charts import chart_divs, plotly_js

    divs = chart_divs(figures)
    cur = figures["currency"]
    body = []
    for sid, title, blocks in sections(figures):
        inner = "\n".join(_html_block(b, divs, cur) for b in blocks)
        body.append(f'<section id="{sid}"><h2>{escape(title)}</h2>\n{inner}\n</section>')
    js = plotly_js().replace("</script>", "<\\/script>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(figures['title'])} · {escape(figures['as_of'])}</title>"
            f"<style>{_CSS}</style>\n<script>{js}</script></head><body>\n"
            f"<h1>{escape(figures['title'])}</h1><p class=\"sub\">Customer book as of "
            f"{escape(figures['as_of'])} · money in {escape(cur)} · generated by cxasset</p>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _md_cell(x: str) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def _md_block(b: Block) -> str:
    kind = b[0]
    if kind == "p":
        return b[1]
    if kind == "h3":
        return f"### {b[1]}"
    if kind == "missing":
        return f"> {b[1]}"
    if kind == "summary":
        return " ".join(b[1])
    if kind == "list":
        return "\n".join(f"- {s}" for s in b[1])
    if kind == "table":
        lines = ["| " + " | ".join(_md_cell(h) for h in b[1]) + " |",
                 "|" + "---|" * len(b[1])]
        lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in b[2]]
        return "\n".join(lines)
    if kind in ("chart", "svg"):
        return ""
    raise ValueError(f"unknown block kind {kind!r}")


def render_markdown(figures: dict[str, Any]) -> str:
    """The report in plain Markdown: the same words and tables, no charts."""
    parts = [f"# {figures['title']}", f"Customer book as of {figures['as_of']} · money in "
             f"{figures['currency']} · charts are in the HTML version (`--format html`)."]
    for _sid, title, blocks in sections(figures):
        parts.append(f"## {title}")
        parts += [t for t in (_md_block(b) for b in blocks) if t]
    return "\n\n".join(parts) + "\n"
