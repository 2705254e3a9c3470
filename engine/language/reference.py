"""The reference evaluator of the expression language: simpleeval with three-valued operators.

Slow and independent of the generated code: the differential tests evaluate
every expression both ways and require the same value. Nothing in the engine
evaluates patients with it.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

import simpleeval

from engine.language.expressions import BINARY_OPERATORS, COMPARISON_OPERATORS, CompiledExpression
from engine.language.functions import REGISTRY

__all__ = ["reference_eval"]


def _none_safe(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any) -> Any:
        return None if any(a is None for a in args) else fn(*args)

    return wrapped


class _KleeneEval(simpleeval.EvalWithCompoundTypes):
    """simpleeval with three-valued operators: the oracle for the compiled code."""

    def _eval_boolop(self, node: ast.BoolOp) -> Any:
        is_and = isinstance(node.op, ast.And)
        unknown = False
        for value in node.values:
            result = self._eval(value)
            if result is (not is_and):
                return result
            unknown = unknown or result is None
        return None if unknown else is_and

    def _eval_compare(self, node: ast.Compare) -> Any:
        left = self._eval(node.left)
        unknown = False
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self._eval(comparator)
            result = self.operators[type(op)](left, right)
            if result is False:
                return False
            unknown = unknown or result is None
            left = right
        return None if unknown else True

    def _eval_ifexp(self, node: ast.IfExp) -> Any:
        test = self._eval(node.test)
        if test is None:
            return None
        return self._eval(node.body) if test else self._eval(node.orelse)

    def _eval_call(self, node: ast.Call) -> Any:
        if isinstance(node.func, ast.Name) and node.func.id == "known":
            return self._eval(node.args[0]) is not None
        return super()._eval_call(node)


def reference_eval(expression: CompiledExpression, env: Mapping[str, Any]) -> Any:
    """Evaluate with simpleeval (slow; for differential tests only)."""
    both = {**BINARY_OPERATORS, **COMPARISON_OPERATORS}
    operators: dict[type, Callable[..., Any]] = {k: _none_safe(v) for k, v in both.items()}
    operators[ast.Not] = lambda a: None if a is None else not a
    operators[ast.USub] = _none_safe(operator.neg)
    operators[ast.UAdd] = _none_safe(operator.pos)
    evaluator = _KleeneEval(
        operators=operators,
        functions={name: fn.impl for name, fn in REGISTRY.items()},
        names=dict(env),
    )
    return evaluator.eval(expression.text.replace("\n", " ").strip(), previously_parsed=expression.tree.body)
