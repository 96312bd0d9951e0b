"""build_specialist: one specialist agent as a think → execute → reflect → respond StateGraph."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph

from core.context import Context
from core.deps import Deps
from core.state import SpecialistInput, SpecialistOutput, SpecialistState
from nodes.routing import route_after_reflect, route_after_think
from nodes.specialist import make_execute, make_reflect, make_respond, make_think
from tools.conversation import make_conversation_tools
from tools.orders import make_order_tools
from tools.recommend import make_recommend_tools
from tools.search import make_search_tools


@dataclass(frozen=True)
class SpecialistSpec:
    """A specialist: its name (also the key of its think policy), the intents it serves, its tool factories."""

    name: str
    intents: tuple[str, ...]
    tool_factories: tuple[Callable[[Deps], list[BaseTool]], ...]

    def tools(self, deps: Deps) -> list[BaseTool]:
        return [t for make in self.tool_factories for t in make(deps)]


SPECS: dict[str, SpecialistSpec] = {
    "search": SpecialistSpec("search", ("search",), (make_search_tools,)),
    "recommend": SpecialistSpec("recommend", ("recommend",), (make_recommend_tools, make_search_tools)),
    "order": SpecialistSpec("order", ("order",), (make_order_tools,)),
    "conversation": SpecialistSpec("conversation", ("faq", "chitchat", "handoff", "out_of_scope"), (make_conversation_tools,)),
}
"""The four specialists, each with the intent labels it serves and its tool factories."""


def build_specialist(spec: SpecialistSpec, deps: Deps) -> StateGraph:
    """Uncompiled StateGraph of one specialist. Input SpecialistInput; output one AgentResult in ``results``.

    Edges: START → think; think ─(tool calls?)→ execute | respond; execute → reflect;
    reflect ─(critique ok or loops > max_reflections?)→ respond | think; respond → END.
    Raises ValueError at build time when the spec's think policy or tools are missing.
    """
    if spec.name not in deps.models.agents:
        raise ValueError(f"specialist {spec.name!r}: the {deps.models.profile!r} profile has no think policy for it")
    tools: Sequence[BaseTool] = spec.tools(deps)
    if not tools:
        raise ValueError(f"specialist {spec.name!r} has no tools")
    names = [t.name for t in tools]
    if len(names) != len(set(names)):
        raise ValueError(f"specialist {spec.name!r}: duplicate tool names {names}")
    g = StateGraph(SpecialistState, context_schema=Context, input_schema=SpecialistInput, output_schema=SpecialistOutput)
    g.add_node("think", make_think(deps, spec.name, tools))
    g.add_node("execute", make_execute(tools))
    g.add_node("reflect", make_reflect(deps, spec.name))
    g.add_node("respond", make_respond(deps, spec.name))
    g.add_edge(START, "think")
    g.add_conditional_edges("think", route_after_think)
    g.add_edge("execute", "reflect")
    g.add_conditional_edges("reflect", route_after_reflect)
    g.add_edge("respond", END)
    return g
