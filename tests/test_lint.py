"""guideline lint: each check fires on a small bad guideline, at its line:col."""

from __future__ import annotations

import subprocess
import textwrap

import pytest

from engine.authoring.lint import CHECKS, lint_text

from .conftest import MINIMAL_HEAD, SHIPPED

HEAD = MINIMAL_HEAD


def findings(body: str, *, keep_info: bool = False) -> list[tuple[int, int, str]]:
    found, _loaded = lint_text(HEAD + textwrap.dedent(body), "g.yaml")
    return [(f.line, f.col, f.code) for f in found if keep_info or f.severity != "info"]


def shipped_with(old: str, new: str, count: int = 1) -> str:
    text = SHIPPED.read_text(encoding="utf-8")
    assert text.count(old) == count, old
    return text.replace(old, new)


def line_of(text: str, fragment: str) -> int:
    return text[: text.index(fragment)].count("\n") + 1


def test_shipped_guideline_reports_only_its_source_notes() -> None:
    found, loaded = lint_text(SHIPPED.read_text(encoding="utf-8"), str(SHIPPED))
    assert loaded
    assert {f.code for f in found} == {"source-note"}
    assert {f.severity for f in found} == {"info"}
    assert len(found) == 20


def test_deleting_a_table_row_is_a_gap_naming_the_interval() -> None:
    row = """\
      - id: zol-40-49
        when: ["[40, 50)"]
        then: {zoledronic_dose_mg: 3.3, zoledronic_contraindicated: false}
        label: {fr: "40–49 mL/min → 3,3 mg", en: "40–49 mL/min → 3.3 mg"}
"""
    text = shipped_with(row, "")
    found, _ = lint_text(text, "g.yaml")
    errors = [f for f in found if f.severity != "info"]
    assert len(errors) == 1
    gap = errors[0]
    assert gap.code == "table-gap"
    assert gap.message == "table 'zoledronic_dose': no row covers [40, 50) mL/min"
    rows_line = line_of(text, "    rows:\n      - id: zol-over-60")
    assert (gap.line, gap.severity) == (rows_line, "error")


def test_cli_lint_exit_codes(cli, tmp_path) -> None:
    bad = tmp_path / "guideline.yaml"
    bad.write_text(shipped_with('when: ["[40, 50)"]', 'when: ["[40, 50]"]'))
    code, out, _ = cli("lint", str(bad))
    assert code == 1
    assert "table-overlap: table 'zoledronic_dose': rows zol-50-60 and zol-40-49 both match [50, 50] mL/min" in out
    code, out, _ = cli("lint", str(SHIPPED))
    assert code == 0 and out.rstrip().endswith("0 error(s), 0 warning(s), 20 info")
    code, out, _ = cli("lint", "--list-checks")
    assert code == 0 and "table-gap (error)" in out
    code, _, _err = cli("lint")
    assert code == 2


def test_misspelt_fact_in_a_condition_is_one_finding() -> None:
    text = shipped_with("expr: antiresorptive_indicated and not_started\n",
                        "expr: antiresorptive_indicatd and not_started\n")
    found, loaded = lint_text(text, "g.yaml")
    assert not loaded
    assert [(f.code, f.hint) for f in found] == [("expr.unknown-name", "did you mean 'antiresorptive_indicated'?")]


def test_missing_english_text_is_one_warning() -> None:
    old = "          en: Complete the dental restoration before starting the antiresorptive.\n"
    text = shipped_with(old, "")
    found, _ = lint_text(text, "g.yaml")
    warnings = [f for f in found if f.severity != "info"]
    assert [(f.code, f.message) for f in warnings] == [("text.missing-translation", "text has no 'en' translation")]
    assert warnings[0].line == line_of(text, "          fr: Réaliser la remise en état bucco-dentaire") - 1


FACT = "facts:\n  x: {type: number, range: {min: 0, max: 100}, label: {fr: x, en: x}}\n"


@pytest.mark.parametrize("body, expected", [
    (FACT + """\
tables:
  t:
    hit: first
    inputs: [{expr: x}]
    outputs: {o: null}
    rows:
      - {when: ["< 50"], then: {o: 1}}
      - {when: ["< 20"], then: {o: 2}}
      - {when: [">= 50"], then: {o: 3}}
      - {when: ["> 200"], then: {o: 4}}
    otherwise: {o: null}
rules:
  - {id: r, when: o == 1, source: {section: "1"}, then: [{id: r, kind: information, text: {fr: a, en: a}}]}
""", [(16, 9, "table-unreachable-row"), (18, 9, "table-unreachable-row")]),
    (FACT + """\
rules:
  - {id: r, when: x < 10 and x > 20, source: {section: "1"}, then: [{id: r, kind: information, text: {fr: a, en: a}}]}
  - {id: s, when: x > 150, source: {section: "1"}, then: [{id: s, kind: information, text: {fr: a, en: a}}]}
  - {id: t, when: x >= 0, source: {section: "1"}, then: [{id: t, kind: information, text: {fr: a, en: a}}]}
""", [(10, 19, "rule-never-fires"), (11, 19, "rule-never-fires"), (12, 19, "rule-always-true")]),
    (FACT + """\
  y: {type: boolean, label: {fr: y, en: y}}
  s: {type: enum, values: [a, b, c], label: {fr: s, en: s}}
derived:
  z: {type: number, expr: x * 2, label: {fr: z, en: z}}
rules:
  - {id: r, when: s == 'a' or x > 3, then: [{id: r, kind: information, text: {fr: a, en: a}}]}
""", [(9, 3, "unused-fact"), (10, 31, "untested-enum-value"), (10, 34, "untested-enum-value"),
      (12, 3, "unused-derived"), (14, 10, "rule-no-source")]),
])
def test_checks(body: str, expected: list) -> None:
    assert findings(body) == expected


def test_notes_are_info_and_unused_notes_warn() -> None:
    body = FACT + """\
notes:
  - {id: n1, kind: gap, text: {fr: t, en: t}, decision: {fr: d, en: d}}
rules:
  - {id: r, when: x > 3, source: {section: "1"}, then: [{id: r, kind: information, text: {fr: a, en: a}}]}
"""
    assert findings(body, keep_info=True) == [(10, 10, "note-unused"), (10, 10, "source-note")]


def test_ignore_comment_needs_a_reason() -> None:
    body = FACT + """\
  s:
    type: enum
    # lint: ignore untested-enum-value
    values: [a, b]
    label: {fr: s, en: s}
rules:
  - {id: r, when: s == 'a' and x > 1, source: {section: "1"}, then: [{id: r, kind: information, text: {fr: a, en: a}}]}
"""
    assert findings(body) == [(11, 5, "lint-ignore-reason")]


def test_every_check_is_documented_with_examples() -> None:
    lint_text(HEAD + FACT + "rules: []\n", "g.yaml")
    assert len(CHECKS) >= 10
    for check in CHECKS.values():
        assert check.doc and ("Failing" in check.doc or "Not a problem" in check.doc), check.id


def git(repo, *args) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_version_must_be_bumped_against_base(cli, tmp_path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "t@example.org")
    git(repo, "config", "user.name", "t")
    target = repo / "guideline.yaml"
    target.write_text(SHIPPED.read_text(encoding="utf-8"))
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "base")
    # Reformatting and comments only: no finding.
    target.write_text("# a comment\n" + SHIPPED.read_text(encoding="utf-8"))
    code, out, _ = cli("lint", str(target), "--base", "HEAD")
    assert code == 0 and "version-" not in out
    # A changed dose without a bump: error, minor suggested.
    target.write_text(shipped_with("then: {zoledronic_dose_mg: 3.5,", "then: {zoledronic_dose_mg: 3.4,"))
    code, out, _ = cli("lint", str(target), "--base", "HEAD")
    assert code == 1
    assert "version-not-bumped: content changed since HEAD but version is still 1.1.0" in out
    assert "hint: a minor change: set version: 1.2.0" in out
    # Only a text changed: a patch is enough.
    target.write_text(shipped_with("version: 1.1.0", "version: 1.1.1").replace(
        "Première perfusion - paracétamol", "Première perfusion - prendre du paracétamol"))
    code, out, _ = cli("lint", str(target), "--base", "HEAD")
    assert code == 0, out
