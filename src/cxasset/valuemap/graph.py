"""The value map as a graph: JSON (nodes and weighted edges) and a self-contained SVG picture.

Three columns of nodes, left to right: CX variables -> financial variables (through their
mechanism) -> customer equity. An edge's width grows with the |change in customer equity| of the
driver's realistic step; green adds value, red destroys it; a dashed grey edge is a link whose
effect is not visibly different from zero (its 95% interval spans 0).
"""

from __future__ import annotations

from html import escape
from typing import Any

from cxasset.valuemap.mechanisms import MECHANISMS


def graph(vmap: dict[str, Any]) -> dict[str, Any]:
    """Nodes and edges of a value map's ``to_dict()``."""
    nodes: dict[str, dict[str, Any]] = {}
    edges = []
    for k in vmap["links"]:
        drv = f"cx:{k['driver']}"
        fin = f"fin:{k['outcome']}"
        nodes.setdefault(drv, {"id": drv, "kind": "cx", "label": k["label"]})
        nodes.setdefault(fin, {"id": fin, "kind": "financial", "label": k["outcome"]})
        lo, hi = k["effect"]["ci95"]
        edges.append({"source": drv, "target": fin, "mechanism": k["mechanism"],
                      "impact": k["impact"]["estimate"], "impact_p5": k["impact"]["p5"],
                      "impact_p95": k["impact"]["p95"], "significant": not (lo <= 0 <= hi),
                      "evidence": k["evidence"]})
    nodes["equity"] = {"id": "equity", "kind": "equity", "label": "Customer equity"}
    for fin in [n for n in nodes if n.startswith("fin:")]:
        total = sum(e["impact"] for e in edges if e["target"] == fin)
        edges.append({"source": fin, "target": "equity", "mechanism": None, "impact": total,
                      "significant": True, "evidence": None})
    return {"nodes": list(nodes.values()), "edges": edges, "currency": vmap["currency"]}


def svg(g: dict[str, Any], money: Any, width: int = 980) -> str:
    """The graph as an SVG document (no scripts, no external resources)."""
    cols = {"cx": 40, "financial": width // 2 - 90, "equity": width - 220}
    by_kind: dict[str, list[dict[str, Any]]] = {"cx": [], "financial": [], "equity": []}
    for n in g["nodes"]:
        by_kind[n["kind"]].append(n)
    rows = max(len(v) for v in by_kind.values())
    height = max(220, 60 + 56 * rows)
    pos = {}
    for kind, ns in by_kind.items():
        gap = (height - 40) / (len(ns) + 1)
        for i, n in enumerate(ns):
            pos[n["id"]] = (cols[kind], 20 + gap * (i + 1))
    biggest = max([abs(e["impact"]) for e in g["edges"]] + [1e-9])
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" '
             'font-size="12"><title>Customer Asset Value Map</title>',
             '<rect width="100%" height="100%" fill="white"/>']
    for e in g["edges"]:
        (x1, y1), (x2, y2) = pos[e["source"]], pos[e["target"]]
        x1 += 180
        w = 1 + 11 * abs(e["impact"]) / biggest
        colour = "#2e7d32" if e["impact"] >= 0 else "#c62828"
        dash = ""
        if not e["significant"]:
            colour, dash = "#9e9e9e", ' stroke-dasharray="6 4"'
        mid = (x1 + x2) / 2
        label = escape(f"{e['mechanism'] or 'total'}: {money(e['impact'])}")
        parts.append(f'<path d="M{x1:.0f},{y1:.0f} C{mid:.0f},{y1:.0f} {mid:.0f},{y2:.0f} '
                     f'{x2:.0f},{y2:.0f}" fill="none" stroke="{colour}" stroke-width="{w:.1f}" '
                     f'stroke-opacity="0.75"{dash}><title>{label}</title></path>')
        if e["mechanism"]:
            parts.append(f'<text x="{mid:.0f}" y="{(y1 + y2) / 2 - 4:.0f}" fill="#555" '
                         f'font-size="10" text-anchor="middle">{label}</text>')
    fills = {"cx": "#e3f2fd", "financial": "#fff3e0", "equity": "#e8f5e9"}
    for n in g["nodes"]:
        x, y = pos[n["id"]]
        parts.append(f'<rect x="{x}" y="{y - 16:.0f}" width="180" height="32" rx="6" '
                     f'fill="{fills[n["kind"]]}" stroke="#607d8b"/>'
                     f'<text x="{x + 90}" y="{y + 4:.0f}" text-anchor="middle">'
                     f'{escape(str(n["label"])[:28])}</text>')
    parts.append(f'<text x="{width / 2:.0f}" y="{height - 8}" text-anchor="middle" fill="#555" '
                 'font-size="10">Edges: change in customer equity of each CX variable\'s '
                 'realistic step (green adds, red destroys, dashed grey: not visibly different '
                 'from zero)</text></svg>')
    return "\n".join(parts)


__all__ = ["MECHANISMS", "graph", "svg"]
