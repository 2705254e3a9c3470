"""The CLI: streams, exit codes, formats. Results on stdout, problems on stderr."""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import ROOT, SHIPPED

DEMO = ROOT / "guidelines" / "bone-metastases" / "examples" / "demo-patient.yaml"


def test_evaluate_text_in_french(cli) -> None:
    code, out, err = cli("evaluate", str(SHIPPED), "--facts", str(DEMO), "--date", "2026-11-27")
    assert (code, err) == (0, "")
    assert "Recommandations (17)" in out
    assert "Acide zolédronique 3,3 mg pour une clairance de 42,33 mL/min (Cockcroft-Gault, Tableau 2)" in out
    assert "Dose: cholécalciférol (vitamine D3) 50\u202f000 UI per os toutes les semaines × 8 [ATC A11CC05]" in out


def test_evaluate_json_from_stdin(cli) -> None:
    facts = json.dumps({"bone_metastases": True, "skeletal_event": True, "current_agent": "none",
                        "vitamin_d_25oh": "12 ng/mL"})
    code, out, err = cli("evaluate", str(SHIPPED), "--facts", "-", "--date", "2026-11-27", "--format", "json",
                         "--lang", "en", stdin=facts.encode())
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["lang"] == "en" and data["evaluated_on"] == "2026-11-27"
    assert "start-antiresorptive" in [r["id"] for r in data["recommendations"]]
    assert {u["rule"] for u in data["undetermined"]} >= {"multiple-zoledronic-monthly"}


def test_explain_shows_trace_evidence_and_notes(cli) -> None:
    code, out, _ = cli("evaluate", str(SHIPPED), "--facts", str(DEMO), "--date", "2026-11-27", "--explain",
                       "--lang", "en")
    assert code == 0
    assert "creatinine_clearance = 42.33 mL/min — clearance as given, else Cockcroft-Gault" in out
    assert "Evidence: Combined analysis of denosumab vs zoledronic acid phase III trials" in out
    assert "time_to_first_event_months 26.6 vs 19.4, hr 0.83 [0.76-0.90]" in out
    assert "[vitd-deficiency-threshold]" in out
    code, out, _ = cli("evaluate", str(SHIPPED), "--facts", str(DEMO), "--date", "2026-11-27", "--explain",
                       "--format", "json")
    explain = json.loads(out)["explain"]
    assert explain["evidence"]["splendour"]["figures"]["hr"] == "0.96 [0.78-1.19]"


def test_markdown(cli) -> None:
    code, out, _ = cli("evaluate", str(SHIPPED), "--facts", str(DEMO), "--date", "2026-11-27", "--format", "markdown")
    assert code == 0 and out.startswith("## Traitement osseux")
    assert "- **action** — Traitement anti-résorptif indiqué" in out


def test_bad_facts_exit_2_with_message_on_stderr_only(cli, tmp_path) -> None:
    facts = tmp_path / "f.yaml"
    facts.write_text("age: 12\nsex: X\nvitamin_d_25oh: 18\n")
    code, out, err = cli("evaluate", str(SHIPPED), "--facts", str(facts))
    assert (code, out) == (2, "")
    assert f"{facts}:1:6: error: facts.invalid: age: 12 is outside the plausible range 18 to 120" in err
    assert f"{facts}:2:6: error: facts.invalid: sex: 'X' is not one of female, male" in err
    assert f"{facts}:3:17: error: facts.invalid: vitamin_d_25oh: 18 has no unit" in err
    assert "Traceback" not in err


def test_missing_files_and_bad_usage(cli, tmp_path) -> None:
    code, out, err = cli("evaluate", str(SHIPPED), "--facts", str(tmp_path / "none.yaml"))
    assert (code, out) == (2, "") and "none.yaml: error: file.not-found: no such file" in err
    code, out, err = cli("evaluate", str(tmp_path / "g.yaml"), "--facts", "-")
    assert (code, out) == (2, "") and "file.not-found" in err
    code, out, err = cli("evaluate", str(SHIPPED), "--facts", str(DEMO), "--date", "27/11/2026")
    assert (code, out) == (2, "") and "is not a date" in err
    code, out, err = cli("evaluate", str(SHIPPED), "--facts", str(DEMO), "--lang", "de")
    assert (code, out) == (2, "") and "'de' is not one of fr, en" in err
    code, out, err = cli("frobnicate")
    assert (code, out) == (2, "") and "invalid choice" in err
    code, out, err = cli()
    assert code == 2 and "usage" in err


def test_non_utf8_and_yaml_errors_in_facts(cli, tmp_path) -> None:
    bad = tmp_path / "f.yaml"
    bad.write_bytes(b"age: \xff\n")
    code, out, err = cli("evaluate", str(SHIPPED), "--facts", str(bad))
    assert (code, out) == (2, "") and ":1:6: error: file.encoding" in err
    bad.write_text("age: 70\nage: 71\n")
    code, out, err = cli("evaluate", str(SHIPPED), "--facts", str(bad))
    assert (code, out) == (2, "") and ":2:1: error: yaml.duplicate-key" in err


def test_validate_exit_codes_and_json(cli, tmp_path) -> None:
    code, out, err = cli("validate", str(ROOT / "guidelines"))
    assert code == 0 and out.endswith("2 file(s) checked, 0 error(s)\n")
    broken = tmp_path / "guideline.yaml"
    broken.write_text(SHIPPED.read_text().replace("expr: antiresorptive_indicated and not_started\n",
                                                  "expr: antiresorptive_indicatd and not_started\n"))
    code, out, _ = cli("validate", str(broken))
    assert code == 1 and "expr.unknown-name: unknown name 'antiresorptive_indicatd'" in out
    code, out, _ = cli("validate", "--format", "json", str(broken))
    report = json.loads(out)["files"][0]
    assert report["valid"] is False and report["problems"][0]["code"] == "expr.unknown-name"
    code, _, err = cli("validate", str(tmp_path / "nothing"))
    assert code == 2 and "no such file" in err


def test_test_command(cli, tmp_path) -> None:
    code, out, _ = cli("test", str(ROOT / "guidelines"), "-q", "--min-coverage", "100")
    assert code == 0
    assert "coverage of" in out and ": 100.0% (rules" in out
    assert out.rstrip().splitlines()[-1].endswith(" passed, 0 failed")
    code, out, _ = cli("test", str(ROOT / "guidelines"), "--format", "junit")
    assert code == 0 and out.startswith("<?xml") and 'failures="0"' in out
    code, _, err = cli("test", str(tmp_path))
    assert code == 2 and "no case files" in err


def test_console_script_help_and_version() -> None:
    result = subprocess.run([sys.executable, "-m", "engine", "--version"],
                            check=False, capture_output=True, text=True, cwd=ROOT)
    assert (result.returncode, result.stdout.strip()) == (0, "guideline 0.1.0")
    result = subprocess.run([sys.executable, "-m", "engine", "evaluate", "--help"],
                            check=False, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and "--facts FILE" in result.stdout and result.stderr == ""


def test_every_command_has_help(cli) -> None:
    for command in ("validate", "evaluate", "lint", "test", "show", "new"):
        code, out, err = cli(command, "--help")
        assert (code, err) == (0, ""), command
        assert out.startswith(f"usage: guideline {command}"), command
