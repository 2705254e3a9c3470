"""``guideline batch``: evaluate a cohort, streaming, in order, optionally in parallel.

Rows come from JSON Lines (one facts object per line) or CSV (one column per
fact; empty cell = unknown). Each row gives one JSON line out: its decisions,
or an error record with the row number and the problems -- a bad row never
stops the batch. Memory stays flat: rows are read, evaluated and written one
chunk at a time, and ``--jobs N`` keeps the output in input order with at
most 4 N chunks in flight (1 000 rows each, 100 for full results).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from multiprocessing import get_context
from pathlib import Path
from typing import IO, Any

from engine.errors import Diagnostic, EngineError
from engine.guideline import Guideline, load

__all__ = ["BatchSummary", "ResultText", "cell_value", "chunks_of", "in_order", "json_line", "read_rows",
           "recommendation_ids", "run_batch"]


def cell_value(spec: Any, text: str) -> Any:
    """A text cell (CSV, or a DataFrame column stored as text) as the fact's type; text the facts
    validator will explain if wrong."""
    text = text.strip()
    if text == "":
        return None
    if spec is None:
        return text
    if spec.type == "boolean":
        return {"true": True, "false": False}.get(text.lower(), text)
    if spec.type in ("integer", "number"):
        try:
            return int(text) if spec.type == "integer" and text.lstrip("-").isdigit() else float(text)
        except ValueError:
            return text
    if spec.type == "list":
        return [part.strip() for part in text.split(";") if part.strip()]
    return text


def _decoded(stream: IO[bytes], bad: list[int]) -> Iterator[str]:
    """Lines as text; a line that is not UTF-8 is recorded in ``bad`` and given as empty."""
    for number, raw in enumerate(stream, start=1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(number)
            yield "\n"


def read_rows(stream: IO[bytes], fmt: str, guideline: Guideline) -> Iterator[tuple[int, Any]]:
    """(row number, facts or a parse-error text) for each input row, lazily."""
    facts_specs = guideline.compiled.facts
    bad: list[int] = []
    lines = _decoded(stream, bad)
    if fmt == "csv":
        reader = csv.DictReader(lines)
        for row in reader:
            number = reader.line_num - 1  # the header is line 1
            if bad and bad[-1] == reader.line_num:
                yield number, _ParseError("not valid UTF-8")
                continue
            yield number, {k: v for k, v in ((key, cell_value(facts_specs.get(key), value or ""))
                                              for key, value in row.items() if key is not None) if v is not None}
        return
    for number, line in enumerate(lines, start=1):
        if bad and bad[-1] == number:
            yield number, _ParseError("not valid UTF-8")
        elif line.strip():
            # Parsed where it is evaluated: in the worker, when there are several.
            yield number, line


class _ParseError(str):
    """A row that could not be read; the text says why."""


def _parse_json_line(line: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        return _ParseError(f"not valid JSON: {exc.msg} (column {exc.colno})")
    except RecursionError:
        return _ParseError("not valid JSON: nested too deeply")


@dataclass
class BatchSummary:
    """What a batch did: counts of rows, errors and recommendations made."""

    rows: int = 0
    errors: int = 0
    recommendations: Counter[str] = field(default_factory=Counter)
    undetermined: Counter[str] = field(default_factory=Counter)

    def add(self, record: dict[str, Any]) -> None:
        """Count one output record."""
        self.rows += 1
        if "error" in record:
            self.errors += 1
            return
        self.recommendations.update(record["recommendations"])
        self.undetermined.update(record["undetermined"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (recommendation counts sorted by frequency)."""
        return {"rows": self.rows, "evaluated": self.rows - self.errors, "errors": self.errors,
                "recommendations": dict(self.recommendations.most_common()),
                "undetermined": dict(self.undetermined.most_common())}

    def text(self) -> str:
        """For a person: totals, then each recommendation with its count and share."""
        evaluated = self.rows - self.errors
        lines = [f"{self.rows} row(s): {evaluated} evaluated, {self.errors} with errors"]
        for rec, count in self.recommendations.most_common():
            share = 100.0 * count / evaluated if evaluated else 0.0
            lines.append(f"  {count:8d}  {share:5.1f}%  {rec}")
        if self.undetermined:
            lines.append("undetermined rules:")
            lines += [f"  {count:8d}  {rule}" for rule, count in self.undetermined.most_common()]
        return "\n".join(lines) + "\n"


# --- workers ------------------------------------------------------------------------
# Each worker process receives the compiled guideline once (pickled, with its code) and keeps it.

_WORKER: dict[str, Any] = {}


def _init_worker(guideline: Guideline, day: str, lang: str | None, full: bool, records: bool) -> None:
    # The compiled guideline arrives pickled (with its generated code): workers never
    # read the file, so a file changed during the run cannot give another version.
    _WORKER.update(guideline=guideline, day=dt.date.fromisoformat(day), lang=lang, full=full, records=records)


def _evaluate_chunk(items: list[tuple[int, Any]]) -> list[Any]:
    # Rows travel between processes by the chunk: per-row messages would cost
    # more than the evaluation itself. Lines are written here, in the workers,
    # unless the records go to a writer of their own (Parquet).
    made = [evaluate_row(_WORKER["guideline"], item, _WORKER["day"], _WORKER["lang"], _WORKER["full"], as_text=True)
            for item in items]
    return made if _WORKER["records"] else [_line(record) for record in made]


def chunks_of(rows: Iterable[tuple[int, Any]], size: int) -> Iterator[list[tuple[int, Any]]]:
    """``rows`` in lists of ``size`` (the last one shorter)."""
    chunk: list[tuple[int, Any]] = []
    for item in rows:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class ResultText(str):
    """A full result already written as JSON (``Result.to_json``), in a record made with ``as_text``:
    lines (:func:`json_line`) and Parquet cells take it as it is."""


def json_line(record: dict[str, Any]) -> str:
    """A record as its JSON line (without the newline), as ``json.dumps`` writes it with every result as dicts."""
    written = record.get("result")
    if type(written) is ResultText:  # the last key: the line json.dumps would write, without parsing it back
        head = json.dumps({k: v for k, v in record.items() if k != "result"}, ensure_ascii=False)
        return f'{head[:-1]}, "result": {written}}}'
    return json.dumps(record, ensure_ascii=False)


def _line(record: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The JSON line, and the part of the record the summary counts."""
    counted = {"error": True} if "error" in record else {
        "recommendations": record["recommendations"], "undetermined": record["undetermined"]}
    return json_line(record), counted


def evaluate_row(guideline: Guideline, item: tuple[int, Any], day: dt.date, lang: str | None,
                 full: bool, *, as_text: bool = False) -> dict[str, Any]:
    """The output record of one input row (decisions, full result, or error).

    ``as_text``: a full result is kept as its JSON text (for :func:`_line`), not as dicts.
    """
    number, facts = item
    if isinstance(facts, str) and not isinstance(facts, _ParseError):
        facts = _parse_json_line(facts)
    if isinstance(facts, _ParseError):
        return {"row": number, "error": [{"code": "batch.parse", "message": str(facts)}]}
    if not isinstance(facts, dict):
        return {"row": number, "error": [{"code": "facts.not-a-mapping",
                                          "message": "a row must be a mapping of fact names to values"}]}
    patient_id = facts.pop("patient_id", None) if isinstance(facts, dict) else None
    head: dict[str, Any] = {"row": number}
    if patient_id is not None:
        head["patient_id"] = patient_id
    try:
        if full:
            result = guideline.evaluate(facts, on=day, lang=lang)
            data: Any = ResultText(result.to_json()) if as_text else result.to_dict()
            return {**head, "recommendations": result.recommendation_ids(),
                    "undetermined": [u.rule for u in result.undetermined], "result": data}
        decisions = guideline.decide(facts, on=day)
    except EngineError as exc:  # every bad row is an engine error; anything else is a bug and stops the run
        return {**head, "error": [_brief(d) for d in exc.diagnostics]}
    return {**head, "recommendations": recommendation_ids(guideline, decisions),
            "undetermined": decisions.undetermined}


def recommendation_ids(guideline: Guideline, decisions: Any) -> list[str]:
    """The ids of the recommendations the fired rules make, in the guideline's order."""
    return [rec.id for rule in guideline.compiled.rules if decisions.rules[rule.id] is True for rec in rule.then]


def _brief(d: Diagnostic) -> dict[str, Any]:
    return {"code": d.code, "path": d.path, "message": d.message}


def run_batch(guideline: Guideline | str | Path, rows: Iterable[tuple[int, Any]], out: IO[str] | None, *,
              day: dt.date, lang: str | None = None, jobs: int = 1, full: bool = False,
              progress: IO[str] | None = None, put: Callable[[list[dict[str, Any]]], None] | None = None
              ) -> BatchSummary:
    """Evaluate ``rows`` with ``guideline`` (or the one at that path, loaded once), one JSON line per row to ``out``.

    ``put``: the records go to it instead, in lists of at most 10 000 (1 000
    with ``full``) for a writer of its own, such as Parquet; a full result is
    then a :class:`ResultText`, never parsed back from a line.
    """
    summary = BatchSummary()
    if out is None and put is None:
        raise ValueError("run_batch needs an output: out or put")
    if not isinstance(guideline, Guideline):
        guideline = load(guideline)

    def deliver(records: Iterable[Any]) -> None:  # records for put, (line, counted) pairs for out
        if put is not None:
            # Full results are about 20 KB a row: 1 000 of them keep a Parquet row group near 20 MB
            # (10 000 held 1.3 GB at once); decisions are small enough to go 10 000 at a time.
            _put_all(records, put, summary, progress, 1000 if full else 10_000)
        elif out is not None:
            _drain(records, out, summary, progress)

    if jobs <= 1:
        made = (evaluate_row(guideline, item, day, lang, full, as_text=True) for item in rows)
        deliver(made if put is not None else map(_line, made))
        return summary
    with get_context("spawn").Pool(jobs, initializer=_init_worker,
                                   initargs=(guideline, day.isoformat(), lang, full, put is not None)) as pool:
        # Full results are about 20 KB a row, decisions about 0.3 KB: smaller
        # chunks keep the memory of full results in flight as low.
        size = 100 if full else 1000
        results = in_order(lambda chunk: pool.apply_async(_evaluate_chunk, (chunk,)), chunks_of(rows, size),
                           window=4 * jobs)
        deliver(record for chunk in results for record in chunk)
    return summary


def in_order(submit: Callable[[Any], Any], chunks: Iterable[Any], window: int) -> Iterator[Any]:
    """The results of ``submit(chunk)`` for each chunk, in input order, with at most
    ``window`` chunks submitted and not yet taken.

    ``submit`` returns a handle whose ``get()`` waits for the result. The window
    is what keeps memory flat: ``Pool.imap`` would queue every result the
    writer has not yet taken (full results are large, and the writer can be
    slower than the workers).
    """
    pending: deque[Any] = deque()
    source = iter(chunks)
    for chunk in islice(source, window):
        pending.append(submit(chunk))
    while pending:
        result = pending.popleft().get()
        following = next(source, None)
        if following is not None:
            pending.append(submit(following))
        yield result


def _drain(records: Iterable[tuple[str, dict[str, Any]]], out: IO[str], summary: BatchSummary,
           progress: IO[str] | None) -> None:
    for line, counted in records:
        out.write(line + "\n")
        _count(summary, counted, progress)
    _done(summary, progress)


def _put_all(records: Iterable[dict[str, Any]], put: Callable[[list[dict[str, Any]]], None], summary: BatchSummary,
             progress: IO[str] | None, size: int = 10_000) -> None:
    kept: list[dict[str, Any]] = []
    for record in records:
        kept.append(record)
        _count(summary, record, progress)
        if len(kept) == size:
            put(kept)
            kept = []
    if kept:
        put(kept)
    _done(summary, progress)


def _count(summary: BatchSummary, counted: dict[str, Any], progress: IO[str] | None) -> None:
    summary.add(counted)
    if progress is not None and summary.rows % 1000 == 0:
        progress.write(f"\r{summary.rows} rows, {summary.errors} errors")
        progress.flush()


def _done(summary: BatchSummary, progress: IO[str] | None) -> None:
    if progress is not None:
        progress.write(f"\r{summary.rows} rows, {summary.errors} errors\n")


def open_input(name: str, stdin: IO[bytes] | None) -> IO[bytes]:
    """A byte stream for a path or ``-``; raises OSError when it cannot be opened."""
    if name == "-":
        return stdin if stdin is not None else sys.stdin.buffer
    return open(name, "rb")


def rows_done(partial: Path) -> int:
    """The number of the last row a killed run wrote whole to ``partial`` (0 if none).

    Rows are written in input order, one JSON line each; a line the run was
    killed in the middle of is cut off, so that the run can go on after it.
    """
    with open(partial, "rb+") as handle:
        data = handle.read()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            handle.truncate(end)  # a half-written last line
        last = data[:end].rstrip(b"\n").rsplit(b"\n", 1)[-1]
    if not last:
        return 0
    try:
        number = json.loads(last)["row"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{partial} does not end with a row written by guideline batch") from None
    if not isinstance(number, int):
        raise ValueError(f"{partial} does not end with a row written by guideline batch")
    return number
