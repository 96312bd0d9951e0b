"""Checkpointer + store + shared psycopg pool: SQLite files by default, Postgres when DATABASE_URL is set."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
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


async def open_persistence(settings: Settings, stack: AsyncExitStack) -> Persistence:
    """Open the checkpointer and store chosen by ``settings`` and register their closing on ``stack``.

    Postgres (DATABASE_URL): AsyncPostgresSaver + AsyncPostgresStore on one pool, ``setup()`` run once.
    Default: AsyncSqliteSaver + SqliteStore-compatible async store in ``<data_dir>/checkpoints.sqlite``.
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
        return Persistence(saver, store, pool, "postgres")

    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
    from langgraph.store.sqlite.aio import AsyncSqliteStore

    conn = await aiosqlite.connect(str(settings.sqlite_path("checkpoints")), check_same_thread=False)
    stack.push_async_callback(conn.close)
    await conn.execute("PRAGMA journal_mode=WAL")
    saver = AsyncSqliteSaver(conn)
    await saver.setup()
    store_conn = await aiosqlite.connect(str(settings.sqlite_path("store")), check_same_thread=False)
    stack.push_async_callback(store_conn.close)
    store = AsyncSqliteStore(store_conn)
    await store.setup()
    return Persistence(saver, store, None, "sqlite")
