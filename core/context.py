"""Per-run Context (LangGraph ``context_schema``): identity, locale, budgets; JSON-serialisable."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(kw_only=True)
class Context:
    """Values that vary per run and are read by nodes as ``runtime.context``.

    ``user_id`` comes from authentication (API key, ``--user``), never from chat text: the Order agent acts
    only on this user's orders whatever the message says.
    """

    user_id: str = field(default="anonymous", metadata={"description": "Authenticated customer id."})
    locale: str | None = field(default=None, metadata={"description": "Force 'en'/'ja'; None = detect from the message."})
    max_reflections: int = field(default=2, metadata={"description": "Max reflect→think loops per specialist run (N)."})
    message_window: int = field(default=12, metadata={"description": "Messages kept in checkpointed state after a turn."})
    latency_budget_ms: float = field(default=3000.0, metadata={"description": "Latency budget of one turn (ms)."})
    search_k: int = field(default=5, metadata={"description": "Catalog items shown by a search/recommend answer."})
    deadline_epoch_ms: float | None = field(default=None, metadata={
        "description": "Wall-clock deadline of this run (Unix epoch, ms); None = latency_budget_ms from the turn's start."})
    max_replans: int = field(default=1, metadata={"description": "Bounded replans of a complex request's plan."})
