"""The one-function plan agrees with the step-by-step reference on every value."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

import engine
from engine.evaluate import decide
from engine.facts import validate_facts

from .conftest import DAY, FAILING_GUIDELINE, SHIPPED

GUIDELINE = engine.load(SHIPPED)


def fact_value(spec) -> st.SearchStrategy:
    if spec.type == "boolean":
        return st.booleans()
    if spec.type == "enum":
        return st.sampled_from(list(spec.values))
    if spec.type == "list":
        return st.lists(st.sampled_from(list(spec.values)), unique=True)
    if spec.type == "date":
        return st.dates(dt.date(2020, 1, 1), DAY)
    low, high = spec.range
    low = 0 if low is None else low
    high = 1000 if high is None else high
    if spec.type == "integer":
        return st.integers(int(low), int(high))
    if spec.type == "quantity":
        return st.one_of(st.floats(low, high, allow_nan=False), st.sampled_from(
            [e for e in EDGES if low <= e <= high] or [low])).map(lambda v: {"value": v, "unit": spec.units.canonical})
    return st.floats(low, high, allow_nan=False)


# Bounds of the tables and exact boundaries are drawn often.
EDGES = [10, 20, 29.9, 30, 39.9, 40, 49.9, 49.95, 50, 60, 60.1, 70, 70.1, 150, 150.1, 999, 1000, 1500]
PATIENT = st.fixed_dictionaries({name: st.one_of(st.none(), fact_value(spec))
                                 for name, spec in GUIDELINE.compiled.facts.items()})


@settings(max_examples=400, deadline=None, derandomize=True)
@given(PATIENT)
def test_plan_function_matches_step_by_step(patient) -> None:
    values, _ = validate_facts(GUIDELINE.compiled, patient, DAY)
    fast = decide(GUIDELINE.compiled, values, DAY, GUIDELINE._plan)
    slow = decide(GUIDELINE.compiled, values, DAY, None)
    assert fast[1] == slow[1]
    assert fast[2] == slow[2]
    declared = [n for n in slow[0] if not n.startswith("_")]  # the step path also holds its temporaries
    assert sorted(fast[0]) == sorted(declared)
    for name in declared:
        assert fast[0][name] == slow[0][name], name


JUNK = st.one_of(st.none(), st.text(max_size=4), st.booleans(), st.integers(-5, 5000),
                 st.floats(allow_nan=True, allow_infinity=True), st.lists(st.text(max_size=3), max_size=2),
                 st.fixed_dictionaries({"value": st.floats(-10, 3000), "unit": st.sampled_from(
                     ["ng/mL", "nmol/L", "kg", "mg/dL", "µmol/L", "mL/min", "mg/day", "bogus"])}))
ANY_PATIENT = st.dictionaries(st.sampled_from(list(GUIDELINE.compiled.facts) + ["unknown_fact"]), JUNK, max_size=12)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.one_of(PATIENT, ANY_PATIENT))
def test_checked_plan_agrees_with_full_validation(patient) -> None:
    """decide() takes the inline-checked path when it can; it must agree with the
    full validation + plan on every value, and refuse exactly the same facts."""
    try:
        values, _ = validate_facts(GUIDELINE.compiled, patient, DAY)
    except engine.FactsError:
        try:
            GUIDELINE.decide(patient, on=DAY)
        except engine.FactsError:
            return
        raise AssertionError("decide accepted facts the validation refuses") from None
    slow = decide(GUIDELINE.compiled, values, DAY, None)
    fast = GUIDELINE.decide(patient, on=DAY)
    assert fast.tables == slow[1]
    assert tuple(fast.rules.values()) == slow[2]
    for name, value in fast.values.items():
        assert value == slow[0][name], name


def test_plan_failures_fall_back_to_located_errors() -> None:
    g = engine.load_text(FAILING_GUIDELINE, "div.yaml")
    for x in (0, 9):
        try:
            g.decide({"x": x}, on=DAY)
        except engine.EvaluationError as exc:
            assert exc.diagnostics[0].code == "eval.failed" and exc.diagnostics[0].line == 10 + (x == 9)
        else:
            raise AssertionError("no error")


@settings(max_examples=300, deadline=None, derandomize=True)
@given(PATIENT, st.sampled_from(["fr", "en"]))
def test_direct_text_rendering_matches_jinja(patient, lang) -> None:
    """Simple texts are rendered without Jinja's context machinery; the text must be identical."""
    values, _ = validate_facts(GUIDELINE.compiled, patient, DAY)
    env = decide(GUIDELINE.compiled, values, DAY, None)[0]
    for rule in GUIDELINE.compiled.rules:
        for rec in rule.then:
            template = rec.templates[lang]
            if template.fast is None:
                continue
            jinja_only = template.jinja_only()
            try:
                expected = jinja_only.render(env, 100_000)
            except Exception:  # noqa: BLE001 - e.g. comparing unknown with a number
                continue  # the direct path falls back to Jinja then, which raises the same error
            assert template.render(env, 100_000) == expected, (rec.id, lang)
