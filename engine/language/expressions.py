"""The expression language: parsed once, checked, compiled to Kleene code.

simpleeval defines and guards the language: its parser reads the text, its
node table and operator table bound what we accept, its limits bound powers
and literals, and a simpleeval evaluator with three-valued operators is the
reference (oracle) the compiled code is tested against.

On top of that we walk the AST with our own allow-list and a small type
checker, so that an unknown name, an unknown function, a comparison with an
enum value that does not exist, or a forbidden construct is reported at load
time with its column. Only then is the *validated AST* rewritten into new
``ast`` nodes with three-valued semantics and given to ``compile()``: no
author text is ever pasted into generated source.

Unknown is ``None`` at run time:

* comparisons, arithmetic and function calls with an unknown operand are
  unknown;
* ``and``/``or``/``not`` follow Kleene logic (False and unknown = False,
  True or unknown = True), evaluated left to right with short-circuit;
* ``known(x)`` is the one way to test for unknown and is never unknown.
"""

from __future__ import annotations

import ast
import copy
import io
import math
import operator
import re
import tokenize
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import CodeType
from typing import Any

import simpleeval

from engine import bytecode
from engine.errors import did_you_mean
from engine.language.functions import REGISTRY, parse_date_literal
from engine.limits import DEFAULT_LIMITS, Limits

__all__ = [
    "BINARY_OPERATORS",
    "COMPARISON_OPERATORS",
    "READS_SCORE",
    "RUNTIME_GLOBALS",
    "CompiledExpression",
    "ExprProblem",
    "KleeneCodegen",
    "NameInfo",
    "compile_expression",
    "recompiled",
]

# Node types the language accepts: ours, but never more than simpleeval's
# evaluator defines (List/Tuple come from its compound-types evaluator).
_SIMPLEEVAL_NODES = set(simpleeval.EvalWithCompoundTypes().nodes)
_ALLOWED_NODES = {
    ast.Expression, ast.Expr, ast.BoolOp, ast.UnaryOp, ast.BinOp, ast.Compare, ast.IfExp,
    ast.Call, ast.Name, ast.Constant, ast.List, ast.Tuple, ast.Load,
    ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn,
}
# // and % are refused: Python rounds the quotient down (-10 // 3 is -4) where
# CQL's div and mod truncate towards zero (-3): an author used to either would
# silently get the other on a negative number, so the author writes which.
_ALLOWED_OPERATORS = (set(simpleeval.DEFAULT_OPERATORS) - {ast.FloorDiv, ast.Mod}) | {ast.Not}

MAX_POWER_BITS = 4096  # a power's result: at most this many bits (about 1 233 digits), floats within their range


def bounded_power(base: Any, exponent: Any) -> Any:
    """``base ** exponent``, refused *before* it runs when the result would be huge.

    simpleeval's ``safe_power`` bounds each operand (4 000 000), not the result:
    ``3999940 ** 3999940`` passes it and computes for minutes. Here the size of
    the result is estimated from the operands first.
    """
    if isinstance(base, (int, float)) and isinstance(exponent, (int, float)) and not isinstance(exponent, bool):
        size = abs(base)
        if size > 1 and exponent > 0:
            bits = exponent * math.log2(size)
            if bits > MAX_POWER_BITS:
                raise OverflowError(f"the power {_short(base)} ** {_short(exponent)} is too large")
        elif 0 < size < 1 and exponent < 0 and -exponent * -math.log2(size) > MAX_POWER_BITS:
            raise OverflowError(f"the power {_short(base)} ** {_short(exponent)} is too large")
    return simpleeval.safe_power(base, exponent)


def _short(number: Any) -> str:
    text = repr(number)
    return text if len(text) <= 20 else text[:17] + "..."


BINARY_OPERATORS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Pow: bounded_power,
}
COMPARISON_OPERATORS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
# Operators Python parses but the language refuses, with what the author probably meant.
_OPERATOR_HINTS = {
    "BitXor": ("^", "a power is written **, e.g. weight ** 0.425"),
    "BitAnd": ("&", "write 'and' for both conditions"),
    "BitOr": ("|", "write 'or' for either condition"),
    "Invert": ("~", "write 'not' to negate a condition"),
    "LShift": ("<<", "multiply by a power of two instead"), "RShift": (">>", "divide by a power of two instead"),
    "MatMult": ("@", "write * to multiply"),
    "FloorDiv": ("//", "write floor(a / b) to round the quotient down or trunc(a / b) to cut it towards zero "
                 "(CQL's div): they differ for negative numbers"),
    "Mod": ("%", "write a - b * trunc(a / b) for CQL's mod (sign of a) or a - b * floor(a / b) for the remainder "
            "with the sign of b"),
    "Is": ("is", "compare with ==, and test an unknown value with known(x)"),
    "IsNot": ("is not", "compare with !=, and test an unknown value with known(x)"),
}
_NODE_WORDS = {
    "Attribute": "attribute access (x.y)", "Subscript": "indexing (x[...])", "Lambda": "lambda",
    "ListComp": "comprehensions", "GeneratorExp": "comprehensions", "SetComp": "comprehensions",
    "DictComp": "comprehensions", "JoinedStr": "f-strings", "Dict": "dictionaries", "Set": "sets",
    "NamedExpr": "assignment (:=)", "Starred": "star arguments", "Await": "await",
    "Yield": "yield", "Slice": "slices", "Assign": "assignment (=)", "AugAssign": "assignment",
    "Import": "import", "ImportFrom": "import", "FunctionDef": "function definitions",
}


@dataclass(frozen=True)
class NameInfo:
    """What the checker knows about a name: its type and, for enums, its values."""

    type: str  # boolean, number, enum, list, date, any
    values: tuple[str, ...] = ()
    unit: str | None = None


@dataclass(frozen=True)
class ExprProblem:
    """A problem in one expression; ``col`` is 1-based inside the expression text."""

    code: str
    message: str
    col: int
    line: int = 1
    hint: str = ""


@dataclass(frozen=True)
class CompiledExpression:
    """An expression checked and compiled once; call it with a name->value mapping."""

    text: str
    tree: ast.Expression = field(repr=False, compare=False)
    code: CodeType = field(repr=False, compare=False)
    names: frozenset[str] = frozenset()
    type: str = "any"
    ordered: tuple[str, ...] = ()  # names as first written, for explanations

    def __call__(self, env: Mapping[str, Any]) -> Any:
        """The value for ``env`` (names to values, None when unknown), with three-valued logic."""
        return eval(self.code, RUNTIME_GLOBALS, env)  # noqa: S307 - code built from validated AST only

    def __reduce__(self) -> tuple[Any, ...]:
        # Code objects do not pickle: the code travels as marshal bytes (see
        # engine.bytecode), with the validated tree to compile again from if
        # the receiving interpreter is another version.
        return (_restore, (self.text, self.tree, bytecode.dump(self.code), self.names, self.type, self.ordered))


def _restore(text: str, tree: ast.Expression, code: Any, names: frozenset[str], kind: str,
             ordered: tuple[str, ...]) -> CompiledExpression:
    return CompiledExpression(text, tree, bytecode.load(code) or _codegen(tree), names, kind, ordered)


def _value_names(tree: ast.AST) -> list[ast.Name]:
    """The names an expression reads as values: not the functions it calls (``known`` is no input)."""
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    return [n for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called]


def _names(tree: ast.AST) -> frozenset[str]:
    return frozenset(n.id for n in _value_names(tree))


def _ordered_names(tree: ast.AST) -> tuple[str, ...]:
    found = sorted((n.col_offset, n.id) for n in _value_names(tree) if n.id != "today")
    return tuple(dict.fromkeys(name for _, name in found))


# The only names compiled expression code can read besides the patient's
# values: no builtins, the registry's functions and the bounded power. The
# plan generator (engine.accel.codegen) runs its code in the same namespace.
RUNTIME_GLOBALS: dict[str, Any] = {"__builtins__": {}}
for _name, _fn in REGISTRY.items():
    RUNTIME_GLOBALS[f"_f_{_name}"] = _fn.impl  # with its unknown rule
    RUNTIME_GLOBALS[f"_c_{_name}"] = _fn.compute  # on known arguments only
RUNTIME_GLOBALS["_pow"] = bounded_power


def compile_expression(
    text: str,
    scope: Mapping[str, NameInfo],
    *,
    expect: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> tuple[CompiledExpression | None, list[ExprProblem]]:
    """Parse, check and compile ``text``; return the result or the problems.

    ``scope`` maps each name the expression may use to what is known of it;
    ``expect`` is the type the caller needs (``"boolean"`` for conditions).
    """
    if not isinstance(text, str) or not text.strip():
        return None, [ExprProblem("expr.empty", "the expression is empty", 1)]
    if len(text) > limits.max_expression_chars:
        return None, [ExprProblem("expr.too-long",
                                  f"expression is {len(text)} characters, more than the limit of "
                                  f"{limits.max_expression_chars}", 1)]
    source = text.replace("\n", " ")
    indent = len(source) - len(source.lstrip())
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            stmt = simpleeval.SimpleEval.parse(source)
    except SyntaxError as exc:
        col = (exc.offset or 1) + indent
        return None, [ExprProblem("expr.syntax", f"syntax error: {exc.msg}", col,
                                  hint="expressions use and/or/not, ==, <, +, ... as in a formula")]
    except (RecursionError, MemoryError, ValueError):
        return None, [ExprProblem("expr.too-complex", "the expression is nested too deeply", 1)]
    except simpleeval.InvalidExpression as exc:
        return None, [ExprProblem("expr.syntax", str(exc), 1)]
    if any(issubclass(w.category, simpleeval.MultipleExpressions) for w in caught):
        return None, [ExprProblem("expr.syntax", "only one expression is allowed", 1 + indent)]
    if not isinstance(stmt, ast.Expr):
        kind = type(stmt).__name__
        return None, [ExprProblem("expr.not-allowed",
                                  f"{_NODE_WORDS.get(kind, kind)} is not allowed: an expression computes a value",
                                  1 + indent)]
    written = _written_problems(source)
    if written:
        return None, written
    tree = ast.Expression(body=stmt.value)
    checker = _Checker(scope, indent, limits)
    kind = checker.check_root(tree, expect)
    if checker.problems:
        return None, checker.problems
    return CompiledExpression(text, tree, _codegen(tree), _names(tree), kind, _ordered_names(tree)), []


# Numbers are written in plain decimal, as in the guideline file itself (engine.loading).
_DECIMAL = re.compile(r"^(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$")


def _written_problems(source: str) -> list[ExprProblem]:
    """What Python's parser accepts but a reader could misread: comments, numbers not in plain decimal."""
    problems: list[ExprProblem] = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, ValueError):
        return problems  # the parser has accepted it: what it refuses it reports itself
    for token in tokens:
        col = token.start[1] + 1
        if token.type == tokenize.COMMENT:
            problems.append(ExprProblem("expr.comment", "'#' starts a comment: the rest of the expression would be "
                                        "ignored", col, hint="remove it, or write the condition in full"))
        elif token.type == tokenize.NUMBER and not _DECIMAL.match(token.string):
            problems.append(ExprProblem("expr.number-form", f"the number {token.string!r} is not written in plain "
                                        "decimal", col, hint="write it as 31, 1000 or 0.5 (no 0x, 0o, 0b, _ or j)"))
    return problems


# --- checking ----------------------------------------------------------------


class _Checker:
    """Allow-list walk and type inference; collects every problem it can."""

    def __init__(self, scope: Mapping[str, NameInfo], indent: int, limits: Limits):
        self.scope = scope
        self.indent = indent
        self.limits = limits
        self.problems: list[ExprProblem] = []

    def problem(self, node: ast.AST, code: str, message: str, hint: str = "") -> str:
        col = getattr(node, "col_offset", 0) + 1 + self.indent
        self.problems.append(ExprProblem(code, message, col, hint=hint))
        return "any"

    def check_root(self, tree: ast.Expression, expect: str | None) -> str:
        depth = _depth(tree)
        if depth > self.limits.max_expression_depth:
            self.problem(tree.body, "expr.too-complex",
                         f"the expression is nested {depth} levels deep, more than the limit of "
                         f"{self.limits.max_expression_depth}")
            return "any"
        for node in ast.walk(tree):
            kind = type(node)
            if kind not in _ALLOWED_NODES or (
                kind not in _SIMPLEEVAL_NODES and isinstance(node, ast.expr)
            ):
                if kind.__name__ in _OPERATOR_HINTS:
                    symbol, hint = _OPERATOR_HINTS[kind.__name__]
                    return self.problem(tree.body, "expr.not-allowed", f"the operator {symbol} is not allowed", hint)
                word = _NODE_WORDS.get(kind.__name__, kind.__name__)
                return self.problem(node, "expr.not-allowed", f"{word} is not allowed in expressions",
                                    "use facts, derived values, operators and the listed functions")
            if isinstance(node, (ast.operator, ast.unaryop, ast.cmpop)) and kind not in _ALLOWED_OPERATORS:
                symbol, hint = _OPERATOR_HINTS.get(kind.__name__, (kind.__name__, ""))
                return self.problem(tree.body, "expr.not-allowed", f"the operator {symbol} is not allowed", hint)
        found = self.visit(tree.body)
        if found == "score" and expect == "number":
            self.problem(tree.body, "expr.score", "this expression is a score: unknown items give a range",
                         "declare the derived value with type: score")
        elif expect == "score" and found == "number":
            pass  # a score whose items are all known is a number
        elif expect and found not in (expect, "any"):
            self.problem(tree.body, "expr.type", f"this expression gives a {found}, a {expect} is needed",
                         "a condition compares values, e.g. age >= 18")
        return found

    def visit(self, node: ast.AST) -> str:
        method: Callable[[ast.AST], str] = getattr(self, f"visit_{type(node).__name__}")
        return method(node)

    def visit_Constant(self, node: ast.Constant) -> str:
        value = node.value
        if isinstance(value, bool):
            return "boolean"
        if isinstance(value, (int, float)):
            if isinstance(value, int) and abs(value) > 10**15:
                return self.problem(node, "expr.too-large", "this number is too large")
            if isinstance(value, float) and not math.isfinite(value):
                return self.problem(node, "expr.too-large", "this number is too large (it is not a finite number)",
                                    "numbers in conditions stay below about 1.8e308")
            return "number"
        if isinstance(value, str):
            return "text"
        return self.problem(node, "expr.not-allowed", f"the constant {value!r} is not allowed",
                            "unknown is tested with known(x), not with None")

    def visit_Name(self, node: ast.Name) -> str:
        info = self.scope.get(node.id)
        if info is None:
            if node.id in REGISTRY:
                return self.problem(node, "expr.not-allowed", f"'{node.id}' is a function: call it with (...)")
            hint = did_you_mean(node.id, self.scope, "declare it under facts or derived")
            return self.problem(node, "expr.unknown-name", f"unknown name '{node.id}'", hint)
        return info.type

    def _want(self, node: ast.AST, got: str, *wanted: str) -> None:
        if got == "score" and "number" in wanted and "score" not in wanted:
            self.problem(node, "expr.score", "a score with unknown items cannot be used here",
                         _SCORE_HINT)
        elif got != "any" and got not in wanted:
            self.problem(node, "expr.type", f"expected a {' or '.join(wanted)} here, got a {got}")

    def visit_BoolOp(self, node: ast.BoolOp) -> str:
        for value in node.values:
            self._want(value, self.visit(value), "boolean")
        return "boolean"

    def visit_UnaryOp(self, node: ast.UnaryOp) -> str:
        got = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            self._want(node.operand, got, "boolean")
            return "boolean"
        self._want(node.operand, got, "number", "score")
        return "score" if got == "score" else "number"

    def visit_BinOp(self, node: ast.BinOp) -> str:
        left, right = self.visit(node.left), self.visit(node.right)
        if "score" in (left, right):
            return self._score_arithmetic(node, left, right)
        self._want(node.left, left, "number")
        self._want(node.right, right, "number")
        if isinstance(node.op, ast.Pow) and isinstance(node.right, ast.Constant):
            exponent = node.right.value
            if isinstance(exponent, (int, float)) and abs(exponent) > 100:
                self.problem(node.right, "expr.too-large", f"exponent {exponent} is too large")
        return "number"

    def _score_arithmetic(self, node: ast.BinOp, left: str, right: str) -> str:
        """A score plus, minus a number or score; times, divided by a number: a score."""
        if isinstance(node.op, (ast.Add, ast.Sub)):
            self._want(node.left, left, "number", "score")
            self._want(node.right, right, "number", "score")
            return "score"
        other = right if left == "score" else left
        if isinstance(node.op, (ast.Mult, ast.Div)) and other in ("number", "any"):
            if isinstance(node.op, ast.Div) and right == "score":
                return self.problem(node, "expr.score", "a number cannot be divided by a score with unknown items",
                                    _SCORE_HINT)
            return "score"
        return self.problem(node, "expr.score", "a score with unknown items cannot be used here", _SCORE_HINT)

    def visit_Compare(self, node: ast.Compare) -> str:
        operands = [node.left, *node.comparators]
        types = [self.visit(o) for o in operands]
        if "score" in types:
            # Against a score's range a comparison may be unknown although both operands have a
            # value: the code generator must test its result (KleeneCodegen.never_unknown).
            setattr(node, READS_SCORE, True)
            two_scores_equal = types.count("score") > 1 and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops)
            if two_scores_equal or any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops):
                self.problem(node, "expr.score", "a score with unknown items is compared with a number here",
                             "write score >= 2, score == 0, ...")
            types = ["number" if t == "score" else t for t in types]
        for i, op in enumerate(node.ops):
            a, b = operands[i], operands[i + 1]
            ta, tb = types[i], types[i + 1]
            if isinstance(op, (ast.In, ast.NotIn)):
                self._check_membership(a, ta, b, tb)
            elif isinstance(op, (ast.Lt, ast.LtE, ast.Gt, ast.GtE)):
                self._want(a, ta, "number", "date")
                self._want(b, tb, "number", "date")
                if "any" not in (ta, tb) and ta != tb:
                    self.problem(b, "expr.type", f"cannot compare a {ta} with a {tb}")
            else:
                if "any" not in (ta, tb) and _base(ta) != _base(tb):
                    self.problem(b, "expr.type", f"cannot compare a {ta} with a {tb}")
                self._check_enum_literal(a, b)
                self._check_enum_literal(b, a)
        return "boolean"

    def _check_membership(self, item: ast.AST, ti: str, container: ast.AST, tc: str) -> None:
        if isinstance(container, (ast.List, ast.Tuple)):
            for element in container.elts:
                self._check_enum_literal(item, element)
            return
        self._want(container, tc, "list")
        if isinstance(container, ast.Name) and isinstance(item, ast.Constant):
            self._check_value(container.id, item)

    def _check_enum_literal(self, name_node: ast.AST, literal: ast.AST) -> None:
        if isinstance(name_node, ast.Name) and isinstance(literal, ast.Constant) and isinstance(literal.value, str):
            self._check_value(name_node.id, literal)

    def _check_value(self, name: str, literal: ast.Constant) -> None:
        info = self.scope.get(name)
        if info and info.values and literal.value not in info.values:
            hint = did_you_mean(literal.value, info.values, "values: " + ", ".join(info.values))
            self.problem(literal, "expr.unknown-value", f"'{literal.value!s}' is not a value of {name}", hint)

    def visit_IfExp(self, node: ast.IfExp) -> str:
        self._want(node.test, self.visit(node.test), "boolean")
        body, orelse = self.visit(node.body), self.visit(node.orelse)
        if "any" not in (body, orelse) and _base(body) != _base(orelse):
            self.problem(node.orelse, "expr.type", f"both branches must give the same type ({body} vs {orelse})")
        if "score" in (body, orelse):
            return "score"
        return body if body != "any" else orelse

    def visit_Call(self, node: ast.Call) -> str:
        if not isinstance(node.func, ast.Name):
            return self.problem(node, "expr.not-allowed", "only the listed functions can be called",
                                "functions: " + ", ".join(sorted(REGISTRY)))
        fn = REGISTRY.get(node.func.id)
        if fn is None:
            hint = did_you_mean(node.func.id, REGISTRY, "functions: " + ", ".join(sorted(REGISTRY)))
            return self.problem(node, "expr.unknown-function", f"unknown function '{node.func.id}'", hint)
        if node.keywords:
            return self.problem(node, "expr.not-allowed", f"{fn.name}() takes no named arguments")
        count = len(node.args)
        low, high = len(fn.args) - fn.optional, len(fn.args)
        if (count < low) or (count > high and not fn.variadic):
            want = f"{low}" if low == high else f"{low} to {high}"
            if fn.variadic:
                want = f"at least {low}"
            return self.problem(node, "expr.arguments", f"{fn.name}() takes {want} argument(s), {count} given")
        if fn.name == "date":
            return self._date_literal(node)
        if fn.name == "known" and self.visit(node.args[0]) == "score":
            return self.problem(node, "expr.score", "known() of a score with unknown items: compare the score instead",
                                "score >= 2 is decided as soon as the known items suffice")
        if fn.name == "points":
            return self._points(node)
        if fn.unknown == "bounds":  # count_true, sum: scores are parts of a score
            for arg in node.args:
                self._want(arg, self.visit(arg), fn.args[0], *(("score",) if fn.args[0] == "number" else ()))
            return fn.returns
        for i, arg in enumerate(node.args):
            expected = fn.args[min(i, len(fn.args) - 1)]
            got = self.visit(arg)
            if expected != "any":
                self._want(arg, got, expected)
        return fn.returns

    def _points(self, node: ast.Call) -> str:
        """``points(condition, n)``: n a written number, so a missing item's range is known now."""
        self._want(node.args[0], self.visit(node.args[0]), "boolean")
        value = node.args[1]
        if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.USub):
            value = value.operand
        if not (isinstance(value, ast.Constant) and type(value.value) in (int, float)):
            return self.problem(node.args[1], "expr.score", "points() takes a written number of points, e.g. "
                                "points(age >= 75, 2)", "the points of an item are part of the score's definition")
        self.visit(node.args[1])
        return "score"

    def _date_literal(self, node: ast.Call) -> str:
        """``date('2026-01-31')``: a written date, checked now (a date computed from text would be a guess)."""
        arg = node.args[0]
        if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
            return self.problem(arg, "expr.date", "date() takes a date written in quotes, e.g. date('2026-01-31')",
                                "dates of the patient are facts; compute others with add_days, add_months...")
        if parse_date_literal(arg.value) is None:
            return self.problem(arg, "expr.date", f"'{arg.value}' is not a calendar date written YYYY-MM-DD",
                                "e.g. date('2026-01-31')")
        return "date"

    def visit_List(self, node: ast.List | ast.Tuple) -> str:
        kinds = set()
        for element in node.elts:
            if not isinstance(element, ast.Constant):
                self.problem(element, "expr.not-allowed", "a list may only hold plain values")
                continue
            kinds.add(self.visit(element))
        if len(kinds) > 1:
            self.problem(node, "expr.type", "a list must hold values of one type")
        return "list"

    visit_Tuple = visit_List


def _base(kind: str) -> str:
    return "text" if kind in ("enum", "text") else "number" if kind == "score" else kind


READS_SCORE = "_reads_score"  # set by the checker on comparisons that may read a score's range
_SCORE_HINT = ("a score with unknown items is compared (score >= 2), added to, subtracted from, or multiplied "
               "by a number; min, max, round... need every item known")


def _depth(tree: ast.AST) -> int:
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in ast.iter_child_nodes(node))
    return deepest


# --- code generation from the validated AST ----------------------------------


class KleeneCodegen:
    """Rewrites a validated AST into new nodes with three-valued semantics.

    Used for each expression here and, for the whole plan, by
    engine.accel.codegen; the names it emits are ``_t<n>`` temporaries, the
    ``_f_<function>`` and ``_c_<function>`` (its computation on known
    arguments) entries of :data:`RUNTIME_GLOBALS` and the expression's own
    validated names.
    """

    def __init__(self) -> None:
        self.counter = 0

    def temp(self) -> str:
        """A fresh name for a temporary (``_t<n>``)."""
        self.counter += 1
        return f"_t{self.counter}"

    @staticmethod
    def never_unknown(node: ast.expr) -> bool:
        """True for generated nodes that cannot be None, so no unknown-test is needed on them:
        non-None constants, literal lists, and plain comparisons, ``not`` and arithmetic, which
        appear bare only once their operands are known."""
        if isinstance(node, ast.Constant):
            return node.value is not None
        if isinstance(node, ast.NamedExpr):
            return KleeneCodegen.never_unknown(node.value)
        if isinstance(node, ast.Compare) and getattr(node, READS_SCORE, False):
            return False  # against a score's range: unknown when the range straddles the threshold
        return isinstance(node, (ast.Tuple, ast.Compare, ast.BinOp)) or (
            isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not))

    def bind(self, node: ast.expr) -> tuple[ast.expr, ast.expr]:
        """(expression that evaluates ``node`` once, expression reading it again)."""
        if isinstance(node, (ast.Name, ast.Constant)):
            return node, node
        name = self.temp()
        return (ast.NamedExpr(target=ast.Name(name, ast.Store()), value=node), ast.Name(name, ast.Load()))

    def gen(self, node: ast.expr) -> ast.expr:
        """The three-valued rewrite of ``node`` (dispatches on its type)."""
        method: Callable[[ast.expr], ast.expr] = getattr(self, f"gen_{type(node).__name__}")
        return method(node)

    def gen_Constant(self, node: ast.Constant) -> ast.expr:
        """A constant stays itself."""
        return ast.Constant(node.value)

    def gen_Name(self, node: ast.Name) -> ast.expr:
        """A name reads the patient's value (None when unknown)."""
        return ast.Name(node.id, ast.Load())

    def gen_List(self, node: ast.List | ast.Tuple) -> ast.expr:
        """A literal list becomes a tuple of its rewritten items."""
        return ast.Tuple([ast.Constant(e.value) for e in node.elts], ast.Load())  # type: ignore[attr-defined]

    gen_Tuple = gen_List

    def _unknown_if_any(self, operands: list[ast.expr], build: Callable[[list[ast.expr]], ast.expr]) -> ast.expr:
        """``None if any operand is None else build(operands)`` with each operand evaluated once."""
        reads: list[ast.expr] = []
        tests: list[ast.expr] = []
        for operand in operands:
            if isinstance(operand, ast.Constant) or self.never_unknown(operand):
                reads.append(operand)  # no test: evaluated where it is used
                continue
            first, again = self.bind(operand)
            reads.append(again)
            tests.append(ast.Compare(first, [ast.Is()], [ast.Constant(None)]))
        body = build(reads)
        if not tests:
            return body
        test = tests[0] if len(tests) == 1 else ast.BoolOp(ast.Or(), tests)
        return ast.IfExp(test=test, body=ast.Constant(None), orelse=body)

    def gen_BinOp(self, node: ast.BinOp) -> ast.expr:
        """Arithmetic: unknown if an operand is unknown; powers go through the bounded power."""
        left, right = self.gen(node.left), self.gen(node.right)
        if isinstance(node.op, ast.Pow):
            return self._unknown_if_any(
                [left, right],
                lambda r: ast.Call(ast.Name("_pow", ast.Load()), [r[0], r[1]], []))
        op = type(node.op)()
        return self._unknown_if_any([left, right], lambda r: ast.BinOp(r[0], op, r[1]))

    def gen_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        """``not`` and unary minus: unknown stays unknown."""
        operand = self.gen(node.operand)
        op = type(node.op)()
        return self._unknown_if_any([operand], lambda r: ast.UnaryOp(op, r[0]))

    def gen_Compare(self, node: ast.Compare) -> ast.expr:
        """A (chained) comparison: unknown if an operand is unknown, else Kleene ``and`` of the links."""
        generated = self._compare(node)
        if getattr(node, READS_SCORE, False):
            for part in ast.walk(generated):
                if isinstance(part, ast.Compare):
                    setattr(part, READS_SCORE, True)
        return generated

    def _compare(self, node: ast.Compare) -> ast.expr:
        operands = [self.gen(o) for o in [node.left, *node.comparators]]
        if len(node.ops) == 1:
            op = type(node.ops[0])()
            return self._unknown_if_any(operands, lambda r: ast.Compare(r[0], [op], [r[1]]))
        # a < b < c is (a < b) and (b < c) with b evaluated once.
        parts: list[ast.expr] = []
        previous = operands[0]
        for op_node, operand in zip(node.ops, operands[1:], strict=True):
            first, again = self.bind(operand)
            op = type(op_node)()
            parts.append(self._unknown_if_any([previous, first], _comparison(op)))
            previous = again
        return self._kleene(parts, is_and=True)

    def gen_BoolOp(self, node: ast.BoolOp) -> ast.expr:
        """``and`` / ``or`` with Kleene's logic."""
        return self._kleene([self.gen(v) for v in node.values], is_and=isinstance(node.op, ast.And))

    def _kleene(self, values: list[ast.expr], *, is_and: bool) -> ast.expr:
        """n-ary Kleene and/or, left to right, stopping at the first decisive operand.

        and: the first False wins; else unknown if any operand was unknown; else True.
        or: the same with True. Each operand is evaluated at most once.
        """
        decisive = not is_and

        def is_(expr: ast.expr, const: Any) -> ast.expr:
            return ast.Compare(expr, [ast.Is()], [ast.Constant(const)])

        firsts, unknown_tests = [], []
        for value in values:
            if isinstance(value, ast.Constant) or self.never_unknown(value):
                firsts.append(value)  # read once, by its decisive test; never unknown
                continue
            first, again = self.bind(value)
            firsts.append(first)
            unknown_tests.append(is_(again, None))
        if unknown_tests:
            tail: ast.expr = ast.IfExp(
                test=unknown_tests[0] if len(unknown_tests) == 1 else ast.BoolOp(ast.Or(), unknown_tests),
                body=ast.Constant(None), orelse=ast.Constant(is_and))
        else:
            tail = ast.Constant(is_and)
        for first in reversed(firsts):
            tail = ast.IfExp(test=is_(first, decisive), body=ast.Constant(decisive), orelse=tail)
        return tail

    def gen_IfExp(self, node: ast.IfExp) -> ast.expr:
        """``a if c else b``: unknown when ``c`` is unknown, else the chosen branch."""
        test = self.gen(node.test)
        if self.never_unknown(test):
            return ast.IfExp(test=test, body=self.gen(node.body), orelse=self.gen(node.orelse))
        test_first, test_again = self.bind(test)
        return ast.IfExp(
            test=ast.Compare(test_first, [ast.Is()], [ast.Constant(None)]),
            body=ast.Constant(None),
            orelse=ast.IfExp(test=test_again, body=self.gen(node.body), orelse=self.gen(node.orelse)),
        )

    def gen_Call(self, node: ast.Call) -> ast.expr:
        """A registry function, called through its runtime name."""
        name = node.func.id  # type: ignore[attr-defined]
        args = [self.gen(a) for a in node.args]
        if name == "known":
            if isinstance(args[0], ast.Constant):  # known(3): decided now (and no "is not with a literal" warning)
                return ast.Constant(args[0].value is not None)
            return ast.Compare(args[0], [ast.IsNot()], [ast.Constant(None)])
        if REGISTRY[name].unknown == "propagate":  # unknown in, unknown out: tested here, no wrapper call
            return self._unknown_if_any(args, lambda r: ast.Call(ast.Name(f"_c_{name}", ast.Load()), r, []))
        return ast.Call(ast.Name(f"_f_{name}", ast.Load()), args, [])


def _comparison(op: ast.cmpop) -> Callable[[list[ast.expr]], ast.expr]:
    """Builds ``left <op> right`` from the two (bound) operands."""
    return lambda operands: ast.Compare(operands[0], [op], [operands[1]])


def recompiled(expr: CompiledExpression, tree: ast.Expression) -> CompiledExpression:
    """``expr`` with another tree made from its own checked nodes (a mutant, engine.authoring.mutate).

    The tree must keep the nodes, names and type of the checked one: a changed
    operator or constant, an operand dropped, a ``not`` added. Its text is the
    tree written back (``ast.unparse``).
    """
    return CompiledExpression(ast.unparse(tree), tree, _codegen(copy.deepcopy(tree)), expr.names, expr.type,
                              expr.ordered)


def _codegen(tree: ast.Expression) -> CodeType:
    body = KleeneCodegen().gen(tree.body)
    module = ast.Expression(body=body)
    ast.fix_missing_locations(module)
    return compile(module, "<guideline expression>", "eval")


# --- reference evaluator -------------------------------------------------------
