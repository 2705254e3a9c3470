"""Provenance checks: every rule cites its source; source notes are listed."""

from __future__ import annotations

from collections.abc import Iterator

from engine.authoring.lint.registry import Context, check
from engine.errors import Diagnostic


@check("rule-no-source", "warning")
def rule_no_source(ctx: Context) -> Iterator[Diagnostic]:
    """A rule with no ``source`` (section, table or box of the source document).

    Failing: a rule without ``source:``. Passing: ``source: {section: "2.4", table: Tableau 2}``.
    """
    for i, rule in enumerate(ctx.guideline.rules):
        if not rule.source and not all(rec.source for rec in rule.then):
            yield ctx.finding(("rules", i, "id"), "rule-no-source", f"rule '{rule.id}' cites no source",
                              "add source: {section: ..., table: ...}")


@check("source-note", "info")
def source_note(ctx: Context) -> Iterator[Diagnostic]:
    """Every recorded ambiguity or tension of the source, so reviewers see each decision.

    Not a problem: an ``info`` finding per entry of ``notes``, with its decision.
    """
    for i, note in enumerate(ctx.guideline.notes):
        text = note["text"].get(ctx.guideline.languages[0], "")
        decision = note["decision"].get(ctx.guideline.languages[0], "")
        yield ctx.finding(("notes", i, "id"), "source-note",
                          f"[{note.get('kind', 'note')}] {note['id']}: {text}", f"decision: {decision}")


@check("note-unused", "warning")
def note_unused(ctx: Context) -> Iterator[Diagnostic]:
    """A note that no rule refers to (``notes: [id]``), so no output can cite it.

    Failing: a note whose id appears in no rule's ``notes``. Passing: each note is cited.
    """
    cited = {n for rule in ctx.guideline.rules for n in rule.notes}
    for i, note in enumerate(ctx.guideline.notes):
        if note["id"] not in cited:
            yield ctx.finding(("notes", i, "id"), "note-unused", f"note '{note['id']}' is cited by no rule",
                              "add its id to the notes of the rules it concerns")
