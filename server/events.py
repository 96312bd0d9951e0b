"""Run coordination across workers: RunGuard (one run per thread) and the EventBroker (stream fan-out, cancel).

Without REDIS_URL both work inside one process. With Redis:
- RunGuard takes ``SET mangaassist:run:{thread_id} <token> NX PX <ttl>`` (refreshed while the run lasts,
  released with a compare-and-delete script), so instances behind a load balancer agree on who runs a thread.
- EventBroker publishes run events on ``mangaassist:thread:{thread_id}`` and cancellations on
  ``mangaassist:cancel:{thread_id}``; every instance pattern-subscribes to both and hands events to its local
  WebSocket subscribers, and cancels a run it owns.
When Redis fails, both degrade to the in-process behaviour (logged), never to a 5xx; the broker's reader
reconnects in the background.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from server.errors import ThreadBusy

log = logging.getLogger(__name__)

EVENTS_CHANNEL = "mangaassist:thread:{}"
CANCEL_CHANNEL = "mangaassist:cancel:{}"
LOCK_KEY = "mangaassist:run:{}"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
_REFRESH = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"


async def connect_redis(url: str) -> Any:
    """A redis.asyncio client for ``url`` (decode_responses; 2 s connect/socket timeouts), pinged once.
    Raises redis.exceptions.ConnectionError when unreachable."""
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    # one quick retry only: a run must not stall on a dead Redis (callers degrade to in-process instead)
    client = aioredis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=1.0, socket_timeout=2.0,
                                     health_check_interval=15, retry=Retry(NoBackoff(), 1))
    await client.ping()
    return client


class Breaker:
    """After a Redis failure, skip Redis for ``cooldown_s`` seconds (5 s) so a dead server costs one timeout,
    not one per event."""

    def __init__(self, cooldown_s: float = 5.0):
        self.cooldown_s = cooldown_s
        self._until = 0.0

    @property
    def open(self) -> bool:
        """True while Redis calls are being skipped."""
        return time.monotonic() < self._until

    def trip(self) -> None:
        """Record a failure."""
        self._until = time.monotonic() + self.cooldown_s


@dataclass
class Lease:
    """A held run slot on one thread; ``token`` is the Redis lock value (None when held only locally)."""

    thread_id: str
    token: str | None
    refresher: asyncio.Task | None = None


class RunGuard:
    """At most one run per thread: ``async with guard.hold(thread_id):`` raises ThreadBusy (→ 409) when a run is
    already in flight there (this process, or any instance sharing ``redis``).

    The Redis lock lives ``ttl_ms`` (default 30 000 ms) and is re-armed every ttl/3 while held, so a crashed
    instance frees its threads within ``ttl_ms``.
    """

    def __init__(self, redis: Any | None = None, ttl_ms: int = 30_000):
        self.redis = redis
        self.ttl_ms = ttl_ms
        self._local: set[str] = set()
        self.breaker = Breaker()

    def busy_locally(self, thread_id: str) -> bool:
        """True while this process holds ``thread_id``."""
        return thread_id in self._local

    async def acquire(self, thread_id: str) -> Lease:
        """Take the thread's run slot or raise ThreadBusy. Pair with ``release``."""
        if thread_id in self._local:
            raise ThreadBusy(thread_id)
        self._local.add(thread_id)  # taken before any await: two local callers can never both pass
        token = None
        if self.redis is not None and not self.breaker.open:
            token = secrets.token_hex(16)
            try:
                ok = await self.redis.set(LOCK_KEY.format(thread_id), token, nx=True, px=self.ttl_ms)
            except Exception as exc:  # Redis down: the in-process lock still holds within this instance
                log.warning("run guard: redis unavailable (%s); using the in-process lock", exc)
                self.breaker.trip()
                token = None
            else:
                if not ok:
                    self._local.discard(thread_id)
                    raise ThreadBusy(thread_id)
        lease = Lease(thread_id, token)
        if token is not None:
            lease.refresher = asyncio.create_task(self._refresh(lease))
        return lease

    async def release(self, lease: Lease) -> None:
        """Give the slot back (idempotent); the Redis key is deleted only if this lease still owns it."""
        if lease.refresher is not None:
            lease.refresher.cancel()
            lease.refresher = None
        if lease.token is not None:
            assert self.redis is not None  # a token is only taken from Redis
            try:
                await self.redis.eval(_RELEASE, 1, LOCK_KEY.format(lease.thread_id), lease.token)
            except Exception as exc:
                log.warning("run guard: could not release redis lock of %s (%s); it expires in %d ms",
                            lease.thread_id, exc, self.ttl_ms)
            lease.token = None
        self._local.discard(lease.thread_id)

    async def _refresh(self, lease: Lease) -> None:
        assert self.redis is not None  # refreshers run only for Redis leases
        while True:
            await asyncio.sleep(self.ttl_ms / 3000)
            try:
                await self.redis.eval(_REFRESH, 1, LOCK_KEY.format(lease.thread_id), lease.token, self.ttl_ms)
            except Exception as exc:
                log.warning("run guard: lock refresh failed for %s (%s)", lease.thread_id, exc)

    @asynccontextmanager
    async def hold(self, thread_id: str) -> AsyncIterator[Lease]:
        """Context manager over acquire/release; raises ThreadBusy on entry when the thread is busy."""
        lease = await self.acquire(thread_id)
        try:
            yield lease
        finally:
            await asyncio.shield(self.release(lease))


class EventBroker:
    """Fan-out of run events to every subscriber of a thread, and cancellation of runs, on one or many instances.

    Events are JSON-serialisable dicts (the WebSocket frames). ``subscribe(thread_id)`` yields an asyncio.Queue
    receiving every event published on that thread after subscription, in publication order. ``register_run``
    makes a running task cancellable by ``cancel(thread_id)`` from any instance.
    """

    def __init__(self, redis: Any | None = None, queue_size: int = 10_000):
        self.redis = redis
        self.queue_size = queue_size
        self._subs: dict[str, set[asyncio.Queue]] = defaultdict(set)
        self._runs: dict[str, asyncio.Task] = {}
        self._listening = asyncio.Event()
        self.breaker = Breaker()
        self._reader: asyncio.Task | None = None

    @property
    def mode(self) -> str:
        """'redis' while the Redis reader is subscribed, else 'local'."""
        return "redis" if self.redis is not None and self._listening.is_set() else "local"

    async def start(self) -> None:
        """Start the Redis reader (no-op without Redis); waits up to 2 s for the subscription."""
        if self.redis is None:
            return
        self._reader = asyncio.create_task(self._read_forever(), name="event-broker-reader")
        try:
            await asyncio.wait_for(self._listening.wait(), 2.0)
        except TimeoutError:
            log.warning("event broker: redis subscription not ready; delivering locally until it is")

    async def aclose(self) -> None:
        """Stop the reader and cancel runs still registered on this instance."""
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass
            self._reader = None
        for task in list(self._runs.values()):
            task.cancel()

    # ---- publish / subscribe ----------------------------------------------------------------------

    def _deliver(self, thread_id: str, event: dict) -> None:
        for q in list(self._subs.get(thread_id, ())):
            try:
                q.put_nowait(event)
            except asyncio.QueueFull:  # a stalled client: drop its oldest event rather than block the run
                q.get_nowait()
                q.put_nowait(event)

    async def publish(self, thread_id: str, event: dict) -> None:
        """Send ``event`` to every subscriber of ``thread_id`` (all instances with Redis). Never raises for Redis
        errors: on failure the event is delivered to this instance's subscribers only."""
        if self.redis is not None and not self.breaker.open:
            try:
                await self.redis.publish(EVENTS_CHANNEL.format(thread_id), json.dumps(event, ensure_ascii=False,
                                                                                      default=str))
                if self._listening.is_set():
                    return  # our own reader hands it to local subscribers, in order with other instances' events
            except Exception as exc:
                log.warning("event broker: redis publish failed (%s); delivering locally", exc)
                self.breaker.trip()
        self._deliver(thread_id, event)

    @asynccontextmanager
    async def subscribe(self, thread_id: str) -> AsyncIterator[asyncio.Queue]:
        """Context manager yielding a queue of this thread's events until exit."""
        q: asyncio.Queue = asyncio.Queue(self.queue_size)
        self._subs[thread_id].add(q)
        try:
            yield q
        finally:
            subs = self._subs.get(thread_id)
            if subs is not None:
                subs.discard(q)
                if not subs:
                    self._subs.pop(thread_id, None)

    # ---- cancellation -----------------------------------------------------------------------------

    @asynccontextmanager
    async def register_run(self, thread_id: str, task: asyncio.Task | None = None) -> AsyncIterator[None]:
        """Make ``task`` (default: the current task) cancellable through ``cancel(thread_id)`` while inside."""
        task = task or asyncio.current_task()
        assert task is not None  # called from a coroutine, so inside a task
        self._runs[thread_id] = task
        try:
            yield
        finally:
            if self._runs.get(thread_id) is task:
                del self._runs[thread_id]

    def cancel_local(self, thread_id: str) -> bool:
        """Cancel the run of ``thread_id`` if this instance runs it; True when a task was cancelled."""
        task = self._runs.get(thread_id)
        if task is None or task.done():
            return False
        task.cancel()
        return True

    async def cancel(self, thread_id: str) -> None:
        """Ask whichever instance runs ``thread_id`` to cancel it (Redis pub/sub, or this process)."""
        if self.redis is not None and self._listening.is_set() and not self.breaker.open:
            try:
                await self.redis.publish(CANCEL_CHANNEL.format(thread_id), "cancel")
                return
            except Exception as exc:
                log.warning("event broker: redis cancel publish failed (%s); cancelling locally", exc)
                self.breaker.trip()
        self.cancel_local(thread_id)

    # ---- Redis reader -----------------------------------------------------------------------------

    async def _read_forever(self) -> None:
        assert self.redis is not None  # the reader runs only in Redis mode
        delay = 0.2
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(EVENTS_CHANNEL.format("*"), CANCEL_CHANNEL.format("*"))
                self._listening.set()
                delay = 0.2
                while True:
                    msg = await pubsub.get_message(timeout=1.0)
                    if msg is None:
                        continue
                    self._dispatch(msg)
            except asyncio.CancelledError:
                self._listening.clear()
                raise
            except Exception as exc:
                if self._listening.is_set():
                    log.warning("event broker: redis subscription lost (%s); delivering locally, reconnecting", exc)
                self._listening.clear()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                try:
                    await pubsub.aclose()
                except Exception:
                    pass

    def _dispatch(self, msg: dict) -> None:
        channel = msg.get("channel") or ""
        if channel.startswith(CANCEL_CHANNEL.format("")):
            self.cancel_local(channel[len(CANCEL_CHANNEL.format("")):])
        elif channel.startswith(EVENTS_CHANNEL.format("")):
            thread_id = channel[len(EVENTS_CHANNEL.format("")):]
            if thread_id in self._subs:
                try:
                    self._deliver(thread_id, json.loads(msg["data"]))
                except (TypeError, ValueError):
                    log.warning("event broker: undecodable event on %s", channel)
