"""Scores with unknown items: what is sure, and how far the unknown items could move it.

A clinical score (CHA2DS2-VASc, CURB-65, Wells) adds points for items; a
missing item does not make the score wholly unknown: "2 points already from
known items" decides "score >= 2". ``count_true``, ``points`` and ``sum``
return a plain number when every item is known and otherwise a :class:`Score`,
the range the score lies in. Comparisons against a range are three-valued:
decided when the whole range is on one side of the threshold, unknown
otherwise. Python's rich comparisons may return any object, so the compiled
code, the needs tracer and the simpleeval reference all get this behaviour
from the same class; the checker marks the comparisons that may read a score,
so the code generator does not treat them as never unknown.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Score", "count_true", "points", "score_sum"]

_NUMBER = (int, float)


class Score:
    """A score with ``unknown`` items unknown: it lies in ``[low, high]`` (``low < high``)."""

    __slots__ = ("high", "low", "unknown")

    def __init__(self, low: float, high: float, unknown: int) -> None:
        self.low = low
        self.high = high
        self.unknown = unknown

    @staticmethod
    def of(low: float, high: float, unknown: int) -> Any:
        """The score as a plain number when the unknown items cannot move it, else a Score."""
        return low if low == high else Score(low, high, unknown)

    # --- three-valued comparisons with a number (True, False, or None when the range straddles) --------

    def __lt__(self, other: Any) -> bool | None:
        low, high = _bounds(other)
        return True if self.high < low else False if self.low >= high else None

    def __le__(self, other: Any) -> bool | None:
        low, high = _bounds(other)
        return True if self.high <= low else False if self.low > high else None

    def __gt__(self, other: Any) -> bool | None:
        low, high = _bounds(other)
        return True if self.low > high else False if self.high <= low else None

    def __ge__(self, other: Any) -> bool | None:
        low, high = _bounds(other)
        return True if self.low >= high else False if self.high < low else None

    def __eq__(self, other: object) -> Any:
        # Two scores are equal when they are the same range (tools compare results); a score and a
        # number are unequal when the number is outside the range, and unknown otherwise. None is
        # never equal: `None in (score, 2)` must be False.
        if isinstance(other, Score):
            return (self.low, self.high, self.unknown) == (other.low, other.high, other.unknown)
        if other is None or isinstance(other, bool) or not isinstance(other, _NUMBER):
            return False
        return False if not self.low <= other <= self.high else None

    def __ne__(self, other: object) -> Any:
        equal = self.__eq__(other)
        return None if equal is None else not equal

    def __hash__(self) -> int:
        return hash((Score, self.low, self.high, self.unknown))

    def __bool__(self) -> bool:
        raise TypeError("a score with unknown items is not a condition: compare it with a number")

    # --- arithmetic: a sum of scores is a score -------------------------------------------------------

    def __add__(self, other: Any) -> Any:
        low, high = _bounds(other)
        return Score.of(self.low + low, self.high + high, self.unknown + _unknown(other))

    __radd__ = __add__

    def __sub__(self, other: Any) -> Any:
        low, high = _bounds(other)
        return Score.of(self.low - high, self.high - low, self.unknown + _unknown(other))

    def __rsub__(self, other: Any) -> Any:
        low, high = _bounds(other)
        return Score.of(low - self.high, high - self.low, self.unknown + _unknown(other))

    def __neg__(self) -> Score:
        return Score(-self.high, -self.low, self.unknown)

    def __pos__(self) -> Score:
        return self

    def __mul__(self, other: Any) -> Any:
        if not isinstance(other, _NUMBER) or isinstance(other, bool):
            return NotImplemented  # the checker lets a score be multiplied by a number only
        ends = (self.low * other, self.high * other)
        return Score.of(min(ends), max(ends), self.unknown)

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> Any:
        if not isinstance(other, _NUMBER) or isinstance(other, bool):
            return NotImplemented
        ends = (self.low / other, self.high / other)  # a division by 0 raises, as for a number
        return Score.of(min(ends), max(ends), self.unknown)

    def __repr__(self) -> str:
        return f"Score({self.low!r}..{self.high!r}, {self.unknown} unknown)"

    def __str__(self) -> str:
        return f"{_plain(self.low)}–{_plain(self.high)}"

    def as_json(self) -> dict[str, Any]:
        """The JSON form of a result's value: the bounds and how many items are unknown."""
        return {"at_least": self.low, "at_most": self.high, "unknown_items": self.unknown}


def _bounds(value: Any) -> tuple[Any, Any]:
    if isinstance(value, Score):
        return value.low, value.high
    return value, value


def _unknown(value: Any) -> int:
    return value.unknown if isinstance(value, Score) else 0


def _plain(number: float) -> str:
    return str(int(number)) if isinstance(number, float) and number.is_integer() else str(number)


def count_true(*conditions: Any) -> Any:
    """How many conditions are true; with unknown ones, the range of that count."""
    sure = sum(1 for c in conditions if c is True)
    unknown = sum(1 for c in conditions if c is None)
    return Score.of(sure, sure + unknown, unknown)


def points(condition: Any, value: Any) -> Any:
    """``value`` points when the condition holds, 0 when it does not, either when it is unknown."""
    if condition is None:
        return Score.of(min(0, value), max(0, value), 1)
    return value if condition else 0


def score_sum(*parts: Any) -> Any:
    """The sum of numbers and scores; an unknown part with no bounds leaves the sum unknown."""
    if None in parts:
        return None
    total: Any = 0
    for part in parts:
        total = total + part
    return total
