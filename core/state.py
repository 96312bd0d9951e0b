"""Graph state schemas (TypedDict) with their reducers; each field says how concurrent writes merge.

Persisted state is kept small and bounded: the message list is trimmed to ``Context.message_window`` at
the end of every turn, and per-turn fields are overwritten, not accumulated.

Dialogue state: ``SupervisorState.focus`` says what the conversation is about, so a follow-up without an entity
of its own ("who is the author?", "the most recent one", "can I cancel it?", "何巻まで") is resolved against it
(nodes/dialogue.py; rules in tools/backends/models/followups.py). Written by the merge node after every turn
(``focus_after_turn``), merged by ``focus_reducer`` (right's keys win, a key written as None is removed, lists
cut to FOCUS_MAX), checkpointed with the thread and shown by ``/state``. Keys (all optional):

- ``items``: mal_ids of the last list of titles shown (≤ FOCUS_MAX, in shown order); ``items_intent``: the
  intent that showed it ("search" | "recommend");
- ``item``: the focused work {mal_id, title, turn, source}: the single title answered about, else the first of
  the last list; ``source`` is the intent or "details" (a title's details were shown);
- ``orders``: order ids of the last order list shown (≤ FOCUS_MAX, newest first);
- ``order_id`` and ``order``: the focused order {order_id, status, turn, source} (one order shown or acted on);
- ``last_list``: {kind: "items" | "orders", turn, intent}: the last list shown;
- ``kind``: "item" | "order": which of the two the last turn was about;
- ``seed``: {mal_id, title, turn}: the title the last recommendations were seeded by ("something like X");
- ``last_intent``: the intent the last turn served first ("faq" lets "what about South Korea?" stay a policy question);
- ``rec_filters``: {finished_only: true} while the last recommendations were filtered ("but finished"), so "any
  others?" keeps the filter;
- ``shown``: mal_ids of every title recommended in the thread, newest first (≤ SHOWN_MAX), so "any others?"
  does not repeat them;
- ``question``: the open question the assistant asked, {kind: "which_order", action, turn}, or absent;
- ``referent`` and ``followup`` appear only in a specialist's copy of the focus (the Send payload / plan step):
  the item {kind, mal_id, title} or order {kind, order_id} this turn's message refers to.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict

RESET = {"__reset__": True}
"""Write this (alone, in a list) to a ``results`` channel to clear it at the start of a turn."""


def results_reducer(left: list[dict] | None, right: list[dict] | None) -> list[dict]:
    """Append specialist results; a write of ``[RESET]`` clears the list (start of a new turn)."""
    if right and right[0] is not None and right[0].get("__reset__"):
        return list(right[1:])
    return list(left or []) + list(right or [])


def reset_list(left: list | None, right: list | None) -> list:
    """Append; a write whose first element is ``RESET`` clears the list first (any element type)."""
    if right and isinstance(right[0], dict) and right[0].get("__reset__"):
        return list(right[1:])
    return list(left or []) + list(right or [])


FOCUS_MAX = 5
"""Most entries a list in the dialogue state (``focus``) keeps: titles or orders shown, newest first."""


SHOWN_MAX = 30
"""Most recommended titles the dialogue state remembers as shown (``focus.shown``)."""


def _cap(key: str) -> int:
    return SHOWN_MAX if key == "shown" else FOCUS_MAX


def focus_reducer(left: dict | None, right: dict | None) -> dict:
    """Reducer of ``focus`` (the dialogue state): shallow merge, right's keys win; a key written as None is
    removed; every list value is cut to its first FOCUS_MAX entries (``shown``: SHOWN_MAX), so the checkpointed
    state stays bounded."""
    out = dict(left or {})
    for k, v in (right or {}).items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = list(v[:_cap(k)]) if isinstance(v, list) else v
    for k, v in list(out.items()):
        if isinstance(v, list) and len(v) > _cap(k):
            out[k] = v[:_cap(k)]
    return out


def merge_dicts(left: dict | None, right: dict | None) -> dict:
    """Shallow dict merge (right wins); used for timings written by parallel branches."""
    out = dict(left or {})
    out.update(right or {})
    return out


class AgentResult(TypedDict, total=False):
    """What one specialist run returns to the supervisor (appended to ``results``).

    agent: specialist name ("search"|"recommend"|"order"|"conversation"); intent: the label it served;
    answer: text in the customer's language; items: catalog summaries shown (order matters);
    orders: order dicts shown; evidence: tool artifacts the answer is grounded on; escalation_id: handoff id.
    """

    agent: str
    intent: str
    answer: str
    items: list[dict]
    orders: list[dict]
    evidence: list[dict]
    escalation_id: str | None
    focus_order_id: str | None
    ms: float
    calls: list[dict]
    degraded: list[str]


class SupervisorInput(TypedDict):
    """What a caller sends: new messages (normally one HumanMessage)."""

    messages: Annotated[list[AnyMessage], add_messages]


class SupervisorOutput(TypedDict, total=False):
    """What a caller reads back after a turn."""

    answer: str
    intents: list[str]
    agents: list[str]
    items: list[dict]
    orders: list[dict]
    timings_ms: dict[str, float]
    usage: dict[str, Any]
    budget_report: dict[str, Any]


class SupervisorState(TypedDict, total=False):
    """The supervisor graph's state (one per thread, checkpointed).

    Reducers: ``messages`` add_messages (trimmed by the finalize node with RemoveMessage); ``focus`` (the
    dialogue state, see the module docstring) focus_reducer;
    ``results`` append with reset (see results_reducer); ``timings_ms`` dict merge; ``turn`` sum;
    ``usage_calls`` (model CallRecords of this turn) and ``degraded`` (degrade steps taken) append with
    reset at classify (reset_list); all other fields last-write-wins. ``budget`` is the TurnBudget dict
    (core/budget.py) set by classify; ``usage`` the turn's totals and ``usage_session`` the thread's
    running totals (core/usage.py), both written by finalize; ``budget_report`` the turn's latency report.
    """

    messages: Annotated[list[AnyMessage], add_messages]
    locale: str
    intents: list[str]
    scores: dict[str, float]
    agents: list[str]
    plan: list[dict]
    active_agent: str | None
    results: Annotated[list[dict], results_reducer]
    answer: str
    items: list[dict]
    orders: list[dict]
    focus: Annotated[dict[str, Any], focus_reducer]
    quality: dict[str, Any]
    timings_ms: Annotated[dict[str, float], merge_dicts]
    turn: Annotated[int, operator.add]
    turn_started: float
    budget: dict[str, Any]
    usage_calls: Annotated[list[dict], reset_list]
    degraded: Annotated[list[str], reset_list]
    usage: dict[str, Any]
    usage_session: dict[str, Any]
    budget_report: dict[str, Any]


class SpecialistInput(TypedDict, total=False):
    """What the supervisor sends one specialist (a ``Send`` payload): ``request`` is the part of the
    customer's ``message`` that this specialist serves (the whole message for single-intent turns)."""

    agent: str
    intent: str
    request: str
    message: str
    locale: str
    history: list[str]
    focus: dict[str, Any]
    max_reflections: int
    budget: dict[str, Any]
    turn: int
    """The thread's turn number (1-based, SupervisorState.turn): with the thread id it keys the turn's exactly-once
    writes (a checkout)."""


class SpecialistOutput(TypedDict):
    """What a specialist writes back to the supervisor: exactly one AgentResult in ``results``."""

    results: Annotated[list[dict], results_reducer]


class SpecialistState(SpecialistInput, total=False):
    """A specialist subgraph's internal state.

    Reducers: ``scratch`` add_messages (think's tool-calling AIMessages and the ToolMessages of execute);
    ``reflections`` sum (the loop counter bounded by Context.max_reflections); ``calls`` (model
    CallRecords) and ``degraded`` (degrade steps) concatenate; others last-write-wins.
    """

    scratch: Annotated[list[AnyMessage], add_messages]
    evidence: list[dict]
    critique: dict[str, Any]
    reflections: Annotated[int, operator.add]
    started: float
    results: Annotated[list[dict], results_reducer]
    calls: Annotated[list[dict], operator.add]
    degraded: Annotated[list[str], operator.add]
