"""Supervisor behaviour: fan-out, interrupt/resume, idempotent replay, bounded reflection and state."""

from __future__ import annotations

import dataclasses

import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from core.context import Context
from core.ports import Critique
from graphs.app import Assistant
from graphs.supervisor import build_supervisor


async def test_multi_intent_fans_out_in_parallel_and_merges(assistant):
    out = await assistant.turn("Do you have Naruto vol 1? Also, how much does shipping cost?", user_id="u_ben")
    assert set(out["intents"]) == {"search", "faq"}
    assert set(out["agents"]) == {"search", "conversation"}
    assert out["items"][0]["title"] == "Naruto"
    assert "Volume 1 of Naruto" in out["answer"] and "hipping" in out["answer"]
    assert {"search", "conversation"} <= set(out["timings_ms"])


async def test_cancel_interrupts_then_resumes_once(assistant, deps, demo):
    oid = demo["u_ben"]["processing"][0]
    asked = await assistant.turn(f"please cancel order {oid}", user_id="u_ben")
    assert asked["interrupt"] == {"action": "cancel", "order_id": oid, "prompt": asked["interrupt"]["prompt"]}
    assert oid in asked["answer"] and "yes or no" in asked["answer"]
    assert (await deps.orders.get_order("u_ben", oid)).status == "processing"  # nothing before confirmation

    done = await assistant.turn("yes", thread_id=asked["thread_id"], user_id="u_ben")
    assert done["interrupt"] is None
    assert done["orders"] == [{"order_id": oid, "status": "cancelled"}] or done["orders"][0]["status"] == "cancelled"
    assert "cancelled" in done["answer"]
    assert (await deps.orders.get_order("u_ben", oid)).status == "cancelled"

    # replay the whole thread from the checkpoint where it waited for confirmation: no second cancel
    graph = assistant.graph
    cfg = assistant.config(asked["thread_id"], "u_ben")
    history = [s async for s in graph.aget_state_history(cfg)]
    waiting = next(s for s in history if s.interrupts)
    from langgraph.types import Command
    await graph.ainvoke(Command(resume="yes"), waiting.config, context=Context(user_id="u_ben"))
    assert (await deps.orders.get_order("u_ben", oid)).status == "cancelled"
    import sqlite3
    with sqlite3.connect(deps.orders.path) as db:
        (actions,) = db.execute("SELECT count(*) FROM order_actions WHERE order_id = ?", (oid,)).fetchone()
        (refunds,) = db.execute("SELECT count(*) FROM order_actions WHERE order_id = ? AND action = 'cancel'", (oid,)).fetchone()
    assert actions == 1 and refunds == 1


async def test_cancel_declined_in_japanese_leaves_order(assistant, deps, demo):
    oid = demo["u_aiko"]["processing"][0]
    asked = await assistant.turn(f"{oid}をキャンセルしてください", user_id="u_aiko")
    assert asked["interrupt"]["action"] == "cancel" and "キャンセルしますか" in asked["answer"]
    done = await assistant.turn("いいえ", thread_id=asked["thread_id"], user_id="u_aiko")
    assert "そのまま" in done["answer"]
    assert (await deps.orders.get_order("u_aiko", oid)).status == "processing"


async def test_cancel_without_id_uses_the_single_eligible_order_after_reflection(assistant, deps, demo):
    user = next(u for u, st in demo.items() if len(st.get("processing", [])) == 1)
    asked = await assistant.turn("I want to cancel my order", user_id=user)
    assert asked["interrupt"] and asked["interrupt"]["order_id"] == demo[user]["processing"][0]


async def test_cancel_shipped_order_is_refused_without_interrupt(assistant, demo):
    oid = demo["u_ben"]["shipped"][0]
    out = await assistant.turn(f"cancel {oid}", user_id="u_ben")
    assert out["interrupt"] is None and "can't be cancelled" in out["answer"]


class _NeverSatisfiedCritic:
    """The local critic, except that reflect always finds the evidence wanting (asks to broaden)."""

    def __init__(self, critic):
        self.critic = critic

    async def areview_evidence(self, agent, intent, request, evidence):
        return Critique(ok=False, problems=["never enough"], retry_instructions="broaden")

    async def acritique(self, answer, evidence, locale):
        return await self.critic.acritique(answer, evidence, locale)


@pytest.mark.parametrize("max_reflections", [0, 1, 2])
async def test_reflection_is_bounded_by_context(deps, max_reflections):
    d = dataclasses.replace(deps, models=dataclasses.replace(deps.models, critic=_NeverSatisfiedCritic(deps.models.critic)))
    assistant = Assistant(build_supervisor(d).compile(checkpointer=InMemorySaver()), d, None)
    cfg = {"configurable": {"thread_id": f"reflect-bound-{max_reflections}"}}
    thinks = reflects = 0
    async for _ns, update in assistant.graph.astream({"messages": [HumanMessage("do you have Berserk vol 2")]},
                                                     cfg, context=Context(user_id="u_ben", max_reflections=max_reflections),
                                                     stream_mode="updates", subgraphs=True):
        thinks += "think" in update
        reflects += "reflect" in update
    # reflect asks to think again every time, so the loop runs until the bound: 1 + max_reflections thinks,
    # each followed by one reflect (a search with gibberish does not get here: the index always finds something)
    assert (thinks, reflects) == (1 + max_reflections, 1 + max_reflections)


async def test_state_stays_bounded(assistant):
    out = None
    for i in range(8):
        out = await assistant.turn(f"hello number {i}", thread_id="bounded", user_id="u_ben")
    state = await assistant.graph.aget_state(assistant.config("bounded", "u_ben"))
    assert len(state.values["messages"]) <= Context().message_window
    assert state.values["results"] == []
    assert state.values["turn"] == 8 and out is not None


async def test_empty_message_rejected_and_thread_untouched(assistant):
    import pytest
    with pytest.raises(ValueError):
        await assistant.turn("   ", thread_id="t-empty", user_id="u_ben")
    state = await assistant.graph.aget_state(assistant.config("t-empty", "u_ben"))
    assert state.values == {} or not state.values.get("messages")


async def test_cancelling_an_order_already_cancelled_says_it_is_already_cancelled(assistant, demo):
    oid = demo["u_ben"]["cancelled"][0]
    out = await assistant.turn(f"cancel {oid}", user_id="u_ben")
    assert out["interrupt"] is None and f"Order {oid} is already cancelled." in out["answer"]
    ja = await assistant.turn(f"{oid}をキャンセルして", user_id="u_ben")
    assert f"注文 {oid} はすでに" in ja["answer"]


@pytest.mark.parametrize("text,seeds", [("something like Monster and Pluto please", {"Monster", "Pluto"}),
                                        ("Monster と Pluto みたいな漫画ある？", {"Monster", "Pluto"})])
async def test_two_seed_titles_are_one_recommendation_not_a_search(assistant, text, seeds):
    """The second title of "like X and Y" is a seed, not a search request, even where the router alone reads
    the clause "Pluto please" as a search (Pluto is also an English word): the entity linker knows the title."""
    out = await assistant.turn(text, user_id="u_test")
    assert out["intents"] == ["recommend"]
    listed = {i.get("title_en") or i.get("title") for i in out["items"]}
    assert out["items"] and not listed & seeds
