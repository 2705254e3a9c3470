"""``guideline lint``: static checks beyond the schema, one module per family.

Each check is a function registered with :func:`check` under a stable
kebab-case id; its docstring is its documentation (what it finds, a failing
and a passing example). Checks *yield* findings, which are diagnostics with
the check's id as code, so every finding of every check is reported in one
run, sorted by position.

A finding can be silenced on its line, or the line above, with a comment that
gives a reason::

    # lint: ignore untested-enum-value -- 'male' is the default branch of the formula

An ignore without a reason is itself a finding (``lint-ignore-reason``).
"""

from __future__ import annotations

import re
from pathlib import Path

# The check modules register themselves in CHECKS when imported.
from engine.authoring.lint import provenance, rules, tables, usage  # noqa: F401
from engine.authoring.lint.registry import CHECKS, Check, Context, check
from engine.errors import Diagnostic
from engine.loading import Document

__all__ = ["CHECKS", "Check", "Context", "check", "lint_file", "lint_text"]


_IGNORE = re.compile(r"#\s*lint:\s*ignore\s+([a-z0-9-]+(?:\s*,\s*[a-z0-9-]+)*)\s*(?:--\s*(\S.*))?$")


def _suppressed(finding: Diagnostic, doc: Document) -> tuple[bool, Diagnostic | None]:
    for line in (finding.line, finding.line - 1):
        match = _IGNORE.search(doc.source_line(line))
        if match and finding.code in [c.strip() for c in match.group(1).split(",")]:
            if not match.group(2):
                return True, Diagnostic(doc.file, line, doc.source_line(line).index("#") + 1, "lint-ignore-reason",
                                        f"ignoring {finding.code} needs a reason after '--'", severity="warning",
                                        hint="# lint: ignore <id> -- why this is right here")
            return True, None
    return False, None


def run_checks(ctx: Context, only: set[str] | None = None) -> list[Diagnostic]:
    """Every finding of every (or the selected) check, minus the ignored ones."""
    findings: list[Diagnostic] = list(ctx.guideline.warnings)
    for check_ in CHECKS.values():
        if only is None or check_.id in only:
            findings.extend(check_.run(ctx))
    kept: list[Diagnostic] = []
    for finding in findings:
        hidden, extra = _suppressed(finding, ctx.doc)
        if extra is not None:
            kept.append(extra)
        if not hidden:
            kept.append(finding)
    return sorted(set(kept))


def lint_text(text: str, file: str) -> tuple[list[Diagnostic], bool]:
    """Lint guideline ``text``; return (findings, loaded). Load errors are returned as findings."""
    from engine.guideline import run_pipeline

    doc, compiled, problems = run_pipeline(text, file)
    if compiled is None:
        return problems, False
    return run_checks(Context(compiled, doc)), True


def lint_file(path: str | Path) -> tuple[list[Diagnostic], bool]:
    """Lint the guideline file at ``path``."""
    from engine.loading import read_source

    text, problems = read_source(path)
    if text is None:
        return problems, False
    return lint_text(text, str(path))

