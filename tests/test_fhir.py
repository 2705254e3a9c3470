"""FHIR R4 data in (engine.fhir and guideline evaluate --fhir): bindings, selection, refusals, provenance."""

from __future__ import annotations

import copy
import json
import textwrap

import pytest

import engine
from engine.fhir import FhirError, facts_from_fhir, merge_facts, read_resources

from .conftest import DAY, MINIMAL_HEAD, ROOT, SHIPPED

EXAMPLES = ROOT / "guidelines" / "bone-metastases" / "examples"
BUNDLE = json.loads((EXAMPLES / "demo-patient.fhir.json").read_text(encoding="utf-8"))
CLINICAL = EXAMPLES / "demo-patient.clinical.yaml"
DEMO = EXAMPLES / "demo-patient.yaml"


def observation(ident: str, loinc: str, value: float, code: str, when: str, status: str = "final") -> dict:
    return {"resourceType": "Observation", "id": ident, "status": status,
            "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]}, "effectiveDateTime": when,
            "valueQuantity": {"value": value, "unit": code, "system": "http://unitsofmeasure.org", "code": code}}


def read(shipped: engine.Guideline, resources: list) -> engine.fhir.FhirFacts:
    return facts_from_fhir(shipped.compiled, read_resources(resources), DAY)


def test_the_example_bundle_gives_the_same_result_as_the_facts_file(shipped) -> None:
    from engine.loading import parse_yaml

    clinical = parse_yaml(CLINICAL.read_text(encoding="utf-8"), str(CLINICAL)).data
    found = facts_from_fhir(shipped.compiled, read_resources(BUNDLE), DAY)
    assert set(found.facts) == {"bone_metastases", "vitamin_d_25oh", "serum_creatinine", "age", "weight", "sex"}
    via_fhir = shipped.evaluate(merge_facts(found, clinical), on=DAY, sources=found.sources)
    via_file = shipped.evaluate(parse_yaml(DEMO.read_text(encoding="utf-8"), str(DEMO)).data, on=DAY)
    assert [(r.id, r.text, dict(r.dose or {})) for r in via_fhir.recommendations] == \
           [(r.id, r.text, dict(r.dose or {})) for r in via_file.recommendations]
    assert via_fhir.values["vitamin_d_25oh"].how == "Observation/vitd, 2026-11-20 (42 nmol/L)"
    assert via_fhir.values["age"].value == 72


def test_cli_evaluate_with_fhir_and_facts(cli) -> None:
    code, out, err = cli("evaluate", str(SHIPPED), "--fhir", str(EXAMPLES / "demo-patient.fhir.json"),
                         "--facts", str(CLINICAL), "--date", "2026-11-27", "--format", "json", "--lang", "en")
    assert (code, err) == (0, "")
    data = json.loads(out)
    _, expected, _ = cli("evaluate", str(SHIPPED), "--facts", str(DEMO), "--date", "2026-11-27", "--format", "json",
                         "--lang", "en")
    assert [r["id"] for r in data["recommendations"]] == [r["id"] for r in json.loads(expected)["recommendations"]]
    assert data["fhir"]["sources"]["sex"] == "Patient/demo.gender"
    assert data["fhir"]["unknown"]["measured_clearance"] == "no Observation with code 2164-2"
    assert data["values"]["serum_creatinine"]["how"] == "FHIR Observation/creatinine, 2026-11-24 (1.1 mg/dL)"


def test_most_recent_valid_observation_within_the_look_back(shipped) -> None:
    found = read(shipped, [
        observation("old", "1989-3", 10, "ng/mL", "2026-06-01"),
        observation("recent", "1989-3", 35, "ng/mL", "2026-11-01"),
        observation("wrong", "1989-3", 5, "ng/mL", "2026-11-20", status="entered-in-error"),
        observation("future", "1989-3", 99, "ng/mL", "2026-12-01"),
    ])
    assert found.facts["vitamin_d_25oh"] == {"value": 35.0, "unit": "ng/mL"}
    assert found.sources["vitamin_d_25oh"] == "Observation/recent, 2026-11-01 (35 ng/mL)"


def test_stale_wrong_status_and_undeclared_unit_are_unknown_with_the_reason(shipped) -> None:
    found = read(shipped, [
        observation("vd", "1989-3", 20, "ng/mL", "2026-01-02"),
        observation("cr", "14682-9", 0.1, "mmol/L", "2026-11-20"),
        observation("w", "29463-7", 60, "kg", "2026-11-20", status="preliminary"),
    ])
    assert found.unknown["vitamin_d_25oh"] == "Observation/vd (2026-01-02) is older than 90 days"
    assert found.unknown["serum_creatinine"] == ("Observation/cr, 2026-11-20: unit 'mmol/L' is not one of µmol/L, "
                                                 "mg/dL (UCUM code not declared)")
    assert found.unknown["weight"] == "Observation/w has status preliminary"
    assert not {"vitamin_d_25oh", "serum_creatinine", "weight"} & set(found.facts)


def test_ucum_spelling_of_micromoles_maps_to_the_declared_unit(shipped) -> None:
    found = read(shipped, [observation("cr", "14682-9", 97.24, "umol/L", "2026-11-20")])
    assert found.facts["serum_creatinine"] == {"value": 97.24, "unit": "µmol/L"}


def test_conditions_medications_and_procedures(shipped) -> None:
    condition = copy.deepcopy(BUNDLE["entry"][1]["resource"])
    refuted = {**condition, "id": "refuted",
               "verificationStatus": {"coding": [{"code": "refuted"}]}}
    assert read(shipped, [refuted]).facts["bone_metastases"] is False
    assert read(shipped, [condition, refuted]).unknown["bone_metastases"].startswith("Conditions disagree")
    assert read(shipped, []).unknown["bone_metastases"] == "no Condition with code C79.5"
    zol = {"resourceType": "MedicationStatement", "id": "zol", "status": "active", "subject": {"reference": "Patient/d"},
           "medicationCodeableConcept": {"coding": [{"system": "http://www.whocc.no/atc", "code": "M05BA08"}]},
           "effectivePeriod": {"start": "2026-05-04"}}
    found = read(shipped, [zol])
    assert (found.facts["current_agent"], found.facts["treatment_start_date"]) == ("zoledronic_acid", "2026-05-04")
    deno = {**zol, "id": "deno", "medicationCodeableConcept": {"coding": [{"system": "ATC", "code": "M05BX04"}]}}
    assert read(shipped, [zol, deno]).unknown["current_agent"] == (
        "several agents are active: zoledronic_acid (MedicationStatement/zol), denosumab (MedicationStatement/deno)")
    extraction = {"resourceType": "Procedure", "id": "ext", "status": "completed", "subject": {"reference": "Patient/d"},
                  "code": {"coding": [{"system": "http://snomed.info/sct", "code": "55162003"}]},
                  "performedDateTime": "2026-11-15T10:00:00+01:00"}
    assert read(shipped, [extraction]).facts["tooth_extraction_date"] == "2026-11-15"


def test_invalid_fhir_names_the_resource_and_the_element() -> None:
    bad = copy.deepcopy(BUNDLE)
    bad["entry"][2]["resource"]["valueQuantity"]["value"] = "forty-two"
    del bad["entry"][3]["resource"]["status"]
    with pytest.raises(FhirError) as caught:
        read_resources(bad, "bundle.json")
    messages = [d.message for d in caught.value.diagnostics]
    assert any(m.startswith("Observation/vitd: valueQuantity.value: Value error") for m in messages), messages
    assert any(m.startswith("Observation/creatinine: status:") for m in messages), messages
    assert {d.path for d in caught.value.diagnostics} >= {"entry[2].resource.valueQuantity.value",
                                                         "entry[3].resource.status"}
    with pytest.raises(FhirError, match="expected a FHIR Bundle"):
        read_resources({"resourceType": "Patient"})


def test_cli_refuses_invalid_fhir_without_a_traceback(cli, tmp_path) -> None:
    bad = copy.deepcopy(BUNDLE)
    bad["entry"][0]["resource"]["birthDate"] = "1954-02-31"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad), encoding="utf-8")
    code, out, err = cli("evaluate", str(SHIPPED), "--fhir", str(path), "--facts", str(CLINICAL))
    assert (code, out) == (2, "")
    assert "Patient/demo: birthDate" in err and "Traceback" not in err


def test_a_fact_given_twice_with_two_values_is_refused(cli, tmp_path) -> None:
    facts = tmp_path / "facts.yaml"
    facts.write_text(CLINICAL.read_text(encoding="utf-8") + "sex: male\n", encoding="utf-8")
    code, out, err = cli("evaluate", str(SHIPPED), "--fhir", str(EXAMPLES / "demo-patient.fhir.json"),
                         "--facts", str(facts))
    assert (code, out) == (2, "")
    assert "facts.given-twice: 'sex' is given as 'male' but FHIR says 'female' (Patient/demo.gender)" in err


@pytest.mark.parametrize(("binding", "message"), [
    ("{resource: Patient, element: gender}", "Patient.gender gives a enum, not a number fact"),
    ("{resource: Observation, element: gender}", "Observation has no element 'gender' here"),
    ("{resource: Observation, element: value}", "a Observation binding needs codes"),
    ("{resource: Observation, element: value, codes: [{system: LOINC, code: 1-1}], ucum: {g/L: g/L}}",
     "'g/L' is not a declared unit of this fact"),
])
def test_bindings_are_checked_against_the_fact(binding: str, message: str) -> None:
    text = MINIMAL_HEAD + textwrap.dedent(f"""\
        facts:
          x: {{type: number, label: {{fr: x}}, fhir: {binding}}}
        rules:
          - {{id: r, when: x > 1, then: [{{id: r, kind: information, text: {{fr: ok}}}}]}}
        """)
    with pytest.raises(engine.GuidelineError) as caught:
        engine.load_text(text, "g.yaml")
    assert [(d.code, d.message, d.line) for d in caught.value.diagnostics] == [("fhir.binding", message, 8)]


def test_result_as_a_request_group_validates_as_fhir(cli, tmp_path) -> None:
    from fhir.resources.R4B.requestgroup import RequestGroup

    log = tmp_path / "decisions.jsonl"
    code, out, err = cli("evaluate", str(SHIPPED), "--facts", str(DEMO), "--date", "2026-11-27", "--format", "fhir",
                         "--patient-id", "demo", "--decision-log", str(log))
    assert (code, err) == (0, "")
    group = json.loads(out)
    RequestGroup.model_validate(group)
    for request in group["contained"]:
        engine.fhir.read_resources([request])  # each proposal is a valid MedicationRequest too
    zoledronic = next(r for r in group["contained"]
                      if r["medicationCodeableConcept"].get("coding", [{}])[0].get("code") == "M05BA08")
    instruction = zoledronic["dosageInstruction"][0]
    assert instruction["doseAndRate"][0]["doseQuantity"] == {"value": 3.3, "unit": "mg",
                                                               "system": "http://unitsofmeasure.org", "code": "mg"}
    assert instruction["timing"]["repeat"] == {"frequency": 1, "period": 1.0, "periodUnit": "mo"}
    loading = next(r for r in group["contained"] if r["dosageInstruction"][0].get("timing", {}).get("repeat", {})
                   .get("count") == 8)
    assert loading["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["code"] == "[iU]"
    calcium = next(r for r in group["contained"] if "doseRange" in r["dosageInstruction"][0]["doseAndRate"][0])
    assert calcium["dosageInstruction"][0]["doseAndRate"][0]["doseRange"]["high"]["value"] == 900
    urgent = [a["id"] for a in group["action"] if a["priority"] == "urgent"]
    assert "start-deferred" in urgent
    record = json.loads(log.read_text(encoding="utf-8"))
    assert record["origin"] == "cli" and record["recommendations"] == [a["id"] for a in group["action"]]


def test_facts_and_fhir_cannot_both_read_standard_input(cli) -> None:
    code, out, err = cli("evaluate", str(SHIPPED), "--fhir", "-", "--facts", "-", stdin=b"{}")
    assert (code, out) == (2, "")
    assert "only one of --facts and --fhir can read standard input" in err
