"""Quantities: declared conversions and precision."""

from __future__ import annotations

import pytest

from engine.language.units import Unit, UnitSystem, parse_quantity_text, round_half_up


def test_conversions_are_exact_in_the_declared_direction() -> None:
    nmol = Unit("nmol/L", divide_by=2.5)
    assert nmol.convert(75) == 30.0
    assert nmol.convert(25) == 10.0
    mgdl = Unit("mg/dL", multiply_by=88.4)
    assert mgdl.convert(1.0) == 88.4
    system = UnitSystem("ng/mL", (Unit("ng/mL"), nmol))
    assert system.from_canonical(30, nmol) == 75


def test_unit_lookup_folds_spelling() -> None:
    system = UnitSystem("µmol/L", (Unit("µmol/L"), Unit("mg/dL", multiply_by=88.4)))
    assert system.find("umol/l").name == "µmol/L"
    assert system.find("MG/DL").name == "mg/dL"
    assert system.find("mmol/L") is None


@pytest.mark.parametrize("value, decimals, expected", [
    (49.99999999999999, 1, 50.0), (50.00000000000001, 1, 50.0), (49.95, 1, 50.0), (49.94, 1, 49.9),
    (2.675, 2, 2.68), (0.5, 0, 1.0), (1.5, 0, 2.0), (-0.05, 1, -0.1),
])
def test_round_half_up(value: float, decimals: int, expected: float) -> None:
    assert round_half_up(value, decimals) == expected


def test_quantity_text() -> None:
    assert parse_quantity_text("18 ng/mL") == (18.0, "ng/mL")
    assert parse_quantity_text("18,5 nmol/L") == (18.5, "nmol/L")
    assert parse_quantity_text("ng/mL 18") is None
