"""Explanation templates: Jinja2 in its sandbox, compiled once at load.

Each language has its own sandboxed environment so number and date filters
follow the language's conventions (``3,5 mg`` in French, ``3.5 mg`` in
English). ``StrictUndefined`` turns a name that is not in the context into an
error; names are also checked at load against what the guideline declares,
so that error is found by the author, not by a patient.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from . import bytecode, textgen
from .errors import did_you_mean
from .formatting import UNKNOWN_WORD, format_date, format_number, localized, tidy_text

__all__ = ["localized", "TemplateProblem", "CompiledTemplate", "compile_template", "format_number", "format_date", "UNKNOWN_WORD"]

_MAX_PRODUCT_CHARS = 100_000
_MAX_EXPONENT = 100


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with '*' and '**' bounded so a template cannot
    allocate a gigabyte string or compute 9**9**9."""

    intercepted_binops = frozenset(["*", "**"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, (int, float)) and abs(right) > _MAX_EXPONENT:
                raise SecurityError(f"exponent {right} is larger than {_MAX_EXPONENT}")
            if isinstance(left, int) and isinstance(right, int) and left.bit_length() * abs(right) > 4096:
                raise SecurityError("the power is too large")
            return left**right
        for text, count in ((left, right), (right, left)):
            if isinstance(text, (str, list, tuple)) and isinstance(count, int) and len(text) * count > _MAX_PRODUCT_CHARS:
                raise SecurityError(f"repeating a value {count} times would exceed {_MAX_PRODUCT_CHARS} characters")
        return left * right


@lru_cache(maxsize=None)
def environment(lang: str) -> ImmutableSandboxedEnvironment:
    """The sandboxed Jinja environment for one language (shared, read-only)."""
    env = _Sandbox(
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        finalize=lambda v: UNKNOWN_WORD.get(lang, "unknown") if v is None else v,
    )
    env.filters["num"] = lambda v, decimals=None: format_number(v, lang, decimals)
    env.filters["date"] = lambda v: format_date(v, lang)
    # Only our own filters and a few harmless built-ins: nothing that reaches
    # attributes by name (attr, map with attribute=) or formats arbitrary objects.
    keep = {"num", "date", "default", "lower", "upper", "capitalize", "join", "length", "round", "abs", "int", "float", "trim", "e", "escape"}
    for name in list(env.filters):
        if name not in keep:
            del env.filters[name]
    env.globals.clear()
    return env


@dataclass(frozen=True)
class TemplateProblem:
    """A problem in one template; ``line`` is 1-based inside the template text."""

    code: str
    message: str
    line: int = 1
    hint: str = ""


@dataclass(frozen=True)
class CompiledTemplate:
    """A template parsed and compiled once for one language."""

    lang: str
    text: str
    names: frozenset[str]
    template: Any = field(repr=False, compare=False)
    code: Any = field(default=None, repr=False, compare=False)  # Jinja's compiled Python code object
    static: str | None = field(default=None, compare=False)  # the output, when the text uses no variable
    text_code: Any = field(default=None, repr=False, compare=False)  # the text translated to Python (textgen)
    fast: Any = field(default=None, repr=False, compare=False)  # its render(env) function

    def __post_init__(self) -> None:
        if self.text_code is not None and self.fast is None:
            object.__setattr__(self, "fast", textgen.load_function(self.text_code))

    def render(self, context: Mapping[str, Any], max_chars: int) -> str:
        """Render with ``context``; refuses sandbox violations and oversized output."""
        if self.static is not None:
            return self.static
        if self.fast is not None:
            try:
                out = self.fast(context)
            except Exception:  # noqa: BLE001 - anything unusual: Jinja renders it and reports
                out = None
            if out is not None and len(out) <= max_chars:
                return out  # already tidied by the translated code
        try:
            # shared=True: the context reads the caller's mapping instead of
            # copying it for each text (texts cannot assign: see compile_template).
            template = self.template
            out = template.environment.concat(template.root_render_func(template.new_context(context, shared=True)))
        except SecurityError as exc:
            raise TemplateRuntimeError(f"template refused by the sandbox: {exc}") from None
        except TemplateError as exc:
            raise TemplateRuntimeError(f"template failed: {exc}") from None
        except (RecursionError, MemoryError, OverflowError, ZeroDivisionError, TypeError, ValueError) as exc:
            raise TemplateRuntimeError(f"template failed: {type(exc).__name__}: {exc}") from None
        if len(out) > max_chars:
            raise TemplateRuntimeError(f"template output is {len(out)} characters, more than {max_chars}")
        return self._tidy(out)

    def _tidy(self, out: str) -> str:
        """One-line texts lose the line breaks of folded YAML; multi-line ones keep them."""
        return tidy_text(out, "\n" not in self.text)

    def __reduce__(self) -> tuple[Any, ...]:
        # Jinja's code object and the translated text travel as marshal bytes:
        # restoring them skips parsing and code generation (see engine.bytecode).
        return (_restore, (self.lang, self.text, self.names, bytecode.dump(self.code), self.static,
                           textgen.dumps(self.text_code)))

    @property
    def branches(self) -> tuple[str, ...]:
        """Labels of the template's branches (each if/elif/else, implicit else included)."""
        return _instrumented(self.lang, self.text)[1]

    def branches_taken(self, context: Mapping[str, Any]) -> set[str]:
        """Which branches rendering with ``context`` goes through (for coverage reports only).

        An instrumented copy of the template is compiled the first time; normal
        evaluation never uses it.
        """
        template, _ = _instrumented(self.lang, self.text)
        taken: set[str] = set()

        def hit(label: str) -> str:
            taken.add(label)
            return ""

        try:
            template.render({**context, "_branch_hit": hit})
        except (TemplateError, RecursionError, MemoryError, OverflowError, ZeroDivisionError, TypeError, ValueError):
            pass  # the evaluation itself reports template failures
        return taken


@lru_cache(maxsize=None)
def _instrumented(lang: str, text: str) -> tuple[Any, tuple[str, ...]]:
    """The template with a marker call at the start of every branch, and the branch labels."""
    env = environment(lang)
    tree = env.parse(text)
    labels: list[str] = []

    def mark(body: list[nodes.Node], label: str, lineno: int) -> None:
        labels.append(label)
        call = nodes.Call(nodes.Name("_branch_hit", "load", lineno=lineno), [nodes.Const(label, lineno=lineno)], [],
                          None, None, lineno=lineno)
        body.insert(0, nodes.Output([call], lineno=lineno))

    for number, node in enumerate(list(tree.find_all(nodes.If)), start=1):
        if getattr(node, "_engine_elif", False):
            continue
        mark(node.body, f"if #{number} (line {node.lineno}): true", node.lineno)
        for k, branch in enumerate(node.elif_, start=1):
            branch._engine_elif = True
            mark(branch.body, f"if #{number} (line {node.lineno}): elif {k}", branch.lineno)
        if not node.else_:
            node.else_ = []
        mark(node.else_, f"if #{number} (line {node.lineno}): else", node.lineno)
    return env.from_string(tree), tuple(labels)


class TemplateRuntimeError(Exception):
    """Raised when a template fails at render time (turned into EvaluationError)."""


def _from_code(lang: str, code: Any) -> Any:
    env = environment(lang)
    return env.template_class.from_code(env, code, env.make_globals(None))


def _restore(lang: str, text: str, names: frozenset[str], code: Any, static: str | None,
             text_code: Any) -> CompiledTemplate:
    loaded = bytecode.load(code)
    translated = textgen.loads(text_code)
    if loaded is None or (translated is None and text_code is not None):
        # Pickled by another Python version: compile the (already checked) text again.
        loaded = environment(lang).compile(text)
        if text_code is not None:
            translated = textgen.translate(environment(lang).parse(text), lang, one_line="\n" not in text)
    return CompiledTemplate(lang, text, names, _from_code(lang, loaded), loaded, static, translated)


def compile_template(
    text: str, lang: str, available: set[str], max_chars: int
) -> tuple[CompiledTemplate | None, list[TemplateProblem]]:
    """Parse and compile ``text``; check that every variable it uses is available."""
    if len(text) > max_chars:
        return None, [TemplateProblem("template.too-long", f"template is {len(text)} characters, more than {max_chars}")]
    env = environment(lang)
    try:
        tree = env.parse(text)
    except TemplateSyntaxError as exc:
        return None, [TemplateProblem("template.syntax", f"template syntax error: {exc.message}", exc.lineno or 1)]
    problems: list[TemplateProblem] = []
    # Jinja resolves `self` (the template reference) itself, so meta does not
    # report it; it is no guideline name, and is refused like any unknown one.
    self_refs = {"self"} if any(n.name == "self" for n in tree.find_all(nodes.Name)) else set()
    try:
        used = meta.find_undeclared_variables(tree) | self_refs
    except TemplateSyntaxError as exc:  # e.g. an unknown filter (TemplateAssertionError)
        return None, [TemplateProblem("template.syntax", f"template error: {exc.message}", exc.lineno or 1,
                                      "filters: " + ", ".join(sorted(env.filters)))]
    for name in sorted(used - available):
        problems.append(TemplateProblem(
            "template.unknown-name", f"unknown variable '{name}' in template", _first_line_of(tree, name),
            did_you_mean(name, available, "use a fact, derived value or table output name")))
    for node in tree.find_all(nodes.Getattr):
        if node.attr.startswith("_"):
            problems.append(TemplateProblem("template.not-allowed",
                                            f"attribute '{node.attr}' is not allowed", node.lineno))
    for node in tree.find_all(nodes.Getitem):
        if isinstance(node.arg, nodes.Const) and str(node.arg.value).startswith("_"):
            problems.append(TemplateProblem("template.not-allowed",
                                            f"item '{node.arg.value}' is not allowed", node.lineno))
    for kind, word in _REFUSED_TAGS:
        for node in tree.find_all(kind):
            problems.append(TemplateProblem("template.not-allowed", f"{word} is not allowed in a text", node.lineno,
                                            "texts use {{ name }}, filters, {% if %} and {% for %} only"))
    if problems:
        return None, problems
    plain = all(isinstance(n, (nodes.Output, nodes.TemplateData)) for n in tree.find_all(nodes.Node))
    # Translated before Jinja compiles: Jinja's optimizer rewrites the tree in place.
    text_code = None if plain else textgen.translate(tree, lang, one_line="\n" not in text)
    code = env.compile(tree)
    template = _from_code(lang, code)
    static = None
    if plain:
        # Plain text: rendered once here, never again per patient.
        static = CompiledTemplate(lang, text, frozenset(), template, code).render({}, max_chars)
    return CompiledTemplate(lang, text, frozenset(used), template, code, static, text_code), []


_REFUSED_TAGS = [
    (nodes.Assign, "{% set %}"), (nodes.AssignBlock, "{% set %}...{% endset %}"),
    (nodes.Macro, "{% macro %}"), (nodes.CallBlock, "{% call %}"), (nodes.Include, "{% include %}"),
    (nodes.Import, "{% import %}"), (nodes.FromImport, "{% from ... import %}"), (nodes.Extends, "{% extends %}"),
    (nodes.Block, "{% block %}"),
]


def _first_line_of(tree: nodes.Template, name: str) -> int:
    for node in tree.find_all(nodes.Name):
        if node.name == name:
            return node.lineno
    return 1
