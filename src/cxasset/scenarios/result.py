"""A simulated scenario: baseline and scenario per draw and month, the return of the
investment (NPV, ROI, payback) and the sentence a board reads.

Units: money in the book's currency; totals over the horizon are undiscounted, except
``customer_equity`` (margin minus cost to serve plus referral value, discounted monthly) and
``npv`` (incremental customer equity minus the initiatives' costs, discounted). ``churn_rate`` is
the share of today's customers (alive now) lost by the end of the horizon; monthly churn is the
share of the month's starting customers lost in the month. Every figure is a set of Monte Carlo
draws summarised as P5 / P50 / P95 / mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cxasset.money import money
from cxasset.scenarios.spec import Scenario

TOTALS = ("revenue", "margin", "transactions", "active_customers_end", "churn_rate",
          "cost_to_serve", "referrals", "customer_equity")
SERIES = ("revenue", "margin", "transactions", "active_customers", "churn_rate",
          "cost_to_serve", "referrals", "referral_value", "new_customers", "referred_customers",
          "revenue_existing",
          "revenue_new")


def quantiles(a: np.ndarray) -> dict[str, Any]:
    """P5 / P50 / P95 / mean of draws (axis 0); infinite or NaN draws count as missing, and a
    quantile that is not finite is ``None``."""
    a = np.asarray(a, dtype=float)
    with np.errstate(invalid="ignore"):
        q = np.percentile(a, [5, 50, 95], axis=0)
        mean = np.nanmean(np.where(np.isfinite(a), a, np.nan), axis=0) if np.isfinite(a).any() \
            else np.full(a.shape[1:], np.nan)

    def clean(v: Any) -> Any:
        if np.ndim(v):
            return [clean(x) for x in v]
        return float(v) if np.isfinite(v) else None

    return {"p5": clean(q[0]), "p50": clean(q[1]), "p95": clean(q[2]), "mean": clean(mean)}


@dataclass
class ScenarioResult:
    """A simulated scenario (see the module docstring); :meth:`to_dict` is the ``--json``
    output and :meth:`sentence` the C-suite summary."""

    scenario: Scenario
    months: int
    currency: str
    baseline: dict[str, np.ndarray]  # quantity -> (draws, months)
    scenario_series: dict[str, np.ndarray]
    baseline_totals: dict[str, np.ndarray]  # quantity -> (draws,)
    scenario_totals: dict[str, np.ndarray]
    cost: np.ndarray  # (draws, initiatives, months), undiscounted
    npv: np.ndarray  # (draws,)
    cash: np.ndarray  # discounted incremental value net of costs per month (draws, months)
    target_churn: dict[str, Any] | None
    notes: list[str]
    margin_rate: float
    discount_rate: float

    @classmethod
    def assemble(cls, s: Scenario, base_ex: dict[str, np.ndarray], scen_ex: dict[str, np.ndarray],
                 base_nw: dict[str, np.ndarray], scen_nw: dict[str, np.ndarray],
                 cost: np.ndarray, disc: np.ndarray, vs: Any, referred_value: float,
                 acq: np.ndarray, target_churn: dict[str, Any] | None, notes: list[str]
                 ) -> ScenarioResult:
        """Existing and new customers' monthly totals into series, totals and the return."""
        K, H = acq.shape

        def series(ex: dict[str, np.ndarray], nw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            ex = {k: np.broadcast_to(v, (K, H)) for k, v in ex.items()}
            out = {k: ex[k] + nw[k] for k in ("revenue", "transactions", "cost_to_serve",
                                             "referrals")}
            out["margin"] = vs.margin_rate * out["revenue"]
            out["active_customers"] = ex["alive_end"] + nw["alive_end"]
            with np.errstate(invalid="ignore", divide="ignore"):
                out["churn_rate"] = 1.0 - ex["alive_end"] / ex["alive_start"]
            out["new_customers"] = acq
            out["revenue_existing"], out["revenue_new"] = ex["revenue"], nw["revenue"]
            out["referral_value"] = referred_value * out["referrals"]
            out["value"] = out["margin"] - out["cost_to_serve"] + out["referral_value"]
            out["alive_now"] = ex["alive_start"][:, 0]
            out["existing_alive"] = ex["alive_end"]
            return out

        def totals(x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:  # after the referrals
            t = {k: x[k].sum(axis=1) for k in ("revenue", "margin", "transactions",
                                              "cost_to_serve", "referrals")}
            t["active_customers_end"] = x["active_customers"][:, -1]
            with np.errstate(invalid="ignore", divide="ignore"):
                t["churn_rate"] = 1.0 - x["existing_alive"][:, -1] / x["alive_now"]
            t["customer_equity"] = x["value"] @ disc
            t["new_customers"] = x["new_customers"].sum(axis=1)
            return t

        b, sc = series(base_ex, base_nw), series(scen_ex, scen_nw)
        # the baseline's referrals are already in the acquisition forecast (the referral channel
        # of past cohorts); a change in referrals adds (or removes) referred new customers
        b["referred_customers"] = np.zeros((K, H))
        sc["referred_customers"] = sc["referrals"] - b["referrals"]
        sc["new_customers"] = acq + sc["referred_customers"]
        cash = (sc["value"] - b["value"] - cost.sum(axis=1)) * disc[None, :]
        rate = vs.discount_rate if s.discount_rate is None else s.discount_rate
        return cls(s, H, vs.currency, b, sc, totals(b), totals(sc), cost, cash.sum(axis=1),
                   cash, target_churn, list(notes), vs.margin_rate, rate)

    # ------------------------------------------------------------------ the return
    @property
    def delta_totals(self) -> dict[str, np.ndarray]:
        return {k: self.scenario_totals[k] - self.baseline_totals[k] for k in TOTALS}

    @property
    def cost_pv(self) -> np.ndarray:
        """Present value of the initiatives' costs per draw."""
        disc = (1.0 + self.discount_rate) ** (-np.arange(1, self.months + 1) / 12.0)
        return self.cost.sum(axis=1) @ disc

    @property
    def roi(self) -> np.ndarray:
        """NPV per unit of (discounted) cost; NaN without cost."""
        pv = self.cost_pv
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(pv > 0, self.npv / pv, np.nan)

    @property
    def payback(self) -> np.ndarray:
        """Month from which the cumulative discounted net return stays >= 0 (inf: not within
        the horizon)."""
        cum = np.cumsum(self.cash, axis=1)
        neg = cum < 0
        last = np.where(neg.any(axis=1), self.months - np.argmax(neg[:, ::-1], axis=1), 0)
        return np.where(cum[:, -1] >= 0, last + 1.0, np.inf)

    @property
    def prob_npv_positive(self) -> float:
        return float(np.mean(self.npv > 0))

    # ------------------------------------------------------------------ outputs
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (documented in ``docs/scenarios.md``)."""
        s = self.scenario
        d = self.delta_totals
        months = list(range(1, self.months + 1))
        monthly = {
            "month": months,
            "baseline": {k: quantiles(self.baseline[k])["p50"] for k in SERIES},
            "scenario": {k: quantiles(self.scenario_series[k])["p50"] for k in SERIES},
            "delta": {k: quantiles(self.scenario_series[k] - self.baseline[k])
                      for k in ("revenue", "margin", "active_customers", "cost_to_serve",
                                "referrals")},
            "cost": quantiles(self.cost.sum(axis=1)),
            "cumulative_npv": quantiles(np.cumsum(self.cash, axis=1)),
        }
        pay = self.payback if s.initiatives else np.full(len(self.npv), np.nan)
        return {
            "name": s.name, "horizon_months": self.months, "currency": self.currency,
            "draws": int(len(self.npv)),
            "units": {"money": f"{self.currency}, undiscounted over the horizon except "
                      "customer_equity and npv (discounted monthly)",
                      "discount_rate": f"{self.discount_rate:g} a year, compounded monthly",
                      "churn_rate": "share of today's customers lost by the end of the horizon "
                      "(existing base)", "margin_rate": self.margin_rate},
            "baseline": {k: quantiles(self.baseline_totals[k]) for k in TOTALS},
            "scenario": {k: quantiles(self.scenario_totals[k]) for k in TOTALS},
            "delta": {k: quantiles(d[k]) for k in TOTALS},
            "new_customers": {
                "baseline": quantiles(self.baseline_totals["new_customers"]),
                "scenario": quantiles(self.scenario_totals["new_customers"]),
                "referred": quantiles(self.scenario_series["referred_customers"].sum(axis=1))},
            "cost": quantiles(self.cost.sum(axis=(1, 2))),
            "npv": quantiles(self.npv),
            "roi": quantiles(self.roi) if np.isfinite(self.roi).any() else None,
            "payback_month": quantiles(pay),
            "prob_payback": float(np.mean(np.isfinite(pay))) if s.initiatives else None,
            "prob_npv_positive": self.prob_npv_positive,
            "target_churn": None if self.target_churn is None else {
                **{k: v for k, v in self.target_churn.items() if k != "scenario"},
                "baseline": float(self.target_churn["baseline"]),
                "scenario": quantiles(self.target_churn["scenario"])},
            "initiatives": [{"name": i.name, "target": i.target, "applies_to": i.applies_to,
                             "changes": [c.describe() for c in i.changes],
                             "ramp_months": i.ramp_months,
                             "cost": quantiles(self.cost[:, j].sum(axis=1))}
                            for j, i in enumerate(s.initiatives)],
            "sentence": self.sentence(),
            "monthly": monthly,
            "notes": self.notes,
        }

    def sentence(self) -> str:
        """One sentence in the C-suite's language, with numbers and 90% intervals."""
        s, cur = self.scenario, self.currency
        m = self.delta_totals["margin"]
        q = quantiles(m)
        years = self.months / 12
        span = f"{years:g} year{'s' if years != 1 else ''}" if self.months % 12 == 0 else \
            f"{self.months} months"
        if not s.initiatives:
            b = quantiles(self.baseline_totals["margin"])
            return (f"{s.name}: without new initiatives the book is expected to earn "
                    f"{money(b['p50'], cur)} of margin over {span} "
                    f"(90% interval {_range(b, cur)}).")
        cost = float(self.cost.sum(axis=(1, 2)).mean())
        names = " and ".join(i.name for i in s.initiatives)
        out = f"Investing {money(cost, cur)} over {span} in {names} is expected to "
        tc = self.target_churn
        if tc is not None:
            c = quantiles(tc["scenario"])
            who = _who(tc["target"])
            if round(c["p50"], 3) == round(tc["baseline"], 3):
                out += (f"leave {tc['months']}-month churn{who} at {tc['baseline']:.1%} "
                        f"(90% interval {c['p5']:.1%}–{c['p95']:.1%}) and ")
            else:
                verb = "cut" if c["p50"] < tc["baseline"] else "raise"
                out += (f"{verb} {tc['months']}-month churn{who} from {tc['baseline']:.1%} to "
                        f"{c['p50']:.1%} (90% interval {c['p5']:.1%}–{c['p95']:.1%}) and ")
        verb = "add" if q["p50"] >= 0 else "lose"
        out += (f"{verb} {money(abs(q['p50']), cur)} of margin ({_range(q, cur)}): "
                f"NPV {money(quantiles(self.npv)['p50'], cur)} "
                f"({_range(quantiles(self.npv), cur)}), ")
        pay = quantiles(self.payback)["p50"]
        out += (f"payback month {pay:.0f}" if pay is not None
                else f"no payback within {self.months} months")
        return out + f"; probability that NPV > 0: {self.prob_npv_positive:.0%}."


def _range(q: dict[str, Any], cur: str) -> str:
    return f"{money(q['p5'], cur)} to {money(q['p95'], cur)}"


def _who(target: dict[str, Any]) -> str:
    if not target:
        return ""
    parts = []
    for k, v in target.items():
        if isinstance(v, dict):
            lo, hi = v.get("min"), v.get("max")
            parts.append(f"{k} {lo:g}–{hi:g}" if lo is not None and hi is not None
                         else f"{k} >= {lo:g}" if lo is not None else f"{k} <= {hi:g}")
        elif isinstance(v, list):
            parts.append(" or ".join(str(x) for x in v))
        else:
            parts.append(str(v))
    return " among " + ", ".join(parts) + " customers"
