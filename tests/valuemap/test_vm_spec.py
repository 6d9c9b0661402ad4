"""The value-map spec: validation errors name the field, YAML files, the starter spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cxasset.valuemap.spec import KNOWN, SpecError, ValueMapSpec, starter

ONB = {"name": "Onboarding time", "feature": "onboarding_days", "unit": "days",
       "better": "lower", "step": 3}
NPS = {"name": "NPS", "feature": "nps", "better": "higher", "step": 1}


def spec(**kw: Any) -> dict[str, Any]:
    return {"cx_variables": [dict(ONB), dict(NPS)], **kw}


def test_parse_valid() -> None:
    s = ValueMapSpec.parse(spec(links=[{"driver": "Onboarding time", "mechanism": "dropout",
                                        "experiment": {"effect": -0.03, "std_err": 0.01}},
                                       {"driver": "nps", "mechanism": "referrals"}],
                                controls=["segment"],
                                assumptions={"referred_customer_value": 250}, fdr=0.05))
    assert [v.feature for v in s.cx_variables] == ["onboarding_days", "nps"]
    assert s.links is not None and s.links[0].experiment is not None
    assert s.links[0].experiment.use == "combine"
    assert s.assumptions.referred_customer_value == 250
    assert s.variable("nps").name == "NPS" and s.variable("Onboarding time").feature == \
        "onboarding_days"
    pairs = s.declared_links(["purchase_rate"])
    assert [(v.feature, m) for v, m, _ in pairs] == [("onboarding_days", "dropout"),
                                                      ("nps", "referrals")]


def test_default_links_are_every_variable_by_every_mechanism() -> None:
    s = ValueMapSpec.parse(spec())
    assert s.fdr == 0.10 and s.links is None and s.controls is None
    pairs = s.declared_links(["purchase_rate", "dropout"])
    assert [(v.feature, m, k) for v, m, k in pairs] == [
        ("onboarding_days", "purchase_rate", None), ("onboarding_days", "dropout", None),
        ("nps", "purchase_rate", None), ("nps", "dropout", None)]


def test_empty_document_is_an_empty_spec(tmp_path: Path) -> None:
    p = tmp_path / "empty.yaml"
    p.write_text("")
    assert ValueMapSpec.from_yaml(p).cx_variables == []


@pytest.mark.parametrize(("raw", "words"), [
    (spec(cx_variables=[{**ONB, "better": "up"}]), ["cx_variables.0.better", "'up'"]),
    (spec(cx_variables=[{**ONB, "step": -3}]), ["cx_variables.0.step", "greater than 0"]),
    (spec(cx_variables=[{**ONB, "step": 0}]), ["cx_variables.0.step"]),
    (spec(cx_variables=[{k: v for k, v in ONB.items() if k != "feature"}]),
     ["cx_variables.0.feature", "required"]),
    (spec(links=[{"driver": "CSAT", "mechanism": "dropout"}]),
     ["'CSAT'", "not a CX variable", "Onboarding time"]),
    (spec(links=[{"driver": "NPS", "mechanism": "loyalty"}]), ["links.0.mechanism", "'loyalty'"]),
    (spec(links=[{"driver": "NPS", "mechanism": "dropout", "experiment": {"effect": 0.1,
                                                                           "std_err": 0}}]),
     ["links.0.experiment.std_err"]),
    (spec(links=[{"driver": "NPS", "mechanism": "dropout",
                  "experiment": {"effect": 0.1, "std_err": 0.1, "use": "replace"}}]),
     ["links.0.experiment.use", "'replace'"]),
    (spec(cx_variable=[]), ["cx_variable", "Extra inputs are not permitted"]),
    (spec(cx_variables=[{**ONB, "direction": "lower"}]), ["cx_variables.0.direction"]),
    (spec(fdr=1.5), ["fdr"]),
    (spec(assumptions={"referred_customer_value": -1}),
     ["assumptions.referred_customer_value"]),
    (spec(cx_variables=[ONB, {**NPS, "name": "Onboarding time"}]),
     ["two CX variables are named 'Onboarding time'"]),
    ([1, 2], ["(top)", "valid dictionary"]),
])
def test_parse_errors_name_the_field(raw: Any, words: list[str]) -> None:
    with pytest.raises(SpecError) as e:
        ValueMapSpec.parse(raw, "map.yaml")
    msg = str(e.value)
    assert msg.startswith("map.yaml: ")
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg


def test_spec_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        ValueMapSpec.parse(spec(fdr=0))


def test_from_yaml_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"does not exist.*cxasset map init"):
        ValueMapSpec.from_yaml(tmp_path / "nope.yaml")


def test_from_yaml_invalid_yaml(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("cx_variables: [\n  - name: x\n")
    with pytest.raises(SpecError, match="is not valid YAML"):
        ValueMapSpec.from_yaml(p)


def test_from_yaml_error_names_the_file(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text("cx_variables:\n  - {name: a, feature: nps, better: up, step: 1}\n")
    with pytest.raises(SpecError, match=rf"^{p}: cx_variables\.0\.better"):
        ValueMapSpec.from_yaml(p)


def test_starter_round_trip(tmp_path: Path) -> None:
    s = starter(["onboarding_days", "nps", "employees", "share_contacts_phone",
                 "share_contacts_self_service", "weird"], {"employees": 980.0, "weird": 0.0})
    assert ValueMapSpec.parse(s.model_dump()) == s
    p = tmp_path / "s.yaml"
    p.write_text(s.to_yaml())
    back = ValueMapSpec.from_yaml(p)
    assert back == s
    v = {x.feature: x for x in back.cx_variables}
    assert (v["onboarding_days"].name, v["onboarding_days"].better, v["onboarding_days"].step) \
        == KNOWN["onboarding_days"][::2] + (3.0,)
    assert v["nps"].better == "higher" and v["nps"].step == 1.0
    assert v["employees"].better == "higher" and v["employees"].step == 490.0  # half an sd
    assert v["weird"].step == 1.0  # no variance: a unit
    assert (v["share_contacts_phone"].better, v["share_contacts_phone"].step) == ("lower", 0.1)
    assert v["share_contacts_self_service"].better == "higher"
    assert v["share_contacts_phone"].name == "Share of contacts on phone"
