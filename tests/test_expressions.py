"""The expression language: checks at load, Kleene logic, and the compiled
code agreeing with the simpleeval reference on every value."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.language.expressions import NameInfo, compile_expression
from engine.language.reference import reference_eval

SCOPE = {
    "a": NameInfo("boolean"), "b": NameInfo("boolean"), "c": NameInfo("boolean"),
    "x": NameInfo("number"), "y": NameInfo("number"),
    "sex": NameInfo("enum", ("female", "male")),
    "meds": NameInfo("list", ("steroids", "bevacizumab")),
    "d": NameInfo("date"), "today": NameInfo("date"),
}
TRUTH = [True, False, None]


def compiled(text: str, expect: str | None = None):
    result, problems = compile_expression(text, SCOPE, expect=expect)
    assert problems == [], problems
    return result


@pytest.mark.parametrize("a, b", list(itertools.product(TRUTH, TRUTH)))
def test_kleene_and_or_truth_tables(a, b) -> None:
    def k_and(p, q):
        if p is False or q is False:
            return False
        return None if p is None or q is None else True

    def k_or(p, q):
        if p is True or q is True:
            return True
        return None if p is None or q is None else False

    env = {"a": a, "b": b}
    assert compiled("a and b")(dict(env)) is k_and(a, b)
    assert compiled("a or b")(dict(env)) is k_or(a, b)
    assert compiled("not a")(dict(env)) is (None if a is None else not a)


def test_unknown_propagates_through_comparison_and_arithmetic() -> None:
    env = {"x": None, "y": 3}
    assert compiled("x < 3")(dict(env)) is None
    assert compiled("x + y > 1")(dict(env)) is None
    assert compiled("known(x)")(dict(env)) is False
    assert compiled("known(x) and x > 3")(dict(env)) is False
    assert compiled("y > 1 or x > 3")(dict(env)) is True
    assert compiled("x if y > 1 else 2")(dict(env)) is None
    assert compiled("1 if x > 1 else 2")(dict(env)) is None


def test_short_circuit_protects_division() -> None:
    assert compiled("y > 0 and x / y > 1")({"x": 5, "y": 0}) is False


def test_chained_comparison_evaluates_middle_once() -> None:
    check = compiled("1 < x <= 30")
    assert [check({"x": v}) for v in (1, 2, 30, 31, None)] == [False, True, True, False, None]


def test_functions() -> None:
    env = {"d": dt.date(2024, 1, 31), "today": dt.date(2026, 11, 27), "x": 4, "y": None}
    assert compiled("add_months(d, 1)")(dict(env)) == dt.date(2024, 2, 29)
    assert compiled("add_weeks(d, 3)")(dict(env)) == dt.date(2024, 2, 21)
    assert compiled("months_between(d, today)")(dict(env)) == 33
    assert compiled("days_between(d, add_days(d, 10))")(dict(env)) == 10
    assert compiled("max(0, 1000 - x)")(dict(env)) == 996
    assert compiled("min(x, y)")(dict(env)) is None
    assert compiled("round(x / 3, 2)")(dict(env)) == 1.33


@pytest.mark.parametrize("text, code, col", [
    ("x > 3 and z", "expr.unknown-name", 11),
    ("sex == 'femal'", "expr.unknown-value", 8),
    ("'insulin' in meds", "expr.unknown-value", 1),
    ("x.__class__", "expr.not-allowed", 1),
    ("x[0]", "expr.not-allowed", 1),
    ("(lambda: 1)()", "expr.not-allowed", 2),
    ("[i for i in range(10)]", "expr.not-allowed", 1),
    ("__import__('os')", "expr.unknown-function", 1),
    ("getattr(x, 'y')", "expr.unknown-function", 1),
    ("open('f')", "expr.unknown-function", 1),
    ("max", "expr.not-allowed", 1),
    ("x = 1", "expr.not-allowed", 1),
    ("x > ", "expr.syntax", 4),
    ("x; y", "expr.syntax", 1),
    ("a and x", "expr.type", 7),
    ("x + sex", "expr.type", 5),
    ("d < 3", "expr.type", 5),
    ("known()", "expr.arguments", 1),
    ("x ** 1000", "expr.too-large", 6),
    ("f'{x}'", "expr.not-allowed", 1),
    ("None", "expr.not-allowed", 1),
    ("x if a else sex", "expr.type", 13),
])
def test_rejected_at_load_with_column(text: str, code: str, col: int) -> None:
    result, problems = compile_expression(text, SCOPE)
    assert result is None
    assert (problems[0].code, problems[0].col) == (code, col), problems


def test_condition_must_be_boolean() -> None:
    _, problems = compile_expression("x + 1", SCOPE, expect="boolean")
    assert [p.code for p in problems] == ["expr.type"]


def test_deep_nesting_is_refused() -> None:
    _, problems = compile_expression("(" * 60 + "x" + ")" * 60 + " + " + " + ".join(["x"] * 60), SCOPE)
    assert problems and problems[0].code == "expr.too-complex"


def test_names_of_generated_code_cannot_be_reached_by_authors() -> None:
    # Author names never start with "_", so the helpers and temporaries
    # (_f_min, _t1) of the generated code cannot be named.
    _, problems = compile_expression("_f_min(1, 2)", SCOPE)
    assert problems[0].code == "expr.unknown-function"
    _, problems = compile_expression("_t1", SCOPE)
    assert problems[0].code == "expr.unknown-name"


def test_string_literals_stay_data() -> None:
    check = compiled("sex == 'female' or sex == 'male'")
    assert check({"sex": "x') or __import__('os').system('echo pwned') or ('"}) is False


# --- differential test against the simpleeval reference -------------------------

BOOL_NAMES = ["a", "b", "c"]
NUM_NAMES = ["x", "y"]


def num_expr() -> st.SearchStrategy[str]:
    leaf = st.one_of(st.sampled_from(NUM_NAMES), st.integers(-50, 50).map(str),
                     st.floats(-100, 100, allow_nan=False).map(lambda f: repr(round(f, 2))))
    return st.recursive(leaf, lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(inner, inner).map(lambda t: f"max({t[0]}, {t[1]})"),
        st.tuples(inner).map(lambda t: f"abs({t[0]})"),
    ), max_leaves=6)


def bool_expr() -> st.SearchStrategy[str]:
    compare = st.tuples(num_expr(), st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), num_expr()).map(
        lambda t: f"{t[0]} {t[1]} {t[2]}")
    leaf = st.one_of(st.sampled_from(BOOL_NAMES), compare, st.sampled_from(["True", "False"]),
                     st.sampled_from(NUM_NAMES + BOOL_NAMES).map(lambda n: f"known({n})"),
                     st.sampled_from(["sex == 'female'", "'steroids' in meds", "sex in ['male']"]))
    return st.recursive(leaf, lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda e: f"(not {e})"),
        st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
    ), max_leaves=8)


envs = st.fixed_dictionaries({
    "a": st.sampled_from(TRUTH), "b": st.sampled_from(TRUTH), "c": st.sampled_from(TRUTH),
    "x": st.one_of(st.none(), st.integers(-20, 20), st.floats(-50, 50, allow_nan=False)),
    "y": st.one_of(st.none(), st.integers(-20, 20)),
    "sex": st.sampled_from(["female", "male", None]),
    "meds": st.sampled_from([None, (), ("steroids",), ("steroids", "bevacizumab")]),
})


@settings(max_examples=400, deadline=None, derandomize=True)
@given(bool_expr(), envs)
def test_compiled_agrees_with_simpleeval_reference(text: str, env: dict) -> None:
    expression = compiled(text)
    ours = expression(dict(env))
    reference = reference_eval(expression, env)
    assert ours is reference or ours == reference, (text, env, ours, reference)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(num_expr(), envs)
def test_compiled_arithmetic_agrees_with_reference(text: str, env: dict) -> None:
    expression = compiled(text)
    assert expression(dict(env)) == reference_eval(expression, env)


def test_constant_operands_compile_without_python_warnings() -> None:
    """`known(3)` or `5 is none` must not make Python print a SyntaxWarning at load."""
    import warnings

    from engine.texts.templates import compile_template

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for text in ("known(3)", "known(x) and known('a')", "not known(1)", "x == 1 if known(2) else x == 2"):
            expr, problems = compile_expression(text, {"x": NameInfo("number")})
            assert problems == [] and expr is not None, text
            assert expr({"x": 1}) in (True, False), text
        assert compile_expression("known(3)", {})[0]({}) is True
        template, problems = compile_template("{% if 5 is none %}a{% elif 'b' is none %}b{% else %}c{% endif %}{{ x }}",
                                              "fr", {"x"}, 1000)
        assert problems == [] and template.render({"x": 1}, 1000) == "c1"


@pytest.mark.parametrize(("text", "message", "hint"), [
    ("w ^ 2 > 1", "the operator ^ is not allowed", "a power is written **, e.g. weight ** 0.425"),
    ("x > 1 & x < 3", "the operator & is not allowed", "write 'and' for both conditions"),
    ("x > 1 | x < 3", "the operator | is not allowed", "write 'or' for either condition"),
    ("x is None", "the operator is is not allowed", "compare with ==, and test an unknown value with known(x)"),
    # v1.0.0 accepted // and % with Python's floor rule (-10 // 3 is -4; CQL's div gives -3)
    ("x // 3 > 1", "the operator // is not allowed", "write floor(a / b) to round the quotient down or trunc(a / b) "
     "to cut it towards zero (CQL's div): they differ for negative numbers"),
    ("x % 3 == 1", "the operator % is not allowed", "write a - b * trunc(a / b) for CQL's mod (sign of a) or "
     "a - b * floor(a / b) for the remainder with the sign of b"),
])
def test_operators_python_parses_but_the_language_refuses_say_what_to_write(text: str, message: str, hint: str) -> None:
    from engine.language.expressions import NameInfo, compile_expression

    expr, problems = compile_expression(text, {"x": NameInfo("number"), "w": NameInfo("number")})
    assert expr is None and [(p.code, p.message, p.hint) for p in problems][:1] == [("expr.not-allowed", message, hint)]


@pytest.mark.parametrize(("text", "values", "expected"), [
    ("floor(x)", {"x": -2.5}, -3), ("ceil(x)", {"x": 2.1}, 3), ("trunc(x)", {"x": -2.7}, -2),
    ("sqrt(x)", {"x": 6.25}, 2.5), ("round(exp(x), 6)", {"x": 1}, 2.718282), ("round(ln(x), 6)", {"x": 10}, 2.302585),
    ("sqrt(x)", {"x": None}, None),
    # CQL's div and mod, written out now that // and % are refused
    ("trunc(x / 3)", {"x": -10}, -3), ("x - 3 * trunc(x / 3)", {"x": -10}, -1),
])
def test_math_functions(text: str, values: dict, expected: object) -> None:
    from engine.language.expressions import NameInfo, compile_expression
    from engine.language.reference import reference_eval

    expr, problems = compile_expression(text, {"x": NameInfo("number")})
    assert problems == []
    assert expr(values) == expected and reference_eval(expr, values) == expected


@pytest.mark.parametrize(("text", "x", "message"), [
    ("sqrt(x) > 1", -1, "sqrt is defined for numbers from 0, not -1"),
    ("ln(x) > 1", 0, "ln is defined for numbers above 0, not 0"),
    ("exp(x) > 1", 800, "exp(800) is beyond the largest number"),
])
def test_math_functions_outside_their_domain_are_evaluation_errors(text: str, x: int, message: str) -> None:
    import datetime as dt

    import engine

    g = engine.load_text(f"""id: m
version: 1.0.0
status: draft
title: {{fr: m}}
languages: [fr]
source: {{document: t}}
facts:
  x: {{type: number, range: {{min: -1000, max: 1000}}, label: {{fr: x}}}}
rules:
  - {{id: r, when: "{text}", then: [{{id: r, kind: information, text: {{fr: ok}}}}]}}
""")
    with pytest.raises(engine.EvaluationError) as caught:
        g.evaluate({"x": x}, on=dt.date(2026, 11, 27))
    assert message in caught.value.format()


@pytest.mark.parametrize(("text", "values", "expected"), [
    ("years_between(born, today)", {"born": dt.date(1954, 2, 28), "today": dt.date(2026, 2, 27)}, 71),
    ("years_between(born, today)", {"born": dt.date(1954, 2, 28), "today": dt.date(2026, 2, 28)}, 72),
    ("years_between(born, today)", {"born": dt.date(2000, 2, 29), "today": dt.date(2001, 2, 28)}, 1),
    ("years_between(today, born)", {"born": dt.date(1954, 3, 1), "today": dt.date(2026, 2, 28)}, -71),
    # a month from 31 January is the end of February (the day is clamped to the month's end)
    ("months_between(born, today)", {"born": dt.date(2026, 1, 31), "today": dt.date(2026, 2, 28)}, 1),
    ("months_between(born, today)", {"born": dt.date(2026, 1, 30), "today": dt.date(2026, 2, 27)}, 0),
    ("add_months(born, 1)", {"born": dt.date(2026, 1, 31), "today": None}, dt.date(2026, 2, 28)),
    ("days_between(date('2026-01-01'), today)", {"born": None, "today": dt.date(2026, 3, 1)}, 59),
    ("today >= date('2026-07-01')", {"born": None, "today": dt.date(2026, 6, 30)}, False),
    ("years_between(born, today)", {"born": None, "today": dt.date(2026, 6, 30)}, None),
])
def test_dates_literals_and_durations(text: str, values: dict, expected: object) -> None:
    # v1.0.0 had no date literal and no years_between: ages were computed by hand from days
    from engine.language.expressions import NameInfo, compile_expression
    from engine.language.reference import reference_eval

    expr, problems = compile_expression(text, {"born": NameInfo("date"), "today": NameInfo("date")})
    assert problems == []
    assert expr(values) == expected and reference_eval(expr, values) == expected


@pytest.mark.parametrize(("text", "col", "message"), [
    ("today > date('2026-02-30')", 14, "'2026-02-30' is not a calendar date written YYYY-MM-DD"),
    ("today > date('1/2/2026')", 14, "'1/2/2026' is not a calendar date written YYYY-MM-DD"),
    ("today > date(label)", 14, "date() takes a date written in quotes, e.g. date('2026-01-31')"),
])
def test_a_date_literal_is_checked_at_load_time(text: str, col: int, message: str) -> None:
    from engine.language.expressions import NameInfo, compile_expression

    expr, problems = compile_expression(text, {"today": NameInfo("date"), "label": NameInfo("text")})
    assert expr is None and [(p.code, p.col, p.message) for p in problems] == [("expr.date", col, message)]


def test_every_function_declares_its_unknown_rule_in_the_registry() -> None:
    from engine.language.functions import REGISTRY

    assert {name for name, fn in REGISTRY.items() if fn.unknown == "decides"} == {"known"}
    for name, fn in REGISTRY.items():
        if fn.unknown == "propagate":
            arguments = [None] * (len(fn.args) - fn.optional)
            assert fn.impl(*arguments) is None, name


def test_the_readme_reference_lists_every_function_of_the_registry() -> None:
    from engine.language.functions import REGISTRY

    from .conftest import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    reference = readme[readme.index("#### The expression language"):readme.index("**Decision tables**")]
    assert [name for name in REGISTRY if f"`{name}(" not in reference] == []
