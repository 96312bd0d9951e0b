"""Checkpointer + store + shared psycopg pool: SQLite files by default, Postgres when DATABASE_URL is set."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Durability
from langgraph.store.base import BaseStore

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


async def open_postgres_pool(url: str, min_size: int = 2, max_size: int = 10, timeout_s: float = 5.0):
    """Open (and wait for) a psycopg AsyncConnectionPool configured for LangGraph's Postgres saver/store.

    Raises psycopg_pool.PoolTimeout when the database cannot be reached within ``timeout_s``.
    """
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    pool = AsyncConnectionPool(url, min_size=min_size, max_size=max_size, open=False, timeout=timeout_s,
                               kwargs={**POOL_KWARGS, "row_factory": dict_row})
    await pool.open(wait=True, timeout=timeout_s)
    return pool


DEFAULT_DURABILITY: Durability = "async"
"""LangGraph durability mode for customer turns unless a caller picks another (docs/persistence.md):
"sync" waits for each step's checkpoint before the next step, "async" writes it while the next step runs,
"exit" writes only when the run ends (finished or interrupted)."""

DURABILITY_MODES: tuple[str, ...] = ("sync", "async", "exit")

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

    Postgres (DATABASE_URL): AsyncPostgresSaver + AsyncPostgresStore on one pool, ``setup()`` run once,
    then (``tuned``) lz4 TOAST compression on the checkpoint tables. ``tuned=False`` leaves the library
    defaults (benchmark "before" figures).
    Default: AsyncSqliteSaver + AsyncSqliteStore in ``<data_dir>/checkpoints.sqlite`` and ``store.sqlite``.
    Raises psycopg_pool.PoolTimeout when Postgres cannot be reached.
    """
    if settings.database_url:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from langgraph.store.postgres.aio import AsyncPostgresStore

        pool = await open_postgres_pool(settings.database_url, settings.pool_min_size, settings.pool_max_size)
        stack.push_async_callback(pool.close)
        saver = AsyncPostgresSaver(pool)
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
