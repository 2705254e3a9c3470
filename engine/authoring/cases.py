"""Patient cases: YAML test data run through the real pipeline.

A case file names its guideline and lists cases, each with a one-line story,
facts, an evaluation date and expectations. The same runner serves
``guideline test`` and pytest (``tests/test_cases.py``), so an author and CI
see the same verdicts. Coverage is read from the results' traces: which rules
fired, which table rows were hit, which recommendations were produced.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import Diagnostic, EngineError, FactsError, GuidelineError
from engine.guideline import Guideline, load
from engine.loading import Document, parse_yaml, read_source
from engine.results import Result
from engine.schema import validate_document

__all__ = ["Case", "CaseOutcome", "Coverage", "coverage", "find_case_files", "load_cases", "run_case"]


@dataclass(frozen=True)
class Case:
    """One patient case, with where it is written."""

    file: str
    index: int
    id: str
    story: str
    facts: Mapping[str, Any]
    date: dt.date
    lang: str | None
    expect: Mapping[str, Any]
    guideline_path: Path
    doc: Document = field(repr=False, compare=False)

    @property
    def path(self) -> tuple[Any, ...]:
        """YAML path of the case inside its file."""
        return ("cases", self.index)

    def where(self, *sub: Any) -> str:
        """``file:line:col`` of the case or of one of its expectations."""
        pos = self.doc.position(self.path + sub)
        return f"{self.file}:{pos.line}:{pos.col}"


@dataclass(frozen=True)
class CaseOutcome:
    """Verdict of one case: failures are 'expected X, got Y' lines with a location."""

    case: Case
    failures: tuple[str, ...]
    result: Result | None = None

    @property
    def passed(self) -> bool:
        """True when every expectation held."""
        return not self.failures


def find_case_files(paths: Iterable[str | Path]) -> list[Path]:
    """Case files: ``*.cases.yaml`` files and YAML files in ``cases/`` folders."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            for candidate in sorted(path.rglob("*.yaml")):
                if candidate.name.endswith(".cases.yaml") or candidate.parent.name == "cases":
                    found.append(candidate)
    return found


def load_cases(path: str | Path) -> list[Case]:
    """Read, schema-check and return the cases of one file; raise GuidelineError if malformed."""
    text, problems = read_source(path)
    if text is None:
        raise GuidelineError(problems)
    doc = parse_yaml(text, str(path))
    problems = list(doc.diagnostics)
    if not problems:
        problems = validate_document(doc, "cases.schema.json")
    if problems:
        raise GuidelineError(problems)
    data = doc.data
    guideline_path = (Path(path).parent / data["guideline"]).resolve()
    defaults = data.get("defaults") or {}
    cases = []
    seen: dict[str, int] = {}
    duplicate: list[Diagnostic] = []
    for i, raw in enumerate(data["cases"]):
        if raw["id"] in seen:
            duplicate.append(doc.diagnostic(("cases", i, "id"), "case.duplicate-id",
                                            f"case id '{raw['id']}' is already used (line {seen[raw['id']]})"))
        seen.setdefault(raw["id"], doc.position(("cases", i, "id")).line)
        facts = {**(defaults.get("facts") or {}), **raw.get("facts", {})}
        date_text = raw.get("date") or defaults.get("date")
        cases.append(Case(
            file=str(path), index=i, id=raw["id"], story=raw["story"], facts=facts,
            date=dt.date.fromisoformat(str(date_text)), lang=raw.get("lang") or defaults.get("lang"),
            expect=raw["expect"], guideline_path=guideline_path, doc=doc,
        ))
    if duplicate:
        raise GuidelineError(duplicate)
    return cases


def _same(expected: Any, got: Any) -> bool:
    if isinstance(got, dt.date):
        got = got.isoformat()
    if isinstance(got, tuple):
        got = list(got)
    if isinstance(expected, (int, float)) and not isinstance(expected, bool) and isinstance(got, (int, float)):
        return math.isclose(expected, got, rel_tol=0, abs_tol=1e-9)
    return bool(expected == got)


def run_case(case: Case, guideline: Guideline) -> CaseOutcome:
    """Evaluate one case and compare every expectation."""
    expect = case.expect
    fails: list[str] = []
    try:
        result = guideline.evaluate(case.facts, on=case.date, lang=case.lang, _doc=None)
    except FactsError as exc:
        wanted = expect.get("facts_error")
        if wanted is None:
            return CaseOutcome(case, (f"{case.where()}: unexpected facts error:\n" + exc.format(),))
        messages = " | ".join(d.message for d in exc.diagnostics)
        for fragment in wanted:
            if fragment not in messages:
                fails.append(f"{case.where('expect', 'facts_error')}: expected a facts error containing "
                             f"{fragment!r}, got: {messages}")
        return CaseOutcome(case, tuple(fails))
    except EngineError as exc:
        return CaseOutcome(case, (f"{case.where()}: evaluation failed:\n" + exc.format(),))
    if "facts_error" in expect:
        return CaseOutcome(case, (f"{case.where('expect', 'facts_error')}: expected a facts error, "
                                  f"but the facts were accepted",), result)
    made = result.recommendation_ids()
    for i, rec in enumerate(expect.get("include") or []):
        if rec not in made:
            fails.append(f"{case.where('expect', 'include', i)}: expected recommendation '{rec}', "
                         f"got: {', '.join(made) or 'none'}")
    for i, rec in enumerate(expect.get("exclude") or []):
        if rec in made:
            fails.append(f"{case.where('expect', 'exclude', i)}: recommendation '{rec}' was made but is excluded")
    if "exactly" in expect and sorted(expect["exactly"]) != sorted(made):
        extra = sorted(set(made) - set(expect["exactly"]))
        missing = sorted(set(expect["exactly"]) - set(made))
        fails.append(f"{case.where('expect', 'exactly')}: recommendations differ: missing {missing}, extra {extra}")
    for name, wanted in (expect.get("values") or {}).items():
        if name not in result.values:
            fails.append(f"{case.where('expect', 'values', name)}: no value named '{name}'")
            continue
        got = result.values[name].value
        if not _same(wanted, got):
            fails.append(f"{case.where('expect', 'values', name)}: {name}: expected {wanted!r}, got {got!r}")
    # A case that states exactly its recommendations states exactly its
    # undetermined rules, what each needs, and its borderline values too.
    complete = "exactly" in expect
    undetermined = {u.rule: u.needs for u in result.undetermined}
    expected_undetermined = expect.get("undetermined") or {}
    for rule, needs in expected_undetermined.items():
        if rule not in undetermined:
            fails.append(f"{case.where('expect', 'undetermined', rule)}: expected rule '{rule}' undetermined, "
                         f"it was {result.rules.get(rule, 'not found')}")
            continue
        for fact in needs or []:
            if fact not in undetermined[rule]:
                fails.append(f"{case.where('expect', 'undetermined', rule)}: expected '{rule}' to need '{fact}', "
                             f"it needs {list(undetermined[rule])}")
        extra_needs = sorted(set(undetermined[rule]) - set(needs or []))
        if complete and extra_needs:
            fails.append(f"{case.where('expect', 'undetermined', rule)}: '{rule}' also needs {extra_needs}")
    if complete:
        for rule in sorted(set(undetermined) - set(expected_undetermined)):
            fails.append(f"{case.where('expect')}: rule '{rule}' is undetermined (needs {list(undetermined[rule])}), "
                         "not expected")
    near = [b.name for b in result.borderline]
    if "borderline" in expect or complete:
        wanted_near = expect.get("borderline") or []
        if sorted(set(near)) != sorted(set(wanted_near)):
            fails.append(f"{case.where('expect', 'borderline') if 'borderline' in expect else case.where('expect')}: "
                         f"borderline values: expected {sorted(set(wanted_near))}, got {sorted(set(near))}")
    for rule, state in (expect.get("rules") or {}).items():
        if result.rules.get(rule) != state:
            fails.append(f"{case.where('expect', 'rules', rule)}: rule '{rule}': expected {state}, "
                         f"got {result.rules.get(rule, 'not found')}")
    for table, row in (expect.get("tables") or {}).items():
        if result.tables.get(table, "(no table)") != row:
            fails.append(f"{case.where('expect', 'tables', table)}: table '{table}': expected row {row!r}, "
                         f"got {result.tables.get(table, '(no table)')!r}")
    texts = {r.id: r.text for r in result.recommendations}
    for rec, fragments in (expect.get("text_contains") or {}).items():
        for fragment in [fragments] if isinstance(fragments, str) else fragments:
            if fragment not in texts.get(rec, ""):
                fails.append(f"{case.where('expect', 'text_contains', rec)}: text of '{rec}' should contain "
                             f"{fragment!r}, got {texts.get(rec, '(not made)')!r}")
    for rec, wanted_text in (expect.get("texts") or {}).items():
        if texts.get(rec) != wanted_text:
            fails.append(f"{case.where('expect', 'texts', rec)}: text of '{rec}': expected {wanted_text!r}, "
                         f"got {texts.get(rec, '(not made)')!r}")
    schedules = {r.id: r.schedule for r in result.recommendations}
    for rec, phases in (expect.get("schedules") or {}).items():
        got_phases = schedules.get(rec)
        if got_phases is None:
            fails.append(f"{case.where('expect', 'schedules', rec)}: recommendation '{rec}' was not made")
            continue
        if len(got_phases) != len(phases):
            fails.append(f"{case.where('expect', 'schedules', rec)}: schedule of '{rec}': expected {len(phases)} "
                         f"phase(s), got {len(got_phases)}")
            continue
        for n, (wanted_phase, got_phase) in enumerate(zip(phases, got_phases, strict=True)):
            for key, wanted in wanted_phase.items():
                if not _same(wanted, got_phase.get(key)):
                    fails.append(f"{case.where('expect', 'schedules', rec, n)}: schedule of '{rec}', phase {n + 1}: "
                                 f"{key} expected {wanted!r}, got {got_phase.get(key)!r}")
    doses = {r.id: r.dose for r in result.recommendations}
    for rec, fields in (expect.get("doses") or {}).items():
        dose = doses.get(rec) or {}
        for key, wanted in fields.items():
            if not _same(wanted, dose.get(key)):
                fails.append(f"{case.where('expect', 'doses', rec)}: dose of '{rec}': {key} expected {wanted!r}, "
                             f"got {dose.get(key)!r}")
    return CaseOutcome(case, tuple(fails), result)


@dataclass(frozen=True)
class Coverage:
    """What the cases exercised, and what they did not."""

    rules_total: int
    rules_missed: tuple[str, ...]
    rows_total: int
    rows_missed: tuple[str, ...]
    recommendations_total: int
    recommendations_missed: tuple[str, ...]
    branches_total: int = 0
    branches_missed: tuple[str, ...] = ()

    @property
    def percent(self) -> float:
        """Share of rules, table rows, recommendations and template branches exercised, in percent."""
        total = self.rules_total + self.rows_total + self.recommendations_total + self.branches_total
        missed = (len(self.rules_missed) + len(self.rows_missed) + len(self.recommendations_missed)
                  + len(self.branches_missed))
        return 100.0 if total == 0 else 100.0 * (total - missed) / total

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"percent": round(self.percent, 1), "rules_total": self.rules_total,
                "rules_missed": list(self.rules_missed), "rows_total": self.rows_total,
                "rows_missed": list(self.rows_missed), "recommendations_total": self.recommendations_total,
                "recommendations_missed": list(self.recommendations_missed),
                "branches_total": self.branches_total, "branches_missed": list(self.branches_missed)}


def coverage(guideline: Guideline, results: Iterable[Result]) -> Coverage:
    """Rules fired, table rows hit and recommendations produced across ``results``."""
    g = guideline.compiled
    fired: set[str] = set()
    rows: set[str] = set()
    made: set[str] = set()
    taken: set[str] = set()
    specs = {rec.id: rec for rule in g.rules for rec in rule.then}
    for result in results:
        fired.update(rule for rule, state in result.rules.items() if state == "fired")
        for table, row in result.tables.items():
            for row_id in (row or "").split(","):
                rows.add(f"{table}:{row_id}")
        made.update(result.recommendation_ids())
        env = result.trace
        for rec_id in result.recommendation_ids():
            # Every language's text is rendered for the same patient: a branch
            # is covered when some case takes it.
            for lang, template in specs[rec_id].templates.items():
                taken.update(f"{rec_id} [{lang}] {label}" for label in template.branches_taken(env))
    all_rows = [f"{t.name}:{r.id}" for t in g.tables.values() for r in t.rows]
    all_recs = [rec.id for rule in g.rules for rec in rule.then]
    all_branches = [f"{rec.id} [{lang}] {label}" for rule in g.rules for rec in rule.then
                    for lang, template in rec.templates.items() for label in template.branches]
    return Coverage(
        rules_total=len(g.rules), rules_missed=tuple(r.id for r in g.rules if r.id not in fired),
        rows_total=len(all_rows), rows_missed=tuple(r for r in all_rows if r not in rows),
        recommendations_total=len(all_recs), recommendations_missed=tuple(r for r in all_recs if r not in made),
        branches_total=len(all_branches), branches_missed=tuple(b for b in all_branches if b not in taken),
    )


class GuidelineCache:
    """Loads each guideline once for many case files."""

    def __init__(self) -> None:
        self._loaded: dict[Path, Guideline] = {}

    def get(self, path: Path) -> Guideline:
        """The compiled guideline at ``path``."""
        if path not in self._loaded:
            self._loaded[path] = load(path)
        return self._loaded[path]
