"""Every value's explanation of a guideline, in one language, as one generated Python function.

:class:`engine.explain.Explainer` explains values one by one through
prepared closures: clear, and the reference. A full JSON result explains
every value (sixty-odd in the shipped guideline) for every patient, and
there the calls dominate. Here the same explanations are assembled, once per
guideline and language, into a single function of the patient's values:
each display is an inline expression (a finite domain's words are constants),
each how is an f-string of constants and the inputs' displays, and the whole
``values`` object is one dict literal -- or, for ``Result.to_json``, one
f-string of every value's object already written as JSON text.

Safety is that of :mod:`engine.accel.codegen`: the function is built from AST
nodes only; author text (labels, formulas, row descriptions) appears only as
string constants, names only as ``d_``/``v_``/``j_``-prefixed locals and dict keys.
``tests/test_explain.py`` checks that both paths give equal explanations,
``tests/test_json_text.py`` that the text is what ``json.dumps`` writes.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
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
            # `facts` holds only the quantities the plan saw given in another unit (engine.accel.codegen's
            # quantity check): one absent from it was given in the canonical unit; None means "ask _given for each".
            read = ast.Call(ast.Attribute(_load("facts"), "get", ast.Load()), [ast.Constant(e.name)], [])
            given = ast.BoolOp(ast.And(), [ast.Compare(_load("facts"), [ast.IsNot()], [ast.Constant(None)]),
                                           ast.Compare(read, [ast.Is()], [ast.Constant(None)])])
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
                    heads: Mapping[str, Callable[[Any], str]], *, text: bool = False) -> Callable[..., Any]:
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

    ``text``: the function returns the values as JSON text instead, ``({name:
    the value's object as JSON text}, the whole "values" object as pieces of JSON text to join)``,
    exactly as ``json.dumps(..., ensure_ascii=False)`` writes the dicts (for
    :meth:`engine.results.Result.to_json`); ``helpers`` then also gives
    ``_enc(str)`` (a string as JSON) and ``_jv(value)`` (any value as JSON).
    """
    namespace: dict[str, Any] = {"__builtins__": {}, "_type": type, "_int": int, "_float": float, "_str": str,
                                 "_format": format, "_strint": str, "_plain": _PLAIN,
                                 "_float_text": float.__repr__, "_int_text": int.__repr__, "_iso": dt.date.isoformat,
                                 "_finite_types": (bool, str, type(None)), "_len": len, **helpers}
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
    index = {e.name: i for i, e in enumerate(entries)}
    chosen = [(index[name], entries[index[name]]) for name in listed]
    if text:
        # Values that may be of a finite domain: yes/no, an enum, or an enum-valued derived value or table output
        # (not a number, a date, or a quantity, whose display also depends on the unit it was given in).
        finite_kinds = {e.name: e.display in ("boolean", "finite", "generic") for e in entries}
        body.extend(_as_text(chosen, namespace, finite_kinds))
    else:
        keys: list[ast.expr | None] = []
        values: list[ast.expr] = []
        for i, e in chosen:
            raw: ast.expr = _load(_name("v_", e.name))
            if e.json:
                raw = _if(ast.Compare(_call("_type", raw), [ast.In()], [_load("_plain")]), raw, _call("_json", raw))
            fields = {"name": ast.Constant(e.name), "origin": ast.Constant(e.origin), "value": raw,
                      "unit": ast.Constant(e.unit), "display": _load(_name("d_", e.name)),
                      "label": ast.Constant(e.label), "how": _how(e, i)}
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
    made: Callable[..., Any] = namespace["explain_values"]
    return made


def _json(value: Any) -> str:
    """A constant as json.dumps writes it (author text stays a string constant of the generated code)."""
    return json.dumps(value, ensure_ascii=False)


def _as_text(chosen: list[tuple[int, ExplainEntry]], namespace: dict[str, Any],
             finite_kinds: Mapping[str, bool]) -> list[ast.stmt]:
    """Statements making each listed value's JSON object as text, and returning them with the whole object.

    Constants (keys, names, origins, units, labels, a how with no input) are
    written as JSON once, here; per patient only the value, the display and
    the how are written. A fact of a finite domain (yes/no, an enum) has one
    whole object per value, written here too.
    """
    body: list[ast.stmt] = []
    for i, e in chosen:
        how = _how(e, i)
        head = f'{{"name": {_json(e.name)}, "origin": {_json(e.origin)}, "value": '
        middle = f', "unit": {_json(e.unit)}, "display": '
        tail = f', "label": {_json(e.label)}, "how": '
        parts: list[ast.expr] = [
            ast.Constant(head), ast.FormattedValue(_value_text(_load(_name("v_", e.name)), e), -1, None),
            ast.Constant(middle), ast.FormattedValue(_call("_enc", _load(_name("d_", e.name))), -1, None),
            ast.Constant(tail),
            ast.Constant(_json(how.value)) if isinstance(how, ast.Constant) else
            ast.FormattedValue(_call("_enc", how), -1, None),
            ast.Constant("}"),
        ]
        made: ast.expr = ast.JoinedStr(_merged(parts))
        if e.finite is not None and e.display in ("boolean", "finite") and isinstance(how, ast.Constant):
            # Nothing but the value changes: the object of each value of the domain, written now.
            namespace[f"_whole{i}"] = {value: f"{head}{_json(value)}{middle}{_json(shown)}{tail}{_json(how.value)}}}"
                                       for value, shown in e.finite.items()}
            v = _load(_name("v_", e.name))
            hashable = ast.Compare(_call("_type", v), [ast.In()], [_load("_finite_types")])
            kept = _if(hashable, ast.Call(ast.Attribute(_load(f"_whole{i}"), "get", ast.Load()), [v], []),
                       ast.Constant(None))
            made = ast.BoolOp(ast.Or(), [kept, made])
        elif finite_kinds.get(e.name) and all(finite_kinds.get(part[0]) for part in e.how if isinstance(part, tuple)):
            # (the key's types are checked again per patient: a generic value may be a number)
            body.extend(_remembered(e, i, made, namespace))
            continue
        body.append(ast.Assign([ast.Name(_name("j_", e.name), ast.Store())], made))
    # The "values" object as pieces to join: the caller joins them with the rest of the result, in one copy
    # (a result is some 20 KB of text; each copy of it is a measurable share of writing it).
    pieces: list[ast.expr] = []
    for n, (_, e) in enumerate(chosen):
        pieces.append(ast.Constant(("{" if n == 0 else ", ") + f"{_json(e.name)}: "))
        pieces.append(_load(_name("j_", e.name)))
    pieces.append(ast.Constant("}" if chosen else "{}"))
    objects = ast.Dict([ast.Constant(e.name) for _, e in chosen], [_load(_name("j_", e.name)) for _, e in chosen])
    body.append(ast.Return(ast.Tuple([objects, ast.List(pieces, ast.Load())], ast.Load())))
    return body


_REMEMBERED = 512  # objects remembered per value; beyond, they are written each time


def _remembered(e: ExplainEntry, i: int, made: ast.expr, namespace: dict[str, Any]) -> list[ast.stmt]:
    """``j_<name> = made``, remembered by the value, its inputs' values and (a table output's) the row hit.

    Only values of the types of a finite domain (yes/no, unknown, an enum's
    words) make a key: ``1 == True`` must not find the object of ``true``.
    """
    memo = f"_memo{i}"
    namespace[memo] = {}
    keyed: list[ast.expr] = [_load(_name("v_", e.name))]
    keyed += [_load(_name("v_", part[0])) for part in e.how if isinstance(part, tuple)]
    if e.table is not None:
        keyed.append(ast.Subscript(_load("rows"), ast.Constant(e.table), ast.Load()))
    target = _name("j_", e.name)
    plain = ast.BoolOp(ast.And(), [ast.Compare(_call("_type", k), [ast.In()], [_load("_finite_types")])
                                   for k in keyed]) if len(keyed) > 1 else \
        ast.Compare(_call("_type", keyed[0]), [ast.In()], [_load("_finite_types")])
    key = ast.Tuple(keyed, ast.Load())
    store = ast.Name(target, ast.Store())
    found = ast.Assign([store], ast.Call(ast.Attribute(_load(memo), "get", ast.Load()), [key], []))
    fill = ast.If(_is(_load(target), None), [
        ast.Assign([ast.Name(target, ast.Store())], made),
        ast.If(ast.Compare(_call("_len", _load(memo)), [ast.Lt()], [ast.Constant(_REMEMBERED)]),
               [ast.Assign([ast.Subscript(_load(memo), key, ast.Store())], _load(target))], [])], [])
    return [ast.If(plain, [found, fill], [ast.Assign([ast.Name(target, ast.Store())], made)])]


def _value_text(v: ast.expr, e: ExplainEntry) -> ast.expr:
    """A value as JSON text: the kinds the entry expects inline, anything else by ``_jv``."""
    slow = _call("_jv", v)
    if e.display == "boolean":
        return _if(_is(v, True), ast.Constant("true"), _if(_is(v, False), ast.Constant("false"),
                                                            _if(_is(v, None), ast.Constant("null"), slow)))
    if e.display in ("number", "quantity"):
        finite = ast.Compare(ast.BinOp(v, ast.Sub(), v), [ast.Eq()], [ast.Constant(0)])  # json writes NaN its own way
        return _if(_typed(v, "_float"), _if(finite, _call("_float_text", v), slow),
                   _if(_typed(v, "_int"), _call("_int_text", v), _if(_is(v, None), ast.Constant("null"), slow)))
    if e.display == "date":
        iso = ast.JoinedStr([ast.Constant('"'), ast.FormattedValue(_call("_iso", v), -1, None), ast.Constant('"')])
        return _if(_typed(v, "_day"), iso, _if(_is(v, None), ast.Constant("null"), slow))
    return _if(_typed(v, "_str"), _call("_enc", v), _if(_is(v, None), ast.Constant("null"), slow))


def _merged(parts: list[ast.expr]) -> list[ast.expr]:
    """Adjacent string constants of an f-string joined (the compiler expects them so)."""
    out: list[ast.expr] = []
    for part in parts:
        last = out[-1] if out else None
        if isinstance(part, ast.Constant) and isinstance(last, ast.Constant):
            out[-1] = ast.Constant(str(last.value) + str(part.value))
        else:
            out.append(part)
    return out
