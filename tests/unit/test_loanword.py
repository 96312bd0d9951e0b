"""Katakana loanword queries (ブリーチ) matched to Latin-script catalog titles (BLEACH) by the LoanwordMatcher."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest

from core.settings import get_settings
from tools.backends.catalog import load_catalog
from tools.backends.factory import shared_index
from tools.backends.models.encoder import SentenceEncoder
from tools.backends.search_index import FusionWeights, HybridIndex, LoanwordMatcher, katakana_runs

BLEACH, SLAM_DUNK, BERSERK, KIICHI = 12, 51, 2, 3064
NO_PHONETIC = FusionWeights(phonetic=0.0)  # the sentence-encoder matcher alone (tests/unit/test_phonetic.py has the other)


def test_katakana_runs():
    assert katakana_runs("ブリーチ") == ["ブリーチ"]
    assert katakana_runs("ﾌﾞﾘｰﾁ") == ["ブリーチ"]  # half-width kana after NFKC
    assert katakana_runs("ブリーチの3巻ありますか") == ["ブリーチ"]
    assert katakana_runs("ヴィンランド・サガ") == ["ヴィンランド・サガ"]
    assert katakana_runs("スラム ダンク") == ["スラム ダンク"]
    assert katakana_runs("bleach") == [] and katakana_runs("進撃の巨人") == [] and katakana_runs("マギ") == []


@pytest.fixture(scope="module")
def items():
    """The 600 most popular shipped titles (BLEACH and SLAM DUNK have no katakana title in the catalog)."""
    cat = load_catalog()
    top = sorted(cat.items, key=lambda it: -it.members)[:600]
    assert {BLEACH, SLAM_DUNK} <= {it.mal_id for it in top}
    return top


@pytest.fixture(scope="module")
def matcher(items):
    return LoanwordMatcher(items, SentenceEncoder())


def _top(index: HybridIndex, q: str) -> int | None:
    hits = index.search(q, 5)
    return hits[0].mal_id if hits else None


def test_a_katakana_spelling_finds_the_latin_title_only_with_the_matcher(items, matcher):
    lexical, hybrid = HybridIndex(items, NO_PHONETIC), HybridIndex(items, NO_PHONETIC, loanwords=matcher)
    for q, want in (("ブリーチ", BLEACH), ("スラムダンク", SLAM_DUNK)):
        assert _top(lexical, q) != want
        assert _top(hybrid, q) == want
    hits = hybrid.search("ブリーチの3巻ありますか", 5)
    assert hits[0].mal_id == BLEACH and hits[0].volume == 3


def test_a_partial_katakana_title_match_does_not_outrank_the_loanword(catalog):
    """On the agents' index (full catalog, matcher on): without katakana_coverage, "Kiichi!!" (キーチ!!, sharing
    ーチ with ブリーチ) comes first for ブリーチ; with it, BLEACH does. The IDF of a 600-title index differs too
    much from the full catalog's to show this there."""
    index = shared_index(catalog, get_settings().model_dir, "e5")
    ids = np.array([it.mal_id for it in index.items])
    f = index.field_scores(["ブリーチ", "キーチ"])
    uncovered = index.fuse(f, dataclasses.replace(index.weights, katakana_coverage=0.0, phonetic=0.0))
    assert ids[np.argmax(uncovered[0])] == KIICHI
    assert _top(index, "ブリーチ") == BLEACH
    assert _top(index, "キーチ") == KIICHI  # the catalog's own katakana title still wins
    assert _top(index, "ブリーチの3巻") == BLEACH  # "の" before the volume marker is dropped with it


def test_latin_and_katakana_catalog_titles_are_unchanged(items, matcher):
    lexical, hybrid = HybridIndex(items, NO_PHONETIC), HybridIndex(items, NO_PHONETIC, loanwords=matcher)
    assert not matcher.scores(["bleach", "進撃の巨人"]).any()  # no katakana run: no score, no encoder call
    for q in ("Bleach", "Slam Dunk", "ベルセルク"):
        assert [h.mal_id for h in hybrid.search(q, 5)][:1] == [h.mal_id for h in lexical.search(q, 5)][:1]
    assert _top(hybrid, "ベルセルク") == BERSERK


def test_scores_are_rescaled_cosines_and_survive_pickling(matcher):
    s = matcher.scores(["ブリーチ", "bleach"])
    assert s.shape == (2, 600) and s.dtype == np.float32
    assert 0.0 <= s.min() and s.max() <= 1.0 and s[0].max() > 0 and not s[1].any()
    again = pickle.loads(pickle.dumps(matcher))
    assert np.argmax(again.scores(["ブリーチ"])[0]) == np.argmax(s[0])
    assert np.allclose(again.scores(["ブリーチ"]), s[:1], atol=5e-3)
