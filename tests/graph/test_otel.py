"""OpenTelemetry on real turns: the supervisor graph with the hooks the server installs (server/app.py: a
GraphObserver bound with ``graph.with_config(callbacks=...)``, a tracer from ``make_tracer``, the activity
stream), spans collected by the SDK's InMemorySpanExporter. Each turn is one trace; every node span (specialist
subgraph nodes included) descends from the turn span; tool and model spans are children of their node."""

from __future__ import annotations

import pytest

from server.observability import ActivityStream, GraphObserver, Metrics, make_tracer
from tests.unit.test_otel import ancestors, assert_one_trace_per_turn, span_tree


@pytest.fixture
def traced(assistant):
    """The assistant with the server's observability hooks; yields (assistant, tracer)."""
    tracer = make_tracer("memory")
    assistant.graph = assistant.graph.with_config(
        callbacks=[GraphObserver(Metrics(), tracer, ActivityStream(None))])
    yield assistant, tracer
    tracer.provider.shutdown()


def parent_name(tree, span) -> str:
    return ancestors(tree, span)[0].name


async def test_a_search_turn_is_one_trace_with_nodes_tools_and_models_nested(traced):
    assistant, tracer = traced
    out = await assistant.turn("Do you have Berserk?", "otel-1", "u_ben")
    assert out["agents"] == ["search"]
    spans = tracer.memory_exporter.get_finished_spans()
    turn = assert_one_trace_per_turn(spans)
    tree = span_tree(spans)
    names = {s.name for s in spans}
    assert {"node classify", "node search_agent", "node think", "node execute", "node respond", "node merge",
            "node quality", "node finalize", "tool search_catalog"} <= names
    for s in spans:
        if s.name in ("node think", "node execute", "node reflect", "node respond"):
            assert parent_name(tree, s) == "node search_agent" and s.attributes["mangaassist.agent"] == "search"
        if s.name in ("node classify", "node search_agent", "node merge", "node quality", "node finalize"):
            assert parent_name(tree, s) == turn.name
    assert all(parent_name(tree, s) == "node execute" for s in spans if s.name.startswith("tool "))
    models = [s for s in spans if s.name.startswith("model ")]
    assert models and all(parent_name(tree, s) == "node respond" for s in models)  # the writer
    assert {s.attributes["mangaassist.thread_id"] for s in spans} == {"otel-1"}


async def test_a_multi_intent_turn_keeps_both_branches_in_one_trace(traced):
    assistant, tracer = traced
    out = await assistant.turn("Do you have Berserk? Also, how long does shipping take?", "otel-2", "u_ben")
    assert set(out["agents"]) >= {"search", "conversation"}
    spans = tracer.memory_exporter.get_finished_spans()
    assert_one_trace_per_turn(spans)
    tree = span_tree(spans)
    branches = {parent_name(tree, s) for s in spans if s.name == "node think"}
    assert {"node search_agent", "node conversation_agent"} <= branches
    tools = {s.name: parent_name(tree, s) for s in spans if s.name.startswith("tool ")}
    assert tools.get("tool search_catalog") == "node execute" and tools.get("tool search_policies") == "node execute"


async def test_a_confirmation_and_its_answer_are_one_trace_each(traced, demo):
    assistant, tracer = traced
    order_id = demo["u_ben"]["processing"][0]
    first = await assistant.turn(f"please cancel order {order_id}", "otel-3", "u_ben")
    assert first["interrupt"] and first["interrupt"]["action"] == "cancel"
    asked = list(tracer.memory_exporter.get_finished_spans())
    tracer.memory_exporter.clear()
    await assistant.turn("yes", "otel-3", "u_ben")
    answered = list(tracer.memory_exporter.get_finished_spans())
    assert_one_trace_per_turn(asked)
    assert_one_trace_per_turn(answered)
    assert {s.context.trace_id for s in asked}.isdisjoint({s.context.trace_id for s in answered})
    assert any(s.name == "tool cancel_order" for s in asked + answered)


async def test_plan_steps_run_by_the_plan_node_stay_under_it(traced):
    """The planner path invokes compiled step subgraphs from inside the plan node (asyncio.gather)."""
    assistant, tracer = traced
    out = await assistant.turn("find a manga like Attack on Titan and add volume 1 of it to my cart", "otel-4", "u_ben")
    assert set(out["agents"]) == {"recommend", "cart"}  # the design's planner example: the cart adds what was recommended
    spans = tracer.memory_exporter.get_finished_spans()
    assert_one_trace_per_turn(spans)
    tree = span_tree(spans)
    thinks = [s for s in spans if s.name == "node think"]
    assert len(thinks) >= 2 and {parent_name(tree, s) for s in thinks} == {"node plan"}
    tools = {s.name: parent_name(tree, s) for s in spans if s.name.startswith("tool ")}
    assert tools == {"tool recommend_manga": "node execute", "tool add_to_cart": "node execute"}
