"""Supervisor node factories: classify (route with Send), merge, quality gate, finalize."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage
from langgraph.runtime import Runtime
from langgraph.types import Command, Send

from core.context import Context
from core.deps import Deps
from core.lang import detect_locale
from core.state import RESET
from nodes.routing import AGENT_NODES, AGENT_OF, agent_node, drop_subsumed, order_results, resolve_intents
from tools.backends.models.text_rules import split_clauses


def last_human_text(messages: list[Any]) -> str:
    """Content of the last HumanMessage ('' when none)."""
    for m in reversed(messages or []):
        if isinstance(m, HumanMessage) or getattr(m, "type", "") == "human":
            return m.content if isinstance(m.content, str) else str(m.content)
    return ""


def make_classify(deps: Deps):
    """Node: route the new message to one specialist or several in parallel (``Send`` fan-out).

    Multi-intent messages are split into clauses and each specialist receives the clauses of its intent.
    Writes intents/scores/locale, clears ``results`` for the new turn, bumps ``turn``.
    """
    router = deps.models.router

    async def classify(state: dict, runtime: Runtime[Context]) -> Command:
        t0 = time.perf_counter()
        ctx = runtime.context or Context()
        messages = state.get("messages") or []
        text = last_human_text(messages)
        if not text.strip():
            raise ValueError("the turn has no customer message")
        locale = ctx.locale or detect_locale(text)
        history = [str(m.content) for m in messages[-7:-1]]
        decision = await router.aroute(text, history)
        focus = state.get("focus") or {}
        intents = resolve_intents(decision, text, state.get("active_agent"), focus.get("items_intent"))
        requests = {i: text for i in intents}
        if len(intents) > 1:
            clauses = split_clauses(text)
            if len(clauses) > 1:
                labels = await asyncio.gather(*(router.aroute(c) for c in clauses))
                for intent in intents:
                    mine = [c for c, d in zip(clauses, labels) if d.intents[0] == intent]
                    if mine:
                        requests[intent] = " ".join(mine)
            intents = drop_subsumed(intents, requests, text)
        payload = {"message": text, "locale": locale, "history": history[-4:], "focus": state.get("focus") or {},
                   "max_reflections": ctx.max_reflections}
        sends = [Send(agent_node(i), {**payload, "agent": AGENT_OF[i], "intent": i, "request": requests[i]})
                 for i in intents]
        update = {"locale": locale, "intents": intents, "scores": decision.scores,
                  "agents": list(dict.fromkeys(AGENT_OF[i] for i in intents)), "results": [RESET],
                  "turn": 1, "timings_ms": {"classify": round((time.perf_counter() - t0) * 1000, 2)}}
        return Command(goto=sends, update=update)

    classify.destinations = AGENT_NODES  # type: ignore[attr-defined]
    return classify


def merge(state: dict) -> dict:
    """Node: combine the parallel specialists' results in intent order into one answer, items, orders, focus."""
    results = order_results(state.get("results") or [], state.get("intents") or [])
    answer = "\n\n".join(r["answer"] for r in results if r.get("answer"))
    items: list[dict] = []
    seen: set[int] = set()
    for r in results:
        for it in r.get("items") or []:
            if it["mal_id"] not in seen:
                seen.add(it["mal_id"])
                items.append({k: v for k, v in it.items() if k != "synopsis"})
    orders: dict[str, dict] = {}
    for r in results:
        for o in r.get("orders") or []:
            orders[o["order_id"]] = o
    focus = dict(state.get("focus") or {})
    if items:
        focus["items"] = [it["mal_id"] for it in items]
        focus["items_intent"] = next(r["intent"] for r in results if r.get("items"))
    order_focus = next((r.get("focus_order_id") for r in results if r.get("focus_order_id")), None)
    if order_focus:
        focus["order_id"] = order_focus
    timings = {r["agent"]: r.get("ms", 0.0) for r in results}
    return {"answer": answer, "items": items, "orders": list(orders.values()), "focus": focus,
            "active_agent": results[0]["intent"] if results else state.get("active_agent"),
            "timings_ms": timings}


FALLBACK = {
    "en": "Sorry — I couldn't verify that answer against our data, so I won't guess. Could you rephrase, or shall I connect you with a person?",
    "ja": "申し訳ありません。回答をデータで確認できなかったため、推測でお答えすることは控えます。言い換えていただくか、担当者におつなぎしましょうか？",
}


def make_quality(deps: Deps):
    """Node: quality gate — grounded in the evidence? in the customer's language? Replaces a failing answer
    with an honest fallback (never shows unverified facts) and records the critique in ``quality``."""
    critic = deps.models.critic

    async def quality(state: dict) -> dict:
        t0 = time.perf_counter()
        evidence = [e for r in state.get("results") or [] for e in r.get("evidence") or []]
        locale = state.get("locale", "en")
        critique = await critic.acritique(state.get("answer", ""), evidence, locale)
        update: dict[str, Any] = {"quality": critique.model_dump(),
                                  "timings_ms": {"quality": round((time.perf_counter() - t0) * 1000, 2)}}
        if not critique.ok:
            update["answer"] = FALLBACK.get(locale, FALLBACK["en"])
            update["items"] = []
        return update

    return quality


def finalize(state: dict, runtime: Runtime[Context]) -> dict:
    """Node: append the answer to ``messages`` and trim them to ``Context.message_window`` (RemoveMessage),
    so checkpointed state stays bounded however long the conversation gets."""
    window = (runtime.context or Context()).message_window
    messages = list(state.get("messages") or [])
    answer = AIMessage(content=state.get("answer", ""))
    overflow = len(messages) + 1 - window
    removals = [RemoveMessage(id=m.id) for m in messages[:overflow] if m.id] if overflow > 0 else []
    return {"messages": removals + [answer], "results": [RESET]}
