"""Property-based fuzzing. Seeded (derandomized) under `make test`; set
GUIDELINE_FUZZ_EXAMPLES=5000 for a longer run."""

from __future__ import annotations

import os
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine

from ..conftest import DAY, SHIPPED

EXAMPLES = int(os.environ.get("GUIDELINE_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="GUIDELINE_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
GUIDELINE = engine.load(SHIPPED)
TEXT = SHIPPED.read_text(encoding="utf-8")


def value_for(spec) -> st.SearchStrategy:
    """Values inside and outside a fact's domain, of the right and the wrong types."""
    junk = st.one_of(st.none(), st.text(max_size=5), st.booleans(), st.floats(allow_nan=True),
                     st.integers(-10**6, 10**6), st.lists(st.integers(), max_size=3))
    if spec.type == "quantity":
        units = st.sampled_from([u.name for u in spec.units.units] + ["bogus"])
        numbers = st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.integers(-10, 3000))
        good = st.builds(lambda v, u: {"value": v, "unit": u}, numbers, units)
        return st.one_of(good, good.map(lambda q: f"{q['value']} {q['unit']}"), junk)
    if spec.type in ("enum",):
        return st.one_of(st.sampled_from(list(spec.values)), junk)
    if spec.type == "list":
        return st.one_of(st.lists(st.sampled_from(list(spec.values)), unique=True), junk)
    if spec.type == "date":
        return st.one_of(st.dates().map(str), junk)
    return junk


FACTS = st.fixed_dictionaries({}, optional={n: value_for(s) for n, s in GUIDELINE.compiled.facts.items()})


@FUZZ
@given(FACTS, st.sampled_from(["fr", "en"]))
def test_random_facts_give_a_result_or_a_facts_error(facts, lang) -> None:
    try:
        result = GUIDELINE.evaluate(facts, on=DAY, lang=lang)
    except engine.FactsError as exc:
        assert exc.diagnostics and all(d.path for d in exc.diagnostics)
        return
    assert result.result_version == "1.1"
    engine.render(result, "json", explain=True)
    engine.render(result, "text", explain=True)


def mutate(text: str, seed: int, count: int) -> str:
    rng = random.Random(seed)
    lines = text.split("\n")
    for _ in range(count):
        i = rng.randrange(len(lines))
        choice = rng.randrange(6)
        if choice == 0:
            del lines[i]
        elif choice == 1:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif choice == 2 and lines[i]:
            j = rng.randrange(len(lines[i]))
            lines[i] = lines[i][:j] + rng.choice("[]{}:,'\"&*!|>-# \t0123456789xyz") + lines[i][j + 1:]
        elif choice == 3:
            lines[i] = lines[i].replace("1", "7").replace("and", "or")
        elif choice == 4:
            lines[i] = " " + lines[i]
        else:
            lines[i] = lines[i][: len(lines[i]) // 2]
    return "\n".join(lines)


@FUZZ
@given(st.integers(0, 2**32), st.integers(1, 4))
def test_mutated_guideline_loads_or_reports_positions(seed, count) -> None:
    try:
        engine.load_text(mutate(TEXT, seed, count), "mutated.yaml")
    except engine.GuidelineError as exc:
        assert exc.diagnostics
        assert all(d.file == "mutated.yaml" and d.line >= 1 and d.col >= 1 for d in exc.diagnostics)
