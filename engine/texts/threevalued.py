"""Texts follow the conditions' three-valued logic, and are checked like them.

Jinja's ``{% if sex == 'female' %}femme{% else %}homme{% endif %}`` takes the
else branch when ``sex`` is unknown (``None == 'female'`` is false): a
patient of unknown sex was told "homme". Here every condition of a text
(``{% if %}``, ``{% elif %}``, ``a if c else b``) is rewritten, once at load,
into the same Kleene logic as ``when:`` -- a comparison with an unknown
operand is unknown, ``and``/``or``/``not`` are Kleene's -- and a condition
that is unknown renders *no* branch. A text that has something to say when a
fact is missing says it with ``{% if sex is unknown %}`` (``is known`` is the
converse), which is never unknown itself.

The rewrite builds Jinja nodes only: comparisons get a guard (``None if a is
unknown else a == b``) and the connectives call the helpers of
engine.texts.kleene, which Jinja's sandbox and the translated texts
(engine.textgen) both read.

The checker half (:func:`literal_problems`) type-checks what a text compares:
a literal against an enum's declared values (with a did-you-mean), a text
against a number. :func:`token_columns` finds where a name or literal is in
the text, so a diagnostic points at its line and column, not at the text's
first line.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Any

from jinja2 import nodes

from engine.errors import did_you_mean

__all__ = ["column_of", "literal_problems", "three_valued", "token_columns"]


def _unknown_test(node: nodes.Node) -> nodes.Test:
    return nodes.Test(node, "unknown", [], [], None, None, lineno=node.lineno)


def _kleene(node: nodes.Node) -> nodes.Expr:
    """``node`` as a condition that is None when it is unknown."""
    line = node.lineno
    if isinstance(node, (nodes.And, nodes.Or)):
        helper = "_kand" if isinstance(node, nodes.And) else "_kor"
        return nodes.Call(nodes.Name(helper, "load", lineno=line), [_kleene(node.left), _kleene(node.right)], [],
                          None, None, lineno=line)
    if isinstance(node, nodes.Not):
        return nodes.Call(nodes.Name("_knot", "load", lineno=line), [_kleene(node.node)], [], None, None, lineno=line)
    if isinstance(node, nodes.Compare):
        operands = [node.expr, *(op.expr for op in node.ops)]
        guards = [_unknown_test(o) for o in operands if not isinstance(o, (nodes.Const, nodes.List, nodes.Tuple))]
        if not guards:
            return node
        test: nodes.Expr = guards[0]
        for guard in guards[1:]:
            test = nodes.Or(test, guard, lineno=line)
        return nodes.CondExpr(test, nodes.Const(None, lineno=line), node, lineno=line)
    assert isinstance(node, nodes.Expr)
    return node  # a name, a test (is unknown, is known...), a literal: already its own three-valued value


def _rewrite_if(node: nodes.If) -> None:
    """``if t1 / elif t2 / else`` -> nothing when a test reached is unknown, else the branch it picks."""
    branches = [(node.test, node.body)] + [(e.test, e.body) for e in node.elif_]
    chain: list[nodes.Node] = node.else_
    for test, body in reversed(branches[1:]):
        condition = _kleene(test)
        chain = [nodes.If(_unknown_test(condition), [], [],
                          [nodes.If(condition, body, [], chain, lineno=test.lineno)], lineno=test.lineno)]
    condition = _kleene(node.test)
    node.test = _unknown_test(condition)
    node.body, node.elif_ = [], []
    node.else_ = [nodes.If(condition, branches[0][1], [], chain, lineno=node.lineno)]


def three_valued(tree: nodes.Template) -> nodes.Template:
    """Rewrite, in place, every condition of ``tree`` into three-valued logic (see the module's docstring).

    Call it once per parsed tree: the nodes it builds are not rewritten again.
    """
    ifs = list(tree.find_all(nodes.If))
    elifs = {id(e) for node in ifs for e in node.elif_}  # Jinja keeps elif branches as If nodes of their if
    conditionals = list(tree.find_all(nodes.CondExpr))
    for node in ifs:
        if id(node) not in elifs:
            _rewrite_if(node)
    for cond in conditionals:
        condition = _kleene(cond.test)
        inner = nodes.CondExpr(condition, cond.expr1, cond.expr2, lineno=cond.lineno)
        cond.test, cond.expr1, cond.expr2 = _unknown_test(condition), nodes.Const(None, lineno=cond.lineno), inner
    return tree


# --- checking what a text compares ----------------------------------------------------


def _comparisons(tree: nodes.Template) -> Iterator[tuple[nodes.Expr, nodes.Expr]]:
    for compare in tree.find_all(nodes.Compare):
        operands = [compare.expr, *(op.expr for op in compare.ops)]
        for op, (left, right) in zip(compare.ops, itertools.pairwise(operands), strict=True):
            if op.op in ("in", "notin") and isinstance(right, (nodes.List, nodes.Tuple)):
                for item in right.items:
                    yield left, item
            elif op.op in ("in", "notin") and isinstance(right, nodes.Const) and isinstance(right.value, (list, tuple)):
                for value in right.value:
                    yield left, nodes.Const(value, lineno=right.lineno)
            else:
                yield left, right
                yield right, left


def literal_problems(tree: nodes.Template, kinds: Mapping[str, tuple[str, tuple[str, ...]]]
                     ) -> list[tuple[str, str, int, str, str]]:
    """(code, message, line, literal searched for its column, hint) for each literal a text compares wrongly.

    ``kinds`` maps each guideline name to its type and, for an enum, its values.
    """
    found: list[tuple[str, str, int, str, str]] = []
    for name_node, literal in _comparisons(tree):
        if not (isinstance(name_node, nodes.Name) and isinstance(literal, nodes.Const)):
            continue
        kind, values = kinds.get(name_node.name, ("any", ()))
        value = literal.value
        if isinstance(value, str) and values and value not in values:
            found.append(("template.unknown-value", f"'{value}' is not a value of {name_node.name}", literal.lineno,
                          value, did_you_mean(value, values, "values: " + ", ".join(values))))
        elif isinstance(value, str) and kind in ("number", "score", "boolean", "date"):
            found.append(("template.type", f"{name_node.name} is a {kind}: it is never equal to the text '{value}'",
                          literal.lineno, value, ""))
        elif type(value) in (int, float) and kind in ("enum", "text"):
            found.append(("template.type", f"{name_node.name} is a text value: it is never equal to the number "
                          f"{value}", literal.lineno, str(value), ""))
    return found


def token_columns(lexed: list[tuple[int, str, str]], text: str) -> list[tuple[int, int, str, Any]]:
    """(line, column, token type, value) of each name and literal of ``text``, from Jinja's tokens.

    Jinja's tokens carry a line but no column; each token's text is found in
    the source from where the previous one ended.
    """
    starts = [0]
    for i, char in enumerate(text):
        if char == "\n":
            starts.append(i + 1)
    out: list[tuple[int, int, str, Any]] = []
    cursor = 0
    for _line, kind, value in lexed:
        if not value:
            continue
        at = text.find(value, cursor)
        if at < 0:
            continue  # whitespace control changed the data token: its text is not in the source as such
        cursor = at + len(value)
        if kind in ("name", "string", "integer", "float"):
            row = max(i for i, start in enumerate(starts) if start <= at)
            literal: Any = value
            if kind == "string":
                literal = value[1:-1]
            out.append((row + 1, at - starts[row] + 1, kind, literal))
    return out


def column_of(columns: list[tuple[int, int, str, Any]], line: int, word: str, kinds: tuple[str, ...]) -> tuple[int, int]:
    """(line, column) of the first token ``word`` of one of ``kinds`` from ``line`` on, or (line, 1)."""
    for row, col, kind, value in columns:
        if row >= line and kind in kinds and value == word:
            return row, col
    return line, 1
