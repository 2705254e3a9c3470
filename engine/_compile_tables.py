"""Decision tables compiled to matchers (part of the compile stage, ``engine.compile``).

Cells become intervals converted to the input's canonical unit, or value
sets checked against the input's declared values; every problem is reported
with its position.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from engine._compile_context import CompileContext
from engine.errors import did_you_mean
from engine.language.expressions import CompiledExpression, NameInfo
from engine.language.intervals import Interval, parse_interval
from engine.language.units import Unit
from engine.model import Cell, FactSpec, FrozenDict, TableInput, TableRow, TableSpec, freeze

__all__ = ["TableCompiler"]

_IDENTITY = Unit("")


class TableCompiler(CompileContext):
    """Compiles the ``tables`` section."""

    def output_info(self, table: Mapping[str, Any], out: str) -> NameInfo:
        seen = [row.get("then", {}).get(out) for row in table.get("rows") or []]
        seen.append((table.get("otherwise") or {}).get(out))
        known = [v for v in seen if v is not None]
        if table.get("hit") == "collect":
            return NameInfo("list", tuple(sorted({v for v in known if isinstance(v, str)})))
        if known and all(isinstance(v, bool) for v in known):
            return NameInfo("boolean")
        if known and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in known):
            return NameInfo("number", unit=(table.get("outputs") or {}).get(out))
        if known and all(isinstance(v, str) for v in known):
            return NameInfo("enum", tuple(dict.fromkeys(known)))
        return NameInfo("any")

    def table(self, name: str, spec: Mapping[str, Any], facts: Mapping[str, FactSpec]) -> TableSpec | None:
        path = ("tables", name)
        inputs: list[TableInput] = []
        factors: list[Unit] = []
        ok = True
        for i, raw in enumerate(spec["inputs"]):
            ipath = path + ("inputs", i)
            expr = self.expression(ipath + ("expr",), raw["expr"])
            if expr is None:
                ok = False
                continue
            factor, domain = self._input_unit(ipath, raw, expr, facts)
            factors.append(factor)
            inputs.append(TableInput(expr, raw.get("unit"), domain, self.text(ipath + ("label",), raw.get("label"))))
        outputs = dict(spec["outputs"])
        rows: list[TableRow] = []
        for r, raw in enumerate(spec["rows"]):
            rpath = path + ("rows", r)
            cells = raw["when"]
            if ok and len(cells) != len(inputs):
                self.error(rpath + ("when",), "table.cells",
                           f"row has {len(cells)} cell(s) for {len(inputs)} input(s)")
                continue
            compiled_cells = []
            for c, cell in enumerate(cells):
                inp = inputs[c] if ok and c < len(inputs) else None
                factor = factors[c] if inp is not None else _IDENTITY
                compiled_cells.append(self._cell(rpath + ("when", c), cell, inp, factor))
            self._check_outputs(rpath + ("then",), raw["then"], outputs)
            rows.append(TableRow(
                index=r, id=raw.get("id") or f"{name}[{r + 1}]", cells=tuple(compiled_cells),
                outputs=freeze(raw["then"]), label=self.text(rpath + ("label",), raw.get("label")),
                source=freeze(raw.get("source") or {}), where=self.where(rpath),
            ))
        self._check_outputs(path + ("otherwise",), spec["otherwise"], outputs)
        labels = spec.get("value_labels") or {}
        self._check_labels(path, labels, outputs, rows, spec["otherwise"])
        if not ok:
            return None
        return TableSpec(
            name=name, hit=spec.get("hit", "unique"), inputs=tuple(inputs), outputs=FrozenDict(outputs),
            rows=tuple(rows), otherwise=freeze(spec["otherwise"]),
            title=self.text(path + ("title",), spec.get("title")), source=freeze(spec.get("source") or {}),
            where=self.where(path), value_labels=freeze(labels),
        )

    def _check_labels(self, path: tuple[Any, ...], labels: Mapping[str, Any], outputs: Mapping[str, Any],
                      rows: list[TableRow], otherwise: Mapping[str, Any]) -> None:
        """Each labelled value is a value some row (or ``otherwise``) gives to that output."""
        for out, by_value in labels.items():
            if out not in outputs:
                self.error(path + ("value_labels", out), "table.unknown-output",
                           f"'{out}' is not an output of this table", "declared outputs: " + ", ".join(outputs),
                           key=True)
                continue
            given = {v for v in [*(r.outputs.get(out) for r in rows), otherwise.get(out)] if isinstance(v, str)}
            for value in by_value:
                if value not in given:
                    self.error(path + ("value_labels", out, value), "table.unknown-value",
                               f"no row gives '{value}' to {out}",
                               did_you_mean(value, sorted(given), "values given: " + ", ".join(sorted(given))),
                               key=True)

    def _input_unit(self, ipath: tuple[Any, ...], raw: Mapping[str, Any], expr: CompiledExpression,
                    facts: Mapping[str, FactSpec]) -> tuple[Unit, Interval | None]:
        """The unit row bounds are written in (converted to canonical), and the domain."""
        factor = _IDENTITY
        unit = raw.get("unit")
        target = expr.text.strip()
        fact = facts.get(target)
        info = self.scope.get(target)
        if unit is not None:
            if fact is not None and fact.units is not None:
                found = fact.units.find(unit)
                if found is None:
                    self.error(ipath + ("unit",), "unit.unknown",
                               f"'{unit}' is not a unit of {target} (accepted: {', '.join(fact.units.names)})")
                else:
                    factor = found
                    if found.name != fact.units.canonical:
                        self.warn(ipath + ("unit",), "table.non-canonical-unit",
                                  f"bounds are in {unit}; they are converted to {fact.units.canonical}")
            elif info is not None and info.unit is not None and info.unit != unit:
                self.error(ipath + ("unit",), "unit.mismatch", f"'{target}' is in {info.unit}, not {unit}")
        domain = None
        if raw.get("domain"):
            domain = parse_interval(raw["domain"])
            if domain is None:
                self.error(ipath + ("domain",), "table.interval", f"'{raw['domain']}' is not an interval")
            else:
                domain = domain.converted(factor)
        elif fact is not None and fact.range != (None, None):
            low, high = fact.range
            domain = Interval(-math.inf if low is None else low, math.inf if high is None else high,
                              low is not None, high is not None)
        return factor, domain

    def _cell(self, path: tuple[Any, ...], cell: Any, inp: TableInput | None, factor: Unit) -> Cell:
        if isinstance(cell, str) and cell in {"any", "-"}:  # a cell may also be a list of values
            return Cell("any", text=str(cell))
        kind = inp.expr.type if inp else "any"
        info = self.scope.get(inp.expr.text.strip()) if inp else None
        if isinstance(cell, str) and kind in ("number", "score", "any") and (cell.strip()[:1] in "[(<>="):
            interval = parse_interval(cell)
            if interval is None:
                self.error(path, "table.interval", f"'{cell}' is not an interval",
                           "write [a, b], [a, b), (a, b], (a, b), < x, <= x, > x or >= x")
                return Cell("any")
            if interval.is_empty():
                self.error(path, "table.empty-interval", f"interval {cell} contains no value")
            return Cell("interval", interval.converted(factor), text=cell)
        values = tuple(cell) if isinstance(cell, list) else (cell,)
        if kind in ("number", "score"):
            self.error(path, "table.cell-type", f"{cell!r} is not an interval for the numeric input",
                       "write [a, b], [a, b), < x, >= x ...")
        if info is not None and info.values:
            for value in values:
                if value not in info.values:
                    self.error(path, "table.unknown-value", f"'{value}' is not a value of {inp.expr.text.strip()}",  # type: ignore[union-attr]
                               did_you_mean(value, info.values, "values: " + ", ".join(info.values)))
        return Cell("values", values=values, text=str(cell))

    def _check_outputs(self, path: tuple[Any, ...], given: Mapping[str, Any], outputs: Mapping[str, Any]) -> None:
        for key in given:
            if key not in outputs:
                self.error(path + (key,), "table.unknown-output", f"'{key}' is not an output of this table",
                           "declared outputs: " + ", ".join(outputs), key=True)
        for key in outputs:
            if key not in given:
                self.error(path, "table.missing-output", f"no value for output '{key}' (write null if unknown)")
