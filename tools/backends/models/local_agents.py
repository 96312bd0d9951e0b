"""The local profile's ``think`` role: deterministic tool-call policies, one per specialist.

Each policy reads the specialist state (request, intent, focus from earlier turns, the last critique)
and returns an AIMessage with ``tool_calls`` for the execute node — the same message a tool-calling
LLM would produce, so the rest of the subgraph does not know which profile runs.
"""

from __future__ import annotations

import uuid
from typing import Any, Sequence

from langchain_core.messages import AIMessage
from langchain_core.tools import BaseTool

from tools.backends.models.text_rules import (
    clean_search_query,
    find_order_id,
    is_backreference,
    liked_titles,
    order_action,
    referenced_index,
)
from tools.backends.query import parse_query


def _call(name: str, **args: Any) -> dict:
    return {"name": name, "args": args, "id": f"call_{uuid.uuid4().hex[:12]}", "type": "tool_call"}


def _msg(*calls: dict) -> AIMessage:
    return AIMessage(content="", tool_calls=list(calls))


def _retry(state: dict) -> str:
    return (state.get("critique") or {}).get("retry_instructions", "") if state.get("reflections") else ""


def _referenced_item(state: dict) -> int | None:
    """mal_id of the item the request points back to ("the second one"), from the thread's focus."""
    idx = referenced_index(state.get("request", ""))
    items = (state.get("focus") or {}).get("items") or []
    if idx is None or not items:
        return None
    try:
        return int(items[idx])
    except IndexError:
        return None


def _referent(state: dict) -> dict | None:
    """{mal_id, title} a back-reference ("it", "それ") in the request means: ``focus.referent``, which the plan
    executor sets for a step from the first item of its dependencies; None without one or without a back-reference."""
    ref = (state.get("focus") or {}).get("referent")
    if isinstance(ref, dict) and ref.get("mal_id") is not None and is_backreference(state.get("request", "")):
        return ref
    return None


class SearchPolicy:
    """Search agent: details of a referenced earlier result, else a catalog search on the cleaned request.

    A back-reference to the plan step's referent ("add volume 1 of it") searches that title and volume, or
    gets its details when no volume is named. Retry instruction ``broaden`` (from reflect when nothing was
    found) searches the raw request instead of the cleaned query, then only its first words.
    """

    async def athink(self, state: dict, tools: Sequence[BaseTool], context: Any) -> AIMessage:
        k = getattr(context, "search_k", 5)
        ref = _referenced_item(state)
        if ref is not None and not _retry(state):
            return _msg(_call("get_title_details", mal_id=ref))
        request = state.get("request", "")
        referent = _referent(state)
        if referent is not None and not _retry(state):
            volume = parse_query(request).volume
            if volume is not None and referent.get("title"):
                return _msg(_call("search_catalog", query=f"{referent['title']} vol {volume}", k=k))
            return _msg(_call("get_title_details", mal_id=int(referent["mal_id"])))
        query = clean_search_query(request)
        if _retry(state) == "broaden":
            words = query.split()
            query = request if state.get("reflections", 0) == 1 or len(words) < 3 else " ".join(words[: max(1, len(words) // 2)])
        return _msg(_call("search_catalog", query=query, k=k))


class RecommendPolicy:
    """Recommendation agent: liked titles named in the request + the rest of the request as preferences.

    A referenced earlier pick ("tell me more about the second one") gets its details instead; in a plan step,
    "something like it" takes the step's referent as the liked title.
    """

    async def athink(self, state: dict, tools: Sequence[BaseTool], context: Any) -> AIMessage:
        ref = _referenced_item(state)
        if ref is not None and not _retry(state):
            return _msg(_call("get_title_details", mal_id=ref))
        request = state.get("request", "")
        referent = _referent(state)  # "something like it" in a plan step: its dependency's first item
        liked = [] if _retry(state) == "drop_seeds" else (
            [referent["title"]] if referent and referent.get("title") else liked_titles(state.get("message") or request))
        return _msg(_call("recommend_manga", liked_titles=liked, preferences=request, k=getattr(context, "search_k", 5)))


class OrderPolicy:
    """Order agent: status/list, cancel or return for an order id named now or earlier in the thread.

    Without an order id, lists the customer's orders; reflect then retries with ``act:<action>:<id>``
    when exactly one order is eligible, or the answer asks which order.
    """

    async def athink(self, state: dict, tools: Sequence[BaseTool], context: Any) -> AIMessage:
        retry = _retry(state)
        if retry.startswith("act:"):
            _, action, oid = retry.split(":", 2)
            return _msg(_call(f"{action}_order", order_id=oid))
        request = state.get("request", "")
        oid = find_order_id(request) or (state.get("focus") or {}).get("order_id")
        action = order_action(request)
        if oid is None:
            return _msg(_call("list_my_orders"))
        if action == "cancel":
            return _msg(_call("cancel_order", order_id=oid))
        if action == "return":
            return _msg(_call("return_order", order_id=oid, reason=request[:200]))
        return _msg(_call("get_order", order_id=oid))


class ConversationPolicy:
    """Conversation agent: policy lookup for ``faq``, an escalation for ``handoff``, no tool otherwise."""

    async def athink(self, state: dict, tools: Sequence[BaseTool], context: Any) -> AIMessage:
        intent, request = state.get("intent"), state.get("request", "")
        if intent == "faq":
            return _msg(_call("search_policies", query=request))
        if intent == "handoff":
            return _msg(_call("open_escalation", summary=request[:1000]))
        return AIMessage(content="")


def local_agent_policies() -> dict[str, Any]:
    """The four local think policies keyed by specialist name."""
    return {"search": SearchPolicy(), "recommend": RecommendPolicy(), "order": OrderPolicy(),
            "conversation": ConversationPolicy()}
