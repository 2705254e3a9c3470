"""Which missing facts leave a condition undetermined, and only those.

A rule is undetermined when its condition is unknown. The facts that would
decide it are not every fact the condition depends on: in
``x if known(a) else b`` with ``a`` missing, only ``b``'s facts matter; in
``p and q`` with ``p`` false, nothing is needed. This module walks the
condition's validated tree over the evaluated values and keeps, at each
node, the missing facts of the operands that are themselves unknown and
could still change the node's value (Kleene's rules: an ``and`` already
false, an ``or`` already true, ``known()`` and a decided branch need
nothing). It explains; it never decides: rule outcomes come from the
evaluator.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from typing import Any

import simpleeval

from engine.language.expressions import BINARY_OPERATORS, COMPARISON_OPERATORS
from engine.language.functions import REGISTRY
from engine.language.scores import Score
from engine.language.units import IdentityCache
from engine.model import CompiledGuideline

__all__ = ["NeedsTracer", "missing_facts_of"]

# The language's own operator tables: the tracer computes what the evaluator computes.
_ARITHMETIC = BINARY_OPERATORS
_COMPARE = COMPARISON_OPERATORS
_NOTHING: frozenset[str] = frozenset()
Traced = tuple[Any, frozenset[str]]  # (value, missing facts that leave it unknown)


def missing_facts_of(tree: ast.Expression, guideline: CompiledGuideline, env: Mapping[str, Any]) -> frozenset[str]:
    """The missing facts that leave ``tree`` unknown for the values in ``env`` (empty when it is known)."""
    return NeedsTracer(guideline, env).missing(tree)


class _Shapes:
    """Per guideline: each expression's names, and which of them an unknown result needs, by their values.

    What a condition needs is the union, over some of the names it reads
    directly, of what each of those needs; *which* names depends only on the
    values of the names it reads directly (the walk below sees nothing else).
    So the choice is kept, keyed by those values, and only the names' own
    needs are worked out per patient: most patients share a few shapes.
    """

    _LIMIT = 4096  # choices kept per expression; a key with a never-seen number is simply not kept beyond

    def __init__(self, guideline: CompiledGuideline) -> None:
        self.producer: dict[str, Any] = {out: t for t in guideline.tables.values() for out in t.outputs}
        self.facts = {name: frozenset({name}) for name in guideline.facts}  # a missing fact needs itself
        self.trees: dict[int, tuple[tuple[str, ...], dict[Any, frozenset[str]]]] = {}
        expressions = [rule.when for rule in guideline.rules] + [d.expr for d in guideline.derived.values()]
        expressions += [i.expr for t in guideline.tables.values() for i in t.inputs]
        for expr in expressions:
            names = tuple(sorted({n.id for n in ast.walk(expr.tree) if isinstance(n, ast.Name)}))
            self.trees[id(expr.tree)] = (names, {})


_SHAPES = IdentityCache()


def _shapes(guideline: CompiledGuideline) -> _Shapes:
    return _SHAPES.get_or_make(guideline, "", _Shapes, guideline)


class NeedsTracer:
    """What one patient's unknown values need; each name's needs are worked out once for all conditions."""

    def __init__(self, guideline: CompiledGuideline, env: Mapping[str, Any], *, remember: bool = True) -> None:
        self.g = guideline
        self.env = env
        self.names: dict[str, frozenset[str]] = {}
        self.shapes = _shapes(guideline)
        self.producer = self.shapes.producer
        self.remember = remember  # False: every expression walked in full (the tests compare both)

    def missing(self, tree: ast.Expression) -> frozenset[str]:
        """The missing facts that leave ``tree`` unknown (empty when it is known)."""
        known = self.shapes.trees.get(id(tree)) if self.remember else None
        if known is None:  # not one of the guideline's own expressions, or not remembering: walked in full
            return _Walk(self.env, self.name).trace(tree.body)[1]
        names, choices = known
        key: Any = tuple(map(self.env.get, names))
        try:
            chosen = choices.get(key)
        except TypeError:  # an unhashable value: nothing kept
            chosen, key = None, None
        if chosen is None:
            chosen = _Walk(self.env, _itself).trace(tree.body)[1]
            if key is not None and len(choices) < _Shapes._LIMIT:
                choices[key] = chosen
        if not chosen:
            return _NOTHING
        if len(chosen) == 1:
            for only in chosen:
                return self.name(only)
        return _NOTHING.union(*[self.name(n) for n in chosen])

    def name(self, name: str) -> frozenset[str]:
        """Why a name is unknown: itself for a fact, its inputs' missing facts otherwise."""
        found = self.names.get(name)
        if found is not None:
            return found
        found = self.shapes.facts.get(name)
        if found is not None:
            return found
        self.names[name] = _NOTHING  # a guard: the compiler refuses cycles
        if name in self.g.derived:
            found = self.missing(self.g.derived[name].expr.tree)
        elif name in self.producer:
            found = _union(self.missing(i.expr.tree) for i in self.producer[name].inputs)
        else:
            found = _NOTHING
        self.names[name] = found
        return found


def _itself(name: str) -> frozenset[str]:
    return frozenset({name})


class _Walk:
    """One walk of an expression over the values: (value, needs) of each node, needs of a name from ``name``."""

    def __init__(self, env: Mapping[str, Any], name: Callable[[str], frozenset[str]]) -> None:
        self.env = env
        self.name = name

    def trace(self, node: ast.expr) -> Traced:
        try:
            return self._trace(node)
        except (ArithmeticError, TypeError, ValueError, simpleeval.InvalidExpression):
            return None, _NOTHING  # the evaluator reported (or will report) this; explanations stay quiet

    def _trace(self, node: ast.expr) -> Traced:
        if isinstance(node, ast.Constant):
            return node.value, _NOTHING
        if isinstance(node, ast.Name):
            value = self.env.get(node.id)
            # a score with unknown items needs what its items need
            return value, (_NOTHING if value is not None and type(value) is not Score else self.name(node.id))
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [self.trace(e) for e in node.elts]
            return tuple(v for v, _ in items), _union(n for _, n in items)
        if isinstance(node, ast.BoolOp):
            return self._boolean(node)
        if isinstance(node, ast.UnaryOp):
            value, needs = self.trace(node.operand)
            if value is None:
                return None, needs
            if isinstance(node.op, ast.Not):
                return not value, _NOTHING
            return (-value if isinstance(node.op, ast.USub) else value), needs
        if isinstance(node, ast.BinOp):
            return self._strict([node.left, node.right], _ARITHMETIC[type(node.op)])
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.IfExp):
            test, test_needs = self.trace(node.test)
            if test is None:
                branches = [self.trace(node.body), self.trace(node.orelse)]
                return None, test_needs | _union(n for v, n in branches if v is None)
            return self.trace(node.body if test else node.orelse)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "known":
                return self.trace(node.args[0])[0] is not None, _NOTHING
            function = REGISTRY[node.func.id]
            if function.unknown == "bounds":  # a score: the known items give a range, the others are needed
                traced = [self.trace(a) for a in node.args]
                value = function.impl(*(v for v, _ in traced))
                return value, (_NOTHING if value is not None and type(value) is not Score else _union(n for _, n in traced))
            return self._strict(list(node.args), function.impl)
        return None, _NOTHING

    def _strict(self, operands: list[ast.expr], apply: Callable[..., Any]) -> Traced:
        """Unknown when any operand is: the unknown operands' facts are needed (a score's: its items')."""
        traced = [self.trace(o) for o in operands]
        if any(v is None for v, _ in traced):
            return None, _union(n for v, n in traced if v is None)
        value = apply(*(v for v, _ in traced))
        return value, (_union(n for _, n in traced) if type(value) is Score else _NOTHING)

    def _compare(self, node: ast.Compare) -> Traced:
        traced = [self.trace(o) for o in [node.left, *node.comparators]]
        if any(v is None for v, _ in traced):
            return None, _union(n for v, n in traced if v is None)
        values = [v for v, _ in traced]
        links = [_COMPARE[type(op)](a, b) for op, a, b in zip(node.ops, values, values[1:], strict=False)]
        if False in links:
            return False, _NOTHING
        if None in links:  # a score's range straddles a threshold: its unknown items are needed
            return None, _union(n for _, n in traced)
        return True, _NOTHING

    def _boolean(self, node: ast.BoolOp) -> Traced:
        """Kleene: a decisive operand (false for and, true for or) decides with nothing needed."""
        decisive = not isinstance(node.op, ast.And)
        traced = [self.trace(v) for v in node.values]
        if any(v is decisive for v, _ in traced):
            return decisive, _NOTHING
        if any(v is None for v, _ in traced):
            return None, _union(n for v, n in traced if v is None)
        return not decisive, _NOTHING


def _union(sets: Any) -> frozenset[str]:
    out: set[str] = set()
    for s in sets:
        out |= s
    return frozenset(out)
