"""A whole turn on a non-Bedrock provider (every role ``openai:gpt-4o-mini``, the official ChatOpenAI on an
httpx.MockTransport): when the provider throttles or fails with 5xx, the turn still answers from the local
roles (router, think, writer, critic) and every failed tier is in ``usage.calls``; nothing crashes. Three
faults open the model's circuit breaker, so the rest of the turn skips it."""

from __future__ import annotations

import dataclasses

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from graphs.app import Assistant
from graphs.supervisor import build_supervisor
from tests.unit.test_providers import MINI, OpenAIWire, api_error, openai_settings
from tools.backends.models.bedrock import build_bedrock_models


@pytest.mark.parametrize(("status", "kind"), [(429, "throttled"), (503, "service")])
async def test_a_failing_provider_falls_back_to_the_local_roles_for_the_whole_turn(deps, status, kind):
    wire = OpenAIWire(api_error(status, "slow down" if status == 429 else "overloaded"))
    settings = openai_settings(data_dir=deps.settings.data_dir, latency_budget_ms=10_000)
    models = build_bedrock_models(settings, fallback=deps.models, chat_factory=wire.factory)
    d = dataclasses.replace(deps, settings=settings, models=models)
    assistant = Assistant(build_supervisor(d).compile(checkpointer=InMemorySaver(), store=InMemoryStore()), d, None)
    out = await assistant.turn("Do you have Berserk?", "prov-1", "u_ben")
    assert out["agents"] == ["search"] and "Berserk" in out["answer"]
    assert any("berserk" in (i.get("title") or "").lower() for i in out["items"])
    calls = out["usage"]["calls"]
    remote = [c for c in calls if c["model"] == MINI]
    # classified faults; after three of them the model's breaker (shared by its roles) skips it for the rest
    assert [c["outcome"] for c in remote[:3]] == [f"error:{kind}"] * 3
    assert {c["outcome"] for c in remote[3:]} <= {"skipped:circuit_open"}
    assert {c["role"] for c in calls if c["model"] == "local:writer" and c["outcome"] == "ok"} == {"writer"}
    assert {c["role"] for c in calls if c["model"].startswith("local:") and c["outcome"] == "ok"} >= {
        "router", "think:search", "writer"}
    assert out["usage"]["usd"] == 0 and len(wire.requests) >= len(remote)
