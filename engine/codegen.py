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
import math
from typing import Any, Callable

from .compile import Cell, CompiledGuideline, DerivedSpec, TableSpec
from .expressions import _RUNTIME_GLOBALS, _Gen
from .intervals import intersect
from .units import round_half_up

__all__ = ["PlanFunction", "build_plan"]

PlanFunction = Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, Any], tuple[Any, ...]]]


def _local(name: str) -> str:
    return "n_" + name


class _Rename(ast.NodeTransformer):
    """Author names -> ``n_`` locals; helpers and temporaries (``_``-prefixed) stay."""

    def visit_Name(self, node: ast.Name) -> ast.Name:
        if node.id.startswith("_"):
            return node
        return ast.copy_location(ast.Name(_local(node.id), node.ctx), node)


def _expr(tree: ast.Expression) -> ast.expr:
    body = _Gen().gen(copy.deepcopy(tree.body))
    return _Rename().visit(body)


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


def _table(table: TableSpec, index: int, helpers: dict[str, Any], lookup: Callable[..., Any]) -> list[ast.stmt]:
    keys = [f"_k{index}_{i}" for i in range(len(table.inputs))]
    row_var = f"_row{index}"
    body: list[ast.stmt] = [_assign(k, _expr(inp.expr.tree)) for k, inp in zip(keys, table.inputs)]
    outputs = list(table.outputs)

    def give(values: dict[str, Any], row: Any) -> list[ast.stmt]:
        return [_assign(_local(o), _const(values.get(o))) for o in outputs] + [_assign(row_var, ast.Constant(row))]

    unknown = ast.BoolOp(ast.Or(), [ast.Compare(_load(k), [ast.Is()], [ast.Constant(None)]) for k in keys]) \
        if len(keys) > 1 else ast.Compare(_load(keys[0]), [ast.Is()], [ast.Constant(None)])
    if table.hit in ("unique", "first") and (table.hit == "first" and len(table.inputs) == 1 or _rows_disjoint(table)):
        chain: list[ast.stmt] = give(dict(table.otherwise), "otherwise")
        for row in reversed(table.rows):
            test = _cell_test(row.cells[0], _load(keys[0]))
            chain = [ast.If(test=test, body=give(dict(row.outputs), row.id), orelse=chain)]
        body.append(ast.If(test=unknown, body=give({}, None), orelse=chain))
        return body
    # Several inputs, collect, or rows that may overlap: the generic matcher,
    # which also enforces the unique hit policy.
    name = f"_lookup{index}"
    helpers[name] = lambda *k, _t=table: lookup(_t, k)
    call = ast.Call(_load(name), [_load(k) for k in keys], [])
    body.append(ast.Assign(targets=[ast.Tuple([ast.Name("_outs", ast.Store()), ast.Name(row_var, ast.Store())],
                                               ast.Store())], value=call))
    for i, out in enumerate(outputs):
        body.append(_assign(_local(out), ast.Subscript(_load("_outs"), ast.Constant(i), ast.Load())))
    return body


def build_plan(g: CompiledGuideline, lookup: Callable[[TableSpec, tuple[Any, ...]], tuple[tuple[Any, ...], Any]]
               ) -> PlanFunction:
    """The guideline's derived values, tables and rule conditions as one function.

    ``lookup(table, keys)`` is the generic table matcher, used for tables whose
    rows may overlap. The returned function takes the canonical fact values
    (and ``today``) and returns (values, table rows, rule outcomes).
    """
    helpers: dict[str, Any] = {"_round": round_half_up}
    body: list[ast.stmt] = []
    names = list(g.facts) + ["today"]
    for name in names:
        body.append(_assign(_local(name), ast.Subscript(_load("v"), ast.Constant(name), ast.Load())))
    tables: list[TableSpec] = []
    for step in g.plan:
        if isinstance(step, DerivedSpec):
            local = _local(step.name)
            body.append(_assign(local, _expr(step.expr.tree)))
            if step.decimals is not None:
                body.append(ast.If(
                    test=ast.Compare(_load(local), [ast.IsNot()], [ast.Constant(None)]),
                    body=[_assign(local, ast.Call(_load("_round"), [_load(local), ast.Constant(step.decimals)], []))],
                    orelse=[]))
            names.append(step.name)
        else:
            body.extend(_table(step, len(tables), helpers, lookup))
            tables.append(step)
            names.extend(step.outputs)
    outcomes = [_expr(rule.when.tree) for rule in g.rules]
    values = ast.Dict([ast.Constant(n) for n in names], [_load(_local(n)) for n in names])
    rows = ast.Dict([ast.Constant(t.name) for t in tables], [_load(f"_row{i}") for i in range(len(tables))])
    body.append(ast.Return(ast.Tuple([values, rows, ast.Tuple(outcomes, ast.Load())], ast.Load())))
    function = ast.FunctionDef(
        name="decide",
        args=ast.arguments(posonlyargs=[], args=[ast.arg("v")], vararg=None, kwonlyargs=[], kw_defaults=[],
                           kwarg=None, defaults=[]),
        body=body, decorator_list=[], returns=None,
    )
    if "type_params" in ast.FunctionDef._fields:  # Python 3.12+
        function.type_params = []
    module = ast.Module(body=[function], type_ignores=[])
    ast.fix_missing_locations(module)
    namespace: dict[str, Any] = {**_RUNTIME_GLOBALS, **helpers, "__builtins__": {}}
    exec(compile(module, f"<guideline {g.id} plan>", "exec"), namespace)  # noqa: S102 - built from validated AST nodes only
    return namespace["decide"]
