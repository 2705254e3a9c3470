"""``--base REV``: content changed since a git revision but ``version`` not bumped."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import Diagnostic
from engine.loading import parse_yaml, read_source

__all__ = ["BumpCheck", "bump_check", "read_revision", "suggest_bump", "version_findings"]

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
        return {str(item["id"]) for item in section if isinstance(item, dict) and item.get("id") is not None}
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
    check = bump_check(old, new)
    if check.decreased:
        return [doc.diagnostic(("version",), "version-decreased",
                               f"version {new.get('version')} is lower than {old.get('version')} at {rev}",
                               severity="error")]
    if check.enough:
        return []
    if check.new == check.old:
        return [doc.diagnostic(("version",), "version-not-bumped",
                               f"content changed since {rev} but version is still {new.get('version')}",
                               hint=f"a {check.needed} change: set version: {check.wanted}", severity="error")]
    return [doc.diagnostic(("version",), "version-bump-too-small",
                           f"a {check.needed} change needs at least {check.wanted}, version is {new.get('version')}",
                           hint=f"set version: {check.wanted}", severity="error")]


@dataclass(frozen=True)
class BumpCheck:
    """The bump a change needs, and whether the new version makes it."""

    needed: str | None  # major | minor | patch, or None when no content changed
    old: tuple[int, int, int]
    new: tuple[int, int, int]

    @property
    def decreased(self) -> bool:
        """The new version is lower than the old one."""
        return self.new < self.old

    @property
    def enough(self) -> bool:
        """No content change, or the version moved at least as much as needed."""
        if self.needed == "major":
            return self.new[0] > self.old[0]
        if self.needed == "minor":
            return self.new[:2] > self.old[:2]
        return self.needed is None or self.new > self.old

    @property
    def wanted(self) -> str:
        """The smallest version that makes the needed bump."""
        major, minor, patch = self.old
        if self.needed == "major":
            return f"{major + 1}.0.0"
        if self.needed == "minor":
            return f"{major}.{minor + 1}.0"
        return f"{major}.{minor}.{patch + 1}"


def bump_check(old: dict[str, Any], new: dict[str, Any]) -> BumpCheck:
    """Compare two loaded guideline documents' content and versions."""
    return BumpCheck(suggest_bump(old, new), _semver(old.get("version", "")), _semver(new.get("version", "")))
