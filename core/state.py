"""Graph state schemas (TypedDict) with their reducers; each field says how concurrent writes merge.

Persisted state is kept small and bounded: the message list is trimmed to ``Context.message_window`` at
the end of every turn, and per-turn fields are overwritten, not accumulated.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

RESET = {"__reset__": True}
"""Write this (alone, in a list) to a ``results`` channel to clear it at the start of a turn."""


def results_reducer(left: list[dict] | None, right: list[dict] | None) -> list[dict]:
    """Append specialist results; a write of ``[RESET]`` clears the list (start of a new turn)."""
    if right and right[0] is not None and right[0].get("__reset__"):
        return list(right[1:])
    return list(left or []) + list(right or [])


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


class SupervisorState(TypedDict, total=False):
    """The supervisor graph's state (one per thread, checkpointed).

    Reducers: ``messages`` add_messages (trimmed by the finalize node with RemoveMessage);
    ``results`` append with reset (see results_reducer); ``timings_ms`` dict merge; ``turn`` sum;
    all other fields last-write-wins.
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
    focus: dict[str, Any]
    quality: dict[str, Any]
    timings_ms: Annotated[dict[str, float], merge_dicts]
    turn: Annotated[int, operator.add]
    turn_started: float


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


class SpecialistOutput(TypedDict):
    """What a specialist writes back to the supervisor: exactly one AgentResult in ``results``."""

    results: Annotated[list[dict], results_reducer]


class SpecialistState(SpecialistInput, total=False):
    """A specialist subgraph's internal state.

    Reducers: ``scratch`` add_messages (think's tool-calling AIMessages and the ToolMessages of execute);
    ``reflections`` sum (the loop counter bounded by Context.max_reflections); others last-write-wins.
    """

    scratch: Annotated[list[AnyMessage], add_messages]
    evidence: list[dict]
    critique: dict[str, Any]
    reflections: Annotated[int, operator.add]
    started: float
    results: Annotated[list[dict], results_reducer]
