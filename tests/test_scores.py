"""Scores with unknown items (issue 17, item 1): count_true, points and sum give a range.

On v1.0.0 one unknown item made a whole score unknown, although "2 points
already from known items" decides "score >= 2"; the author needed three
derived values (min, exact, max) per score. Each test below states the v1.0.0
behaviour it replaces.
"""

from __future__ import annotations

import datetime as dt
import itertools
import textwrap
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine
from engine.accel.codegen import build_plans
from engine.evaluate import decide, match_table
from engine.facts import validate_facts
from engine.language.expressions import NameInfo, compile_expression
from engine.language.reference import reference_eval
from engine.language.scores import Score

from .conftest import MINIMAL_HEAD

DAY = dt.date(2026, 12, 1)
ITEMS = {"chf": 1, "htn": 1, "old": 2, "dm": 1, "stroke": 2, "vasc": 1}

SCORE = MINIMAL_HEAD + textwrap.dedent("""\
    facts:
    {facts}
    derived:
      score:
        type: score
        label: {{fr: Score, en: Score}}
        expr: "sum({points})"
      count:
        type: score
        label: {{fr: Items, en: Items}}
        expr: "count_true({names})"
    tables:
      band:
        inputs: [{{expr: score}}]
        outputs: {{band: null}}
        rows:
          - {{id: low, when: ["[0, 1]"], then: {{band: low}}}}
          - {{id: moderate, when: ["[2, 3]"], then: {{band: moderate}}}}
          - {{id: high, when: [">= 4"], then: {{band: high}}}}
        otherwise: {{band: null}}
    rules:
      - id: treat
        when: score >= 2
        then: [{{id: treat, kind: action, text: {{fr: "Traiter ({{{{ score }}}})", en: "Treat ({{{{ score }}}})"}}}}]
      - id: none
        when: score == 0 and not (count > 3)
        then: [{{id: none, kind: information, text: {{fr: Rien, en: Nothing}}}}]
      - id: two-items
        when: 2 <= count < 4 or score - 1 > 5
        then: [{{id: two-items, kind: information, text: {{fr: Deux, en: Two}}}}]
    """).format(
    facts="\n".join(f"  {n}: {{type: boolean, label: {{fr: {n}, en: {n}}}}}" for n in ITEMS),
    points=", ".join(f"points({n}, {p})" for n, p in ITEMS.items()),
    names=", ".join(ITEMS))


@pytest.fixture(scope="module")
def scored() -> engine.Guideline:
    return engine.load_text(SCORE, "score.yaml")


def _completions(facts: dict[str, bool]) -> list[dict[str, bool]]:
    missing = [n for n in ITEMS if n not in facts]
    return [{**facts, **dict(zip(missing, values, strict=True))}
            for values in itertools.product((False, True), repeat=len(missing))]


def _truth(facts: dict[str, bool]) -> tuple[Any, Any, Any, Any]:
    """The hand-written model: each rule and the band over every completion of the unknown items."""
    outcomes = []
    for full in _completions(facts):
        score = sum(p for n, p in ITEMS.items() if full[n])
        count = sum(1 for n in ITEMS if full[n])
        band = "low" if score <= 1 else "moderate" if score <= 3 else "high"
        outcomes.append((score >= 2, score == 0 and not count > 3, 2 <= count < 4 or score - 1 > 5, band))
    return tuple(column[0] if len(set(column)) == 1 else None for column in zip(*outcomes, strict=True))  # type: ignore[return-value]


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(sorted(ITEMS)), st.booleans()))
def test_a_score_decides_exactly_when_every_completion_of_its_unknown_items_agrees(scored, facts) -> None:
    # Each item is its own fact, so the range is exact: decided <=> all completions agree.
    treat, none, two, band = _truth(facts)
    compiled = scored.compiled
    values, _ = validate_facts(compiled, facts, DAY)
    env, rows, outcomes = decide(compiled, dict(values), DAY, None)  # the step-by-step reference semantics
    assert outcomes == (treat, none, two), facts
    assert env["band"] == band and rows["band"] == band
    plan, _, _ = build_plans(compiled, match_table)
    fast = plan({**values, "today": DAY})
    assert tuple(fast[2]) == outcomes and fast[1] == rows and fast[0]["score"] == env["score"]
    for rule, outcome in zip(compiled.rules, outcomes, strict=True):
        assert reference_eval(rule.when, env) is outcome, rule.when.text
    assert scored.decide(facts, on=DAY).rules == dict(zip(("treat", "none", "two-items"), outcomes, strict=True))


def test_the_why_says_how_far_the_score_is_known_and_needs_names_the_items(scored) -> None:
    # v1.0.0: "score unknown" and every item listed as needed although 3 points were already there
    result = scored.evaluate({"htn": True, "stroke": True}, on=DAY, lang="en")
    assert result.recommendation_ids() == ["treat"]
    why = result.to_dict()["recommendations"][0]["why"]["values"]
    assert [(w["name"], w["display"], w["value"]) for w in why] == [
        ("score", "at least 3, at most 8 (4 items unknown)", {"at_least": 3, "at_most": 8, "unknown_items": 4})]
    assert result.recommendations[0].text == "Treat (3–8)"
    # the generated explanation function (built after two uses) says the same
    again = [scored.evaluate({"htn": True, "stroke": True}, on=DAY, lang="en").to_dict() for _ in range(3)]
    assert all(d == result.to_dict() for d in again)
    fr = scored.evaluate({"htn": True}, on=DAY, lang="fr").to_dict()
    assert fr["values"]["score"]["display"] == "au moins 1, au plus 8 (5 éléments inconnus)"
    undetermined = {u.rule: u.needs for u in scored.evaluate({"htn": True}, on=DAY).undetermined}
    assert undetermined == {"treat": ("chf", "dm", "old", "stroke", "vasc"),
                            "two-items": ("chf", "dm", "old", "stroke", "vasc")}
    one = scored.evaluate({n: False for n in ITEMS if n != "vasc"}, on=DAY, lang="en")
    assert one.to_dict()["values"]["score"]["display"] == "at least 0, at most 1 (1 item unknown)"
    assert {u.rule: u.needs for u in one.undetermined} == {"none": ("vasc",)}
    assert one.tables == {"band": "low"}  # the whole range [0, 1] is in the first row


def test_a_score_with_every_item_known_is_a_plain_number(scored) -> None:
    result = scored.evaluate(dict.fromkeys(ITEMS, True), on=DAY)
    assert result.to_dict()["values"]["score"]["value"] == 8
    assert result.to_dict()["values"]["score"]["display"] == "8"


@pytest.mark.parametrize(("score", "threshold", "expected"), [
    (Score(2, 5, 3), 2, (False, True, None, None, True, False)),  # <, >=, ==, !=, >= via 2 <= s, < via s < 2
])
def test_comparisons_with_a_range_are_three_valued(score: Score, threshold: int, expected: tuple) -> None:
    assert (score < threshold, score >= threshold, score == 3, score != 3, threshold <= score,
            score < threshold) == (False, True, None, None, True, False)
    assert (score > 5, score <= 5, score > 4, score == 6, score != 6) == (False, True, None, False, True)
    assert (score + 1).low == 3 and (score - Score(0, 1, 1)).low == 1 and (score - Score(0, 1, 1)).unknown == 4
    assert (score * -1).low == -5 and (-score).high == -2 and (2 - score).high == 0
    assert None not in (score,) and Score(2, 5, 3) == score and hash(Score(2, 5, 3)) == hash(score)
    with pytest.raises(TypeError):
        bool(score)


@pytest.mark.parametrize(("text", "message"), [
    ("round(s) > 1", "a score with unknown items cannot be used here"),
    ("known(s)", "known() of a score with unknown items: compare the score instead"),
    ("points(b, n) > 1", "points() takes a written number of points, e.g. points(age >= 75, 2)"),
    ("s in [1, 2]", "a score with unknown items is compared with a number here"),
    ("s ** 2 > 1", "a score with unknown items cannot be used here"),
    ("n / s > 1", "a number cannot be divided by a score with unknown items"),
])
def test_what_a_score_cannot_do_is_said_at_load_time(text: str, message: str) -> None:
    scope = {"s": NameInfo("score"), "b": NameInfo("boolean"), "n": NameInfo("number")}
    expr, problems = compile_expression(text, scope, expect="boolean")
    assert expr is None and [(p.code, p.message) for p in problems][:1] == [("expr.score", message)]


def test_a_derived_number_that_is_a_score_must_say_so() -> None:
    text = SCORE.replace("  score:\n    type: score", "  score:\n    type: number")
    with pytest.raises(engine.GuidelineError) as caught:
        engine.load_text(text, "score.yaml")
    found = [(d.code, d.message, d.hint) for d in caught.value.diagnostics]
    assert found == [("expr.score", "this expression is a score: unknown items give a range",
                      "declare the derived value with type: score")]
