"""Accounts repository (API keys, thread ownership) on SQLite or Postgres, and the ThreadRegistry built on it.

Tables, in the same database as the checkpoints (SQLite file ``settings.sqlite_path("server")`` by default,
Postgres on the Assistant's psycopg pool when DATABASE_URL is set):

- ``api_keys(key_hash PRIMARY KEY, key_prefix, user_id, label, created_at, revoked_at)``: only the SHA-256
  hex digest of a key is stored; ``key_prefix`` (the first 11 characters, e.g. ``ma_AbCd1234``) names a key
  for revocation without revealing it.
- ``threads(thread_id PRIMARY KEY, user_id, created_at, updated_at, metadata)``: who owns which thread.

``UserDayBudget`` reads the per-user daily model spend that the graph's finalize node books in the LangGraph
store (the same database: ``store.sqlite`` by default, the ``store`` table on Postgres with DATABASE_URL).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import re
import secrets
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.errors import UnknownThread
from core.settings import Settings
from server.errors import DailyBudgetExceeded
from tools.backends.sqlite import open_sqlite

log = logging.getLogger(__name__)

KEY_PREFIX = "ma_"
"""Every API key starts with this marker (helps secret scanners)."""
PREFIX_CHARS = 11
"""Characters of a key kept in clear as its name (``ma_`` + 8)."""
_THREAD_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")

_DDL = (
    """CREATE TABLE IF NOT EXISTS api_keys (
        key_hash TEXT PRIMARY KEY, key_prefix TEXT NOT NULL, user_id TEXT NOT NULL, label TEXT NOT NULL DEFAULT '',
        created_at {ts} NOT NULL, revoked_at {ts})""",
    "CREATE INDEX IF NOT EXISTS api_keys_prefix ON api_keys (key_prefix)",
    """CREATE TABLE IF NOT EXISTS threads (
        thread_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, created_at {ts} NOT NULL, updated_at {ts} NOT NULL,
        metadata {json} NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS threads_user ON threads (user_id, updated_at)",
)


def hash_key(key: str) -> str:
    """SHA-256 hex digest (64 chars) of an API key: what the database stores and looks up."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh API key: ``ma_`` + 43 URL-safe characters (256 random bits from ``secrets``)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def valid_thread_id(thread_id: str) -> bool:
    """Thread ids are 1-128 characters of letters, digits and ``_ . : -``."""
    return bool(_THREAD_ID.match(thread_id or ""))


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)


def _thread(row: dict) -> dict:
    meta = row["metadata"]
    if isinstance(meta, str):
        meta = json.loads(meta)
    return {"thread_id": row["thread_id"], "user_id": row["user_id"], "created_at": _iso(row["created_at"]),
            "updated_at": _iso(row["updated_at"]), "metadata": meta or {}}


class AccountsRepository(ABC):
    """API keys and thread ownership. SQL is written once with ``?`` placeholders for both dialects."""

    dialect: str

    @abstractmethod
    def _tx(self) -> Any: ...

    @abstractmethod
    async def _all(self, tx: Any, sql: str, params: Sequence[Any] = ()) -> list[dict]: ...

    def _ts(self, value: datetime) -> Any:
        return value

    def _json(self, value: dict) -> Any:
        return json.dumps(value, ensure_ascii=False)

    async def setup(self) -> None:
        """Create the tables and indexes if missing (idempotent)."""
        ts, js = ("TIMESTAMPTZ", "JSONB") if self.dialect == "postgres" else ("TEXT", "TEXT")
        async with self._tx() as tx:
            await self._before_ddl(tx)
            for stmt in _DDL:
                await self._all(tx, stmt.format(ts=ts, json=js))

    async def _before_ddl(self, tx: Any) -> None:
        return None

    async def ping(self) -> None:
        """``SELECT 1`` on the database; raises the driver's error when it is unreachable."""
        async with self._tx() as tx:
            await self._all(tx, "SELECT 1 AS ok")

    # ---- API keys ---------------------------------------------------------------------------------

    async def create_key(self, user_id: str, label: str = "") -> tuple[str, dict]:
        """Create a key for ``user_id``; returns (the key in clear — shown once, never stored — and its record
        {key_prefix, user_id, label, created_at}). Raises ValueError for an empty user id."""
        user_id = (user_id or "").strip()
        if not user_id or len(user_id) > 128:
            raise ValueError("user id must be 1-128 characters")
        key = new_key()
        now = datetime.now(UTC)
        async with self._tx() as tx:
            await self._all(tx, "INSERT INTO api_keys (key_hash, key_prefix, user_id, label, created_at) VALUES (?, ?, ?, ?, ?)",
                            (hash_key(key), key[:PREFIX_CHARS], user_id, label or "", self._ts(now)))
        return key, {"key_prefix": key[:PREFIX_CHARS], "user_id": user_id, "label": label or "",
                     "created_at": now.isoformat()}

    async def revoke_key(self, key_prefix_or_hash: str) -> dict:
        """Revoke one key named by its prefix (``ma_`` + 8 chars), its SHA-256 hex hash, or the key itself.

        Returns {key_prefix, user_id, label, revoked_at}. Raises LookupError when nothing or more than one
        active key matches (an ambiguous prefix is refused rather than guessed).
        """
        token = (key_prefix_or_hash or "").strip()
        if len(token) < 8:
            raise LookupError("give a key prefix of at least 8 characters, a key hash, or the key")
        async with self._tx() as tx:
            rows = await self._all(tx, "SELECT key_hash, key_prefix, user_id, label FROM api_keys WHERE revoked_at IS NULL "
                                       "AND (key_hash = ? OR key_hash = ? OR key_prefix = ?)",
                                   (token.lower(), hash_key(token), token[:PREFIX_CHARS]))
            if token.startswith(KEY_PREFIX) and len(token) > PREFIX_CHARS:  # a full key: only its own hash
                rows = [r for r in rows if r["key_hash"] == hash_key(token)]
            if not rows:
                raise LookupError(f"no active API key matches {token[:PREFIX_CHARS]!r}")
            if len(rows) > 1:
                raise LookupError(f"{len(rows)} active keys match {token!r}; give the key hash")
            now = datetime.now(UTC)
            await self._all(tx, "UPDATE api_keys SET revoked_at = ? WHERE key_hash = ?", (self._ts(now), rows[0]["key_hash"]))
        r = rows[0]
        return {"key_prefix": r["key_prefix"], "user_id": r["user_id"], "label": r["label"], "revoked_at": now.isoformat()}

    async def user_for_key(self, key: str) -> str | None:
        """The user id of an active (not revoked) key, or None."""
        if not key or len(key) > 256:
            return None
        async with self._tx() as tx:
            rows = await self._all(tx, "SELECT user_id FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL",
                                   (hash_key(key),))
        return rows[0]["user_id"] if rows else None

    # ---- threads ----------------------------------------------------------------------------------

    async def insert_thread(self, thread_id: str, user_id: str, metadata: dict) -> dict | None:
        """Insert an ownership row; returns it, or None when the id is already taken (by anyone)."""
        now = self._ts(datetime.now(UTC))
        async with self._tx() as tx:
            rows = await self._all(tx, "INSERT INTO threads (thread_id, user_id, created_at, updated_at, metadata) "
                                       "VALUES (?, ?, ?, ?, ?) ON CONFLICT (thread_id) DO NOTHING "
                                       "RETURNING thread_id, user_id, created_at, updated_at, metadata",
                                   (thread_id, user_id, now, now, self._json(metadata)))
        return _thread(rows[0]) if rows else None

    async def select_thread(self, thread_id: str) -> dict | None:
        """The ownership row of ``thread_id`` or None."""
        async with self._tx() as tx:
            rows = await self._all(tx, "SELECT thread_id, user_id, created_at, updated_at, metadata FROM threads "
                                       "WHERE thread_id = ?", (thread_id,))
        return _thread(rows[0]) if rows else None

    async def select_threads(self, user_id: str, limit: int, offset: int) -> list[dict]:
        """A user's threads, most recently updated first."""
        async with self._tx() as tx:
            rows = await self._all(tx, "SELECT thread_id, user_id, created_at, updated_at, metadata FROM threads "
                                       "WHERE user_id = ? ORDER BY updated_at DESC, thread_id LIMIT ? OFFSET ?",
                                   (user_id, limit, offset))
        return [_thread(r) for r in rows]

    async def delete_thread_row(self, user_id: str, thread_id: str) -> bool:
        """Delete the ownership row if ``user_id`` owns it; True when a row was deleted."""
        async with self._tx() as tx:
            rows = await self._all(tx, "DELETE FROM threads WHERE thread_id = ? AND user_id = ? RETURNING thread_id",
                                   (thread_id, user_id))
        return bool(rows)

    async def touch_thread(self, thread_id: str) -> None:
        """Set ``updated_at`` to now."""
        async with self._tx() as tx:
            await self._all(tx, "UPDATE threads SET updated_at = ? WHERE thread_id = ?",
                            (self._ts(datetime.now(UTC)), thread_id))

    async def close(self) -> None:
        """Release the repository's own connection (a shared pool is left open)."""
        return None


class SqliteAccountsRepository(AccountsRepository):
    """Accounts in an embedded SQLite file (aiosqlite, WAL, busy timeout 5 s); one connection guarded by a lock.

    Timestamps are ISO-8601 UTC text, metadata JSON text. Another process (``mangaassist keys create``) may
    write the same file concurrently; SQLite serialises the writers.
    """

    dialect = "sqlite"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._conn: Any = None
        self._lock = asyncio.Lock()

    def _ts(self, value: datetime) -> Any:
        return value.isoformat()

    async def _connect(self) -> Any:
        if self._conn is None:
            self._conn = await open_sqlite(self.path)
        return self._conn

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[Any]:
        async with self._lock:
            conn = await self._connect()
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")

    async def _all(self, tx: Any, sql: str, params: Sequence[Any] = ()) -> list[dict]:
        async with tx.execute(sql, tuple(params)) as cur:
            return [dict(r) for r in await cur.fetchall()]

    async def close(self) -> None:
        """Close the SQLite connection."""
        async with self._lock:
            if self._conn is not None:
                await self._conn.close()
                self._conn = None


class PostgresAccountsRepository(AccountsRepository):
    """Accounts in Postgres on the shared psycopg AsyncConnectionPool (autocommit; one transaction per call).
    DDL takes a transaction-scoped advisory lock so several instances can start at once."""

    dialect = "postgres"
    _ADVISORY_KEY = 0x6D61736B  # "mask"

    def __init__(self, pool: Any):
        self._pool = pool

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[Any]:
        async with self._pool.connection() as conn, conn.transaction():
            yield conn

    async def _before_ddl(self, tx: Any) -> None:
        await self._all(tx, "SELECT pg_advisory_xact_lock(?)", (self._ADVISORY_KEY,))

    def _json(self, value: dict) -> Any:
        from psycopg.types.json import Jsonb

        return Jsonb(value)

    async def _all(self, tx: Any, sql: str, params: Sequence[Any] = ()) -> list[dict]:
        from psycopg.rows import dict_row

        async with tx.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql.replace("?", "%s"), tuple(params) or None)
            return await cur.fetchall() if cur.description else []


async def open_accounts(settings: Settings, pool: Any | None = None) -> AccountsRepository:
    """The accounts repository for ``settings`` (Postgres on ``pool`` when given, else the SQLite file
    ``settings.sqlite_path("server")``), with its tables created."""
    repo: AccountsRepository = PostgresAccountsRepository(pool) if pool is not None else \
        SqliteAccountsRepository(settings.sqlite_path("server"))
    await repo.setup()
    return repo


class ThreadRegistry:
    """Who owns which thread; the single place the API checks ownership.

    ``get`` raises core.errors.UnknownThread both when the thread does not exist and when another user owns
    it, so routes answer 404 either way and never reveal that someone else's thread exists.
    ``checkpointer`` (a LangGraph BaseCheckpointSaver, optional) lets ``delete`` drop the thread's checkpoints.
    """

    def __init__(self, repo: AccountsRepository, checkpointer: Any | None = None):
        self.repo = repo
        self.checkpointer = checkpointer

    async def create(self, user_id: str, thread_id: str | None = None, metadata: dict | None = None) -> dict:
        """Register a new thread for ``user_id`` (a fresh UUID4 hex id when None) →
        {thread_id, user_id, created_at, updated_at, metadata}.

        Raises ValueError for a malformed id and FileExistsError when the id is taken — by this user or another
        (callers map it to 409 without saying by whom).
        """
        thread_id = thread_id or uuid.uuid4().hex
        if not valid_thread_id(thread_id):
            raise ValueError("thread id must be 1-128 characters of letters, digits and _ . : -")
        row = await self.repo.insert_thread(thread_id, user_id, dict(metadata or {}))
        if row is None:
            raise FileExistsError(f"thread {thread_id} already exists")
        return row

    async def get(self, user_id: str, thread_id: str) -> dict:
        """The thread record when ``user_id`` owns it; raises UnknownThread otherwise."""
        row = await self.repo.select_thread(thread_id) if valid_thread_id(thread_id) else None
        if row is None or row["user_id"] != user_id:
            raise UnknownThread(f"thread {thread_id} not found")
        return row

    async def list(self, user_id: str, limit: int = 100, offset: int = 0) -> list[dict]:
        """The caller's own threads, most recently updated first (``limit`` 1-1000)."""
        return await self.repo.select_threads(user_id, max(1, min(int(limit), 1000)), max(0, int(offset)))

    async def delete(self, user_id: str, thread_id: str) -> None:
        """Delete the thread and its checkpoints; raises UnknownThread when not the caller's."""
        await self.get(user_id, thread_id)
        if self.checkpointer is not None:
            await self.checkpointer.adelete_thread(thread_id)
        if not await self.repo.delete_thread_row(user_id, thread_id):
            raise UnknownThread(f"thread {thread_id} not found")

    async def touch(self, thread_id: str) -> None:
        """Mark the thread as updated now (after a run)."""
        await self.repo.touch_thread(thread_id)


class UserDayBudget:
    """The model budget of one user per UTC day, across all of the user's threads (a new thread, a fork or a
    replay starts a fresh per-thread session budget, never a fresh day).

    Spend is what the graph's finalize node books after each turn in the LangGraph store: namespace
    ``("usage", user_id)``, key ``YYYY-MM-DD`` (UTC), value {usd, input_tokens, output_tokens, turns, calls}.
    ``usd_cap`` (USD; ``math.inf`` = none) and ``tokens_cap`` (input + output tokens; None = none) are
    ``Settings.usd_budget_user_day`` / ``tokens_budget_user_day``. ``clock`` returns epoch seconds (tests).
    """

    def __init__(self, store: Any, usd_cap: float = math.inf, tokens_cap: int | None = None,
                 clock: Callable[[], float] = time.time):
        self.store, self.usd_cap, self.tokens_cap, self.clock = store, float(usd_cap), tokens_cap, clock

    @classmethod
    def of(cls, assistant: Any) -> UserDayBudget:
        """The budget of ``assistant``: its graph's store (where finalize books spend) and its settings' caps."""
        s = assistant.deps.settings
        return cls(getattr(assistant.graph, "store", None), s.usd_budget_user_day, s.tokens_budget_user_day)

    async def spent(self, user_id: str) -> dict:
        """{day: "YYYY-MM-DD" (UTC, today), usd: float, tokens: int (input + output), turns: int} of ``user_id``;
        zeros without a store or a record."""
        from nodes.supervisor import usage_day_key, user_day_usage  # the graph side; kept out of the keys CLI

        now = self.clock()
        day = usage_day_key(now)
        u = await user_day_usage(self.store, user_id, day)
        return {"day": day, "usd": float(u.get("usd", 0.0)),
                "tokens": int(u.get("input_tokens", 0)) + int(u.get("output_tokens", 0)),
                "turns": int(u.get("turns", 0))}

    async def check(self, user_id: str) -> dict:
        """``spent(user_id)`` when the user may start a turn; raises server.errors.DailyBudgetExceeded (429,
        ``Retry-After`` = seconds to 00:00 UTC) once today's USD spend reached ``usd_cap`` or today's tokens
        reached ``tokens_cap``."""
        spent = await self.spent(user_id)
        over = []
        if spent["usd"] >= self.usd_cap:
            over.append(f"${spent['usd']:.4f} of ${self.usd_cap:.2f}")
        if self.tokens_cap is not None and spent["tokens"] >= self.tokens_cap:
            over.append(f"{spent['tokens']:,} of {self.tokens_cap:,} tokens")
        if not over:
            return spent
        now = datetime.fromtimestamp(self.clock(), UTC)
        midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        retry = max(1, math.ceil((midnight - now).total_seconds()))
        log.info("daily budget exceeded", extra={"user_day": spent["day"], "spent_usd": spent["usd"],
                                                 "spent_tokens": spent["tokens"]})
        raise DailyBudgetExceeded(
            f"your daily model budget is used up ({' and '.join(over)} on {spent['day']}, UTC); new turns are "
            f"accepted again after 00:00 UTC (in {retry // 3600} h {retry % 3600 // 60} min)", retry)
