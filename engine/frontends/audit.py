"""``guideline audit``: what a cohort was given, against what the guideline advises.

Each row of the cohort holds a patient's facts and what was done:
``done`` (the recommendation ids carried out: a list, or ``a;b`` text in CSV
and Parquet) and, where a dose was given, ``done_dose:<recommendation id>``
(the amount, in the recommendation's dose unit). Each patient is evaluated
as ``guideline evaluate`` would, and compared:

* **not done**: a recommendation made (of kind action or referral) that was
  not carried out;
* **done, not advised**: a recommendation carried out that the guideline did
  not make for this patient (its rule was not fired);
* **done, undetermined**: carried out while its rule could not be decided
  (facts missing) -- counted apart: nobody can say it was wrong;
* **dose differs**: a dose given that differs from the recommendation's dose.

The report counts recommendations (advised, done, both), undetermined
reasons (the missing facts), and deviations by type, each with the patient
ids; text, Markdown or JSON, and a bar chart of the deviations (PNG,
matplotlib) on request.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.guideline import Guideline

__all__ = ["DEVIATIONS", "AuditReport", "audit", "plot"]

DEVIATIONS = {
    "not-done": "advised, not done",
    "done-not-advised": "done, not advised",
    "done-undetermined": "done while undetermined (facts missing)",
    "dose-differs": "dose differs from the advised dose",
}
_ACTED = ("action", "referral")  # recommendations that ask for something to be done
_SHOWN_IDS = 10  # patient ids listed per line in text and Markdown (JSON lists them all)


@dataclass
class AuditReport:
    """Counts and patient ids, by recommendation, by undetermined reason and by deviation."""

    rows: int = 0
    errors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    advised: Counter[str] = field(default_factory=Counter)
    done: Counter[str] = field(default_factory=Counter)
    both: Counter[str] = field(default_factory=Counter)
    missing: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    deviations: dict[str, dict[str, list[str]]] = field(
        default_factory=lambda: {kind: defaultdict(list) for kind in DEVIATIONS})

    def deviation_counts(self) -> dict[str, int]:
        """How many deviations of each type (one per patient and recommendation)."""
        return {kind: sum(len(ids) for ids in by_rec.values()) for kind, by_rec in self.deviations.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, every patient id listed."""
        return {
            "rows": self.rows, "evaluated": self.rows - len(self.errors), "errors": self.errors,
            "recommendations": {rec: {"advised": self.advised[rec], "done": self.done[rec], "both": self.both[rec]}
                                for rec in sorted(set(self.advised) | set(self.done))},
            "undetermined_reasons": {fact: sorted(ids) for fact, ids in sorted(self.missing.items())},
            "deviations": {kind: {rec: sorted(ids) for rec, ids in sorted(by_rec.items())}
                           for kind, by_rec in self.deviations.items()},
            "deviation_counts": self.deviation_counts(),
        }

    def text(self, markdown: bool = False) -> str:
        """For a person: totals, recommendations, undetermined reasons, deviations with patient ids."""
        def ids(values: list[str]) -> str:
            shown = ", ".join(sorted(values)[:_SHOWN_IDS])
            return shown + (f" (+{len(values) - _SHOWN_IDS} more)" if len(values) > _SHOWN_IDS else "")

        out: list[str] = []
        head = "## " if markdown else ""
        out.append(f"{'# ' if markdown else ''}Audit: {self.rows} patient(s), {self.rows - len(self.errors)} "
                   f"evaluated, {len(self.errors)} with errors")
        out.append(f"\n{head}Recommendations (advised / done / both)")
        if markdown:
            out += ["", "| recommendation | advised | done | both |", "|---|---:|---:|---:|"]
        for rec in sorted(set(self.advised) | set(self.done)):
            counts = (self.advised[rec], self.done[rec], self.both[rec])
            out.append(f"| {rec} | {counts[0]} | {counts[1]} | {counts[2]} |" if markdown
                       else f"  {rec:45} {counts[0]:6d} {counts[1]:6d} {counts[2]:6d}")
        out.append(f"\n{head}Undetermined: missing facts")
        for fact, patients in sorted(self.missing.items(), key=lambda item: (-len(item[1]), item[0])):
            out.append(f"{'- ' if markdown else '  '}{fact}: {len(patients)} ({ids(patients)})")
        out.append(f"\n{head}Deviations")
        for kind, words in DEVIATIONS.items():
            by_rec = self.deviations[kind]
            out.append(f"{'- **' if markdown else '  '}{words}{'**' if markdown else ''}: "
                       f"{sum(len(v) for v in by_rec.values())}")
            for rec, patients in sorted(by_rec.items()):
                out.append(f"{'    - ' if markdown else '      '}{rec}: {len(patients)} ({ids(patients)})")
        if self.errors:
            out.append(f"\n{head}Rows with errors")
            for patient, problems in sorted(self.errors.items()):
                out.append(f"{'- ' if markdown else '  '}{patient}: {problems[0]['message']}")
        return "\n".join(out) + "\n"


def _done(facts: dict[str, Any]) -> tuple[list[str], dict[str, float]]:
    """What was done, taken out of a row's facts: the ids and the doses given."""
    raw = facts.pop("done", None)
    if isinstance(raw, str):
        done = [part.strip() for part in raw.split(";") if part.strip()]
    elif isinstance(raw, (list, tuple)):
        done = [str(part) for part in raw]
    else:
        done = []
    doses: dict[str, float] = {}
    for key in [k for k in facts if k.startswith("done_dose:")]:
        value = facts.pop(key)
        if isinstance(value, str):  # a CSV cell
            try:
                value = float(value.strip())
            except ValueError:
                continue
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            doses[key.split(":", 1)[1]] = value
    return done, doses


def audit(guideline: Guideline, rows: Iterable[tuple[int, Any]], *, day: dt.date) -> AuditReport:
    """Compare each row's ``done`` with what the guideline advises for it (see the module's docstring)."""
    report = AuditReport()
    rules = {rec.id: rule for rule in guideline.compiled.rules for rec in rule.then}
    for number, raw in rows:
        report.rows += 1
        facts = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(facts, dict):
            report.errors[f"row {number}"] = [{"code": "facts.not-a-mapping", "message": "not a mapping"}]
            continue
        facts = dict(facts)
        patient = str(facts.pop("patient_id", f"row {number}"))
        done, doses = _done(facts)
        try:
            result = guideline.evaluate(facts, on=day)
        except EngineError as exc:
            report.errors[patient] = [{"code": d.code, "message": d.message} for d in exc.diagnostics]
            continue
        advised = {rec.id: rec for rec in result.recommendations}
        undetermined = {u.rule: u for u in result.undetermined}
        report.advised.update(list(advised))
        report.done.update(set(done))
        for u in result.undetermined:
            for fact in u.needs:
                if patient not in report.missing[fact]:
                    report.missing[fact].append(patient)
        for rec_id, rec in advised.items():
            if rec_id in done:
                report.both[rec_id] += 1
            elif rec.kind in _ACTED:
                report.deviations["not-done"][rec_id].append(patient)
        for rec_id in dict.fromkeys(done):
            if rec_id in advised:
                amount = (advised[rec_id].dose or {}).get("amount")
                given = doses.get(rec_id)
                if given is not None and isinstance(amount, (int, float)) and not math.isclose(given, amount):
                    report.deviations["dose-differs"][rec_id].append(patient)
            elif rec_id in rules and rules[rec_id].id in undetermined:
                report.deviations["done-undetermined"][rec_id].append(patient)
            else:  # not made for this patient, or an id the guideline does not have
                report.deviations["done-not-advised"][rec_id].append(patient)
    return report


def plot(report: AuditReport, path: str | Path, title: str) -> None:
    """A bar chart of the deviations by type (PNG), written whole (aside, then renamed)."""
    import os
    import tempfile

    import matplotlib

    matplotlib.use("Agg")  # no display: a file
    import matplotlib.pyplot as plt

    counts = report.deviation_counts()
    figure, axes = plt.subplots(figsize=(8, 3.5), dpi=100)
    bars = axes.barh([DEVIATIONS[k] for k in counts], list(counts.values()), color="#4a6fa5")
    axes.bar_label(bars, padding=3)
    axes.invert_yaxis()
    axes.set_xlabel("patients x recommendations")
    axes.set_title(title)
    figure.tight_layout()
    target = Path(path)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".png", dir=target.parent or ".")
    os.close(fd)
    try:
        figure.savefig(temporary, format="png")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # as a file opened for writing would be (mkstemp makes it 0600)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    finally:
        plt.close(figure)
