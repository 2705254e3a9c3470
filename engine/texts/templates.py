"""Explanation texts as compiled at load, and how they render for a patient.

A text is a Jinja template checked and compiled once (engine.sandbox). Texts
with no variable are rendered at load; most others have also been translated
into a Python function (engine.textgen), which renders them for a patient.
Anything else -- and any failure of a translated function -- is rendered by
Jinja in its sandbox, which reports the problem. Jinja itself is imported only
when it is needed, so evaluating a cached guideline does not pay for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine import bytecode
from engine.limits import DEFAULT_LIMITS, Limits
from engine.texts.formatting import UNKNOWN_WORD, fold_line, format_date, format_number, localized, tidy_text
from engine.texts.kleene import HELPERS

if TYPE_CHECKING:  # the sandbox (and Jinja) is imported only when a text is compiled or falls back
    from engine.texts.sandbox import TemplateProblem

__all__ = [
    "UNKNOWN_WORD",
    "CompiledTemplate",
    "TemplateRuntimeError",
    "compile_template",
    "format_date",
    "format_number",
    "localized",
    "text_function",
]


class TemplateRuntimeError(Exception):
    """Raised when a template fails at render time (turned into EvaluationError)."""


@dataclass(frozen=True)
class CompiledTemplate:
    """A template parsed and compiled once for one language."""

    lang: str
    text: str
    names: frozenset[str]
    code: Any = field(repr=False, compare=False)  # Jinja's compiled Python code object
    static: str | None = field(default=None, compare=False)  # the output, when the text uses no variable
    text_code: Any = field(default=None, repr=False, compare=False)  # the text translated to Python (textgen)
    fast: Any = field(default=None, repr=False, compare=False)  # its render(env) function
    template: Any = field(default=None, repr=False, compare=False)  # Jinja's template, made on first need

    def __post_init__(self) -> None:
        if self.text_code is not None and self.fast is None:
            object.__setattr__(self, "fast", text_function(self.text_code))

    @property
    def jinja(self) -> Any:
        """Jinja's template object (built from ``code`` the first time it is needed)."""
        if self.template is None:
            from engine.texts.sandbox import from_code

            object.__setattr__(self, "template", from_code(self.lang, self.code))
        return self.template

    def render(self, context: Mapping[str, Any], max_chars: int) -> str:
        """Render with ``context``; refuses sandbox violations and oversized output."""
        if self.static is not None:
            return self.static
        if self.fast is not None:
            out: str | None
            try:
                out = self.fast(context)
            except Exception:  # noqa: BLE001 - anything unusual: Jinja renders it and reports
                out = None
            if out is not None and len(out) <= max_chars:
                return out  # already tidied by the translated code
        from engine.texts.sandbox import RenderFailure, render

        try:
            out = render(self.jinja, context)
        except RenderFailure as exc:
            raise TemplateRuntimeError(str(exc)) from None
        if len(out) > max_chars:
            raise TemplateRuntimeError(f"template output is {len(out)} characters, more than {max_chars}")
        return tidy_text(out, "\n" not in self.text)

    def jinja_only(self) -> CompiledTemplate:
        """The same template without its translated function: every text rendered by Jinja (for checks)."""
        return CompiledTemplate(self.lang, self.text, self.names, self.code, self.static, template=self.template)

    def __reduce__(self) -> tuple[Any, ...]:
        # Jinja's code object and the translated text travel as marshal bytes:
        # restoring them skips parsing and code generation (see engine.bytecode).
        return (_restore, (self.lang, self.text, self.names, bytecode.dump(self.code), self.static,
                           _dump_text_code(self.text_code)))

    @property
    def branches(self) -> tuple[str, ...]:
        """Labels of the template's branches (each if/elif/else, implicit else included)."""
        from engine.texts.sandbox import instrumented

        return instrumented(self.lang, self.text)[1]

    def branches_taken(self, context: Mapping[str, Any]) -> set[str]:
        """Which branches rendering with ``context`` goes through (for coverage reports only).

        An instrumented copy of the template is compiled the first time; normal
        evaluation never uses it.
        """
        from engine.texts.sandbox import branches_taken

        return branches_taken(self.lang, self.text, context)


def compile_template(text: str, lang: str, available: set[str], max_chars: int, *,
                     lengths: Mapping[str, int | None] | None = None, limits: Limits = DEFAULT_LIMITS,
                     kinds: Mapping[str, tuple[str, tuple[str, ...]]] | None = None,
                     ) -> tuple[CompiledTemplate | None, list[TemplateProblem]]:
    """Parse, check and compile ``text`` (see :func:`engine.texts.sandbox.check_text`)."""
    from engine.texts.sandbox import check_text

    checked, problems = check_text(text, lang, available, max_chars, lengths=lengths, limits=limits, kinds=kinds)
    if checked is None:
        return None, problems
    return CompiledTemplate(lang, text, checked.names, checked.code, checked.static, checked.text_code,
                            template=checked.template), []


def _restore(lang: str, text: str, names: frozenset[str], code: Any, static: str | None,
             text_code: Any) -> CompiledTemplate:
    loaded = bytecode.load(code)
    translated = _load_text_code(text_code)
    if loaded is None or (translated is None and text_code is not None):
        # Pickled by another Python version: compile the (already checked) text again.
        from engine.texts import textgen
        from engine.texts.sandbox import environment

        loaded = environment(lang).compile(text)
        if text_code is not None:
            translated = textgen.translate(environment(lang).parse(text), lang, one_line="\n" not in text)
    return CompiledTemplate(lang, text, names, loaded, static, translated)


# --- translated texts at run time -------------------------------------------------


def _loop(items: Any) -> list[tuple[int, int, Any]]:
    values = list(items)
    return [(i, len(values), v) for i, v in enumerate(values)]


def text_function(text_code: Any) -> Callable[[Any], str]:
    """The ``render(env)`` function of a text translated by engine.textgen, with the helpers it reads."""
    code, constants, lang = text_code
    unknown = UNKNOWN_WORD.get(lang, "unknown")
    namespace: dict[str, Any] = {
        "__builtins__": {}, "_c": constants, "_num": format_number, "_date": format_date, "_loop": _loop,
        "_join": "".join, "_fold": fold_line, "_strip": str.strip,
        "_out": lambda value: unknown if value is None else str(value),
        **HELPERS,
    }
    exec(code, namespace)  # noqa: S102 - built from AST nodes by textgen.translate(), author text only as constants
    render: Callable[[Any], str] = namespace["render"]
    return render


def _dump_text_code(text_code: Any) -> Any:
    if text_code is None:
        return None
    code, constants, lang = text_code
    return bytecode.dump(code), constants, lang


def _load_text_code(data: Any) -> Any:
    """Translated code back from :func:`_dump_text_code`; None if there was none or it is from another Python."""
    if data is None:
        return None
    payload, constants, lang = data
    code = bytecode.load(payload)
    return None if code is None else (code, constants, lang)
