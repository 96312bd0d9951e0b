"""The orders-repository tests of tests/unit/test_orders_repo.py rerun on real Postgres, plus cross-pool concurrency."""

from __future__ import annotations

import asyncio

import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from tests.unit.test_orders_repo import *  # noqa: F403  (the same test bodies, with the Postgres `backend` below)
from tests.unit.test_orders_repo import NOW, SEED, _first
from tools.backends.orders_repo import PostgresOrdersRepository
from tools.backends.seed import open_orders_repository

pytestmark = pytest.mark.postgres

# Backend-independent tests of the unit module need no second run here.
del test_seed_is_deterministic_and_covers_every_status, test_seed_items_are_real_catalog_titles_with_catalog_prices  # noqa: F821
del test_seed_dates_follow_now, test_open_orders_repository_defaults_to_seeded_sqlite  # noqa: F821


@pytest.fixture
async def backend(pg_pool, clock):
    """(Postgres repository on a fresh database seeded at NOW, query function on the same pool)."""
    repo = PostgresOrdersRepository(pg_pool, clock=clock)
    await repo.setup()
    assert await repo.seed_if_empty(now=NOW)

    async def query(sql: str, params: tuple = ()) -> list[dict]:
        async with pg_pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql.replace("?", "%s"), params)
            return await cur.fetchall() if cur.description else []

    yield repo, query
    await repo.close()


def _pool(dsn: str) -> AsyncConnectionPool:
    return AsyncConnectionPool(dsn, min_size=1, max_size=4, open=False,
                               kwargs={"autocommit": True, "row_factory": dict_row, "prepare_threshold": 0})


async def test_timestamps_are_timestamptz_and_dates_are_date(backend):
    _, query = backend
    types = {r["column_name"]: r["data_type"] for r in await query(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'orders'")}
    assert types["created_at"] == "timestamp with time zone" and types["estimated_delivery"] == "date"


async def test_duplicate_cancel_from_two_pools_applies_once(backend, pg_dsn, clock):
    """Two pools stand for two server processes: the row lock + key PK keep the action exactly-once."""
    _, query = backend
    order = _first(SEED.orders, "u_ben", "processing")
    async with _pool(pg_dsn) as p1, _pool(pg_dsn) as p2:
        r1, r2 = PostgresOrdersRepository(p1, clock=clock), PostgresOrdersRepository(p2, clock=clock)
        results = await asyncio.gather(*[r.cancel("u_ben", order.order_id, "cross-pool") for r in (r1, r2) * 4])
    assert sum(not r.replayed for r in results) == 1
    assert len(await query("SELECT * FROM order_actions WHERE order_id = ?", (order.order_id,))) == 1


async def test_concurrent_setup_and_seed_from_two_pools(pg_dsn):
    async with _pool(pg_dsn) as p1, _pool(pg_dsn) as p2:
        repos = [PostgresOrdersRepository(p) for p in (p1, p2)]
        await asyncio.gather(*(r.setup() for r in repos))
        seeded = await asyncio.gather(*(r.seed_if_empty(now=NOW) for r in repos))
        assert sorted(seeded) == [False, True]
        assert len(await repos[0].demo_users()) == 4


async def test_open_orders_repository_uses_postgres_with_url_and_pool(settings, pg_pool, pg_dsn):
    pg_settings = settings.model_copy(update={"database_url": pg_dsn})
    repo = await open_orders_repository(pg_settings, pool=pg_pool)
    assert isinstance(repo, PostgresOrdersRepository)
    assert [u["user_id"] for u in await repo.demo_users()] == ["u_aiko", "u_ben", "u_chloe", "u_daichi"]
    await repo.close()
    assert not pg_pool.closed  # the shared pool belongs to the caller
