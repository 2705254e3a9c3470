"""Stage 4 -- evaluate: facts in, result out, as a pure function.

``evaluate(guideline, facts, on, lang)`` reads nothing but its arguments and
keeps nothing between calls, so one compiled guideline can serve many
threads. Each derived value, table lookup and rule outcome is kept in the
result's trace: explanations are rendered from it.
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_left
from collections.abc import Mapping
from functools import partial
from itertools import compress, repeat
from operator import is_
from typing import Any

import simpleeval

from engine.accel.codegen import WHAT_IF, Slow
from engine.errors import Diagnostic, EvaluationError
from engine.facts import validate_facts
from engine.language.expressions import CompiledExpression
from engine.language.intervals import Interval, intersect
from engine.language.scores import Score
from engine.language.units import IdentityCache, settle
from engine.loading import Document
from engine.model import (
    Cell,
    CompiledGuideline,
    DerivedSpec,
    FrozenDict,
    RecommendationSpec,
    RuleSpec,
    TableRow,
    TableSpec,
    Where,
)
from engine.results import Explainer, Probe, Recommendation, Result, make_borderline, make_recommendation, make_result
from engine.texts.formatting import localized
from engine.texts.templates import TemplateRuntimeError

__all__ = ["PLAN_ERRORS", "borderline_probes", "decide", "decide_facts", "evaluate", "match_table"]

_ARITHMETIC_ERRORS = (ZeroDivisionError, OverflowError, ValueError, TypeError, simpleeval.InvalidExpression)


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
    if any(type(k) is Score for k in keys):
        return _match_range(table, keys)
    return _chosen(table, keys,
                   [row for row in table.rows if all(c.matches(k) for c, k in zip(row.cells, keys, strict=True))])


def _chosen(table: TableSpec, keys: tuple[Any, ...], hits: list[TableRow]) -> tuple[tuple[Any, ...], str | None]:
    """The outputs and row id(s) the rows that match give, by the table's hit policy."""
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


def _cell_holds(cell: Cell, key: Any) -> bool | None:
    """Whether ``key`` satisfies ``cell``; for a score's range, None when the range straddles the cell."""
    if type(key) is not Score or cell.kind != "interval":
        return cell.matches(key)
    assert cell.interval is not None
    span = Interval(key.low, key.high, True, True)
    if intersect(span, cell.interval) is None:
        return False
    return True if key.low in cell.interval and key.high in cell.interval else None


def _match_range(table: TableSpec, keys: tuple[Any, ...]) -> tuple[tuple[Any, ...], str | None]:
    """A table read with a score's range: decided only when every value of the range gives the same row(s)."""
    unknown = tuple(None for _ in table.outputs), None
    states: list[tuple[TableRow, bool | None]] = []
    for row in table.rows:
        held = [_cell_holds(c, k) for c, k in zip(row.cells, keys, strict=True)]
        states.append((row, False if False in held else None if None in held else True))
    if table.hit == "first":
        for row, state in states:
            if state is None:
                return unknown  # an earlier row may or may not match
            if state:
                return tuple(row.outputs.get(o) for o in table.outputs), row.id
    elif any(state is None for _, state in states):
        return unknown
    return _chosen(table, keys, [row for row, state in states if state])


def _lookup(table: TableSpec, env: dict[str, Any]) -> str | None:
    """Set the table's outputs in ``env``; return the row id, 'otherwise', or None if unknown."""
    keys = tuple(_run(i.expr, env, table.where) for i in table.inputs)
    outputs, row = match_table(table, keys)
    env.update(zip(table.outputs, outputs, strict=True))
    return row


def _run_steps(guideline: CompiledGuideline, env: dict[str, Any], override: Mapping[str, Any] | None = None
               ) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """The reference path: each derived value, table and rule in turn (locates any failure).

    ``override`` replaces derived values by name as soon as they are computed
    (what-if probes for borderline cautions).
    """
    rows: dict[str, str | None] = {}
    for step in guideline.plan:
        if isinstance(step, DerivedSpec):
            value = _run(step.expr, env, step.where)
            if step.numeric:
                value = _settled(step, value)
            if override and step.name in override:
                value = override[step.name]
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
            decided: tuple[dict[str, Any], dict[str, Any], tuple[Any, ...]] = plan(env)
            return decided
        except PLAN_ERRORS:
            pass
    try:
        rows, outcomes = _run_steps(guideline, env)
    except _Failure as failure:
        raise EvaluationError([Diagnostic(failure.where.file, failure.where.line, failure.where.col,
                                          "eval.failed", failure.message)]) from None
    return env, rows, outcomes


def decide_facts(guideline: CompiledGuideline, facts: Any, on: dt.date, plan: Any, checked_plan: Any, *,
                 doc: Document | None = None
                 ) -> tuple[dict[str, Any], dict[str, Any], tuple[Any, ...], Any, dict[str, Any] | None]:
    """Validate ``facts`` and decide: (values, table rows, rule outcomes, how facts were given, quantities).

    Well-formed facts go through ``checked_plan`` (checks and decisions in one
    function; "given" is then None, worked out later if needed, and
    ``quantities`` holds the quantities given in another unit than their
    canonical one, copied as given); anything else -- or a run-time failure
    -- through the full validation, which explains problems (``given`` says
    how every fact was given, ``quantities`` is None), and the reference path,
    which locates failures.
    """
    if checked_plan is not None and doc is None and type(facts) is dict:
        quantities: dict[str, Any] = {}
        try:
            env, rows, outcomes = checked_plan(facts, on.toordinal(), on, quantities)
            return env, rows, outcomes, None, quantities
        except (Slow, *PLAN_ERRORS):
            pass
    values, given = validate_facts(guideline, facts, on, doc=doc)
    env, rows, outcomes = decide(guideline, values, on, plan)
    return env, rows, outcomes, given, None


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
    sources: Mapping[str, str] | None = None,
) -> Result:
    """Evaluate ``facts`` on date ``on``; raise FactsError or EvaluationError on bad input.

    ``checked_plan`` (engine.codegen, ``validating=True``) is tried first on
    well-formed facts; anything else goes through the full validation.
    """
    env, rows, outcomes, given, quantities = decide_facts(guideline, facts, on, plan, checked_plan, doc=doc)
    # On the fast path how each fact was given (its unit) is worked out only if an explanation
    # needs it, from the copies the plan took of the quantities given in another unit.
    explainer = Explainer(guideline, env, given, rows, lang, facts=quantities, on=on,
                          sources=dict(sources) if sources else None)
    recommendations: list[Recommendation] = []
    # The rules whose outcome *is* True (not merely truthy), picked in C: most rules do not fire.
    for condition, ordered, makers in compress(_makers(guideline, lang), map(is_, outcomes, _ALWAYS_TRUE)):
        why = (condition, ordered, explainer)
        for maker in makers:
            recommendations.append(maker.make(env, why, max_output_chars))
    # Undetermined rules, statuses, explanations and borderline cautions are built from the trace on
    # first use (a caution makes the decisions again across a threshold: a cost only when read).
    outcomes = tuple(outcomes)
    # A partial, not a closure: two objects for the garbage collector to walk instead of eight, for
    # every result a caller keeps (full collections walk every live result).
    borderline = partial(_cautions, guideline, env, rows, outcomes, plan, explainer) if guideline.thresholds else None
    return make_result(guideline, on, lang, tuple(recommendations), rows, explainer, outcomes, borderline)


def _cautions(guideline: CompiledGuideline, env: Mapping[str, Any], rows: Mapping[str, Any],
              outcomes: tuple[Any, ...], plan: Any, explainer: Explainer) -> tuple[Any, ...]:
    """The borderline cautions of one result (made when Result.borderline is first read)."""
    return tuple(make_borderline(explainer, p) for p in borderline_probes(guideline, env, rows, outcomes, plan))


def _settled(step: DerivedSpec, value: Any) -> Any:
    """A computed number as decisions read it (engine.language.units.settle), finite or a failure naming it."""
    try:
        value = settle(value, step.decimals)
    except (OverflowError, ValueError) as exc:
        raise _Failure(step.where, f"'{step.name}' = '{step.expr.text.strip()}' cannot be rounded: {exc}") from None
    if (isinstance(value, float) and not math.isfinite(value)) or (
            type(value) is int and not -1e308 < value < 1e308):
        shown = value if isinstance(value, float) else "a whole number beyond 1e308"
        raise _Failure(step.where, f"'{step.name}' = '{step.expr.text.strip()}' gave {shown}, not a finite number")
    return value


def borderline_probes(guideline: CompiledGuideline, env: Mapping[str, Any], rows: Mapping[str, Any],
                      outcomes: tuple[Any, ...], plan: Any = None) -> list[Probe]:
    """What would change if each value with a tolerance were on the other side of a threshold it is near.

    For each number with a declared tolerance lying within that tolerance of
    a threshold (a table bound or a constant it is compared with), the
    decisions are made again with the value moved just across the threshold
    (by the one-function ``plan`` when given, which takes what-if values for
    derived values; else, or if it fails, by the reference path); a probe is
    kept when a table row or a rule outcome changes. Only values near a
    threshold cost a probe.
    """
    found: list[Probe] = []
    for name, tolerance, thresholds, ordered in _probe_specs(guideline):
        value = env.get(name)
        if type(value) is not float and type(value) is not int and (
                not isinstance(value, (int, float)) or isinstance(value, bool)):
            continue
        # Most values are near no threshold: the nearest two (by bisection) say so.
        at = bisect_left(ordered, value)
        if (at == len(ordered) or ordered[at] - value > tolerance) and (at == 0 or value - ordered[at - 1] > tolerance):
            continue
        for threshold in thresholds:
            if abs(value - threshold) > tolerance:
                continue
            for other in _across(value, threshold, tolerance):
                changes = _changes(guideline, env, rows, outcomes, name, other, plan)
                if changes:
                    found.append(Probe(name, value, threshold, tolerance, other, changes))
                    break
    return found


_PROBES = IdentityCache()
_FACT_NAMES = IdentityCache()  # the names a probe gives the plan: every fact and today


def _probe_specs(guideline: CompiledGuideline) -> list[tuple[str, float, tuple[float, ...], list[float]]]:
    """(name, tolerance, thresholds, thresholds sorted) of each value with a tolerance (prepared once)."""
    return _PROBES.get_or_make(guideline, "", _probe_specs_made, guideline)


def _probe_specs_made(guideline: CompiledGuideline) -> list[tuple[str, float, tuple[float, ...], list[float]]]:
    return [(name, tolerance, thresholds, sorted(thresholds))
            for name, thresholds in guideline.thresholds.items()
            if (tolerance := guideline.tolerance_of(name)) is not None]


def _across(value: float, threshold: float, tolerance: float) -> tuple[float, ...]:
    """Values to try on the other side of ``threshold``: the threshold itself, then just beyond it."""
    step = tolerance / 100
    if value < threshold:
        return (threshold, threshold + step)
    if value > threshold:
        return (threshold, threshold - step)
    return (threshold - step, threshold + step)


def _names_probed(guideline: CompiledGuideline) -> tuple[str, ...]:
    return (*guideline.facts, "today")


def _changes(guideline: CompiledGuideline, env: Mapping[str, Any], rows: Mapping[str, Any], outcomes: tuple[Any, ...],
             name: str, other: float, plan: Any = None) -> tuple[tuple[str, str, Any, Any], ...]:
    """Table rows, their outputs and rule outcomes that differ when ``name`` is ``other``."""
    names: tuple[str, ...] = _FACT_NAMES.get_or_make(guideline, "", _names_probed, guideline)
    probe: dict[str, Any] = dict(zip(names, map(env.get, names), strict=True))
    if name in probe:
        probe[name] = other
    there: tuple[Any, ...] | None = None
    if plan is not None:
        try:
            there = plan({**probe, WHAT_IF: {name: other}})  # a copy: the reference path below reads probe as is
        except PLAN_ERRORS:
            there = None  # the reference path below says whether the other side can be evaluated
    if there is not None:
        probe, rows_there, outcomes_there = there
    else:
        try:
            rows_there, outcomes_there = _run_steps(guideline, probe, {name: other})
        except _Failure:
            return ()  # the other side cannot be evaluated: nothing to compare
    changes: list[tuple[str, str, Any, Any]] = []
    for table in guideline.tables.values():
        if rows.get(table.name) != rows_there.get(table.name):
            changes.append(("table", table.name, rows.get(table.name), rows_there.get(table.name)))
            changes.extend(("output", out, env.get(out), probe.get(out)) for out in table.outputs
                           if env.get(out) != probe.get(out))
    for rule, here, there in zip(guideline.rules, outcomes, outcomes_there, strict=True):
        if here is not there:
            changes.append(("rule", rule.id, here, there))
    return tuple(changes)


class _Maker:
    """Makes one recommendation for a patient; what does not depend on the patient is prepared once."""

    __slots__ = ("dose", "dose_exprs", "fields", "rec", "static", "template")

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

    def make(self, env: Mapping[str, Any], why: tuple[str, tuple[str, ...], Explainer], max_chars: int
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
        return make_recommendation(self.fields, text, dose, why)


_MAKERS = IdentityCache()
_ALWAYS_TRUE = repeat(True)  # endless and stateless: safe to share between calls and threads


def _makers(guideline: CompiledGuideline, lang: str) -> tuple[tuple[str, tuple[str, ...], tuple[_Maker, ...]], ...]:
    """For each rule: its condition as written, the names it reads, and its recommendations' makers (cached)."""
    return _MAKERS.get_or_make(guideline, lang, _makers_made, guideline, lang)


def _makers_made(guideline: CompiledGuideline, lang: str) -> tuple[tuple[str, tuple[str, ...], tuple[_Maker, ...]], ...]:
    primary = guideline.languages[0]
    return tuple((rule.when.text.strip(), rule.when.ordered,
                  tuple(_Maker(rule, rec, lang, primary) for rec in rule.then)) for rule in guideline.rules)
