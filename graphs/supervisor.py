"""build_supervisor: classify → specialist subgraph(s) (Send fan-out) or plan (planner–executor) → merge → quality → finalize."""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from core.agents import REGISTRY, AgentRegistry
from core.context import Context
from core.deps import Deps
from core.errors import AgentWiringError
from core.state import SupervisorInput, SupervisorOutput, SupervisorState
from graphs.specialist import build_specialist, specialist_specs
from nodes.plan import make_plan
from nodes.supervisor import finalize, make_branch_failed, make_classify, make_quality, merge
from tools.backends.models.prompts import AGENT_SYSTEM
from tools.backends.models.templates import AGENT_TEMPLATES


def check_agents(deps: Deps, registry: AgentRegistry = REGISTRY) -> None:
    """Raise AgentWiringError for the first agent of ``registry`` that lacks a piece the graph needs.

    The pieces, looked up by agent name: tools (graphs.specialist.AGENT_TOOLS, whose factories must make at least
    one tool for ``deps``), a think policy (``deps.models.agents``), a prompt
    (tools.backends.models.prompts.AGENT_SYSTEM) and a writer template
    (tools.backends.models.templates.AGENT_TEMPLATES: the local writer, which every profile falls back to). The
    error names the agent and every piece it lacks, e.g. "agent 'cart' is registered but has no prompt and no writer
    template (profile 'local')".
    """
    specs = specialist_specs(registry)
    for agent in registry:
        missing = []
        if not specs[agent.name].tools(deps):
            missing.append("tools")
        if agent.name not in deps.models.agents:
            missing.append("think policy")
        if agent.name not in AGENT_SYSTEM:
            missing.append("prompt")
        if agent.name not in AGENT_TEMPLATES:
            missing.append("writer template")
        if missing:
            raise AgentWiringError(agent.name, missing, deps.models.profile)


def build_supervisor(deps: Deps, registry: AgentRegistry = REGISTRY) -> StateGraph[Any, Any, Any, Any]:
    """Uncompiled supervisor StateGraph over the registered specialists (core/agents.py; compiled as subgraph nodes
    ``{agent}_agent`` with no checkpointer of their own: they inherit the parent's, so their checkpoints are
    namespaced per task).

    Every intent→agent decision (classify's Send targets, plan steps' intents, follow-ups, answer caching) comes
    from ``registry``. A specialist that raises in a multi-intent turn is isolated by its node's error handler
    (nodes.supervisor.make_branch_failed): the other branches' answers are kept and that part is an apology.
    Callers compile it with the checkpointer/store they need (server: Postgres; CLI: SQLite; tests: memory).

    Raises AgentWiringError (core/errors.py) at build time when a registered agent lacks tools, a think policy,
    a prompt or a writer template (check_agents).
    """
    check_agents(deps, registry)
    specs = specialist_specs(registry)
    g = StateGraph(SupervisorState, context_schema=Context, input_schema=SupervisorInput, output_schema=SupervisorOutput)
    g.add_node("classify", make_classify(deps, registry), destinations=(*registry.nodes, "plan"))
    for agent in registry:
        g.add_node(agent.node, build_specialist(specs[agent.name], deps, registry).compile(name=agent.node),
                   error_handler=make_branch_failed(agent.name))
        g.add_edge(agent.node, "merge")
    steps = {a.name: build_specialist(specs[a.name], deps, registry).compile(name=f"{a.name}_step", checkpointer=False)
             for a in registry}
    g.add_node("plan", make_plan(deps, steps, registry))
    g.add_edge("plan", "merge")
    g.add_node("merge", merge)  # type: ignore[type-var]  # langgraph: NodeInputT excludes dict; add_node takes it
    g.add_node("quality", make_quality(deps))
    g.add_node("finalize", finalize)
    g.add_edge(START, "classify")
    g.add_edge("merge", "quality")
    g.add_edge("quality", "finalize")
    g.add_edge("finalize", END)
    return g
