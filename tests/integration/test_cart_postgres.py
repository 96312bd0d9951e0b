"""The cart-store tests of tests/unit/test_cart_store.py rerun on real Postgres, plus duplicate checkouts from two
pools (two server processes)."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration import test_orders_postgres as pg
from tests.unit.test_cart_store import *  # noqa: F403  (the same test bodies)
from tests.unit.test_cart_store import BERSERK, stock
from tests.unit.test_orders_repo import clock  # noqa: F401
from tools.backends.orders_repo import PostgresOrdersRepository

backend = pg.backend  # assigned after the star import: the Postgres fixture replaces the SQLite one
_pool = pg._pool

pytestmark = pytest.mark.postgres


async def test_duplicate_checkout_from_two_pools_places_one_order(backend, pg_dsn, clock):  # noqa: F811
    repo, query = backend
    await repo.add_to_cart("u_ben", BERSERK, "Berserk", 1, 1, 660, in_stock=10)
    async with _pool(pg_dsn) as p1, _pool(pg_dsn) as p2:
        r1, r2 = PostgresOrdersRepository(p1, clock=clock), PostgresOrdersRepository(p2, clock=clock)
        results = await asyncio.gather(*[r.checkout("u_ben", "cross-pool", stock()) for r in (r1, r2) * 4])
    assert sum(not r.replayed for r in results) == 1 and len({r.order.order_id for r in results}) == 1
    assert len(await query("SELECT * FROM checkouts WHERE idempotency_key = ?", ("cross-pool",))) == 1
