"""Explanations: the generated path equals the value-by-value one, and both say the right things.

The generated function (engine.accel.explaincode) explains a whole JSON result;
engine.explain's value-by-value path is the reference. They are compared on a
cohort of the shipped guideline (quantities in every accepted unit, missing
facts, both languages, facts with a FHIR source), and the needs remembered by
shape (engine.needs) against a full walk.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

import engine
from engine.explain import prepared
from engine.needs import NeedsTracer
from tests.oracle.cohort import cohort, valid

DAY = dt.date(2026, 11, 27)


@pytest.fixture(scope="module")
def patients(shipped: engine.Guideline) -> list[dict[str, Any]]:
    return [p for p in cohort(shipped, 400, 11) if valid(shipped, p, DAY)]


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_generated_explanations_equal_the_reference(shipped: engine.Guideline, patients: list[dict[str, Any]],
                                                    lang: str) -> None:
    assert len(patients) > 300
    for facts in patients:
        explainer = shipped.evaluate(facts, on=DAY, lang=lang)._explainer
        assert explainer is not None
        plain = explainer.json_values(generated=False)
        assert explainer.json_values(generated=True) == plain, facts
        assert list(plain) == list(prepared(shipped.compiled, lang).listed)
    result = shipped.evaluate(patients[0], on=DAY, lang=lang)
    assert list(result.to_dict()["values"]) == list(result.values)  # facts, derived values, table outputs


def test_sources_and_units_as_given_are_explained_on_both_paths(shipped: engine.Guideline) -> None:
    facts = {"bone_metastases": True, "vitamin_d_25oh": {"value": 50, "unit": "nmol/L"},
             "serum_creatinine": "1.2 mg/dL", "weight": {"value": 70, "unit": "kg"}}
    sources = {"vitamin_d_25oh": "Observation/vd-1 (2026-11-20)"}
    for generated in (False, True):
        result = shipped.evaluate(facts, on=DAY, lang="fr", sources=sources)
        assert result._explainer is not None
        values = result._explainer.json_values(generated=generated)
        assert values["vitamin_d_25oh"]["display"] == "50 nmol/L (= 20 ng/mL)"
        assert values["vitamin_d_25oh"]["how"] == "Observation/vd-1 (2026-11-20)"
        assert values["serum_creatinine"]["display"] == "1,2 mg/dL (= 106,08 µmol/L)"
        assert values["weight"]["display"] == "70 kg"  # given in the canonical unit: said once
        assert "today" not in values  # read by explanations, not listed among the values
        assert result.values["months_on_treatment"].how == "Début de l'anti-résorptif inconnu"


def test_a_json_result_is_new_each_time(shipped: engine.Guideline) -> None:
    facts = {"bone_metastases": True, "current_agent": "none"}
    for _ in range(4):  # past the first results, the generated path serves
        first = shipped.evaluate(facts, on=DAY).to_dict()
        first["values"]["bone_metastases"]["display"] = "changed"
        first["recommendations"][0]["why"]["values"].clear()
        again = shipped.evaluate(facts, on=DAY).to_dict()
        assert again["values"]["bone_metastases"]["display"] == "oui"
        assert again["recommendations"][0]["why"]["values"]


def test_remembered_needs_equal_a_full_walk(shipped: engine.Guideline, patients: list[dict[str, Any]]) -> None:
    compared = 0
    for facts in patients:
        env = shipped.evaluate(facts, on=DAY)._explainer.env  # type: ignore[union-attr]
        remembered = NeedsTracer(shipped.compiled, env)
        walked = NeedsTracer(shipped.compiled, env, remember=False)
        for rule in shipped.compiled.rules:
            expected = walked.missing(rule.when.tree)
            assert remembered.missing(rule.when.tree) == expected, (rule.id, facts)
            compared += bool(expected)
    assert compared > 500  # many undetermined rules, not only known ones


def test_borderline_probes_by_the_plan_equal_the_reference_path(shipped: engine.Guideline,
                                                                patients: list[dict[str, Any]]) -> None:
    from engine.evaluate import borderline_probes

    compiled, plan = shipped.compiled, shipped._plan
    probed = 0
    near = [{**p, "measured_clearance": {"value": v, "unit": "mL/min"}} for p in patients[:60]
            for v in (29.5, 30, 39.6, 50.4, 60.0, 60.8)]
    near += [{**p, "measured_clearance": None} for p in patients[:60]]  # Cockcroft-Gault, sometimes near a bound
    for facts in near:
        result = shipped.evaluate(facts, on=DAY)
        env, rows, outcomes = result._explainer.env, result.tables, result._outcomes  # type: ignore[union-attr]
        by_plan = borderline_probes(compiled, env, rows, outcomes, plan)
        assert by_plan == borderline_probes(compiled, env, rows, outcomes, None), facts
        probed += bool(by_plan)
    assert probed > 100
