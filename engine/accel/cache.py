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
import hmac
import os
import pickle
import secrets
import stat
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from engine.limits import Limits
from engine.resources import SCHEMA_NAMES, schema_text

T = TypeVar("T")

__all__ = ["cache_key", "default_cache_dir", "read_cached", "write_cached"]

_FORMAT = b"guideline-cache-3"  # an HMAC, then a pickled Guideline (2: no HMAC; 1: the CompiledGuideline alone)


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
    """The cached object of type ``kind`` for ``key``, or None (missing, unreadable, unsafe, or not ours).

    An entry is unpickled only when the folder and the file belong to this user
    and nobody else can write them, and when its HMAC, made with this user's key
    kept beside the entries, checks: a planted or altered entry is ignored.
    """
    secret = _key(folder, create=False)
    path = folder / f"{key}.pickle"
    if secret is None or not _private(path):
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return None
    head = len(_FORMAT)
    if not data.startswith(_FORMAT) or len(data) < head + _MAC_BYTES:
        return None
    mac, payload = data[head:head + _MAC_BYTES], data[head + _MAC_BYTES:]
    if not hmac.compare_digest(mac, hmac.new(secret, payload, hashlib.sha256).digest()):
        return None
    try:
        value = pickle.loads(payload)  # noqa: S301 - authenticated: written by this user's engine
    except Exception:  # noqa: BLE001 - any damage means: compile again
        return None
    return value if isinstance(value, kind) else None


def write_cached(folder: Path, key: str, value: object) -> None:
    """Store ``value`` atomically, authenticated; failures are ignored (the cache is an optimisation)."""
    try:
        secret = _key(folder, create=True)
        if secret is None:
            return
        payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        mac = hmac.new(secret, payload, hashlib.sha256).digest()
        with tempfile.NamedTemporaryFile(dir=folder, delete=False, suffix=".tmp") as handle:
            handle.write(_FORMAT + mac + payload)
        os.chmod(handle.name, 0o600)
        os.replace(handle.name, folder / f"{key}.pickle")
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        return


_MAC_BYTES = 32
_KEY_FILE = "key"
_warned: set[str] = set()


def _private(path: Path) -> bool:
    """True when ``path`` (not a link) belongs to this user and nobody else can write it."""
    try:
        info = path.lstat()
    except OSError:
        return False
    if stat.S_ISLNK(info.st_mode):
        return False
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return False
    return not info.st_mode & 0o022


def _key(folder: Path, *, create: bool) -> bytes | None:
    """This user's cache key (made with the folder, mode 0700, on first write), or None if the folder is unsafe."""
    try:
        if create and not folder.exists():
            folder.mkdir(parents=True, mode=0o700)
        if not folder.exists():
            return None
        if not _private(folder):
            _warn_once(folder)
            return None
        key_path = folder / _KEY_FILE
        if not key_path.exists():
            if not create:
                return None
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(32))
        if not _private(key_path) or (key_path.lstat().st_mode & 0o077):
            _warn_once(key_path)
            return None
        secret = key_path.read_bytes()
        return secret if len(secret) == 32 else None
    except OSError:
        return None


def _warn_once(path: Path) -> None:
    """Say once per process that the cache is not used, and why."""
    if str(path) not in _warned:
        _warned.add(str(path))
        sys.stderr.write(f"guideline: the compile cache at {path} is not used: it must belong to you and be writable "
                         "by you alone (chmod 700 on the folder, 600 on its files)\n")
