"""The result of evaluating one patient: what was decided, and why.

A :class:`Result` is immutable and holds the evaluation's trace (every fact,
derived value, table row and rule outcome); undetermined rules, statuses and
explanations are built from that trace on first use, so a caller who only
reads the recommendations pays for nothing else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

from engine.facts import Given, given_as
from engine.language.units import IdentityCache
from engine.model import CompiledGuideline, DerivedSpec, FactSpec, FrozenDict, TableSpec
from engine.needs import missing_facts_of
from engine.texts.formatting import format_date, format_number, localized
from engine.texts.words import EXPLAIN, words

__all__ = ["RESULT_VERSION", "Borderline", "Explainer", "Probe", "Recommendation", "Result", "Undetermined", "Value", "Why",
           "make_recommendation", "make_result", "to_json_value"]

RESULT_VERSION = "1.1"
_LABELS = IdentityCache()  # 1.1: "borderline" added


@dataclass(frozen=True)
class Value:
    """A fact, derived value or table output as it was used."""

    name: str
    origin: str  # fact | derived | table
    value: Any
    unit: str | None
    display: str
    label: str
    how: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.name, "origin": self.origin, "value": to_json_value(self.value), "unit": self.unit,
                "display": self.display, "label": self.label, "how": self.how}


@dataclass(frozen=True)
class Why:
    """Why a recommendation was made: its condition and the values it read."""

    condition: str
    values: tuple[Value, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"condition": self.condition, "values": [v.to_dict() for v in self.values]}


@dataclass(frozen=True)
class Recommendation:
    """A recommendation made for this patient."""

    id: str
    rule: str
    kind: str
    text: str
    strength: str | None
    dose: Mapping[str, Any] | None
    schedule: tuple[Mapping[str, Any], ...]
    source: Mapping[str, Any]
    evidence: tuple[str, ...]
    notes: tuple[str, ...]
    _why: tuple[str, tuple[str, ...], Explainer] = field(repr=False, compare=False)

    @cached_property
    def why(self) -> Why:
        """The condition that fired and the values it read, each with how it was obtained."""
        condition, names, explainer = self._why
        return Why(condition, tuple(explainer.value(n) for n in names))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id, "rule": self.rule, "kind": self.kind, "text": self.text, "strength": self.strength,
            "dose": to_json_value(self.dose), "schedule": to_json_value(self.schedule), "source": to_json_value(self.source),
            "evidence": list(self.evidence), "notes": list(self.notes), "why": self.why.to_dict(),
        }


class Probe(NamedTuple):
    """A value near a threshold and what changes on the other side (engine.evaluate.borderline_probes)."""

    name: str
    value: float
    threshold: float
    tolerance: float
    other: float  # the value tried on the other side
    changes: tuple[tuple[str, str, Any, Any], ...]  # (table | output | rule, id, here, there)


@dataclass(frozen=True)
class Borderline:
    """A value within its declared tolerance of a threshold, and what would change across it."""

    name: str
    label: str
    value: float
    unit: str | None
    threshold: float
    tolerance: float
    changes: tuple[Mapping[str, Any], ...]  # {"kind": table | output | rule, "id", "here", "there"}
    text: str  # the caution in the result's language

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.name, "label": self.label, "value": self.value, "unit": self.unit,
                "threshold": self.threshold, "tolerance": self.tolerance,
                "changes": [dict(c) for c in self.changes], "text": self.text}


@dataclass(frozen=True)
class Undetermined:
    """A rule that could not be decided, and the facts that would decide it."""

    rule: str
    title: str
    condition: str
    needs: tuple[str, ...]
    recommendations: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"rule": self.rule, "title": self.title, "condition": self.condition,
                "needs": list(self.needs), "recommendations": list(self.recommendations)}


@dataclass(frozen=True)
class Result:
    """Everything decided for one patient on one date, with its trace."""

    guideline: str
    version: str
    evaluated_on: dt.date
    lang: str
    recommendations: tuple[Recommendation, ...]
    tables: Mapping[str, str | None]  # table -> row id, "otherwise", or None (unknown input)
    borderline: tuple[Borderline, ...] = ()  # values near a threshold, within their declared tolerance
    result_version: str = RESULT_VERSION
    _guideline: CompiledGuideline | None = field(default=None, repr=False, compare=False)
    _explainer: Explainer | None = field(default=None, repr=False, compare=False)
    _outcomes: tuple[Any, ...] = field(default=(), repr=False)

    @property
    def compiled(self) -> CompiledGuideline | None:
        """The compiled guideline that made this result (its labels, notes and evidence, for renderers)."""
        return self._guideline

    @property
    def trace(self) -> Mapping[str, Any]:
        """Every fact, derived value and table output by name, as evaluated (None when unknown)."""
        return self._explainer.env if self._explainer is not None else {}

    @cached_property
    def rules(self) -> Mapping[str, str]:
        """Rule id -> "fired", "not-fired" or "undetermined"."""
        names = {True: "fired", False: "not-fired", None: "undetermined"}
        rules = self._guideline.rules if self._guideline is not None else ()
        return {rule.id: names[outcome] for rule, outcome in zip(rules, self._outcomes, strict=True)}

    @cached_property
    def undetermined(self) -> tuple[Undetermined, ...]:
        """Rules that could not be decided, each with the missing facts that would decide it."""
        if self._guideline is None or self._explainer is None:
            return ()
        env, out = self._explainer.env, []
        for rule, outcome in zip(self._guideline.rules, self._outcomes, strict=True):
            if outcome is None:
                # Only the missing facts that could still decide the condition (engine.needs);
                # every missing fact it depends on if that analysis finds none.
                needs = tuple(sorted(missing_facts_of(rule.when.tree, self._guideline, env)
                                     or (f for f in rule.facts if env.get(f) is None)))
                out.append(Undetermined(rule.id, self._explainer.text(rule.title) or rule.id,
                                        rule.when.text.strip(), needs, tuple(r.id for r in rule.then)))
        return tuple(out)

    @cached_property
    def missing_facts(self) -> tuple[str, ...]:
        """Declared facts that were not given (unknown)."""
        if self._guideline is None or self._explainer is None:
            return ()
        return tuple(name for name in self._guideline.facts if self._explainer.env.get(name) is None)

    @cached_property
    def values(self) -> Mapping[str, Value]:
        """Every fact, derived value and table output, displayed and explained (built on first use)."""
        if self._explainer is None or self._guideline is None:
            return {}
        return {name: self._explainer.value(name) for name in all_names(self._guideline)}

    def value_of(self, name: str) -> Any:
        """The raw value of a fact, derived value or table output (None when unknown)."""
        return self._explainer.env.get(name) if self._explainer is not None else None

    def recommendation_ids(self) -> list[str]:
        """Ids of the recommendations made, in guideline order."""
        return [r.id for r in self.recommendations]

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON shape (see ``result_version``)."""
        return {
            "result_version": self.result_version,
            "guideline": {"id": self.guideline, "version": self.version},
            "evaluated_on": self.evaluated_on.isoformat(),
            "lang": self.lang,
            "recommendations": [r.to_dict() for r in self.recommendations],
            "undetermined": [u.to_dict() for u in self.undetermined],
            "missing_facts": list(self.missing_facts),
            "values": {name: v.to_dict() for name, v in self.values.items()},
            "rules": dict(self.rules),
            "tables": dict(self.tables),
            "borderline": [b.to_dict() for b in self.borderline],
        }


_PLAIN = frozenset({int, float, str, bool, type(None)})


def to_json_value(value: Any) -> Any:
    """Mappings, sequences and dates as plain JSON values."""
    if type(value) in _PLAIN:  # most values: no abstract-class check needed
        return value
    if isinstance(value, Mapping):
        return {k: to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _digits_apart(value: float, threshold: float) -> int:
    """Decimals enough to show on which side of ``threshold`` ``value`` lies (29.96 is not shown as 30.0)."""
    for digits in range(1, 7):
        shown = round(value, digits)
        if value == threshold or (shown != threshold and (shown < threshold) == (value < threshold)):
            return digits
    return 6


def make_recommendation(fields: Mapping[str, Any], text: str, dose: Mapping[str, Any] | None,
                        why: tuple[str, tuple[str, ...], Explainer]) -> Recommendation:
    """A :class:`Recommendation` from its prepared fixed ``fields`` and this patient's text, dose and why.

    The frozen dataclass is filled directly: its generated ``__init__`` pays a
    frozen-attribute check per field, a measurable share of a whole evaluation.
    ``tests/test_evaluate.py`` checks that the result equals one built normally.
    """
    made = object.__new__(Recommendation)
    slots = made.__dict__
    slots.update(fields)
    slots["text"] = text
    slots["dose"] = dose
    slots["_why"] = why
    return made


def make_result(guideline: CompiledGuideline, on: dt.date, lang: str, recommendations: tuple[Recommendation, ...],
                rows: Mapping[str, str | None], explainer: Explainer, outcomes: tuple[Any, ...],
                borderline: tuple[Borderline, ...] = ()) -> Result:
    """A :class:`Result` filled directly, for the same reason as :func:`make_recommendation`."""
    result = object.__new__(Result)
    result.__dict__.update(
        guideline=guideline.id, version=guideline.version, evaluated_on=on, lang=lang,
        recommendations=recommendations, tables=rows, borderline=borderline, result_version=RESULT_VERSION,
        _guideline=guideline, _explainer=explainer, _outcomes=outcomes)
    return result


def all_names(guideline: CompiledGuideline) -> list[str]:
    names = list(guideline.facts) + [s.name for s in guideline.plan if isinstance(s, DerivedSpec)]
    for step in guideline.plan:
        if isinstance(step, TableSpec):
            names.extend(step.outputs)
    return names



class Explainer:
    """Turns values of the trace into displayable, explained values."""

    def __init__(self, guideline: CompiledGuideline, env: Mapping[str, Any], given: Mapping[str, Given] | None,
                 rows: Mapping[str, str | None], lang: str, *, facts: Any = None, on: dt.date | None = None,
                 sources: Mapping[str, str] | None = None):
        self.g = guideline
        self.env = env
        self._given = given
        self._facts = facts
        self._on = on
        self.rows = rows
        self.lang = lang
        self.cache: dict[str, Value] = {}
        self.sources = sources or {}

    @cached_property
    def producer(self) -> dict[str, TableSpec]:
        """Which table gives each table output."""
        return {out: t for t in self.g.tables.values() for out in t.outputs}

    def given_unit(self, name: str) -> Given | None:
        """How a quantity fact was given (value and unit as written), when the full validation did not say."""
        if self._given is not None:
            return self._given.get(name)
        raw = self._facts.get(name) if isinstance(self._facts, Mapping) else None
        if raw is None or self._on is None:
            return None
        return given_as(self.g.facts[name], raw, self._on)

    def text(self, texts: Mapping[str, str] | Any) -> str:
        """``texts`` in the result's language (the guideline's primary language when missing)."""
        return localized(texts, self.lang, self.g.languages[0])

    @cached_property
    def labels(self) -> Mapping[str, str]:
        """Every fact's and derived value's label in the result's language (prepared once per guideline)."""
        key = f"labels:{self.lang}"
        cached = _LABELS.get(self.g, key)
        if cached is None:
            cached = {name: self.text(spec.label) for name, spec in self.g.facts.items()}
            cached.update({name: self.text(spec.label) for name, spec in self.g.derived.items()})
            _LABELS.put(self.g, cached, key)
        return cached  # type: ignore[return-value]

    def display(self, value: Any, unit: str | None, decimals: int | None = None) -> str:
        """``value`` as a clinician reads it in the result's language, with its unit."""
        if value is None:
            return format_number(None, self.lang)
        if isinstance(value, bool):
            return words(EXPLAIN, self.lang)["yes" if value else "no"]
        if isinstance(value, dt.date):
            return format_date(value, self.lang)
        if isinstance(value, (int, float)):
            return format_number(value, self.lang, decimals) + (f" {unit}" if unit else "")
        if isinstance(value, tuple):
            return ", ".join(map(str, value)) if value else "-"
        return str(value)

    def value(self, name: str) -> Value:
        """The named fact, derived value or table output, displayed and explained (built once)."""
        if name in self.cache:
            return self.cache[name]
        raw = self.env.get(name)
        if name in self.g.facts:
            spec = self.g.facts[name]
            unit = spec.units.canonical if spec.units else None
            shown = self.display(raw, unit)
            if unit is not None and raw is not None:
                given = self.given_unit(name)
                if given is not None and given.unit and given.unit != unit:
                    shown = f"{self.display(given.original, given.unit)} (= {shown})"
            if raw is not None and spec.value_labels and spec.value_labels.get(str(raw)):
                shown = self.text(spec.value_labels[str(raw)])
            result = Value(name, "fact", raw, unit, shown, self.labels[name], self.sources.get(name, ""))
        elif name in self.g.derived:
            derived = self.g.derived[name]
            labels = self.labels
            inputs = ", ".join(f"{labels.get(n, n)} {self.value(n).display}" for n in derived.expr.ordered)
            formula = self.text(derived.formula) if derived.formula else ""
            how = f"{formula} ({inputs})" if formula else inputs
            result = Value(name, "derived", raw, derived.unit, self.display(raw, derived.unit, derived.display_decimals),
                           labels[name], how)
        elif name in self.producer:
            table = self.producer[name]
            unit = table.outputs[name]
            row_id = self.rows.get(table.name)
            how = self._row_how(table, row_id)
            result = Value(name, "table", raw, unit, self.display(raw, unit), name, how)
        else:
            result = Value(name, "builtin", raw, None, self.display(raw, None), name)
        self.cache[name] = result
        return result

    def borderline(self, probe: Probe) -> Borderline:
        """The caution for a value near a threshold, in words."""
        w = words(EXPLAIN, self.lang)
        spec = self.g.facts.get(probe.name) or self.g.derived.get(probe.name)
        unit = (spec.units.canonical if spec.units else None) if isinstance(spec, FactSpec) else \
            (spec.unit if spec is not None else None)
        label = self.text(self._label(probe.name))
        changes: list[Mapping[str, Any]] = []
        said: list[str] = []
        rules = {r.id: r for r in self.g.rules}
        for kind, key, here, there in probe.changes:
            changes.append(FrozenDict(kind=kind, id=key, here=here, there=there))
            if kind == "table":
                table = self.g.tables[key]
                said.append(w["table_instead"].format(table=self.text(table.title) or key,
                                                      there=self._row_words(table, there),
                                                      here=self._row_words(table, here)))
            elif kind == "rule":
                title = self.text(rules[key].title) or key
                said.append(w[{True: "rule_fires", False: "rule_not", None: "rule_unknown"}[there]].format(rule=title))
        digits = _digits_apart(probe.value, probe.threshold)
        suffix = f" {unit}" if unit else ""
        text = w["borderline"].format(
            label=label, value=format_number(probe.value, self.lang, digits) + suffix,
            tolerance=format_number(probe.tolerance, self.lang) + suffix,
            threshold=format_number(probe.threshold, self.lang) + suffix, changes=w["sep"].join(said))
        return Borderline(probe.name, label, probe.value, unit, probe.threshold, probe.tolerance, tuple(changes), text)

    def _row_words(self, table: TableSpec, row_id: str | None) -> str:
        w = words(EXPLAIN, self.lang)
        if row_id is None:
            return w["input_unknown"]
        if row_id == "otherwise":
            return w["no_row"]
        rows = [r for r in table.rows if r.id in row_id.split(",")]
        return " / ".join(self.text(r.label) or r.id for r in rows)

    def _label(self, name: str) -> Mapping[str, str] | str:
        if name in self.g.facts:
            return self.g.facts[name].label
        if name in self.g.derived:
            return self.g.derived[name].label
        return name

    def _row_how(self, table: TableSpec, row_id: str | None) -> str:
        title = self.text(table.title) or table.name
        inputs = ", ".join(f"{self.text(self._label(i.expr.text.strip()))} {self.value(i.expr.text.strip()).display}"
                           for i in table.inputs if i.expr.text.strip() in self.env)
        if row_id is None:
            return f"{title}: {words(EXPLAIN, self.lang)['input_unknown']} ({inputs})"
        if row_id == "otherwise":
            return f"{title}: {words(EXPLAIN, self.lang)['no_row']} ({inputs})"
        rows = [r for r in table.rows if r.id in row_id.split(",")]
        shown = "; ".join(
            (self.text(r.label) or " / ".join(c.text or str(c.interval) for c in r.cells)) for r in rows)
        return f"{title}: {shown} ({inputs})"
