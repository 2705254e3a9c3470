"""FHIR R4 data in: a Bundle (or a list of resources) to a patient's facts, with where each came from.

Each fact that declares a ``fhir`` binding in the guideline is looked up in
the resources: an Observation by code (the most recent valid one within the
look-back, its UCUM unit mapped to one of the fact's declared units),
Patient.gender and the age from Patient.birthDate at the evaluation date, a
Condition by code (present, refuted, resolved; its onset), the current agent
from active MedicationStatement or MedicationRequest resources by ATC code
(and its start), a Procedure by code (done; its date).

Nothing is guessed: data that is missing, stale, entered in error,
contradictory or in a unit the fact does not declare leaves the fact unknown,
and :attr:`FhirFacts.unknown` says why; a binding's ``when_absent`` is the
author's explicit value for "no matching resource". Resources are validated
with the ``fhir.resources`` models (R4B, compatible with R4 for the resources
read here) before anything is read; invalid FHIR raises :class:`FhirError`
naming the resource and the element.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import Diagnostic, FactsError
from engine.model import CompiledGuideline, FactSpec

__all__ = ["SYSTEMS", "FhirError", "FhirFacts", "facts_from_fhir", "merge_facts", "read_resources", "request_group"]

# Terminology names used in guidelines, and the FHIR system URIs they stand for.
SYSTEMS = {
    "LOINC": "http://loinc.org",
    "SNOMED-CT": "http://snomed.info/sct",
    "SNOMED": "http://snomed.info/sct",
    "ATC": "http://www.whocc.no/atc",
    "ICD-10": "http://hl7.org/fhir/sid/icd-10",
    "UCUM": "http://unitsofmeasure.org",
}
_VALID_OBSERVATION = {"final", "amended", "corrected"}
_ACTIVE_CONDITION = {"active", "recurrence", "relapse"}
_INACTIVE_CONDITION = {"inactive", "remission", "resolved"}
_RESOURCE_TYPES = {"Observation", "Patient", "Condition", "MedicationStatement", "MedicationRequest", "Procedure"}


class FhirError(FactsError):
    """The FHIR data is not valid FHIR R4: nothing was read."""


@dataclass(frozen=True)
class FhirFacts:
    """Facts read from FHIR data, where each came from, and why others are unknown."""

    facts: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)  # fact -> "Observation/vitd-1, 2026-11-20"
    unknown: Mapping[str, str] = field(default_factory=dict)  # fact -> why it could not be read

    @property
    def explained_sources(self) -> dict[str, str]:
        """The sources as explanations show them (``Guideline.evaluate(..., sources=...)``)."""
        return {name: f"FHIR {source}" for name, source in self.sources.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"facts": dict(self.facts), "sources": dict(self.sources), "unknown": dict(self.unknown)}


def read_resources(data: Any, source: str = "<fhir>") -> list[dict[str, Any]]:
    """The resources of a Bundle or a list of resources, each validated against the FHIR models.

    Raises :class:`FhirError` with one diagnostic per invalid element.
    """
    if isinstance(data, Mapping) and data.get("resourceType") == "Bundle":
        entries = data.get("entry") or []
        if not isinstance(entries, list):
            raise FhirError([Diagnostic(source, 0, 0, "fhir.invalid", "Bundle.entry is not a list", path="entry")])
        resources = [(f"entry[{i}].resource", e.get("resource") if isinstance(e, Mapping) else None)
                     for i, e in enumerate(entries)]
        _validate(data, "Bundle", source, "")
    elif isinstance(data, list):
        resources = [(f"[{i}]", r) for i, r in enumerate(data)]
    else:
        raise FhirError([Diagnostic(source, 0, 0, "fhir.invalid", "expected a FHIR Bundle or a list of resources",
                                    hint='a JSON object with "resourceType": "Bundle", or a JSON list')])
    out: list[dict[str, Any]] = []
    problems: list[Diagnostic] = []
    for where, resource in resources:
        if not isinstance(resource, Mapping) or not isinstance(resource.get("resourceType"), str):
            problems.append(Diagnostic(source, 0, 0, "fhir.invalid", f"{where}: not a FHIR resource (no resourceType)",
                                       path=where))
            continue
        kind = resource["resourceType"]
        try:
            _validate(resource, kind, source, where)
        except FhirError as error:
            problems.extend(error.diagnostics)
            continue
        if kind in _RESOURCE_TYPES:
            out.append(dict(resource))
    if problems:
        raise FhirError(problems)
    return out


def _validate(resource: Mapping[str, Any], kind: str, source: str, where: str) -> None:
    """Validate one resource with fhir.resources (imported only when FHIR is read: pydantic is heavy)."""
    from fhir.resources import R4B
    from pydantic import ValidationError

    try:
        model = R4B.get_fhir_model_class(kind)
    except (KeyError, ValueError):
        raise FhirError([Diagnostic(source, 0, 0, "fhir.invalid", f"{where or kind}: unknown resource type '{kind}'",
                                    path=where)]) from None
    if kind == "Bundle":  # entries are validated one by one, each with its own path
        resource = {k: v for k, v in resource.items() if k != "entry"}
    try:
        model.model_validate(resource)
    except ValidationError as error:
        name = f"{kind}/{resource.get('id')}" if resource.get("id") else kind
        raise FhirError([
            Diagnostic(source, 0, 0, "fhir.invalid",
                       f"{name}: {'.'.join(str(p) for p in e['loc']) or '(resource)'}: {e['msg']}",
                       path=".".join(filter(None, [where, *map(str, e["loc"])])))
            for e in error.errors()]) from None


def facts_from_fhir(guideline: CompiledGuideline, resources: Iterable[Mapping[str, Any]], on: dt.date) -> FhirFacts:
    """The guideline's facts found in ``resources`` (see :func:`read_resources`) on date ``on``."""
    by_type: dict[str, list[Mapping[str, Any]]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    facts: dict[str, Any] = {}
    sources: dict[str, str] = {}
    unknown: dict[str, str] = {}
    for name, spec in guideline.facts.items():
        if spec.fhir is None:
            continue
        value, why = _Reader(spec, by_type, on).read()
        if value is None:
            unknown[name] = why
        else:
            facts[name] = value
            sources[name] = why
    return FhirFacts(facts, sources, unknown)


def merge_facts(found: FhirFacts, given: Mapping[str, Any], source: str = "<facts>") -> dict[str, Any]:
    """FHIR facts completed by the ``given`` ones; a fact given both ways with two values is refused."""
    clashes = [name for name, value in given.items() if name in found.facts and value != found.facts[name]]
    if clashes:
        raise FactsError([Diagnostic(source, 0, 0, "facts.given-twice",
                                     f"'{name}' is given as {given[name]!r} but FHIR says {found.facts[name]!r} "
                                     f"({found.sources[name]})", path=name,
                                     hint="remove it from the facts file, or correct the record")
                          for name in clashes])
    return {**given, **found.facts}


class _Reader:
    """Reads one fact from the resources, as its binding says."""

    def __init__(self, spec: FactSpec, by_type: Mapping[str, list[Mapping[str, Any]]], on: dt.date) -> None:
        self.spec = spec
        self.binding: Mapping[str, Any] = spec.fhir or {}
        self.by_type = by_type
        self.on = on
        codes = self.binding.get("codes") or spec.codes
        self.codes = {_code_key(c.get("system", ""), c.get("code", "")) for c in codes}

    def read(self) -> tuple[Any, str]:
        """(value, where it came from) or (None, why it is unknown)."""
        resource, element = self.binding["resource"], self.binding["element"]
        if resource == "Patient":
            return self.patient(element)
        if resource == "Observation":
            return self.observation()
        if resource == "Condition":
            return self.condition(element)
        if resource == "MedicationStatement":
            return self.medication(element)
        return self.procedure(element)

    def absent(self, why: str) -> tuple[Any, str]:
        value = self.binding.get("when_absent")
        if value is not None:
            return value, f"no {self.binding['resource']} found: {value!r} as the guideline declares"
        return None, why

    def matching(self, *kinds: str, codes_of: str = "code") -> list[Mapping[str, Any]]:
        return [r for kind in kinds for r in self.by_type.get(kind, []) if self.codes & _codings(r.get(codes_of))]

    def patient(self, element: str) -> tuple[Any, str]:
        patients = self.by_type.get("Patient", [])
        if not patients:
            return None, "no Patient resource"
        patient = patients[0]
        source = _name(patient)
        if element == "gender":
            gender = patient.get("gender")
            if gender in self.spec.values:
                return gender, f"{source}.gender"
            return None, f"{source}.gender is {gender!r}, not one of {', '.join(self.spec.values)}"
        born = _date(patient.get("birthDate"))
        if born is None:
            return None, f"{source} has no full birthDate"
        age = self.on.year - born.year - ((self.on.month, self.on.day) < (born.month, born.day))
        return age, f"{source}.birthDate {born.isoformat()} (age on {self.on.isoformat()})"

    def observation(self) -> tuple[Any, str]:
        found = self.matching("Observation")
        if not found:
            return self.absent("no Observation with code " + ", ".join(sorted(c for _, c in self.codes)))
        usable, reasons = [], []
        for obs in found:
            when = _date(obs.get("effectiveDateTime") or (obs.get("effectivePeriod") or {}).get("end")
                         or obs.get("issued"))
            if obs.get("status") not in _VALID_OBSERVATION:
                reasons.append(f"{_name(obs)} has status {obs.get('status')}")
            elif when is None:
                reasons.append(f"{_name(obs)} has no date")
            elif when > self.on:
                reasons.append(f"{_name(obs)} is dated after the evaluation date")
            elif self.binding.get("lookback_days") and (self.on - when).days > self.binding["lookback_days"]:
                reasons.append(f"{_name(obs)} ({when.isoformat()}) is older than {self.binding['lookback_days']} days")
            else:
                usable.append((when, obs))
        if not usable:
            return None, "; ".join(reasons)
        when, obs = max(usable, key=lambda pair: pair[0])
        source = f"{_name(obs)}, {when.isoformat()}"
        if self.spec.type == "boolean":
            value = obs.get("valueBoolean")
            return (value, source) if isinstance(value, bool) else (None, f"{source} has no valueBoolean")
        quantity = obs.get("valueQuantity")
        if quantity is None and isinstance(obs.get("valueInteger"), int) and self.spec.type != "quantity":
            return obs["valueInteger"], source
        if not isinstance(quantity, Mapping) or quantity.get("value") is None:
            return None, f"{source} has no valueQuantity"
        number = float(quantity["value"]) if self.spec.type != "integer" else quantity["value"]
        if self.spec.type != "quantity":
            return number, source
        return self.quantity(number, quantity, source)

    def quantity(self, number: float, quantity: Mapping[str, Any], source: str) -> tuple[Any, str]:
        units = self.spec.units
        assert units is not None  # a quantity fact always declares its units
        code = quantity.get("code") or quantity.get("unit")
        written = (self.binding.get("ucum") or {}).get(code, code)
        unit = units.find(written) if isinstance(written, str) else None
        if unit is None:
            return None, f"{source}: unit {code!r} is not one of {', '.join(units.names)} (UCUM code not declared)"
        return {"value": number, "unit": unit.name}, f"{source} ({_number(number)} {code})"

    def condition(self, element: str) -> tuple[Any, str]:
        found = [c for c in self.matching("Condition")
                 if _first_code(c.get("verificationStatus")) != "entered-in-error"]
        if not found:
            return self.absent("no Condition with code " + ", ".join(sorted(c for _, c in self.codes)))
        if element == "onset":
            dated = [(d, c) for c in found if (d := _date(c.get("onsetDateTime"))) is not None]
            if not dated:
                return None, f"{_name(found[0])} has no onsetDateTime"
            when, condition = max(dated, key=lambda pair: pair[0])
            return when.isoformat(), f"{_name(condition)}.onsetDateTime"
        states = set()
        for condition in found:
            if _first_code(condition.get("verificationStatus")) == "refuted":
                states.add(False)
            elif _first_code(condition.get("clinicalStatus")) in _ACTIVE_CONDITION:
                states.add(True)
            elif _first_code(condition.get("clinicalStatus")) in _INACTIVE_CONDITION:
                states.add(False)
        if len(states) != 1:
            return None, "Conditions disagree or give no clinical status: " + ", ".join(_name(c) for c in found)
        return states.pop(), ", ".join(_name(c) for c in found)

    def medication(self, element: str) -> tuple[Any, str]:
        agents = {value: {_code_key(c.get("system", ""), c.get("code", "")) for c in codes}
                  for value, codes in (self.binding.get("agents") or {}).items()}
        active: list[tuple[str, Mapping[str, Any]]] = []
        for kind in ("MedicationStatement", "MedicationRequest"):
            for med in self.by_type.get(kind, []):
                if med.get("status") != "active":
                    continue
                coded = _codings(med.get("medicationCodeableConcept"))
                active.extend((value, med) for value, keys in agents.items() if keys & coded)
        if not active:
            return self.absent("no active MedicationStatement or MedicationRequest for " + ", ".join(agents))
        values = {value for value, _ in active}
        if len(values) > 1:
            return None, "several agents are active: " + ", ".join(f"{v} ({_name(m)})" for v, m in active)
        value, med = active[0]
        if element == "agent":
            return value, ", ".join(_name(m) for _, m in active)
        started = _date((med.get("effectivePeriod") or {}).get("start") or med.get("effectiveDateTime")
                        or med.get("authoredOn"))
        if started is None:
            return None, f"{_name(med)} gives no start date"
        return started.isoformat(), f"{_name(med)} (start)"

    def procedure(self, element: str) -> tuple[Any, str]:
        done = [p for p in self.matching("Procedure") if p.get("status") == "completed"]
        if not done:
            return self.absent("no completed Procedure with code " + ", ".join(sorted(c for _, c in self.codes)))
        if element == "present":
            return True, ", ".join(_name(p) for p in done)
        dated = [(d, p) for p in done
                 if (d := _date(p.get("performedDateTime") or (p.get("performedPeriod") or {}).get("start"))) is not None]
        if not dated:
            return None, f"{_name(done[0])} has no performed date"
        when, procedure = max(dated, key=lambda pair: pair[0])
        return when.isoformat(), f"{_name(procedure)}.performed"


def _code_key(system: str, code: str) -> tuple[str, str]:
    return SYSTEMS.get(system, system), code


def _codings(concept: Any) -> set[tuple[str, str]]:
    if not isinstance(concept, Mapping):
        return set()
    return {_code_key(c.get("system", ""), c.get("code", "")) for c in concept.get("coding") or []
            if isinstance(c, Mapping)}


def _first_code(concept: Any) -> str | None:
    codings = (concept.get("coding") or []) if isinstance(concept, Mapping) else []
    return codings[0].get("code") if codings and isinstance(codings[0], Mapping) else None


def _name(resource: Mapping[str, Any]) -> str:
    return f"{resource['resourceType']}/{resource.get('id', '?')}"


def _number(value: float) -> str:
    return format(value, "g")


def _date(text: Any) -> dt.date | None:
    """The date part of a FHIR date or dateTime (a partial date such as 2026-11 is no day: None)."""
    if not isinstance(text, str) or len(text) < 10:
        return None
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        return None


# --- results out: a RequestGroup ---------------------------------------------------------------

_UCUM = {"UI": "[iU]", "IU": "[iU]", "mg": "mg", "g": "g", "mg/j": "mg/d", "mg/day": "mg/d", "µg": "ug"}
_PERIOD = {"hour": "h", "hours": "h", "day": "d", "days": "d", "week": "wk", "weeks": "wk", "month": "mo",
           "months": "mo", "year": "a", "years": "a"}
_ROUTES = {"oral": ("26643006", "Oral route"), "intravenous": ("47625008", "Intravenous route"),
           "subcutaneous": ("34206005", "Subcutaneous route"), "intramuscular": ("78421000", "Intramuscular route")}
_PRIORITY = {"contraindication": "urgent", "warning": "urgent"}


def request_group(result: Any, patient: str | None = None) -> dict[str, Any]:
    """A FHIR R4 RequestGroup of ``result``: one action per recommendation, dosed ones proposing a MedicationRequest.

    Each action carries the recommendation's text (its rationale) and its
    source; warnings and contraindications are urgent actions without a
    resource. The JSON validates against the FHIR models (tests check it).
    """
    subject = {"reference": f"Patient/{patient}"} if patient else None
    contained: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    for rec in result.recommendations:
        action: dict[str, Any] = {"id": rec.id, "title": rec.id, "description": rec.text,
                                  "priority": _PRIORITY.get(rec.kind, "routine"),
                                  "code": [{"text": rec.kind}]}
        section = rec.source.get("section") if rec.source else None
        if section:
            action["documentation"] = [{"type": "citation", "display": f"§{section}"}]
        if rec.dose and isinstance(rec.dose.get("amount"), (int, float)):
            request = _medication_request(f"med-{len(contained) + 1}", rec, subject)
            contained.append(request)
            action["resource"] = {"reference": f"#{request['id']}"}
        actions.append(action)
    group: dict[str, Any] = {
        "resourceType": "RequestGroup", "status": "draft", "intent": "proposal",
        "authoredOn": f"{result.evaluated_on.isoformat()}T00:00:00Z",
        "note": [{"text": f"{result.guideline} v{result.version}, evaluated on {result.evaluated_on.isoformat()}"}],
        "action": actions,
    }
    if contained:
        group["contained"] = contained
    if subject:
        group["subject"] = subject
    return group


def _medication_request(ident: str, rec: Any, subject: Mapping[str, Any] | None) -> dict[str, Any]:
    dose = rec.dose
    drug = dose.get("drug") or {}
    concept: dict[str, Any] = {"text": drug.get("name")}
    if drug.get("atc"):
        concept["coding"] = [{"system": SYSTEMS["ATC"], "code": drug["atc"], "display": drug.get("name")}]
    unit = dose.get("unit", "")
    quantity = {"value": dose["amount"], "unit": unit, "system": SYSTEMS["UCUM"], "code": _UCUM.get(unit, unit)}
    repeat: dict[str, Any] = {}
    if dose.get("interval"):
        count, _, period = str(dose["interval"]).partition(" ")
        repeat.update(frequency=1, period=float(count), periodUnit=_PERIOD.get(period, "d"))
    if dose.get("times_per_day"):
        repeat.update(frequency=int(dose["times_per_day"]), period=1, periodUnit="d")
    if dose.get("doses"):
        repeat["count"] = int(dose["doses"])
    if dose.get("duration"):
        value, _, period = str(dose["duration"]).partition(" ")
        repeat["boundsDuration"] = {"value": float(value), "unit": period, "system": SYSTEMS["UCUM"],
                                    "code": _PERIOD.get(period, "d")}
    rate: dict[str, Any] = {"doseQuantity": quantity}
    if isinstance(dose.get("amount_max"), (int, float)):
        rate = {"doseRange": {"low": quantity, "high": {**quantity, "value": dose["amount_max"]}}}
    instruction: dict[str, Any] = {"text": rec.text, "doseAndRate": [rate]}
    if repeat:
        instruction["timing"] = {"repeat": repeat}
    if dose.get("route") in _ROUTES:
        code, display = _ROUTES[dose["route"]]
        instruction["route"] = {"coding": [{"system": SYSTEMS["SNOMED-CT"], "code": code, "display": display}]}
    request: dict[str, Any] = {"resourceType": "MedicationRequest", "id": ident, "status": "draft",
                               "intent": "proposal", "medicationCodeableConcept": concept,
                               "dosageInstruction": [instruction]}
    request["subject"] = dict(subject) if subject else {"display": "the patient evaluated"}
    return request
