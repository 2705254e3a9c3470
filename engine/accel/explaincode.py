"""Every value's explanation of a guideline, in one language, as one generated Python function.

:class:`engine.explain.Explainer` explains values one by one through
prepared closures: clear, and the reference. A full JSON result explains
every value (sixty-odd in the shipped guideline) for every patient, and
there the calls dominate. Here the same explanations are assembled, once per
guideline and language, into a single function of the patient's values:
each display is an inline expression (a finite domain's words are constants),
each how is an f-string of constants and the inputs' displays, and the whole
``values`` object is one dict literal.

Safety is that of :mod:`engine.accel.codegen`: the function is built from AST
nodes only; author text (labels, formulas, row descriptions) appears only as
string constants, names only as ``d_``/``v_``-prefixed locals and dict keys.
``tests/test_explain.py`` checks that both paths give equal explanations.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ExplainEntry", "build_explainer"]

_PLAIN = frozenset({int, float, str, bool, type(None)})


@dataclass(frozen=True)
class ExplainEntry:
    """What the generator needs to know of one value (prepared by engine.explain)."""

    name: str
    origin: str  # fact | derived | table | builtin
    unit: str | None
    label: str
    display: str  # boolean | finite | number | date | quantity | generic
    decimals: int | None = None
    finite: Mapping[Any, str] | None = None  # display of each value, for "finite" (and true/false/unknown for "boolean")
    how: tuple[str | tuple[str], ...] = ()  # constants and (input name,) to fill in, for derived values
    table: str | None = None  # for table outputs: the table whose row and inputs make the how
    json: bool = False  # the value needs converting to JSON (a date, a list)


_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*")


def _name(prefix: str, name: str) -> str:
    """A generated local for a guideline name; the name is checked again here, whatever the schema let in."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"{name!r} is not a guideline name")
    return prefix + name


def _load(name: str) -> ast.Name:
    return ast.Name(name, ast.Load())


def _call(func: str, *args: ast.expr) -> ast.Call:
    return ast.Call(_load(func), list(args), [])


def _is(value: ast.expr, constant: Any) -> ast.Compare:
    return ast.Compare(value, [ast.Is()], [ast.Constant(constant)])


def _typed(value: ast.expr, *kinds: str) -> ast.expr:
    """``type(value) is kind`` (or several, joined by or)."""
    tests: list[ast.expr] = [ast.Compare(_call("_type", value), [ast.Is()], [_load(k)]) for k in kinds]
    return tests[0] if len(tests) == 1 else ast.BoolOp(ast.Or(), tests)


def _if(test: ast.expr, body: ast.expr, orelse: ast.expr) -> ast.IfExp:
    return ast.IfExp(test, body, orelse)


def _number(entry: ast.expr, e: ExplainEntry, lang: str) -> ast.expr:
    """A number's display: the common cases inline (no grouping of thousands), the rest by ``_num``."""
    suffix = f" {e.unit}" if e.unit else ""

    def with_unit(text: ast.expr) -> ast.expr:
        return ast.BinOp(text, ast.Add(), ast.Constant(suffix)) if suffix else text

    slow = with_unit(_call("_num", entry, ast.Constant(e.decimals)))
    if e.decimals is None:  # up to six decimals, trailing zeros dropped (format_number's rule)
        text: ast.expr = ast.Call(ast.Attribute(ast.Call(ast.Attribute(
            _call("_format", entry, ast.Constant(".6f")), "rstrip", ast.Load()), [ast.Constant("0")], []),
            "rstrip", ast.Load()), [ast.Constant(".")], [])
        whole: ast.expr | None = _call("_strint", entry)
    elif 0 <= e.decimals < 7:
        text = _call("_format", entry, ast.Constant(f".{e.decimals}f"))
        whole = None  # a whole number with decimals is formatted as a float is
    else:
        return _if(_typed(entry, "_int", "_float"), slow, _call("_disp", entry, ast.Constant(e.unit),
                                                                ast.Constant(e.decimals)))
    if lang == "fr":  # a decimal comma
        text = ast.Call(ast.Attribute(text, "replace", ast.Load()), [ast.Constant("."), ast.Constant(",")], [])
    if whole is None:
        whole = text
    small = ast.Compare(ast.Constant(-9999), [ast.Lt(), ast.Lt()], [entry, ast.Constant(9999)])
    generic = _call("_disp", entry, ast.Constant(e.unit), ast.Constant(e.decimals))
    return _if(_typed(entry, "_float"), _if(small, with_unit(text), slow),
               _if(_typed(entry, "_int"), _if(small, with_unit(whole), slow), generic))


def _display(entry: ast.expr, e: ExplainEntry, index: int, lang: str) -> ast.expr:
    """The display of value ``entry`` as an expression; anything unexpected goes to the generic display."""
    generic = _call("_disp", entry, ast.Constant(e.unit), ast.Constant(e.decimals))
    if e.display == "boolean":
        assert e.finite is not None
        return _if(_is(entry, True), ast.Constant(e.finite[True]),
                   _if(_is(entry, False), ast.Constant(e.finite[False]),
                       _if(_is(entry, None), ast.Constant(e.finite[None]), generic)))
    if e.display == "finite":  # an enum: its values' words, or the generic display
        looked = ast.Call(ast.Attribute(_load(f"_finite{index}"), "get", ast.Load()), [entry], [])
        guarded = _if(_typed(entry, "_str"), looked, ast.Constant(None))
        return ast.BoolOp(ast.Or(), [guarded, generic])
    if e.display in ("number", "quantity"):
        shown = _if(_is(entry, None), ast.Constant(_unknown(e)), _number(entry, e, lang))
        if e.display == "quantity":  # given in another unit: both shown (the explainer knows how it was given)
            # `facts` holds only the quantities given in another unit (engine.evaluate._quantities_as_given):
            # one absent from it was given in the canonical unit; None means "ask _given for each".
            read = ast.NamedExpr(ast.Name("_g", ast.Store()), ast.Call(
                ast.Attribute(_load("facts"), "get", ast.Load()), [ast.Constant(e.name)], []))
            canonical = ast.BoolOp(ast.And(), [
                ast.Compare(_call("_type", _load("_g")), [ast.Is()], [_load("_dict")]),
                ast.Compare(ast.Call(ast.Attribute(_load("_g"), "get", ast.Load()), [ast.Constant("unit")], []),
                            [ast.Eq()], [ast.Constant(e.unit)])])
            given = ast.BoolOp(ast.And(), [
                ast.Compare(_load("facts"), [ast.IsNot()], [ast.Constant(None)]),
                ast.BoolOp(ast.Or(), [ast.Compare(read, [ast.Is()], [ast.Constant(None)]), canonical])])
            shown = _if(_is(entry, None), shown, _if(given, shown, _call("_given", ast.Constant(e.name), shown)))
        return shown
    if e.display == "date":
        return _if(_typed(entry, "_day"), _call("_date", entry), generic)
    # Anything else (an enum computed by a table or a derived value, a list): the
    # generic display's common cases inline.
    assert e.finite is not None
    return _if(_is(entry, None), ast.Constant(e.finite[None]),
               _if(_is(entry, True), ast.Constant(e.finite[True]),
                   _if(_is(entry, False), ast.Constant(e.finite[False]),
                       _if(_typed(entry, "_str"), entry,
                           _if(_typed(entry, "_int", "_float"), _number(entry, e, lang), generic)))))


def _unknown(e: ExplainEntry) -> str:
    assert e.finite is not None and None in e.finite, f"{e.name}: the unknown word is prepared with every entry"
    return e.finite[None]


def _how(e: ExplainEntry, index: int) -> ast.expr:
    parts: list[ast.expr] = []
    for part in e.how:
        if isinstance(part, tuple):
            parts.append(ast.FormattedValue(_load(_name("d_", part[0])), -1, None))
        elif part:
            parts.append(ast.Constant(part))
    if e.table is not None:  # the row's words first, then the inputs
        head = _call(f"_head{index}", ast.Subscript(_load("rows"), ast.Constant(e.table), ast.Load()))
        parts.insert(0, ast.FormattedValue(head, -1, None))
    if not parts:
        return ast.Constant("")
    if len(parts) == 1 and isinstance(parts[0], ast.Constant):
        return parts[0]
    return ast.JoinedStr(parts)


def build_explainer(entries: list[ExplainEntry], listed: tuple[str, ...], lang: str, helpers: Mapping[str, Any],
                    heads: Mapping[str, Callable[[Any], str]]) -> Callable[..., dict[str, dict[str, Any]]]:
    """The function ``(env, rows, facts, _given) -> {name: value's JSON}`` for these entries in ``lang``.

    Every entry is displayed (a how may read any of them); the dict returned
    has the ``listed`` names, in that order.

    ``helpers`` gives ``_disp(value, unit, decimals)`` (the generic display),
    ``_num(number, decimals)``, ``_date(day)`` and ``_json(value)``; ``heads``
    gives, by table, the words of the row hit (``head(row_id)``). ``_given(name,
    shown)`` is passed per call: a quantity's display with the unit it was
    given in, when that is another; ``facts`` are the quantities given in
    another unit when the facts went through the plan's checks (a quantity
    absent from it was given in its canonical unit and needs no call), else None.
    """
    namespace: dict[str, Any] = {"__builtins__": {}, "_type": type, "_int": int, "_float": float, "_str": str,
                                 "_dict": dict, "_format": format, "_strint": str, "_plain": _PLAIN, **helpers}
    body: list[ast.stmt] = []
    for i, e in enumerate(entries):
        body.append(ast.Assign([ast.Name(_name("v_", e.name), ast.Store())],
                               ast.Call(ast.Attribute(_load("env"), "get", ast.Load()), [ast.Constant(e.name)], [])))
        if e.display == "finite":
            namespace[f"_finite{i}"] = dict(e.finite or {})
        if e.table is not None:
            namespace[f"_head{i}"] = heads[e.table]
        body.append(ast.Assign([ast.Name(_name("d_", e.name), ast.Store())],
                               _display(_load(_name("v_", e.name)), e, i, lang)))
    keys: list[ast.expr | None] = []
    values: list[ast.expr] = []
    index = {e.name: i for i, e in enumerate(entries)}
    for i, e in ((index[name], entries[index[name]]) for name in listed):
        raw: ast.expr = _load(_name("v_", e.name))
        if e.json:
            raw = _if(ast.Compare(_call("_type", raw), [ast.In()], [_load("_plain")]), raw, _call("_json", raw))
        fields = {"name": ast.Constant(e.name), "origin": ast.Constant(e.origin), "value": raw,
                  "unit": ast.Constant(e.unit), "display": _load(_name("d_", e.name)), "label": ast.Constant(e.label),
                  "how": _how(e, i)}
        keys.append(ast.Constant(e.name))
        values.append(ast.Dict([ast.Constant(k) for k in fields], list(fields.values())))
    body.append(ast.Return(ast.Dict(keys, values)))
    function = ast.FunctionDef(
        name="explain_values",
        args=ast.arguments(posonlyargs=[], args=[ast.arg(a) for a in ("env", "rows", "facts", "_given")],
                           vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[]),
        body=body, decorator_list=[], returns=None)
    if "type_params" in ast.FunctionDef._fields:  # Python 3.12+
        function.type_params = []  # type: ignore[attr-defined]
    module = ast.Module(body=[function], type_ignores=[])
    ast.fix_missing_locations(module)
    exec(compile(module, "<explanations>", "exec"), namespace)  # noqa: S102 - built from AST nodes only
    made: Callable[..., dict[str, dict[str, Any]]] = namespace["explain_values"]
    return made
