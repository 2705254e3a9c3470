"""The CDS Hooks service, started with uvicorn on 127.0.0.1 and driven over HTTP with httpx.

A small FHIR server (http.server, also on 127.0.0.1) answers the queries of
the no-prefetch path. Card and discovery shapes are checked against the CDS
Hooks 2.0 specification's rules (required fields, summary under 140
characters, indicator values, suggestions and selectionBehavior).
"""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
import uvicorn

import engine
from engine.frontends.decisionlog import DecisionLog
from engine.frontends.service import MAX_BODY_BYTES, create_app
from engine.loading import parse_yaml

from .conftest import DAY, ROOT, SHIPPED

EXAMPLES = ROOT / "guidelines" / "bone-metastases" / "examples"
BUNDLE = json.loads((EXAMPLES / "demo-patient.fhir.json").read_text(encoding="utf-8"))
RESOURCES = [entry["resource"] for entry in BUNDLE["entry"]]
# The facts a record does not code (clinical judgements), from the shipped example.
CLINICAL = parse_yaml((EXAMPLES / "demo-patient.clinical.yaml").read_text(encoding="utf-8"), "clinical").data
SERVICE = "bone-metastases-lung-patient-view"
INDICATORS = {"info", "warning", "critical"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def log_path(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("decisions") / "decisions.jsonl"


@pytest.fixture(scope="module")
def server(log_path) -> Iterator[str]:
    """The service on 127.0.0.1, in a thread of this process; stopped at the end of the module."""
    app = create_app([engine.load(SHIPPED)], decision_log=DecisionLog(log_path), today=DAY, fhir_timeout=2.0)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        assert time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(timeout=10)


class _Fhir(BaseHTTPRequestHandler):
    """A FHIR server over the example bundle: reads and searches by patient and code."""

    seen_authorization: ClassVar[list[str]] = []  # read by the tests, across requests

    def do_GET(self) -> None:
        self.seen_authorization.append(self.headers.get("Authorization", ""))
        url = urllib.parse.urlparse(self.path)
        path = url.path.strip("/").removeprefix("fhir/")
        kind = path.split("/")[0]
        if "/" in path:
            found = [r for r in RESOURCES if f"{r['resourceType']}/{r['id']}" == path]
            self.reply(found[0] if found else None)
            return
        query = urllib.parse.parse_qs(url.query)
        codes = {tuple(t.split("|")) for t in ",".join(query.get("code", [])).split(",") if t}
        matched = [r for r in RESOURCES if r["resourceType"] == kind
                   and (not codes or {(c["system"], c["code"]) for c in r.get("code", {}).get("coding", [])} & codes)]
        self.reply({"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in matched]})

    def reply(self, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def fhir_server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Fhir)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/fhir"
    httpd.shutdown()


def request(hook: str = "patient-view", *, prefetch: dict | None = None, **more: object) -> dict:
    body: dict = {"hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea", "hook": hook,
                  "context": {"userId": "Practitioner/1", "patientId": "demo"},
                  "extension": {"guideline-engine-facts": CLINICAL}}
    if prefetch is not None:
        body["prefetch"] = prefetch
    body.update(more)
    return body


def full_prefetch() -> dict:
    return {"patient": RESOURCES[0], "bone_metastases": {"resourceType": "Bundle", "type": "searchset",
                                                          "entry": [{"resource": RESOURCES[1]}]},
            "vitamin_d_25oh": RESOURCES[2], "serum_creatinine": RESOURCES[3], "weight": RESOURCES[4],
            "measured_clearance": None, "medications": None, "tooth_extraction_date": None}


def check_card(card: dict) -> None:
    """The CDS Hooks 2.0 rules for a card."""
    assert {"summary", "indicator", "source", "uuid"} <= set(card)
    assert isinstance(card["summary"], str) and 0 < len(card["summary"]) < 140
    assert card["indicator"] in INDICATORS
    assert isinstance(card["source"].get("label"), str) and card["source"]["label"]
    for suggestion in card.get("suggestions", []):
        assert suggestion["label"] and suggestion["actions"]
        assert all(a["type"] in {"create", "update", "delete"} for a in suggestion["actions"])
    if card.get("suggestions"):
        assert card["selectionBehavior"] in {"at-most-one", "any"}


def expected_texts(lang: str) -> list[str]:
    from engine.loading import parse_yaml

    demo = EXAMPLES / "demo-patient.yaml"
    facts = parse_yaml(demo.read_text(encoding="utf-8"), str(demo)).data
    return [r.text for r in engine.load(SHIPPED).evaluate(facts, on=DAY, lang=lang).recommendations]


def test_discovery_lists_each_hook_with_prefetch_from_the_bindings(server) -> None:
    data = httpx.get(f"{server}/cds-services").json()
    services = {s["id"]: s for s in data["services"]}
    assert set(services) == {f"bone-metastases-lung-{h}" for h in ("patient-view", "order-select", "order-sign")}
    view = services[SERVICE]
    assert {"hook", "id", "description", "prefetch"} <= set(view) and view["hook"] == "patient-view"
    assert view["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    assert view["prefetch"]["vitamin_d_25oh"] == "Observation?patient={{context.patientId}}&code=http://loinc.org|1989-3"


def test_patient_view_with_prefetch_gives_the_facts_file_recommendations(server) -> None:
    response = httpx.post(f"{server}/cds-services/{SERVICE}", json=request(prefetch=full_prefetch()),
                          headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert response.status_code == 200
    cards = response.json()["cards"]
    for card in cards:
        check_card(card)
    details = [c["detail"].split("\n\n")[0] for c in cards if "topic" in c["source"]]
    assert details == expected_texts("en")
    needed = [c for c in cards if c["summary"].startswith("Data needed")]
    assert len(needed) == 1 and "LOINC" not in needed[0]["detail"] and "oncological_response" not in needed[0]["detail"]
    assert "Oncological response" in needed[0]["detail"]


def test_patient_view_without_prefetch_queries_the_fhir_server_with_the_token(server, fhir_server) -> None:
    _Fhir.seen_authorization.clear()
    body = request(fhirServer=fhir_server, fhirAuthorization={"access_token": "tok", "token_type": "Bearer",
                                                              "expires_in": 300, "scope": "patient/*.read",
                                                              "subject": "cds"})
    cards = httpx.post(f"{server}/cds-services/{SERVICE}", json=body).json()["cards"]
    assert [c["detail"].split("\n\n")[0] for c in cards if "topic" in c["source"]] == expected_texts("fr")
    assert _Fhir.seen_authorization and set(_Fhir.seen_authorization) == {"Bearer tok"}


def test_an_unreachable_fhir_server_gives_a_card_not_an_error(server) -> None:
    body = request(fhirServer=f"http://127.0.0.1:{free_port()}/fhir")
    response = httpx.post(f"{server}/cds-services/{SERVICE}", json=body)
    assert response.status_code == 200
    cards = response.json()["cards"]
    assert cards[0]["summary"] == "Serveur FHIR injoignable" and cards[0]["indicator"] == "warning"
    needed = next(c for c in cards if c["summary"].startswith("Données nécessaires"))
    assert "25-OH vitamine D (LOINC 1989-3)" in needed["detail"]


def draft_order(mg: float) -> dict:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
        "resourceType": "MedicationRequest", "id": "draft-zol", "status": "draft", "intent": "order",
        "subject": {"reference": "Patient/demo"},
        "medicationCodeableConcept": {"coding": [{"system": "http://www.whocc.no/atc", "code": "M05BA08"}]},
        "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": mg, "unit": "mg",
                                                                  "system": "http://unitsofmeasure.org", "code": "mg"}}]}],
    }}]}


def test_order_select_suggests_the_clearance_based_dose(server) -> None:
    body = request("order-select", prefetch=full_prefetch())
    body["context"].update(selections=["MedicationRequest/draft-zol"], draftOrders=draft_order(4))
    cards = httpx.post(f"{server}/cds-services/bone-metastases-lung-order-select", json=body).json()["cards"]
    for card in cards:
        check_card(card)
    dose = next(c for c in cards if c["summary"].startswith("Dose d'acide zolédronique"))
    assert dose["summary"] == "Dose d'acide zolédronique à corriger: 4 mg → 3.3 mg"
    action = dose["suggestions"][0]["actions"][0]
    assert action["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 3.3
    engine.fhir.read_resources([action["resource"]])  # the suggested order is valid FHIR
    assert dose["overrideReasons"]
    deferred = next(c for c in cards if c["summary"].startswith("Début différé"))
    assert "corriger la carence en vitamine D" in deferred["detail"]


def test_order_sign_with_a_contraindication_is_critical(server) -> None:
    prefetch = full_prefetch()
    prefetch["measured_clearance"] = {**RESOURCES[3], "id": "cl", "code": {"coding": [
        {"system": "http://loinc.org", "code": "2164-2"}]}, "valueQuantity": {"value": 25, "unit": "mL/min",
                                                                               "system": "http://unitsofmeasure.org",
                                                                               "code": "mL/min"}}
    body = request("order-sign", prefetch=prefetch)
    body["context"]["draftOrders"] = draft_order(4)
    cards = httpx.post(f"{server}/cds-services/bone-metastases-lung-order-sign", json=body).json()["cards"]
    critical = [c for c in cards if c["indicator"] == "critical"]
    assert [c["summary"] for c in critical] == ["Acide zolédronique contre-indiqué"]
    assert "25,00 mL/min" in critical[0]["detail"]


@pytest.mark.parametrize(("path", "content", "status", "message"), [
    (SERVICE, b"{not json", 400, "malformed JSON"),
    ("nothing-here", b"{}", 404, "no CDS service 'nothing-here'"),
    (SERVICE, json.dumps(request("order-sign")).encode(), 400, "answers the 'patient-view' hook"),
    (SERVICE, json.dumps({"hook": "patient-view", "context": {}}).encode(), 400, "context.patientId is required"),
    ("bone-metastases-lung-order-select", json.dumps(request("order-select")).encode(), 400,
     "context.draftOrders"),
    (SERVICE, b" " * (MAX_BODY_BYTES + 1), 413, "more than"),
    (SERVICE, b"[]", 400, "must be a JSON object"),
])
def test_bad_requests_get_a_json_error_naming_the_problem(server, path, content, status, message) -> None:
    response = httpx.post(f"{server}/cds-services/{path}", content=content,
                          headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert message in response.json()["error"]
    assert "Traceback" not in response.text


def test_invalid_fhir_in_prefetch_names_the_resource_and_element(server) -> None:
    prefetch = full_prefetch()
    prefetch["vitamin_d_25oh"] = copy.deepcopy(RESOURCES[2])
    prefetch["vitamin_d_25oh"]["valueQuantity"]["value"] = "lots"
    response = httpx.post(f"{server}/cds-services/{SERVICE}", json=request(prefetch=prefetch))
    assert response.status_code == 400
    assert "Observation/vitd: valueQuantity.value" in response.json()["error"]


def test_feedback_and_decisions_are_logged(server, log_path) -> None:
    httpx.post(f"{server}/cds-services/{SERVICE}", json=request(prefetch=full_prefetch()))
    feedback = {"feedback": [{"card": "abc", "outcome": "accepted", "outcomeTimestamp": "2026-11-27T10:00:00Z"}]}
    response = httpx.post(f"{server}/cds-services/{SERVICE}/feedback", json=feedback)
    assert (response.status_code, response.json()) == (200, {})
    records = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines()]
    decision = next(r for r in records if r["kind"] == "decision")
    assert decision["guideline"]["id"] == "bone-metastases-lung" and decision["guideline"]["content_hash"]
    assert decision["input_digest"].startswith("sha256:") and "inputs" not in decision
    assert decision["hook"] == "patient-view" and "start-deferred" in decision["recommendations"]
    assert records[-1] == {**records[-1], "kind": "feedback", "service": SERVICE, "feedback": feedback["feedback"]}


def test_decision_log_rotates_by_size_and_never_splits_lines(tmp_path) -> None:
    log = DecisionLog(tmp_path / "d.jsonl", max_bytes=300)
    for i in range(20):
        log.write({"n": i, "pad": "x" * 40})
    current = (tmp_path / "d.jsonl").read_text(encoding="utf-8").splitlines()
    rotated = (tmp_path / "d.jsonl.1").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["n"] for line in current][-1] == 19
    assert all(json.loads(line)["pad"] for line in current + rotated)
    assert (tmp_path / "d.jsonl").stat().st_size <= 300


def test_guideline_serve_command_answers_discovery(tmp_path) -> None:
    """Smoke test of the command as users start it (a subprocess on loopback, stopped by the test)."""
    port = free_port()
    env = {**os.environ, "GUIDELINE_CACHE_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "engine", "serve", str(SHIPPED), "--port", str(port),
                             "--decision-log", str(tmp_path / "log.jsonl")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/cds-services", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "guideline serve did not start"
                time.sleep(0.2)
        assert response.status_code == 200 and len(response.json()["services"]) == 3
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
