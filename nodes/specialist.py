"""Node factories of a specialist subgraph: think → execute (tools) → reflect → respond."""

from __future__ import annotations

import json
import time
from typing import Any, Sequence

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import BaseTool
from langgraph.prebuilt import ToolNode
from langgraph.runtime import Runtime

from core.context import Context
from core.deps import Deps
from core.errors import OrderError
from core.ports import WriteTask
from nodes.prompts import writer_messages
from tools.orders import tool_error_message


def make_think(deps: Deps, agent: str, tools: Sequence[BaseTool]):
    """Node: the agent's policy proposes tool calls (an AIMessage appended to ``scratch``)."""
    policy = deps.models.agents[agent]

    async def think(state: dict, runtime: Runtime[Context]) -> dict:
        msg: AIMessage = await policy.athink(state, tools, runtime.context)
        update: dict[str, Any] = {"scratch": [msg]}
        if "started" not in state:
            update["started"] = time.perf_counter()
        return update

    return think


def _handle_domain_error(exc: OrderError) -> str:
    """ToolNode error handler: only OrderError subclasses are turned into tool messages; others raise."""
    return tool_error_message(exc)


def make_execute(tools: Sequence[BaseTool]) -> ToolNode:
    """Node: run the proposed tool calls (in parallel) with LangGraph's ToolNode on the ``scratch`` key.

    Expected domain errors become ToolMessages with status 'error' and a JSON body (DESIGN example 9);
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
    """Node: critique the latest tool results; bumps the ``reflections`` loop counter (operator.add)."""
    critic = deps.models.critic

    async def reflect(state: dict) -> dict:
        evidence = latest_evidence(state.get("scratch") or [])
        critique = await critic.areview_evidence(agent, state.get("intent", ""), state.get("request", ""), evidence)
        return {"evidence": evidence, "critique": critique.model_dump(), "reflections": 1}

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


def make_respond(deps: Deps, agent: str):
    """Node: the writer role turns the evidence into the answer; emits one AgentResult to ``results``."""
    writer = deps.models.writer

    async def respond(state: dict) -> dict:
        evidence = state.get("evidence")
        if evidence is None:  # no tools were called (chitchat, out_of_scope)
            evidence = latest_evidence(state.get("scratch") or [])
        critique = state.get("critique") or {}
        task = WriteTask(agent=agent, intent=state.get("intent", ""), request=state.get("request", ""),
                         locale=state.get("locale", "en"), evidence=evidence,
                         instructions=critique.get("retry_instructions", "") if critique.get("ok", True) else "")
        msg = await writer.ainvoke(writer_messages(task))
        orders = _orders(evidence)
        focus_order = orders[0]["order_id"] if len(orders) == 1 else None
        escalation = next((e.get("escalation_id") for e in evidence if e.get("kind") == "escalation"), None)
        started = state.get("started")
        result = {
            "agent": agent, "intent": state.get("intent", ""), "answer": str(msg.content),
            "items": _items(evidence), "orders": orders, "evidence": evidence,
            "escalation_id": escalation, "focus_order_id": focus_order,
            "ms": round((time.perf_counter() - started) * 1000, 2) if started else 0.0,
        }
        return {"results": [result]}

    return respond
