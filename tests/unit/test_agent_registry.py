"""The agent registry (core/agents.py) and what derives from it: no model, no graph."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.agents import REGISTRY, AgentRegistry, AgentSpec
from core.errors import AgentWiringError, ConfigurationError
from core.ports import INTENTS, PlanStep, RouterDecision
from nodes.routing import AGENT_NODES, AGENT_OF, agent_node, resolve_intents
from nodes.specialist import CACHE_SCOPE, answer_cache_key
from tools.backends.models.local_planner import LocalPlanner

TOY = AgentSpec("wishlist", ("wishlist",), plan_intent="wishlist", follow_ups=True)


def test_router_labels_and_their_order_are_the_registrys():
    assert INTENTS == REGISTRY.intents == ("search", "recommend", "order", "faq", "chitchat", "handoff", "out_of_scope",
                                           "cart")


def test_derived_views_match_the_store_specialists():
    assert dict(AGENT_OF) == {"search": "search", "recommend": "recommend", "order": "order", "faq": "conversation",
                              "chitchat": "conversation", "handoff": "conversation", "out_of_scope": "conversation",
                              "cart": "cart"}
    assert AGENT_NODES == ("search_agent", "recommend_agent", "order_agent", "conversation_agent", "cart_agent")
    assert dict(REGISTRY.plan_intent_of) == {"search": "search", "recommend": "recommend", "order": "order",
                                             "conversation": "faq", "cart": "cart"}
    assert dict(CACHE_SCOPE) == {"search": "shared", "recommend": "user", "faq": "shared", "chitchat": "shared",
                                 "out_of_scope": "shared"}
    assert REGISTRY.follow_up_intents == {"search", "recommend", "order", "cart"}
    assert REGISTRY.title_list_intents == {"search", "recommend"}


def test_model_schemas_accept_only_registered_labels_and_agents():
    assert RouterDecision(intents=["faq", "search"]).intents == ["faq", "search"]
    with pytest.raises(ValidationError):
        RouterDecision(intents=["wishlist"])
    assert PlanStep(id="s1", agent="conversation", request="x").agent == "conversation"
    with pytest.raises(ValidationError):
        PlanStep(id="s1", agent="faq", request="x")
    assert PlanStep.model_json_schema()["properties"]["agent"]["enum"] == list(REGISTRY.names)


@pytest.mark.parametrize("make, match", [
    (lambda: AgentSpec("x", (), plan_intent="x"), "serves no intent"),
    (lambda: AgentSpec("x", ("a",), plan_intent="b"), "plan_intent 'b'"),
    (lambda: AgentSpec("x", ("a",), plan_intent="a", uncached_intents=("b",)), "uncached_intents"),
    (lambda: AgentSpec("not a name", ("a",), plan_intent="a"), "not an identifier"),
    (lambda: REGISTRY.with_agent(AgentSpec("search", ("wishlist",), plan_intent="wishlist")), "registered twice"),
    (lambda: REGISTRY.with_agent(AgentSpec("wishlist", ("faq",), plan_intent="faq")), "'conversation' and 'wishlist'"),
])
def test_contradictory_entries_are_rejected(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_with_agent_extends_a_copy():
    extended = REGISTRY.with_agent(TOY)
    assert extended.names == (*REGISTRY.names, "wishlist") and "wishlist" not in REGISTRY
    assert extended.intents == (*REGISTRY.intents, "wishlist")
    assert agent_node("wishlist", extended) == "wishlist_agent"
    assert extended.of_intent("wishlist") is TOY and extended["wishlist"].node == "wishlist_agent"
    with pytest.raises(KeyError):
        agent_node("wishlist")


def test_cache_scope_per_agent_and_intent():
    conversation = REGISTRY["conversation"]
    assert conversation.cache_scope("faq") == "shared" and conversation.cache_scope("handoff") is None
    assert REGISTRY["recommend"].cache_scope("recommend") == "user" and REGISTRY["order"].cache_scope("order") is None
    personal = REGISTRY.with_agent(AgentSpec("wishlist", ("wishlist",), plan_intent="wishlist", cacheable=True,
                                             per_user=True))
    state = {"intent": "wishlist", "request": "r", "message": "m"}
    assert answer_cache_key("wishlist", state) is None  # not in the default registry: never cached
    key = answer_cache_key("wishlist", state, registry=personal)
    assert key is not None and key.startswith("answer:v2:user:")


def test_follow_ups_return_to_a_registered_agent_that_takes_them():
    decision = RouterDecision(intents=["chitchat"], scores={"chitchat": 0.5})
    assert resolve_intents(decision, "yes, that one", "wishlist", None, REGISTRY.with_agent(TOY)) == ["wishlist"]
    no_follow = REGISTRY.with_agent(AgentSpec("wishlist", ("wishlist",), plan_intent="wishlist"))
    assert resolve_intents(decision, "yes, that one", "wishlist", None, no_follow) == ["chitchat"]


async def test_local_planner_names_the_agent_of_each_clause_from_the_registry():
    async def route(clause: str) -> RouterDecision:
        return RouterDecision(intents=["faq" if "shipping" in clause else "search"])

    plan = await LocalPlanner(route).aplan("find Monster, and how much is shipping for it",
                                           RouterDecision(intents=["search", "faq"]))
    assert [(s.agent, s.depends_on) for s in plan.steps] == [("search", []), ("conversation", ["s1"])]


def test_wiring_error_names_the_agent_and_what_it_lacks():
    err = AgentWiringError("wishlist", ["prompt", "writer template"], "local")
    assert isinstance(err, ConfigurationError) and isinstance(err, ValueError)
    assert (err.agent, err.missing, err.profile) == ("wishlist", ("prompt", "writer template"), "local")
    assert str(err) == "agent 'wishlist' is registered but has no prompt and no writer template (profile 'local')"


def test_registry_is_iterable_in_registration_order():
    assert [a.name for a in REGISTRY] == list(REGISTRY.names) and len(REGISTRY) == 5
    assert isinstance(AgentRegistry(list(REGISTRY)), AgentRegistry)
