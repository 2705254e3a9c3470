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
                     st.integers(-10**6, 10**6), st.lists(st.integers(), max_size=3),
                     st.integers(10**14, 10**400), st.sampled_from([float("inf"), -float("inf"), 1e308, -0.0]))
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


_NUMBERS = list(__import__("re").finditer(r"(?<=[:\[, ])-?\d+(?:\.\d+)?(?=[,}\]\s])", TEXT))
_ODD = ["1.0e+309", "-1e400", "1234567890123456789", "0x1F", "1_000", ".inf", ".NaN", "012", "3:30", "9" * 5000,
        "1e308", "-0.0", "4.9e-324"]


@FUZZ
@given(st.integers(0, len(_NUMBERS) - 1), st.sampled_from(_ODD))
def test_odd_numbers_in_guideline_fields_load_or_report_positions(index, odd) -> None:
    """Any number of the shipped guideline replaced by a huge, non-finite or oddly written one."""
    match = _NUMBERS[index]
    text = TEXT[:match.start()] + odd + TEXT[match.end():]
    try:
        g = engine.load_text(text, "odd.yaml")
    except engine.GuidelineError as exc:
        assert exc.diagnostics and all(d.line >= 1 for d in exc.diagnostics)
        return
    try:  # what loads, evaluates to a result or an engine error
        g.evaluate({"bone_metastases": True, "age": 70}, on=DAY).to_dict()
    except engine.EngineError as exc:
        assert exc.diagnostics


# --- texts: formats, filters and methods with random arguments ---------------------------

_HEAD = """id: fz
version: 1.0.0
status: draft
title: {fr: f}
languages: [fr]
source: {document: t}
facts:
  n: {type: integer, range: {min: -1000000, max: 1000000}, label: {fr: n}}
rules:
  - id: r
    when: "known(n)"
    then: [{id: r, kind: information, text: {fr: TEXT}}]
"""
_BIG = st.one_of(st.integers(-10**12, 10**12), st.sampled_from([0, 1, -1, 10**9, 999999999, 2**31, -(2**31)]))
_ARG = st.one_of(_BIG, st.sampled_from(["n", "n * n", "n * 999999"]))
_PIECES = st.one_of(
    st.builds(lambda w, p, c: f"{{{{ '%{w}.{p}{c}' % n }}}}", st.integers(0, 10**9), st.integers(0, 10**9),
              st.sampled_from("dfsxe")),
    st.builds(lambda m, a: f"{{{{ 'ab'.{m}({a}) }}}}", st.sampled_from(["ljust", "rjust", "center", "zfill",
                                                                           "expandtabs"]), _ARG),
    st.builds(lambda a, b: f"{{{{ ('ab' * {a % 1000}).replace('a', 'x' * {b % 100000}) }}}}", _BIG, _BIG),
    st.builds(lambda d: f"{{{{ 1.5 | num({d}) }}}}", _BIG),
    st.builds(lambda d: f"{{{{ n | round({d}) }}}}", _BIG),
    st.builds(lambda a, b: f"{{{{ ({a}) ** ({b}) }}}}", _ARG, _ARG),
    st.builds(lambda a: f"{{{{ 'x' * ({a}) }}}}", _ARG),
    st.builds(lambda a: f"{{{{ '{{:>{a}}}'.format(n) }}}}", _BIG),
    st.builds(lambda d: f"{{{{ {d} }}}}", st.integers(10**300, 10**320)),
)


@FUZZ
@given(st.lists(_PIECES, min_size=1, max_size=3), st.integers(-1000000, 1000000))
def test_random_texts_render_within_bounds_or_fail_as_engine_errors(pieces, n) -> None:
    import json
    import signal

    text = " ".join(pieces)

    def too_long(*_):
        raise TimeoutError(f"the text took more than 10 s: {text}")

    signal.signal(signal.SIGALRM, too_long)
    signal.alarm(10)  # a regression fails here instead of freezing the suite
    try:
        try:
            g = engine.load_text(_HEAD.replace("TEXT", json.dumps(text)))
        except engine.GuidelineError:
            return
        try:
            result = g.evaluate({"n": n}, on=DAY)
        except engine.EvaluationError as exc:
            assert exc.diagnostics
            return
        assert all(len(r.text) <= 100_000 for r in result.recommendations)
    finally:
        signal.alarm(0)
