"""Rendering of ``guideline diff`` reports: terminal text, pull-request Markdown, JSON."""

from __future__ import annotations

import json
from collections import Counter

from engine.authoring.diff import Change, DiffReport, PatientChange

__all__ = ["render_diff"]


def _summary(report: DiffReport) -> str:
    impact = report.impact
    n = len(impact.changes)
    version = f"{report.old_version} → {report.new_version}"
    if not report.changes:
        return f"No change ({version}); {impact.case_patients + impact.generated_patients} patients evaluated."
    bump = ""
    if report.missing_bump:
        bump = f" ⚠ the version does not say it (a {report.bump_needed} change)."
    texts = len(impact.text_changes)
    languages = sorted({lang for c in impact.text_changes for lang in c.languages})
    wording = f"; {texts} only a different wording ({', '.join(languages)})" if texts else ""
    return (f"{len(report.changes)} change(s) ({version}); {n} patient(s) get a different decision, dose or "
            f"schedule{wording} (evaluated: {impact.case_patients} cases, {impact.generated_patients} "
            f"generated).{bump}")


def _alone(report: DiffReport, change: Change) -> list[str]:
    """What this change does on its own: patients changed (decisions or wording), bands, one example."""
    key = f"{change.section}/{change.id}"
    found = report.impact.by_change.get(key)
    if not found:
        return []
    clinical = [c for c in found if c.clinical]
    wording = len(found) - len(clinical)
    parts = [f"alone, it changes {len(clinical)} patient(s)' decisions, doses or schedules"
             + (f" and {wording} patient(s)' wording" if wording else "")]
    bands = report.impact.bands_by_change.get(key)
    if bands:
        parts.append("bands: " + ", ".join(bands))
    example = (clinical or found)[0]
    parts.append("e.g. " + _patient_line(example))
    return parts


def _counts(changes: list[PatientChange]) -> list[str]:
    counter: Counter[str] = Counter()
    for change in changes:
        counter.update(f"+ {r}" for r in change.appeared)
        counter.update(f"- {r}" for r in change.disappeared)
        counter.update(f"~ {c.split(':', 1)[0]} ({c.split(':', 1)[1].split()[0]})" for c in change.changed)
    return [f"{count:6d}  {what}" for what, count in counter.most_common()]


def _patient_line(change: PatientChange) -> str:
    # A dose change says it all; the text diff of the same recommendation is left out.
    dosed = {c.split(":", 1)[0] for c in change.changed if ": dose " in c}
    shown = [c for c in change.changed if ": dose " in c or c.split(":", 1)[0] not in dosed]
    parts = [f"+{r}" for r in change.appeared] + [f"-{r}" for r in change.disappeared] + shown
    return f"{change.source}: " + "; ".join(parts)


def _examples(report: DiffReport, limit: int) -> list[PatientChange]:
    """A few patients, cases first, then generated ones spread over units and values."""
    cases = [c for c in report.impact.changes if c.probe is None]
    generated = [c for c in report.impact.changes if c.probe is not None]
    seen_units: set[tuple[str, str]] = set()
    picked = cases[: max(1, limit // 2)]
    for change in generated:
        key = (change.probe[0], change.probe[2])  # type: ignore[index]
        if key not in seen_units and len(picked) < limit:
            seen_units.add(key)
            picked.append(change)
    for change in generated:
        if len(picked) >= limit:
            break
        if change not in picked:
            picked.append(change)
    return picked


def render_diff(report: DiffReport, fmt: str = "text", examples: int = 5) -> str:
    """The report as ``text``, ``markdown`` or ``json``."""
    if fmt == "json":
        return json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n"
    if fmt == "markdown":
        return _markdown(report, examples)
    lines = [f"guideline diff {report.old_label} → {report.new_label}", _summary(report), ""]
    for change in report.changes:
        lines.append(f"{change.status:8} {change.section}/{change.id}")
        lines += [f"           {d}" for d in change.details]
        lines += [f"           → {line}" for line in _alone(report, change)]
    impact = report.impact
    if impact.changes:
        lines += ["", "Clinical impact:"]
        lines += _counts(impact.changes)
        if impact.bands:
            lines += ["", "Bands of values whose result changed:"] + [f"  {b}" for b in impact.bands]
        lines += ["", "Examples:"] + [f"  {_patient_line(c)}" for c in _examples(report, examples)]
    if impact.text_changes:
        lines += ["", "Wording only (no decision, dose or schedule changes):"]
        lines += _counts(impact.text_changes)
        lines += ["", "Examples:"] + [f"  {_patient_line(c)}" for c in impact.text_changes[:examples]]
    return "\n".join(lines) + "\n"


def _markdown(report: DiffReport, examples: int) -> str:
    out = [f"### Guideline diff: `{report.old_label}` → `{report.new_label}`", "", f"**{_summary(report)}**", ""]
    if report.changes:
        out += ["<details open><summary>What changed</summary>", "", "| | section | id | details |", "|---|---|---|---|"]
        for change in report.changes:
            details = "<br>".join(d.replace("|", "\\|") for d in change.details)
            alone = "<br>".join("→ " + line.replace("|", "\\|") for line in _alone(report, change))
            details = "<br>".join(part for part in (details, alone) if part)
            out.append(f"| {change.status} | {change.section} | `{change.id}` | {details} |")
        out += ["", "</details>", ""]
    impact = report.impact
    if impact.changes:
        out += [f"<details><summary>Clinical impact: {len(impact.changes)} patient(s)</summary>", "", "```"]
        out += _counts(impact.changes)
        out += ["```", ""]
        if impact.bands:
            out += ["Bands of values whose result changed: " + ", ".join(f"`{b}`" for b in impact.bands), ""]
        out += ["Examples:", ""] + [f"- {_patient_line(c)}" for c in _examples(report, examples)]
        out += ["", "</details>", ""]
    if impact.text_changes:
        out += [f"<details><summary>Wording only: {len(impact.text_changes)} patient(s)</summary>", "", "```"]
        out += _counts(impact.text_changes)
        out += ["```", ""] + [f"- {_patient_line(c)}" for c in impact.text_changes[:examples]]
        out += ["", "</details>", ""]
    return "\n".join(out)
