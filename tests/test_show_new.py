"""guideline show and guideline new."""

from __future__ import annotations

import json

from .conftest import SHIPPED


def test_show_markdown_has_tables_rules_in_words_and_notes(cli) -> None:
    code, out, err = cli("show", str(SHIPPED), "--lang", "en")
    assert (code, err) == (0, "")
    assert "| `zol-40-49` | [40, 50) | 3.3 | false |" in out
    assert "| Observation.value; LOINC 1989-3; ≤ 90 d |" in out  # the FHIR binding, in words
    assert "| `vitd-unclassified` | (70, 150] | unclassified |" in out
    assert "- **When**: Antiresorptive indicated and not yet started and " \
           "25-OH vitamin D < 20 and not (Emergency)" in out
    assert "Dose: zoledronic acid zoledronic_dose_mg mg IV every 3 months for 2 years" in out
    assert "| `vitd-deficiency-threshold` | Table 1 puts deficiency below 10 ng/mL" in out
    assert "| `vitamin_d_25oh` | 25-OH vitamin D | quantity | ng/mL | nmol/L (×1/2.5) | 1–500 |" in out


def test_show_html_escapes(cli) -> None:
    code, out, _ = cli("show", str(SHIPPED), "--format", "html")
    assert code == 0 and out.startswith("<!DOCTYPE html>")
    assert "<td>&lt; 10</td>" not in out  # intervals are normalised
    assert "<td>(-inf, 10)</td>" in out
    assert "<script" not in out


def test_new_scaffold_passes_validate_lint_and_test(cli, tmp_path) -> None:
    folder = tmp_path / "my-guideline"
    code, out, _ = cli("new", str(folder), "--title", "Essai")
    assert code == 0 and "created" in out
    assert (folder / "guideline.yaml").read_text().startswith("# yaml-language-server: $schema=")
    assert cli("validate", str(folder))[0] == 0
    code, out, _ = cli("lint", "--strict", str(folder))
    assert code == 0, out
    code, out, _ = cli("test", str(folder), "--min-coverage", "100")
    assert code == 0, out
    assert out.rstrip().endswith("2 passed, 0 failed")
    code, _, err = cli("new", str(folder))
    assert code == 2 and "not empty" in err
    code, _, err = cli("new", str(tmp_path / "x"), "--id", "Bad Id")
    assert code == 2 and "not a valid id" in err


def test_new_outside_a_project_copies_the_schemas_instead_of_pointing_into_the_engine(cli, tmp_path) -> None:
    # v1.0.0 wrote a $schema path into the engine's installation (site-packages for a wheel)
    folder = tmp_path / "topic"
    assert cli("new", str(folder))[0] == 0
    first = (folder / "guideline.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=schemas/guideline.schema.json"
    cases_first = (folder / "cases" / "basic.cases.yaml").read_text().splitlines()[0]
    assert cases_first == "# yaml-language-server: $schema=../schemas/cases.schema.json"
    assert json.loads((folder / "schemas" / "guideline.schema.json").read_text())["$defs"]


def test_new_inside_a_project_points_at_its_schemas(cli, tmp_path) -> None:
    (tmp_path / "schemas").mkdir()
    for name in ("guideline.schema.json", "cases.schema.json"):
        (tmp_path / "schemas" / name).write_text("{}")
    folder = tmp_path / "guidelines" / "topic"
    assert cli("new", str(folder))[0] == 0
    first = (folder / "guideline.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../../schemas/guideline.schema.json"
    assert not (folder / "schemas").exists()
