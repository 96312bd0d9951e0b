"""The local profile's ``think`` role: deterministic tool-call policies, one per specialist.

Each policy reads the specialist state (request, intent, focus from earlier turns, the last critique)
and returns an AIMessage with ``tool_calls`` for the execute node — the same message a tool-calling
LLM would produce, so the rest of the subgraph does not know which profile runs.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Sequence

from langchain_core.messages import AIMessage
from langchain_core.tools import BaseTool

from tools.backends.models.followups import direct_fact, order_question, subject_of, subject_query
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
    """{mal_id, title} the request refers to: ``focus.referent`` when classify resolved a follow-up against the
    dialogue state (``focus.followup``), or when the request has a back-reference ("it", "それ") and the plan
    executor set the referent from the first item of the step's dependencies; None otherwise."""
    focus = state.get("focus") or {}
    ref = focus.get("referent")
    if isinstance(ref, dict) and ref.get("mal_id") is not None and (
            focus.get("followup") or is_backreference(state.get("request", ""))):
        return ref
    return None


class SearchPolicy:
    """Search agent: details of a referenced earlier result or of the follow-up's referent (classify resolved
    "who is the author?" against the dialogue state), the best match only (k=1) for a fact question naming its
    work ("who wrote Monster?"; retry ``details:<mal_id>`` then reads that title's details for a synopsis or
    genres question), else a catalog search on the cleaned request.

    An ordinal past the end of the last list (referent kind ``beyond_list``) reads the one title listed (no tool
    for a longer list): the writer names it and asks which title is meant. A back-reference to the plan step's referent
    ("add volume 1 of it") searches that title and volume, or
    gets its details when no volume is named. Retry instruction ``broaden`` (from reflect when nothing was
    found) searches the raw request instead of the cleaned query, then only its first words.
    """

    async def athink(self, state: dict, tools: Sequence[BaseTool], context: Any) -> AIMessage:
        """The next tool calls of the specialist (rules; see the class docstring)."""
        k = getattr(context, "search_k", 5)
        referred = (state.get("focus") or {}).get("referent")
        if isinstance(referred, dict) and referred.get("kind") == "beyond_list":  # "the second one" after one title
            listed = referred.get("listed") or []
            if len(listed) == 1 and not _retry(state):  # its record, so the writer can name it; then asks which
                return _msg(_call("get_title_details", mal_id=int(listed[0])))
            return AIMessage(content="")
        if _retry(state).startswith("details:"):  # a synopsis/genres question found its title: read the details
            return _msg(_call("get_title_details", mal_id=int(_retry(state).split(":", 1)[1])))
        ref = _referenced_item(state)
        if ref is not None and not _retry(state):
            return _msg(_call("get_title_details", mal_id=ref))
        request = state.get("request", "")
        referent = _referent(state)
        if referent is not None and not _retry(state):
            volume = parse_query(request).volume
            if volume is not None and referent.get("title"):
                return _msg(_call("search_catalog", query=f"{referent['title']} vol {volume}", k=1))  # that work only
            return _msg(_call("get_title_details", mal_id=int(referent["mal_id"])))
        if direct_fact(request) and subject_of(request) and not _retry(state):  # "who wrote Monster?": one work, answered directly
            return _msg(_call("search_catalog", query=subject_query(request), k=1))
        query = clean_search_query(request)
        if _retry(state) == "broaden":
            words = query.split()
            query = request if state.get("reflections", 0) == 1 or len(words) < 3 else " ".join(words[: max(1, len(words) // 2)])
        return _msg(_call("search_catalog", query=query, k=k))


_MORE_OF_SAME = re.compile(r"\b(?:more|another|other|others|else|similar|same|it|that|this)\b|もっと|他に|ほかに|似た|同じ|それ|これ",
                           re.I)


class RecommendPolicy:
    """Recommendation agent: liked titles named in the request + the rest of the request as preferences.

    A referenced earlier pick ("tell me more about the second one") gets its details instead; in a plan step,
    "something like it" takes the step's referent as the liked title. A request naming no title that asks for
    more of the same ("something more like it but finished", "他にもある？") keeps the thread's seed
    (``focus.seed``: the title the last recommendations were seeded by) and its filters (``focus.rec_filters``)
    and skips the titles already recommended in the thread (``focus.shown``).
    """

    async def athink(self, state: dict, tools: Sequence[BaseTool], context: Any) -> AIMessage:
        """The next tool calls of the specialist (rules; see the class docstring)."""
        ref = _referenced_item(state)
        if ref is not None and not _retry(state):
            return _msg(_call("get_title_details", mal_id=ref))
        request = state.get("request", "")
        referent = _referent(state)  # "something like it" in a plan step: its dependency's first item
        liked = [] if _retry(state) == "drop_seeds" else (
            [referent["title"]] if referent and referent.get("title") else liked_titles(state.get("message") or request))
        focus = state.get("focus") or {}
        seed = focus.get("seed")
        shown: list[int] = []
        finished = False
        if not liked and _retry(state) != "drop_seeds" and _MORE_OF_SAME.search(request):
            if isinstance(seed, dict) and seed.get("title"):
                liked = [seed["title"]]
            shown = [int(m) for m in focus.get("shown") or []]  # more of the same: not the picks shown before
            finished = bool((focus.get("rec_filters") or {}).get("finished_only"))
        args: dict[str, Any] = {"liked_titles": liked, "preferences": request, "k": getattr(context, "search_k", 5)}
        if shown:
            args["exclude_ids"] = shown[:100]
        if finished:
            args["finished_only"] = True
        return _msg(_call("recommend_manga", **args))


class OrderPolicy:
    """Order agent: status/list, cancel or return for an order id named now or earlier in the thread.

    The order is the one named, else the follow-up's referent, else the focused one. A question about it
    ("can I cancel it?", "when will it arrive?") reads the order (get_order, whose artifact says what the store's
    rules allow); "the most recent one" answering "which order?" carries the asked action.
    Without an order id, lists the customer's orders (those containing a title the request names, when it names
    one: "the Death Note order"; one such order becomes the focused one); reflect then retries with ``act:<action>:<id>``
    when exactly one order is eligible, or the answer asks which order.
    """

    async def athink(self, state: dict, tools: Sequence[BaseTool], context: Any) -> AIMessage:
        """The next tool calls of the specialist (rules; see the class docstring)."""
        retry = _retry(state)
        if retry.startswith("act:"):
            _, action, oid = retry.split(":", 2)
            return _msg(_call(f"{action}_order", order_id=oid))
        request = state.get("request", "")
        focus = state.get("focus") or {}
        ref = focus.get("referent") if isinstance(focus.get("referent"), dict) else {}
        if ref.get("kind") == "orders_with_title" and not find_order_id(request):
            return _msg(_call("list_my_orders", title=request[:500]))  # "the Death Note order"
        oid = find_order_id(request) or ref.get("order_id") or focus.get("order_id")
        asked = order_question(request)
        action = order_action(request)
        question = focus.get("question") if isinstance(focus.get("question"), dict) else {}
        if action == "status" and not asked and ref.get("order_id") and question.get("kind") == "which_order":
            action = question.get("action", "status")  # "the most recent one" answers "which order?"
        if oid is None:  # the orders; those holding a title the request names ("the Death Note order"), if any
            return _msg(_call("list_my_orders", title=request[:500]))
        if asked in ("can_cancel", "can_return", "arrival", "tracking"):
            return _msg(_call("get_order", order_id=oid))  # a question about the order, not a request
        if action == "cancel":
            return _msg(_call("cancel_order", order_id=oid))
        if action == "return":
            return _msg(_call("return_order", order_id=oid, reason=request[:200]))
        return _msg(_call("get_order", order_id=oid))


class ConversationPolicy:
    """Conversation agent: policy lookup for ``faq``, an escalation for ``handoff``, no tool otherwise."""

    async def athink(self, state: dict, tools: Sequence[BaseTool], context: Any) -> AIMessage:
        """The next tool calls of the specialist (rules; see the class docstring)."""
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
