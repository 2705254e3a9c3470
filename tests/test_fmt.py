"""guideline fmt: the canonical layout, comments kept, meaning never changed (issue 17, item 7)."""

from __future__ import annotations

import textwrap

import pytest

from engine.authoring.fmt import format_text

from .conftest import ROOT

MESSY = textwrap.dedent("""\
    # yaml-language-server: $schema=../../../schemas/cases.schema.json
    # The header comment stays.
    guideline: ../guideline.yaml
    cases:
    - id: one   # a comment after a value stays
      story: "Quoted, as written."
      facts: {age: 70, sex: female}
      expect:
        exactly: [vitamin-d-status, calcium-diet-sufficient, maintain-vitamin-d-calcium, start-antiresorptive,
                  start-now]
        values: {zoledronic_dose_mg:    3.5}
        tables:
          zoledronic_dose:
        include: [a, b]
    """)

CANONICAL = textwrap.dedent("""\
    # yaml-language-server: $schema=../../../schemas/cases.schema.json
    # The header comment stays.
    guideline: ../guideline.yaml
    cases:
      - id: one # a comment after a value stays
        story: "Quoted, as written."
        facts: {age: 70, sex: female}
        expect:
          exactly:
            - vitamin-d-status
            - calcium-diet-sufficient
            - maintain-vitamin-d-calcium
            - start-antiresorptive
            - start-now
          values: {zoledronic_dose_mg: 3.5}
          tables:
            zoledronic_dose: null
          include: [a, b]
    """)


def test_the_canonical_layout_keeps_comments_quotes_and_short_flow_lists() -> None:
    formatted, problems = format_text(MESSY, "messy.cases.yaml")
    assert problems == []
    assert formatted == CANONICAL
    assert format_text(CANONICAL, "c.yaml") == (CANONICAL, [])  # formatting twice changes nothing


def test_a_file_that_does_not_load_is_reported_and_not_formatted() -> None:
    formatted, problems = format_text("a: 1\na: 2\n", "dup.yaml")
    assert formatted is None and [(p.line, p.col, p.code) for p in problems] == [(2, 1, "yaml.duplicate-key")]


def test_fmt_check_diff_and_rewrite_from_the_command_line(cli, tmp_path) -> None:
    messy = tmp_path / "cases" / "one.cases.yaml"
    messy.parent.mkdir()
    messy.write_text(MESSY, encoding="utf-8")
    code, out, err = cli("fmt", "--check", str(tmp_path))
    assert (code, err) == (1, "") and out == f"would reformat {messy}\n1 file(s), 1 to reformat\n"
    assert messy.read_text(encoding="utf-8") == MESSY  # --check writes nothing
    code, out, _ = cli("fmt", "--diff", str(messy))
    assert code == 1 and "-    exactly: [vitamin-d-status," in out and "+      exactly:\n" in out
    mode = messy.stat().st_mode
    code, out, _ = cli("fmt", str(tmp_path))
    assert code == 0 and out == f"reformatted {messy}\n1 file(s), 1 reformatted\n"
    assert messy.read_text(encoding="utf-8") == CANONICAL and messy.stat().st_mode == mode
    assert [p.name for p in messy.parent.iterdir()] == ["one.cases.yaml"]  # no temporary left behind
    assert cli("fmt", "--check", str(tmp_path))[0] == 0


def test_fmt_errors_exit_2_with_the_position_and_write_nothing(cli, tmp_path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [1, 2\n", encoding="utf-8")
    code, out, err = cli("fmt", str(broken))
    assert code == 2 and "broken.yaml:2:1: error: yaml.syntax" in err and out.endswith("1 not readable\n")
    assert broken.read_text(encoding="utf-8") == "a: [1, 2\n"
    code, _, err = cli("fmt", str(tmp_path / "missing"))
    assert code == 2 and err == f"guideline fmt: no such file or folder: {tmp_path / 'missing'}\n"


@pytest.mark.parametrize("folder", ["bone-metastases", "pneumonia-severity"])
def test_the_shipped_files_are_formatted(cli, folder: str) -> None:
    code, out, _ = cli("fmt", "--check", str(ROOT / "guidelines" / folder))
    assert code == 0 and out.endswith(" 0 to reformat\n"), out


def test_a_new_scaffold_is_already_formatted(cli, tmp_path) -> None:
    assert cli("new", str(tmp_path / "topic"))[0] == 0
    code, out, _ = cli("fmt", "--check", str(tmp_path / "topic"))
    assert code == 0, out
