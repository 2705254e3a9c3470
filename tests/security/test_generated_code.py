"""No author text reaches the generated program except as validated AST nodes."""

from __future__ import annotations

import ast
import dis

import pytest

from engine.language.expressions import NameInfo, compile_expression
from engine.language.functions import REGISTRY

SCOPE = {"eval": NameInfo("number"), "open": NameInfo("number"), "print": NameInfo("boolean"),
         "s": NameInfo("enum", ("a", "b")), "t": NameInfo("enum"), "x": NameInfo("number")}
HELPERS = {f"_f_{n}" for n in REGISTRY} | {f"_c_{n}" for n in REGISTRY} | {"_pow"}


@pytest.mark.parametrize("text", [
    "eval > 1 and open < 2",                      # names shadowing builtins are only data
    "print or x > 1",
    "t == 'a\\'); __import__(\"os\").system(\"id\"); (\\''",  # quotes inside a string literal
    "t == \"line\\nbreak\"",
    "x > 1000 and x < 16 and x != 1e3",             # numbers in plain decimal
    "max(x, 2) > round(x, 1)",
    "s in ['a', 'b']",
])
def test_code_objects_only_load_declared_names_and_helpers(text: str) -> None:
    expr, problems = compile_expression(text, SCOPE)
    assert problems == []
    names = set(expr.code.co_names)
    temporaries = {n for n in names if n.startswith("_t") and n[2:].isdigit()}
    assert names - temporaries <= set(SCOPE) | HELPERS
    for instruction in dis.get_instructions(expr.code):
        assert instruction.opname not in ("IMPORT_NAME", "LOAD_ATTR", "LOAD_METHOD", "STORE_ATTR",
                                          "LOAD_BUILD_CLASS", "MAKE_FUNCTION")
    constants = [c for c in expr.code.co_consts if isinstance(c, str)]
    for value in constants:  # string literals stay constants, never code
        assert value in text.encode().decode("unicode_escape") or value in text


def test_builtins_are_empty_at_run_time() -> None:
    expr, _ = compile_expression("eval > 1", SCOPE)
    assert expr({"eval": 2}) is True  # 'eval' is the patient's value, not the builtin
    with pytest.raises(NameError):
        eval(expr.code, {"__builtins__": {}}, {})  # noqa: S307 - proves nothing leaks from builtins


def test_generated_tree_uses_only_safe_node_types() -> None:
    from engine.language.expressions import KleeneCodegen

    allowed = {ast.Expression, ast.IfExp, ast.Compare, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Call, ast.Name,
               ast.Constant, ast.Tuple, ast.NamedExpr, ast.Load, ast.Store, ast.Is, ast.IsNot, ast.Or, ast.And,
               ast.Not, ast.USub, ast.UAdd, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod, ast.FloorDiv,
               ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn}
    expr, _ = compile_expression("(x > 1 and not print) or s in ['a'] or max(x, 3) ** 2 > 4 if print else False", SCOPE)
    generated = KleeneCodegen().gen(expr.tree.body)
    assert {type(n) for n in ast.walk(generated)} <= allowed


@pytest.mark.parametrize(("text", "code"), [
    ("x > 1_000", "expr.number-form"), ("x < 0x10", "expr.number-form"), ("x < 0o17", "expr.number-form"),
    ("x < 0b11", "expr.number-form"), ("x < 1e309", "expr.too-large"), ("True # and x > 200", "expr.comment"),
])
def test_numbers_in_odd_forms_and_comments_are_refused(text: str, code: str) -> None:
    expr, problems = compile_expression(text, SCOPE)
    assert expr is None and [p.code for p in problems][:1] == [code]


def test_plan_code_objects_only_load_helpers_and_read_known_attributes() -> None:
    """The whole-guideline plan and the explanation function: the same guarantees as expressions."""
    import engine
    from engine.accel.codegen import _helpers, _plan_code
    from engine.evaluate import match_table
    from engine.explain import prepared
    from engine.language.expressions import RUNTIME_GLOBALS
    from tests.conftest import ROOT

    g = engine.load(ROOT / "guidelines" / "bone-metastases" / "guideline.yaml").compiled
    module = _plan_code(g)
    functions = [c for c in module.co_consts if hasattr(c, "co_names")]
    assert {f.co_name for f in functions} == {"decide", "decide_checked"}
    allowed = set(RUNTIME_GLOBALS) | set(_helpers(g, match_table)) | {"get", "keys", "toordinal"}
    for function in functions:
        assert set(function.co_names) <= allowed, set(function.co_names) - allowed
        for instruction in dis.get_instructions(function):
            assert instruction.opname not in ("IMPORT_NAME", "STORE_ATTR", "LOAD_BUILD_CLASS", "MAKE_FUNCTION")
            if instruction.opname in ("LOAD_ATTR", "LOAD_METHOD"):
                assert instruction.argval in ("get", "keys", "toordinal")
    explain = prepared(g, "fr")
    generated = explain.generated(now=True)
    assert generated is not None
    names = set(generated.__code__.co_names)
    assert names <= set(generated.__globals__) | {"get", "rstrip", "replace"}, names - set(generated.__globals__)
    assert {n for n in generated.__globals__ if not n.startswith("_")} == {"explain_values"}  # helpers are _-named
    assert generated.__globals__["__builtins__"] == {}


def test_generators_refuse_a_name_that_is_not_an_engine_identifier() -> None:
    from engine.accel import codegen, explaincode

    for bad in ("x; import os", "__class__", "A", "1x", "x-y"):
        with pytest.raises(ValueError):
            codegen._local(bad)
        with pytest.raises(ValueError):
            explaincode._name("d_", bad)
