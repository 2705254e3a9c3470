"""Every patient case of every shipped guideline, one pytest test per case.

The cases are data (``guidelines/*/cases/*.yaml``) run by the same runner as
``guideline test``; a failure shows the runner's own expected-vs-got lines.
"""

from __future__ import annotations

import pytest

from engine.authoring.cases import GuidelineCache, coverage, find_case_files, load_cases, run_case

from .conftest import ROOT

_CACHE = GuidelineCache()
_CASES = [case for path in find_case_files([ROOT / "guidelines"]) for case in load_cases(path)]


def test_there_are_enough_cases() -> None:
    assert len(_CASES) >= 60


@pytest.mark.parametrize("case", _CASES, ids=[f"{c.file.rsplit('/', 1)[-1]}::{c.id}" for c in _CASES])
def test_case(case) -> None:
    outcome = run_case(case, _CACHE.get(case.guideline_path))
    assert outcome.passed, "\n".join(outcome.failures)


def test_cases_cover_every_rule_row_and_recommendation() -> None:
    by_guideline: dict = {}
    for case in _CASES:
        outcome = run_case(case, _CACHE.get(case.guideline_path))
        if outcome.result is not None:
            by_guideline.setdefault(case.guideline_path, []).append(outcome.result)
    for path, results in by_guideline.items():
        report = coverage(_CACHE.get(path), results)
        assert (report.rules_missed, report.rows_missed, report.recommendations_missed,
                report.branches_missed) == ((), (), (), ()), path
        assert report.branches_total > 0
        assert report.percent == 100.0
