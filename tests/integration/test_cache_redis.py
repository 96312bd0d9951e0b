"""Redis cache on a real server: roundtrip with TTL, and degradation to in-process when Redis is down, then recovery."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import subprocess
import time

import pytest
import redis

from tools.backends.cache import RedisCache

pytestmark = pytest.mark.redis


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_roundtrip_and_ttl_on_redis(redis_url, redis_prefix):
    cache = RedisCache(redis_url, prefix=redis_prefix)
    try:
        await cache.set("search:ベルセルク", {"hits": [2, 13], "locale": "ja"}, ttl_s=1)
        assert await cache.get("search:ベルセルク") == {"hits": [2, 13], "locale": "ja"}
        assert not cache.degraded
        raw = redis.Redis.from_url(redis_url, decode_responses=True)
        assert 0 < raw.pttl(redis_prefix + "search:ベルセルク") <= 1000  # stored in Redis with its TTL
        raw.close()
        assert len(cache.fallback) == 0
        await asyncio.sleep(1.1)
        assert await cache.get("search:ベルセルク") is None
    finally:
        await cache.close()


async def test_two_clients_share_values(redis_url, redis_prefix):
    a, b = RedisCache(redis_url, prefix=redis_prefix), RedisCache(redis_url, prefix=redis_prefix)
    try:
        await a.set("k", [1, 2, 3])
        assert await b.get("k") == [1, 2, 3]
    finally:
        await a.close()
        await b.close()


async def test_unreachable_redis_degrades_to_in_process(caplog):
    cache = RedisCache(f"redis://127.0.0.1:{_free_port()}/0", retry_after_s=60)
    try:
        with caplog.at_level(logging.WARNING, logger="tools.backends.cache"):
            await cache.set("k", {"v": 1})
            assert await cache.get("k") == {"v": 1}
            assert await cache.get("other") is None
        assert cache.degraded
        warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(warnings) == 1  # once per outage, not per call
    finally:
        await cache.close()


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary")
async def test_recovers_when_redis_comes_back(tmp_path):
    """A private redis-server is started, stopped and restarted on the same port."""
    port = _free_port()
    cmd = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)]

    def start() -> subprocess.Popen:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=port)
        for _ in range(100):
            try:
                client.ping()
                client.close()
                return proc
            except redis.ConnectionError:
                time.sleep(0.05)
        proc.kill()
        raise RuntimeError("private redis-server did not start")

    proc = start()
    cache = RedisCache(f"redis://127.0.0.1:{port}/0", retry_after_s=0.2)
    try:
        await cache.set("a", 1)
        assert not cache.degraded
        proc.terminate()
        proc.wait(10)
        await cache.set("b", 2)  # served locally, no exception
        assert cache.degraded and await cache.get("b") == 2
        proc = start()
        await asyncio.sleep(0.25)
        await cache.set("c", 3)
        assert not cache.degraded
        assert redis.Redis(port=port).get("mangaassist:c") == b"3"
    finally:
        await cache.close()
        proc.terminate()
        proc.wait(10)
