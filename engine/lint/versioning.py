"""``--base REV``: content changed since a git revision but ``version`` not bumped."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from ..errors import Diagnostic
from ..loading import parse_yaml, read_source

__all__ = ["version_findings", "suggest_bump", "read_revision"]

_CLINICAL = ("derived", "tables", "rules", "facts")


def read_revision(path: Path, rev: str) -> tuple[str | None, str]:
    """The text of ``path`` at git revision ``rev`` (None and a reason when unavailable)."""
    try:
        done = subprocess.run(["git", "-C", str(path.parent or "."), "show", f"{rev}:./{path.name}"],
                              capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"git could not be run: {exc}"
    if done.returncode != 0:
        return None, done.stderr.decode("utf-8", "replace").strip().splitlines()[0] if done.stderr else "git failed"
    return done.stdout.decode("utf-8", "replace"), ""


def _semver(text: str) -> tuple[int, int, int]:
    match = re.match(r"^(\d+)\.(\d+)\.(\d+)", str(text))
    return tuple(int(x) for x in match.groups()) if match else (0, 0, 0)  # type: ignore[return-value]


def _ids(section: Any) -> set[str]:
    if isinstance(section, dict):
        return set(section)
    if isinstance(section, list):
        return {item.get("id") for item in section if isinstance(item, dict)}
    return set()


def _strip_texts(value: Any) -> Any:
    """The data with every human-language text removed (what is left is clinical content)."""
    if isinstance(value, dict):
        if value and all(isinstance(k, str) and len(k) == 2 and isinstance(v, str) for k, v in value.items()):
            return None  # a {fr: ..., en: ...} text
        return {k: _strip_texts(v) for k, v in value.items() if k not in ("source", "notes", "description")}
    if isinstance(value, list):
        return [_strip_texts(v) for v in value]
    return value


def suggest_bump(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """major, minor or patch for the change from ``old`` to ``new`` (None if no content changed)."""
    old_body = {k: v for k, v in old.items() if k != "version"}
    new_body = {k: v for k, v in new.items() if k != "version"}
    if old_body == new_body:
        return None
    for key in _CLINICAL:
        if _ids(old.get(key)) - _ids(new.get(key)):
            return "major"  # something a caller or a case relies on disappeared
    old_facts, new_facts = old.get("facts") or {}, new.get("facts") or {}
    if any(isinstance(old_facts[n], dict) and isinstance(new_facts.get(n), dict)
           and old_facts[n].get("type") != new_facts[n].get("type") for n in old_facts if n in new_facts):
        return "major"
    if any(_strip_texts(old.get(k)) != _strip_texts(new.get(k)) for k in _CLINICAL):
        return "minor"  # a threshold, dose, condition or table changed
    return "patch"


def version_findings(path: Path | str, rev: str) -> list[Diagnostic]:
    """Findings about ``version`` compared with the file at ``rev``."""
    path = Path(path)
    old_text, reason = read_revision(path, rev)
    text, _ = read_source(path)
    if text is None:
        return []
    doc = parse_yaml(text, str(path))
    if old_text is None:
        return [doc.diagnostic(("version",), "version-base-missing",
                               f"cannot read the file at {rev}: {reason}", severity="info")]
    old = parse_yaml(old_text, f"{rev}:{path}").data
    new = doc.data
    if not isinstance(old, dict) or not isinstance(new, dict):
        return []
    bump = suggest_bump(old, new)
    old_v, new_v = _semver(old.get("version", "")), _semver(new.get("version", ""))
    if new_v < old_v:
        return [doc.diagnostic(("version",), "version-decreased",
                               f"version {new.get('version')} is lower than {old.get('version')} at {rev}",
                               severity="error")]
    if bump is None or new_v > old_v and _enough(old_v, new_v, bump):
        return []
    wanted = _bumped(old_v, bump)
    if new_v == old_v:
        return [doc.diagnostic(("version",), "version-not-bumped",
                               f"content changed since {rev} but version is still {new.get('version')}",
                               hint=f"a {bump} change: set version: {wanted}", severity="error")]
    return [doc.diagnostic(("version",), "version-bump-too-small",
                           f"a {bump} change needs at least {wanted}, version is {new.get('version')}",
                           hint=f"set version: {wanted}", severity="error")]


def _bumped(v: tuple[int, int, int], bump: str) -> str:
    if bump == "major":
        return f"{v[0] + 1}.0.0"
    if bump == "minor":
        return f"{v[0]}.{v[1] + 1}.0"
    return f"{v[0]}.{v[1]}.{v[2] + 1}"


def _enough(old: tuple[int, int, int], new: tuple[int, int, int], bump: str) -> bool:
    if bump == "major":
        return new[0] > old[0]
    if bump == "minor":
        return new[:2] > old[:2]
    return new > old
