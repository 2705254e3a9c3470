"""Explanation templates: Jinja2 in its sandbox, compiled once at load.

Each language has its own sandboxed environment so number and date filters
follow the language's conventions (``3,5 mg`` in French, ``3.5 mg`` in
English). ``StrictUndefined`` turns a name that is not in the context into an
error; names are also checked at load against what the guideline declares,
so that error is found by the author, not by a patient.
"""

from __future__ import annotations

import datetime as dt
import marshal
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import did_you_mean

__all__ = ["localized", "TemplateProblem", "CompiledTemplate", "compile_template", "format_number", "format_date", "UNKNOWN_WORD"]

UNKNOWN_WORD = {"fr": "inconnu", "en": "unknown"}


def localized(texts: Any, lang: str, primary: str | None = None) -> str:
    """The text in ``lang``, else in the ``primary`` language, else the first given ("" if none)."""
    if not isinstance(texts, Mapping):
        return "" if texts is None else str(texts)
    return texts.get(lang) or (texts.get(primary) if primary else None) or next(iter(texts.values()), "")


def format_number(value: Any, lang: str, decimals: int | None = None) -> str:
    """A number as a clinician reads it in ``lang`` (decimal comma in French)."""
    if value is None:
        return UNKNOWN_WORD.get(lang, "unknown")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if decimals is None:
        text = f"{value:.6f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
    else:
        text = f"{value:.{decimals}f}"
    if lang == "fr":
        text = text.replace(".", ",")
        whole, _, frac = text.partition(",")
        sign = "-" if whole.startswith("-") else ""
        digits = whole.lstrip("-")
        if len(digits) > 4:  # French groups thousands with a (narrow) space from 10 000 on
            groups = []
            while digits:
                groups.insert(0, digits[-3:])
                digits = digits[:-3]
            digits = "\u202f".join(groups)
        text = sign + digits + ("," + frac if frac else "")
    return text


def format_date(value: Any, lang: str) -> str:
    """A date as written in ``lang`` (27/11/2026 in French, 2026-11-27 otherwise)."""
    if value is None:
        return UNKNOWN_WORD.get(lang, "unknown")
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y") if lang == "fr" else value.isoformat()
    return str(value)


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
    fast: Any = field(default=None, repr=False, compare=False)  # direct renderer for simple texts

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
                return self._tidy(out)
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
        return " ".join(out.split()) if "\n" not in self.text else out.strip()

    def __reduce__(self) -> tuple[Any, ...]:
        # Jinja's code object travels as marshal bytes: restoring it skips
        # parsing and code generation (same Python version only, see cache.py).
        return (_restore, (self.lang, self.text, self.names, marshal.dumps(self.code), self.static))

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


def _restore(lang: str, text: str, names: frozenset[str], code: bytes, static: str | None = None
             ) -> CompiledTemplate:
    loaded = marshal.loads(code)
    fast = _direct_renderer(environment(lang).parse(text), lang) if static is None else None
    return CompiledTemplate(lang, text, names, _from_code(lang, loaded), loaded, static, fast)


# --- direct rendering of simple texts ---------------------------------------------
# Most texts are words, {{ name }}, {{ name | num(1) }} and {% if %} on simple
# tests. For those, a tree of small closures built from the parsed template
# renders without Jinja's per-call context machinery. Anything else -- and any
# error -- goes to Jinja itself; a test checks that both give the same text.

_COMPARE = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "gt": lambda a, b: a > b,
            "gteq": lambda a, b: a >= b, "lt": lambda a, b: a < b, "lteq": lambda a, b: a <= b,
            "in": lambda a, b: a in b, "notin": lambda a, b: a not in b}


class _Unsupported(Exception):
    pass


def _direct_renderer(tree: nodes.Template, lang: str) -> Any:
    """A function env -> text equivalent to the template, or None if it uses more than the simple subset."""
    unknown = UNKNOWN_WORD.get(lang, "unknown")

    def expr(node: nodes.Node) -> Any:
        if isinstance(node, nodes.Name) and node.ctx == "load":
            name = node.name
            return lambda env: env[name]
        if isinstance(node, nodes.Const):
            value = node.value
            return lambda env: value
        if isinstance(node, nodes.Filter) and node.name in ("num", "date") and node.node is not None \
                and not node.kwargs and node.dyn_args is None and node.dyn_kwargs is None \
                and all(isinstance(a, nodes.Const) for a in node.args):
            inner = expr(node.node)
            args = [a.value for a in node.args]
            if node.name == "num":
                return lambda env: format_number(inner(env), lang, *args)
            return lambda env: format_date(inner(env), lang)
        if isinstance(node, nodes.Compare) and len(node.ops) == 1 and node.ops[0].op in _COMPARE:
            left, right, op = expr(node.expr), expr(node.ops[0].expr), _COMPARE[node.ops[0].op]
            return lambda env: op(left(env), right(env))
        if isinstance(node, nodes.Not):
            inner = expr(node.node)
            return lambda env: not inner(env)
        if isinstance(node, nodes.And):
            a, b = expr(node.left), expr(node.right)
            return lambda env: a(env) and b(env)
        if isinstance(node, nodes.Or):
            a, b = expr(node.left), expr(node.right)
            return lambda env: a(env) or b(env)
        if isinstance(node, nodes.List) and all(isinstance(i, nodes.Const) for i in node.items):
            items = [i.value for i in node.items]
            return lambda env: items
        raise _Unsupported

    def block(body: list[nodes.Node]) -> list[Any]:
        pieces: list[Any] = []
        for node in body:
            if isinstance(node, nodes.Output):
                for item in node.nodes:
                    if isinstance(item, nodes.TemplateData):
                        text = item.data
                        pieces.append(lambda env, text=text: text)
                    else:
                        value = expr(item)
                        pieces.append(lambda env, value=value: unknown if (v := value(env)) is None else str(v))
            elif isinstance(node, nodes.If):
                branches = [(expr(node.test), block(node.body))]
                branches += [(expr(e.test), block(e.body)) for e in node.elif_]
                fallback = block(node.else_)

                def choose(env: Any, branches: Any = branches, fallback: Any = fallback) -> str:
                    for test, parts in branches:
                        if test(env):
                            return "".join(p(env) for p in parts)
                    return "".join(p(env) for p in fallback)

                pieces.append(choose)
            else:
                raise _Unsupported
        return pieces

    try:
        parts = block(tree.body)
    except _Unsupported:
        return None
    return lambda env: "".join(p(env) for p in parts)


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
    code = env.compile(tree)
    template = _from_code(lang, code)
    static = None
    if all(isinstance(n, (nodes.Output, nodes.TemplateData)) for n in tree.find_all(nodes.Node)):
        # Plain text: rendered once here, never again per patient.
        static = CompiledTemplate(lang, text, frozenset(), template, code).render({}, max_chars)
    fast = _direct_renderer(tree, lang) if static is None else None
    return CompiledTemplate(lang, text, frozenset(used), template, code, static, fast), []


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
