"""``guideline show``: the encoded guideline as a document a clinician reviews.

Every decision table as a table with its intervals and units, every rule's
condition in plain words, its recommendation texts, dose and schedule,
provenance, and the source notes -- so the encoding can be checked line by
line against the source text without reading YAML. Markdown or HTML.
"""

from __future__ import annotations

import ast
import html
from collections.abc import Mapping
from typing import Any

from engine.model import CompiledGuideline
from engine.render import format_dose, format_schedule, format_source
from engine.texts.formatting import localized
from engine.texts.words import EXPLAIN, REVIEW, words

__all__ = ["show"]

_OPS = {ast.Eq: "=", ast.NotEq: "≠", ast.Lt: "<", ast.LtE: "≤", ast.Gt: ">", ast.GtE: "≥",
        ast.Add: "+", ast.Sub: "−", ast.Mult: "×", ast.Div: "/", ast.Mod: "mod", ast.Pow: "^", ast.FloorDiv: "÷"}


class _Words:
    """Turns an expression AST into words, with each name's label."""

    def __init__(self, g: CompiledGuideline, lang: str):
        self.g = g
        self.lang = lang
        self.w = words(REVIEW, lang)

    def label(self, name: str) -> str:
        if name == "today":
            return self.w["today"]
        spec = self.g.facts.get(name) or self.g.derived.get(name)
        if spec is not None and spec.label:
            return spec.label.get(self.lang) or next(iter(spec.label.values()))
        return name

    def value(self, name: str | None, value: Any) -> str:
        if isinstance(value, bool):
            return words(EXPLAIN, self.lang)["yes" if value else "no"]
        fact = self.g.facts.get(name or "")
        if fact is not None and isinstance(value, str) and value in fact.value_labels:
            labels = fact.value_labels[value]
            return words(EXPLAIN, self.lang)["quoted"].format(labels.get(self.lang) or value)
        return f"'{value}'" if isinstance(value, str) else str(value)

    def words(self, node: ast.AST, context: str | None = None) -> str:
        if isinstance(node, ast.Expression):
            return self.words(node.body)
        if isinstance(node, ast.BoolOp):
            joiner = f" {self.w['and' if isinstance(node.op, ast.And) else 'or']} "
            return joiner.join(self._group(v, node) for v in node.values)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                return f"{self.w['not']} ({self.words(node.operand)})"
            return f"−{self.words(node.operand)}" if isinstance(node.op, ast.USub) else self.words(node.operand)
        if isinstance(node, ast.Compare):
            parts = [self.words(node.left)]
            subject = node.left.id if isinstance(node.left, ast.Name) else None
            for op, right in zip(node.ops, node.comparators, strict=True):
                word = self.w["in"] if isinstance(op, ast.In) else self.w["not in"] if isinstance(op, ast.NotIn) \
                    else _OPS[type(op)]
                parts += [word, self.words(right, subject)]
            return " ".join(parts)
        if isinstance(node, ast.BinOp):
            return f"({self.words(node.left)} {_OPS[type(node.op)]} {self.words(node.right)})"
        if isinstance(node, ast.IfExp):
            return (f"{self.words(node.body)} {self.w['if']} {self.words(node.test)}, "
                    f"{self.w['else']} {self.words(node.orelse)}")
        if isinstance(node, ast.Call):
            name = node.func.id  # type: ignore[attr-defined]
            if name == "known":
                return f"{self.words(node.args[0])} {self.w['known']}"
            return f"{name}({', '.join(self.words(a) for a in node.args)})"
        if isinstance(node, ast.Name):
            return self.label(node.id)
        if isinstance(node, ast.Constant):
            return self.value(context, node.value)
        if isinstance(node, (ast.List, ast.Tuple)):
            return "{" + ", ".join(self.words(e, context) for e in node.elts) + "}"
        return ast.unparse(node)  # pragma: no cover - the language has no other nodes

    def _group(self, value: ast.AST, parent: ast.BoolOp) -> str:
        text = self.words(value)
        return f"({text})" if isinstance(value, ast.BoolOp) and type(value.op) is not type(parent.op) else text


def _t(texts: Mapping[str, str] | None, lang: str) -> str:
    return localized(texts or {}, lang)


def _fhir_words(binding: Mapping[str, Any] | None, codes: Any) -> str:
    """Where a fact is read in FHIR, in one cell: resource.element, codes, look-back, value when absent."""
    if binding is None:
        return ""
    parts = [f"{binding['resource']}.{binding['element']}"]
    coded = binding.get("codes") or (codes if binding["resource"] in ("Observation", "Condition", "Procedure") else ())
    parts += [f"{c['system']} {c['code']}" for c in coded]
    for value, atc in (binding.get("agents") or {}).items():
        parts.append(f"{value}: " + ", ".join(f"{c['system']} {c['code']}" for c in atc))
    if binding.get("lookback_days"):
        parts.append(f"≤ {binding['lookback_days']} d")
    if binding.get("when_absent") is not None:
        parts.append(f"absent → {binding['when_absent']}")
    return "; ".join(parts)


def _blocks(g: CompiledGuideline, lang: str) -> list[tuple[str, Any]]:
    """The document as (kind, content) blocks: h1/h2/h3, p, table (header, rows), list."""
    w = words(REVIEW, lang)
    phrases = _Words(g, lang)
    out: list[tuple[str, Any]] = [
        ("h1", _t(g.title, lang)),
        ("p", f"`{g.id}` — {w['version']} {g.version} — {w['status']} {g.status} — "
              f"{w['source']}: {g.source.get('document', '')} {format_source(g.source)}"),
        ("h2", w["facts"]),
    ]
    rows = []
    for f in g.facts.values():
        unit = f.units.canonical if f.units else ""
        others = ", ".join(f"{u.name} (×{u.multiply_by:g}/{u.divide_by:g})" for u in (f.units.units[1:] if f.units else ()))
        rng = "" if f.range == (None, None) else f"{'' if f.range[0] is None else f'{f.range[0]:g}'}–" \
                                                  f"{'' if f.range[1] is None else f'{f.range[1]:g}'}"
        kind = f.type + (f" ({', '.join(f.values)})" if f.values else "")
        rows.append([f"`{f.name}`", _t(f.label, lang), kind, unit, others, rng, _fhir_words(f.fhir, f.codes)])
    out.append(("table", ([w["name"], "", w["type"], w["unit"], w["other_units"], w["range"], "FHIR R4"], rows)))
    out.append(("h2", w["derived"]))
    for d in g.derived.values():
        details = [f"`{d.name}`"] + ([d.unit] if d.unit else [])
        if d.decimals is not None:
            details.append(f"{w['rounded']} {d.decimals}")
        formula = _t(d.formula, lang)
        out.append(("p", f"**{_t(d.label, lang)}** ({', '.join(details)}) = {phrases.words(d.expr.tree)}"
                         + (f" — {formula}" if formula else "")))
    out.append(("h2", w["tables"]))
    for t in g.tables.values():
        out.append(("h3", f"{_t(t.title, lang) or t.name} (`{t.name}`, {w['hit']}: {t.hit}) — {format_source(t.source)}"))
        header = [w["row"]] + [f"{phrases.label(i.expr.text.strip())}" + (f" ({i.unit})" if i.unit else "")
                               for i in t.inputs] + [f"{o}" + (f" ({u})" if u else "") for o, u in t.outputs.items()]
        body = [[f"`{r.id}`"] + [str(c.interval) if c.kind == "interval" else c.text for c in r.cells]
                + [_fmt(r.outputs.get(o)) for o in t.outputs] for r in t.rows]
        body.append([w["otherwise"]] + ["" for _ in t.inputs] + [_fmt(t.otherwise.get(o)) for o in t.outputs])
        out.append(("table", (header, body)))
    out.append(("h2", w["rules"]))
    for rule in g.rules:
        out.append(("h3", f"{_t(rule.title, lang) or rule.id} (`{rule.id}`)"))
        items = [f"**{w['when']}**: {phrases.words(rule.when.tree)}"]
        for rec in rule.then:
            items.append(f"**{w['then']}** [{rec.kind}{', ' + rec.strength if rec.strength else ''}] "
                         f"(`{rec.id}`): {rec.templates[lang].text if lang in rec.templates else ''}")
            if rec.dose:
                dose = dict(rec.dose.items())
                dose["drug"] = {"name": _t(rec.dose["drug"]["name"], lang), "atc": rec.dose["drug"].get("atc")}
                if "with" in rec.dose:
                    dose["with"] = _t(rec.dose["with"], lang)
                items.append(f"{w['dose']}: {format_dose(dose, lang)}")
            if rec.schedule:
                items.append(f"{w['schedule']}: {format_schedule(rec.schedule, lang)}")
            if rec.evidence:
                items.append(f"{w['evidence']}: " + ", ".join(_t(g.evidence[e]['title'], lang) for e in rec.evidence))
        items.append(f"{w['source']}: {format_source(rule.source)}"
                     + (f" — notes: {', '.join(rule.notes)}" if rule.notes else ""))
        out.append(("list", items))
    out.append(("h2", w["notes"]))
    out.append(("table", (["id", "", w["decision"]],
                          [[f"`{n['id']}`", _t(n["text"], lang), _t(n["decision"], lang)] for n in g.notes])))
    out.append(("h2", w["not_encoded"]))
    out.append(("table", (["", w["reason"]],
                          [[_t(n["text"], lang), _t(n["reason"], lang)] for n in g.not_encoded])))
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def show(g: CompiledGuideline, fmt: str = "markdown", lang: str | None = None) -> str:
    """The guideline as a Markdown or HTML document in ``lang``."""
    lang = lang or g.languages[0]
    blocks = _blocks(g, lang)
    if fmt == "markdown":
        return _markdown(blocks)
    if fmt == "html":
        return _html(blocks, lang, _t(g.title, lang))
    raise ValueError(f"unknown format '{fmt}'")


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _markdown(blocks: list[tuple[str, Any]]) -> str:
    out: list[str] = []
    for kind, content in blocks:
        if kind in ("h1", "h2", "h3"):
            out += ["#" * int(kind[1]) + " " + content, ""]
        elif kind == "p":
            out += [content, ""]
        elif kind == "list":
            out += [f"- {item}" for item in content] + [""]
        elif kind == "table":
            header, rows = content
            out.append("| " + " | ".join(_cell(h) for h in header) + " |")
            out.append("|" + "---|" * len(header))
            out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
            out.append("")
    return "\n".join(out)


def _inline(text: str) -> str:
    """Escape, then turn `code` and **bold** into tags."""
    import re

    escaped = html.escape(str(text))
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


def _html(blocks: list[tuple[str, Any]], lang: str, title: str) -> str:
    out = [f'<!DOCTYPE html>\n<html lang="{html.escape(lang)}">\n<head><meta charset="utf-8">'
           f"<title>{html.escape(title)}</title>"
           "<style>body{font-family:sans-serif;max-width:72em;margin:auto}table{border-collapse:collapse}"
           "td,th{border:1px solid #999;padding:.2em .5em;vertical-align:top}</style></head>\n<body>"]
    for kind, content in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append(f"<{kind}>{_inline(content)}</{kind}>")
        elif kind == "p":
            out.append(f"<p>{_inline(content)}</p>")
        elif kind == "list":
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in content) + "</ul>")
        elif kind == "table":
            header, rows = content
            out.append("<table><tr>" + "".join(f"<th>{_inline(h)}</th>" for h in header) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in rows)
                       + "</table>")
    out.append("</body>\n</html>\n")
    return "\n".join(out)
