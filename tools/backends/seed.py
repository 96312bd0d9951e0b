"""Open, migrate and seed the orders repository (``open_orders_repository``).

The demo data set it writes lives in ``tools.backends.demo_data`` (re-exported here for existing callers):
the repositories need it to seed themselves, and this opener needs the repositories, so the data sits below both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tools.backends.demo_data import (
    FREE_SHIPPING_THRESHOLD_JPY,
    SHIPPING_FEE_JPY,
    DemoCustomer,
    SeedData,
    build_seed,
    popular_manga,
)
from tools.backends.orders_repo import PostgresOrdersRepository, SqliteOrdersRepository

if TYPE_CHECKING:
    from core.ports import OrdersRepository
    from core.settings import Settings

__all__ = [
    "FREE_SHIPPING_THRESHOLD_JPY",
    "SHIPPING_FEE_JPY",
    "DemoCustomer",
    "SeedData",
    "build_seed",
    "open_orders_repository",
    "popular_manga",
]


async def open_orders_repository(settings: Settings, pool: Any | None = None) -> OrdersRepository:
    """Open, migrate (``setup()``) and seed (``seed_if_empty()``) the orders repository for ``settings``.

    Postgres (``PostgresOrdersRepository(pool)``) when ``settings.database_url`` is set and a
    ``psycopg_pool.AsyncConnectionPool`` is passed (the process-wide pool, not closed by the repository);
    otherwise SQLite at ``settings.sqlite_path("orders")``. Callers ``await repo.close()`` at shutdown.
    """
    repo: PostgresOrdersRepository | SqliteOrdersRepository
    if settings.database_url and pool is not None:
        repo = PostgresOrdersRepository(pool)
    else:
        repo = SqliteOrdersRepository(settings.sqlite_path("orders"))
    await repo.setup()
    await repo.seed_if_empty()
    return repo
