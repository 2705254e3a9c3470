"""Compile the whole decision plan of a guideline into one Python function.

Evaluating step by step costs one ``eval`` and several dict operations per
derived value, table and rule. Here the already-validated, already-rewritten
expression trees (see :mod:`engine.expressions`) are assembled into a single
function: names become local variables, single-input tables with disjoint
rows become ``if``/``elif`` chains on constant bounds, and the function returns
every value, every table row hit and every rule outcome at once.

Safety is unchanged: the function is built from AST nodes only. Author text
appears nowhere but in the validated expression trees, and identifiers only as
``n_``-prefixed local names and as string constants (dictionary keys).

The step-by-step path in :mod:`engine.evaluate` stays the reference: it is
used to locate any run-time error precisely, and the tests check that both
paths agree on every value.
"""

from __future__ import annotations

import ast
import copy
import datetime as dt
import math
import re
from collections.abc import Callable
from types import CodeType
from typing import Any, cast

from engine.language.expressions import RUNTIME_GLOBALS, KleeneCodegen
from engine.language.intervals import intersect
from engine.language.units import denoise, round_half_up
from engine.model import Cell, CompiledGuideline, DerivedSpec, FactSpec, TableSpec

__all__ = ["WHAT_IF", "PlanFunction", "Slow", "build_plans"]

# The key of the plain entry's argument under which a borderline probe gives
# derived values to use instead of the computed ones (not an identifier: no
# fact can have this name).
WHAT_IF = " what-if"

PlanFunction = Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, Any], tuple[Any, ...]]]


_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*")


def _local(name: str) -> str:
    """The generated local for a guideline name; the name is checked again here, whatever the schema let in."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"{name!r} is not a guideline name")
    return "n_" + name


class _Rename(ast.NodeTransformer):
    """Author names -> ``n_`` locals; helpers and temporaries (``_``-prefixed) stay."""

    def visit_Name(self, node: ast.Name) -> ast.Name:
        if node.id.startswith("_"):
            return node
        return ast.copy_location(ast.Name(_local(node.id), node.ctx), node)


def _expr(tree: ast.Expression) -> ast.expr:
    body = KleeneCodegen().gen(copy.deepcopy(tree.body))
    return cast(ast.expr, _Rename().visit(body))


def _assign(name: str, value: ast.expr) -> ast.stmt:
    return ast.Assign(targets=[ast.Name(name, ast.Store())], value=value)


def _load(name: str) -> ast.Name:
    return ast.Name(name, ast.Load())


def _const(value: Any) -> ast.expr:
    if isinstance(value, tuple):
        return ast.Tuple([ast.Constant(v) for v in value], ast.Load())
    return ast.Constant(value)


def _cell_test(cell: Cell, key: ast.expr) -> ast.expr:
    if cell.kind == "any":
        return ast.Constant(True)
    if cell.kind == "values":
        return ast.Compare(key, [ast.In()], [ast.Tuple([ast.Constant(v) for v in cell.values], ast.Load())])
    interval = cell.interval
    assert interval is not None
    tests: list[ast.expr] = []
    if not math.isinf(interval.low):
        op = ast.LtE() if interval.low_closed else ast.Lt()
        tests.append(ast.Compare(ast.Constant(interval.low), [op], [key]))
    if not math.isinf(interval.high):
        op = ast.LtE() if interval.high_closed else ast.Lt()
        tests.append(ast.Compare(key, [op], [ast.Constant(interval.high)]))
    if not tests:
        return ast.Constant(True)
    return tests[0] if len(tests) == 1 else ast.BoolOp(ast.And(), tests)


def _rows_disjoint(table: TableSpec) -> bool:
    """True when no value can match two rows, so the first match is the only one."""
    if len(table.inputs) != 1:
        return False
    cells = [row.cells[0] for row in table.rows]
    if any(c.kind == "any" for c in cells) and len(cells) > 1:
        return False
    for i, a in enumerate(cells):
        for b in cells[i + 1:]:
            if a.kind == "interval" and b.kind == "interval":
                if intersect(a.interval, b.interval) is not None:  # type: ignore[arg-type]
                    return False
            elif a.kind == "values" and b.kind == "values":
                if set(a.values) & set(b.values):
                    return False
            else:
                return False
    return True


def _chained(table: TableSpec) -> bool:
    """True when the table becomes an if/elif chain; otherwise the generic matcher is called."""
    if any(i.expr.type == "score" for i in table.inputs):
        return False  # a score's range may span rows: the generic matcher decides (engine.evaluate.match_table)
    return table.hit in ("unique", "first") and ((table.hit == "first" and len(table.inputs) == 1)
                                                 or _rows_disjoint(table))


def _table(table: TableSpec, index: int) -> list[ast.stmt]:
    keys = [f"_k{index}_{i}" for i in range(len(table.inputs))]
    row_var = f"_row{index}"
    body: list[ast.stmt] = [_assign(k, _expr(inp.expr.tree)) for k, inp in zip(keys, table.inputs, strict=True)]
    outputs = list(table.outputs)

    def give(values: dict[str, Any], row: Any) -> list[ast.stmt]:
        return [_assign(_local(o), _const(values.get(o))) for o in outputs] + [_assign(row_var, ast.Constant(row))]

    unknown = ast.BoolOp(ast.Or(), [ast.Compare(_load(k), [ast.Is()], [ast.Constant(None)]) for k in keys]) \
        if len(keys) > 1 else ast.Compare(_load(keys[0]), [ast.Is()], [ast.Constant(None)])
    if _chained(table):
        chain: list[ast.stmt] = give(dict(table.otherwise), "otherwise")
        for row in reversed(table.rows):
            test = _cell_test(row.cells[0], _load(keys[0]))
            chain = [ast.If(test=test, body=give(dict(row.outputs), row.id), orelse=chain)]
        body.append(ast.If(test=unknown, body=give({}, None), orelse=chain))
        return body
    # Several inputs, collect, or rows that may overlap: the generic matcher,
    # which also enforces the unique hit policy.
    call = ast.Call(_load(f"_lookup{index}"), [_load(k) for k in keys], [])
    body.append(ast.Assign(targets=[ast.Tuple([ast.Name("_outs", ast.Store()), ast.Name(row_var, ast.Store())],
                                               ast.Store())], value=call))
    for i, out in enumerate(outputs):
        body.append(_assign(_local(out), ast.Subscript(_load("_outs"), ast.Constant(i), ast.Load())))
    return body


class Slow(Exception):
    """Raised by the validating plan when a fact is not in its common well-formed shape."""


def _listed(raw: Any, allowed: frozenset[str]) -> Any:
    if type(raw) is list and all(type(v) is str and v in allowed for v in raw) and len(set(raw)) == len(raw):
        return tuple(raw)
    raise Slow


def _helpers(g: CompiledGuideline, lookup: Callable[[TableSpec, tuple[Any, ...]], Any]) -> dict[str, Any]:
    """The objects the generated code reads by name, besides the expression runtime.

    Made from the guideline alone, so that a code object generated earlier (and
    cached, see engine.bytecode) can run without generating it again.
    """
    helpers: dict[str, Any] = {
        "_denoise": denoise, "_round_half_up": round_half_up, "_NotFinite": _NotFinite,
        "_fact_names": frozenset(g.facts), "_Slow": Slow, "_type": type, "_int": int, "_float": float, "_str": str,
        "_listed": _listed, "_dict": dict, "_len": len, "_fromisoformat": dt.date.fromisoformat,
        "ValueError": ValueError}
    for i, spec in enumerate(g.facts.values()):
        if spec.type == "list":
            helpers[f"_allowed{i}"] = frozenset(spec.values)
    tables = [step for step in g.plan if isinstance(step, TableSpec)]
    for index, table in enumerate(tables):
        if not _chained(table):  # see _table
            helpers[f"_lookup{index}"] = lambda *k, _t=table: lookup(_t, k)
    return helpers


def _fact_checks(g: CompiledGuideline) -> list[ast.stmt]:
    """Statements reading and checking each fact from ``f`` (anything unusual raises Slow)."""
    body: list[ast.stmt] = [ast.If(
        test=ast.UnaryOp(ast.Not(), ast.Compare(ast.Call(ast.Attribute(_load("f"), "keys", ast.Load()), [], []),
                                                [ast.LtE()], [_load("_fact_names")])),
        body=[ast.Raise(exc=ast.Call(_load("_Slow"), [], []), cause=None)], orelse=[])]
    raw = _load("_r")
    slow: list[ast.stmt] = [ast.Raise(exc=ast.Call(_load("_Slow"), [], []), cause=None)]

    def typed(*kinds: str) -> ast.expr:
        tests: list[ast.expr] = [ast.Compare(ast.Call(_load("_type"), [raw], []), [ast.Is()], [_load(k)]) for k in kinds]
        return tests[0] if len(tests) == 1 else ast.BoolOp(ast.Or(), tests)

    def within(spec: FactSpec) -> list[ast.expr]:
        low, high = spec.range
        tests: list[ast.expr] = []
        if low is not None:
            tests.append(ast.Compare(ast.Constant(low), [ast.LtE()], [raw]))
        if high is not None:
            tests.append(ast.Compare(raw, [ast.LtE()], [ast.Constant(high)]))
        return tests

    for i, (name, spec) in enumerate(g.facts.items()):
        local = _local(name)
        body.append(_assign("_r", ast.Call(ast.Attribute(_load("f"), "get", ast.Load()), [ast.Constant(name)], [])))
        if spec.type == "boolean":
            check: ast.expr | None = ast.BoolOp(ast.Or(), [ast.Compare(raw, [ast.Is()], [ast.Constant(True)]),
                                                           ast.Compare(raw, [ast.Is()], [ast.Constant(False)])])
        elif spec.type == "enum":
            check = ast.BoolOp(ast.And(), [typed("_str"), ast.Compare(raw, [ast.In()], [_const(tuple(spec.values))])])
        elif spec.type == "integer":
            check = ast.BoolOp(ast.And(), [typed("_int"), *within(spec)])
        elif spec.type == "number" and None not in spec.range:
            check = ast.BoolOp(ast.And(), [typed("_int", "_float"), *within(spec)])
        else:
            check = None
        if check is not None:
            body.append(ast.If(test=ast.Compare(raw, [ast.Is()], [ast.Constant(None)]),
                               body=[_assign(local, ast.Constant(None))],
                               orelse=[ast.If(test=check, body=[_assign(local, raw)], orelse=slow)]))
            continue
        if spec.type == "quantity" and spec.units is not None:
            body.extend(_inline_quantity(spec, local))
            continue
        if spec.type == "date":
            body.extend(_template(_DATE if not spec.allow_future else _DATE_ANY, local=local))
            continue
        if spec.type == "list":
            allowed = f"_allowed{i}"
            call = ast.Call(_load("_listed"), [raw, _load(allowed)], [])
        else:
            body.append(ast.If(test=ast.Compare(raw, [ast.IsNot()], [ast.Constant(None)]), body=slow, orelse=[]))
            body.append(_assign(local, ast.Constant(None)))
            continue
        body.append(ast.If(test=ast.Compare(raw, [ast.Is()], [ast.Constant(None)]),
                           body=[_assign(local, ast.Constant(None))], orelse=[_assign(local, call)]))
    return body


# The checks of a quantity and of a date, inline (a call per fact costs as much as
# the check). Written here, by us: the guideline's data enters only as
# constants (CANONICAL, LOW, HIGH, a unit's name and factors), and LOCAL as the
# fact's n_-prefixed local name (see _template).
_QUANTITY = """
if _r is None:
    LOCAL = None
elif _type(_r) is _dict and _len(_r) == 2:
    _v = _r.get("value")
    _u = _r.get("unit")
    if (_type(_v) is not _int and _type(_v) is not _float) or _v - _v != 0:  # not a number, or inf or nan
        raise _Slow()
    if _u != CANONICAL:
        if _g is not None:  # how it was given, for explanations ("42 nmol/L (= 16.8 ng/mL)")
            _g[NAME] = {"value": _v, "unit": _u}
        CONVERT
    if LOW <= _v <= HIGH:
        LOCAL = _v
    else:
        raise _Slow()
else:
    raise _Slow()
"""
_DATE = """
if _r is None:
    LOCAL = None
elif _type(_r) is _str and _len(_r) == 10:
    try:
        LOCAL = _fromisoformat(_r)
    except ValueError:
        raise _Slow() from None
    if LOCAL.toordinal() > t:  # a date in the future
        raise _Slow()
else:
    raise _Slow()
"""
_DATE_ANY = _DATE.replace("    if LOCAL.toordinal() > t:  # a date in the future\n        raise _Slow()\n", "")


# A computed number settled as the reference's settle() does; a value that is not
# finite (or an integer beyond float range) makes the plan fail, and the reference
# path then names the expression (engine.evaluate._settled).
_SETTLE = """
if _type(LOCAL) is _float:
    if LOCAL - LOCAL != 0:
        raise _NotFinite()
    LOCAL = _denoise(LOCAL)
elif _type(LOCAL) is _int and not -1e308 < LOCAL < 1e308:
    raise _NotFinite()
"""
_ROUND = """
if LOCAL is not None:
    LOCAL = _round_half_up(LOCAL, DECIMALS)
    if LOCAL - LOCAL != 0:
        raise _NotFinite()
"""


class _NotFinite(OverflowError):
    """A derived number that is not finite (the plan stops; the reference path reports it)."""


class _Fill(ast.NodeTransformer):
    """A template's placeholders replaced: names by local names, constants by values, CONVERT by statements."""

    def __init__(self, names: dict[str, str], constants: dict[str, Any], statements: list[ast.stmt]) -> None:
        self.names, self.constants, self.statements = names, constants, statements

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if node.id in self.names:
            return ast.copy_location(ast.Name(self.names[node.id], node.ctx), node)
        if node.id in self.constants:
            return ast.copy_location(ast.Constant(self.constants[node.id]), node)
        return node

    def visit_Expr(self, node: ast.Expr) -> Any:
        if isinstance(node.value, ast.Name) and node.value.id == "CONVERT":
            return self.statements
        return self.generic_visit(node)


def _template(source: str, *, local: str, statements: list[ast.stmt] | None = None, **constants: Any) -> list[ast.stmt]:
    """``source`` (one of ours, above) with LOCAL named ``local`` and the other placeholders filled."""
    module = ast.parse(source)
    filled = _Fill({"LOCAL": local}, constants, statements or []).visit(module)
    return list(filled.body)


def _inline_quantity(spec: FactSpec, local: str) -> list[ast.stmt]:
    """A quantity checked and converted to its canonical unit inline, as Unit.convert does (value * m / d)."""
    assert spec.units is not None
    chain: list[ast.stmt] = [ast.Raise(exc=ast.Call(_load("_Slow"), [], []), cause=None)]  # a unit not accepted
    for unit in reversed(spec.units.units):
        if unit.name == spec.units.canonical:
            continue
        value: ast.expr = _load("_v")
        if not unit.is_identity:
            value = ast.BinOp(ast.BinOp(value, ast.Mult(), ast.Constant(unit.multiply_by)), ast.Div(),
                              ast.Constant(unit.divide_by))
        chain = [ast.If(test=ast.Compare(_load("_u"), [ast.Eq()], [ast.Constant(unit.name)]),
                        body=[_assign("_v", value)], orelse=chain)]
    low = -math.inf if spec.range[0] is None else spec.range[0]
    high = math.inf if spec.range[1] is None else spec.range[1]
    return _template(_QUANTITY, local=local, statements=chain, CANONICAL=spec.units.canonical, LOW=low, HIGH=high,
                     NAME=spec.name)


def build_plans(g: CompiledGuideline, lookup: Callable[[TableSpec, tuple[Any, ...]], tuple[tuple[Any, ...], Any]],
                code: CodeType | None = None) -> tuple[PlanFunction, Any, CodeType]:
    """The guideline's derived values, tables and rule conditions as one function, in two entries.

    ``lookup(table, keys)`` is the generic table matcher, used for tables whose
    rows may overlap. The first function takes the canonical fact values (and
    ``today``) as a dict ``v`` and returns (values, table rows, rule outcomes).
    The second takes the caller's raw facts, the evaluation date's ordinal and
    the date, ``(f, t, today[, given])``, checks each fact on its common
    well-formed path (and puts in ``given`` each quantity given in another unit
    than its canonical one, as given), and raises :class:`Slow` for anything
    else so the caller can run the full facts validation (which explains). The decision statements are
    generated once and shared by both.

    Returns both functions and their module's code object; give that ``code``
    back (for the same guideline) to skip generating it again.
    """
    if code is None:
        code = _plan_code(g)
    namespace: dict[str, Any] = {**RUNTIME_GLOBALS, **_helpers(g, lookup), "__builtins__": {}}
    exec(code, namespace)  # noqa: S102 - built from validated AST nodes only
    return namespace["decide"], namespace["decide_checked"], code


def _plan_code(g: CompiledGuideline) -> CodeType:
    names = list(g.facts) + ["today"]
    reading = [_assign(_local(name), ast.Subscript(_load("v"), ast.Constant(name), ast.Load())) for name in names]
    checking = _fact_checks(g) + [_assign(_local("today"), _load("today"))]
    body: list[ast.stmt] = []
    probed: list[ast.stmt] = []  # the plain entry's body: what-if values may replace derived values
    tables: list[TableSpec] = []
    for step in g.plan:
        if isinstance(step, DerivedSpec):
            local = _local(step.name)
            computed = [_assign(local, _expr(step.expr.tree))]
            if step.numeric:  # noise removed (and rounded when declared), as the reference's settle() does
                if step.decimals is None:  # denoise() changes floats only: no call for the others
                    computed.extend(_template(_SETTLE, local=local))
                else:
                    computed.extend(_template(_ROUND, local=local, DECIMALS=step.decimals))
            body.extend(computed)
            probed.extend(computed)
            if step.name in g.thresholds:  # a borderline probe may move it across a threshold
                probed.append(ast.If(
                    test=ast.BoolOp(ast.And(), [ast.Compare(_load("_o"), [ast.IsNot()], [ast.Constant(None)]),
                                                ast.Compare(ast.Constant(step.name), [ast.In()], [_load("_o")])]),
                    body=[_assign(local, ast.Subscript(_load("_o"), ast.Constant(step.name), ast.Load()))], orelse=[]))
            names.append(step.name)
            continue
        table = _table(step, len(tables))
        body.extend(table)
        probed.extend(table)
        tables.append(step)
        names.extend(step.outputs)
    outcomes = [_expr(rule.when.tree) for rule in g.rules]
    values = ast.Dict([ast.Constant(n) for n in names], [_load(_local(n)) for n in names])
    rows = ast.Dict([ast.Constant(t.name) for t in tables], [_load(f"_row{i}") for i in range(len(tables))])
    returned = ast.Return(ast.Tuple([values, rows, ast.Tuple(outcomes, ast.Load())], ast.Load()))
    body.append(returned)
    probed.append(returned)
    what_if = _assign("_o", ast.Call(ast.Attribute(_load("v"), "get", ast.Load()), [ast.Constant(WHAT_IF)], []))
    functions: list[ast.stmt] = [_function("decide", ["v"], [*reading, what_if, *probed]),
                                 _function("decide_checked", ["f", "t", "today", "_g"], checking + body,
                                           defaults=[ast.Constant(None)])]
    module = ast.Module(body=functions, type_ignores=[])
    ast.fix_missing_locations(module)
    return compile(module, f"<guideline {g.id} plan>", "exec")


def _function(name: str, params: list[str], body: list[ast.stmt], defaults: list[ast.expr] | None = None
              ) -> ast.FunctionDef:
    function = ast.FunctionDef(
        name=name,
        args=ast.arguments(posonlyargs=[], args=[ast.arg(p) for p in params], vararg=None, kwonlyargs=[],
                           kw_defaults=[], kwarg=None, defaults=defaults or []),
        body=body, decorator_list=[], returns=None,
    )
    if "type_params" in ast.FunctionDef._fields:  # Python 3.12+
        function.type_params = []  # type: ignore[attr-defined]  # mypy reads the 3.11 stubs
    return function
