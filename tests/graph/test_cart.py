"""The cart agent end to end through the supervisor graph on the local profile: add (by title, by a follow-up's
referent, by a plan step), view, change, remove and checkout with its interrupt() confirmation, in English and
Japanese; the placed order is a real row in the orders database, placed once under replay."""

from __future__ import annotations

import pytest

BERSERK = 2


async def turn(a, text: str, thread: str, user: str = "u_ben") -> dict:
    return await a.turn(text, thread_id=thread, user_id=user)


async def test_add_view_change_remove_in_english(assistant, deps):
    out = await turn(assistant, "add Berserk volume 3 to my cart", "cart-en")
    assert out["agents"] == ["cart"], out
    assert "Added Berserk" in out["answer"] and "vol 3" in out["answer"]
    cart = await deps.orders.get_cart("u_ben")
    assert [(ln.mal_id, ln.volume, ln.quantity) for ln in cart.lines] == [(BERSERK, 3, 1)]
    price = deps.catalog.get(BERSERK).price_jpy
    assert f"¥{price:,}" in out["answer"]
    out = await turn(assistant, "make it 2 copies", "cart-en")  # no title: the cart's only line
    assert out["agents"] == ["cart"] and (await deps.orders.get_cart("u_ben")).lines[0].quantity == 2
    out = await turn(assistant, "what's in my cart?", "cart-en")
    assert "Your cart:" in out["answer"] and f"¥{2 * price:,}" in out["answer"]
    out = await turn(assistant, "remove it", "cart-en")
    assert out["agents"] == ["cart"] and (await deps.orders.get_cart("u_ben")).lines == ()
    assert "Removed Berserk" in out["answer"]


async def test_a_listed_title_is_added_by_its_position_and_then_asked_about(assistant, deps):
    await turn(assistant, "manga by Naoki Urasawa", "cart-ord")
    listed = [int(i) for i in (await assistant.graph.aget_state(assistant.config("cart-ord", "u_ben"))).values["focus"]["items"]]
    out = await turn(assistant, "add the second one to my cart", "cart-ord")
    assert out["agents"] == ["cart"]
    assert [ln.mal_id for ln in (await deps.orders.get_cart("u_ben")).lines] == [listed[1]]
    out = await turn(assistant, "who is the author?", "cart-ord")  # the added work is the focus
    assert out["agents"] == ["search"] and "Urasawa" in out["answer"]


async def test_checkout_confirms_then_places_one_order_the_thread_can_then_cancel(assistant, deps):
    await turn(assistant, "add 2 copies of Berserk vol 1 to my cart", "cart-co")
    before = {o.order_id for o in await deps.orders.list_orders("u_ben")}
    out = await turn(assistant, "check out", "cart-co")
    assert out["interrupt"] and out["interrupt"]["action"] == "checkout"
    assert "Berserk vol 1" in out["answer"] and "Reply yes or no" in out["answer"]
    assert {o.order_id for o in await deps.orders.list_orders("u_ben")} == before  # nothing before the yes
    out = await turn(assistant, "yes", "cart-co")
    new = [o for o in await deps.orders.list_orders("u_ben") if o.order_id not in before]
    assert len(new) == 1 and new[0].status == "processing" and new[0].items[0].quantity == 2
    assert f"Order {new[0].order_id} is placed" in out["answer"]
    assert (await deps.orders.get_cart("u_ben")).lines == ()
    out = await turn(assistant, "can I cancel it?", "cart-co")  # the placed order is the focused order
    assert out["agents"] == ["order"] and new[0].order_id in out["answer"]


async def test_a_no_orders_nothing_and_keeps_the_cart(assistant, deps):
    await turn(assistant, "add Berserk to my cart", "cart-no")
    n = len(await deps.orders.list_orders("u_ben"))
    await turn(assistant, "place my order", "cart-no")
    out = await turn(assistant, "no", "cart-no")
    assert "nothing was ordered" in out["answer"]
    assert len(await deps.orders.list_orders("u_ben")) == n and (await deps.orders.get_cart("u_ben")).copies == 1


async def test_replaying_the_confirmed_checkout_places_no_second_order(assistant, deps):
    await turn(assistant, "add Berserk to my cart", "cart-rp")
    asked = await turn(assistant, "check out", "cart-rp")
    assert asked["interrupt"]["action"] == "checkout"
    done = await turn(assistant, "yes", "cart-rp")
    assert "is placed" in done["answer"]
    orders = await deps.orders.list_orders("u_ben")
    from langgraph.types import Command

    cfg = assistant.config("cart-rp", "u_ben")
    waiting = [s async for s in assistant.graph.aget_state_history(cfg) if s.interrupts][0]
    replayed = await assistant.graph.ainvoke(Command(resume="yes"), waiting.config, context=assistant.context("u_ben"))
    assert "is placed" in replayed["answer"]  # the replay ran the checkout tool again ...
    placed = [o.order_id for o in orders if o.order_id in done["answer"]]
    assert len(placed) == 1 and placed[0] in replayed["answer"]  # ... and answered with the order placed the first time
    assert [o.order_id for o in await deps.orders.list_orders("u_ben")] == [o.order_id for o in orders]


async def test_japanese_cart_turns(assistant, deps):
    out = await turn(assistant, "ベルセルクの2巻をカートに入れて", "cart-ja", user="u_aiko")
    assert out["agents"] == ["cart"] and "カートに入れました" in out["answer"]
    out = await turn(assistant, "カートを見せて", "cart-ja", user="u_aiko")
    assert "カートの中身" in out["answer"] and "2巻" in out["answer"]
    out = await turn(assistant, "3冊にして", "cart-ja", user="u_aiko")  # no title: the cart's only line
    assert [ln.quantity for ln in (await deps.orders.get_cart("u_aiko")).lines] == [3], out["answer"]
    out = await turn(assistant, "購入手続きをお願いします", "cart-ja", user="u_aiko")
    assert out["interrupt"] and "注文しますか" in out["answer"] and "ベルセルク 2巻×3" in out["interrupt"]["prompt"]
    out = await turn(assistant, "はい", "cart-ja", user="u_aiko")
    assert "ご注文" in out["answer"] and "承りました" in out["answer"]


async def test_the_planner_example_adds_volume_1_of_the_recommended_title(assistant, deps):
    out = await turn(assistant, "find a manga like Attack on Titan and add volume 1 of it to my cart", "cart-plan")
    assert set(out["agents"]) == {"recommend", "cart"}, out
    lines = (await deps.orders.get_cart("u_ben")).lines
    assert len(lines) == 1 and lines[0].volume == 1
    snap = await assistant.graph.aget_state(assistant.config("cart-plan", "u_ben"))
    first_pick = next(r for r in snap.values["plan"] if r["agent"] == "recommend")
    assert first_pick and lines[0].mal_id != 23390  # never the title the customer named


@pytest.mark.parametrize("text,expected", [
    ("add Monster volume 900 to my cart", "no volume 900"),
    ("add 50 copies of Berserk to my cart", "quantity"),
    ("check out", "cart is empty"),
])
async def test_cart_errors_are_explained_and_change_nothing(assistant, deps, text, expected):
    out = await turn(assistant, text, f"cart-err-{abs(hash(text))}")
    assert out["agents"] == ["cart"] and expected in out["answer"], out["answer"]
    assert (await deps.orders.get_cart("u_ben")).lines == ()


async def test_an_anonymous_customer_is_asked_to_sign_in(assistant):
    out = await turn(assistant, "add Berserk to my cart", "cart-anon", user="anonymous")
    assert out["agents"] == ["cart"] and "sign in" in out["answer"]


async def test_a_policy_question_that_mentions_checkout_is_not_a_cart_turn(assistant):
    out = await turn(assistant, "is Apple Pay supported at checkout?", "cart-pol")
    assert out["intents"] == ["faq"] and out["agents"] == ["conversation"], out


async def test_a_japanese_add_without_the_word_cart_adds(assistant, deps):
    out = await turn(assistant, "モンスターの3巻を2冊追加で", "cart-ja-add", user="u_aiko")
    assert out["agents"] == ["cart"], out
    assert [(ln.volume, ln.quantity) for ln in (await deps.orders.get_cart("u_aiko")).lines] == [(3, 2)]


async def test_empty_my_cart_and_an_add_by_position_after_a_plan_turn(assistant, deps):
    await turn(assistant, "find a manga like Attack on Titan and add volume 1 of it to my cart", "cart-empty")
    snap = await assistant.graph.aget_state(assistant.config("cart-empty", "u_ben"))
    listed = [int(i) for i in snap.values["focus"]["items"]]
    out = await turn(assistant, "also add the second one", "cart-empty")  # no word 'cart': the add names a listed title
    assert out["agents"] == ["cart"], out
    assert [ln.mal_id for ln in (await deps.orders.get_cart("u_ben")).lines] == [listed[0], listed[1]]
    out = await turn(assistant, "empty my cart", "cart-empty")
    assert out["agents"] == ["cart"] and (await deps.orders.get_cart("u_ben")).lines == (), out["answer"]
    assert "empty" in out["answer"]
    await turn(assistant, "ベルセルクの1巻をカートに入れて", "cart-empty-ja", user="u_aiko")
    out = await turn(assistant, "カートを空にして", "cart-empty-ja", user="u_aiko")
    assert (await deps.orders.get_cart("u_aiko")).lines == () and "空" in out["answer"], out["answer"]


async def test_a_cart_clause_beside_another_request_is_served_too(assistant, deps):
    await turn(assistant, "add Berserk to my cart", "cart-multi")
    out = await turn(assistant, "where is my order MA-10005? and then check out please", "cart-multi")
    assert set(out["agents"]) == {"order", "cart"} and out["interrupt"]["action"] == "checkout", out
    await turn(assistant, "モンスターの1巻をカートに入れて", "cart-multi-ja", user="u_aiko")
    out = await turn(assistant, "会計をお願いします。また、送料はいくらですか", "cart-multi-ja", user="u_aiko")
    assert "cart" in out["agents"] and out["interrupt"]["action"] == "checkout", out
