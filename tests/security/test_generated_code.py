"""No author text reaches the generated program except as validated AST nodes."""

from __future__ import annotations

import ast
import dis

import pytest

from engine.language.expressions import NameInfo, compile_expression
from engine.language.functions import REGISTRY

SCOPE = {"eval": NameInfo("number"), "open": NameInfo("number"), "print": NameInfo("boolean"),
         "s": NameInfo("enum", ("a", "b")), "t": NameInfo("enum"), "x": NameInfo("number")}
HELPERS = {f"_f_{n}" for n in REGISTRY} | {"_pow"}


@pytest.mark.parametrize("text", [
    "eval > 1 and open < 2",                      # names shadowing builtins are only data
    "print or x > 1",
    "t == 'a\\'); __import__(\"os\").system(\"id\"); (\\''",  # quotes inside a string literal
    "t == \"line\\nbreak\"",
    "x > 1_000 and x < 0x10 and x != 1e3",          # numbers in odd forms
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
