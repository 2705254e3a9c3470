"""Stage 4: evaluation of the shipped guideline, end to end."""

from __future__ import annotations

import ast
import copy
import json
import pickle
from concurrent.futures import ThreadPoolExecutor

import jinja2
import pytest

import engine
from engine.language.expressions import CompiledExpression

from .conftest import DAY, FAILING_GUIDELINE, baseline_facts


def test_missing_vitamin_d_is_undetermined_but_other_decisions_are_made(shipped) -> None:
    facts = {**baseline_facts(), "vitamin_d_25oh": None}
    result = shipped.evaluate(facts, on=DAY)
    undetermined = {u.rule: u.needs for u in result.undetermined}
    assert undetermined["vitamin-d-loading-8"] == ("vitamin_d_25oh",)
    assert undetermined["vitamin-d-status"] == ("vitamin_d_25oh",)
    made = result.recommendation_ids()
    assert "measure-vitamin-d" in made
    assert {"start-antiresorptive", "multiple-zoledronic-monthly", "zoledronic-administration"} <= set(made)
    assert result.missing_facts[:1] == ("high_risk_lesions",) or "vitamin_d_25oh" in result.missing_facts


def test_clearance_float_noise_falls_in_the_50_60_row(shipped) -> None:
    facts = {**baseline_facts(), "measured_clearance": None, "age": 41, "weight": "40 kg", "sex": "male",
             "serum_creatinine": "1.1 mg/dL"}
    result = shipped.evaluate(facts, on=DAY, lang="en")
    clearance = result.values["creatinine_clearance"]
    assert clearance.value == 50.0
    assert clearance.display == "50.00 mL/min"
    assert "Cockcroft-Gault" in clearance.how and "Age (years) 41" in clearance.how
    assert result.tables["zoledronic_dose"] == "zol-50-60"
    rec = next(r for r in result.recommendations if r.id == "zoledronic-administration")
    assert rec.text.startswith("Zoledronic acid 3.5 mg for a clearance of 50.00 mL/min (Cockcroft-Gault")
    names = [v.name for v in rec.why.values]
    assert "zoledronic_candidate" in names


def test_result_json_shape_is_stable(shipped) -> None:
    data = shipped.evaluate(baseline_facts(), on=DAY).to_dict()
    assert data["result_version"] == engine.RESULT_VERSION == "1.1"
    assert list(data) == ["result_version", "guideline", "evaluated_on", "lang", "recommendations",
                          "undetermined", "missing_facts", "values", "rules", "tables", "borderline"]
    rec = data["recommendations"][0]
    assert list(rec) == ["id", "rule", "kind", "text", "strength", "dose", "schedule", "source",
                         "evidence", "notes", "why"]
    json.dumps(data)


def test_dose_from_table_is_structured(shipped) -> None:
    facts = {**baseline_facts(), "measured_clearance": "45 mL/min"}
    rec = next(r for r in shipped.evaluate(facts, on=DAY).recommendations if r.id == "multiple-zoledronic-monthly")
    assert dict(rec.dose) == {"amount": 3.3, "unit": "mg", "route": "intravenous", "interval": "1 month",
                              "infusion_minutes": 20, "drug": {"name": "acide zolédronique", "atc": "M05BA08"}}


def test_evaluation_never_reparses(shipped, monkeypatch) -> None:
    calls = {"ast": 0, "jinja": 0}
    real_parse = ast.parse
    real_jinja = jinja2.Environment._parse

    def counting_parse(*args, **kwargs):
        calls["ast"] += 1
        return real_parse(*args, **kwargs)

    def counting_jinja(self, *args, **kwargs):
        calls["jinja"] += 1
        return real_jinja(self, *args, **kwargs)

    monkeypatch.setattr(ast, "parse", counting_parse)
    monkeypatch.setattr(jinja2.Environment, "_parse", counting_jinja)
    facts = {**baseline_facts(), "comedications": ["corticosteroids"], "vitamin_d_25oh": "12 ng/mL"}
    for lang in ("fr", "en") * 100:
        shipped.evaluate(facts, on=DAY, lang=lang)
    assert calls == {"ast": 0, "jinja": 0}
    # The counters do count: loading parses.
    engine.load(shipped.compiled.file)
    assert calls["ast"] > 0 and calls["jinja"] > 0


def test_same_facts_same_bytes_and_facts_untouched(shipped) -> None:
    facts = {**baseline_facts(), "comedications": ["corticosteroids"], "vitamin_d_25oh": {"value": 40, "unit": "nmol/L"}}
    before = copy.deepcopy(facts)
    first = engine.render(shipped.evaluate(facts, on=DAY), "json")
    second = engine.render(shipped.evaluate(facts, on=DAY), "json")
    assert first == second
    assert facts == before


def test_threads_share_one_guideline(shipped) -> None:
    patients = []
    for i in range(64):
        patients.append({**baseline_facts(), "vitamin_d_25oh": f"{5 + i * 2} ng/mL",
                         "measured_clearance": f"{20 + i} mL/min", "bone_pattern": ("multiple", "oligometastatic")[i % 2]})
    sequential = [engine.render(shipped.evaluate(p, on=DAY), "json") for p in patients]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(lambda p: engine.render(shipped.evaluate(p, on=DAY), "json"), patients))
    assert parallel == sequential


def test_results_computed_once_do_not_wait_for_each_other() -> None:
    # functools.cached_property on Python 3.11 holds one lock for every instance of a class: a result's
    # undetermined rules being worked out in one thread would hold up every other result's. Here the
    # first instance's computation waits for the second's, in another thread: with a shared lock it
    # would wait forever (the timeout says so), with computed_once both finish.
    import threading

    from engine.model import computed_once

    first_started, second_started = threading.Event(), threading.Event()
    calls: list[str] = []

    class Lazy:
        def __init__(self, name: str) -> None:
            self.name = name

        @computed_once
        def value(self) -> str:
            calls.append(self.name)
            if self.name == "first":
                first_started.set()
                assert second_started.wait(timeout=5), "the second instance's value waited for the first's"
            else:
                second_started.set()
            return self.name.upper()

    first, second = Lazy("first"), Lazy("second")
    with ThreadPoolExecutor(max_workers=2) as pool:
        waiting = pool.submit(lambda: first.value)
        assert first_started.wait(timeout=10)  # the first is being computed before the second is asked for
        assert pool.submit(lambda: second.value).result(timeout=10) == "SECOND"
        assert waiting.result(timeout=10) == "FIRST"
    assert (first.value, second.value, calls) == ("FIRST", "SECOND", ["first", "second"])  # kept: computed once each
    assert isinstance(Lazy.__dict__["value"], computed_once)


def test_evaluate_many_is_lazy_and_guideline_pickles(shipped) -> None:
    stream = shipped.evaluate_many(iter([baseline_facts(), {"bone_metastases": False}]), on=DAY)
    assert next(stream).recommendation_ids()[0] == "vitamin-d-status"
    assert next(stream).recommendation_ids() == ["out-of-scope"]
    copy_ = pickle.loads(pickle.dumps(shipped))
    assert engine.render(copy_.evaluate(baseline_facts(), on=DAY), "json") == \
        engine.render(shipped.evaluate(baseline_facts(), on=DAY), "json")


def test_unknown_language_is_refused(shipped) -> None:
    with pytest.raises(ValueError, match="not one of fr, en"):
        shipped.evaluate(baseline_facts(), on=DAY, lang="de")


def test_division_by_zero_is_an_evaluation_error() -> None:
    g = engine.load_text(FAILING_GUIDELINE, "div.yaml")
    with pytest.raises(engine.EvaluationError) as caught:
        g.evaluate({"x": 0})
    d = caught.value.diagnostics[0]
    assert (d.file, d.line, d.col, d.code) == ("div.yaml", 10, 31, "eval.failed")
    assert "division by zero" in d.message


def test_compiled_expression_is_a_code_object(shipped) -> None:
    expr = shipped.compiled.rules[0].when
    assert isinstance(expr, CompiledExpression)
    assert expr.code.co_filename == "<guideline expression>"


def test_doses_in_results_are_read_only_and_shared_only_when_fixed(shipped) -> None:
    facts = {"bone_metastases": True, "life_expectancy_over_3_months": True, "vitamin_d_25oh": {"value": 12, "unit": "ng/mL"},
             "dietary_calcium": {"value": 400, "unit": "mg/day"}, "current_agent": "none"}
    first = {r.id: r for r in shipped.evaluate(facts, on=DAY).recommendations}
    second = {r.id: r for r in shipped.evaluate({**facts, "dietary_calcium": {"value": 700, "unit": "mg/day"}},
                                                on=DAY).recommendations}
    with pytest.raises(TypeError, match="read-only"):
        first["calcium-supplement"].dose["amount"] = 0
    # A dose computed from the patient is the patient's own...
    assert first["calcium-supplement"].dose["amount"] == 600 and second["calcium-supplement"].dose["amount"] == 300
    # ...a fixed one is one shared, read-only mapping.
    fixed = [r for r in first.values() if r.dose is not None and r.id in second and r.id != "calcium-supplement"]
    assert fixed and all(r.dose is second[r.id].dose for r in fixed)


def test_why_lists_values_not_the_functions_a_condition_calls(shipped) -> None:
    facts = {**baseline_facts(), "vitamin_d_25oh": None}
    rec = next(r for r in shipped.evaluate(facts, on=DAY).recommendations if r.id == "measure-vitamin-d")
    assert [v.name for v in rec.why.values] == ["bone_metastases", "vitamin_d_25oh"]  # not "known"


def test_a_result_does_not_read_the_callers_facts_later_and_is_read_only(shipped) -> None:
    facts = {**baseline_facts(), "vitamin_d_25oh": {"value": 50, "unit": "nmol/L"}}
    for _ in range(4):  # the value-by-value path, then the generated one
        result = shipped.evaluate(facts, on=DAY)
        shown = result.to_dict()["values"]["vitamin_d_25oh"]["display"]
        facts["vitamin_d_25oh"]["unit"] = "no such unit"  # the caller changes its data afterwards
        facts["vitamin_d_25oh"]["value"] = "garbage"
        assert result.values["vitamin_d_25oh"].display == shown == "50 nmol/L (= 20 ng/mL)"
        assert result.to_dict()["values"]["vitamin_d_25oh"]["display"] == shown
        facts["vitamin_d_25oh"] = {"value": 50, "unit": "nmol/L"}
    for mapping in (result.tables, result.rules, result.trace):
        with pytest.raises(TypeError):
            mapping["anything"] = 1  # type: ignore[index]


def test_results_filled_directly_equal_results_built_by_their_constructors(shipped) -> None:
    """make_recommendation, make_result and Result.undetermined fill frozen dataclasses without their
    __init__ (a measurable share of an evaluation): what they make equals what the constructors make."""
    from engine.results import Recommendation, Result, Undetermined

    facts = {**baseline_facts(), "vitamin_d_25oh": None, "serum_creatinine": {"value": 1.9, "unit": "mg/dL"}}
    made = shipped.evaluate(facts, on=DAY, lang="en")
    assert made.recommendations and made.undetermined
    recommendations = tuple(
        Recommendation(r.id, r.rule, r.kind, r.text, r.strength, r.dose, r.schedule, r.source, r.evidence, r.notes,
                       r._why) for r in made.recommendations)
    assert recommendations == made.recommendations
    assert [r.to_dict() for r in recommendations] == [r.to_dict() for r in made.recommendations]
    built = Result(made.guideline, made.version, made.evaluated_on, made.lang, recommendations, made.tables,
                   made.borderline, made.result_version, made._guideline, made._explainer, made._outcomes)
    assert built == made
    assert built.to_dict() == made.to_dict() and built.to_json() == made.to_json()
    assert tuple(Undetermined(u.rule, u.title, u.condition, u.needs, u.recommendations)
                 for u in made.undetermined) == made.undetermined
