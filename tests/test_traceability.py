"""The committed traceability table is generated from the YAML and is current."""

from __future__ import annotations

import importlib.util

import pytest

from .conftest import ROOT

FOLDER = ROOT / "guidelines" / "bone-metastases"


def _tool():
    spec = importlib.util.spec_from_file_location("traceability", ROOT / "tools" / "traceability.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("folder", ["bone-metastases", "pneumonia-severity"])
def test_table_is_up_to_date_and_complete(folder: str) -> None:
    table, gaps = _tool().build(ROOT / "guidelines" / folder)
    assert gaps == []
    assert (ROOT / "guidelines" / folder / "TRACEABILITY.md").read_text(encoding="utf-8") == table, \
        f"run: python tools/traceability.py guidelines/{folder}"
    numbers = range(1, 25) if folder == "bone-metastases" else ["1.1", "1.2", "1.3", "2.1", "2.2", "2.3", "3.1"]
    for n in numbers:
        assert f"\n| {n} | " in table


def test_every_rule_names_the_statements_it_encodes(shipped) -> None:
    assert [r.id for r in shipped.compiled.rules if not r.statements] == []
    assert all(r.source for r in shipped.compiled.rules)
