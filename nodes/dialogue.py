"""Dialogue state helpers (pure): the focus after a turn, and the resolution of a follow-up against it.

``focus_after_turn`` is what the merge node writes to ``SupervisorState.focus`` (keys in core/state.py's
docstring); ``resolve_followup`` is what classify calls after the router: a message with no catalog entity or
order id of its own that the follow-up rules recognise (tools/backends/models/followups.py), with a focus of
the right kind, goes to the agent that owns that focus (a work → search, an order → order), carrying the
item or order as ``referent``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence, cast

from core.state import FOCUS_MAX, focus_reducer
from nodes.scope import ADD_ELSEWHERE, CART_ADD, CART_CUE, CART_EDIT, CART_VERB, POLICY_ASK, POLICY_CUE
from tools.backends.models.followups import parse_followup
from tools.backends.models.text_rules import asks_checkout, cart_title_words, order_action, split_clauses

_STATUS_WORD = re.compile(r"\bstatus\b|状況|状態", re.I)
_OPEN_REQUEST = re.compile(r"\b(?:any|some|other|all|every)\s+(?:\w+\s+){0,2}(?:manga|mangas|titles?|series|books?|comics?|"
                           r"works?|ones?)\b|\b(?:something|anything|recommend\w*|suggest\w*|similar|like|list)\b|"
                           r"おすすめ|オススメ|似た|みたいな|他の|ほかの|一覧|(?:全部|全て|すべて)(?!で|合わせ|あわせ)", re.I)
"""A request for titles in general ("any finished manga?", "something ongoing", "おすすめの完結作品"): never a
follow-up about the focused work, even when it names no entity."""
_ASK_ABOUT = re.compile(r"^\s*(?:and|so|ok|okay|then)?[,\s]*(?:what|how) about\b|^\s*(?:and|also)\s+(?:to|for|with)\b|"
                        r"^\s*(?:and|or|also)\s+[A-Z][\w'.-]*(?:\s+[A-Z][\w'.-]*){0,2}\s*[?？]\s*$|"
                        r"^[^。？?]{1,20}(?:は|って|だと|なら)(?:どう(?:ですか|でしょう)?)?\s*[？?]?\s*$|"
                        r"^[^。？?]{1,20}も(?:大丈夫|いける|いけます|OK|オーケー|可能|でき(?:る|ます))(?:ですか|でしょうか)?\s*[？?]?\s*$", re.I)
"""A short question carried over from the last one ("what about South Korea?", "and Poland?", "スウェーデンは？",
"ポーランドも大丈夫？")."""
_NAME_WORD = re.compile(r"(?<=[a-z,;:!?] )[A-Z][\w'!-]+")
"""A capitalised word after the start of a sentence ("another thing, is Reborn! complete?"): likely a title the
linker does not know, so the message may name its own subject."""
_ORDER_WORD = re.compile(r"\b(?:orders?|ordered|parcels?|packages?|deliver(?:y|ies)|the one (?:with|that has|containing)|in it|"
                         r"(?:i|we) (?:bought|purchased|got))\b|注文|荷物|配送|入って(?:る|いる)|入った|(?:を|で)(?:頼んだ|買った|購入した)", re.I)
"""Names an order ("the Death Note order", "the one where I bought Death Note", "進撃の巨人が入ってる注文",
"進撃の巨人を頼んだやつ"): with a title, it picks an order by its contents."""
_SIMILAR = re.compile(r"(?<!\bi )(?<!\breally )\blike (?:it|that|this|those|these|them)\b|\bsimilar\b|\bin the vein\b|"
                      r"\balong the lines\b|\bsame (?:vibe|feel|kind)\b|似た|似て(?:る|いる)|みたいな|のような|っぽい", re.I)
"""Asks for titles like the one in focus ("something like it", "anything similar?", "これに似た作品は？")."""

__all__ = ["FOCUS_MAX", "Resolution", "focus_after_turn", "focus_write", "resolve_followup"]


@dataclass(frozen=True, slots=True)
class Resolution:
    """A follow-up resolved against the focus: ``intent`` to serve ("search" | "order" | "recommend" | "faq" | "cart") and
    ``referent`` ({kind: "item", mal_id, title} | {kind: "order", order_id} | {kind: "orders_with_title"} |
    {kind: "beyond_list", position, count, listed}: an ordinal past the end of the last list, or None: the agent works
    from the message and the thread's focus)."""

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
    every pick shown is added to ``shown``. ``last_intent`` is the intent of the turn's first result. When several
    results (a multi-intent turn) show titles or orders, the first one in
    answer order is the focus. ``turn`` is the thread's turn number (SupervisorState.turn).
    """
    out = dict(focus or {})
    if results:
        out["last_intent"] = results[0].get("intent") or out.get("last_intent")
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


def _cart_followup(text: str, f: Any, focus: Mapping[str, Any], linked: Any | None) -> Resolution | None:
    """A one-clause message about the cart → cart: it names the cart or its checkout ("add it to my cart", "カートを
    見せて", "レジに進んで"), asks to add a work it names or points at ("add Monster vol 2", "also add the second one",
    "Xの8巻を1冊追加で"), or edits / checks out right after a cart turn ("remove it", "make it 3", "place my order").
    The work it points back to (an ordinal into the last list, else the focused work) is the referent when it names
    none of its own. None for a store-policy question that only mentions the cart ("is Apple Pay supported at
    checkout?") and for several clauses (the planner's: "find X and add it to my cart")."""
    t = text or ""
    named = linked is not None and bool(getattr(linked, "named_titles", None) or getattr(linked, "has_entity", False))
    if POLICY_CUE.search(t) and not CART_VERB.search(t):
        return None
    points = named or f.volume is not None or f.ordinal is not None or f.backref
    after_cart = focus.get("last_intent") == "cart" and bool(CART_EDIT.search(t) or asks_checkout(t))
    if not (CART_CUE.search(t) or (points and CART_ADD.search(t) and not ADD_ELSEWHERE.search(t)) or after_cart):
        return None
    if len(split_clauses(text)) > 1 or f.order_id:
        return None
    own = linked is not None and (getattr(linked, "has_entity", False) or getattr(linked, "named_titles", None))
    only_phrasing = not cart_title_words(t)  # "can you put vol 1 of this in my cart?": the work is the focused one
    if own or not (f.backref or f.ordinal is not None or only_phrasing):
        return Resolution("cart", None)
    items = list(focus.get("items") or [])
    item = focus.get("item") if isinstance(focus.get("item"), dict) else None
    mal_id = _pick(items, f.ordinal) if f.ordinal is not None else (item or {}).get("mal_id")
    if mal_id is None:
        return Resolution("cart", None)
    title = item.get("title", "") if item and item.get("mal_id") == mal_id else ""
    return Resolution("cart", {"kind": "item", "mal_id": int(mal_id), "title": title})


def resolve_followup(text: str, focus: Mapping[str, Any] | None, linked: Any | None = None) -> Resolution | None:
    """The agent and referent of a follow-up, or None when ``text`` names its own entity, is no follow-up, or the
    focus has nothing of the kind it asks about (then the router's decision stands).

    Kind asked: an order question ("can I cancel it?", "いつ届く") → order; a catalog fact ("who is the author?",
    "何巻まで", "在庫は") or a volume ("3巻はありますか") → item; "the most recent one" → order (of the last order list); an ordinal ("the second
    one") → whatever the last list held (past its end: search, referent {kind: "beyond_list", position, count,
    listed (mal_ids)}, answered by naming what was listed and asking which title); more of the last list ("any others?", "他にもある？") after recommendations →
    recommend, with no referent (the policy keeps the thread's seed and skips what was shown); a bare back-reference
    ("tell me more about it", "それ") → ``focus.kind``.

    A one-clause message naming the cart ("add it to my cart", "show my cart", "カートに入れて") or changing a cart
    line right after a cart turn ("remove it", "make it 3") → cart (``_cart_followup``).

    A message naming an order and a title while orders are in focus ("the Death Note order") → order, referent
    {kind: "orders_with_title"}: the order agent lists the orders holding that title.

    Titles like the one in focus ("something like it", "anything similar?", "これに似た作品は？") → recommend, seeded
    by ``focus.item`` (referent {kind: "item"}), or, right after recommendations, by the thread's seed (no referent).

    A catalog-fact wording about a store-policy topic with no back-reference ("how much is shipping?", "送料はいくら？")
    is not about the focused title: None (the router's decision stands).

    A short carried-over question ("what about South Korea?", "スウェーデンは？") right after a policy answer
    (``focus.last_intent`` "faq") → faq.

    ``linked``: the entity linker's reading of ``text`` (``entities.Linked``; None: the follow-up rules alone).
    When it finds no title or author, words the rules leave over ("what's the volume count?" → 'count') do not
    make the message name its own subject, unless it asks for titles in general (``_OPEN_REQUEST``).
    """
    f = parse_followup(text)
    focus = focus or {}
    cart = _cart_followup(text, f, focus, linked)
    if cart is not None:
        return cart
    if (focus.get("last_intent") == "faq" and f.fact is None and f.order_q is None and not f.order_id
            and _ASK_ABOUT.search(text or "")):
        return Resolution("faq", None)  # "what about South Korea?" right after a policy answer
    if (linked is not None and focus.get("orders") and getattr(linked, "titles", None) and not f.order_id
            and _ORDER_WORD.search(text or "") and not _SIMILAR.search(text or "")):
        return Resolution("order", {"kind": "orders_with_title"})  # picked by a title it holds: the agent filters
    if (linked is not None and f.subject and not f.order_id and not getattr(linked, "has_entity", True)
            and not getattr(linked, "named_titles", None) and not _OPEN_REQUEST.search(text or "")
            and not _NAME_WORD.search(text or "")):
        # words are left ("what's the volume count?", "それっていくらするの？") but the entity linker finds no title
        # or author in them: the message names nothing of its own
        f = dataclasses.replace(f, subject="")
    own_entity = linked is not None and (getattr(linked, "has_entity", False) or getattr(linked, "named_titles", None))
    if _SIMILAR.search(text or "") and not f.order_id and not own_entity and (f.backref or linked is not None):
        last = focus.get("last_list") or {}
        if last.get("kind") == "items" and last.get("intent") == "recommend" and focus.get("seed"):
            return Resolution("recommend", None)  # more like the thread's seed, skipping what was shown
        item = focus.get("item") if isinstance(focus.get("item"), dict) else None
        if item and item.get("mal_id") is not None and item.get("title"):  # "something like it": seeded by the focus
            return Resolution("recommend", {"kind": "item", "mal_id": int(item["mal_id"]), "title": item["title"]})
    if not f.leans_on_context:
        return None
    if _OPEN_REQUEST.search(text or "") and not f.more and f.ordinal is None and not f.backref:
        return None  # "any finished manga?": titles in general, not the focused work's status
    items = list(focus.get("items") or [])
    item = focus.get("item") if isinstance(focus.get("item"), dict) else None
    orders = list(focus.get("orders") or [])
    order_id = focus.get("order_id")
    last_kind = (focus.get("last_list") or {}).get("kind")
    kind: str | None
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
    if POLICY_ASK.search(text or "") and not f.backref and f.ordinal is None and not f.order_id:
        return None  # "ok, what's your return window?" after orders: the store's policy, not one order's
    if kind == "item" and f.fact and not f.backref and f.ordinal is None and POLICY_CUE.search(text or ""):
        return None  # "ok thanks, and how much is shipping?" after a title: a policy question, not the title's price
    if kind == "item":
        if f.ordinal is not None:
            mal_id = _pick(items, f.ordinal)
            if mal_id is None and items:  # "the second one" after a list of one: ask which, do not guess
                return Resolution("search", {"kind": "beyond_list", "position": f.ordinal + 1, "count": len(items),
                                             "listed": [int(i) for i in items]})
        else:
            mal_id = item.get("mal_id") if item else (items[0] if items else None)
        if mal_id is None:
            return None
        title = item.get("title", "") if item and item.get("mal_id") == mal_id else ""
        return Resolution("search", {"kind": "item", "mal_id": int(mal_id), "title": title})
    if kind == "order":
        if f.recency is not None or f.ordinal is not None:
            oid = _pick(orders, 0 if f.recency == "newest" else -1 if f.recency == "oldest" else cast(int, f.ordinal))  # recency is newest/oldest
        else:
            oid = order_id
        if oid is None:
            return Resolution("order", None) if orders and f.order_q else None
        return Resolution("order", {"kind": "order", "order_id": str(oid)})
    return None
