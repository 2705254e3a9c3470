"""Which guideline values only take whole numbers (an integer fact, a count, years between two dates).

Read by lint (a table input of whole numbers is cut on integers: no gap
between ``[18, 64]`` and ``[65, 74]``) and by mutation testing (a threshold on
a whole number moves by 1, not by 0.1, which would change nothing).
"""

from __future__ import annotations

import ast

from engine.model import CompiledGuideline, TableSpec

__all__ = ["producer_of", "whole_valued"]

# Functions whose result is a whole number whatever their (number) arguments.
_WHOLE_FUNCTIONS = {"count_true", "days_between", "months_between", "years_between", "floor", "ceil", "trunc"}


def producer_of(g: CompiledGuideline, name: str) -> TableSpec | None:
    """The table that gives ``name`` as an output, if any."""
    return next((t for t in g.tables.values() if name in t.outputs), None)


def whole_valued(g: CompiledGuideline, node: ast.AST, seen: frozenset[str] = frozenset()) -> bool:
    """Whether an expression only gives whole numbers (so its table pieces are cut on integers)."""
    if isinstance(node, ast.Expression):
        return whole_valued(g, node.body, seen)
    if isinstance(node, ast.Constant):
        return type(node.value) is int
    if isinstance(node, ast.Name):
        if node.id in seen:
            return False
        fact = g.facts.get(node.id)
        if fact is not None:
            return fact.type == "integer"
        derived = g.derived.get(node.id)
        if derived is not None and derived.decimals is None:
            return whole_valued(g, derived.expr.tree, seen | {node.id})
        if derived is not None:
            return derived.decimals == 0
        producer = producer_of(g, node.id)
        if producer is not None:
            given = [r.outputs.get(node.id) for r in producer.rows] + [producer.otherwise.get(node.id)]
            return all(v is None or type(v) is int for v in given)
        return False
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name = node.func.id
        if name in _WHOLE_FUNCTIONS or (name == "round" and len(node.args) == 1):
            return True
        if name == "points":
            return whole_valued(g, node.args[1], seen)
        if name in ("sum", "min", "max", "abs"):
            return all(whole_valued(g, a, seen) for a in node.args)
        return False
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
        return whole_valued(g, node.left, seen) and whole_valued(g, node.right, seen)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return whole_valued(g, node.operand, seen)
    if isinstance(node, ast.IfExp):
        return whole_valued(g, node.body, seen) and whole_valued(g, node.orelse, seen)
    return False


