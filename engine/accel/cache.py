"""A compile cache for one-shot command-line runs, keyed by content.

Loading a guideline means parsing YAML, checking the schema and compiling
every expression and template: most of a one-shot ``guideline evaluate``. The
compiled guideline is therefore pickled under a key made of everything it
depends on -- the guideline's text and path, the limits, the engine's own
source files and schemas, and the Python version -- so a changed guideline,
engine or interpreter can never be served a stale compile. A cache that
cannot be read or written is ignored: the guideline is compiled as usual.

Used by the CLI (set ``GUIDELINE_CACHE=0`` to turn it off,
``GUIDELINE_CACHE_DIR`` to move it); the embedding API uses it only when given
a ``cache_dir``.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from engine.limits import Limits
from engine.resources import SCHEMA_NAMES, schema_text

T = TypeVar("T")

__all__ = ["cache_key", "default_cache_dir", "read_cached", "write_cached"]

_FORMAT = b"guideline-cache-2"  # a pickled Guideline (was: the CompiledGuideline alone)


def default_cache_dir() -> Path | None:
    """The CLI's cache folder, or None when turned off with GUIDELINE_CACHE=0."""
    if os.environ.get("GUIDELINE_CACHE", "1") == "0":
        return None
    if os.environ.get("GUIDELINE_CACHE_DIR"):
        return Path(os.environ["GUIDELINE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "guideline-engine"


@lru_cache(maxsize=1)
def _engine_fingerprint() -> bytes:
    """Digest of the engine's source files and schemas: any edit gives new keys."""
    digest = hashlib.sha256(sys.version.encode())
    package = Path(__file__).resolve().parents[1]  # the whole engine package, not only this subpackage

    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    for name in SCHEMA_NAMES:
        digest.update(schema_text(name).encode())
    return digest.digest()


def cache_key(text: str, file: str, limits: Limits) -> str:
    """The key of a compiled guideline: content, path, limits, engine and Python."""
    digest = hashlib.sha256(_FORMAT)
    digest.update(_engine_fingerprint())
    for part in (text, file, repr(limits)):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def read_cached(folder: Path, key: str, kind: type[T]) -> T | None:
    """The cached object of type ``kind`` for ``key``, or None (missing, unreadable, or not ours)."""
    try:
        data = (folder / f"{key}.pickle").read_bytes()
    except OSError:
        return None
    if not data.startswith(_FORMAT):
        return None
    try:
        value = pickle.loads(data[len(_FORMAT):])  # noqa: S301 - our own file, under a content key
    except Exception:  # noqa: BLE001 - any damage means: compile again
        return None
    return value if isinstance(value, kind) else None


def write_cached(folder: Path, key: str, value: object) -> None:
    """Store ``value`` atomically; failures are ignored (the cache is an optimisation)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        payload = _FORMAT + pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        with tempfile.NamedTemporaryFile(dir=folder, delete=False, suffix=".tmp") as handle:
            handle.write(payload)
        os.replace(handle.name, folder / f"{key}.pickle")
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        return
