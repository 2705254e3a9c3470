"""The one-function plan agrees with the step-by-step reference on every value."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

import engine
from engine.evaluate import decide
from engine.facts import validate_facts

from .conftest import DAY, SHIPPED

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
