"""Stage 3 -- compile: validated data to a frozen, evaluable guideline.

Expressions are parsed and compiled once, tables become lists of matchers,
templates become compiled Jinja, and derived values and tables are put in
dependency order (a cycle is an error). Every problem found is collected with
its ``file:line:col``; nothing is compiled unless there are none.
"""

from __future__ import annotations

import ast
import datetime as dt
import itertools
import math
from collections.abc import Iterable, Mapping
from typing import Any

from engine._compile_tables import TableCompiler
from engine.errors import Diagnostic, did_you_mean
from engine.language.expressions import CompiledExpression, NameInfo
from engine.language.units import Unit, UnitSystem
from engine.limits import Limits
from engine.loading import Document
from engine.model import (
    CompiledGuideline,
    DerivedSpec,
    FactSpec,
    FrozenDict,
    RecommendationSpec,
    RuleSpec,
    TableSpec,
    freeze,
)
from engine.texts.templates import CompiledTemplate, compile_template

__all__ = ["compile_document", "iter_names"]

_FACT_TYPES = {"boolean": "boolean", "number": "number", "integer": "number", "quantity": "number",
               "enum": "enum", "list": "list", "date": "date"}
# What each FHIR binding element can give: element -> fact types it can fill.
_FHIR_ELEMENTS: dict[str, dict[str, tuple[str, ...]]] = {
    "Observation": {"value": ("quantity", "number", "integer", "boolean")},
    "Patient": {"gender": ("enum",), "age": ("integer", "number")},
    "Condition": {"present": ("boolean",), "onset": ("date",)},
    "MedicationStatement": {"agent": ("enum",), "start": ("date",)},
    "Procedure": {"present": ("boolean",), "date": ("date",)},
}
_DERIVED_TYPES = {"boolean": "boolean", "number": "number", "quantity": "number", "enum": "enum", "date": "date",
                  "score": "score"}


def _iteration_bound(info: NameInfo) -> int | None:
    """How many items a text's ``{% for %}`` over this name can go through (None: not known).

    A list holds each declared value at most once; an enum is a string, iterated
    by character; booleans, numbers and dates cannot be iterated at all.
    """
    if info.type == "list" and info.values:
        return len(info.values)
    if info.type == "enum" and info.values:
        return max(len(v) for v in info.values)
    if info.type in ("boolean", "number", "date"):
        return 0
    return None


# --- the compiler ------------------------------------------------------------------


class _Compiler(TableCompiler):
    """Compiles each section of a guideline document (tables: see TableCompiler)."""

    def compile(self) -> CompiledGuideline | None:
        data = self.data
        facts = self.facts({k: v for k, v in self.section("facts", dict).items() if self.usable(("facts", k), v)})
        derived_raw = {k: v for k, v in self.section("derived", dict).items() if self.usable(("derived", k), v)}
        tables_all = self.section("tables", dict)
        # Declare every name first, so that order in the file does not matter.
        for name, spec in derived_raw.items():
            kind = _DERIVED_TYPES.get(spec.get("type"), "any")
            self.declare(name, NameInfo(kind, unit=spec.get("unit")), ("derived", name))
        for tname, table in tables_all.items():
            outputs = table.get("outputs") if isinstance(table, dict) else None
            for out in outputs if isinstance(outputs, dict) else {}:
                info = self.output_info(table, out) if self.intact(("tables", tname)) else NameInfo("any")
                self.declare(out, info, ("tables", tname, "outputs", out))
        tables_raw = {k: v for k, v in tables_all.items() if isinstance(v, dict) and self.intact(("tables", k))}
        derived = {name: self.derived(name, spec) for name, spec in derived_raw.items()}
        tables = {name: self.table(name, spec, facts) for name, spec in tables_raw.items()}
        evidence = self.section("evidence", dict)
        notes = [n for i, n in enumerate(self.section("notes", list)) if self.usable(("notes", i), n)]
        note_ids = {n.get("id") for n in notes}
        rules_raw = [(i, r) for i, r in enumerate(self.section("rules", list)) if self.usable(("rules", i), r)]
        rules = self.rules(rules_raw, evidence, note_ids)
        self.check_notes(notes)
        plan = self.order(derived, tables)
        if self.broken:
            return None
        if self.errors or plan is None:
            return None
        derived_f, tables_f, rules_f = self.with_fact_closure(facts, derived, tables, rules)
        output_units = {out: unit for t in tables_f.values() for out, unit in t.outputs.items()}
        output_units.update({d.name: d.unit for d in derived_f.values()})
        return CompiledGuideline(
            file=self.doc.file,
            id=data["id"], version=data["version"], status=data["status"],
            title=self.text(("title",), data.get("title")),
            languages=self.languages,
            effective_date=_date(data.get("effective_date")),
            source=freeze(data.get("source") or {}),
            facts=FrozenDict(facts),
            derived=FrozenDict(derived_f),
            tables=FrozenDict(tables_f),
            plan=tuple(derived_f[n] if n in derived_f else tables_f[n] for n in plan),
            rules=tuple(rules_f),
            notes=freeze(data.get("notes") or []),
            not_encoded=freeze(data.get("not_encoded") or []),
            evidence=freeze(evidence),
            output_units=FrozenDict(output_units),
            warnings=tuple(sorted(self.warnings)),
            content_hash=self.content_hash,
            thresholds=FrozenDict(_thresholds(facts, derived_f, tables_f, rules_f)),
        )

    def facts(self, raw: Mapping[str, Any]) -> dict[str, FactSpec]:
        out: dict[str, FactSpec] = {}
        for name, spec in raw.items():
            path = ("facts", name)
            kind = spec["type"]
            values = tuple(spec.get("values") or ())
            self.declare(name, NameInfo(_FACT_TYPES[kind], values, spec.get("unit")), path)
            units = None
            if kind == "quantity":
                alternatives = [Unit(spec["unit"])]
                for i, alt in enumerate(spec.get("units") or []):
                    if alt["unit"] in [u.name for u in alternatives]:
                        self.error(path + ("units", i, "unit"), "unit.duplicate", f"unit '{alt['unit']}' is listed twice")
                    alternatives.append(Unit(alt["unit"], alt.get("multiply_by", 1.0), alt.get("divide_by", 1.0)))
                units = UnitSystem(spec["unit"], tuple(alternatives))
            elif spec.get("unit") or spec.get("units"):
                self.error(path + ("unit",), "fact.unit-not-quantity", f"only quantity facts have units ({name} is {kind})")
            rng = spec.get("range") or {}
            low, high = rng.get("min"), rng.get("max")
            if low is not None and high is not None and low > high:
                self.error(path + ("range",), "fact.range", f"range min {low} is above max {high}")
            labels = spec.get("value_labels") or {}
            for value in labels:
                if value not in values:
                    self.error(path + ("value_labels", value), "fact.unknown-value",
                               f"'{value}' is not one of the values of {name}", key=True)
            out[name] = FactSpec(
                name=name, type=kind, label=self.text(path + ("label",), spec.get("label")),
                description=self.text(path + ("description",), spec.get("description")),
                units=units, range=(low, high), values=values, value_labels=freeze(labels),
                allow_future=bool(spec.get("allow_future", False)),
                codes=freeze(spec.get("codes") or []), where=self.where(path),
                tolerance=self.tolerance(path, spec, kind in ("number", "integer", "quantity")),
                fhir=self.fhir_binding(path, spec, kind, values, units),
            )
        return out

    def fhir_binding(self, path: tuple[Any, ...], spec: Mapping[str, Any], kind: str, values: tuple[str, ...],
                     units: UnitSystem | None) -> Mapping[str, Any] | None:
        """The fact's FHIR binding, checked against the fact's type, values and units."""
        binding = spec.get("fhir")
        if binding is None:
            return None
        bpath = path + ("fhir",)
        resource, element = binding["resource"], binding["element"]
        kinds = _FHIR_ELEMENTS[resource].get(element)
        if kinds is None:
            self.error(bpath + ("element",), "fhir.binding", f"{resource} has no element '{element}' here",
                       "elements: " + ", ".join(_FHIR_ELEMENTS[resource]))
            return None
        if kind not in kinds:
            self.error(bpath + ("element",), "fhir.binding",
                       f"{resource}.{element} gives a {'/'.join(kinds)}, not a {kind} fact")
        if resource in ("Observation", "Condition", "Procedure") and not (binding.get("codes") or spec.get("codes")):
            self.error(bpath, "fhir.binding", f"a {resource} binding needs codes", "add codes, or codes to the fact")
        if resource == "MedicationStatement" and not binding.get("agents"):
            self.error(bpath, "fhir.binding", "a MedicationStatement binding needs agents (value -> ATC codes)")
        for value in binding.get("agents") or {}:
            if element == "agent" and value not in values:
                self.error(bpath + ("agents", value), "fhir.binding", f"'{value}' is not a value of this fact",
                           did_you_mean(value, values, "values: " + ", ".join(values)), key=True)
        absent = binding.get("when_absent")
        if absent is not None and not ((kind == "boolean" and isinstance(absent, bool))
                                       or (kind == "enum" and absent in values)):
            self.error(bpath + ("when_absent",), "fhir.binding", f"{absent!r} is not a value of this {kind} fact")
        for code, unit in (binding.get("ucum") or {}).items():
            if units is None or units.find(unit) is None:
                self.error(bpath + ("ucum", code), "fhir.binding", f"'{unit}' is not a declared unit of this fact")
        return FrozenDict(freeze(dict(binding)))

    def tolerance(self, path: tuple[Any, ...], spec: Mapping[str, Any], numeric: bool) -> float | None:
        """The declared tolerance, refused on anything but a number."""
        value = spec.get("tolerance")
        if value is not None and not numeric:
            self.error(path + ("tolerance",), "tolerance.not-number", "only numbers have a tolerance",
                       "remove it, or declare the value as a number or a quantity")
            return None
        return None if value is None else float(value)

    def derived(self, name: str, spec: Mapping[str, Any]) -> DerivedSpec | None:
        path = ("derived", name)
        kind = spec["type"]
        if kind == "quantity" and not spec.get("unit"):
            self.error(path, "derived.unit", f"quantity '{name}' needs a unit")
        if spec.get("decimals") is not None and kind not in ("number", "quantity"):
            self.error(path + ("decimals",), "derived.decimals", "decimals only apply to numbers")
        expr = self.expression(path + ("expr",), spec["expr"], _DERIVED_TYPES[kind] if kind != "enum" else None)
        if expr is None:
            return None
        return DerivedSpec(
            name=name, type=kind, expr=expr, unit=spec.get("unit"), decimals=spec.get("decimals"),
            label=self.text(path + ("label",), spec.get("label")),
            formula=self.text(path + ("formula",), spec.get("formula")), where=self.where(path + ("expr",)),
            tolerance=self.tolerance(path, spec, kind in ("number", "quantity")),
            display_decimals=spec.get("display_decimals", spec.get("decimals")),
        )

    def rules(self, raw: list[tuple[int, Mapping[str, Any]]], evidence: Mapping[str, Any],
              note_ids: set[Any]) -> list[RuleSpec]:
        out: list[RuleSpec] = []
        seen_rules: dict[str, int] = {}
        seen_recs: dict[str, int] = {}
        available = set(self.scope)
        lengths = {name: _iteration_bound(info) for name, info in self.scope.items()}
        for i, rule in raw:
            path = ("rules", i)
            rid = rule["id"]
            if rid in seen_rules:
                self.error(path + ("id",), "rule.duplicate-id", f"rule id '{rid}' is already used (line {seen_rules[rid]})")
            seen_rules.setdefault(rid, self.doc.position(path + ("id",)).line)
            when = self.expression(path + ("when",), rule["when"], "boolean")
            recs = []
            for j, rec in enumerate(rule["then"]):
                rpath = path + ("then", j)
                if rec["id"] in seen_recs:
                    self.error(rpath + ("id",), "recommendation.duplicate-id",
                               f"recommendation id '{rec['id']}' is already used (line {seen_recs[rec['id']]})")
                seen_recs.setdefault(rec["id"], self.doc.position(rpath + ("id",)).line)
                recs.append(self.recommendation(rpath, rec, available, lengths, evidence))
            for k, note in enumerate(rule.get("notes") or []):
                if note not in note_ids:
                    self.error(path + ("notes", k), "rule.unknown-note", f"no note with id '{note}'")
            made = [r for r in recs if r is not None]
            if when is None or len(made) != len(recs):
                continue
            out.append(RuleSpec(
                id=rid, title=self.text(path + ("title",), rule.get("title")), when=when,
                then=tuple(made), source=freeze(rule.get("source") or {}), notes=tuple(rule.get("notes") or ()),
                statements=tuple(rule.get("statements") or ()), where=self.where(path + ("when",)),
            ))
        return out

    def recommendation(self, path: tuple[Any, ...], rec: Mapping[str, Any], available: set[str],
                       lengths: Mapping[str, int | None], evidence: Mapping[str, Any]) -> RecommendationSpec | None:
        texts = self.text(path + ("text",), rec["text"])
        templates: dict[str, CompiledTemplate] = {}
        for lang, text in texts.items():
            tpath = path + ("text", lang)
            compiled, problems = compile_template(text, lang, available, self.limits.max_template_chars,
                                                  lengths=lengths, limits=self.limits, kinds=self.kinds)
            folded = self.doc.position(tpath).style == ">"
            for p in problems:
                # a folded text (>) reads its block's lines as one: the column is walked across them
                line, col = self.locate(tpath, p.line, p.col, folded=folded and p.line == 1)
                self.error_at(tpath, line, col, p.code, p.message, p.hint)
            if compiled is not None:
                templates[lang] = compiled
        dose_exprs: dict[str, CompiledExpression] = {}
        dose = rec.get("dose")
        if dose:
            for key in ("amount", "amount_max"):
                if isinstance(dose.get(key), str):
                    compiled_expr = self.expression(path + ("dose", key), dose[key], "number")
                    if compiled_expr is not None:
                        dose_exprs[key] = compiled_expr
            self.text(path + ("dose", "drug", "name"), dose["drug"]["name"])
        for k, ev in enumerate(rec.get("evidence") or []):
            if ev not in evidence:
                self.error(path + ("evidence", k), "recommendation.unknown-evidence", f"no evidence with id '{ev}'",
                           did_you_mean(ev, evidence, "declare it under evidence"))
        if len(templates) != len(texts):
            return None
        return RecommendationSpec(
            id=rec["id"], kind=rec["kind"], templates=FrozenDict(templates), strength=rec.get("strength"),
            dose=freeze(dose) if dose else None, dose_exprs=FrozenDict(dose_exprs),
            schedule=freeze(rec.get("schedule") or []), evidence=tuple(rec.get("evidence") or ()),
            source=freeze(rec.get("source") or {}), where=self.where(path),
        )

    def check_notes(self, notes: list[Mapping[str, Any]]) -> None:
        seen: set[str] = set()
        for i, note in enumerate(notes):
            if note["id"] in seen:
                self.error(("notes", i, "id"), "note.duplicate-id", f"note id '{note['id']}' is already used")
            seen.add(note["id"])
            self.text(("notes", i, "text"), note.get("text"))
            self.text(("notes", i, "decision"), note.get("decision"))

    def order(self, derived: Mapping[str, DerivedSpec | None], tables: Mapping[str, TableSpec | None]) -> list[str] | None:
        """Derived values and tables in dependency order; a cycle is an error."""
        produces: dict[str, str] = {name: name for name in derived}
        for tname, table in tables.items():
            for out in table.outputs if table else {}:
                produces[out] = tname
        deps: dict[str, set[str]] = {}
        for name, spec in derived.items():
            deps[name] = {produces[n] for n in spec.expr.names if n in produces} if spec else set()
        for tname, table in tables.items():
            deps[tname] = {produces[n] for i in table.inputs for n in i.expr.names if n in produces} if table else set()
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(node: str, stack: list[str]) -> bool:
            if state.get(node) == 2:
                return True
            if state.get(node) == 1:
                cycle = stack[stack.index(node):] + [node]
                section = "derived" if node in derived else "tables"
                self.error((section, node), "name.cycle", "dependency cycle: " + " -> ".join(cycle),
                           "a value cannot depend on itself, even through others", key=True)
                return False
            state[node] = 1
            for dep in sorted(deps[node]):
                if not visit(dep, stack + [node]):
                    state[node] = 2
                    return False
            state[node] = 2
            order.append(node)
            return True

        ok = all(visit(node, []) for node in sorted(deps, key=lambda n: self.doc.position(
            ("derived", n) if n in derived else ("tables", n)).line))
        return order if ok else None

    def with_fact_closure(self, facts: Mapping[str, FactSpec], derived: Mapping[str, DerivedSpec | None],
                          tables: Mapping[str, TableSpec | None], rules: list[RuleSpec]
                          ) -> tuple[dict[str, DerivedSpec], dict[str, TableSpec], list[RuleSpec]]:
        """Attach to each part the set of facts it depends on (for 'needs' in results)."""
        closure: dict[str, frozenset[str]] = {name: frozenset({name}) for name in facts}
        closure["today"] = frozenset()
        out_derived: dict[str, DerivedSpec] = {}
        out_tables: dict[str, TableSpec] = {}
        pending = list(self.order(derived, tables) or [])
        for node in pending:
            if node in derived:
                spec = derived[node]
                assert spec is not None
                needed = frozenset().union(*(closure.get(n, frozenset()) for n in spec.expr.names))
                out_derived[node] = DerivedSpec(**{**spec.__dict__, "facts": needed})
                closure[node] = needed
            else:
                table = tables[node]
                assert table is not None
                needed = frozenset().union(*(closure.get(n, frozenset()) for i in table.inputs for n in i.expr.names))
                out_tables[node] = TableSpec(**{**table.__dict__, "facts": needed})
                for out in table.outputs:
                    closure[out] = needed
        out_rules = [
            RuleSpec(**{**rule.__dict__, "facts": frozenset().union(
                *(closure.get(n, frozenset()) for n in rule.when.names))})
            for rule in rules
        ]
        return out_derived, out_tables, out_rules


def _thresholds(facts: Mapping[str, FactSpec], derived: Mapping[str, DerivedSpec], tables: Mapping[str, TableSpec],
                rules: list[RuleSpec]) -> dict[str, tuple[float, ...]]:
    """For each number with a tolerance, the constants it is compared with (table bounds and conditions)."""
    tolerant = {n for n, s in facts.items() if s.tolerance} | {n for n, s in derived.items() if s.tolerance}
    found: dict[str, set[float]] = {name: set() for name in tolerant}
    for table in tables.values():
        for i, inp in enumerate(table.inputs):
            name = inp.expr.text.strip()
            if name not in found:
                continue
            for row in table.rows:
                interval = row.cells[i].interval
                if interval is not None:
                    found[name].update(b for b in (interval.low, interval.high) if math.isfinite(b))
    trees = [d.expr.tree for d in derived.values()] + [r.when.tree for r in rules]
    for tree in trees:
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            operands = [node.left, *node.comparators]
            for left, right in itertools.pairwise(operands):
                for a, b in ((left, right), (right, left)):
                    if isinstance(a, ast.Name) and a.id in found and isinstance(b, ast.Constant) \
                            and isinstance(b.value, (int, float)) and not isinstance(b.value, bool):
                        found[a.id].add(float(b.value))
    return {name: tuple(sorted(values)) for name, values in found.items() if values}


def _date(value: Any) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None


def compile_document(doc: Document, limits: Limits, *, content_hash: str = "",
                     broken: Iterable[tuple[Any, ...]] = ()) -> tuple[CompiledGuideline | None, list[Diagnostic]]:
    """Compile ``doc``; return the guideline or every problem found.

    ``broken`` lists the paths where the schema found problems: those parts are
    skipped, and the rest is still checked, so one run reports everything.
    """
    compiler = _Compiler(doc, limits, content_hash, broken)
    guideline = compiler.compile()
    if guideline is None:
        return None, sorted(compiler.errors)
    return guideline, []


def iter_names(guideline: CompiledGuideline) -> Iterable[str]:
    """Every name an expression or template may use, in declaration order."""
    yield from guideline.facts
    yield from guideline.derived
    for table in guideline.tables.values():
        yield from table.outputs
    yield "today"

