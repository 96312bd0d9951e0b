"""The catalog-evidence rule of the classify node (nodes/scope.py): a lone "search" that names no title or author
and has no store cue is out of scope; everything else keeps the router's decision."""

from __future__ import annotations

import pytest

from nodes.scope import cart_clauses, cart_scope, catalog_scope, has_store_cue

NOTHING = {"has_entity": False}
ENTITY = {"has_entity": True}


@pytest.mark.parametrize("text", ["how many moons does Jupiter have?", "tell me who the president of France is",
                                  "日本の首相は誰？"])
def test_a_general_question_routed_to_search_is_out_of_scope(text):
    assert catalog_scope(["search"], NOTHING, text) == ["out_of_scope"]


@pytest.mark.parametrize("text", ["any dark fantasy manga?", "do you have something with vampires", "volume 3 please",
                                  "恋愛ものを探して", "3巻はありますか", "在庫ある？", "how much is it"])
def test_a_store_cue_keeps_search(text):
    assert has_store_cue(text)
    assert catalog_scope(["search"], NOTHING, text) == ["search"]


def test_a_named_entity_keeps_search_and_other_decisions_are_untouched():
    assert catalog_scope(["search"], ENTITY, "Jupiter?") == ["search"]
    assert catalog_scope(["recommend"], NOTHING, "how many moons does Jupiter have?") == ["recommend"]
    assert catalog_scope(["search", "order"], NOTHING, "Jupiter and my order") == ["search", "order"]


def test_a_counting_question_is_no_store_cue():
    assert not has_store_cue("月はいくつありますか")


def test_an_author_request_without_a_suggestion_cue_is_a_search():
    author = {"has_entity": True, "author": "Inio Asano"}
    assert catalog_scope(["recommend"], author, "浅野いにおの漫画ある？") == ["search"]
    assert catalog_scope(["recommend"], author, "浅野いにおみたいな漫画") == ["recommend"]
    assert catalog_scope(["recommend"], ENTITY, "something for tonight") == ["recommend"]


NAMED = {"has_entity": False, "named_titles": ["when will ayumu make his move"]}


def test_a_named_title_turns_small_talk_into_the_catalog_request_it_is():
    assert catalog_scope(["out_of_scope"], NAMED, "got anything in the vein of When Will Ayumu Make His Move?") == ["recommend"]
    assert catalog_scope(["out_of_scope"], NAMED, "would you happen to have When Will Ayumu Make His Move?") == ["search"]
    assert catalog_scope(["chitchat"], NAMED, "is When Will Ayumu Make His Move finished?") == ["search"]
    assert catalog_scope(["search"], NAMED, "more in the vein of When Will Ayumu Make His Move") == ["recommend"]
    assert catalog_scope(["out_of_scope"], NAMED, "When Will Ayumu Make His Move, said my friend") == ["out_of_scope"]


def test_a_policy_topic_the_router_calls_out_of_scope_is_a_policy_question():
    assert catalog_scope(["out_of_scope"], NOTHING, "will LINE Pay work for paying?") == ["faq"]
    assert catalog_scope(["out_of_scope"], NOTHING, "can I use my points?") == ["faq"]
    assert catalog_scope(["out_of_scope"], NOTHING, "do I earn points when I order?") == ["faq"]
    assert catalog_scope(["out_of_scope"], NOTHING, "what's the boiling point of water in fahrenheit?") == ["out_of_scope"]
    assert catalog_scope(["out_of_scope"], NOTHING, "what's the point of life?") == ["out_of_scope"]
    assert catalog_scope(["out_of_scope"], NOTHING, "コンビニ払いはできますか") == ["faq"]
    assert catalog_scope(["out_of_scope"], NOTHING, "what's the capital of Australia?") == ["out_of_scope"]


@pytest.mark.parametrize("text", ["ナイジェリア在住ですが注文できますか", "can I order from Kenya?", "I live in Germany, can I order?"])
def test_an_order_question_naming_a_country_is_a_policy_question(text):
    assert catalog_scope(["order"], {"has_entity": False}, text) == ["faq"]
    assert catalog_scope(["order"], {"has_entity": False}, "where is order MA-12345678? I'm in Germany") == ["order"]


@pytest.mark.parametrize("intent,text", [("search", "cancel the One Piece one"), ("chitchat", "cancel it please"),
                                         ("out_of_scope", "where's my stuff?"), ("search", "return the Berserk one"),
                                         ("chitchat", "ワンピースの注文をキャンセルして"),
                                         ("out_of_scope", "頼んだ本はどうなりましたか"), ("out_of_scope", "注文した漫画まだ？"),
                                         ("search", "進撃の巨人を頼んだやつ、どうなってる？"),
                                         ("out_of_scope", "what happened to the books I ordered?"),
                                         ("search", "where's the package with my death note volume"),
                                         ("search", "my hunter x hunter order, did it get delivered?"),
                                         ("search", "進撃の巨人の23巻、2冊頼んだんですがいつ着きます？"),
                                         ("search", "聲の形とMONSTERをまとめて頼んだ注文があると思うんですが")])
def test_an_order_action_or_my_parcel_is_an_order_whatever_the_router_said(intent, text):
    assert catalog_scope([intent], {"has_entity": True}, text) == ["order"]


def test_a_title_returning_from_hiatus_is_no_order():
    assert catalog_scope(["search"], {"has_entity": True}, "when does Hunter x Hunter return from hiatus?") == ["search"]


@pytest.mark.parametrize("text", ["返品の送料は？", "how do I cancel an order?", "what's the fee to return the manga?"])
def test_how_an_order_action_works_is_not_an_order_request(text):
    assert catalog_scope(["search"], {"has_entity": False}, text) != ["order"]


@pytest.mark.parametrize("text", ["サンキュー", "thx!", "ありがとうございます！", "thank you so much"])
def test_a_lone_thanks_is_small_talk(text):
    assert catalog_scope(["out_of_scope"], NOTHING, text) == ["chitchat"]
    assert catalog_scope(["out_of_scope"], NOTHING, "thanks, but who won the 2018 world cup?") == ["out_of_scope"]


@pytest.mark.parametrize("intents,text,last,expected", [
    (["order", "cart"], "注文200108729340はいつ届きますか、あとそれの在庫があるか確認して", None, ["order", "search"]),
    (["search", "cart"], "is Berserk in stock? and check it", None, ["search"]),
    (["cart"], "show me my cart", None, ["cart"]),
    (["cart"], "Tracceの39巻を1冊追加で", None, ["cart"]),
    (["cart"], "I would like to purchase some products", None, ["cart"]),
    (["cart"], "レジに進んで", None, ["cart"]),
    (["cart"], "make it 3", "cart", ["cart"]),
    (["cart"], "make it 3", "search", ["search"]),
    (["recommend", "faq"], "anything like Monster? and do you take PayPal?", None, ["recommend", "faq"]),
])
def test_a_cart_intent_needs_a_cart_cue_in_the_message(intents, text, last, expected):
    assert cart_scope(intents, text, last) == expected


@pytest.mark.parametrize("text,clauses", [
    ("会計をお願いします。また、送料はいくらですか", ["会計をお願いします"]),
    ("Tracceの39巻を1冊追加で。それと担当者と直接話せますか", ["Tracceの39巻を1冊追加で"]),
    ("is Apple Pay supported at checkout?, plus where is my order?", []),
    ("注文していないハイキュー!!が届いたんですが、あとビットコインの今の価格は？", []),
    ("check out please", []),  # one clause: the follow-up rules decide
])
def test_cart_clauses_of_a_several_clause_message(text, clauses):
    assert cart_clauses(text) == clauses


@pytest.mark.parametrize("text", ["i need to do cleaning so add it to my to do list", "the song that's on, add it to my playlist"])
def test_adding_to_something_else_is_no_cart_turn(text):
    from nodes.dialogue import resolve_followup

    focus = {"item": {"mal_id": 2, "title": "Berserk", "turn": 1, "source": "search"}, "items": [2], "kind": "item"}
    res = resolve_followup(text, focus, None)
    assert res is None or res.intent != "cart"
