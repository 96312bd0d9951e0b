"""Dialogue state helpers (pure): the focus after a turn, and the resolution of a follow-up against it.

``focus_after_turn`` is what the merge node writes to ``SupervisorState.focus`` (keys in core/state.py's
docstring); ``resolve_followup`` is what classify calls after the router: a message with no catalog entity or
order id of its own that the follow-up rules recognise (tools/backends/models/followups.py), with a focus of
the right kind, goes to the agent that owns that focus (a work → search, an order → order), carrying the
item or order as ``referent``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from core.state import FOCUS_MAX, focus_reducer
from tools.backends.models.followups import parse_followup
from tools.backends.models.text_rules import order_action

_STATUS_WORD = re.compile(r"\bstatus\b|状況|状態", re.I)

__all__ = ["FOCUS_MAX", "Resolution", "focus_after_turn", "focus_write", "resolve_followup"]


@dataclass(frozen=True, slots=True)
class Resolution:
    """A follow-up resolved against the focus: ``intent`` to serve ("search" | "order") and ``referent``
    ({kind: "item", mal_id, title} | {kind: "order", order_id}, or None: the order agent lists the orders)."""

    intent: str
    referent: dict | None


def focus_after_turn(focus: Mapping[str, Any] | None, results: Sequence[Mapping[str, Any]], turn: int,
                     message: str = "") -> dict:
    """The dialogue state after a turn, from the previous ``focus`` and the turn's AgentResults (intent order).

    A list of titles (search/recommend evidence with items) replaces ``items`` and focuses its first title; a
    title's details focus that title and keep the list shown before. Several orders replace ``orders`` and drop
    the focused order (ambiguous now); one order (``focus_order_id``) becomes the focused order. ``question`` is
    set when several orders were shown for a cancel/return request without an order id (the answer asks which),
    and cleared otherwise. Recommendations seeded by a named title set ``seed`` to it (unseeded ones clear it), so
    "more like it" continues from the same seed; their filters ("but finished") are kept in ``rec_filters``;
    every pick shown is added to ``shown``. When several results (a multi-intent turn) show titles or orders, the first one in
    answer order is the focus. ``turn`` is the thread's turn number (SupervisorState.turn).
    """
    out = dict(focus or {})
    out.pop("question", None)
    out.pop("referent", None)
    out.pop("followup", None)
    for r in reversed(list(results)):  # the first result in answer order wins
        items = list(r.get("items") or [])
        kinds = {e.get("kind") for e in r.get("evidence") or []}
        if items:
            top = items[0]
            listed = bool(kinds & {"search", "recommend"}) or not kinds
            if listed:
                out["items"] = [it["mal_id"] for it in items][:FOCUS_MAX]
                out["items_intent"] = r.get("intent", "search")
                out["last_list"] = {"kind": "items", "turn": turn, "intent": r.get("intent", "search")}
            out["item"] = {"mal_id": top["mal_id"], "title": top.get("title", ""), "turn": turn,
                           "source": "details" if "details" in kinds and not listed else r.get("intent", "search")}
            out["kind"] = "item"
        recs = [e for e in r.get("evidence") or [] if e.get("kind") == "recommend"]
        if recs:
            seeds = [sd for e in recs for sd in e.get("seeds") or []]
            if seeds:
                out["seed"] = {"mal_id": seeds[0]["mal_id"], "title": seeds[0].get("title", ""), "turn": turn}
            else:
                out.pop("seed", None)
            if any(e.get("finished_only") for e in recs):
                out["rec_filters"] = {"finished_only": True}
            else:
                out.pop("rec_filters", None)
            picked = [it["mal_id"] for it in items]
            out["shown"] = list(dict.fromkeys(picked + list(out.get("shown") or [])))
        orders = list(r.get("orders") or [])
        if len(orders) > 1:
            out["orders"] = [o["order_id"] for o in orders][:FOCUS_MAX]
            out["last_list"] = {"kind": "orders", "turn": turn, "intent": r.get("intent", "order")}
            out.pop("order_id", None)
            out.pop("order", None)
            out["kind"] = "order"
            action = order_action(message)
            if action in ("cancel", "return"):
                out["question"] = {"kind": "which_order", "action": action, "turn": turn}
        focused = r.get("focus_order_id")
        if focused:
            status = next((o.get("status") for o in orders if o.get("order_id") == focused), None)
            out["order_id"] = focused
            out["order"] = {"order_id": focused, "status": status, "turn": turn, "source": r.get("intent", "order")}
            out["kind"] = "order"
    return focus_reducer({}, out)


def focus_write(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict:
    """The write to the ``focus`` channel that turns ``old`` into ``new`` under focus_reducer (keys gone → None)."""
    return {**{k: None for k in (old or {}) if k not in new}, **new}


def _pick(ids: Sequence[Any], index: int) -> Any:
    try:
        return ids[index]
    except IndexError:
        return None


def resolve_followup(text: str, focus: Mapping[str, Any] | None) -> Resolution | None:
    """The agent and referent of a follow-up, or None when ``text`` names its own entity, is no follow-up, or the
    focus has nothing of the kind it asks about (then the router's decision stands).

    Kind asked: an order question ("can I cancel it?", "いつ届く") → order; a catalog fact ("who is the author?",
    "何巻まで", "在庫は") or a volume ("3巻はありますか") → item; "the most recent one" → order (of the last order list); an ordinal ("the second
    one") → whatever the last list held; more of the last list ("any others?", "他にもある？") after recommendations →
    recommend, with no referent (the policy keeps the thread's seed and skips what was shown); a bare back-reference ("tell me more about it", "それ") → ``focus.kind``.
    """
    f = parse_followup(text)
    if not f.leans_on_context:
        return None
    focus = focus or {}
    items = list(focus.get("items") or [])
    item = focus.get("item") if isinstance(focus.get("item"), dict) else None
    orders = list(focus.get("orders") or [])
    order_id = focus.get("order_id")
    last_kind = (focus.get("last_list") or {}).get("kind")
    if f.order_q or (f.fact == "status" and focus.get("kind") == "order" and _STATUS_WORD.search(text or "")):
        kind = "order"  # "what's the status?" right after an order was discussed is about the order
    elif f.fact or f.volume is not None:
        kind = "item"
    elif f.recency:
        kind = "order" if orders else None
    elif f.ordinal is not None:
        kind = "order" if last_kind == "orders" else "item"
    elif f.more and not f.backref:  # "any others?" continues the last list of titles
        if last_kind == "items" and (focus.get("last_list") or {}).get("intent") == "recommend":
            return Resolution("recommend", None)
        return None
    else:
        kind = focus.get("kind")
    if kind == "item":
        if f.ordinal is not None:
            mal_id = _pick(items, f.ordinal)
        else:
            mal_id = item.get("mal_id") if item else (items[0] if items else None)
        if mal_id is None:
            return None
        title = item.get("title", "") if item and item.get("mal_id") == mal_id else ""
        return Resolution("search", {"kind": "item", "mal_id": int(mal_id), "title": title})
    if kind == "order":
        if f.recency is not None or f.ordinal is not None:
            oid = _pick(orders, 0 if f.recency == "newest" else -1 if f.recency == "oldest" else f.ordinal)
        else:
            oid = order_id
        if oid is None:
            return Resolution("order", None) if orders and f.order_q else None
        return Resolution("order", {"kind": "order", "order_id": str(oid)})
    return None
