"""The shipped guideline's decisions written as a careful engineer would write them by hand, for speed.

The benchmark's yardstick (issue 19): the same decisions as
``guidelines/bone-metastases/guideline.yaml`` and as the readable oracle
(:mod:`tests.oracle.bone_metastases`), with the facts validated as the engine
validates them (known names only; types, enum values, units and plausible
ranges; dates in ISO form, not in the future), everything inlined in one
function: no helper call per rule, no three-valued helper functions -- an
unknown value is None and each and/or/not is written out. It imports nothing
from ``engine``. ``tools/bench.py`` checks it against the engine and the
readable oracle on the whole cohort before timing anything.

Invalid facts raise ValueError (the engine raises FactsError and explains).
"""

# Values are compared with != one by one, not with `in` a set: a fact may be any
# JSON value, a list among them, and must be refused with ValueError, not TypeError.
# ruff: noqa: PLR1714

from __future__ import annotations

import datetime as dt
import math
from typing import Any

__all__ = ["lean"]

_FACTS = frozenset({
    "bone_metastases", "life_expectancy_over_3_months", "life_expectancy_months", "skeletal_event",
    "high_risk_lesions", "emergency", "bone_pattern", "oncological_response", "current_agent",
    "treatment_start_date", "zoledronic_infusions_given", "denosumab_stop_planned",
    "new_skeletal_event_on_treatment", "vitamin_d_25oh", "dietary_calcium", "serum_creatinine",
    "measured_clearance", "age", "weight", "sex", "dental_assessment_done", "dental_care_needed",
    "recent_tooth_extraction", "tooth_extraction_date", "dentist_clearance", "jaw_osteonecrosis",
    "exposed_jaw_bone", "exposed_bone_identified_on", "antiresorptive_exposure", "craniofacial_irradiation",
    "comedications", "tobacco", "alcohol",
})
_BOOLEANS = ("bone_metastases", "life_expectancy_over_3_months", "skeletal_event", "high_risk_lesions", "emergency",
             "denosumab_stop_planned", "new_skeletal_event_on_treatment", "dental_assessment_done",
             "dental_care_needed", "recent_tooth_extraction", "dentist_clearance", "jaw_osteonecrosis",
             "exposed_jaw_bone", "antiresorptive_exposure", "craniofacial_irradiation", "tobacco", "alcohol")
_MEDS = frozenset({"corticosteroids", "antiangiogenic", "head_neck_radiotherapy"})
_BAD = ValueError("invalid facts")


def lean(f: dict[str, Any], today: dt.date) -> tuple[dict[str, Any], dict[str, Any]]:
    """(rule outcomes, key values) for one patient's facts on ``today``; ValueError if a fact is invalid."""
    if not f.keys() <= _FACTS:
        raise _BAD
    for name in _BOOLEANS:
        b = f.get(name)
        if b is not None and b is not True and b is not False:
            raise _BAD
    g = f.get
    bm = g("bone_metastases")
    sre = g("skeletal_event")
    emergency = g("emergency")
    stop_planned = g("denosumab_stop_planned")
    done = g("dental_assessment_done")
    care = g("dental_care_needed")
    exposed = g("exposed_jaw_bone")
    irradiated = g("craniofacial_irradiation")

    pattern = g("bone_pattern")
    if pattern is not None and pattern != "oligometastatic" and pattern != "multiple":
        raise _BAD
    response = g("oncological_response")
    if response is not None and (type(response) is not str
                                 or response not in ("complete", "good", "partial", "stable", "progression")):
        raise _BAD
    agent = g("current_agent")
    if agent is not None and agent != "none" and agent != "zoledronic_acid" and agent != "denosumab":
        raise _BAD
    sex = g("sex")
    if sex is not None and sex != "female" and sex != "male":
        raise _BAD
    months_left = g("life_expectancy_months")
    if months_left is not None and not ((type(months_left) is int or type(months_left) is float)
                                        and 0 <= months_left <= 240):
        raise _BAD
    infusions = g("zoledronic_infusions_given")
    if infusions is not None and not (type(infusions) is int and 0 <= infusions <= 200):
        raise _BAD
    age = g("age")
    if age is not None and not (type(age) is int and 18 <= age <= 120):
        raise _BAD

    # Quantities: {"value": number, "unit": accepted spelling}, converted to the canonical unit.
    q = g("vitamin_d_25oh")
    vd = None
    if q is not None:
        if type(q) is not dict or len(q) != 2:
            raise _BAD
        vd, unit = q.get("value"), q.get("unit")
        if not ((type(vd) is int or type(vd) is float) and math.isfinite(vd)):
            raise _BAD
        if unit == "nmol/L":
            vd = vd / 2.5
        elif unit != "ng/mL":
            raise _BAD
        if not 1 <= vd <= 500:
            raise _BAD
    q = g("dietary_calcium")
    diet = None
    if q is not None:
        if type(q) is not dict or len(q) != 2:
            raise _BAD
        diet, unit = q.get("value"), q.get("unit")
        if not ((type(diet) is int or type(diet) is float) and math.isfinite(diet)) or (unit != "mg/day"
                                                                                        and unit != "mg/j"):
            raise _BAD
        if not 0 <= diet <= 5000:
            raise _BAD
    q = g("serum_creatinine")
    creat = None
    if q is not None:
        if type(q) is not dict or len(q) != 2:
            raise _BAD
        creat, unit = q.get("value"), q.get("unit")
        if not ((type(creat) is int or type(creat) is float) and math.isfinite(creat)):
            raise _BAD
        if unit == "mg/dL":
            creat = creat * 88.4
        elif unit != "µmol/L":
            raise _BAD
        if not 15 <= creat <= 2000:
            raise _BAD
    q = g("measured_clearance")
    measured = None
    if q is not None:
        if type(q) is not dict or len(q) != 2:
            raise _BAD
        measured, unit = q.get("value"), q.get("unit")
        if not ((type(measured) is int or type(measured) is float) and math.isfinite(measured)) or unit != "mL/min":
            raise _BAD
        if not 1 <= measured <= 250:
            raise _BAD
    q = g("weight")
    weight = None
    if q is not None:
        if type(q) is not dict or len(q) != 2:
            raise _BAD
        weight, unit = q.get("value"), q.get("unit")
        if not ((type(weight) is int or type(weight) is float) and math.isfinite(weight)) or unit != "kg":
            raise _BAD
        if not 25 <= weight <= 250:
            raise _BAD

    # Dates: ISO, not after the evaluation date.
    d = g("treatment_start_date")
    start = None
    if d is not None:
        if type(d) is not str or len(d) != 10:
            raise _BAD
        start = dt.date.fromisoformat(d)
        if start > today:
            raise _BAD
    d = g("tooth_extraction_date")
    extracted_on = None
    if d is not None:
        if type(d) is not str or len(d) != 10:
            raise _BAD
        extracted_on = dt.date.fromisoformat(d)
        if extracted_on > today:
            raise _BAD
    d = g("exposed_bone_identified_on")
    seen = None
    if d is not None:
        if type(d) is not str or len(d) != 10:
            raise _BAD
        seen = dt.date.fromisoformat(d)
        if seen > today:
            raise _BAD
    meds = g("comedications")
    if meds is not None and not (type(meds) is list and len(set(meds)) == len(meds)
                                 and all(type(m) is str and m in _MEDS for m in meds)):
        raise _BAD

    # --- derived values and tables -------------------------------------------------------
    if measured is not None:
        cc = float(f"{measured:.12g}") if type(measured) is float else measured
    elif age is None or weight is None or creat is None or sex is None:
        cc = None
    else:
        cc = (140 - age) * weight * 88.4 / (72 * creat) * (0.85 if sex == "female" else 1)
        cc = float(f"{cc:.12g}")
    life = (months_left > 3) if months_left is not None else g("life_expectancy_over_3_months")
    life_or_sre = True if life is True or sre is True else None if life is None or sre is None else False
    indicated = False if bm is False or life_or_sre is False else None if bm is None or life_or_sre is None else True
    not_started = None if agent is None else agent == "none"
    pending = False if indicated is False or not_started is False else \
        None if indicated is None or not_started is None else True
    treated = True if indicated is True or not_started is False else \
        None if indicated is None or not_started is None else False
    on_zol = None if agent is None else agent == "zoledronic_acid"
    on_den = None if agent is None else agent == "denosumab"
    stopping = False if on_den is False or stop_planned is False else \
        None if on_den is None or stop_planned is None else True
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
        if vd < 10:
            vclass = "deficiency"
        elif vd < 30:
            vclass = "insufficiency"
        elif vd <= 70:
            vclass = "recommended"
        elif vd <= 150:
            vclass = "unclassified"
        else:
            vclass = "possible_intoxication"
        loading = 8 if vd < 20 else 4 if vd < 30 else 0
    excess = None if vclass is None else vclass == "possible_intoxication"
    zol_planned = True if pending is True or on_zol is True or stopping is True else \
        None if pending is None or on_zol is None or stopping is None else False
    zcand = False if zol_planned is False or contra is True else None if zol_planned is None or contra is None else True
    multiple = None if pattern is None else pattern == "multiple"
    oligo = None if pattern is None else pattern == "oligometastatic"
    pending_multiple = False if pending is False or multiple is False else \
        None if pending is None or multiple is None else True
    den_continue = False if on_den is False or stop_planned is True else \
        None if on_den is None or stop_planned is None else True
    dcand = True if pending_multiple is True or den_continue is True else \
        None if pending_multiple is None or den_continue is None else False
    if start is None:
        months = None
    else:
        months = (today.year - start.year) * 12 + (today.month - start.month) - (today.day < start.day)
    weeks = None if seen is None else math.floor((today - seen).days / 7 * 10 + 0.5) / 10
    over_8 = None if weeks is None else weeks > 8
    exposure = g("antiresorptive_exposure")
    definition = False if exposed is False or over_8 is False or exposure is False or irradiated is True else \
        None if exposed is None or over_8 is None or exposure is None or irradiated is None else True
    onj = g("jaw_osteonecrosis")
    if onj is None:
        onj = definition
    vd_low = None if vd is None else vd < 20
    vd_wait = vd is None or vd < 20
    dental_wait = True if done is None or done is False or care is True else None if care is None else False
    healing = None if extracted_on is None else extracted_on + dt.timedelta(weeks=3) > today
    clearance_given = g("dentist_clearance")
    extraction_open = True if extracted_on is None or healing is True or clearance_given is None \
        or clearance_given is False else None if healing is None else False
    recent = g("recent_tooth_extraction")
    extraction_wait = False if recent is False or extraction_open is False else \
        None if recent is None or extraction_open is None else True
    waiting = True if vd_wait is True or dental_wait is True or extraction_wait is True else \
        None if dental_wait is None or extraction_wait is None else False
    if indicated is None:
        decision = None
    elif not indicated:
        decision = "not_indicated"
    elif not_started is None:
        decision = None
    elif not not_started:
        decision = "already_started"
    else:
        now = True if emergency is True or waiting is False else None if emergency is None or waiting is None else False
        decision = None if now is None else "now" if now else "deferred"
    pending_or_zol = True if pending is True or on_zol is True else None if pending is None or on_zol is None else False
    not_contra = None if contra is None else not contra
    not_excess = None if excess is None else not excess
    on_2_years = None if months is None else months >= 24
    diet_low = None if diet is None else diet < 1000
    assessment_missing = done is None or done is False
    first_infusion = True if not_started is True or infusions == 0 else \
        None if not_started is None or infusions is None else False

    rules = {
        "measure-vitamin-d": False if bm is False or vd is not None else None if bm is None else True,
        "vitamin-d-status": False if bm is False or vclass in ("unclassified", "possible_intoxication") else
        None if bm is None or vclass is None else True,
        "vitamin-d-unclassified-band": False if bm is False or (vclass is not None and vclass != "unclassified") else
        None if bm is None or vclass is None else True,
        "vitamin-d-possible-intoxication": False if bm is False or excess is False else
        None if bm is None or excess is None else True,
        "vitamin-d-loading-8": False if bm is False or (loading is not None and loading != 8) else
        None if bm is None or loading is None else True,
        "vitamin-d-loading-4": False if bm is False or (loading is not None and loading != 4) else
        None if bm is None or loading is None else True,
        "vitamin-d-supplement-form": False if bm is False or loading == 0 else
        None if bm is None or loading is None else True,
        "defer-antiresorptive-vitamin-d": False if pending is False or vd_low is False or emergency is True else
        None if pending is None or vd_low is None or emergency is None else True,
        "emergency-start-despite-vitamin-d": False if pending is False or vd_low is False or emergency is False else
        None if pending is None or vd_low is None or emergency is None else True,
        "calcium-supplement": False if treated is False or diet_low is False or excess is True else
        None if treated is None or diet_low is None or excess is None else True,
        "calcium-diet-sufficient": False if treated is False or diet_low is True else
        None if treated is None or diet_low is None else True,
        "maintain-vitamin-d-calcium": False if treated is False or not_excess is False else
        None if treated is None or not_excess is None else True,
        "start-antiresorptive": pending,
        "start-now": None if decision is None else decision == "now",
        "start-deferred": None if decision is None else decision == "deferred",
        "no-indication-short-survival": False if bm is False or life is True or sre is True else
        None if bm is None or life is None or sre is None else True,
        "out-of-scope": None if bm is None else not bm,
        "check-renal-function": False if treated is False or cc is not None else None if treated is None else True,
        "dental-assessment": False if pending is False or assessment_missing is False else
        None if pending is None else True,
        "dental-restoration-first": False if pending is False or care is False or emergency is True else
        None if pending is None or care is None or emergency is None else True,
        "extraction-delay": False if pending is False or extraction_wait is False or emergency is True else
        None if pending is None or extraction_wait is None or emergency is None else True,
        "dental-follow-up": treated,
        "onj-referral": onj,
        "exposed-bone-after-irradiation": False if exposed is False or irradiated is False or onj is True else
        None if exposed is None or irradiated is None or onj is None else True,
        "onj-definition-not-met": False if exposed is False or onj is True or irradiated is True else
        None if exposed is None or onj is None or irradiated is None else True,
        "oligometastatic-zoledronic": False if pending_or_zol is False or oligo is False or contra is True else
        None if pending_or_zol is None or oligo is None or contra is None else True,
        "oligometastatic-zoledronic-contraindicated": False if pending_or_zol is False or oligo is False
        or contra is False else None if pending_or_zol is None or oligo is None or contra is None else True,
        "multiple-zoledronic-monthly": False if pending_or_zol is False or multiple is False or contra is True else
        None if pending_or_zol is None or multiple is None or contra is None else True,
        "multiple-denosumab-monthly": dcand,
        "zoledronic-spacing-on-response": False if multiple is False
        or (response is not None and response != "complete" and response != "good")
        or (pending is False and on_zol is False and on_den is False) else
        None if multiple is None or response is None
        or not (pending is True or on_zol is True or on_den is True) else True,
        "zoledronic-contraindicated": False if zol_planned is False or contra is False else
        None if zol_planned is None or contra is None else True,
        "zoledronic-administration": False if zcand is False or dose is None else None if zcand is None else True,
        "first-infusion-paracetamol": False if zcand is False or first_infusion is False else
        None if zcand is None or first_infusion is None else True,
        "bisphosphonate-beyond-24-months": False if on_zol is False or on_2_years is False else
        None if on_zol is None or on_2_years is None else True,
        "denosumab-severe-renal-impairment": False if dcand is False or (cc is not None and cc >= 30) else
        None if dcand is None or cc is None else True,
        "denosumab-adherence": dcand,
        "denosumab-cofactors": False if dcand is False or (meds is not None and "corticosteroids" not in meds
                                                           and "antiangiogenic" not in meds
                                                           and "head_neck_radiotherapy" not in meds) else
        None if dcand is None or meds is None else True,
        "reassess-after-2-years": False if not_started is True or on_2_years is False else
        None if not_started is None or on_2_years is None else True,
        "stop-denosumab-relay": False if stopping is False or not_contra is False else
        None if stopping is None or not_contra is None else True,
        "stop-denosumab-relay-contraindicated": False if stopping is False or contra is False else
        None if stopping is None or contra is None else True,
        "tolerance-profile": pending_multiple,
    }
    values = {
        "vitamin_d_class": vclass, "vitamin_d_loading_doses": loading,
        "calcium_supplement_min": None if diet is None else max(0, 1000 - diet),
        "calcium_supplement_max": None if diet is None else (1500 - diet if diet < 1000 else 0),
        "antiresorptive_indicated": indicated, "creatinine_clearance": cc,
        "zoledronic_dose_mg": dose, "zoledronic_contraindicated": contra, "start_decision": decision,
    }
    return rules, values
