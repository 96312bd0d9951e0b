"""Orders repository on SQLite (embedded default) or Postgres: customer-scoped reads and exactly-once cancel/return.

Schema (both dialects; only timestamp types differ): customers, orders, order_items, returns,
escalations, order_actions, and the shopping cart's cart_items and checkouts (tools/backends/cart_store.py).
``order_actions.idempotency_key`` is the primary key that makes changing actions exactly-once: the status change, the
``returns`` row and the ``order_actions`` row are written in one transaction, and a repeated key replays the recorded
outcome. The order row is locked first (``SELECT ... FOR UPDATE`` on Postgres, ``BEGIN IMMEDIATE`` on SQLite), so a
concurrent duplicate waits for the first one and then sees its recorded action.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from core.domain import ActionResult, Order, OrderItem
from core.errors import OrderActionNotAllowed, OrderNotFound
from tools.backends.cart_store import CART_DDL, CartMixin
from tools.backends.demo_data import build_seed
from tools.backends.sqlite import open_sqlite

log = logging.getLogger(__name__)

RETURN_WINDOW_DAYS = 30
"""Days after delivery during which a return can be requested (the returns policy)."""

ORDER_STATUSES = ("processing", "shipped", "delivered", "cancelled", "returned")

# ---- schema: the two dialects side by side; {ts} / {day} are the timestamp / date column types ----

_DDL = (
    """CREATE TABLE IF NOT EXISTS customers (
        user_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        email TEXT NOT NULL UNIQUE,
        locale TEXT NOT NULL CHECK (locale IN ('en', 'ja')),
        created_at {ts} NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS orders (
        order_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES customers(user_id),
        status TEXT NOT NULL CHECK (status IN ('processing', 'shipped', 'delivered', 'cancelled', 'returned')),
        created_at {ts} NOT NULL,
        updated_at {ts} NOT NULL,
        carrier TEXT,
        tracking_number TEXT,
        estimated_delivery {day},
        delivered_at {ts},
        total_jpy INTEGER NOT NULL CHECK (total_jpy >= 0))""",
    "CREATE INDEX IF NOT EXISTS orders_user_created ON orders (user_id, created_at)",
    """CREATE TABLE IF NOT EXISTS order_items (
        order_id TEXT NOT NULL REFERENCES orders(order_id),
        line_no INTEGER NOT NULL,
        mal_id INTEGER NOT NULL,
        title TEXT NOT NULL,
        volume INTEGER,
        quantity INTEGER NOT NULL CHECK (quantity > 0),
        unit_price_jpy INTEGER NOT NULL CHECK (unit_price_jpy >= 0),
        PRIMARY KEY (order_id, line_no))""",
    """CREATE TABLE IF NOT EXISTS returns (
        return_id TEXT PRIMARY KEY,
        order_id TEXT NOT NULL REFERENCES orders(order_id),
        reason TEXT NOT NULL DEFAULT '',
        refund_jpy INTEGER NOT NULL,
        created_at {ts} NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS returns_order ON returns (order_id)",
    """CREATE TABLE IF NOT EXISTS escalations (
        escalation_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        thread_id TEXT NOT NULL,
        summary TEXT NOT NULL,
        created_at {ts} NOT NULL,
        idempotency_key TEXT NOT NULL UNIQUE)""",
    """CREATE TABLE IF NOT EXISTS order_actions (
        idempotency_key TEXT PRIMARY KEY,
        order_id TEXT NOT NULL REFERENCES orders(order_id),
        user_id TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('cancel', 'return')),
        resulting_status TEXT NOT NULL,
        refund_jpy INTEGER NOT NULL,
        created_at {ts} NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS order_actions_order ON order_actions (order_id)",
)
_TYPES = {"sqlite": {"ts": "TEXT", "day": "TEXT"}, "postgres": {"ts": "TIMESTAMPTZ", "day": "DATE"}}

# ---- queries: written with ? placeholders (SQLite); Postgres swaps them for %s ----

_ORDER_COLS = "order_id, user_id, status, created_at, updated_at, carrier, tracking_number, estimated_delivery, delivered_at, total_jpy"
_Q_ORDERS_OF_USER = f"SELECT {_ORDER_COLS} FROM orders WHERE user_id = ? ORDER BY created_at DESC, order_id DESC"
_Q_ITEMS_OF_USER = (
    "SELECT i.order_id, i.mal_id, i.title, i.volume, i.quantity, i.unit_price_jpy FROM order_items i "
    "JOIN orders o ON o.order_id = i.order_id WHERE o.user_id = ? ORDER BY i.order_id, i.line_no"
)
_Q_ORDER = f"SELECT {_ORDER_COLS} FROM orders WHERE order_id = ? AND user_id = ?"
_Q_ITEMS = "SELECT order_id, mal_id, title, volume, quantity, unit_price_jpy FROM order_items WHERE order_id = ? ORDER BY line_no"
_Q_ACTION = "SELECT order_id, user_id, action, resulting_status, refund_jpy FROM order_actions WHERE idempotency_key = ?"
_Q_SET_STATUS = "UPDATE orders SET status = ?, updated_at = ? WHERE order_id = ?"
_Q_ADD_RETURN = "INSERT INTO returns (return_id, order_id, reason, refund_jpy, created_at) VALUES (?, ?, ?, ?, ?)"
_Q_ADD_ACTION = (
    "INSERT INTO order_actions (idempotency_key, order_id, user_id, action, resulting_status, refund_jpy, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_Q_ADD_ESCALATION = (
    "INSERT INTO escalations (escalation_id, user_id, thread_id, summary, created_at, idempotency_key) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING"
)
_Q_ESCALATION = "SELECT escalation_id FROM escalations WHERE idempotency_key = ?"
_Q_COUNT_CUSTOMERS = "SELECT COUNT(*) AS n FROM customers"
_Q_ADD_CUSTOMER = "INSERT INTO customers (user_id, name, email, locale, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
_Q_ADD_ORDER = f"INSERT INTO orders ({_ORDER_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
_Q_ADD_ITEM = (
    "INSERT INTO order_items (order_id, line_no, mal_id, title, volume, quantity, unit_price_jpy) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_Q_DEMO_USERS = (
    "SELECT c.user_id, c.name, c.locale, o.order_id FROM customers c LEFT JOIN orders o ON o.user_id = c.user_id "
    "ORDER BY c.user_id, o.order_id"
)


# ---- the shared rules -----------------------------------------------------------------------------


def _iso(value: Any) -> str | None:
    """Normalise a DB timestamp/date (datetime, date or ISO text) to ISO-8601 text (UTC for timestamps)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _parse(value: str) -> datetime:
    """ISO-8601 text → aware datetime (naive values are taken as UTC)."""
    dt = datetime.fromisoformat(value)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def check_action(order: Order, action: str, now: datetime) -> tuple[str, int]:
    """The store rules for a changing action → (resulting status, refund in JPY).

    cancel: only while ``processing``; refund = order total → ``cancelled``.
    return: only when ``delivered`` and at most ``RETURN_WINDOW_DAYS`` days after ``delivered_at``;
    refund = order total → ``returned``.
    Raises OrderActionNotAllowed with a customer-safe reason otherwise.
    """
    status = order.status
    if action == "cancel":
        if status == "processing":
            return "cancelled", order.total_jpy
        reason = {
            "shipped": "It has already shipped; once it is delivered you can request a return within 30 days.",
            "delivered": "It has already been delivered; you can request a return within 30 days of delivery instead.",
            "cancelled": "It was already cancelled.",
            "returned": "It was already returned and refunded.",
        }.get(status, "")
        raise OrderActionNotAllowed(order.order_id, "cancel", status, reason)
    if action == "return":
        if status == "delivered" and order.delivered_at:
            deadline = _parse(order.delivered_at) + timedelta(days=RETURN_WINDOW_DAYS)
            if now <= deadline:
                return "returned", order.total_jpy
            raise OrderActionNotAllowed(
                order.order_id, "return", status,
                f"The {RETURN_WINDOW_DAYS}-day return window ended on {deadline.date().isoformat()}.",
            )
        reason = {
            "processing": "It has not shipped yet, so it can be cancelled instead.",
            "shipped": "It is still on its way; returns can be requested once it is delivered.",
            "cancelled": "It was cancelled, so there is nothing to return.",
            "returned": "It was already returned and refunded.",
        }.get(status, "")
        raise OrderActionNotAllowed(order.order_id, "return", status, reason)
    raise ValueError(f"unknown order action {action!r}; expected 'cancel' or 'return'")


def _order(row: dict, items: Sequence[dict]) -> Order:
    return Order(
        order_id=row["order_id"],
        user_id=row["user_id"],
        status=row["status"],
        created_at=_iso(row["created_at"]) or "",
        updated_at=_iso(row["updated_at"]) or "",
        carrier=row["carrier"],
        tracking_number=row["tracking_number"],
        estimated_delivery=_iso(row["estimated_delivery"]),
        delivered_at=_iso(row["delivered_at"]),
        total_jpy=int(row["total_jpy"]),
        items=tuple(
            OrderItem(mal_id=int(i["mal_id"]), title=i["title"], volume=i["volume"], quantity=int(i["quantity"]),
                      unit_price_jpy=int(i["unit_price_jpy"]))
            for i in items
        ),
    )


class _Tx(ABC):
    """One open transaction: run statements written with ``?`` placeholders, rows as dicts."""

    @abstractmethod
    async def all(self, sql: str, params: Sequence[Any] = ()) -> list[dict]: ...

    async def one(self, sql: str, params: Sequence[Any] = ()) -> dict | None:
        rows = await self.all(sql, params)
        return rows[0] if rows else None

    @abstractmethod
    async def run(self, sql: str, params: Sequence[Any] = ()) -> None: ...


class _OrdersRepositoryBase(CartMixin, ABC):
    """The repository logic, written once over a dialect's transactions (``_tx``) and timestamp adapter (``_ts``)."""

    dialect: str
    _lock_suffix = ""
    _integrity_errors: tuple[type[BaseException], ...] = ()

    def __init__(self, clock: Callable[[], datetime] | None = None):
        self._clock = clock or (lambda: datetime.now(UTC))

    @abstractmethod
    def _tx(self, write: bool = False) -> Any:
        """Async context manager yielding a ``_Tx``; commits on success, rolls back on any exception."""

    @abstractmethod
    def _ts(self, value: datetime | str | None) -> Any:
        """A timestamp (aware datetime or ISO text) as the dialect's driver wants it."""

    def _day(self, value: str | None) -> Any:
        return value

    # -- schema and seed --

    async def setup(self) -> None:
        """Create the tables and indexes if missing (idempotent, safe to call at every start-up)."""
        types = _TYPES[self.dialect]
        async with self._tx(write=True) as tx:
            await self._before_ddl(tx)
            for stmt in _DDL + CART_DDL:
                await tx.run(stmt.format(**types))

    async def _before_ddl(self, tx: _Tx) -> None:
        return None

    async def seed_if_empty(self, now: datetime | None = None, catalog: Any | None = None) -> bool:
        """Write the demo data of ``tools.backends.demo_data.build_seed(now, catalog)`` when there are no customers yet.

        Returns True when it seeded, False when data already existed. Safe under concurrent callers.
        """
        async with self._tx(write=True) as tx:
            await self._before_ddl(tx)  # serialises concurrent seeders on Postgres
            row = await tx.one(_Q_COUNT_CUSTOMERS)
            if row and int(row["n"]) > 0:
                return False
            data = build_seed(now=now, catalog=catalog)
            for c in data.customers:
                await tx.run(_Q_ADD_CUSTOMER, (c.user_id, c.name, c.email, c.locale, self._ts(c.created_at)))
            for o in data.orders:
                await tx.run(_Q_ADD_ORDER, (
                    o.order_id, o.user_id, o.status, self._ts(o.created_at), self._ts(o.updated_at), o.carrier,
                    o.tracking_number, self._day(o.estimated_delivery), self._ts(o.delivered_at), o.total_jpy,
                ))
                for n, it in enumerate(o.items, start=1):
                    await tx.run(_Q_ADD_ITEM, (o.order_id, n, it.mal_id, it.title, it.volume, it.quantity, it.unit_price_jpy))
        log.info("seeded %d demo customers and %d orders", len(data.customers), len(data.orders))
        return True

    # -- reads --

    async def list_orders(self, user_id: str) -> list[Order]:
        """All orders of ``user_id``, newest first, with their items ([] for an unknown user)."""
        async with self._tx() as tx:
            rows = await tx.all(_Q_ORDERS_OF_USER, (user_id,))
            items = await tx.all(_Q_ITEMS_OF_USER, (user_id,)) if rows else []
        by_order: dict[str, list[dict]] = {}
        for it in items:
            by_order.setdefault(it["order_id"], []).append(it)
        return [_order(r, by_order.get(r["order_id"], [])) for r in rows]

    async def get_order(self, user_id: str, order_id: str) -> Order:
        """One order of ``user_id``. Raises OrderNotFound for unknown ids and for other customers' orders alike."""
        async with self._tx() as tx:
            return await self._get(tx, user_id, order_id)

    async def _get(self, tx: _Tx, user_id: str, order_id: str, lock: bool = False) -> Order:
        row = await tx.one(_Q_ORDER + (self._lock_suffix if lock else ""), (order_id, user_id))
        if row is None:
            raise OrderNotFound(order_id)
        return _order(row, await tx.all(_Q_ITEMS, (order_id,)))

    async def demo_users(self) -> list[dict]:
        """Customers for demos and the CLI: ``[{"user_id", "name", "locale": "en"|"ja", "order_ids": [...]}]`` by user_id."""
        async with self._tx() as tx:
            rows = await tx.all(_Q_DEMO_USERS)
        users: dict[str, dict] = {}
        for r in rows:
            u = users.setdefault(r["user_id"], {"user_id": r["user_id"], "name": r["name"], "locale": r["locale"], "order_ids": []})
            if r["order_id"]:
                u["order_ids"].append(r["order_id"])
        return list(users.values())

    # -- changing actions --

    def check_action(self, order: Order, action: str) -> tuple[str, int]:
        """The store rules (module function ``check_action``) at this repository's clock, writing nothing:
        (resulting status, refund in JPY). Tools call it before asking the customer to confirm, so a refusal
        (e.g. a return past the 30-day window) is told up front. Raises OrderActionNotAllowed."""
        return check_action(order, action, self._clock())

    async def cancel(self, user_id: str, order_id: str, idempotency_key: str) -> ActionResult:
        """Cancel a ``processing`` order of ``user_id`` exactly once per ``idempotency_key``; refund = order total (JPY).

        A repeated key returns the recorded result with ``replayed=True`` and changes nothing.
        Raises OrderNotFound (unknown or another customer's order), OrderActionNotAllowed (not processing),
        ValueError (the key was already used for a different order or action).
        """
        return await self._act(user_id, order_id, "cancel", idempotency_key, "")

    async def request_return(self, user_id: str, order_id: str, idempotency_key: str, reason: str = "") -> ActionResult:
        """Return a ``delivered`` order within 30 days of delivery, exactly once per key; refund = order total (JPY).

        Writes the ``returns`` row (with ``reason``), sets status ``returned``. Same replay and error
        behaviour as ``cancel``.
        """
        return await self._act(user_id, order_id, "return", idempotency_key, reason)

    async def _act(self, user_id: str, order_id: str, action: str, key: str, reason: str) -> ActionResult:
        if not key:
            raise ValueError("an idempotency key is required for changing order actions")
        for attempt in range(3):
            try:
                return await self._act_once(user_id, order_id, action, key, reason)
            except self._integrity_errors:
                # A concurrent transaction on another order inserted the same key first; the retry replays it.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _act_once(self, user_id: str, order_id: str, action: str, key: str, reason: str) -> ActionResult:
        async with self._tx(write=True) as tx:
            order = await self._get(tx, user_id, order_id, lock=True)  # lock first: duplicates queue here
            done = await tx.one(_Q_ACTION, (key,))
            if done is not None:
                if (done["order_id"], done["user_id"], done["action"]) != (order_id, user_id, action):
                    raise ValueError(f"idempotency key {key!r} was already used for a different order action")
                return ActionResult(order_id, action, done["resulting_status"], True, int(done["refund_jpy"]))  # type: ignore[arg-type]
            now = self._clock()
            status, refund = check_action(order, action, now)
            await tx.run(_Q_SET_STATUS, (status, self._ts(now), order_id))
            if action == "return":
                await tx.run(_Q_ADD_RETURN, (f"RT-{uuid.uuid4().hex[:12]}", order_id, reason, refund, self._ts(now)))
            await tx.run(_Q_ADD_ACTION, (key, order_id, user_id, action, status, refund, self._ts(now)))
        return ActionResult(order_id, action, status, False, refund)  # type: ignore[arg-type]

    async def record_escalation(self, user_id: str, thread_id: str, summary: str, idempotency_key: str) -> str:
        """Open a human-support escalation once per ``idempotency_key``; returns its id (``ESC-`` + 12 hex), the same id on repeats."""
        async with self._tx(write=True) as tx:
            await tx.run(_Q_ADD_ESCALATION, (
                f"ESC-{uuid.uuid4().hex[:12]}", user_id, thread_id, summary, self._ts(self._clock()), idempotency_key,
            ))
            row = await tx.one(_Q_ESCALATION, (idempotency_key,))
        assert row is not None
        return str(row["escalation_id"])

    async def close(self) -> None:
        """Release what the repository owns (nothing for Postgres: the pool belongs to the caller)."""
        return None


# ---- SQLite ---------------------------------------------------------------------------------------


class _SqliteTx(_Tx):
    def __init__(self, conn: Any):
        self._conn = conn

    async def all(self, sql: str, params: Sequence[Any] = ()) -> list[dict]:
        async with self._conn.execute(sql, tuple(params)) as cur:
            return [dict(r) for r in await cur.fetchall()]

    async def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self._conn.execute(sql, tuple(params))


class SqliteOrdersRepository(_OrdersRepositoryBase):
    """Orders in an embedded SQLite file (aiosqlite; WAL journal; foreign keys on; busy timeout 5 s).

    One connection per repository; an asyncio lock serialises its transactions, and write transactions
    use ``BEGIN IMMEDIATE`` so other processes on the same file are serialised by SQLite too.
    Timestamps are stored as ISO-8601 text (UTC). ``clock`` (default: now, UTC) is used by the
    30-day return rule and for action timestamps.
    """

    dialect = "sqlite"
    _integrity_errors = (sqlite3.IntegrityError,)

    def __init__(self, path: str | Path, clock: Callable[[], datetime] | None = None):
        super().__init__(clock)
        self.path = Path(path)
        self._conn: Any = None
        self._lock = asyncio.Lock()

    async def _connect(self) -> Any:
        if self._conn is None:
            self._conn = await open_sqlite(self.path, foreign_keys=True)
        return self._conn

    @asynccontextmanager
    async def _tx(self, write: bool = False) -> AsyncIterator[_Tx]:
        async with self._lock:
            conn = await self._connect()
            await conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield _SqliteTx(conn)
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")

    def _ts(self, value: datetime | str | None) -> Any:
        if value is None or isinstance(value, str):
            return value
        return value.astimezone(UTC).isoformat()

    async def close(self) -> None:
        """Close the SQLite connection (the repository reconnects if used again)."""
        async with self._lock:
            if self._conn is not None:
                await self._conn.close()
                self._conn = None


# ---- Postgres -------------------------------------------------------------------------------------


class _PgTx(_Tx):
    def __init__(self, conn: Any):
        self._conn = conn

    async def all(self, sql: str, params: Sequence[Any] = ()) -> list[dict]:
        from psycopg.rows import dict_row

        async with self._conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql.replace("?", "%s"), tuple(params))
            return await cur.fetchall() if cur.description else []

    async def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self._conn.execute(sql.replace("?", "%s"), tuple(params) or None)


class PostgresOrdersRepository(_OrdersRepositoryBase):
    """Orders in Postgres on the process-wide ``psycopg_pool.AsyncConnectionPool`` (shared with the checkpointer).

    The pool is opened by the caller with kwargs autocommit=True, row_factory=dict_row, prepare_threshold=0;
    every operation runs in ``async with pool.connection() as conn, conn.transaction()``. Changing actions
    lock the order row with ``SELECT ... FOR UPDATE``; DDL and seeding take a transaction-scoped advisory
    lock so several processes can start at once. ``close()`` does not close the pool.
    """

    dialect = "postgres"
    _lock_suffix = " FOR UPDATE"
    _ADVISORY_KEY = 0x6D616E6761  # "manga"

    def __init__(self, pool: Any, clock: Callable[[], datetime] | None = None):
        super().__init__(clock)
        import psycopg

        self._pool = pool
        self._integrity_errors = (psycopg.errors.UniqueViolation,)

    @asynccontextmanager
    async def _tx(self, write: bool = False) -> AsyncIterator[_Tx]:
        async with self._pool.connection() as conn, conn.transaction():
            yield _PgTx(conn)

    async def _before_ddl(self, tx: _Tx) -> None:
        await tx.run("SELECT pg_advisory_xact_lock(?)", (self._ADVISORY_KEY,))

    def _ts(self, value: datetime | str | None) -> Any:
        if value is None or isinstance(value, datetime):
            return value
        return _parse(value)

    def _day(self, value: str | None) -> Any:
        return date.fromisoformat(value) if value else None
