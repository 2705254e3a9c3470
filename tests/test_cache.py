"""The compile cache: same results, never stale, damage ignored."""

from __future__ import annotations

import datetime as dt

import engine
from engine.accel.cache import _FORMAT, cache_key

from .conftest import SHIPPED, baseline_facts

DAY = dt.date(2026, 11, 27)


def test_cached_compile_gives_the_same_results(tmp_path) -> None:
    first = engine.load(SHIPPED, cache_dir=tmp_path)
    files = list(tmp_path.glob("*.pickle"))
    assert len(files) == 1
    second = engine.load(SHIPPED, cache_dir=tmp_path)
    fresh = engine.load(SHIPPED)
    for g in (first, second):
        assert engine.render(g.evaluate(baseline_facts(), on=DAY), "json", explain=True) == \
            engine.render(fresh.evaluate(baseline_facts(), on=DAY), "json", explain=True)
    assert second.compiled.content_hash == fresh.compiled.content_hash


def test_a_changed_guideline_gets_a_new_key(tmp_path) -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    changed = text.replace("then: {zoledronic_dose_mg: 3.5,", "then: {zoledronic_dose_mg: 3.4,")
    limits = engine.Limits()
    assert cache_key(text, "g.yaml", limits) != cache_key(changed, "g.yaml", limits)
    assert cache_key(text, "g.yaml", limits) != cache_key(text, "other.yaml", limits)
    assert cache_key(text, "g.yaml", limits) != cache_key(text, "g.yaml", engine.Limits(max_depth=10))
    path = tmp_path / "guideline.yaml"
    path.write_text(text)
    engine.load(path, cache_dir=tmp_path / "cache")
    path.write_text(changed)
    g = engine.load(path, cache_dir=tmp_path / "cache")
    facts = {**baseline_facts(), "measured_clearance": "55 mL/min"}
    assert g.evaluate(facts, on=DAY).value_of("zoledronic_dose_mg") == 3.4
    assert len(list((tmp_path / "cache").glob("*.pickle"))) == 2


def test_damaged_cache_is_ignored(tmp_path) -> None:
    engine.load(SHIPPED, cache_dir=tmp_path)
    [entry] = tmp_path.glob("*.pickle")
    entry.write_bytes(_FORMAT + b"\x80\x04garbage")
    g = engine.load(SHIPPED, cache_dir=tmp_path)
    assert g.evaluate(baseline_facts(), on=DAY).recommendation_ids()
    entry.write_bytes(b"not ours at all")
    assert engine.load(SHIPPED, cache_dir=tmp_path).id == "bone-metastases-lung"


def test_cli_uses_the_cache_and_can_turn_it_off(cli, private_compile_cache, monkeypatch) -> None:
    demo = SHIPPED.parent / "examples" / "demo-patient.yaml"
    before = set(private_compile_cache.glob("*.pickle"))
    assert cli("evaluate", str(SHIPPED), "--facts", str(demo), "--date", "2026-11-27")[0] == 0
    assert len(set(private_compile_cache.glob("*.pickle")) - before) <= 1
    assert set(private_compile_cache.glob("*.pickle"))
    monkeypatch.setenv("GUIDELINE_CACHE", "0")
    from engine.accel.cache import default_cache_dir

    assert default_cache_dir() is None


def test_a_cached_or_pickled_guideline_brings_its_code(tmp_path, monkeypatch) -> None:
    """Reading the cache (or unpickling in a worker) generates no code: the plan,
    expressions and texts travel as code objects."""
    import pickle

    import engine.accel.codegen
    import engine.language.expressions
    import engine.texts.textgen

    first = engine.load(SHIPPED, cache_dir=tmp_path)
    data = pickle.dumps(first)

    def refuse(*_args, **_kwargs):
        raise AssertionError("code generated again")

    monkeypatch.setattr(engine.accel.codegen, "_plan_code", refuse)
    monkeypatch.setattr(engine.language.expressions, "_codegen", refuse)
    monkeypatch.setattr(engine.texts.textgen, "translate", refuse)
    for g in (engine.load(SHIPPED, cache_dir=tmp_path), pickle.loads(data)):
        assert engine.render(g.evaluate(baseline_facts(), on=DAY), "json", explain=True) == \
            engine.render(first.evaluate(baseline_facts(), on=DAY), "json", explain=True)


def test_code_from_another_python_version_is_compiled_again(monkeypatch) -> None:
    import pickle

    import engine.accel.codegen
    import engine.bytecode
    import engine.language.expressions
    import engine.texts.textgen

    first = engine.load(SHIPPED)
    data = pickle.dumps(first)
    calls: list[str] = []
    for module, name in ((engine.accel.codegen, "_plan_code"), (engine.language.expressions, "_codegen"),
                         (engine.texts.textgen, "translate")):
        original = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _o=original, _n=name, **k: calls.append(_n) or _o(*a, **k))
    monkeypatch.setattr(engine.bytecode, "_TAG", b"\x00\x00\r\n")  # as if another interpreter read it
    again = pickle.loads(data)
    assert calls.count("_plan_code") == 1
    assert calls.count("_codegen") == sum(1 for _ in _expressions(first.compiled))
    assert calls.count("translate") == sum(1 for r in first.compiled.rules for rec in r.then
                                           for t in rec.templates.values() if t.text_code is not None)
    assert engine.render(again.evaluate(baseline_facts(), on=DAY), "json", explain=True) == \
        engine.render(first.evaluate(baseline_facts(), on=DAY), "json", explain=True)


def test_bytecode_payloads_refuse_damage() -> None:
    from engine import bytecode

    code = compile("1 + 1", "<x>", "eval")
    assert eval(bytecode.load(bytecode.dump(code))) == 2  # noqa: S307 - our own constant expression
    tag, raw = bytecode.dump(code)
    assert bytecode.load((b"????", raw)) is None
    assert bytecode.load((tag, raw[:5])) is None
    assert bytecode.load((tag, b"\x00garbage")) is None
    assert bytecode.load("not a payload") is None


def _expressions(compiled):
    from engine.language.expressions import CompiledExpression

    seen: set[int] = set()

    def walk(value):
        if isinstance(value, CompiledExpression):
            if id(value) not in seen:
                seen.add(id(value))
                yield value
        elif isinstance(value, dict):
            for v in value.values():
                yield from walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                yield from walk(v)
        elif hasattr(value, "__dataclass_fields__"):
            for name in value.__dataclass_fields__:
                yield from walk(getattr(value, name))

    yield from walk(compiled)


def test_a_cached_evaluation_imports_neither_jinja_nor_jsonschema(tmp_path) -> None:
    """The one-shot CLI's speed rests on this: the cache holds everything evaluation needs."""
    import subprocess
    import sys

    engine.load(SHIPPED, cache_dir=tmp_path)
    script = (
        "import sys, datetime, engine\n"
        f"g = engine.load({str(SHIPPED)!r}, cache_dir={str(tmp_path)!r})\n"
        "r = g.evaluate({'bone_metastases': True, 'vitamin_d_25oh': {'value': 15, 'unit': 'ng/mL'},"
        " 'comedications': ['corticosteroids']}, on=datetime.date(2026, 11, 27))\n"
        "assert r.recommendations and all(rec.text for rec in r.recommendations)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jinja2', 'jsonschema')))\n"
    )
    run = subprocess.run(check=False, args=[sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


TWO_INPUT_TABLE = """\
id: two
version: 0.1.0
status: draft
title: {fr: t}
languages: [fr]
source: {document: t}
facts:
  v: {type: number, range: {min: 0, max: 100}, label: {fr: v}}
  s: {type: enum, values: [low, high], label: {fr: s}}
tables:
  t:
    hit: collect
    inputs: [{expr: v}, {expr: s}]
    outputs: {out: null}
    rows:
      - {id: a, when: ["< 50", low], then: {out: 1}}
      - {id: b, when: ["< 80", "-"], then: {out: 2}}
    otherwise: {out: 0}
rules:
  - {id: r, when: "known(out)", then: [{id: r, kind: information, text: {fr: "sortie {{ out }}"}}]}
"""


def test_a_pickled_guideline_keeps_its_generic_table_matchers() -> None:
    """Tables that are not if/elif chains call the generic matcher, a helper made again on unpickling."""
    import pickle

    g = engine.load_text(TWO_INPUT_TABLE, "two.yaml")
    again = pickle.loads(pickle.dumps(g))
    for facts in ({"v": 10, "s": "low"}, {"v": 60, "s": "low"}, {"v": 90, "s": "high"}, {"v": 10}):
        first, second = g.evaluate(facts, on=DAY), again.evaluate(facts, on=DAY)
        assert first.tables == second.tables
        assert [r.text for r in first.recommendations] == [r.text for r in second.recommendations]
    assert again.evaluate({"v": 10, "s": "low"}, on=DAY).tables == {"t": "a,b"}


def test_the_cache_folder_is_private_and_entries_are_authenticated(tmp_path, capsys) -> None:
    import os
    import pickle
    import stat

    folder = tmp_path / "cache"
    engine.load(SHIPPED, cache_dir=folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "key").stat().st_mode) == 0o600
    [entry] = folder.glob("*.pickle")
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    # A planted entry (right format, a pickle that would run code, no valid HMAC) is ignored.
    marker = tmp_path / "ran"

    class Planted:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    entry.write_bytes(_FORMAT + b"\0" * 32 + pickle.dumps(Planted()))
    g = engine.load(SHIPPED, cache_dir=folder)
    assert not marker.exists()
    assert g.evaluate(baseline_facts(), on=DAY).recommendation_ids()
    # A folder others can write is not used, and the user is told once.
    os.chmod(folder, 0o777)
    engine.load(SHIPPED, cache_dir=folder)
    engine.load(SHIPPED, cache_dir=folder)
    err = capsys.readouterr().err
    assert err.count("is not used: it must belong to you and be writable by you alone") == 1
    os.chmod(folder, 0o700)
    os.chmod(folder / "key", 0o644)  # a key others can read is not a secret
    before = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.pickle")}
    engine.load(SHIPPED, cache_dir=folder)
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.pickle")} == before
    assert "key is not used" in capsys.readouterr().err
