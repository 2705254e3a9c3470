"""Every faster path agrees with the reference semantics, on guidelines generated at random.

Hypothesis draws a small guideline *model* (facts of every kind, derived
values, decision tables with one or two inputs, open and closed bounds, every
hit policy, rules built from and/or/not, comparisons and known()), writes it
as YAML, and loads it with the engine. The model also evaluates itself, with
the language's documented semantics written out here in a few lines
(unknown is None; and/or/not are Kleene's; a comparison, an arithmetic
operation or a conditional with an unknown operand is unknown; a derived
number is read to 12 significant digits; a table with an unknown input gives
unknown outputs). For random patients the test then
checks that all of these give the same decisions:

* the model (the specification, independent of the engine's code);
* the step-by-step evaluator (``engine.evaluate.decide`` without a plan), the
  engine's reference semantics, and simpleeval's evaluator on each condition;
* the one-function plan (``engine.accel.codegen``), whose tables are if/elif
  chains where rows are disjoint and otherwise call the generic matcher;
* the checked plan (fact checks and decisions in one function);
* texts translated to Python against Jinja's sandbox rendering.

Because the model shares no code with the engine, a wrong generic matcher or a
wrong Kleene ``and`` in the generated code fails here even though both engine
paths would agree with each other.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine
from engine.accel.codegen import Slow, build_plans
from engine.evaluate import PLAN_ERRORS, decide, match_table
from engine.facts import validate_facts
from engine.language.reference import reference_eval
from engine.needs import NeedsTracer

DAY = dt.date(2026, 11, 27)
GRID = [x / 2 for x in range(0, 41)]  # thresholds and values share a grid, so boundaries are hit often
ENUM_VALUES = ("a", "b", "c")
MULTIPLY = 1000.0  # the quantity facts' second unit: 1 g = 1000 mg


class ModelError(Exception):
    """The specification says evaluation fails (a unique table with two matching rows)."""


# --- the model and its semantics ---------------------------------------------------


def kleene_and(values: list[Any]) -> Any:
    if any(v is False for v in values):
        return False
    return None if any(v is None for v in values) else True


def kleene_or(values: list[Any]) -> Any:
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False


COMPARE = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
           ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}
ARITH = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


@dataclass(frozen=True)
class Bound:
    """A cell's interval: None is infinite on that side."""

    low: float | None
    low_closed: bool
    high: float | None
    high_closed: bool

    def text(self) -> str:
        if self.low is None and self.high is None:
            return "any"
        if self.low is None:
            return f"{'<=' if self.high_closed else '<'} {self.high}"
        if self.high is None:
            return f"{'>=' if self.low_closed else '>'} {self.low}"
        return f"{'[' if self.low_closed else '('}{self.low}, {self.high}{']' if self.high_closed else ')'}"

    def holds(self, x: float) -> bool:
        if self.low is not None and (x < self.low or (x == self.low and not self.low_closed)):
            return False
        return not (self.high is not None and (x > self.high or (x == self.high and not self.high_closed)))


@dataclass
class Table:
    name: str
    hit: str  # unique | first | collect
    inputs: list[tuple[str, str]]  # (name, "number" | "enum")
    rows: list[tuple[list[Any], Any]]  # cells (Bound, or a tuple of enum values, or None = any), output
    otherwise: Any

    @property
    def output(self) -> str:
        return f"{self.name}_out"

    def lookup(self, keys: list[Any]) -> tuple[Any, str | None]:
        if any(k is None for k in keys):
            return None, None
        hits = [i for i, (cells, _) in enumerate(self.rows)
                if all(c is None or (c.holds(k) if isinstance(c, Bound) else k in c) for c, k in zip(cells, keys, strict=True))]
        if not hits:
            return self.otherwise, "otherwise"
        if self.hit == "collect":
            return tuple(self.rows[i][1] for i in hits), ",".join(f"row{i}" for i in hits)
        if self.hit == "unique" and len(hits) > 1:
            raise ModelError(self.name)
        return self.rows[hits[0]][1], f"row{hits[0]}"


@dataclass
class Model:
    numbers: dict[str, tuple[str, float, float]]  # name -> (number | integer | quantity, low, high)
    booleans: list[str]
    enums: list[str]
    derived: dict[str, Any]  # name -> numeric expression tree
    tables: list[Table]
    rules: list[Any]  # condition trees
    text_rule: int  # the rule whose text reads values (translated to Python, compared with Jinja)
    env: dict[str, Any] = field(default_factory=dict)

    # expressions as text
    def num_text(self, e: Any) -> str:
        kind = e[0]
        if kind in ("name", "const"):
            return str(e[1])
        if kind in ARITH:
            return f"({self.num_text(e[1])} {kind} {self.num_text(e[2])})"
        if kind in ("min", "max"):
            return f"{kind}({self.num_text(e[1])}, {self.num_text(e[2])})"
        return f"({self.num_text(e[2])} if {self.cond_text(e[1])} else {self.num_text(e[3])})"

    def cond_text(self, c: Any) -> str:
        kind = c[0]
        if kind == "cmp":
            return f"{self.num_text(c[2])} {c[1]} {self.num_text(c[3])}"
        if kind == "bool":
            return c[1]
        if kind == "enum":
            return f"{c[1]} == '{c[2]}'"
        if kind == "enum-in":
            return f"{c[1]} in [{', '.join(repr(v) for v in c[2])}]"
        if kind == "known":
            return f"known({c[1]})"
        if kind == "out":
            return f"{c[1]} {c[2]} {c[3]}"
        if kind == "collected":
            return f"{c[2]!r} in {c[1]}"
        if kind == "not":
            return f"not ({self.cond_text(c[1])})"
        return "(" + f" {kind} ".join(self.cond_text(p) for p in c[1]) + ")"

    # the semantics
    def num(self, e: Any) -> Any:
        kind = e[0]
        if kind == "name":
            return self.env[e[1]]
        if kind == "const":
            return e[1]
        if kind == "if":
            test = self.cond(e[1])
            if test is None:
                return None
            return self.num(e[2]) if test else self.num(e[3])
        a, b = self.num(e[1]), self.num(e[2])
        if a is None or b is None:
            return None
        if kind in ("min", "max"):
            return min(a, b) if kind == "min" else max(a, b)
        return ARITH[kind](a, b)

    def cond(self, c: Any) -> Any:
        kind = c[0]
        if kind == "cmp":
            a, b = self.num(c[2]), self.num(c[3])
            return None if a is None or b is None else COMPARE[c[1]](a, b)
        if kind == "bool":
            return self.env[c[1]]
        if kind == "enum":
            value = self.env[c[1]]
            return None if value is None else value == c[2]
        if kind == "enum-in":
            value = self.env[c[1]]
            return None if value is None else value in c[2]
        if kind == "known":
            return self.env[c[1]] is not None
        if kind == "out":
            value = self.env[c[1]]
            return None if value is None else COMPARE[c[2]](value, c[3])
        if kind == "collected":
            value = self.env[c[1]]
            return None if value is None else c[2] in value
        if kind == "not":
            inner = self.cond(c[1])
            return None if inner is None else not inner
        parts = [self.cond(p) for p in c[1]]
        return kleene_and(parts) if kind == "and" else kleene_or(parts)

    def evaluate(self, facts: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str | None], list[Any]]:
        env: dict[str, Any] = {}
        for name, (_kind, _, _) in self.numbers.items():
            raw = facts.get(name)
            if isinstance(raw, dict):
                raw = raw["value"] * MULTIPLY if raw["unit"] == "g" else raw["value"]
            env[name] = raw
        for name in self.booleans + self.enums:
            env[name] = facts.get(name)
        self.env = env
        for name, expr in self.derived.items():
            value = self.num(expr)
            # A derived number is read to 12 significant digits: binary noise never decides.
            env[name] = float(f"{value:.12g}") if isinstance(value, float) else value
        rows: dict[str, str | None] = {}
        for table in self.tables:
            env[table.output], rows[table.name] = table.lookup([env[n] for n, _ in table.inputs])
        return env, rows, [self.cond(c) for c in self.rules]

    def yaml(self) -> str:
        out: dict[str, Any] = {
            "id": "generated", "version": "1.0.0", "status": "draft", "title": {"fr": "g"}, "languages": ["fr"],
            "source": {"document": "generated"}, "facts": {}, "derived": {}, "tables": {}, "rules": [],
        }
        for name, (kind, low, high) in self.numbers.items():
            spec: dict[str, Any] = {"type": kind, "range": {"min": low, "max": high}, "label": {"fr": name}}
            if kind == "quantity":
                spec.update(unit="mg", units=[{"unit": "g", "multiply_by": MULTIPLY}])
            out["facts"][name] = spec
        for name in self.booleans:
            out["facts"][name] = {"type": "boolean", "label": {"fr": name}}
        for name in self.enums:
            out["facts"][name] = {"type": "enum", "values": list(ENUM_VALUES), "label": {"fr": name}}
        for name, expr in self.derived.items():
            out["derived"][name] = {"type": "number", "expr": self.num_text(expr), "label": {"fr": name}}
        for t in self.tables:
            def cell(c: Any) -> Any:
                return "any" if c is None else c.text() if isinstance(c, Bound) else list(c)
            out["tables"][t.name] = {
                "hit": t.hit, "inputs": [{"expr": n} for n, _ in t.inputs], "outputs": {t.output: None},
                "rows": [{"id": f"row{i}", "when": [cell(c) for c in cells], "then": {t.output: value}}
                         for i, (cells, value) in enumerate(t.rows)],
                "otherwise": {t.output: t.otherwise},
            }
        first_number = next(iter(self.numbers))
        for i, condition in enumerate(self.rules):
            text = f"rule {i}"
            if i == self.text_rule:
                text = (f"{{{{ {first_number} | num(1) }}}} "
                        + (f"{{% if {self.booleans[0]} %}}oui{{% else %}}non{{% endif %}}" if self.booleans else ""))
            out["rules"].append({"id": f"r{i}", "when": self.cond_text(condition),
                                 "then": [{"id": f"rec{i}", "kind": "information", "text": {"fr": text}}]})
        return json.dumps(out, ensure_ascii=False)  # JSON is YAML


# --- strategies ------------------------------------------------------------------------

grid = st.sampled_from(GRID)


@st.composite
def bounds(draw: Any) -> Bound:
    low = draw(st.one_of(st.none(), grid))
    high = draw(st.one_of(st.none(), grid.filter(lambda h: low is None or h > low)))
    return Bound(low, draw(st.booleans()), high, draw(st.booleans()))


@st.composite
def chain(draw: Any) -> list[Bound]:
    """Disjoint intervals in order (adjacent rows share a cut, closed on one side, or leave a gap)."""
    cuts = sorted(draw(st.sets(grid, min_size=1, max_size=4)))
    out = []
    edges = [None, *cuts, None]
    closed_left = draw(st.booleans())
    for low, high in itertools.pairwise(edges):
        side = draw(st.sampled_from(["low", "high", "gap"]))
        high_closed = side == "high"
        out.append(Bound(low, closed_left, high, high_closed))
        closed_left = side == "low"
    keep = draw(st.lists(st.booleans(), min_size=len(out), max_size=len(out)))
    kept = [b for b, k in zip(out, keep, strict=True) if k]
    return kept or out[:1]


def num_expr(names: list[str], depth: int) -> st.SearchStrategy[Any]:
    leaf = st.one_of(st.sampled_from(names).map(lambda n: ("name", n)), grid.map(lambda v: ("const", v)))
    if depth == 0:
        return leaf
    sub = num_expr(names, depth - 1)
    return st.one_of(
        leaf,
        st.tuples(st.sampled_from(sorted(ARITH)), sub, sub),
        st.tuples(st.sampled_from(["min", "max"]), sub, sub),
    )


@st.composite
def models(draw: Any) -> Model:
    numbers = {}
    for i in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["number", "integer", "quantity"]))
        numbers[f"n{i}"] = (kind, 0, 20)
    booleans = [f"b{i}" for i in range(draw(st.integers(0, 2)))]
    enums = [f"e{i}" for i in range(draw(st.integers(0, 1)))]
    derived: dict[str, Any] = {}
    for i in range(draw(st.integers(0, 2))):
        expr = draw(num_expr(list(numbers) + list(derived), 2))
        if booleans and draw(st.booleans()):
            expr = ("if", ("bool", draw(st.sampled_from(booleans))), expr, draw(num_expr(list(numbers), 1)))
        derived[f"d{i}"] = expr
    numeric = list(numbers) + list(derived)
    tables = []
    for i in range(draw(st.integers(0, 2))):
        hit = draw(st.sampled_from(["unique", "first", "collect"]))
        two = bool(enums) and draw(st.booleans())
        inputs = [(draw(st.sampled_from(numeric)), "number")] + ([(enums[0], "enum")] if two else [])
        disjoint = hit == "unique" and draw(st.integers(0, 4)) > 0  # now and then a unique table that may double-hit
        intervals = draw(chain()) if disjoint else draw(st.lists(bounds(), min_size=1, max_size=4))
        rows = []
        for k, b in enumerate(intervals):
            cells: list[Any] = [b]
            if two:
                group = draw(st.one_of(st.none(), st.sets(st.sampled_from(ENUM_VALUES), min_size=1).map(
                    lambda s: tuple(sorted(s)))))
                if disjoint:  # one enum value a row, each with the same chain, keeps the rows disjoint
                    group = (ENUM_VALUES[k % 3],)
                cells.append(group)
            rows.append((cells, draw(st.sampled_from(["x", "y", "z"])) if hit == "collect" else k + 1))
        otherwise = None if hit == "collect" else draw(st.one_of(st.none(), st.just(0)))
        tables.append(Table(f"t{i}", hit, inputs, rows, otherwise))

    def leaves() -> st.SearchStrategy[Any]:
        options = [st.tuples(st.just("cmp"), st.sampled_from(sorted(COMPARE)), num_expr(numeric, 1), num_expr(numeric, 0)),
                   st.tuples(st.just("known"), st.sampled_from(list(numbers) + booleans + enums))]
        if booleans:
            options.append(st.tuples(st.just("bool"), st.sampled_from(booleans)))
        if enums:
            options.append(st.tuples(st.just("enum"), st.sampled_from(enums), st.sampled_from(ENUM_VALUES)))
            options.append(st.tuples(st.just("enum-in"), st.sampled_from(enums),
                                     st.lists(st.sampled_from(ENUM_VALUES), min_size=1, max_size=2, unique=True)))
        for t in tables:
            if t.hit == "collect":
                options.append(st.tuples(st.just("collected"), st.just(t.output),
                                         st.sampled_from(sorted({value for _, value in t.rows}))))
            else:
                options.append(st.tuples(st.just("out"), st.just(t.output), st.sampled_from(["==", ">="]),
                                         st.integers(0, 4)))
        return st.one_of(options)

    conditions = st.recursive(
        leaves(),
        lambda sub: st.one_of(st.tuples(st.just("not"), sub),
                              st.tuples(st.sampled_from(["and", "or"]), st.lists(sub, min_size=2, max_size=3))),
        max_leaves=6)
    rules = draw(st.lists(conditions, min_size=1, max_size=5))
    return Model(numbers, booleans, enums, derived, tables, rules, draw(st.integers(0, len(rules) - 1)))


def patients(model: Model) -> st.SearchStrategy[dict[str, Any]]:
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for name, (kind, low, high) in model.numbers.items():
        if kind == "integer":
            value: st.SearchStrategy[Any] = st.integers(low, high)
        elif kind == "number":
            value = st.one_of(grid, st.floats(low, high, allow_nan=False))
        else:
            value = st.one_of(grid.map(lambda v: {"value": v, "unit": "mg"}),
                              st.sampled_from([0.0025, 0.0075, 0.01, 0.0195]).map(lambda v: {"value": v, "unit": "g"}))
        parts[name] = value
    for name in model.booleans:
        parts[name] = st.booleans()
    for name in model.enums:
        parts[name] = st.sampled_from(ENUM_VALUES)
    return st.fixed_dictionaries({}, optional=parts)  # a fact left out is unknown


# --- the test ---------------------------------------------------------------------------------


def _declared(env: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in env.items() if not k.startswith("_")}  # the step path also keeps its temporaries


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_path_agrees_with_the_model(data: Any) -> None:
    model = data.draw(models())
    guideline = engine.load_text(model.yaml(), "generated.yaml")
    compiled = guideline.compiled
    plan, checked_plan, _ = build_plans(compiled, match_table)
    for _ in range(8):
        facts = data.draw(patients(model))
        try:
            expected_env, expected_rows, expected_rules = model.evaluate(facts)
        except ModelError:
            values, _ = validate_facts(compiled, facts, DAY)
            with pytest.raises(engine.EvaluationError):
                decide(compiled, dict(values), DAY, None)
            with pytest.raises(PLAN_ERRORS):
                plan({**values, "today": DAY})
            continue
        values, _ = validate_facts(compiled, facts, DAY)
        env, rows, outcomes = decide(compiled, dict(values), DAY, None)  # the reference semantics
        context = f"\n{model.yaml()}\nfacts: {facts}"
        assert list(outcomes) == expected_rules and all(a is b for a, b in zip(outcomes, expected_rules, strict=True)), context
        assert rows == expected_rows, context
        for name, value in expected_env.items():
            assert env[name] == value, f"{name}: {context}"
        for rule, outcome in zip(compiled.rules, outcomes, strict=True):
            assert reference_eval(rule.when, env) is outcome, f"simpleeval on {rule.when.text}{context}"
        fast = plan({**values, "today": DAY})
        assert (fast[0], fast[1], tuple(fast[2])) == (_declared(env), rows, tuple(outcomes)), context
        try:
            checked = checked_plan(facts, DAY.toordinal(), DAY)
        except Slow:
            checked = None  # not the common shape: the full validation takes it (compared above)
        if checked is not None:
            assert (checked[0], checked[1], tuple(checked[2])) == (fast[0], fast[1], tuple(fast[2])), context
        result = guideline.evaluate(facts, on=DAY)
        assert result.recommendation_ids() == [f"rec{i}" for i, o in enumerate(expected_rules) if o is True]
        _explanations_agree(guideline, facts, context)
        for made, rule in ((r, compiled.rules[int(r.rule[1:])]) for r in result.recommendations):
            jinja = rule.then[0].templates["fr"].jinja_only().render(result.trace, 100_000)
            assert made.text == jinja, context


def _explanations_agree(guideline: engine.Guideline, facts: dict[str, Any], context: str) -> None:
    """The generated explanations equal the value-by-value ones; remembered needs equal full walks."""
    for lang in guideline.languages:
        result = guideline.evaluate(facts, on=DAY, lang=lang)
        explainer = result._explainer
        assert explainer is not None
        plain = explainer.json_values(generated=False)
        assert explainer.json_values(generated=True) == plain, f"{lang}: {context}"
        # the JSON text written directly (Result.to_json) is the one json.dumps writes of the dicts
        assert result.to_json() == json.dumps(result.to_dict(), ensure_ascii=False), f"{lang}: {context}"
        remembered = NeedsTracer(guideline.compiled, explainer.env)
        walked = NeedsTracer(guideline.compiled, explainer.env, remember=False)
        for rule in guideline.compiled.rules:
            assert remembered.missing(rule.when.tree) == walked.missing(rule.when.tree), f"{rule.id}: {context}"
