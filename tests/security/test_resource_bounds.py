"""Hostile texts, expressions, numbers and YAML scalars: a clear engine error within the limits (issue 16).

Each payload runs in a child process under a memory cap (resource.setrlimit,
1 GiB of address space) and a timeout, so a regression fails here instead of
freezing or killing CI. The child is the real CLI: exit 2 and one diagnostic
line naming the problem, no traceback.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest

HEAD = """\
id: h
version: 1.0.0
status: draft
title: {fr: h}
languages: [fr]
source: {document: t}
facts:
  age: {type: integer, range: {min: 0, max: 200}, label: {fr: a}}
"""
CAP = 1024**3


def _guideline(*, text: str = "ok", when: str = "known(age)", derived: str | None = None) -> str:
    out = HEAD
    if derived is not None:
        out += f"derived:\n  d: {{type: number, expr: {json.dumps(derived)}, label: {{fr: d}}}}\n"
    return out + (f"rules:\n  - id: r\n    when: {json.dumps(when)}\n"
                  f"    then: [{{id: r, kind: information, text: {{fr: {json.dumps(text)}}}}}]\n")


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))


def _run(tmp_path: Path, guideline: str, facts: dict | str | None = None) -> tuple[int, str]:
    (tmp_path / "g.yaml").write_text(guideline, encoding="utf-8")
    (tmp_path / "f.json").write_text(facts if isinstance(facts, str) else json.dumps(facts or {"age": 70}),
                                     encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "engine", "evaluate", str(tmp_path / "g.yaml"), "--facts",
                          str(tmp_path / "f.json"), "--date", "2026-11-27"], capture_output=True, text=True,
                         timeout=60, preexec_fn=_capped, env={"GUIDELINE_CACHE": "0", "PATH": "/usr/bin"}, check=False)
    assert "Traceback" not in run.stderr, run.stderr
    return run.returncode, run.stderr


TEXTS = [
    ("{{ '%999999999d' % 1 }}", "a %-format width or precision above 1000"),
    ("{{ '%.999999999f' % 1.5 }}", "a %-format width or precision above 1000"),
    ("{{ '%*d' % (999999999, 1) }}", "a %-format width or precision above 1000"),
    ("{{ 'a'.ljust(999999999) }}", "ljust with a width above 1000"),
    ("{{ 'a'.rjust(age * 9999999) }}", "rjust with a width above 1000"),
    ("{{ 'a'.center(age * 9999999) }}", "center with a width above 1000"),
    ("{{ '1'.zfill(999999999) }}", "zfill with a width above 1000"),
    ("{{ 'a\tb'.expandtabs(99999999) }}", "expandtabs with a tab size above 100"),
    ("{{ ('a' * 1000).replace('a', 'aaaaaaaaaa' * 10000) }}", "this replace would build more than 100000"),
    ("{{ 'ab'.replace('', 'x' * 99999) }}", "this replace would build more than 100000"),
    ("{{ '{:>999999999}'.format(1) }}", "str.format is not allowed in texts"),
    ("{{ '{x:>9}'.format_map({'x': 1}) }}", "str.format is not allowed in texts"),
    ("{{ 1.5 | num(999999999) }}", "a number is shown with 0 to 20 decimals"),
    ("{{ age | num(-3) }}", "a number is shown with 0 to 20 decimals"),
    ("{{ 1.5 | round(999999999) }}", "round takes a whole number of digits"),
    ("{{ (10 ** 50) | round(-999999999) }}", "round takes a whole number of digits"),
    ("{{ (age*61538) ** (age*61538) }}", "exponent 4307660 is larger than 100"),
    ("{{ 'x' * (age * 99999) }}", "would exceed 100000 characters"),
]


@pytest.mark.parametrize(("text", "message"), TEXTS, ids=[t for t, _ in TEXTS])
def test_texts_cannot_build_huge_values(tmp_path: Path, text: str, message: str) -> None:
    code, err = _run(tmp_path, _guideline(text=text))
    assert code == 2 and message in err, err


@pytest.mark.parametrize(("expr", "message"), [
    ("(age*61538) ** (age*61538)", "the power 4307660 ** 4307660 is too large"),
    ("(age * 57142) ** (age * 57142)", "the power 3999940 ** 3999940 is too large"),  # each operand within simpleeval's bound
    ("(1 / (age * 57142)) ** -(age * 57142)", "is too large"),
    ("round(age, 999999999) > 1", "round takes between -15 and 15 decimals"),
    ("round(age * 10 ** 15, -999999999) > 1", "round takes between -15 and 15 decimals"),
    ("(age * 1e307) * 10 > 1", "gave inf, not a finite number"),
])
def test_expressions_are_bounded_and_finite(tmp_path: Path, expr: str, message: str) -> None:
    code, err = _run(tmp_path, _guideline(derived=expr.rsplit(" > 1", 1)[0]))
    assert code == 2 and message in err, err


@pytest.mark.parametrize(("derived", "message"), [
    ("1e308 * 10 - 1e308 * 10", "'d' = '1e308 * 10 - 1e308 * 10' gave nan, not a finite number"),
    ("1e309 - 1e309", "expr.too-large: this number is too large (it is not a finite number)"),
    ("age + 0x1F", "expr.number-form: the number '0x1F' is not written in plain decimal"),
    ("age + 1_000", "expr.number-form: the number '1_000' is not written in plain decimal"),
])
def test_derived_values_are_finite_and_numbers_plain(tmp_path: Path, derived: str, message: str) -> None:
    code, err = _run(tmp_path, _guideline(derived=derived))
    assert code == 2 and message in err, err


@pytest.mark.parametrize(("facts", "message"), [
    ('{"age": ' + "9" * 401 + "}", "yaml.number-range: 99999999999999999999... has more than 15 digits"),
    ('{"age": ' + "9" * 5000 + "}", "has more than 15 digits"),
    ('{"age": 1e400}', "beyond the largest number"),
    ('{"age": 12345678901234567}', "has more than 15 digits"),
])
def test_huge_numbers_in_facts_are_refused(tmp_path: Path, facts: str, message: str) -> None:
    code, err = _run(tmp_path, _guideline(), facts)
    assert code == 2 and message in err, err


@pytest.mark.parametrize(("scalar", "message"), [
    ("1.0e+309", "yaml.number-range: 1.0e+309 is beyond the largest number"),
    ("1e400", "yaml.number-range: 1e400 is beyond the largest number"),
    ("1234567890123456", "yaml.number-range: 1234567890123456... has more than 15 digits"),
    ("0x1F", 'expected number, got text "0x1F"'),
    ("012", 'expected number, got text "012"'),
    ("3:30", 'expected number, got text "3:30"'),
    ("1_000", 'expected number, got text "1_000"'),
    (".inf", 'expected number, got text ".inf"'),
    (".NaN", 'expected number, got text ".NaN"'),
])
def test_guideline_numbers_are_finite_decimals(tmp_path: Path, scalar: str, message: str) -> None:
    code, err = _run(tmp_path, HEAD.replace("max: 200", f"max: {scalar}") + "rules:\n  - id: r\n    when: known(age)\n"
                     "    then: [{id: r, kind: information, text: {fr: ok}}]\n")
    assert code == 2 and message in err, err


def test_a_5000_digit_number_in_a_text_is_a_load_error(tmp_path: Path) -> None:
    code, err = _run(tmp_path, _guideline(text="{{ " + "9" * 5000 + " }}"))
    assert code == 2 and "template.too-large: the text cannot be read" in err, err


def test_a_comment_in_a_condition_is_refused(tmp_path: Path) -> None:
    code, err = _run(tmp_path, _guideline(when="known(age) # and age > 200"))
    assert code == 2 and "expr.comment: '#' starts a comment: the rest of the expression would be ignored" in err, err


def test_huge_numbers_given_through_the_api_are_facts_errors() -> None:
    import datetime as dt

    import engine
    from tests.conftest import ROOT

    g = engine.load(ROOT / "guidelines" / "bone-metastases" / "guideline.yaml")
    for facts in ({"age": 10**400}, {"weight": {"value": 10**400, "unit": "kg"}},
                  {"serum_creatinine": {"value": 10**5000, "unit": "mg/dL"}}, {"life_expectancy_months": -10**20}):
        for call in (g.decide, g.evaluate):
            with pytest.raises(engine.FactsError) as caught:
                call(facts, on=dt.date(2026, 11, 27))
            assert "a whole number above 1e+15 in size is not accepted" in caught.value.format()


def test_a_megabyte_line_of_unknown_facts_gives_a_bounded_report(tmp_path: Path) -> None:
    facts = "{" + ", ".join(f'"u{i}": 1' for i in range(100_000)) + "}"
    assert len(facts) > 1_000_000
    code, err = _run(tmp_path, _guideline(), facts)
    assert code == 2
    assert err.count("facts.unknown-name") == 21 and "…and 99980 more unknown facts" in err
    assert len(err) < 20_000  # each diagnostic quotes a window of the line, not the line
    assert max(len(line) for line in err.splitlines()) < 400


def test_hidden_and_reordering_characters_are_refused(tmp_path: Path) -> None:
    guideline = _guideline(when="known(age) \u202e and age > 1").replace("title: {fr: h}", 'title: {fr: "h\\0x"}')
    code, err = _run(tmp_path, guideline)
    assert code == 2
    assert "yaml.hidden-character: the value holds a NUL character (U+0000)" in err
    assert "yaml.hidden-character: the value holds a right-to-left override (U+202E)" in err
    assert "\u202e" not in err and "\0" not in err  # the quoted line shows a replacement character instead


def test_markdown_output_escapes_html(tmp_path: Path) -> None:
    import engine

    g = engine.load_text(_guideline(text="{% autoescape false %}<script>alert(1)</script> & <b>x</b>{% endautoescape %}"))
    import datetime as dt

    out = engine.render(g.evaluate({"age": 70}, on=dt.date(2026, 11, 27)), "markdown")
    assert "<script>" not in out and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;x&lt;/b&gt;" in out


def test_memory_and_recursion_errors_are_engine_errors(monkeypatch) -> None:
    import datetime as dt

    import engine
    from engine import guideline as driver

    g = engine.load_text(_guideline())

    def exhausted(*_: object, **__: object) -> None:
        raise MemoryError

    monkeypatch.setattr(driver, "evaluate", exhausted)
    monkeypatch.setattr(driver, "decide_facts", exhausted)
    for call in (g.evaluate, g.decide):
        with pytest.raises(engine.EvaluationError) as caught:
            call({"age": 70}, on=dt.date(2026, 11, 27))
        assert "resource.exhausted: the input is too large for the memory available" in caught.value.format()
    monkeypatch.setattr(driver, "run_pipeline", lambda *a, **k: (_ for _ in ()).throw(RecursionError()))
    with pytest.raises(engine.GuidelineError) as caught:
        engine.load_text(_guideline())
    assert "the input is nested too deeply to process" in caught.value.format()
