"""Explanations: every value of one patient's trace, displayed and explained in words.

An explanation of a value says how a clinician reads it (its *display*:
``3,5 mg``, ``oui``, ``27/11/2026``) and how it was obtained (its *how*: the
formula and its inputs for a derived value, the row hit and the inputs read
for a table output, where a fact came from). Everything that does not depend
on the patient -- labels, formulas, which display each value needs, the
words of finite domains (true/false, an enum's values), table titles and row
descriptions -- is prepared once per guideline and language
(:class:`Prepared`, cached as long as the guideline lives); per patient only
numbers and dates are formatted and the prepared words filled in.

Two paths give the same explanations: :meth:`Explainer.explain`, value by
value (the reference, used for one recommendation's why), and, for a whole
JSON result, one function generated from the same prepared entries
(:mod:`engine.accel.explaincode`) once a guideline has explained a few
results in a language. ``tests/test_explain.py`` checks that they agree.

The explainer reads the trace and never decides: values come from the
evaluator (:mod:`engine.evaluate`).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from engine.accel.explaincode import ExplainEntry, build_explainer
from engine.facts import Given, given_as, quantity_as_written
from engine.language.scores import Score
from engine.language.units import IdentityCache
from engine.model import CompiledGuideline, DerivedSpec, FactSpec, RuleSpec, TableSpec, computed_once
from engine.needs import NeedsTracer
from engine.texts.formatting import format_date, format_number, localized
from engine.texts.words import EXPLAIN, words

__all__ = ["Explained", "Explainer", "Prepared", "prepared"]

# (origin, raw value, unit, display, label, how): one explained value, as plain data.
Explained = tuple[str, Any, "str | None", str, str, str]

_PREPARED = IdentityCache()
_PLAIN = frozenset({int, float, str, bool, type(None)})
# JSON results explained value by value before the generated function is built:
# a one-shot CLI run never pays for generating it.
_GENERATE_AFTER = 2


def prepared(guideline: CompiledGuideline, lang: str) -> Prepared:
    """The patient-independent part of every explanation of ``guideline`` in ``lang`` (built once)."""
    return _PREPARED.get_or_make(guideline, lang, Prepared, guideline, lang)


# A string as JSON, as json.dumps(..., ensure_ascii=False) writes it (the C encoder json uses itself).
encode_string: Callable[[str], str] = json.encoder.encode_basestring
_float_text = float.__repr__  # json's own way of writing a float
_WORDS = {None: "null", True: "true", False: "false"}


def json_text(value: Any) -> str:
    """Any value of the trace as JSON text, exactly as ``json.dumps(json_value(value), ensure_ascii=False)``."""
    kind = type(value)
    if kind is str:
        return encode_string(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float and value - value == 0:  # finite (json writes NaN and Infinity its own way)
        return _float_text(value)
    if value is None or kind is bool:
        return _WORDS[value]
    if kind is tuple or kind is list:  # a list of words (comedications, a collect table's rows): no json.dumps call
        try:
            return "[" + ", ".join(map(encode_string, value)) + "]"
        except TypeError:  # an item that is not a string: json_value says how each is written
            pass
    return json.dumps(json_value(value), ensure_ascii=False)


def json_value(value: Any) -> Any:
    """A value of the trace as JSON (dates in ISO form, lists and tuples as lists)."""
    if type(value) in _PLAIN:
        return value
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, Score):
        return value.as_json()
    return value


class Prepared:
    """Labels, displays and how-templates of every value of a guideline, in one language."""

    def __init__(self, g: CompiledGuideline, lang: str) -> None:
        self.g = g
        self.lang = lang
        self.primary = g.languages[0]
        self.words = words(EXPLAIN, lang)
        text = self.text
        labels = {name: text(spec.label) for name, spec in g.facts.items()}
        labels.update({name: text(spec.label) for name, spec in g.derived.items()})
        self.labels: Mapping[str, str] = labels
        self.rule_titles: dict[str, str] = {rule.id: text(rule.title) or rule.id for rule in g.rules}
        self.producer: dict[str, TableSpec] = {out: t for t in g.tables.values() for out in t.outputs}
        # Every name in the order of the plan: an input before what reads it.
        entries = [self._fact(spec) for spec in g.facts.values()]
        entries.append(ExplainEntry("today", "builtin", None, "today", "date", json=True))
        for step in g.plan:
            if isinstance(step, DerivedSpec):
                entries.append(self._derived(step))
            else:
                entries.extend(self._table_output(step, out, unit) for out, unit in step.outputs.items())
        self.entries: tuple[ExplainEntry, ...] = tuple(self._words_of(e) for e in entries)
        self.by_name: dict[str, ExplainEntry] = {e.name: e for e in self.entries}
        # A result's "values", in the order of its JSON form: facts, derived values, table outputs.
        self.listed: tuple[str, ...] = (*g.facts, *(e.name for e in self.entries if e.origin == "derived"),
                                        *(e.name for e in self.entries if e.origin == "table"))
        self.heads: dict[str, Callable[[Any], str]] = {t.name: self._head(t) for t in g.tables.values()}
        self._generated: Callable[..., dict[str, dict[str, Any]]] | None = None
        self._generated_text: Callable[..., tuple[dict[str, str], list[str]]] | None = None
        self._uses = 0
        self._lock = threading.Lock()

    def text(self, texts: Mapping[str, str] | Any) -> str:
        """``texts`` in this language (the guideline's primary language when missing)."""
        return localized(texts, self.lang, self.primary)

    # --- what each value needs ---------------------------------------------------------

    def _fact(self, spec: FactSpec) -> ExplainEntry:
        unit = spec.units.canonical if spec.units else None
        label = self.labels[spec.name]
        json = spec.type in ("date", "list")
        if spec.type == "boolean":
            return ExplainEntry(spec.name, "fact", unit, label, "boolean", finite=self._booleans(), json=json)
        if spec.type == "enum":
            finite = {value: self.display(value, None) for value in spec.values}
            finite.update({value: self.text(words) for value, words in spec.value_labels.items()
                           if value in finite and words})
            return ExplainEntry(spec.name, "fact", unit, label, "finite", finite=finite, json=json)
        kind = {"quantity": "quantity", "number": "number", "integer": "number", "date": "date"}.get(spec.type, "generic")
        return ExplainEntry(spec.name, "fact", unit, label, kind, json=json)

    def _derived(self, spec: DerivedSpec) -> ExplainEntry:
        inputs = list(spec.expr.ordered)
        listed: list[str | tuple[str]] = []
        for i, name in enumerate(inputs):
            listed += [(", " if i else "") + f"{self.labels.get(name, name)} ", (name,)]
        formula = self.text(spec.formula) if spec.formula else ""
        how = (formula + " (", *listed, ")") if formula else tuple(listed)
        # a score is shown as a number once every item is known, as its range before (the generic display)
        kind = {"boolean": "boolean", "number": "number", "quantity": "number", "date": "date"}.get(spec.type, "generic")
        return ExplainEntry(spec.name, "derived", spec.unit, self.labels[spec.name], kind, spec.display_decimals,
                            finite=self._booleans() if kind == "boolean" else None, how=how,
                            json=kind in ("date", "generic"))

    def _table_output(self, table: TableSpec, name: str, unit: str | None) -> ExplainEntry:
        read = [n for n in (i.expr.text.strip() for i in table.inputs)
                if n in self.labels or n in self.producer or n == "today"]
        listed: list[str | tuple[str]] = [" ("]
        for i, n in enumerate(read):
            listed += [(", " if i else "") + f"{self.text(self._label(n))} ", (n,)]
        listed.append(")")
        labels = table.value_labels.get(name)
        finite = {value: self.text(words) for value, words in labels.items()} if labels else None
        return ExplainEntry(name, "table", unit, name, "finite" if finite else "generic", finite=finite,
                            how=tuple(listed), table=table.name, json=True)

    def _words_of(self, entry: ExplainEntry) -> ExplainEntry:
        """``entry`` with the words of unknown, true and false, which every display may need."""
        if entry.finite is not None:
            return entry if None in entry.finite else replace(entry, finite={**entry.finite, None: self.display(None, None)})
        return replace(entry, finite=self._booleans())

    def _booleans(self) -> dict[Any, str]:
        return {True: self.words["yes"], False: self.words["no"], None: self.display(None, None)}

    def _head(self, table: TableSpec) -> Callable[[Any], str]:
        """The words of the row(s) hit, after the table's title (each described once)."""
        title = self.text(table.title) or table.name
        described: dict[Any, str] = {None: f"{title}: {self.words['input_unknown']}",
                                     "otherwise": f"{title}: {self.words['no_row']}"}

        def head(row_id: Any) -> str:
            found = described.get(row_id)
            if found is None:
                hit = set(str(row_id).split(","))
                shown = "; ".join((self.text(r.label) or " / ".join(c.text or str(c.interval) for c in r.cells))
                                  for r in table.rows if r.id in hit)
                found = f"{title}: {shown}"
                if len(described) < 4096:  # a collect table's combinations of rows stay far below
                    described[row_id] = found
            return found
        return head

    def _label(self, name: str) -> Mapping[str, str] | str:
        if name in self.g.facts:
            return self.g.facts[name].label
        if name in self.g.derived:
            return self.g.derived[name].label
        return name

    # --- displays ----------------------------------------------------------------------

    def display(self, value: Any, unit: str | None, decimals: int | None = None) -> str:
        """Any value as a clinician reads it in this language, with its unit."""
        if value is None:
            return format_number(None, self.lang)
        if isinstance(value, bool):
            return self.words["yes" if value else "no"]
        if isinstance(value, dt.date):
            return format_date(value, self.lang)
        if isinstance(value, (int, float)):
            return format_number(value, self.lang, decimals) + (f" {unit}" if unit else "")
        if isinstance(value, tuple):
            return ", ".join(map(str, value)) if value else "-"
        if isinstance(value, Score):
            return self.words["score_range"].format(
                low=format_number(value.low, self.lang, decimals), high=format_number(value.high, self.lang, decimals),
                count=value.unknown, items=self.words["item_unknown" if value.unknown == 1 else "items_unknown"])
        return str(value)

    def shown(self, entry: ExplainEntry, raw: Any) -> str:
        """``raw`` displayed as ``entry`` says (before any note of the unit it was given in)."""
        if entry.finite is not None and type(raw) in (bool, str, type(None)) and raw in entry.finite:
            return entry.finite[raw]  # the words of yes, no and unknown are the generic display's
        return self.display(raw, entry.unit, entry.decimals)

    def row_words(self, table: TableSpec, row_id: str | None) -> str:
        """The row(s) ``row_id`` of ``table`` in words (for cautions)."""
        if row_id is None:
            return self.words["input_unknown"]
        if row_id == "otherwise":
            return self.words["no_row"]
        rows = [r for r in table.rows if r.id in row_id.split(",")]
        return " / ".join(self.text(r.label) or r.id for r in rows)

    def unit_of(self, name: str) -> str | None:
        """The unit of a fact or derived value (None for others)."""
        spec = self.g.facts.get(name)
        if spec is not None:
            return spec.units.canonical if spec.units else None
        derived = self.g.derived.get(name)
        return derived.unit if derived is not None else None

    # --- the generated path --------------------------------------------------------------

    def generated(self, *, now: bool = False) -> Callable[..., dict[str, dict[str, Any]]] | None:
        """The generated function for whole JSON results once this guideline has made a few, or ``now`` (else None)."""
        if self._generated is not None:
            return self._generated
        self._uses += 1
        if self._uses <= _GENERATE_AFTER and not now:
            return None
        with self._lock:
            if self._generated is None:
                self._generated = build_explainer(list(self.entries), self.listed, self.lang, self._helpers(),
                                                  self.heads)
        return self._generated

    def generated_text(self) -> Callable[..., tuple[dict[str, str], list[str]]]:
        """The generated function writing every value's JSON as text (built on first use)."""
        if self._generated_text is None:
            with self._lock:
                if self._generated_text is None:
                    self._generated_text = build_explainer(
                        list(self.entries), self.listed, self.lang,
                        {**self._helpers(), "_enc": encode_string, "_jv": json_text}, self.heads, text=True)
        return self._generated_text

    def _helpers(self) -> dict[str, Any]:
        lang = self.lang
        return {"_disp": self.display, "_num": lambda v, d: format_number(v, lang, d),
                "_date": (lambda d: f"{d.day:02d}/{d.month:02d}/{d.year:04d}") if lang == "fr" else dt.date.isoformat,
                "_day": dt.date, "_json": json_value}


class _Displays(dict):  # type: ignore[type-arg]
    """name -> display, each worked out on first read.

    It reaches its explainer through a weak reference: a strong one would make
    a cycle (the explainer keeps its displays), and every result whose values
    were displayed would wait for a full garbage collection to be freed.
    """

    def __init__(self, explainer: Explainer) -> None:
        super().__init__()
        self._explainer = weakref.ref(explainer)

    def __missing__(self, name: str) -> str:
        explainer = self._explainer()
        if explainer is None:  # read after its explainer was dropped: nothing to work it out from
            raise KeyError(name)
        shown = explainer._display(name)
        self[name] = shown
        return shown


class Explainer:
    """One patient's trace, displayed and explained on demand (everything at most once)."""

    def __init__(self, guideline: CompiledGuideline, env: Mapping[str, Any], given: Mapping[str, Given] | None,
                 rows: Mapping[str, str | None], lang: str, *, facts: Any = None, on: dt.date | None = None,
                 sources: Mapping[str, str] | None = None):
        self.g = guideline
        self.env = env
        self.rows = rows
        self.lang = lang
        self._given = given
        self._facts = facts
        self._on = on
        self.sources = sources or {}
        self._explained: dict[str, Explained] = {}

    def __getstate__(self) -> dict[str, Any]:
        # What is worked out on first use is worked out again after unpickling: the displays reach the
        # explainer by a weak reference, the prepared words hold closures, and the needs tracer's
        # memory is keyed by this process's object ids.
        state = dict(self.__dict__)
        for cached in ("displays", "prepared", "_tracer"):
            state.pop(cached, None)
        return state

    @computed_once
    def prepared(self) -> Prepared:
        """What every explanation of this guideline in this language shares."""
        return prepared(self.g, self.lang)

    def given_unit(self, name: str) -> Given | None:
        """How a quantity fact was given (value and unit as written), when the full validation did not say."""
        if self._given is not None:
            return self._given.get(name)
        raw = self._facts.get(name) if isinstance(self._facts, Mapping) else None
        if raw is None or self._on is None:
            return None
        return given_as(self.g.facts[name], raw, self._on)

    def with_given_unit(self, name: str, shown: str) -> str:
        """A quantity's display, preceded by the value in the unit it was given in when that is another."""
        canonical = self.prepared.by_name[name].unit
        raw = self._facts.get(name) if isinstance(self._facts, Mapping) else None
        if self._given is None and type(raw) is dict:
            # A quantity the plan saw given in another unit than the canonical one (it keeps only those), or
            # in another spelling of it; the facts of a result are valid, so it is read without checking again.
            written = quantity_as_written(self.g.facts[name], raw)
            if written is not None:
                unit, number = written
                return shown if unit == canonical else f"{self.prepared.display(number, unit)} (= {shown})"
        given = self.given_unit(name)
        if given is not None and given.unit and given.unit != canonical:
            return f"{self.prepared.display(given.original, given.unit)} (= {shown})"
        return shown

    @computed_once
    def displays(self) -> dict[str, str]:
        """Every value's display, by name (each worked out when first read)."""
        return _Displays(self)

    def _display(self, name: str) -> str:
        prepared = self.prepared
        raw = self.env.get(name)
        entry = prepared.by_name.get(name)
        if entry is None:
            return prepared.display(raw, None)
        shown = prepared.shown(entry, raw)
        if entry.display == "quantity" and raw is not None:
            shown = self.with_given_unit(name, shown)
        return shown

    def explain(self, name: str) -> Explained:
        """One value, explained (a name the guideline does not give is shown as it is, with no how)."""
        found = self._explained.get(name)
        if found is None:
            entry = self.prepared.by_name.get(name)
            if entry is None:
                found = ("builtin", self.env.get(name), None, self.displays[name], name, "")
            else:
                found = (entry.origin, self.env.get(name), entry.unit, self.displays[name], entry.label,
                         self._how(entry))
            self._explained[name] = found
        return found

    def _how(self, entry: ExplainEntry) -> str:
        if entry.origin == "fact":
            return self.sources.get(entry.name, "")
        displays = self.displays
        how = "".join(part if isinstance(part, str) else displays[part[0]] for part in entry.how)
        if entry.table is not None:
            how = self.prepared.heads[entry.table](self.rows.get(entry.table)) + how
        return how

    def json_values(self, *, generated: bool | None = None) -> dict[str, dict[str, Any]]:
        """Every fact, derived value and table output, explained, in its JSON form.

        New dicts on each call: the caller may change them.

        ``generated`` chooses the path (the tests compare them): True the
        generated function, False value by value, None (the default) the
        generated function once the guideline has explained a few results.
        """
        function = None if generated is False else self.prepared.generated(now=bool(generated))
        out: dict[str, dict[str, Any]] | None = None
        if function is not None:
            try:
                facts = self._facts if self._given is None and type(self._facts) is dict else None
                out = function(self.env, self.rows, facts, self.with_given_unit)
            except Exception:  # noqa: BLE001 - anything unexpected: the plain path below explains
                out = None
        if out is None:
            out = {}
            for name in self.prepared.listed:
                origin, raw, unit, display, label, how = self.explain(name)
                out[name] = {"name": name, "origin": origin, "value": json_value(raw), "unit": unit,
                             "display": display, "label": label, "how": how}
        for name, source in self.sources.items():
            value = out.get(name)
            if value is not None and value["origin"] == "fact":
                value["how"] = source
        return out

    def json_texts(self) -> tuple[dict[str, str], list[str]] | None:
        """Every value's JSON object as text, and the whole "values" object as pieces to join (as
        :meth:`json_values` gives them, written by ``json.dumps(..., ensure_ascii=False)``); None when the
        values have sources to show (the caller writes :meth:`json_values` then).
        """
        if self.sources:
            return None
        facts = self._facts if self._given is None and type(self._facts) is dict else None
        texts: tuple[dict[str, str], list[str]] = self.prepared.generated_text()(self.env, self.rows, facts,
                                                                           self.with_given_unit)
        return texts

    def needs(self, rule: RuleSpec) -> tuple[str, ...]:
        """The missing facts that would decide an undetermined ``rule``, sorted.

        Only those that could still decide the condition (engine.needs); every
        missing fact it depends on if that analysis finds none.
        """
        found = self._tracer.missing(rule.when.tree)
        return tuple(sorted(found or (f for f in rule.facts if self.env.get(f) is None)))

    @computed_once
    def _tracer(self) -> NeedsTracer:
        return NeedsTracer(self.g, self.env)
