"""Usage checks: names declared but never read, enum values never tested."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from engine.authoring.lint.registry import Context, check
from engine.errors import Diagnostic


def _read_names(ctx: Context) -> set[str]:
    g = ctx.guideline
    names: set[str] = set()
    for derived in g.derived.values():
        names |= derived.expr.names
    for table in g.tables.values():
        for inp in table.inputs:
            names |= inp.expr.names
    for rule in g.rules:
        names |= rule.when.names
        for rec in rule.then:
            for template in rec.templates.values():
                names |= template.names
            for expr in rec.dose_exprs.values():
                names |= expr.names
    return names


@check("unused-fact", "warning")
def unused_fact(ctx: Context) -> Iterator[Diagnostic]:
    """A fact that no expression, table or template reads: asked of users for nothing.

    Failing: ``facts: {height: ...}`` with no ``height`` anywhere else. Passing: every fact is read.
    """
    used = _read_names(ctx)
    for name in ctx.guideline.facts:
        if name not in used:
            yield ctx.finding(("facts", name), "unused-fact", f"fact '{name}' is never used",
                              "remove it, or use it in a condition", key=True)


@check("unused-derived", "warning")
def unused_derived(ctx: Context) -> Iterator[Diagnostic]:
    """A derived value or table output that nothing reads.

    Failing: ``derived: {bmi: ...}`` never used. Passing: each is read by a rule, table or template.
    """
    used = _read_names(ctx)
    for name in ctx.guideline.derived:
        if name not in used:
            yield ctx.finding(("derived", name), "unused-derived", f"derived value '{name}' is never used",
                              "remove it, or use it", key=True)
    for table in ctx.guideline.tables.values():
        for out in table.outputs:
            if out not in used:
                yield ctx.finding(("tables", table.name, "outputs", out), "unused-derived",
                                  f"table output '{out}' is never used", "remove it, or use it", key=True)


@check("untested-enum-value", "warning")
def untested_enum_value(ctx: Context) -> Iterator[Diagnostic]:
    """An enum or list value that no condition, table cell or template compares with.

    Failing: ``values: [low, high, very_high]`` with no rule about ``very_high``.
    Passing: every value is tested somewhere, or the line says why not
    (``# lint: ignore untested-enum-value -- default branch``).
    """
    g = ctx.guideline
    tested: dict[str, set[str]] = {name: set() for name, f in g.facts.items() if f.type in ("enum", "list")}
    exprs = [d.expr for d in g.derived.values()] + [r.when for r in g.rules]
    exprs += [i.expr for t in g.tables.values() for i in t.inputs]
    for expr in exprs:
        for node in ast.walk(expr.tree):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                names = [o.id for o in operands if isinstance(o, ast.Name) and o.id in tested]
                literals = [c.value for o in operands for c in ([o] + list(getattr(o, "elts", [])))
                            if isinstance(c, ast.Constant) and isinstance(c.value, str)]
                for name in names:
                    tested[name].update(literals)
    for table in g.tables.values():
        for i, inp in enumerate(table.inputs):
            name = inp.expr.text.strip()
            if name in tested:
                for row in table.rows:
                    tested[name].update(str(v) for v in row.cells[i].values)
    for rule in g.rules:
        for rec in rule.then:
            for template in rec.templates.values():
                for name in template.names & set(tested):
                    if name in g.facts and g.facts[name].type == "list":
                        tested[name].update(g.facts[name].values)  # a loop over the list shows every value
    for name, values in tested.items():
        for i, value in enumerate(g.facts[name].values):
            if value not in values:
                yield ctx.finding(("facts", name, "values", i), "untested-enum-value",
                                  f"value '{value}' of {name} is never tested",
                                  "test it in a condition or table, or remove it")
