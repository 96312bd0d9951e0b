"""Process-wide dependencies (Deps): long-lived clients built once and closed over by node/tool factories."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Protocol, Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import BaseTool

from core.ports import (
    Cache,
    Catalog,
    Critic,
    EntityLinker,
    OrdersRepository,
    Planner,
    PolicyKB,
    Recommender,
    Router,
    SearchIndex,
)
from core.settings import Settings


class AgentPolicy(Protocol):
    """The ``think`` role of one specialist: given its state and tools, propose the next tool calls.

    Returns an AIMessage whose ``tool_calls`` the execute node runs (no tool calls = answer from state).
    The local profile implements it with rules; the bedrock profile with a tool-calling chat model.
    """

    async def athink(self, state: dict, tools: Sequence[BaseTool], context: Any) -> AIMessage:
        """The next step of the specialist: an AIMessage with the tool calls to run, or none to answer."""


@dataclass
class Models:
    """The model roles of one profile (``local`` or ``bedrock``; README.md 'Model profiles')."""

    profile: str
    router: Router
    planner: Planner
    writer: BaseChatModel
    critic: Critic
    agents: dict[str, AgentPolicy]


@dataclass
class Deps:
    """Everything long-lived a graph needs. Built by ``tools.backends.factory.open_deps``; close with ``aclose``."""

    settings: Settings
    catalog: Catalog
    index: SearchIndex
    recommender: Recommender
    orders: OrdersRepository
    policies: PolicyKB
    cache: Cache
    models: Models
    linker: EntityLinker | None = None
    """Catalog entity linker (titles and authors in free text). None: searches and routing run without it
    (author requests are plain searches, no out-of-scope rule from catalog evidence)."""
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def aclose(self) -> None:
        """Close backends in reverse order of opening."""
        for close in reversed(self.closers):
            await close()
        self.closers.clear()
