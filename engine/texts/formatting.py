"""Numbers, dates and texts as a clinician reads them in each language.

Shared by the templates (Jinja filters and translated texts), the result's
displayed values, the diff and the error messages, so ``3,5`` is written the
same way everywhere.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from engine.texts.words import UNKNOWN_WORD

__all__ = ["MAX_DECIMALS", "UNKNOWN_WORD", "fold_line", "format_date", "format_number", "localized", "tidy_text"]



def localized(texts: Any, lang: str, primary: str | None = None) -> str:
    """The text in ``lang``, else in the ``primary`` language, else the first given ("" if none)."""
    if not isinstance(texts, Mapping):
        return "" if texts is None else str(texts)
    return texts.get(lang) or (texts.get(primary) if primary else None) or next(iter(texts.values()), "")


def format_number(value: Any, lang: str, decimals: int | None = None) -> str:
    """A number as a clinician reads it in ``lang`` (decimal comma in French).

    French groups the thousands with a narrow no-break space from 10 000 on.
    This runs for most numbers of most texts: the common case (no grouping)
    returns early.
    """
    if decimals is not None and not (isinstance(decimals, int) and 0 <= decimals <= MAX_DECIMALS):
        raise ValueError(f"a number is shown with 0 to {MAX_DECIMALS} decimals, not {decimals!r}")
    kind = type(value)
    if kind is float:
        if decimals is None:  # up to six decimals, without trailing zeros (3.5, 4, 0.333333)
            text = format(value, ".6f").rstrip("0").rstrip(".")
        else:
            text = format(value, _SPECS[decimals] if 0 <= decimals < 7 else f".{decimals}f")
    elif kind is int:
        text = str(value) if decimals is None else format(value, _SPECS[decimals] if 0 <= decimals < 7 else f".{decimals}f")
    elif value is None:
        return UNKNOWN_WORD.get(lang, "unknown")
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    else:  # a subclass of int or float
        return format_number(float(value) if isinstance(value, float) else int(value), lang, decimals)
    if lang != "fr":
        return text
    if -9999 < value < 9999:  # at most four digits before the point, even once rounded: no grouping
        return text.replace(".", ",")
    point = text.find(".")
    whole = text if point < 0 else text[:point]
    sign = "-" if whole[:1] == "-" else ""
    digits = whole.lstrip("-")
    if len(digits) > 4:
        groups: list[str] = []
        while digits:
            groups.insert(0, digits[-3:])
            digits = digits[:-3]
        digits = "\u202f".join(groups)
    return sign + digits + ("" if point < 0 else "," + text[point + 1:])


_SPECS = tuple(f".{d}f" for d in range(7))
MAX_DECIMALS = 20  # decimals a number may be shown with (num filter, display_decimals)


def format_date(value: Any, lang: str) -> str:
    """A date as written in ``lang`` (27/11/2026 in French, 2026-11-27 otherwise)."""
    if value is None:
        return UNKNOWN_WORD.get(lang, "unknown")
    if isinstance(value, dt.date):
        # Not strftime: it is slower, and writes years before 1000 without their leading zeros.
        return f"{value.day:02d}/{value.month:02d}/{value.year:04d}" if lang == "fr" else value.isoformat()
    return str(value)


_BREAKS = re.compile(r"[ \t\r\n]{2,}|[\t\r\n]")


def fold_line(text: str) -> str:
    """A one-line text: runs of spaces, tabs and line breaks become one space; ends are trimmed.

    Only ASCII white space is folded: the no-break spaces of French typography
    (``10\u202f000``, ``\xa0:``) are part of the text. Most texts need no
    folding at all, which four substring tests find quickly.
    """
    if "  " in text or "\n" in text or "\t" in text or "\r" in text:
        text = _BREAKS.sub(" ", text)
    return text.strip(" ")


def tidy_text(text: str, one_line: bool) -> str:
    """How a rendered text is cleaned: folded to one line, or (multi-line texts) trimmed at both ends."""
    return fold_line(text) if one_line else text.strip(" \t\r\n")
