"""Node factories of a specialist subgraph: think → execute (tools) → reflect → respond."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from typing import Any, Mapping, Sequence

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import BaseTool
from langgraph.prebuilt import ToolNode
from langgraph.runtime import Runtime

from core.agents import REGISTRY, AgentRegistry
from core.budget import RESERVE_MS, TurnBudget, call_scope, items_for, should_skip_reflection
from core.context import Context
from core.deps import Deps
from core.errors import ToolError
from core.ports import WriteTask
from tools.backends.models.prompts import focus_view, writer_messages
from tools.orders import tool_error_message


def expected_ms(role: Any) -> float:
    """Typical latency (ms) of a model role: its ``expected_ms`` (remote profiles), 0 for local roles."""
    return float(getattr(role, "expected_ms", 0.0) or 0.0)


def branch_budget(state: dict, context: Any) -> TurnBudget:
    """The turn budget as this specialist branch sees it: the supervisor's dict minus what this branch spent."""
    spent = sum(float(c.get("usd", 0.0)) for c in state.get("calls") or [])
    return TurnBudget.from_state(state.get("budget"), context, spent_usd=spent)


def make_think(deps: Deps, agent: str, tools: Sequence[BaseTool]):
    """Node: the agent's policy proposes tool calls (an AIMessage appended to ``scratch``).

    With a remote policy and little time left, the ``fewer_items`` degrade step lowers ``search_k``.
    Model calls are metered into ``calls``; degrade steps into ``degraded``.
    """
    policy = deps.models.agents[agent]

    async def think(state: dict, runtime: Runtime[Context]) -> dict:
        ctx = runtime.context if runtime.context is not None else Context()
        budget = branch_budget(state, ctx)
        if expected_ms(policy) > 0 and isinstance(ctx, Context):
            k = items_for(budget, ctx.search_k, expected_ms(policy), expected_ms(deps.models.writer))
            if k != ctx.search_k:
                ctx = dataclasses.replace(ctx, search_k=k)
        with call_scope(budget) as scope:
            msg: AIMessage = await policy.athink(state, tools, ctx)
        update: dict[str, Any] = {"scratch": [msg], "calls": scope.meter.calls, "degraded": budget.degraded}
        if "started" not in state:
            update["started"] = time.perf_counter()
        return update

    return think


def _handle_domain_error(exc: ToolError) -> str:
    """ToolNode error handler: only ToolError subclasses (order and cart errors; ToolNode reads this annotation) are
    turned into tool messages; others raise."""
    return tool_error_message(exc)


def make_execute(tools: Sequence[BaseTool]) -> ToolNode:
    """Node: run the proposed tool calls (in parallel) with LangGraph's ToolNode on the ``scratch`` key.

    Expected domain errors become ToolMessages with status 'error' and a JSON body (tools.orders.tool_error_message);
    unexpected errors and interrupts propagate.
    """
    return ToolNode(list(tools), messages_key="scratch", handle_tool_errors=_handle_domain_error)


def latest_evidence(scratch: Sequence[Any]) -> list[dict]:
    """Artifacts of the ToolMessages after the last AIMessage in ``scratch`` (errors parsed from JSON)."""
    out: list[dict] = []
    for msg in reversed(list(scratch)):
        if isinstance(msg, AIMessage):
            break
        if isinstance(msg, ToolMessage):
            if msg.status == "error":
                try:
                    out.append({"kind": "error", **json.loads(str(msg.content))})
                except json.JSONDecodeError:
                    out.append({"kind": "error", "error": "tool_failed", "message": str(msg.content)})
            elif isinstance(msg.artifact, dict):
                out.append(msg.artifact)
    out.reverse()
    return out


def make_reflect(deps: Deps, agent: str):
    """Node: critique the latest tool results; bumps the ``reflections`` loop counter (operator.add).

    First degrade step: a remote critic is skipped (critique ok, ``skip_reflection``) when the time left
    cannot pay for it and the writer. The local critic costs nothing and always runs.
    """
    critic = deps.models.critic

    async def reflect(state: dict, runtime: Runtime[Context]) -> dict:
        evidence = latest_evidence(state.get("scratch") or [])
        budget = branch_budget(state, runtime.context)
        critic_ms = expected_ms(critic)
        if critic_ms > 0 and should_skip_reflection(budget, critic_ms, expected_ms(deps.models.writer)):
            budget.degrade("skip_reflection")
            return {"evidence": evidence, "critique": {"ok": True, "problems": [], "retry_instructions": ""},
                    "reflections": 1, "degraded": budget.degraded}
        with call_scope(budget) as scope:
            critique = await critic.areview_evidence(agent, state.get("intent", ""), state.get("request", ""), evidence)
        return {"evidence": evidence, "critique": critique.model_dump(), "reflections": 1,
                "calls": scope.meter.calls, "degraded": budget.degraded}

    return reflect


def _items(evidence: list[dict]) -> list[dict]:
    out, seen = [], set()
    for ev in evidence:
        for it in ev.get("items") or []:
            if it["mal_id"] not in seen:
                seen.add(it["mal_id"])
                out.append(it)
    return out


def _orders(evidence: list[dict]) -> list[dict]:
    out: dict[str, dict] = {}
    for ev in evidence:
        for o in ev.get("orders") or []:
            out[o["order_id"]] = o
        if ev.get("kind") == "action":
            out[ev["order_id"]] = {**out.get(ev["order_id"], {}), "order_id": ev["order_id"], "status": ev["status"]}
    return list(out.values())


CACHE_SCOPE: Mapping[str, str] = REGISTRY.cache_scope
"""Intent → who may be served a cached answer for it: ``shared`` (any customer: catalog facts and store policies,
written from the request alone) or ``user`` (only the same authenticated customer: recommendations come from their
orders and stored likes). Intents not listed (order, handoff) are never cached: their answers are about the
customer's own orders and tickets. Derived from the agent registry (``AgentSpec.cacheable``/``per_user``)."""

SIDE_EFFECT_EVIDENCE = frozenset({"escalation", "action"})
"""Evidence kinds that record what this turn just did (a ticket opened, an order changed): an answer about them
is never cached nor replaced by a cached one, whoever asks."""

ANSWER_CACHE_VERSION = "v2"
"""Part of every answer-cache key; bumped when what a key covers changes, so older entries are never read."""


def _stable_focus(focus: dict) -> dict:
    """The focus without the turn numbers of its entries (dialogue state): the same question about the same
    focus gets the same cache key whichever turn it was asked in."""
    return {k: ({kk: vv for kk, vv in v.items() if kk != "turn"} if isinstance(v, dict) else v) for k, v in focus.items()}


def answer_cache_key(agent: str, state: dict, context: Any = None, evidence: Sequence[dict] = (),
                     registry: AgentRegistry = REGISTRY) -> str | None:
    """Cache key of a written answer, or None when this answer must not be cached or served from cache.

    SHA-256 of everything the answer depends on: agent, intent, request, the whole message (liked titles are read
    from it), locale, focus (without its turn numbers), ``Context.search_k`` and — for ``user``-scoped intents (CACHE_SCOPE) — the
    authenticated ``Context.user_id`` (never anything from the chat text). None for intents outside CACHE_SCOPE
    and when ``evidence`` (this turn's tool results) records a side effect (SIDE_EFFECT_EVIDENCE). The cached
    value carries its own evidence (see make_respond). Scopes are ``registry.cache_scope`` (CACHE_SCOPE for the
    default registry)."""
    intent = state.get("intent", "")
    scope = registry.cache_scope.get(intent)
    if scope is None or any(e.get("kind") in SIDE_EFFECT_EVIDENCE for e in evidence):
        return None
    user = str(getattr(context, "user_id", "anonymous") or "anonymous") if scope == "user" else None
    blob = json.dumps([agent, intent, state.get("request", ""), state.get("message", ""), state.get("locale", "en"),
                       _stable_focus(state.get("focus") or {}), getattr(context, "search_k", None), scope, user],
                      sort_keys=True, ensure_ascii=False, default=str)
    return f"answer:{ANSWER_CACHE_VERSION}:{scope}:" + hashlib.sha256(blob.encode()).hexdigest()


ANSWER_TTL_S = 600
"""How long a remote writer's answer may be reused by the ``cached_answer`` degrade step (s)."""


def make_respond(deps: Deps, agent: str, registry: AgentRegistry = REGISTRY):
    """Node: the writer role turns the evidence into the answer; emits one AgentResult to ``results``.

    Last degrade step: with a remote writer and less time left than it typically needs, an answer cached for
    the same question (answer_cache_key: scoped to the customer for personalised intents, never for orders,
    handoffs or any answer about a side effect) is used together with the evidence it was written from
    (``cached_answer``: items and the quality gate stay consistent with the text; facts may be up to the
    cache TTL old); otherwise the writer's chain falls to a smaller or the local template writer by itself.
    Remote answers with a cache key are cached for ANSWER_TTL_S. Cacheability comes from ``registry``.
    """
    writer = deps.models.writer

    async def respond(state: dict, runtime: Runtime[Context]) -> dict:
        evidence = state.get("evidence")
        if evidence is None:  # no tools were called (chitchat, out_of_scope)
            evidence = latest_evidence(state.get("scratch") or [])
        critique = state.get("critique") or {}
        task = WriteTask(agent=agent, intent=state.get("intent", ""), request=state.get("request", ""),
                         locale=state.get("locale", "en"), evidence=evidence,
                         instructions=critique.get("retry_instructions", "") if critique.get("ok", True) else "",
                         history=[str(h) for h in (state.get("history") or [])][-4:], focus=focus_view(state.get("focus")))
        budget = branch_budget(state, runtime.context)
        writer_ms = expected_ms(writer)
        key = answer_cache_key(agent, state, runtime.context, evidence, registry) if writer_ms > 0 else None
        text = None
        calls: list[dict] = []
        if key and budget.remaining_ms() - RESERVE_MS < writer_ms:
            cached = await deps.cache.get(key)
            if isinstance(cached, dict) and cached.get("answer"):
                text, evidence = cached["answer"], list(cached.get("evidence") or [])
                budget.degrade("cached_answer")
        if text is None:
            with call_scope(budget) as scope:
                msg = await writer.ainvoke(writer_messages(task))
            text, calls = str(msg.text if hasattr(msg, "text") else msg.content), scope.meter.calls
            if key and any(c["outcome"] == "ok" and not c["model"].startswith("local:") for c in calls):
                await deps.cache.set(key, {"answer": text, "evidence": evidence}, ttl_s=ANSWER_TTL_S)
        orders = _orders(evidence)
        focus_order = orders[0]["order_id"] if len(orders) == 1 else None
        escalation = next((e.get("escalation_id") for e in evidence if e.get("kind") == "escalation"), None)
        started = state.get("started")
        result = {
            "agent": agent, "intent": state.get("intent", ""), "answer": text,
            "items": _items(evidence), "orders": orders, "evidence": evidence,
            "escalation_id": escalation, "focus_order_id": focus_order,
            "ms": round((time.perf_counter() - started) * 1000, 2) if started else 0.0,
            "calls": list(state.get("calls") or []) + calls,
            "degraded": list(dict.fromkeys(list(state.get("degraded") or []) + budget.degraded)),
        }
        return {"results": [result]}

    return respond
