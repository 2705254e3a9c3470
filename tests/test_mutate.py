"""Mutation testing (engine.authoring.mutate, `guideline test --mutate`).

Each operator is checked on the small guideline in tests/mutation/: the change
it claims, and what that change does to a patient. Then the runner: a mutant
that does not load is counted apart, marks of equivalent mutants, the score,
--min-score's exit code, and the JSON and JUnit forms.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

import engine
from engine.authoring import mutate
from engine.authoring.cases import find_case_files, load_cases
from engine.loading import parse_yaml

HERE = Path(__file__).resolve().parent / "mutation"
GUIDELINE = HERE / "guideline.yaml"
DAY = dt.date(2026, 11, 27)


@pytest.fixture(scope="module")
def demo() -> engine.Guideline:
    return engine.load(GUIDELINE)


def _made(demo: engine.Guideline, operator: str) -> list[mutate.Mutant]:
    doc = parse_yaml(GUIDELINE.read_text(encoding="utf-8"), str(GUIDELINE))
    return mutate.mutants(demo.compiled, operators=[operator], doc=doc)


def _applied(demo: engine.Guideline, mutant: mutate.Mutant) -> engine.Guideline:
    return engine.Guideline(mutant.edit(demo.compiled))


def _rule(g: engine.Guideline, rule_id: str) -> Any:
    return next(r for r in g.compiled.rules if r.id == rule_id)


def _fires(g: engine.Guideline, facts: dict[str, Any]) -> list[str]:
    return g.evaluate(facts, on=DAY).recommendation_ids()


OLD = {"age": 65, "flag": True, "kind": "a", "count": 2, "egfr": {"value": 50, "unit": "mL/min"}}


def test_threshold_step_moves_a_compared_number_one_step_both_ways(demo: engine.Guideline) -> None:
    made = [m for m in _made(demo, "threshold-step") if "age" in m.described]
    assert [m.described for m in made] == ["`age >= 65`: 65 → 64", "`age >= 65`: 65 → 66"]
    assert (made[0].line, made[0].col) == (23, 18)  # the 65 in `expr: age >= 65`
    assert [_applied(demo, m).compiled.derived["old"].expr.text for m in made] == ["age >= 64", "age >= 66"]
    assert _fires(_applied(demo, made[1]), OLD) == []  # 65 is no longer old
    dose = [m for m in _made(demo, "threshold-step") if "dose_mg" in m.described]
    assert [m.described for m in dose] == ["`dose_mg < 2`: 2 → 1.9", "`dose_mg < 2`: 2 → 2.1"]


def test_equality_widen_and_compare_swap(demo: engine.Guideline) -> None:
    widened = _made(demo, "equality-widen")
    assert [m.described for m in widened] == ["`count == 0` → `<= 1`", "`count == 0` → `>= -1`"]
    assert _rule(_applied(demo, widened[0]), "none-yet").when.text == "count <= 1 or kind == 'b'"
    swapped = {m.described: m for m in _made(demo, "compare-swap")}
    assert set(swapped) == {"`age >= 65`: `>=` → `>`", "`dose_mg < 2`: `<` → `<=`"}
    mutant = _applied(demo, swapped["`age >= 65`: `>=` → `>`"])
    assert mutant.compiled.derived["old"].expr.text == "age > 65"
    assert _fires(mutant, OLD) == []


def test_boolean_operators_negation_and_enum_literals(demo: engine.Guideline) -> None:
    assert [_rule(_applied(demo, m), m.touches[0]).when.text for m in _made(demo, "and-or")] == \
        ["old or flag", "count == 0 and kind == 'b'"]
    dropped = [_rule(_applied(demo, m), m.touches[0]).when.text for m in _made(demo, "drop-operand")]
    assert dropped == ["flag and True", "old and True", "kind == 'b' or False", "count == 0 or False"]
    negated = {m.touches[0]: _rule(_applied(demo, m), m.touches[0]).when.text for m in _made(demo, "negate")}
    assert negated["old-flagged"] == "not (old and flag)"
    assert _fires(_applied(demo, _made(demo, "negate")[0]), OLD) == []
    [literal] = _made(demo, "enum-literal")
    assert literal.described == "`kind == 'b'`: 'b' → 'c'"
    assert _rule(_applied(demo, literal), "none-yet").when.text == "count == 0 or kind == 'c'"


def test_table_operators(demo: engine.Guideline) -> None:
    steps = [m.described for m in _made(demo, "bound-step")]
    assert "table 'band' row 'low': high bound 30 → 29.9" in steps and len(steps) == 8
    flips = {m.described: m for m in _made(demo, "bound-flip")}
    flip = flips["table 'band' row 'low': high bound open → closed ([0, 30) → [0, 30])"]
    rows = _applied(demo, flip).compiled.tables["band"].rows
    assert rows[0].cells[0].interval.high_closed is True
    removed = _made(demo, "row-remove")
    assert [m.described for m in removed] == ["table 'band': row 'low' removed", "table 'band': row 'high' removed"]
    low = {**OLD, "egfr": {"value": 20, "unit": "mL/min"}}
    assert _applied(demo, removed[0]).evaluate(low, on=DAY).tables["band"] == "otherwise"
    [swap] = _made(demo, "row-swap-outputs")
    assert _applied(demo, swap).evaluate(low, on=DAY).value_of("dose_mg") == 3.0


def test_rules_recommendations_doses_units_and_texts(demo: engine.Guideline) -> None:
    removed = _made(demo, "rule-remove")
    assert [m.described for m in removed] == ["rule 'old-flagged' removed", "rule 'none-yet' removed",
                                              "rule 'low-band' removed"]
    assert [r.id for r in _applied(demo, removed[0]).compiled.rules] == ["none-yet", "low-band"]
    recs = _made(demo, "recommendation-remove")
    assert [m.described for m in recs] == ["rule 'none-yet': recommendation 'none-yet-first' removed",
                                           "rule 'none-yet': recommendation 'none-yet-second' removed"]
    doses = {m.described: m for m in _made(demo, "dose-change")}
    assert set(doses) == {"recommendation 'old-flagged': dose 2.5 → 2.6",
                          "recommendation 'old-flagged': schedule phase 1 doses 3 → 4",
                          "recommendation 'old-flagged': schedule phase 1 amount 2.5 → 2.6"}
    made = _applied(demo, doses["recommendation 'old-flagged': dose 2.5 → 2.6"]).evaluate(OLD, on=DAY)
    assert made.recommendations[0].dose["amount"] == 2.6
    [factor] = _made(demo, "unit-factor")
    assert factor.described == "fact 'egfr': mL/s multiply by 60 → 61"
    given = {**OLD, "egfr": {"value": 0.5, "unit": "mL/s"}}
    assert _applied(demo, factor).evaluate(given, on=DAY).value_of("egfr") == pytest.approx(30.5)
    numbers = {m.described.split(" (…")[0]: m for m in _made(demo, "text-number")}
    assert set(numbers) == {"text of 'old-flagged' (fr): 20 → 21", "text of 'old-flagged' (en): 20 → 21"}
    text = _applied(demo, numbers["text of 'old-flagged' (fr): 20 → 21"]).evaluate(OLD, on=DAY).recommendations[0].text
    assert text == "Donner 21 mg (sorte a)."
    forced = {m.described: m for m in _made(demo, "template-branch")}
    off = _applied(demo, forced["text of 'old-flagged' (fr): `if kind == 'a'` forced false"])
    assert off.evaluate(OLD, on=DAY).recommendations[0].text == "Donner 20 mg."


def test_every_operator_is_documented_and_listed(cli) -> None:
    code, out, _ = cli("test", "--list-operators")
    assert code == 0
    for name, op in mutate.OPERATORS.items():
        assert op.summary and type(op).__doc__ and f"{name:24} {op.summary}" in out


def _report(demo: engine.Guideline, source: str | None = None, **kwargs: Any) -> mutate.MutationReport:
    cases = [c for f in find_case_files([HERE]) for c in load_cases(f)]
    return mutate.run_mutants(demo, cases, source=source or GUIDELINE.read_text(encoding="utf-8"), **kwargs)


def test_the_run_kills_survives_and_names_the_nearest_case(demo: engine.Guideline) -> None:
    report = _report(demo, jobs=1)
    assert report.cases == 2 and len(report.outcomes) == 48
    by = {(o.mutant.operator, o.mutant.described): o for o in report.outcomes}
    killed = by[("rule-remove", "rule 'old-flagged' removed")]
    assert killed.status == "killed" and killed.killed_by == "old-flagged-a"
    survivor = by[("dose-change", "recommendation 'old-flagged': dose 2.5 → 2.6")]
    assert survivor.status == "survived"
    assert survivor.nearest == "old-flagged-a (1 value(s) of its result change, none it checks)"
    assert by[("threshold-step", "`age >= 65`: 65 → 64")].nearest == "no case reaches the changed part"
    assert report.score == pytest.approx(100 * report.count("killed") / (report.count("killed") + report.count("survived")))
    parallel = _report(demo, jobs=2)
    assert [(o.status, o.killed_by) for o in parallel.outcomes] == [(o.status, o.killed_by) for o in report.outcomes]


def test_a_mutant_that_does_not_load_is_counted_apart(demo: engine.Guideline, monkeypatch) -> None:
    class Broken(mutate.Operator):
        """Makes a text that does not compile."""

        name = "broken"
        summary = "a text that does not compile"

        def mutants(self, g, spots):
            rule = g.rules[0]
            yield mutate.Mutant(self.name, g.file, 1, 1, "text with an unclosed tag",
                                mutate._text_edit(rule, rule.then[0], "fr", "{% if %}"), (rule.id,))

    monkeypatch.setitem(mutate.OPERATORS, "broken", Broken())
    report = _report(demo, jobs=1, operators=["broken", "rule-remove"])
    assert [o.status for o in report.outcomes] == ["not-loaded", "killed", "killed", "killed"]
    assert report.outcomes[0].reason and report.score == 100.0


def test_equivalent_marks_need_a_reason(demo: engine.Guideline) -> None:
    source = GUIDELINE.read_text(encoding="utf-8").replace(
        "    expr: age >= 65", "    expr: age >= 65  # mutate: equivalent threshold-step -- a test of the mark")
    source = source.replace("    when: dose_mg < 2", "    when: dose_mg < 2  # mutate: equivalent compare-swap")
    report = _report(demo, source, jobs=1, operators=["threshold-step", "compare-swap"])
    statuses = {o.mutant.described: (o.status, o.reason) for o in report.outcomes}
    assert statuses["`age >= 65`: 65 → 64"] == ("equivalent", "a test of the mark")
    assert statuses["`dose_mg < 2`: `<` → `<=`"][0] == "survived"  # no reason: not taken
    [problem] = report.unmarked_reasons
    assert (problem.code, problem.line) == ("mutate-mark-reason", 54)


def test_min_score_sets_the_exit_code_and_formats(cli, tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    shutil.copytree(HERE, folder)
    code, out, err = cli("test", str(folder), "--mutate", "--jobs", "1", "--min-score", "30")
    assert code == 0, err
    assert "score 37.5% (killed / (killed + survived))" in out
    assert f"{folder / 'guideline.yaml'}:23:18: [threshold-step] `age >= 65`: 65 → 64" in out
    code, out, _ = cli("test", str(folder), "--mutate", "--jobs", "1", "--min-score", "90")
    assert code == 1 and "mutation score below the minimum of 90%" in out
    code, out, _ = cli("test", str(folder), "--mutate", "--jobs", "1", "--format", "json", "--operators", "negate")
    data = json.loads(out)[str(folder / "guideline.yaml")]
    assert (data["mutants"], data["killed"], data["score"]) == (3, 3, 100.0)
    code, out, _ = cli("test", str(folder), "--mutate", "--jobs", "1", "--format", "junit", "--operators",
                       "compare-swap")
    suite = ET.fromstring(out).find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "2"
    code, _, err = cli("test", str(folder), "--mutate", "--operators", "nonsense")
    assert code == 2 and "unknown mutation operator(s) nonsense" in err


def test_exact_texts_and_schedules_are_expectations(tmp_path: Path) -> None:
    from engine.authoring.cases import run_case

    (tmp_path / "guideline.yaml").write_text(GUIDELINE.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "c.cases.yaml").write_text("""\
guideline: guideline.yaml
cases:
  - id: pinned
    story: Pinned text and schedule, one of each wrong.
    date: "2026-11-27"
    facts: {age: 70, flag: true, kind: a, count: 2, egfr: {value: 50, unit: mL/min}}
    expect:
      texts: {old-flagged: "Donner 20 mg."}
      schedules:
        old-flagged: [{phase: loading, doses: 4}]
  - id: pinned-right
    story: The same, right.
    date: "2026-11-27"
    facts: {age: 70, flag: true, kind: a, count: 2, egfr: {value: 50, unit: mL/min}}
    expect:
      texts: {old-flagged: "Donner 20 mg (sorte a)."}
      schedules:
        old-flagged: [{phase: loading, doses: 3, amount: 2.5}]
""", encoding="utf-8")
    wrong, right = load_cases(tmp_path / "c.cases.yaml")
    g = engine.load(tmp_path / "guideline.yaml")
    failures = run_case(wrong, g).failures
    assert failures == (
        f"{tmp_path / 'c.cases.yaml'}:8:28: text of 'old-flagged': expected 'Donner 20 mg.', "
        "got 'Donner 20 mg (sorte a).'",
        f"{tmp_path / 'c.cases.yaml'}:10:23: schedule of 'old-flagged', phase 1: doses expected 4, got 3",
    )
    assert run_case(right, g).passed


@pytest.mark.parametrize("folder", ["bone-metastases", "pneumonia-severity"])
def test_the_shipped_text_pins_are_up_to_date(folder: str) -> None:
    import subprocess
    import sys

    root = HERE.parent.parent
    run = subprocess.run([sys.executable, str(root / "tools" / "pin_texts.py"), str(root / "guidelines" / folder),
                          "--check"], capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
