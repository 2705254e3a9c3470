"""Texts translated to Python (engine.textgen) render exactly as Jinja does."""

from __future__ import annotations

import datetime as dt
import dis
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.texts.formatting import fold_line, format_number
from engine.texts.templates import CompiledTemplate, compile_template

NAMES = {"x", "y", "flag", "kind", "day", "items", "pairs", "label"}
# How many items a loop over each name goes through at most (as compile.py derives from the declarations).
LENGTHS = {"x": 0, "y": 0, "flag": 0, "day": 0, "kind": 1, "items": 4, "pairs": 3, "label": 6}

# Every construct the translation accepts, alone and combined.
TEMPLATES = [
    "Dose {{ x | num(1) }} mg, {{ y | num }} mL/min le {{ day | date }}.",
    "{{ x }} / {{ flag }} / {{ kind }} / {{ label }} / {{ items }}",
    "{% if x > 50 %}haut{% elif x >= 30 %}moyen{% else %}bas{% endif %} ({{ x | num(2) }})",
    "{% if kind == 'a' and not flag %}A{% elif kind in ['b', 'c'] or flag %}BC{% endif %} fin",
    "{% if x is none %}inconnu{% else %}{{ x | num }}{% endif %}",
    "{{ 'oui' if flag else 'non' }} ; {{ x + 1 }} ; {{ x - y }} ; {{ -x }} ; {{ x / 4 }} ; {{ x // 3 }}",
    "{% if 10 <= x < 60 %}dans la plage{% endif %}",
    "Traitements : {% for c in items %}{{ {'a': 'alpha', 'b': 'bêta', 'c': 'gamma'}[c] }}"
    "{% if not loop.last %}, {% endif %}{% endfor %}.",
    "{% for c in items %}[{{ loop.index }}/{{ loop.length }} {{ loop.index0 }} {{ loop.revindex }} "
    "{{ loop.revindex0 }} {{ loop.first }} {{ c }}]{% endfor %}",
    "{% for a in items %}{% for b in pairs %}{{ a }}{{ b }}{% if loop.last %};{% endif %}{% endfor %}"
    "{% if loop.first %}!{% endif %}{% endfor %}",
    "{% for kind in items %}{{ kind }}{% endfor %} puis {{ kind }}",  # the loop variable shadows a name
    "   espaces    multiples {% if flag %}  oui  {% endif %}   fin   ",
    "ligne un\n{% if flag %}ligne deux{% endif %}\n  ligne trois  ",
]
VALUES = st.one_of(st.none(), st.integers(-20_000, 20_000), st.floats(-1e6, 1e6, allow_nan=False), st.booleans())
ENV = st.fixed_dictionaries({
    "x": VALUES, "y": VALUES, "flag": st.one_of(st.none(), st.booleans()),
    "kind": st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"])),
    "day": st.one_of(st.none(), st.dates(dt.date(1990, 1, 1), dt.date(2030, 1, 1))),
    "items": st.one_of(st.none(), st.lists(st.sampled_from(["a", "b", "c", "z"]), max_size=4).map(tuple)),
    "pairs": st.lists(st.sampled_from(["p", "q"]), max_size=3).map(tuple),
    "label": st.one_of(st.none(), st.text(max_size=6)),
})


def compiled(text: str, lang: str) -> CompiledTemplate:
    template, problems = compile_template(text, lang, NAMES, 10_000, lengths=LENGTHS)
    assert problems == [] and template is not None
    return template


def jinja_only(template: CompiledTemplate) -> CompiledTemplate:
    return template.jinja_only()


@pytest.mark.parametrize("text", TEMPLATES)
def test_every_listed_construct_is_translated(text: str) -> None:
    for lang in ("fr", "en"):
        assert compiled(text, lang).fast is not None, text


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.sampled_from(TEMPLATES), ENV, st.sampled_from(["fr", "en"]))
def test_translated_text_is_the_jinja_text(text: str, env: dict, lang: str) -> None:
    template = compiled(text, lang)
    try:
        expected = jinja_only(template).render(env, 10_000)
    except Exception as exc:  # noqa: BLE001 - e.g. None > 50: the translated path must fail the same way
        with pytest.raises(type(exc)):
            template.render(env, 10_000)
        return
    assert template.render(env, 10_000) == expected
    # The translated function itself produced it (no silent fallback to Jinja).
    assert template.fast(env) == expected


@pytest.mark.parametrize("text", [
    "{{ x * 2 }}",                                   # the sandbox bounds '*': left to it
    "{{ x ** 2 }}",
    "{{ label | upper }}",                           # filters other than num and date
    "{{ x | num(1, 2) }}",
    "{{ items.count }}",                             # attributes
    "{% for c in items %}{{ loop }}{% endfor %}",    # Jinja's loop object itself
    "{% for c in items %}{{ loop.cycle }}{% endfor %}",
    "{% for c in items %}{{ c }}{% else %}vide{% endfor %}",
    "{% for c in items if c %}{{ c }}{% endfor %}",
    "{% for a, b in pairs %}{{ a }}{% endfor %}",
    "{{ {'a': x}[kind] }}",                          # a dict with a non-constant value
    "{{ items[0] }}",
])
def test_anything_else_is_left_to_jinja(text: str) -> None:
    names = NAMES | {"loop"}
    template, problems = compile_template(text, "fr", names, 10_000, lengths=LENGTHS)
    assert problems == [] and template is not None
    assert template.fast is None and template.text_code is None


def test_run_time_failures_fall_back_to_jinja_and_its_message() -> None:
    template = compiled("{{ {'a': 'alpha'}[kind] }}", "fr")
    assert template.render({"kind": "a"}, 100) == "alpha"
    from engine.texts.templates import TemplateRuntimeError

    with pytest.raises(TemplateRuntimeError):  # Jinja reports the missing key (StrictUndefined)
        template.render({"kind": "zz"}, 100)


def test_output_limit_applies_to_translated_texts() -> None:
    from engine.texts.templates import TemplateRuntimeError

    template = compiled("{% for c in items %}{{ label }}{% endfor %}", "fr")
    assert template.fast is not None
    with pytest.raises(TemplateRuntimeError, match="more than 50"):
        template.render({"items": tuple("abcdef"), "label": "0123456789"}, 50)


def test_french_thousands_keep_their_narrow_no_break_space() -> None:
    template = compiled("Apports de {{ x | num }} mg   par jour", "fr")
    assert template.render({"x": 12500}, 100) == "Apports de 12\u202f500 mg par jour"
    assert jinja_only(template).render({"x": 12500}, 100) == "Apports de 12\u202f500 mg par jour"


def test_fold_line_folds_ascii_white_space_only() -> None:
    assert fold_line("  a \t b\n\nc  ") == "a b c"
    assert fold_line("10\u202f000\xa0: ok") == "10\u202f000\xa0: ok"
    assert fold_line("déjà propre") == "déjà propre"


@settings(max_examples=500, deadline=None, derandomize=True)
@given(st.one_of(st.integers(-10**9, 10**9), st.floats(-1e9, 1e9, allow_nan=False)),
       st.one_of(st.none(), st.integers(0, 3)))
def test_french_numbers_are_english_numbers_with_comma_and_grouping(value, decimals) -> None:
    english = format_number(value, "en", decimals)
    french = format_number(value, "fr", decimals)
    assert french.replace("\u202f", "").replace(",", ".") == english
    whole = french.split(",")[0].lstrip("-")
    groups = whole.split("\u202f")
    if len(whole.replace("\u202f", "")) <= 4:
        assert groups == [whole]
    else:
        assert all(len(g) == 3 for g in groups[1:]) and 1 <= len(groups[0]) <= 3


def test_format_number_cases() -> None:
    assert format_number(None, "fr") == "inconnu"
    assert format_number(True, "fr") == "True"
    assert format_number(3.5, "fr") == "3,5" and format_number(3.5, "en") == "3.5"
    assert format_number(4.0, "fr") == "4" and format_number(4, "fr", 1) == "4,0"
    assert format_number(-12345.678, "fr", 2) == "-12\u202f345,68"
    assert format_number(9999.96, "fr", 1) == "10\u202f000,0"
    assert format_number(1234, "fr") == "1234"


def test_translated_code_survives_pickling() -> None:
    template = compiled(TEMPLATES[7], "fr")
    restored = pickle.loads(pickle.dumps(template))
    assert restored.fast is not None
    env = {"items": ("a", "c")}
    assert restored.render(env, 1000) == template.render(env, 1000) == "Traitements : alpha, gamma."


HELPERS = {"_num", "_date", "_loop", "_join", "_fold", "_strip", "_out", "_c", "env", "_kand", "_kor", "_knot"}


def _code_objects(code):
    yield code
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            yield from _code_objects(const)


@pytest.mark.parametrize("text", TEMPLATES + [
    "{% if kind == 'a\\'); __import__(\"os\").system(\"id\"); (\\'' %}x{% endif %}{{ x | num(1) }}",
    "{{ eval }} {{ open }} {{ __import__ }}",  # names are only keys of the facts
])
def test_generated_code_reads_only_its_helpers(text: str) -> None:
    template, problems = compile_template(text, "fr", NAMES | {"eval", "open", "__import__"}, 10_000, lengths=LENGTHS)
    assert problems == [] and template is not None and template.text_code is not None
    code = template.text_code[0]
    for part in _code_objects(code):
        names = set(part.co_names)
        assert names <= HELPERS | {"render"}, names
        for instruction in dis.get_instructions(part):
            assert instruction.opname not in ("IMPORT_NAME", "LOAD_ATTR", "LOAD_METHOD", "STORE_ATTR",
                                              "LOAD_BUILD_CLASS", "STORE_GLOBAL", "DELETE_GLOBAL"), text
    if text.startswith("{{ eval }}"):
        assert template.render({"eval": 1, "open": 2, "__import__": 3}, 100) == "1 2 3"


# --- generated templates ----------------------------------------------------------
# Random templates from the translated subset, rendered both ways: whenever Jinja
# renders, the translated function gives the same text; whenever Jinja fails, so
# does the translated function (the text then comes from Jinja's error path).

NUMBER_NAMES = st.sampled_from(["x", "y"])
ATOMS = st.one_of(
    NUMBER_NAMES, st.sampled_from(["flag", "kind", "label", "items"]),
    st.integers(-3, 120).map(str), st.sampled_from(["0.5", "2.25", "'a'", "'b c'", "none", "true", "false"]),
)


def _expressions(depth: int) -> st.SearchStrategy[str]:
    if depth == 0:
        return ATOMS
    inner = _expressions(depth - 1)
    return st.one_of(
        ATOMS,
        st.tuples(inner, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), inner).map(lambda t: "({} {} {})".format(*t)),
        st.tuples(NUMBER_NAMES, st.sampled_from(["+", "-", "/", "//"]), st.sampled_from(["1", "3", "x", "0"]))
        .map(lambda t: "({} {} {})".format(*t)),
        inner.map(lambda e: f"(not {e})"),
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(lambda t: "({} {} {})".format(*t)),
        inner.map(lambda e: f"({e} is none)"),
        st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        st.sampled_from(["kind in ['a', 'b']", "'a' in items", "kind not in ('c',)",
                         "{'a': 'A', 'b': 'B', 'c': 'C', 'd': 'D'}[kind]"]),
    )


def _outputs(depth: int) -> st.SearchStrategy[str]:
    return st.one_of(
        _expressions(depth).map(lambda e: "{{ " + e + " }}"),
        st.tuples(NUMBER_NAMES, st.sampled_from(["", "(0)", "(1)", "(2)"])).map(lambda t: "{{{{ {} | num{} }}}}".format(*t)),
        st.just("{{ day | date }}"),
    )


def _blocks(depth: int) -> st.SearchStrategy[str]:
    words = st.sampled_from(["mot ", " espace  ", "fin.", "\n", "  ", "é\u202f", ", "])
    pieces = [words, _outputs(1)]
    if depth > 0:
        inner = _blocks(depth - 1)
        condition = _expressions(1)
        pieces.append(st.tuples(condition, inner, st.lists(st.tuples(condition, inner), max_size=2),
                                st.one_of(st.none(), inner)).map(_if))
        pieces.append(st.tuples(st.sampled_from(["c", "kind", "x"]), inner,
                                st.sampled_from(["", "{{ loop.index }}", "{% if not loop.last %}, {% endif %}",
                                                 "{{ loop.first }}{{ loop.revindex0 }}{{ loop.length }}"]))
                      .map(lambda t: "{% for " + t[0] + " in items %}{{ " + t[0] + " }}" + t[1] + t[2]
                           + "{% endfor %}"))
    return st.lists(st.one_of(*pieces), max_size=5).map("".join)


def _if(parts) -> str:
    test, body, elifs, otherwise = parts
    text = "{% if " + test + " %}" + body
    for condition, block in elifs:
        text += "{% elif " + condition + " %}" + block
    if otherwise is not None:
        text += "{% else %}" + otherwise
    return text + "{% endif %}"


@settings(max_examples=400, deadline=None, derandomize=True)
@given(_blocks(2), ENV, st.sampled_from(["fr", "en"]))
def test_generated_templates_render_as_in_jinja(text: str, env: dict, lang: str) -> None:
    template, problems = compile_template(text, lang, NAMES, 10_000, lengths=LENGTHS)
    assert problems == [], (text, problems)
    if template.fast is None:
        return  # static text, or a construct outside the subset: Jinja renders it anyway
    try:
        expected = template.jinja_only().render(env, 10_000)
    except Exception:  # noqa: BLE001 - Jinja fails: the translated function must fail too
        with pytest.raises(Exception):  # noqa: B017 - any failure sends the text to Jinja's error path
            template.fast(env)
        return
    assert template.fast(env) == expected, text
