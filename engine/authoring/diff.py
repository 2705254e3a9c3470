"""``guideline diff``: what changed clinically between two versions of a guideline.

Two parts, both built on the compiled guidelines (never on YAML text, so that
reformatting, reordering keys and comments change nothing):

* a structural diff matched by identity -- facts, derived values, tables and
  their rows, rules and their recommendations, notes -- saying *what* changed
  (a condition, an interval, an output, a dose, a word of a text);
* a clinical impact: both versions evaluated on the guideline's patient cases
  and on a generated cohort probing every bound of both versions, listing every
  patient whose recommendations changed, with the bands of values concerned.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import difflib
import itertools
import json
import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.authoring.replace import replace_derived, replace_rule, replace_table
from engine.errors import EngineError, FactsError
from engine.guideline import Guideline
from engine.model import CompiledGuideline, FactSpec
from engine.results import to_json_value
from engine.texts.formatting import format_number

__all__ = ["Change", "DiffReport", "Impact", "diff_guidelines"]


@dataclass(frozen=True)
class Change:
    """One structural change: what (kind, id), how (added/removed/changed) and details."""

    section: str  # metadata | facts | derived | tables | rules | notes | evidence
    id: str
    status: str  # added | removed | changed
    details: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"section": self.section, "id": self.id, "status": self.status, "details": list(self.details)}


@dataclass(frozen=True)
class PatientChange:
    """A patient whose recommendations differ between the versions."""

    source: str  # case id, or a description of the generated patient
    facts: Mapping[str, Any]
    appeared: tuple[str, ...]
    disappeared: tuple[str, ...]
    changed: tuple[str, ...]  # "id: what changed"
    probe: tuple[str, float, str] | None = None  # (fact, canonical value, unit written) for generated ones
    languages: tuple[str, ...] = ()  # for a text-only change: the languages whose wording changed

    @property
    def clinical(self) -> bool:
        """True when a recommendation appears or disappears, or a dose or schedule changes (not only words)."""
        return bool(self.appeared or self.disappeared or any(": text " not in c for c in self.changed))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"patient": self.source, "facts": to_json_value(self.facts), "appeared": list(self.appeared),
                "disappeared": list(self.disappeared), "changed": list(self.changed),
                "kind": "clinical" if self.clinical else "text", "languages": list(self.languages)}


@dataclass
class Impact:
    """Patients evaluated and those whose result changed."""

    case_patients: int = 0
    generated_patients: int = 0
    changes: list[PatientChange] = field(default_factory=list)  # clinical: decisions, doses or schedules differ
    bands: list[str] = field(default_factory=list)
    text_changes: list[PatientChange] = field(default_factory=list)  # only the wording differs
    # Per structural change ("section/id"): the changed patients that this change alone
    # changes (the old version with only that part taken from the new one).
    by_change: dict[str, list[PatientChange]] = field(default_factory=dict)
    bands_by_change: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        languages = sorted({lang for c in self.text_changes for lang in c.languages})
        return {"case_patients": self.case_patients, "generated_patients": self.generated_patients,
                "changed_patients": len(self.changes), "bands": self.bands,
                "patients": [c.to_dict() for c in self.changes],
                "text_changed_patients": len(self.text_changes), "text_languages": languages,
                "by_change": {key: {"clinical": sum(c.clinical for c in found),
                                    "wording": sum(not c.clinical for c in found),
                                    "bands": self.bands_by_change.get(key, [])}
                              for key, found in self.by_change.items()}}


@dataclass
class DiffReport:
    """Everything ``guideline diff`` reports."""

    old_label: str
    new_label: str
    old_version: str
    new_version: str
    changes: list[Change]
    impact: Impact
    bump_needed: str | None  # major | minor | patch | None (no content change)
    version_bumped: bool

    @property
    def missing_bump(self) -> bool:
        """Content changed but the version did not move enough."""
        return self.bump_needed is not None and not self.version_bumped

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"old": {"label": self.old_label, "version": self.old_version},
                "new": {"label": self.new_label, "version": self.new_version},
                "bump_needed": self.bump_needed, "version_bumped": self.version_bumped,
                "changes": [c.to_dict() for c in self.changes], "impact": self.impact.to_dict()}


# --- structural diff ------------------------------------------------------------------


def _norm(tree: ast.AST) -> str:
    """An expression as canonical text: spacing and redundant parentheses do not count."""
    return ast.unparse(tree)


def _text_diff(old: str, new: str) -> str:
    """Word-level diff: [-removed-] {+added+}."""
    a, b = old.split(), new.split()
    out: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            words = a[i1:i2]
            out.append(" ".join(words) if len(words) <= 6 else " ".join(words[:3] + ["…"] + words[-3:]))
        if op in ("delete", "replace"):
            out.append("[-" + " ".join(a[i1:i2]) + "-]")
        if op in ("insert", "replace"):
            out.append("{+" + " ".join(b[j1:j2]) + "+}")
    return " ".join(out)


def _texts(label: str, old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    out = []
    for lang in sorted(set(old) | set(new)):
        a, b = old.get(lang, ""), new.get(lang, "")
        if a != b:
            out.append(f"{label} [{lang}]: {_text_diff(a, b)}")
    return out


def _value(before: Any, after: Any, label: str) -> list[str]:
    return [] if before == after else [f"{label}: {_show(before)} → {_show(after)}"]


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):  # as the guideline writes it, not Python's True/False
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def _matched(old: Mapping[str, Any], new: Mapping[str, Any], section: str,
             compare: Any) -> list[Change]:
    out = []
    for key in old:
        if key not in new:
            out.append(Change(section, key, "removed"))
    for key in new:
        if key not in old:
            out.append(Change(section, key, "added"))
        else:
            details = compare(old[key], new[key])
            if details:
                out.append(Change(section, key, "changed", tuple(details)))
    return out


def _fact_changes(a: FactSpec, b: FactSpec) -> list[str]:
    def units(f: FactSpec) -> list[tuple[str, float, float]]:
        return [(u.name, u.multiply_by, u.divide_by) for u in f.units.units] if f.units else []

    return (_value(a.type, b.type, "type") + _value(units(a), units(b), "units")
            + _value(a.range, b.range, "plausible range") + _value(a.values, b.values, "values")
            + _texts("label", a.label, b.label))


def _derived_changes(a: Any, b: Any) -> list[str]:
    return (_value(_norm(a.expr.tree), _norm(b.expr.tree), "expression") + _value(a.decimals, b.decimals, "decimals")
            + _value(a.unit, b.unit, "unit") + _texts("formula", a.formula, b.formula))


def _row_text(row: Any, table: Any) -> str:
    cells = []
    for cell, inp in zip(row.cells, table.inputs, strict=True):
        unit = f" {inp.unit}" if inp.unit else ""
        cells.append(f"{cell.interval}{unit}" if cell.kind == "interval" else cell.text)
    return " × ".join(cells)


def _table_changes(a: Any, b: Any) -> list[str]:
    out = _value(a.hit, b.hit, "hit policy")
    out += _value([_norm(i.expr.tree) for i in a.inputs], [_norm(i.expr.tree) for i in b.inputs], "inputs")
    rows_a = {r.id: r for r in a.rows}
    rows_b = {r.id: r for r in b.rows}
    for rid, row in rows_a.items():
        if rid not in rows_b:
            out.append(f"row {rid} removed ({_row_text(row, a)} → {_show(dict(row.outputs))})")
            uncovered = _uncovered(row, b)
            if uncovered and all(v is None for v in b.otherwise.values()):
                out.append(f"now no row covers {uncovered}: its outputs are unknown there, and what reads them "
                           "undetermined")
            elif uncovered:
                out.append(f"now no row covers {uncovered}: the otherwise outputs apply there "
                           f"({_show(dict(b.otherwise))})")
    for rid, row in rows_b.items():
        if rid not in rows_a:
            out.append(f"row {rid} added ({_row_text(row, b)} → {_show(dict(row.outputs))})")
            continue
        old = rows_a[rid]
        if _row_text(old, a) != _row_text(row, b):
            out.append(f"row {rid}: {_row_text(old, a)} → {_row_text(row, b)}")
        for key in dict.fromkeys(list(old.outputs) + list(row.outputs)):
            if old.outputs.get(key) != row.outputs.get(key):
                out.append(f"row {rid} ({_row_text(row, b)}): {key} {_show(old.outputs.get(key))} → "
                           f"{_show(row.outputs.get(key))}")
    out += _value(dict(a.otherwise), dict(b.otherwise), "otherwise")
    return out


def _uncovered(row: Any, table: Any) -> str:
    """The part of a removed single-input row's interval no row of ``table`` covers, in words ("" if covered)."""
    if len(row.cells) != 1 or row.cells[0].kind != "interval" or row.cells[0].interval is None:
        return ""
    gone = row.cells[0].interval
    probes = [gone.low, gone.high, (gone.low + gone.high) / 2] if not (math.isinf(gone.low) or math.isinf(gone.high)) \
        else [gone.high - 1 if math.isinf(gone.low) else gone.low + 1]
    values = [v for v in probes if v in gone]
    if not values or any(any(r.cells[0].matches(v) for r in table.rows) for v in values):
        return ""
    unit = f" {table.inputs[0].unit}" if table.inputs[0].unit else ""
    return f"{gone}{unit}"


def _rule_changes(a: Any, b: Any) -> list[str]:
    out = _value(_norm(a.when.tree), _norm(b.when.tree), "condition") + _value(dict(a.source), dict(b.source), "source")
    out += _value(a.notes, b.notes, "notes")
    recs_a = {r.id: r for r in a.then}
    recs_b = {r.id: r for r in b.then}
    for rid in recs_a.keys() - recs_b.keys():
        out.append(f"recommendation {rid} removed")
    for rid, rec in recs_b.items():
        if rid not in recs_a:
            out.append(f"recommendation {rid} added")
            continue
        old = recs_a[rid]
        out += [f"{rid}: {d}" for d in _value(old.kind, rec.kind, "kind") + _value(old.strength, rec.strength, "strength")
                + _value(to_json_value(old.dose), to_json_value(rec.dose), "dose")
                + _value(to_json_value(old.schedule), to_json_value(rec.schedule), "schedule")
                + _value(old.evidence, rec.evidence, "evidence")
                + _texts("text", {k: t.text for k, t in old.templates.items()},
                         {k: t.text for k, t in rec.templates.items()})]
    return out


def structural_diff(a: CompiledGuideline, b: CompiledGuideline) -> list[Change]:
    """Every change from ``a`` to ``b``, matched by id."""
    meta = (_value(a.version, b.version, "version") + _value(a.status, b.status, "status")
            + _value(a.effective_date, b.effective_date, "effective date") + _texts("title", a.title, b.title))
    changes = [Change("metadata", a.id, "changed", tuple(meta))] if meta else []
    changes += _matched(a.facts, b.facts, "facts", _fact_changes)
    changes += _matched(a.derived, b.derived, "derived", _derived_changes)
    changes += _matched(a.tables, b.tables, "tables", _table_changes)
    changes += _matched({r.id: r for r in a.rules}, {r.id: r for r in b.rules}, "rules", _rule_changes)
    changes += _matched({n["id"]: n for n in a.notes}, {n["id"]: n for n in b.notes}, "notes",
                        lambda x, y: _texts("text", x["text"], y["text"]) + _texts("decision", x["decision"],
                                                                                   y["decision"]))
    changes += _matched(dict(a.evidence), dict(b.evidence), "evidence",
                        lambda x, y: [] if to_json_value(x) == to_json_value(y) else ["content changed"])
    return changes


# --- clinical impact -------------------------------------------------------------------


def _bounds(g: CompiledGuideline) -> dict[str, set[float]]:
    """Per fact or derived name, the constants it is compared with (canonical units)."""
    found: dict[str, set[float]] = {}
    for table in g.tables.values():
        for i, inp in enumerate(table.inputs):
            name = inp.expr.text.strip()
            for row in table.rows:
                cell = row.cells[i]
                if cell.kind == "interval":
                    for x in (cell.interval.low, cell.interval.high):  # type: ignore[union-attr]
                        if not math.isinf(x):
                            found.setdefault(name, set()).add(x)
    exprs = [r.when for r in g.rules] + [d.expr for d in g.derived.values()]
    for expr in exprs:
        for node in ast.walk(expr.tree):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                names = [o.id for o in operands if isinstance(o, ast.Name)]
                consts = [o.value for o in operands if isinstance(o, ast.Constant)
                          and isinstance(o.value, (int, float)) and not isinstance(o.value, bool)]
                for name in names:
                    found.setdefault(name, set()).update(float(c) for c in consts)
    return found


def _probe_facts(g: CompiledGuideline, bounds: dict[str, set[float]]) -> dict[str, list[float]]:
    """Numeric facts to probe and their values: below, at and above each bound (0.1 apart)."""
    probes: dict[str, set[float]] = {}
    for name, spec in g.facts.items():
        if spec.type not in ("number", "integer", "quantity"):
            continue
        step = 1.0 if spec.type == "integer" else 0.1
        for bound in bounds.get(name, ()):
            for x in (bound - step, bound, bound + step):
                low, high = spec.range
                if (low is None or x >= low) and (high is None or x <= high):
                    probes.setdefault(name, set()).add(round(x, 6))
    return {name: sorted(values) for name, values in probes.items()}


def _all_bounds(old: CompiledGuideline, new: CompiledGuideline) -> dict[str, set[float]]:
    """Bounds of both versions; a derived value given directly by a fact when known
    (``fact if known(fact) else ...``, e.g. a measured clearance) lends its bounds to that fact."""
    bounds: dict[str, set[float]] = {}
    for g in (old, new):
        for name, values in _bounds(g).items():
            bounds.setdefault(name, set()).update(values)
    for g in (old, new):
        for name, spec in g.derived.items():
            tree = spec.expr.tree.body
            if isinstance(tree, ast.IfExp) and isinstance(tree.body, ast.Name) and tree.body.id in g.facts:
                bounds.setdefault(tree.body.id, set()).update(bounds.get(name, ()))
    return bounds


def _quantity(spec: FactSpec, canonical: float, unit_index: int) -> tuple[Any, str]:
    """The probe value written in one of the fact's units."""
    if spec.type != "quantity" or spec.units is None:
        return (int(canonical) if spec.type == "integer" else canonical), ""
    unit = spec.units.units[unit_index % len(spec.units.units)]
    written = round(spec.units.from_canonical(canonical, unit), 6)
    return {"value": written, "unit": unit.name}, unit.name


@dataclass(frozen=True)
class _Patient:
    source: str
    facts: Mapping[str, Any]
    day: dt.date
    probe: tuple[str, float, str] | None = None


def _cohort(new: Guideline, baselines: list[tuple[str, dict[str, Any], dt.date]],
            bounds: dict[str, set[float]]) -> list[_Patient]:
    """Deterministic boundary cohort: each baseline, varied one numeric fact at a time
    around every bound of either version, in every accepted unit."""
    probes = _probe_facts(new.compiled, bounds)
    patients = []
    for (label, base, day), (fact, values) in itertools.product(baselines, probes.items()):
        spec = new.compiled.facts.get(fact)
        if spec is None:
            continue
        units = len(spec.units.units) if spec.units else 1
        for value in values:
            for u in range(units):
                written, unit = _quantity(spec, value, u)
                patients.append(_Patient(f"{label} with {fact} = {_written(written)}", {**base, fact: written}, day,
                                         (fact, value, unit)))
    return patients


def _domain_baselines(g: CompiledGuideline, day: dt.date, count: int = 24,
                      seed: int = 7) -> list[tuple[str, dict[str, Any], dt.date]]:
    """Patients drawn from the guideline's own fact declarations, every fact known (deterministic).

    They make a diff of two loose files reach the guideline's decisions
    without any case file: the boundary probes then vary one number at a time
    around each of them. Booleans and enum values alternate so that every
    value is met; numbers fall mostly in the lower part of their range, where
    clinical thresholds are; dates within the three years before ``day``.
    """
    rng = random.Random(seed)
    patients = []
    for k in range(count):
        facts: dict[str, Any] = {}
        for i, (name, spec) in enumerate(g.facts.items()):
            if spec.type == "boolean":
                facts[name] = bool((k >> (i % 5)) & 1) if k < 32 else rng.random() < 0.5
            elif spec.type == "enum" and spec.values:
                facts[name] = spec.values[(k + i) % len(spec.values)]
            elif spec.type == "list" and spec.values:
                facts[name] = [v for v in spec.values if rng.random() < 0.3]
            elif spec.type == "date":
                facts[name] = (day - dt.timedelta(days=rng.randint(0, 3 * 365))).isoformat()
            elif spec.type in ("number", "integer", "quantity"):
                low = 0.0 if spec.range[0] is None else float(spec.range[0])
                high = low + 1000.0 if spec.range[1] is None else float(spec.range[1])
                value = min(high, max(low, rng.triangular(low, high, low + (high - low) * 0.1)))
                facts[name] = round(value) if spec.type == "integer" else round(value, 1)
                if spec.type == "quantity" and spec.units is not None:
                    facts[name] = {"value": facts[name], "unit": spec.units.canonical}
        patients.append((f"guideline patient {k + 1}", facts, day))
    return patients


def _written(value: Any) -> str:
    if isinstance(value, dict):
        return f"{format_number(value['value'], 'en')} {value['unit']}"
    return format_number(value, "en") if isinstance(value, (int, float)) else str(value)


Outcome = dict[str, tuple[dict[str, str], Any, Any]]  # recommendation id -> (text by language, dose, schedule)


def _outcome(g: Guideline, patient: _Patient, languages: tuple[str, ...]) -> Outcome | None:
    out: Outcome = {}
    for lang in languages:
        if lang not in g.languages:
            continue
        try:
            result = g.evaluate(patient.facts, on=patient.day, lang=lang)
        except (FactsError, EngineError):
            return None
        for r in result.recommendations:
            out.setdefault(r.id, ({}, to_json_value(r.dose), to_json_value(r.schedule)))[0][lang] = r.text
    return out


def _compare(patient: _Patient, before: Outcome, after: Outcome) -> PatientChange | None:
    appeared = tuple(k for k in after if k not in before)
    disappeared = tuple(k for k in before if k not in after)
    changed = []
    languages: set[str] = set()
    for key in sorted(before.keys() & after.keys()):
        (t1, d1, s1), (t2, d2, s2) = before[key], after[key]
        if d1 != d2:
            changed.append(f"{key}: dose {_dose_delta(d1, d2)}")
        if s1 != s2:
            changed.append(f"{key}: schedule changed")
        for lang in sorted(t1.keys() & t2.keys()):
            if t1[lang] != t2[lang]:
                languages.add(lang)
                changed.append(f"{key}: text ({lang}) {_text_diff(t1[lang], t2[lang])}")
    if not (appeared or disappeared or changed):
        return None
    return PatientChange(patient.source, patient.facts, appeared, disappeared, tuple(changed), patient.probe,
                         tuple(sorted(languages)))


def _dose_delta(a: Any, b: Any) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        parts = [f"{k} {_show(a.get(k))} → {_show(b.get(k))}" for k in dict.fromkeys(list(a) + list(b))
                 if a.get(k) != b.get(k)]
        return ", ".join(parts)
    return f"{_show(a)} → {_show(b)}"


def _bands(changes: list[PatientChange], cohort: list[_Patient], bounds: set[tuple[str, float]],
           refused: set[str]) -> list[str]:
    """Per probed fact, the runs of values whose result changed *because of that fact*.

    Within one baseline patient, a fact's probes that all changed (or none did)
    say nothing about that fact; only a baseline where some probe values
    changed and others did not marks a band. Bands are unions over baselines.
    """
    changed = {(c.source, c.probe[0], c.probe[1]) for c in changes if c.probe}
    series: dict[tuple[str, str], dict[float, bool]] = {}
    for patient in cohort:
        if patient.probe and patient.source not in refused:
            fact, value, _ = patient.probe
            base = patient.source.split(" with ", 1)[0]
            flags = series.setdefault((base, fact), {})
            flags[value] = flags.get(value, False) or (patient.source, fact, value) in changed
    marked: dict[str, dict[float, bool]] = {}
    for (_, fact), flags in series.items():
        if len(set(flags.values())) == 2:
            into = marked.setdefault(fact, {})
            for value, flag in flags.items():
                into[value] = into.get(value, False) or flag
    out = []
    for fact, flags in sorted(marked.items()):
        values = sorted(flags)
        i = 0
        while i < len(values):
            if not flags[values[i]]:
                i += 1
                continue
            j = i
            while j + 1 < len(values) and flags[values[j + 1]]:
                j += 1
            low, last = values[i], values[j]
            if (fact, last) in bounds or j + 1 == len(values):
                band = f"[{format_number(low, 'en')}, {format_number(last, 'en')}]"
            else:
                band = f"[{format_number(low, 'en')}, {format_number(values[j + 1], 'en')})"
            out.append(f"{fact} {band}")
            i = j + 1
    return out


def _hybrid(old: CompiledGuideline, new: CompiledGuideline, change: Change) -> CompiledGuideline | None:
    """The old version with only the part ``change`` names taken from the new one (None: not separable)."""
    if change.section == "tables" and change.status == "changed":
        return replace_table(old, new.tables[change.id])
    if change.section == "derived" and change.status == "changed":
        return replace_derived(old, new.derived[change.id])
    if change.section == "rules":
        before = next((r for r in old.rules if r.id == change.id), None)
        after = next((r for r in new.rules if r.id == change.id), None)
        if before is not None:
            return replace_rule(old, before, after)
        if after is not None:  # added: at the end of the old rules
            return dataclasses.replace(old, rules=(*old.rules, after))
    return None


def _attribute(old: Guideline, new: Guideline, changes: list[Change], impact: Impact, generated: list[_Patient],
               reached: list[tuple[_Patient, Outcome]], languages: tuple[str, ...],
               bound_points: set[tuple[str, float]], refused: set[str]) -> None:
    """For each separable change, which of the changed patients (``reached``, with their outcome under
    the old version) it changes on its own, and their bands."""
    if not reached:
        return
    for change in changes:
        try:
            hybrid = _hybrid(old.compiled, new.compiled, change)
            if hybrid is None:
                continue
            alone = Guideline(hybrid)
        except (EngineError, ValueError, KeyError, TypeError):
            continue  # the part reads something only the new version has: not separable
        key = f"{change.section}/{change.id}"
        found: list[PatientChange] = []
        for patient, before in reached:
            after = _outcome(alone, patient, languages)
            if after is not None:
                difference = _compare(patient, before, after)
                if difference is not None:
                    found.append(difference)
        if found:
            impact.by_change[key] = found
            impact.bands_by_change[key] = _bands([c for c in found if c.clinical], generated, bound_points, refused)


def _distinct(cases: Iterable[tuple[str, dict[str, Any], dt.date]]) -> list[tuple[str, dict[str, Any], dt.date]]:
    """The cases, each set of facts and date once (pinned-text cases repeat other cases' facts)."""
    seen: set[str] = set()
    out = []
    for label, facts, day in cases:
        key = json.dumps([to_json_value(facts), day.isoformat()], sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            out.append((label, facts, day))
    return out


def diff_guidelines(old: Guideline, new: Guideline, *, old_label: str, new_label: str,
                    cases: Iterable[tuple[str, dict[str, Any], dt.date]] = (),
                    old_data: Mapping[str, Any] | None = None, new_data: Mapping[str, Any] | None = None
                    ) -> DiffReport:
    """Structural diff and clinical impact of going from ``old`` to ``new``."""
    from engine.authoring.lint.versioning import bump_check

    changes = structural_diff(old.compiled, new.compiled)
    impact = Impact()
    case_list = _distinct(cases)
    day = case_list[0][2] if case_list else dt.date.today()
    # The guideline's own patients always, the cases as a bonus: a diff of two loose files
    # reaches the decisions too.
    baselines = _domain_baselines(new.compiled, day) + [(f"case {label}", facts, d) for label, facts, d in case_list]
    patients = [_Patient(f"case {label}", facts, d) for label, facts, d in case_list]
    impact.case_patients = len(patients)
    bounds = _all_bounds(old.compiled, new.compiled)
    generated = _cohort(new, baselines, bounds)
    impact.generated_patients = len(generated)
    languages = tuple(dict.fromkeys(new.languages + old.languages))
    refused: set[str] = set()
    reached: list[tuple[_Patient, Outcome]] = []  # the changed patients, with their outcome under the old version
    for patient in patients + generated:
        before, after = _outcome(old, patient, languages), _outcome(new, patient, languages)
        if before is None or after is None:
            refused.add(patient.source)
            continue
        change = _compare(patient, before, after)
        if change is not None:
            (impact.changes if change.clinical else impact.text_changes).append(change)
            reached.append((patient, before))
    bound_points = {(name, value) for name, values in bounds.items() for value in values}
    impact.bands = _bands(impact.changes, generated, bound_points, refused)
    _attribute(old, new, changes, impact, generated, reached, languages, bound_points, refused)
    check = bump_check(dict(old_data or {}), dict(new_data or {})) if old_data is not None else None
    bump = check.needed if check else None
    bumped = check is None or check.enough
    if check is not None and not check.enough:  # in the words of lint's version checks
        said = (f"content changed but version is still {new.version}: a {bump} change, set version: {check.wanted}"
                if check.new == check.old else
                f"a {bump} change needs at least {check.wanted}, version is {new.version}")
        changes.insert(0, Change("metadata", "version", "changed", (said,)))
    return DiffReport(old_label, new_label, old.version, new.version, changes, impact, bump, bumped)
