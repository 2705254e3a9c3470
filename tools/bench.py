#!/usr/bin/env python3
"""Benchmark the interpreter against a hand-written plain-Python reference.

    python tools/bench.py [--n 20000] [--seed 7] [--repeats 5]

1. Generates a deterministic synthetic cohort from the guideline's own fact
   declarations: spreads inside each plausible range, about 10% missing per
   fact, quantities in every accepted unit.
2. Checks, on every patient, that the interpreter and the reference agree on
   every rule outcome (fired / not fired / undetermined) and on the key values
   (vitamin D class and loading, calcium supplement range, indication,
   clearance, zoledronic-acid dose). A mismatch is printed with the patient and
   makes the script exit 1. Every translated text is also checked against
   Jinja's sandbox rendering of the same template.
3. Times both in this process (chunks of 1 000 patients, each run several times
   by every function in turn; best and median summed over the chunks) and prints
   microseconds per patient, the ratio, patients per second, load+compile time,
   peak memory, and the CLI's one-shot evaluate time next to the bare import
   time of its dependencies.

Ratios are the figures to read: absolute times move with the machine's load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import engine

GUIDELINE = ROOT / "guidelines" / "bone-metastases" / "guideline.yaml"
DAY = dt.date(2026, 11, 27)


# --- cohort ---------------------------------------------------------------------

def cohort(g: engine.Guideline, n: int, seed: int, missing: float = 0.10) -> list[dict[str, Any]]:
    """``n`` synthetic patients drawn from the guideline's fact declarations."""
    return list(generate(g, n, seed, missing))


def generate(g: engine.Guideline, n: int, seed: int, missing: float = 0.10) -> Iterator[dict[str, Any]]:
    """The same patients, one at a time (for cohorts too large to hold)."""
    rng = random.Random(seed)
    specs = list(g.compiled.facts.values())
    for _ in range(n):
        facts: dict[str, Any] = {}
        for spec in specs:
            if rng.random() < missing:
                continue
            facts[spec.name] = _draw(spec, rng)
        yield facts


def write_cohort(g: engine.Guideline, n: int, seed: int, path: str) -> None:
    """The cohort as JSON Lines (with a patient_id), the input of ``guideline batch``."""
    with open(path, "w", encoding="utf-8") as out:
        for i, facts in enumerate(generate(g, n, seed), start=1):
            out.write(json.dumps({"patient_id": f"P{i:07d}", **facts}, ensure_ascii=False) + "\n")


def _draw(spec: Any, rng: random.Random) -> Any:
    if spec.type == "boolean":
        return rng.random() < 0.5
    if spec.type == "enum":
        return rng.choice(spec.values)
    if spec.type == "list":
        return [v for v in spec.values if rng.random() < 0.3]
    if spec.type == "date":
        return (DAY - dt.timedelta(days=rng.randint(0, 3 * 365))).isoformat()
    low, high = spec.range
    low = 0.0 if low is None else float(low)
    high = low + 1000.0 if high is None else float(high)
    # Most of the mass in the lower half of the plausible range, where the
    # clinical thresholds are; a tail up to the maximum.
    value = min(high, max(low, rng.triangular(low, high, low + (high - low) * 0.1)))
    if spec.type == "integer":
        return round(value)
    if spec.type == "number":
        return round(value, 1)
    unit = rng.choice(spec.units.units)
    shown = round(spec.units.from_canonical(value, unit), 2)
    if unit.convert(shown) < low or unit.convert(shown) > high:  # rounding must not leave the range
        unit, shown = spec.units.units[0], round(value, 2)
    return {"value": shown, "unit": unit.name}


# --- the hand-written reference -------------------------------------------------
# Plain Python for the same decisions, written for speed. Unknown is None and
# and/or/not follow Kleene logic, as in the guideline.

def _and(*xs: Any) -> Any:
    unknown = False
    for x in xs:
        if x is False:
            return False
        if x is None:
            unknown = True
    return None if unknown else True


def _or(*xs: Any) -> Any:
    unknown = False
    for x in xs:
        if x is True:
            return True
        if x is None:
            unknown = True
    return None if unknown else False


def _not(x: Any) -> Any:
    return None if x is None else not x


def _eq(a: Any, b: Any) -> Any:
    return None if a is None else a == b


def _lt(a: Any, b: float) -> Any:
    return None if a is None else a < b


def _ge(a: Any, b: float) -> Any:
    return None if a is None else a >= b


def _round1(x: float) -> float:
    # The guideline's rounding rule: half-up on the decimal the clinician reads.
    # Away from a tie, floor(10x + 0.5) / 10 is exact; a tie goes through Decimal.
    scaled = x * 10
    if abs(scaled - math.floor(scaled) - 0.5) > 1e-6:
        return math.floor(scaled + 0.5) / 10
    return float(Decimal(repr(x)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _quantity(facts: dict[str, Any], name: str) -> Any:
    q = facts.get(name)
    if q is None:
        return None
    unit = q["unit"]
    if name == "vitamin_d_25oh" and unit == "nmol/L":
        return q["value"] / 2.5
    if name == "serum_creatinine" and unit == "mg/dL":
        return q["value"] * 88.4
    return q["value"]


def _months_between(start: dt.date, end: dt.date) -> int:
    months = (end.year - start.year) * 12 + (end.month - start.month)
    return months - 1 if end.day < start.day else months


def reference(facts: dict[str, Any], today: dt.date = DAY) -> tuple[dict[str, Any], dict[str, Any]]:
    """(rule outcomes, key values) of the shipped guideline, by hand."""
    g = facts.get
    bm, le, sre, emergency = g("bone_metastases"), g("life_expectancy_over_3_months"), g("skeletal_event"), g("emergency")
    agent, pattern, response = g("current_agent"), g("bone_pattern"), g("oncological_response")
    vd = _quantity(facts, "vitamin_d_25oh")
    diet = _quantity(facts, "dietary_calcium")
    measured = _quantity(facts, "measured_clearance")
    creat = _quantity(facts, "serum_creatinine")
    age, sex, weight = g("age"), g("sex"), _quantity(facts, "weight")
    if measured is not None:
        cc = _round1(measured)
    elif None in (age, weight, creat, sex):
        cc = None
    else:
        cc = _round1((140 - age) * weight * 88.4 / (72 * creat) * (0.85 if sex == "female" else 1))
    not_started = _eq(agent, "none")
    indicated = _and(bm, _or(le, sre))
    if cc is None:
        dose = contra = None
    elif cc > 60:
        dose, contra = 4.0, False
    elif cc >= 50:
        dose, contra = 3.5, False
    elif cc >= 40:
        dose, contra = 3.3, False
    elif cc >= 30:
        dose, contra = 3.0, False
    elif cc >= 0:
        dose, contra = None, True
    else:
        dose = contra = None
    if vd is None:
        vclass = loading = None
    else:
        vclass = ("deficiency" if vd < 10 else "insufficiency" if vd < 30 else "recommended" if vd <= 70
                  else "unclassified" if vd <= 150 else "possible_intoxication")
        loading = 8 if vd < 20 else 4 if vd < 30 else 0
    zcand = _and(_or(indicated, _eq(agent, "zoledronic_acid")), _not(contra))
    dcand = _or(_and(indicated, _eq(pattern, "multiple")), _eq(agent, "denosumab"))
    start = g("treatment_start_date")
    months = None if start is None else _months_between(dt.date.fromisoformat(start), today)
    seen = g("exposed_bone_identified_on")
    weeks = None if seen is None else _round1((today - dt.date.fromisoformat(seen)).days / 7)
    onj = _and(g("exposed_jaw_bone"), None if weeks is None else weeks > 8, g("antiresorptive_exposure"),
               _not(g("craniofacial_irradiation")))
    treated = _or(indicated, _not(not_started))
    meds = g("comedications")
    multiple = _eq(pattern, "multiple")
    oligo = _eq(pattern, "oligometastatic")
    infusions = g("zoledronic_infusions_given")
    stopping = _and(_eq(agent, "denosumab"), g("denosumab_stop_planned"))
    rules = {
        "measure-vitamin-d": _and(bm, vd is None),
        "vitamin-d-status": _and(bm, None if vclass is None else vclass in ("deficiency", "insufficiency", "recommended")),
        "vitamin-d-unclassified-band": _and(bm, _eq(vclass, "unclassified")),
        "vitamin-d-possible-intoxication": _and(bm, _eq(vclass, "possible_intoxication")),
        "vitamin-d-loading-8": _and(bm, _eq(loading, 8)),
        "vitamin-d-loading-4": _and(bm, _eq(loading, 4)),
        "vitamin-d-supplement-form": _and(bm, None if loading is None else loading > 0),
        "defer-antiresorptive-vitamin-d": _and(indicated, not_started, _lt(vd, 20), _not(emergency)),
        "emergency-start-despite-vitamin-d": _and(indicated, not_started, _lt(vd, 20), emergency),
        "calcium-supplement": _and(treated, _lt(diet, 1000)),
        "calcium-diet-sufficient": _and(treated, _ge(diet, 1000)),
        "maintain-vitamin-d-calcium": treated,
        "start-antiresorptive": _and(indicated, not_started),
        "no-indication-short-survival": _and(bm, _not(le), _not(sre)),
        "out-of-scope": _not(bm),
        "check-renal-function": _and(treated, cc is None),
        "dental-assessment": _and(indicated, not_started, _not(g("dental_assessment_done")), _not(emergency)),
        "dental-restoration-first": _and(indicated, not_started, g("dental_care_needed"), _not(emergency)),
        "extraction-delay": _and(indicated, not_started, g("recent_tooth_extraction"), _not(emergency)),
        "dental-follow-up": treated,
        "onj-referral": onj,
        "onj-definition-not-met": _and(g("exposed_jaw_bone"), _not(onj)),
        "oligometastatic-zoledronic": _and(indicated, oligo, _not(contra)),
        "oligometastatic-zoledronic-contraindicated": _and(indicated, oligo, contra),
        "multiple-zoledronic-monthly": _and(indicated, multiple, _not(contra)),
        "multiple-denosumab-monthly": _and(indicated, multiple),
        "zoledronic-spacing-on-response": _and(multiple, None if response is None else response in ("complete", "good"),
                                               treated),
        "zoledronic-contraindicated": _and(_or(indicated, _eq(agent, "zoledronic_acid")), contra),
        "zoledronic-administration": _and(zcand, dose is not None),
        "first-infusion-paracetamol": _and(zcand, _eq(infusions, 0)),
        "bisphosphonate-beyond-24-months": _and(_eq(agent, "zoledronic_acid"), _ge(months, 24)),
        "denosumab-severe-renal-impairment": _and(dcand, _lt(cc, 30)),
        "denosumab-adherence": dcand,
        "denosumab-cofactors": _and(dcand, None if meds is None else _or(
            "corticosteroids" in meds, "antiangiogenic" in meds, "head_neck_radiotherapy" in meds)),
        "reassess-after-2-years": _and(_not(not_started), _ge(months, 24)),
        "stop-denosumab-relay": _and(stopping, _not(contra)),
        "stop-denosumab-relay-contraindicated": _and(stopping, contra),
        "tolerance-profile": _and(indicated, multiple),
    }
    values = {
        "vitamin_d_class": vclass, "vitamin_d_loading_doses": loading,
        "calcium_supplement_min": None if diet is None else max(0, 1000 - diet),
        "calcium_supplement_max": None if diet is None else max(0, 1500 - diet),
        "antiresorptive_indicated": indicated, "creatinine_clearance": cc,
        "zoledronic_dose_mg": dose, "zoledronic_contraindicated": contra,
    }
    return rules, values


# --- checks and timing ---------------------------------------------------------------

def check(g: engine.Guideline, patients: list[dict[str, Any]]) -> tuple[int, int]:
    """(patients checked, mismatches); every mismatch is printed with its patient."""
    mismatches = refused = 0
    for i, facts in enumerate(patients):
        try:
            ours = g.decide(facts, on=DAY)
        except engine.FactsError:
            refused += 1
            continue
        rules, values = reference(facts)
        diffs = [f"rule {r}: interpreter {ours.rules[r]!r}, reference {o!r}" for r, o in rules.items()
                 if ours.rules[r] is not o]
        diffs += [f"{k}: interpreter {ours.values[k]!r}, reference {v!r}" for k, v in values.items()
                  if not (ours.values[k] == v or (isinstance(v, float) and math.isclose(ours.values[k] or 0, v)))]
        if set(ours.rules) != set(rules):
            diffs.append(f"rule sets differ: {sorted(set(ours.rules) ^ set(rules))}")
        if diffs:
            mismatches += 1
            if mismatches <= 5:
                print(f"MISMATCH patient {i}: {json.dumps(facts, ensure_ascii=False)}")
                for d in diffs:
                    print(f"    {d}")
    return len(patients) - refused, mismatches


def check_texts(g: engine.Guideline, patients: list[dict[str, Any]]) -> tuple[int, int]:
    """(texts compared, mismatches): each text rendered by its translated Python
    function (engine.textgen) must equal what Jinja's sandbox renders from the same values."""
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
                expected = jinja[id(template)].render(result._explainer.env, 100_000)
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
    print(f"cross-check against the hand-written reference: {mismatches} mismatch(es)")
    texts, text_mismatches = check_texts(g, patients)
    print(f"cross-check of {texts} translated texts (fr, en) against Jinja's sandbox: "
          f"{text_mismatches} mismatch(es)")
    mismatches += text_mismatches
    valid = [p for p in patients if _valid(g, p)]
    n = len(valid)

    def run_reference(part: list[dict[str, Any]]) -> None:
        for facts in part:
            reference(facts)

    def run_decide(part: list[dict[str, Any]]) -> None:
        for facts in part:
            g.decide(facts, on=DAY)

    def run_full(part: list[dict[str, Any]]) -> None:
        for facts in part:
            g.evaluate(facts, on=DAY, lang="fr")

    (ref_best, ref_median), (dec_best, dec_median), (full_best, full_median) = timed(
        [run_reference, run_decide, run_full], valid, args.repeats)
    # Memory is traced in a separate pass: tracing slows everything it watches.
    tracemalloc.start()
    run_full(valid)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    def us(seconds: float) -> float:
        return seconds / n * 1e6

    print(f"guideline load + compile: {load_seconds * 1000:.0f} ms")
    print(f"{'':34} {'best µs':>9} {'median µs':>10} {'patients/s':>11} {'ratio':>7}")
    for label, best, median in (("hand-written reference", ref_best, ref_median),
                                ("interpreter, decisions only", dec_best, dec_median),
                                ("interpreter, full result (fr)", full_best, full_median)):
        print(f"{label:34} {us(best):9.1f} {us(median):10.1f} {n / best:11.0f} {best / ref_best:7.2f}")
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
    return 1 if mismatches else 0


def _valid(g: engine.Guideline, facts: dict[str, Any]) -> bool:
    try:
        g.decide(facts, on=DAY)
    except engine.FactsError:
        return False
    return True


if __name__ == "__main__":
    raise SystemExit(main())
