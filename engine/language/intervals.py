"""Numeric intervals with explicit open and closed ends, and their algebra.

Decision-table rows are intervals; the compiler matches values against them
and the linter computes gaps (domain minus the union of rows) and overlaps
(pairwise intersections) with the same code.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from engine.language.units import Unit

__all__ = ["Interval", "intersect", "parse_interval", "subtract", "uncovered"]


@dataclass(frozen=True)
class Interval:
    """A numeric interval with explicit open/closed ends."""

    low: float
    high: float
    low_closed: bool = True
    high_closed: bool = True

    def __contains__(self, x: float) -> bool:
        if x < self.low or (x == self.low and not self.low_closed):
            return False
        return not (x > self.high or (x == self.high and not self.high_closed))

    def is_empty(self) -> bool:
        """True when no number is in the interval."""
        return self.low > self.high or (self.low == self.high and not (self.low_closed and self.high_closed))

    def converted(self, unit: Unit) -> Interval:
        """The interval with both bounds converted from ``unit`` to the canonical unit."""
        return Interval(unit.convert(self.low), unit.convert(self.high), self.low_closed, self.high_closed)

    def __str__(self) -> str:
        return (("[" if self.low_closed else "(") + _fmt_bound(self.low) + ", "
                + _fmt_bound(self.high) + ("]" if self.high_closed else ")"))


def _fmt_bound(x: float) -> str:
    if math.isinf(x):
        return "+inf" if x > 0 else "-inf"
    return str(int(x)) if float(x).is_integer() else repr(x)


_NUM = r"[-+]?(?:inf|\d+(?:\.\d*)?|\.\d+)"
_BRACKET_RE = re.compile(rf"^\s*([\[(])\s*({_NUM})\s*,\s*({_NUM})\s*([\])])\s*$")
_COMPARE_RE = re.compile(rf"^\s*(<=|>=|<|>|=)\s*({_NUM})\s*$")


def parse_interval(text: str) -> Interval | None:
    """``"[40, 50)"``, ``"< 30"``, ``"(60, +inf)"`` -> :class:`Interval`; None if malformed."""
    match = _BRACKET_RE.match(text)
    if match:
        low, high = float(match.group(2)), float(match.group(3))
        return Interval(low, high, match.group(1) == "[" and not math.isinf(low),
                        match.group(4) == "]" and not math.isinf(high))
    match = _COMPARE_RE.match(text)
    if match:
        op, x = match.group(1), float(match.group(2))
        return {
            "<": Interval(-math.inf, x, False, False), "<=": Interval(-math.inf, x, False, True),
            ">": Interval(x, math.inf, False, False), ">=": Interval(x, math.inf, True, False),
            "=": Interval(x, x, True, True),
        }[op]
    return None


def intersect(a: Interval, b: Interval) -> Interval | None:
    """The intersection of ``a`` and ``b``, or None when they do not meet."""
    if a.low > b.low or (a.low == b.low and not a.low_closed):
        low, low_closed = a.low, a.low_closed
    else:
        low, low_closed = b.low, b.low_closed
    if a.high < b.high or (a.high == b.high and not a.high_closed):
        high, high_closed = a.high, a.high_closed
    else:
        high, high_closed = b.high, b.high_closed
    result = Interval(low, high, low_closed, high_closed)
    return None if result.is_empty() else result


def subtract(a: Interval, b: Interval) -> list[Interval]:
    """``a`` minus ``b``: zero, one or two intervals."""
    if intersect(a, b) is None:
        return [a]
    pieces = [
        Interval(a.low, b.low, a.low_closed, not b.low_closed),
        Interval(b.high, a.high, not b.high_closed, a.high_closed),
    ]
    return [p for p in pieces if not p.is_empty()]


def uncovered(domain: Interval, parts: Iterable[Interval]) -> list[Interval]:
    """The pieces of ``domain`` that none of ``parts`` covers, in order."""
    remaining = [domain]
    for part in parts:
        remaining = [piece for r in remaining for piece in subtract(r, part)]
    return sorted(remaining, key=lambda i: (i.low, not i.low_closed))
