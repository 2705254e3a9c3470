"""The compiled guideline's data model: frozen parts that evaluation reads.

Built by the compile stage (``engine.compile``), read by the evaluator, the
accelerations, the author tools and the front ends. Everything here is
immutable (frozen dataclasses and read-only mappings), so one compiled
guideline can be shared between threads and pickled to worker processes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload

from engine.errors import Diagnostic
from engine.language.expressions import CompiledExpression
from engine.language.intervals import Interval
from engine.language.units import UnitSystem
from engine.texts.templates import CompiledTemplate

__all__ = [
    "Cell", "CompiledGuideline", "DerivedSpec", "FactSpec", "FrozenDict", "RecommendationSpec", "RuleSpec",
    "TableInput", "TableRow", "TableSpec", "Where", "computed_once", "freeze",
]


@dataclass(frozen=True)
class Where:
    """Where a compiled part was written, for evaluation-time errors."""

    file: str
    line: int
    col: int


@dataclass(frozen=True)
class FactSpec:
    """A declared input fact."""

    name: str
    type: str
    label: Mapping[str, str]
    description: Mapping[str, str]
    units: UnitSystem | None
    range: tuple[float | None, float | None]
    values: tuple[str, ...]
    value_labels: Mapping[str, Mapping[str, str]]
    allow_future: bool
    codes: tuple[Mapping[str, str], ...]
    where: Where
    tolerance: float | None = None  # how far the value may be from the truth (borderline cautions)
    fhir: Mapping[str, Any] | None = None  # where the fact is found in FHIR R4 data (engine.fhir)


@dataclass(frozen=True)
class DerivedSpec:
    """A named value computed from others."""

    name: str
    type: str
    expr: CompiledExpression
    unit: str | None
    decimals: int | None
    label: Mapping[str, str]
    formula: Mapping[str, str]
    where: Where
    facts: frozenset[str] = frozenset()
    tolerance: float | None = None  # how far the value may be from the truth (borderline cautions)
    display_decimals: int | None = None  # decimals shown in explanations (decisions read the full value)

    @property
    def numeric(self) -> bool:
        """Whether the value is a number (settled: noise removed, rounded when declared)."""
        return self.type in ("number", "quantity")


@dataclass(frozen=True)
class Cell:
    """One row's condition on one input."""

    kind: str  # any | interval | values
    interval: Interval | None = None
    values: tuple[Any, ...] = ()
    text: str = ""

    def matches(self, value: Any) -> bool:
        """Whether a known ``value`` satisfies the cell."""
        if self.kind == "any":
            return True
        if self.kind == "interval":
            return value in self.interval  # type: ignore[operator]
        return value in self.values


@dataclass(frozen=True)
class TableRow:
    """A row: its cells (one per input) and the outputs it gives."""

    index: int
    id: str
    cells: tuple[Cell, ...]
    outputs: Mapping[str, Any]
    label: Mapping[str, str]
    source: Mapping[str, Any]
    where: Where


@dataclass(frozen=True)
class TableInput:
    """An input column: what is looked up, its unit and domain."""

    expr: CompiledExpression
    unit: str | None
    domain: Interval | None
    label: Mapping[str, str]


@dataclass(frozen=True)
class TableSpec:
    """A decision table compiled to matchers."""

    name: str
    hit: str
    inputs: tuple[TableInput, ...]
    outputs: Mapping[str, str | None]
    rows: tuple[TableRow, ...]
    otherwise: Mapping[str, Any]
    title: Mapping[str, str]
    source: Mapping[str, Any]
    where: Where
    facts: frozenset[str] = frozenset()
    value_labels: Mapping[str, Mapping[str, Mapping[str, str]]] = field(default_factory=dict)  # output -> value -> text


@dataclass(frozen=True)
class RecommendationSpec:
    """A recommendation with its compiled templates and structured dose."""

    id: str
    kind: str
    templates: Mapping[str, CompiledTemplate]
    strength: str | None
    dose: Mapping[str, Any] | None
    dose_exprs: Mapping[str, CompiledExpression]
    schedule: tuple[Mapping[str, Any], ...]
    evidence: tuple[str, ...]
    source: Mapping[str, Any]
    where: Where


@dataclass(frozen=True)
class RuleSpec:
    """A rule: compiled condition and its recommendations."""

    id: str
    title: Mapping[str, str]
    when: CompiledExpression
    then: tuple[RecommendationSpec, ...]
    source: Mapping[str, Any]
    notes: tuple[str, ...]
    statements: tuple[int | str, ...]  # 3, or dotted as the source numbers it ("1.2.4")
    where: Where
    facts: frozenset[str] = frozenset()


@dataclass(frozen=True)
class CompiledGuideline:
    """Everything evaluation needs, frozen. Built by :func:`compile_document`."""

    file: str
    id: str
    version: str
    status: str
    title: Mapping[str, str]
    languages: tuple[str, ...]
    effective_date: dt.date | None
    source: Mapping[str, Any]
    facts: Mapping[str, FactSpec]
    derived: Mapping[str, DerivedSpec]
    tables: Mapping[str, TableSpec]
    plan: tuple[DerivedSpec | TableSpec, ...]
    rules: tuple[RuleSpec, ...]
    notes: tuple[Mapping[str, Any], ...]
    not_encoded: tuple[Mapping[str, Any], ...]
    evidence: Mapping[str, Mapping[str, Any]]
    output_units: Mapping[str, str | None]
    warnings: tuple[Diagnostic, ...] = field(default=(), compare=False)
    content_hash: str = ""
    # For each number with a declared tolerance: the thresholds that table rows
    # and conditions compare it with (borderline cautions are probed at these).
    thresholds: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    def tolerance_of(self, name: str) -> float | None:
        """The declared tolerance of a fact or derived value (None when it has none)."""
        spec = self.facts.get(name) or self.derived.get(name)
        return spec.tolerance if spec is not None else None


class FrozenDict(dict):  # type: ignore[type-arg]
    """A read-only dict: shareable between threads and picklable (unlike mappingproxy)."""

    def _refuse(self, *_: Any, **__: Any) -> None:
        raise TypeError("read-only: this mapping belongs to a compiled guideline or to a result")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]
    __ior__ = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))


def freeze(value: Any) -> Any:
    """Deep read-only copy of loaded data."""
    if isinstance(value, dict):
        return FrozenDict({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    return value


_T = TypeVar("_T")


class computed_once(Generic[_T]):  # lower case: used as a decorator, like functools.cached_property
    """A value of an immutable object, computed on first read and then kept in the instance.

    ``functools.cached_property`` without its lock: on Python 3.11 that lock is
    one for all the instances of a class, so threads reading results (a
    service's workers) wait for each other, and taking it costs a third of a
    microsecond on each first read, which a full JSON result pays several
    times. What is computed here is a pure function of the instance: two
    threads computing it at once compute the same value, and either is kept.
    """

    def __init__(self, compute: Callable[[Any], _T]) -> None:
        self.compute = compute
        self.name = compute.__name__
        self.__doc__ = compute.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> computed_once[_T]: ...
    @overload
    def __get__(self, instance: object, owner: type | None = None) -> _T: ...

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = self.compute(instance)
        instance.__dict__[self.name] = value  # found before this descriptor next time (it defines no __set__)
        return value
