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


def _clean(x: float) -> float:
    # Decisions read a computed number to 12 significant digits (no rounding before Table 2).
    return float(f"{x:.12g}")


def _date(text: Any) -> dt.date | None:
    return None if text is None else dt.date.fromisoformat(text) if isinstance(text, str) else text


def reference(facts: dict[str, Any], today: dt.date = DAY) -> tuple[dict[str, Any], dict[str, Any]]:
    """(rule outcomes, key values) of the shipped guideline, by hand."""
    g = facts.get
    bm, sre, emergency = g("bone_metastases"), g("skeletal_event"), g("emergency")
    agent, pattern, response = g("current_agent"), g("bone_pattern"), g("oncological_response")
    months_left = g("life_expectancy_months")
    life = (months_left > 3) if months_left is not None else g("life_expectancy_over_3_months")
    vd = _quantity(facts, "vitamin_d_25oh")
    diet = _quantity(facts, "dietary_calcium")
    measured = _quantity(facts, "measured_clearance")
    creat = _quantity(facts, "serum_creatinine")
    age, sex, weight = g("age"), g("sex"), _quantity(facts, "weight")
    if measured is not None:
        cc = _clean(measured)
    elif None in (age, weight, creat, sex):
        cc = None
    else:
        cc = _clean((140 - age) * weight * 88.4 / (72 * creat) * (0.85 if sex == "female" else 1))
    not_started = _eq(agent, "none")
    indicated = _and(bm, _or(life, sre))
    pending = _and(indicated, not_started)
    treated = _or(indicated, _not(not_started))
    on_zol, on_den = _eq(agent, "zoledronic_acid"), _eq(agent, "denosumab")
    stopping = _and(on_den, g("denosumab_stop_planned"))
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
    excess = _eq(vclass, "possible_intoxication")
    zol_planned = _or(pending, on_zol, stopping)
    zcand = _and(zol_planned, _not(contra))
    dcand = _or(_and(pending, _eq(pattern, "multiple")), _and(on_den, _not(g("denosumab_stop_planned"))))
    start = _date(g("treatment_start_date"))
    months = None if start is None else _months_between(start, today)
    seen = _date(g("exposed_bone_identified_on"))
    weeks = None if seen is None else _round1((today - seen).days / 7)
    definition = _and(g("exposed_jaw_bone"), None if weeks is None else weeks > 8, g("antiresorptive_exposure"),
                      _not(g("craniofacial_irradiation")))
    onj = g("jaw_osteonecrosis") if g("jaw_osteonecrosis") is not None else definition
    meds = g("comedications")
    multiple = _eq(pattern, "multiple")
    oligo = _eq(pattern, "oligometastatic")
    infusions = g("zoledronic_infusions_given")
    # The start decision (§1, §2.3): a prerequisite not documented is one still to meet.
    vd_wait = True if vd is None else vd < 20
    done, care = g("dental_assessment_done"), g("dental_care_needed")
    dental_wait = _or(done is None, _not(done), care)
    extracted_on = _date(g("tooth_extraction_date"))
    healing = None if extracted_on is None else extracted_on + dt.timedelta(weeks=3) > today
    clearance_given = g("dentist_clearance")
    extraction_wait = _and(g("recent_tooth_extraction"),
                           _or(extracted_on is None, healing, clearance_given is None, _not(clearance_given)))
    waiting = _or(vd_wait, dental_wait, extraction_wait)
    if indicated is None:
        decision = None
    elif not indicated:
        decision = "not_indicated"
    elif not_started is None:
        decision = None
    elif not not_started:
        decision = "already_started"
    else:
        now = _or(emergency, _not(waiting))
        decision = None if now is None else "now" if now else "deferred"
    rules = {
        "measure-vitamin-d": _and(bm, vd is None),
        "vitamin-d-status": _and(bm, None if vclass is None else vclass in ("deficiency", "insufficiency", "recommended")),
        "vitamin-d-unclassified-band": _and(bm, _eq(vclass, "unclassified")),
        "vitamin-d-possible-intoxication": _and(bm, excess),
        "vitamin-d-loading-8": _and(bm, _eq(loading, 8)),
        "vitamin-d-loading-4": _and(bm, _eq(loading, 4)),
        "vitamin-d-supplement-form": _and(bm, None if loading is None else loading > 0),
        "defer-antiresorptive-vitamin-d": _and(pending, _lt(vd, 20), _not(emergency)),
        "emergency-start-despite-vitamin-d": _and(pending, _lt(vd, 20), emergency),
        "calcium-supplement": _and(treated, _lt(diet, 1000), _not(excess)),
        "calcium-diet-sufficient": _and(treated, _ge(diet, 1000)),
        "maintain-vitamin-d-calcium": _and(treated, _not(excess)),
        "start-antiresorptive": pending,
        "start-now": _eq(decision, "now"),
        "start-deferred": _eq(decision, "deferred"),
        "no-indication-short-survival": _and(bm, _not(life), _not(sre)),
        "out-of-scope": _not(bm),
        "check-renal-function": _and(treated, cc is None),
        "dental-assessment": _and(pending, _or(done is None, _not(done))),
        "dental-restoration-first": _and(pending, care, _not(emergency)),
        "extraction-delay": _and(pending, extraction_wait, _not(emergency)),
        "dental-follow-up": treated,
        "onj-referral": onj,
        "exposed-bone-after-irradiation": _and(g("exposed_jaw_bone"), g("craniofacial_irradiation"), _not(onj)),
        "onj-definition-not-met": _and(g("exposed_jaw_bone"), _not(onj), _not(g("craniofacial_irradiation"))),
        "oligometastatic-zoledronic": _and(_or(pending, on_zol), oligo, _not(contra)),
        "oligometastatic-zoledronic-contraindicated": _and(_or(pending, on_zol), oligo, contra),
        "multiple-zoledronic-monthly": _and(_or(pending, on_zol), multiple, _not(contra)),
        "multiple-denosumab-monthly": dcand,
        "zoledronic-spacing-on-response": _and(multiple, None if response is None else response in ("complete", "good"),
                                               _or(pending, on_zol, on_den)),
        "zoledronic-contraindicated": _and(zol_planned, contra),
        "zoledronic-administration": _and(zcand, dose is not None),
        "first-infusion-paracetamol": _and(zcand, _or(not_started, _eq(infusions, 0))),
        "bisphosphonate-beyond-24-months": _and(on_zol, _ge(months, 24)),
        "denosumab-severe-renal-impairment": _and(dcand, _lt(cc, 30)),
        "denosumab-adherence": dcand,
        "denosumab-cofactors": _and(dcand, None if meds is None else _or(
            "corticosteroids" in meds, "antiangiogenic" in meds, "head_neck_radiotherapy" in meds)),
        "reassess-after-2-years": _and(_not(not_started), _ge(months, 24)),
        "stop-denosumab-relay": _and(stopping, _not(contra)),
        "stop-denosumab-relay-contraindicated": _and(stopping, contra),
        "tolerance-profile": _and(pending, multiple),
    }
    supplement = None if diet is None else (max(0, 1000 - diet), 1500 - diet if diet < 1000 else 0)
    values = {
        "vitamin_d_class": vclass, "vitamin_d_loading_doses": loading,
        "calcium_supplement_min": None if supplement is None else supplement[0],
        "calcium_supplement_max": None if supplement is None else supplement[1],
        "antiresorptive_indicated": indicated, "creatinine_clearance": cc,
        "zoledronic_dose_mg": dose, "zoledronic_contraindicated": contra, "start_decision": decision,
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
