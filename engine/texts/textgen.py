"""Compile simple explanation texts into Python functions.

Most texts are words, ``{{ name }}``, ``{{ name | num(1) }}``, ``{% if %}`` on
simple tests and, now and then, a ``{% for %}`` over a list fact. Jinja renders
them correctly but pays for its general machinery (a context object, a
generator per block, the sandbox's attribute checks) on every text of every
patient. Here the parsed template is translated into one Python function,
``render(env) -> str``, the way :mod:`engine.codegen` translates the decision
plan.

Safety is the same as for the plan: the function is built from AST nodes only.
The text of a template appears in it only as ``ast.Constant`` strings; the
names it reads are dictionary keys (``env["name"]``, again constants); loop
variables become ``l_``-prefixed locals. The translation accepts a small,
explicit subset of Jinja's nodes and gives up (returns None) on anything else,
which Jinja then renders in its sandbox: no attribute other than ``loop.*``,
no ``*`` or ``**`` (the sandbox bounds those), no calls but our own ``num`` and
``date`` filters. A failure at run time (a comparison with an unknown value,
a missing key) also goes back to Jinja, which reports it; the tests check that
both renderings give the same text.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from typing import Any

from jinja2 import nodes

from engine.texts.kleene import HELPERS

__all__ = ["TextCode", "translate"]

# (code object, constants the code reads by index, language); run by
# engine.templates.text_function, which provides the helpers the code reads.
TextCode = tuple[Any, tuple[Any, ...], str]

_COMPARE = {"eq": ast.Eq, "ne": ast.NotEq, "gt": ast.Gt, "gteq": ast.GtE, "lt": ast.Lt, "lteq": ast.LtE,
            "in": ast.In, "notin": ast.NotIn}
# '*' and '**' are left out on purpose: the sandbox bounds them (see sandbox._Sandbox).
_BINARY = {nodes.Add: ast.Add, nodes.Sub: ast.Sub, nodes.Div: ast.Div, nodes.FloorDiv: ast.FloorDiv}
_UNARY = {nodes.Neg: ast.USub, nodes.Pos: ast.UAdd}
# Jinja's tests that are identity checks: `is none`, `is unknown`, `is known`, `is true`, `is false`.
_IDENTITY_TESTS = {"none": (False, None), "unknown": (False, None), "known": (True, None), "true": (False, True),
                   "false": (False, False)}
_SPACES = re.compile(r"[ \t\r\n]+")
_LOOP_ATTRIBUTES = ("index", "index0", "first", "last", "length", "revindex", "revindex0")


class _Unsupported(Exception):
    """The template uses something outside the translated subset."""


def _load(name: str) -> ast.Name:
    return ast.Name(name, ast.Load())


def _call(name: str, *args: ast.expr) -> ast.Call:
    return ast.Call(_load(name), list(args), [])


class _Translator:
    def __init__(self, lang: str, one_line: bool) -> None:
        self.lang = lang
        self.one_line = one_line
        self.constants: list[Any] = []  # dict literals, kept out of the code so they are built once
        self.loops: list[tuple[str, str, str]] = []  # (loop variable, index local, length local), innermost last
        self.temps = 0

    # --- expressions ---------------------------------------------------------
    def expr(self, node: nodes.Node) -> ast.expr:
        if isinstance(node, nodes.Name) and node.ctx == "load":
            if node.name == "loop" and self.loops:
                raise _Unsupported  # Jinja's loop object itself, not a fact named 'loop'
            for variable, _, _ in reversed(self.loops):
                if node.name == variable:
                    return _load("l_" + variable)
            return ast.Subscript(_load("env"), ast.Constant(node.name), ast.Load())
        if isinstance(node, nodes.Const) and (node.value is None or isinstance(node.value, (str, int, float, bool))):
            return ast.Constant(node.value)
        if isinstance(node, (nodes.List, nodes.Tuple)) and all(isinstance(i, nodes.Const) for i in node.items):
            return ast.Tuple([self.expr(i) for i in node.items], ast.Load())
        # Jinja's optimizer (run by meta and compile, in place) folds literal lists and dicts into constants.
        if isinstance(node, nodes.Const) and type(node.value) in (list, tuple) \
                and all(v is None or type(v) in (str, int, float, bool) for v in node.value):
            return ast.Tuple([ast.Constant(v) for v in node.value], ast.Load())
        if isinstance(node, nodes.Getitem) and node.ctx == "load" and isinstance(node.node, (nodes.Dict, nodes.Const)):
            return ast.Subscript(self.constant(self.const_dict(node.node)), self.expr(node.arg), ast.Load())
        if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name) and node.node.name == "loop" \
                and self.loops and node.attr in _LOOP_ATTRIBUTES:
            return self.loop_attribute(node.attr)
        if isinstance(node, nodes.Filter) and node.name in ("num", "date") and node.node is not None \
                and not node.kwargs and node.dyn_args is None and node.dyn_kwargs is None \
                and all(isinstance(a, nodes.Const) for a in node.args):
            value = self.expr(node.node)
            if node.name == "num" and len(node.args) <= 1:
                digits = [ast.Constant(a.value) for a in node.args if isinstance(a, nodes.Const)]
                return _call("_num", value, ast.Constant(self.lang), *digits)
            if node.name == "date" and not node.args:
                return _call("_date", value, ast.Constant(self.lang))
        if isinstance(node, nodes.Test) and node.name in _IDENTITY_TESTS and not node.args \
                and not node.kwargs and node.dyn_args is None and node.dyn_kwargs is None:
            tested = self.expr(node.node)
            negated, constant = _IDENTITY_TESTS[node.name]
            if isinstance(tested, ast.Constant):  # `5 is none`: decided now (and no "is with a literal" warning)
                return ast.Constant((tested.value is constant) != negated)
            return ast.Compare(tested, [ast.IsNot() if negated else ast.Is()], [ast.Constant(constant)])
        if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name) and node.node.name in HELPERS \
                and not node.kwargs and node.dyn_args is None and node.dyn_kwargs is None:
            return _call(node.node.name, *(self.expr(a) for a in node.args))  # the three-valued connectives
        if isinstance(node, nodes.Compare) and all(op.op in _COMPARE for op in node.ops):
            return ast.Compare(self.expr(node.expr), [_COMPARE[op.op]() for op in node.ops],
                               [self.expr(op.expr) for op in node.ops])
        if isinstance(node, nodes.Not):
            return ast.UnaryOp(ast.Not(), self.expr(node.node))
        if isinstance(node, (nodes.And, nodes.Or)):
            op = ast.And() if isinstance(node, nodes.And) else ast.Or()
            return ast.BoolOp(op, [self.expr(node.left), self.expr(node.right)])
        if isinstance(node, nodes.BinExpr) and type(node) in _BINARY:
            return ast.BinOp(self.expr(node.left), _BINARY[type(node)](), self.expr(node.right))
        if isinstance(node, nodes.UnaryExpr) and type(node) in _UNARY:
            return ast.UnaryOp(_UNARY[type(node)](), self.expr(node.node))
        if isinstance(node, nodes.CondExpr) and node.expr2 is not None:
            test, inner = node.test, node.expr2
            if isinstance(test, nodes.Test) and test.name == "unknown" and isinstance(inner, nodes.CondExpr) \
                    and inner.test is test.node and inner.expr2 is not None:  # the three-valued guard, read once
                held = self.temp()
                return ast.IfExp(ast.Compare(ast.NamedExpr(held, self.expr(inner.test)), [ast.Is()], [ast.Constant(None)]),
                                 self.expr(node.expr1),
                                 ast.IfExp(ast.Name(held.id, ast.Load()), self.expr(inner.expr1), self.expr(inner.expr2)))
            return ast.IfExp(self.expr(node.test), self.expr(node.expr1), self.expr(node.expr2))
        raise _Unsupported

    def const_dict(self, node: nodes.Dict | nodes.Const) -> dict[Any, Any]:
        if isinstance(node, nodes.Const):
            if type(node.value) is not dict or not all(
                    v is None or type(v) in (str, int, float, bool) for v in (*node.value, *node.value.values())):
                raise _Unsupported
            return dict(node.value)
        out: dict[Any, Any] = {}
        for pair in node.items:
            if not (isinstance(pair.key, nodes.Const) and isinstance(pair.value, nodes.Const)):
                raise _Unsupported
            out[pair.key.value] = pair.value.value  # a repeated key: the last wins, as in Jinja
        return out

    def constant(self, value: Any) -> ast.expr:
        self.constants.append(value)
        return ast.Subscript(_load("_c"), ast.Constant(len(self.constants) - 1), ast.Load())

    def loop_attribute(self, attr: str) -> ast.expr:
        _, index, length = self.loops[-1]
        i, n = _load(index), _load(length)
        one = ast.Constant(1)
        built: dict[str, Callable[[], ast.expr]] = {
            "index0": lambda: i,
            "index": lambda: ast.BinOp(i, ast.Add(), one),
            "first": lambda: ast.Compare(i, [ast.Eq()], [ast.Constant(0)]),
            "last": lambda: ast.Compare(i, [ast.Eq()], [ast.BinOp(n, ast.Sub(), one)]),
            "length": lambda: n,
            "revindex": lambda: ast.BinOp(n, ast.Sub(), i),
            "revindex0": lambda: ast.BinOp(ast.BinOp(n, ast.Sub(), i), ast.Sub(), one),
        }
        return built[attr]()

    # --- blocks: each becomes one string expression -----------------------------
    def block(self, body: list[nodes.Node]) -> ast.expr:
        parts: list[ast.expr] = []
        for node in body:
            if isinstance(node, nodes.Output):
                for item in node.nodes:
                    if isinstance(item, nodes.TemplateData):
                        # Folded now rather than for every patient; fold_line gives the same text.
                        data = _SPACES.sub(" ", item.data) if self.one_line else item.data
                        parts.append(ast.Constant(data))
                    elif isinstance(item, nodes.Filter) and item.name in ("num", "date"):
                        parts.append(self.expr(item))  # already text; never None
                    else:
                        parts.append(_call("_out", self.expr(item)))
            elif isinstance(node, nodes.If):
                parts.append(self.choice(node))
            elif isinstance(node, nodes.For):
                parts.append(self.loop(node))
            else:
                raise _Unsupported
        return _concat(parts)

    def temp(self) -> ast.Name:
        """A fresh local for a value read twice (``_k<n>``)."""
        self.temps += 1
        return ast.Name(f"_k{self.temps}", ast.Store())

    @staticmethod
    def _guarded(node: nodes.If) -> nodes.If | None:
        """The inner if of engine.texts.threevalued's ``if X is unknown: nothing, else: if X ...``, or None."""
        test = node.test
        if isinstance(test, nodes.Test) and test.name == "unknown" and not node.body and not node.elif_ \
                and len(node.else_) == 1 and isinstance(node.else_[0], nodes.If) and node.else_[0].test is test.node:
            return node.else_[0]
        return None

    def choice(self, node: nodes.If) -> ast.expr:
        inner = self._guarded(node)
        if inner is not None:  # the condition is worked out once: nothing when unknown, else its branch
            held = self.temp()
            chosen = ast.IfExp(ast.Name(held.id, ast.Load()), self.block(inner.body), self.rest(inner))
            return ast.IfExp(ast.Compare(ast.NamedExpr(held, self.expr(inner.test)), [ast.Is()], [ast.Constant(None)]),
                             ast.Constant(""), chosen)
        branches = [(node.test, node.body)] + [(e.test, e.body) for e in node.elif_]
        result = self.block(node.else_)
        for test, body in reversed(branches):
            result = ast.IfExp(self.expr(test), self.block(body), result)
        return result

    def rest(self, node: nodes.If) -> ast.expr:
        """What ``node`` renders when its own test is false: its elif branches, then its else."""
        if not node.elif_:
            return self.block(node.else_)
        return self.choice(nodes.If(node.elif_[0].test, node.elif_[0].body, node.elif_[1:], node.else_))

    def loop(self, node: nodes.For) -> ast.expr:
        if node.else_ or node.test is not None or node.recursive or not isinstance(node.target, nodes.Name):
            raise _Unsupported
        items = self.expr(node.iter)  # evaluated outside the loop's own scope, as in Jinja
        depth = len(self.loops)
        variable, index, length = node.target.name, f"_i{depth}", f"_n{depth}"
        self.loops.append((variable, index, length))
        try:
            body = self.block(node.body)
        finally:
            self.loops.pop()
        target = ast.Tuple([ast.Name(index, ast.Store()), ast.Name(length, ast.Store()),
                            ast.Name("l_" + variable, ast.Store())], ast.Store())
        generator = ast.comprehension(target=target, iter=_call("_loop", items), ifs=[], is_async=0)
        return _call("_join", ast.ListComp(body, [generator]))


def _concat(parts: list[ast.expr]) -> ast.expr:
    if not parts:
        return ast.Constant("")
    if len(parts) == 1 and isinstance(parts[0], ast.Constant):
        return parts[0]
    # An f-string of string parts builds the text in one step (BUILD_STRING).
    return ast.JoinedStr([p if isinstance(p, ast.Constant) else ast.FormattedValue(p, -1, None) for p in parts])


def translate(tree: nodes.Template, lang: str, *, one_line: bool, name: str = "<text>") -> TextCode | None:
    """The template as a compiled ``render(env)``, or None if it uses more than the simple subset.

    ``one_line`` texts have their runs of white space folded into single spaces
    (folded YAML); the others are only stripped -- as ``CompiledTemplate`` does.
    """
    translator = _Translator(lang, one_line)
    try:
        text = translator.block(tree.body)
    except _Unsupported:
        return None
    # As formatting.tidy_text(text, one_line), without its dispatch.
    tidy = _call("_fold", text) if one_line else _call("_strip", text, ast.Constant(" \t\r\n"))
    function = ast.FunctionDef(
        name="render",
        args=ast.arguments(posonlyargs=[], args=[ast.arg("env")], vararg=None, kwonlyargs=[], kw_defaults=[],
                           kwarg=None, defaults=[]),
        body=[ast.Return(tidy)], decorator_list=[], returns=None)
    if "type_params" in ast.FunctionDef._fields:  # Python 3.12+
        function.type_params = []  # type: ignore[attr-defined]  # mypy reads the 3.11 stubs
    module = ast.Module(body=[function], type_ignores=[])
    ast.fix_missing_locations(module)
    code = compile(module, name, "exec")
    return code, tuple(translator.constants), lang
