"""OpenTelemetry spans of GraphObserver on the SDK's InMemorySpanExporter: one trace per turn, every node span a
descendant of the turn span, tool and model spans direct children of the node that made the call — also inside
compiled subgraph nodes, Send fan-out branches (their own asyncio tasks) and subgraphs invoked from a node
(the plan node's steps). A small LangGraph of the same shapes as the supervisor; real turns are in
tests/graph/test_otel.py."""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any, TypedDict

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from server.observability import GraphObserver, Metrics, make_tracer


def span_tree(spans: list) -> dict[str, Any]:
    """{by_id: {span_id: span}, parent: {span_id: parent span_id | None}, traces: {trace ids}, roots: [span]}."""
    by_id = {s.context.span_id: s for s in spans}
    parent = {s.context.span_id: (s.parent.span_id if s.parent is not None else None) for s in spans}
    return {"by_id": by_id, "parent": parent, "traces": {s.context.trace_id for s in spans},
            "roots": [s for s in spans if s.parent is None]}


def ancestors(tree: dict, span) -> list:
    """The spans above ``span``, nearest first (stops at a parent that is not among the exported spans)."""
    out, pid = [], tree["parent"][span.context.span_id]
    while pid is not None and pid in tree["by_id"]:
        out.append(tree["by_id"][pid])
        pid = tree["parent"][pid]
    return out


def assert_one_trace_per_turn(spans: list) -> Any:
    """The turn invariants; returns the single turn span."""
    tree = span_tree(spans)
    assert len(tree["traces"]) == 1, sorted(s.name for s in tree["roots"])
    [turn] = tree["roots"]
    assert turn.name.startswith("turn ")
    for s in spans:
        if s is turn:
            continue
        up = ancestors(tree, s)
        assert up and up[-1] is turn, f"{s.name} is detached from the turn (ancestors {[a.name for a in up]})"
        if s.name.startswith(("tool ", "model ")):
            assert up[0].name.startswith("node "), f"{s.name} is a child of {up[0].name}, not of a node"
    return turn


@tool
def lookup(q: str) -> str:
    """Look a title up."""
    return q.upper()


class S(TypedDict, total=False):
    out: Annotated[list, operator.add]
    x: Annotated[str, lambda a, b: b]


def small_supervisor():
    """classify → Send fan-out to two compiled subgraph nodes (think: a chat model and a tool call) and a plan
    node invoking a third compiled subgraph itself → merge."""
    llm = FakeListChatModel(responses=["ok"])

    async def think(state: S) -> S:
        msg = await llm.ainvoke("hi")
        found = await lookup.ainvoke({"q": state.get("x", "")})
        return {"out": [msg.content, found]}

    def specialist(name: str):
        g = StateGraph(S)
        g.add_node("think", think)
        g.add_edge(START, "think")
        g.add_edge("think", END)
        return g.compile(name=name)

    step = specialist("search_step")

    async def plan(state: S, config) -> S:
        outs = await asyncio.gather(*(step.ainvoke({"x": q}, config) for q in ("berserk", "monster")))
        return {"out": [o["out"] for o in outs]}

    async def classify(state: S) -> S:
        return {"out": ["classified"]}

    def fan(state: S) -> list[Send]:
        return [Send("search_agent", {"x": "berserk"}), Send("order_agent", {"x": "MA-10001"}), Send("plan", {})]

    async def merge(state: S) -> S:
        return {"out": ["merged"]}

    g = StateGraph(S)
    g.add_node("classify", classify)
    g.add_node("search_agent", specialist("search_agent"))
    g.add_node("order_agent", specialist("order_agent"))
    g.add_node("plan", plan)
    g.add_node("merge", merge)
    g.add_edge(START, "classify")
    g.add_conditional_edges("classify", fan, ["search_agent", "order_agent", "plan"])
    for n in ("search_agent", "order_agent", "plan"):
        g.add_edge(n, "merge")
    g.add_edge("merge", END)
    return g.compile(name="mangaassist")


async def test_subgraph_fan_out_and_plan_steps_stay_in_the_turns_trace():
    tracer = make_tracer("memory")
    graph = small_supervisor().with_config(callbacks=[GraphObserver(Metrics(), tracer)])  # as server/app.py does
    await graph.ainvoke({"out": []}, {"configurable": {"thread_id": "t1"}})
    spans = tracer.memory_exporter.get_finished_spans()
    turn = assert_one_trace_per_turn(spans)
    assert turn.name == "turn mangaassist"
    tree = span_tree(spans)
    thinks = [s for s in spans if s.name == "node think"]
    assert len(thinks) == 4  # two fan-out branches + two plan steps
    assert sorted(ancestors(tree, t)[0].name for t in thinks) == ["node order_agent", "node plan", "node plan",
                                                                    "node search_agent"]
    for kind in ("tool lookup", "model FakeListChatModel"):
        calls = [s for s in spans if s.name == kind]
        assert len(calls) == 4 and all(ancestors(tree, c)[0].name == "node think" for c in calls)


async def test_two_turns_are_two_traces():
    tracer = make_tracer("memory")
    graph = small_supervisor().with_config(callbacks=[GraphObserver(Metrics(), tracer)])
    await graph.ainvoke({"out": []}, {"configurable": {"thread_id": "t1"}})
    first = list(tracer.memory_exporter.get_finished_spans())
    tracer.memory_exporter.clear()
    await graph.ainvoke({"out": []}, {"configurable": {"thread_id": "t1"}})
    second = list(tracer.memory_exporter.get_finished_spans())
    assert_one_trace_per_turn(first), assert_one_trace_per_turn(second)
    assert {s.context.trace_id for s in first}.isdisjoint({s.context.trace_id for s in second})
