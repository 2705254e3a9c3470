"""Stage 1: YAML loading -- 1.2 scalars, refusals, positions."""

from __future__ import annotations

import pytest

from engine.limits import Limits
from engine.loading import decode_source, parse_yaml, read_source


def codes(doc):
    return [(d.line, d.col, d.code) for d in doc.diagnostics]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("no", "no"), ("on", "on"), ("yes", "yes"), ("oui", "oui"), ("off", "off"),
        ("3:30", "3:30"), ("017", "017"), ("0o17", "0o17"), ("0x1F", "0x1F"),
        ("1e3", 1000.0), ("1.5", 1.5), (".5", 0.5), ("-3", -3), ("12", 12),
        ("true", True), ("false", False), ("True", "True"), ("null", None), ("~", None),
        ("2026-11-27", "2026-11-27"), (".inf", ".inf"), ("00.5", "00.5"),
    ],
)
def test_yaml_12_scalars(text: str, expected: object) -> None:
    doc = parse_yaml(f"value: {text}\n", "t.yaml")
    assert doc.diagnostics == []
    assert doc.data == {"value": expected}
    assert type(doc.data["value"]) is type(expected)


def test_positions_are_one_based_for_values_and_keys() -> None:
    doc = parse_yaml("a:\n  b: [1, 2]\n  c: x\n", "t.yaml")
    assert doc.position(("a", "b", 1)).line == 2
    assert doc.position(("a", "b", 1)).col == 10
    assert doc.position(("a", "c"), key=True) .col == 3
    assert doc.position(("a", "missing", 4)).line == 2  # nearest ancestor


def test_duplicate_key_reports_both_lines() -> None:
    doc = parse_yaml("a: 1\nb: 2\na: 3\n", "t.yaml")
    assert codes(doc) == [(3, 1, "yaml.duplicate-key")]
    assert "first defined on line 1" in doc.diagnostics[0].message
    assert doc.data == {"a": 1, "b": 2}


def test_anchors_and_aliases_are_refused_and_not_expanded() -> None:
    doc = parse_yaml("a: &x [1, 2]\nb: *x\n", "t.yaml")
    assert codes(doc) == [(1, 4, "yaml.anchor"), (2, 4, "yaml.alias")]
    assert doc.data["b"] is None
    assert ("b",) in doc.refused


def test_billion_laughs_is_refused_quickly() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [{','.join(['*' + prev] * 9)}]")
    doc = parse_yaml("\n".join(lines), "bomb.yaml")
    assert {d.code for d in doc.diagnostics} == {"yaml.anchor", "yaml.alias"}


@pytest.mark.parametrize("tag", ["!!python/object:os.system", "!!python/name:os.system", "!custom", "!!binary"])
def test_custom_tags_are_refused(tag: str) -> None:
    doc = parse_yaml(f"a: {tag} x\n", "t.yaml")
    assert [d.code for d in doc.diagnostics] == ["yaml.tag"]
    assert doc.data == {"a": None}


def test_non_text_keys_are_refused() -> None:
    doc = parse_yaml("1: a\ntrue: b\n[x]: c\n", "t.yaml")
    assert [d.code for d in doc.diagnostics] == ["yaml.key-type"] * 3


def test_tab_indentation_is_explained() -> None:
    doc = parse_yaml("a:\n\tb: 1\n", "t.yaml")
    assert codes(doc) == [(2, 1, "yaml.syntax")]
    assert "tab" in doc.diagnostics[0].message


def test_deep_nesting_is_bounded() -> None:
    doc = parse_yaml("[" * 200 + "]" * 200, "t.yaml", Limits(max_depth=50))
    assert [d.code for d in doc.diagnostics] == ["yaml.too-deep"]


def test_long_scalar_is_bounded() -> None:
    doc = parse_yaml("a: " + "x" * 50, "t.yaml", Limits(max_scalar_chars=10))
    assert [d.code for d in doc.diagnostics] == ["yaml.too-long"]


def test_bom_is_accepted_and_invalid_utf8_located() -> None:
    text, problems = decode_source("\ufeffa: 1\n".encode(), "t.yaml")
    assert problems == [] and text == "a: 1\n"
    text, problems = decode_source(b"a: 1\nb: \xff\n", "t.yaml")
    assert text is None
    assert [(p.line, p.col, p.code) for p in problems] == [(2, 4, "file.encoding")]


def test_missing_and_oversized_files(tmp_path) -> None:
    assert [d.code for d in read_source(tmp_path / "nope.yaml")[1]] == ["file.not-found"]
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * 100)
    text, problems = read_source(big, Limits(max_file_bytes=50))
    assert text is None and problems[0].code == "file.too-large"
    assert "limit of 50" in problems[0].message
