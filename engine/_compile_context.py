"""The compile stage's working context: where problems are reported and names declared.

Internal to the compile stage (``engine.compile``): the compiler's section
methods and its table compiler (``engine._compile_tables``) build on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from engine.errors import Diagnostic
from engine.language.expressions import CompiledExpression, NameInfo, compile_expression
from engine.limits import Limits
from engine.loading import Document, format_path
from engine.model import FrozenDict, Where

__all__ = ["CompileContext"]


class CompileContext:
    """Collects problems with their positions, declares names, compiles expressions and texts' languages."""

    def __init__(self, doc: Document, limits: Limits, content_hash: str = "",
                 broken: Iterable[tuple[Any, ...]] = ()):
        self.content_hash = content_hash
        self.doc = doc
        self.limits = limits
        self.data: dict[str, Any] = doc.data
        self.errors: list[Diagnostic] = []
        self.warnings: list[Diagnostic] = []
        # Paths the schema already reported: parts under them are skipped (their
        # names are still declared) so one mistake is not reported twice.
        self.broken = [tuple(b) for b in broken]
        languages = self.data.get("languages")
        self.languages: tuple[str, ...] = (
            tuple(languages) if self.intact(("languages",)) and isinstance(languages, list) and languages else ("fr",))
        self.scope: dict[str, NameInfo] = {"today": NameInfo("date")}
        self.declared_at: dict[str, tuple[Any, ...]] = {}

    # helpers
    def intact(self, path: tuple[Any, ...]) -> bool:
        """True when the schema found no problem at or below ``path``."""
        return not any(b[: len(path)] == path for b in self.broken)

    def section(self, key: str, kind: type) -> Any:
        """A top-level section if it has the right shape, else an empty one."""
        value = self.data.get(key)
        return value if isinstance(value, kind) else kind()

    def usable(self, path: tuple[Any, ...], spec: Any) -> bool:
        """Whether an entry can be compiled; if not, its name is still declared."""
        if isinstance(spec, dict) and self.intact(path):
            return True
        name = path[-1]
        if isinstance(name, str) and path[0] in ("facts", "derived") and name not in self.declared_at:
            self.declared_at[name] = path
            self.scope[name] = NameInfo("any")
        return False

    @property
    def kinds(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        """Each name's type and enum values, for the checks of what texts compare (engine.texts)."""
        return {name: (info.type, info.values) for name, info in self.scope.items()}

    def error(self, path: tuple[Any, ...], code: str, message: str, hint: str = "", **kw: Any) -> None:
        self.errors.append(self.doc.diagnostic(path, code, message, hint=hint, **kw))

    def warn(self, path: tuple[Any, ...], code: str, message: str, hint: str = "", key: bool = False) -> None:
        self.warnings.append(self.doc.diagnostic(path, code, message, hint=hint, severity="warning", key=key))

    def where(self, path: tuple[Any, ...]) -> Where:
        pos = self.doc.position(path)
        return Where(self.doc.file, pos.line, pos.col)

    def text(self, path: tuple[Any, ...], value: Any, *, required: bool = False) -> Mapping[str, str]:
        if value is None:
            return FrozenDict({})
        primary = self.languages[0]
        if primary not in value:
            self.error(path, "text.missing-language", f"text has no '{primary}' version (the primary language)",
                       key=True)
        for lang in self.languages[1:]:
            if lang not in value:
                self.warn(path, "text.missing-translation", f"text has no '{lang}' translation", key=True)
        for lang in value:
            if lang not in self.languages:
                self.warn(path + (lang,), "text.undeclared-language",
                          f"language '{lang}' is not declared in languages")
        return FrozenDict(dict(value))

    def declare(self, name: str, info: NameInfo, path: tuple[Any, ...]) -> None:
        if name in self.declared_at:
            first = self.doc.position(self.declared_at[name], key=True)
            self.error(path, "name.duplicate", f"'{name}' is already declared (line {first.line})", key=True)
            return
        if name == "today":
            self.error(path, "name.reserved", "'today' is reserved for the evaluation date", key=True)
            return
        self.declared_at[name] = path
        self.scope[name] = info

    def expression(self, path: tuple[Any, ...], text: str, expect: str | None = None) -> CompiledExpression | None:
        compiled, problems = compile_expression(text, self.scope, expect=expect, limits=self.limits)
        for p in problems:
            line, col = self.locate(path, 1, p.col, folded=True)
            self.error_at(path, line, col, p.code, p.message, p.hint)
        return compiled

    def locate(self, path: tuple[Any, ...], line: int, col: int, *, folded: bool = False) -> tuple[int, int]:
        """File line and column of 1-based (line, col) inside the scalar at ``path``.

        Block scalars (| and >) start on the line after their indicator; an
        expression is read as one line, so for it (``folded``) the column is
        walked across the block's lines.
        """
        pos = self.doc.position(path)
        if pos.style in ("|", ">"):
            file_line = pos.line + 1
            offset = col - 1
            if folded:
                while file_line <= len(self.doc.lines):
                    content = self.doc.source_line(file_line).strip()
                    if offset <= len(content):
                        break
                    offset -= len(content) + 1
                    file_line += 1
            else:
                file_line += line - 1
            text = self.doc.source_line(file_line)
            return file_line, len(text) - len(text.lstrip()) + 1 + offset
        quote = 1 if pos.style in ("'", '"') else 0
        return pos.line + line - 1, pos.col + quote + col - 1

    def error_at(self, path: tuple[Any, ...], line: int, col: int, code: str, message: str, hint: str = "") -> None:
        self.errors.append(Diagnostic(self.doc.file, line, col, code, message, path=format_path(path), hint=hint,
                                      source_line=self.doc.source_line(line)))
