"""tools/bench.py: its cross-checks run and can fail (its timings are not asserted)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parent.parent / "tools" / "bench.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_small_run_prints_every_figure_and_no_mismatch() -> None:
    run = subprocess.run(check=False, args=[sys.executable, str(TOOL), "--n", "300", "--repeats", "1", "--no-cli",
                                            "--json-parts"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "cross-check of the engine and the lean reference against the readable oracle: 0 mismatch(es)" in out
    assert "against Jinja's sandbox: 0 mismatch(es)" in out
    assert "full JSON texts (to_json) against json.dumps(to_dict()): 0 mismatch(es)" in out
    for label in ("lean hand-written reference", "readable oracle", "interpreter, decisions only",
                  "interpreter, full result (fr)", "full result as dicts (to_dict)", "to_dict + json.dumps",
                  "full JSON with explanations", "targets (issue 19): decide ", "the full JSON text (to_json) against",
                  "every result kept"):
        assert label in out
    # --json-parts: one row per stage, each with its time, what it adds and its multiple of decide
    stages = out.split("the full JSON text, stage by stage (300 patients", 1)[1].splitlines()
    rows = {line[:40].strip(): line[40:].split() for line in stages[2:8]}
    assert list(rows) == ["decisions only (decide)", "evaluate (fr)", "+ every value's JSON object",
                          "+ undetermined rules and their needs", "+ borderline cautions",
                          "+ the rest of the text: to_json"]
    assert rows["decisions only (decide)"][-1] == "1.00" and all(len(r) == 3 for r in list(rows.values())[2:])
    assert "characters on average" in stages[8]


def test_cross_checks_report_a_wrong_decision_and_a_wrong_text(monkeypatch, capsys) -> None:
    bench = _bench()
    g = bench.engine.load(bench.GUIDELINE)
    patients = bench.cohort(g, 200, 7)
    from tests.oracle import bone_metastases

    real = bone_metastases.reference

    def wrong(facts, today=bench.DAY):
        rules, values = real(facts, today)
        return {**rules, "measure-vitamin-d": not rules["measure-vitamin-d"]}, values

    monkeypatch.setattr(bone_metastases, "reference", wrong)
    checked, mismatches = bench.check(g, patients)
    assert checked > 0 and mismatches == checked
    assert "MISMATCH patient 0" in capsys.readouterr().out
    monkeypatch.setattr(bone_metastases, "reference", real)

    def lean_wrong(facts, today):
        rules, values = lean(facts, today)
        return rules, {**values, "zoledronic_dose_mg": 99.0}

    from tests.oracle.lean import lean

    monkeypatch.setattr(bench, "lean", lean_wrong)
    checked, mismatches = bench.check(g, patients)
    assert checked > 0 and mismatches == checked
    assert "lean zoledronic_dose_mg: interpreter 99.0" in capsys.readouterr().out
    monkeypatch.setattr(bench, "lean", lean)

    from engine.texts.templates import CompiledTemplate

    original = CompiledTemplate.render

    def translated_differs(self, context, max_chars):
        # Only templates with a translated function are altered; the check's Jinja-only copies are not.
        return original(self, context, max_chars) + ("" if self.fast is None else " (altered)")

    monkeypatch.setattr(CompiledTemplate, "render", translated_differs)
    texts, text_mismatches = bench.check_texts(g, patients[:20])
    assert texts > 0 and text_mismatches == texts
    assert "TEXT MISMATCH patient 0" in capsys.readouterr().out


def test_growth_mode_scales_the_rules() -> None:
    bench = _bench()
    assert len(bench.scaled(2).compiled.rules) == 2 * len(bench.scaled(1).compiled.rules)
