#!/usr/bin/env python3
"""Benchmark the interpreter against hand-written plain-Python references.

    python tools/bench.py [--n 20000] [--seed 7] [--repeats 5] [--grow]

1. Generates a deterministic synthetic cohort from the guideline's own fact
   declarations: spreads inside each plausible range, about 10% missing per
   fact, quantities in every accepted unit.
2. Checks, on every patient, that the interpreter, the lean reference
   (tests/oracle/lean.py: the decisions and the facts' validation inlined by
   hand, the yardstick) and the readable oracle (tests/oracle/bone_metastases.py)
   agree on every rule outcome (fired / not fired / undetermined) and on the
   key values (vitamin D class and loading, calcium supplement range,
   indication, clearance, zoledronic-acid dose, start decision). A mismatch is
   printed with the patient and makes the script exit 1. Every translated text
   is also checked against Jinja's sandbox rendering of the same template.
3. Times them in this process (chunks of 1 000 patients, each run several
   times by every function in turn; best and median summed over the chunks)
   and prints microseconds per patient, the ratio to the lean reference,
   patients per second, load+compile time, peak memory, the cost of keeping
   every result alive (the garbage collector walks them; with and without
   ``gc.freeze()``), and the CLI's one-shot evaluate time next to the bare
   import time of its dependencies.
4. With ``--grow``: the guideline's rules copied 1, 2, 4 and 8 times, and the
   per-patient cost of decide, evaluate and the full JSON text for each,
   next to the recommendations made per patient.
5. With ``--json-parts``: where the full JSON text's time goes, stage by
   stage on fresh results (evaluate, every value's JSON object, undetermined
   rules with their needs, borderline cautions, the rest of the text), each
   as microseconds and as a multiple of decide, and the text's size.

Ratios are the figures to read: absolute times move with the machine's load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml

import engine
from tests.oracle.bone_metastases import disagreements, reference
from tests.oracle.cohort import cohort, write_cohort
from tests.oracle.cohort import valid as is_valid
from tests.oracle.lean import lean

GUIDELINE = ROOT / "guidelines" / "bone-metastases" / "guideline.yaml"
DAY = dt.date(2026, 11, 27)


# --- checks and timing ---------------------------------------------------------------

class _Decided:
    """The lean reference's answer in the shape ``disagreements`` reads."""

    def __init__(self, rules: dict[str, Any], values: dict[str, Any]) -> None:
        self.rules = rules
        self.values = values


def check(g: engine.Guideline, patients: list[dict[str, Any]]) -> tuple[int, int]:
    """(patients checked, mismatches): the engine and the lean reference each against the readable oracle.

    The lean reference must refuse exactly the facts the engine refuses.
    Every mismatch is printed with its patient.
    """
    mismatches = refused = 0
    for i, facts in enumerate(patients):
        try:
            ours = g.decide(facts, on=DAY)
        except engine.FactsError:
            refused += 1
            try:
                lean(facts, DAY)
            except ValueError:
                continue
            mismatches += 1
            print(f"MISMATCH patient {i}: the engine refuses the facts, the lean reference accepts them")
            continue
        try:
            diffs = disagreements(ours, facts) + [f"lean {d}" for d in disagreements(_Decided(*lean(facts, DAY)), facts)]
        except ValueError:
            diffs = ["the lean reference refuses facts the engine accepts"]
        if diffs:
            mismatches += 1
            if mismatches <= 5:
                print(f"MISMATCH patient {i}: {json.dumps(facts, ensure_ascii=False)}")
                for d in diffs:
                    print(f"    {d}")
    return len(patients) - refused, mismatches


def check_texts(g: engine.Guideline, patients: list[dict[str, Any]]) -> tuple[int, int]:
    """(texts compared, mismatches): each text rendered by its translated Python
    function (engine.texts.textgen) must equal what Jinja's sandbox renders from the same values."""
    jinja: dict[int, Any] = {}
    specs = {rec.id: rec for rule in g.compiled.rules for rec in rule.then}
    texts = mismatches = 0
    for i, facts in enumerate(patients):
        for lang in g.languages:
            try:
                result = g.evaluate(facts, on=DAY, lang=lang)
            except engine.FactsError:
                break
            for made in result.recommendations:
                template = specs[made.id].templates[lang]
                if template.fast is None:
                    continue
                if id(template) not in jinja:
                    jinja[id(template)] = template.jinja_only()
                expected = jinja[id(template)].render(result.trace, 100_000)
                texts += 1
                if made.text != expected:
                    mismatches += 1
                    if mismatches <= 5:
                        print(f"TEXT MISMATCH patient {i} ({lang}) {made.id}:\n    translated {made.text!r}\n"
                              f"    jinja      {expected!r}")
    return texts, mismatches


def timed(fns: list[Callable[[list[Any]], Any]], patients: list[Any], repeats: int,
          chunk: int = 1000) -> list[tuple[float, float]]:
    """(best, median) seconds of each function over the whole cohort.

    The cohort is cut into chunks of ``chunk`` patients; each chunk is run
    ``repeats`` times by every function, interleaved, so a burst of load on the
    machine hits all of them alike. A function's best time is the sum over the
    chunks of its best time on each chunk (its median, of the medians): on a
    noisy machine a short clean window is easier to find than a long one, and
    it is the same for every function, so the ratios stay comparable.
    """
    best = [0.0] * len(fns)
    median = [0.0] * len(fns)
    for start in range(0, len(patients), chunk):
        part = patients[start:start + chunk]
        runs: list[list[float]] = [[] for _ in fns]
        for _ in range(repeats):
            for i, fn in enumerate(fns):
                gc.collect()
                began = time.perf_counter()
                fn(part)
                runs[i].append(time.perf_counter() - began)
        for i, r in enumerate(runs):
            best[i] += min(r)
            median[i] += statistics.median(r)
    return list(zip(best, median, strict=True))


def kept(g: engine.Guideline, patients: list[dict[str, Any]], repeats: int) -> tuple[float, float, float]:
    """Best seconds to evaluate the whole cohort (dropping each result, keeping every one, keeping every one
    with gc.freeze() after each 1 000): Python's full collections walk every live result."""
    best = [math.inf] * 3
    for _ in range(repeats):
        for mode in range(3):
            gc.collect()
            results: list[Any] = []
            began = time.perf_counter()
            for i, facts in enumerate(patients):
                result = g.evaluate(facts, on=DAY, lang="fr")
                if mode:
                    results.append(result)
                    if mode == 2 and i % 1000 == 999:
                        gc.freeze()
            best[mode] = min(best[mode], time.perf_counter() - began)
            gc.unfreeze()
            del results
    return best[0], best[1], best[2]


def one_shot(argv: list[str], repeats: int, env: dict[str, str]) -> float:
    """Best wall time of ``argv`` after one warm-up run (bytecode and caches written)."""
    subprocess.run(argv, check=True, capture_output=True, env=env)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=env)
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="patients in the cohort (default 20000)")
    parser.add_argument("--seed", type=int, default=7, help="cohort seed (default 7)")
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats (default 5)")
    parser.add_argument("--no-cli", action="store_true", help="skip the one-shot CLI timing")
    parser.add_argument("--grow", action="store_true",
                        help="also time the guideline with its rules copied 1, 2, 4 and 8 times")
    parser.add_argument("--json-parts", action="store_true",
                        help="also time the full JSON text stage by stage (where its time goes)")
    parser.add_argument("--write-cohort", metavar="FILE",
                        help="only write the cohort as JSON Lines to FILE (input for guideline batch), then exit")
    args = parser.parse_args(argv)
    if args.write_cohort:
        write_cohort(engine.load(GUIDELINE), args.n, args.seed, args.write_cohort)
        print(f"{args.n} patients (seed {args.seed}) written to {args.write_cohort}")
        return 0

    start = time.perf_counter()
    g = engine.load(GUIDELINE)
    load_seconds = time.perf_counter() - start
    patients = cohort(g, args.n, args.seed)
    checked, mismatches = check(g, patients)
    print(f"cohort: {len(patients)} patients (seed {args.seed}), {checked} with valid facts, "
          f"{len(patients) - checked} refused as invalid")
    print(f"cross-check of the engine and the lean reference against the readable oracle: {mismatches} mismatch(es)")
    texts, text_mismatches = check_texts(g, patients)
    print(f"cross-check of {texts} translated texts (fr, en) against Jinja's sandbox: "
          f"{text_mismatches} mismatch(es)")
    mismatches += text_mismatches
    valid = [p for p in patients if is_valid(g, p, DAY)]
    json_mismatches = 0
    for facts in valid:
        result = g.evaluate(facts, on=DAY, lang="fr")
        if result.to_json() != json.dumps(result.to_dict(), ensure_ascii=False):
            json_mismatches += 1
            print(f"JSON MISMATCH patient: {json.dumps(facts, ensure_ascii=False)}")
    print(f"cross-check of {len(valid)} full JSON texts (to_json) against json.dumps(to_dict()): "
          f"{json_mismatches} mismatch(es)")
    mismatches += json_mismatches
    n = len(valid)

    def run_lean(part: list[dict[str, Any]]) -> None:
        for facts in part:
            lean(facts, DAY)

    def run_reference(part: list[dict[str, Any]]) -> None:
        for facts in part:
            reference(facts)

    def run_decide(part: list[dict[str, Any]]) -> None:
        for facts in part:
            g.decide(facts, on=DAY)

    def run_full(part: list[dict[str, Any]]) -> None:
        for facts in part:
            g.evaluate(facts, on=DAY, lang="fr")

    def run_dicts(part: list[dict[str, Any]]) -> None:
        for facts in part:
            g.evaluate(facts, on=DAY, lang="fr").to_dict()

    def run_dumps(part: list[dict[str, Any]]) -> None:  # the JSON text as batch --full wrote it before to_json
        for facts in part:
            json.dumps(g.evaluate(facts, on=DAY, lang="fr").to_dict(), ensure_ascii=False)

    def run_json(part: list[dict[str, Any]]) -> None:
        for facts in part:
            g.evaluate(facts, on=DAY, lang="fr").to_json()

    (lean_best, lean_median), (ref_best, ref_median), (dec_best, dec_median), (full_best, full_median), \
        (dicts_best, dicts_median), (dumps_best, dumps_median), (json_best, json_median) = timed(
            [run_lean, run_reference, run_decide, run_full, run_dicts, run_dumps, run_json], valid, args.repeats)
    # Memory is traced in a separate pass: tracing slows everything it watches.
    tracemalloc.start()
    run_full(valid)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    def us(seconds: float) -> float:
        return seconds / n * 1e6

    print(f"guideline load + compile: {load_seconds * 1000:.0f} ms")
    print(f"{'':34} {'best µs':>9} {'median µs':>10} {'patients/s':>11} {'× lean':>7}")
    for label, best, median in (("lean hand-written reference", lean_best, lean_median),
                                ("readable oracle", ref_best, ref_median),
                                ("interpreter, decisions only", dec_best, dec_median),
                                ("interpreter, full result (fr)", full_best, full_median),
                                ("full result as dicts (to_dict)", dicts_best, dicts_median),
                                ("to_dict + json.dumps", dumps_best, dumps_median),
                                ("full JSON with explanations", json_best, json_median)):
        print(f"{label:34} {us(best):9.1f} {us(median):10.1f} {n / best:11.0f} {best / lean_best:7.2f}")
    print(f"targets (issue 19): decide {dec_best / lean_best:.2f}x lean (<= 1.5), evaluate {full_best / lean_best:.2f}x lean "
          f"(<= 3), full JSON {json_best / dec_best:.2f}x decide (<= 5)")
    print(f"the full JSON text (to_json) against to_dict + json.dumps: {dumps_best / json_best:.2f}x faster; "
          f"to_dict alone {dicts_best / dec_best:.2f}x decide")
    dropped, kept_all, frozen = kept(g, valid, args.repeats)
    print(f"evaluate (fr), the whole cohort in one go: each result dropped {us(dropped):.1f} µs, every result kept "
          f"{us(kept_all):.1f} µs ({kept_all / dropped:.2f}x: the garbage collector walks the results kept), kept with "
          f"gc.freeze() after each 1 000 {us(frozen):.1f} µs ({frozen / dropped:.2f}x)")
    print(f"peak traced memory while evaluating the cohort: {peak / 1024:.0f} KiB; "
          f"process peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if not args.no_cli:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump(valid[0], handle)
        # As a user runs it: bytecode may be written, and the compile cache is on
        # (in a private folder for this run).
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        with tempfile.TemporaryDirectory() as cache:
            env["GUIDELINE_CACHE_DIR"] = cache
            command = [sys.executable, "-m", "engine", "evaluate", str(GUIDELINE), "--facts", handle.name,
                       "--date", DAY.isoformat()]
            bare = one_shot([sys.executable, "-c", "import yaml, jsonschema, jinja2, simpleeval"], 5, env)
            warm = one_shot(command, 5, env)
            cold = one_shot(command, 5, {**env, "GUIDELINE_CACHE": "0"})
        os.unlink(handle.name)
        print(f"one-shot CLI evaluate: {warm * 1000:.0f} ms with the compile cache ({cold * 1000:.0f} ms without); "
              f"bare import of its dependencies: {bare * 1000:.0f} ms; ratio {warm / bare:.2f} ({cold / bare:.2f})")
    if args.json_parts:
        json_parts(g, valid[:5000], args.repeats)
    if args.grow:
        grow(valid[:2000], args.repeats)
    return 1 if mismatches else 0


def json_parts(g: engine.Guideline, patients: list[dict[str, Any]], repeats: int) -> None:
    """The full JSON text's cost, stage by stage: each function does what the one before does, and one part more.

    Each stage works on fresh results, as ``to_json`` does; the parts are
    reached through the result's private explainer (this is a profile, not a
    use of the API). The last row is ``to_json`` itself, which does all the
    stages above and writes the rest (recommendations and their whys, missing
    facts, rule and table maps) into one text.
    """
    def stage(*parts: Callable[[Any], Any]) -> Callable[[list[Any]], None]:
        def run(part: list[dict[str, Any]]) -> None:
            for facts in part:
                result = g.evaluate(facts, on=DAY, lang="fr")
                for read in parts:
                    read(result)
        return run

    def decide(part: list[dict[str, Any]]) -> None:
        for facts in part:
            g.decide(facts, on=DAY)

    stages = [
        ("decisions only (decide)", decide),
        ("evaluate (fr)", stage()),
        ("+ every value's JSON object", stage(lambda r: r._explainer.json_texts())),
        ("+ undetermined rules and their needs", stage(lambda r: r._explainer.json_texts(), lambda r: r.undetermined)),
        ("+ borderline cautions", stage(lambda r: r._explainer.json_texts(), lambda r: r.undetermined,
                                        lambda r: r.borderline)),
        ("+ the rest of the text: to_json", stage(lambda r: r.to_json())),
    ]
    times = [best for best, _ in timed([run for _, run in stages], patients, repeats)]
    n = len(patients)
    print(f"the full JSON text, stage by stage ({n} patients; each row adds a part to the row above):")
    print(f"{'':40} {'µs':>7} {'+ µs':>7} {'× decide':>9}")
    for i, ((label, _), seconds) in enumerate(zip(stages, times, strict=True)):
        added = f"{(seconds - times[i - 1]) / n * 1e6:7.1f}" if i > 1 else " " * 7
        print(f"{label:40} {seconds / n * 1e6:7.1f} {added} {seconds / times[0]:9.2f}")
    texts = [g.evaluate(facts, on=DAY, lang="fr").to_json() for facts in patients]
    chars = sum(map(len, texts)) / n
    wide = sum(1 for text in texts if not text.isascii()) / n
    print(f"the text of a result: {chars:,.0f} characters on average; {wide:.0%} of the texts hold a character beyond "
          f"ASCII (→, −), so Python stores them at two bytes a character")


def scaled(times: int) -> engine.Guideline:
    """The shipped guideline with its rules (and their recommendations) copied ``times`` times."""
    data = yaml.safe_load(GUIDELINE.read_text(encoding="utf-8"))
    rules = data["rules"]
    copies = [rules]
    for k in range(2, times + 1):
        copies.append([{**rule, "id": f"{rule['id']}-x{k}",
                        "then": [{**rec, "id": f"{rec['id']}-x{k}"} for rec in rule["then"]]} for rule in rules])
    data["rules"] = [rule for copy in copies for rule in copy]
    return engine.load_text(yaml.dump(data, Dumper=_NoAliases, allow_unicode=True, sort_keys=False), f"x{times}.yaml")


class _NoAliases(yaml.SafeDumper):
    """Shared values written out in full: the engine refuses YAML aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def grow(patients: list[dict[str, Any]], repeats: int) -> None:
    """Per-patient cost as the rules grow: evaluate should grow no faster than the recommendations made."""
    print(f"\ngrowth ({len(patients)} patients):")
    print(f"{'rules':>6} {'recs/patient':>13} {'decide µs':>10} {'evaluate µs':>12} {'full JSON µs':>13} "
          f"{'evaluate µs/rec':>16}")
    for times in (1, 2, 4, 8):
        g = scaled(times)
        made = sum(len(g.evaluate(p, on=DAY, lang="fr").recommendations) for p in patients) / len(patients)

        def run_decide(part: list[dict[str, Any]], g: engine.Guideline = g) -> None:
            for facts in part:
                g.decide(facts, on=DAY)

        def run_full(part: list[dict[str, Any]], g: engine.Guideline = g) -> None:
            for facts in part:
                g.evaluate(facts, on=DAY, lang="fr")

        def run_json(part: list[dict[str, Any]], g: engine.Guideline = g) -> None:
            for facts in part:
                g.evaluate(facts, on=DAY, lang="fr").to_json()

        (dec, _), (full, _), (js, _) = timed([run_decide, run_full, run_json], patients, repeats)
        per = 1e6 / len(patients)
        print(f"{len(g.compiled.rules):6d} {made:13.1f} {dec * per:10.1f} {full * per:12.1f} {js * per:13.1f} "
              f"{(full - dec) * per / max(made, 1e-9):16.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
