"""Katakana loanwords matched to Latin-script titles by sound (tools/backends/phonetic.py) and in the hybrid index."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from rapidfuzz import fuzz

from tools.backends.catalog import load_catalog
from tools.backends.phonetic import PhoneticMatcher, english_key, katakana_key, latin_key
from tools.backends.search_index import FusionWeights, HybridIndex

DEATH_NOTE, BLEACH, CHAINSAW_MAN, KIICHI, HUNTER_X_HUNTER = 21, 12, 116778, 3064, 26


@pytest.mark.parametrize("katakana, latin", [
    ("ベルセルク", "Berserk"),          # the inserted vowels go: beruseruku → berserk
    ("ブリーチ", "Bleach"),             # l → r, ea → i, the vowel after chi goes
    ("ヴァガボンド", "Vagabond"),       # ヴァ is va; v → b on both sides
    ("スター", "Star"),                 # ター is "tar"
])
def test_keys_of_a_loanword_and_its_original_are_close(katakana, latin):
    k, e = katakana_key(katakana), latin_key(latin)
    assert fuzz.ratio(k, e) >= 80, (k, e)
    assert fuzz.ratio(k, latin_key("Monster")) < 60


@pytest.mark.parametrize("katakana, latin", [
    ("ワンピース", "One Piece"),        # an irregular word: "one" is "wan"
    ("ハンターハンター", "Hunter x Hunter"),  # u before two consonants is "a"; a final er is a long "a"
    ("ラブレター", "Love Letter"),
    ("ナイト", "Knight"),               # silent k, igh
    ("ガール", "Girl"),
    ("オレンジ", "Orange"),             # soft g
    ("ライフ", "Life"),                 # i-consonant-e
    ("トウキョウ", "Tokyo"),            # a long o written with ウ
])
def test_the_english_reading_brings_irregular_spellings_close(katakana, latin):
    k = katakana_key(katakana).replace(" ", "")
    english = fuzz.ratio(k, english_key(latin).replace(" ", ""))
    assert english >= 70 and english >= fuzz.ratio(k, latin_key(latin).replace(" ", "")), (k, english_key(latin))
    assert fuzz.ratio(k, english_key("Monster")) < 60


def test_keys_fold_width_punctuation_and_separators():
    assert katakana_key("ﾍﾞﾙｾﾙｸ") == katakana_key("ベルセルク")  # half-width kana after NFKC
    assert latin_key("Hunter x Hunter") == latin_key("hunter hunter")
    assert latin_key("DEATH NOTE!") == latin_key("death note")


def test_the_matcher_ranks_the_original_first_and_scores_in_0_1():
    forms = [["Death Note"], ["Bleach"], ["Deadman Wonderland"], ["Note"], []]
    m = PhoneticMatcher(forms)
    s = m.scores([["デスノート"], ["ブリーチ"], [], ["ワワワワ"]])
    assert s.shape == (4, 5) and s.dtype == np.float32
    assert 0.0 <= s.min() and s.max() <= 1.0
    assert int(np.argmax(s[0])) == 0 and int(np.argmax(s[1])) == 1
    assert not s[2].any() and not s[:, 4].any()  # no run, or no Latin form: no score
    assert s[3].max() < 0.5  # a nonsense spelling stays below the bar
    with pytest.raises(ValueError):
        PhoneticMatcher(forms, floor=1.0)


@pytest.fixture(scope="module")
def catalog_items():
    return load_catalog().items


@pytest.fixture(scope="module")
def indexes(catalog_items):
    """The full catalog, lexical (no sentence encoder), with and without the phonetic matcher."""
    return HybridIndex(catalog_items), HybridIndex(catalog_items, FusionWeights(phonetic=0.0))


def test_katakana_spellings_of_latin_only_titles_are_found(indexes):
    phonetic, plain = indexes
    for q, want in (("デスノート", DEATH_NOTE), ("チェンソーマン", CHAINSAW_MAN), ("ブリーチ", BLEACH),
                    ("ハンターハンター", HUNTER_X_HUNTER)):
        assert phonetic.search(q, 5)[0].mal_id == want
        assert want not in [h.mal_id for h in plain.search(q, 1)]
    hits = phonetic.search("デスノート 2巻", 5)
    assert hits[0].mal_id == DEATH_NOTE and hits[0].volume == 2


def test_katakana_inside_a_catalog_title_is_not_read_as_a_loanword(indexes):
    """キーチ is the catalog's own katakana title (Kiichi!!): the phonetic channel stays off for it, so the ranking
    is the plain index's; a fragment of a katakana title likewise."""
    phonetic, plain = indexes
    f = phonetic.field_scores(["キーチ", "デスノート"])
    assert f["verbatim"].tolist() == [True, False]
    assert not f["phonetic"][0].any() and f["phonetic"][1].max() > 0.5
    for q in ("キーチ", "ルセル"):
        assert [h.mal_id for h in phonetic.search(q, 5)] == [h.mal_id for h in plain.search(q, 5)]
    assert phonetic.search("キーチ", 1)[0].mal_id == KIICHI


def test_latin_and_kanji_queries_are_unchanged(indexes):
    phonetic, plain = indexes
    qs = ["death note", "Bleach vol 3", "進撃の巨人", "尾田栄一郎", "最新刊のブリーチはありますか"]
    a, b = phonetic.search_many(qs, 10), plain.search_many(qs, 10)
    assert [[h.mal_id for h in x] for x in a] == [[h.mal_id for h in x] for x in b]
    same = dataclasses.replace(phonetic.weights, phonetic=0.0)
    f = phonetic.field_scores(["death note"])
    assert np.array_equal(phonetic.fuse(f), phonetic.fuse(f, same))


def test_loanword_runs_are_the_whole_query_or_the_katakana_opening_a_request():
    from tools.backends.search_index import loanword_runs

    assert loanword_runs("デスノート") == ["デスノート"]
    assert loanword_runs("デスノートって何巻まで出てる？") == ["デスノート"]
    assert loanword_runs("ﾁｪﾝｿｰﾏﾝの最新刊") == ["チェンソーマン"]
    assert loanword_runs("届いた本のカバーが破れていました") == []  # a loanword inside a sentence is not a title
    assert loanword_runs("進撃の巨人") == [] and loanword_runs("death note") == [] and loanword_runs("マギの") == []
    # a spaced katakana title, and one followed by kanji rather than a particle
    assert loanword_runs("ゴッド チャイルドの愛蔵版") == ["ゴッド チャイルド"]
    assert loanword_runs("キス ハツピネス キスのジャンルは何") == ["キス ハツピネス キス"]
    assert loanword_runs("デッドマン・ワンダーランド全巻セット") == ["デッドマン・ワンダーランド"]
    assert loanword_runs("デスノート 3巻") == ["デスノート"]


def test_a_loanword_opening_a_japanese_request_is_found(indexes):
    phonetic, plain = indexes
    for q, want in (("デスノートって何巻まで出てる", DEATH_NOTE), ("チェンソーマンの最新刊", CHAINSAW_MAN)):
        assert phonetic.search(q, 5)[0].mal_id == want
        assert want not in [h.mal_id for h in plain.search(q, 1)]
