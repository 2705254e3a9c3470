"""Stage 2 -- validate: check loaded data against the JSON Schema.

Errors are collected (``iter_errors``) and mapped back to YAML lines through
the loader's position table. For ``additionalProperties`` the offending key
is pointed at, not the enclosing object.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from typing import Any

from engine.errors import Diagnostic, did_you_mean
from engine.loading import Document
from engine.resources import schema_text

__all__ = ["check_document", "load_schema", "validate_document"]


@cache
@cache
def load_schema(name: str = "guideline.schema.json") -> dict[str, Any]:
    """The named JSON Schema, parsed."""
    schema: dict[str, Any] = json.loads(schema_text(name))
    return schema


@cache
def _validator(name: str) -> Any:
    # jsonschema is imported here, not at module load: a guideline served from
    # the compile cache never needs it, and it is the slowest import we have.
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load_schema(name), format_checker=Draft202012Validator.FORMAT_CHECKER)


def validate_document(doc: Document, schema: str = "guideline.schema.json") -> list[Diagnostic]:
    """Every schema violation of ``doc.data`` as a located diagnostic."""
    return check_document(doc, schema)[0]


def check_document(doc: Document, schema: str = "guideline.schema.json"
                   ) -> tuple[list[Diagnostic], list[tuple[Any, ...]]]:
    """Schema diagnostics, and the data paths they concern (for later stages to skip)."""
    out: list[Diagnostic] = []
    paths: list[tuple[Any, ...]] = []
    for error in _validator(schema).iter_errors(doc.data):
        for path, diagnostic in _diagnostics(doc, error):
            paths.append(path)
            if path in doc.refused:
                continue  # the loader already reported this value
            out.append(diagnostic)
    # One problem reported by several keywords (e.g. oneOf and a nested type)
    # is shown once.
    unique = {(d.line, d.col, d.message): d for d in out}
    return sorted(unique.values()), paths


def _leaves(error: Any) -> Iterator[Any]:
    """For oneOf/anyOf, the most specific sub-errors; otherwise the error."""
    if error.validator in ("oneOf", "anyOf") and error.context:
        deepest = max(len(e.absolute_path) for e in error.context)
        if deepest > len(error.absolute_path):
            for sub in error.context:
                if len(sub.absolute_path) == deepest:
                    yield from _leaves(sub)
            return
    yield error


def _diagnostics(doc: Document, error: Any) -> Iterator[tuple[tuple[Any, ...], Diagnostic]]:
    for leaf in _leaves(error):
        path = tuple(leaf.absolute_path)
        validator = str(leaf.validator)
        code = f"schema.{_kebab(validator)}"
        if validator == "additionalProperties" and isinstance(leaf.instance, dict):
            allowed = set(leaf.schema.get("properties", {}))
            extras = [k for k in leaf.instance if k not in allowed]
            for key in extras:
                hint = did_you_mean(key, allowed)
                yield path + (key,), doc.diagnostic(
                    path + (key,), "schema.unknown-key", f"unknown key '{key}'", key=True,
                    hint=hint or f"allowed keys: {', '.join(sorted(allowed))}",
                )
            continue
        if validator == "required":
            yield path, doc.diagnostic(path, code, _plain_message(leaf), key=bool(path),
                                       hint=_describe(leaf.schema))
            continue
        yield path, doc.diagnostic(path, code, _plain_message(leaf), key=False, hint=_describe(leaf.schema))


def _plain_message(error: Any) -> str:
    validator = error.validator
    where = _where(tuple(error.absolute_path))
    if validator == "required":
        missing = [k for k in error.validator_value if k not in (error.instance or {})]
        return f"{where} is missing required key{'s' if len(missing) > 1 else ''} " + ", ".join(
            f"'{k}'" for k in missing)
    if validator == "enum":
        return f"{where}: {error.instance!r} is not one of " + ", ".join(map(repr, error.validator_value))
    if validator == "type":
        expected = error.validator_value
        if isinstance(expected, list):
            expected = " or ".join(expected)
        got = _type_name(error.instance)
        if error.instance is not None:
            got += f" {_short(error.instance)}"
        return f"{where}: expected {expected}, got {got}"
    if validator == "pattern":
        return f"{where}: {_short(error.instance)} does not have the expected form"
    if validator == "propertyNames":
        return f"{where}: a name does not have the expected form ({error.message})"
    return f"{where}: {error.message}"


def _where(path: tuple[Any, ...]) -> str:
    from engine.loading import format_path

    return format_path(path) or "the document"


def _describe(schema: dict[str, Any]) -> str:
    desc = schema.get("description", "") if isinstance(schema, dict) else ""
    return desc.split(". ")[0].rstrip(".") if desc else ""


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "list"
    return "mapping"


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _kebab(name: str) -> str:
    return "".join("-" + c.lower() if c.isupper() else c for c in name)
