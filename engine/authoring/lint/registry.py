"""The lint check registry: what a check reads and how it is registered.

Kept apart from the runner (``engine.authoring.lint``) so that the check
modules import it without importing the package that imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from engine.errors import Diagnostic
from engine.loading import Document
from engine.model import CompiledGuideline

__all__ = ["CHECKS", "Check", "Context", "check"]


@dataclass(frozen=True)
class Context:
    """What a check reads: the compiled guideline and the loaded document."""

    guideline: CompiledGuideline
    doc: Document

    def finding(self, path: tuple[Any, ...], check_id: str, message: str, hint: str = "", *, key: bool = False,
                severity: str | None = None) -> Diagnostic:
        """A finding located at ``path`` in the guideline file."""
        return self.doc.diagnostic(path, check_id, message, hint=hint, key=key,
                                   severity=severity or CHECKS[check_id].severity)


@dataclass(frozen=True)
class Check:
    """A registered check."""

    id: str
    severity: str
    run: Callable[[Context], Iterator[Diagnostic]]

    @property
    def doc(self) -> str:
        """The check's documentation (its docstring)."""
        return (self.run.__doc__ or "").strip()


CHECKS: dict[str, Check] = {}


CheckFunction = Callable[[Context], Iterator[Diagnostic]]


def check(check_id: str, severity: str) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check function under ``check_id`` with a default severity."""

    def register(fn: CheckFunction) -> CheckFunction:
        CHECKS[check_id] = Check(check_id, severity, fn)
        return fn

    return register
