"""Shared fixtures: the shipped guideline, compiled once per session."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest

import engine
from engine.frontends.cli import run

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "guidelines" / "bone-metastases" / "guideline.yaml"
DAY = dt.date(2026, 11, 27)


@pytest.fixture(autouse=True, scope="session")
def private_compile_cache(tmp_path_factory):
    """The CLI's compile cache goes to a folder of this test run, never to the user's."""
    import os

    folder = tmp_path_factory.mktemp("compile-cache")
    previous = os.environ.get("GUIDELINE_CACHE_DIR")
    os.environ["GUIDELINE_CACHE_DIR"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("GUIDELINE_CACHE_DIR", None)
    else:
        os.environ["GUIDELINE_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def shipped() -> engine.Guideline:
    return engine.load(SHIPPED)


@pytest.fixture()
def cli():
    """Run the CLI in-process; return (exit code, stdout, stderr)."""

    def call(*argv: str, stdin: bytes = b"") -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = run(list(argv), out, err, io.BytesIO(stdin))
        return code, out.getvalue(), err.getvalue()

    return call


# The metadata every small test guideline starts with.
MINIMAL_HEAD = """\
id: demo
version: 1.0.0
status: active
title: {fr: Démo, en: Demo}
languages: [fr, en]
source: {document: Test}
"""


# A guideline whose values fail at run time: 10 / 0, and a power too large.
FAILING_GUIDELINE = """\
id: div
version: 0.1.0
status: draft
title: {fr: d}
languages: [fr]
source: {document: t}
facts:
  x: {type: number, range: {min: 0, max: 10}, label: {fr: x}}
derived:
  ratio: {type: number, expr: 10 / x, label: {fr: r}}
  big: {type: number, expr: 9 ** 9 ** x, label: {fr: b}}
rules:
  - {id: r, when: ratio > 1 and big > 1, then: [{id: r, kind: information, text: {fr: ok}}]}
"""


def baseline_facts() -> dict:
    """An indicated patient with every fact known and unremarkable."""
    return {
        "bone_metastases": True, "life_expectancy_over_3_months": True, "skeletal_event": False,
        "high_risk_lesions": False, "emergency": False, "bone_pattern": "multiple",
        "oncological_response": "stable", "current_agent": "none", "zoledronic_infusions_given": 0,
        "denosumab_stop_planned": False, "vitamin_d_25oh": {"value": 35, "unit": "ng/mL"},
        "dietary_calcium": {"value": 1200, "unit": "mg/day"}, "measured_clearance": {"value": 80, "unit": "mL/min"},
        "dental_assessment_done": True, "dental_care_needed": False, "recent_tooth_extraction": False,
        "exposed_jaw_bone": False, "comedications": [], "tobacco": False, "alcohol": False,
    }
