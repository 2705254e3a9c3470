"""Facts: one patient's inputs, validated before anything is evaluated.

Every problem is collected into one :class:`FactsError` with the fact's path
(and ``line:col`` when the facts came from a file): unknown names with a
did-you-mean, wrong types, missing or unknown units, NaN and infinities,
implausible values, dates after the evaluation date. A fact that is absent or
``null`` is *unknown*; no default is ever assumed.
"""

from __future__ import annotations

import datetime as dt
import math
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import Diagnostic, FactsError, did_you_mean
from engine.language.units import parse_quantity_text
from engine.limits import DEFAULT_LIMITS, Limits
from engine.loading import Document, decode_source, parse_yaml, read_source
from engine.model import CompiledGuideline, FactSpec
from engine.texts.formatting import format_number

__all__ = ["Given", "given_as", "quantity_as_written", "read_facts", "validate_facts"]


@dataclass(frozen=True)
class Given:
    """A fact as the caller gave it, and its canonical value."""

    value: Any
    unit: str | None = None  # the unit the caller used, for quantities
    original: Any = None  # the number in the caller's unit


def read_facts(source: str, *, stdin_bytes: bytes | None = None, limits: Limits = DEFAULT_LIMITS) -> Document:
    """Read a YAML or JSON facts document from a path, or ``-`` with ``stdin_bytes``."""
    if source == "-":
        raw = stdin_bytes or b""
        if len(raw) > limits.max_file_bytes:
            raise FactsError([Diagnostic("<stdin>", 0, 0, "file.too-large",
                                         f"input is larger than the limit of {limits.max_file_bytes} bytes")])
        text, problems = decode_source(raw, "<stdin>")
        name = "<stdin>"
    else:
        text, problems = read_source(source, limits)
        name = source
    if text is None:
        raise FactsError(problems)
    doc = parse_yaml(text, name, limits)
    if doc.diagnostics:
        raise FactsError(doc.diagnostics)
    return doc


def validate_facts(
    guideline: CompiledGuideline,
    facts: Any,
    on: dt.date,
    *,
    doc: Document | None = None,
) -> tuple[dict[str, Any], dict[str, Given]]:
    """Canonical value of every declared fact (None when unknown), or raise FactsError."""
    problems: list[Diagnostic] = []
    file = doc.file if doc else "<facts>"
    counts: dict[str, int] = {}

    def listed(code: str) -> bool:
        """Count one more problem of this kind; False once MAX_LISTED of them are listed (the rest are counted)."""
        counts[code] = counts.get(code, 0) + 1
        return counts[code] <= MAX_LISTED

    def problem(path: tuple[Any, ...], code: str, message: str, hint: str = "", key: bool = False) -> None:
        if doc is not None:
            problems.append(doc.diagnostic(path, code, message, hint=hint, key=key))
        else:
            from engine.loading import format_path

            problems.append(Diagnostic(file, 0, 0, code, message, path=format_path(path), hint=hint))

    if not isinstance(facts, dict) and not isinstance(facts, Mapping):
        problem((), "facts.not-a-mapping", "facts must be a mapping of fact names to values",
                "e.g.  age: 70")
        raise FactsError(problems)
    values: dict[str, Any] = dict.fromkeys(guideline.facts)
    given: dict[str, Given] = {}
    for name, raw in facts.items():
        spec = guideline.facts.get(name) if isinstance(name, str) else None
        if spec is None:
            if listed("facts.unknown-name"):
                shown = name if len(str(name)) <= 60 else f"{str(name)[:60]}…"
                problem((name,), "facts.unknown-name", f"unknown fact '{shown}'",
                        did_you_mean(name, guideline.facts, "see the facts declared by the guideline"), key=True)
            continue
        if raw is None:
            continue
        result = _check(spec, raw, on, guideline.languages[0])
        if isinstance(result, str):  # at most one per declared fact: never more than the guideline declares
            problem((name,), "facts.invalid", f"{name}: {result}", _hint(spec))
            continue
        values[name] = result.value
        given[name] = result
    for code, count in counts.items():
        if count > MAX_LISTED:
            last = max((p.line for p in problems), default=0)  # listed after the others
            problems.append(Diagnostic(file, last, 0, code, f"…and {count - MAX_LISTED} more unknown facts",
                                       path="(more unknown facts)"))
    if problems:
        raise FactsError(problems)
    return values, given


def _hint(spec: FactSpec) -> str:
    if spec.type == "quantity" and spec.units:
        return f"give a value with a unit, e.g. {{value: 12, unit: {spec.units.canonical}}}; units: " + \
            ", ".join(spec.units.names)
    if spec.type in ("enum", "list"):
        return "values: " + ", ".join(spec.values)
    if spec.type == "date":
        return "write the date as YYYY-MM-DD"
    return {"integer": "expected a whole number", "number": "expected a number", "boolean": "expected true or false"
            }.get(spec.type, f"expected a {spec.type}")


MAX_LISTED = 20  # unknown fact names listed in full; the rest are counted in one line
MAX_FACT_INT = 10**15  # whole numbers beyond this are refused (no clinical value comes near; floats cannot hold them)


def _number(raw: Any) -> float | int | str:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return f"expected a number, got {_shown(raw)}"
    if isinstance(raw, float) and not math.isfinite(raw):
        return "not a finite number"
    if isinstance(raw, int) and abs(raw) > MAX_FACT_INT:
        return f"a whole number above {MAX_FACT_INT:.0e} in size is not accepted"
    return raw


_REPR = reprlib.Repr()
_REPR.maxlevel = 2
_REPR.maxstring = 30
_REPR.maxother = 30


def _shown(raw: Any) -> str:
    """A short, bounded repr: a hostile value (deeply nested, huge) cannot blow it up."""
    return _REPR.repr(raw)


def _range_problem(spec: FactSpec, canonical: float, shown: str) -> str | None:
    low, high = spec.range
    if (low is not None and canonical < low) or (high is not None and canonical > high):
        unit = f" {spec.units.canonical}" if spec.units else ""
        lo = "-inf" if low is None else format_number(low, "en")
        hi = "+inf" if high is None else format_number(high, "en")
        return f"{shown} is outside the plausible range {lo} to {hi}{unit}"
    return None


def given_as(spec: FactSpec, raw: Any, on: dt.date) -> Given | None:
    """How one valid fact was given (its value and unit as written), or None if it is not valid."""
    checked = _check(spec, raw, on, "en")
    return None if isinstance(checked, str) else checked


def quantity_as_written(spec: FactSpec, raw: Any) -> tuple[str, float] | None:
    """The unit (by its accepted name) and the number of a quantity written ``{value, unit}``, read
    without checking it again: for facts that already passed :func:`validate_facts`. None for any other
    form, or anything unexpected (:func:`given_as` reads those, checking everything)."""
    if type(raw) is not dict or len(raw) != 2 or spec.units is None:
        return None
    unit_text, number = raw.get("unit"), raw.get("value")
    unit = spec.units.find(unit_text) if type(unit_text) is str else None
    if unit is None or not (type(number) is int or type(number) is float):
        return None
    return unit.name, number


def _check(spec: FactSpec, raw: Any, on: dt.date, lang: str) -> Given | str:
    kind = spec.type
    if kind == "boolean":
        if not isinstance(raw, bool):
            return f"expected true or false, got {_shown(raw)}"
        return Given(raw)
    if kind in ("number", "integer"):
        number = _number(raw)
        if isinstance(number, str):
            return number
        if kind == "integer" and not float(number).is_integer():
            return f"expected a whole number, got {number}"
        value = int(number) if kind == "integer" else number
        return _range_problem(spec, value, str(raw)) or Given(value)
    if kind == "quantity":
        return _quantity(spec, raw)
    if kind == "enum":
        if not isinstance(raw, str) or raw not in spec.values:
            suggestion = did_you_mean(raw, spec.values)
            tail = f" ({suggestion})" if suggestion else ""
            return f"{_shown(raw)} is not one of {', '.join(spec.values)}{tail}"
        return Given(raw)
    if kind == "list":
        if not isinstance(raw, list):
            return f"expected a list of values, got {_shown(raw)}"
        bad = [v for v in raw if not isinstance(v, str) or v not in spec.values]
        if bad:
            return f"{', '.join(map(_shown, bad))} not among {', '.join(spec.values)}"
        if len(set(raw)) != len(raw):
            return "a value is listed twice"
        return Given(tuple(raw))
    if kind == "date":
        if isinstance(raw, dt.datetime):
            raw = raw.date()
        if isinstance(raw, dt.date):
            day = raw
        elif isinstance(raw, str):
            try:
                day = dt.date.fromisoformat(raw)
            except ValueError:
                return f"{_shown(raw)} is not a date (YYYY-MM-DD)"
        else:
            return f"expected a date, got {_shown(raw)}"
        if day > on and not spec.allow_future:
            return f"{day.isoformat()} is after the evaluation date {on.isoformat()}"
        return Given(day)
    return f"unsupported type {kind}"  # pragma: no cover - the schema allows no other


def _quantity(spec: FactSpec, raw: Any) -> Given | str:
    assert spec.units is not None
    if isinstance(raw, str):
        parsed = parse_quantity_text(raw)
        if parsed is None:
            return f"{_shown(raw)} is not a value with a unit"
        number, unit_text = parsed
    elif isinstance(raw, Mapping):
        extra = set(raw) - {"value", "unit"}
        if extra or "value" not in raw or "unit" not in raw:
            return "a quantity is written {value: ..., unit: ...}"
        number, unit_text = raw["value"], raw["unit"]
        checked = _number(number)
        if isinstance(checked, str):
            return checked
        if not isinstance(unit_text, str):
            return "the unit must be text"
    elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return f"{raw} has no unit: say which unit (e.g. {raw} {spec.units.canonical})"
    else:
        return f"expected a value with a unit, got {_shown(raw)}"
    if isinstance(number, float) and not math.isfinite(number):
        return "not a finite number"
    unit = spec.units.find(unit_text)
    if unit is None:
        return f"unknown unit '{unit_text}' (accepted: {', '.join(spec.units.names)})"
    canonical = number if unit.is_identity else unit.convert(float(number))
    low, high = spec.range
    if (low is not None and canonical < low) or (high is not None and canonical > high):
        shown = f"{number} {unit.name}"
        if unit.name != spec.units.canonical:
            shown += f" (= {format_number(canonical, 'en', None)} {spec.units.canonical})"
        return _range_problem(spec, canonical, shown)  # type: ignore[return-value]
    return Given(canonical, unit.name, number)
