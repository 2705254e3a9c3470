"""guideline diff: each kind of change on small pairs, and the shipped guideline's scenarios."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

import engine
from engine.authoring.diff import diff_guidelines
from engine.authoring.diff_report import render_diff
from engine.loading import parse_yaml

from .conftest import SHIPPED

SMALL = """\
id: small
version: 1.0.0
status: active
title: {fr: Petit, en: Small}
languages: [fr, en]
source: {document: t, section: "1"}
facts:
  level: {type: quantity, unit: ng/mL, units: [{unit: nmol/L, divide_by: 2.5}], range: {min: 0, max: 200},
          label: {fr: taux, en: level}}
  risk: {type: enum, values: [low, high], label: {fr: risque, en: risk}}
derived:
  doubled: {type: number, expr: level * 2, label: {fr: double, en: doubled}}
tables:
  dose:
    inputs: [{expr: level, unit: ng/mL}]
    outputs: {dose_mg: mg}
    rows:
      - {id: low, when: ["< 20"], then: {dose_mg: 10}}
      - {id: high, when: [">= 20"], then: {dose_mg: 5}}
    otherwise: {dose_mg: null}
rules:
  - id: treat
    when: risk == 'high' and doubled > 10
    source: {section: "1"}
    then:
      - id: treat
        kind: action
        text: {fr: "Traiter à {{ dose_mg }} mg", en: "Treat with {{ dose_mg }} mg"}
        dose: {drug: {name: {fr: x, en: x}}, amount: dose_mg, unit: mg, route: oral}
"""


def report(old: str, new: str, cases=()):
    return diff_guidelines(engine.load_text(old, "old.yaml"), engine.load_text(new, "new.yaml"), old_label="old",
                           new_label="new", cases=cases, old_data=parse_yaml(old, "o").data,
                           new_data=parse_yaml(new, "n").data)


def details(r) -> list[str]:
    return [f"{c.status} {c.section}/{c.id}: " + " | ".join(c.details) for c in r.changes]


@pytest.mark.parametrize("old_fragment, new_fragment, expected", [
    ('when: ["< 20"], then: {dose_mg: 10}', 'when: ["< 20"], then: {dose_mg: 12}',
     "changed tables/dose: row low ((-inf, 20) ng/mL): dose_mg 10 → 12"),
    ('when: ["< 20"], then', 'when: ["< 25"], then',
     "changed tables/dose: row low: (-inf, 20) ng/mL → (-inf, 25) ng/mL"),
    ("when: risk == 'high' and doubled > 10", "when: risk == 'high' and doubled > 12",
     "changed rules/treat: condition: risk == 'high' and doubled > 10 → risk == 'high' and doubled > 12"),
    ("expr: level * 2", "expr: level * 3", "changed derived/doubled: expression: level * 2 → level * 3"),
    ('en: "Treat with {{ dose_mg }} mg"', 'en: "Give {{ dose_mg }} mg"',
     "changed rules/treat: treat: text [en]: [-Treat with-] {+Give+} {{ dose_mg }} mg"),
    ("unit: mg, route: oral}", "unit: mg, route: intravenous}",
     "changed rules/treat: treat: dose: {drug: {name: {fr: x, en: x}}, amount: dose_mg, unit: mg, route: oral} → "
     "{drug: {name: {fr: x, en: x}}, amount: dose_mg, unit: mg, route: intravenous}"),
    ("range: {min: 0, max: 200}", "range: {min: 0, max: 300}",
     "changed facts/level: plausible range: [0, 200] → [0, 300]"),
    ("status: active", "status: retired", "changed metadata/small: status: active → retired"),
])
def test_each_kind_of_change(old_fragment: str, new_fragment: str, expected: str) -> None:
    new = SMALL.replace(old_fragment, new_fragment)
    assert new != SMALL
    found = details(report(SMALL, new))
    assert expected in found, found


def test_added_and_removed_by_id() -> None:
    new = SMALL.replace("      - {id: high,", "      - {id: mid, when: [\"[20, 30)\"], then: {dose_mg: 7}}\n"
                                             "      - {id: high,").replace('when: [">= 20"]', 'when: [">= 30"]')
    new = new.replace("  doubled: {type: number, expr: level * 2, label: {fr: double, en: doubled}}\n",
                      "  doubled: {type: number, expr: level * 2, label: {fr: double, en: doubled}}\n"
                      "  tripled: {type: number, expr: level * 3, label: {fr: triple, en: tripled}}\n")
    found = details(report(SMALL, new))
    assert "changed tables/dose: row mid added ([20, 30) ng/mL → {dose_mg: 7}) | row high: [20, +inf) ng/mL → " \
           "[30, +inf) ng/mL" in found
    assert "added derived/tripled: " in found
    assert "removed derived/tripled: " in details(report(new, SMALL))


def test_reordering_and_reformatting_is_no_change() -> None:
    data = parse_yaml(SMALL, "s").data
    reformatted = "# a comment\n" + yaml.safe_dump(data, sort_keys=True, indent=4, allow_unicode=True)
    r = report(SMALL, reformatted, cases=[("c", {"level": "10 ng/mL", "risk": "high"}, engine.load_text(SMALL).compiled
                                                .effective_date or __import__("datetime").date(2026, 1, 1))])
    assert r.changes == [] and r.impact.changes == [] and not r.missing_bump
    assert render_diff(r).splitlines()[1].startswith("No change (1.0.0 → 1.0.0)")


def test_threshold_move_reports_the_band_in_both_units() -> None:
    new = SMALL.replace('"< 20"', '"< 25"').replace('">= 20"', '">= 25"').replace("version: 1.0.0", "version: 1.1.0")
    day = __import__("datetime").date(2026, 1, 1)
    r = report(SMALL, new, cases=[("high-risk", {"level": "10 ng/mL", "risk": "high"}, day)])
    assert r.impact.bands == ["level [20, 25)"]
    units = {c.probe[2] for c in r.impact.changes if c.probe}
    assert units == {"ng/mL", "nmol/L"}
    assert all(20 <= c.probe[1] < 25 for c in r.impact.changes if c.probe)
    assert not r.missing_bump
    text = render_diff(r)
    assert "level = 50 nmol/L: treat: dose amount 5 → 10" in text


SHIPPED_TEXT = SHIPPED.read_text(encoding="utf-8")


def copy_with(tmp_path, old: str, new: str):
    folder = tmp_path / "copy"
    folder.mkdir()
    shutil.copytree(SHIPPED.parent / "cases", folder / "cases")
    target = folder / "guideline.yaml"
    assert SHIPPED_TEXT.count(old) == 1
    target.write_text(SHIPPED_TEXT.replace(old, new), encoding="utf-8")
    return target


def test_dose_change_in_the_shipped_table(cli, tmp_path) -> None:
    target = copy_with(tmp_path, "then: {zoledronic_dose_mg: 3.5,", "then: {zoledronic_dose_mg: 3.4,")
    code, out, _ = cli("diff", str(SHIPPED), str(target), "--format", "json", "--require-version-bump")
    assert code == 1
    data = json.loads(out)
    tables = [c for c in data["changes"] if c["section"] == "tables"]
    assert tables == [{"section": "tables", "id": "zoledronic_dose", "status": "changed",
                       "details": ["row zol-50-60 ([50, 60] mL/min): zoledronic_dose_mg 3.5 → 3.4"]}]
    assert data["bump_needed"] == "minor" and data["version_bumped"] is False
    assert "measured_clearance [50, 60]" in data["impact"]["bands"]
    changed = data["impact"]["patients"]
    assert any(p["patient"].startswith("case clearance-60") for p in changed)
    assert any(" with " in p["patient"] for p in changed)
    new = engine.load(target)
    day = __import__("datetime").date(2026, 11, 27)
    for patient in changed:  # every impacted patient is in the 50-60 band, none outside it
        clearance = new.evaluate(patient["facts"], on=day).values["creatinine_clearance"].value
        assert 50 <= clearance <= 60, patient["patient"]


def test_markdown_and_gates(cli, tmp_path) -> None:
    target = copy_with(tmp_path, "version: 1.1.0", "version: 1.1.1")
    code, out, _ = cli("diff", str(SHIPPED), str(target), "--format", "markdown", "--fail-on", "clinical")
    assert code == 0
    assert out.startswith("### Guideline diff:")
    assert "**1 change(s) (1.1.0 → 1.1.1); 0 patient(s) get a different decision, dose or schedule" in out
    target.write_text(SHIPPED_TEXT.replace('when: ["< 20"]', 'when: ["< 25"]').replace(
        'when: ["[20, 30)"]', 'when: ["[25, 30)"]'))
    code, out, _ = cli("diff", str(SHIPPED), str(target), "--format", "markdown", "--fail-on", "clinical")
    assert code == 1
    assert "<details><summary>Clinical impact:" in out and "`vitamin_d_25oh [20, 25)`" in out


def git(repo, *args) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def test_git_revisions_and_base(cli, tmp_path, monkeypatch) -> None:
    repo = tmp_path / "repo"
    (repo / "guidelines" / "g").mkdir(parents=True)
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "t@example.org")
    git(repo, "config", "user.name", "t")
    path = repo / "guidelines" / "g" / "guideline.yaml"
    path.write_text(SMALL)
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "base")
    path.write_text(SMALL.replace("dose_mg: 10", "dose_mg: 11").replace("version: 1.0.0", "version: 1.1.0"))
    monkeypatch.chdir(repo)
    code, out, _ = cli("diff", "HEAD:guidelines/g/guideline.yaml", "guidelines/g/guideline.yaml")
    assert code == 0 and "row low ((-inf, 20) ng/mL): dose_mg 10 → 11" in out
    code, out, _ = cli("diff", "--base", "HEAD")
    assert code == 0 and "HEAD:guidelines/g/guideline.yaml" in out
    code, _, err = cli("diff", "NOPE:guidelines/g/guideline.yaml", "guidelines/g/guideline.yaml")
    assert code == 2 and "cannot read" in err
    assert cli("diff", "only-one")[0] == 2


def test_two_loose_files_without_cases_find_a_dose_change_and_its_patients(cli, tmp_path) -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    (tmp_path / "old.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "new.yaml").write_text(text.replace("then: {zoledronic_dose_mg: 3.5,", "then: {zoledronic_dose_mg: 3.4,"),
                                       encoding="utf-8")
    assert not (tmp_path / "cases").exists()
    code, out, _ = cli("diff", str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml"), "--fail-on", "clinical")
    assert code == 1
    assert "row zol-50-60 ([50, 60] mL/min): zoledronic_dose_mg 3.5 → 3.4" in out
    assert "evaluated: 0 cases" in out and "measured_clearance [50, 60]" in out
    changed = int(out.split("); ", 1)[1].split(" patient(s)", 1)[0])
    assert changed > 50
    assert "oligometastatic-zoledronic (dose)" in out


def test_a_french_only_rewording_is_wording_not_clinical(cli, tmp_path) -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    (tmp_path / "old.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "new.yaml").write_text(text.replace("Tolérance comparée", "Profil de tolérance comparé", 1),
                                       encoding="utf-8")
    code, out, _ = cli("diff", str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml"), "--fail-on", "clinical")
    assert code == 0
    assert "0 patient(s) get a different decision, dose or schedule; " in out
    assert "only a different wording (fr)" in out and "Wording only (no decision, dose or schedule changes):" in out
    code, out, _ = cli("diff", str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml"), "--format", "json")
    impact = __import__("json").loads(out)["impact"]
    assert impact["changed_patients"] == 0 and impact["text_changed_patients"] > 0
    assert impact["text_languages"] == ["fr"]


def test_booleans_are_shown_as_the_guideline_writes_them(cli, tmp_path) -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    (tmp_path / "old.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "new.yaml").write_text(
        text.replace("then: {zoledronic_dose_mg: 3.5, zoledronic_contraindicated: false}",
                     "then: {zoledronic_dose_mg: 3.5, zoledronic_contraindicated: true}"), encoding="utf-8")
    _, out, _ = cli("diff", str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml"))
    assert "zoledronic_contraindicated false → true" in out and "False" not in out and "True" not in out


def test_three_edits_are_reported_one_section_per_change(cli, tmp_path) -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    edited = text.replace("then: {zoledronic_dose_mg: 3.5,", "then: {zoledronic_dose_mg: 3.4,")
    edited = edited.replace("Tolérance comparée", "Profil de tolérance comparé", 1)
    start, end = edited.index("      - id: zol-40-49"), edited.index("      - id: zol-30-39")
    edited = edited[:start] + edited[end:]
    (tmp_path / "old.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "new.yaml").write_text(edited, encoding="utf-8")
    code, out, _ = cli("diff", str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml"), "--fail-on", "clinical")
    assert code == 1
    table, rule = out.split("changed  tables/zoledronic_dose", 1)[1].split("changed  rules/tolerance-profile", 1)
    assert "row zol-40-49 removed" in table and "zoledronic_dose_mg 3.5 → 3.4" in table
    assert "now no row covers [40, 50) mL/min: its outputs are unknown there, and what reads them undetermined" in table
    assert "→ bands: measured_clearance [40, 60]" in table
    assert "→ alone, it changes 0 patient(s)' decisions, doses or schedules and " in rule
    code, out, _ = cli("diff", str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml"), "--format", "json")
    by_change = __import__("json").loads(out)["impact"]["by_change"]
    assert by_change["rules/tolerance-profile"]["clinical"] == 0 and by_change["rules/tolerance-profile"]["wording"] > 0
    assert by_change["tables/zoledronic_dose"]["clinical"] > 100
    assert by_change["tables/zoledronic_dose"]["bands"] == ["measured_clearance [40, 60]"]
