#!/usr/bin/env python3
"""Cohort throughput: in-process batch against a Dask cluster of 1 and 2 workers, on this machine.

    python tools/bench_cohort.py [--rows 200000] [--seed 7] [--chunk 1000]

Writes a synthetic cohort (tests/oracle/cohort.py) as Parquet, with
quantities as value and unit columns, then evaluates it (decisions, as
``guideline batch`` writes them) in this process and on a local Dask cluster
of 1 and 2 worker processes (one thread each). Prints rows per second, the
scaling efficiency of 2 workers against 1 (rate(2) / (2 x rate(1))), the
figure per worker to plan a cluster with, and checks that every engine wrote
the same lines (a SHA-256 of the JSON lines). Figures move with the machine:
read them as ratios measured in one run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyarrow as pa
import pyarrow.parquet as pq
from dask.distributed import Client, LocalCluster

import engine
from engine.frontends.batch import BatchSummary, evaluate_row, json_line
from engine.frontends.cohort import parquet_rows, run_on_dask
from tests.oracle.cohort import cohort

GUIDELINE = ROOT / "guidelines" / "bone-metastases" / "guideline.yaml"
DAY = dt.date(2026, 11, 27)


def write_cohort(path: Path, g: engine.Guideline, rows: int, seed: int) -> None:
    """The synthetic cohort as Parquet, written by blocks of 50 000 rows."""
    writer = None
    made = 0
    block = 0
    while made < rows:
        size = min(50_000, rows - made)
        table_rows = []
        for i, facts in enumerate(cohort(g, size, seed + block)):
            row: dict[str, Any] = {"patient_id": f"p{made + i}"}
            for key, value in facts.items():
                if isinstance(value, dict):
                    row[key], row[f"{key}_unit"] = float(value["value"]), value["unit"]
                else:
                    row[key] = value
            table_rows.append(row)
        keys = sorted({k for r in table_rows for k in r} | (set() if writer is None else set(writer.schema.names)))
        table = pa.Table.from_pylist([{k: r.get(k) for k in keys} for r in table_rows],
                                     schema=None if writer is None else writer.schema)
        if writer is None:
            writer = pq.ParquetWriter(str(path), table.schema)
        writer.write_table(table)
        made += size
        block += 1
    if writer is not None:
        writer.close()


class Digest:
    """``put`` for run_on_dask: the SHA-256 of the JSON lines, nothing kept."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def put(self, records: list[dict[str, Any]]) -> None:
        self.hash.update("".join(json_line(r) + "\n" for r in records).encode())  # the lines batch writes


def in_process(g: engine.Guideline, path: Path) -> tuple[float, str, int]:
    digest = Digest()
    summary = BatchSummary()
    start = time.perf_counter()
    chunk: list[dict[str, Any]] = []
    for item in parquet_rows(path, g):
        record = evaluate_row(g, item, DAY, None, False)
        summary.add(record)
        chunk.append(record)
        if len(chunk) == 1000:
            digest.put(chunk)
            chunk = []
    digest.put(chunk)
    return time.perf_counter() - start, digest.hash.hexdigest(), summary.rows


def on_dask(g: engine.Guideline, path: Path, workers: int, chunk: int) -> tuple[float, str, int]:
    digest = Digest()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      host="127.0.0.1") as cluster, Client(cluster) as client:
        client.wait_for_workers(workers)
        start = time.perf_counter()
        summary = run_on_dask(g, None, digest.put, day=DAY, client=client, chunk=chunk, parquet=path)
        elapsed = time.perf_counter() - start
    return elapsed, digest.hash.hexdigest(), summary.rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chunk", type=int, default=1000, help="rows per Dask task")
    args = parser.parse_args(argv)
    g = engine.load(GUIDELINE)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cohort.parquet"
        start = time.perf_counter()
        write_cohort(path, g, args.rows, args.seed)
        print(f"cohort: {args.rows} rows written as Parquet in {time.perf_counter() - start:.1f} s "
              f"({path.stat().st_size / 1e6:.1f} MB)")
        runs = {"in-process (batch, 1 process)": in_process(g, path)}
        for workers in (1, 2):
            runs[f"Dask, {workers} worker(s)"] = on_dask(g, path, workers, args.chunk)
    digests = {digest for _, digest, _ in runs.values()}
    print(f"{'engine':34} {'seconds':>8} {'rows/s':>10}")
    rates = {}
    for name, (seconds, _, rows) in runs.items():
        rates[name] = rows / seconds
        print(f"{name:34} {seconds:8.2f} {rates[name]:10.0f}")
    one, two = rates["Dask, 1 worker(s)"], rates["Dask, 2 worker(s)"]
    print(f"scaling efficiency of 2 workers: {two / (2 * one):.2f}; per worker: about {one:.0f} rows/s "
          f"(a 100-million-row registry: about {1e8 / one / 3600:.1f} worker-hours)")
    same = len(digests) == 1
    print(f"identical lines from every engine: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
