"""Supervisor node factories: classify (route with Send), the branch error handler, merge, quality gate, finalize."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage
from langchain_core.runnables import RunnableConfig
from langgraph.errors import NodeError
from langgraph.runtime import Runtime
from langgraph.types import Command, Send

from core.agents import REGISTRY, AgentRegistry
from core.budget import TurnBudget, call_scope, now_ms
from core.context import Context
from core.deps import Deps
from core.lang import detect_locale
from core.state import RESET
from core.usage import add_totals, summarize
from nodes.dialogue import focus_after_turn, focus_write, resolve_followup
from nodes.routing import drop_subsumed, order_results, resolve_intents
from nodes.scope import cart_clauses, cart_scope, catalog_scope
from tools.backends.models.text_rules import split_clauses

graph_log = logging.getLogger("mangaassist.graph")
"""Structured graph lines (the logger server/observability.py writes its per-node lines to)."""


def last_human_text(messages: list[Any]) -> str:
    """Content of the last HumanMessage ('' when none)."""
    for m in reversed(messages or []):
        if isinstance(m, HumanMessage) or getattr(m, "type", "") == "human":
            return m.content if isinstance(m.content, str) else str(m.content)
    return ""


def usage_day_key(ts: float | None = None) -> str:
    """The UTC day (YYYY-MM-DD) a spend is booked on."""
    return dt.datetime.fromtimestamp(ts if ts is not None else time.time(), dt.UTC).strftime("%Y-%m-%d")


USAGE_NAMESPACE = "usage"
"""LangGraph store namespace of per-user spend: (USAGE_NAMESPACE, user_id) / key = UTC day."""


async def user_day_usage(store: Any, user_id: str, day: str | None = None) -> dict:
    """The user's running totals for ``day`` from the LangGraph store ({} without a store or record)."""
    if store is None:
        return {}
    item = await store.aget((USAGE_NAMESPACE, user_id), day or usage_day_key())
    return dict(item.value) if item is not None else {}


async def start_budget(deps: Deps, state: dict, runtime: Runtime[Context]) -> TurnBudget:
    """The turn's budget: Context latency budget (or caller deadline) and the USD left for the turn, the
    thread (Settings.usd_budget_session minus ``usage_session``) and the user's UTC day (store)."""
    ctx = runtime.context or Context()
    s = deps.settings
    session_spent = float((state.get("usage_session") or {}).get("usd", 0.0))
    user_spent = float((await user_day_usage(getattr(runtime, "store", None), ctx.user_id)).get("usd", 0.0))
    return TurnBudget.start(ctx.latency_budget_ms, ctx.deadline_epoch_ms, usd_left_turn=s.usd_budget_turn,
                            usd_left_session=s.usd_budget_session - session_spent,
                            usd_left_user_day=s.usd_budget_user_day - user_spent)


def make_classify(deps: Deps, registry: AgentRegistry = REGISTRY):
    """Node: route the new message to one specialist or several in parallel (``Send`` fan-out), or a complex
    request (router flag + several clauses) to the ``plan`` node.

    Multi-intent messages are split into clauses and each specialist receives the clauses of its intent
    (clauses are labelled by the router's offline classifier when the router has one: no extra remote
    calls). Writes intents/scores/locale and the turn's budget, clears ``results``/usage for the new
    turn, bumps ``turn``. After the router, a follow-up with no entity of its own ("who is the author?", "the
    most recent one", "can I cancel it?") is resolved against the dialogue state (nodes/dialogue.resolve_followup)
    and sent to the agent owning the focused item/order, with it as ``focus.referent``. Otherwise a lone
    ``search`` decision for a message that names no catalog title or author (``deps.linker``) and carries no
    store cue becomes ``out_of_scope``, and a lone ``recommend`` for an author's works with no suggestion cue
    becomes ``search`` (nodes/scope.catalog_scope); a ``cart`` with no cart cue in the message becomes the
    router's next label (cart_scope), and a cart clause the router left out of a several-clause message is
    added (cart_clauses). Each ``Send`` payload
    also carries ``fan_out`` (how many branches this turn runs), read only by the branch error handler
    (make_branch_failed). Intents map to agents and their nodes through ``registry`` (core/agents.py); the node
    may go to any registered agent's node or ``plan`` (its ``destinations``).
    """
    router = deps.models.router
    clause_router = getattr(router, "local", router)

    async def classify(state: dict, runtime: Runtime[Context]) -> Command:
        t0 = time.perf_counter()
        ctx = runtime.context or Context()
        budget = await start_budget(deps, state, runtime)
        messages = state.get("messages") or []
        text = last_human_text(messages)
        if not text.strip():
            raise ValueError("the turn has no customer message")
        locale = ctx.locale or detect_locale(text)
        history = [str(m.content) for m in messages[-7:-1]]
        with call_scope(budget) as scope:
            decision = await router.aroute(text, history, state.get("focus") or {})
        focus = state.get("focus") or {}
        intents = resolve_intents(decision, text, state.get("active_agent"), focus.get("items_intent"), registry)
        linked = await asyncio.to_thread(deps.linker.link, text) if deps.linker is not None else None
        followup = resolve_followup(text, focus, linked)  # no entity of its own + a focus of its kind → the owner
        if followup is not None:
            intents = [followup.intent]
        elif linked is not None:  # catalog evidence (nodes/scope)
            intents = catalog_scope(intents, linked, text)
        intents = cart_scope(intents, text, focus.get("last_intent"), decision.scores)
        cart_extra = cart_clauses(text) if "cart" not in intents else []
        if cart_extra:  # "会計をお願いします。また、送料はいくら？": the cart clause the router left out
            intents = [*intents, "cart"]
        requests = {i: text for i in intents}
        if len(intents) > 1:
            clauses = split_clauses(text)
            if len(clauses) > 1:
                labels = await asyncio.gather(*(clause_router.aroute(c) for c in clauses))
                for intent in intents:
                    mine = [c for c, d in zip(clauses, labels) if d.intents[0] == intent]
                    if mine:
                        requests[intent] = " ".join(mine)
            if cart_extra:
                requests["cart"] = " ".join(cart_extra)
            intents = drop_subsumed(intents, requests, text)
        spent = scope.meter.usd
        budget_state = budget.to_state()  # turn-start remainders; later steps subtract the turn's usage_calls
        branch_budget = {**budget_state, "usd_left_turn": budget_state["usd_left_turn"] - spent,
                         "usd_left_session": budget_state["usd_left_session"] - spent,
                         "usd_left_user_day": budget_state["usd_left_user_day"] - spent}
        branch_focus = {**focus, "referent": followup.referent, "followup": True} if followup and followup.referent else focus
        payload = {"message": text, "locale": locale, "history": history[-4:], "focus": branch_focus,
                   "max_reflections": ctx.max_reflections, "budget": branch_budget, "turn": int(state.get("turn") or 0) + 1}
        update = {"locale": locale, "intents": intents, "scores": decision.scores,
                  "agents": list(dict.fromkeys(registry.agent_of[i] for i in intents)), "results": [RESET],
                  "turn": 1, "timings_ms": {"classify": round((time.perf_counter() - t0) * 1000, 2)},
                  "budget": budget_state, "usage_calls": [RESET, *scope.meter.calls],
                  "degraded": [RESET, *budget.degraded], "turn_started": budget.deadline_epoch_ms - budget.latency_budget_ms}
        if followup is None and decision.complex and len(split_clauses(text)) > 1:
            return Command(goto="plan", update=update)
        sends = [Send(registry.node(i), {**payload, "agent": registry.agent_of[i], "intent": i, "request": requests[i],
                                      "fan_out": len(intents)})
                 for i in intents]
        return Command(goto=sends, update=update)

    classify.destinations = (*registry.nodes, "plan")  # type: ignore[attr-defined]
    return classify


BRANCH_FAILED: dict[str, dict[str, str]] = {
    "en": {
        "search": "Sorry — a problem on our side stopped me from searching the catalog for part of your message. "
                  "Please ask about it again in a moment.",
        "recommend": "Sorry — a problem on our side stopped me from putting together recommendations just now. "
                     "Please ask again in a moment.",
        "order": "Sorry — a problem on our side stopped me from looking into your order request just now. "
                 "Please ask again in a moment.",
        "conversation": "Sorry — a problem on our side stopped me from answering part of your message. "
                        "Please ask again in a moment, or ask for a person.",
    },
    "ja": {
        "search": "申し訳ありません。システムの問題により、ご質問の一部について商品を検索できませんでした。"
                  "少し時間をおいて、もう一度お尋ねください。",
        "recommend": "申し訳ありません。システムの問題により、ただいまおすすめをご用意できませんでした。"
                     "少し時間をおいて、もう一度お尋ねください。",
        "order": "申し訳ありません。システムの問題により、ただいまご注文についてのご依頼を確認できませんでした。"
                 "少し時間をおいて、もう一度お尋ねください。",
        "conversation": "申し訳ありません。システムの問題により、ご質問の一部にお答えできませんでした。"
                        "少し時間をおいて、もう一度お尋ねいただくか、担当者へのおつなぎをお申し付けください。",
    },
}
"""What the customer reads in place of a specialist's part of the answer when that specialist failed (locale →
agent → text). States no fact, so the quality gate has nothing to check against evidence."""

BRANCH_FAILED_ANY: dict[str, str] = {
    "en": "Sorry — a problem on our side stopped me from answering part of your message. Please ask again in a moment.",
    "ja": "申し訳ありません。システムの問題により、ご質問の一部にお答えできませんでした。少し時間をおいて、もう一度お尋ねください。",
}
"""BRANCH_FAILED's text (locale → text) for an agent it has no own wording for."""

BRANCH_FAILED_STEP = "specialist_failed"
"""Degrade step recorded for a turn in which a specialist branch failed and was answered with BRANCH_FAILED."""


def make_branch_failed(agent: str):
    """Error handler of the ``{agent}_agent`` node (``StateGraph.add_node(..., error_handler=...)``): isolates a
    failing branch of a multi-intent turn.

    When the failed ``Send`` was one of several (``fan_out`` > 1) the other branches keep their answers: this
    branch contributes one AgentResult whose answer is BRANCH_FAILED (BRANCH_FAILED_ANY for an agent without its
    own wording) in the customer's locale, with no items, orders or evidence, and degrade step
    ``specialist_failed`` (so the turn's ``budget_report.degraded`` and the
    ``mangaassist_budget_degradations_total{step="specialist_failed"}`` series record it); the error is
    logged at ERROR with its traceback on ``mangaassist.graph`` (fields thread_id, node, agent, intent,
    outcome="degraded", error = exception type). A single-branch turn has nothing else to keep: the original
    exception is re-raised and fails the turn as before. Interrupts never reach the handler (LangGraph routes
    only non-bubble-up errors to it).
    """

    async def branch_failed(state: dict, error: NodeError, config: RunnableConfig) -> Command:
        exc = error.error
        if int(state.get("fan_out") or 1) < 2:
            raise exc
        locale = str(state.get("locale")) if state.get("locale") in BRANCH_FAILED else "en"
        thread_id = str((config.get("configurable") or {}).get("thread_id", ""))
        graph_log.error("branch %s failed (%s); its part of the turn is answered with an apology", error.node,
                        type(exc).__name__, exc_info=(type(exc), exc, exc.__traceback__),
                        extra={"thread_id": thread_id, "node": error.node, "kind": "branch", "agent": agent,
                               "intent": state.get("intent", ""), "outcome": "degraded",
                               "error": type(exc).__name__})
        answer = BRANCH_FAILED[locale].get(agent) or BRANCH_FAILED_ANY[locale]
        result = {"agent": agent, "intent": state.get("intent", ""), "answer": answer,
                  "items": [], "orders": [], "evidence": [], "escalation_id": None, "focus_order_id": None,
                  "ms": 0.0, "calls": [], "degraded": [BRANCH_FAILED_STEP]}
        return Command(goto="merge", update={"results": [result]})

    branch_failed.__name__ = f"{agent}_branch_failed"
    return branch_failed


def merge(state: dict) -> dict:
    """Node: combine the parallel specialists' results in intent order into one answer, items, orders, and the
    dialogue state (``focus``: nodes/dialogue.focus_after_turn, written as a focus_reducer update)."""
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
    old_focus = state.get("focus") or {}
    focus = focus_write(old_focus, focus_after_turn(old_focus, results, int(state.get("turn") or 0),
                                                    last_human_text(state.get("messages") or [])))
    timings = {r["agent"]: r.get("ms", 0.0) for r in results}
    return {"answer": answer, "items": items, "orders": list(orders.values()), "focus": focus,
            "active_agent": results[0]["intent"] if results else state.get("active_agent"),
            "timings_ms": timings,
            "usage_calls": [c for r in results for c in r.get("calls") or []],
            "degraded": list(dict.fromkeys(d for r in results for d in r.get("degraded") or []))}


FALLBACK = {
    "en": "Sorry — I couldn't verify that answer against our data, so I won't guess. Could you rephrase, or shall I connect you with a person?",
    "ja": "申し訳ありません。回答をデータで確認できなかったため、推測でお答えすることは控えます。言い換えていただくか、担当者におつなぎしましょうか？",
}


def make_quality(deps: Deps):
    """Node: quality gate — grounded in the evidence? in the customer's language? Replaces a failing answer
    with an honest fallback (never shows unverified facts) and records the critique in ``quality``."""
    critic = deps.models.critic

    async def quality(state: dict, runtime: Runtime[Context]) -> dict:
        t0 = time.perf_counter()
        evidence = [e for r in state.get("results") or [] for e in r.get("evidence") or []]
        locale = state.get("locale", "en")
        spent = sum(float(c.get("usd", 0.0)) for c in state.get("usage_calls") or [])
        budget = TurnBudget.from_state(state.get("budget"), runtime.context, spent_usd=spent)
        with call_scope(budget) as scope:
            critique = await critic.acritique(state.get("answer", ""), evidence, locale)
        update: dict[str, Any] = {"quality": critique.model_dump(),
                                  "timings_ms": {"quality": round((time.perf_counter() - t0) * 1000, 2)},
                                  "usage_calls": scope.meter.calls, "degraded": budget.degraded}
        if not critique.ok:
            update["answer"] = FALLBACK.get(locale, FALLBACK["en"])
            update["items"] = []
        return update

    return quality


def budget_report(state: dict, context: Any) -> dict:
    """The turn's latency report: {latency_ms, remaining_ms, latency_budget_ms, degraded, usd_left_turn,
    usd_left_session, usd_left_user_day} (ms from the turn's start, measured now)."""
    data = state.get("budget") or {}
    budget = TurnBudget.from_state(data, context) if data else None
    latency_budget = budget.latency_budget_ms if budget else float(getattr(context, "latency_budget_ms", 3000.0))
    started = state.get("turn_started")
    latency = now_ms() - started if started else 0.0
    spent = sum(float(c.get("usd", 0.0)) for c in state.get("usage_calls") or [])
    return {"latency_ms": round(latency, 2), "remaining_ms": round(latency_budget - latency, 2),
            "latency_budget_ms": latency_budget, "degraded": list(dict.fromkeys(state.get("degraded") or [])),
            "usd_left_turn": round(float(data.get("usd_left_turn", 0.0)) - spent, 8) if data else None,
            "usd_left_session": round(float(data.get("usd_left_session", 0.0)) - spent, 8) if data else None,
            "usd_left_user_day": round(float(data.get("usd_left_user_day", 0.0)) - spent, 8) if data else None}


async def finalize(state: dict, runtime: Runtime[Context]) -> dict:
    """Node: append the answer to ``messages`` and trim them to ``Context.message_window`` (RemoveMessage),
    so checkpointed state stays bounded however long the conversation gets. Books the turn's model usage:
    ``usage`` (turn totals with its calls), ``usage_session`` (thread totals) and the user's UTC-day totals
    in the LangGraph store (namespace (USAGE_NAMESPACE, user_id)) when the graph has a store."""
    ctx = runtime.context or Context()
    window = ctx.message_window
    messages = list(state.get("messages") or [])
    answer = AIMessage(content=state.get("answer", ""))
    overflow = len(messages) + 1 - window
    removals = [RemoveMessage(id=m.id) for m in messages[:overflow] if m.id] if overflow > 0 else []
    turn = summarize(state.get("usage_calls") or [])
    store = getattr(runtime, "store", None)
    if store is not None and turn["calls"]:
        day = usage_day_key()
        await store.aput((USAGE_NAMESPACE, ctx.user_id), day, add_totals(await user_day_usage(store, ctx.user_id, day), turn))
    return {"messages": removals + [answer], "results": [RESET], "usage": turn,
            "usage_session": add_totals(state.get("usage_session"), turn),
            "budget_report": budget_report(state, ctx), "usage_calls": [RESET]}
