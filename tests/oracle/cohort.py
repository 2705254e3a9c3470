"""A deterministic synthetic cohort drawn from a guideline's own fact declarations.

Spreads inside each plausible range (most of the mass in the lower part, where
the clinical thresholds are), about 10% missing per fact, quantities in every
accepted unit. Used by ``tests/test_oracle.py`` and ``tools/bench.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator
from typing import Any

import engine

__all__ = ["cohort", "generate", "valid", "write_cohort"]

DAY = dt.date(2026, 11, 27)

def cohort(g: engine.Guideline, n: int, seed: int, missing: float = 0.10) -> list[dict[str, Any]]:
    """``n`` synthetic patients drawn from the guideline's fact declarations."""
    return list(generate(g, n, seed, missing))


def valid(g: engine.Guideline, facts: dict[str, Any], day: dt.date = DAY) -> bool:
    """Whether the engine accepts ``facts`` (the cohort draws some values outside a fact's domain)."""
    try:
        g.decide(facts, on=day)
    except engine.FactsError:
        return False
    return True


def generate(g: engine.Guideline, n: int, seed: int, missing: float = 0.10) -> Iterator[dict[str, Any]]:
    """The same patients, one at a time (for cohorts too large to hold)."""
    rng = random.Random(seed)
    specs = list(g.compiled.facts.values())
    for _ in range(n):
        facts: dict[str, Any] = {}
        for spec in specs:
            if rng.random() < missing:
                continue
            facts[spec.name] = _draw(spec, rng)
        yield facts


def write_cohort(g: engine.Guideline, n: int, seed: int, path: str) -> None:
    """The cohort as JSON Lines (with a patient_id), the input of ``guideline batch``."""
    with open(path, "w", encoding="utf-8") as out:
        for i, facts in enumerate(generate(g, n, seed), start=1):
            out.write(json.dumps({"patient_id": f"P{i:07d}", **facts}, ensure_ascii=False) + "\n")


def _draw(spec: Any, rng: random.Random) -> Any:
    if spec.type == "boolean":
        return rng.random() < 0.5
    if spec.type == "enum":
        return rng.choice(spec.values)
    if spec.type == "list":
        return [v for v in spec.values if rng.random() < 0.3]
    if spec.type == "date":
        return (DAY - dt.timedelta(days=rng.randint(0, 3 * 365))).isoformat()
    low, high = spec.range
    low = 0.0 if low is None else float(low)
    high = low + 1000.0 if high is None else float(high)
    # Most of the mass in the lower half of the plausible range, where the
    # clinical thresholds are; a tail up to the maximum.
    value = min(high, max(low, rng.triangular(low, high, low + (high - low) * 0.1)))
    if spec.type == "integer":
        return round(value)
    if spec.type == "number":
        return round(value, 1)
    unit = rng.choice(spec.units.units)
    shown = round(spec.units.from_canonical(value, unit), 2)
    if unit.convert(shown) < low or unit.convert(shown) > high:  # rounding must not leave the range
        unit, shown = spec.units.units[0], round(value, 2)
    return {"value": shown, "unit": unit.name}
