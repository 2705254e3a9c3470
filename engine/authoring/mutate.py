"""Mutation testing of a guideline: which small errors would its patient cases let through?

A *mutant* is the guideline with one plausible authoring slip -- a threshold
moved by one step, ``<`` written for ``<=``, a table row lost, an ``and`` for
an ``or``, a dose or a number in a text changed. Each is made from the
compiled guideline (no reload: only what changed is compiled again, and the
decision plan is generated for it), then the guideline's own cases run
against it. A mutant is *killed* when some case fails; one that survives
shows a decision no case pins down. The score is killed / (mutants that
could be killed).

Operators are small classes, one per kind of slip (like the lint rules), in
:data:`OPERATORS`. A mutant that no case can kill because it changes nothing
a patient could see (an *equivalent* mutant) is marked on its line of the
guideline with a comment, reason required::

    when: x < 30  # mutate: equivalent compare-swap -- x is a whole number of days

Quoted words narrow a mark to the mutants whose description contains them
(``bound-step "low bound 0"``).

It is then listed apart and left out of the score.
"""

from __future__ import annotations

import ast
import copy
import math
import multiprocessing
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, ClassVar, cast

from engine.authoring.cases import Case, run_case
from engine.authoring.replace import replace_derived, replace_fact, replace_recommendation, replace_rule, replace_table
from engine.authoring.wholes import whole_valued
from engine.errors import Diagnostic, EngineError
from engine.guideline import Guideline
from engine.language.expressions import CompiledExpression, recompiled
from engine.language.intervals import Interval
from engine.loading import Document, parse_yaml
from engine.model import (
    Cell,
    CompiledGuideline,
    DerivedSpec,
    FrozenDict,
    RecommendationSpec,
    RuleSpec,
    TableRow,
    TableSpec,
)
from engine.texts.templates import compile_template

__all__ = ["OPERATORS", "Mutant", "MutationReport", "Operator", "mutants", "run_mutants"]

Edit = Callable[[CompiledGuideline], CompiledGuideline]


@dataclass(frozen=True)
class Mutant:
    """One slip: where, what in words, and how to make it from the compiled guideline."""

    operator: str
    file: str
    line: int
    col: int
    described: str  # "`zoledronic_infusions_given == 0` → `<= 1`"
    edit: Edit = field(repr=False, compare=False)
    touches: tuple[str, ...] = ()  # names, rules or tables it changes (to find the case nearest to killing it)

    @property
    def where(self) -> str:
        """``file:line:col``."""
        return f"{self.file}:{self.line}:{self.col}"


class Operator:
    """A kind of slip. Subclasses set ``name`` and ``summary`` and yield mutants."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""

    def mutants(self, g: CompiledGuideline, spots: Spots) -> Iterator[Mutant]:
        """Every mutant of this kind in ``g``."""
        raise NotImplementedError


# --- where things are in the file ---------------------------------------------------------

class Spots:
    """Positions in the guideline's file of what operators change (its document, read once)."""

    def __init__(self, g: CompiledGuideline, doc: Document | None) -> None:
        self.g = g
        self.doc = doc
        self.rule_index = {rule.id: i for i, rule in enumerate(g.rules)}

    def at(self, *path: Any) -> tuple[int, int]:
        if self.doc is None:
            return 1, 1
        position = self.doc.position(path)
        return position.line, position.col

    def expression(self, owner: RuleSpec | DerivedSpec, node: ast.AST | None = None) -> tuple[int, int]:
        """Where ``node`` of ``owner``'s expression is (the expression's start when it spans lines)."""
        if isinstance(owner, RuleSpec):
            line, col = self.at("rules", self.rule_index[owner.id], "when")
            text = owner.when.text
        else:
            line, col = self.at("derived", owner.name, self._derived_key(owner))
            text = owner.expr.text
        if node is not None and "\n" not in text.strip() and hasattr(node, "col_offset"):
            col += node.col_offset - (len(text) - len(text.lstrip()))
        return line, col

    def _derived_key(self, spec: DerivedSpec) -> str:
        data = self.doc.data if self.doc is not None else None
        entry = data.get("derived", {}).get(spec.name, {}) if isinstance(data, dict) else {}
        return "expr" if "expr" in entry else next((k for k, v in entry.items() if v == spec.expr.text), "expr")

    def rule(self, rule: RuleSpec, *sub: Any) -> tuple[int, int]:
        return self.at("rules", self.rule_index[rule.id], *sub)

    def recommendation(self, rule: RuleSpec, index: int, *sub: Any) -> tuple[int, int]:
        return self.at("rules", self.rule_index[rule.id], "then", index, *sub)


# The guideline with one part replaced: engine.authoring.replace.

def _without_row(r: int, rows: tuple[TableRow, ...]) -> tuple[TableRow, ...]:
    return rows[:r] + rows[r + 1:]


# --- expression mutants --------------------------------------------------------------------

def _expressions(g: CompiledGuideline) -> Iterator[tuple[RuleSpec | DerivedSpec, CompiledExpression]]:
    for rule in g.rules:
        yield rule, rule.when
    for step in g.plan:
        if isinstance(step, DerivedSpec):
            yield step, step.expr


def _walk(g: CompiledGuideline, kind: type[ast.AST]) -> Iterator[tuple[RuleSpec | DerivedSpec, int, Any]]:
    """(owner, index in ast.walk order, node) of every node of ``kind`` in every condition and formula."""
    for owner, expr in _expressions(g):
        for i, node in enumerate(ast.walk(expr.tree)):
            if isinstance(node, kind):
                yield owner, i, node


def _replaced(g: CompiledGuideline, owner: RuleSpec | DerivedSpec, expr: CompiledExpression) -> CompiledGuideline:
    if isinstance(owner, RuleSpec):
        return replace_rule(g, owner, replace(owner, when=expr))
    return replace_derived(g, replace(owner, expr=expr))


def _tree_edit(owner: RuleSpec | DerivedSpec, index: int, change: Callable[[ast.AST], ast.AST | None]) -> Edit:
    """An edit that applies ``change`` to the ``index``-th node (in ast.walk order) of a copy of the tree."""

    def edit(g: CompiledGuideline) -> CompiledGuideline:
        expr = owner.when if isinstance(owner, RuleSpec) else owner.expr
        tree = copy.deepcopy(expr.tree)
        node = list(ast.walk(tree))[index]
        changed = change(node)
        if changed is not None:  # the node replaced as a whole (the root, for negation)
            tree.body = changed  # type: ignore[assignment]
        ast.fix_missing_locations(tree)
        return _replaced(g, owner, recompiled(expr, tree))
    return edit


def _src(node: ast.AST) -> str:
    return ast.unparse(node)


def _touches(owner: RuleSpec | DerivedSpec) -> tuple[str, ...]:
    return (owner.id,) if isinstance(owner, RuleSpec) else (owner.name,)


def _operand_name(compare: ast.Compare) -> str | None:
    for side in [compare.left, *compare.comparators]:
        if isinstance(side, ast.Name):
            return side.id
    return None


def _step(g: CompiledGuideline, name: str | None, number: float) -> float:
    """One step of precision for ``number`` compared with ``name``.

    A whole-number value (engine.authoring.wholes) moves by 1; a derived value with declared decimals by
    one unit of its last decimal; otherwise one unit of the last decimal the
    number is written with, and at least 0.1 for a number that is not a
    whole-number fact (30 on a clearance moves to 29.9 and 30.1).
    """
    if name is not None and whole_valued(g, ast.Name(name, ast.Load())):
        return 1.0  # an integer fact, a count, a score of whole points, months between two dates...
    derived = g.derived.get(name or "")
    decimals = None if derived is None else (derived.decimals if derived.decimals is not None
                                            else derived.display_decimals)
    if decimals is not None:
        return float(10 ** -decimals)
    return _written_step(number)


def _written_step(number: float) -> float:
    """One unit of the last decimal ``number`` is written with, at least 0.1 (30 → 0.1, 3.25 → 0.01)."""
    written = repr(float(number)).split(".")[1] if "." in repr(float(number)) else ""
    return float(10 ** -max(len(written.rstrip("0")), 1))


def _moved(number: float, step: float) -> float:
    return round(number + step, 10)


class ThresholdStep(Operator):
    """A number a value is compared with, moved one step of precision down and up (``age >= 75`` → ``>= 74``)."""

    name = "threshold-step"
    summary = "a compared number moved by one step of its precision, both ways"

    def mutants(self, g: CompiledGuideline, spots: Spots) -> Iterator[Mutant]:
        for owner, i, node in _walk(g, ast.Compare):
            if not all(type(op) in _SWAPS for op in node.ops):
                continue  # a threshold is what an order compares with (== 0 is enum-like: left alone)
            name = _operand_name(node)
            for j, side in enumerate([node.left, *node.comparators]):
                if not (isinstance(side, ast.Constant) and type(side.value) in (int, float)):
                    continue
                number = cast(float, side.value)
                step = _step(g, name, number)
                for sign in (-1, 1):
                    moved = _moved(number, sign * step)
                    if type(number) is int and float(moved).is_integer():
                        moved = int(moved)

                    def change(n: ast.AST, j: int = j, moved: float = moved) -> None:
                        assert isinstance(n, ast.Compare)
                        target = [n.left, *n.comparators][j]
                        assert isinstance(target, ast.Constant)
                        target.value = moved

                    line, col = spots.expression(owner, side)
                    yield Mutant(self.name, g.file, line, col, f"`{_src(node)}`: {number!r} → {moved!r}",
                                 _tree_edit(owner, i, change), _touches(owner))


_SWAPS: dict[type, type] = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt}
_SYMBOL = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}


class EqualityWiden(Operator):
    """A count compared with ``==`` widened by one step (``infusions == 0`` → ``<= 1``, and ``>= -1``)."""

    name = "equality-widen"
    summary = "a number compared with == widened to <= or >= one step away"

    def mutants(self, g: CompiledGuideline, spots: Spots) -> Iterator[Mutant]:
        for owner, i, node in _walk(g, ast.Compare):
            if not (len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq)
                    and isinstance(node.comparators[0], ast.Constant)
                    and type(node.comparators[0].value) in (int, float)):
                continue
            number = cast(float, node.comparators[0].value)
            step = _step(g, _operand_name(node), number)
            for op, moved in ((ast.LtE, _moved(number, step)), (ast.GtE, _moved(number, -step))):
                if type(number) is int and float(moved).is_integer():
                    moved = int(moved)

                def change(n: ast.AST, op: type = op, moved: float = moved) -> None:
                    assert isinstance(n, ast.Compare) and isinstance(n.comparators[0], ast.Constant)
                    n.ops[0] = op()
                    n.comparators[0].value = moved

                line, col = spots.expression(owner, node)
                yield Mutant(self.name, g.file, line, col, f"`{_src(node)}` → `{_SYMBOL[op]} {moved!r}`",
                             _tree_edit(owner, i, change), _touches(owner))


class CompareSwap(Operator):
    """``<`` written for ``<=`` and the like: the boundary value decided the other way."""

    name = "compare-swap"
    summary = "< and <=, > and >= exchanged"

    def mutants(self, g: CompiledGuideline, spots: Spots) -> Iterator[Mutant]:
        for owner, i, node in _walk(g, ast.Compare):
            for k, op in enumerate(node.ops):
                if type(op) not in _SWAPS:
                    continue
                other = _SWAPS[type(op)]

                def change(n: ast.AST, k: int = k, other: type = other) -> None:
                    assert isinstance(n, ast.Compare)
                    n.ops[k] = other()

                line, col = spots.expression(owner, node)
                yield Mutant(self.name, g.file, line, col,
                             f"`{_src(node)}`: `{_SYMBOL[type(op)]}` → `{_SYMBOL[cast(type[ast.cmpop], other)]}`",
                             _tree_edit(owner, i, change), _touches(owner))


class AndOr(Operator):
    """``and`` written for ``or``, or the reverse."""

    name = "and-or"
    summary = "and and or exchanged"

    def mutants(self, g: CompiledGuideline, spots: Spots) -> Iterator[Mutant]:
        for owner, i, node in _walk(g, ast.BoolOp):
            was, now = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")

            def change(n: ast.AST) -> None:
                assert isinstance(n, ast.BoolOp)
                n.op = ast.Or() if isinstance(n.op, ast.And) else ast.And()

            line, col = spots.expression(owner, node)
            yield Mutant(self.name, g.file, line, col, f"`{_src(node)}`: `{was}` → `{now}`",
                         _tree_edit(owner, i, change), _touches(owner))


class DropOperand(Operator):
    """One condition of an ``and`` or an ``or`` forgotten."""

    name = "drop-operand"
    summary = "one operand of and / or dropped"

    def mutants(self, g: CompiledGuideline, spots: Spots) -> Iterator[Mutant]:
        for owner, i, node in _walk(g, ast.BoolOp):
            for k, dropped in enumerate(node.values):
                def change(n: ast.AST, k: int = k) -> None:
                    assert isinstance(n, ast.BoolOp)
                    del n.values[k]
                    if len(n.values) == 1:  # `a and b` without b is `a`: kept as a one-operand `a and True`
                        n.values.append(ast.Constant(isinstance(n.op, ast.And)))

                line, col = spots.expression(owner, dropped)
                yield Mutant(self.name, g.file, line, col, f"`{_src(node)}`: `{_src(dropped)}` dropped",
                             _tree_edit(owner, i, change), _touches(owner))


class Negate(Operator):
    """A rule's whole condition negated (the rule fires exactly when it should not)."""

    name = "negate"
    summary = "a rule's condition negated"

    def mutants(self, g: CompiledGuideline, spots: Spots) -> Iterator[Mutant]:
        for rule in g.rules:
            def change(n: ast.AST) -> ast.AST:
                assert isinstance(n, ast.Expression)
                return ast.UnaryOp(ast.Not(), n.body)

            line, col = spots.expression(rule)
            yield Mutant(self.name, g.file, line, col, f"rule '{rule.id}': `not ({rule.when.text.strip()})`",
                         _tree_edit(rule, 0, change), (rule.id,))


class EnumLiteral(Operator):
    """A value compared with an enum replaced by another value of that enum (``== 'multiple'`` → ``== 'oligometastatic'``)."""

    name = "enum-literal"
    summary = "an enum value in a condition replaced by another of its values"

    def mutants(self, g: CompiledGuideline, spots: Spots) -> Iterator[Mutant]:
        for owner, i, node in _walk(g, ast.Compare):
            name = _operand_name(node)
            spec = g.facts.get(name or "")
            values = spec.values if spec is not None and spec.type in ("enum", "list") else ()
            if not values:
                continue
            for j, side in enumerate([node.left, *node.comparators]):
                literals = [side] if isinstance(side, ast.Constant) else \
                    list(side.elts) if isinstance(side, (ast.List, ast.Tuple)) else []
                for m, literal in enumerate(literals):
                    if not (isinstance(literal, ast.Constant) and literal.value in values):
                        continue
                    other = values[(values.index(literal.value) + 1) % len(values)]
                    if other == literal.value:
                        continue

                    def change(n: ast.AST, j: int = j, m: int = m, other: str = other) -> None:
                        assert isinstance(n, ast.Compare)
                        target = [n.left, *n.comparators][j]
                        if isinstance(target, (ast.List, ast.Tuple)):
                            target = target.elts[m]
                        assert isinstance(target, ast.Constant)
                        target.value = other

                    line, col = spots.expression(owner, literal)
                    yield Mutant(self.name, g.file, line, col,
                                 f"`{_src(node)}`: {literal.value!r} → {other!r}", _tree_edit(owner, i, change),
                                 _touches(owner))


# --- table mutants -------------------------------------------------------------------------

def _row_edit(table: TableSpec, rows: Callable[[tuple[TableRow, ...]], tuple[TableRow, ...]]) -> Edit:
    def edit(g: CompiledGuideline) -> CompiledGuideline:
        return replace_table(g, replace(table, rows=rows(table.rows)))
    return edit


class RowBoundStep(Operator):
    """A row's interval bound moved by one step of precision, both ways (``[50, 60]`` → ``[49.9, 60]``)."""

    name = "bound-step"
    summary = "a table row's bound moved by one step of its precision, both ways"

    def mutants(self, g: CompiledGuideline, spots: Spots) -> Iterator[Mutant]:
        for table in g.tables.values():
            for r, row in enumerate(table.rows):
                for c, cell in enumerate(row.cells):
                    if cell.kind != "interval" or cell.interval is None:
                        continue
                    name = table.inputs[c].expr.text.strip()
                    for side in ("low", "high"):
                        bound = getattr(cell.interval, side)
                        if math.isinf(bound):
                            continue
                        step = _step(g, name, bound)
                        for sign in (-1, 1):
                            moved = _moved(bound, sign * step)
                            interval = replace(cell.interval, low=moved) if side == "low" else \
                                replace(cell.interval, high=moved)
                            if interval.low > interval.high:
                                continue
                            yield Mutant(self.name, g.file, row.where.line, row.where.col,
                                         f"table '{table.name}' row '{row.id}': {side} bound {bound:g} → {moved:g}",
                                         _row_edit(table, _cell_changed(r, c, replace(cell, interval=interval))),
                                         (table.name, *table.outputs))


def _cell_changed(r: int, c: int, cell: Cell) -> Callable[[tuple[TableRow, ...]], tuple[TableRow, ...]]:
    def rows(old: tuple[TableRow, ...]) -> tuple[TableRow, ...]:
        row = old[r]
        cells = tuple(cell if i == c else x for i, x in enumerate(row.cells))
        return tuple(replace(row, cells=cells) if i == r else x for i, x in enumerate(old))
    return rows


class BoundFlip(Operator):
    """A row's interval bound made open where it was closed, or closed where it was open."""

    name = "bound-flip"
    summary = "a table row's bound flipped between open and closed"

    def mutants(self, g: CompiledGuideline, spots: Spots) -> Iterator[Mutant]:
        for table in g.tables.values():
            for r, row in enumerate(table.rows):
                for c, cell in enumerate(row.cells):
                    if cell.kind != "interval" or cell.interval is None:
                        continue
                    for side in ("low", "high"):
                        if math.isinf(getattr(cell.interval, side)):
                            continue
                        closed = getattr(cell.interval, f"{side}_closed")
                        interval: Interval = replace(cell.interval, **{f"{side}_closed": not closed})
                        yield Mutant(self.name, g.file, row.where.line, row.where.col,
                                     f"table '{table.name}' row '{row.id}': {side} bound "
                                     f"{'closed → open' if closed else 'open → closed'} ({cell.interval} → {interval})",
                                     _row_edit(table, _cell_changed(r, c, replace(cell, interval=interval))),
                                     (table.name, *table.outputs))


class RowRemove(Operator):
    """A table row lost."""

    name = "row-remove"
    summary = "a table row removed"

    def mutants(self, g: CompiledGuideline, spots: Spots) -> Iterator[Mutant]:
        for table in g.tables.values():
            if len(table.rows) < 2:
                continue
            for r, row in enumerate(table.rows):
                yield Mutant(self.name, g.file, row.where.line, row.where.col,
                             f"table '{table.name}': row '{row.id}' removed",
                             _row_edit(table, partial(_without_row, r)), (table.name, *table.outputs))


class RowSwapOutputs(Operator):
    """Two neighbouring rows' outputs exchanged (a dose given to the wrong band)."""

    name = "row-swap-outputs"
    summary = "two neighbouring rows' outputs exchanged"

    def mutants(self, g: CompiledGuideline, spots: Spots) -> Iterator[Mutant]:
        for table in g.tables.values():
            for r in range(len(table.rows) - 1):
                a, b = table.rows[r], table.rows[r + 1]
                if dict(a.outputs) == dict(b.outputs):
                    continue

                def rows(old: tuple[TableRow, ...], r: int = r) -> tuple[TableRow, ...]:
                    first, second = old[r], old[r + 1]
                    return old[:r] + (replace(first, outputs=second.outputs),
                                      replace(second, outputs=first.outputs)) + old[r + 2:]

                yield Mutant(self.name, g.file, a.where.line, a.where.col,
                             f"table '{table.name}': outputs of rows '{a.id}' and '{b.id}' exchanged",
                             _row_edit(table, rows), (table.name, *table.outputs))


# --- rules, recommendations, doses, texts ---------------------------------------------------

class RuleRemove(Operator):
    """A rule lost (with its recommendations)."""

    name = "rule-remove"
    summary = "a rule removed"

    def mutants(self, g: CompiledGuideline, spots: Spots) -> Iterator[Mutant]:
        for rule in g.rules:
            line, col = spots.rule(rule)
            yield Mutant(self.name, g.file, line, col, f"rule '{rule.id}' removed",
                         partial(replace_rule, old=rule, new=None), (rule.id,))


class RecommendationRemove(Operator):
    """One recommendation of a rule that makes several lost."""

    name = "recommendation-remove"
    summary = "a recommendation removed from a rule that makes several"

    def mutants(self, g: CompiledGuideline, spots: Spots) -> Iterator[Mutant]:
        for rule in g.rules:
            if len(rule.then) < 2:
                continue  # removing the only one is rule-remove's mutant
            for k, rec in enumerate(rule.then):
                line, col = spots.recommendation(rule, k)
                yield Mutant(self.name, g.file, line, col, f"rule '{rule.id}': recommendation '{rec.id}' removed",
                             partial(replace_recommendation, rule=rule, old=rec, new=None), (rule.id,))


def _bumped(value: Any) -> Any:
    """A number changed by one unit of its last written decimal (4.0 → 4.1, 20 → 21)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int):
        return value + 1
    return _moved(value, _written_step(value))


class DoseChange(Operator):
    """A structured dose's amount, or a schedule phase's number of doses or amount, changed by one unit of its last decimal."""

    name = "dose-change"
    summary = "a dose amount, or a schedule phase's doses or amount, changed"

    def mutants(self, g: CompiledGuideline, spots: Spots) -> Iterator[Mutant]:
        for rule in g.rules:
            for k, rec in enumerate(rule.then):
                if rec.dose is not None and "amount" not in rec.dose_exprs and _bumped(rec.dose.get("amount")) is not None:
                    amount = rec.dose["amount"]
                    new = FrozenDict({**rec.dose, "amount": _bumped(amount)})
                    line, col = spots.recommendation(rule, k, "dose", "amount")
                    yield Mutant(self.name, g.file, line, col,
                                 f"recommendation '{rec.id}': dose {amount:g} → {_bumped(amount):g}",
                                 partial(replace_recommendation, rule=rule, old=rec, new=replace(rec, dose=new)), (rule.id,))
                for s, part in enumerate(rec.schedule):
                    for key in ("doses", "amount"):  # how many doses a phase gives, and how much each
                        if _bumped(part.get(key)) is None:
                            continue
                        schedule = tuple(FrozenDict({**p, key: _bumped(p[key])}) if i == s else p
                                         for i, p in enumerate(rec.schedule))
                        line, col = spots.recommendation(rule, k, "schedule", s, key)
                        yield Mutant(self.name, g.file, line, col,
                                     f"recommendation '{rec.id}': schedule phase {s + 1} {key} {part[key]:g} → "
                                     f"{_bumped(part[key]):g}",
                                     partial(replace_recommendation, rule=rule, old=rec,
                                             new=replace(rec, schedule=schedule)), (rule.id,))


class UnitFactor(Operator):
    """An accepted unit's conversion factor changed (88.4 → 88.5 µmol/L per mg/dL)."""

    name = "unit-factor"
    summary = "a unit's conversion factor changed"

    def mutants(self, g: CompiledGuideline, spots: Spots) -> Iterator[Mutant]:
        for fact in g.facts.values():
            if fact.units is None:
                continue
            for u, unit in enumerate(fact.units.units):
                if unit.is_identity:
                    continue
                key = "multiply_by" if unit.multiply_by != 1 else "divide_by"
                factor = getattr(unit, key)
                new_unit = replace(unit, **{key: _bumped(factor)})
                units = replace(fact.units, units=tuple(new_unit if i == u else x
                                                        for i, x in enumerate(fact.units.units)))
                new_fact = replace(fact, units=units)
                line, col = fact.where.line, fact.where.col
                yield Mutant(self.name, g.file, line, col,
                             f"fact '{fact.name}': {unit.name} {key.replace('_', ' ')} {factor:g} → {_bumped(factor):g}",
                             partial(replace_fact, new=new_fact),
                             (fact.name,))


_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)?(?![\w])")
_IF = re.compile(r"\{%-?\s*if\s+(.+?)\s*-?%\}")


def _text_edit(rule: RuleSpec, rec: RecommendationSpec, lang: str, text: str) -> Edit:
    def edit(g: CompiledGuideline) -> CompiledGuideline:
        old = rec.templates[lang]
        made, problems = compile_template(text, lang, set(old.names) | _all_names(g), 10 * len(text) + 10_000,
                                          lengths=_lengths(g))
        if made is None:
            raise _NotLoaded("; ".join(p.message for p in problems))
        templates = FrozenDict({k: made if k == lang else t for k, t in rec.templates.items()})
        return replace_recommendation(g, rule, rec, replace(rec, templates=templates))
    return edit


def _lengths(g: CompiledGuideline) -> dict[str, int | None]:
    """How many items a text's loop over each name can go through, as the compiler bounds them."""
    bounds: dict[str, int | None] = {}
    for name, fact in g.facts.items():
        if fact.type == "list" and fact.values:
            bounds[name] = len(fact.values)
        elif fact.type == "enum" and fact.values:
            bounds[name] = max(len(v) for v in fact.values)
        elif fact.type in ("boolean", "number", "integer", "quantity", "date"):
            bounds[name] = 0
    for name, derived in g.derived.items():
        if derived.type in ("boolean", "number", "quantity", "date"):
            bounds[name] = 0
    return bounds


def _all_names(g: CompiledGuideline) -> set[str]:
    names = set(g.facts) | set(g.derived) | {"today"}
    for table in g.tables.values():
        names.update(table.outputs)
    return names


class TextNumber(Operator):
    """A number in a recommendation's text changed (``20 à 30 minutes`` → ``21 à 30 minutes``), in each language."""

    name = "text-number"
    summary = "a number in a text changed"

    def mutants(self, g: CompiledGuideline, spots: Spots) -> Iterator[Mutant]:
        for rule in g.rules:
            for k, rec in enumerate(rule.then):
                for lang, template in rec.templates.items():
                    for match in _NUMBER.finditer(template.text):
                        if _inside_tag(template.text, match.start()):
                            continue
                        written = match.group()
                        number = float(written.replace(",", "."))
                        bumped = _bumped(int(number) if number.is_integer() and "," not in written
                                         and "." not in written else number)
                        shown = f"{bumped:g}".replace(".", ",") if "," in written else f"{bumped:g}"
                        text = template.text[:match.start()] + shown + template.text[match.end():]
                        line, col = spots.recommendation(rule, k, "text", lang)
                        yield Mutant(self.name, g.file, line, col,
                                     f"text of '{rec.id}' ({lang}): {written} → {shown} "
                                     f"(…{template.text[max(0, match.start() - 25):match.end() + 15].strip()}…)",
                                     _text_edit(rule, rec, lang, text), (rule.id,))


def _inside_tag(text: str, at: int) -> bool:
    """Whether position ``at`` is inside a ``{{ }}`` or ``{% %}`` (code, not words)."""
    opened = max(text.rfind("{{", 0, at), text.rfind("{%", 0, at))
    closed = max(text.rfind("}}", 0, at), text.rfind("%}", 0, at))
    return opened > closed


class TemplateBranch(Operator):
    """A text's ``{% if %}`` forced true, then false: the words meant for some patients shown to all or none."""

    name = "template-branch"
    summary = "a text's if forced true or false"

    def mutants(self, g: CompiledGuideline, spots: Spots) -> Iterator[Mutant]:
        for rule in g.rules:
            for k, rec in enumerate(rule.then):
                for lang, template in rec.templates.items():
                    for match in _IF.finditer(template.text):
                        for forced in ("true", "false"):
                            tag = match.group().replace(match.group(1), forced, 1)
                            text = template.text[:match.start()] + tag + template.text[match.end():]
                            line, col = spots.recommendation(rule, k, "text", lang)
                            yield Mutant(self.name, g.file, line, col,
                                         f"text of '{rec.id}' ({lang}): `if {match.group(1)}` forced {forced}",
                                         _text_edit(rule, rec, lang, text), (rule.id,))


OPERATORS: dict[str, Operator] = {op.name: op for op in (
    ThresholdStep(), EqualityWiden(), CompareSwap(), AndOr(), DropOperand(), Negate(), EnumLiteral(), RowBoundStep(), BoundFlip(),
    RowRemove(), RowSwapOutputs(), RuleRemove(), RecommendationRemove(), DoseChange(), UnitFactor(), TextNumber(),
    TemplateBranch())}


class _NotLoaded(Exception):
    """A mutant that does not compile or load (counted apart, never in the score)."""


# --- equivalent-mutant marks ---------------------------------------------------------------

# `# mutate: equivalent OPERATOR ["words of the mutation"], ... -- reason`: the quoted
# words, when given, narrow the mark to the mutants whose description contains them.
_ITEM = r'[a-z0-9-]+(?:\s+"[^"]*")?'
_MARK = re.compile(r"#\s*mutate:\s*equivalent\s+(" + _ITEM + r"(?:\s*,\s*" + _ITEM + r")*)\s*(?:--\s*(\S.*))?$")
_MARKED = re.compile(r'([a-z0-9-]+)(?:\s+"([^"]*)")?')

Marks = dict[int, tuple[tuple[tuple[str, str], ...], "str | None"]]


def equivalent_marks(source: str) -> Marks:
    """Line -> ((operator, words the description must contain, "" for any), ...), and the reason or None."""
    marks: Marks = {}
    for number, line in enumerate(source.splitlines(), start=1):
        match = _MARK.search(line)
        if match:
            items = tuple((m.group(1), m.group(2) or "") for m in _MARKED.finditer(match.group(1)))
            marks[number] = (items, match.group(2))
    return marks


def _marked(mutant: Mutant, marks: Marks) -> str | None:
    """The reason ``mutant`` is marked equivalent, or None (a mark without a reason marks nothing)."""
    mark = marks.get(mutant.line)
    if mark is None or not mark[1]:
        return None
    return mark[1] if any(op == mutant.operator and words in mutant.described for op, words in mark[0]) else None


# --- running -------------------------------------------------------------------------------

def mutants(g: CompiledGuideline, *, operators: Sequence[str] | None = None,
            doc: Document | None = None) -> list[Mutant]:
    """Every mutant of ``g`` by the chosen ``operators`` (all by default), in a stable order."""
    spots = Spots(g, doc)
    chosen = [OPERATORS[name] for name in (operators or OPERATORS)]
    return [m for op in chosen for m in op.mutants(g, spots)]


@dataclass
class MutantOutcome:
    """What became of one mutant."""

    mutant: Mutant
    status: str  # killed | survived | equivalent | not-loaded
    killed_by: str | None = None  # the first case that failed
    nearest: str | None = None  # for a survivor: the case that came closest (see _nearest)
    reason: str | None = None  # for equivalent marks and mutants that did not load


@dataclass
class MutationReport:
    """A guideline's mutation run: every mutant's outcome, the score and the time taken."""

    guideline: str
    outcomes: list[MutantOutcome]
    seconds: float
    cases: int  # the cases that pass on the guideline itself, run against each mutant
    unmarked_reasons: list[Diagnostic] = field(default_factory=list)
    failing_cases: list[str] = field(default_factory=list)  # left out: they fail on the guideline itself

    def count(self, status: str) -> int:
        """How many mutants ended as ``status``."""
        return sum(o.status == status for o in self.outcomes)

    @property
    def score(self) -> float:
        """Killed mutants, in percent of those that could be killed (equivalent and not-loaded left out)."""
        killable = self.count("killed") + self.count("survived")
        return 100.0 if killable == 0 else 100.0 * self.count("killed") / killable

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "guideline": self.guideline, "score": round(self.score, 2), "mutants": len(self.outcomes),
            "killed": self.count("killed"), "survived": self.count("survived"),
            "equivalent": self.count("equivalent"), "not_loaded": self.count("not-loaded"), "cases": self.cases,
            "seconds": round(self.seconds, 2),
            "mutants_per_second": round(len(self.outcomes) / self.seconds, 1) if self.seconds else None,
            "outcomes": [{"operator": o.mutant.operator, "where": o.mutant.where, "mutation": o.mutant.described,
                          "status": o.status, "killed_by": o.killed_by, "nearest_case": o.nearest, "reason": o.reason}
                         for o in self.outcomes],
            "problems": [d.to_dict() for d in self.unmarked_reasons],
            "failing_cases": list(self.failing_cases),
        }


# Shared with worker processes (fork): set by run_mutants before the pool starts.
_STATE: dict[str, Any] = {}


def _fingerprint(result: Any) -> dict[str, Any]:
    """What a case's result shows, to compare a mutant's with the original's."""
    if result is None:
        return {}
    shown: dict[str, Any] = {f"rule {k}": v for k, v in result.rules.items()}
    shown.update({f"table {k}": v for k, v in result.tables.items()})
    shown.update({f"value {k}": v for k, v in result.trace.items()})
    shown.update({f"text {r.id}": r.text for r in result.recommendations})
    shown.update({f"dose {r.id}": (r.dose, r.schedule) for r in result.recommendations})
    return shown


def _run_one(index: int) -> tuple[str, str | None, str | None, str | None]:
    """(status, killed by, nearest case, reason) of mutant ``index`` (plain data: it crosses processes)."""
    mutant: Mutant = _STATE["mutants"][index]
    cases: list[Case] = _STATE["cases"]
    try:
        compiled = mutant.edit(_STATE["compiled"])
        guideline = Guideline(compiled)
    except (_NotLoaded, EngineError, ValueError, TypeError, SyntaxError) as exc:
        return "not-loaded", None, None, str(exc) or type(exc).__name__
    best: tuple[int, str] | None = None
    for case, original in zip(cases, _STATE["fingerprints"], strict=True):
        outcome = run_case(case, guideline)
        if not outcome.passed:
            return "killed", case.id, None, None
        changed = _fingerprint(outcome.result)
        differences = sum(original.get(k) != v for k, v in changed.items()) + len(original.keys() - changed.keys())
        if differences and (best is None or differences > best[0]):
            best = (differences, case.id)
    nearest = None if best is None else f"{best[1]} ({best[0]} value(s) of its result change, none it checks)"
    return "survived", None, nearest or "no case reaches the changed part", None


def run_mutants(guideline: Guideline, cases: list[Case], *, operators: Sequence[str] | None = None,
                jobs: int = 1, source: str | None = None, progress: Callable[[int, int], None] | None = None
                ) -> MutationReport:
    """Make every mutant of ``guideline`` and run ``cases`` against each (``jobs`` processes)."""
    started = time.perf_counter()
    compiled = guideline.compiled
    doc = parse_yaml(source, compiled.file) if source is not None else None
    made = mutants(compiled, operators=operators, doc=doc)
    marks = equivalent_marks(source or "")
    problems = [Diagnostic(compiled.file, line, 1, "mutate-mark-reason",
                           "a mutant marked equivalent needs a reason after '--'",
                           hint="# mutate: equivalent <operator> -- why no case can tell it apart")
                for line, (_, reason) in marks.items() if not reason]
    outcomes: dict[int, MutantOutcome] = {}
    todo: list[int] = []
    for i, mutant in enumerate(made):
        reason = _marked(mutant, marks)
        if reason is not None:
            outcomes[i] = MutantOutcome(mutant, "equivalent", reason=reason)
        else:
            todo.append(i)
    # Only the cases that pass on the guideline itself can kill a mutant.
    originals = [run_case(c, guideline) for c in cases]
    failing = [o.case.id for o in originals if not o.passed]
    passing = [o for o in originals if o.passed]
    _STATE.update(mutants=made, cases=[o.case for o in passing], compiled=compiled,
                  fingerprints=[_fingerprint(o.result) for o in passing])
    try:
        if jobs > 1 and len(todo) > 1 and "fork" in multiprocessing.get_all_start_methods():
            with multiprocessing.get_context("fork").Pool(jobs) as pool:
                results = pool.imap(_run_one, todo, chunksize=4)
                for done, (i, found) in enumerate(zip(todo, results, strict=True), start=1):
                    outcomes[i] = MutantOutcome(made[i], *found)  # imap keeps the order of todo
                    if progress:
                        progress(done, len(todo))
        else:
            for done, i in enumerate(todo, start=1):
                outcomes[i] = MutantOutcome(made[i], *_run_one(i))
                if progress:
                    progress(done, len(todo))
    finally:
        _STATE.clear()
    ordered = [outcomes[i] for i in range(len(made))]
    return MutationReport(compiled.id, ordered, time.perf_counter() - started, len(passing), problems, failing)


def default_jobs() -> int:
    """The processes to use by default: the machine's cores."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))

