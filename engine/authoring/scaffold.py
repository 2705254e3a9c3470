"""``guideline new``: a minimal guideline folder that passes validate, lint and test."""

from __future__ import annotations

import re
from pathlib import Path

from engine.resources import SCHEMA_NAMES, schema_text

__all__ = ["project_schemas", "scaffold"]

_GUIDELINE = """\
# yaml-language-server: $schema={schema}
id: {id}
version: 0.1.0
status: draft
title:
  fr: {title}
  en: {title}
languages: [fr, en]
source:
  document: {title}
  section: "1"

facts:
  age:
    type: integer
    range: {{min: 18, max: 120}}
    label: {{fr: Âge (ans), en: Age (years)}}

rules:
  - id: older-adult
    title: {{fr: Patient âgé, en: Older patient}}
    when: age >= 75
    statements: [1]
    source: {{section: "1"}}
    then:
      - id: older-adult
        kind: information
        text:
          fr: Patient de {{{{ age }}}} ans - remplacer ce texte par la recommandation de la source.
          en: Patient aged {{{{ age }}}} - replace this text with the source's recommendation.
"""

_CASES = """\
# yaml-language-server: $schema={schema}
guideline: ../guideline.yaml
defaults:
  date: "{today}"
  lang: fr
cases:
  - id: older-adult-75
    story: Patient aged exactly 75, the rule applies.
    statements: [1]
    facts: {{age: 75}}
    expect:
      include: [older-adult]
      text_contains: {{older-adult: "75 ans"}}
  - id: adult-74
    story: Patient aged 74, the rule does not apply.
    statements: [1]
    facts: {{age: 74}}
    expect:
      exclude: [older-adult]
"""


def project_schemas(folder: Path) -> Path | None:
    """The ``schemas/`` folder of the project ``folder`` is in (the nearest ancestor that has one), or None."""
    for parent in [folder.resolve(), *folder.resolve().parents]:
        if (parent / "schemas" / "guideline.schema.json").is_file():
            return parent / "schemas"
    return None


def scaffold(folder: Path, guideline_id: str, title: str, schemas: Path | None, today: str) -> list[Path]:
    """Create ``folder`` with guideline.yaml and cases/basic.cases.yaml; return the files written.

    ``schemas`` is the folder the files' ``$schema`` lines point at. Without one
    (an installed engine, a project with no ``schemas/``), the shipped schemas
    are copied into ``folder/schemas/``: a path into the engine's installation
    would break at its next upgrade or in another environment.
    """
    if not re.match(r"^[a-z0-9][a-z0-9_.-]*$", guideline_id):
        raise ValueError(f"'{guideline_id}' is not a valid id (lower case, digits, '-', '_', '.')")
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} exists and is not empty")
    cases = folder / "cases"
    cases.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if schemas is None:
        schemas = folder / "schemas"
        schemas.mkdir()
        for name in SCHEMA_NAMES:
            (schemas / name).write_text(schema_text(name), encoding="utf-8")
            written.append(schemas / name)
    schema_from_guideline = _relative(schemas / "guideline.schema.json", folder)
    schema_from_cases = _relative(schemas / "cases.schema.json", cases)
    (folder / "guideline.yaml").write_text(
        _GUIDELINE.format(schema=schema_from_guideline, id=guideline_id, title=title), encoding="utf-8")
    (cases / "basic.cases.yaml").write_text(_CASES.format(schema=schema_from_cases, today=today), encoding="utf-8")
    return [folder / "guideline.yaml", cases / "basic.cases.yaml", *written]


def _relative(target: Path, start: Path) -> str:
    import os

    return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()
