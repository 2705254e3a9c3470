"""Decision-table checks: gaps, overlaps, duplicate and unreachable rows, for any number of inputs.

Each input is an *axis*: the values it can take (an enum's values, yes/no, the
values another table gives) or, for a number, the pieces its domain is cut
into by every bound a row writes. Every combination of one value or piece per
axis is a point of the table's grid, and each piece lies wholly inside or
wholly outside each row's interval, so looking at one point per piece finds
every region no row covers (a gap), that two rows of a ``unique`` table both
cover (an overlap), and every row no point reaches. An input that only takes
whole numbers (an integer fact, a count, years between two dates) is cut on
whole numbers: rows ``[18, 64]`` and ``[65, 74]`` leave no gap.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from engine.authoring.lint.registry import Context, check
from engine.authoring.wholes import producer_of, whole_valued
from engine.errors import Diagnostic
from engine.language.intervals import Interval, intersect
from engine.language.units import IdentityCache
from engine.model import Cell, CompiledGuideline, TableRow, TableSpec

_EVERYTHING = Interval(-math.inf, math.inf, False, False)
_MAX_POINTS = 20_000  # grid points checked per table; a larger table is reported as not checked
_MAX_REPORTED = 12  # gaps reported per table, then how many more


@dataclass
class _Axis:
    """One input of a table: a finite set of values, or a numeric domain cut into pieces."""

    index: int
    name: str
    unit: str
    values: tuple[Any, ...] = ()  # the values it can take (a categorical axis)
    pieces: list[Interval] = field(default_factory=list)  # the numeric axis's pieces, in order
    domain: Interval | None = None

    @property
    def numeric(self) -> bool:
        return self.domain is not None

    def points(self) -> list[Any]:
        return list(self.pieces) if self.numeric else list(self.values)

    def describe(self, point: Any) -> str:
        if self.numeric:
            return f"{self.name} in {point}{self.unit}"
        return f"{self.name} = {_shown(point)}"


def _shown(value: Any) -> str:
    return {True: "true", False: "false"}.get(value, str(value)) if isinstance(value, bool) else str(value)


def _unit(g: CompiledGuideline, name: str) -> str:
    fact = g.facts.get(name)
    if fact is not None and fact.units is not None:
        return " " + fact.units.canonical
    derived = g.derived.get(name)
    if derived is not None and derived.unit:
        return " " + derived.unit
    return ""


def _finite_values(g: CompiledGuideline, name: str, kind: str) -> tuple[Any, ...] | None:
    """The values a name can take when there are few: an enum, a yes/no, another table's output."""
    fact = g.facts.get(name)
    if fact is not None and fact.type == "enum":
        return fact.values
    if kind == "boolean":
        return (True, False)
    producer = producer_of(g, name)
    if producer is not None and producer.hit != "collect":
        given = [r.outputs.get(name) for r in producer.rows] + [producer.otherwise.get(name)]
        known = tuple(dict.fromkeys(v for v in given if v is not None))
        if known and all(isinstance(v, (str, bool)) for v in known):
            return known
    return None


def _whole_range(interval: Interval) -> tuple[float, float]:
    """The first and last whole numbers in ``interval`` (infinite ends stay infinite)."""
    low, high = interval.low, interval.high
    first = low if math.isinf(low) else (math.ceil(low) if interval.low_closed else math.floor(low) + 1)
    last = high if math.isinf(high) else (math.floor(high) if interval.high_closed else math.ceil(high) - 1)
    return first, last


def _cut(domain: Interval, spans: list[Interval], whole: bool) -> list[Interval]:
    """``domain`` cut at every bound of ``spans``, in order; each piece is in or out of each span."""
    if whole:
        first, last = _whole_range(domain)
        starts = {first}
        for span in spans:
            low, high = _whole_range(span)
            starts.update(s for s in (low, high + 1) if first < s <= last)
        ordered = sorted(starts)
        ends = [s - 1 for s in ordered[1:]] + [last]
        return [Interval(a, b, not math.isinf(a), not math.isinf(b)) for a, b in zip(ordered, ends, strict=True)
                if a <= b]
    cuts = sorted({x for span in spans for x in (span.low, span.high) if domain.low < x < domain.high})
    pieces: list[Interval] = []
    previous, closed = domain.low, domain.low_closed
    for x in cuts:
        pieces.append(Interval(previous, x, closed, False))
        pieces.append(Interval(x, x, True, True))
        previous, closed = x, False
    pieces.append(Interval(previous, domain.high, closed, domain.high_closed))
    return [p for p in pieces if not p.is_empty()]


def _sample(piece: Interval) -> float:
    """One number inside ``piece`` (each piece is wholly in or out of every row's interval)."""
    if piece.low_closed and not math.isinf(piece.low):
        return piece.low
    if piece.high_closed and not math.isinf(piece.high):
        return piece.high
    if math.isinf(piece.low) and math.isinf(piece.high):
        return 0.0
    if math.isinf(piece.low):
        return piece.high - 1
    if math.isinf(piece.high):
        return piece.low + 1
    return (piece.low + piece.high) / 2


def _axes(ctx: Context, table: TableSpec) -> list[_Axis]:
    g = ctx.guideline
    axes: list[_Axis] = []
    for i, inp in enumerate(table.inputs):
        name = inp.expr.text.strip()
        cells = [row.cells[i] for row in table.rows]
        axis = _Axis(i, name, _unit(g, name))
        if any(c.kind == "interval" for c in cells) or inp.expr.type in ("number", "score"):
            axis.domain = inp.domain or _EVERYTHING
            spans = [c.interval for c in cells if c.kind == "interval" and c.interval is not None]
            axis.pieces = _cut(axis.domain, spans, whole_valued(g, inp.expr.tree))
        else:
            values = _finite_values(g, name, inp.expr.type)
            if values is None:  # an enum computed by an expression: the values the rows name
                values = tuple(dict.fromkeys(v for c in cells if c.kind == "values" for v in c.values)) or ("*",)
            axis.values = values
        axes.append(axis)
    return axes


def _matches(cell: Cell, axis: _Axis, point: Any) -> bool:
    if cell.kind == "any":
        return True
    if axis.numeric:
        return cell.kind == "interval" and _sample(point) in cell.interval  # type: ignore[operator]
    return cell.kind == "values" and point in cell.values


@dataclass
class _Grid:
    """Which rows each point of a table's grid matches."""

    axes: list[_Axis]
    hits: dict[tuple[Any, ...], list[TableRow]]


def _grid(ctx: Context, table: TableSpec) -> _Grid | int:
    """The table's grid, or the number of its combinations when there are too many to check."""
    axes = _axes(ctx, table)
    count = math.prod(len(a.points()) for a in axes)
    if count > _MAX_POINTS:
        return count
    hits: dict[tuple[Any, ...], list[TableRow]] = {}
    for point in itertools.product(*(a.points() for a in axes)):
        hits[point] = [row for row in table.rows
                       if all(_matches(row.cells[a.index], a, p) for a, p in zip(axes, point, strict=True))]
    return _Grid(axes, hits)


_GRIDS = IdentityCache()  # per compiled guideline and table: four checks read the same grid


def _all_grids(ctx: Context) -> Iterator[tuple[TableSpec, _Grid | int]]:
    """Each table with its grid, or its count of combinations when too large (computed once per guideline)."""
    for table in ctx.guideline.tables.values():
        yield table, _GRIDS.get_or_make(ctx.guideline, table.name, _grid, ctx, table)


def _grids(ctx: Context) -> Iterator[tuple[TableSpec, _Grid]]:
    """Each table small enough to check, with its grid."""
    for table, grid in _all_grids(ctx):
        if isinstance(grid, _Grid):
            yield table, grid


def _merged(axes: list[_Axis], points: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Gap points with consecutive pieces of the last numeric axis merged into one interval."""
    last = next((a for a in reversed(axes) if a.numeric), None)
    if last is None:
        return points
    position = axes.index(last)
    order = {id(p): k for k, p in enumerate(last.pieces)}
    out: list[tuple[Any, ...]] = []
    for point in points:
        if out:
            previous = out[-1]
            same = all(a == b for k, (a, b) in enumerate(zip(previous, point, strict=True)) if k != position)
            prior, piece = previous[position], point[position]
            touching = prior.high == piece.low and (prior.high_closed != piece.low_closed)
            consecutive = order.get(id(piece), -1) == order.get(id(prior), -2) + 1
            if same and (touching or (consecutive and prior.high + 1 == piece.low)):
                merged = Interval(prior.low, piece.high, prior.low_closed, piece.high_closed)
                out[-1] = (*previous[:position], merged, *previous[position + 1:])
                order[id(merged)] = order[id(piece)]
                continue
        out.append(point)
    return out


def _where(axes: list[_Axis], point: tuple[Any, ...]) -> str:
    """A region in words: ``[40, 50) mL/min when bone_pattern = multiple`` for one numeric input."""
    numeric = [a for a in axes if a.numeric]
    if len(numeric) == 1:
        a = numeric[0]
        others = ", ".join(b.describe(p) for b, p in zip(axes, point, strict=True) if not b.numeric)
        return f"{point[a.index]}{a.unit}" + (f" when {others}" if others else "")
    return ", ".join(a.describe(p) for a, p in zip(axes, point, strict=True))


@check("table-gap", "error")
def table_gap(ctx: Context) -> Iterator[Diagnostic]:
    """A region of the inputs' domains that no row covers (``otherwise`` would decide it silently).

    Failing: rows ``< 30``, ``[30, 40)``, ``[50, 60]`` over the domain ``[0, +inf)``
    leave ``[40, 50)`` and ``(60, +inf)`` uncovered; a heat map (two inputs) with one
    cell deleted leaves that combination uncovered.
    Passing: rows that tile every combination of the inputs; on an integer age, rows
    ``[18, 64]`` and ``[65, 74]`` leave nothing between them.
    """
    for table, grid in _grids(ctx):
        gaps = _merged(grid.axes, [point for point, rows in grid.hits.items() if not rows])
        for point in gaps[:_MAX_REPORTED]:
            where = _where(grid.axes, point)
            yield ctx.finding(("tables", table.name, "rows"), "table-gap",
                              f"table '{table.name}': no row covers {where}",
                              f"add a row for {where}, or narrow the input's domain", key=True)
        if len(gaps) > _MAX_REPORTED:
            yield ctx.finding(("tables", table.name, "rows"), "table-gap",
                              f"table '{table.name}': and {len(gaps) - _MAX_REPORTED} more regions no row covers",
                              "guideline show renders the table to review it whole", key=True)


@check("table-overlap", "error")
def table_overlap(ctx: Context) -> Iterator[Diagnostic]:
    """Two rows of a ``unique`` table that both match some combination of the inputs.

    Failing: ``[40, 50]`` and ``[50, 60]`` both contain 50 (write ``[40, 50)``).
    Passing: ``[40, 50)`` and ``[50, 60]``. ``first`` and ``collect`` tables may overlap.
    """
    for table, grid in _grids(ctx):
        if table.hit != "unique":
            continue
        seen: set[tuple[int, int]] = set()
        for rows in grid.hits.values():
            for a, b in itertools.combinations(rows, 2):
                if (a.index, b.index) in seen or _same_cells(a, b):
                    continue  # a duplicate row is its own finding
                seen.add((a.index, b.index))
                yield ctx.finding(("tables", table.name, "rows", b.index), "table-overlap",
                                  f"table '{table.name}': rows {a.id} and {b.id} both match {_shared(grid.axes, a, b)}",
                                  "make the intervals disjoint (e.g. [a, b) then [b, c]) or use hit: first")


def _shared(axes: list[_Axis], a: TableRow, b: TableRow) -> str:
    """What two rows both match, in words (the intersection of their cells)."""
    parts: list[tuple[_Axis, Any]] = []
    for axis in axes:
        x, y = a.cells[axis.index], b.cells[axis.index]
        if axis.numeric:
            span = intersect(x.interval if x.kind == "interval" else axis.domain,  # type: ignore[arg-type]
                             y.interval if y.kind == "interval" else axis.domain)  # type: ignore[arg-type]
            parts.append((axis, span))
        elif x.kind == "values" or y.kind == "values":
            both = [v for v in axis.values if (x.kind == "any" or v in x.values) and (y.kind == "any" or v in y.values)]
            parts.append((axis, both[0] if len(both) == 1 else "[" + ", ".join(map(_shown, both)) + "]"))
        else:
            parts.append((axis, "any"))
    numeric = [(axis, p) for axis, p in parts if axis.numeric]
    if len(numeric) == 1:
        axis, span = numeric[0]
        others = ", ".join(f"{ax.name} = {_shown(p)}" for ax, p in parts if not ax.numeric and p != "any")
        return f"{span}{axis.unit}" + (f" when {others}" if others else "")
    return ", ".join(ax.describe(p) if ax.numeric else f"{ax.name} = {_shown(p)}" for ax, p in parts if p != "any") \
        or "every combination"


def _same_cells(a: TableRow, b: TableRow) -> bool:
    return all((x.kind, x.interval, tuple(sorted(map(str, x.values)))) == (y.kind, y.interval, tuple(sorted(map(str, y.values))))
               for x, y in zip(a.cells, b.cells, strict=True))


@check("table-duplicate-row", "error")
def table_duplicate_row(ctx: Context) -> Iterator[Diagnostic]:
    """Two rows with the same cells: in a ``unique`` table both match, in a ``first`` table the second never does.

    Failing: two rows ``when: [G3a, A2]`` (a copied row whose cells were not changed).
    Passing: every row's cells differ from the others'.
    """
    for table in ctx.guideline.tables.values():
        for a, b in itertools.combinations(table.rows, 2):
            if _same_cells(a, b):
                cells = ", ".join(c.text or str(c.interval) for c in b.cells)
                yield ctx.finding(("tables", table.name, "rows", b.index), "table-duplicate-row",
                                  f"table '{table.name}': row {b.id} has the same cells as row {a.id} ({cells})",
                                  "change the cells it was copied with, or remove it")


@check("table-unreachable-row", "warning")
def table_unreachable_row(ctx: Context) -> Iterator[Diagnostic]:
    """A row that can never be hit: outside the inputs' domains, or hidden by earlier rows of a ``first`` table.

    Failing: a row ``> 300`` when the domain is ``[0, 250]``.
    Passing: every row meets the domain and adds something to the rows before it.
    """
    for table, grid in _grids(ctx):
        reached = {row.index for rows in grid.hits.values() for row in rows}
        first = {rows[0].index for rows in grid.hits.values() if rows}
        for row in table.rows:
            if row.index not in reached:
                outside = [(a, row.cells[a.index]) for a in grid.axes
                           if a.numeric and row.cells[a.index].kind == "interval" and a.domain is not None
                           and intersect(a.domain, row.cells[a.index].interval) is None]  # type: ignore[arg-type]
                if outside:
                    axis, cell = outside[0]
                    message = f"row {row.id} ({cell.text}) lies outside the domain {axis.domain}"
                else:
                    message = f"row {row.id} matches no combination of the inputs' values"
                yield ctx.finding(("tables", table.name, "rows", row.index), "table-unreachable-row",
                                  f"table '{table.name}': {message}", "remove the row or widen the domain")
            elif table.hit == "first" and row.index not in first and not any(
                    _same_cells(row, other) for other in table.rows[:row.index]):
                yield ctx.finding(("tables", table.name, "rows", row.index), "table-unreachable-row",
                                  f"table '{table.name}': row {row.id} is hidden by earlier rows (hit: first)",
                                  "remove it or move it before the rows that hide it")


@check("table-not-checked", "info")
def table_not_checked(ctx: Context) -> Iterator[Diagnostic]:
    """A table with too many combinations of input values to check for gaps and overlaps.

    Reported so that a silent lint is never mistaken for a checked table.
    Failing: five inputs of 20 values each (3 200 000 combinations, more than 20 000).
    Passing: a table whose inputs' values and pieces multiply to 20 000 or fewer.
    """
    for table, count in _all_grids(ctx):
        if not isinstance(count, _Grid):
            yield ctx.finding(("tables", table.name), "table-not-checked",
                              f"table '{table.name}': {count} combinations of its inputs, more than {_MAX_POINTS}: "
                              "gaps and overlaps are not checked", "split the table, or review it with guideline show",
                              key=True)
