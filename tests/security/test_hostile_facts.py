"""Hostile facts: each gives one FactsError listing every problem; the CLI
exits 2 with the message on stderr, nothing on stdout and no traceback."""

from __future__ import annotations

import json
import math

import pytest

import engine

from ..conftest import DAY, SHIPPED, baseline_facts


@pytest.mark.parametrize("name, value, fragment", [
    ("age", "seventy", "expected a number, got 'seventy'"),
    ("age", math.nan, "not a finite number"),
    ("age", math.inf, "not a finite number"),
    ("age", -5, "-5 is outside the plausible range"),
    ("serum_creatinine", {"value": 0, "unit": "µmol/L"}, "0 µmol/L is outside the plausible range 15 to 2000"),
    ("weight", {"value": 2000, "unit": "kg"}, "2000 kg is outside the plausible range"),
    ("weight", {"value": -70, "unit": "kg"}, "is outside the plausible range"),
    ("weight", {"value": 70, "unit": "stone"}, "unknown unit 'stone'"),
    ("weight", {"value": 70, "unit": "kg", "extra": 1}, "a quantity is written {value: ..., unit: ...}"),
    ("vitamin_d_25oh", "1e400 ng/mL", "not a finite number"),
    ("tooth_extraction_date", "2999-01-01", "after the evaluation date"),
    ("tooth_extraction_date", 20261127, "expected a date"),
    ("comedications", [[["deep"]]], "not among"),
    ("sex", {"$ne": None}, "is not one of female, male"),
    ("emergency", "true", "expected true or false"),
])
def test_hostile_values(shipped, name, value, fragment) -> None:
    with pytest.raises(engine.FactsError) as caught:
        shipped.evaluate({**baseline_facts(), name: value}, on=DAY)
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.path == name and fragment in diagnostic.message


def test_deeply_nested_value_is_reported_briefly(shipped) -> None:
    value: list = []
    for _ in range(50_000):
        value = [value]
    with pytest.raises(engine.FactsError) as caught:
        shipped.evaluate({"age": value}, on=DAY)
    assert len(caught.value.diagnostics[0].message) < 200


def test_many_unknown_keys_are_listed_up_to_twenty_then_counted(shipped) -> None:
    facts = {f"junk_{i}": i for i in range(500)}
    with pytest.raises(engine.FactsError) as caught:
        shipped.evaluate(facts, on=DAY)
    messages = [d.message for d in caught.value.diagnostics]
    assert len(messages) == 21 and messages[-1] == "…and 480 more unknown facts"
    assert messages[:2] == ["unknown fact 'junk_0'", "unknown fact 'junk_1'"]


@pytest.mark.parametrize("content", [
    b"age: \xff\xfe\n",
    b"[1, 2, 3]\n",
    b"age: [" * 100 + b"]" * 100,
    json.dumps({"age": {"value": {"value": {"value": 1}}}}).encode(),
    b"age: &a 70\nweight: *a\n",
    b"!!python/object/apply:os.system ['echo pwned']\n",
    b"age: 70\n" + b"# padding\n" * 300_000,
    b"\x00\x01\x02",
])
def test_cli_never_prints_a_traceback(cli, tmp_path, content: bytes) -> None:
    path = tmp_path / "facts.yaml"
    path.write_bytes(content)
    code, out, err = cli("evaluate", str(SHIPPED), "--facts", str(path), "--date", "2026-11-27")
    assert (code, out) == (2, "")
    assert "Traceback" not in err and err.strip()
    code, out, err = cli("evaluate", str(SHIPPED), "--facts", "-", "--date", "2026-11-27", stdin=content)
    assert (code, out) == (2, "") and "Traceback" not in err
