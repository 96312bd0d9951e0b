"""Durable turns on real Postgres with our settings: lz4 columns, resume after a restart (also from an
interrupt), replay and fork, and checkpoint retention (prune_checkpoints)."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest
from langchain_core.messages import HumanMessage

from core.context import Context
from graphs.app import Assistant
from tools.backends.persistence import LZ4_COLUMNS, prune_checkpoints

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_settings(settings, pg_dsn):
    """Embedded-default settings pointed at this test's fresh Postgres database."""
    return settings.model_copy(update={"database_url": pg_dsn})


async def _rows(pool, sql: str, *params) -> list[dict]:
    async with pool.connection() as conn:
        return await (await conn.execute(sql, params or None)).fetchall()


def _names(item: dict) -> set[str]:
    return {v for v in (item.get("title"), item.get("title_en"), item.get("title_ja")) if v}


async def test_lz4_and_resume_after_restart_with_one_checkpoint_per_turn(pg_settings):
    async with AsyncExitStack() as stack:
        a = await Assistant.open(pg_settings, stack)
        rows = await _rows(a.persistence.pool, "SELECT attrelid::regclass::text AS t, attname, attcompression"
                                               " FROM pg_attribute WHERE attname IN ('checkpoint', 'metadata', 'blob')"
                                               " AND attrelid::regclass::text LIKE 'checkpoint%%'")
        assert {(r["t"], r["attname"]) for r in rows if r["attcompression"] == "l"} == set(LZ4_COLUMNS)
        # an author's works: a list of several, so "the second one" has a referent
        first = await a.turn("Do you have manga by Makoto Yukimura?", user_id="u_ben", durability="exit")
        thread = first["thread_id"]
        assert len(first["items"]) >= 2
        n = await _rows(a.persistence.pool, "SELECT count(*) AS n FROM checkpoints WHERE thread_id = %s", thread)
        assert n[0]["n"] == 1  # "exit": the turn's final checkpoint only

    async with AsyncExitStack() as stack:  # a new process: new pool, new graph, same database
        a = await Assistant.open(pg_settings, stack)
        follow = await a.turn("what about the second one?", thread_id=thread, user_id="u_ben", durability="exit")
        assert any(name in follow["answer"] for name in _names(first["items"][1])), follow["answer"]
        values = (await a.graph.aget_state(a.config(thread, "u_ben"))).values
        assert [m.type for m in values["messages"]] == ["human", "ai", "human", "ai"]


async def test_interrupt_survives_a_restart_with_exit_durability(pg_settings):
    async with AsyncExitStack() as stack:
        a = await Assistant.open(pg_settings, stack)
        oid = next(o.order_id for o in await a.deps.orders.list_orders("u_ben") if o.status == "processing")
        asked = await a.turn(f"please cancel order {oid}", user_id="u_ben", durability="exit")
        assert asked["interrupt"] and asked["interrupt"]["order_id"] == oid

    async with AsyncExitStack() as stack:
        a = await Assistant.open(pg_settings, stack)
        done = await a.turn("yes", thread_id=asked["thread_id"], user_id="u_ben", durability="exit")
        assert done["interrupt"] is None and "cancelled" in done["answer"]
        assert (await a.deps.orders.get_order("u_ben", oid)).status == "cancelled"


async def test_replay_and_fork_on_postgres(pg_settings):
    async with AsyncExitStack() as stack:
        a = await Assistant.open(pg_settings, stack)
        t1 = await a.turn("what do you have by Hiromu Arakawa?", user_id="u_ben", durability="exit")
        thread, cfg = t1["thread_id"], a.config(t1["thread_id"], "u_ben")
        t2 = await a.turn("What is your return policy?", thread_id=thread, user_id="u_ben",
                          durability="async")  # per-step checkpoints
        history = [s async for s in a.graph.aget_state_history(cfg)]
        assert history[0].config["configurable"]["checkpoint_id"] == t2["checkpoint_id"]

        # replay turn 2 from the checkpoint before classify: same answer, a new head
        before_classify = next(s for s in history if s.next == ("classify",))
        out = await a.graph.ainvoke(None, before_classify.config, context=Context(user_id="u_ben"))
        assert out["answer"] == t2["answer"]

        # fork from turn 1's (only) checkpoint: a different follow-up on the old branch
        turn1 = next(s for s in history if s.config["configurable"]["checkpoint_id"] == t1["checkpoint_id"])
        forked = await a.graph.ainvoke({"messages": [HumanMessage(content="what about the second one?")]},
                                       turn1.config, context=Context(user_id="u_ben"), durability="exit")
        assert any(name in forked["answer"] for name in _names(t1["items"][1]))
        head = await a.graph.aget_state(cfg)
        assert head.parent_config["configurable"]["checkpoint_id"] == t1["checkpoint_id"]
        assert "return" not in " ".join(str(m.content) for m in head.values["messages"]).lower()


async def test_prune_keeps_latest_k_and_the_conversation(pg_settings):
    async with AsyncExitStack() as stack:
        a = await Assistant.open(pg_settings, stack)
        pool = a.persistence.pool
        keep = await a.turn("Do you have Berserk?", user_id="u_aiko")  # another thread: must be untouched
        thread = None
        for text in ("Do you have One Piece?", "what about the second one?", "What is your return policy?",
                     "Recommend something like Berserk"):
            out = await a.turn(text, thread_id=thread, user_id="u_ben",
                               durability="async")  # per-step: many checkpoints + subgraphs
            thread = out["thread_id"]
        cfg = a.config(thread, "u_ben")
        roots = [s.config["configurable"]["checkpoint_id"] async for s in a.graph.aget_state_history(cfg)]
        head_before = (await a.graph.aget_state(cfg)).values
        other_before = await _rows(pool, "SELECT count(*) AS n FROM checkpoints WHERE thread_id = %s", keep["thread_id"])

        async def counts() -> dict[str, int]:
            return {t: (await _rows(pool, f"SELECT count(*) AS n FROM {table} WHERE thread_id = %s", thread))[0]["n"]
                    for t, table in (("checkpoints", "checkpoints"), ("writes", "checkpoint_writes"),
                                     ("blobs", "checkpoint_blobs"))}

        before = await counts()
        report = await prune_checkpoints(pool, keep_last=3, thread_ids=[thread])
        after = await counts()
        # the report counts exactly the rows it deleted, and there were old rows of every kind to delete
        assert (report.checkpoints, report.writes, report.blobs) == tuple(before[k] - after[k]
                                                                         for k in ("checkpoints", "writes", "blobs"))
        assert report.checkpoints >= len(roots) - 3 and report.writes > 0 and report.blobs > 0

        kept = [s.config["configurable"]["checkpoint_id"] async for s in a.graph.aget_state_history(cfg)]
        assert kept == roots[:3]
        boundary = roots[3]
        older = await _rows(pool, "SELECT count(*) AS n FROM checkpoints WHERE thread_id = %s AND checkpoint_id <= %s",
                            thread, boundary)
        stale_writes = await _rows(pool, "SELECT count(*) AS n FROM checkpoint_writes WHERE thread_id = %s"
                                         " AND checkpoint_id <= %s", thread, boundary)
        orphans = await _rows(pool, "SELECT count(*) AS n FROM checkpoint_blobs b WHERE b.thread_id = %s AND NOT EXISTS"
                                    " (SELECT 1 FROM checkpoints c WHERE c.thread_id = b.thread_id AND c.checkpoint_ns ="
                                    " b.checkpoint_ns AND c.checkpoint -> 'channel_versions' ->> b.channel = b.version)",
                              thread)
        assert older[0]["n"] == 0 and stale_writes[0]["n"] == 0 and orphans[0]["n"] == 0
        assert (await a.graph.aget_state(cfg)).values == head_before
        other_after = await _rows(pool, "SELECT count(*) AS n FROM checkpoints WHERE thread_id = %s", keep["thread_id"])
        assert other_after == other_before

        # age-based: everything is older than 0 days, but the latest checkpoint of every thread stays
        await prune_checkpoints(pool, keep_last=100, max_age_days=0)
        assert len([s async for s in a.graph.aget_state_history(cfg)]) == 1
        follow = await a.turn("what about the second one?", thread_id=thread, user_id="u_ben")
        assert follow["answer"] and follow["interrupt"] is None
        with pytest.raises(ValueError):
            await prune_checkpoints(pool, keep_last=0)
