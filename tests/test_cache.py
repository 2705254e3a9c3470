"""The compile cache: same results, never stale, damage ignored."""

from __future__ import annotations

import datetime as dt

import engine
from engine.cache import cache_key

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
    entry.write_bytes(b"guideline-cache-1" + b"\x80\x04garbage")
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
    from engine.cache import default_cache_dir

    assert default_cache_dir() is None
