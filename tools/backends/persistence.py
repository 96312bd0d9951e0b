"""Checkpointer + store + shared psycopg pool: SQLite files by default, Postgres when DATABASE_URL is set."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, get_args

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore
from langgraph.types import Durability

from core.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Persistence:
    """What a compiled graph needs to be durable, plus the pool the orders repository shares (or None)."""

    checkpointer: BaseCheckpointSaver
    store: BaseStore
    pool: Any | None
    backend: str


POOL_KWARGS = {"autocommit": True, "prepare_threshold": 0}
"""Connection kwargs required by langgraph-checkpoint-postgres (row_factory=dict_row is added at open)."""


RECONNECT_TIMEOUT_S = 2.0
"""How long the pool keeps re-trying a lost connection in the background (psycopg_pool backs off 1, 2, 4... s
up to this) before dropping the attempt; later requests start a fresh attempt at once. psycopg_pool's default
(300 s) let the backoff grow to 8 s during a 10 s outage, so recovery lagged the database by up to 8 s."""


async def open_postgres_pool(url: str, min_size: int = 2, max_size: int = 10, timeout_s: float = 5.0):
    """Open (and wait for) a psycopg AsyncConnectionPool configured for LangGraph's Postgres saver/store.

    Connections are checked when handed out (``check_connection``: one empty round trip) so connections broken
    by a database restart are replaced instead of failing a request; lost connections are retried for
    RECONNECT_TIMEOUT_S. Raises psycopg_pool.PoolTimeout when the database cannot be reached within ``timeout_s``.
    """
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    pool = AsyncConnectionPool(url, min_size=min_size, max_size=max_size, open=False, timeout=timeout_s,
                               kwargs={**POOL_KWARGS, "row_factory": dict_row},
                               check=AsyncConnectionPool.check_connection, reconnect_timeout=RECONNECT_TIMEOUT_S)
    await pool.open(wait=True, timeout=timeout_s)
    return pool


DEFAULT_DURABILITY: Durability = "exit"
"""LangGraph durability mode for customer turns unless a caller picks another (docs/persistence.md):
"sync" waits for each step's checkpoint before the next step, "async" writes it while the next step runs,
"exit" writes only when the run ends (finished or interrupted)."""

DURABILITY_MODES: tuple[str, ...] = get_args(Durability)
"""("sync", "async", "exit"): the modes LangGraph's ``Durability`` type allows."""

LZ4_COLUMNS: tuple[tuple[str, str], ...] = (
    ("checkpoints", "checkpoint"), ("checkpoints", "metadata"),
    ("checkpoint_blobs", "blob"), ("checkpoint_writes", "blob"),
)
"""Columns of langgraph-checkpoint-postgres 3.x tables (JSONB and BYTEA) whose TOAST compression is set to lz4."""


async def use_lz4_compression(pool: Any) -> list[str]:
    """Set TOAST compression of the checkpoint tables' large columns (LZ4_COLUMNS) to lz4 (Postgres >= 14 built
    with lz4); returns the ``table.column`` names changed (empty when already lz4 or unsupported).

    lz4 compresses and decompresses several times faster than the default pglz at a similar ratio on our
    msgpack/JSON payloads; it applies to values written after the change. Only columns not yet lz4 are
    altered (ALTER TABLE takes a brief ACCESS EXCLUSIVE lock), under a transaction-level advisory lock so
    several processes can start at once.
    """
    changed: list[str] = []
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT current_setting('server_version_num')::int AS v")).fetchone()
        if int(row["v"]) < 140000:
            log.info("postgres < 14: no lz4 TOAST compression")
            return changed
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('mangaassist.checkpoint.lz4'))")
            for table, column in LZ4_COLUMNS:
                cur = await conn.execute(
                    "SELECT attcompression FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = %s",
                    (table, column))
                r = await cur.fetchone()
                if r is None or r["attcompression"] == "l":
                    continue
                try:
                    async with conn.transaction():  # savepoint: a server built without lz4 refuses
                        await conn.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION lz4")
                except Exception as exc:  # psycopg.errors.FeatureNotSupported
                    log.warning("lz4 compression unavailable (%s); keeping pglz", exc)
                    return changed
                changed.append(f"{table}.{column}")
    return changed


async def open_persistence(settings: Settings, stack: AsyncExitStack, *, tuned: bool = True) -> Persistence:
    """Open the checkpointer and store chosen by ``settings`` and register their closing on ``stack``.

    Postgres (DATABASE_URL): IndexedPostgresSaver (AsyncPostgresSaver whose checkpoint reads do not scan the
    thread's whole history: tools/backends/pg_checkpointer.py) + AsyncPostgresStore on one pool, ``setup()``
    run once, then (``tuned``) lz4 TOAST compression on the checkpoint tables. ``tuned=False`` leaves the
    library defaults: AsyncPostgresSaver, no lz4 (benchmark "before" figures).
    Default: AsyncSqliteSaver + AsyncSqliteStore in ``<data_dir>/checkpoints.sqlite`` and ``store.sqlite``.
    Raises psycopg_pool.PoolTimeout when Postgres cannot be reached.
    """
    if settings.database_url:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from langgraph.store.postgres.aio import AsyncPostgresStore

        from tools.backends.pg_checkpointer import IndexedPostgresSaver

        pool = await open_postgres_pool(settings.database_url, settings.pool_min_size, settings.pool_max_size)
        stack.push_async_callback(pool.close)
        saver = IndexedPostgresSaver(pool) if tuned else AsyncPostgresSaver(pool)
        store = AsyncPostgresStore(pool)
        await saver.setup()
        await store.setup()
        if tuned:
            await use_lz4_compression(pool)
        return Persistence(saver, store, pool, "postgres")

    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
    from langgraph.store.sqlite.aio import AsyncSqliteStore

    conn = await aiosqlite.connect(str(settings.sqlite_path("checkpoints")), check_same_thread=False)
    stack.push_async_callback(conn.close)
    await conn.execute("PRAGMA journal_mode=WAL")
    saver = AsyncSqliteSaver(conn)
    await saver.setup()
    # isolation_level=None: the store issues its own BEGIN/COMMIT under its lock (as from_conn_string does);
    # with sqlite3's implicit transactions concurrent turns fail with "transaction within a transaction".
    store_conn = await aiosqlite.connect(str(settings.sqlite_path("store")), check_same_thread=False,
                                         isolation_level=None)
    stack.push_async_callback(store_conn.close)
    await store_conn.execute("PRAGMA journal_mode=WAL")
    store = AsyncSqliteStore(store_conn)
    await store.setup()
    return Persistence(saver, store, None, "sqlite")


# ---- retention ---------------------------------------------------------------------------------------

PRUNE_BOUNDARY_SQL = """
SELECT checkpoint_id, (checkpoint ->> 'ts')::timestamptz < now() - make_interval(secs => %s) AS old
FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = '' ORDER BY checkpoint_id DESC
"""

PRUNE_FREED_SQL = """
WITH deleted AS (
    DELETE FROM checkpoints WHERE thread_id = %s AND checkpoint_id <= %s
    RETURNING checkpoint_ns, checkpoint -> 'channel_versions' AS versions
)
SELECT DISTINCT d.checkpoint_ns, v.key AS channel, v.value AS version
FROM deleted d CROSS JOIN LATERAL jsonb_each_text(d.versions) AS v
"""

PRUNE_KEPT_VERSIONS_SQL = """
SELECT DISTINCT c.checkpoint_ns, v.key AS channel, v.value AS version
FROM checkpoints c CROSS JOIN LATERAL jsonb_each_text(c.checkpoint -> 'channel_versions') AS v
WHERE c.thread_id = %s
"""


@dataclass
class PruneReport:
    """What ``prune_checkpoints`` deleted: thread count examined and rows removed per table."""

    threads: int = 0
    checkpoints: int = 0
    writes: int = 0
    blobs: int = 0


async def prune_checkpoints(pool: Any, *, keep_last: int = 20, max_age_days: float | None = None,
                            thread_ids: list[str] | None = None) -> PruneReport:
    """Retention for Postgres checkpoints: per thread keep the ``keep_last`` latest root checkpoints (one per
    step, or one per turn with durability "exit"), drop those older than ``max_age_days`` too, but always keep
    the latest one so every conversation can resume; delete everything a dropped checkpoint alone used.

    Rule: the boundary is the newest root checkpoint being dropped; every checkpoint of the thread (root and
    subgraph namespaces: subgraph calls are namespaced per call) with an id <= boundary goes, with its
    pending writes; checkpoint ids are time-ordered UUIDv6, so a subgraph call that ran after the boundary
    (e.g. one waiting on an interrupt) is kept. Blobs referenced only by deleted checkpoints are deleted.
    The kept oldest checkpoint loses its parent link. Each thread is one REPEATABLE READ transaction, so a
    turn running meanwhile only adds rows newer than the boundary. Forking or replaying from a checkpoint
    being pruned at that moment is not safe (as with LangGraph's own ``aprune``).

    ``thread_ids`` None = every thread. Raises ValueError when ``keep_last`` < 1.
    """
    if keep_last < 1:
        raise ValueError("keep_last must be >= 1 (the latest checkpoint is always kept)")
    max_age_s = max_age_days * 86400.0 if max_age_days is not None else None
    report = PruneReport()
    async with pool.connection() as conn:
        if thread_ids is None:
            rows = await (await conn.execute("SELECT DISTINCT thread_id FROM checkpoints WHERE checkpoint_ns = ''")).fetchall()
            thread_ids = [r["thread_id"] for r in rows]
        for thread_id in thread_ids:
            report.threads += 1
            async with conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                roots = await (await conn.execute(PRUNE_BOUNDARY_SQL, (max_age_s or 0.0, thread_id))).fetchall()
                boundary = None
                for rank, r in enumerate(roots):
                    if rank == 0:
                        continue
                    if rank >= keep_last or (max_age_s is not None and r["old"]):
                        boundary = r["checkpoint_id"]
                        break
                if boundary is None:
                    continue
                cur = await conn.execute("DELETE FROM checkpoint_writes WHERE thread_id = %s AND checkpoint_id <= %s",
                                         (thread_id, boundary))
                report.writes += cur.rowcount
                cur = await conn.execute("SELECT count(*) AS n FROM checkpoints WHERE thread_id = %s"
                                         " AND checkpoint_id <= %s", (thread_id, boundary))
                report.checkpoints += int((await cur.fetchone())["n"])
                freed = await (await conn.execute(PRUNE_FREED_SQL, (thread_id, boundary))).fetchall()
                await conn.execute("UPDATE checkpoints SET parent_checkpoint_id = NULL"
                                   " WHERE thread_id = %s AND parent_checkpoint_id <= %s", (thread_id, boundary))
                kept = {(r["checkpoint_ns"], r["channel"], r["version"])
                        for r in await (await conn.execute(PRUNE_KEPT_VERSIONS_SQL, (thread_id,))).fetchall()}
                garbage: dict[tuple[str, str], list[str]] = {}
                for r in freed:
                    key = (r["checkpoint_ns"], r["channel"], r["version"])
                    if key not in kept:
                        garbage.setdefault((r["checkpoint_ns"], r["channel"]), []).append(r["version"])
                for (ns, channel), versions in garbage.items():
                    cur = await conn.execute("DELETE FROM checkpoint_blobs WHERE thread_id = %s AND checkpoint_ns = %s"
                                             " AND channel = %s AND version = ANY(%s)", (thread_id, ns, channel, versions))
                    report.blobs += cur.rowcount
    return report
