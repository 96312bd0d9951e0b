"""Key/value caches with TTL: in-process (TTL + LRU) and Redis (JSON values) that degrades to in-process when Redis is down."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.ports import Cache
    from core.settings import Settings

log = logging.getLogger(__name__)


class InProcessCache:
    """``core.ports.Cache`` in this process: at most ``max_items`` entries, least-recently-used evicted first.

    Values are stored as JSON text (so callers get a fresh copy and non-JSON values fail at ``set`` with
    TypeError, as they would on Redis). Expiry uses ``time.monotonic()``: an entry set with ``ttl_s``
    seconds is gone after that many seconds; ``ttl_s <= 0`` deletes the key. Operations are O(1) and never
    await, so they are atomic for asyncio tasks; a lock makes them safe across threads too.
    """

    def __init__(self, max_items: int = 10_000):
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self.max_items = max_items
        self._data: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()

    async def get(self, key: str) -> Any | None:
        """The value stored under ``key``, or None when missing or expired."""
        return self.get_now(key)

    async def set(self, key: str, value: Any, ttl_s: int = 300) -> None:
        """Store ``value`` (JSON-serialisable) for ``ttl_s`` seconds (float allowed). Raises TypeError for non-JSON values."""
        self.set_now(key, value, ttl_s)

    def get_now(self, key: str) -> Any | None:
        """Synchronous ``get``."""
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return None
            expires, text = entry
            if expires <= time.monotonic():
                del self._data[key]
                return None
            self._data.move_to_end(key)
        return json.loads(text)

    def set_now(self, key: str, value: Any, ttl_s: float = 300) -> None:
        """Synchronous ``set``."""
        text = json.dumps(value, ensure_ascii=False)
        with self._lock:
            if ttl_s <= 0:
                self._data.pop(key, None)
                return
            self._data[key] = (time.monotonic() + ttl_s, text)
            self._data.move_to_end(key)
            while len(self._data) > self.max_items:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        """Entries held, expired ones included until they are touched or evicted."""
        return len(self._data)

    async def close(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._data.clear()


class RedisCache:
    """``core.ports.Cache`` on Redis (``redis.asyncio``), values as JSON text under ``prefix + key`` with ``SET ... EX``.

    If Redis cannot be reached (connection refused, timeout, any ``RedisError``), the call is served by a
    local ``InProcessCache`` instead, a warning is logged once per outage and no exception reaches the
    caller; Redis is tried again ``retry_after_s`` seconds later and used again as soon as it answers
    (the local entries are not copied back). ``socket_timeout_s`` bounds each Redis call (s).
    """

    def __init__(
        self,
        url: str,
        prefix: str = "mangaassist:",
        retry_after_s: float = 5.0,
        socket_timeout_s: float = 0.5,
        fallback: InProcessCache | None = None,
    ):
        import redis.asyncio as aioredis

        self.url = url
        self.prefix = prefix
        self.retry_after_s = retry_after_s
        self.fallback = fallback or InProcessCache()
        self._client = aioredis.Redis.from_url(
            url, socket_timeout=socket_timeout_s, socket_connect_timeout=socket_timeout_s, decode_responses=True,
        )
        self._down_until = 0.0  # monotonic time before which Redis is not tried
        self._degraded = False

    @property
    def degraded(self) -> bool:
        """True while calls are being served by the local fallback."""
        return self._degraded

    def _use_redis(self) -> bool:
        return not self._degraded or time.monotonic() >= self._down_until

    def _failed(self, exc: Exception) -> None:
        if not self._degraded:
            log.warning("Redis at %s unreachable (%s: %s); using the in-process cache, retrying every %.1f s",
                        self.url, type(exc).__name__, exc, self.retry_after_s)
        self._degraded = True
        self._down_until = time.monotonic() + self.retry_after_s

    def _recovered(self) -> None:
        if self._degraded:
            log.warning("Redis at %s reachable again; leaving the in-process fallback", self.url)
            self._degraded = False

    async def get(self, key: str) -> Any | None:
        """The value under ``key`` (None when missing or expired); served locally while Redis is down."""
        import redis.exceptions

        if self._use_redis():
            try:
                text = await self._client.get(self.prefix + key)
            except (redis.exceptions.RedisError, OSError) as exc:
                self._failed(exc)
            else:
                self._recovered()
                return None if text is None else json.loads(text)
        return self.fallback.get_now(key)

    async def set(self, key: str, value: Any, ttl_s: int = 300) -> None:
        """Store JSON ``value`` for ``ttl_s`` seconds (``ttl_s <= 0`` deletes). Raises TypeError for non-JSON values only."""
        import redis.exceptions

        text = json.dumps(value, ensure_ascii=False)
        if self._use_redis():
            try:
                if ttl_s <= 0:
                    await self._client.delete(self.prefix + key)
                else:
                    await self._client.set(self.prefix + key, text, px=max(1, int(ttl_s * 1000)))
            except (redis.exceptions.RedisError, OSError) as exc:
                self._failed(exc)
            else:
                self._recovered()
                return
        self.fallback.set_now(key, value, ttl_s)

    async def close(self) -> None:
        """Close the Redis connection pool and the local fallback."""
        try:
            await self._client.aclose()
        finally:
            await self.fallback.close()


def open_cache(settings: Settings) -> Cache:
    """``RedisCache(settings.redis_url)`` when REDIS_URL is set, else ``InProcessCache()``. Never connects eagerly."""
    if settings.redis_url:
        return RedisCache(settings.redis_url)
    return InProcessCache()
