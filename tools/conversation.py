"""Conversation-agent tools: store-policy lookup (FAQ) and human handoff (escalation)."""

from __future__ import annotations

import hashlib

from langchain_core.tools import BaseTool, tool
from langgraph.prebuilt import ToolRuntime
from pydantic import BaseModel, Field

from core.context import Context
from core.deps import Deps


class PolicyInput(BaseModel):  # noqa: D101 - a tool's args_schema: a docstring would become its JSON schema's description, sent to the model
    query: str = Field(description="The customer's policy question (shipping, payment, returns, cancellation, accounts).")


class EscalationInput(BaseModel):  # noqa: D101 - a tool's args_schema: a docstring would become its JSON schema's description, sent to the model
    summary: str = Field(max_length=1000, description="One-paragraph summary of what the customer needs from a human.")


def make_conversation_tools(deps: Deps) -> list[BaseTool]:
    """Tools of the Conversation agent.

    ``search_policies`` retrieves passages of data/policies/<locale>/*.md (artifact kind ``policy``:
    {query, passages:[{doc, heading, text, score}]}; empty when nothing is relevant — never invented).
    ``open_escalation`` records a handoff for a human (artifact kind ``escalation``: {escalation_id}),
    idempotent per thread and summary.
    """

    @tool(args_schema=PolicyInput, response_format="content_and_artifact")
    def search_policies(query: str, runtime: ToolRuntime[Context]) -> tuple[str, dict]:
        """Look up the store's policies and account help for a question."""
        locale = (runtime.state or {}).get("locale", "en")
        passages = deps.policies.retrieve(query, k=2, locale=locale)
        views = [p.to_dict() for p in passages]
        content = "\n\n".join(f"## {p['heading']}\n{p['text']}" for p in views) or "no matching policy"
        return content, {"kind": "policy", "query": query, "passages": views}

    @tool(args_schema=EscalationInput, response_format="content_and_artifact")
    async def open_escalation(summary: str, runtime: ToolRuntime[Context]) -> tuple[str, dict]:
        """Hand the conversation to a human agent; records an escalation ticket."""
        user_id = getattr(runtime.context, "user_id", "anonymous")
        thread_id = str((runtime.config or {}).get("configurable", {}).get("thread_id", "no-thread"))
        key = f"{thread_id}:handoff:{hashlib.sha256(summary.encode()).hexdigest()[:16]}"
        esc_id = await deps.orders.record_escalation(user_id, thread_id, summary, idempotency_key=key)
        return f"escalation {esc_id} opened", {"kind": "escalation", "escalation_id": esc_id, "summary": summary}

    return [search_policies, open_escalation]
