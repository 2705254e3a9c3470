"""The decision log: one JSON Lines record per evaluation or feedback, safe across workers.

Like Open Policy Agent's decision logs: each record says which guideline
(id, version, content hash) and engine decided what for which inputs, when
and how fast. Inputs are logged as a SHA-256 digest of their canonical JSON;
the inputs themselves only when asked (``include_inputs``).

Writing: each record is one ``write`` of one line to a file opened in append
mode, under an exclusive ``flock``, so lines from several worker processes
never interleave. Policy on durability: the line is flushed to the operating
system at once; ``fsync`` after every record only with ``fsync=True`` (it
costs a disk round trip per decision). Rotation by size: when the file would
pass ``max_bytes``, it is renamed ``FILE.1`` (an older ``FILE.1`` is
replaced) and a new file is started, under the same lock.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine import __version__

__all__ = ["DecisionLog", "digest"]


def digest(data: Any) -> str:
    """SHA-256 of the canonical JSON of ``data`` (sorted keys, no spaces)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


class DecisionLog:
    """Appends decision records to a JSON Lines file."""

    def __init__(self, path: str | Path, *, include_inputs: bool = False, fsync: bool = False,
                 max_bytes: int = 100 * 1024 * 1024) -> None:
        self.path = Path(path)
        self.include_inputs = include_inputs
        self.fsync = fsync
        self.max_bytes = max_bytes
        self._lock = threading.Lock()  # threads of one process; flock covers processes

    def decision(self, *, guideline: Any, result: Any, inputs: Mapping[str, Any], duration_ms: float,
                 origin: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Log one evaluation; return the record written."""
        compiled = guideline.compiled
        record: dict[str, Any] = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "kind": "decision",
            "origin": origin,
            "guideline": {"id": compiled.id, "version": compiled.version, "content_hash": compiled.content_hash},
            "engine_version": __version__,
            "evaluated_on": result.evaluated_on.isoformat(),
            "input_digest": digest(inputs),
            "fired": [rule for rule, state in result.rules.items() if state == "fired"],
            "undetermined": {u.rule: list(u.needs) for u in result.undetermined},
            "recommendations": result.recommendation_ids(),
            "borderline": [b.name for b in result.borderline],
            "duration_ms": round(duration_ms, 3),
        }
        if self.include_inputs:
            record["inputs"] = json.loads(json.dumps(inputs, default=str))
        record.update(extra or {})
        self.write(record)
        return record

    def feedback(self, service: str, body: Mapping[str, Any]) -> None:
        """Log feedback received on cards."""
        self.write({"time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), "kind": "feedback",
                    "service": service, "feedback": body.get("feedback", [])})

    def write(self, record: Mapping[str, Any]) -> None:
        """Append one record as one line (see the module's notes on locking, flushing and rotation)."""
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "ab") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    if handle.tell() and handle.tell() + len(line) > self.max_bytes:
                        os.replace(self.path, self.path.with_name(self.path.name + ".1"))
                        with open(self.path, "ab") as fresh:
                            fresh.write(line)
                            fresh.flush()
                            if self.fsync:
                                os.fsync(fresh.fileno())
                        return
                    handle.write(line)
                    handle.flush()
                    if self.fsync:
                        os.fsync(handle.fileno())
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
