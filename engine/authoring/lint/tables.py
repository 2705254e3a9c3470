"""Decision-table checks: gaps, overlaps, unreachable rows."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from engine.authoring.lint.registry import Context, check
from engine.errors import Diagnostic
from engine.language.intervals import Interval, intersect, subtract, uncovered
from engine.model import Cell, TableSpec

_EVERYTHING = Interval(float("-inf"), float("inf"), False, False)
_MAX_COMBINATIONS = 2000


def _categorical_domain(ctx: Context, table: TableSpec, index: int) -> tuple[Any, ...] | None:
    """Finite values an input can take (enum values, booleans), or None if numeric/unknown."""
    name = table.inputs[index].expr.text.strip()
    fact = ctx.guideline.facts.get(name)
    if fact is not None and fact.type in ("enum",):
        return fact.values
    if fact is not None and fact.type == "boolean":
        return (True, False)
    cells = [row.cells[index] for row in table.rows]
    if all(c.kind in ("values", "any") for c in cells) and table.inputs[index].expr.type == "boolean":
        return (True, False)
    return None


def _numeric_index(table: TableSpec) -> int | None:
    indexes = [i for i in range(len(table.inputs))
               if any(row.cells[i].kind == "interval" for row in table.rows)]
    return indexes[0] if len(indexes) == 1 else None


def _unit(ctx: Context, table: TableSpec, index: int) -> str:
    name = table.inputs[index].expr.text.strip()
    fact = ctx.guideline.facts.get(name)
    if fact is not None and fact.units is not None:
        return " " + fact.units.canonical
    derived = ctx.guideline.derived.get(name)
    if derived is not None and derived.unit:
        return " " + derived.unit
    return ""


def _slices(ctx: Context, table: TableSpec) -> Iterator[tuple[str, list[Any], Interval, int | None]]:
    """(description, rows, numeric domain, numeric index) for each combination of categorical inputs."""
    numeric = _numeric_index(table)
    categorical = [i for i in range(len(table.inputs)) if i != numeric]
    domains = [_categorical_domain(ctx, table, i) for i in categorical]
    if any(d is None for d in domains):
        return
    combos = list(itertools.islice(itertools.product(*domains), _MAX_COMBINATIONS + 1))  # type: ignore[arg-type]
    if len(combos) > _MAX_COMBINATIONS:
        return
    domain = _EVERYTHING
    if numeric is not None:
        domain = table.inputs[numeric].domain or _EVERYTHING
    for combo in combos:
        rows = [row for row in table.rows
                if all(row.cells[i].matches(v) for i, v in zip(categorical, combo, strict=True))]
        where = ", ".join(f"{table.inputs[i].expr.text.strip()} = {v}" for i, v in zip(categorical, combo, strict=True))
        yield where, rows, domain, numeric


def _span(cell: Cell) -> Interval:
    return cell.interval if cell.kind == "interval" else _EVERYTHING  # type: ignore[return-value]


@check("table-gap", "error")
def table_gap(ctx: Context) -> Iterator[Diagnostic]:
    """A value of an input's domain that no row covers (and ``otherwise`` would decide silently).

    Failing: rows ``< 30``, ``[30, 40)``, ``[50, 60]`` over the domain ``[0, +inf)``
    leave ``[40, 50)`` and ``(60, +inf)`` uncovered.
    Passing: rows that tile the domain, e.g. ``[0, 30)``, ``[30, 40)``, ``[40, +inf)``.
    """
    for table in ctx.guideline.tables.values():
        for where, rows, domain, numeric in _slices(ctx, table):
            if numeric is None:
                if not rows:
                    yield ctx.finding(("tables", table.name, "rows"), "table-gap",
                                      f"table '{table.name}': no row covers {where}",
                                      "add a row for it, or state in a note why otherwise applies", key=True)
                continue
            unit = _unit(ctx, table, numeric)
            for gap in uncovered(domain, [_span(row.cells[numeric]) for row in rows]):
                context = f" when {where}" if where else ""
                yield ctx.finding(("tables", table.name, "rows"), "table-gap",
                                  f"table '{table.name}': no row covers {gap}{unit}{context}",
                                  f"add a row for {gap}{unit}, or narrow the input's domain", key=True)


@check("table-overlap", "error")
def table_overlap(ctx: Context) -> Iterator[Diagnostic]:
    """Two rows of a ``unique`` table that both match some value.

    Failing: ``[40, 50]`` and ``[50, 60]`` both contain 50 (write ``[40, 50)``).
    Passing: ``[40, 50)`` and ``[50, 60]``. ``first`` and ``collect`` tables may overlap.
    """
    for table in ctx.guideline.tables.values():
        if table.hit != "unique":
            continue
        seen: set[tuple[int, int]] = set()
        for where, rows, _, numeric in _slices(ctx, table):
            for a, b in itertools.combinations(rows, 2):
                if (a.index, b.index) in seen:
                    continue
                shared = _EVERYTHING if numeric is None else intersect(_span(a.cells[numeric]), _span(b.cells[numeric]))
                if shared is None:
                    continue
                seen.add((a.index, b.index))
                unit = _unit(ctx, table, numeric) if numeric is not None else ""
                what = f"{shared}{unit}" if numeric is not None else where
                yield ctx.finding(("tables", table.name, "rows", b.index), "table-overlap",
                                  f"table '{table.name}': rows {a.id} and {b.id} both match {what}",
                                  "make the intervals disjoint (e.g. [a, b) then [b, c]) or use hit: first")


@check("table-unreachable-row", "warning")
def table_unreachable_row(ctx: Context) -> Iterator[Diagnostic]:
    """A row that can never be hit: outside the input's domain, or hidden by earlier rows of a ``first`` table.

    Failing: a row ``> 300`` when the domain is ``[0, 250]``.
    Passing: every row meets the domain and adds something to the rows before it.
    """
    for table in ctx.guideline.tables.values():
        numeric = _numeric_index(table)
        outside: set[int] = set()
        for row in table.rows:
            if numeric is None:
                continue
            domain = table.inputs[numeric].domain
            if domain is not None and intersect(domain, _span(row.cells[numeric])) is None:
                outside.add(row.index)
                yield ctx.finding(("tables", table.name, "rows", row.index), "table-unreachable-row",
                                  f"table '{table.name}': row {row.id} ({row.cells[numeric].text}) lies outside the "
                                  f"domain {domain}", "remove the row or widen the domain")
        if table.hit != "first" or numeric is None or len(table.inputs) != 1:
            continue
        for i, row in enumerate(table.rows):
            if row.index in outside:
                continue
            left = [_span(row.cells[numeric])]
            for earlier in table.rows[:i]:
                left = [piece for part in left for piece in subtract(part, _span(earlier.cells[numeric]))]
            if not left:
                yield ctx.finding(("tables", table.name, "rows", row.index), "table-unreachable-row",
                                  f"table '{table.name}': row {row.id} is hidden by earlier rows (hit: first)",
                                  "remove it or move it before the rows that hide it")
