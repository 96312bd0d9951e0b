"""Adding an agent is one registry entry plus its own pieces: a toy "wishlist" agent, defined only in this module,
is registered (its AgentSpec, tools, think policy, prompt and writer template) and the supervisor builds, routes to it
and returns to it on a follow-up, with no other module edited; each missing piece fails the build, naming the agent
and the piece."""

from __future__ import annotations

from typing import Any, Sequence

import pytest
from langchain_core.messages import AIMessage
from langchain_core.tools import BaseTool, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from core.agents import REGISTRY, AgentSpec
from core.errors import AgentWiringError
from core.ports import RouterDecision, WriteTask
from graphs.app import Assistant
from graphs.specialist import AGENT_TOOLS
from graphs.supervisor import build_supervisor
from nodes.prompts import AGENT_SYSTEM
from tests.graph.conftest import replace_models
from tools.backends.models.templates import AGENT_TEMPLATES

# ---- the toy agent's own module: registry entry, tools, think policy, prompt, writer template ---------------

WISHLIST = AgentSpec("wishlist", ("wishlist",), plan_intent="wishlist", follow_ups=True)


def make_wishlist_tools(deps: Any) -> list[BaseTool]:
    """The wishlist agent's one tool."""

    @tool(response_format="content_and_artifact")
    def add_to_wishlist(note: str) -> tuple[str, dict]:
        """Remember something the customer wants to buy later."""
        return "saved", {"kind": "wishlist", "note": note}

    return [add_to_wishlist]


class WishlistPolicy:
    """Think policy: always saves the request."""

    async def athink(self, state: dict, tools: Sequence[BaseTool], context: Any) -> AIMessage:
        call = {"name": "add_to_wishlist", "args": {"note": state.get("request", "")}, "id": "call_wish",
                "type": "tool_call"}
        return AIMessage(content="", tool_calls=[call])


WISHLIST_PROMPT = "You are the Wishlist agent of a manga store. Call add_to_wishlist with what the customer wants."


def wishlist_answer(task: WriteTask) -> str:
    """Writer template: how many notes were saved this turn."""
    saved = [e for e in task.evidence if e.get("kind") == "wishlist"]
    return "Saved on your wishlist." if saved else "Nothing was saved."


class WishlistRouter:
    """The shipped router knows only the store's labels: this one says "wishlist" for messages naming it, else
    low-confidence chitchat (``model_construct``: the toy label is not in the import-time ``Intent`` literal)."""

    async def aroute(self, text: str, history: Sequence[str] = (), focus: Any = None) -> RouterDecision:
        label, score = ("wishlist", 0.99) if "wishlist" in text.lower() else ("chitchat", 0.5)
        return RouterDecision.model_construct(intents=[label], scores={label: score}, complex=False)

    def route_many(self, texts: Sequence[str]) -> list[RouterDecision]:
        raise NotImplementedError


PIECES = ("tools", "think policy", "prompt", "writer template")


def register(monkeypatch, deps, without: str | None = None):
    """Deps and registry with the wishlist agent and all its pieces but ``without`` (undone after the test)."""
    if without != "tools":
        monkeypatch.setitem(AGENT_TOOLS, "wishlist", (make_wishlist_tools,))
    if without != "prompt":
        monkeypatch.setitem(AGENT_SYSTEM, "wishlist", WISHLIST_PROMPT)
    if without != "writer template":
        monkeypatch.setitem(AGENT_TEMPLATES, "wishlist", wishlist_answer)
    agents = dict(deps.models.agents)
    if without != "think policy":
        agents["wishlist"] = WishlistPolicy()
    return replace_models(deps, agents=agents, router=WishlistRouter()), REGISTRY.with_agent(WISHLIST)


# ---- tests --------------------------------------------------------------------------------------------------


def test_the_default_registry_builds_one_node_per_agent(deps):
    nodes = set(build_supervisor(deps).nodes)
    assert {a.node for a in REGISTRY} <= nodes and "wishlist_agent" not in nodes


@pytest.mark.parametrize("piece", PIECES)
def test_a_missing_piece_fails_the_build_naming_agent_and_piece(monkeypatch, deps, piece):
    d, registry = register(monkeypatch, deps, without=piece)
    with pytest.raises(AgentWiringError) as info:
        build_supervisor(d, registry)
    assert (info.value.agent, info.value.missing) == ("wishlist", (piece,))
    assert f"agent 'wishlist' is registered but has no {piece}" in str(info.value)


def test_tool_factories_that_make_no_tool_count_as_missing_tools(monkeypatch, deps):
    d, registry = register(monkeypatch, deps)
    monkeypatch.setitem(AGENT_TOOLS, "wishlist", (lambda deps: [],))
    with pytest.raises(AgentWiringError, match="has no tools"):
        build_supervisor(d, registry)


def test_every_missing_piece_is_named_at_once(deps):
    with pytest.raises(AgentWiringError) as info:
        build_supervisor(deps, REGISTRY.with_agent(WISHLIST))
    assert info.value.missing == PIECES


@pytest.fixture
def wishlist_assistant(monkeypatch, deps) -> Assistant:
    """The supervisor built over the default registry plus the wishlist agent."""
    d, registry = register(monkeypatch, deps)
    graph = build_supervisor(d, registry)
    assert "wishlist_agent" in graph.nodes
    return Assistant(graph.compile(checkpointer=InMemorySaver(), store=InMemoryStore()), d, None)


async def test_a_registered_agent_is_routed_to_and_followed_up(wishlist_assistant):
    out = await wishlist_assistant.turn("put the new Frieren box set on my wishlist", thread_id="t-wish",
                                        user_id="u_ben")
    assert (out["intents"], out["agents"]) == (["wishlist"], ["wishlist"])
    assert out["answer"] == "Saved on your wishlist."
    again = await wishlist_assistant.turn("and that one too", thread_id="t-wish", user_id="u_ben")
    assert (again["intents"], again["agents"]) == (["wishlist"], ["wishlist"])  # follow_ups=True: back to it
    assert again["answer"] == "Saved on your wishlist."


async def test_the_store_agents_still_answer_beside_it(wishlist_assistant):
    out = await wishlist_assistant.turn("hello there", user_id="u_ben")  # chitchat → the conversation agent
    assert out["agents"] == ["conversation"] and out["answer"]
