"""Pure routers and reducers: no model, no I/O."""

from langchain_core.messages import AIMessage

from core.ports import RouterDecision
from core.state import RESET, merge_dicts, results_reducer
from nodes.routing import (
    agent_node,
    drop_subsumed,
    order_results,
    resolve_intents,
    route_after_reflect,
    route_after_think,
)


def test_agent_node_maps_every_label():
    assert agent_node("search") == "search_agent"
    assert agent_node("recommend") == "recommend_agent"
    assert agent_node("order") == "order_agent"
    for label in ("faq", "chitchat", "handoff", "out_of_scope"):
        assert agent_node(label) == "conversation_agent"


def test_route_after_think_runs_tools_only_when_called():
    call = {"name": "search_catalog", "args": {"query": "x"}, "id": "1", "type": "tool_call"}
    assert route_after_think({"scratch": [AIMessage(content="", tool_calls=[call])]}) == "execute"
    assert route_after_think({"scratch": [AIMessage(content="")]}) == "respond"
    assert route_after_think({}) == "respond"


def test_route_after_reflect_bounded_by_max_reflections():
    bad = {"ok": False, "retry_instructions": "broaden"}
    assert route_after_reflect({"critique": {"ok": True}, "reflections": 1, "max_reflections": 2}) == "respond"
    assert route_after_reflect({"critique": bad, "reflections": 1, "max_reflections": 2}) == "think"
    assert route_after_reflect({"critique": bad, "reflections": 2, "max_reflections": 2}) == "think"
    assert route_after_reflect({"critique": bad, "reflections": 3, "max_reflections": 2}) == "respond"
    assert route_after_reflect({"critique": bad, "reflections": 1, "max_reflections": 0}) == "respond"


def _decision(top: str, score: float) -> RouterDecision:
    scores = {k: 0.01 for k in ("search", "recommend", "order", "faq", "chitchat", "handoff", "out_of_scope")}
    scores[top] = score
    return RouterDecision(intents=[top], scores=scores)


def test_follow_up_returns_to_active_specialist():
    assert resolve_intents(_decision("chitchat", 0.5), "what about the second one?", "search") == ["search"]
    assert resolve_intents(_decision("chitchat", 0.6), "yes, cancel it", "order") == ["order"]
    assert resolve_intents(_decision("chitchat", 0.99), "yes, cancel it", "order") == ["order"]
    # a confident new request is not hijacked by the active specialist
    assert resolve_intents(_decision("faq", 0.97), "what does shipping cost for that one?", "search") == ["faq"]
    # no active specialist: the router decides
    assert resolve_intents(_decision("chitchat", 0.5), "what about the second one?", None) == ["chitchat"]
    # an ordinal points at the last list shown, even after another specialist spoke
    assert resolve_intents(_decision("chitchat", 0.5), "tell me about the second one", "order", "search") == ["search"]
    assert resolve_intents(_decision("chitchat", 0.5), "yes, cancel it", "order", "search") == ["order"]
    # a specific label wins even when unsure; unsure small talk follows the active specialist
    assert resolve_intents(_decision("order", 0.32), "cancel MA-10011", "search") == ["order"]
    assert resolve_intents(_decision("chitchat", 0.3), "more please", "search") == ["search"]
    # conversation is not a follow-up target
    assert resolve_intents(_decision("faq", 0.3), "and that?", "faq") == ["faq"]


def test_multi_intent_kept_in_router_order_without_duplicates():
    d = RouterDecision(intents=["search", "order", "search"], scores={"search": 0.9, "order": 0.8})
    assert resolve_intents(d, "find naruto and where is my order", None) == ["search", "order"]


def test_results_reducer_appends_and_resets():
    assert results_reducer([{"a": 1}], [{"b": 2}]) == [{"a": 1}, {"b": 2}]
    assert results_reducer([{"a": 1}], [RESET]) == []
    assert results_reducer([{"a": 1}], [RESET, {"c": 3}]) == [{"c": 3}]
    assert results_reducer(None, None) == []


def test_merge_dicts_right_wins():
    assert merge_dicts({"a": 1, "b": 1}, {"b": 2}) == {"a": 1, "b": 2}


def test_order_results_follows_intents():
    rs = [{"intent": "order", "n": 1}, {"intent": "search", "n": 2}]
    assert [r["n"] for r in order_results(rs, ["search", "order"])] == [2, 1]


def test_recommend_subsumes_search_of_liked_titles():
    text = "I liked Berserk and Vagabond, what should I read next?"
    assert drop_subsumed(["recommend", "search"], {"recommend": text, "search": "I liked Berserk and Vagabond"}, text) == ["recommend"]
    both = "Do you have Naruto? Also recommend me something like Monster"
    reqs = {"search": "Do you have Naruto", "recommend": "recommend me something like Monster"}
    assert drop_subsumed(["search", "recommend"], reqs, both) == ["search", "recommend"]
