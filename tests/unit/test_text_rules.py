"""Local-profile text rules (English and Japanese)."""

import pytest

from core.lang import detect_locale, parse_confirmation
from tools.backends.models.text_rules import (
    clean_search_query,
    find_order_id,
    is_backreference,
    liked_titles,
    order_action,
    referenced_index,
    split_clauses,
)


@pytest.mark.parametrize("text,query", [
    ("Do you have One Piece vol 3?", "One Piece vol 3"),
    ("who wrote Berserk?", "Berserk"),
    ("Tell me about Monster", "Monster"),
    ("ワンピースの3巻はありますか？", "ワンピースの3巻"),
    ("鬼滅の刃ありますか", "鬼滅の刃"),
    ("Vinland Saga", "Vinland Saga"),
])
def test_clean_search_query(text, query):
    assert clean_search_query(text) == query


def test_references_and_order_ids():
    assert referenced_index("what about the second one?") == 1
    assert referenced_index("2つ目の詳細は？") == 1
    assert referenced_index("最後のは？") == -1
    assert referenced_index("一番上の") == 0 and referenced_index("一番上のやつの作者は？") == 0  # the top of the list
    assert referenced_index("一番下のは？") == -1 and referenced_index("一番最後のは？") == -1
    assert referenced_index("一番人気の漫画は？") is None  # "most popular", not a position
    assert referenced_index("hello there") is None
    assert is_backreference("yes, cancel it")
    assert not is_backreference("Do you have Berserk?")
    assert find_order_id("cancel ma-10002 please") == "MA-10002"
    assert find_order_id("no id here") is None


@pytest.mark.parametrize("text,action", [
    ("please cancel MA-10001", "cancel"), ("注文をキャンセルしたい", "cancel"),
    ("I want to return my order", "return"), ("返品したいです", "return"),
    ("where is my order?", "status"), ("track my refund", "status"),
])
def test_order_action(text, action):
    assert order_action(text) == action


def test_liked_titles_and_clauses():
    assert liked_titles("I liked Berserk and Vagabond, what next?") == ["Berserk", "Vagabond"]
    assert liked_titles("ベルセルクみたいな漫画") == ["ベルセルク"]
    assert liked_titles("Monster と Pluto みたいな漫画ある？") == ["Monster", "Pluto"]  # two seeds, as "X and Y"
    assert liked_titles("MonsterとPlutoみたいな") == ["Monster", "Pluto"]
    assert liked_titles("となりの怪物くんみたいな") == ["となりの怪物くん"]  # a と inside a Japanese title stays
    assert split_clauses("Do you have Naruto vol 1? Also where is my order MA-10002") == [
        "Do you have Naruto vol 1", "where is my order MA-10002"]
    assert split_clauses("ワンピースの1巻ありますか。それと送料はいくらですか") == ["ワンピースの1巻ありますか", "送料はいくらですか"]


def test_locale_and_confirmation():
    assert detect_locale("ワンピースありますか") == "ja"
    assert detect_locale("Do you have ONE PIECE?") == "en"
    for yes in ("yes", "Yes, cancel it", "はい", "お願いします", "ok!", True, "確定で", "確定します", "大丈夫です、お願いします",
                "キャンセルでお願いします", "それでお願いします"):
        assert parse_confirmation(yes) is True
    for no in ("no", "いいえ", "nope", "やめてください", False, "hmm wait actually no, keep the order", "um, no thanks",
               "wait, don't", "うーん、やっぱりやめます"):
        assert parse_confirmation(no) is False
    assert parse_confirmation("maybe later") is None
    assert parse_confirmation("okinawa") is None and parse_confirmation("はいりますか") is None
    assert parse_confirmation(None) is None


def test_an_order_id_written_against_japanese_text_is_found():
    from tools.backends.models.text_rules import find_order_id

    assert find_order_id("MA-10008をキャンセルして") == "MA-10008"
    assert find_order_id("注文MA-10008の状況は？") == "MA-10008"
    assert find_order_id("cancel ma 10008 please") == "MA-10008"
    assert find_order_id("call 0120-123456") is None and find_order_id("ISBN9784088") is None


@pytest.mark.parametrize("text,expected", [("今回はやめます", False), ("not now, no", False), ("ちょっと待って、いいえ", False),
                                           ("今はいいです", None), ("not nowhere", None)])
def test_declining_a_checkout_in_other_words(text, expected):
    assert parse_confirmation(text) is expected


@pytest.mark.parametrize("text,words", [
    ("やっぱり2冊にして", ""), ("数量を2冊にしてください", ""), ("いまのカートはどうなってる？", "はどうなってる"),
    ("stick volume 2 in my basket", ""), ("put 2 copies of monster in my cart", "monster"),
    ("進撃の巨人の1巻をカートに入れて", "進撃の巨人"),
])
def test_cart_title_words_leave_only_what_could_be_a_title(text, words):
    from tools.backends.models.text_rules import cart_title_words

    assert cart_title_words(text) == words


@pytest.mark.parametrize("text,action", [
    ("2 copies of it, not 1", "update_cart_item"), ("bump it up to 2 copies", "update_cart_item"),
    ("やっぱり2冊にして", "update_cart_item"), ("いまのカートはどうなってる？", "view_cart"), ("レジへお願いします", "checkout"),
    ("empty my cart", "empty_cart"), ("add 2 copies of Monster", "add_to_cart"), ("stick volume 2 in my basket", "view_cart"),
])
async def test_cart_policy_picks_the_tool_a_request_asks_for(text, action):
    from tools.backends.models.local_agents import CartPolicy

    msg = await CartPolicy().athink({"request": text, "focus": {}}, [], None)
    assert [c["name"] for c in msg.tool_calls] == [action]
