"""The one registry of functions callable from guideline expressions.

Every function takes already-evaluated arguments, any of which may be
``None`` (unknown), and returns ``None`` when an argument it needs is unknown
-- except :func:`known`, which is how an author asks "is this fact given?".
The same implementations serve the compiled evaluator and the simpleeval
reference evaluator, so the two cannot drift apart.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["REGISTRY", "Function"]

Date = dt.date


@dataclass(frozen=True)
class Function:
    """A callable with its signature for the compile-time type checker."""

    name: str
    impl: Callable[..., Any]
    args: tuple[str, ...]  # expected type of each argument ("number", "date", "any"...)
    returns: str
    variadic: bool = False  # the last argument type repeats (min, max)
    optional: int = 0  # how many trailing arguments may be left out
    doc: str = ""


def _known(value: Any) -> bool:
    return value is not None


# `None in values` is a C-level scan; the values are numbers or dates, which
# never compare equal to None.
def _min(*values: Any) -> Any:
    return None if None in values else min(values)


def _max(*values: Any) -> Any:
    return None if None in values else max(values)


def _abs(value: Any) -> Any:
    return None if value is None else abs(value)


MAX_ROUND_DIGITS = 15  # round()'s decimals, either way: a huge count would compute 10 ** decimals


def _round(value: Any, decimals: Any = 0) -> Any:
    if value is None or decimals is None:
        return None
    from engine.language.units import round_half_up

    digits = int(decimals)
    if abs(digits) > MAX_ROUND_DIGITS:
        raise ValueError(f"round takes between -{MAX_ROUND_DIGITS} and {MAX_ROUND_DIGITS} decimals, not {digits}")
    return round_half_up(value, digits)


def _add_days(day: Date | None, n: Any) -> Date | None:
    if day is None or n is None:
        return None
    return day + dt.timedelta(days=int(n))


def _add_weeks(day: Date | None, n: Any) -> Date | None:
    if day is None or n is None:
        return None
    return day + dt.timedelta(weeks=int(n))


def _add_months(day: Date | None, n: Any) -> Date | None:
    """Calendar months; the day is clamped to the month's end (31 Jan + 1 = 28/29 Feb)."""
    if day is None or n is None:
        return None
    index = day.year * 12 + (day.month - 1) + int(n)
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return Date(year, month + 1, min(day.day, last))


def _days_between(start: Date | None, end: Date | None) -> Any:
    if start is None or end is None:
        return None
    return (end - start).days


def _months_between(start: Date | None, end: Date | None) -> Any:
    """Whole calendar months from ``start`` to ``end`` (negative if end is before)."""
    if start is None or end is None:
        return None
    sign = 1
    if end < start:
        start, end, sign = end, start, -1
    months = (end.year - start.year) * 12 + (end.month - start.month)
    if _add_months(start, months) > end:  # type: ignore[operator]
        months -= 1
    return sign * months


def _unary(compute: Any) -> Any:
    """A one-number function, unknown when its argument is, finite or a ValueError naming what went wrong."""
    def apply(value: Any) -> Any:
        if value is None:
            return None
        result = compute(value)
        if isinstance(result, float) and not math.isfinite(result):
            raise ValueError(f"the result for {value!r} is not a finite number")
        return result
    return apply


def _checked_exp(value: Any) -> Any:
    if value > 700:  # e ** 709.8 is the largest float
        raise OverflowError(f"exp({value!r}) is beyond the largest number")
    return math.exp(value)


def _checked_ln(value: Any) -> Any:
    if value <= 0:
        raise ValueError(f"ln is defined for numbers above 0, not {value!r}")
    return math.log(value)


def _checked_sqrt(value: Any) -> Any:
    if value < 0:
        raise ValueError(f"sqrt is defined for numbers from 0, not {value!r}")
    return math.sqrt(value)


REGISTRY: dict[str, Function] = {
    f.name: f
    for f in [
        Function("known", _known, ("any",), "boolean",
                 doc="true when the value is given or computable, false when unknown; never unknown itself"),
        Function("min", _min, ("number", "number"), "number", variadic=True, doc="smallest of the numbers"),
        Function("max", _max, ("number", "number"), "number", variadic=True, doc="largest of the numbers"),
        Function("abs", _abs, ("number",), "number", doc="absolute value"),
        Function("round", _round, ("number", "number"), "number", optional=1,
                 doc="round half-up to the given number of decimals (default 0)"),
        Function("floor", _unary(math.floor), ("number",), "number", doc="largest whole number not above the value"),
        Function("ceil", _unary(math.ceil), ("number",), "number", doc="smallest whole number not below the value"),
        Function("trunc", _unary(math.trunc), ("number",), "number", doc="the whole part, towards zero"),
        Function("sqrt", _unary(_checked_sqrt), ("number",), "number", doc="square root (of a number from 0)"),
        Function("exp", _unary(_checked_exp), ("number",), "number", doc="e to the power of the value"),
        Function("ln", _unary(_checked_ln), ("number",), "number", doc="natural logarithm (of a number above 0)"),
        Function("add_days", _add_days, ("date", "number"), "date", doc="date plus n days"),
        Function("add_weeks", _add_weeks, ("date", "number"), "date", doc="date plus n weeks"),
        Function("add_months", _add_months, ("date", "number"), "date",
                 doc="date plus n calendar months (clamped to the month's end)"),
        Function("days_between", _days_between, ("date", "date"), "number",
                 doc="days from the first date to the second"),
        Function("months_between", _months_between, ("date", "date"), "number",
                 doc="whole calendar months from the first date to the second"),
    ]
}
