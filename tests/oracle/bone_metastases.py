"""The independent clinical oracle: the shipped guideline's decisions written by hand.

Plain Python for the same decisions as ``guidelines/bone-metastases/guideline.yaml``,
written from the source text, sharing no code with the engine (it imports
nothing from ``engine``). Unknown is None and and/or/not follow Kleene logic,
as in the guideline. ``tests/test_oracle.py`` checks the engine against it on
a generated cohort and on every shipped case; ``tools/bench.py`` checks it
again on a larger cohort and times the engine against it.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

__all__ = ["DAY", "disagreements", "reference"]

DAY = dt.date(2026, 11, 27)

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
    if isinstance(q, str):  # "42 nmol/L": the number, then the unit
        number, _, unit = q.strip().partition(" ")
        value = float(number)
    else:
        value, unit = q["value"], q["unit"]
    unit = unit.strip()
    if name == "vitamin_d_25oh" and unit == "nmol/L":
        return value / 2.5
    if name == "serum_creatinine" and unit == "mg/dL":
        return value * 88.4
    return value


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


def disagreements(decisions: Any, facts: dict[str, Any], today: dt.date = DAY) -> list[str]:
    """Where the engine's ``decisions`` (rules and values) differ from the oracle, in words."""
    rules, values = reference(facts, today)
    diffs = [f"rule {r}: interpreter {decisions.rules.get(r)!r}, reference {o!r}" for r, o in rules.items()
             if decisions.rules.get(r) is not o]
    diffs += [f"{k}: interpreter {decisions.values.get(k)!r}, reference {v!r}" for k, v in values.items()
              if not (decisions.values.get(k) == v
                      or (isinstance(v, float) and math.isclose(decisions.values.get(k) or 0, v)))]
    if set(decisions.rules) != set(rules):
        diffs.append(f"rule sets differ: {sorted(set(decisions.rules) ^ set(rules))}")
    return diffs
