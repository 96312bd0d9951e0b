"""Unit tests of the search query generator and the known-item search evaluation (small samples, real catalog)."""

from __future__ import annotations

import pytest

from bench.eval_search import run_search_eval, sentence_queries
from bench.search_queries import KINDS, make_queries, split_of
from tools.backends.models.text_rules import clean_search_query
from tools.backends.query import normalize, parse_query
from tools.backends.search_index import HybridIndex


def test_queries_are_deterministic_and_split_by_title(catalog):
    a = make_queries(catalog.items, split="dev", sample=180)
    b = make_queries(catalog.items, split="dev", sample=180)
    t = make_queries(catalog.items, split="test", sample=180)
    assert a == b
    assert len(a) == 180 and {q.kind for q in a} == set(KINDS)
    assert all(split_of(q.source_id) == "dev" for q in a)
    assert all(split_of(q.source_id) == "test" for q in t)
    assert not {q.source_id for q in a} & {q.source_id for q in t}


def test_relevant_sets_follow_the_documented_rules(catalog):
    qs = make_queries(catalog.items, split="test", sample=450)
    by_id = {it.mal_id: it for it in catalog.items}
    for q in qs:
        assert q.source_id in q.relevant
        src = by_id[q.source_id]
        if q.kind == "author":
            assert all({normalize(a) for a in by_id[i].authors} & {normalize(a) for a in src.authors} for i in q.relevant)
        if q.kind == "ja_author":
            assert any(q.text.startswith(a) for a in src.authors_ja)
            assert all({normalize(a) for a in by_id[i].authors_ja} & {normalize(a) for a in src.authors_ja}
                       for i in q.relevant)
        if q.kind == "ja_partial":
            assert normalize(q.text).replace(" ", "") in normalize(src.title_ja).replace(" ", "")
            assert len(q.text) >= 4
        if q.kind == "volume":
            assert parse_query(q.text).volume == q.volume
        if q.kind in ("romaji", "english", "ja_title", "synonym"):
            for i in q.relevant:
                it = by_id[i]
                names = {normalize(n) for n in (it.title, it.title_en, it.title_ja, *it.synonyms)}
                assert normalize(q.text) in names


def test_bad_arguments(catalog):
    with pytest.raises(ValueError):
        make_queries(catalog.items, split="train", sample=10)
    with pytest.raises(ValueError):
        make_queries(catalog.items, split="dev", sample=0)


def test_eval_on_small_sample(catalog):
    index = HybridIndex.build(catalog)
    s = run_search_eval(index=index, sample=90, split="dev")
    assert s["split"] == "dev" and s["n_queries"] == 90
    for block in [s["hybrid"], *s["baselines"].values()]:
        assert set(block) == {"overall", "per_kind"}
        assert set(block["per_kind"]) == set(KINDS)
        for m in [block["overall"], *block["per_kind"].values()]:
            for key in ("recall@1", "recall@10", "mrr@10"):
                assert 0.0 <= m[key] <= 1.0
            assert m["recall@1"] <= m["mrr@10"] <= m["recall@10"]
    assert set(s["latency_ms"]) == {"p50", "p99", "mean", "cpu_p50", "cpu_p99"}
    assert 0 < s["latency_ms"]["p50"] <= s["latency_ms"]["p99"]
    assert 0.0 <= s["volume_accuracy"] <= 1.0
    # the hybrid index is not worse than the word-level baseline on the same queries
    assert s["hybrid"]["overall"]["recall@10"] >= s["baselines"]["word_tfidf"]["overall"]["recall@10"]
    sent = s["sentence"]
    assert sent["n"] == 90 and set(sent) == {"n", "cleaned", "raw"}
    # cleaning the request phrasing ("do you have ... in stock?") finds the named title at least as often
    assert sent["cleaned"]["recall@10"] >= sent["raw"]["recall@10"] >= 0.5


def test_sentence_queries_name_their_title(catalog):
    qs = sentence_queries(catalog.items, "dev")
    assert len(qs) > 500 and {q.kind for q in qs} == {"sentence"}
    by_id = {it.mal_id: it for it in catalog.items}
    named = 0
    for q in qs:
        assert q.source_id in q.relevant
        it = by_id[q.source_id]
        forms = [normalize(f) for f in (it.title, it.title_en, it.title_ja, *it.synonyms) if f]
        named += any(f and f in normalize(q.text) for f in forms)
        assert normalize(clean_search_query(q.text)) != ""
    assert named / len(qs) > 0.8  # the rest carry a keyboard slip, as router_data.typo makes them (dev: 0.87)
    sub = sentence_queries(catalog.items, "dev", sample=50)
    assert len(sub) == 50 and set(sub) <= set(qs)
