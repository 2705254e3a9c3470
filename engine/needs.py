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
import operator
from collections.abc import Callable, Mapping
from typing import Any

import simpleeval

from engine.language.functions import REGISTRY
from engine.model import CompiledGuideline

__all__ = ["missing_facts_of"]

_ARITHMETIC: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.Mod: operator.mod, ast.FloorDiv: operator.floordiv, ast.Pow: simpleeval.safe_power,
}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
_NOTHING: frozenset[str] = frozenset()
Traced = tuple[Any, frozenset[str]]  # (value, missing facts that leave it unknown)


def missing_facts_of(tree: ast.Expression, guideline: CompiledGuideline, env: Mapping[str, Any]) -> frozenset[str]:
    """The missing facts that leave ``tree`` unknown for the values in ``env`` (empty when it is known)."""
    return _Tracer(guideline, env).trace(tree.body)[1]


class _Tracer:
    def __init__(self, guideline: CompiledGuideline, env: Mapping[str, Any]) -> None:
        self.g = guideline
        self.env = env
        self.names: dict[str, frozenset[str]] = {}
        self.producer = {out: t for t in guideline.tables.values() for out in t.outputs}

    def trace(self, node: ast.expr) -> Traced:
        try:
            return self._trace(node)
        except (ArithmeticError, TypeError, ValueError, simpleeval.InvalidExpression):
            return None, _NOTHING  # the evaluator reported (or will report) this; explanations stay quiet

    def name(self, name: str) -> frozenset[str]:
        """Why a name is unknown: itself for a fact, its inputs' missing facts otherwise."""
        if name not in self.names:
            self.names[name] = _NOTHING  # a guard: the compiler refuses cycles
            if name in self.g.facts:
                found = frozenset({name})
            elif name in self.g.derived:
                found = self.trace(self.g.derived[name].expr.tree.body)[1]
            elif name in self.producer:
                inputs = [self.trace(i.expr.tree.body) for i in self.producer[name].inputs]
                found = _union(needs for value, needs in inputs if value is None)
            else:
                found = _NOTHING
            self.names[name] = found
        return self.names[name]

    def _trace(self, node: ast.expr) -> Traced:
        if isinstance(node, ast.Constant):
            return node.value, _NOTHING
        if isinstance(node, ast.Name):
            value = self.env.get(node.id)
            return value, (_NOTHING if value is not None else self.name(node.id))
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
            return (-value if isinstance(node.op, ast.USub) else value), _NOTHING
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
            impl = REGISTRY[node.func.id].impl
            return self._strict(list(node.args), impl)
        return None, _NOTHING

    def _strict(self, operands: list[ast.expr], apply: Callable[..., Any]) -> Traced:
        """Unknown when any operand is: the unknown operands' facts are needed."""
        traced = [self.trace(o) for o in operands]
        if any(v is None for v, _ in traced):
            return None, _union(n for v, n in traced if v is None)
        return apply(*(v for v, _ in traced)), _NOTHING

    def _compare(self, node: ast.Compare) -> Traced:
        traced = [self.trace(o) for o in [node.left, *node.comparators]]
        if any(v is None for v, _ in traced):
            return None, _union(n for v, n in traced if v is None)
        values = [v for v, _ in traced]
        return all(_COMPARE[type(op)](a, b) for op, a, b in zip(node.ops, values, values[1:], strict=False)), _NOTHING

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
