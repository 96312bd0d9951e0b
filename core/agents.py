"""The agent registry: which specialist agents exist and what each one serves (data only, no behaviour).

Everything that maps an intent to an agent derives from ``REGISTRY``: the router's label set
(``core.ports.INTENTS`` / ``Intent``), the plan step's agent names (``AgentName``), the supervisor's
intent→agent map and node names (nodes/routing.py), which intents a follow-up may return to, which answers may
be cached and for whom (nodes/specialist.py), the default intent of a plan step (nodes/plan.py) and the
local planner's steps. An agent's behaviour lives in its own modules, looked up by its ``name``: its tool
factories (graphs/specialist.py ``AGENT_TOOLS``), its think policy (``Deps.models.agents``), its prompt
(tools/backends/models/prompts.py ``AGENT_SYSTEM``) and its writer template
(tools/backends/models/templates.py ``AGENT_TEMPLATES``); ``graphs.supervisor.build_supervisor`` raises
``core.errors.AgentWiringError`` when one is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Iterator, Literal, Mapping


@dataclass(frozen=True)
class AgentSpec:
    """One specialist agent.

    Attributes:
        name: The agent's key everywhere (node ``{name}_agent``, ``AgentResult.agent``, plan step ``agent``).
        intents: The router labels it serves, in label order; every label is served by exactly one agent.
        plan_intent: The intent a plan step for this agent serves when the step's clause names none of
            ``intents`` (one of ``intents``).
        follow_ups: True when a back-reference ("yes, cancel it", "それは？") may return to this agent while it is
            the thread's active agent.
        lists_titles: True when its answers list catalog titles that an ordinal ("the second one") may point at.
        cacheable: True when a remote writer's answer for its intents may be reused (``answer_cache_key``).
        per_user: True when a cached answer is only served to the same authenticated customer (personalised
            answers); False: any customer (catalog facts, store policies). Ignored unless ``cacheable``.
        uncached_intents: Intents of this agent whose answers are never cached even when ``cacheable``.
    """

    name: str
    intents: tuple[str, ...]
    plan_intent: str
    follow_ups: bool = False
    lists_titles: bool = False
    cacheable: bool = False
    per_user: bool = False
    uncached_intents: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Raises ValueError on an entry that contradicts itself (no intents, a plan or uncached intent it
        does not serve)."""
        if not self.name or not self.name.isidentifier():
            raise ValueError(f"agent name {self.name!r} is not an identifier")
        if not self.intents:
            raise ValueError(f"agent {self.name!r} serves no intent")
        if self.plan_intent not in self.intents:
            raise ValueError(f"agent {self.name!r}: plan_intent {self.plan_intent!r} is not one of {self.intents}")
        stray = [i for i in self.uncached_intents if i not in self.intents]
        if stray:
            raise ValueError(f"agent {self.name!r}: uncached_intents {stray} are not among its intents")

    @property
    def node(self) -> str:
        """The supervisor node running this agent: ``{name}_agent``."""
        return f"{self.name}_agent"

    def cache_scope(self, intent: str) -> str | None:
        """Who may be served a cached answer for ``intent``: "shared", "user", or None (never cached)."""
        if not self.cacheable or intent not in self.intents or intent in self.uncached_intents:
            return None
        return "user" if self.per_user else "shared"


class AgentRegistry:
    """An ordered, immutable set of AgentSpecs with the views the graph needs, computed once.

    Iterating yields the specs in registration order (the order of nodes, labels and dispatch). Raises
    ValueError when two agents share a name or an intent.
    """

    def __init__(self, agents: tuple[AgentSpec, ...] | list[AgentSpec]):
        self.agents: tuple[AgentSpec, ...] = tuple(agents)
        by_name: dict[str, AgentSpec] = {}
        agent_of: dict[str, str] = {}
        for a in self.agents:
            if a.name in by_name:
                raise ValueError(f"agent {a.name!r} is registered twice")
            by_name[a.name] = a
            for i in a.intents:
                if i in agent_of:
                    raise ValueError(f"intent {i!r} is served by both {agent_of[i]!r} and {a.name!r}")
                agent_of[i] = a.name
        self._by_name = MappingProxyType(by_name)
        self.agent_of: Mapping[str, str] = MappingProxyType(agent_of)
        """Intent label → agent name."""
        self.intents: tuple[str, ...] = tuple(agent_of)
        """Every intent label, agents in registration order, each agent's intents in its own order."""
        self.names: tuple[str, ...] = tuple(by_name)
        """Agent names in registration order."""
        self.nodes: tuple[str, ...] = tuple(a.node for a in self.agents)
        """Supervisor node names (``{name}_agent``) in registration order."""
        self.plan_intent_of: Mapping[str, str] = MappingProxyType({a.name: a.plan_intent for a in self.agents})
        """Agent name → the intent its plan steps serve by default."""
        self.follow_up_intents: frozenset[str] = frozenset(i for a in self.agents if a.follow_ups for i in a.intents)
        """Intents a back-referencing follow-up may return to (those of agents with ``follow_ups``)."""
        self.title_list_intents: frozenset[str] = frozenset(
            i for a in self.agents if a.lists_titles for i in a.intents)
        """Intents whose answers list titles an ordinal may point at (agents with ``lists_titles``)."""
        self.cache_scope: Mapping[str, str] = MappingProxyType(
            {i: s for a in self.agents for i in a.intents if (s := a.cache_scope(i)) is not None})
        """Intent → "shared" | "user" for intents whose answers may be cached; other intents are never cached."""

    def __iter__(self) -> Iterator[AgentSpec]:
        return iter(self.agents)

    def __len__(self) -> int:
        return len(self.agents)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> AgentSpec:
        """The spec named ``name``; KeyError when no such agent is registered."""
        return self._by_name[name]

    def of_intent(self, intent: str) -> AgentSpec:
        """The spec serving ``intent``; KeyError for a label no agent serves."""
        return self._by_name[self.agent_of[intent]]

    def node(self, intent: str) -> str:
        """Node name of the agent serving ``intent`` (e.g. 'faq' → 'conversation_agent'); KeyError if unknown."""
        return self.of_intent(intent).node

    def with_agent(self, spec: AgentSpec) -> AgentRegistry:
        """A new registry with ``spec`` appended (this one is unchanged). Raises ValueError on a clash."""
        return AgentRegistry((*self.agents, spec))

    def __repr__(self) -> str:
        return f"AgentRegistry({list(self.names)!r})"


REGISTRY = AgentRegistry((
    AgentSpec("search", ("search",), plan_intent="search", follow_ups=True, lists_titles=True, cacheable=True),
    AgentSpec("recommend", ("recommend",), plan_intent="recommend", follow_ups=True, lists_titles=True,
              cacheable=True, per_user=True),
    AgentSpec("order", ("order",), plan_intent="order", follow_ups=True),
    AgentSpec("conversation", ("faq", "chitchat", "handoff", "out_of_scope"), plan_intent="faq", cacheable=True,
              uncached_intents=("handoff",)),
    AgentSpec("cart", ("cart",), plan_intent="cart", follow_ups=True),
))
"""The store's specialists. ``search``: find a title, author, volume or facts about a work; ``recommend``: what to
read next, personalised (cached per customer); ``order``: the customer's own orders (never cached); ``conversation``:
store policies (``faq``), small talk (``chitchat``), a human (``handoff``: opens an escalation, never cached) and a
polite refusal for anything unrelated to a manga store (``out_of_scope``); ``cart``: the customer's shopping cart
(add, view, change, remove; checkout places an order after a confirmation; never cached)."""

INTENTS: tuple[str, ...] = REGISTRY.intents
"""The router's label set, in the order of its score columns (``core.ports.INTENTS`` re-exports it)."""
AGENT_NAMES: tuple[str, ...] = REGISTRY.names
"""The registered agents' names (a plan step's ``agent``)."""

if TYPE_CHECKING:  # a type checker sees plain strings; at runtime pydantic validates the registered values
    Intent = str
    AgentName = str
else:
    Intent = Literal[INTENTS]
    AgentName = Literal[AGENT_NAMES]
