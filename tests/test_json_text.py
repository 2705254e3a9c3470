"""``Result.to_json``: the JSON text of ``to_dict``, written directly, character for character.

``to_json`` writes what does not depend on the patient once per guideline and
language and keeps objects of finite-domain values by their inputs; each of
those shortcuts is a way to be wrong, so the text is compared with
``json.dumps(result.to_dict(), ensure_ascii=False)`` on every patient case of
every shipped guideline, in every language, and on a cohort with quantities in
every accepted unit and missing facts; then on the results the shortcuts do
not take (FHIR sources, a result made by hand, values of unexpected types).
"""

from __future__ import annotations

import dis
import json
from datetime import date
from typing import Any

import pytest

import engine
from engine.authoring.cases import GuidelineCache, find_case_files, load_cases
from engine.explain import Explainer, json_text, json_value, prepared
from engine.frontends.batch import evaluate_row
from engine.language.scores import Score
from engine.results import Result
from tests.oracle.cohort import cohort, valid

from .conftest import ROOT
from .test_explain import DAY

_CACHE = GuidelineCache()
_CASES = [case for path in find_case_files([ROOT / "guidelines"]) for case in load_cases(path)]


def _dumped(result: Result) -> str:
    return json.dumps(result.to_dict(), ensure_ascii=False)


def test_every_case_of_every_guideline_in_every_language_is_written_as_json_writes_it() -> None:
    compared = 0
    guidelines = set()
    for case in _CASES:
        guideline = _CACHE.get(case.guideline_path)
        for lang in guideline.languages:
            try:
                result = guideline.evaluate(dict(case.facts), on=case.date, lang=lang)
            except engine.EngineError:
                continue  # a case that expects its facts refused
            # twice: the first result of a guideline and language writes the shared parts, the second reads them
            assert result.to_json() == _dumped(result) == result.to_json(), f"{case.where()} ({lang})"
            compared += 1
            guidelines.add(guideline.compiled.id)
    assert compared > 550 and len(guidelines) == 2


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_a_cohort_with_missing_facts_and_every_unit_is_written_as_json_writes_it(shipped: engine.Guideline,
                                                                                 lang: str) -> None:
    patients = [p for p in cohort(shipped, 600, 23) if valid(shipped, p, DAY)]
    borderline = undetermined = given_in_another_unit = 0
    for facts in patients:
        result = shipped.evaluate(facts, on=DAY, lang=lang)
        assert result.to_json() == _dumped(result), facts
        borderline += bool(result.borderline)
        undetermined += bool(result.undetermined)
        given_in_another_unit += "(= " in result.to_json()
    # the cohort reaches what the writer treats apart
    assert min(borderline, undetermined, given_in_another_unit) > 10, (borderline, undetermined, given_in_another_unit)


def test_results_with_sources_or_made_by_hand_are_written_by_json(shipped: engine.Guideline) -> None:
    facts = {"bone_metastases": True, "vitamin_d_25oh": {"value": 50, "unit": "nmol/L"}}
    sourced = shipped.evaluate(facts, on=DAY, sources={"vitamin_d_25oh": "Observation/vd-1 (2026-11-20)"})
    text = sourced.to_json()
    assert text == _dumped(sourced)
    assert json.loads(text)["values"]["vitamin_d_25oh"]["how"] == "Observation/vd-1 (2026-11-20)"
    bare = Result("g", "1", DAY, "fr", (), {})
    assert bare.to_json() == _dumped(bare)
    assert json.loads(bare.to_json())["recommendations"] == []


def _texts_and_reference(guideline: engine.Guideline, env: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """The generated text of every value and the value-by-value reference, for a trace made by hand."""
    rows = dict.fromkeys(guideline.compiled.tables)
    explainer = Explainer(guideline.compiled, env, None, rows, "fr", facts={}, on=DAY)
    texts = explainer.json_texts()
    assert texts is not None
    objects, whole = texts
    reference = explainer.json_values(generated=False)
    assert "".join(whole) == json.dumps(reference, ensure_ascii=False)
    return objects, reference


def test_values_kept_by_their_inputs_are_not_confused_with_equal_values_of_another_type(
        shipped: engine.Guideline) -> None:
    # not_started is kept by current_agent's value; on_zoledronic likewise. 1 == True and 1.0 == 1 in Python:
    # a kept object of `true` must not be served for 1, nor the other way round.
    made = _texts_and_reference(shipped, {"current_agent": "none", "not_started": True, "on_zoledronic": False})[0]
    assert '"value": true' in made["not_started"]
    for odd in (1, 1.0, "true"):
        objects, reference = _texts_and_reference(
            shipped, {"current_agent": "none", "not_started": odd, "on_zoledronic": False})
        assert json.loads(objects["not_started"]) == reference["not_started"]
        assert json.loads(objects["not_started"])["value"] == odd and type(
            json.loads(objects["not_started"])["value"]) is type(odd)


@pytest.mark.parametrize("value", [
    (), [], ("head_neck_radiotherapy",), ["a \"quoted\" word", "é\n→"], ("mixed", 3, None), [1, 2.5, True],
    (("nested",), "x"), [date(2026, 11, 27)], ("x", date(2026, 1, 2)), Score(2, 5, 3), date(2026, 2, 3),
    float("nan"), float("-inf"), -0.0, 10**20, "", "tab\there", True, None])
def test_every_kind_of_value_is_written_as_json_writes_its_json_value(value: Any) -> None:
    # lists of words take a path of their own (no json.dumps call); anything else in a list falls back to it
    assert json_text(value) == json.dumps(json_value(value), ensure_ascii=False)


def test_objects_kept_by_their_inputs_are_bounded(shipped: engine.Guideline) -> None:
    from engine.accel import explaincode

    function = prepared(shipped.compiled, "fr").generated_text()
    rows = dict.fromkeys(shipped.compiled.tables)
    for n in range(explaincode._REMEMBERED + 50):  # as many enum words as a fuzzer would send
        function({"current_agent": f"agent{n}", "not_started": True}, rows, {}, lambda name, shown: shown)
    kept = [v for k, v in function.__globals__.items() if k.startswith("_memo")]
    assert kept and max(map(len, kept)) == explaincode._REMEMBERED


def test_the_generated_text_function_calls_only_its_helpers(shipped: engine.Guideline) -> None:
    function = prepared(shipped.compiled, "en").generated_text()
    names = set(function.__code__.co_names)
    # "join": the compiler writes an f-string of many parts as "".join([...])
    assert names <= set(function.__globals__) | {"get", "rstrip", "replace", "join"}, names - set(function.__globals__)
    assert function.__globals__["__builtins__"] == {}
    for instruction in dis.get_instructions(function):
        assert instruction.opname not in ("IMPORT_NAME", "STORE_ATTR", "LOAD_BUILD_CLASS", "MAKE_FUNCTION")


def test_batch_lines_of_full_results_are_the_records_json_writes(shipped: engine.Guideline) -> None:
    from engine.frontends.batch import _line

    for number, facts in enumerate([p for p in cohort(shipped, 60, 5) if valid(shipped, p, DAY)]):
        fast = _line(evaluate_row(shipped, (number, {**facts, "patient_id": f"p{number}"}), DAY, "fr", True,
                                  as_text=True))
        plain = _line(evaluate_row(shipped, (number, {**facts, "patient_id": f"p{number}"}), DAY, "fr", True))
        assert fast == plain
        assert json.loads(fast[0])["patient_id"] == f"p{number}"


def test_results_hold_no_reference_cycles_so_dropping_one_frees_it(shipped: engine.Guideline) -> None:
    """A result is freed by reference counting alone, whatever was read from it (the README's advice on
    gc.freeze() relies on it): no cyclic garbage is left for the collector."""
    import gc

    patients = [p for p in cohort(shipped, 120, 29) if valid(shipped, p, DAY)]
    for facts in patients[:20]:  # first uses: prepared words, generated functions, kept parts
        warm = shipped.evaluate(facts, on=DAY, lang="fr")
        warm.to_json(), warm.values, engine.render(warm, "markdown", explain=True)
    gc.collect()
    gc.disable()
    try:
        for facts in patients:
            result = shipped.evaluate(facts, on=DAY, lang="fr")
            result.to_json(), result.to_dict(), result.values, result.borderline, result.undetermined
            [r.why for r in result.recommendations], engine.render(result, "markdown", explain=True)
            del result
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_a_result_pickles_after_its_values_were_read(shipped: engine.Guideline) -> None:
    import pickle

    facts = {"bone_metastases": True, "current_agent": "none", "vitamin_d_25oh": {"value": 50, "unit": "nmol/L"}}
    result = shipped.evaluate(facts, on=DAY, lang="fr")
    assert result.values["vitamin_d_25oh"].display == "50 nmol/L (= 20 ng/mL)"  # displays, prepared words, needs
    assert result.undetermined  # needs worked out: the tracer is cached on the explainer
    again = pickle.loads(pickle.dumps(result))  # the closures and id-keyed memories are left behind, made again
    assert again.to_json() == result.to_json()
    assert again.values["vitamin_d_25oh"] == result.values["vitamin_d_25oh"]
    assert [u.needs for u in again.undetermined] == [u.needs for u in result.undetermined]
