"""The three-valued connectives and tests of texts (see engine.texts.threevalued).

Kept apart from the rewrite, which needs Jinja, so that texts translated to
Python (engine.texts.templates) run without importing Jinja.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["HELPERS", "TESTS"]


def _kand(left: Any, right: Any) -> bool | None:
    if (left is not None and not left) or (right is not None and not right):
        return False
    return None if left is None or right is None else True


def _kor(left: Any, right: Any) -> bool | None:
    if (left is not None and left) or (right is not None and right):
        return True
    return None if left is None or right is None else False


def _knot(value: Any) -> bool | None:
    return None if value is None else not value


HELPERS: dict[str, Callable[..., Any]] = {"_kand": _kand, "_kor": _kor, "_knot": _knot}
TESTS: dict[str, Callable[[Any], bool]] = {"unknown": lambda v: v is None, "known": lambda v: v is not None}
