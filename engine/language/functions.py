"""The one registry of functions callable from guideline expressions.

Each function declares its unknown rule once, here: ``propagate`` (the
default: unknown when any argument is unknown, so its implementation never
sees ``None``), ``decides`` (``known``, which answers "is this given?" and
is never unknown) or ``bounds`` (the scores of :mod:`engine.language.scores`:
the known items give a range). The same wrapped implementations serve the compiled
evaluator, the needs tracer and the simpleeval reference evaluator, so they
cannot drift apart.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.language.scores import count_true, points, score_sum

__all__ = ["REGISTRY", "Function", "parse_date_literal"]

Date = dt.date


@dataclass(frozen=True)
class Function:
    """A callable with its signature for the compile-time type checker."""

    name: str
    compute: Callable[..., Any]  # the function on known arguments
    args: tuple[str, ...]  # expected type of each argument ("number", "date", "any"...)
    returns: str
    variadic: bool = False  # the last argument type repeats (min, max)
    optional: int = 0  # how many trailing arguments may be left out
    doc: str = ""
    # propagate: unknown in, unknown out | decides: never unknown (known) | bounds: a score's range
    # from the known items (engine.language.scores)
    unknown: str = "propagate"
    impl: Callable[..., Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "impl", _propagating(self.compute) if self.unknown == "propagate" else self.compute)


def _propagating(compute: Callable[..., Any]) -> Callable[..., Any]:
    # `None in args` is a C-level scan; arguments are numbers, dates or text,
    # which never compare equal to None.
    def impl(*args: Any) -> Any:
        return None if None in args else compute(*args)
    impl.__name__ = getattr(compute, "__name__", "impl")
    return impl


def _known(value: Any) -> bool:
    return value is not None


MAX_ROUND_DIGITS = 15  # round()'s decimals, either way: a huge count would compute 10 ** decimals


def _round(value: Any, decimals: Any = 0) -> Any:
    from engine.language.units import round_half_up

    digits = int(decimals)
    if abs(digits) > MAX_ROUND_DIGITS:
        raise ValueError(f"round takes between -{MAX_ROUND_DIGITS} and {MAX_ROUND_DIGITS} decimals, not {digits}")
    return round_half_up(value, digits)


def _add_months(day: Date, n: Any) -> Date:
    """Calendar months; the day is clamped to the month's end (31 Jan + 1 = 28/29 Feb)."""
    index = day.year * 12 + (day.month - 1) + int(n)
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise ValueError(f"the date would be in the year {year}")
    last = calendar.monthrange(year, month + 1)[1]
    return Date(year, month + 1, min(day.day, last))


def _months_between(start: Date, end: Date) -> int:
    """Whole calendar months from ``start`` to ``end`` (negative if end is before)."""
    sign = 1
    if end < start:
        start, end, sign = end, start, -1
    months = (end.year - start.year) * 12 + (end.month - start.month)
    if _add_months(start, months) > end:
        months -= 1
    return sign * months


def _years_between(start: Date, end: Date) -> int:
    """Whole years from ``start`` to ``end``, as an age is counted (29 Feb + 1 year = 28 Feb)."""
    return int(_months_between(start, end) / 12)  # whole months, cut towards zero


def parse_date_literal(text: str) -> Date | None:
    """The date a ``date('YYYY-MM-DD')`` literal writes, or None when it is no calendar date."""
    if not isinstance(text, str) or len(text) != 10:
        return None
    try:
        return Date.fromisoformat(text)
    except ValueError:
        return None


def _date(text: str) -> Date:
    found = parse_date_literal(text)
    if found is None:  # the checker refuses such a literal at load time
        raise ValueError(f"{text!r} is not a date written YYYY-MM-DD")
    return found


def _finite(compute: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A one-number function whose result must be a finite number (a ValueError says which value went wrong)."""
    def apply(value: Any) -> Any:
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
        Function("known", _known, ("any",), "boolean", unknown="decides",
                 doc="true when the value is given or computable, false when unknown; never unknown itself"),
        Function("min", min, ("number", "number"), "number", variadic=True, doc="smallest of the numbers"),
        Function("max", max, ("number", "number"), "number", variadic=True, doc="largest of the numbers"),
        Function("abs", abs, ("number",), "number", doc="absolute value"),
        Function("round", _round, ("number", "number"), "number", optional=1,
                 doc="round half-up to the given number of decimals (default 0)"),
        Function("floor", _finite(math.floor), ("number",), "number", doc="largest whole number not above the value"),
        Function("ceil", _finite(math.ceil), ("number",), "number", doc="smallest whole number not below the value"),
        Function("trunc", _finite(math.trunc), ("number",), "number", doc="the whole part, towards zero"),
        Function("sqrt", _finite(_checked_sqrt), ("number",), "number", doc="square root (of a number from 0)"),
        Function("exp", _finite(_checked_exp), ("number",), "number", doc="e to the power of the value"),
        Function("ln", _finite(_checked_ln), ("number",), "number", doc="natural logarithm (of a number above 0)"),
        Function("add_days", lambda day, n: day + dt.timedelta(days=int(n)), ("date", "number"), "date",
                 doc="date plus n days"),
        Function("add_weeks", lambda day, n: day + dt.timedelta(weeks=int(n)), ("date", "number"), "date",
                 doc="date plus n weeks"),
        Function("add_months", _add_months, ("date", "number"), "date",
                 doc="date plus n calendar months (clamped to the month's end)"),
        Function("days_between", lambda start, end: (end - start).days, ("date", "date"), "number",
                 doc="days from the first date to the second"),
        Function("months_between", _months_between, ("date", "date"), "number",
                 doc="whole calendar months from the first date to the second"),
        Function("years_between", _years_between, ("date", "date"), "number",
                 doc="whole years from the first date to the second, as an age is counted"),
        Function("count_true", count_true, ("boolean", "boolean"), "score", variadic=True, optional=1,
                 unknown="bounds", doc="how many of the conditions are true (a score: unknown items give a range)"),
        Function("points", points, ("boolean", "number"), "score", unknown="bounds",
                 doc="the points when the condition holds, 0 when not, a range when unknown"),
        Function("sum", score_sum, ("number", "number"), "score", variadic=True, optional=1, unknown="bounds",
                 doc="the sum of numbers and scores"),
        Function("date", _date, ("text",), "date", doc="the date written 'YYYY-MM-DD' (a literal: date('2026-01-31'))"),
    ]
}
