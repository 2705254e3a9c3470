"""Jinja's sandbox, configured for guideline texts (the Jinja side of engine.templates).

Each language has its own sandboxed environment so number and date filters
follow the language's conventions (``3,5 mg`` in French, ``3.5 mg`` in
English). ``StrictUndefined`` turns a name that is not in the context into an
error. Jinja is imported only where it is needed -- compiling a guideline,
rendering a text the translated functions of engine.textgen do not cover, or
reporting template branches -- so that evaluating a cached guideline does not
pay for importing it.
"""

from __future__ import annotations

import math
import re
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.errors import did_you_mean
from engine.limits import DEFAULT_LIMITS, Limits
from engine.texts import textgen
from engine.texts.formatting import UNKNOWN_WORD, format_date, format_number, tidy_text
from engine.texts.kleene import HELPERS, TESTS
from engine.texts.threevalued import column_of, literal_problems, three_valued, token_columns

__all__ = [
    "CheckedText",
    "RenderFailure",
    "TemplateProblem",
    "branches_taken",
    "check_text",
    "environment",
    "from_code",
    "instrumented",
    "iterations",
    "render",
]

_MAX_PRODUCT_CHARS = 100_000
_MAX_EXPONENT = 100
MAX_FIELD_WIDTH = 1_000  # a width or precision in a %-format, or a str.ljust/center/zfill width
MAX_ROUND_DIGITS = 15  # the round filter's precision, either way
# A %-format field: its width and precision (digits or *).
_PRINTF_FIELD = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[a-zA-Z%]")
_PADDING_METHODS = frozenset({"ljust", "rjust", "center", "zfill"})


def _check_printf(text: str) -> None:
    """Refuse a %-format whose fields could build a huge string (before it is built)."""
    for match in _PRINTF_FIELD.finditer(text):
        for part in match.groups():
            if part == "*" or (part is not None and int(part) > MAX_FIELD_WIDTH):
                raise SecurityError(f"a %-format width or precision above {MAX_FIELD_WIDTH} is not allowed")


def _check_str_call(method: str, text: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse a str method call whose result could be huge, before it runs."""
    if method in ("format", "format_map"):
        raise SecurityError("str.format is not allowed in texts: write the words around {{ value | num }}")
    if method in _PADDING_METHODS:
        width = args[0] if args else kwargs.get("width", 0)
        if isinstance(width, int) and width > MAX_FIELD_WIDTH:
            raise SecurityError(f"{method} with a width above {MAX_FIELD_WIDTH} is not allowed")
    elif method == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(size, int) and size > 100:
            raise SecurityError("expandtabs with a tab size above 100 is not allowed")
    elif method == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        count = text.count(args[0]) if args[0] else len(text) + 1
        if len(args) > 2 and isinstance(args[2], int) and args[2] >= 0:
            count = min(count, args[2])
        if len(text) + count * len(args[1]) > _MAX_PRODUCT_CHARS:
            raise SecurityError(f"this replace would build more than {_MAX_PRODUCT_CHARS} characters")


def _bounded_round(value: Any, precision: Any = 0, method: str = "common") -> Any:
    """Jinja's round filter, with the precision bounded (a huge one computes 10 ** precision)."""
    if not isinstance(precision, int) or isinstance(precision, bool) or abs(precision) > MAX_ROUND_DIGITS:
        raise SecurityError(f"round takes a whole number of digits between -{MAX_ROUND_DIGITS} and {MAX_ROUND_DIGITS}")
    if method not in ("common", "ceil", "floor"):
        raise SecurityError("round's method is common, ceil or floor")
    if method == "common":
        return round(value, precision)
    scale = 10**precision
    return (math.ceil if method == "ceil" else math.floor)(value * scale) / scale


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with everything that could build a huge value or
    loop for long bounded before it runs: '*' and '**' (no gigabyte string, no
    9**9**9), '%'-formats (widths and precisions), the str methods that pad or
    replace, str.format (refused), the round filter's precision."""

    intercepted_binops = frozenset(["*", "**", "%"])

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(__obj, "__self__", None)
        if type(owner) is str:
            _check_str_call(getattr(__obj, "__name__", ""), owner, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Any:
        """str.format and str.format_map, refused (a field width builds any size of string)."""
        if getattr(value, "__name__", None) in ("format", "format_map") and isinstance(
                getattr(value, "__self__", None), str):
            def refused(*_: Any, **__: Any) -> str:
                raise SecurityError("str.format is not allowed in texts: write the words around {{ value | num }}")
            return refused
        return None

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "%":
            if isinstance(left, str):
                _check_printf(left)
            return left % right
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


@cache
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
    env.filters["round"] = _bounded_round
    # Only our own filters and a few harmless built-ins: nothing that reaches
    # attributes by name (attr, map with attribute=) or formats arbitrary objects.
    keep = {"num", "date", "default", "lower", "upper", "capitalize", "join", "length", "round", "abs", "int", "float",
            "trim", "e", "escape"}
    for name in list(env.filters):
        if name not in keep:
            del env.filters[name]
    env.globals.clear()
    # The three-valued connectives the rewritten conditions call, and `is unknown` / `is known`
    # (engine.texts.threevalued); authors' own names starting with '_' are unknown names.
    env.globals.update(HELPERS)
    env.tests.update(TESTS)
    return env


class RenderFailure(Exception):
    """A text failed to render in the sandbox; the message says why."""


def from_code(lang: str, code: Any) -> Any:
    """A Jinja template from its compiled code."""
    env = environment(lang)
    return env.template_class.from_code(env, code, env.make_globals(None))


# What rendering a checked text can still raise from Python itself.
_PYTHON_ERRORS = (RecursionError, MemoryError, OverflowError, ZeroDivisionError, TypeError, ValueError)


def render(template: Any, context: Mapping[str, Any]) -> str:
    """Render ``template`` reading ``context``; every failure becomes :class:`RenderFailure`."""
    try:
        # shared=True: the context reads the caller's mapping instead of copying it for each text
        # (texts cannot assign: see compile_template); it then skips the globals, so the
        # three-valued connectives are chained after the patient's values.
        values = ChainMap(context, HELPERS)  # type: ignore[arg-type]
        return str(template.environment.concat(template.root_render_func(template.new_context(values, shared=True))))
    except SecurityError as exc:
        raise RenderFailure(f"template refused by the sandbox: {exc}") from None
    except TemplateError as exc:
        raise RenderFailure(f"template failed: {exc}") from None
    except _PYTHON_ERRORS as exc:
        raise RenderFailure(f"template failed: {type(exc).__name__}: {exc}") from None


def branches_taken(lang: str, text: str, context: Mapping[str, Any]) -> set[str]:
    """Which branches of ``text`` rendering with ``context`` goes through (see :func:`instrumented`)."""
    template, _ = instrumented(lang, text)
    taken: set[str] = set()

    def hit(label: str) -> str:
        taken.add(label)
        return ""

    try:
        template.render({**context, "_branch_hit": hit})
    except (TemplateError, *_PYTHON_ERRORS):
        pass  # the evaluation itself reports template failures
    return taken


@cache
def instrumented(lang: str, text: str) -> tuple[Any, tuple[str, ...]]:
    """The template with a marker call at the start of every branch, and the branch labels."""
    env = environment(lang)
    tree = env.parse(text)
    labels: list[str] = []

    def mark(body: list[nodes.Node], label: str, lineno: int) -> None:
        labels.append(label)
        call = nodes.Call(nodes.Name("_branch_hit", "load", lineno=lineno), [nodes.Const(label, lineno=lineno)], [],
                          None, None, lineno=lineno)
        body.insert(0, nodes.Output([call], lineno=lineno))

    elifs: set[int] = set()  # ids of the If nodes Jinja uses for elif branches: counted with their if
    for number, node in enumerate(list(tree.find_all(nodes.If)), start=1):
        if id(node) in elifs:
            continue
        mark(node.body, f"if #{number} (line {node.lineno}): true", node.lineno)
        for k, branch in enumerate(node.elif_, start=1):
            elifs.add(id(branch))
            mark(branch.body, f"if #{number} (line {node.lineno}): elif {k}", branch.lineno)
        if not node.else_:
            node.else_ = []
        mark(node.else_, f"if #{number} (line {node.lineno}): else", node.lineno)
    return env.from_string(three_valued(tree)), tuple(labels)


@dataclass(frozen=True)
class TemplateProblem:
    """A problem in one template; ``line`` and ``col`` are 1-based inside the template text."""

    code: str
    message: str
    line: int = 1
    hint: str = ""
    col: int = 1


class CheckedText(NamedTuple):
    """What checking and compiling a text gives (engine.texts.templates makes it a CompiledTemplate)."""

    names: frozenset[str]  # the guideline names the text reads
    code: Any  # Jinja's compiled Python code object
    static: str | None  # the output, when the text uses no variable
    text_code: Any  # the text translated to Python (textgen), or None
    template: Any  # Jinja's template object


def check_text(
    text: str, lang: str, available: set[str], max_chars: int, *,
    lengths: Mapping[str, int | None] | None = None, limits: Limits = DEFAULT_LIMITS,
    kinds: Mapping[str, tuple[str, tuple[str, ...]]] | None = None,
) -> tuple[CheckedText | None, list[TemplateProblem]]:
    """Parse and compile ``text``; check that every variable it uses is available.

    ``kinds`` gives each name's type and enum values: what a text compares is
    checked against them (engine.texts.threevalued). ``lengths`` bounds how many items a loop over each name can go through
    (see :func:`iterations`); a text whose loops could run more than
    ``limits.max_template_iterations`` times in all is refused.
    """
    if len(text) > max_chars:
        return None, [TemplateProblem("template.too-long", f"template is {len(text)} characters, more than {max_chars}")]
    env = environment(lang)
    try:
        tree = env.parse(text)
    except TemplateSyntaxError as exc:
        return None, [TemplateProblem("template.syntax", f"template syntax error: {exc.message}", exc.lineno or 1)]
    except (ValueError, OverflowError, RecursionError, MemoryError) as exc:  # e.g. a 5 000-digit number
        return None, [TemplateProblem("template.too-large", f"the text cannot be read: {type(exc).__name__}: "
                                      f"{str(exc)[:120]}", 1, "numbers in texts stay below 4 300 digits")]
    problems: list[TemplateProblem] = []
    # Jinja resolves `self` (the template reference) itself, so meta does not
    # report it; it is no guideline name, and is refused like any unknown one.
    self_refs = {"self"} if any(n.name == "self" for n in tree.find_all(nodes.Name)) else set()
    try:
        used = meta.find_undeclared_variables(tree) | self_refs
    except TemplateSyntaxError as exc:  # e.g. an unknown filter (TemplateAssertionError)
        return None, [TemplateProblem("template.syntax", f"template error: {exc.message}", exc.lineno or 1,
                                      "filters: " + ", ".join(sorted(env.filters)))]
    columns = token_columns(list(env.lex(text)), text)
    for name in sorted(used - available):
        line, col = column_of(columns, _first_line_of(tree, name), name, ("name",))
        problems.append(TemplateProblem(
            "template.unknown-name", f"unknown variable '{name}' in template", line,
            did_you_mean(name, available, "use a fact, derived value or table output name"), col))
    for found, message, first, literal, hint in literal_problems(tree, kinds or {}):
        line, col = column_of(columns, first, literal, ("string", "integer", "float"))
        problems.append(TemplateProblem(found, message, line, hint, col))
    for attribute in tree.find_all(nodes.Getattr):
        if attribute.attr.startswith("_"):
            problems.append(TemplateProblem("template.not-allowed",
                                            f"attribute '{attribute.attr}' is not allowed", attribute.lineno))
    for item in tree.find_all(nodes.Getitem):
        if isinstance(item.arg, nodes.Const) and str(item.arg.value).startswith("_"):
            problems.append(TemplateProblem("template.not-allowed",
                                            f"item '{item.arg.value}' is not allowed", item.lineno))
    for kind, word in _REFUSED_TAGS:
        for tag in tree.find_all(kind):
            problems.append(TemplateProblem("template.not-allowed", f"{word} is not allowed in a text", tag.lineno,
                                            "texts use {{ name }}, filters, {% if %} and {% for %} only"))
    if not problems:
        count, line = iterations(tree, lengths or {}, limits.max_scalar_chars)
        max_iterations = limits.max_template_iterations
        if count > max_iterations:
            problems.append(TemplateProblem(
                "template.too-many-iterations",
                f"the loops of this text could run {_grouped(count)} times, more than {_grouped(max_iterations)}",
                line, "loop over list facts (each holds its declared values at most once), and do not nest loops "
                      "over long texts"))
    if problems:
        return None, problems
    plain = all(isinstance(n, (nodes.Output, nodes.TemplateData)) for n in tree.find_all(nodes.Node))
    three_valued(tree)
    # Translated before Jinja compiles: Jinja's optimizer rewrites the tree in place.
    text_code = None if plain else textgen.translate(tree, lang, one_line="\n" not in text)
    code = env.compile(tree)
    template = from_code(lang, code)
    static = None
    if plain:
        # Plain text: rendered once here, never again per patient.
        static = tidy_text(render(template, {}), "\n" not in text)
        if len(static) > max_chars:
            return None, [TemplateProblem("template.too-long",
                                          f"template output is {len(static)} characters, more than {max_chars}")]
    return CheckedText(frozenset(used), code, static, text_code, template), []


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


def iterations(tree: nodes.Template, lengths: Mapping[str, int | None], unknown: int) -> tuple[int, int]:
    """(most loop iterations one rendering can run, line of the costliest outermost loop).

    Jinja's sandbox bounds what each operation may do, not how often a loop
    runs, and ten nested loops over ten letters would run ten billion times: the
    bound is checked here, at load. A loop over a name goes through at most
    ``lengths[name]`` items; over a literal, its length; over anything else
    (a filter, a loop variable, an unknown name), ``unknown`` items -- as many as
    a YAML scalar may hold.
    """

    def items(node: nodes.Node, loop_variables: frozenset[str]) -> int:
        if isinstance(node, nodes.Name):
            bound = None if node.name in loop_variables else lengths.get(node.name)
            return unknown if bound is None else bound
        if isinstance(node, nodes.Const):
            return len(node.value) if isinstance(node.value, (str, list, tuple, dict)) else 0
        if isinstance(node, (nodes.List, nodes.Tuple, nodes.Dict)):
            return len(node.items)
        return unknown

    def cost(node: nodes.Node, loop_variables: frozenset[str]) -> int:
        if isinstance(node, nodes.For):
            inner = loop_variables | {n.name for n in node.target.find_all(nodes.Name)}
            body = sum(cost(child, inner) for child in node.body)
            otherwise = sum(cost(child, loop_variables) for child in node.else_)
            return items(node.iter, loop_variables) * (1 + body) + otherwise
        return sum(cost(child, loop_variables) for child in node.iter_child_nodes())

    worst, line = 0, 1
    total = 0
    for loop in _outermost_loops(tree):
        spent = cost(loop, frozenset())
        total += spent
        if spent > worst:
            worst, line = spent, loop.lineno
    return total, line


def _outermost_loops(node: nodes.Node) -> list[nodes.For]:
    found: list[nodes.For] = []
    for child in node.iter_child_nodes():
        if isinstance(child, nodes.For):
            found.append(child)
        else:
            found.extend(_outermost_loops(child))
    return found


def _grouped(n: int) -> str:
    return f"{n:,}".replace(",", " ")
