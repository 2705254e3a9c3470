"""Facts are validated before anything is evaluated; every problem at once."""

from __future__ import annotations

import math

import pytest

import engine

from .conftest import DAY, baseline_facts


def problems(shipped, **changes) -> list[tuple[str, str]]:
    facts = {**baseline_facts(), **changes}
    with pytest.raises(engine.FactsError) as caught:
        shipped.evaluate(facts, on=DAY)
    return [(d.path, d.message) for d in caught.value.diagnostics]


def test_every_problem_is_listed_with_its_path(shipped) -> None:
    found = problems(shipped, age=12, sex="femme", vitamine_d=3, weight={"value": 2000, "unit": "kg"})
    assert found == [
        ("age", "age: 12 is outside the plausible range 18 to 120"),
        ("sex", "sex: 'femme' is not one of female, male (did you mean 'female'?)"),
        ("weight", "weight: 2000 kg is outside the plausible range 25 to 250 kg"),
        ("vitamine_d", "unknown fact 'vitamine_d'"),
    ]


def test_did_you_mean_for_names(shipped) -> None:
    with pytest.raises(engine.FactsError) as caught:
        shipped.evaluate({"vitamin_d_25": "20 ng/mL"}, on=DAY)
    assert caught.value.diagnostics[0].hint == "did you mean 'vitamin_d_25oh'?"


@pytest.mark.parametrize("value, message", [
    (18, "vitamin_d_25oh: 18 has no unit: say which unit (e.g. 18 ng/mL)"),
    ({"value": 18, "unit": "mg/L"}, "vitamin_d_25oh: unknown unit 'mg/L' (accepted: ng/mL, nmol/L)"),
    ({"value": 18}, "vitamin_d_25oh: a quantity is written {value: ..., unit: ...}"),
    ({"value": "18", "unit": "ng/mL"}, "vitamin_d_25oh: expected a number, got '18'"),
    ({"value": math.nan, "unit": "ng/mL"}, "vitamin_d_25oh: not a finite number"),
    ({"value": math.inf, "unit": "ng/mL"}, "vitamin_d_25oh: not a finite number"),
    ({"value": 2000, "unit": "nmol/L"},
     "vitamin_d_25oh: 2000 nmol/L (= 800 ng/mL) is outside the plausible range 1 to 500 ng/mL"),
    ("lots", "vitamin_d_25oh: 'lots' is not a value with a unit"),
    (True, "vitamin_d_25oh: expected a value with a unit, got True"),
])
def test_quantity_problems(shipped, value, message) -> None:
    assert problems(shipped, vitamin_d_25oh=value) == [("vitamin_d_25oh", message)]


@pytest.mark.parametrize("name, value, fragment", [
    ("emergency", "yes", "expected true or false"),
    ("emergency", 1, "expected true or false"),
    ("age", 70.5, "expected a whole number"),
    ("age", True, "expected a number"),
    ("comedications", "corticosteroids", "expected a list"),
    ("comedications", ["corticosteroids", "corticosteroids"], "listed twice"),
    ("comedications", ["aspirin"], "'aspirin' not among"),
    ("tooth_extraction_date", "2026-13-01", "is not a date"),
    ("tooth_extraction_date", "2027-01-01", "after the evaluation date 2026-11-27"),
])
def test_type_problems(shipped, name, value, fragment) -> None:
    [(path, message)] = problems(shipped, **{name: value})
    assert path == name and fragment in message


def test_facts_must_be_a_mapping(shipped) -> None:
    with pytest.raises(engine.FactsError) as caught:
        shipped.evaluate([1, 2], on=DAY)
    assert caught.value.diagnostics[0].code == "facts.not-a-mapping"


def test_null_means_unknown_never_a_default(shipped) -> None:
    result = shipped.evaluate({**baseline_facts(), "emergency": None}, on=DAY)
    assert "emergency" in result.missing_facts
    assert result.values["emergency"].value is None


def test_text_quantities_and_unit_spellings(shipped) -> None:
    facts = {**baseline_facts(), "vitamin_d_25oh": "42,5 nmol/L", "measured_clearance": None,
             "serum_creatinine": "1.1 MG/DL", "age": 72, "weight": "58 kg", "sex": "female"}
    result = shipped.evaluate(facts, on=DAY)
    assert result.values["vitamin_d_25oh"].value == 17.0
    assert result.values["vitamin_d_25oh"].display == "42,5 nmol/L (= 17 ng/mL)"
    assert result.values["creatinine_clearance"].value == 42.3282828283  # read as computed (12 significant digits)
    assert result.values["creatinine_clearance"].display == "42,33 mL/min"


def test_a_quantity_as_written_is_what_the_full_check_finds(shipped) -> None:
    # quantity_as_written reads a valid fact's {value, unit} without checking it again (displays of a
    # result use it): on every accepted unit, in its own spelling and folded, it must find what given_as does.
    from engine.facts import given_as, quantity_as_written

    compared = 0
    for spec in shipped.compiled.facts.values():
        if spec.type != "quantity":
            continue
        low, high = spec.range
        for unit in spec.units.units:
            for written in (unit.name, unit.name.upper(), unit.name.replace("µ", "u")):
                number = spec.units.from_canonical(((low or 0) + (high or 100)) / 2, unit)
                raw = {"value": number, "unit": written}
                given = given_as(spec, raw, DAY)
                if given is None:  # a spelling the units do not accept: neither path reads it
                    assert spec.units.find(written) is None
                    continue
                assert quantity_as_written(spec, raw) == (given.unit, given.original), (spec.name, written)
                compared += 1
    assert compared >= 12
    weight = shipped.compiled.facts["weight"]
    for other in ("70 kg", {"value": 70, "unit": "kg", "note": 1}, {"value": True, "unit": "kg"},
                  {"value": "70", "unit": "kg"}, {"value": 70, "unit": "stone"}, {"value": 70, "unit": None}, 70):
        assert quantity_as_written(weight, other) is None, other
    assert quantity_as_written(shipped.compiled.facts["age"], {"value": 70, "unit": "years"}) is None  # no units
