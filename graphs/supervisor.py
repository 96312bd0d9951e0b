"""build_supervisor: classify → specialist subgraph(s) (Send fan-out) or plan (planner–executor) → merge → quality → finalize."""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from core.context import Context
from core.deps import Deps
from core.state import SupervisorInput, SupervisorOutput, SupervisorState
from graphs.specialist import SPECS, build_specialist
from nodes.plan import make_plan
from nodes.routing import AGENT_NODES
from nodes.supervisor import finalize, make_branch_failed, make_classify, make_quality, merge


def build_supervisor(deps: Deps) -> StateGraph:
    """Uncompiled supervisor StateGraph over the four specialists (compiled as subgraph nodes with no
    checkpointer of their own: they inherit the parent's, so their checkpoints are namespaced per task).

    A specialist that raises in a multi-intent turn is isolated by its node's error handler
    (nodes.supervisor.make_branch_failed): the other branches' answers are kept and that part is an apology.
    Callers compile it with the checkpointer/store they need (server: Postgres; CLI: SQLite; tests: memory).
    """
    g = StateGraph(SupervisorState, context_schema=Context, input_schema=SupervisorInput, output_schema=SupervisorOutput)
    g.add_node("classify", make_classify(deps), destinations=(*AGENT_NODES, "plan"))
    for name, spec in SPECS.items():
        g.add_node(f"{name}_agent", build_specialist(spec, deps).compile(name=f"{name}_agent"),
                   error_handler=make_branch_failed(name))
        g.add_edge(f"{name}_agent", "merge")
    steps = {name: build_specialist(spec, deps).compile(name=f"{name}_step", checkpointer=False)
             for name, spec in SPECS.items()}
    g.add_node("plan", make_plan(deps, steps))
    g.add_edge("plan", "merge")
    g.add_node("merge", merge)
    g.add_node("quality", make_quality(deps))
    g.add_node("finalize", finalize)
    g.add_edge(START, "classify")
    g.add_edge("merge", "quality")
    g.add_edge("quality", "finalize")
    g.add_edge("finalize", END)
    return g
