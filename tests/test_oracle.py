"""The engine against the independent clinical oracle (tests/oracle), which shares no code with it.

The oracle is the shipped guideline's decisions written by hand from the
source text; these tests compare every rule outcome and the key values on a
generated cohort and on the facts of every shipped patient case.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import engine
from engine.authoring.cases import find_case_files, load_cases

from .conftest import SHIPPED
from .oracle import bone_metastases
from .oracle.bone_metastases import disagreements
from .oracle.cohort import DAY, cohort

CASES = [case for path in find_case_files([SHIPPED.parent]) for case in load_cases(path)]


def test_the_oracle_imports_nothing_from_the_engine() -> None:
    tree = ast.parse(Path(bone_metastases.__file__).read_text(encoding="utf-8"))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(name.split(".")[0] == "engine" for name in imported), imported


def test_engine_agrees_with_the_oracle_on_a_generated_cohort(shipped: engine.Guideline) -> None:
    checked = 0
    for i, facts in enumerate(cohort(shipped, 3000, seed=11)):
        diffs = disagreements(shipped.decide(facts, on=DAY), facts, DAY)
        assert not diffs, f"patient {i} {facts}:\n" + "\n".join(diffs)
        checked += 1
    assert checked == 3000


@pytest.mark.parametrize("case", [c for c in CASES if "refused" not in c.file],
                         ids=[c.id for c in CASES if "refused" not in c.file])
def test_engine_agrees_with_the_oracle_on_each_case(shipped: engine.Guideline, case) -> None:
    try:
        decisions = shipped.decide(case.facts, on=case.date)
    except engine.FactsError:
        pytest.skip("facts refused by design (the refused-facts cases)")
    diffs = disagreements(decisions, case.facts, case.date)
    assert not diffs, "\n".join(diffs)


def test_a_wrong_oracle_is_noticed(shipped: engine.Guideline, monkeypatch) -> None:
    """The comparison can fail: an oracle that flips one rule disagrees on every patient."""
    real = bone_metastases.reference

    def flipped(facts, today=DAY):
        rules, values = real(facts, today)
        return {**rules, "out-of-scope": not rules["out-of-scope"]}, values

    monkeypatch.setattr(bone_metastases, "reference", flipped)
    facts = {"bone_metastases": True}
    assert disagreements(shipped.decide(facts, on=DAY), facts, DAY) == [
        "rule out-of-scope: interpreter False, reference True"]
