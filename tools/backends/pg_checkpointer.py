"""LangGraph's AsyncPostgresSaver with a checkpoint-read query whose cost does not grow with the thread's length.

Why: langgraph-checkpoint-postgres 3.2 reads a checkpoint's channel values with a correlated subquery that
joins ``jsonb_each_text(checkpoint -> 'channel_versions')`` to ``checkpoint_blobs`` on
(thread_id, checkpoint_ns, channel, version). PostgreSQL 15/16 plans it as a hash (or merge) join whose
inner side is *every* blob of the thread — (thread_id, checkpoint_ns) is the only usable index prefix once
the join is flattened — so each checkpoint read scans all the blobs the thread ever wrote:

* ``aget_tuple`` at the start of every turn costs O(blobs in the thread) — latency grows with history;
* ``alist`` / ``get_state_history`` costs O(checkpoints x blobs) — quadratic in the thread's length.

Measured on this project's 100-turn bench thread (Postgres 15, 17 blobs per checkpoint, 1,700 blobs in the
thread; ``EXPLAIN ANALYZE`` of the history query): 1,700 blob rows hashed per checkpoint, 149,946 buffer hits,
179 ms; with the query below 17 primary-key lookups per checkpoint, 13,346 buffer hits, 25 ms.

What changes: only ``SELECT_SQL`` (the class attribute the library's ``aget_tuple``/``alist`` build on). The
blob lookup becomes a LATERAL subquery with ``LIMIT 1`` — legal because (thread_id, checkpoint_ns, channel,
version) is the table's primary key, so at most one row matches — which keeps the planner from flattening it
into that join and makes each channel one primary-key index lookup. The selected columns, their order and
types are the library's, so its row decoding (``_load_checkpoint_tuple``) is reused unchanged; tables,
migrations and writes are the library's. tests/integration/test_pg_checkpointer.py checks that both savers
return identical tuples and histories on the same rows.
"""

from __future__ import annotations

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

SELECT_SQL = """
select
    thread_id,
    checkpoint,
    checkpoint_ns,
    checkpoint_id,
    parent_checkpoint_id,
    metadata,
    (
        select array_agg(array[bl.channel::bytea, bl.type::bytea, bl.blob])
        from jsonb_each_text(checkpoint -> 'channel_versions') as cv
        cross join lateral (
            select b.channel, b.type, b.blob
            from checkpoint_blobs b
            where b.thread_id = checkpoints.thread_id
                and b.checkpoint_ns = checkpoints.checkpoint_ns
                and b.channel = cv.key
                and b.version = cv.value
            limit 1
        ) as bl
    ) as channel_values,
    (
        select
        array_agg(array[cw.task_id::text::bytea, cw.channel::bytea, cw.type::bytea, cw.blob, convert_to(cw.task_path, 'UTF8'), cw.idx::text::bytea])
        from checkpoint_writes cw
        where cw.thread_id = checkpoints.thread_id
            and cw.checkpoint_ns = checkpoints.checkpoint_ns
            and cw.checkpoint_id = checkpoints.checkpoint_id
    ) as pending_writes
from checkpoints """
"""The library's SELECT_SQL with the channel-blob join as a per-channel primary-key lookup (module docstring)."""


class IndexedPostgresSaver(AsyncPostgresSaver):
    """``AsyncPostgresSaver`` whose checkpoint reads do one primary-key lookup per channel (module docstring).

    Same constructor, tables, ``setup()``, writes and return values as the library class; ``aget_tuple`` is
    O(channels) instead of O(blobs in the thread) and ``alist`` O(checkpoints x channels).
    """

    SELECT_SQL = SELECT_SQL
