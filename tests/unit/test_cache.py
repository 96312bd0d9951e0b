"""In-process cache: TTL expiry, LRU bound, JSON copies; the opener picks it without REDIS_URL."""

from __future__ import annotations

import asyncio

import pytest

from tools.backends.cache import InProcessCache, RedisCache, open_cache


async def test_roundtrip_returns_json_copies():
    cache = InProcessCache()
    value = {"hits": [{"mal_id": 2, "title": "ベルセルク"}], "n": 1}
    await cache.set("q:berserk", value)
    got = await cache.get("q:berserk")
    assert got == value and got is not value
    got["n"] = 99
    assert (await cache.get("q:berserk"))["n"] == 1
    assert await cache.get("missing") is None


async def test_entries_expire_after_ttl():
    cache = InProcessCache()
    await cache.set("short", 1, ttl_s=0.05)
    await cache.set("long", 2, ttl_s=60)
    assert await cache.get("short") == 1
    await asyncio.sleep(0.08)
    assert await cache.get("short") is None
    assert await cache.get("long") == 2
    await cache.set("long", 3, ttl_s=0)  # ttl <= 0 deletes
    assert await cache.get("long") is None


async def test_lru_bound_evicts_least_recently_used():
    cache = InProcessCache(max_items=3)
    for k in "abc":
        await cache.set(k, k)
    assert await cache.get("a") == "a"  # a is now most recent; b is the LRU
    await cache.set("d", "d")
    assert len(cache) == 3
    assert await cache.get("b") is None
    assert [await cache.get(k) for k in "acd"] == ["a", "c", "d"]


async def test_concurrent_tasks_keep_the_bound():
    cache = InProcessCache(max_items=50)
    await asyncio.gather(*(cache.set(f"k{i}", i) for i in range(500)))
    assert len(cache) == 50
    assert await cache.get("k499") == 499 and await cache.get("k0") is None


async def test_non_json_values_are_rejected():
    with pytest.raises(TypeError):
        await InProcessCache().set("x", object())


def test_open_cache_is_in_process_without_redis_url(settings):
    assert isinstance(open_cache(settings), InProcessCache)


def test_open_cache_is_redis_with_redis_url(settings):
    cache = open_cache(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))
    assert isinstance(cache, RedisCache)
