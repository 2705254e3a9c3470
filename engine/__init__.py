"""Declarative clinical-guideline interpreter.

    >>> import engine
    >>> g = engine.load("guidelines/bone-metastases/guideline.yaml")
    >>> result = g.evaluate({"age": 70, ...}, on=datetime.date(2026, 11, 27), lang="fr")
    >>> result.to_dict()["recommendations"]

The pipeline, one module per stage: ``loading`` (YAML with positions) ->
``schema`` (JSON Schema) -> ``compile`` (expressions, tables, templates) ->
``evaluate`` (facts in, result out) -> ``render`` (text, Markdown, JSON).
Around it: ``language`` (expressions), ``texts``, ``accel`` (faster paths
with the same results), ``authoring`` (author tools), ``frontends`` (CLI,
batch). The names in ``__all__`` are the public API; every other module is
internal. The README's "Architecture" section has the map.
"""

from engine.errors import Diagnostic, EngineError, EvaluationError, FactsError, GuidelineError
from engine.guideline import Decisions, Guideline, load, load_text
from engine.limits import Limits
from engine.render import render
from engine.results import RESULT_VERSION, Recommendation, Result, Undetermined, Value, Why

__all__ = [
    "RESULT_VERSION",
    "Decisions",
    "Diagnostic",
    "EngineError",
    "EvaluationError",
    "FactsError",
    "Guideline",
    "GuidelineError",
    "Limits",
    "Recommendation",
    "Result",
    "Undetermined",
    "Value",
    "Why",
    "load",
    "load_text",
    "render",
]

__version__ = "0.1.0"
