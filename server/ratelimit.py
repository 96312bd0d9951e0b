"""Per-API-key rate limiting: a token bucket per caller (Redis-backed when REDIS_URL is set, in-process otherwise)
and the ASGI middleware answering 429 ``rate_limited`` with ``Retry-After``.

Algorithm: the classic token bucket (capacity ``burst`` tokens, refilled at ``rate_per_s`` tokens/s; a request
takes one token, or is refused with the time until one token is available). With Redis the bucket of a caller is
one hash ``mangaassist:rl:{caller}`` {tokens, ts_ms} updated atomically by a Lua script using the Redis server's
clock, so every instance behind a load balancer shares the same budget; when Redis fails the limiter falls back to
its in-process buckets (per instance) for a cool-down, never to an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections import OrderedDict
from typing import Any

from server.events import Breaker

log = logging.getLogger(__name__)

DEFAULT_RATE_PER_S = 20.0
"""Recommended sustained requests per second per caller (the constructor default; the server reads env
MANGAASSIST_RATE_LIMIT_PER_S, off when unset or 0)."""
DEFAULT_BURST = 40
"""Bucket capacity: requests a caller may send at once after being idle (env MANGAASSIST_RATE_LIMIT_BURST)."""
EXEMPT_PATHS = ("/v1/health", "/v1/ready", "/metrics", "/v1/docs", "/v1/openapi.json")

_BUCKET_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1]) / 1000.0
local burst = tonumber(ARGV[2])
local s = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(s[1]) or burst
local ts = tonumber(s[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate) + 1000)
return wait
"""


class TokenBucketLimiter:
    """Token buckets keyed by caller id: ``await take(caller)`` → 0.0 when allowed, else the seconds to wait.

    ``rate_per_s`` tokens/s refill, ``burst`` capacity; ``rate_per_s <= 0`` disables limiting (always 0.0).
    In-process buckets are an LRU of at most ``max_local`` callers. ``redis``: a redis.asyncio client or None.
    """

    def __init__(self, rate_per_s: float = DEFAULT_RATE_PER_S, burst: int = DEFAULT_BURST, redis: Any | None = None,
                 max_local: int = 100_000, clock: Any = time.monotonic):
        if burst < 1 and rate_per_s > 0:
            raise ValueError("burst must be >= 1")
        self.rate_per_s = float(rate_per_s)
        self.burst = int(burst)
        self.redis = redis
        self.max_local = max_local
        self.clock = clock
        self.breaker = Breaker()
        self._local: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._script: Any = None

    @property
    def enabled(self) -> bool:
        """False when rate_per_s <= 0."""
        return self.rate_per_s > 0

    @property
    def mode(self) -> str:
        """'off', 'redis' or 'local'."""
        if not self.enabled:
            return "off"
        return "redis" if self.redis is not None and not self.breaker.open else "local"

    def _take_local(self, caller: str) -> float:
        now = self.clock()
        tokens, ts = self._local.pop(caller, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - ts) * self.rate_per_s)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate_per_s
        self._local[caller] = (tokens, now)
        if len(self._local) > self.max_local:
            self._local.popitem(last=False)
        return wait

    async def take(self, caller: str) -> float:
        """Take one token for ``caller``; returns 0.0 when the request may proceed, else seconds until it may."""
        if not self.enabled:
            return 0.0
        if self.redis is not None and not self.breaker.open:
            try:
                if self._script is None:
                    self._script = self.redis.register_script(_BUCKET_LUA)
                wait_ms = await self._script(keys=[f"mangaassist:rl:{caller}"], args=[self.rate_per_s, self.burst])
                return float(wait_ms) / 1000.0
            except Exception as exc:
                log.warning("rate limit: redis unavailable (%s); using in-process buckets", exc)
                self.breaker.trip()
        return self._take_local(caller)


def limiter_from_env(settings: Any, redis: Any | None) -> TokenBucketLimiter:
    """A limiter configured from ``settings.rate_limit_per_s`` / ``settings.rate_limit_burst`` when those fields
    exist, else env MANGAASSIST_RATE_LIMIT_PER_S / MANGAASSIST_RATE_LIMIT_BURST (recommended in production:
    DEFAULT_RATE_PER_S=20, DEFAULT_BURST=40); without either the server does not limit (0 = off), so existing
    deployments and test clients are unchanged until an operator opts in."""
    rate = getattr(settings, "rate_limit_per_s", None)
    burst = getattr(settings, "rate_limit_burst", None)
    if rate is None:
        rate = float(os.environ.get("MANGAASSIST_RATE_LIMIT_PER_S", 0.0))
    if burst is None:
        burst = int(os.environ.get("MANGAASSIST_RATE_LIMIT_BURST", DEFAULT_BURST))
    return TokenBucketLimiter(float(rate), int(burst), redis)


def caller_of(scope: dict) -> str:
    """Who a request counts against: ``key:<sha256 prefix>`` of its API key (Bearer, X-Api-Key, or the WebSocket
    ``api_key`` query parameter), else ``user:<X-User-Id>`` (dev mode), else ``ip:<client host>``. Keys are
    identified by hash, so limiting needs no database lookup and no key is kept in clear."""
    from urllib.parse import parse_qs

    from server.auth import key_from

    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or ()}
    query = None
    if scope["type"] == "websocket":
        query = {k: v[0] for k, v in parse_qs((scope.get("query_string") or b"").decode("latin-1")).items()}
    key = key_from(headers, query)
    if key:
        return "key:" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    if headers.get("x-user-id"):
        return "user:" + headers["x-user-id"][:128]
    client = scope.get("client") or ("unknown", 0)
    return f"ip:{client[0]}"


class RateLimitMiddleware:
    """Pure ASGI middleware: one token per HTTP request (or WebSocket handshake) from ``app.state.rate_limiter``
    (skipped until the lifespan sets it, and for EXEMPT_PATHS). Refused HTTP requests get 429 with the error
    envelope (code ``rate_limited``) and ``Retry-After`` (whole seconds, >= 1); refused WebSockets are closed
    with 1013 (try again later)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        """ASGI entry point."""
        if scope["type"] not in ("http", "websocket") or scope.get("path", "") in EXEMPT_PATHS:
            return await self.app(scope, receive, send)
        app = scope.get("app")
        limiter = getattr(getattr(app, "state", None), "rate_limiter", None)
        if limiter is None or not limiter.enabled:
            return await self.app(scope, receive, send)
        wait = await limiter.take(caller_of(scope))
        if wait <= 0:
            return await self.app(scope, receive, send)
        retry_after = max(1, math.ceil(wait))
        metrics = getattr(getattr(app, "state", None), "metrics", None)
        if metrics is not None:
            metrics.error("rate_limited")
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1013, "reason": "rate_limited"})
            return
        rid = (scope.get("state") or {}).get("request_id", "")
        body = json.dumps({"error": {"code": "rate_limited", "message": f"too many requests; retry in {retry_after} s",
                                     "request_id": rid}}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"retry-after", str(retry_after).encode())]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})
