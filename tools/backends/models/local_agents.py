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
    asks_checkout,
    cart_title_words,
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


_EMPTY = re.compile(r"\b(?:empty|clear(?: out)?)\s+(?:my|the)\s+(?:shopping\s+)?(?:cart|basket)\b|"
                    r"\b(?:remove|delete)\s+everything\b|カートを?空に|カートを?クリア|(?:全部|すべて|全て)(?:削除|外して|消して)", re.I)
"""Asks to empty the cart ("empty my cart", "clear the basket", "カートを空にして")."""
_REMOVE = re.compile(r"\b(?:remove|delete|take (?:out|off)|drop|get rid of|clear)\b|削除|外して|取り除|消して|取り消|いらない|要らない",
                     re.I)
_SET_QTY = re.compile(r"\b(?:change|make|set|update|want|need)\b.{0,40}?\b(\d{1,2})\b(?!\s*(?:st|nd|rd|th)\b)(?!\s*vol)|"
                      r"\b(?:bump|raise|increase|lower|reduce|up)\b.{0,20}?\bto (\d{1,2})\b|"
                      r"\b(\d{1,2}) cop(?:y|ies)\b.{0,20}?\b(?:not|instead)\b|\binstead of \d{1,2}\b.{0,20}?\b(\d{1,2})\b|"
                      r"(\d{1,2})\s*冊に|数量を\s*(\d{1,2})", re.I)
"""Sets a line's quantity ("make it 3 copies", "change Berserk to 2", "bump it up to 2", "2 copies of it, not 1",
"2冊にして")."""
_ADD = re.compile(r"\b(?:add|put|throw|stick|pop|grab|toss|place(?!\s+(?:the|my|an|this)\s+order)|include|get me|"
                  r"i(?:'ll| will) take)\b|入れ|追加|買い(?:たい|ます)", re.I)
_VIEW = re.compile(r"\b(?:show|view|see|check|display|list|what'?s|what is|look at|open)\b|\?\s*$|見せ|確認|表示|中身|何が|なにが|入って|"
                   r"どうなって|どんな|教えて|[?？]\s*$",
                   re.I)
_QTY = re.compile(r"\b(\d{1,2})\s*(?:copies|copy|books)\b|\bx\s*(\d{1,2})\b|\b(\d{1,2})\s*x\b|(\d{1,2})\s*冊|"
                  r"\b(two|three|four|five)\s+(?:copies|of (?:it|them|those))\b", re.I)
_WORD_NUM = {"two": 2, "three": 3, "four": 4, "five": 5}
def cart_quantity(request: str) -> int | None:
    """Copies a cart request names ("2 copies", "x3", "3冊"), else None."""
    m = _QTY.search(request)
    if not m:
        return None
    for g in m.groups():
        if g:
            return _WORD_NUM.get(g.lower()) or int(g)
    return None


class CartPolicy:
    """Cart agent: ``checkout`` when asked to order the cart; ``remove_from_cart`` / ``update_cart_item`` for a
    remove or "make it 3" request; ``empty_cart`` for "empty my cart"; ``add_to_cart`` for a title (the referent of a follow-up or plan step — "add volume 1
    of it to my cart", "add the second one" — or the title words of the request, linked by the tool), with the volume
    (default 1) and copies (default 1) the request names; else ``view_cart`` ("show my cart", "カートを見せて").
    After a tool error, no further call: the writer explains it."""

    async def athink(self, state: dict, tools: Sequence[BaseTool], context: Any) -> AIMessage:
        """The next tool calls of the specialist (rules; see the class docstring)."""
        if state.get("reflections"):
            return AIMessage(content="")
        request = state.get("request", "")
        referent = _referent(state) or {}
        ordinal_pick = _referenced_item(state)
        mal_id = int(referent["mal_id"]) if referent.get("mal_id") is not None else ordinal_pick
        words = cart_title_words(request) if mal_id is None else ""
        target: dict[str, Any] = {"mal_id": mal_id} if mal_id is not None else ({"title": words} if words else {})
        volume = parse_query(request).volume
        if asks_checkout(request) and not _ADD.search(request):
            return _msg(_call("checkout"))
        if _EMPTY.search(request):
            return _msg(_call("empty_cart"))
        if _REMOVE.search(request):
            return _msg(_call("remove_from_cart", **target, **({"volume": volume} if volume else {})))
        qty = _SET_QTY.search(request)
        if qty and not _ADD.search(request):
            n = int(next(g for g in qty.groups() if g))
            return _msg(_call("update_cart_item", quantity=n, **target, **({"volume": volume} if volume else {})))
        if target and (_ADD.search(request) or not _VIEW.search(request)):
            return _msg(_call("add_to_cart", **target, volume=volume or 1, quantity=cart_quantity(request) or 1))
        return _msg(_call("view_cart"))


def local_agent_policies() -> dict[str, Any]:
    """The local think policies keyed by specialist name (one per registered agent)."""
    return {"search": SearchPolicy(), "recommend": RecommendPolicy(), "order": OrderPolicy(),
            "conversation": ConversationPolicy(), "cart": CartPolicy()}
