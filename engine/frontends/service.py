"""A CDS Hooks 2.0 service (FastAPI): guidelines in the electronic health record.

* ``GET /cds-services`` -- discovery: for each guideline a ``patient-view``,
  an ``order-select`` and an ``order-sign`` service, with ``prefetch``
  templates generated from the facts' FHIR bindings.
* ``POST /cds-services/{id}`` -- the hook: FHIR data from ``prefetch`` (or,
  for what was not prefetched, queried from ``fhirServer`` with the bearer
  token of ``fhirAuthorization``), facts that a record does not code (clinical
  judgements) from the request extension ``guideline-engine-facts``; the
  result as cards: one per recommendation, a "data needed" card naming what
  to measure (with its codes), borderline cautions; for orders, the ordered
  zoledronic-acid or denosumab MedicationRequest is checked against the
  clearance-based dose, the contraindication and the prerequisites, with a
  suggestion that replaces a wrong dose.
* ``POST /cds-services/{id}/feedback`` -- recorded in the decision log.

Texts follow Accept-Language (French by default). Bad requests get a 4xx JSON
error naming the problem; no stack trace ever reaches a response.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import time
import uuid
from collections.abc import Mapping
from importlib import resources
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from engine.authoring.show import show
from engine.errors import EngineError
from engine.fhir import SYSTEMS, facts_from_fhir, merge_facts, read_resources
from engine.frontends.decisionlog import DecisionLog
from engine.guideline import Guideline
from engine.render import format_dose, format_schedule
from engine.texts.formatting import localized
from engine.texts.words import SERVICE, words

__all__ = ["HOOKS", "MAX_BODY_BYTES", "app_from_environment", "create_app", "form_of", "prefetch_templates"]

HOOKS = ("patient-view", "order-select", "order-sign")
MAX_BODY_BYTES = 1024 * 1024
FACTS_EXTENSION = "guideline-engine-facts"
_INDICATOR = {"action": "info", "information": "info", "referral": "warning", "warning": "warning",
              "contraindication": "critical"}
_AGENT_ATC = {"zoledronic_acid": "M05BA08", "denosumab": "M05BX04"}
class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def create_app(guidelines: list[Guideline], *, decision_log: DecisionLog | None = None,
               fhir_timeout: float = 5.0, today: dt.date | None = None) -> FastAPI:
    """The CDS Hooks service for ``guidelines`` (``today`` fixes the evaluation date, for tests)."""
    app = FastAPI(title="guideline-engine CDS Hooks", openapi_url=None, docs_url=None, redoc_url=None)
    services = {f"{g.id}-{hook}": (g, hook) for g in guidelines for hook in HOOKS}

    @app.exception_handler(_BadRequest)
    async def bad_request(_: Request, error: _BadRequest) -> JSONResponse:
        return JSONResponse({"error": error.message}, status_code=error.status)

    @app.exception_handler(Exception)
    async def internal(_: Request, error: Exception) -> JSONResponse:  # a bug: say so, show no trace
        return JSONResponse({"error": f"internal error ({type(error).__name__})"}, status_code=500)

    @app.get("/cds-services")
    async def discovery() -> dict[str, Any]:
        return {"services": [_describe(service_id, g, hook) for service_id, (g, hook) in services.items()]}

    @app.post("/cds-services/{service_id}")
    async def call(service_id: str, request: Request) -> JSONResponse:
        if service_id not in services:
            raise _BadRequest(404, f"no CDS service '{service_id}' (see GET /cds-services)")
        guideline, hook = services[service_id]
        body = await _json_body(request)
        lang = _language(request.headers.get("accept-language", ""), guideline)
        started = time.perf_counter()
        cards, result, inputs = await _answer(guideline, hook, body, lang, fhir_timeout, today)
        if decision_log is not None and result is not None:
            decision_log.decision(guideline=guideline, result=result, inputs=inputs,
                                  duration_ms=(time.perf_counter() - started) * 1000, origin="cds-hooks",
                                  extra={"hook": hook, "hookInstance": body.get("hookInstance")})
        # Plain JSON already: a JSONResponse skips FastAPI's generic encoder (a third of a request's time).
        return JSONResponse({"cards": cards})

    pages = {g.id: g for g in guidelines}

    @app.get("/", response_class=HTMLResponse)
    async def home() -> HTMLResponse:
        return _page(guidelines[0].id)

    @app.get("/g/{gid}", response_class=HTMLResponse)
    async def page(gid: str) -> HTMLResponse:
        _guideline(pages, gid)
        return _page(gid)

    @app.get("/g/{gid}/review", response_class=HTMLResponse)
    async def review(gid: str, lang: str | None = None) -> HTMLResponse:
        g = _guideline(pages, gid)
        return HTMLResponse(show(g.compiled, "html", lang if lang in g.languages else None))

    @app.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in _STATIC:
            raise _BadRequest(404, f"no file '{name}'")
        return Response(_web_file(name), media_type=_STATIC[name])

    @app.get("/api/g/{gid}/form")
    async def form(gid: str, lang: str | None = None) -> JSONResponse:
        g = _guideline(pages, gid)
        return JSONResponse(form_of(g, lang if lang in g.languages else g.languages[0]))

    @app.post("/api/g/{gid}/evaluate")
    async def evaluate_page(gid: str, request: Request, lang: str | None = None, date: str | None = None
                            ) -> JSONResponse:
        g = _guideline(pages, gid)
        facts = await _json_body(request)
        try:
            day = dt.date.fromisoformat(date) if date else (today or dt.date.today())
        except ValueError:
            raise _BadRequest(400, f"date {date!r} is not YYYY-MM-DD") from None
        started = time.perf_counter()
        try:
            result = g.evaluate(facts, on=day, lang=lang if lang in g.languages else g.languages[0])
        except EngineError as error:
            return JSONResponse({"errors": [{"fact": d.path.split(".")[0].split("[")[0], "message": d.message,
                                             "hint": d.hint} for d in error.diagnostics]}, status_code=422)
        data = result.to_dict()
        for made, rec in zip(data["recommendations"], result.recommendations, strict=True):
            made["dose_text"] = format_dose(rec.dose, result.lang) if rec.dose else None
            made["schedule_text"] = format_schedule(rec.schedule, result.lang) if rec.schedule else None
        if decision_log is not None:
            decision_log.decision(guideline=g, result=result, inputs=facts,
                                  duration_ms=(time.perf_counter() - started) * 1000, origin="page")
        return JSONResponse(data)

    @app.post("/cds-services/{service_id}/feedback")
    async def feedback(service_id: str, request: Request) -> dict[str, Any]:
        if service_id not in services:
            raise _BadRequest(404, f"no CDS service '{service_id}'")
        body = await _json_body(request)
        if not isinstance(body.get("feedback"), list):
            raise _BadRequest(400, "feedback: expected a 'feedback' list")
        if decision_log is not None:
            decision_log.feedback(service_id, body)
        return {}

    return app


def app_from_environment() -> FastAPI:
    """The app ``guideline serve`` describes in ``GUIDELINE_SERVE`` (each uvicorn worker builds its own)."""
    import os

    from engine.guideline import default_cache_dir, load

    settings = json.loads(os.environ["GUIDELINE_SERVE"])
    log = DecisionLog(settings["decision_log"], include_inputs=settings["log_inputs"]) \
        if settings.get("decision_log") else None
    return create_app([load(p, cache_dir=default_cache_dir()) for p in settings["guidelines"]], decision_log=log)


_STATIC = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}


def _web_file(name: str) -> str:
    return resources.files("engine.frontends").joinpath("web", name).read_text(encoding="utf-8")


def _page(gid: str) -> HTMLResponse:
    return HTMLResponse(_web_file("index.html").replace("{{GUIDELINE}}", html.escape(gid, quote=True)))


def _guideline(pages: Mapping[str, Guideline], gid: str) -> Guideline:
    if gid not in pages:
        raise _BadRequest(404, f"no guideline '{gid}' here (served: {', '.join(pages)})")
    return pages[gid]


def form_of(g: Guideline, lang: str) -> dict[str, Any]:
    """The clinician's form, generated from the guideline's facts: labels, types, units, ranges, choices."""
    primary = g.languages[0]
    facts = []
    for name, spec in g.compiled.facts.items():
        low, high = spec.range
        facts.append({
            "name": name, "type": spec.type, "label": localized(spec.label, lang, primary) or name,
            "description": localized(spec.description, lang, primary) if spec.description else "",
            "unit": spec.units.canonical if spec.units else None,
            "units": list(spec.units.names) if spec.units else [],
            "min": low, "max": high,
            "values": [{"value": v, "label": localized(spec.value_labels[v], lang, primary) if v in spec.value_labels
                        else v} for v in spec.values],
        })
    return {"id": g.id, "version": g.version, "title": localized(g.compiled.title, lang, primary) or g.id,
            "languages": list(g.languages), "facts": facts}


def _describe(service_id: str, g: Guideline, hook: str) -> dict[str, Any]:
    title = g.compiled.title.get(g.languages[0], g.id)
    return {"hook": hook, "id": service_id, "title": f"{title} ({hook})",
            "description": f"{title}, version {g.version}: recommendations, data needed and order checks.",
            "prefetch": prefetch_templates(g)}


def prefetch_templates(g: Guideline) -> dict[str, str]:
    """FHIR queries for the data the guideline's facts are bound to (one key per resource and codes)."""
    out = {"patient": "Patient/{{context.patientId}}"}
    for name, spec in g.compiled.facts.items():
        binding = spec.fhir
        if binding is None or binding["resource"] == "Patient":
            continue
        resource = binding["resource"]
        if resource == "MedicationStatement":
            out["medications"] = "MedicationStatement?patient={{context.patientId}}&status=active"
            continue
        codes = binding.get("codes") or spec.codes
        tokens = ",".join(f"{SYSTEMS.get(c['system'], c['system'])}|{c['code']}" for c in codes)
        out[name] = f"{resource}?patient={{{{context.patientId}}}}&code={tokens}"
    return out


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise _BadRequest(413, f"request body is {len(raw)} bytes, more than {MAX_BODY_BYTES}")
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _BadRequest(400, f"malformed JSON: {error}") from None
    if not isinstance(body, dict):
        raise _BadRequest(400, "the request body must be a JSON object")
    return body


def _language(header: str, g: Guideline) -> str:
    for part in header.split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in g.languages:
            return code
    return "fr" if "fr" in g.languages else g.languages[0]


async def _answer(g: Guideline, hook: str, body: Mapping[str, Any], lang: str, timeout: float,
                  today: dt.date | None) -> tuple[list[dict[str, Any]], Any, dict[str, Any]]:
    if body.get("hook") != hook:
        raise _BadRequest(400, f"this service answers the '{hook}' hook, not {body.get('hook')!r}")
    context = body.get("context")
    if not isinstance(context, Mapping) or not isinstance(context.get("patientId"), str):
        raise _BadRequest(400, "context.patientId is required")
    if hook != "patient-view" and not isinstance(context.get("draftOrders"), Mapping):
        raise _BadRequest(400, f"{hook}: context.draftOrders (a Bundle) is required")
    on = today or dt.date.today()
    resources, cards = await _resources(g, body, context["patientId"], timeout, lang)
    try:
        found = facts_from_fhir(g.compiled, read_resources(resources, "prefetch"), on)
        extension = body.get("extension") or {}
        if not isinstance(extension, Mapping):
            raise _BadRequest(400, "extension must be an object")
        given = extension.get(FACTS_EXTENSION) or {}
        if not isinstance(given, Mapping):
            raise _BadRequest(400, f"extension.{FACTS_EXTENSION} must be an object of facts")
        facts = merge_facts(found, given, f"extension.{FACTS_EXTENSION}")
        result = g.evaluate(facts, on=on, lang=lang, sources=found.explained_sources)
    except EngineError as error:
        raise _BadRequest(400, "; ".join(f"{d.path + ': ' if d.path else ''}{d.message}"
                                         for d in error.diagnostics[:10])) from None
    source = {"label": f"{g.compiled.title.get(lang) or g.id} v{g.version}"}
    if hook == "patient-view":
        cards += _recommendation_cards(result, source, lang)
    else:
        cards += _order_cards(result, context["draftOrders"], source, lang)
    cards += _data_needed(g, result, found.unknown, source, lang) + _borderline_cards(result, source, lang)
    return cards, result, facts


async def _resources(g: Guideline, body: Mapping[str, Any], patient: str, timeout: float,
                     lang: str) -> tuple[list[Any], list[dict[str, Any]]]:
    """The prefetched resources, completed from fhirServer for the templates not prefetched."""
    prefetch = body.get("prefetch") or {}
    if not isinstance(prefetch, Mapping):
        raise _BadRequest(400, "prefetch must be an object")
    resources: list[Any] = []
    missing = [(key, query) for key, query in prefetch_templates(g).items() if key not in prefetch]
    for value in prefetch.values():
        resources.extend(_unpack(value))
    cards: list[dict[str, Any]] = []
    server = body.get("fhirServer")
    if missing and isinstance(server, str):
        token = (body.get("fhirAuthorization") or {}).get("access_token") \
            if isinstance(body.get("fhirAuthorization"), Mapping) else None
        headers = {"Accept": "application/fhir+json"} | ({"Authorization": f"Bearer {token}"} if token else {})
        failures: list[str] = []
        async with httpx.AsyncClient(base_url=server.rstrip("/") + "/", timeout=timeout, headers=headers) as client:
            for _, query in missing:
                url = query.replace("{{context.patientId}}", patient)
                try:
                    response = await client.get(url)
                    response.raise_for_status()
                    resources.extend(_unpack(response.json()))
                except (httpx.HTTPError, ValueError) as error:
                    failures.append(f"- {url}: {type(error).__name__}: {str(error).splitlines()[0]}")
        if failures:
            w = words(SERVICE, lang)
            cards.append(_card(w["unreachable"], f"{server}\n" + "\n".join(failures), "warning",
                               {"label": "guideline-engine"}))
    return resources, cards


def _unpack(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, Mapping) and value.get("resourceType") == "Bundle":
        return [e.get("resource") for e in value.get("entry") or [] if isinstance(e, Mapping)]
    if isinstance(value, Mapping):
        return [value]
    raise _BadRequest(400, "a prefetch value must be a FHIR resource, a Bundle or null")


def _card(summary: str, detail: str, indicator: str, source: Mapping[str, Any], **more: Any) -> dict[str, Any]:
    short = summary if len(summary) < 140 else summary[:138].rstrip() + "…"
    return {"uuid": str(uuid.uuid4()), "summary": short, "detail": detail, "indicator": indicator,
            "source": dict(source), **more}


def _recommendation_cards(result: Any, source: Mapping[str, Any], lang: str) -> list[dict[str, Any]]:
    w = words(SERVICE, lang)
    cards = []
    for rec in result.recommendations:
        detail = rec.text + (f"\n\n**{w['dose']}**: {format_dose(rec.dose, lang)}" if rec.dose else "")
        section = rec.source.get("section")
        topic_source = {**source, "topic": {"code": rec.id, "display": f"§{section}" if section else rec.id}}
        cards.append(_card(rec.text, detail, _INDICATOR.get(rec.kind, "info"), topic_source))
    return cards


def _data_needed(g: Guideline, result: Any, unknown: Mapping[str, str], source: Mapping[str, Any],
                 lang: str) -> list[dict[str, Any]]:
    needs = sorted({f for u in result.undetermined for f in u.needs})
    if not needs:
        return []
    w = words(SERVICE, lang)
    lines = []
    for name in needs:
        spec = g.compiled.facts[name]
        label = spec.label.get(lang) or name
        codes = ", ".join(f"{c['system']} {c['code']}" for c in spec.codes)
        why = f" — {unknown[name]}" if name in unknown else ""
        lines.append(f"- {label}{f' ({codes})' if codes else ''}{why}")
    return [_card(f"{w['needed']}: " + ", ".join(g.compiled.facts[n].label.get(lang) or n for n in needs),
                  w["needed_detail"] + "\n" + "\n".join(lines), "info", source)]


def _borderline_cards(result: Any, source: Mapping[str, Any], lang: str) -> list[dict[str, Any]]:
    w = words(SERVICE, lang)
    return [_card(f"{w['borderline']}: {b.label}", b.text, "warning", source) for b in result.borderline]


def _order_cards(result: Any, draft: Mapping[str, Any], source: Mapping[str, Any], lang: str) -> list[dict[str, Any]]:
    """Check draft zoledronic-acid and denosumab orders against the result."""
    w = words(SERVICE, lang)
    cards = []
    values = result.trace
    reasons = [{"code": f"override-{i}", "display": w[f"override_{i}"]} for i in (1, 2)]
    for order in _unpack(draft):
        if not isinstance(order, Mapping) or order.get("resourceType") != "MedicationRequest":
            continue
        atc = {c.get("code") for c in (order.get("medicationCodeableConcept") or {}).get("coding") or []}
        if values.get("start_decision") == "deferred" and atc & set(_AGENT_ATC.values()):
            deferred = next((r.text for r in result.recommendations if r.id == "start-deferred"), "")
            cards.append(_card(w["deferred"], deferred, "warning", source, overrideReasons=reasons))
        if _AGENT_ATC["zoledronic_acid"] not in atc:
            continue
        if values.get("zoledronic_contraindicated") is True:
            text = next((r.text for r in result.recommendations if r.id == "zoledronic-contraindicated"), w["contra"])
            cards.append(_card(w["contra"], text, "critical", source, overrideReasons=reasons))
            continue
        right = values.get("zoledronic_dose_mg")
        ordered = _ordered_mg(order)
        if right is None or ordered is None or abs(ordered - right) < 1e-9:
            continue
        corrected = json.loads(json.dumps(order))
        corrected["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"] = {
            "value": right, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}
        label = f"{w['replace']} {right:g} mg"
        cards.append(_card(f"{w['wrong_dose']}: {ordered:g} mg → {right:g} mg",
                           next((r.text for r in result.recommendations if r.id == "zoledronic-administration"), ""),
                           "warning", source, selectionBehavior="at-most-one", overrideReasons=reasons,
                           suggestions=[{"label": label, "uuid": str(uuid.uuid4()), "actions": [
                               {"type": "update", "description": label, "resource": corrected}]}]))
    return cards


def _ordered_mg(order: Mapping[str, Any]) -> float | None:
    try:
        quantity = order["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
    except (KeyError, IndexError, TypeError):
        return None
    if quantity.get("code", quantity.get("unit")) != "mg" or not isinstance(quantity.get("value"), (int, float)):
        return None
    return float(quantity["value"])
