"""guideline batch: streaming cohorts, error rows, order with --jobs, summary."""

from __future__ import annotations

import datetime as dt
import json

import pytest

import engine

from .conftest import SHIPPED, baseline_facts

ROWS = [
    {"patient_id": "p1", "bone_metastases": True, "life_expectancy_over_3_months": True, "current_agent": "none",
     "vitamin_d_25oh": "12 ng/mL"},
    {"bone_metastases": False},
    {"age": 12},
]


def write_jsonl(path, rows, extra: bytes = b"") -> None:
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in rows) + extra)


def test_jsonl_rows_errors_and_summary(cli, tmp_path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(source, ROWS, b"not json\n\xff\xfe\n[1, 2]\n")
    code, out, err = cli("batch", str(SHIPPED), "--facts", str(source), "--out", str(target), "--date", "2026-11-27",
                         "--summary-format", "json")
    assert code == 1 and err == ""
    records = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["row"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert records[0]["patient_id"] == "p1" and "vitamin-d-loading-8" in records[0]["recommendations"]
    assert records[1]["recommendations"] == ["out-of-scope"]
    assert records[2]["error"][0]["message"] == "age: 12 is outside the plausible range 18 to 120"
    assert records[3]["error"][0]["code"] == "batch.parse"
    assert records[4]["error"][0]["message"] == "not valid UTF-8"
    assert records[5]["error"][0]["code"] == "facts.not-a-mapping"
    summary = json.loads(out)
    assert (summary["rows"], summary["evaluated"], summary["errors"]) == (6, 2, 4)
    assert summary["recommendations"]["out-of-scope"] == 1
    assert not (tmp_path / "out.jsonl.partial").exists()


def test_csv_input(cli, tmp_path) -> None:
    source, target = tmp_path / "in.csv", tmp_path / "out.jsonl"
    source.write_text("bone_metastases,skeletal_event,current_agent,vitamin_d_25oh,comedications,age\n"
                      "true,true,none,40 nmol/L,corticosteroids;antiangiogenic,70\n"
                      "true,,none,,,abc\n", encoding="utf-8")
    code, out, _ = cli("batch", str(SHIPPED), "--facts", str(source), "--out", str(target), "--date", "2026-11-27")
    assert code == 1
    first, second = [json.loads(line) for line in target.read_text().splitlines()]
    assert "vitamin-d-loading-8" in first["recommendations"] and "start-antiresorptive" in first["recommendations"]
    assert second["row"] == 2 and "expected a number, got 'abc'" in second["error"][0]["message"]
    assert out.startswith("2 row(s): 1 evaluated, 1 with errors")


def test_jobs_keep_order_and_results(cli, tmp_path) -> None:
    source = tmp_path / "in.jsonl"
    rows = [{"bone_metastases": True, "skeletal_event": True, "current_agent": "none",
             "measured_clearance": f"{20 + i % 60} mL/min", "bone_pattern": ("multiple", "oligometastatic")[i % 2]}
            for i in range(2500)]
    write_jsonl(source, rows)
    outputs = []
    for jobs in ("1", "2"):
        target = tmp_path / f"out{jobs}.jsonl"
        code, _, _ = cli("batch", str(SHIPPED), "--facts", str(source), "--out", str(target),
                         "--date", "2026-11-27", "--jobs", jobs)
        assert code == 0
        outputs.append(target.read_text())
    assert outputs[0] == outputs[1]
    assert outputs[0].count("\n") == 2500


def test_stdin_full_results_and_usage(cli, tmp_path) -> None:
    target = tmp_path / "out.jsonl"
    data = json.dumps(ROWS[0]).encode() + b"\n"
    code, _out, _ = cli("batch", str(SHIPPED), "--facts", "-", "--out", str(target), "--date", "2026-11-27",
                       "--full", "--lang", "en", stdin=data)
    assert code == 0
    record = json.loads(target.read_text())
    assert record["result"]["lang"] == "en" and record["result"]["recommendations"][0]["text"]
    assert cli("batch", str(SHIPPED), "--facts", "-", "--out", "-")[0] == 2
    assert cli("batch", str(SHIPPED), "--facts", str(tmp_path / "none.jsonl"), "--out", str(target))[0] == 2
    assert cli("batch", str(SHIPPED), "--facts", "-", "--out", str(target), "--jobs", "0")[0] == 2


def test_parallel_results_come_in_order_with_a_bounded_window() -> None:
    """At most `window` chunks are submitted and not yet taken, whatever order the workers finish in."""
    import random

    from engine.frontends.batch import in_order

    in_flight: list[int] = []
    high_water = 0

    class Handle:
        def __init__(self, chunk: int) -> None:
            self.chunk = chunk

        def get(self) -> int:
            in_flight.remove(self.chunk)
            return self.chunk * 10

    def submit(chunk: int) -> Handle:
        nonlocal high_water
        in_flight.append(chunk)
        high_water = max(high_water, len(in_flight))
        return Handle(chunk)

    taken = []
    for result in in_order(submit, iter(range(50)), window=4):
        taken.append(result)
        assert len(in_flight) <= 4
    assert taken == [c * 10 for c in range(50)]
    assert high_water == 4 and in_flight == []
    assert list(in_order(submit, iter([]), window=4)) == []
    random.seed(1)
    assert list(in_order(submit, iter([7]), window=3)) == [70]


def test_a_killed_run_resumes_from_its_partial_file(cli, tmp_path) -> None:
    rows = [json.dumps({"patient_id": f"P{i}", **baseline_facts(), "age": 50 + i}) for i in range(1, 11)]
    (tmp_path / "cohort.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    whole = tmp_path / "whole.jsonl"
    code, _, err = cli("batch", str(SHIPPED), "--facts", str(tmp_path / "cohort.jsonl"), "--out", str(whole),
                       "--date", "2026-11-27")
    assert code == 0, err
    lines = whole.read_text(encoding="utf-8").splitlines(keepends=True)
    out = tmp_path / "out.jsonl"
    # What a run killed during row 5 leaves: four whole rows and half a line.
    (tmp_path / "out.jsonl.partial").write_text("".join(lines[:4]) + lines[4][:17], encoding="utf-8")
    code, report, err = cli("batch", str(SHIPPED), "--facts", str(tmp_path / "cohort.jsonl"), "--out", str(out),
                            "--date", "2026-11-27", "--resume", "--jobs", "2")
    assert code == 0, err
    assert out.read_text(encoding="utf-8") == whole.read_text(encoding="utf-8")
    assert not (tmp_path / "out.jsonl.partial").exists()
    assert report.startswith("6 row(s): 6 evaluated, 0 with errors")  # the rows this run added
    code, _, err = cli("batch", str(SHIPPED), "--facts", str(tmp_path / "cohort.jsonl"), "--out", str(out),
                       "--date", "2026-11-27", "--resume")
    assert code == 2 and "--resume needs the" in err


def test_workers_get_the_compiled_guideline_not_the_file(tmp_path) -> None:
    import io

    from engine.frontends.batch import run_batch

    copy = tmp_path / "guideline.yaml"
    copy.write_text(SHIPPED.read_text(encoding="utf-8"), encoding="utf-8")
    g = engine.load(copy)
    copy.unlink()  # workers that read the file would fail now
    out = io.StringIO()
    summary = run_batch(g, enumerate([baseline_facts()] * 30, start=1), out, day=dt.date(2026, 11, 27), jobs=2)
    assert summary.to_dict()["errors"] == 0 and len(out.getvalue().splitlines()) == 30


def test_records_can_go_to_a_writer_of_their_own_in_chunks(shipped) -> None:
    import io

    from engine.frontends.batch import ResultText, json_line, run_batch

    rows = list(enumerate([baseline_facts()] * 5 + [{"age": 12}] + [baseline_facts()] * 6, start=1))
    lines = io.StringIO()
    expected = run_batch(shipped, rows, lines, day=dt.date(2026, 11, 27), full=True)
    for jobs in (1, 2):
        chunks: list[list[dict]] = []
        progress = io.StringIO()
        summary = run_batch(shipped, rows, None, day=dt.date(2026, 11, 27), full=True, jobs=jobs,
                            put=chunks.append, progress=progress)
        records = [r for chunk in chunks for r in chunk]
        assert summary.to_dict() == expected.to_dict() and summary.to_dict()["errors"] == 1
        assert progress.getvalue() == "\r12 rows, 1 errors\n"
        assert [json_line(r) for r in records] == lines.getvalue().splitlines()  # the same records as the lines
        assert [type(r["result"]) for r in records if "error" not in r] == [ResultText] * 11
    sizes: list[int] = []  # full results go 1 000 at a time (a Parquet row group of about 20 MB)
    run_batch(shipped, enumerate([baseline_facts()] * 1001, start=1), None, day=dt.date(2026, 11, 27), full=True,
              put=lambda records: sizes.append(len(records)))
    assert sizes == [1000, 1]
    small: list[int] = []
    from engine.frontends import batch

    batch._put_all(iter([{"row": n, "error": []} for n in range(25)]), lambda r: small.append(len(r)), batch.BatchSummary(),
                   None, size=10)
    assert small == [10, 10, 5]
    with pytest.raises(ValueError, match="needs an output"):
        run_batch(shipped, rows, None, day=dt.date(2026, 11, 27))


def test_full_results_with_jobs_are_the_results_json_writes(cli, shipped, tmp_path) -> None:
    """--full lines, in one process or two, carry each patient's result as json.dumps writes to_dict()."""
    source = tmp_path / "in.jsonl"
    rows = [{"patient_id": f"p{i}", "bone_metastases": True, "skeletal_event": i % 3 != 0,
             "current_agent": ("none", "zoledronic_acid")[i % 2], "measured_clearance": f"{20 + i % 60} mL/min",
             "vitamin_d_25oh": f"{10 + i % 50} ng/mL"} for i in range(300)]
    write_jsonl(source, rows + [{"age": 12}])
    outputs = []
    for jobs in ("1", "2"):
        target = tmp_path / f"full{jobs}.jsonl"
        code, _, _ = cli("batch", str(SHIPPED), "--facts", str(source), "--out", str(target),
                         "--date", "2026-11-27", "--jobs", jobs, "--full", "--lang", "fr")
        assert code == 1  # the last row is refused
        outputs.append(target.read_text())
    assert outputs[0] == outputs[1]
    lines = outputs[0].splitlines()
    assert len(lines) == 301 and json.loads(lines[-1])["error"]
    for number, (row, line) in enumerate(zip(rows, lines, strict=False), start=1):
        facts = {k: v for k, v in row.items() if k != "patient_id"}
        result = shipped.evaluate(facts, on=dt.date(2026, 11, 27), lang="fr")
        expected = {"row": number, "patient_id": row["patient_id"], "recommendations": result.recommendation_ids(),
                    "undetermined": [u.rule for u in result.undetermined], "result": result.to_dict()}
        assert line == json.dumps(expected, ensure_ascii=False)
