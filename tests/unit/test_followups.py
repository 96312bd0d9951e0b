"""Follow-up rules (tools/backends/models/followups.py) and the classify helper that resolves a follow-up
against the dialogue state (nodes/dialogue.py): pure functions, no models."""

from __future__ import annotations

import pytest

from core.state import focus_reducer
from nodes.dialogue import FOCUS_MAX, focus_after_turn, resolve_followup
from tools.backends.models.followups import (
    fact_question,
    is_capability_question,
    order_question,
    parse_followup,
    subject_query,
)


@pytest.mark.parametrize("text,fact", [
    ("who is the author?", "author"), ("its author?", "author"), ("who drew it?", "author"),
    ("この作品の作者は誰ですか", "author"), ("作者は？", "author"),
    ("how many volumes?", "volumes"), ("何巻まで出ていますか", "volumes"),
    ("is it finished?", "status"), ("完結していますか", "status"),
    ("how much is it?", "price"), ("値段は？", "price"),
    ("is it in stock?", "stock"), ("在庫は？", "stock"),
    ("what is its English title?", "title_en"), ("日本語のタイトルは？", "title_ja"),
    ("what is it about?", "synopsis"), ("What is One Piece about?", "synopsis"), ("どんな話？", "synopsis"),
    ("what genre is it?", "genres"), ("ジャンルは？", "genres"),
    ("do you have Vagabond?", None), ("thanks!", None),
])
def test_fact_question(text, fact):
    assert fact_question(text) == fact


@pytest.mark.parametrize("text,q", [
    ("can I cancel it?", "can_cancel"), ("キャンセルできますか", "can_cancel"), ("cancel it", "cancel"),
    ("can I return it?", "can_return"), ("返品できますか", "can_return"),
    ("when will it arrive?", "arrival"), ("いつ届く？", "arrival"), ("what's the tracking number?", "tracking"),
    ("who is the author?", None),
])
def test_order_question(text, q):
    assert order_question(text) == q
    assert is_capability_question(text) == (q in ("can_cancel", "can_return"))


@pytest.mark.parametrize("text", [
    "who is the author?", "何巻まで出ていますか", "the most recent one", "一番新しいもの", "can I cancel it?",
    "キャンセルできますか", "いつ届く？", "在庫は？", "それは完結していますか", "この作品の作者は？", "the second one",
    "what about the second one?", "2つ目は？", "is it finished?", "tell me more about it", "its author?",
    "キャンセルして", "キャンセルしてください", "tell me more", "more info please", "何巻ある？", "その漫画について教えて",
    "もっと詳しく", "has it shipped?", "is it shipped yet?", "追跡番号は？", "発送されましたか", "who's the author?",
    "is the series complete?", "what does it cost?", "誰が書いたの？", "売り切れ？", "あらすじは？", "届くのはいつ？",
    "is volume 3 in stock?", "do you have volume 40?", "3巻はありますか",
])
def test_messages_without_their_own_entity_lean_on_context(text):
    f = parse_followup(text)
    assert f.leans_on_context and not f.names_subject, f


@pytest.mark.parametrize("text,subject", [
    ("who wrote Monster?", "Monster"), ("ベルセルクの作者は？", "ベルセルク"), ("who drew Vagabond?", "Vagabond"),
    ("how many volumes does Vagabond have?", "Vagabond"), ("バガボンドは何巻まで出ていますか", "バガボンド"),
    ("What is One Piece about?", "One Piece"), ("鋼の錬金術師の作者は誰ですか", "鋼の錬金術師"),
])
def test_named_subjects_are_not_follow_ups_and_give_the_query(text, subject):
    f = parse_followup(text)
    assert f.names_subject and not f.leans_on_context
    assert subject_query(text) == subject


@pytest.mark.parametrize("text", ["do you have Vagabond?", "ベルセルクはありますか", "how much is shipping?",
                                  "do you ship to Germany?", "tell me more about Berserk", "ワンピースについて教えて",
                                  "cancel MA-10003", "can I talk to a person about it?", "where is my order?"])
def test_messages_that_are_not_follow_ups(text):
    assert not parse_followup(text).leans_on_context


ITEMS = [{"mal_id": 656, "title": "Vagabond"}, {"mal_id": 355, "title": "Harlem Beat"}]
ORDERS = [{"order_id": "MA-10003", "status": "processing"}, {"order_id": "MA-10002", "status": "shipped"}]


def test_focus_after_a_search_list_focuses_the_top_item_and_keeps_the_list():
    f = focus_after_turn({}, [{"intent": "search", "items": ITEMS, "evidence": [{"kind": "search"}]}], turn=1,
                         message="do you have Vagabond?")
    assert f["items"] == [656, 355] and f["items_intent"] == "search"
    assert f["item"] == {"mal_id": 656, "title": "Vagabond", "turn": 1, "source": "search"}
    assert f["last_list"] == {"kind": "items", "turn": 1, "intent": "search"} and f["kind"] == "item"


def test_focus_after_details_keeps_the_list_shown_before():
    f0 = focus_after_turn({}, [{"intent": "search", "items": ITEMS, "evidence": [{"kind": "search"}]}], 1, "x")
    f1 = focus_after_turn(f0, [{"intent": "search", "items": ITEMS[1:], "evidence": [{"kind": "details"}]}], 2, "y")
    assert f1["items"] == [656, 355] and f1["item"]["mal_id"] == 355 and f1["item"]["source"] == "details"


def test_focus_after_an_order_list_and_one_order():
    f0 = focus_after_turn({"order_id": "MA-1"}, [{"intent": "order", "orders": ORDERS, "evidence": []}], 1, "orders?")
    assert f0["orders"] == ["MA-10003", "MA-10002"] and f0["last_list"]["kind"] == "orders"
    assert "order_id" not in f0 and f0["kind"] == "order"
    f1 = focus_after_turn(f0, [{"intent": "order", "orders": ORDERS[:1], "focus_order_id": "MA-10003",
                                "evidence": []}], 2, "the most recent one")
    assert f1["order_id"] == "MA-10003" and f1["order"] == {"order_id": "MA-10003", "status": "processing",
                                                            "turn": 2, "source": "order"}
    assert f1["orders"] == ["MA-10003", "MA-10002"]


def test_open_question_which_order():
    f = focus_after_turn({}, [{"intent": "order", "orders": ORDERS, "evidence": []}], 3, "I want to cancel my order")
    assert f["question"] == {"kind": "which_order", "action": "cancel", "turn": 3}
    g = focus_after_turn(f, [{"intent": "search", "items": ITEMS, "evidence": [{"kind": "search"}]}], 4, "x")
    assert "question" not in g


def test_focus_reducer_bounds_lists_and_deletes_none():
    merged = focus_reducer({"items": [1, 2], "order_id": "MA-1"}, {"items": list(range(10)), "order_id": None})
    assert merged == {"items": list(range(FOCUS_MAX))}
    assert focus_reducer(None, None) == {}


def test_resolve_item_follow_up_to_search_with_the_focused_item():
    focus = focus_after_turn({}, [{"intent": "search", "items": ITEMS, "evidence": [{"kind": "search"}]}], 1, "x")
    r = resolve_followup("who is the author?", focus)
    assert r.intent == "search" and r.referent == {"kind": "item", "mal_id": 656, "title": "Vagabond"}
    assert resolve_followup("the second one", focus).referent["mal_id"] == 355
    assert resolve_followup("who wrote Monster?", focus) is None
    assert resolve_followup("can I cancel it?", focus) is None  # no order in focus: the router decides


def test_resolve_order_follow_ups():
    focus = focus_after_turn({}, [{"intent": "order", "orders": ORDERS, "evidence": []}], 1, "where is my order?")
    r = resolve_followup("the most recent one", focus)
    assert r.intent == "order" and r.referent == {"kind": "order", "order_id": "MA-10003"}
    assert resolve_followup("the second one", focus).referent["order_id"] == "MA-10002"
    focus = focus_after_turn(focus, [{"intent": "order", "orders": ORDERS[1:], "focus_order_id": "MA-10002",
                                      "evidence": []}], 2, "the second one")
    for text in ("can I cancel it?", "キャンセルできますか", "いつ届く？", "when will it arrive?", "cancel it"):
        r = resolve_followup(text, focus)
        assert r.intent == "order" and r.referent["order_id"] == "MA-10002", text
    assert resolve_followup("what's the status?", focus).referent["order_id"] == "MA-10002"
    assert resolve_followup("who is the author?", focus) is None  # no item in focus
    assert resolve_followup("cancel MA-10003", focus) is None  # its own order id


def test_resolve_picks_the_newer_focus_for_a_bare_back_reference():
    focus = focus_after_turn({}, [{"intent": "search", "items": ITEMS, "evidence": [{"kind": "search"}]}], 1, "x")
    focus = focus_after_turn(focus, [{"intent": "order", "orders": ORDERS[:1], "focus_order_id": "MA-10003",
                                      "evidence": []}], 2, "y")
    assert resolve_followup("tell me more about it", focus).intent == "order"
    assert resolve_followup("who is the author?", focus).referent["mal_id"] == 656


QUESTIONS = {"author": ("who is the author?", "作者は？"), "volumes": ("how many volumes?", "何巻まで出ていますか"),
             "status": ("is it finished?", "完結していますか"), "price": ("how much is it?", "値段は？"),
             "stock": ("is it in stock?", "在庫は？"), "title_en": ("what is its English title?", "英語のタイトルは？"),
             "title_ja": ("what is its Japanese title?", "日本語のタイトルは？"), "genres": ("what genre is it?", "ジャンルは？")}


def test_direct_item_answers_are_one_sentence_and_pass_the_local_critic():
    from core.ports import WriteTask
    from tools.backends.catalog import load_catalog
    from tools.backends.models.local_critic import LocalCritic
    from tools.backends.models.templates import render

    catalog = load_catalog()
    critic = LocalCritic(catalog)
    rejected, n = [], 0
    for it in list(catalog.items)[::40]:
        view = {**it.summary(), "genres": list(it.genres), "synopsis": it.synopsis[:600]}
        for fact, (en, ja) in QUESTIONS.items():
            for locale, request in (("en", en), ("ja", ja)):
                ev = [{"kind": "details", "items": [view]}]
                answer = render(WriteTask(agent="search", intent="search", request=request, locale=locale, evidence=ev))
                n += 1
                assert "\n" not in answer and not answer.startswith("1. "), answer
                if not critic.check(answer, ev, locale).ok:
                    rejected.append((fact, locale, answer))
    assert n > 4000 and rejected == []


def test_direct_answer_states_the_asked_fact():
    from tools.backends.models.templates import direct_item_answer

    vagabond = {"mal_id": 656, "title": "Vagabond", "title_ja": "バガボンド", "authors": ["Takehiko Inoue", "Eiji Yoshikawa"],
                "authors_ja": ["井上雄彦"], "status": "On Hiatus", "num_volumes": 37, "price_jpy": 583, "in_stock": False}
    assert direct_item_answer(vagabond, "author", False) == "Vagabond (バガボンド) is by Takehiko Inoue and Eiji Yoshikawa."
    assert direct_item_answer(vagabond, "author", True) == "バガボンド（Vagabond）の作者は井上雄彦です。"
    assert "37 volumes" in direct_item_answer(vagabond, "volumes", False)
    assert "37巻まで" in direct_item_answer(vagabond, "volumes", True)
    assert "out of stock" in direct_item_answer(vagabond, "stock", False)


async def test_direct_order_answers_follow_the_repository_rules_and_pass_the_critic(tmp_path):
    from core.errors import OrderError
    from core.settings import Settings
    from tools.backends.models.local_critic import LocalCritic
    from tools.backends.models.templates import direct_order_answer
    from tools.backends.seed import open_orders_repository

    repo = await open_orders_repository(Settings(data_dir=tmp_path, database_url=None, redis_url=None))
    critic = LocalCritic()
    try:
        for user in await repo.demo_users():
            for order in await repo.list_orders(user["user_id"]):
                allowed = {}
                for action in ("cancel", "return"):
                    try:
                        repo.check_action(order, action)
                        allowed[action] = {"ok": True, "reason": ""}
                    except OrderError as exc:
                        allowed[action] = {"ok": False, "reason": str(exc)}
                ev = [{"kind": "orders", "orders": [order.to_dict()], "allowed": allowed}]
                for q in ("arrival", "tracking", "can_cancel", "can_return"):
                    for locale in ("en", "ja"):
                        answer = direct_order_answer(order.to_dict(), allowed, q, locale == "ja")
                        assert order.order_id in answer
                        assert critic.check(answer, ev, locale).ok, answer
                        if q == "can_cancel" and locale == "en":
                            assert answer.startswith("Yes" if order.status == "processing" else "No"), answer
    finally:
        await repo.close()


def test_a_volume_number_refers_to_the_work_in_focus():
    focus = focus_after_turn({}, [{"intent": "search", "items": ITEMS, "evidence": [{"kind": "search"}]}], 1, "x")
    assert parse_followup("3巻はありますか").volume == 3 and parse_followup("do you have volume 40?").volume == 40
    assert resolve_followup("3巻はありますか", focus).referent == {"kind": "item", "mal_id": 656, "title": "Vagabond"}
    assert resolve_followup("Naruto vol 3", focus) is None


@pytest.mark.parametrize("text", ["any others?", "anything else?", "more please", "他にもある？", "もっと教えて"])
def test_asking_for_more_leans_on_context(text):
    f = parse_followup(text)
    assert f.more and f.leans_on_context and not f.names_subject


RECS = [{"mal_id": 457, "title": "Mushishi"}, {"mal_id": 656, "title": "Vagabond"}]


def _rec_result(items, seeds=(), finished=False):
    return {"intent": "recommend", "items": items,
            "evidence": [{"kind": "recommend", "seeds": list(seeds), "finished_only": finished}]}


def test_recommendations_keep_the_seed_filters_and_every_pick_shown():
    f1 = focus_after_turn({}, [_rec_result(RECS[1:], seeds=[{"mal_id": 2, "title": "Berserk"}], finished=True)], 1,
                          "something like Berserk but finished")
    assert f1["seed"] == {"mal_id": 2, "title": "Berserk", "turn": 1} and f1["rec_filters"] == {"finished_only": True}
    assert f1["shown"] == [656]
    f2 = focus_after_turn(f1, [_rec_result(RECS[:1])], 2, "what should I read next?")
    assert "seed" not in f2 and "rec_filters" not in f2 and f2["shown"] == [457, 656]


def test_more_after_recommendations_goes_back_to_recommend():
    focus = focus_after_turn({}, [_rec_result(RECS, seeds=[{"mal_id": 2, "title": "Berserk"}])], 1, "like Berserk")
    r = resolve_followup("any others?", focus)
    assert r is not None and r.intent == "recommend" and r.referent is None
    search = focus_after_turn({}, [{"intent": "search", "items": ITEMS, "evidence": [{"kind": "search"}]}], 1, "x")
    assert resolve_followup("any others?", search) is None  # after a search list the router decides


def test_shown_is_capped_at_shown_max():
    from core.state import SHOWN_MAX

    f = focus_reducer({}, {"shown": list(range(100)), "items": list(range(100))})
    assert f["shown"] == list(range(SHOWN_MAX)) and len(f["items"]) == FOCUS_MAX


@pytest.mark.parametrize("text,fact", [
    ("what's the premise?", "synopsis"), ("give me a quick summary", "synopsis"), ("who's behind it?", "author"),
    ("is it done or still running?", "status"), ("is that one over already?", "status"),
    ("what's its name in Japan?", "title_ja"), ("how much would one volume be?", "price"),
    ("what's it going for?", "price"), ("do you have copies right now?", "stock"), ("what category is it?", "genres"),
    ("カテゴリーは何ですか", "genres"), ("何系の漫画？", "genres"), ("英語だと何ていうの？", "title_en"),
    ("すぐ買える？", "stock"), ("最終巻は出てますか", "status"), ("誰が描いてるの？", "author"),
    ("連載は続いてますか", "status"), ("まだ連載してる？", "status"),
    ("what sort of story is it, genre-wise?", "genres"),
])
def test_fact_questions_in_other_words(text, fact):
    assert fact_question(text) == fact


@pytest.mark.parametrize("text,q", [
    ("can that one still be cancelled?", "can_cancel"), ("could I call it off?", "can_cancel"),
    ("キャンセルって可能？", "can_cancel"), ("これ返せますか", "can_return"), ("how soon will it come?", "arrival"),
    ("when's it landing?", "arrival"), ("call it off, please", "cancel"),
    ("am I able to cancel that?", "can_cancel"), ("is cancelling an option?", "can_cancel"),
    ("is cancellation still possible?", "can_cancel"), ("これ取り消しできる？", "can_cancel"),
    ("注文をやめることはできる？", "can_cancel"), ("取り消せますか", "can_cancel"),
    ("what day will it be delivered?", "arrival"), ("問い合わせ番号を教えて", "tracking"),
    ("伝票番号わかる？", "tracking"),
    ("can you cancel it for me", "cancel"), ("could you cancel that order please", "cancel"),  # requests, politely
    ("too late to cancel it?", "can_cancel"), ("is it too late to cancel?", "can_cancel"),
])
def test_order_questions_in_other_words(text, q):
    assert order_question(text) == q


@pytest.mark.parametrize("text,index", [("tell me about #2", 1), ("number two", 1), ("the top one", 0),
                                        ("2番のを見せて", 1)])
def test_ordinals_in_other_words(text, index):
    assert parse_followup(text).ordinal == index


class _Linked:
    """The parts of entities.Linked that resolve_followup reads."""

    def __init__(self, has_entity=False, titles=(), named=()):
        self.has_entity, self.titles, self.named_titles = has_entity, list(titles), list(named)


def test_words_the_rules_leave_over_do_not_name_a_subject_when_the_linker_finds_none():
    focus = focus_after_turn({}, [{"intent": "search", "items": ITEMS, "evidence": [{"kind": "search"}]}], 1, "x")
    assert resolve_followup("what's the volume count?", focus) is None  # the rules alone: 'count' may be a title
    r = resolve_followup("what's the volume count?", focus, _Linked())
    assert r.intent == "search" and r.referent["mal_id"] == 656
    assert resolve_followup("それっていくらするの？", focus, _Linked()).referent["mal_id"] == 656
    assert resolve_followup("what's the volume count?", focus, _Linked(has_entity=True)) is None
    assert resolve_followup("another thing, is Reborn! complete?", focus, _Linked()) is None  # a name the linker lacks
    assert resolve_followup("any finished manga?", focus, _Linked()) is None  # titles in general


def test_an_order_named_by_a_title_it_holds_and_a_policy_follow_up():
    focus = focus_after_turn({}, [{"intent": "order", "orders": ORDERS, "evidence": []}], 1, "where is my order?")
    r = resolve_followup("the Death Note order", focus, _Linked(titles=["death note"], named=["death note"]))
    assert r.intent == "order" and r.referent == {"kind": "orders_with_title"}
    assert resolve_followup("the Death Note order", focus) is None  # without the linker: the router decides
    faq = focus_after_turn({}, [{"intent": "faq", "evidence": [{"kind": "policy"}]}], 2, "can I order from Sweden?")
    assert faq["last_intent"] == "faq"
    assert resolve_followup("what about South Korea?", faq).intent == "faq"
    assert resolve_followup("スウェーデンは？", faq).intent == "faq"
    assert resolve_followup("what about South Korea?", focus) is None
    assert resolve_followup("and Poland?", faq).intent == "faq"
    assert resolve_followup("ポーランドも大丈夫？", faq).intent == "faq"


@pytest.mark.parametrize("text", ["the one where I bought Death Note", "Death Noteを頼んだやつ",
                                  "the one I ordered Death Note in", "Death Noteを買ったやつです"])
def test_an_order_picked_by_a_title_the_customer_bought(text):
    focus = focus_after_turn({}, [{"intent": "order", "orders": ORDERS, "evidence": []}], 1, "where is my order?")
    r = resolve_followup(text, focus, _Linked(titles=["death note"], named=["death note"]))
    assert r is not None and r.intent == "order" and r.referent == {"kind": "orders_with_title"}
    items = focus_after_turn({}, [{"intent": "search", "items": ITEMS, "evidence": [{"kind": "search"}]}], 1, "x")
    assert resolve_followup(text, items, _Linked(titles=["death note"], named=["death note"])) is None  # no orders
