"""Cohorts beyond one machine (issue 20): Parquet in and out, DataFrames, a 2-worker Dask cluster."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import threading

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pd = pytest.importorskip("pandas")
distributed = pytest.importorskip("dask.distributed")

import engine  # noqa: E402
from engine.frontends.batch import evaluate_row  # noqa: E402
from engine.frontends.cohort import (  # noqa: E402
    ParquetRecords,
    evaluate_frame,
    facts_of_record,
    parquet_rows,
    run_on_dask,
    write_jsonl,
)

from .conftest import SHIPPED  # noqa: E402
from .oracle.cohort import cohort  # noqa: E402

DAY = dt.date(2026, 11, 27)


@pytest.fixture(scope="module")
def guideline() -> engine.Guideline:
    return engine.load(SHIPPED)


@pytest.fixture(scope="module")
def patients(guideline) -> list[dict]:
    return [{"patient_id": f"p{i}", **p} for i, p in enumerate(cohort(guideline, 1500, 11))]


@pytest.fixture(scope="module")
def cluster():
    # Two worker processes, one thread each, on loopback: the real scheduler, workers and nannies.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  host="127.0.0.1") as local, distributed.Client(local) as client:
        yield local, client


def _as_table_row(facts: dict) -> dict:
    """A patient as a Parquet row: quantities as a number and a FACT_unit column, lists as list cells."""
    row: dict = {}
    for key, value in facts.items():
        if isinstance(value, dict):
            row[key], row[f"{key}_unit"] = float(value["value"]), value["unit"]
        else:
            row[key] = value
    return row


def _write_parquet(path, patients: list[dict]) -> None:
    rows = [_as_table_row(p) for p in patients]
    keys = sorted({k for r in rows for k in r})
    pq.write_table(pa.Table.from_pylist([{k: r.get(k) for k in keys} for r in rows]), path)


def _jsonl(patients: list[dict]) -> str:
    return "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in patients)


def test_parquet_input_gives_the_same_lines_as_json_lines(cli, tmp_path, patients) -> None:
    (tmp_path / "c.jsonl").write_text(_jsonl(patients), encoding="utf-8")
    _write_parquet(tmp_path / "c.parquet", patients)
    for name in ("c.jsonl", "c.parquet"):
        code, out, err = cli("batch", str(SHIPPED), "--facts", str(tmp_path / name), "--out",
                             str(tmp_path / f"{name}.out"), "--date", DAY.isoformat())
        assert (code, err) == (0, ""), err
        assert out.startswith("1500 row(s): 1500 evaluated, 0 with errors\n")
    assert (tmp_path / "c.parquet.out").read_bytes() == (tmp_path / "c.jsonl.out").read_bytes()


def test_a_quantity_column_takes_a_declared_unit_and_a_bare_number_is_refused(guideline, tmp_path, cli) -> None:
    pq.write_table(pa.Table.from_pylist([
        {"patient_id": "a", "bone_metastases": True, "vitamin_d_25oh": 42.0},
        {"patient_id": "b", "bone_metastases": True, "vitamin_d_25oh": None},
    ]), tmp_path / "u.parquet")
    rows = list(parquet_rows(tmp_path / "u.parquet", guideline, {"vitamin_d_25oh": "nmol/L"}))
    assert rows == [(1, {"patient_id": "a", "bone_metastases": True, "vitamin_d_25oh": {"value": 42.0, "unit": "nmol/L"}}),
                    (2, {"patient_id": "b", "bone_metastases": True})]
    code, _, _ = cli("batch", str(SHIPPED), "--facts", str(tmp_path / "u.parquet"), "--out", str(tmp_path / "u.jsonl"),
                     "--date", DAY.isoformat())
    first = json.loads((tmp_path / "u.jsonl").read_text().splitlines()[0])
    assert code == 1 and first["row"] == 1 and first["patient_id"] == "a"
    assert first["error"][0]["path"] == "vitamin_d_25oh" and "unit" in first["error"][0]["message"]
    code, _, _ = cli("batch", str(SHIPPED), "--facts", str(tmp_path / "u.parquet"), "--out", str(tmp_path / "v.jsonl"),
                     "--date", DAY.isoformat(), "--unit", "vitamin_d_25oh=nmol/L")
    assert code == 0


def test_parquet_output_holds_the_same_records_as_json_lines(cli, tmp_path, patients) -> None:
    (tmp_path / "c.jsonl").write_text(_jsonl(patients[:300]), encoding="utf-8")
    for out in ("o.jsonl", "o.parquet"):
        assert cli("batch", str(SHIPPED), "--facts", str(tmp_path / "c.jsonl"), "--out", str(tmp_path / out),
                   "--date", DAY.isoformat())[0] == 0
    lines = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    table = pq.read_table(tmp_path / "o.parquet").to_pylist()
    assert [{k: v for k, v in r.items() if v is not None} for r in table] == lines
    assert not (tmp_path / "o.parquet.partial").exists()


def test_full_results_in_parquet_and_from_dask_are_the_texts_json_writes(cli, tmp_path, patients, cluster) -> None:
    # Full results travel as the text to_json wrote (Parquet cells, Dask workers' records): never parsed back from a
    # line, never encoded twice. Each must still be what json.dumps writes with the result's dicts.
    local, _ = cluster
    (tmp_path / "c.jsonl").write_text(_jsonl(patients[:150]), encoding="utf-8")
    runs = {"here.jsonl": (), "here.parquet": (), "two.parquet": ("--jobs", "2"),
            "dask.jsonl": ("--engine", "dask", "--scheduler", local.scheduler_address),
            "dask.parquet": ("--engine", "dask", "--scheduler", local.scheduler_address)}
    for out, extra in runs.items():
        code, _, err = cli("batch", str(SHIPPED), "--facts", str(tmp_path / "c.jsonl"), "--out", str(tmp_path / out),
                           "--date", DAY.isoformat(), "--full", "--lang", "fr", *extra)
        assert (code, err) == (0, ""), (out, err)
    lines = (tmp_path / "here.jsonl").read_text(encoding="utf-8").splitlines()
    assert (tmp_path / "dask.jsonl").read_text(encoding="utf-8").splitlines() == lines
    records = [json.loads(line) for line in lines]
    assert len(records) == 150 and all("result" in r for r in records)
    for out in ("here.parquet", "two.parquet", "dask.parquet"):
        table = pq.read_table(tmp_path / out).to_pylist()
        assert [r["result"] for r in table] == [json.dumps(r["result"], ensure_ascii=False) for r in records], out
        assert [{k: v for k, v in r.items() if v is not None and k != "result"} for r in table] == \
            [{k: v for k, v in r.items() if k != "result"} for r in records], out
        metadata = pq.ParquetFile(tmp_path / out).metadata
        assert metadata.num_row_groups == 1 and metadata.num_rows == 150
        encodings = {metadata.row_group(0).column(i).path_in_schema: metadata.row_group(0).column(i).encodings
                     for i in range(metadata.num_columns)}
        # a dictionary for the short repeated texts only (on 20 KB results it made writing four times slower)
        assert "RLE_DICTIONARY" in encodings["recommendations.list.element"]
        assert "RLE_DICTIONARY" not in encodings["result"] and "RLE_DICTIONARY" not in encodings["error"]
    # a Parquet cohort's chunk, as a Dask worker reads and evaluates it: results as their text too
    from engine.frontends.batch import ResultText
    from engine.frontends.cohort import _dask_parquet_chunk, parquet_tasks

    _write_parquet(tmp_path / "c.parquet", patients[:150])
    chunk = _dask_parquet_chunk(engine.load(SHIPPED), str(tmp_path / "c.parquet"), parquet_tasks(tmp_path / "c.parquet")[0],
                                1000, None, DAY, "fr", True)
    assert [type(r["result"]) for r in chunk] == [ResultText] * 150
    assert [json.loads(r["result"]) for r in chunk] == [r["result"] for r in records]


def test_dask_gives_byte_identical_lines_with_the_guideline_shipped_once(cli, tmp_path, patients, cluster) -> None:
    local, client = cluster
    (tmp_path / "c.jsonl").write_text(_jsonl(patients), encoding="utf-8")
    code, _, _ = cli("batch", str(SHIPPED), "--facts", str(tmp_path / "c.jsonl"), "--out", str(tmp_path / "here.jsonl"),
                     "--date", DAY.isoformat())
    assert code == 0
    code, _, err = cli("batch", str(SHIPPED), "--facts", str(tmp_path / "c.jsonl"), "--out",
                       str(tmp_path / "dask.jsonl"), "--date", DAY.isoformat(), "--engine", "dask",
                         "--scheduler", local.scheduler_address)
    assert (code, err) == (0, ""), err
    assert (tmp_path / "dask.jsonl").read_bytes() == (tmp_path / "here.jsonl").read_bytes()
    # a Parquet cohort is read by the workers themselves, a chunk each: the same lines again
    _write_parquet(tmp_path / "c.parquet", patients)
    code, _, err = cli("batch", str(SHIPPED), "--facts", str(tmp_path / "c.parquet"), "--out",
                       str(tmp_path / "dask-parquet.jsonl"), "--date", DAY.isoformat(), "--engine", "dask",
                       "--scheduler", local.scheduler_address)
    assert (code, err) == (0, ""), err
    assert (tmp_path / "dask-parquet.jsonl").read_bytes() == (tmp_path / "here.jsonl").read_bytes()
    # every worker holds the scattered guideline: one copy each, never read from disk there
    held = client.run(lambda dask_worker: [type(v).__name__ for v in dask_worker.data.values()])
    assert held == {} or all(names.count("Guideline") <= 1 for names in held.values())


def test_a_worker_killed_mid_run_loses_and_duplicates_no_row(guideline, patients, cluster) -> None:
    _, client = cluster
    rows = [(i + 1, dict(p)) for i, p in enumerate(patients * 4)]  # 6 000 rows, 60 chunks of 100
    expected = [evaluate_row(guideline, (n, dict(p)), DAY, None, False) for n, p in rows]
    got: list[dict] = []
    killed = threading.Event()

    def put(records: list[dict]) -> None:
        got.extend(records)
        if not killed.is_set():
            killed.set()
            victim = sorted(client.scheduler_info()["workers"])[0]
            # the worker process exits at once; its nanny starts a new one, its tasks run elsewhere
            # (the connection to the dying worker may break: that is the point)
            with contextlib.suppress(Exception):
                client.run(os._exit, 1, workers=[victim], wait=False)

    summary = run_on_dask(guideline, [(n, dict(p)) for n, p in rows], put, day=DAY, client=client, chunk=100)
    assert killed.is_set()
    assert [r["row"] for r in got] == list(range(1, len(rows) + 1))  # each row once, in order
    assert got == expected
    assert summary.rows == len(rows) and summary.errors == 0


def test_dataframes_pandas_and_dask_give_decisions_with_needs(guideline, patients, cluster) -> None:
    import dask
    import dask.dataframe as dd

    frame = pd.DataFrame([_as_table_row(p) for p in patients[:200]])
    decided = evaluate_frame(frame, guideline, DAY)
    assert list(decided.index) == list(frame.index) and len(decided) == 200
    first = patients[0]
    facts = facts_of_record(frame.iloc[0].to_dict(), guideline)
    assert facts == {k: v for k, v in first.items() if v is not None}
    decisions = guideline.decide({k: v for k, v in facts.items() if k != "patient_id"}, on=DAY)
    row = decided.iloc[0]
    assert row["patient_id"] == "p0"
    assert {r: row[f"rule:{r}"] for r in decisions.rules} == {
        r: {True: "fired", False: "not-fired", None: "undetermined"}[o] for r, o in decisions.rules.items()}
    result = guideline.evaluate({k: v for k, v in facts.items() if k != "patient_id"}, on=DAY)
    assert json.loads(row["undetermined"]) == {u.rule: list(u.needs) for u in result.undetermined}
    assert row["recommendations"] == result.recommendation_ids()
    # Dask turns object columns into text by default: booleans read back as "True" (taken as a CSV
    # cell is), but a list cell would become its repr; list columns need the conversion off.
    with dask.config.set({"dataframe.convert-string": False}):
        lazy = evaluate_frame(dd.from_pandas(frame, npartitions=4), guideline, DAY)
        assert lazy.npartitions == 4
        assert lazy.compute().equals(decided)


def test_batch_usage_errors_for_cohorts(cli, tmp_path) -> None:
    code, _, err = cli("batch", str(SHIPPED), "--facts", "-", "--input-format", "parquet", "--out",
                       str(tmp_path / "o.jsonl"))
    assert code == 2 and err == "guideline batch: a Parquet cohort is read from a file, not from stdin\n"
    (tmp_path / "c.jsonl").write_text("{}\n")
    code, _, err = cli("batch", str(SHIPPED), "--facts", str(tmp_path / "c.jsonl"), "--out", str(tmp_path / "o.jsonl"),
                       "--scheduler", "tcp://127.0.0.1:1")
    assert code == 2 and err == "guideline batch: --scheduler needs --engine dask\n"
    code, _, err = cli("batch", str(SHIPPED), "--facts", str(tmp_path / "c.jsonl"), "--out", str(tmp_path / "o.jsonl"),
                       "--unit", "weight")
    assert code == 2 and err == "guideline batch: --unit takes FACT=UNIT, not 'weight'\n"


def test_parquet_records_writer_keeps_nothing_half_written(tmp_path) -> None:
    with ParquetRecords(tmp_path / "r.parquet") as writer:
        writer.put([{"row": 1, "recommendations": ["a"], "undetermined": []},
                    {"row": 2, "error": [{"code": "x", "path": "", "message": "m"}]}])
    table = pq.read_table(tmp_path / "r.parquet").to_pylist()
    assert table[1]["error"] == '[{"code": "x", "path": "", "message": "m"}]' and table[0]["recommendations"] == ["a"]


def test_write_jsonl_writes_the_batch_lines(tmp_path) -> None:
    import io

    out = io.StringIO()
    write_jsonl(out)([{"row": 1, "recommendations": ["é"], "undetermined": []}])
    assert out.getvalue() == '{"row": 1, "recommendations": ["é"], "undetermined": []}\n'


AUDITED = {"bone_metastases": True, "life_expectancy_over_3_months": True, "current_agent": "none",
           "vitamin_d_25oh": {"value": 42, "unit": "nmol/L"}, "serum_creatinine": "1.1 mg/dL",
           "age": 72, "weight": "58 kg", "sex": "female", "bone_pattern": "multiple"}


def _audit_cohort(tmp_path) -> str:
    rows = [
        {"patient_id": "A", **AUDITED, "done": ["vitamin-d-loading-8", "multiple-zoledronic-monthly"],
         "done_dose:multiple-zoledronic-monthly": 4.0},  # advised 3.3 mg for a clearance of 42 mL/min
        {"patient_id": "B", **AUDITED, "done": ["multiple-denosumab-monthly", "out-of-scope"]},
        {"patient_id": "C", **{k: v for k, v in AUDITED.items() if k != "serum_creatinine"},
         "done": ["multiple-zoledronic-monthly"]},  # no creatinine: the zoledronic-acid rule is undetermined
        {"patient_id": "D", **AUDITED, "age": 300},
    ]
    path = tmp_path / "audit.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def test_audit_counts_deviations_by_type_with_the_patient_ids(cli, tmp_path) -> None:
    code, out, err = cli("audit", str(SHIPPED), "--cohort", _audit_cohort(tmp_path), "--date", DAY.isoformat(),
                         "--format", "json", "--plot", str(tmp_path / "deviations.png"))
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert (report["rows"], report["evaluated"], list(report["errors"])) == (4, 3, ["D"])
    assert report["deviations"]["dose-differs"] == {"multiple-zoledronic-monthly": ["A"]}
    assert report["deviations"]["done-undetermined"] == {"multiple-zoledronic-monthly": ["C"]}
    assert report["deviations"]["done-not-advised"] == {"out-of-scope": ["B"]}
    assert report["deviations"]["not-done"]["multiple-zoledronic-monthly"] == ["B"]
    assert report["deviations"]["not-done"]["check-renal-function"] == ["C"]
    assert report["recommendations"]["vitamin-d-loading-8"] == {"advised": 3, "done": 1, "both": 1}
    assert report["undetermined_reasons"]["serum_creatinine"] == ["C"]
    assert report["deviation_counts"]["dose-differs"] == 1
    png = (tmp_path / "deviations.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    code, out, _ = cli("audit", str(SHIPPED), "--cohort", _audit_cohort(tmp_path), "--date", DAY.isoformat(),
                       "--format", "markdown")
    assert code == 0 and out.startswith("# Audit: 4 patient(s), 3 evaluated, 1 with errors\n")
    assert "| vitamin-d-loading-8 | 3 | 1 | 1 |" in out and "    - multiple-zoledronic-monthly: 1 (A)" in out


def test_audit_reads_done_and_doses_from_csv_cells(cli, tmp_path) -> None:
    header = "patient_id,bone_metastases,life_expectancy_over_3_months,current_agent,measured_clearance,bone_pattern,"
    header += "done,done_dose:multiple-zoledronic-monthly\n"
    (tmp_path / "c.csv").write_text(header + "E,true,true,none,45 mL/min,multiple,"
                                    "vitamin-d-status;multiple-zoledronic-monthly,3.3\n", encoding="utf-8")
    code, out, _ = cli("audit", str(SHIPPED), "--cohort", str(tmp_path / "c.csv"), "--date", DAY.isoformat(),
                       "--format", "json")
    report = json.loads(out)
    assert code == 0 and report["errors"] == {} and report["deviations"]["dose-differs"] == {}
    assert report["recommendations"]["multiple-zoledronic-monthly"] == {"advised": 1, "done": 1, "both": 1}
    code, _, err = cli("audit", str(SHIPPED), "--cohort", str(tmp_path / "missing.csv"))
    assert code == 2 and err == f"guideline audit: cannot read {tmp_path / 'missing.csv'}: no such file\n"
