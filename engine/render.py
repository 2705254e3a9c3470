"""Stage 5 -- render: a result as text for a terminal, Markdown, or JSON.

Text is for a clinician reading a terminal; JSON is the stable machine shape
(``Result.to_dict``); Markdown is for notes and pull-request comments.
``explain`` adds the whole trace: every value with how it was obtained, the
rules that did not fire, the evidence with its figures and the source notes.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from typing import Any

from engine.results import Result
from engine.texts.formatting import format_number, localized
from engine.texts.words import FR_EVERY, RESULT, words

__all__ = ["FORMATS", "render"]

FORMATS = ("text", "json", "markdown")

def _w(lang: str) -> Mapping[str, str]:
    return words(RESULT, lang)


def render(result: Result, fmt: str = "text", *, explain: bool = False) -> str:
    """Render ``result`` as ``text``, ``markdown`` or ``json``."""
    if fmt == "json":
        data = result.to_dict()
        if explain:
            data["explain"] = _explain_data(result)
        return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False)
    if fmt == "markdown":
        return _markdown(result, explain)
    if fmt == "text":
        return _text(result, explain)
    raise ValueError(f"unknown format '{fmt}' (choose from {', '.join(FORMATS)})")




def _interval(text: str, lang: str) -> str:
    """'1 week' -> 'toutes les semaines' / 'every week'; '3 months' -> 'tous les 3 mois'."""
    number, _, unit = text.partition(" ")
    unit = unit.rstrip("s")
    w = _w(lang)
    plural = w.get(unit + "s", unit)
    if lang == "fr":
        return f"{FR_EVERY.get(unit, 'tous les')} {plural}" if number == "1" else \
            f"{FR_EVERY.get(unit, 'tous les')} {number} {plural}"
    return f"every {w.get(unit, unit)}" if number == "1" else f"every {number} {plural}"


def format_dose(dose: Mapping[str, Any] | None, lang: str) -> str:
    """One line describing a structured dose."""
    if not dose:
        return ""
    w = _w(lang)
    parts = [dose["drug"]["name"]]
    if dose.get("amount") is not None:
        amount = format_number(dose["amount"], lang)
        if dose.get("amount_max") is not None:
            amount += f"–{format_number(dose['amount_max'], lang)}"
        parts.append(f"{amount} {dose.get('unit', '')}".strip())
    parts.append(w.get(dose["route"], dose["route"]))
    if dose.get("times_per_day"):
        parts.append(f"{dose['times_per_day']} {w['per_day']}")
    if dose.get("interval"):
        parts.append(_interval(dose["interval"], lang))
    if dose.get("doses"):
        parts.append(f"× {dose['doses']}")
    if dose.get("duration"):
        parts.append(f"{w['for']} {_duration(dose['duration'], lang)}")
    if dose.get("infusion_minutes"):
        parts.append(f"{w['infusion']} {dose['infusion_minutes']} {w['min']}")
    text = " ".join(p for p in parts if p)
    if dose.get("with"):
        text += f" ({dose['with']})"
    return f"{text} [ATC {dose['drug']['atc']}]" if dose["drug"].get("atc") else text


def _duration(text: str, lang: str) -> str:
    number, _, unit = text.partition(" ")
    unit = unit.rstrip("s")
    word = _w(lang).get(unit if number == "1" else unit + "s", unit)
    return f"{number} {word}"


def format_schedule(schedule: tuple[Mapping[str, Any], ...] | list[Any], lang: str) -> str:
    """A schedule as 'N doses every week, then every month'."""
    w = _w(lang)
    out = []
    for phase in schedule:
        text = _interval(phase["interval"], lang)
        if phase.get("amount") is not None:
            text = f"{format_number(phase['amount'], lang)} {phase.get('unit', '')} " + text
        if phase.get("doses"):
            text = f"{phase['doses']} {w['doses']}: " + text
        if phase.get("duration"):
            text += f" {w['for']} {_duration(phase['duration'], lang)}"
        out.append(f"{w.get(phase['phase'], phase['phase'])}: {text.strip()}")
    return f" ; {w['then']} ".join(out)


def format_source(source: Mapping[str, Any]) -> str:
    """'§2.4, Tableau 2' style citation."""
    parts = []
    if source.get("section"):
        parts.append(f"§{source['section']}")
    if source.get("table"):
        parts.append(str(source["table"]))
    if source.get("box"):
        parts.append(str(source["box"]))
    if source.get("references"):
        parts.append("ref. " + ", ".join(map(str, source["references"])))
    return ", ".join(parts)


def _text(result: Result, explain: bool) -> str:
    w = _w(result.lang)
    g = result.compiled
    title = _t(g.title, result) if g else result.guideline
    lines = [f"{title} — {result.guideline} v{result.version} ({w['evaluated']} {result.evaluated_on.isoformat()})", ""]
    lines.append(f"{w['recommendations']} ({len(result.recommendations)})")
    if not result.recommendations:
        lines.append(f"  {w['none']}")
    for i, rec in enumerate(result.recommendations, 1):
        lines.append(f"  {i}. [{w.get(rec.kind, rec.kind)}] {rec.text}")
        if rec.dose:
            lines.append(f"     {w['dose']}: {format_dose(rec.dose, result.lang)}")
        if rec.schedule:
            lines.append(f"     {w['schedule']}: {format_schedule(rec.schedule, result.lang)}")
        if rec.source:
            lines.append(f"     {w['source']}: {format_source(rec.source)}  ({rec.id})")
        if explain:
            lines.append(f"     {w['why']}: {rec.why.condition}")
            for value in rec.why.values:
                how = f" — {value.how}" if value.how else ""
                lines.append(f"       • {value.label or value.name} = {value.display}{how}")
            for ev in rec.evidence:
                lines.append(f"       {w['evidence']}: {_evidence_line(result, ev)}")
    if result.borderline:
        lines += ["", f"{w['borderline']} ({len(result.borderline)})"]
        lines += [f"  ! {b.text}" for b in result.borderline]
    if result.undetermined:
        lines += ["", f"{w['undetermined']} ({len(result.undetermined)})"]
        for und in result.undetermined:
            needed = ", ".join(_fact_label(result, f) for f in und.needs) or "?"
            lines.append(f"  - {und.title}: {w['needs']} {needed}")
    if explain:
        lines += ["", w["values"]]
        for value in result.values.values():
            how = f" — {value.how}" if value.how else ""
            lines.append(f"  {value.name} = {value.display}{how}")
        not_fired = [rule for rule, state in result.rules.items() if state == "not-fired"]
        if not_fired:
            lines += ["", f"{w['not_fired']}: " + ", ".join(not_fired)]
        notes = _notes_for(result)
        if notes:
            lines += ["", w["notes"]]
            for note in notes:
                lines.append(f"  [{note['id']}] {_t(note['text'], result)}")
                lines.append(f"      {w['decision']}: {_t(note['decision'], result)}")
    return "\n".join(lines) + "\n"


def _t(texts: Mapping[str, str], result: Result) -> str:
    primary = result.compiled.languages[0] if result.compiled else None
    return localized(texts, result.lang, primary)


def _fact_label(result: Result, name: str) -> str:
    g = result.compiled
    if g and name in g.facts:
        return f"{_t(g.facts[name].label, result)} ({name})"
    return name


def _evidence_line(result: Result, ev_id: str) -> str:
    g = result.compiled
    if g is None or ev_id not in g.evidence:
        return ev_id
    ev = g.evidence[ev_id]
    figures = ", ".join(f"{k} {v}" for k, v in (ev.get("figures") or {}).items())
    text = _t(ev["title"], result)
    if ev.get("findings"):
        text += f": {_t(ev['findings'], result)}"
    return text + (f" [{figures}]" if figures else "")


def _notes_for(result: Result) -> list[Mapping[str, Any]]:
    g = result.compiled
    if g is None:
        return []
    wanted = {n for r in result.recommendations for n in r.notes}
    return [n for n in g.notes if n["id"] in wanted]


def _explain_data(result: Result) -> dict[str, Any]:
    g = result.compiled
    evidence_ids = sorted({e for r in result.recommendations for e in r.evidence})
    return {
        "evidence": {e: _evidence_data(g.evidence[e]) for e in evidence_ids} if g else {},
        "notes": [{"id": n["id"], "text": _t(n["text"], result), "decision": _t(n["decision"], result)}
                  for n in _notes_for(result)],
    }


def _evidence_data(ev: Mapping[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(ev, default=lambda o: dict(o) if isinstance(o, Mapping) else list(o)))
    return data


def _md(text: str) -> str:
    """Guideline or patient text made inert in Markdown: HTML escaped (a text cannot inject tags or scripts)."""
    return html.escape(text, quote=False)


def _markdown(result: Result, explain: bool) -> str:
    w = _w(result.lang)
    g = result.compiled
    title = _md(_t(g.title, result) if g else result.guideline)
    out = [f"## {title}", "", f"`{result.guideline}` v{result.version} — {w['evaluated']} {result.evaluated_on.isoformat()}", ""]
    out.append(f"### {w['recommendations']} ({len(result.recommendations)})")
    out.append("")
    for rec in result.recommendations:
        out.append(f"- **{w.get(rec.kind, rec.kind)}** — {_md(rec.text)}")
        if rec.dose:
            out.append(f"  - {w['dose']}: {format_dose(rec.dose, result.lang)}")
        if rec.schedule:
            out.append(f"  - {w['schedule']}: {format_schedule(rec.schedule, result.lang)}")
        if rec.source:
            out.append(f"  - {w['source']}: {format_source(rec.source)} (`{rec.id}`)")
        if explain:
            out.append(f"  - {w['why']}: `{rec.why.condition}`")
            for value in rec.why.values:
                how = f" — {value.how}" if value.how else ""
                out.append(f"    - {_md(value.label or value.name)} = {_md(value.display)}{_md(how)}")
    if result.borderline:
        out += ["", f"### {w['borderline']} ({len(result.borderline)})", ""]
        out += [f"- ⚠ {_md(b.text)}" for b in result.borderline]
    if result.undetermined:
        out += ["", f"### {w['undetermined']} ({len(result.undetermined)})", ""]
        for und in result.undetermined:
            out.append(f"- {_md(und.title)}: {w['needs']} " + ", ".join(f"`{f}`" for f in und.needs))
    return "\n".join(out) + "\n"
