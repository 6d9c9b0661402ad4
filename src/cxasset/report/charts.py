"""The report's charts as plotly figures, built from :func:`cxasset.report.figures.report_figures`.

Every chart has a title and labelled axes with units. :func:`charts` returns only the charts whose
data exists (a missing stage has no chart); :func:`chart_divs` renders them as HTML fragments
without plotly's JS, which the page embeds once (:func:`plotly_js`), so the report opens offline.
"""

from __future__ import annotations

from typing import Any

from cxasset.money import SYMBOLS

__all__ = ["chart_divs", "charts", "plotly_js"]

_LAYOUT = {"template": "plotly_white", "height": 380, "margin": {"l": 70, "r": 30, "t": 60, "b": 60},
           "font": {"family": "Helvetica, Arial, sans-serif", "size": 12},
           "legend": {"orientation": "h", "y": -0.2}}
_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def _sym(cur: str) -> str:
    return SYMBOLS.get(cur, cur + " ")


def _money_axis(cur: str) -> dict[str, Any]:
    return {"tickprefix": _sym(cur), "tickformat": "~s"}


def _actual_vs_predicted(bt: dict[str, Any], suffix: str, title: str, yaxis: str) -> Any:
    """Holdout actual (solid) against predicted (dashed) per period, from ``tracking``'s
    ``actual{suffix}`` and ``predicted{suffix}`` series."""
    import plotly.graph_objects as go

    tr = bt["tracking"]
    unit = bt.get("period") or "period"
    fig = go.Figure()
    fig.add_scatter(x=tr["period"], y=tr[f"actual{suffix}"], name="actual", mode="lines",
                    line={"color": "black"})
    fig.add_scatter(x=tr["period"], y=tr[f"predicted{suffix}"], name="predicted", mode="lines",
                    line={"color": _COLORS[0], "dash": "dash"})
    fig.update_layout(**_LAYOUT, title=title, xaxis_title=f"{unit}s after the calibration end",
                      yaxis_title=yaxis)
    return fig


def _tracking(bt: dict[str, Any]) -> Any:
    unit = bt.get("period") or "period"
    what = (f"{bt['tracks']} per {unit}" if bt.get("kind") != "subscriptions"
            else f"{bt['tracks']} at the end of each {unit}")
    return _actual_vs_predicted(bt, "", f"Backtest: {what} in the holdout, actual vs predicted",
                                what)


def _tracking_cumulative(bt: dict[str, Any]) -> Any:
    what = bt.get("tracks") or "purchases"
    return _actual_vs_predicted(bt, "_cumulative", f"Backtest: cumulative {what} in the holdout",
                                f"cumulative {what}")


def _conditional(bt: dict[str, Any]) -> Any:
    import plotly.graph_objects as go

    c = bt["conditional"]
    labels = [f"{f}+" if i == len(c["frequency"]) - 1 else str(f)
              for i, f in enumerate(c["frequency"])]
    fig = go.Figure()
    fig.add_bar(x=labels, y=c["actual"], name="actual", marker_color="#555555",
                customdata=c["customers"], hovertemplate="%{y:.2f} (%{customdata:,} customers)")
    fig.add_bar(x=labels, y=c["predicted"], name="predicted", marker_color=_COLORS[0])
    fig.update_layout(**_LAYOUT, barmode="group",
                      title="Backtest: holdout purchases per customer by calibration frequency",
                      xaxis_title="repeat purchases in the calibration period",
                      yaxis_title="mean purchases per customer in the holdout")
    return fig


def _clv_histogram(h: dict[str, Any], cur: str) -> Any:
    import plotly.graph_objects as go

    hist = h["clv_histogram"]
    e = hist["edges"]
    mids = [(a + b) / 2 for a, b in zip(e[:-1], e[1:], strict=True)]
    fig = go.Figure()
    fig.add_bar(x=mids, y=hist["counts"], width=[b - a for a, b in zip(e[:-1], e[1:], strict=True)],
                marker_color=_COLORS[0], name="customers")
    v = h["valuation"]
    note = " (last bar: top 1% and above)" if hist.get("top_bin_open") else ""
    fig.update_layout(**_LAYOUT, showlegend=False,
                      title=f"CLV distribution over {v['horizon']} {v['period']}s{note}",
                      xaxis={"title": f"customer lifetime value ({cur})", **_money_axis(cur)},
                      yaxis_title="customers")
    return fig


def _statement(st: dict[str, Any], cur: str) -> Any:
    """Waterfall from the opening to the closing customer equity."""
    import plotly.graph_objects as go

    names = [f"equity {st['start']}"] + [x["key"].replace("_", " ").replace("margin", "& margin")
                                         for x in st["lines"]] + [f"equity {st['end']}"]
    values = ([st["opening"]["estimate"]] + [x["estimate"] for x in st["lines"]]
              + [st["closing"]["estimate"]])
    measure = ["absolute"] + ["relative"] * len(st["lines"]) + ["total"]
    fig = go.Figure(go.Waterfall(x=names, y=values, measure=measure,
                                 increasing={"marker": {"color": _COLORS[2]}},
                                 decreasing={"marker": {"color": _COLORS[1]}},
                                 totals={"marker": {"color": _COLORS[0]}},
                                 connector={"line": {"color": "#999", "width": 1}}))
    fig.update_layout(**_LAYOUT, showlegend=False,
                      title="Customer asset statement: what changed customer equity",
                      xaxis_title="line of the statement",
                      yaxis={"title": f"customer equity ({cur})", **_money_axis(cur)})
    return fig


def _levers(lev: dict[str, Any], cur: str) -> Any:
    import plotly.graph_objects as go

    rows = lev["levers"][::-1]
    labels = [f"{r['label']} ({r['step']:+g}) · {r['mechanism'].replace('_', ' ')}" for r in rows]
    mean = [r["impact"]["mean"] for r in rows]
    fig = go.Figure()
    fig.add_bar(y=labels, x=mean, orientation="h", marker_color=[
        _COLORS[2] if m >= 0 else _COLORS[1] for m in mean],
        error_x={"type": "data", "symmetric": False,
                 "array": [r["impact"]["p95"] - r["impact"]["mean"] for r in rows],
                 "arrayminus": [r["impact"]["mean"] - r["impact"]["p5"] for r in rows]})
    layout = {**_LAYOUT, "height": max(380, 40 + 28 * len(rows)),
              "margin": {**_LAYOUT["margin"], "l": 320}}
    fig.update_layout(**layout, showlegend=False,
                      title="Growth levers: change in customer equity of a realistic step "
                      "(90% interval)",
                      xaxis={"title": f"change in customer equity ({cur})", **_money_axis(cur)},
                      yaxis_title="lever (step) · mechanism")
    return fig


def _fan(ret: dict[str, Any], cur: str) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, s in enumerate(ret["scenarios"]):
        f = s["fan"]
        color = _COLORS[i % len(_COLORS)]
        fig.add_scatter(x=f["month"] + f["month"][::-1], y=f["p95"] + f["p5"][::-1],
                        fill="toself", fillcolor=color, opacity=0.18, line={"width": 0},
                        name=f"{s['name']} P5–P95", hoverinfo="skip", legendgroup=s["name"])
        fig.add_scatter(x=f["month"], y=f["p50"], mode="lines", line={"color": color, "width": 2},
                        name=f"{s['name']} P50", legendgroup=s["name"])
    fig.add_hline(y=0, line={"color": "grey", "width": 1})
    fig.update_layout(**_LAYOUT, title="Scenarios: cumulative incremental NPV (P50 and 90% band)",
                      xaxis_title="months from today",
                      yaxis={"title": f"cumulative incremental NPV ({cur})", **_money_axis(cur)})
    return fig


def charts(figures: dict[str, Any]) -> dict[str, Any]:
    """Plotly figures keyed by chart id, for the data the report has."""
    cur = figures["currency"]
    out: dict[str, Any] = {}
    bt = figures["trust"]["backtest"]
    if bt.get("tracking"):
        out["backtest-tracking"] = _tracking(bt)
        if "actual_cumulative" in bt["tracking"]:
            out["backtest-cumulative"] = _tracking_cumulative(bt)
    if bt.get("conditional"):
        out["backtest-conditional"] = _conditional(bt)
    if figures["statement"].get("available"):
        out["asset-statement"] = _statement(figures["statement"], cur)
    if figures["health"]["clv_histogram"]["counts"]:
        out["clv-distribution"] = _clv_histogram(figures["health"], cur)
    lev = figures["growth"]["levers"]
    if lev.get("available") and lev["levers"]:
        out["levers-chart"] = _levers(lev, cur)
    if figures["return"].get("available"):
        out["scenario-fan"] = _fan(figures["return"], cur)
    return out


def chart_divs(figures: dict[str, Any]) -> dict[str, str]:
    """Each chart as an HTML ``<div>`` with its drawing script, without plotly's JS."""
    cfg = {"displaylogo": False, "responsive": True}
    return {k: f.to_html(full_html=False, include_plotlyjs=False, div_id=k, config=cfg)
            for k, f in charts(figures).items()}


def plotly_js() -> str:
    """plotly.js itself, to embed once in a ``<script>`` of the page."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()
