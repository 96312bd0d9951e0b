"""Crash faults: `kill -9` of a real server in the middle of a turn, while a cancel waits on its confirmation
(interrupt) and while the confirmed cancel runs; a new process on the same Postgres resumes the thread from
its last checkpoint, keeps every acknowledged message, and applies the cancel exactly once (order_actions)."""

from __future__ import annotations

import asyncio
import json

import httpx
import psycopg
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.faults.conftest import fresh_env, kill9, new_thread, start_server, stop_server

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def crash_dsn(pg_cluster) -> str:
    """A fresh database per test (each test cancels one of the demo data's processing orders)."""
    return pg_cluster.create_db()


@pytest.fixture
def crash_env(crash_dsn, tmp_path) -> dict:
    # No Redis here: a Redis run lock of a killed process lives until its TTL (30 s), which is tested apart;
    # these tests are about what Postgres keeps.
    return fresh_env(crash_dsn, None, tmp_path / "data")


@pytest.fixture
def proc(crash_env, tmp_path):
    """A restartable server: ``proc["srv"]`` is the live one; ``restart()`` kill -9s it and starts another."""
    box = {"n": 0}

    def boot():
        box["n"] += 1
        box["srv"] = start_server(crash_env, tmp_path / f"server-{box['n']}.log")
        return box["srv"]

    def crash_and_restart():
        kill9(box["srv"])
        return boot()

    boot()
    box["restart"] = crash_and_restart
    yield box
    if box["srv"].proc.poll() is None:
        stop_server(box["srv"])


def _say(srv, headers, tid, text) -> dict:
    r = httpx.post(f"{srv.base}/v1/threads/{tid}/messages", json={"text": text}, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def _state(srv, headers, tid) -> dict:
    r = httpx.get(f"{srv.base}/v1/threads/{tid}/state", headers=headers, timeout=20)
    assert r.status_code == 200, r.text
    return r.json()


def _human_texts(state: dict) -> list[str]:
    return [m["content"] for m in state["values"].get("messages", []) if m.get("type") == "human"]


async def _kill_when(srv, key: str, tid: str, frame: dict, pred) -> list[dict]:
    """Send ``frame`` on the thread's WebSocket and kill -9 the server as soon as a received frame satisfies
    ``pred``; returns the frames seen before the kill."""
    seen: list[dict] = []
    async with connect(f"{srv.ws_base}/v1/ws/threads/{tid}?api_key={key}") as ws:
        await ws.send(json.dumps(frame))
        try:
            while True:
                f = json.loads(await asyncio.wait_for(ws.recv(), 60))
                seen.append(f)
                if pred(f):
                    kill9(srv)
                    break
                if f["type"] in ("final", "error"):
                    break
        except ConnectionClosed:
            pass
    return seen


def _processing_order(dsn: str, skip: int) -> tuple[str, str]:
    """(user id, order id) of the ``skip``-th processing order of the demo data (each test cancels its own)."""
    with psycopg.connect(dsn) as db:
        rows = db.execute("SELECT user_id, order_id FROM orders WHERE status = 'processing' "
                          "ORDER BY user_id, order_id").fetchall()
    assert len(rows) > skip, f"demo data has only {len(rows)} processing orders"
    return rows[skip][0], rows[skip][1]


def _cancel_rows(dsn: str, oid: str) -> tuple[str, int]:
    with psycopg.connect(dsn) as db:
        (status,) = db.execute("SELECT status FROM orders WHERE order_id = %s", (oid,)).fetchone()
        (n,) = db.execute("SELECT count(*) FROM order_actions WHERE order_id = %s AND action = 'cancel'",
                          (oid,)).fetchone()
    return status, int(n)


async def test_kill9_mid_turn_keeps_acknowledged_messages_and_resumes(proc):
    srv = proc["srv"]
    key = srv.key("u_ben")
    h = {"Authorization": f"Bearer {key}"}
    tid = new_thread(srv, h)
    acked = ["Do you have One Piece?", "What is your return policy?"]
    for text in acked:
        _say(srv, h, tid, text)
    # the third turn is killed when a specialist node starts (inside the subgraph)
    seen = await _kill_when(srv, key, tid, {"type": "message", "text": "find Berserk and recommend me something like Monster"},
                            lambda f: f["type"] == "node" and f.get("agent") and f["event"] == "start")
    assert any(f["type"] == "node" for f in seen) and not any(f["type"] == "final" for f in seen), seen
    srv = proc["restart"]()
    st = _state(srv, h, tid)
    humans = _human_texts(st)
    assert humans[: len(acked)] == acked, humans  # every acknowledged message survived the crash
    if st["next"]:  # killed between checkpoints: re-run the pending steps from the head checkpoint
        r = httpx.post(f"{srv.base}/v1/threads/{tid}/replay", json={"checkpoint_id": st["checkpoint_id"]},
                       headers=h, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["answer"]
    # the thread keeps working and its history still has everything
    out = _say(srv, h, tid, "thanks!")
    assert out["answer"]
    humans = _human_texts(_state(srv, h, tid))
    assert [t for t in humans if t in acked] == acked and humans[-1] == "thanks!"


async def test_kill9_while_cancel_waits_for_confirmation_then_exactly_once(proc, crash_dsn):
    srv = proc["srv"]
    user, oid = _processing_order(crash_dsn, 0)
    h = {"Authorization": f"Bearer {srv.key(user)}"}
    tid = new_thread(srv, h)
    asked = _say(srv, h, tid, f"please cancel order {oid}")
    assert asked["interrupt"] and asked["interrupt"]["order_id"] == oid
    srv = proc["restart"]()  # kill -9 while the thread waits on the interrupt
    st = _state(srv, h, tid)
    assert st["interrupt"] and st["interrupt"]["order_id"] == oid  # the pending confirmation survived
    assert _cancel_rows(crash_dsn, oid) == ("processing", 0)
    done = _say(srv, h, tid, "yes")
    assert done["interrupt"] is None and "cancel" in done["answer"].lower()
    # replaying the confirmation step again must not cancel twice
    hist = httpx.get(f"{srv.base}/v1/threads/{tid}/history", headers=h, timeout=20).json()["checkpoints"]
    waiting = next(c for c in hist if c["interrupt"] is not None)
    r = httpx.post(f"{srv.base}/v1/threads/{tid}/replay", json={"checkpoint_id": waiting["checkpoint_id"]},
                   headers=h, timeout=60)
    assert r.status_code == 200, r.text
    assert _cancel_rows(crash_dsn, oid) == ("cancelled", 1)


@pytest.mark.parametrize("when", ["first_node", "execute"])
async def test_kill9_during_the_confirmed_cancel_applies_it_exactly_once(proc, crash_dsn, when):
    srv = proc["srv"]
    user, oid = _processing_order(crash_dsn, 0)
    key = srv.key(user)
    h = {"Authorization": f"Bearer {key}"}
    tid = new_thread(srv, h)
    assert _say(srv, h, tid, f"cancel order {oid} please")["interrupt"]

    def pred(f: dict) -> bool:
        if f["type"] != "node":
            return False
        return f["event"] == "start" if when == "first_node" else (f["node"] == "execute" and f["event"] == "end")

    await _kill_when(srv, key, tid, {"type": "resume", "value": "yes"}, pred)
    srv = proc["restart"]()
    st = _state(srv, h, tid)
    if st["interrupt"] is not None:  # the confirmation was not checkpointed: the customer confirms again
        _say(srv, h, tid, "yes")
    elif st["next"]:  # killed between steps after the confirmation: resume from the head checkpoint
        r = httpx.post(f"{srv.base}/v1/threads/{tid}/replay", json={"checkpoint_id": st["checkpoint_id"]},
                       headers=h, timeout=60)
        assert r.status_code == 200, r.text
    status, n = _cancel_rows(crash_dsn, oid)
    assert (status, n) == ("cancelled", 1)
    assert _state(srv, h, tid)["interrupt"] is None
