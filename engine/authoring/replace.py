"""A compiled guideline with one part replaced: the building block of mutants and of per-change diffs.

The compiled guideline is frozen; these return a new one that shares every
other part. The plan (the order derived values and tables are computed in)
keeps its order: a part is replaced where it stands.
"""

from __future__ import annotations

from dataclasses import replace

from engine.model import CompiledGuideline, DerivedSpec, FactSpec, FrozenDict, RecommendationSpec, RuleSpec, TableSpec

__all__ = ["replace_derived", "replace_fact", "replace_recommendation", "replace_rule", "replace_table"]


def replace_rule(g: CompiledGuideline, old: RuleSpec, new: RuleSpec | None) -> CompiledGuideline:
    """``g`` with rule ``old`` replaced by ``new`` (removed when None)."""
    rules = tuple(r if r is not old else new for r in g.rules)
    return replace(g, rules=tuple(r for r in rules if r is not None))


def replace_derived(g: CompiledGuideline, new: DerivedSpec) -> CompiledGuideline:
    """``g`` with the derived value of ``new``'s name replaced by ``new``."""
    derived = FrozenDict({name: new if name == new.name else spec for name, spec in g.derived.items()})
    plan = tuple(new if isinstance(s, DerivedSpec) and s.name == new.name else s for s in g.plan)
    return replace(g, derived=derived, plan=plan)


def replace_table(g: CompiledGuideline, new: TableSpec) -> CompiledGuideline:
    """``g`` with the table of ``new``'s name replaced by ``new``."""
    tables = FrozenDict({name: new if name == new.name else t for name, t in g.tables.items()})
    plan = tuple(new if isinstance(s, TableSpec) and s.name == new.name else s for s in g.plan)
    return replace(g, tables=tables, plan=plan)


def replace_fact(g: CompiledGuideline, new: FactSpec) -> CompiledGuideline:
    """``g`` with the fact of ``new``'s name replaced by ``new``."""
    return replace(g, facts=FrozenDict({n: new if n == new.name else f for n, f in g.facts.items()}))


def replace_recommendation(g: CompiledGuideline, rule: RuleSpec, old: RecommendationSpec,
                           new: RecommendationSpec | None) -> CompiledGuideline:
    """``g`` with recommendation ``old`` of ``rule`` replaced by ``new`` (removed when None)."""
    then = tuple(r if r is not old else new for r in rule.then)
    return replace_rule(g, rule, replace(rule, then=tuple(r for r in then if r is not None)))
