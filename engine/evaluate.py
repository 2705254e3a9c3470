"""Stage 4 -- evaluate: facts in, result out, as a pure function.

``evaluate(guideline, facts, on, lang)`` reads nothing but its arguments and
keeps nothing between calls, so one compiled guideline can serve many
threads. Each derived value, table lookup and rule outcome is kept in the
result's trace: explanations are rendered from it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property
from itertools import compress, repeat
from operator import is_
from typing import Any, Mapping

import simpleeval

from engine.accel.codegen import Slow
from engine.model import CompiledGuideline, DerivedSpec, FrozenDict, RecommendationSpec, RuleSpec, TableSpec, Where
from engine.errors import Diagnostic, EvaluationError
from engine.language.expressions import CompiledExpression
from engine.facts import Given, validate_facts
from engine.loading import Document
from engine.texts.formatting import format_date, format_number, localized
from engine.texts.templates import TemplateRuntimeError
from engine.language.units import IdentityCache, round_half_up

__all__ = ["decide_facts", "PLAN_ERRORS", "RESULT_VERSION", "Why", "Recommendation", "Undetermined", "Value", "Result", "evaluate", "decide",
           "match_table"]

RESULT_VERSION = "1.0"
_ARITHMETIC_ERRORS = (ZeroDivisionError, OverflowError, ValueError, TypeError, simpleeval.InvalidExpression)


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
    _why: tuple[str, tuple[str, ...], "_Explainer"] = field(repr=False, compare=False)

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
    result_version: str = RESULT_VERSION
    _guideline: CompiledGuideline | None = field(default=None, repr=False, compare=False)
    _explainer: "_Explainer | None" = field(default=None, repr=False, compare=False)
    _outcomes: tuple[Any, ...] = field(default=(), repr=False)

    @cached_property
    def rules(self) -> Mapping[str, str]:
        """Rule id -> "fired", "not-fired" or "undetermined"."""
        names = {True: "fired", False: "not-fired", None: "undetermined"}
        rules = self._guideline.rules if self._guideline is not None else ()
        return {rule.id: names[outcome] for rule, outcome in zip(rules, self._outcomes)}

    @cached_property
    def undetermined(self) -> tuple[Undetermined, ...]:
        """Rules that could not be decided, each with the missing facts that would decide it."""
        if self._guideline is None or self._explainer is None:
            return ()
        env, out = self._explainer.env, []
        for rule, outcome in zip(self._guideline.rules, self._outcomes):
            if outcome is None:
                needs = tuple(sorted(f for f in rule.facts if env.get(f) is None))
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
        return {name: self._explainer.value(name) for name in _all_names(self._guideline)}

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
        }


def to_json_value(value: Any) -> Any:
    """Mappings, sequences and dates as plain JSON values."""
    if isinstance(value, Mapping):
        return {k: to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


class _Failure(Exception):
    def __init__(self, where: Where, message: str):
        super().__init__(message)
        self.where = where
        self.message = message


# What the one-function plan may raise; the step-by-step path then runs again
# to say exactly where (and raises EvaluationError).
PLAN_ERRORS = _ARITHMETIC_ERRORS + (_Failure,)

def _run(expr: CompiledExpression, env: Mapping[str, Any], where: Where) -> Any:
    try:
        return expr(env)
    except _ARITHMETIC_ERRORS as exc:
        raise _Failure(where, f"evaluating '{expr.text.strip()}' failed: {exc or type(exc).__name__}") from None


def match_table(table: TableSpec, keys: tuple[Any, ...]) -> tuple[tuple[Any, ...], str | None]:
    """The outputs (in declaration order) and the row id for known input ``keys``.

    Raises _Failure when a ``unique`` table has several matching rows.
    """
    if any(k is None for k in keys):
        return tuple(None for _ in table.outputs), None
    hits = [row for row in table.rows if all(c.matches(k) for c, k in zip(row.cells, keys))]
    if not hits:
        return tuple(table.otherwise.get(o) for o in table.outputs), "otherwise"
    if table.hit == "collect":
        return (tuple(tuple(row.outputs[o] for row in hits if row.outputs[o] is not None) for o in table.outputs),
                ",".join(row.id for row in hits))
    if table.hit == "unique" and len(hits) > 1:
        shown = ", ".join(map(str, keys))
        raise _Failure(table.where, f"table '{table.name}' has hit policy unique but rows "
                                    f"{', '.join(r.id for r in hits)} all match {shown}")
    return tuple(hits[0].outputs.get(o) for o in table.outputs), hits[0].id


def _lookup(table: TableSpec, env: dict[str, Any]) -> str | None:
    """Set the table's outputs in ``env``; return the row id, 'otherwise', or None if unknown."""
    keys = tuple(_run(i.expr, env, table.where) for i in table.inputs)
    outputs, row = match_table(table, keys)
    env.update(zip(table.outputs, outputs))
    return row


def _run_steps(guideline: CompiledGuideline, env: dict[str, Any]) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """The reference path: each derived value, table and rule in turn (locates any failure)."""
    rows: dict[str, str | None] = {}
    for step in guideline.plan:
        if isinstance(step, DerivedSpec):
            value = _run(step.expr, env, step.where)
            if value is not None and step.decimals is not None:
                value = round_half_up(value, step.decimals)
            env[step.name] = value
        else:
            rows[step.name] = _lookup(step, env)
    return rows, tuple(_run(rule.when, env, rule.where) for rule in guideline.rules)


def decide(guideline: CompiledGuideline, values: dict[str, Any], on: dt.date, plan: Any = None
           ) -> tuple[dict[str, Any], dict[str, Any], tuple[Any, ...]]:
    """Every value, table row and rule outcome for validated fact ``values``.

    ``plan`` is the guideline compiled to one function (engine.codegen); when it
    fails, the step-by-step path runs to say exactly where.
    """
    env = values  # validate_facts made this dict for this call alone
    env["today"] = on
    if plan is not None:
        try:
            return plan(env)
        except PLAN_ERRORS:
            pass
    try:
        rows, outcomes = _run_steps(guideline, env)
    except _Failure as failure:
        raise EvaluationError([Diagnostic(failure.where.file, failure.where.line, failure.where.col,
                                          "eval.failed", failure.message)]) from None
    return env, rows, outcomes


def decide_facts(guideline: CompiledGuideline, facts: Any, on: dt.date, plan: Any, checked_plan: Any, *,
                 doc: Document | None = None) -> tuple[dict[str, Any], dict[str, Any], tuple[Any, ...], Any]:
    """Validate ``facts`` and decide: (values, table rows, rule outcomes, how facts were given).

    Well-formed facts go through ``checked_plan`` (checks and decisions in one
    function; "given" is then None, worked out later if needed); anything else
    -- or a run-time failure -- through the full validation, which explains
    problems, and the reference path, which locates failures.
    """
    if checked_plan is not None and doc is None and type(facts) is dict:
        try:
            env, rows, outcomes = checked_plan(facts, on.toordinal(), on)
            return env, rows, outcomes, None
        except (Slow, *PLAN_ERRORS):
            pass
    values, given = validate_facts(guideline, facts, on, doc=doc)
    env, rows, outcomes = decide(guideline, values, on, plan)
    return env, rows, outcomes, given


def evaluate(
    guideline: CompiledGuideline,
    facts: Any,
    on: dt.date,
    lang: str,
    *,
    doc: Document | None = None,
    max_output_chars: int = 100_000,
    plan: Any = None,
    checked_plan: Any = None,
) -> Result:
    """Evaluate ``facts`` on date ``on``; raise FactsError or EvaluationError on bad input.

    ``checked_plan`` (engine.codegen, ``validating=True``) is tried first on
    well-formed facts; anything else goes through the full validation.
    """
    env, rows, outcomes, given = decide_facts(guideline, facts, on, plan, checked_plan, doc=doc)
    # On the fast path how each fact was given (its unit) is worked out only if an explanation needs it.
    explainer = _Explainer(guideline, env, given, rows, lang, facts=facts, on=on)
    recommendations: list[Recommendation] = []
    # The rules whose outcome *is* True (not merely truthy), picked in C: most rules do not fire.
    for condition, ordered, makers in compress(_makers(guideline, lang), map(is_, outcomes, _ALWAYS_TRUE)):
        why = (condition, ordered, explainer)
        for maker in makers:
            recommendations.append(maker.make(env, why, max_output_chars))
    # Undetermined rules, statuses and explanations are built from the trace on first use.
    # A frozen dataclass filled directly: its generated __init__ pays a
    # frozen-attribute check per field, a measurable share of a whole evaluation.
    result = object.__new__(Result)
    result.__dict__.update(
        guideline=guideline.id, version=guideline.version, evaluated_on=on, lang=lang,
        recommendations=tuple(recommendations), tables=rows, result_version=RESULT_VERSION, _guideline=guideline,
        _explainer=explainer, _outcomes=tuple(outcomes))
    return result


def _all_names(guideline: CompiledGuideline) -> list[str]:
    names = list(guideline.facts) + [s.name for s in guideline.plan if isinstance(s, DerivedSpec)]
    for step in guideline.plan:
        if isinstance(step, TableSpec):
            names.extend(step.outputs)
    return names


class _Maker:
    """Makes one recommendation for a patient; what does not depend on the patient is prepared once."""

    __slots__ = ("rec", "template", "static", "fields", "dose", "dose_exprs")

    def __init__(self, rule: RuleSpec, rec: RecommendationSpec, lang: str, primary: str):
        self.rec = rec
        self.template = rec.templates.get(lang) or next(iter(rec.templates.values()))
        self.static = self.template.static  # a text with no variable: rendered at load
        self.fields = {"id": rec.id, "rule": rule.id, "kind": rec.kind, "strength": rec.strength,
                       "schedule": rec.schedule, "source": rec.source or rule.source, "evidence": rec.evidence,
                       "notes": rule.notes}
        self.dose: FrozenDict | None = None
        if rec.dose is not None:
            dose = {k: v for k, v in rec.dose.items() if k not in ("drug", "with")}
            dose["drug"] = FrozenDict(name=localized(rec.dose["drug"]["name"], lang, primary),
                                      atc=rec.dose["drug"].get("atc"))
            if "with" in rec.dose:
                dose["with"] = localized(rec.dose["with"], lang, primary)
            self.dose = FrozenDict(dose)
        self.dose_exprs = tuple(rec.dose_exprs.items())

    def make(self, env: Mapping[str, Any], why: tuple[str, tuple[str, ...], "_Explainer"], max_chars: int
             ) -> Recommendation:
        text = self.static
        if text is None:
            try:
                text = self.template.render(env, max_chars)
            except TemplateRuntimeError as exc:
                rec = self.rec
                raise EvaluationError([Diagnostic(rec.where.file, rec.where.line, rec.where.col, "template.failed",
                                                  f"recommendation '{rec.id}': {exc}")]) from None
        dose = self.dose  # read-only and shared when no part of it depends on the patient
        if self.dose_exprs:
            rec = self.rec
            computed = dict(dose)  # type: ignore[arg-type]
            for key, expr in self.dose_exprs:
                try:
                    computed[key] = _run(expr, env, rec.where)
                except _Failure as failure:
                    raise EvaluationError([Diagnostic(rec.where.file, rec.where.line, rec.where.col,
                                                      "eval.failed", failure.message)]) from None
            dose = FrozenDict(computed)
        made = object.__new__(Recommendation)  # as for Result: no per-field frozen check
        fields = made.__dict__
        fields.update(self.fields)
        fields["text"] = text
        fields["dose"] = dose
        fields["_why"] = why
        return made


_MAKERS = IdentityCache()
_ALWAYS_TRUE = repeat(True)  # endless and stateless: safe to share between calls and threads


def _makers(guideline: CompiledGuideline, lang: str) -> tuple[tuple[str, tuple[str, ...], tuple[_Maker, ...]], ...]:
    """For each rule: its condition as written, the names it reads, and its recommendations' makers (cached)."""
    cached = _MAKERS.get(guideline, lang)
    if cached is None:
        primary = guideline.languages[0]
        cached = tuple((rule.when.text.strip(), rule.when.ordered,
                        tuple(_Maker(rule, rec, lang, primary) for rec in rule.then)) for rule in guideline.rules)
        _MAKERS.put(guideline, cached, lang)
    return cached  # type: ignore[return-value]


class _Explainer:
    """Turns values of the trace into displayable, explained values."""

    def __init__(self, guideline: CompiledGuideline, env: Mapping[str, Any], given: Mapping[str, Given] | None,
                 rows: Mapping[str, str | None], lang: str, *, facts: Any = None, on: dt.date | None = None):
        self.g = guideline
        self.env = env
        self._given = given
        self._facts = facts
        self._on = on
        self.rows = rows
        self.lang = lang
        self.cache: dict[str, Value] = {}

    @cached_property
    def producer(self) -> dict[str, TableSpec]:
        """Which table gives each table output."""
        return {out: t for t in self.g.tables.values() for out in t.outputs}

    @property
    def given(self) -> Mapping[str, Given]:
        """How each fact was given (value and unit as written)."""
        if self._given is None:
            self._given = validate_facts(self.g, self._facts, self._on)[1] if self._facts is not None else {}  # type: ignore[arg-type]
        return self._given

    def text(self, texts: Mapping[str, str] | Any) -> str:
        return localized(texts, self.lang, self.g.languages[0])

    def display(self, value: Any, unit: str | None, decimals: int | None = None) -> str:
        if value is None:
            return format_number(None, self.lang)
        if isinstance(value, bool):
            return {"fr": "oui" if value else "non"}.get(self.lang, "yes" if value else "no")
        if isinstance(value, dt.date):
            return format_date(value, self.lang)
        if isinstance(value, (int, float)):
            return format_number(value, self.lang, decimals) + (f" {unit}" if unit else "")
        if isinstance(value, tuple):
            return ", ".join(map(str, value)) if value else "-"
        return str(value)

    def value(self, name: str) -> Value:
        if name in self.cache:
            return self.cache[name]
        raw = self.env.get(name)
        if name in self.g.facts:
            spec = self.g.facts[name]
            unit = spec.units.canonical if spec.units else None
            shown = self.display(raw, unit)
            given = self.given.get(name)
            if given is not None and given.unit and given.unit != unit:
                shown = f"{self.display(given.original, given.unit)} (= {shown})"
            if raw is not None and spec.value_labels.get(str(raw)):
                shown = self.text(spec.value_labels[str(raw)])
            result = Value(name, "fact", raw, unit, shown, self.text(spec.label))
        elif name in self.g.derived:
            spec = self.g.derived[name]
            inputs = ", ".join(f"{self.text(self._label(n))} {self.value(n).display}"
                               for n in spec.expr.ordered)
            formula = self.text(spec.formula)
            how = f"{formula} ({inputs})" if formula else inputs
            result = Value(name, "derived", raw, spec.unit, self.display(raw, spec.unit, spec.decimals),
                           self.text(spec.label), how)
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
            return f"{title}: {'entrée inconnue' if self.lang == 'fr' else 'input unknown'} ({inputs})"
        if row_id == "otherwise":
            return f"{title}: {'aucune ligne' if self.lang == 'fr' else 'no row'} ({inputs})"
        rows = [r for r in table.rows if r.id in row_id.split(",")]
        shown = "; ".join(
            (self.text(r.label) or " / ".join(c.text or str(c.interval) for c in r.cells)) for r in rows)
        return f"{title}: {shown} ({inputs})"
