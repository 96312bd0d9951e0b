"""The per-user daily budget end to end through the server: turns on simulated Bedrock models (scripted token
usage, bench/model_latency.SimulatedChat) are booked by the graph's finalize node in the server's own store, and
once the user's UTC day is spent every new turn is refused — on a new thread too — with nothing written."""

from __future__ import annotations

import dataclasses

import pytest
from fastapi.testclient import TestClient

from bench.model_latency import simulated_models, simulated_settings
from core.settings import Settings
from graphs.app import Assistant
from graphs.supervisor import build_supervisor
from server.app import create_app

HAIKU, SONNET = "sim:claude-3-haiku", "sim:claude-3-5-sonnet"
TOKENS_PER_DAY = 1500
"""Below one "Do you have Berserk?" turn on these models (4 Haiku calls of 100+20 tokens, 1 Sonnet of 1000+200)."""


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """(client, app): the real app (SQLite, auth on, a token cap per user and day) whose Assistant runs the same
    supervisor on simulated models, compiled on the app's own checkpointer and store. The latency budget is
    generous so that every simulated call runs on a loaded test machine (none skipped for time)."""
    mp = pytest.MonkeyPatch()
    for name in ("DATABASE_URL", "REDIS_URL", "MANGAASSIST_DATABASE_URL", "MANGAASSIST_REDIS_URL"):
        mp.delenv(name, raising=False)
    settings = Settings(data_dir=tmp_path_factory.mktemp("daily-budget"), auth="on",
                        tokens_budget_user_day=TOKENS_PER_DAY, latency_budget_ms=60_000, model_timeout_s=60)
    app = create_app(settings)
    with TestClient(app) as client:
        real = app.state.assistant
        sim = simulated_settings(real.deps.settings)
        models, _ = simulated_models(sim, real.deps.models, {"haiku": 5, "sonnet": 5},
                                     per_model={HAIKU: {"usage": (100, 20)}, SONNET: {"usage": (1000, 200)}})
        deps = dataclasses.replace(real.deps, settings=sim, models=models)
        graph = build_supervisor(deps).compile(checkpointer=real.persistence.checkpointer,
                                               store=real.persistence.store, name="mangaassist")
        app.state.assistant = Assistant(graph, deps, real.persistence)
        yield client, app
    mp.undo()


def _key(app, client, user: str) -> str:
    return client.portal.call(app.state.accounts.create_key, user)[0]


def test_spend_booked_on_one_thread_refuses_the_next_turn_on_a_new_thread(api):
    client, app = api
    key = _key(app, client, "u_heavy")
    h = {"X-Api-Key": key}
    first = client.post("/v1/threads", headers=h).json()["thread_id"]
    r = client.post(f"/v1/threads/{first}/messages", json={"text": "Do you have Berserk?"}, headers=h)
    assert r.status_code == 200, r.text
    usage = r.json()["usage"]
    spent = usage["input_tokens"] + usage["output_tokens"]
    assert spent == 4 * 120 + 1200 and usage["usd"] > 0, usage

    second = client.post("/v1/threads", headers=h).json()["thread_id"]  # a fresh session budget...
    r = client.post(f"/v1/threads/{second}/messages", json={"text": "Do you have Monster?"}, headers=h)
    assert r.status_code == 429, r.text  # ...but the same day
    err = r.json()["error"]
    assert err["code"] == "daily_budget_exceeded"
    assert f"{spent:,} of {TOKENS_PER_DAY:,} tokens" in err["message"]
    assert client.get(f"/v1/threads/{second}/state", headers=h).json()["values"] == {}
    r = client.post("/runs/wait", json={"assistant_id": "mangaassist",
                                        "input": {"messages": [{"role": "user", "content": "find Monster"}]}},
                    headers=h)
    assert r.status_code == 429 and r.json()["error"]["code"] == "daily_budget_exceeded"
    with client.websocket_connect(f"/v1/ws/threads/{second}?api_key={key}") as ws:
        ws.send_json({"type": "message", "text": "find Monster"})
        frame = ws.receive_json()
    assert (frame["type"], frame["code"]) == ("error", "daily_budget_exceeded")

    other = {"X-Api-Key": _key(app, client, "u_light")}
    tid = client.post("/v1/threads", headers=other).json()["thread_id"]
    assert client.post(f"/v1/threads/{tid}/messages", json={"text": "Do you have Monster?"},
                       headers=other).status_code == 200, "the cap is per user"
