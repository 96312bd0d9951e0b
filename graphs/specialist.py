"""build_specialist: one specialist agent as a think → execute → reflect → respond StateGraph."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph

from core.agents import REGISTRY, AgentRegistry
from core.context import Context
from core.deps import Deps
from core.errors import AgentWiringError
from core.state import SpecialistInput, SpecialistOutput, SpecialistState
from nodes.routing import route_after_reflect, route_after_think
from nodes.specialist import make_execute, make_reflect, make_respond, make_think
from tools.cart import make_cart_tools
from tools.conversation import make_conversation_tools
from tools.orders import make_order_tools
from tools.recommend import make_recommend_tools
from tools.search import make_search_tools

ToolFactory = Callable[[Deps], list[BaseTool]]

AGENT_TOOLS: dict[str, tuple[ToolFactory, ...]] = {
    "search": (make_search_tools,),
    "recommend": (make_recommend_tools, make_search_tools),
    "order": (make_order_tools,),
    "conversation": (make_conversation_tools,),
    "cart": (make_cart_tools,),
}
"""The tool factories of each registered agent (core/agents.py), keyed by agent name; each ``make_*_tools(deps)``
returns LLM-visible tools. A registered agent without an entry fails ``graphs.supervisor.build_supervisor``."""


@dataclass(frozen=True)
class SpecialistSpec:
    """A specialist: its name (also the key of its think policy), the intents it serves, its tool factories."""

    name: str
    intents: tuple[str, ...]
    tool_factories: tuple[ToolFactory, ...]

    def tools(self, deps: Deps) -> list[BaseTool]:
        """Every tool the factories make for ``deps``, in factory order."""
        return [t for make in self.tool_factories for t in make(deps)]


def specialist_specs(registry: AgentRegistry = REGISTRY,
                     tools: Mapping[str, Sequence[ToolFactory]] | None = None) -> dict[str, SpecialistSpec]:
    """Agent name → SpecialistSpec for every agent of ``registry``, with its factories from ``tools``
    (default AGENT_TOOLS, read at call time); an agent without factories gets none (build_specialist rejects it)."""
    tools = AGENT_TOOLS if tools is None else tools
    return {a.name: SpecialistSpec(a.name, a.intents, tuple(tools.get(a.name, ()))) for a in registry}


SPECS: dict[str, SpecialistSpec] = specialist_specs()
"""The registered specialists (core/agents.py REGISTRY), each with the intent labels it serves and its tool
factories (AGENT_TOOLS)."""


def build_specialist(spec: SpecialistSpec, deps: Deps, registry: AgentRegistry = REGISTRY) -> StateGraph[Any, Any, Any, Any]:
    """Uncompiled StateGraph of one specialist. Input SpecialistInput; output one AgentResult in ``results``.

    Edges: START → think; think ─(tool calls?)→ execute | respond; execute → reflect;
    reflect ─(critique ok or loops > max_reflections?)→ respond | think; respond → END.
    Raises AgentWiringError (a ValueError) at build time when the profile has no think policy for the spec or
    its factories make no tool; ValueError when two of its tools share a name. ``registry`` decides whether
    its answers may be cached (nodes.specialist.answer_cache_key).
    """
    if spec.name not in deps.models.agents:
        raise AgentWiringError(spec.name, ["think policy"], deps.models.profile)
    tools: Sequence[BaseTool] = spec.tools(deps)
    if not tools:
        raise AgentWiringError(spec.name, ["tools"])
    names = [t.name for t in tools]
    if len(names) != len(set(names)):
        raise ValueError(f"specialist {spec.name!r}: duplicate tool names {names}")
    g = StateGraph(SpecialistState, context_schema=Context, input_schema=SpecialistInput, output_schema=SpecialistOutput)
    g.add_node("think", make_think(deps, spec.name, tools))
    g.add_node("execute", make_execute(tools))
    g.add_node("reflect", make_reflect(deps, spec.name))
    g.add_node("respond", make_respond(deps, spec.name, registry))
    g.add_edge(START, "think")
    g.add_conditional_edges("think", route_after_think)
    g.add_edge("execute", "reflect")
    g.add_conditional_edges("reflect", route_after_reflect)
    g.add_edge("respond", END)
    return g
