"""The ``guideline`` command line.

Each command is ``run(argv, stdout, stderr, stdin) -> int`` so tests call it
without patching ``sys``; ``main`` only exits. Results go to stdout, problems
to stderr. Exit codes: 0 success, 1 checks ran and found problems, 2 bad
input or usage, 3 an internal error (a bug: please report). Output is written only once it is complete, so a failure
never leaves half a result.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, NoReturn

from engine import __version__
from engine.errors import Diagnostic, EngineError
from engine.facts import read_facts
from engine.guideline import check_text, default_cache_dir, load
from engine.limits import DEFAULT_LIMITS
from engine.loading import read_source
from engine.render import FORMATS, render
from engine.texts.words import RESULT, words

__all__ = ["main", "run"]

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting and writes help to the given stream."""

    def __init__(self, *args: Any, out: IO[str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._out = out

    def _print_message(self, message: str, file: Any = None) -> None:
        if message:
            (self._out or sys.stdout).write(message)

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: error: {message}\n{self.format_usage().strip()}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            raise _UsageError(message.strip())
        raise _Exit(status)


class _Exit(Exception):
    def __init__(self, status: int):
        self.status = status


def _parser(stdout: IO[str]) -> _Parser:
    parser = _Parser(prog="guideline", description="Declarative clinical-guideline interpreter.", out=stdout)
    parser.add_argument("--version", action="version", version=f"guideline {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    validate = sub.add_parser("validate", out=stdout, help="check guideline files: YAML, schema, expressions, templates",
                              description="Report every problem of each guideline as file:line:col. "
                                          "Exit 0 when clean, 1 when problems were found, 2 on usage errors.")
    validate.add_argument("paths", nargs="+", metavar="PATH",
                          help="guideline files, or folders searched for guideline.yaml")
    validate.add_argument("--format", choices=("text", "json"), default="text", help="output format")

    evaluate = sub.add_parser("evaluate", out=stdout, help="evaluate one patient's facts",
                              description="Evaluate a guideline for one patient and print the recommendations.")
    evaluate.add_argument("guideline", metavar="GUIDELINE", help="the guideline YAML file")
    evaluate.add_argument("--fhir", metavar="BUNDLE",
                          help="a FHIR R4 Bundle (JSON) or a list of resources: facts with a fhir binding are read "
                               "from it; --facts then gives the others")
    evaluate.add_argument("--facts", metavar="FILE",
                          help="the patient's facts as YAML or JSON; - reads standard input")
    evaluate.add_argument("--date", metavar="YYYY-MM-DD", help="evaluation date (default: today)")
    evaluate.add_argument("--lang", help="language of the texts (default: the guideline's primary language)")
    evaluate.add_argument("--format", choices=(*FORMATS, "fhir"), default="text",
                          help="output format (fhir: a FHIR R4 RequestGroup proposing the dosed recommendations)")
    evaluate.add_argument("--patient-id", metavar="ID", help="with --format fhir: the Patient the RequestGroup is for")
    evaluate.add_argument("--decision-log", metavar="FILE", help="append a JSON line recording this decision")
    evaluate.add_argument("--explain", action="store_true",
                          help="add the full trace: values and how they were obtained, evidence, source notes")
    lint = sub.add_parser("lint", out=stdout, help="static checks: table gaps and overlaps, dead rules, unused names",
                          description="Lint guidelines beyond the schema. Exit 0 when no error (and, with --strict, "
                                      "no warning) is found, 1 otherwise, 2 on usage errors.")
    lint.add_argument("paths", nargs="*", metavar="PATH", help="guideline files, or folders searched for guideline.yaml")
    lint.add_argument("--strict", action="store_true", help="warnings fail too")
    lint.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    lint.add_argument("--base", metavar="GIT_REV", help="also check that the version was bumped since GIT_REV")
    lint.add_argument("--list-checks", action="store_true", help="print every check with its documentation")

    batch = sub.add_parser("batch", out=stdout, help="evaluate a cohort (JSON Lines or CSV), streaming",
                           description="Evaluate every row of a cohort and write one JSON line per row to --out; "
                                       "a bad row becomes an error record. A summary (patients, errors, how many "
                                       "received each recommendation) goes to stdout. Exit 0 when every row was "
                                       "evaluated, 1 when some rows had errors, 2 on usage errors.")
    batch.add_argument("guideline", metavar="GUIDELINE", help="the guideline YAML file")
    batch.add_argument("--facts", required=True, metavar="FILE",
                       help="cohort file (.jsonl, .csv, .parquet); - reads stdin (JSON Lines or CSV)")
    batch.add_argument("--out", required=True, metavar="FILE",
                       help="JSON Lines output, or Parquet for a .parquet name; - writes stdout")
    batch.add_argument("--input-format", choices=("jsonl", "csv", "parquet"),
                       help="default: from the file extension, else jsonl")
    batch.add_argument("--unit", action="append", default=[], metavar="FACT=UNIT",
                       help="the unit of a quantity column that has no FACT_unit column (Parquet and DataFrames)")
    batch.add_argument("--engine", choices=("local", "dask"), default="local",
                       help="local processes (default) or a Dask cluster")
    batch.add_argument("--scheduler", metavar="ADDRESS",
                       help="with --engine dask: a running scheduler (default: a local cluster of --jobs workers)")
    batch.add_argument("--date", metavar="YYYY-MM-DD", help="evaluation date (default: today)")
    batch.add_argument("--lang", help="language of the texts (with --full)")
    batch.add_argument("--jobs", type=int, default=1, metavar="N", help="worker processes (default 1)")
    batch.add_argument("--full", action="store_true", help="write the full result with texts, not decisions only")
    batch.add_argument("--summary-format", choices=("text", "json"), default="text", help="summary format")
    batch.add_argument("--resume", action="store_true",
                       help="go on from the OUT.partial file a killed run left (rows after the last one written); "
                            "the summary then counts the new rows only")

    audit = sub.add_parser("audit", out=stdout, help="adherence of a cohort to the guideline: what was done "
                                                      "against what is advised",
                           description="Evaluate each patient of a cohort (JSON Lines, CSV or Parquet) and compare "
                                       "what was done (column 'done': recommendation ids; 'done_dose:<id>': the "
                                       "dose given) with what the guideline advises: counts per recommendation, "
                                       "per undetermined reason and per deviation type, with the patient ids. "
                                       "Exit 0 when the report is written, 2 on usage errors.")
    audit.add_argument("guideline", metavar="GUIDELINE", help="the guideline YAML file")
    audit.add_argument("--cohort", required=True, metavar="FILE", help="cohort file (.jsonl, .csv, .parquet)")
    audit.add_argument("--input-format", choices=("jsonl", "csv", "parquet"),
                       help="default: from the file extension, else jsonl")
    audit.add_argument("--unit", action="append", default=[], metavar="FACT=UNIT",
                       help="the unit of a quantity column that has no FACT_unit column (Parquet)")
    audit.add_argument("--date", metavar="YYYY-MM-DD", help="evaluation date (default: today)")
    audit.add_argument("--format", choices=("text", "markdown", "json"), default="text", help="report format")
    audit.add_argument("--plot", metavar="PNG", help="also write a bar chart of the deviations by type")

    serve = sub.add_parser("serve", out=stdout, help="a CDS Hooks 2.0 service for one or more guidelines",
                           description="Serve the guidelines as CDS Hooks services (patient-view, order-select, "
                                       "order-sign) until interrupted. Binds 127.0.0.1 unless --host says otherwise.")
    serve.add_argument("guidelines", nargs="+", metavar="GUIDELINE", help="guideline YAML files")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    serve.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes (default 1)")
    serve.add_argument("--decision-log", metavar="FILE", help="append one JSON line per decision and feedback")
    serve.add_argument("--log-inputs", action="store_true", help="also log the inputs themselves (not only a digest)")

    diff = sub.add_parser("diff", out=stdout, help="semantic diff of two guideline versions, with clinical impact",
                          description="Compare two versions of a guideline: what changed (by id, not by text "
                                      "position) and which patients (cases and a generated boundary cohort) get a "
                                      "different result. Each side is a file or GIT_REV:path. Exit 0; 1 with "
                                      "--fail-on clinical when a result changed, or with --require-version-bump "
                                      "when content changed without a version bump; 2 on usage errors.")
    diff.add_argument("sides", nargs="*", metavar="SIDE", help="OLD NEW: files or GIT_REV:path")
    diff.add_argument("--base", metavar="GIT_REV", help="compare every guideline changed since GIT_REV with it")
    diff.add_argument("--format", choices=("text", "markdown", "json"), default="text", help="output format")
    diff.add_argument("--fail-on", choices=("clinical",), help="exit 1 when any patient's result changes")
    diff.add_argument("--require-version-bump", action="store_true", help="exit 1 when content changed without a bump")
    diff.add_argument("--examples", type=int, default=5, metavar="N", help="worked examples to show (default 5)")

    show = sub.add_parser("show", out=stdout, help="render the encoded guideline for clinical review",
                          description="Render a guideline as a document: facts, computed values, decision tables, "
                                      "rules in plain words, texts, doses, provenance and source notes.")
    show.add_argument("guideline", metavar="GUIDELINE", help="the guideline YAML file")
    show.add_argument("--format", choices=("markdown", "html"), default="markdown", help="output format")
    show.add_argument("--lang", help="language (default: the guideline's primary language)")

    fmt = sub.add_parser("fmt", out=stdout, help="rewrite guideline and case files in the canonical layout",
                         description="Rewrite YAML files (files, or every .yaml under folders) in the canonical "
                                     "layout, keeping comments. --check changes nothing and exits 1 when a file "
                                     "is not formatted; 2 when a file cannot be read.")
    fmt.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    fmt.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file would change")
    fmt.add_argument("--diff", action="store_true", help="print what would change as a unified diff (implies --check)")

    new = sub.add_parser("new", out=stdout, help="scaffold a new guideline folder",
                         description="Create FOLDER with a minimal guideline and one case file that pass "
                                     "validate, lint and test, to start from.")
    new.add_argument("folder", metavar="FOLDER", help="folder to create (must not exist or be empty)")
    new.add_argument("--id", help="guideline id (default: the folder name)")
    new.add_argument("--title", default="Nouvelle recommandation", help="title")

    test = sub.add_parser("test", out=stdout, help="run patient cases, with coverage",
                          description="Run patient-case files (*.cases.yaml, or YAML files in cases/ folders). "
                                      "Exit 0 when every case passes (and coverage is reached), 1 otherwise, "
                                      "2 on usage errors or malformed files.")
    test.add_argument("paths", nargs="*", default=["guidelines"], metavar="PATH",
                      help="case files or folders (default: guidelines)")
    test.add_argument("--coverage", action="store_true",
                      help="report rules, table rows and recommendations no case exercised")
    test.add_argument("--min-coverage", type=float, metavar="N",
                      help="fail when coverage is below N percent (implies --coverage)")
    test.add_argument("--format", choices=("text", "json", "junit"), default="text", help="output format")
    test.add_argument("-q", "--quiet", action="store_true", help="show failing cases only")
    test.add_argument("--mutate", action="store_true",
                      help="mutation testing: make small slips in each guideline and report those no case catches")
    test.add_argument("--operators", metavar="NAMES",
                      help="with --mutate: comma-separated mutation operators (default: all; see --list-operators)")
    test.add_argument("--list-operators", action="store_true", help="list the mutation operators and exit")
    test.add_argument("--jobs", type=int, metavar="N", help="with --mutate: processes (default: the machine's cores)")
    test.add_argument("--min-score", type=float, metavar="N",
                      help="with --mutate: exit 1 when a guideline's mutation score is below N percent")
    return parser


def _guideline_files(paths: Sequence[str]) -> tuple[list[Path], list[Diagnostic]]:
    files: list[Path] = []
    problems: list[Diagnostic] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(path.rglob("guideline.yaml"))
            if not found:
                problems.append(Diagnostic(raw, 0, 0, "file.not-found", "no guideline.yaml in this folder"))
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            problems.append(Diagnostic(raw, 0, 0, "file.not-found", "no such file or folder"))
    return files, problems


def _existing_guideline_files(paths: list[str], stderr: IO[str]) -> list[Path] | None:
    """The guideline files named by ``paths``, or None after saying which do not exist."""
    files, missing = _guideline_files(paths)
    if missing:
        stderr.write("\n".join(d.format() for d in missing) + "\n")
        return None
    return files


def _cmd_validate(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    files = _existing_guideline_files(args.paths, stderr)
    if files is None:
        return EXIT_USAGE
    report: list[dict[str, Any]] = []
    chunks: list[str] = []
    failed = False
    for path in files:
        text, problems = read_source(path)
        warnings: list[Diagnostic] = []
        if text is not None:
            compiled, problems = check_text(text, str(path))
            warnings = list(compiled.warnings) if compiled else []
        failed = failed or bool(problems)
        every = sorted(problems) + warnings
        report.append({"file": str(path), "valid": not problems, "problems": [d.to_dict() for d in every]})
        chunks.extend(d.format() for d in every)
        if not problems:
            chunks.append(f"{path}: ok" + (f" ({len(warnings)} warning(s))" if warnings else ""))
    if args.format == "json":
        stdout.write(json.dumps({"files": report}, ensure_ascii=False, indent=2) + "\n")
    else:
        errors = sum(1 for f in report for p in f["problems"] if p["severity"] == "error")
        chunks.append(f"{len(files)} file(s) checked, {errors} error(s)")
        stdout.write("\n".join(chunks) + "\n")
    return EXIT_PROBLEMS if failed else EXIT_OK


def _cmd_evaluate(args: argparse.Namespace, stdout: IO[str], stderr: IO[str], stdin: IO[bytes] | None) -> int:
    on = _date_arg(args.date, "evaluate")
    guideline = load(args.guideline, cache_dir=default_cache_dir())
    if args.lang and args.lang not in guideline.languages:
        raise _UsageError(f"guideline evaluate: --lang {args.lang!r} is not one of {', '.join(guideline.languages)}")
    # One byte more than the limit is enough to tell that the input is too large.
    limit = DEFAULT_LIMITS.max_file_bytes + 1
    if args.facts is None and args.fhir is None:
        raise _UsageError("guideline evaluate: give --facts FILE, --fhir BUNDLE, or both")
    if args.facts == "-" and args.fhir == "-":
        raise _UsageError("guideline evaluate: only one of --facts and --fhir can read standard input")
    stdin_bytes = stdin.read(limit) if ("-" in (args.facts, args.fhir) and stdin is not None) else None
    doc = read_facts(args.facts, stdin_bytes=stdin_bytes) if args.facts is not None else None
    facts = doc.data if doc is not None and doc.data is not None else {}
    started = time.perf_counter()
    found = None
    if args.fhir is None:
        result = guideline.evaluate(facts, on=on, lang=args.lang, _doc=doc)
    else:
        from engine.fhir import facts_from_fhir, merge_facts, read_resources

        bundle = read_facts(args.fhir, stdin_bytes=stdin_bytes)
        found = facts_from_fhir(guideline.compiled, read_resources(bundle.data, args.fhir), on)
        facts = merge_facts(found, facts if isinstance(facts, dict) else {}, args.facts or "<facts>")
        result = guideline.evaluate(facts, on=on, lang=args.lang, sources=found.explained_sources)
    if args.decision_log:
        from engine.frontends.decisionlog import DecisionLog

        DecisionLog(args.decision_log).decision(guideline=guideline, result=result, inputs=facts,
                                                duration_ms=(time.perf_counter() - started) * 1000, origin="cli")
    if args.format == "fhir":
        from engine.fhir import request_group

        stdout.write(json.dumps(request_group(result, args.patient_id), ensure_ascii=False, indent=2) + "\n")
        return EXIT_OK
    if found is None:
        stdout.write(render(result, args.format, explain=args.explain))
        return EXIT_OK
    if args.format == "json":
        data = result.to_dict()
        data["fhir"] = found.to_dict()
        stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    else:
        stdout.write(render(result, args.format, explain=args.explain) + _fhir_summary(found, result.lang))
    return EXIT_OK


def _fhir_summary(found: Any, lang: str) -> str:
    """What was read from FHIR and what could not be, for people."""
    w = words(RESULT, lang)
    lines = ["", f"{w['fhir_read']} ({len(found.sources)})"]
    lines += [f"  {name}: {source}" for name, source in found.sources.items()]
    if found.unknown:
        lines += ["", f"{w['fhir_unread']} ({len(found.unknown)})"]
        lines += [f"  {name}: {why}" for name, why in found.unknown.items()]
    return "\n".join(lines) + "\n"


def _cmd_lint(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    from engine.authoring.lint import CHECKS, lint_file
    from engine.authoring.lint.versioning import version_findings

    if args.list_checks:
        stdout.write("\n\n".join(f"{c.id} ({c.severity})\n    " + c.doc.replace("\n", "\n    ")
                                  for c in sorted(CHECKS.values(), key=lambda c: c.id)) + "\n")
        return EXIT_OK
    if not args.paths:
        raise _UsageError("guideline lint: give at least one PATH")
    files = _existing_guideline_files(args.paths, stderr)
    if files is None:
        return EXIT_USAGE
    report: list[dict[str, Any]] = []
    chunks: list[str] = []
    failed = False
    for path in files:
        findings, loaded = lint_file(path)
        if loaded and args.base:
            findings = sorted(findings + version_findings(path, args.base))
        bad = [f for f in findings if f.severity == "error" or (args.strict and f.severity == "warning")]
        failed = failed or bool(bad)
        report.append({"file": str(path), "findings": [f.to_dict() for f in findings]})
        chunks.extend(f.format() for f in findings)
        counts = {s: sum(f.severity == s for f in findings) for s in ("error", "warning", "info")}
        chunks.append(f"{path}: {counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info")
    if args.format == "json":
        stdout.write(json.dumps({"files": report}, ensure_ascii=False, indent=2) + "\n")
    else:
        stdout.write("\n".join(chunks) + "\n")
    return EXIT_PROBLEMS if failed else EXIT_OK


def _cmd_batch(args: argparse.Namespace, stdout: IO[str], stderr: IO[str], stdin: IO[bytes] | None) -> int:
    from engine.frontends.batch import open_input, read_rows, rows_done

    on = _date_arg(args.date, "batch")
    if args.jobs < 1:
        raise _UsageError("guideline batch: --jobs must be at least 1")
    if args.facts == "-" and args.out == "-":
        raise _UsageError("guideline batch: --facts and --out cannot both be '-'")
    guideline = load(args.guideline)
    if args.lang and args.lang not in guideline.languages:
        raise _UsageError(f"guideline batch: --lang {args.lang!r} is not one of {', '.join(guideline.languages)}")
    fmt = _input_format(args.input_format, args.facts)
    parquet_out = args.out.endswith(".parquet")
    units = _units_arg(args.unit)
    if args.scheduler and args.engine != "dask":
        raise _UsageError("guideline batch: --scheduler needs --engine dask")
    if (fmt == "parquet" or parquet_out or args.engine == "dask") and not _cohort_available():
        raise _UsageError("guideline batch: Parquet and Dask need the cohort extra: "
                          "pip install 'guideline-engine[cohort]'")
    if fmt == "parquet" and args.facts == "-":
        raise _UsageError("guideline batch: a Parquet cohort is read from a file, not from stdin")
    if parquet_out and args.resume:
        raise _UsageError("guideline batch: --resume continues JSON Lines output only")
    try:
        source = open_input(args.facts, stdin)
    except OSError as exc:
        raise _UsageError(f"guideline batch: cannot read {args.facts}: {exc.strerror or exc}") from None
    target_path = None if args.out == "-" else Path(args.out)
    partial = target_path.with_name(target_path.name + ".partial") if target_path else None
    progress = stderr if getattr(stderr, "isatty", lambda: False)() else None
    done = 0
    if args.resume:
        if partial is None or not partial.exists():
            raise _UsageError(f"guideline batch: --resume needs the {args.out}.partial file of a killed run")
        try:
            done = rows_done(partial)
        except (OSError, ValueError) as exc:
            raise _UsageError(f"guideline batch: cannot resume: {exc}") from None
    with contextlib.ExitStack() as stack:
        try:
            out = stdout if partial is None or parquet_out else stack.enter_context(
                open(partial, "a" if args.resume else "w", encoding="utf-8"))
        except OSError as exc:
            raise _UsageError(f"guideline batch: cannot write {args.out}: {exc.strerror or exc}") from None
        with source:
            if fmt == "parquet":
                from engine.frontends.cohort import parquet_rows

                read = parquet_rows(args.facts, guideline, units)
            else:
                read = read_rows(source, fmt, guideline)
            rows = (item for item in read if item[0] > done)
            summary = _run_batch_engine(args, guideline, rows, out, partial if parquet_out else None, on, progress,
                                        parquet_in=args.facts if fmt == "parquet" else None, units=units, skip=done)
    if partial is not None and target_path is not None:
        partial.replace(target_path)  # nothing half-written under the final name
    report = summary.text() if args.summary_format == "text" else json.dumps(summary.to_dict(), indent=2) + "\n"
    (stderr if args.out == "-" else stdout).write(report)
    return EXIT_PROBLEMS if summary.errors else EXIT_OK


def _cmd_audit(args: argparse.Namespace, stdout: IO[str]) -> int:
    from engine.frontends.audit import audit, plot
    from engine.frontends.batch import open_input, read_rows

    on = _date_arg(args.date, "audit")
    fmt = _input_format(args.input_format, args.cohort)
    units = _units_arg(args.unit)
    if (fmt == "parquet" or args.plot) and not _cohort_available():
        raise _UsageError("guideline audit: Parquet and the chart need the cohort extra: "
                          "pip install 'guideline-engine[cohort]'")
    if args.plot and not Path(args.plot).resolve().parent.is_dir():
        raise _UsageError(f"guideline audit: cannot write {args.plot}: no such folder")
    guideline = load(args.guideline)
    if not Path(args.cohort).is_file():
        raise _UsageError(f"guideline audit: cannot read {args.cohort}: no such file")
    if fmt == "parquet":
        from engine.frontends.cohort import parquet_rows

        report = audit(guideline, parquet_rows(args.cohort, guideline, units), day=on)
    else:
        with open_input(args.cohort, None) as source:
            report = audit(guideline, read_rows(source, fmt, guideline), day=on)
    if args.format == "json":
        stdout.write(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n")
    else:
        stdout.write(report.text(markdown=args.format == "markdown"))
    if args.plot:
        plot(report, args.plot, f"{guideline.compiled.id} {guideline.compiled.version}: deviations, "
                                f"{report.rows} patient(s)")
    return EXIT_OK


def _input_format(given: str | None, name: str) -> str:
    """The cohort's format: as given, else from the file's extension, else JSON Lines."""
    return given or ("csv" if name.endswith(".csv") else "parquet" if name.endswith(".parquet") else "jsonl")


def _cohort_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) is not None
               for name in ("pyarrow", "pandas", "dask", "distributed", "matplotlib"))


def _units_arg(pairs: list[str]) -> dict[str, str]:
    units: dict[str, str] = {}
    for pair in pairs:
        name, sep, unit = pair.partition("=")
        if not sep or not name.strip() or not unit.strip():
            raise _UsageError(f"guideline batch: --unit takes FACT=UNIT, not {pair!r}")
        units[name.strip()] = unit.strip()
    return units


def _run_batch_engine(args: argparse.Namespace, guideline: Any, rows: Any, out: IO[str], parquet: Path | None,
                      on: dt.date, progress: IO[str] | None, *, parquet_in: str | None = None,
                      units: dict[str, str] | None = None, skip: int = 0) -> Any:
    """The rows evaluated in-process or on Dask, written as JSON lines to ``out`` or as Parquet to ``parquet``.

    On Dask a Parquet cohort is read by the workers themselves (``parquet_in``), chunk by chunk.
    """
    from engine.frontends.batch import run_batch

    if args.engine == "dask":
        from engine.frontends.cohort import ParquetRecords, run_on_dask, write_jsonl

        options: dict[str, Any] = {"day": on, "lang": args.lang, "full": args.full, "scheduler": args.scheduler,
                                   "workers": args.jobs, "parquet": parquet_in, "units": units, "skip": skip}
        source = None if parquet_in else rows
        if parquet is not None:
            with ParquetRecords(parquet) as writer:
                return run_on_dask(guideline, source, writer.put, **options)
        return run_on_dask(guideline, source, write_jsonl(out), **options)
    if parquet is None:
        return run_batch(guideline, rows, out, day=on, lang=args.lang, jobs=args.jobs, full=args.full,
                         progress=progress)
    from engine.frontends.cohort import ParquetRecords

    with ParquetRecords(parquet) as writer:  # the records themselves: a full result is not parsed back from a line
        return run_batch(guideline, rows, None, day=on, lang=args.lang, jobs=args.jobs, full=args.full,
                         progress=progress, put=writer.put)


def _cmd_serve(args: argparse.Namespace, stderr: IO[str]) -> int:
    import os

    import uvicorn

    for path in args.guidelines:
        load(path, cache_dir=default_cache_dir())  # every guideline loads before the server starts: errors here
    os.environ["GUIDELINE_SERVE"] = json.dumps({"guidelines": args.guidelines, "decision_log": args.decision_log,
                                                "log_inputs": args.log_inputs})
    stderr.write(f"guideline serve: CDS Hooks discovery at http://{args.host}:{args.port}/cds-services\n")
    uvicorn.run("engine.frontends.service:app_from_environment", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level="warning")
    return EXIT_OK


def _date_arg(text: str | None, command: str) -> dt.date:
    if not text:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise _UsageError(f"guideline {command}: --date {text!r} is not a date (YYYY-MM-DD)") from None


def _read_side(side: str) -> tuple[str, str, Path | None]:
    """(text, label, folder for its cases) of a diff side: a file or GIT_REV:path."""
    from engine.authoring.lint.versioning import read_revision

    path = Path(side)
    if path.exists() or ":" not in side:
        text, problems = read_source(path)
        if text is None:
            raise _SideError(problems)
        return text, side, path.parent
    rev, _, rel = side.partition(":")
    target = Path(rel)
    text, reason = read_revision(target if target.parent != Path("") else Path(".") / target, rev)
    if text is None:
        raise _UsageError(f"guideline diff: cannot read {side}: {reason}")
    return text, side, target.parent if (target.parent / "cases").is_dir() else None


class _SideError(Exception):
    """A diff side that cannot be read; carries the problems to print."""

    def __init__(self, problems: list[Diagnostic]):
        super().__init__("; ".join(d.message for d in problems))
        self.problems = problems


def _cmd_diff(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    from engine.authoring.cases import find_case_files, load_cases
    from engine.authoring.diff import diff_guidelines
    from engine.authoring.diff_report import render_diff
    from engine.guideline import load_text
    from engine.loading import parse_yaml

    if args.base:
        if args.sides:
            raise _UsageError("guideline diff: give OLD NEW, or --base REV, not both")
        pairs = _changed_since(args.base)
        if not pairs:
            stdout.write(f"No guideline changed since {args.base}.\n")
            return EXIT_OK
    elif len(args.sides) == 2:
        pairs = [(args.sides[0], args.sides[1])]
    else:
        raise _UsageError("guideline diff: give OLD and NEW (files or GIT_REV:path), or --base REV")
    chunks, failed = [], False
    for old_side, new_side in pairs:
        try:
            old_text, old_label, _ = _read_side(old_side)
            new_text, new_label, folder = _read_side(new_side)
        except _SideError as exc:
            stderr.write("\n".join(d.format() for d in exc.problems) + "\n")
            return EXIT_USAGE
        old = load_text(old_text, old_label)
        new = load_text(new_text, new_label)
        cases = []
        if folder is not None and (folder / "cases").is_dir():
            for path in find_case_files([folder / "cases"]):
                cases += [(c.id, dict(c.facts), c.date) for c in load_cases(path)]
        report = diff_guidelines(old, new, old_label=old_label, new_label=new_label, cases=cases,
                                 old_data=parse_yaml(old_text, old_label).data,
                                 new_data=parse_yaml(new_text, new_label).data)
        chunks.append(render_diff(report, args.format, args.examples))
        if args.fail_on == "clinical" and report.impact.changes:
            failed = True
        if args.require_version_bump and report.missing_bump:
            failed = True
    stdout.write("\n".join(chunks))
    return EXIT_PROBLEMS if failed else EXIT_OK


def _changed_since(rev: str) -> list[tuple[str, str]]:
    import subprocess

    done = subprocess.run(["git", "diff", "--name-only", rev, "--", "*guideline.yaml"], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise _UsageError(f"guideline diff: git diff {rev} failed: {done.stderr.strip()}")
    pairs = []
    for name in done.stdout.split():
        if Path(name).exists():
            exists = subprocess.run(["git", "cat-file", "-e", f"{rev}:{name}"], capture_output=True, check=False)
            if exists.returncode == 0:
                pairs.append((f"{rev}:{name}", name))
    return pairs


def _cmd_show(args: argparse.Namespace, stdout: IO[str]) -> int:
    from engine.authoring.show import show

    guideline = load(args.guideline)
    if args.lang and args.lang not in guideline.languages:
        raise _UsageError(f"guideline show: --lang {args.lang!r} is not one of {', '.join(guideline.languages)}")
    stdout.write(show(guideline.compiled, args.format, args.lang))
    return EXIT_OK


def _cmd_new(args: argparse.Namespace, stdout: IO[str]) -> int:
    from engine.authoring.scaffold import project_schemas, scaffold

    folder = Path(args.folder)
    # The $schema lines point at the project's own schemas/ (this repository's,
    # when the folder is inside it); elsewhere the scaffold copies the schemas.
    schemas = project_schemas(folder.parent)
    try:
        written = scaffold(folder, args.id or folder.name, args.title, schemas, dt.date.today().isoformat())
    except (ValueError, FileExistsError, OSError) as exc:
        raise _UsageError(f"guideline new: {exc}") from None
    stdout.write("".join(f"created {p}\n" for p in written))
    stdout.write(f"next: guideline validate {folder} && guideline lint {folder} && guideline test {folder}\n")
    return EXIT_OK


def _cmd_fmt(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    from engine.authoring.fmt import format_file, yaml_files

    files, missing = yaml_files(args.paths)
    if missing:
        raise _UsageError(f"guideline fmt: no such file or folder: {', '.join(missing)}")
    if not files:
        raise _UsageError(f"guideline fmt: no YAML files in {', '.join(args.paths)}")
    check = args.check or args.diff
    unreadable = changed = 0
    for path in files:
        done = format_file(path, write=not check)
        if done.problems:
            unreadable += 1
            stderr.write("".join(d.format() + "\n" for d in done.problems))
        elif done.changed:
            changed += 1
            stdout.write(done.diff() if args.diff else f"{'would reformat' if check else 'reformatted'} {path}\n")
    stdout.write(f"{len(files)} file(s), {changed} {'to reformat' if check else 'reformatted'}"
                 + (f", {unreadable} not readable" if unreadable else "") + "\n")
    if unreadable:
        return EXIT_USAGE
    return EXIT_PROBLEMS if check and changed else EXIT_OK


def _cmd_test(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    from engine.authoring.cases import GuidelineCache, coverage, find_case_files, load_cases, run_case

    if args.list_operators:
        from engine.authoring.mutate import OPERATORS

        stdout.write("".join(f"{name:24} {op.summary}\n" for name, op in OPERATORS.items()))
        return EXIT_OK
    if args.mutate:
        return _cmd_mutate(args, stdout, stderr)
    files = find_case_files(args.paths)
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing or not files:
        what = ", ".join(missing) if missing else ", ".join(args.paths)
        raise _UsageError(f"guideline test: no case files found in {what}")
    cache = GuidelineCache()
    outcomes = []
    for path in files:
        for case in load_cases(path):
            outcomes.append(run_case(case, cache.get(case.guideline_path)))
    passed = sum(o.passed for o in outcomes)
    failed = len(outcomes) - passed
    reports = []
    if args.coverage or args.min_coverage is not None:
        by_guideline: dict[Path, list[Any]] = {}
        for outcome in outcomes:
            if outcome.result is not None:
                by_guideline.setdefault(outcome.case.guideline_path, []).append(outcome.result)
        for gpath, results in by_guideline.items():
            reports.append((gpath, coverage(cache.get(gpath), results)))
    low = [r for r in reports if args.min_coverage is not None and r[1].percent < args.min_coverage]
    if args.format == "junit":
        stdout.write(_junit(outcomes))
    elif args.format == "json":
        stdout.write(json.dumps({
            "passed": passed, "failed": failed,
            "cases": [{"id": o.case.id, "file": o.case.file, "passed": o.passed, "failures": list(o.failures)}
                      for o in outcomes],
            "coverage": {str(g): c.to_dict() for g, c in reports},
        }, ensure_ascii=False, indent=2) + "\n")
    else:
        lines = []
        for o in outcomes:
            if o.passed and not args.quiet:
                lines.append(f"PASS {o.case.id}")
            elif not o.passed:
                lines.append(f"FAIL {o.case.id} ({o.case.where()}) {o.case.story}")
                lines.extend(f"  {f}" for f in o.failures)
        for gpath, cov in reports:
            lines.append(f"coverage of {_shown_path(gpath)}: {cov.percent:.1f}% "
                         f"(rules {cov.rules_total - len(cov.rules_missed)}/{cov.rules_total}, "
                         f"table rows {cov.rows_total - len(cov.rows_missed)}/{cov.rows_total}, "
                         f"recommendations {cov.recommendations_total - len(cov.recommendations_missed)}/"
                         f"{cov.recommendations_total}, template branches "
                         f"{cov.branches_total - len(cov.branches_missed)}/{cov.branches_total})")
            for label, missed in (("rule", cov.rules_missed), ("table row", cov.rows_missed),
                                  ("recommendation", cov.recommendations_missed),
                                  ("template branch", cov.branches_missed)):
                lines.extend(f"  not exercised: {label} {m}" for m in missed)
        if low:
            lines.append(f"coverage below the minimum of {args.min_coverage:g}%")
        lines.append(f"{passed} passed, {failed} failed")
        stdout.write("\n".join(lines) + "\n")
    return EXIT_PROBLEMS if failed or low else EXIT_OK


def _cmd_mutate(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    from engine.authoring.cases import GuidelineCache, find_case_files, load_cases
    from engine.authoring.mutate import OPERATORS, default_jobs, run_mutants

    operators = [o.strip() for o in args.operators.split(",") if o.strip()] if args.operators else None
    unknown = [o for o in operators or [] if o not in OPERATORS]
    if unknown:
        raise _UsageError(f"guideline test: unknown mutation operator(s) {', '.join(unknown)}; "
                          f"known: {', '.join(OPERATORS)}")
    if args.jobs is not None and args.jobs < 1:
        raise _UsageError("guideline test: --jobs must be at least 1")
    files = find_case_files(args.paths)
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing or not files:
        raise _UsageError(f"guideline test: no case files found in {', '.join(missing or args.paths)}")
    cache = GuidelineCache()
    by_guideline: dict[Path, list[Any]] = {}
    for path in files:
        for case in load_cases(path):
            by_guideline.setdefault(case.guideline_path, []).append(case)
    jobs = args.jobs or default_jobs()
    reports = []
    for gpath, cases in by_guideline.items():
        guideline = cache.get(gpath)
        progress = _progress_bar(stderr, _shown_path(gpath)) if stderr.isatty() else None
        report = run_mutants(guideline, cases, operators=operators, jobs=jobs,
                             source=gpath.read_text(encoding="utf-8"), progress=progress)
        if progress is not None:
            stderr.write("\n")
        for problem in report.unmarked_reasons:
            stderr.write(problem.format() + "\n")
        if report.failing_cases:
            stderr.write(f"guideline test: {len(report.failing_cases)} case(s) fail on {_shown_path(gpath)} itself "
                         f"and cannot kill mutants: {', '.join(report.failing_cases)}\n")
        reports.append((gpath, report))
    low = [g for g, r in reports if args.min_score is not None and r.score < args.min_score]
    if args.format == "json":
        stdout.write(json.dumps({str(g): r.to_dict() for g, r in reports}, ensure_ascii=False, indent=2) + "\n")
    elif args.format == "junit":
        stdout.write(_mutation_junit(reports))
    else:
        stdout.write("".join(_mutation_text(g, r, jobs, args.quiet) for g, r in reports))
        if low:
            stdout.write(f"mutation score below the minimum of {args.min_score:g}%\n")
    return EXIT_PROBLEMS if low else EXIT_OK


def _progress_bar(stream: IO[str], label: str) -> Any:
    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        stream.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} mutants")
        stream.flush()
    return show


def _mutation_text(gpath: Path, report: Any, jobs: int, quiet: bool) -> str:
    lines = [f"mutation testing of {_shown_path(gpath)}: {len(report.outcomes)} mutants, {report.cases} cases, "
             f"{jobs} job(s), {report.seconds:.1f} s ({len(report.outcomes) / max(report.seconds, 1e-9):.1f} mutants/s)",
             f"  killed {report.count('killed')}, survived {report.count('survived')}, "
             f"marked equivalent {report.count('equivalent')}, did not load {report.count('not-loaded')}",
             f"  score {report.score:.1f}% (killed / (killed + survived))"]
    groups = (("survived", "surviving mutants (no case catches them)"), ("equivalent", "marked equivalent"),
              ("not-loaded", "did not load (not counted)"))
    for status, title in groups:
        chosen = [o for o in report.outcomes if o.status == status]
        if not chosen or (quiet and status != "survived"):
            continue
        lines.append(f"{title}:")
        for o in chosen:
            lines.append(f"  {_shown_path(Path(o.mutant.file))}:{o.mutant.line}:{o.mutant.col}: "
                         f"[{o.mutant.operator}] {o.mutant.described}")
            if o.nearest:
                lines.append(f"      nearest case: {o.nearest}")
            if o.reason:
                lines.append(f"      {o.reason}")
    return "\n".join(lines) + "\n"


def _mutation_junit(reports: list[tuple[Path, Any]]) -> str:
    from xml.sax.saxutils import quoteattr

    out = ['<?xml version="1.0" encoding="UTF-8"?>', "<testsuites>"]
    for gpath, report in reports:
        counted = [o for o in report.outcomes if o.status in ("killed", "survived")]
        out.append(f'  <testsuite name={quoteattr("mutants of " + str(gpath))} tests="{len(counted)}" '
                   f'failures="{report.count("survived")}" time="{report.seconds:.3f}">')
        for o in counted:
            name = quoteattr(f"{o.mutant.where} [{o.mutant.operator}] {o.mutant.described}")
            if o.status == "killed":
                out.append(f"    <testcase classname={quoteattr(o.mutant.operator)} name={name}/>")
            else:
                out.append(f"    <testcase classname={quoteattr(o.mutant.operator)} name={name}>"
                           f"<failure message={quoteattr('survived; nearest case: ' + (o.nearest or '-'))}/>"
                           "</testcase>")
        out.append("  </testsuite>")
    out.append("</testsuites>")
    return "\n".join(out) + "\n"


def _shown_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _junit(outcomes: list[Any]) -> str:
    from xml.etree import ElementTree as ET

    suite = ET.Element("testsuite", name="guideline-cases", tests=str(len(outcomes)),
                       failures=str(sum(not o.passed for o in outcomes)))
    for o in outcomes:
        case = ET.SubElement(suite, "testcase", classname=o.case.file, name=o.case.id)
        if not o.passed:
            failure = ET.SubElement(case, "failure", message=o.failures[0].splitlines()[0])
            failure.text = "\n".join(o.failures)
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def run(argv: Sequence[str], stdout: IO[str], stderr: IO[str], stdin: IO[bytes] | None = None) -> int:
    """Run the CLI with ``argv`` (without the program name); return the exit code."""
    parser = _parser(stdout)
    try:
        args = parser.parse_args(list(argv))
        if args.command is None:
            stderr.write(parser.format_help())
            return EXIT_USAGE
        if args.command == "validate":
            return _cmd_validate(args, stdout, stderr)
        if args.command == "test":
            return _cmd_test(args, stdout, stderr)
        if args.command == "lint":
            return _cmd_lint(args, stdout, stderr)
        if args.command == "batch":
            return _cmd_batch(args, stdout, stderr, stdin)
        if args.command == "diff":
            return _cmd_diff(args, stdout, stderr)
        if args.command == "show":
            return _cmd_show(args, stdout)
        if args.command == "new":
            return _cmd_new(args, stdout)
        if args.command == "fmt":
            return _cmd_fmt(args, stdout, stderr)
        if args.command == "audit":
            return _cmd_audit(args, stdout)
        if args.command == "serve":
            return _cmd_serve(args, stderr)
        return _cmd_evaluate(args, stdout, stderr, stdin)
    except _Exit as done:
        if done.status == 0:
            return EXIT_OK
        return EXIT_USAGE
    except _UsageError as exc:
        stderr.write(f"{exc}\n")
        return EXIT_USAGE
    except EngineError as exc:
        stderr.write(exc.format() + "\n")
        return EXIT_USAGE
    except RecursionError:
        stderr.write("guideline: input is nested too deeply to process\n")
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - last resort: a bug must not print a traceback
        stderr.write(f"guideline: internal error ({type(exc).__name__}: {exc}); please report it with the input\n")
        return EXIT_INTERNAL


def main() -> None:
    """Console entry point."""
    # argparse prints --help and --version itself; route them to stdout.
    code = run(sys.argv[1:], sys.stdout, sys.stderr, sys.stdin.buffer if sys.stdin else None)
    sys.stdout.flush()
    raise SystemExit(code)
