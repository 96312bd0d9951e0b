"""Per-turn budgets: the latency left (ms) against a wall-clock deadline, USD left (turn, session, user-day),
the defined degrade order, and the ContextVar scope through which model wrappers see them.

The supervisor starts a budget when a turn starts (classify) and passes it to every step in state; a step
rebuilds a ``TurnBudget`` from that dict, installs it with ``call_scope`` around its model calls, and model
wrappers (tools/backends/models/resilience.py) read ``remaining_ms()`` for timeouts and ``usd_left()``
before each call. Time is wall-clock (``time.time()``) because the budget travels through checkpointed
state between nodes and parallel branches.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, cast

from core.usage import UsageMeter

DEGRADE_ORDER: tuple[str, ...] = ("skip_reflection", "smaller_model", "fewer_items", "cached_answer")
"""What a short turn gives up, first to last: the reflect critique, the large model (a role falls to its
smaller/local tier), retrieved items (search_k → FEWER_ITEMS_K), and finally the writer (a cached answer for
the same request and evidence, else the local template writer). Each step taken is listed in the turn's
``budget.degraded``; the answer is partial but grounded, never a timeout."""

FEWER_ITEMS_K = 3
"""search_k when ``fewer_items`` applies."""

RESERVE_MS = 150.0
"""Time kept back from any remote call so the local fallback, quality gate and finalize still fit."""


def now_ms() -> float:
    """Wall clock, Unix epoch, in ms."""
    return time.time() * 1000.0


@dataclass
class TurnBudget:
    """Latency and money left for one turn.

    deadline_epoch_ms: when the turn must be answered (epoch ms); latency_budget_ms: the whole budget (ms);
    usd_left_*: USD left before this step for the turn, the thread (session) and the user's UTC day
    (``math.inf`` = no cap); degraded: degrade steps taken by this step (names from DEGRADE_ORDER or
    'partial_answer', 'usd_refused').
    """

    latency_budget_ms: float
    deadline_epoch_ms: float
    usd_left_turn: float = math.inf
    usd_left_session: float = math.inf
    usd_left_user_day: float = math.inf
    degraded: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, latency_budget_ms: float, deadline_epoch_ms: float | None = None, **usd_left: float) -> TurnBudget:
        """A budget starting now (or ending at ``deadline_epoch_ms`` when the caller fixed the deadline)."""
        deadline = deadline_epoch_ms if deadline_epoch_ms is not None else now_ms() + latency_budget_ms
        return cls(latency_budget_ms=float(latency_budget_ms), deadline_epoch_ms=float(deadline),
                   **cast("dict[str, Any]", usd_left))  # only usd_left_* fields, by the callers

    @classmethod
    def from_state(cls, data: Mapping[str, Any] | None, context: Any = None, spent_usd: float = 0.0) -> TurnBudget:
        """Rebuild from the state dict written by ``to_state``; ``spent_usd`` already spent since it was
        written (earlier nodes of the same branch). No dict = a fresh budget from ``context`` (a graph
        entered without classify, e.g. a specialist compiled alone). ``context.deadline_epoch_ms`` (set by
        the caller per run, also on resumes) wins over the stored deadline."""
        budget_ms = float(getattr(context, "latency_budget_ms", 3000.0) or 3000.0)
        ctx_deadline = getattr(context, "deadline_epoch_ms", None)
        if not data:
            return cls.start(budget_ms, ctx_deadline)
        inf = math.inf
        return cls(
            latency_budget_ms=float(data.get("latency_budget_ms", budget_ms)),
            deadline_epoch_ms=float(ctx_deadline if ctx_deadline is not None else data["deadline_epoch_ms"]),
            usd_left_turn=float(data.get("usd_left_turn", inf)) - spent_usd,
            usd_left_session=float(data.get("usd_left_session", inf)) - spent_usd,
            usd_left_user_day=float(data.get("usd_left_user_day", inf)) - spent_usd,
        )

    def to_state(self) -> dict:
        """JSON-safe dict for state (infinite caps are stored as large floats)."""
        big = 1e12
        return {"latency_budget_ms": self.latency_budget_ms, "deadline_epoch_ms": self.deadline_epoch_ms,
                "usd_left_turn": min(self.usd_left_turn, big), "usd_left_session": min(self.usd_left_session, big),
                "usd_left_user_day": min(self.usd_left_user_day, big)}

    def remaining_ms(self) -> float:
        """ms left before the deadline (negative once overrun)."""
        return self.deadline_epoch_ms - now_ms()

    def usd_left(self, spent_here: float = 0.0) -> float:
        """USD that the next call may spend: the tightest of the turn, session and user-day remainders."""
        return min(self.usd_left_turn, self.usd_left_session, self.usd_left_user_day) - spent_here

    def degrade(self, step: str) -> None:
        """Record a degrade step once."""
        if step not in self.degraded:
            self.degraded.append(step)


def should_skip_reflection(budget: TurnBudget, critic_ms: float, writer_ms: float) -> bool:
    """Skip the reflect critique when what is left cannot pay for it and the writer (first degrade step)."""
    return budget.remaining_ms() - RESERVE_MS < critic_ms + writer_ms


def items_for(budget: TurnBudget, k: int, think_ms: float, writer_ms: float) -> int:
    """search_k for this think step: ``FEWER_ITEMS_K`` when the remaining time does not cover one think
    and one write (a shorter evidence list shortens the writer's prompt and output), else ``k``."""
    if k > FEWER_ITEMS_K and budget.remaining_ms() - RESERVE_MS < think_ms + writer_ms:
        budget.degrade("fewer_items")
        return FEWER_ITEMS_K
    return k


@dataclass
class CallScope:
    """The budget and usage meter of the node run currently making model calls."""

    budget: TurnBudget
    meter: UsageMeter


_SCOPE: ContextVar[CallScope | None] = ContextVar("mangaassist_call_scope", default=None)


@contextmanager
def call_scope(budget: TurnBudget, meter: UsageMeter | None = None) -> Iterator[CallScope]:
    """Install ``budget`` and a meter for the model calls made inside the block (asyncio tasks created
    inside inherit it); yields the scope so the node can read ``meter.calls`` and ``budget.degraded``."""
    scope = CallScope(budget, meter or UsageMeter())
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)


def current_scope() -> CallScope | None:
    """The innermost ``call_scope`` (None outside any node: no budget, nothing recorded)."""
    return _SCOPE.get()
