"""The committed traceability table is generated from the YAML and is current."""

from __future__ import annotations

import importlib.util

from .conftest import ROOT

FOLDER = ROOT / "guidelines" / "bone-metastases"


def _tool():
    spec = importlib.util.spec_from_file_location("traceability", ROOT / "tools" / "traceability.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_table_is_up_to_date_and_complete() -> None:
    table, gaps = _tool().build(FOLDER)
    assert gaps == []
    assert (FOLDER / "TRACEABILITY.md").read_text(encoding="utf-8") == table, \
        "run: python tools/traceability.py guidelines/bone-metastases"
    for n in range(1, 25):
        assert f"\n| {n} | " in table


def test_every_rule_names_the_statements_it_encodes(shipped) -> None:
    assert [r.id for r in shipped.compiled.rules if not r.statements] == []
    assert all(r.source for r in shipped.compiled.rules)
