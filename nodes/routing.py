"""Pure routing functions: state in, node name(s) out. No model, no I/O; unit-tested directly."""

from __future__ import annotations

import re
from typing import Literal, Mapping, Sequence

from core.agents import REGISTRY, AgentRegistry
from core.ports import RouterDecision
from tools.backends.models.text_rules import is_backreference, liked_titles, referenced_index

AGENT_OF: Mapping[str, str] = REGISTRY.agent_of
"""Intent label → specialist name (Conversation serves faq, chitchat, handoff, out_of_scope); from core/agents.py."""

AGENT_NODES: tuple[str, ...] = REGISTRY.nodes
"""The supervisor's specialist node names (``{agent}_agent``), registry order."""

FOLLOW_UP_MAX_SCORE = 0.9
"""A back-referencing message follows the active specialist unless the router is at least this sure."""
LOW_CONFIDENCE = 0.45
"""Below this top score, a short message is treated as a follow-up of the active specialist."""


def agent_node(intent: str, registry: AgentRegistry = REGISTRY) -> str:
    """Node name of the specialist serving ``intent`` in ``registry`` (e.g. 'faq' → 'conversation_agent').

    Raises KeyError for a label no registered agent serves."""
    return registry.node(intent)


def resolve_intents(decision: RouterDecision, text: str, active_intent: str | None,
                    items_intent: str | None = None, registry: AgentRegistry = REGISTRY) -> list[str]:
    """The intents this turn serves, given the router's decision and the thread's active specialist.

    Follow-ups ("what about the second one?", "yes, cancel it", "それは？") return to the active
    specialist's intent unless the router confidently names another task (small talk never overrides a
    back-reference) — langgraph-swarm's active-agent idea. An ordinal ("the second one", "2つ目") points
    at the last list of titles shown, so it goes to ``items_intent``, the specialist that showed it. Which
    intents can be returned to and which list titles are the ``registry``'s (``follow_ups``, ``lists_titles``).
    """
    top = max(decision.scores.values(), default=0.0) if decision.scores else 1.0
    follow_able = active_intent in registry.follow_up_intents
    small_talk = bool(decision.intents) and decision.intents[0] in ("chitchat", "out_of_scope")
    if items_intent in registry.title_list_intents and referenced_index(text) is not None and (small_talk or top < FOLLOW_UP_MAX_SCORE):
        return [items_intent]
    if follow_able and is_backreference(text) and (small_talk or top < FOLLOW_UP_MAX_SCORE):
        return [active_intent]  # type: ignore[list-item]
    if follow_able and small_talk and top < LOW_CONFIDENCE and len(text) < 40:
        return [active_intent]  # type: ignore[list-item]
    return list(dict.fromkeys(decision.intents)) or ["out_of_scope"]


_ACK = re.compile(r"(?:(?:ok(?:ay)?|alright|all right|right|sure|great|cool|nice|good|fine|well|so|and|also|then|"
                  r"hmm+|um+|oh|ah|yes|yeah|yep|got it|i see|one more thing|another thing|thanks|thank you|thx|"
                  r"hi|hello|hey|hiya|good (?:morning|afternoon|evening)|"
                  r"うん|はい|ええ|なるほど|そっか|そうか|じゃあ|では|ところで|あと|それと|ありがとう(?:ございます)?|"
                  r"こんにちは|こんばんは|おはようございます|すみません|すいません)[\s,.!！、。…-]*)+", re.I)
"""A clause that only acknowledges, greets or leads in ("ok,", "ok thanks, and", "Hi!", "こんにちは！", "じゃあ"): beside
a request it is no small talk of its own."""


def drop_subsumed(intents: list[str], requests: dict[str, str], text: str) -> list[str]:
    """Remove ``search`` when it only repeats titles the customer names as liked in a recommend request
    ("I liked Berserk, what next?" is one recommendation, not a search for Berserk), and ``chitchat`` when its
    clauses only acknowledge or lead in (``_ACK``: "ok, and do you ship to Germany?" is one policy question)."""
    if "chitchat" in intents and len(intents) > 1:
        said = requests.get("chitchat", text)
        if said != text and _ACK.fullmatch(said.strip()):
            intents = [i for i in intents if i != "chitchat"]
    if "recommend" in intents and "search" in intents:
        liked = [t.lower() for t in liked_titles(text)]
        search_request = requests.get("search", text).lower()
        if search_request == text.lower() or (liked and any(t in search_request for t in liked)):
            return [i for i in intents if i != "search"]
    return intents


def route_after_think(state: dict) -> Literal["execute", "respond"]:
    """After think: run tools when the last scratch message carries tool calls, else write the answer."""
    scratch = state.get("scratch") or []
    if scratch and getattr(scratch[-1], "tool_calls", None):
        return "execute"
    return "respond"


def route_after_reflect(state: dict) -> Literal["think", "respond"]:
    """After reflect: think again when the critique asks for it and fewer than ``max_reflections`` loops ran."""
    critique = state.get("critique") or {}
    if critique.get("ok", True):
        return "respond"
    if int(state.get("reflections") or 0) > int(state.get("max_reflections", 2)):
        return "respond"
    return "think"


def order_results(results: Sequence[dict], intents: Sequence[str]) -> list[dict]:
    """Specialist results in the order of the turn's intents (parallel branches finish in any order)."""
    rank = {i: n for n, i in enumerate(intents)}
    return sorted(results, key=lambda r: rank.get(r.get("intent", ""), len(rank)))
