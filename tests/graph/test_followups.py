"""Multi-turn conversations on one thread (local profile, real models): follow-ups without their own entity
resolve against the dialogue state (``focus``) and go to the agent that owns it, and questions about a work or
an order are answered directly from the record. Each turn checks the agent, the focused/attached item or
order, and the fact stated."""

from __future__ import annotations

import pytest


async def _turn(assistant, text, thread, user="u_ben"):
    out = await assistant.turn(text, thread_id=thread, user_id=user)
    values = (await assistant.graph.aget_state(assistant.config(thread, user))).values
    return out, values.get("focus") or {}


async def test_vagabond_then_its_author_volumes_status_price(assistant, deps):
    rec = deps.catalog.get(656)
    out, focus = await _turn(assistant, "do you have Vagabond?", "fu-en-1")
    assert out["agents"] == ["search"] and out["items"][0]["mal_id"] == 656
    assert focus["item"]["mal_id"] == 656

    out, focus = await _turn(assistant, "who is the author?", "fu-en-1")
    assert out["agents"] == ["search"] and [i["mal_id"] for i in out["items"]] == [656]
    assert all(a in out["answer"] for a in rec.authors) and "Here is what I found" not in out["answer"]
    assert len(out["answer"].splitlines()) == 1

    out, _ = await _turn(assistant, "how many volumes?", "fu-en-1")
    assert [i["mal_id"] for i in out["items"]] == [656] and f"{rec.num_volumes} volumes" in out["answer"]

    out, _ = await _turn(assistant, "is it finished?", "fu-en-1")
    assert [i["mal_id"] for i in out["items"]] == [656] and "hiatus" in out["answer"]

    out, _ = await _turn(assistant, "do you have volume 40?", "fu-en-1")
    assert [i["mal_id"] for i in out["items"]] == [656] and "has 37 volumes, so there is no volume 40" in out["answer"]

    out, focus = await _turn(assistant, "how much is it?", "fu-en-1")
    assert f"¥{rec.price_jpy:,}" in out["answer"] and "out of stock" in out["answer"]
    assert focus["items"][0] == 656 and focus["item"]["turn"] == 6


async def test_berserk_in_japanese_then_volumes_author_stock(assistant, deps):
    out, focus = await _turn(assistant, "ベルセルクはありますか", "fu-ja-1")
    assert out["agents"] == ["search"] and out["items"][0]["mal_id"] == 2 and focus["item"]["mal_id"] == 2

    out, _ = await _turn(assistant, "何巻まで出ていますか", "fu-ja-1")
    assert out["agents"] == ["search"] and [i["mal_id"] for i in out["items"]] == [2]
    assert "ベルセルク" in out["answer"] and "連載中" in out["answer"] and "見つかった作品" not in out["answer"]

    out, _ = await _turn(assistant, "作者は？", "fu-ja-1")
    assert [i["mal_id"] for i in out["items"]] == [2] and "Kentarou Miura" in out["answer"]

    out, _ = await _turn(assistant, "在庫は？", "fu-ja-1")
    assert [i["mal_id"] for i in out["items"]] == [2] and "在庫あり" in out["answer"]

    out, _ = await _turn(assistant, "3巻はありますか", "fu-ja-1")
    assert [i["mal_id"] for i in out["items"]] == [2] and out["answer"].startswith("ベルセルク（Berserk） 3巻：¥748")


async def test_vagabond_in_japanese_volume_count_and_author(assistant, deps):
    rec = deps.catalog.get(656)
    out, _ = await _turn(assistant, "バガボンドはありますか", "fu-ja-2")
    assert out["items"][0]["mal_id"] == 656
    out, _ = await _turn(assistant, "何巻まで出ていますか", "fu-ja-2")
    assert [i["mal_id"] for i in out["items"]] == [656] and f"{rec.num_volumes}巻" in out["answer"]
    out, _ = await _turn(assistant, "この作品の作者は誰ですか", "fu-ja-2")
    assert [i["mal_id"] for i in out["items"]] == [656] and rec.authors_ja[0] in out["answer"]


async def test_orders_then_the_most_recent_one_then_can_i_cancel_it(assistant, deps, demo):
    newest = (await deps.orders.list_orders("u_ben"))[0]
    assert newest.status == "processing"
    out, focus = await _turn(assistant, "where is my order?", "fu-en-2")
    assert out["agents"] == ["order"] and len(out["orders"]) > 1 and focus["orders"][0] == newest.order_id

    out, focus = await _turn(assistant, "the most recent one", "fu-en-2")
    assert out["agents"] == ["order"] and [o["order_id"] for o in out["orders"]] == [newest.order_id]
    assert focus["order_id"] == newest.order_id

    out, _ = await _turn(assistant, "can I cancel it?", "fu-en-2")
    assert out["agents"] == ["order"] and out["interrupt"] is None
    assert newest.order_id in out["answer"] and out["answer"].startswith("Yes")
    assert (await deps.orders.get_order("u_ben", newest.order_id)).status == "processing"

    out, _ = await _turn(assistant, "when will it arrive?", "fu-en-2")
    assert out["agents"] == ["order"] and newest.order_id in out["answer"] and "not shipped yet" in out["answer"]

    out, _ = await _turn(assistant, "cancel it", "fu-en-2")
    assert out["interrupt"] and out["interrupt"]["action"] == "cancel" and out["interrupt"]["order_id"] == newest.order_id


async def test_second_order_is_shipped_arrival_and_cannot_cancel(assistant, deps):
    second = (await deps.orders.list_orders("u_ben"))[1]
    assert second.status == "shipped"
    await _turn(assistant, "show my orders", "fu-en-3")
    out, _ = await _turn(assistant, "the second one", "fu-en-3")
    assert [o["order_id"] for o in out["orders"]] == [second.order_id]
    out, _ = await _turn(assistant, "when will it arrive?", "fu-en-3")
    assert second.estimated_delivery[:10] in out["answer"] and second.tracking_number in out["answer"]
    out, _ = await _turn(assistant, "can I cancel it?", "fu-en-3")
    assert out["interrupt"] is None and out["answer"].startswith("No") and "shipped" in out["answer"]


async def test_orders_in_japanese_newest_cancel_question_and_arrival(assistant, deps):
    newest = (await deps.orders.list_orders("u_aiko"))[0]
    out, _ = await _turn(assistant, "注文はどこですか", "fu-ja-3", "u_aiko")
    assert out["agents"] == ["order"] and len(out["orders"]) > 1
    out, _ = await _turn(assistant, "一番新しいもの", "fu-ja-3", "u_aiko")
    assert out["agents"] == ["order"] and [o["order_id"] for o in out["orders"]] == [newest.order_id]
    out, _ = await _turn(assistant, "キャンセルできますか", "fu-ja-3", "u_aiko")
    assert out["agents"] == ["order"] and out["interrupt"] is None
    assert newest.order_id in out["answer"] and "キャンセルできます" in out["answer"]
    out, _ = await _turn(assistant, "いつ届く？", "fu-ja-3", "u_aiko")
    assert out["agents"] == ["order"] and newest.order_id in out["answer"] and "発送前" in out["answer"]
    out, _ = await _turn(assistant, "キャンセルして", "fu-ja-3", "u_aiko")
    assert out["interrupt"] and out["interrupt"]["order_id"] == newest.order_id and "キャンセルしますか" in out["answer"]
    assert (await deps.orders.get_order("u_aiko", newest.order_id)).status == "processing"


async def test_who_wrote_a_named_title_is_answered_directly(assistant, deps):
    out = await assistant.turn("who wrote Monster?", user_id="u_ben")
    assert out["agents"] == ["search"] and [i["mal_id"] for i in out["items"]] == [1]
    assert "Naoki Urasawa" in out["answer"] and "Here is what I found" not in out["answer"]
    out = await assistant.turn("ベルセルクの作者は？", user_id="u_ben")
    assert [i["mal_id"] for i in out["items"]] == [2] and "Kentarou Miura" in out["answer"]
    assert "作者" in out["answer"]
    out = await assistant.turn("who drew Vagabond?", user_id="u_ben")
    assert [i["mal_id"] for i in out["items"]] == [656] and "Takehiko Inoue" in out["answer"]


async def test_an_ordinal_moves_the_focus_and_later_questions_follow_it(assistant, deps):
    first, _ = await _turn(assistant, "manga by Takehiko Inoue", "fu-en-4")
    second = first["items"][1]
    out, focus = await _turn(assistant, "what about the second one?", "fu-en-4")
    assert [i["mal_id"] for i in out["items"]] == [second["mal_id"]] and focus["item"]["mal_id"] == second["mal_id"]
    assert focus["items"] == [i["mal_id"] for i in first["items"]]  # the list shown is kept
    out, _ = await _turn(assistant, "who drew it?", "fu-en-4")
    rec = deps.catalog.get(second["mal_id"])
    assert [i["mal_id"] for i in out["items"]] == [rec.mal_id] and rec.authors[0] in out["answer"]


async def test_what_is_a_named_title_about_reads_its_details(assistant, deps):
    out = await assistant.turn("What is One Piece about?", user_id="u_ben")
    rec = deps.catalog.get(13)
    assert [i["mal_id"] for i in out["items"]] == [13] and rec.synopsis[:40] in out["answer"]
    assert "Here is what I found" not in out["answer"]


def test_dialogue_state_is_visible_in_the_state_route(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from core.settings import Settings
    from server.app import create_app

    for name in ("DATABASE_URL", "REDIS_URL", "MANGAASSIST_DATABASE_URL", "MANGAASSIST_REDIS_URL", "MANGAASSIST_AUTH"):
        monkeypatch.delenv(name, raising=False)
    with TestClient(create_app(Settings(data_dir=tmp_path, auth="off"))) as client:
        h = {"X-User-Id": "u_ben"}
        tid = client.post("/v1/threads", headers=h).json()["thread_id"]
        assert client.post(f"/v1/threads/{tid}/messages", json={"text": "do you have Vagabond?"}, headers=h).status_code == 200
        out = client.post(f"/v1/threads/{tid}/messages", json={"text": "who is the author?"}, headers=h).json()
        assert "Takehiko Inoue" in out["answer"]
        focus = client.get(f"/v1/threads/{tid}/state", headers=h).json()["values"]["focus"]
        assert focus["item"]["mal_id"] == 656 and focus["item"]["turn"] == 2 and focus["items"][0] == 656
        assert focus["last_list"] == {"kind": "items", "turn": 1, "intent": "search"} and "referent" not in focus


async def test_more_like_it_keeps_the_seed_the_filter_and_never_repeats(assistant, deps):
    out, focus = await _turn(assistant, "find a manga like Mushishi", "fu-rec-en")
    first = [i["mal_id"] for i in out["items"]]
    assert out["intents"] == ["recommend"] and focus["seed"]["title"] == "Mushishi" and 457 not in first
    out, focus = await _turn(assistant, "something more like it but finished", "fu-rec-en")
    second = [i["mal_id"] for i in out["items"]]
    assert out["intents"] == ["recommend"] and focus["seed"]["title"] == "Mushishi"
    assert second and not set(second) & set(first)
    assert all(deps.catalog.get(m).status == "Finished" for m in second)
    out, focus = await _turn(assistant, "any others?", "fu-rec-en")
    third = [i["mal_id"] for i in out["items"]]
    assert out["intents"] == ["recommend"] and third and not set(third) & (set(first) | set(second))
    assert all(deps.catalog.get(m).status == "Finished" for m in third)  # the filter is kept


async def test_more_like_it_in_japanese(assistant):
    out, focus = await _turn(assistant, "ベルセルクみたいな漫画ある？", "fu-rec-ja")
    first = [i["mal_id"] for i in out["items"]]
    assert out["intents"] == ["recommend"] and focus["seed"]["mal_id"] == 2 and 2 not in first
    out, _ = await _turn(assistant, "他にもある？", "fu-rec-ja")
    again = [i["mal_id"] for i in out["items"]]
    assert out["intents"] == ["recommend"] and again and not set(again) & set(first) and 2 not in again


async def test_an_author_named_by_reading_lists_their_works_then_who_drew_it(assistant, deps):
    out, _ = await _turn(assistant, "浅野いにおの漫画ある？", "fu-author-ja")
    assert out["items"] and all("Inio Asano" in deps.catalog.get(i["mal_id"]).authors for i in out["items"])
    out, _ = await _turn(assistant, "作者は？", "fu-author-ja")
    top = deps.catalog.get(out["items"][0]["mal_id"])
    assert len(out["items"]) == 1 and "Inio Asano" in top.authors and "作者" in out["answer"]
    assert "Inio Asano" in out["answer"]  # the catalog has no Japanese form of this name: romaji, never a guess


async def test_a_general_question_is_out_of_scope(assistant):
    for text in ("how many moons does Jupiter have?", "tell me who the president of France is"):
        out = await assistant.turn(text, user_id="u_ben")
        assert out["intents"] == ["out_of_scope"] and not out["items"], (text, out["intents"])


async def test_a_japanese_answer_names_the_author_in_japanese_when_any_title_does(assistant):
    out, _ = await _turn(assistant, "トライガンの作者は？", "fu-author-ja-2")
    assert out["items"] and out["items"][0]["title"] == "Trigun" and "内藤泰弘" in out["answer"], out["answer"]


async def test_an_order_picked_by_a_title_then_arrival_and_can_i_call_it_off(assistant):
    await _turn(assistant, "where is my order?", "fu-order-title")
    out, focus = await _turn(assistant, "the Death Note order", "fu-order-title")
    assert out["intents"] == ["order"] and [o["order_id"] for o in out["orders"]] == ["MA-10006"]
    assert focus["order_id"] == "MA-10006"
    out, _ = await _turn(assistant, "how soon will it come?", "fu-order-title")
    assert "MA-10006" in out["answer"] and "expected" in out["answer"]
    out, _ = await _turn(assistant, "could I call it off?", "fu-order-title")
    assert out.get("interrupt") is None and "can't be cancelled" in out["answer"]


async def test_fresh_phrasings_of_follow_ups_resolve_against_the_title_in_focus(assistant, deps):
    out, _ = await _turn(assistant, "hey, is Spirit Circle something you carry?", "fu-fresh-en")
    assert [i["mal_id"] for i in out["items"]] == [38071]  # only the title named, nothing padded after it
    out, _ = await _turn(assistant, "what's the volume count?", "fu-fresh-en")
    assert [i["mal_id"] for i in out["items"]] == [38071] and "6" in out["answer"]
    out, _ = await _turn(assistant, "who's behind it?", "fu-fresh-en")
    assert "Satoshi Mizukami" in out["answer"]
    out, _ = await _turn(assistant, "ホリミヤが買えるか知りたい", "fu-fresh-ja")
    assert out["items"][0]["mal_id"] == 42451
    out, _ = await _turn(assistant, "それっていくらするの？", "fu-fresh-ja")
    price = deps.catalog.get(42451).price_jpy
    assert [i["mal_id"] for i in out["items"]] == [42451] and f"¥{price:,}" in out["answer"], out["answer"]


async def test_a_policy_follow_up_and_a_payment_question_the_router_missed(assistant):
    out, _ = await _turn(assistant, "I live in Sweden, can I order?", "fu-policy")
    assert out["intents"] == ["faq"]
    out, _ = await _turn(assistant, "what about South Korea?", "fu-policy")
    assert out["intents"] == ["faq"] and "South Korea" in out["answer"]
    out = await assistant.turn("will LINE Pay work for paying?", user_id="u_ben")
    assert out["intents"] == ["faq"] and "LINE Pay" in out["answer"]


async def test_the_roles_receive_the_recent_turns_and_the_focus(deps):
    """classify hands the router the thread's last messages and focus; the writer's task carries them too."""
    import dataclasses

    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.store.memory import InMemoryStore

    from graphs.app import Assistant
    from graphs.supervisor import build_supervisor

    seen: dict[str, list] = {"router": [], "writer": []}

    class RecordingRouter:
        def __init__(self, inner):
            self.inner, self.local = inner, inner

        async def aroute(self, text, history=(), focus=None):
            seen["router"].append((list(history), dict(focus or {})))
            return await self.inner.aroute(text, history, focus)

        def route_many(self, texts):
            return self.inner.route_many(texts)

    class RecordingWriter:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        async def ainvoke(self, messages, *args, **kwargs):
            import json

            seen["writer"].append(json.loads(messages[-1].content))
            return await self.inner.ainvoke(messages, *args, **kwargs)

    models = dataclasses.replace(deps.models, router=RecordingRouter(deps.models.router),
                                 writer=RecordingWriter(deps.models.writer))
    d = dataclasses.replace(deps, models=models)
    assistant = Assistant(build_supervisor(d).compile(checkpointer=InMemorySaver(), store=InMemoryStore()), d, None)
    await assistant.turn("do you have Vagabond?", thread_id="ctx-1", user_id="u_ben")
    await assistant.turn("who is the author?", thread_id="ctx-1", user_id="u_ben")
    history, focus = seen["router"][-1]
    assert history[0] == "do you have Vagabond?" and focus["item"]["mal_id"] == 656
    task = seen["writer"][-1]
    assert task["history"][0] == "do you have Vagabond?" and task["focus"]["item"]["mal_id"] == 656


async def test_an_ordinal_past_the_end_of_the_list_asks_which_title(assistant):
    out, _ = await _turn(assistant, "Do you have Berserk?", "fu-past-1")
    assert [i["mal_id"] for i in out["items"]] == [2]
    out, focus = await _turn(assistant, "what about the second one?", "fu-past-1")
    assert out["agents"] == ["search"] and [i["mal_id"] for i in out["items"]] == [2]
    assert "only 1 title" in out["answer"] and "Berserk" in out["answer"]
    assert focus["items"] == [2]  # the list shown stays in focus

    out, _ = await _turn(assistant, "ベルセルクはありますか", "fu-past-2")
    out, _ = await _turn(assistant, "3つ目は？", "fu-past-2")
    assert out["agents"] == ["search"] and "1件" in out["answer"] and "ベルセルク" in out["answer"]


async def test_something_like_it_after_a_search_recommends_by_the_focused_title(assistant):
    out, _ = await _turn(assistant, "anything by Naoki Urasawa?", "fu-like-en")
    monster = out["items"][1]["mal_id"]
    out, focus = await _turn(assistant, "the second one", "fu-like-en")
    assert focus["item"]["mal_id"] == monster
    out, focus = await _turn(assistant, "something like it", "fu-like-en")
    first = [i["mal_id"] for i in out["items"]]
    assert out["intents"] == ["recommend"] and focus["seed"]["mal_id"] == monster and first and monster not in first
    out, _ = await _turn(assistant, "any others?", "fu-like-en")
    again = [i["mal_id"] for i in out["items"]]
    assert out["intents"] == ["recommend"] and again and not set(again) & set(first) and monster not in again

    out, _ = await _turn(assistant, "ベルセルクはありますか", "fu-like-ja")
    out, focus = await _turn(assistant, "これに似た作品は？", "fu-like-ja")
    assert out["intents"] == ["recommend"] and focus["seed"]["mal_id"] == 2 and 2 not in [i["mal_id"] for i in out["items"]]


async def test_an_acknowledgement_before_a_question_adds_no_small_talk(assistant):
    out, _ = await _turn(assistant, "ok, and do you ship to Germany?", "fu-ack-1")
    assert out["intents"] == ["faq"] and "Happy to chat" not in out["answer"]
    assert out["answer"].startswith("Yes, we ship to Germany.")


@pytest.mark.parametrize("text", ["Hi! do you have Vagabond?", "hello, is Berserk in stock?",
                                  "こんにちは！ベルセルクはありますか"])
async def test_a_greeting_before_a_request_adds_no_small_talk(assistant, text):
    out, _ = await _turn(assistant, text, f"fu-hi-{hash(text) % 1000}")
    assert out["intents"] == ["search"] and out["items"]
    assert "Happy to chat" not in out["answer"] and "I'm MangaAssist" not in out["answer"]


async def test_a_policy_question_after_a_title_is_not_a_question_about_the_title(assistant):
    await _turn(assistant, "Do you have Vagabond?", "fu-pol-en")
    out, _ = await _turn(assistant, "ok thanks, and how much is shipping?", "fu-pol-en")
    assert out["intents"] == ["faq"] and "¥350" in out["answer"] and out["items"] == []
    await _turn(assistant, "進撃の巨人ありますか", "fu-pol-ja")
    out, _ = await _turn(assistant, "じゃあ、送料はいくら？", "fu-pol-ja")
    assert out["intents"] == ["faq"] and "350円" in out["answer"].replace("¥350", "350円") and out["items"] == []


async def test_a_question_about_the_return_policy_after_orders_is_a_policy_question(assistant):
    await _turn(assistant, "can I cancel my order?", "fu-pol-ord", user="u_aiko")
    out, _ = await _turn(assistant, "ok, what's your return window?", "fu-pol-ord", user="u_aiko")
    assert out["intents"] == ["faq"] and "30 days" in out["answer"] and out["orders"] == []
    out, _ = await _turn(assistant, "返品できる期間は？", "fu-pol-ord", user="u_aiko")
    assert out["intents"] == ["faq"] and "30日" in out["answer"]


async def test_an_unclear_reply_to_a_confirmation_asks_again_and_a_later_yes_acts(assistant, deps):
    out, _ = await _turn(assistant, "I want to cancel my order", "fu-reask-en")
    oid = out["interrupt"]["order_id"]
    out, _ = await _turn(assistant, "the processing one", "fu-reask-en")
    assert out["interrupt"] and out["interrupt"]["order_id"] == oid and "yes or no" in out["interrupt"]["prompt"]
    assert (await deps.orders.get_order("u_ben", oid)).status == "processing"
    out, _ = await _turn(assistant, "go ahead", "fu-reask-en")
    assert out["interrupt"] is None and "cancelled" in out["answer"]
    assert (await deps.orders.get_order("u_ben", oid)).status == "cancelled"


async def test_on_second_thought_in_japanese_is_a_no(assistant, deps):
    out, _ = await _turn(assistant, "注文をキャンセルしたい", "fu-reask-ja", user="u_aiko")
    oid = out["interrupt"]["order_id"]
    out, _ = await _turn(assistant, "やっぱりやめます", "fu-reask-ja", user="u_aiko")
    assert out["interrupt"] is None and (await deps.orders.get_order("u_aiko", oid)).status == "processing"


async def test_cancel_an_order_named_by_its_title_in_a_new_thread(assistant, deps):
    out, _ = await _turn(assistant, "cancel the One Piece one", "fu-cancel-title")
    assert out["intents"] == ["order"] and out["interrupt"] and out["interrupt"]["action"] == "cancel"
    order = await deps.orders.get_order("u_ben", out["interrupt"]["order_id"])
    assert any("One Piece" in line.title for line in order.items)


async def test_in_total_and_is_the_series_over_ask_about_the_title_in_focus(assistant, deps):
    out, _ = await _turn(assistant, "鬼滅の刃ってある？", "fu-total-ja")
    kimetsu = out["items"][0]["mal_id"]
    out, _ = await _turn(assistant, "全部で何巻？", "fu-total-ja")
    assert [i["mal_id"] for i in out["items"]] == [kimetsu] and f"{deps.catalog.get(kimetsu).num_volumes}巻" in out["answer"]
    await _turn(assistant, "got Slam Dunk?", "fu-over-en")
    out, _ = await _turn(assistant, "is the series over?", "fu-over-en")
    assert "finished" in out["answer"] and "Synopsis" not in out["answer"]
