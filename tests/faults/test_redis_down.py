"""Redis faults: the suite's dedicated redis-server is killed under a running server. HTTP and WebSocket turns
keep answering (cache, run guard and fan-out degrade to in-process), with no 5xx; Redis coming back is used again."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.faults.conftest import fresh_env, new_thread, start_server, stop_server

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def redis_srv(pg_cluster, tmp_path):
    """A server on its own database and a redis-server that only this test stops."""
    from tests.faults.conftest import RedisServer

    r = RedisServer.create()
    srv = start_server(fresh_env(pg_cluster.create_db(), r.url, tmp_path / "data"), tmp_path / "server.log")
    yield srv, r
    stop_server(srv)
    r.destroy()


async def _ws_turn(srv, key: str, tid: str, text: str) -> list[dict]:
    frames: list[dict] = []
    async with connect(f"{srv.ws_base}/v1/ws/threads/{tid}?api_key={key}") as ws:
        await ws.send(json.dumps({"type": "message", "text": text}))
        while not frames or frames[-1]["type"] not in ("final", "error"):
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
    return frames


async def test_redis_down_keeps_answering_without_5xx(redis_srv):
    srv, redis = redis_srv
    key = srv.key("u_ben")
    h = {"Authorization": f"Bearer {key}"}
    tid = new_thread(srv, h)
    assert httpx.get(srv.base + "/v1/ready", timeout=5).json()["events"] == "redis"
    texts = ["Do you have One Piece?", "recommend something like Monster", "what is your shipping policy?",
             "show my orders"]
    redis.stop()
    t0 = time.monotonic()
    statuses, slowest = [], 0.0
    for text in texts * 2:
        t = time.monotonic()
        r = httpx.post(f"{srv.base}/v1/threads/{tid}/messages", json={"text": text}, headers=h, timeout=30)
        slowest = max(slowest, time.monotonic() - t)
        statuses.append(r.status_code)
        assert r.status_code == 200, r.text
        assert r.json()["answer"]
    frames = await _ws_turn(srv, key, tid, "find Berserk")
    assert frames[-1]["type"] == "final" and frames[-1]["answer"], frames[-1]
    ready = httpx.get(srv.base + "/v1/ready", timeout=5)
    assert ready.status_code == 200 and ready.json()["events"] == "local"
    assert httpx.get(f"{srv.base}/v1/threads", headers=h, timeout=10).status_code == 200
    print(f"\nredis down: {len(statuses)} HTTP turns all 200, slowest {slowest:.2f} s, total {time.monotonic() - t0:.1f} s")
    assert slowest < 5.0  # at most one Redis timeout per breaker cool-down, never one per call

    redis.start()  # the broker's reader reconnects by itself (backoff <= 5 s)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and httpx.get(srv.base + "/v1/ready", timeout=5).json()["events"] != "redis":
        await asyncio.sleep(0.5)
    assert httpx.get(srv.base + "/v1/ready", timeout=5).json()["events"] == "redis"
    r = httpx.post(f"{srv.base}/v1/threads/{tid}/messages", json={"text": "thanks"}, headers=h, timeout=30)
    assert r.status_code == 200, r.text
