"""RunGuard and EventBroker: in-process, across two instances sharing a real Redis, and degraded without Redis."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from server.errors import ThreadBusy
from server.events import EventBroker, RunGuard, connect_redis


async def test_local_guard_rejects_second_holder_then_frees():
    guard = RunGuard()
    async with guard.hold("t1"):
        with pytest.raises(ThreadBusy):
            async with guard.hold("t1"):
                pass
        async with guard.hold("t2"):  # other threads are independent
            pass
    async with guard.hold("t1"):
        assert guard.busy_locally("t1")
    assert not guard.busy_locally("t1")


async def test_local_broker_fans_out_in_order_and_cancels():
    broker = EventBroker()
    async with broker.subscribe("t") as a, broker.subscribe("t") as b, broker.subscribe("other") as c:
        for i in range(5):
            await broker.publish("t", {"i": i})
        assert [a.get_nowait()["i"] for _ in range(5)] == list(range(5))
        assert [b.get_nowait()["i"] for _ in range(5)] == list(range(5))
        assert c.empty()

    async def run():
        async with broker.register_run("t"):
            await asyncio.sleep(30)

    task = asyncio.create_task(run())
    await asyncio.sleep(0)
    await broker.cancel("t")
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not broker.cancel_local("t")


@pytest.mark.redis
async def test_two_instances_agree_through_redis(redis_url):
    r1, r2 = await connect_redis(redis_url), await connect_redis(redis_url)
    g1, g2 = RunGuard(r1, ttl_ms=3000), RunGuard(r2, ttl_ms=3000)
    b1, b2 = EventBroker(r1), EventBroker(r2)
    await b1.start()
    await b2.start()
    tid = uuid.uuid4().hex
    try:
        assert b1.mode == b2.mode == "redis"
        lease = await g1.acquire(tid)
        with pytest.raises(ThreadBusy):
            await g2.acquire(tid)
        await asyncio.sleep(1.5)  # the refresher keeps the lock past ttl/3
        with pytest.raises(ThreadBusy):
            await g2.acquire(tid)
        await g1.release(lease)
        await g2.release(await g2.acquire(tid))

        async with b2.subscribe(tid) as q:
            await b1.publish(tid, {"type": "token", "text": "あ"})
            assert (await asyncio.wait_for(q.get(), 5)) == {"type": "token", "text": "あ"}

        async def run():
            async with b2.register_run(tid):
                await asyncio.sleep(30)

        task = asyncio.create_task(run())
        await asyncio.sleep(0.05)
        await b1.cancel(tid)  # cancel from the other instance
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
    finally:
        await b1.aclose()
        await b2.aclose()
        await r1.aclose()
        await r2.aclose()


async def test_unreachable_redis_degrades_to_local():
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    dead = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, decode_responses=True,
                          retry=Retry(NoBackoff(), 0))
    guard, broker = RunGuard(dead), EventBroker(dead)
    async with guard.hold("t"):
        with pytest.raises(ThreadBusy):
            await guard.acquire("t")
    assert guard.breaker.open  # later runs skip Redis for a while instead of timing out each time
    async with broker.subscribe("t") as q:
        await broker.publish("t", {"type": "final"})
        await broker.publish("t", {"type": "final", "n": 2})
        assert q.get_nowait() == {"type": "final"} and q.get_nowait()["n"] == 2
    assert broker.breaker.open and broker.mode == "local"
    await broker.aclose()
    await dead.aclose()
