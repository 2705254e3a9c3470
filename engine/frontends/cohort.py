"""Cohorts as tables: Parquet in and out, pandas and Dask DataFrames, a Dask cluster.

A cohort that lives in Parquet or in a DataFrame is read row by row into
facts (column names are fact names; a quantity is a number column with its
unit in ``<name>_unit``, or a number column with a declared default unit, or
a text such as ``"42 nmol/L"``; an empty cell is unknown) and each row goes
through the same :func:`engine.frontends.batch.evaluate_row` as ``guideline
batch``, so the records are the same whatever the engine. On a Dask cluster
the compiled guideline is sent to every worker once (it pickles with its
generated code) and never read from disk there; rows travel by the chunk,
and a chunk whose worker dies is computed again by another (Dask retries
it), so no row is lost or written twice: the client writes chunks in order.

pyarrow, pandas and dask are imported only here, when a cohort needs them
(``pip install 'guideline-engine[cohort]'``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from engine.errors import EngineError
from engine.frontends.batch import (
    BatchSummary,
    ResultText,
    cell_value,
    chunks_of,
    evaluate_row,
    in_order,
    json_line,
    recommendation_ids,
)
from engine.guideline import Guideline
from engine.needs import missing_facts_of

__all__ = [
    "RECORD_SCHEMA",
    "ParquetRecords",
    "decisions_frame",
    "evaluate_frame",
    "facts_of_record",
    "parquet_rows",
    "parquet_tasks",
    "run_on_dask",
]

_CHUNK = 1000  # rows per task: per-row tasks would cost more than the evaluation


def _plain(value: Any) -> Any:
    """A cell as a plain Python value; None for an empty cell (None, NaN, pandas' NA and NaT)."""
    if value is None:
        return None
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and not isinstance(value, (str, bytes, list, tuple, dict)):
        with contextlib.suppress(ValueError, TypeError):
            value = item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # a list cell (numpy array)
        return [_plain(v) for v in value.tolist()]
    return value


def facts_of_record(record: Mapping[str, Any], guideline: Guideline, units: Mapping[str, str] | None = None
                    ) -> dict[str, Any]:
    """The facts of one table row: empty cells left out, quantities given their unit (never guessed).

    A quantity's unit comes from its ``<name>_unit`` column, else from ``units``
    (a default unit declared per column); a bare number with neither is passed
    on as it is, and the facts validation refuses it ("has no unit"), as it
    would in a JSON row.
    """
    specs = guideline.compiled.facts
    units = units or {}
    facts: dict[str, Any] = {}
    for key, raw in record.items():
        if key.endswith("_unit") and key[:-5] in specs and specs[key[:-5]].units is not None:
            continue
        value = _plain(raw)
        if value is None:
            continue
        spec = specs.get(key)
        if spec is not None and spec.units is not None and isinstance(value, (int, float)) \
                and not isinstance(value, bool):
            unit = _plain(record.get(f"{key}_unit")) or units.get(key)
            if unit is not None:
                value = {"value": value, "unit": unit}
        elif spec is not None and isinstance(value, str) and spec.type in ("boolean", "integer", "number", "list"):
            # a column stored as text (Dask turns object columns into strings: "True", "3"), read as CSV is
            value = cell_value(spec, value)
            if value is None:
                continue
        facts[key] = value
    return facts


# --- Parquet ------------------------------------------------------------------------------------


def parquet_rows(path: str | Path, guideline: Guideline, units: Mapping[str, str] | None = None,
                 batch_size: int = 10_000) -> Iterator[tuple[int, Any]]:
    """(row number from 1, facts) for each row of a Parquet file, read one record batch at a time."""
    import pyarrow.parquet as pq

    number = 0
    with pq.ParquetFile(path) as source:
        for batch in source.iter_batches(batch_size=batch_size):
            for record in batch.to_pylist():
                number += 1
                yield number, facts_of_record(record, guideline, units)


def _record_schema() -> Any:
    import pyarrow as pa

    return pa.schema([
        ("row", pa.int64()), ("patient_id", pa.string()), ("recommendations", pa.list_(pa.string())),
        ("undetermined", pa.list_(pa.string())), ("error", pa.string()), ("result", pa.string())])


RECORD_SCHEMA = "row, patient_id, recommendations (list), undetermined (list), error (JSON), result (JSON)"


def _columns(records: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {
        "row": [r["row"] for r in records],
        "patient_id": [None if r.get("patient_id") is None else str(r["patient_id"]) for r in records],
        "recommendations": [r.get("recommendations") for r in records],
        "undetermined": [r.get("undetermined") for r in records],
        "error": [json.dumps(r["error"], ensure_ascii=False) if "error" in r else None for r in records],
        "result": [_json_of(r["result"]) if "result" in r else None for r in records],
    }


def _json_of(result: Any) -> str:
    """A full result's JSON text: as it was written (``to_json``), or its dicts written now."""
    return result if type(result) is ResultText else json.dumps(result, ensure_ascii=False)


class ParquetRecords:
    """Batch records written to a Parquet file one chunk at a time (the same fields as the JSON lines)."""

    def __init__(self, path: str | Path) -> None:
        import pyarrow.parquet as pq

        self._schema = _record_schema()
        # Dictionary encoding for the short, repeated texts only: tried on the JSON of errors and full
        # results (each different, some 20 KB), it made writing them four times slower for nothing.
        self._writer = pq.ParquetWriter(str(path), self._schema, use_dictionary=[
            "patient_id", "recommendations.list.element", "undetermined.list.element"])

    def __enter__(self) -> ParquetRecords:
        return self

    def put(self, records: list[dict[str, Any]]) -> None:
        """Write one chunk of records."""
        import pyarrow as pa

        if records:
            self._writer.write_table(pa.Table.from_pydict(_columns(records), schema=self._schema))

    def __exit__(self, *exc: Any) -> None:
        self._writer.close()


# --- DataFrames ---------------------------------------------------------------------------------


def _decisions(guideline: Guideline, facts: dict[str, Any], day: dt.date) -> dict[str, Any]:
    """One row of the decisions frame: rules, derived values, table outputs, recommendations and needs."""
    patient_id = facts.pop("patient_id", None)
    row: dict[str, Any] = {"patient_id": None if patient_id is None else str(patient_id)}
    try:
        decided = guideline.decide(facts, on=day)
    except EngineError as exc:
        row["error"] = json.dumps([{"code": d.code, "path": d.path, "message": d.message}
                                   for d in exc.diagnostics], ensure_ascii=False)
        return row
    g = guideline.compiled
    row["error"] = None
    for rule in g.rules:
        outcome = decided.rules[rule.id]
        row[f"rule:{rule.id}"] = "fired" if outcome is True else "not-fired" if outcome is False else "undetermined"
    for name in g.derived:
        row[name] = _cell(decided.values.get(name))
    for table in g.tables.values():
        for out in table.outputs:
            row[out] = _cell(decided.values.get(out))
    row["recommendations"] = recommendation_ids(guideline, decided)
    row["undetermined"] = json.dumps(
        {rule.id: sorted(missing_facts_of(rule.when.tree, g, decided.values))
         for rule in g.rules if decided.rules[rule.id] is None}, ensure_ascii=False)
    return row


def _cell(value: Any) -> Any:
    """A value as a DataFrame cell: dates in ISO form, a score's range and lists as JSON text."""
    if isinstance(value, (dt.date, tuple, list)) or hasattr(value, "as_json"):
        from engine.results import to_json_value

        return json.dumps(to_json_value(value), ensure_ascii=False)
    return value


def decisions_frame(frame: Any, guideline: Guideline, day: dt.date, units: Mapping[str, str] | None = None) -> Any:
    """A pandas DataFrame of decisions for a pandas DataFrame of facts, row for row (same index).

    Columns: ``patient_id``, ``error`` (the facts' problems as JSON, else
    empty), ``rule:<id>`` (fired / not-fired / undetermined) for every rule,
    one column per derived value and table output, ``recommendations`` (ids)
    and ``undetermined`` (JSON: each undetermined rule and the missing facts
    that could decide it).
    """
    import pandas as pd

    rows = [_decisions(guideline, facts_of_record(record, guideline, units), day)
            for record in frame.to_dict("records")]
    columns = _frame_columns(guideline)
    return pd.DataFrame(rows, index=frame.index, columns=columns)


def _frame_columns(guideline: Guideline) -> list[str]:
    g = guideline.compiled
    return (["patient_id", "error"] + [f"rule:{r.id}" for r in g.rules] + list(g.derived)
            + [out for t in g.tables.values() for out in t.outputs] + ["recommendations", "undetermined"])


def evaluate_frame(frame: Any, guideline: Guideline, day: dt.date, units: Mapping[str, str] | None = None) -> Any:
    """Decisions for a pandas or a Dask DataFrame of facts (a Dask frame: partition by partition, lazily)."""
    import pandas as pd

    if isinstance(frame, pd.DataFrame):
        return decisions_frame(frame, guideline, day, units)
    meta = pd.DataFrame({c: pd.Series(dtype="object") for c in _frame_columns(guideline)})
    return frame.map_partitions(decisions_frame, guideline, day, units, meta=meta)


# --- a Dask cluster -----------------------------------------------------------------------------


def _dask_chunk(guideline: Guideline, items: list[tuple[int, Any]], day: dt.date, lang: str | None,
                full: bool) -> list[dict[str, Any]]:
    # full results travel as their JSON text (to_json in the worker), not as dicts the client would encode
    return [evaluate_row(guideline, item, day, lang, full, as_text=True) for item in items]


def parquet_tasks(path: str | Path, chunk: int = _CHUNK) -> list[tuple[int, int, int]]:
    """(row group, batch within it, number of its first row) for each ``chunk`` rows of a Parquet file."""
    import pyarrow.parquet as pq

    tasks: list[tuple[int, int, int]] = []
    first = 1
    with pq.ParquetFile(path) as source:
        for group in range(source.metadata.num_row_groups):
            rows = source.metadata.row_group(group).num_rows
            for batch in range(math.ceil(rows / chunk)):
                tasks.append((group, batch, first + batch * chunk))
            first += rows
    return tasks


def _dask_parquet_chunk(guideline: Guideline, path: str, task: tuple[int, int, int], chunk: int,
                        units: Mapping[str, str] | None, day: dt.date, lang: str | None, full: bool
                        ) -> list[dict[str, Any]]:
    """One chunk of a Parquet file, read by the worker itself: rows never pass through the client."""
    import pyarrow.parquet as pq

    group, wanted, first = task
    with pq.ParquetFile(path) as source:
        for index, batch in enumerate(source.iter_batches(batch_size=chunk, row_groups=[group])):
            if index == wanted:
                return _dask_chunk(guideline, [(first + k, facts_of_record(record, guideline, units))
                                               for k, record in enumerate(batch.to_pylist())], day, lang, full)
    return []


class _Waiting:
    """A submitted chunk, waited for in order (what :func:`in_order` expects of a handle)."""

    def __init__(self, future: Any) -> None:
        self.future = future

    def get(self) -> Any:
        return self.future.result()


def run_on_dask(guideline: Guideline, rows: Iterable[tuple[int, Any]] | None, put: Any, *, day: dt.date,
                lang: str | None = None, full: bool = False, scheduler: str | None = None, workers: int = 2,
                chunk: int = _CHUNK, client: Any = None, parquet: str | Path | None = None,
                units: Mapping[str, str] | None = None, skip: int = 0) -> BatchSummary:
    """Evaluate ``rows`` (or the ``parquet`` file) on a Dask cluster; ``put(records)`` receives each chunk's
    records, in input order.

    ``scheduler`` is a running scheduler's address; without one a local
    cluster of ``workers`` processes is started for the run (and stopped).
    The guideline is scattered to every worker once. A Parquet file is read
    by the workers, a chunk each (the path must be readable where they run:
    the same machine, or shared storage); other rows are read here and sent
    by the chunk. Each chunk is a task Dask may run again on another worker
    if its worker dies (``retries=2``); the client writes a chunk only once,
    when its result is in.
    """
    from dask.distributed import Client, LocalCluster

    summary = BatchSummary()
    owned: list[Any] = []
    if client is None:
        if scheduler:
            client = Client(scheduler)
        else:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
            owned.append(cluster)
            client = Client(cluster)
        owned.insert(0, client)
    try:
        shared = client.scatter(guideline, broadcast=True)
        window = 4 * max(1, len(client.scheduler_info().get("workers", {})) or workers)

        def submit(items: list[tuple[int, Any]]) -> _Waiting:
            return _Waiting(client.submit(_dask_chunk, shared, items, day, lang, full, pure=False, retries=2))

        def submit_parquet(task: tuple[int, int, int]) -> _Waiting:
            return _Waiting(client.submit(_dask_parquet_chunk, shared, str(parquet), task, chunk, units, day, lang,
                                          full, pure=False, retries=2))

        if parquet is not None:
            tasks = [t for t in parquet_tasks(parquet, chunk) if t[2] + chunk - 1 > skip]
            results = in_order(submit_parquet, tasks, window=window)
        else:
            results = in_order(submit, chunks_of(rows or (), chunk), window=window)
        for records in results:
            records = [r for r in records if r["row"] > skip] if skip else records
            put(records)
            for record in records:
                summary.add(record)
    finally:
        for thing in owned:
            thing.close()
    return summary


def write_jsonl(out: IO[str]) -> Any:
    """``put`` for :func:`run_on_dask` writing JSON lines (the same lines as the in-process batch)."""
    def put(records: list[dict[str, Any]]) -> None:
        out.write("".join(json_line(r) + "\n" for r in records))
    return put
