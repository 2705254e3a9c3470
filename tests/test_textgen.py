"""Texts translated to Python (engine.textgen) render exactly as Jinja does."""

from __future__ import annotations

import datetime as dt
import dis
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.formatting import fold_line, format_number
from engine.templates import CompiledTemplate, compile_template

NAMES = {"x", "y", "flag", "kind", "day", "items", "pairs", "label"}

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
    template, problems = compile_template(text, lang, NAMES, 10_000)
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
    template, problems = compile_template(text, "fr", names, 10_000)
    assert problems == [] and template is not None
    assert template.fast is None and template.text_code is None


def test_run_time_failures_fall_back_to_jinja_and_its_message() -> None:
    template = compiled("{{ {'a': 'alpha'}[kind] }}", "fr")
    assert template.render({"kind": "a"}, 100) == "alpha"
    from engine.templates import TemplateRuntimeError

    with pytest.raises(TemplateRuntimeError):  # Jinja reports the missing key (StrictUndefined)
        template.render({"kind": "zz"}, 100)


def test_output_limit_applies_to_translated_texts() -> None:
    from engine.templates import TemplateRuntimeError

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


HELPERS = {"_num", "_date", "_loop", "_join", "_fold", "_strip", "_out", "_c", "env"}


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
    template, problems = compile_template(text, "fr", NAMES | {"eval", "open", "__import__"}, 10_000)
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
