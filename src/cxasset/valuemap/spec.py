"""The value-map spec: which CX variables a company tracks, how it wants them improved, and the
links it believes in (YAML, validated by pydantic; JSON Schema in ``docs/valuemap.md``).

.. code-block:: yaml

    cx_variables:
      - name: Onboarding time        # a label for people
        feature: onboarding_days     # a numeric column of `cxasset features`
        unit: days
        better: lower                # higher | lower
        step: 3                      # a realistic improvement, in the unit (> 0)
    links:                           # optional: default every CX variable x every mechanism
      - driver: Onboarding time      # a CX variable's name (or its feature)
        mechanism: dropout           # purchase_rate | dropout | spend | cost_to_serve | referrals
        experiment: {effect: -0.03, std_err: 0.01, use: combine}   # optional A/B evidence
    controls: [segment]              # optional: default every text feature
    assumptions:
      referred_customer_value: 250   # optional: else the book's referral-channel customers
    fdr: 0.10
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cxasset.exceptions import CxassetError

Mechanism = Literal["purchase_rate", "dropout", "spend", "cost_to_serve", "referrals",
                    "retention"]


class SpecError(CxassetError, ValueError):
    """A value-map or scenario spec that cannot be used (named field, value and fix)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CxVariable(_Strict):
    """A CX variable of the map: a numeric customer feature and what "better" means."""

    name: str = Field(description="Label shown in tables and the picture")
    feature: str = Field(description="Column of `cxasset features` it is measured by")
    unit: str = Field(default="", description="Unit of the feature, e.g. days, points")
    better: Literal["higher", "lower"] = Field(description="Which way is an improvement")
    step: float = Field(gt=0, description="A realistic improvement, in the unit (positive)")


class Experiment(_Strict):
    """A measured lift from an A/B test: the effect per unit of the driver on the mechanism's
    log scale (e.g. -0.03 = 3% less dropout propensity per day faster), and its standard error."""

    effect: float
    std_err: float = Field(gt=0)
    use: Literal["combine", "override"] = "combine"


class Link(_Strict):
    """A link the company believes in: driver -> mechanism (-> financial variable)."""

    driver: str
    mechanism: Mechanism
    experiment: Experiment | None = None


class Assumptions(_Strict):
    referred_customer_value: float | None = Field(default=None, gt=0)


class ValueMapSpec(_Strict):
    """The whole spec (see the module docstring for an example)."""

    cx_variables: list[CxVariable] = Field(default_factory=list)
    links: list[Link] | None = None
    controls: list[str] | None = None
    assumptions: Assumptions = Field(default_factory=Assumptions)
    fdr: float = Field(default=0.10, gt=0, lt=1)

    @model_validator(mode="after")
    def _names(self) -> ValueMapSpec:
        seen: set[str] = set()
        for v in self.cx_variables:
            if v.name in seen:
                raise ValueError(f"two CX variables are named {v.name!r}")
            seen.add(v.name)
        known = {v.name for v in self.cx_variables} | {v.feature for v in self.cx_variables}
        for link in self.links or []:
            if link.driver not in known:
                raise ValueError(f"link driver {link.driver!r} is not a CX variable of the "
                                 f"spec; declared: {sorted(v.name for v in self.cx_variables)}")
        return self

    def variable(self, driver: str) -> CxVariable:
        return next(v for v in self.cx_variables if driver in (v.name, v.feature))

    def declared_links(self, supported: list[str]) -> list[tuple[CxVariable, str, Link | None]]:
        """(variable, mechanism, link) pairs to estimate: the declared links, or every CX
        variable with every mechanism the book supports."""
        if self.links is None:
            return [(v, m, None) for v in self.cx_variables for m in supported]
        return [(self.variable(k.driver), k.mechanism, k) for k in self.links]

    @classmethod
    def from_yaml(cls, path: str | Path) -> ValueMapSpec:
        """Read and validate a spec file; SpecError names the file, field and problem."""
        p = Path(path)
        if not p.is_file():
            raise SpecError(f"value-map spec {p} does not exist; write one with "
                            "`cxasset map init --workspace WS`")
        try:
            raw = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise SpecError(f"{p} is not valid YAML: {e}") from None
        return cls.parse(raw, str(p))

    @classmethod
    def parse(cls, raw: Any, where: str = "spec") -> ValueMapSpec:
        try:
            return cls.model_validate(raw)
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(x) for x in err['loc']) or '(top)'}: {err['msg']}"
                + (f" (got {err['input']!r})" if not isinstance(err.get("input"), dict | list)
                   else "") for err in e.errors())
            raise SpecError(f"{where}: {problems}") from None

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(exclude_none=True), sort_keys=False)


#: Starter defaults for well-known features: label, unit, better, step.
KNOWN = {
    "onboarding_days": ("Onboarding time", "days", "lower", 3.0),
    "nps": ("NPS (latest answer)", "points 0-10", "higher", 1.0),
    "csat": ("CSAT", "points 1-5", "higher", 0.25),
    "ces": ("Customer effort (CES)", "points 1-7, 1 = effortless", "lower", 0.5),
    "training_hours": ("Training", "hours", "higher", 2.0),
    "resolved_rate": ("First-contact resolution", "share", "higher", 0.05),
    "engagement_per_period": ("Engagement", "events per period alive", "higher", 0.5),
}


def starter(features: list[str], sds: dict[str, float]) -> ValueMapSpec:
    """A starter spec from a book's candidate drivers: known CX metrics with their usual
    direction and step; other features with direction "higher" and half a standard deviation,
    for the user to review."""
    out = []
    for f in features:
        label, unit, better, step = KNOWN.get(f, (f.replace("_", " ").capitalize(), "",
                                                  "higher", 0.0))
        if not step:
            sd = sds.get(f, 1.0)
            step = float(f"{0.5 * sd:.2g}") if sd > 0 else 1.0
        if f.startswith("share_contacts_"):
            channel = f.removeprefix("share_contacts_")
            label, unit = f"Share of contacts on {channel}", "share"
            better, step = ("higher", 0.1) if "self" in channel else ("lower", 0.1)
        out.append(CxVariable(name=label, feature=f, unit=unit, better=better, step=step))
    return ValueMapSpec(cx_variables=out)
