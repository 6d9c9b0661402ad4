"""The main job end to end on a synthetic book (``cxasset demo``, ``make demo``).

synth -> ingest -> features -> fit -> value -> value map -> levers -> scenarios -> portfolio ->
report: every stage through the same Python API a user calls, writing into one folder the book,
the workspace, the starter value-map spec (``map.yaml``), its picture (``valuemap.svg``), the
scenario file (``scenarios.yaml``) and the board report (``report.html``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cxasset.exceptions import BookWarning

#: The demo's scenarios: the synthetic book's planted levers, with costs in its currency.
DEMO_SCENARIOS = """\
- name: Onboarding concierge
  horizon_months: 36
  initiatives:
    - &concierge
      name: Onboarding concierge
      target: {segment: [smb, mid]}
      changes:
        - {driver: onboarding_days, shift: -4, uncertainty_sd: 1.0}
      applies_to: both
      ramp_months: 3
      cost: {upfront: 40000, per_month: 3000}
- name: Training programme
  horizon_months: 36
  initiatives:
    - &training
      name: Two more hours of training
      changes:
        - {driver: training_hours, shift: 2, uncertainty_sd: 0.5}
      ramp_months: 6
      cost: {upfront: 20000, per_customer: 4}
- name: Both
  horizon_months: 36
  initiatives: [*concierge, *training]
"""
#: The portfolio's budget (over the scenarios' 36 months, the book's currency).
DEMO_BUDGET = 150_000.0
STEPS = 10


@dataclass
class DemoResult:
    """What the demo made: paths, and every stage's result as the commands' ``--json`` shows it."""

    out_dir: Path
    rows: dict[str, int]
    book_summary: dict[str, str]
    fit: dict[str, Any]
    value: dict[str, Any]
    valuemap: dict[str, Any]
    levers: dict[str, Any]
    scenarios: dict[str, Any]
    portfolio: dict[str, Any]
    figures: dict[str, Any]

    @property
    def files(self) -> dict[str, Path]:
        o = self.out_dir
        return {"book": o / "book", "workspace": o / "workspace", "spec": o / "map.yaml",
                "valuemap": o / "valuemap.svg", "scenarios": o / "scenarios.yaml",
                "report": o / "report.html"}

    def to_dict(self) -> dict[str, Any]:
        return {**{k: str(v) for k, v in self.files.items()}, "rows": self.rows,
                "summary": self.book_summary, "fit": self.fit, "value": self.value,
                "valuemap": self.valuemap, "levers": self.levers, "scenarios": self.scenarios,
                "portfolio": self.portfolio, "summary_sentences": self.figures["summary"]}


def run_demo(out_dir: str | Path = "demo", customers: int = 20_000, seed: int = 7,
             progress: Callable[..., None] | None = None) -> DemoResult:
    """Run the whole pipeline on a new synthetic book in ``out_dir``.

    ``progress(description=..., completed=...)`` is told each step (and, while the book is
    synthesised, how many customers are done out of ``customers``).
    """
    import yaml

    from cxasset.book import Workspace
    from cxasset.features import feature_frame
    from cxasset.levers.rank import rank_levers
    from cxasset.models.workflow import fit_workspace
    from cxasset.money import money
    from cxasset.report.figures import report_figures
    from cxasset.report.html import render_html
    from cxasset.scenarios.plan import compare, optimize_portfolio
    from cxasset.scenarios.simulate import prepare
    from cxasset.scenarios.spec import parse_scenarios
    from cxasset.synth import generate
    from cxasset.valuation import value_workspace
    from cxasset.valuemap.build import starter_spec, value_map
    from cxasset.valuemap.graph import graph, svg

    say = progress or (lambda **_: None)
    out_dir = Path(out_dir)
    book = out_dir / "book"

    def step(k: int, what: str) -> Callable[[str], None]:
        say(description=f"{k}/{STEPS} {what}")
        return lambda m: say(description=f"{k}/{STEPS} {what}: {m}")

    step(1, "synthesising the customer book")
    generate(book, customers=customers, seed=seed, progress=lambda n: say(completed=n))
    say(completed=customers)
    step(2, "validating and ingesting")
    with Workspace(out_dir / "workspace") as ws:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BookWarning)
            ingest = ws.ingest(book)
        s = ws.settings
        step(3, "computing features in the engine")
        feats = feature_frame(ws, calibration_end=s.calibration_end)
        fitted = fit_workspace(ws, model="auto", progress=step(4, "fitting"))
        step(5, "valuing the customer base")
        valuation = value_workspace(ws)
        spec = starter_spec(ws)
        (out_dir / "map.yaml").write_text(spec.to_yaml())
        vmap = value_map(ws, spec, progress=step(6, "value map"))
        levers = rank_levers(ws, spec, progress=step(7, "levers"))
        (out_dir / "scenarios.yaml").write_text(DEMO_SCENARIOS)
        scenarios = parse_scenarios(yaml.safe_load(DEMO_SCENARIOS), "demo scenarios")
        planner = prepare(ws, seed=seed, scenarios=scenarios, progress=step(8, "scenarios"))
        compared = compare(planner, scenarios, draws=1000, seed=seed)
        ws.save_artifact("scenarios", {"scenarios": compared["scenarios"],
                                       "notes": list(planner.notes),
                                       "acquisition": planner.acquisition.to_dict()})
        # the two single-initiative scenarios are the candidates ("Both" is their union)
        portfolio = optimize_portfolio(planner, scenarios[:2], DEMO_BUDGET, draws=1000,
                                       seed=seed, save_to=ws, progress=step(9, "portfolio"))
        step(10, "writing the board report")
        figures = report_figures(ws, seed=seed)
    (out_dir / "report.html").write_text(render_html(figures), encoding="utf-8")
    vmap_d = vmap.to_dict()
    (out_dir / "valuemap.svg").write_text(svg(graph(vmap_d),
                                              lambda v: money(v, vmap_d["currency"])))
    return DemoResult(out_dir, dict(ingest.rows), book_summary(feats, s), fitted.to_dict(),
                      valuation.to_dict(), vmap_d, levers.to_dict(), compared, portfolio,
                      figures)


def book_summary(f: Any, s: Any) -> dict[str, str]:
    """The book at a glance, from its features (customers, repeat buying, CX metrics)."""
    cur = s.currency
    rows = {
        "customers": f"{len(f):,}",
        "repeat buyers": f"{(f.frequency > 0).mean():.1%}",
        "mean repeat transactions (x)": f"{f.frequency.mean():.2f} in {f['T'].mean():.1f} "
                                        f"{s.period}s on average",
        "mean repeat spend": f"{cur} {f.monetary_value[f.frequency > 0].mean():,.2f}",
    }
    if "frequency_holdout" in f:
        rows["holdout transactions"] = (f"{int(f.frequency_holdout.sum()):,} over "
                                        f"{f.duration_holdout.iloc[0]:.0f} {s.period}s")
    if "nps" in f:
        share = f.nps_class.value_counts(normalize=True)
        nps = 100 * (share.get("promoter", 0) - share.get("detractor", 0))
        rows["NPS (latest answer)"] = f"{nps:+.0f} ({f.nps.notna().mean():.0%} answered)"
    for col, label in (("csat", "mean CSAT (1-5)"), ("ces", "mean CES (1-7)"),
                       ("onboarding_days", "mean onboarding days")):
        if col in f:
            rows[label] = f"{f[col].mean():.2f}"
    if "cost_to_serve_per_period" in f:
        rows["cost to serve"] = f"{cur} {f.cost_to_serve_per_period.mean():,.2f} per {s.period}"
    if "referrals_per_period" in f:
        rows["referrals"] = f"{f.referrals_per_period.mean():.4f} per customer per {s.period}"
    return rows
