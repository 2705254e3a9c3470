#!/usr/bin/env python3
"""Load the CDS Hooks service over loopback and print latency percentiles and throughput.

    python tools/load_service.py [--workers 2] [--clients 8] [--seconds 10] [--max-requests 20000]
                                 [--client auto|wrk|httpx]

Starts ``guideline serve`` on 127.0.0.1 (a free port, its own compile cache),
sends ``patient-view`` requests with the example patient's prefetch from
``--clients`` concurrent clients until ``--seconds`` have passed or
``--max-requests`` were sent, then stops the server. The load comes from
wrk (Debian's package) when it is installed -- a Python client spends as
much CPU as the server on this 2-core machine and understates it -- else from
httpx (then ``--max-requests`` bounds the count too). Traffic goes to
127.0.0.1 only, and the loop is bounded in count and time. Prints p50, p95,
p99 and max latency and requests per second; the figures move with the
machine's load, so compare runs made together.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from engine.loading import parse_yaml

ROOT = Path(__file__).resolve().parent.parent
GUIDELINE = ROOT / "guidelines" / "bone-metastases" / "guideline.yaml"
EXAMPLES = ROOT / "guidelines" / "bone-metastases" / "examples"
# The facts a record does not code (clinical judgements), from the shipped example.
CLINICAL = parse_yaml((EXAMPLES / "demo-patient.clinical.yaml").read_text(encoding="utf-8"), "clinical").data


def request_body() -> dict:
    resources = [e["resource"] for e in json.loads((EXAMPLES / "demo-patient.fhir.json").read_text())["entry"]]
    prefetch = {"patient": resources[0], "bone_metastases": resources[1], "vitamin_d_25oh": resources[2],
                "serum_creatinine": resources[3], "weight": resources[4], "measured_clearance": None,
                "medications": None, "tooth_extraction_date": None}
    return {"hookInstance": "load", "hook": "patient-view", "context": {"userId": "Practitioner/1", "patientId": "demo"},
            "prefetch": prefetch, "extension": {"guideline-engine-facts": CLINICAL}}


async def load(url: str, clients: int, seconds: float, max_requests: int) -> tuple[list[float], int, float]:
    body = json.dumps(request_body()).encode()
    latencies: list[float] = []
    errors = 0
    sent = 0
    stop_at = time.perf_counter() + seconds

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal sent, errors
        while time.perf_counter() < stop_at and sent < max_requests:
            sent += 1
            began = time.perf_counter()
            response = await http.post(url, content=body, headers={"Content-Type": "application/json"})
            latencies.append(time.perf_counter() - began)
            if response.status_code != 200:
                errors += 1

    began = time.perf_counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    # No Nagle on the client: a POST's headers and body leave as two writes, and a delayed
    # acknowledgement would otherwise add 40 ms to every request.
    transport = httpx.AsyncHTTPTransport(limits=limits, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    async with httpx.AsyncClient(transport=transport, timeout=30) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return latencies, errors, time.perf_counter() - began


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("%s", "r"); wrk.body = f:read("*a"); f:close()
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%f %%f %%f %%f %%f\\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(95) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3))
end
"""


def run_wrk(url: str, args: argparse.Namespace) -> int:
    """The same load from wrk (one thread, --clients connections, --seconds long)."""
    with tempfile.TemporaryDirectory() as folder:
        body = Path(folder) / "body.json"
        body.write_text(json.dumps(request_body()), encoding="utf-8")
        script = Path(folder) / "post.lua"
        script.write_text(WRK_SCRIPT % body, encoding="utf-8")
        command = ["wrk", "-t1", f"-c{args.clients}", "-s", str(script), url]
        subprocess.run([*command[:3], "-d2s", *command[3:]], check=True, capture_output=True)  # warm-up
        out = subprocess.run([*command[:3], f"-d{int(args.seconds)}s", *command[3:]], check=True,
                             capture_output=True, text=True).stdout
    fields = next(line for line in out.splitlines() if line.startswith("RESULT")).split()[1:]
    requests, errors = int(fields[0]), int(fields[1])
    elapsed, p50, p95, p99, worst = map(float, fields[2:])
    print(f"patient-view with prefetch, {args.workers} worker(s), {args.clients} connections (wrk), "
          f"{requests} requests in {elapsed:.1f} s, {errors} error(s)")
    print(f"latency ms: p50 {p50:.1f}  p95 {p95:.1f}  p99 {p99:.1f}  max {worst:.1f}")
    print(f"throughput: {requests / elapsed:.0f} requests/s")
    return 1 if errors else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--max-requests", type=int, default=20_000)
    parser.add_argument("--client", choices=("auto", "wrk", "httpx"), default="auto")
    args = parser.parse_args(argv)
    use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk") is not None)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "GUIDELINE_CACHE_DIR": cache}
        server = subprocess.Popen([sys.executable, "-m", "engine", "serve", str(GUIDELINE), "--host", "127.0.0.1",
                                   "--port", str(port), "--workers", str(args.workers)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(f"{base}/cds-services", timeout=1).raise_for_status()
                    break
                except httpx.HTTPError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        print("the server did not start", file=sys.stderr)
                        return 1
                    time.sleep(0.2)
            url = f"{base}/cds-services/bone-metastases-lung-patient-view"
            if use_wrk:
                return run_wrk(url, args)
            asyncio.run(load(url, args.clients, 1.0, 200))  # warm-up: imports, caches, connections
            latencies, errors, elapsed = asyncio.run(load(url, args.clients, args.seconds, args.max_requests))
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
    ms = sorted(x * 1000 for x in latencies)
    q = statistics.quantiles(ms, n=100)
    print(f"patient-view with prefetch, {args.workers} worker(s), {args.clients} clients, "
          f"{len(ms)} requests in {elapsed:.1f} s, {errors} error(s)")
    print(f"latency ms: p50 {q[49]:.1f}  p95 {q[94]:.1f}  p99 {q[98]:.1f}  max {ms[-1]:.1f}")
    print(f"throughput: {len(ms) / elapsed:.0f} requests/s")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
