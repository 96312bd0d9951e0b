"""Japanese author names: the MADB join rule (scripts/build_authors_ja.py), the shipped file loaded into
CatalogItem.authors_ja, and the in-process search index finding titles by a Japanese author name."""

from __future__ import annotations

import gzip
import importlib.util
import sys
from pathlib import Path

import pytest

from core.domain import CatalogItem
from core.settings import PROJECT_ROOT
from tools.backends.catalog import DEFAULT_AUTHORS_JA, InMemoryCatalog, read_authors_ja
from tools.backends.query import LongestMatch
from tools.backends.search_index import segment_names

ONE_PIECE, SLAM_DUNK, VAGABOND = 13, 51, 656


def _load_builder():
    path = PROJECT_ROOT / "scripts" / "build_authors_ja.py"
    spec = importlib.util.spec_from_file_location("build_authors_ja", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


builder = _load_builder()


def item(mal_id: int, title_ja: str, authors: tuple[str, ...], media_type: str = "Manga") -> CatalogItem:
    return CatalogItem(
        mal_id=mal_id, title=f"t{mal_id}", title_en="", title_ja=title_ja, synonyms=(), authors=authors,
        genres=(), themes=(), demographic="", media_type=media_type, status="Finished", num_volumes=1,
        published="", members=100, score=0.0, synopsis="", price_jpy=500, stock=1,
    )


def madb(madb_id: str, title: str, creator: str, kana: str = "", original: str = "") -> builder.MadbRow:
    return builder.MadbRow.from_csv_row(
        {"madb_id": madb_id, "title_ja": title, "creator_ja": creator, "creator_kana": kana,
         "original_work_creator": original}
    )


# ---- text keys ----------------------------------------------------------------------------------------


def test_title_key_folds_width_case_spaces_and_punctuation():
    assert builder.title_key("ＯＮＥ　ＰＩＥＣＥ") == builder.title_key("one piece") == "onepiece"
    assert builder.title_key("ゴ・メ・ン・ネ　わがままで") == "ゴメンネわがままで"
    assert builder.title_key("魁!! クロマティ高校") == "魁クロマティ高校"
    assert builder.title_key("ラーメン") != builder.title_key("ラメン")  # the long-vowel mark is kept
    assert builder.title_key("!!") == builder.title_key(None) == ""


def test_split_creators_separators_roles_and_et_al():
    assert builder.split_creators("鳥山明　／　尾田栄一郎") == ("鳥山明", "尾田栄一郎")
    assert builder.split_creators("真島ヒロ/吉川美希") == ("真島ヒロ", "吉川美希")
    assert builder.split_creators("[文]梶原一騎") == ("梶原一騎",)
    assert builder.split_creators("スタジオ・ダイス [ストーリー]吉田伸") == ("スタジオ・ダイス", "吉田伸")
    assert builder.split_creators("竹若元博(バッファロー吾郎)") == ("竹若元博",)
    assert builder.split_creators("宮坂栄一　／　他") == ("宮坂栄一",)
    assert builder.split_creators("") == ()


def test_kana_to_romaji_and_keys():
    assert builder.kana_to_romaji("オダエイイチロウ") == "odaeiichirou"
    assert builder.kana_to_romaji("ハットリジョー") == "hattorijoo"
    assert builder.kana_to_romaji("マッチ") == "matchi"
    # both sides fold the same way, whatever the long-vowel spelling
    assert builder.romaji_key(builder.kana_to_romaji("イノウエタケヒコ")) in builder.author_keys("Takehiko Inoue")
    assert builder.romaji_key("Tsugumi Ohba") == builder.romaji_key(builder.kana_to_romaji("ツグミオオバ"))
    assert builder.author_keys("Ai Yazawa") == {builder.romaji_key("aiyazawa"), builder.romaji_key("yazawaai")}


def test_cross_check_outcomes():
    assert builder.cross_check(["Eiichiro Oda"], ["オダエイイチロウ"]) == "agree"
    assert builder.cross_check(["Akira Toriyama", "Eiichiro Oda"], ["トリヤマアキラオダエイイチロウ"]) == "agree"
    assert builder.cross_check(["Tite Kubo"], ["クボタイト"]) == "near"  # pen-name spelling
    assert builder.cross_check(["Hinako Ashihara"], ["イシカワマミ"]) == "disagree"
    assert builder.cross_check(["Osamu Tezuka"], [""]) == "unchecked"
    assert builder.cross_check([], ["ツノマル"]) == "unchecked"
    assert builder.cross_check(["ONE"], ["ＯＮＥ"]) == "agree"  # a short name must equal the reading


# ---- the join -----------------------------------------------------------------------------------------


def test_join_matches_normalised_title_and_checks_the_reading():
    items = [item(1, "ＯＮＥ　ＰＩＥＣＥ", ("Eiichiro Oda",)), item(2, "SOS", ("Hinako Ashihara",))]
    rows = [
        madb("C1", "ONE PIECE", "尾田栄一郎", "オダエイイチロウ"),
        madb("C2", "one piece", "尾田栄一郎", "オダエイイチロウ"),
        madb("C3", "SOS", "石川真未", "イシカワマミ"),  # same title, another work: dropped
    ]
    res = builder.join(items, rows)
    assert [(m.mal_id, m.authors_ja, m.madb_ids, m.check) for m in res.matches] == [
        (1, ("尾田栄一郎",), ("C1", "C2"), "agree")
    ]
    assert [(m.mal_id, m.check) for m in res.dropped] == [(2, "disagree")]
    assert res.counts["one_to_one"] == 2 and res.counts["kept"] == 1


def test_join_skips_ambiguous_titles_unless_one_pairing_agrees_both_ways():
    items = [
        item(1, "クローバー", ("Tetsuhiro Hirakawa",)),
        item(2, "クローバー", ("Toriko Chiya",)),
        item(3, "ボーイフレンド", ("Daisy Yamada",)),
        item(4, "ボーイフレンド", ("Fuyumi Souryo",)),
        item(5, "餓狼伝", ("Baku Yumemakura",)),
        item(6, "餓狼伝", ("Baku Yumemakura",)),
    ]
    rows = [
        madb("C1", "クローバー", "平川哲弘", "ヒラカワテツヒロ"),
        madb("C2", "ボーイフレンド", "たかだ功", "タカダイサオ"),
        madb("C3", "ボーイフレンド", "森田ゆき", "モリタユキ"),
        madb("C4", "餓狼伝", "夢枕貘", "ユメマクラバク"),
    ]
    res = builder.join(items, rows)
    # クローバー: one set agrees with exactly one item; ボーイフレンド: nothing agrees; 餓狼伝: agrees with both
    assert [m.mal_id for m in res.matches] == [1]
    assert res.counts["ambiguous"] == 6
    assert res.counts["ambiguous_resolved"] == 1 and res.counts["ambiguous_skipped"] == 5
    assert builder.join(items, rows, resolve_ambiguous=False).matches == []


def test_join_skips_manhwa_unchecked_and_propagates_verified_names():
    items = [
        item(1, "SLAM DUNK", ("Takehiko Inoue",)),
        item(2, "バガボンド", ("Takehiko Inoue", "Eiji Yoshikawa")),  # not in MADB
        item(3, "나 혼자만 레벨업", ("Chugong",), media_type="Manhwa"),
        item(4, "ジャングル大帝", ("Osamu Tezuka",)),
    ]
    rows = [
        madb("C1", "SLAM DUNK", "井上雄彦", "イノウエタケヒコ"),
        madb("C2", "나 혼자만 레벨업", "추공", ""),
        madb("C3", "ジャングル大帝", "手塚治虫", ""),  # no reading: cannot be checked
    ]
    res = builder.join(items, rows)
    assert [(m.mal_id, m.authors_ja, m.check) for m in res.matches] == [
        (1, ("井上雄彦",), "agree"),
        (2, ("井上雄彦",), "author"),
    ]
    assert [m.mal_id for m in builder.join(items, rows, propagate=False).matches] == [1]
    assert 4 in [m.mal_id for m in builder.join(items, rows, keep_unchecked=True).matches]


def test_write_matches_is_byte_reproducible_and_loads_back(tmp_path: Path):
    matches = [builder.Match(13, ("尾田栄一郎",), ("C87818",), "agree"), builder.Match(21, ("小畑健", "大場つぐみ"), ("C1",), "agree")]
    a, b = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz"
    builder.write_matches(a, matches)
    builder.write_matches(b, matches)
    assert a.read_bytes() == b.read_bytes()
    assert gzip.decompress(a.read_bytes()).decode().splitlines()[0] == "mal_id,authors_ja,madb_ids,check"
    assert read_authors_ja(a) == {13: ("尾田栄一郎",), 21: ("小畑健", "大場つぐみ")}
    assert read_authors_ja(tmp_path / "missing.csv.gz") == {}


# ---- the shipped data and the search index ------------------------------------------------------------


def test_shipped_catalog_has_japanese_authors(catalog):
    assert DEFAULT_AUTHORS_JA.exists()
    assert catalog.get(ONE_PIECE).authors_ja == ("尾田栄一郎",)
    assert catalog.get(SLAM_DUNK).authors_ja == ("井上雄彦",)
    assert "井上雄彦" in catalog.get(VAGABOND).authors_ja
    shipped = {m: names for m, names in read_authors_ja(DEFAULT_AUTHORS_JA).items() if names}
    with_names = {it.mal_id: it.authors_ja for it in catalog if it.authors_ja}
    assert with_names == {m: names for m, names in shipped.items() if catalog.get(m) is not None}  # every row, as shipped
    assert len(with_names) == 1911  # the shipped file's catalog titles with names (a rebuild updates this)
    # without the file the field stays empty and nothing else changes
    bare = InMemoryCatalog.from_csv(limit=50, authors_ja_path=None)
    assert all(it.authors_ja == () for it in bare)
    assert [it.authors for it in bare] == [it.authors for it in catalog.items[:50]]


def test_segment_names_cuts_known_names_out_of_japanese_text():
    names = LongestMatch({"尾田栄一郎": "尾田栄一郎", "井上雄彦": "井上雄彦"})
    assert segment_names("尾田栄一郎ノ漫画アリマスカ", names) == ["尾田栄一郎"]
    assert segment_names("尾田 栄一郎", names) == ["尾田栄一郎"]
    assert segment_names("井上雄彦 vagabond", names) == ["井上雄彦", "vagabond"]
    assert segment_names("鬼滅ノ刃", names) is None


@pytest.mark.parametrize(
    "query", ["尾田栄一郎", "尾田栄一郎の漫画ありますか", "尾田 栄一郎", "Eiichiro Oda"]
)
def test_index_finds_one_piece_by_its_authors_japanese_name(index, query):
    assert index.search(query, 10)[0].mal_id == ONE_PIECE


def test_index_finds_inoue_titles_by_japanese_name(index):
    top = [h.mal_id for h in index.search("井上雄彦の本を探しています", 5)]
    assert SLAM_DUNK in top and VAGABOND in top


def test_japanese_title_queries_still_rank_the_title_first(index):
    assert index.search("ONE PIECE", 1)[0].mal_id == ONE_PIECE
    assert index.search("バガボンド", 1)[0].mal_id == VAGABOND
