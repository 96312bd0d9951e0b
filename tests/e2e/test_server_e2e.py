"""The server over real sockets (uvicorn on 127.0.0.1, Postgres, Redis): HTTP chat, WebSocket streaming order,
interrupt/resume over WebSocket with an exactly-once cancel, history → replay → fork including a specialist
subgraph checkpoint, double texting, and fan-out/cancel/lock across two instances through Redis."""

from __future__ import annotations

import asyncio
import json

import httpx
import psycopg
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.e2e.conftest import start_server, stop_server

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


@pytest.fixture(scope="module")
def ben(server):
    return {"Authorization": f"Bearer {server.key('u_ben')}"}


def _thread(server, headers) -> str:
    r = httpx.post(server.base + "/v1/threads", headers=headers, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()["thread_id"]


def _say(server, headers, tid: str, text: str, durability: str | None = None) -> dict:
    body = {"text": text} if durability is None else {"text": text, "durability": durability}
    r = httpx.post(f"{server.base}/v1/threads/{tid}/messages", json=body, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def _replay_the_confirmation(server, headers, tid: str) -> None:
    """Replay the thread from the checkpoint that waited for a confirmation (POST /v1/threads/{tid}/replay)."""
    hist = httpx.get(f"{server.base}/v1/threads/{tid}/history", headers=headers, timeout=10).json()["checkpoints"]
    waiting = next(c for c in hist if c["interrupt"] is not None)
    r = httpx.post(f"{server.base}/v1/threads/{tid}/replay", json={"checkpoint_id": waiting["checkpoint_id"]},
                   headers=headers, timeout=60)
    assert r.status_code == 200, r.text


async def _until_final(ws, timeout: float = 60.0) -> list[dict]:
    """Frames received until a final (or error) frame."""
    frames: list[dict] = []
    while not frames or frames[-1]["type"] not in ("final", "error"):
        frames.append(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
    return frames


def test_http_chat(server, ben):
    tid = _thread(server, ben)
    out = _say(server, ben, tid, "Do you have One Piece?")
    assert out["thread_id"] == tid and "search" in out["agents"] and "One Piece" in out["answer"]
    assert out["items"] and out["interrupt"] is None
    r = httpx.get(f"{server.base}/v1/ready", timeout=5).json()
    assert r == {"status": "ready", "database": "postgres", "events": "redis"}


def test_default_durability_is_one_checkpoint_per_turn_and_async_is_per_step(server, ben):
    def roots(tid: str) -> list[dict]:
        cps = httpx.get(f"{server.base}/v1/threads/{tid}/history?subgraphs=true", headers=ben, timeout=10).json()
        return cps["checkpoints"]

    default, per_step = _thread(server, ben), _thread(server, ben)
    for text in ("Do you have Berserk?", "what about the second one?"):
        a, b = _say(server, ben, default, text), _say(server, ben, per_step, text, durability="async")
        assert a["answer"] == b["answer"]  # the durability changes what is stored, not what is answered
    exit_cps, async_cps = roots(default), roots(per_step)
    assert len(exit_cps) == 2 and all(c["checkpoint_ns"] == "" for c in exit_cps)  # one per turn, no subgraph
    assert len(async_cps) > 4 * len(exit_cps) and any(c["checkpoint_ns"] for c in async_cps)
    bad = httpx.post(f"{server.base}/v1/threads/{default}/messages", json={"text": "hi", "durability": "fast"},
                     headers=ben, timeout=10)
    assert bad.status_code == 422 and "error" in bad.json()
    assert len(roots(default)) == 2  # the refused message left the thread as it was


async def test_ws_refuses_a_bad_durability_with_an_error_frame(server, ben):
    tid = _thread(server, ben)
    async with connect(f"{server.ws_base}/v1/ws/threads/{tid}?api_key={ben['Authorization'][7:]}") as ws:
        await ws.send(json.dumps({"type": "message", "text": "find Berserk", "durability": "fast"}))
        frames = await _until_final(ws)
        assert frames[-1]["type"] == "error" and frames[-1]["code"] == "invalid_input"
        assert "durability" in frames[-1]["message"]
        await ws.send(json.dumps({"type": "message", "text": "find Berserk", "durability": "async"}))
        ok = await _until_final(ws)
    assert ok[-1]["type"] == "final" and "Berserk" in ok[-1]["answer"]
    cps = httpx.get(f"{server.base}/v1/threads/{tid}/history?subgraphs=true", headers=ben, timeout=10).json()
    assert any(c["checkpoint_ns"].startswith("search_agent:") for c in cps["checkpoints"])  # per-step was honoured


async def test_ws_streams_nodes_then_tokens_then_final(server, ben):
    tid = _thread(server, ben)
    async with connect(f"{server.ws_base}/v1/ws/threads/{tid}?api_key={ben['Authorization'][7:]}") as ws:
        await ws.send(json.dumps({"type": "message", "text": "find Berserk"}))
        frames = await _until_final(ws)
    kinds = [f["type"] for f in frames]
    assert kinds[-1] == "final", frames[-1]
    first_node = kinds.index("node")
    first_token = kinds.index("token")
    assert frames[first_node]["event"] == "start" and first_node < first_token < len(kinds) - 1
    # the specialist's respond node starts before its first token
    respond_start = next(i for i, f in enumerate(frames) if f["type"] == "node" and f["node"] == "respond"
                         and f["event"] == "start")
    assert respond_start < first_token and frames[respond_start]["agent"] == "search"
    assert "".join(f["text"] for f in frames if f["type"] == "token").strip() == frames[-1]["answer"].strip()


async def test_ws_interrupt_then_resume_cancels_exactly_once(server, ben, module_pg_dsn):
    with psycopg.connect(module_pg_dsn) as db:
        (oid,) = db.execute("SELECT order_id FROM orders WHERE user_id = 'u_ben' AND status = 'processing' "
                            "ORDER BY order_id LIMIT 1").fetchone()
    tid = _thread(server, ben)
    async with connect(f"{server.ws_base}/v1/ws/threads/{tid}",
                       additional_headers={"X-Api-Key": ben["Authorization"][7:]}) as ws:
        await ws.send(json.dumps({"type": "message", "text": f"please cancel order {oid}"}))
        asked = await _until_final(ws)
        intr = [f for f in asked if f["type"] == "interrupt"]
        assert intr and intr[0]["action"] == "cancel" and intr[0]["order_id"] == oid and intr[0]["prompt"]
        assert asked[-1]["interrupt"]["order_id"] == oid
        await ws.send(json.dumps({"type": "resume", "value": "yes"}))
        done = await _until_final(ws)
    final = done[-1]
    assert final["type"] == "final" and final["interrupt"] is None and "cancelled" in final["answer"]
    # replaying the confirmation step must not cancel again (idempotency key)
    _replay_the_confirmation(server, ben, tid)
    with psycopg.connect(module_pg_dsn) as db:
        (status,) = db.execute("SELECT status FROM orders WHERE order_id = %s", (oid,)).fetchone()
        (n,) = db.execute("SELECT count(*) FROM order_actions WHERE order_id = %s AND action = 'cancel'",
                          (oid,)).fetchone()
    assert status == "cancelled" and n == 1


def test_history_replay_fork_with_a_subgraph_checkpoint(server, ben):
    tid = _thread(server, ben)
    # a debugging session: per-step checkpoints ("async") so the turns can be replayed from inside
    first = _say(server, ben, tid, "Do you have Slam Dunk?", durability="async")
    second = _say(server, ben, tid, "What is your return policy?", durability="async")
    url = f"{server.base}/v1/threads/{tid}"
    cps = httpx.get(url + "/history?subgraphs=true", headers=ben, timeout=10).json()["checkpoints"]
    root = [c for c in cps if c["checkpoint_ns"] == ""]
    sub = [c for c in cps if c["checkpoint_ns"].startswith("search_agent:")]
    assert root[0]["checkpoint_id"] == second["checkpoint_id"] and sub
    assert all(c["parent_checkpoint_id"] for c in root if c["step"] >= 0)
    assert {"classify", "finalize"} <= {w for c in root for w in (c["writes"] or [])}
    assert {"think", "execute", "respond"} <= {w for c in sub for w in (c["writes"] or [])}

    # a checkpoint inside the search specialist: readable, and replayable
    inner = next(c for c in sub if c["next"] == ["execute"])
    st = httpx.get(url + "/state", params={"checkpoint_id": inner["checkpoint_id"],
                                           "checkpoint_ns": inner["checkpoint_ns"]}, headers=ben, timeout=10).json()
    assert st["checkpoint_ns"] == inner["checkpoint_ns"] and st["next"] == ["execute"]
    assert st["values"]["agent"] == "search"
    r = httpx.post(url + "/replay", json={"checkpoint_id": inner["checkpoint_id"],
                                          "checkpoint_ns": inner["checkpoint_ns"]}, headers=ben, timeout=60)
    assert r.status_code == 200, r.text
    replayed = r.json()
    assert replayed["checkpoint_id"] not in {c["checkpoint_id"] for c in cps}
    assert "Slam Dunk" in replayed["answer"] and replayed["answer"] == first["answer"]
    scheduling = next(c for c in root if c["checkpoint_id"] == replayed["root_checkpoint_id"])
    assert scheduling["next"] == ["search_agent"]

    # replay a root checkpoint of turn 1: the thread head becomes turn 1's answer again
    before_classify = min((c for c in root if c["next"] == ["classify"]), key=lambda c: c["step"])
    again = httpx.post(url + "/replay", json={"checkpoint_id": before_classify["checkpoint_id"]}, headers=ben,
                       timeout=60).json()
    assert again["answer"] == first["answer"]

    # fork turn 2 before the writer's result is used: edit the answer, see the branch
    at = max((c for c in root if c["next"] == ["finalize"]), key=lambda c: c["step"])  # turn 2
    r = httpx.post(url + "/fork", json={"checkpoint_id": at["checkpoint_id"], "values": {"answer": "EDITED"},
                                        "run": False}, headers=ben, timeout=30)
    assert r.status_code == 200, r.text
    fork = r.json()
    st = httpx.get(url + "/state", params={"checkpoint_id": fork["checkpoint_id"]}, headers=ben, timeout=10).json()
    assert st["parent_checkpoint_id"] == at["checkpoint_id"] and st["values"]["answer"] == "EDITED"
    ran = httpx.post(url + "/fork", json={"checkpoint_id": at["checkpoint_id"], "values": {"intents": ["faq"]}},
                     headers=ben, timeout=60).json()
    assert ran["turn"]["answer"] and ran["turn"]["checkpoint_id"] != ran["checkpoint_id"]
    assert httpx.get(url + "/state", headers=ben, timeout=10).json()["checkpoint_id"] == ran["turn"]["checkpoint_id"]
    # a fork inside the subgraph namespace writes there
    sfork = httpx.post(url + "/fork", json={"checkpoint_id": inner["checkpoint_id"],
                                            "checkpoint_ns": inner["checkpoint_ns"],
                                            "values": {"request": "Berserk"}}, headers=ben, timeout=30).json()
    assert sfork["checkpoint_ns"] == inner["checkpoint_ns"] and sfork["turn"] is None
    bad = httpx.post(url + "/fork", json={"checkpoint_id": at["checkpoint_id"], "values": {"no_such_key": 1}},
                     headers=ben, timeout=30)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_state_update"


async def test_double_texting_one_200_one_409(server, ben):
    tid = _thread(server, ben)
    async with httpx.AsyncClient(base_url=server.base, headers=ben, timeout=60) as c:
        rs = await asyncio.gather(*(c.post(f"/v1/threads/{tid}/messages",
                                           json={"text": "find Monster by Naoki Urasawa and show my orders"})
                                    for _ in range(2)))
    assert sorted(r.status_code for r in rs) == [200, 409]
    busy = next(r for r in rs if r.status_code == 409).json()["error"]
    assert busy["code"] == "thread_busy"


async def test_ws_auth_failures_close_1008(server, ben):
    tid = _thread(server, ben)
    amy = server.key("u_amy")
    for url in (f"{server.ws_base}/v1/ws/threads/{tid}", f"{server.ws_base}/v1/ws/threads/{tid}?api_key=ma_bad",
                f"{server.ws_base}/v1/ws/threads/{tid}?api_key={amy}"):
        async with connect(url) as ws:
            with pytest.raises(ConnectionClosed) as exc:
                await asyncio.wait_for(ws.recv(), 10)
        assert exc.value.rcvd.code == 1008, url


# ---- two instances behind one Redis ------------------------------------------------------------------


@pytest.fixture(scope="module")
def server_b(server, server_env, tmp_path_factory):
    """A second instance on the same Postgres and Redis (as behind a load balancer)."""
    srv = start_server(server_env, tmp_path_factory.mktemp("logs-b") / "server-b.log")
    yield srv
    stop_server(srv)


async def test_two_instances_share_streams_cancel_and_the_run_lock(server, server_b, ben):
    tid = _thread(server, ben)
    key = ben["Authorization"][7:]
    # an observer on instance B sees the run that a client drives over HTTP on instance A
    async with connect(f"{server_b.ws_base}/v1/ws/threads/{tid}?api_key={key}") as watcher:
        await asyncio.sleep(0.2)
        out = await asyncio.to_thread(_say, server, ben, tid, "hello there")
        seen = await _until_final(watcher, 20)
    assert seen[-1]["type"] == "final" and seen[-1]["checkpoint_id"] == out["checkpoint_id"]

    # a run on A streamed to a watcher on B; cancel sent from B stops it on A
    async with connect(f"{server.ws_base}/v1/ws/threads/{tid}?api_key={key}") as driver, \
            connect(f"{server_b.ws_base}/v1/ws/threads/{tid}?api_key={key}") as watcher:
        await asyncio.sleep(0.2)
        await driver.send(json.dumps({"type": "message", "text": "recommend manga like Monster and find Vagabond"}))
        first = json.loads(await asyncio.wait_for(watcher.recv(), 20))
        assert first["type"] == "node"
        await watcher.send(json.dumps({"type": "cancel"}))
        seen_b = [first] + await _until_final(watcher, 30)
        seen_a = await _until_final(driver, 30)
    assert seen_b[-1] == seen_a[-1] == {"type": "error", "code": "cancelled", "message": "the run was cancelled"}
    assert (await asyncio.to_thread(_say, server_b, ben, tid, "thanks"))["answer"]  # the thread is free again


def test_run_lock_is_shared_through_redis(server, server_b, ben, redis_server_url):
    import redis

    tid = _thread(server, ben)
    client = redis.Redis.from_url(redis_server_url)
    try:
        client.set(f"mangaassist:run:{tid}", "held-by-another-instance", px=10_000)
        for srv in (server, server_b):
            r = httpx.post(f"{srv.base}/v1/threads/{tid}/messages", json={"text": "hi"}, headers=ben, timeout=30)
            assert r.status_code == 409 and r.json()["error"]["code"] == "thread_busy"
        client.delete(f"mangaassist:run:{tid}")
        assert _say(server_b, ben, tid, "hi")["answer"]
        assert client.get(f"mangaassist:run:{tid}") is None  # released after the run
    finally:
        client.close()


async def test_cart_over_http_then_checkout_over_the_websocket_places_one_order(server, module_pg_dsn):
    chloe = {"Authorization": f"Bearer {server.key('u_chloe')}"}  # a user no other test of the module shops as
    tid = _thread(server, chloe)
    added = _say(server, chloe, tid, "add Berserk volume 2 to my cart")
    assert added["agents"] == ["cart"] and "Added Berserk vol 2" in added["answer"], added
    shown = _say(server, chloe, tid, "what's in my cart?")
    assert "Your cart:" in shown["answer"] and "Berserk vol 2" in shown["answer"]
    with psycopg.connect(module_pg_dsn) as db:
        (before,) = db.execute("SELECT count(*) FROM orders WHERE user_id = 'u_chloe'").fetchone()
    async with connect(f"{server.ws_base}/v1/ws/threads/{tid}",
                       additional_headers={"X-Api-Key": chloe["Authorization"][7:]}) as ws:
        await ws.send(json.dumps({"type": "message", "text": "check out"}))
        asked = await _until_final(ws)
        intr = [f for f in asked if f["type"] == "interrupt"]
        assert intr and intr[0]["action"] == "checkout" and "Berserk vol 2" in intr[0]["prompt"]
        await ws.send(json.dumps({"type": "resume", "value": "yes"}))
        done = (await _until_final(ws))[-1]
    assert done["type"] == "final" and done["interrupt"] is None and "is placed" in done["answer"], done
    _replay_the_confirmation(server, chloe, tid)
    with psycopg.connect(module_pg_dsn) as db:
        (after,) = db.execute("SELECT count(*) FROM orders WHERE user_id = 'u_chloe'").fetchone()
        (lines,) = db.execute("SELECT count(*) FROM cart_items WHERE user_id = 'u_chloe'").fetchone()
        (oid,) = db.execute("SELECT order_id FROM checkouts WHERE user_id = 'u_chloe'").fetchone()
    assert after == before + 1 and lines == 0 and oid in done["answer"]  # one order, placed once under replay
