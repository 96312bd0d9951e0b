"""The per-user daily budget on Postgres (DATABASE_URL): the day's spend is the LangGraph store's row in the same
database as the checkpoints, and the server refuses a spent user's turns on any thread before any model work."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from nodes.supervisor import USAGE_NAMESPACE, usage_day_key
from server.app import create_app

pytestmark = pytest.mark.postgres


def test_daily_budget_is_read_from_postgres_and_refuses_every_thread(settings, pg_dsn):
    import psycopg
    from langgraph.store.postgres.aio import AsyncPostgresStore

    app = create_app(settings.model_copy(update={"database_url": pg_dsn, "auth": "on"}))
    with TestClient(app) as client:
        h = {"X-Api-Key": client.portal.call(app.state.accounts.create_key, "u_pg")[0]}
        store = app.state.assistant.graph.store
        assert isinstance(store, AsyncPostgresStore)
        old = client.post("/v1/threads", headers=h).json()["thread_id"]
        assert client.post(f"/v1/threads/{old}/messages", json={"text": "find Berserk"}, headers=h).status_code == 200
        cap = app.state.assistant.deps.settings.usd_budget_user_day
        client.portal.call(store.aput, (USAGE_NAMESPACE, "u_pg"), usage_day_key(),
                           {"usd": cap, "input_tokens": 0, "output_tokens": 0, "turns": 30, "calls": 90})
        with psycopg.connect(pg_dsn) as conn:  # booked where the checkpoints are
            (value,) = conn.execute("SELECT value FROM store WHERE prefix = %s AND key = %s",
                                    (f"{USAGE_NAMESPACE}.u_pg", usage_day_key())).fetchone()
        assert value["usd"] == cap
        head = client.get(f"/v1/threads/{old}/state", headers=h).json()["checkpoint_id"]
        new = client.post("/v1/threads", headers=h).json()["thread_id"]
        for r in (client.post(f"/v1/threads/{old}/messages", json={"text": "find Monster"}, headers=h),
                  client.post(f"/v1/threads/{new}/messages", json={"text": "find Monster"}, headers=h),
                  client.post(f"/threads/{new}/runs/wait", headers=h, json={
                      "assistant_id": "mangaassist", "input": {"messages": [{"role": "user", "content": "hi"}]}})):
            assert r.status_code == 429 and r.json()["error"]["code"] == "daily_budget_exceeded", r.text
        assert client.get(f"/v1/threads/{old}/state", headers=h).json()["checkpoint_id"] == head
        assert client.get(f"/v1/threads/{new}/state", headers=h).json()["values"] == {}
        with psycopg.connect(pg_dsn) as conn:
            (n,) = conn.execute("SELECT count(*) FROM checkpoints WHERE thread_id = %s", (new,)).fetchone()
        assert n == 0
