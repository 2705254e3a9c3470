"""Every word table of the engine (engine.texts.words) is complete in every language."""

from __future__ import annotations

import pytest

from engine.texts import words

TABLES = {"RESULT": words.RESULT, "REVIEW": words.REVIEW, "EXPLAIN": words.EXPLAIN, "SERVICE": words.SERVICE}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_french_has_every_english_word(name: str) -> None:
    table = TABLES[name]
    assert set(table["fr"]) >= set(table["en"]), set(table["en"]) - set(table["fr"])
    assert all(isinstance(v, str) and v for lang in table.values() for v in lang.values())


def test_unknown_language_falls_back_to_english() -> None:
    assert words.words(words.SERVICE, "de") is words.SERVICE["en"]
    assert set(words.UNKNOWN_WORD) == {"fr", "en"}
