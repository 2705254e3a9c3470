"""The result of evaluating one patient: what was decided, and why.

A :class:`Result` is immutable and holds the evaluation's trace (every fact,
derived value, table row and rule outcome); undetermined rules, statuses and
explanations are built from that trace on first use, so a caller who only
reads the recommendations pays for nothing else.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from engine.explain import Explained, Explainer, encode_string, json_value
from engine.language.units import IdentityCache
from engine.model import CompiledGuideline, DerivedSpec, FrozenDict, TableSpec, computed_once
from engine.texts.formatting import format_number

__all__ = ["RESULT_VERSION", "Borderline", "Explainer", "Probe", "Recommendation", "Result", "Undetermined", "Value", "Why",
           "make_borderline", "make_recommendation", "make_result", "to_json_value"]

RESULT_VERSION = "1.1"  # 1.1: "borderline" added


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
        return _value_json(self.name, (self.origin, self.value, self.unit, self.display, self.label, self.how))


def _value_json(name: str, explained: Explained) -> dict[str, Any]:
    origin, raw, unit, display, label, how = explained
    return {"name": name, "origin": origin, "value": raw if type(raw) in _PLAIN else to_json_value(raw), "unit": unit,
            "display": display, "label": label, "how": how}


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

    @computed_once
    def why(self) -> Why:
        """The condition that fired and the values it read, each with how it was obtained."""
        condition, names, explainer = self._why
        return Why(condition, tuple(Value(n, *explainer.explain(n)) for n in names))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return self._to_dict(None)

    def _to_dict(self, values: Mapping[str, dict[str, Any]] | None) -> dict[str, Any]:
        """JSON-ready form, the why's values copied from ``values`` (the result's, when it has made them)."""
        condition, names, explainer = self._why
        if values is None:
            why = [_value_json(n, explainer.explain(n)) for n in names]
        else:
            why = [values[n].copy() if n in values else _value_json(n, explainer.explain(n)) for n in names]
        return {
            "id": self.id, "rule": self.rule, "kind": self.kind, "text": self.text, "strength": self.strength,
            "dose": to_json_value(self.dose), "schedule": to_json_value(self.schedule), "source": to_json_value(self.source),
            "evidence": list(self.evidence), "notes": list(self.notes),
            "why": {"condition": condition, "values": why},
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
    # Values near a threshold, within their declared tolerance. Worked out on first read (a value
    # near a threshold makes the decisions again just across it): make_result leaves it out of the
    # instance, and __getattr__ fills it from the probe it was given.
    borderline: tuple[Borderline, ...] = field(default_factory=tuple)
    result_version: str = RESULT_VERSION
    _guideline: CompiledGuideline | None = field(default=None, repr=False, compare=False)
    _explainer: Explainer | None = field(default=None, repr=False, compare=False)
    _outcomes: tuple[Any, ...] = field(default=(), repr=False)

    if not TYPE_CHECKING:  # at run time only: for mypy, a Result has its declared attributes and no others
        def __getattr__(self, name: str) -> Any:
            # Called only for attributes the instance does not hold: the borderline cautions of a
            # result made by make_result, worked out now and kept.
            if name == "borderline":
                probe = self.__dict__.get("_borderline_probe")
                made = probe() if probe is not None else ()
                self.__dict__["borderline"] = made
                self.__dict__.pop("_borderline_probe", None)
                return made
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __getstate__(self) -> dict[str, Any]:
        self.borderline  # noqa: B018 - worked out before pickling: the probe holds the generated plan
        return self.__dict__

    @property
    def compiled(self) -> CompiledGuideline | None:
        """The compiled guideline that made this result (its labels, notes and evidence, for renderers)."""
        return self._guideline

    @property
    def trace(self) -> Mapping[str, Any]:
        """Every fact, derived value and table output by name, as evaluated (None when unknown)."""
        return MappingProxyType(self._explainer.env) if self._explainer is not None else MappingProxyType({})

    @computed_once
    def rules(self) -> Mapping[str, str]:
        """Rule id -> "fired", "not-fired" or "undetermined"."""
        rules = self._guideline.rules if self._guideline is not None else ()
        return FrozenDict(zip((rule.id for rule in rules), map(_OUTCOME_NAMES.__getitem__, self._outcomes),
                              strict=True))

    @computed_once
    def undetermined(self) -> tuple[Undetermined, ...]:
        """Rules that could not be decided, each with the missing facts that would decide it."""
        if self._guideline is None or self._explainer is None:
            return ()
        explainer, outcomes = self._explainer, self._outcomes
        if None not in outcomes:
            return ()
        rules = _undecided_parts(self._guideline, explainer)
        made = []
        for (rule, title, condition, recommendations), outcome in zip(rules, outcomes, strict=True):
            if outcome is None:
                # filled directly, as make_recommendation does (a frozen dataclass's __init__ costs more)
                undetermined = object.__new__(Undetermined)
                undetermined.__dict__.update(rule=rule.id, title=title, condition=condition,
                                             needs=explainer.needs(rule), recommendations=recommendations)
                made.append(undetermined)
        return tuple(made)

    @computed_once
    def missing_facts(self) -> tuple[str, ...]:
        """Declared facts that were not given (unknown)."""
        if self._guideline is None or self._explainer is None:
            return ()
        return tuple(name for name in self._guideline.facts if self._explainer.env.get(name) is None)

    @computed_once
    def values(self) -> Mapping[str, Value]:
        """Every fact, derived value and table output, displayed and explained (built on first use)."""
        if self._explainer is None or self._guideline is None:
            return {}
        return {name: Value(name, *self._explainer.explain(name)) for name in all_names(self._guideline)}

    def value_of(self, name: str) -> Any:
        """The raw value of a fact, derived value or table output (None when unknown)."""
        return self._explainer.env.get(name) if self._explainer is not None else None

    def recommendation_ids(self) -> list[str]:
        """Ids of the recommendations made, in guideline order."""
        return [r.id for r in self.recommendations]

    def _values_json(self) -> dict[str, Any]:
        if self._explainer is None or self._guideline is None:
            return {}
        return self._explainer.json_values()

    def to_json(self) -> str:
        """The JSON text of :meth:`to_dict`, character for character as ``json.dumps(result.to_dict(),
        ensure_ascii=False)`` writes it, written without building the dicts first.

        What does not depend on the patient (keys, labels, titles, sources, the
        words of each rule outcome) is written once per guideline and language;
        per patient only values, displays, texts and needs are. ``batch --full``
        writes results this way.
        """
        explainer, g = self._explainer, self._guideline
        texts = None
        if explainer is not None and g is not None:
            try:
                texts = explainer.json_texts()
            except Exception:  # noqa: BLE001 - anything unexpected: the dicts, written by json, say the same
                texts = None
        if g is None or texts is None:
            return _ENCODER.encode(self.to_dict())
        return _writer(g, self.lang).write(self, texts)

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON shape (see ``result_version``)."""
        values = self._values_json()
        return {
            "result_version": self.result_version,
            "guideline": {"id": self.guideline, "version": self.version},
            "evaluated_on": self.evaluated_on.isoformat(),
            "lang": self.lang,
            "recommendations": [r._to_dict(values) for r in self.recommendations],
            "undetermined": [u.to_dict() for u in self.undetermined],
            "missing_facts": list(self.missing_facts),
            "values": values,
            "rules": dict(self.rules),
            "tables": dict(self.tables),
            "borderline": [b.to_dict() for b in self.borderline],
        }


class _Writer:
    """The patient-independent parts of one guideline's JSON results in one language, written once.

    Each part is made from the first result that needs it and kept by its key
    (a recommendation's, an undetermined rule's, a set of table rows, a date);
    every key comes from the compiled guideline, so what is kept is bounded by
    its size (sets of rows and dates: by ``_KEPT``).
    """

    _KEPT = 4096

    def __init__(self, guideline: CompiledGuideline) -> None:
        self.rule_entries = tuple({o: f'{_ENCODER.encode(rule.id)}: "{word}"' for o, word in _OUTCOME_NAMES.items()}
                                  for rule in guideline.rules)
        self.quoted = {name: _ENCODER.encode(name) for name in guideline.facts}
        self.heads: dict[tuple[Any, ...], str] = {}
        self.recommendations: dict[str, tuple[str, str, str]] = {}
        self.undetermined: dict[str, tuple[str, str]] = {}
        self.tables: dict[tuple[Any, ...], str] = {}
        self.doses: dict[str, tuple[Mapping[str, Any], str]] = {}

    def write(self, result: Result, texts: tuple[dict[str, str], list[str]]) -> str:
        objects, values = texts
        key = (result.result_version, result.guideline, result.version, result.evaluated_on, result.lang)
        head = self.heads.get(key)
        if head is None:
            head = _ENCODER.encode({"result_version": result.result_version,
                                    "guideline": {"id": result.guideline, "version": result.version},
                                    "evaluated_on": result.evaluated_on.isoformat(), "lang": result.lang})
            head = head[:-1] + ', "recommendations": ['
            if len(self.heads) < self._KEPT:
                self.heads[key] = head
        parts = [head]
        for n, rec in enumerate(result.recommendations):
            if n:
                parts.append(", ")
            self._recommendation(rec, objects, parts)
        parts.append('], "undetermined": [')
        for n, u in enumerate(result.undetermined):
            pieces = self.undetermined.get(u.rule)
            if pieces is None:
                whole = _ENCODER.encode({**u.to_dict(), "needs": []})
                cut = whole.index('"needs": [') + len('"needs": [')
                pieces = self.undetermined[u.rule] = (whole[:cut], whole[cut:])
            needs = ", ".join([self.quoted.get(f) or _ENCODER.encode(f) for f in u.needs])
            parts += (", " if n else "", pieces[0], needs, pieces[1])
        parts.append('], "missing_facts": [')
        parts.append(", ".join([self.quoted[name] for name in result.missing_facts]))
        parts.append('], "values": ')
        parts += values
        parts.append(', "rules": ')
        parts.append(self._rules(result._outcomes))
        parts.append(', "tables": ')
        parts.append(self._tables(result.tables))
        parts.append(', "borderline": [')
        parts.append(", ".join([_ENCODER.encode(b.to_dict()) for b in result.borderline]))
        parts.append("]}")
        return "".join(parts)

    def _recommendation(self, rec: Recommendation, objects: Mapping[str, str], parts: list[str]) -> None:
        condition, names, explainer = rec._why
        pieces = self.recommendations.get(rec.id)
        if pieces is None:
            # Written as json writes the whole recommendation, then cut where the patient's parts go.
            whole = _ENCODER.encode({"id": rec.id, "rule": rec.rule, "kind": rec.kind, "text": "",
                                     "strength": rec.strength, "dose": None, "schedule": to_json_value(rec.schedule),
                                     "source": to_json_value(rec.source), "evidence": list(rec.evidence),
                                     "notes": list(rec.notes), "why": {"condition": condition, "values": []}})
            text_at = whole.index(', "text": ""') + len(', "text": ')
            dose_at = whole.index(', "dose": null', text_at) + len(', "dose": ')
            pieces = self.recommendations[rec.id] = (whole[:text_at], whole[text_at + 2:dose_at],
                                                     whole[dose_at + 4:-3])
        parts += (pieces[0], encode_string(rec.text), pieces[1], self._dose(rec), pieces[2])
        separator = ""
        for name in names:  # each object added as it is: the result's one join copies it once
            found = objects.get(name)
            parts += (separator, found if found is not None else _ENCODER.encode(_value_json(name, explainer.explain(name))))
            separator = ", "
        parts.append("]}}")

    def _dose(self, rec: Recommendation) -> str:
        dose = rec.dose
        if dose is None:
            return "null"
        kept = self.doses.get(rec.id)
        if kept is not None and kept[0] is dose:  # a dose that does not depend on the patient: shared, written once
            return kept[1]
        text = _ENCODER.encode(to_json_value(dose))
        self.doses[rec.id] = (dose, text)
        return text

    def _rules(self, outcomes: tuple[Any, ...]) -> str:
        # Each rule's three possible entries are written once; the outcomes are too many to keep whole
        # (20 000 patients of the shipped guideline show more than 4 000 different sets).
        return "{" + ", ".join([entry[o] for entry, o in zip(self.rule_entries, outcomes, strict=True)]) + "}"

    def _tables(self, rows: Mapping[str, str | None]) -> str:
        key = tuple(rows.items())
        text = self.tables.get(key)
        if text is None:
            text = _ENCODER.encode(dict(rows))
            if len(self.tables) < self._KEPT:
                self.tables[key] = text
        return text


_UNDECIDED = IdentityCache()


def _undecided_parts(guideline: CompiledGuideline, explainer: Explainer
                     ) -> tuple[tuple[Any, str, str, tuple[str, ...]], ...]:
    """Per rule, what an undetermined rule says that does not depend on the patient (kept per language)."""
    return _UNDECIDED.get_or_make(guideline, explainer.lang, _undecided_made, guideline, explainer.prepared.rule_titles)


def _undecided_made(guideline: CompiledGuideline, titles: Mapping[str, str]
                    ) -> tuple[tuple[Any, str, str, tuple[str, ...]], ...]:
    return tuple((rule, titles[rule.id], rule.when.text.strip(), tuple(r.id for r in rule.then))
                 for rule in guideline.rules)


_WRITERS = IdentityCache()


def _writer(guideline: CompiledGuideline, lang: str) -> _Writer:
    return _WRITERS.get_or_make(guideline, lang, _Writer, guideline)


_PLAIN = frozenset({int, float, str, bool, type(None)})
_OUTCOME_NAMES = {True: "fired", False: "not-fired", None: "undetermined"}


def to_json_value(value: Any) -> Any:
    """Mappings, sequences and dates as plain JSON values."""
    kind = type(value)
    if kind in _PLAIN:  # most values: no abstract-class check needed
        return value
    if kind is tuple or kind is list:
        return [v if type(v) in _PLAIN else to_json_value(v) for v in value]
    if isinstance(value, dict):  # FrozenDict included; a cheap check before the abstract one
        return {k: v if type(v) in _PLAIN else to_json_value(v) for k, v in value.items()}
    if isinstance(value, Mapping):
        return {k: to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    return json_value(value)  # a date, a score's range: as the explained values write them


def _default(value: Any) -> Any:
    converted = to_json_value(value)
    if converted is value:
        raise TypeError(f"{type(value).__name__} is not JSON")
    return converted


# json.dumps(value, ensure_ascii=False), without making a new encoder for each call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=_default)


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
                borderline: Callable[[], tuple[Borderline, ...]] | None = None) -> Result:
    """A :class:`Result` filled directly, for the same reason as :func:`make_recommendation`.

    ``borderline`` makes the borderline cautions when they are first read (None: there are none).
    """
    result = object.__new__(Result)
    result.__dict__.update(
        guideline=guideline.id, version=guideline.version, evaluated_on=on, lang=lang,
        recommendations=recommendations, tables=FrozenDict(rows), result_version=RESULT_VERSION,
        _guideline=guideline, _explainer=explainer, _outcomes=outcomes)
    if borderline is None:
        result.__dict__["borderline"] = ()
    else:
        result.__dict__["_borderline_probe"] = borderline
    return result


def all_names(guideline: CompiledGuideline) -> list[str]:
    names = list(guideline.facts) + [s.name for s in guideline.plan if isinstance(s, DerivedSpec)]
    for step in guideline.plan:
        if isinstance(step, TableSpec):
            names.extend(step.outputs)
    return names


def make_borderline(explainer: Explainer, probe: Probe) -> Borderline:
    """The caution for a value near a threshold, in words."""
    prepared = explainer.prepared
    w, lang, g = prepared.words, explainer.lang, explainer.g
    unit = prepared.unit_of(probe.name)
    label = prepared.labels.get(probe.name, probe.name)
    changes: list[Mapping[str, Any]] = []
    said: list[str] = []
    for kind, key, here, there in probe.changes:
        changes.append(FrozenDict(kind=kind, id=key, here=here, there=there))
        if kind == "table":
            table = g.tables[key]
            said.append(w["table_instead"].format(table=prepared.text(table.title) or key,
                                                  there=prepared.row_words(table, there),
                                                  here=prepared.row_words(table, here)))
        elif kind == "rule":
            title = prepared.rule_titles[key]
            said.append(w[{True: "rule_fires", False: "rule_not", None: "rule_unknown"}[there]].format(rule=title))
    digits = _digits_apart(probe.value, probe.threshold)
    suffix = f" {unit}" if unit else ""
    text = w["borderline"].format(
        label=label, value=format_number(probe.value, lang, digits) + suffix,
        tolerance=format_number(probe.tolerance, lang) + suffix,
        threshold=format_number(probe.threshold, lang) + suffix, changes=w["sep"].join(said))
    return Borderline(probe.name, label, probe.value, unit, probe.threshold, probe.tolerance, tuple(changes), text)
