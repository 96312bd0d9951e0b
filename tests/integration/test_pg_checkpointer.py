"""IndexedPostgresSaver reads exactly what the library's AsyncPostgresSaver reads, without scanning the thread.

Real Postgres, real supervisor graph: a thread with several turns (durability "async", so per-step
checkpoints, subgraph namespaces and pending writes exist) and one waiting on an interrupt; both savers
read the same rows and must agree on every tuple, history and state snapshot. The plan check asserts
the property the class exists for: one primary-key lookup per channel, never a scan of the thread's blobs.
"""

from __future__ import annotations

import json
from contextlib import AsyncExitStack

import pytest
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from graphs.app import Assistant
from tools.backends.pg_checkpointer import SELECT_SQL, IndexedPostgresSaver

pytestmark = pytest.mark.postgres


def _tuple_key(t) -> tuple:
    return (t.config, t.checkpoint, t.metadata, t.parent_config,
            sorted((w[0], w[1], repr(w[2])) for w in (t.pending_writes or [])))


async def test_indexed_saver_agrees_with_the_library_saver(settings, pg_dsn):
    async with AsyncExitStack() as stack:
        a = await Assistant.open(settings.model_copy(update={"database_url": pg_dsn}), stack)
        assert isinstance(a.persistence.checkpointer, IndexedPostgresSaver)
        first = await a.turn("Do you have Berserk?", user_id="u_ben", durability="async")
        thread = first["thread_id"]
        await a.turn("what about the second one?", thread_id=thread, user_id="u_ben", durability="async")
        oid = next(o.order_id for o in await a.deps.orders.list_orders("u_ben") if o.status == "processing")
        waiting = await a.turn(f"please cancel order {oid}", thread_id=thread, user_id="u_ben", durability="async")
        assert waiting["interrupt"]

        ours, library = a.persistence.checkpointer, AsyncPostgresSaver(a.persistence.pool)
        cfg = {"configurable": {"thread_id": thread}}
        mine = [t async for t in ours.alist(cfg)]
        theirs = [t async for t in library.alist(cfg)]
        assert len(mine) == len(theirs) >= 10
        assert [_tuple_key(t) for t in mine] == [_tuple_key(t) for t in theirs]
        namespaces = {t.config["configurable"]["checkpoint_ns"] for t in mine}
        assert "" in namespaces and len(namespaces) > 1  # subgraph checkpoints are read too
        assert any(t.pending_writes for t in mine)

        for t in theirs[:5]:  # point reads by id, and the latest of each namespace
            assert _tuple_key(await ours.aget_tuple(t.config)) == _tuple_key(t)
        for ns in namespaces:
            latest = {"configurable": {"thread_id": thread, "checkpoint_ns": ns}}
            assert _tuple_key(await ours.aget_tuple(latest)) == _tuple_key(await library.aget_tuple(latest))
        assert await ours.aget_tuple({"configurable": {"thread_id": "no-such-thread", "checkpoint_ns": ""}}) is None

        # the graph-level view (what Studio and the API read) is unchanged
        state = await a.graph.aget_state(a.config(thread, "u_ben"))
        assert state.next and state.tasks[0].interrupts
        resumed = await a.turn("yes", thread_id=thread, user_id="u_ben", durability="async")  # resumes the interrupt
        assert oid in resumed["answer"] and not resumed["interrupt"]
        latest = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
        assert _tuple_key(await ours.aget_tuple(latest)) == _tuple_key(await library.aget_tuple(latest))


async def test_history_query_does_one_primary_key_lookup_per_channel(settings, pg_dsn):
    async with AsyncExitStack() as stack:
        a = await Assistant.open(settings.model_copy(update={"database_url": pg_dsn}), stack)
        first = await a.turn("Do you have Berserk?", user_id="u_ben", durability="exit")
        thread = first["thread_id"]
        for text in ("what about the second one?", "Thanks!", "What is your return policy?"):
            await a.turn(text, thread_id=thread, user_id="u_ben", durability="exit")
        async with a.persistence.pool.connection() as conn:
            rows = await (await conn.execute(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + SELECT_SQL
                + "WHERE thread_id = %s AND checkpoint_ns = '' ORDER BY checkpoint_id DESC", (thread,))).fetchall()
        plan = json.dumps(rows[0]["QUERY PLAN"])
        blob_scans = [n for n in _nodes(rows[0]["QUERY PLAN"][0]["Plan"]) if n.get("Relation Name") == "checkpoint_blobs"]
        assert blob_scans, plan
        for node in blob_scans:  # each lookup returns at most one row: the channel's blob at that version
            assert node["Node Type"] == "Index Scan" and node["Actual Rows"] <= 1, plan
            assert "channel" in node["Index Cond"] and "version" in node["Index Cond"], plan


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)
