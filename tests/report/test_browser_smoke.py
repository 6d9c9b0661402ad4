"""Smoke tests of the real-browser setup: a self-contained chart page renders in Debian's chromium with
no errors, and the fixture's error capture really catches errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _write(path: Path, html: str) -> Path:
    path.write_text(html, encoding="utf-8")
    return path


def _assert_png(path: Path) -> None:
    assert path.is_file(), f"no screenshot at {path}"
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert path.stat().st_size > 1_000


def test_inline_plotly_chart_renders(open_page, tmp_path: Path) -> None:
    # plotly is the report's chart library (docs: charts, JS bundled offline); skip only while it is
    # not yet among the dependencies. The SVG test below covers the browser setup without it.
    plotly_io = pytest.importorskip("plotly.io")
    go = pytest.importorskip("plotly.graph_objects")

    segments = ["new", "active", "at risk", "lapsed"]
    fig = go.Figure(go.Bar(x=segments, y=[120.0, 340.5, 80.25, 15.0], name="CLV"))
    fig.update_layout(title="CLV by segment", width=800, height=500)
    # include_plotlyjs=True inlines the whole plotly.js bundle: no CDN, no network.
    html = plotly_io.to_html(fig, include_plotlyjs=True, full_html=True, div_id="chart")
    assert re.search(r"<script[^>]*\bsrc=", html) is None, "the page loads a script from elsewhere"
    page_path = _write(tmp_path / "plotly_chart.html", html)
    shot = tmp_path / "shots" / "plotly_chart.png"

    page, errors = open_page(page_path, screenshot=shot)

    assert errors == []
    assert page.evaluate("typeof window.Plotly") == "object"
    plot_area = page.locator("#chart .nsewdrag").first.bounding_box()
    assert plot_area is not None and plot_area["width"] > 100 and plot_area["height"] > 100, plot_area
    assert page.locator("#chart .barlayer .point").count() == len(segments)
    _assert_png(shot)


def test_inline_svg_chart_renders(open_page, tmp_path: Path) -> None:
    bars = "".join(
        f'<rect class="bar" x="{20 + 60 * i}" y="{200 - h}" width="40" height="{h}" fill="#4c78a8"/>'
        for i, h in enumerate([50, 120, 90, 170])
    )
    page_path = _write(
        tmp_path / "svg_chart.html",
        f"""<!doctype html><html><head><meta charset="utf-8"><title>chart</title></head><body>
<svg id="chart" width="300" height="220" viewBox="0 0 300 220">{bars}</svg>
<script>document.title = "rendered";</script></body></html>""",
    )
    shot = tmp_path / "svg_chart.png"

    page, errors = open_page(page_path, screenshot=shot)

    assert errors == []
    assert page.title() == "rendered"
    box = page.locator("#chart").bounding_box()
    assert box is not None and box["width"] == 300 and box["height"] == 220
    assert page.locator("#chart rect.bar").count() == 4
    _assert_png(shot)


def test_javascript_errors_are_reported(open_page, tmp_path: Path) -> None:
    page_path = _write(
        tmp_path / "broken.html",
        """<!doctype html><html><head><meta charset="utf-8"></head><body><p>broken</p>
<script>console.error("deliberate console error");</script>
<script>notAFunctionAnywhere();</script>
</body></html>""",
    )

    page, errors = open_page(page_path)

    assert len(errors) == 2, errors
    assert any("deliberate console error" in e and e.startswith("console.error") for e in errors), errors
    assert any("notAFunctionAnywhere" in e and e.startswith("page error") for e in errors), errors
    # Errors raised after the load are caught too.
    page.evaluate("() => { setTimeout(() => { throw new Error('late failure'); }, 0); }")
    page.wait_for_timeout(200)
    assert any("late failure" in e for e in errors), errors
