"""Hostile guideline files: YAML tricks, expression escapes, template injection.

Every payload is refused with a precise code -- at load time wherever it is
visible statically -- and the canary proves that nothing ran.
"""

from __future__ import annotations

import pytest

import engine
from engine.limits import Limits

from .conftest import CANARY

HEAD = """\
id: hostile
version: 1.0.0
status: draft
title: {fr: h}
languages: [fr]
source: {document: t}
facts:
  x: {type: number, label: {fr: x}}
  s: {type: enum, values: [a, b], label: {fr: s}}
"""


def codes_of(text: str, limits: Limits | None = None) -> list[str]:
    limits = limits or Limits()
    with pytest.raises(engine.GuidelineError) as caught:
        engine.load_text(text, "hostile.yaml", limits=limits)
    diagnostics = caught.value.diagnostics
    assert all(d.line > 0 and d.col > 0 for d in diagnostics if d.code != "file.too-large")
    return [d.code for d in diagnostics]


def rule(when: str, text: str = "ok") -> str:
    """The hostile header with one rule whose condition and text are the payloads."""
    return (HEAD + "rules:\n  - id: r\n    when: " + _quote(when)
            + "\n    then: [{id: r, kind: information, text: {fr: " + _quote(text) + "}}]\n")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


ESCAPES = [
    ("x.__class__.__mro__", "expr.not-allowed"),
    ("().__class__.__bases__[0].__subclasses__()", "expr.not-allowed"),
    ("__import__('os').system('touch " + str(CANARY) + "')", "expr.not-allowed"),
    ("__import__('os')", "expr.unknown-function"),
    ("open('" + str(CANARY) + "', 'w')", "expr.unknown-function"),
    ("getattr(x, '__class__')", "expr.unknown-function"),
    ("eval('1')", "expr.unknown-function"),
    ("exec('import os')", "expr.unknown-function"),
    ("'{0.__class__}'.format(x)", "expr.not-allowed"),
    ("(lambda: 1)()", "expr.not-allowed"),
    ("[i for i in range(10**9)]", "expr.not-allowed"),
    ("{i: i for i in range(9)}", "expr.not-allowed"),
    ("x[0]", "expr.not-allowed"),
    ("x ** 9999", "expr.too-large"),
    ("'a' * 10 ** 9 == s", "expr.type"),
    ("-" * 100 + "x > 1", "expr.too-complex"),
    ("x" + " + x" * 300 + " > 1", "expr.too-complex"),
    ("__builtins__", "expr.unknown-name"),
    ("_t1 > 1", "expr.unknown-name"),
    ("min > 1", "expr.not-allowed"),
    ("f'{x}' == s", "expr.not-allowed"),
    ("x if True else __import__('os')", "expr.unknown-function"),
    ("s == 'a' or max(x, y=2) > 1", "expr.not-allowed"),
]


@pytest.mark.parametrize("payload, code", ESCAPES)
def test_expression_escapes_are_refused_at_load(payload: str, code: str) -> None:
    assert code in codes_of(rule(payload))


def test_exponent_tower_is_bounded_at_run_time() -> None:
    g = engine.load_text(rule("9 ** 9 ** x > 1"), "hostile.yaml")
    with pytest.raises(engine.EvaluationError) as caught:
        g.evaluate({"x": 9})
    assert caught.value.diagnostics[0].code == "eval.failed"
    assert "the power 9 ** 387420489 is too large" in caught.value.diagnostics[0].message


TEMPLATES = [
    ("{{ ''.__class__.__mro__ }}", "template.not-allowed"),
    ("{{ x.__class__ }}", "template.not-allowed"),
    ("{{ x['__class__'] }}", "template.not-allowed"),
    ("{{ cycler.__init__.__globals__.os.popen('id').read() }}", "template.not-allowed"),
    ("{{ cycler }}", "template.unknown-name"),
    ("{{ joiner }}", "template.unknown-name"),
    ("{{ namespace }}", "template.unknown-name"),
    ("{{ self }}", "template.unknown-name"),
    ("{{ config }}", "template.unknown-name"),
    ("{{ lipsum }}", "template.unknown-name"),
    ("{{ range(10) }}", "template.unknown-name"),
    ("{% for i in range(100000000) %}x{% endfor %}", "template.unknown-name"),
    ("{{ x|attr('__class__') }}", "template.syntax"),
    ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "template.not-allowed"),
    ("{% include '/etc/passwd' %}", "template.not-allowed"),
    ("{% extends 'base' %}", "template.not-allowed"),
    ("{% import 'os' as os %}", "template.not-allowed"),
    ("{{ x", "template.syntax"),
]


@pytest.mark.parametrize("payload, code", TEMPLATES)
def test_template_injection_is_refused_at_load(payload: str, code: str) -> None:
    assert code in codes_of(rule("x > 1", payload))


@pytest.mark.parametrize("payload, message", [
    ("{{ '{0.__class__}'.format(x) }}", "template refused by the sandbox: str.format is not allowed in texts"),
    ("{{ 'a' * 1000000000 }}", "repeating a value 1000000000 times would exceed 100000 characters"),
    ("{{ 'ab' * 60000 }}", "would exceed"),
    ("{{ 9 ** 1000 }}", "exponent 1000 is larger than 100"),
    ("{{ 1 / 0 }}", "ZeroDivisionError"),
])
def test_template_abuse_is_bounded_at_render(payload: str, message: str) -> None:
    g = engine.load_text(rule("x > 1", payload), "hostile.yaml")
    with pytest.raises(engine.EvaluationError) as caught:
        g.evaluate({"x": 5})
    assert caught.value.diagnostics[0].code == "template.failed"
    assert message in caught.value.diagnostics[0].message


def test_template_output_size_is_limited() -> None:
    g = engine.load_text(rule("x > 1", "{% for c in 'abcdefghij' %}{{ 'y' * 50000 }}{% endfor %}"), "h.yaml",
                         limits=Limits(max_output_chars=100_000))
    with pytest.raises(engine.EvaluationError) as caught:
        g.evaluate({"x": 5})
    assert "template output is 500000 characters, more than 100000" in caught.value.diagnostics[0].message


def test_nested_loop_bombs_are_refused_at_load() -> None:
    """Ten nested loops over ten letters would run ten billion times: the sandbox bounds each
    operation, not how often a loop runs, so the bound on all loops is checked at load."""
    bomb = "".join(f"{{% for v{i} in 'abcdefghij' %}}" for i in range(10)) + "x" + "{% endfor %}" * 10
    with pytest.raises(engine.GuidelineError) as caught:
        engine.load_text(rule("x > 1", bomb), "hostile.yaml")
    [problem] = caught.value.diagnostics
    assert problem.code == "template.too-many-iterations" and problem.line == 13  # the text's line
    assert "could run 11 111 111 110 times, more than 10 000" in problem.message
    # Loops over texts or names whose length is not known count as long as a scalar may be.
    unbounded = rule("x > 1", "{% for c in s | upper %}{{ c }}{% endfor %}")
    assert "template.too-many-iterations" in codes_of(unbounded)
    # ...as set by the limits in force.
    assert engine.load_text(unbounded, "h.yaml", limits=Limits(max_scalar_chars=100,
                                                               max_template_iterations=200)).id == "hostile"


def test_loops_over_declared_lists_are_bounded_by_their_values() -> None:
    head = HEAD + "  meds: {type: list, values: [a, b, c], label: {fr: m}}\n"
    text = "{% for m in meds %}{% for n in meds %}{{ m }}{{ n }}{% endfor %}{% endfor %}"  # 3 * (1 + 3) = 12
    g = engine.load_text(head + rule("x > 1", text)[len(HEAD):], "ok.yaml")
    assert g.evaluate({"x": 5, "meds": ["a", "c"]}).recommendations[0].text == "aaaccacc"
    with pytest.raises(engine.GuidelineError) as caught:
        engine.load_text(head + rule("x > 1", text)[len(HEAD):], "ok.yaml", limits=Limits(max_template_iterations=11))
    assert [d.code for d in caught.value.diagnostics] == ["template.too-many-iterations"]
    # An enum is a text: a loop over it goes through its longest value's characters.
    assert engine.load_text(rule("x > 1", "{% for c in s %}{{ c }}{% endfor %}"), "ok.yaml").id == "hostile"


def test_html_output_is_escaped(cli, tmp_path) -> None:
    path = tmp_path / "guideline.yaml"
    path.write_text(rule("x > 1", "<script>alert(1)</script>"))
    code, out, _ = cli("show", str(path), "--format", "html")
    assert code == 0
    assert "<script>alert(1)</script>" not in out and "&lt;script&gt;alert(1)&lt;/script&gt;" in out


YAML = [
    ("a: &a [1]\nb: *a\n", ["yaml.anchor", "yaml.alias"]),
    ("a: !!python/object/apply:os.system ['touch " + str(CANARY) + "']\n", ["yaml.tag"]),
    ("a: !!python/name:os.system\n", ["yaml.tag"]),
    ("a: !!python/object:builtins.object {}\n", ["yaml.tag"]),
    ("a: 1\na: 2\n", ["yaml.duplicate-key"]),
    ("? [1, 2]\n: x\n", ["yaml.key-type"]),
    ("a:\n\t- 1\n", ["yaml.syntax"]),
    ("a: [" * 100 + "]" * 100 + "\n", ["yaml.too-deep"]),
    ("a: " + "x" * 30_000 + "\n", ["yaml.too-long"]),
]


@pytest.mark.parametrize("text, codes", YAML)
def test_yaml_payloads(text: str, codes: list[str]) -> None:
    found = codes_of(text)
    for code in codes:
        assert code in found


def test_billion_laughs() -> None:
    lines = ['lol: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    found = codes_of("\n".join(lines) + "\n")
    assert set(found) >= {"yaml.anchor", "yaml.alias"} and len(found) < 200


def test_yaml_11_pitfalls_stay_text() -> None:
    text = HEAD.replace("status: draft", "status: no") + "rules: []\n"
    assert "schema.enum" in codes_of(text)


def test_huge_file_limit(tmp_path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(HEAD + "# " + "x" * 5000 + "\n")
    with pytest.raises(engine.GuidelineError) as caught:
        engine.load(path, limits=Limits(max_file_bytes=1000))
    assert caught.value.diagnostics[0].code == "file.too-large"
    assert "more than the limit of 1000" in caught.value.diagnostics[0].message


def test_invalid_utf8_and_bom(tmp_path) -> None:
    path = tmp_path / "g.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + (HEAD + "rules: []\n").encode())
    with pytest.raises(engine.GuidelineError) as caught:
        engine.load(path)
    assert "schema.min-items" in [d.code for d in caught.value.diagnostics]
    path.write_bytes(HEAD.encode() + b"bad: \xc3\x28\n")
    with pytest.raises(engine.GuidelineError) as caught:
        engine.load(path)
    assert [(d.line, d.code) for d in caught.value.diagnostics] == [(10, "file.encoding")]
