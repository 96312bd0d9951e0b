"""The same conversation on SQLite and on real Postgres; threads survive a process restart."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest

from core.settings import Settings
from graphs.app import Assistant


def _settings(tmp_path, backend: str, pg_dsn: str | None) -> Settings:
    return Settings(data_dir=tmp_path / backend, database_url=pg_dsn if backend == "postgres" else None, redis_url=None)


async def _processing_order(assistant: Assistant, user: str) -> str:
    return next(o.order_id for o in await assistant.deps.orders.list_orders(user) if o.status == "processing")


def _comparable(out: dict) -> dict:
    return {k: out[k] for k in ("intents", "agents", "answer", "items", "orders", "interrupt")}


async def _conversation(settings: Settings) -> list[dict]:
    async with AsyncExitStack() as stack:
        a = await Assistant.open(settings, stack)
        oid = await _processing_order(a, "u_ben")
        outs, thread = [], None
        for text in ("anything by Naoki Urasawa?", "what about the second one?", "How much does shipping cost?",
                     f"please cancel order {oid}", "yes", "ベルセルクはありますか？",
                     "I liked Berserk and Vagabond, what should I read next?"):
            out = await a.turn(text, thread_id=thread, user_id="u_ben")
            thread = out["thread_id"]
            outs.append(_comparable(out))
        assert (await a.deps.orders.get_order("u_ben", oid)).status == "cancelled"
        return outs


@pytest.mark.postgres
async def test_same_conversation_on_sqlite_and_postgres(tmp_path, pg_dsn):
    sqlite = await _conversation(_settings(tmp_path, "sqlite", None))
    postgres = await _conversation(_settings(tmp_path, "postgres", pg_dsn))
    assert sqlite == postgres
    assert sqlite[3]["interrupt"]["action"] == "cancel" and "cancelled" in sqlite[4]["answer"]
    assert sqlite[1]["items"][0]["mal_id"] == sqlite[0]["items"][1]["mal_id"]
    assert sqlite[6]["intents"] == ["recommend"] and len(sqlite[6]["items"]) >= 3  # store on SQLite and Postgres


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_thread_resumes_after_restart(tmp_path, request, backend):
    pg = request.getfixturevalue("pg_dsn") if backend == "postgres" else None
    settings = _settings(tmp_path, backend, pg)
    async with AsyncExitStack() as stack:
        first = await Assistant.open(settings, stack)
        out = await first.turn("Do you have manga by Makoto Yukimura?", user_id="u_chloe")
        oid = await _processing_order(first, "u_chloe")
        waiting = await first.turn(f"cancel {oid}", thread_id=out["thread_id"], user_id="u_chloe")
        assert waiting["interrupt"]["order_id"] == oid
    # a new process would start here: everything is reopened from the database
    async with AsyncExitStack() as stack:
        second = await Assistant.open(settings, stack)
        done = await second.turn("yes", thread_id=out["thread_id"], user_id="u_chloe")
        assert done["interrupt"] is None and "cancelled" in done["answer"]
        follow = await second.turn("tell me about the second one", thread_id=out["thread_id"], user_id="u_chloe")
        assert follow["items"][0]["mal_id"] == out["items"][1]["mal_id"]
        state = await second.graph.aget_state(second.config(out["thread_id"], "u_chloe"))
        assert state.values["turn"] == 3  # the "yes" resumed the cancel turn; it is not a turn of its own
