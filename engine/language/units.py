"""Quantities: units declared as data, conversions, precision.

Conversions are analyte-specific and written in the guideline (a reviewer
sees ``nmol/L: divide_by 2.5`` next to the vitamin D fact), never guessed
from a global table: 1 mg/dL of creatinine is not 1 mg/dL of glucose.
"""

from __future__ import annotations

import math
import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

__all__ = ["NOISE_DIGITS", "IdentityCache", "Unit", "UnitSystem", "denoise", "normalise_unit", "parse_quantity_text",
           "round_half_up", "settle"]

# Significant digits a computed number keeps: about 1e-12 relative, far above
# binary noise (about 1e-16) and far below any clinical precision.
NOISE_DIGITS = 12


def normalise_unit(unit: str) -> str:
    """Spelling-insensitive key for a unit: case, spaces and micro sign folded."""
    return unit.replace("µ", "u").replace("μ", "u").replace(" ", "").lower()


@dataclass(frozen=True)
class Unit:
    """An accepted unit and how to convert it to the canonical unit.

    The factor is kept as written (multiply or divide) rather than as a
    reciprocal, so 75 nmol/L / 2.5 is exactly 30 ng/mL, not 30.000000000000004.
    """

    name: str
    multiply_by: float = 1.0
    divide_by: float = 1.0

    @property
    def is_identity(self) -> bool:
        """True for the canonical unit itself."""
        return self.multiply_by == 1 and self.divide_by == 1

    def convert(self, value: float) -> float:
        """This unit's ``value`` in the canonical unit."""
        if self.is_identity:
            return value
        return value * self.multiply_by / self.divide_by


@dataclass(frozen=True)
class UnitSystem:
    """The canonical unit of one quantity fact and its accepted alternatives."""

    canonical: str
    units: tuple[Unit, ...]

    def find(self, written: str) -> Unit | None:
        """The unit matching ``written`` (exact spelling first, then folded)."""
        for unit in self.units:
            if unit.name == written:
                return unit
        key = normalise_unit(written)
        for unit in self.units:
            if normalise_unit(unit.name) == key:
                return unit
        return None

    def from_canonical(self, value: float, unit: Unit) -> float:
        """A canonical ``value`` expressed in ``unit``."""
        return value * unit.divide_by / unit.multiply_by

    @property
    def names(self) -> list[str]:
        """Accepted spellings, canonical first."""
        return [u.name for u in self.units]


def denoise(value: float) -> float:
    """``value`` cleaned of floating-point noise: kept to :data:`NOISE_DIGITS` significant digits.

    A Cockcroft-Gault clearance that is 39.95 in decimal arithmetic comes out
    of binary arithmetic as 39.949999999999996; decisions read 39.95.
    Integers and non-finite values are returned as they are.
    """
    if type(value) is float and math.isfinite(value):
        return float(f"{value:.{NOISE_DIGITS}g}")
    return value


def settle(value: float | None, decimals: int | None) -> float | None:
    """A computed number as decisions read it: noise removed, then rounded half-up if ``decimals`` is declared."""
    if value is None:
        return None
    if decimals is None:
        return denoise(value)
    return round_half_up(value, decimals)


def round_half_up(value: float, decimals: int) -> float:
    """Round half-up in decimal, so 49.99999999999999 -> 50.0, 2.675 -> 2.68 and 39.949999999999996 -> 40.0.

    The value is first cleaned of binary noise (:func:`denoise`): a decimal
    tie such as 39.95, which binary arithmetic computes as 39.949999999999996,
    rounds up as it would on paper.
    """
    if not math.isfinite(value):
        return value
    scale = 10**decimals
    scaled = value * scale
    if abs(abs(scaled) - math.floor(abs(scaled)) - 0.5) > 1e-6 and abs(scaled) < 1e12:
        # Clearly not a tie: rounding to nearest is the same as half-up, and an
        # integer divided by a power of ten is the double nearest that decimal.
        return float(math.floor(scaled + 0.5) / scale)
    quantum = Decimal(1).scaleb(-decimals)
    return float(Decimal(f"{float(value):.{NOISE_DIGITS}g}").quantize(quantum, rounding=ROUND_HALF_UP))


_QUANTITY_TEXT = re.compile(r"^\s*([-+]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][-+]?\d+)?)\s*(\S.*?)\s*$")


def parse_quantity_text(text: str) -> tuple[float, str] | None:
    """``"18 ng/mL"`` or ``"18,5 ng/mL"`` -> ``(18.5, "ng/mL")``; None if not of that form."""
    match = _QUANTITY_TEXT.match(text)
    if not match:
        return None
    return float(match.group(1).replace(",", ".")), match.group(2)


T = TypeVar("T")


class IdentityCache:
    """Values derived from a (frozen, unhashable) object, kept as long as the object lives.

    Keyed by ``id(obj)`` and ``part``; a weakref finalizer drops the entries
    when the object is collected, so a process that loads many guidelines does
    not keep them all alive, and a reused id never returns a stale value.
    """

    def __init__(self) -> None:
        self._values: dict[tuple[int, str], object] = {}

    def put(self, obj: object, value: object, part: str = "") -> None:
        """Cache ``value`` for ``obj`` (and ``part``) until ``obj`` is collected."""
        key = (id(obj), part)
        if key not in self._values:
            weakref.finalize(obj, self._values.pop, key, None)
        self._values[key] = value

    def get_or_make(self, obj: object, part: str, make: Callable[..., T], *args: Any) -> T:
        """The cached value for ``obj`` and ``part``, made by ``make(*args)`` and kept on first use.

        The arguments are passed, not closed over: the callers are on hot paths,
        and a closure per call would be made only to be thrown away.
        """
        found = self._values.get((id(obj), part))
        if found is None:
            found = make(*args)
            self.put(obj, found, part)
        return found  # type: ignore[return-value]
