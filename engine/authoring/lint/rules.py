"""Rule checks: conditions that can never hold or always hold."""

from __future__ import annotations

import ast
import math
from collections.abc import Iterator
from typing import Any

from engine.authoring.lint.registry import Context, check
from engine.errors import Diagnostic
from engine.language.intervals import Interval, intersect

_FLIP = {ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE, ast.Eq: ast.Eq}


def _atoms(node: ast.AST) -> list[ast.AST]:
    """The conjuncts of a condition (through nested ``and``)."""
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        return [atom for value in node.values for atom in _atoms(value)]
    return [node]


def _bound(node: ast.AST) -> tuple[str, Interval] | tuple[str, tuple[str, Any]] | None:
    """``x < 3`` -> ("x", (-inf, 3)); ``s == 'a'`` -> ("s", ("eq", "a")); else None."""
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1):
        return None
    left, op, right = node.left, type(node.ops[0]), node.comparators[0]
    if isinstance(left, ast.Constant) and isinstance(right, ast.Name) and op in _FLIP:
        left, right, op = right, left, _FLIP[op]
    if not (isinstance(left, ast.Name) and isinstance(right, ast.Constant)):
        return None
    value = right.value
    if isinstance(value, str):
        if op is ast.Eq:
            return left.id, ("eq", value)
        if op is ast.NotEq:
            return left.id, ("ne", value)
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    x = float(value)
    inf = math.inf
    intervals = {ast.Lt: Interval(-inf, x, False, False), ast.LtE: Interval(-inf, x, False, True),
                 ast.Gt: Interval(x, inf, False, False), ast.GtE: Interval(x, inf, True, False),
                 ast.Eq: Interval(x, x, True, True)}
    return (left.id, intervals[op]) if op in intervals else None


def _domain(ctx: Context, name: str) -> Interval:
    fact = ctx.guideline.facts.get(name)
    if fact is not None and fact.range != (None, None):
        low, high = fact.range
        return Interval(-math.inf if low is None else low, math.inf if high is None else high,
                        low is not None, high is not None)
    return Interval(-math.inf, math.inf, False, False)


@check("rule-never-fires", "error")
def rule_never_fires(ctx: Context) -> Iterator[Diagnostic]:
    """A condition that no patient can satisfy, given the facts' plausible ranges and values.

    Failing: ``age < 18 and age > 65``, or ``age > 130`` when age's range is 18-120, or
    ``sex == 'female' and sex == 'male'``. Passing: a condition some patient meets.
    """
    for i, rule in enumerate(_rules(ctx)):
        numeric: dict[str, Interval | None] = {}
        equal: dict[str, set[str]] = {}
        for atom in _atoms(rule.when.tree.body):
            found = _bound(atom)
            if found is None:
                continue
            name, what = found
            if isinstance(what, Interval):
                current = numeric.get(name, _domain(ctx, name))
                numeric[name] = intersect(current, what) if current is not None else None
            elif what[0] == "eq":
                equal.setdefault(name, set()).add(what[1])
        empty = [n for n, v in numeric.items() if v is None] + [n for n, v in equal.items() if len(v) > 1]
        if empty:
            yield ctx.finding(("rules", i, "when"), "rule-never-fires",
                              f"rule '{rule.id}' can never fire: no value of {', '.join(sorted(set(empty)))} "
                              f"satisfies its condition", "check the comparisons and the facts' ranges")


@check("rule-always-true", "warning")
def rule_always_true(ctx: Context) -> Iterator[Diagnostic]:
    """A condition that holds for every patient: it tests nothing.

    Failing: ``when: True`` or ``age >= 0`` when age's range starts at 18.
    Passing: a condition that depends on the patient.
    """
    for i, rule in enumerate(_rules(ctx)):
        body = rule.when.tree.body
        constant = isinstance(body, ast.Constant) and body.value is True
        found = _bound(body)
        covers_domain = False
        if found is not None and isinstance(found[1], Interval):
            domain = _domain(ctx, found[0])
            bounded = not (math.isinf(domain.low) and math.isinf(domain.high))
            covers_domain = bounded and intersect(domain, found[1]) == domain
        if constant or covers_domain:
            yield ctx.finding(("rules", i, "when"), "rule-always-true",
                              f"rule '{rule.id}' fires for every patient", "make the condition depend on the patient")


def _rules(ctx: Context) -> list[Any]:
    # Compiled rules keep file order, so the i-th compiled rule is rules[i] in the file.
    return list(ctx.guideline.rules)


@check("known-masks-unknown", "warning")
def known_masks_unknown(ctx: Context) -> Iterator[Diagnostic]:
    """``known(x)`` as a condition of a rule: with x missing the rule is *not fired* rather than undetermined.

    A missing fact normally leaves the rule undetermined and asks for the fact;
    ``known(x) and ...`` decides "no" instead, so nobody is told x is needed.
    Failing: ``when: known(egfr) and egfr < 30``.
    Passing: ``when: egfr < 30`` (undetermined, "needs egfr", when egfr is missing), or
    ``not known(x)`` in a rule that asks for x; silence it with a reason where another
    rule asks for the fact.
    """
    g = ctx.guideline
    for index, rule in enumerate(g.rules):
        for atom in _atoms(rule.when.tree.body):
            if not (isinstance(atom, ast.Call) and isinstance(atom.func, ast.Name) and atom.func.id == "known"
                    and atom.args and isinstance(atom.args[0], ast.Name)):
                continue
            name = atom.args[0].id
            facts = sorted(_facts_behind(g, name))
            needed = f" (from {', '.join(facts)})" if facts and facts != [name] else ""
            yield ctx.finding(
                ("rules", index, "when"), "known-masks-unknown",
                f"rule '{rule.id}': when {name} is unknown{needed}, the rule is not fired instead of undetermined: "
                f"a patient with it missing gets neither the recommendation nor '{name} needed'",
                f"compare {name} directly to have it asked for, or say which rule asks for it: "
                f"# lint: ignore known-masks-unknown -- <reason>")


def _facts_behind(g: Any, name: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """The facts a name is computed from (itself for a fact)."""
    if name in g.facts:
        return {name}
    if name in seen:
        return set()
    derived = g.derived.get(name)
    if derived is not None:
        return {f for n in derived.expr.names for f in _facts_behind(g, n, seen | {name})}
    for table in g.tables.values():
        if name in table.outputs:
            return {f for i in table.inputs for n in i.expr.names for f in _facts_behind(g, n, seen | {name})}
    return set()
