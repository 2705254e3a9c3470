"""The embedding API: load a guideline once, evaluate it for many patients.

``load`` runs the pipeline -- read, load YAML, validate against the schema,
compile -- and raises one :class:`GuidelineError` listing every problem.
The :class:`Guideline` it returns is immutable and safe to share between
threads; ``evaluate`` is a pure function of (guideline, facts, date, language).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from engine import bytecode
from engine.accel.codegen import build_plans
from engine.compile import compile_document
from engine.errors import Diagnostic, EvaluationError, GuidelineError
from engine.evaluate import decide_facts, evaluate, match_table
from engine.limits import DEFAULT_LIMITS, Limits
from engine.loading import Document, parse_yaml, read_source
from engine.model import CompiledGuideline
from engine.results import Result

__all__ = ["Decisions", "Guideline", "check_text", "load", "load_text", "run_pipeline"]


class Decisions:
    """What :meth:`Guideline.decide` returns: raw values, table rows and rule outcomes."""

    __slots__ = ("_ids", "_outcomes", "_rules", "tables", "values")

    def __init__(self, values: dict[str, Any], tables: dict[str, Any], ids: tuple[str, ...],
                 outcomes: tuple[Any, ...]):
        self.values = values  # every fact, derived value and table output (None = unknown)
        self.tables = tables  # table name -> row id, "otherwise", or None
        self._ids = ids
        self._outcomes = outcomes
        self._rules: dict[str, Any] | None = None

    @property
    def rules(self) -> dict[str, Any]:
        """Rule id -> True (fired), False, or None (undetermined)."""
        if self._rules is None:
            self._rules = dict(zip(self._ids, self._outcomes, strict=True))
        return self._rules

    @property
    def fired(self) -> list[str]:
        """Ids of the rules whose condition holds."""
        return [rule for rule, outcome in self.rules.items() if outcome is True]

    @property
    def undetermined(self) -> list[str]:
        """Ids of the rules that could not be decided."""
        return [rule for rule, outcome in self.rules.items() if outcome is None]


class Guideline:
    """A compiled guideline. Build it with :func:`load`; never mutated afterwards."""

    __slots__ = ("_checked_plan", "_compiled", "_limits", "_plan", "_plan_code", "_rule_ids")

    def __init__(self, compiled: CompiledGuideline, limits: Limits = DEFAULT_LIMITS, _plan_code: Any = None):
        self._compiled = compiled
        self._limits = limits
        # The whole plan as one function, plain and preceded by inline checks of
        # well-formed facts (the fast path of decide and evaluate). Its code
        # travels with a pickled guideline (see __reduce__ and engine.bytecode);
        # generated again when absent or from another Python version.
        self._plan, self._checked_plan, self._plan_code = build_plans(
            compiled, _match_outputs, None if _plan_code is None else bytecode.load(_plan_code))
        self._rule_ids = tuple(rule.id for rule in compiled.rules)

    @property
    def id(self) -> str:
        """The guideline's stable id."""
        return self._compiled.id

    @property
    def version(self) -> str:
        """The encoding's semantic version."""
        return self._compiled.version

    @property
    def languages(self) -> tuple[str, ...]:
        """Declared languages, primary first."""
        return self._compiled.languages

    @property
    def compiled(self) -> CompiledGuideline:
        """The frozen compiled form (for author tools: lint, test, diff)."""
        return self._compiled

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        """Non-fatal problems found at load (e.g. a missing translation)."""
        return self._compiled.warnings

    def evaluate(
        self,
        facts: Mapping[str, Any],
        *,
        on: dt.date | None = None,
        lang: str | None = None,
        sources: Mapping[str, str] | None = None,
        _doc: Document | None = None,
    ) -> Result:
        """Evaluate one patient's ``facts`` on date ``on`` (default: today).

        ``sources`` says where facts came from (for instance the FHIR resource,
        see :mod:`engine.fhir`); explanations show it. Raises
        :class:`FactsError` listing every problem with the facts (nothing is
        evaluated then), or :class:`EvaluationError`.
        """
        language = lang or self._compiled.languages[0]
        if language not in self._compiled.languages:
            raise ValueError(f"language '{language}' is not one of {', '.join(self._compiled.languages)}")
        try:
            return evaluate(self._compiled, facts, on or dt.date.today(), language, doc=_doc,
                            max_output_chars=self._limits.max_output_chars, plan=self._plan,
                            checked_plan=self._checked_plan, sources=sources)
        except (RecursionError, MemoryError) as exc:
            raise EvaluationError([_exhausted(_doc.file if _doc is not None else "<facts>", exc)]) from None

    def decide(self, facts: Mapping[str, Any], *, on: dt.date | None = None) -> Decisions:
        """Decisions only, without texts or explanations: the fast path for audits and batches.

        Facts are validated exactly as by :meth:`evaluate`.
        """
        day = on or dt.date.today()
        try:
            env, rows, outcomes, _, _ = decide_facts(self._compiled, facts, day, self._plan, self._checked_plan)
        except (RecursionError, MemoryError) as exc:
            raise EvaluationError([_exhausted("<facts>", exc)]) from None
        return Decisions(env, rows, self._rule_ids, outcomes)

    def evaluate_many(self, patients: Iterable[Mapping[str, Any]], *, on: dt.date | None = None,
                      lang: str | None = None) -> Iterator[Result]:
        """Evaluate patients one by one, lazily (a generator)."""
        for facts in patients:
            yield self.evaluate(facts, on=on, lang=lang)

    def __repr__(self) -> str:
        return f"<Guideline {self.id} {self.version}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Guideline, (self._compiled, self._limits, bytecode.dump(self._plan_code)))


def _match_outputs(table: Any, keys: tuple[Any, ...]) -> tuple[tuple[Any, ...], Any]:
    return match_table(table, keys)


def check_text(text: str, file: str, limits: Limits = DEFAULT_LIMITS) -> tuple[CompiledGuideline | None, list[Diagnostic]]:
    """Run load, validate and compile on ``text``; return the guideline or every problem."""
    try:
        _, compiled, problems = run_pipeline(text, file, limits)
    except (RecursionError, MemoryError) as exc:
        return None, [_exhausted(file, exc)]
    return compiled, problems


def _exhausted(file: str, exc: BaseException) -> Diagnostic:
    """A RecursionError or MemoryError as a diagnostic: the input asked for more than the machine gives."""
    what = "nested too deeply" if isinstance(exc, RecursionError) else "too large for the memory available"
    return Diagnostic(file, 0, 0, "resource.exhausted", f"the input is {what} to process",
                      hint="simplify it, or split it into smaller parts")


def run_pipeline(text: str, file: str, limits: Limits = DEFAULT_LIMITS
                 ) -> tuple[Document, CompiledGuideline | None, list[Diagnostic]]:
    """The stages up to compile, keeping the loaded document for author tools."""
    doc = parse_yaml(text, file, limits)
    problems = list(doc.diagnostics)
    if doc.data is None and not problems:
        problems.append(Diagnostic(file, 1, 1, "yaml.empty", "the document is empty"))
    if problems and doc.data is None:
        return doc, None, sorted(problems)
    from engine.schema import check_document

    schema_problems, broken = check_document(doc)
    problems.extend(schema_problems)
    if not isinstance(doc.data, dict):
        return doc, None, sorted(set(problems))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    compiled, compile_problems = compile_document(doc, limits, content_hash=digest, broken=broken)
    problems.extend(compile_problems)
    if problems:
        return doc, None, sorted(set(problems))
    return doc, compiled, []


def load_text(text: str, file: str = "<string>", *, limits: Limits = DEFAULT_LIMITS) -> Guideline:
    """Compile a guideline from YAML text; raise GuidelineError with every problem."""
    compiled, problems = check_text(text, file, limits)
    if compiled is None:
        raise GuidelineError(problems)
    return Guideline(compiled, limits)


def default_cache_dir() -> Path | None:
    """The compile cache folder for one-shot command-line runs (None when ``GUIDELINE_CACHE=0``)."""
    from engine.accel.cache import default_cache_dir as folder

    return folder()


def load(path: str | Path, *, limits: Limits = DEFAULT_LIMITS, cache_dir: str | Path | None = None) -> Guideline:
    """Read and compile the guideline at ``path``; raise GuidelineError with every problem.

    With ``cache_dir``, a compile stored there under the same content key is
    reused, and a new compile is stored (see :mod:`engine.cache`).
    """
    text, problems = read_source(path, limits)
    if text is None:
        raise GuidelineError(problems)
    if cache_dir is None:
        return load_text(text, str(path), limits=limits)
    from engine.accel.cache import cache_key, read_cached, write_cached

    folder = Path(cache_dir)
    key = cache_key(text, str(path), limits)
    guideline = read_cached(folder, key, Guideline)
    if guideline is None:
        guideline = load_text(text, str(path), limits=limits)
        write_cached(folder, key, guideline)  # with its plan's code: the next load skips code generation
    return guideline
