"""Files shipped with the engine: the JSON Schemas of guidelines and case files.

A base module with no dependency, so that the schema stage and the compile
cache (which fingerprints the schemas) read the same files the same way
without the cache importing jsonschema.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["SCHEMA_NAMES", "schema_text"]

SCHEMA_NAMES = ("guideline.schema.json", "cases.schema.json")


def schema_text(name: str = "guideline.schema.json") -> str:
    """The text of the named JSON Schema shipped in ``schemas/``.

    In a checkout the repository's ``schemas/`` folder is read directly; an
    installed wheel carries the same files as the ``engine.schemas`` package.
    """
    checkout = Path(__file__).resolve().parent.parent / "schemas" / name
    if checkout.is_file():
        return checkout.read_text(encoding="utf-8")
    return resources.files("engine.schemas").joinpath(name).read_text(encoding="utf-8")
