"""Assistant: the compiled supervisor graph with its Deps and persistence; runs one customer turn.

The CLI and the HTTP/WebSocket server both go through ``Assistant.turn`` so they share one code path:
a message on a thread that waits on a confirmation resumes that interrupt; any other message starts a turn.
"""

from __future__ import annotations

import time
import uuid
from contextlib import AsyncExitStack
from typing import Any, AsyncIterator, cast

from langchain_core.messages import HumanMessage
from langgraph.types import Command, Durability

from core.budget import now_ms
from core.context import Context
from core.deps import Deps
from core.settings import Settings
from graphs.supervisor import build_supervisor
from tools.backends.factory import open_deps
from tools.backends.persistence import DURABILITY_MODES, Persistence, open_persistence

MAX_MESSAGE_CHARS = 4000
"""Longest customer message accepted (characters); longer input is a client error."""


def new_thread_id() -> str:
    """A fresh thread id (UUID4 hex string)."""
    return uuid.uuid4().hex


def validate_text(text: Any) -> str:
    """Return ``text`` stripped, or raise ValueError with a customer-safe message (empty, too long, not text)."""
    if not isinstance(text, str):
        raise ValueError("message text must be a string")
    t = text.strip()
    if not t:
        raise ValueError("message text is empty")
    if len(t) > MAX_MESSAGE_CHARS:
        raise ValueError(f"message is too long ({len(t)} characters; the limit is {MAX_MESSAGE_CHARS})")
    reject_unstorable(t, "message")
    return t


def validate_durability(value: Any) -> Durability | None:
    """Return ``value`` when it is a LangGraph durability mode ("sync", "async", "exit") or None (= the
    configured default); raise ValueError naming the allowed modes otherwise."""
    if value is None or (isinstance(value, str) and value in DURABILITY_MODES):
        return cast(Durability | None, value)
    raise ValueError(f"durability must be one of {', '.join(DURABILITY_MODES)}")


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""The integer range a stored JSON value may use: orjson (our API responses) and most JSON consumers refuse
integers beyond signed 64 bits, so a thread whose metadata held one could no longer be listed."""


def reject_unstorable(value: Any, path: str = "body") -> None:
    """Raise ValueError naming the first key or value under ``value`` (str, int, dict, list, tuple; nested) that
    cannot be stored and served back: a string with U+0000 (PostgreSQL text and JSONB refuse it: a 500 in the
    database) or an integer outside the signed 64-bit range (stored, then a 500 on every response that
    includes it, e.g. each thread search). Used for thread metadata, metadata filters and state updates."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{path} contains a NUL character (U+0000), which cannot be stored")
    elif isinstance(value, int) and not isinstance(value, bool):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(f"{path} is an integer outside the signed 64-bit range, which cannot be stored")
    elif isinstance(value, dict):
        for k, v in value.items():
            reject_unstorable(k, f"{path} key")
            reject_unstorable(v, f"{path}.{k}" if isinstance(k, str) and "\x00" not in k else path)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            reject_unstorable(v, f"{path}[{i}]")


def pending_interrupt(snapshot: Any) -> dict | None:
    """The first pending interrupt value of a StateSnapshot (subgraphs included), or None."""
    for intr in getattr(snapshot, "interrupts", ()) or ():
        return dict(intr.value) if isinstance(intr.value, dict) else {"prompt": str(intr.value)}
    return None


class Assistant:
    """A compiled supervisor graph bound to Deps and a checkpointer/store.

    ``open`` builds everything from settings (SQLite by default, Postgres with DATABASE_URL) and registers
    cleanup on the given AsyncExitStack. ``turn`` runs one message and returns the turn JSON of
    ``mangaassist chat --json``.
    """

    def __init__(self, graph: Any, deps: Deps, persistence: Persistence | None):
        self.graph = graph
        self.deps = deps
        self.persistence = persistence

    @classmethod
    async def open(cls, settings: Settings, stack: AsyncExitStack) -> Assistant:
        """Open persistence and dependencies (closed by ``stack``) and compile the supervisor graph."""
        persistence = await open_persistence(settings, stack)
        deps = await open_deps(settings, pool=persistence.pool)
        stack.push_async_callback(deps.aclose)
        graph = build_supervisor(deps).compile(checkpointer=persistence.checkpointer, store=persistence.store,
                                               name="mangaassist")
        return cls(graph, deps, persistence)

    def context(self, user_id: str, **overrides: Any) -> Context:
        """Per-run Context for ``user_id`` with settings defaults (reflections, window, budget).

        ``deadline_epoch_ms`` is set to now + the latency budget, so a resumed run (a confirmation reply)
        gets its own budget instead of the interrupted turn's expired one.
        """
        s = self.deps.settings
        budget = overrides.get("latency_budget_ms", s.latency_budget_ms)
        values = {"user_id": user_id, "max_reflections": s.max_reflections, "message_window": s.message_window,
                  "latency_budget_ms": s.latency_budget_ms, "search_k": s.search_k,
                  "max_replans": s.max_replans, "deadline_epoch_ms": now_ms() + budget}
        values.update(overrides)
        return Context(**values)

    @staticmethod
    def config(thread_id: str, user_id: str) -> dict:
        """RunnableConfig for a thread; the owner is recorded in checkpoint metadata."""
        return {"configurable": {"thread_id": thread_id}, "metadata": {"user_id": user_id}}

    async def input_for(self, thread_id: str, user_id: str, text: str) -> Any:
        """Command(resume=text) when the thread waits on a confirmation, else a new HumanMessage turn."""
        snapshot = await self.graph.aget_state(self.config(thread_id, user_id))
        if pending_interrupt(snapshot) is not None:
            return Command(resume=text)
        return {"messages": [HumanMessage(content=text)]}

    async def turn(self, text: str, thread_id: str | None = None, user_id: str = "anonymous", *,
                   durability: Durability | None = None) -> dict:
        """Run one customer message on ``thread_id`` (new thread when None); returns the turn JSON.

        Shape: {thread_id, checkpoint_id, intents, agents, answer, items, orders, interrupt, timings_ms,
        usage, budget} (see ``result``).
        ``durability`` ("sync" | "async" | "exit"; None = ``settings.checkpoint_durability``, default "exit":
        one checkpoint per turn, or at an interrupt); "async" writes a checkpoint per step, which replay
        from inside a turn and a specialist's steps in Studio need (docs/persistence.md).
        Raises ValueError for invalid text (nothing is written to the thread then).
        """
        text = validate_text(text)
        thread_id = thread_id or new_thread_id()
        t0 = time.perf_counter()
        cfg = self.config(thread_id, user_id)
        extra = {"durability": durability or self.deps.settings.checkpoint_durability}
        await self.graph.ainvoke(await self.input_for(thread_id, user_id, text), cfg, context=self.context(user_id),
                                 **extra)
        total = (time.perf_counter() - t0) * 1000
        return await self.result(thread_id, user_id, total)

    async def stream(self, text: str, thread_id: str, user_id: str, *,
                     durability: Durability | None = None) -> AsyncIterator[tuple[str, Any]]:
        """Run one message streaming LangGraph events: yields (mode, payload) for modes 'updates',
        'messages' (writer tokens) and 'tasks' (node start/end), subgraphs included.
        ``durability`` as in ``turn`` (None = ``settings.checkpoint_durability``)."""
        text = validate_text(text)
        cfg = self.config(thread_id, user_id)
        inp = await self.input_for(thread_id, user_id, text)
        extra = {"durability": durability or self.deps.settings.checkpoint_durability}
        async for ns, mode, payload in self.graph.astream(inp, cfg, context=self.context(user_id),
                                                           stream_mode=["updates", "messages", "tasks"],
                                                           subgraphs=True, **extra):
            yield mode, (ns, payload)

    async def result(self, thread_id: str, user_id: str, total_ms: float | None = None) -> dict:
        """The turn JSON read from the thread's latest checkpoint.

        ``usage``: {input_tokens, output_tokens, usd, calls: [CallRecord dicts: role, model, tier, outcome,
        tokens, usd, ms, attempts], fallbacks, session: thread totals}; zeros and no calls on the local
        profile. ``budget``: {latency_ms, remaining_ms, latency_budget_ms, degraded: [step], usd_left_turn,
        usd_left_session, usd_left_user_day}; ``latency_ms`` is the caller-measured total when given.
        """
        snapshot = await self.graph.aget_state(self.config(thread_id, user_id))
        values = snapshot.values or {}
        interrupt = pending_interrupt(snapshot)
        timings = dict(values.get("timings_ms") or {})
        if total_ms is not None:
            timings["total"] = round(total_ms, 2)
        return {
            "thread_id": thread_id,
            "checkpoint_id": snapshot.config["configurable"].get("checkpoint_id", ""),
            "intents": list(values.get("intents") or []),
            "agents": list(values.get("agents") or []),
            "answer": interrupt["prompt"] if interrupt else values.get("answer", ""),
            "items": [] if interrupt else list(values.get("items") or []),
            "orders": [] if interrupt else list(values.get("orders") or []),
            "interrupt": ({"action": interrupt.get("action", ""), "order_id": interrupt.get("order_id", ""),
                           "prompt": interrupt.get("prompt", "")} if interrupt else None),
            "timings_ms": timings,
            "usage": usage_json(values),
            "budget": budget_json(values, total_ms, self.deps.settings.latency_budget_ms),
        }


def usage_json(values: dict) -> dict:
    """The turn JSON's ``usage`` from state values (zeros and no calls when no model was billed)."""
    u = dict(values.get("usage") or {})
    return {"input_tokens": int(u.get("input_tokens", 0)), "output_tokens": int(u.get("output_tokens", 0)),
            "usd": float(u.get("usd", 0.0)), "calls": list(u.get("calls") or []),
            "fallbacks": int(u.get("fallbacks", 0)), "session": dict(values.get("usage_session") or {})}


def budget_json(values: dict, total_ms: float | None, default_budget_ms: float) -> dict:
    """The turn JSON's ``budget`` from state values; ``total_ms`` (measured by the caller) wins when given."""
    b = dict(values.get("budget_report") or {})
    budget_ms = float(b.get("latency_budget_ms", default_budget_ms))
    latency = float(total_ms) if total_ms is not None else float(b.get("latency_ms", 0.0))
    return {**b, "latency_ms": round(latency, 2), "remaining_ms": round(budget_ms - latency, 2),
            "latency_budget_ms": budget_ms, "degraded": list(b.get("degraded") or [])}
