"""Stages 2-3: schema and compile problems, all reported at their line:col."""

from __future__ import annotations

import json
import textwrap

import pytest

import engine
from engine.guideline import check_text

from .conftest import MINIMAL_HEAD, ROOT

HEAD = MINIMAL_HEAD


def problems(body: str) -> list[tuple[int, int, str]]:
    compiled, found = check_text(HEAD + textwrap.dedent(body), "g.yaml")
    assert compiled is None
    return [(d.line, d.col, d.code) for d in found]


def test_five_problems_in_one_run() -> None:
    # A duplicate key, an alias, `no` as a value, an undeclared name in an
    # expression and an unknown template variable: all reported, in order.
    body = """\
    facts:
      age: {type: integer, label: {fr: Âge, en: Age}}
      age: {type: number, label: {fr: Âge, en: Age}}
      born:
        type: date
        allow_future: no
        label: &lab {fr: Naissance, en: Birth}
      other: {type: boolean, label: *lab}
    rules:
      - id: adult
        when: agee >= 18
        then:
          - id: adult
            kind: information
            text: {fr: "Adulte de {{ age }} ans", en: "Adult of {{ ages }} years"}
    """
    assert problems(body) == [
        (9, 3, "yaml.duplicate-key"),
        (12, 19, "schema.type"),
        (13, 12, "yaml.anchor"),
        (14, 33, "yaml.alias"),
        (17, 11, "expr.unknown-name"),
        (21, 64, "template.unknown-name"),  # the name itself (v1.0.0: the start of the text)
    ]
    with pytest.raises(engine.GuidelineError) as caught:
        engine.load_text(HEAD + textwrap.dedent(body), "g.yaml")
    assert len(caught.value.diagnostics) == 6
    assert "did you mean 'age'?" in caught.value.format()


def test_schema_errors_point_at_the_key_and_suggest() -> None:
    body = """\
    facts:
      age: {type: integer, lable: {fr: Âge}}
    rules:
      - id: r
        when: age > 3
        then: [{id: r, kind: advice, text: {fr: x, en: x}}]
    """
    found = problems(body)
    assert found == [(8, 3, "schema.required"), (8, 24, "schema.unknown-key"), (12, 26, "schema.enum")]
    _, diags = check_text(HEAD + textwrap.dedent(body), "g.yaml")
    unknown = next(d for d in diags if d.code == "schema.unknown-key")
    assert unknown.hint == "did you mean 'label'?"


def test_dependency_cycle_is_reported() -> None:
    body = """\
    facts:
      w: {type: number, label: {fr: w, en: w}}
    derived:
      a: {type: number, expr: b + w, label: {fr: a, en: a}}
      b: {type: number, expr: a * 2, label: {fr: b, en: b}}
    rules:
      - id: r
        when: a > 1
        then: [{id: r, kind: information, text: {fr: x, en: x}}]
    """
    found = problems(body)
    assert [c for _, _, c in found] == ["name.cycle"]
    _, diags = check_text(HEAD + textwrap.dedent(body), "g.yaml")
    assert "a -> b -> a" in diags[0].message


def test_table_problems() -> None:
    body = """\
    facts:
      v: {type: quantity, unit: ng/mL, units: [{unit: nmol/L, divide_by: 2.5}], label: {fr: v, en: v}}
      s: {type: enum, values: [low, high], label: {fr: s, en: s}}
    tables:
      t:
        inputs: [{expr: v, unit: mg/L}, {expr: s}]
        outputs: {out: null}
        rows:
          - when: ["[10, 5)", low]
            then: {out: 1}
          - when: ["[1, 2", hgh]
            then: {out: 2, other: 3}
          - when: ["< 3"]
            then: {out: 3}
        otherwise: {}
    rules:
      - id: r
        when: out == 1
        then: [{id: r, kind: information, text: {fr: x, en: x}}]
    """
    found = problems(body)
    assert found == [
        (12, 30, "unit.unknown"),
        (15, 16, "table.empty-interval"),
        (17, 16, "table.interval"),
        (17, 25, "table.unknown-value"),
        (18, 24, "table.unknown-output"),
        (19, 15, "table.cells"),
        (21, 16, "table.missing-output"),
    ]


def test_table_bounds_in_another_unit_are_converted(tmp_path) -> None:
    text = HEAD + textwrap.dedent("""\
    facts:
      v: {type: quantity, unit: ng/mL, units: [{unit: nmol/L, divide_by: 2.5}], label: {fr: v, en: v}}
    tables:
      t:
        inputs: [{expr: v, unit: nmol/L}]
        outputs: {low: null}
        rows:
          - {when: ["< 50"], then: {low: true}}
          - {when: [">= 50"], then: {low: false}}
        otherwise: {low: null}
    rules:
      - id: r
        when: low
        then: [{id: r, kind: information, text: {fr: bas, en: low}}]
    """)
    g = engine.load_text(text, "g.yaml")
    assert [w.code for w in g.warnings] == ["table.non-canonical-unit"]
    assert g.evaluate({"v": "19.9 ng/mL"}).recommendation_ids() == ["r"]
    assert g.evaluate({"v": "20 ng/mL"}).recommendation_ids() == []


def test_missing_translation_is_a_warning_and_primary_language_an_error() -> None:
    body = """\
    facts:
      a: {type: boolean, label: {fr: a}}
    rules:
      - id: r
        when: a
        then: [{id: r, kind: information, text: {en: only English}}]
    """
    assert problems(body) == [(12, 39, "text.missing-language")]
    ok = HEAD + "facts:\n  a: {type: boolean, label: {fr: a}}\nrules:\n  - id: r\n    when: a\n" \
        "    then: [{id: r, kind: information, text: {fr: oui}}]\n"
    g = engine.load_text(ok, "g.yaml")
    assert [(w.code, w.severity) for w in g.warnings] == [("text.missing-translation", "warning")] * 2


def test_template_syntax_error_line_inside_block_scalar() -> None:
    body = """\
    facts:
      a: {type: boolean, label: {fr: a, en: a}}
    rules:
      - id: r
        when: a
        then:
          - id: r
            kind: information
            text:
              fr: |
                ligne un
                {% if a %}oui
              en: x
    """
    found = problems(body)
    assert found == [(18, 13, "template.syntax")]


def test_template_sandbox_names_are_refused_at_load() -> None:
    body = """\
    facts:
      a: {type: boolean, label: {fr: a, en: a}}
    rules:
      - id: r
        when: a
        then: [{id: r, kind: information, text: {fr: "{{ a.__class__ }}", en: "{{ cycler }}"}}]
    """
    codes = [c for _, _, c in problems(body)]
    assert codes == ["template.not-allowed", "template.unknown-name"]


def test_every_schema_property_has_a_description() -> None:
    missing = []

    def walk(node, path):
        if isinstance(node, dict):
            for key, sub in (node.get("properties") or {}).items():
                if "description" not in sub:
                    missing.append(f"{path}.{key}")
            for key, sub in node.items():
                if key not in ("if", "then", "else"):  # conditions, not documented properties
                    walk(sub, f"{path}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{path}[{i}]")

    for name in ("guideline.schema.json", "cases.schema.json"):
        schema = json.loads((ROOT / "schemas" / name).read_text())
        assert schema["$id"].endswith(name)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        walk(schema, name)
    assert missing == []


def test_shipped_guideline_compiles_without_warnings(shipped) -> None:
    assert shipped.warnings == ()
    assert shipped.version == "1.1.0"
    assert len(shipped.compiled.content_hash) == 64
