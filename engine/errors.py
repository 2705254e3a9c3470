"""Diagnostics and the error hierarchy.

A :class:`Diagnostic` is a value: a stable dotted code, a message, a severity
and a 1-based location. Stages *collect* diagnostics and raise one error that
carries all of them, so an author sees every problem in one run.

Two branches under one root:

* :class:`GuidelineError` -- problems in the guideline file, found before any
  patient is evaluated (YAML, schema, expressions, templates, cycles).
* :class:`FactsError` / :class:`EvaluationError` -- problems with one
  patient's facts, or at evaluation time.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Diagnostic",
    "EngineError",
    "EvaluationError",
    "FactsError",
    "GuidelineError",
    "did_you_mean",
]


def did_you_mean(word: Any, choices: Iterable[str], otherwise: str = "") -> str:
    """``did you mean 'x'?`` for the closest of ``choices``, else ``otherwise``."""
    close = difflib.get_close_matches(str(word), sorted(choices), n=1)
    return f"did you mean '{close[0]}'?" if close else otherwise


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem found in a file, with where it is and how to fix it.

    ``line`` and ``col`` are 1-based; 0 means "unknown" (for example a problem
    with a whole facts document passed as a Python dict).
    """

    file: str
    line: int
    col: int
    code: str
    message: str
    severity: str = "error"
    path: str = ""
    hint: str = ""
    source_line: str = field(default="", compare=False)
    source_col: int = field(default=0, compare=False, repr=False)  # the caret's column in source_line (0: col)

    def __post_init__(self) -> None:
        # Quote a window around the column, not a whole (possibly megabyte-long) line.
        text = self.source_line
        if _UNSEEN.search(text):  # quoted, a reordering or hidden character would act on the terminal
            text = _UNSEEN.sub("\ufffd", text)
            object.__setattr__(self, "source_line", text)
        if len(text) > QUOTE_CHARS:
            at = max(self.col - 1, 0)
            start = max(0, min(at - QUOTE_CHARS // 2, len(text) - QUOTE_CHARS))
            window = text[start:start + QUOTE_CHARS]
            prefix = "…" if start > 0 else ""
            suffix = "…" if start + QUOTE_CHARS < len(text) else ""
            object.__setattr__(self, "source_line", prefix + window + suffix)
            object.__setattr__(self, "source_col", at - start + len(prefix) + 1)

    def location(self) -> str:
        """``file:line:col`` (line and col left out when unknown)."""
        if self.line:
            return f"{self.file}:{self.line}:{self.col}"
        return self.file

    def format(self, *, show_source: bool = True) -> str:
        """Render the one way diagnostics are shown everywhere."""
        text = f"{self.location()}: {self.severity}: {self.code}: {self.message}"
        if show_source and self.source_line:
            caret = " " * max((self.source_col or self.col) - 1, 0) + "^"
            text += f"\n    {self.source_line}\n    {caret}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with stable keys."""
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "path": self.path,
            "hint": self.hint,
        }

    def __str__(self) -> str:
        return self.format(show_source=False)


QUOTE_CHARS = 160  # how much of a source line a diagnostic quotes (a window around its column)
# Characters a reviewer cannot see or that reorder what they read: bidirectional
# controls (the "Trojan Source" characters), NUL and the other C0/C1 controls but tab
# and line breaks. engine.loading refuses them in every value and key.
_HIDDEN_CLASS = "\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
HIDDEN_CHARACTERS = re.compile(f"[{_HIDDEN_CLASS}]")
_UNSEEN = re.compile(f"[\r{_HIDDEN_CLASS}]")  # a quoted line shows a stray carriage return replaced too


class EngineError(Exception):
    """Root of every error the engine raises on purpose."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics: tuple[Diagnostic, ...] = tuple(sorted(diagnostics))
        super().__init__(self._summary())

    def _summary(self) -> str:
        count = len(self.diagnostics)
        head = f"{count} problem{'s' if count != 1 else ''}"
        return head + ":\n" + "\n".join(d.format(show_source=False) for d in self.diagnostics)

    def format(self) -> str:
        """Every diagnostic, with its source line and hint."""
        return "\n".join(d.format() for d in self.diagnostics)


class GuidelineError(EngineError):
    """The guideline file is not valid; nothing was compiled."""


class FactsError(EngineError):
    """The facts given for a patient are not valid; nothing was evaluated."""


class EvaluationError(EngineError):
    """Evaluation could not complete (e.g. a division by zero on valid facts)."""
