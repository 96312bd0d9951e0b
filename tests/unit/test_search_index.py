"""Unit tests of the in-process hybrid catalog search (real shipped catalog, index built once per module)."""

from __future__ import annotations

import numpy as np
import pytest

from core.domain import SearchHit
from tools.backends.query import ParsedQuery, normalize, parse_query
from tools.backends.search_index import LsaEmbedder

BERSERK, ONE_PIECE, AOT = 2, 13, 23390


def top_id(index, q: str) -> int | None:
    hits = index.search(q, 10)
    return hits[0].mal_id if hits else None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Berserk vol 3", ParsedQuery("Berserk", 3)),
        ("Berserk vol. 3", ParsedQuery("Berserk", 3)),
        ("berserk Volume 12", ParsedQuery("berserk", 12)),
        ("Berserk v3", ParsedQuery("Berserk", 3)),
        ("Berserk #3", ParsedQuery("Berserk", 3)),
        ("ベルセルク3巻", ParsedQuery("ベルセルク", 3)),
        ("ベルセルク 第3巻", ParsedQuery("ベルセルク", 3)),
        ("ベルセルク３巻", ParsedQuery("ベルセルク", 3)),
        ("ベルセルクの3巻", ParsedQuery("ベルセルク", 3)),
        ("進撃の巨人の 第2巻", ParsedQuery("進撃の巨人", 2)),
        ("20th Century Boys", ParsedQuery("20th Century Boys", None)),
        ("No. 6", ParsedQuery("No. 6", None)),
        ("#1", ParsedQuery("#1", None)),
        ("", ParsedQuery("", None)),
    ],
)
def test_parse_query_volume_markers(text, expected):
    assert parse_query(text) == expected


def test_normalize_folds_width_case_and_long_vowels():
    assert normalize("Kentarou MIURA") == normalize("Kentarō Miura") == normalize("Kentaro miura") == "kentaro miura"
    assert normalize("ＯＮＥ　ＰＩＥＣＥ") == "one piece"
    assert normalize("ﾍﾞﾙｾﾙｸ") == normalize("べるせるく") == "ベルセルク"
    assert normalize("!!!") == ""


@pytest.mark.parametrize(
    "query, expected",
    [
        ("Berserk", BERSERK),
        ("Attack on Titan", AOT),  # English
        ("Shingeki no Kyojin", AOT),  # romaji
        ("進撃の巨人", AOT),  # Japanese
        ("撃の巨", AOT),  # partial Japanese, no spaces
        ("Shingeki no Kyojn", AOT),  # typo
        ("Atack on Titan", AOT),  # typo
        ("Full Metal Alchemist", 25),  # synonym
        ("Hagane no Renkinjutsushi", 25),  # romaji synonym
        ("Fullmetal", 25),  # prefix
        ("Kentarou Miura", BERSERK),  # author, MAL spelling
        ("Miura Kentaro", BERSERK),  # author, family name first, short vowel
        ("Eiichiro Oda", ONE_PIECE),
    ],
)
def test_known_items_rank_first(index, query, expected):
    assert top_id(index, query) == expected


def test_volume_is_parsed_and_carried(index):
    for q in ("Berserk vol 3", "ベルセルク 3巻", "Berserk #3"):
        hits = index.search(q, 5)
        assert hits[0].mal_id == BERSERK
        assert {h.volume for h in hits} == {3}
    assert index.search("Berserk", 1)[0].volume is None


def test_hits_are_best_first_and_bounded(index):
    hits = index.search("Dragon Ball", 7)
    assert 1 <= len(hits) <= 7
    assert all(isinstance(h, SearchHit) for h in hits)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert len({h.mal_id for h in hits}) == len(hits)


@pytest.mark.parametrize("query", ["", "   ", "!!!", "？？？", "\x00\x01", None, 12345.0])
def test_empty_or_garbage_queries_return_nothing(index, query):
    assert index.search(query, 10) == []


def test_k_bounds(index):
    assert index.search("Berserk", 0) == []
    assert len(index.search("Berserk", 1)) == 1


def test_search_many_matches_search(index):
    queries = ["Berserk vol 2", "進撃の巨人", "", "Miura Kentarou", "one pice", "ワンピース", "naruto"] * 40
    batched = index.search_many(queries, 5)
    assert len(batched) == len(queries)
    for q, hits in zip(queries[:7], batched[:7]):
        assert hits == index.search(q, 5)
    assert batched[7:14] == batched[:7]


def test_lsa_embedder_shapes_and_norms(catalog):
    items = catalog.items[:800]
    emb = LsaEmbedder.fit_catalog(items, dim=32)
    v = emb.embed(["Berserk", "ベルセルク", "", "Kentarou Miura"])
    assert v.shape == (4, 32) and v.dtype == np.float32
    norms = np.linalg.norm(v, axis=1)
    assert np.allclose(norms[[0, 1, 3]], 1.0, atol=1e-5)
    assert norms[2] == 0.0
    # the same title's names are closer to each other than to an unrelated title
    a, b, c = emb.embed(["Shingeki no Kyojin", "Shingeki no Kyojin: Lost Girls", "Yotsuba to!"])
    assert a @ b > a @ c
