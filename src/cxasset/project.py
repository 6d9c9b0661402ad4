"""``cxasset init``: a project folder for someone who brings their own customer data.

::

    DIR/
      README.md         the next steps, as commands run from DIR
      book/book.yaml    every setting of the book, commented, with its unit (the defaults)
      book/README.md    which tables and columns to put next to it (docs/book.md)
      map.yaml          a starter value-map spec: the standard CX variables
      scenarios.yaml    an example investment scenario

``book.yaml`` sits in the book folder because that is where ``cxasset ingest book`` reads it.
Every file is checked with the loader that will read it (settings, value-map spec, scenarios)
before anything is moved into place: the files are written to a temporary folder beside ``DIR``,
which is then renamed to ``DIR``, so a failure leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import textwrap
import uuid
from pathlib import Path
from typing import Any

import yaml

from cxasset.book.contract import ACTIVITY_TABLES, TABLES
from cxasset.book.settings import BookSettings
from cxasset.exceptions import CxassetError

__all__ = ["FILES", "STEPS", "ProjectError", "book_readme", "book_yaml", "init_project"]


class ProjectError(CxassetError, ValueError):
    """A project folder cannot be created (it is not empty, or it is a file)."""


#: The files ``init_project`` writes: role -> path inside the project folder.
FILES = {
    "readme": "README.md",
    "book_settings": "book/book.yaml",
    "book_readme": "book/README.md",
    "map_spec": "map.yaml",
    "scenarios": "scenarios.yaml",
}

#: The next steps, run from the project folder: (command, what it does).
STEPS: list[tuple[str, str]] = [
    ("cxasset ingest book --workspace ws", "validate the book and load it into the workspace "
     "ws; a refused book changes nothing and every problem is listed"),
    ("cxasset info --workspace ws", "what the workspace holds: rows, settings, warnings"),
    ("cxasset features --workspace ws", "the per-customer features, summarised: which CX "
     "variables your data gives"),
    ("cxasset fit --workspace ws", "fit the CLV models, backtest them on the holdout, keep the "
     "best"),
    ("cxasset value --workspace ws --out clv.parquet", "CLV per customer and customer equity, "
     "with a 90% interval"),
    ("cxasset map init --workspace ws --out map.yaml --force", "optional: rewrite map.yaml from "
     "your data (every CX variable your book has)"),
    ("cxasset map --workspace ws --spec map.yaml --out valuemap", "the value map: CX -> "
     "mechanism -> money (valuemap/valuemap.svg)"),
    ("cxasset levers --workspace ws --spec map.yaml", "the growth levers, ranked by customer "
     "equity"),
    ("cxasset simulate scenarios.yaml --workspace ws", "the return of each scenario: NPV, ROI, "
     "payback"),
    ("cxasset compare scenarios.yaml --workspace ws", "the scenarios ranked, with P(best)"),
    ("cxasset optimize scenarios.yaml --workspace ws --budget 300000", "the best portfolio of "
     "initiatives within a budget"),
    ("cxasset report --workspace ws --out report.html", "the board report, one HTML file"),
]

#: Comments of book.yaml: what each setting means and its unit. A setting missing here is
#: written with its description from BookSettings, so a new setting is never left out.
_SETTING_NOTES = {
    "currency": "ISO 4217 code of every money column (amount, margin, cost, acquisition_cost, "
                "recurring_revenue) and of every result in money",
    "period": "time unit of features, models and results: day, week or month (a month is "
              "365.2425/12 days); month suits monthly subscriptions",
    "as_of": "end of observation, inclusive, YYYY-MM-DD; null = the last event in the book. "
             "No event may be dated after it",
    "calibration_end": "end of the calibration period, inclusive, YYYY-MM-DD, before as_of: "
                       "cxasset fit backtests on what follows; null = the first 2/3 of the window",
    "margin_rate": "gross margin as a share of amount (0 to 1), used when transactions have no "
                   "margin column",
    "discount_rate": "ANNUAL discount rate of CLV and NPV (0 <= rate < 1): 0.10 = 10% a year",
    "channel_costs": "cost of one service interaction by channel, in currency, used when "
                     "interactions.cost is empty; e.g. {phone: 6.50, chat: 2.00, email: 1.20}",
    "horizon": "forecast horizon of cxasset value, in periods: 52 weeks = one year (with "
               "period: month, 12 is one year)",
    "transaction_grain": "what one purchase is: day = all purchases of a calendar day (the "
                         "BTYD convention), timestamp = each distinct time",
    "date_format": "strptime format of the date columns of CSV files, e.g. '%d/%m/%Y'; "
                   "null = ISO 8601 (YYYY-MM-DD, optionally with a time)",
}

#: CX features each optional table gives (docs/features.md).
_TABLE_FEATURES = {
    "customers": "onboarding_days (from onboarded_at), segment and any extra column as a "
                 "candidate driver",
    "transactions": "frequency, recency, T, monetary_value (the CLV models' inputs)",
    "subscriptions": "tenure, active, churned, recurring_revenue (the retention models' inputs)",
    "interactions": "contacts_per_period, cost_to_serve_per_period, resolved_rate, "
                    "share_contacts_<channel>, ces (from effort)",
    "surveys": "nps (metric nps), csat (metric csat), ces (metric ces), survey_<metric>",
    "referrals": "referrals_per_period",
    "engagement": "engagement_per_period",
}

MAP_YAML = """\
# Starter value map (docs/valuemap.md): the standard CX variables a book gives when it has the
# matching data. Each is a numeric column of `cxasset features`, which way is better, and a
# realistic improvement (`step`, in the unit). `cxasset map` refuses a variable your book does not
# have: delete its entry, or let `cxasset map init --workspace ws --out map.yaml --force` rewrite
# this file from your data (it adds e.g. share_contacts_<channel> and your own survey metrics).
cx_variables:
  - name: NPS (latest answer)
    feature: nps                 # surveys, metric nps
    unit: points 0-10
    better: higher
    step: 1.0
  - name: CSAT
    feature: csat                # surveys, metric csat
    unit: points 1-5
    better: higher
    step: 0.25
  - name: Customer effort (CES)
    feature: ces                 # surveys, metric ces, and interactions.effort
    unit: points 1-7, 1 = effortless
    better: lower
    step: 0.5
  - name: Onboarding time
    feature: onboarding_days     # customers.onboarded_at - acquired_at
    unit: days
    better: lower
    step: 3.0
  - name: First-contact resolution
    feature: resolved_rate       # interactions.resolved
    unit: share
    better: higher
    step: 0.05
# links:                         # optional: default every CX variable x every mechanism
#   - driver: Onboarding time    # a CX variable's name (or its feature)
#     mechanism: dropout         # purchase_rate | dropout | spend | cost_to_serve | referrals
#     experiment: {effect: -0.03, std_err: 0.01, use: combine}   # optional A/B evidence
# controls: [segment]            # optional: default every text feature
# assumptions:
#   referred_customer_value: 250 # optional, in currency: else the book's referred customers
fdr: 0.10                        # false discovery rate of the lever ranking
"""

SCENARIOS_YAML = """\
# Example investment scenarios (docs/scenarios.md). A file holds one scenario or a list. Each
# initiative changes CX drivers (numeric columns of `cxasset features`) for the customers its
# target selects, at a cost in the book's currency. `cxasset simulate` refuses a driver your book
# does not have and names the ones it has. Replace the costs with yours.
- name: Faster onboarding
  horizon_months: 36             # months simulated (1 to 120)
  discount_rate: null            # annual; null = book.yaml's discount_rate
  new_customers: forecast        # forecast future cohorts too, or none: today's customers only
  initiatives:
    - name: Onboarding concierge
      target: {}                 # a filter on customer features, e.g. {segment: smb}; {} = all
      changes:
        - driver: onboarding_days
          shift: -3              # days faster; or scale: 0.8, or set: 5
          uncertainty_sd: 1.0    # sd of the effect itself, in days
      applies_to: both           # existing | new | both
      ramp_months: 3             # linear ramp to the full effect (0 = immediate)
      cost: {upfront: 50000, per_month: 5000, per_customer: 0}
- name: Easier service
  horizon_months: 36
  initiatives:
    - name: Self-service help centre
      changes:
        - {driver: ces, shift: -0.5, uncertainty_sd: 0.2}    # CES points, lower is easier
      applies_to: existing
      ramp_months: 6
      cost: {upfront: 80000, per_month: 2000}
"""


def book_yaml() -> str:
    """``book.yaml`` with every setting of :class:`BookSettings` at its default, each with a
    comment saying what it means and its unit."""
    lines = ["# Settings of your customer book (docs/book.md). Every key is optional; these are "
             "the defaults.", "# `cxasset ingest book` reads this file from the book folder; "
             "an unknown key is refused.", ""]
    defaults = BookSettings()
    for name, field in BookSettings.model_fields.items():
        note = _SETTING_NOTES.get(name, field.description or "")
        value = yaml.safe_dump({name: getattr(defaults, name)}, default_flow_style=True,
                               width=1000).strip().removeprefix("{").removesuffix("}")
        lines += [*textwrap.wrap(note, 98, initial_indent="# ", subsequent_indent="# "),
                  value, ""]
    return "\n".join(lines)


def book_readme() -> str:
    """What to put in the book folder: the tables of the contract and their columns."""
    need = " or ".join(f"`{t}`" for t in ACTIVITY_TABLES)
    intro = (
        "Put your tables in this folder, one file per table named after it: `customers.csv` (or "
        "`.csv.gz`, `.tsv`, `.parquet`). Column names are fixed and lower case; extra columns are "
        "kept (on `customers` they become candidate drivers). Leave out the file of a table you "
        f"do not have. `customers` is required, and so is one of {need} "
        "(`subscriptions` makes the book contractual). Other files here (this README) are "
        "ignored. The full contract, types and validation rules: docs/book.md; a small example: "
        "examples/book/ in the cxasset repository.")
    then = ("Then edit `book.yaml` (currency, period, discount rate, channel costs, ...) and run, "
            "from the project folder, `cxasset ingest book --workspace ws`.")
    lines = [
        "# Your customer book", "", *textwrap.wrap(intro, 98), "", *textwrap.wrap(then, 98), "",
        "| table | required columns | optional columns | what it is | CX features it gives |",
        "|---|---|---|---|---|",
    ]
    for t in TABLES.values():
        req = ", ".join(f"`{c.name}`" for c in t.columns if c.required)
        opt = ", ".join(f"`{c.name}`" for c in t.columns if not c.required) or "-"
        lines.append(f"| `{t.name}` | {req} | {opt} | {t.help} | "
                     f"{_TABLE_FEATURES.get(t.name, '-')} |")
    lines += ["", *textwrap.wrap(
        "Dates are ISO 8601 (`2024-03-31`) unless `date_format` says otherwise; money is in "
        "`currency`, with a dot as decimal separator; negative amounts are refunds.", 98), ""]
    return "\n".join(lines)


def project_readme(name: str) -> str:
    """The project's README: what is here and the next steps as commands."""
    steps = "\n".join(f"# {w}\n{c}" for c, w in STEPS)
    return f"""\
# {name}: a cxasset project

| file | what to do with it |
|---|---|
| `book/` | put your tables here: see `book/README.md` (and docs/book.md) |
| `book/book.yaml` | your settings: currency, period, discount rate (annual), channel costs, horizon |
| `map.yaml` | the CX variables of your value map; review the steps (docs/valuemap.md) |
| `scenarios.yaml` | the investments to simulate; put in your initiatives and costs (docs/scenarios.md) |

## Next steps

Run these from this folder (the one holding this README); the first one creates the workspace
`ws`.

```sh
{steps}
```

`map.yaml` declares the standard CX variables (NPS, CSAT, CES, onboarding time, first-contact
resolution). If your book lacks one, `cxasset map` says so: delete that entry, or run
`cxasset map init --workspace ws --out map.yaml --force`, which rewrites the file from your data.
The drivers of `scenarios.yaml` must be features of your book too (`cxasset features --workspace
ws` lists them).

Every command takes `--help` (with an example) and `--json` (machine-readable output); see
docs/cli.md.
"""


def _contents(name: str) -> dict[str, str]:
    return {"readme": project_readme(name), "book_settings": book_yaml(),
            "book_readme": book_readme(), "map_spec": MAP_YAML, "scenarios": SCENARIOS_YAML}


def _check(root: Path) -> None:
    """Read every written file back with the loader that will use it."""
    from cxasset.scenarios.spec import load_scenarios
    from cxasset.valuemap.spec import ValueMapSpec

    BookSettings.from_yaml(root / FILES["book_settings"])
    ValueMapSpec.from_yaml(root / FILES["map_spec"])
    load_scenarios(root / FILES["scenarios"])


def init_project(path: str | Path, *, force: bool = False) -> dict[str, Any]:
    """Create a project folder with the settings, spec and scenario files to edit.

    Parameters
    ----------
    path : str or Path
        The project folder; it must not exist or be empty.
    force : bool, default=False
        Write into a non-empty folder: the project files are replaced, every other file (your
        tables, a workspace) is kept.

    Returns
    -------
    dict
        ``project`` (the folder), ``files`` (role -> path), ``overwritten`` (paths replaced
        with ``force``) and ``next_steps`` (the commands of the README).

    Raises
    ------
    ProjectError
        If ``path`` is a file, or a non-empty folder and ``force`` is false.

    Examples
    --------
    >>> from cxasset.project import init_project
    >>> init_project("myproject")["files"]["book_settings"]  # doctest: +SKIP
    'myproject/book/book.yaml'
    """
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise ProjectError(f"{root} exists and is not a folder; choose a folder path")
    entries = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
    if entries and not force:
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise ProjectError(f"{root} is not empty ({len(entries)} entries: {shown}); choose a new "
                           "folder, or pass --force to rewrite the project files there (other "
                           "files are kept)")
    full = root.resolve()
    # the folders this creates (missing parents), innermost first, removed again on failure
    created = [d for d in full.parents if not d.exists()]
    full.parent.mkdir(parents=True, exist_ok=True)
    tmp = full.parent / f".{full.name}.init-{uuid.uuid4().hex[:12]}"
    overwritten: list[str] = []
    try:
        for role, text in _contents(full.name).items():
            f = tmp / FILES[role]
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(text, encoding="utf-8")
        _check(tmp)
        if not root.exists():
            os.replace(tmp, full)  # one rename: the project appears whole or not at all
        else:  # an existing folder (empty, or --force): each file replaced atomically
            for rel in FILES.values():
                dest = full / rel
                if dest.exists():
                    overwritten.append(str(root / rel))
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp / rel, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for d in created:
            with contextlib.suppress(OSError):
                d.rmdir()
        raise
    shutil.rmtree(tmp, ignore_errors=True)
    return {"project": str(root),
            "files": {role: str(root / rel) for role, rel in FILES.items()},
            "overwritten": overwritten,
            "next_steps": [c for c, _ in STEPS]}
