"""The /v1 HTTP API and WebSocket through FastAPI's TestClient (lifespan on, embedded SQLite in a tmp data dir):
authentication, the error envelope, double texting, and cross-user isolation on every thread route."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from core.settings import Settings
from server.app import create_app

_ENV = ("DATABASE_URL", "REDIS_URL", "MANGAASSIST_DATABASE_URL", "MANGAASSIST_REDIS_URL", "MANGAASSIST_AUTH")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """One app per module (the Assistant's index/recommender/router take seconds to build)."""
    mp = pytest.MonkeyPatch()
    for name in _ENV:
        mp.delenv(name, raising=False)
    settings = Settings(data_dir=tmp_path_factory.mktemp("server-data"), auth="on")
    with TestClient(create_app(settings)) as c:
        yield c
    mp.undo()


def _key(client: TestClient, user: str) -> str:
    key, _ = client.portal.call(client.app.state.accounts.create_key, user, "test")
    return key


@pytest.fixture(scope="module")
def ben(client):
    return {"Authorization": f"Bearer {_key(client, 'u_ben')}"}


@pytest.fixture(scope="module")
def amy(client):
    return {"X-Api-Key": _key(client, "u_amy")}


@pytest.fixture(scope="module")
def ben_thread(client, ben):
    """A thread of u_ben with one finished turn (so state/history/replay/fork have checkpoints)."""
    tid = client.post("/v1/threads", headers=ben).json()["thread_id"]
    r = client.post(f"/v1/threads/{tid}/messages", json={"text": "do you have One Piece?"}, headers=ben)
    assert r.status_code == 200, r.text
    return tid


def _assert_envelope(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["message"] and err["request_id"] == r.headers["x-request-id"]
    return err


# ---- auth -------------------------------------------------------------------------------------------


def test_health_and_ready_need_no_key(client):
    assert client.get("/v1/health").json() == {"status": "ok"}
    assert client.get("/v1/ready").json()["database"] == "sqlite"


def test_no_key_is_401_envelope(client):
    r = client.get("/v1/threads")
    _assert_envelope(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"


def test_bad_key_is_401(client):
    _assert_envelope(client.get("/v1/threads", headers={"Authorization": "Bearer ma_not-a-real-key"}), 401,
                     "unauthorized")
    _assert_envelope(client.get("/v1/threads", headers={"X-Api-Key": ""}), 401, "unauthorized")


def test_revoked_key_is_401(client):
    key = _key(client, "u_cara")
    assert client.get("/v1/threads", headers={"X-Api-Key": key}).status_code == 200
    client.portal.call(client.app.state.accounts.revoke_key, key[:11])
    _assert_envelope(client.get("/v1/threads", headers={"X-Api-Key": key}), 401, "unauthorized")


async def test_dev_mode_uses_x_user_id_without_key(client):
    from server.auth import authenticate
    from server.errors import Unauthorized

    accounts = client.app.state.accounts
    assert await authenticate(accounts, "off", {}) == "dev"
    assert await authenticate(accounts, "off", {"x-user-id": "u_ben"}) == "u_ben"
    with pytest.raises(Unauthorized):
        await authenticate(accounts, "off", {"x-user-id": "bad id with spaces"})
    with pytest.raises(Unauthorized):  # the same call with auth on needs a key
        await authenticate(accounts, "on", {"x-user-id": "u_ben"})


# ---- envelope and validation ------------------------------------------------------------------------


def test_request_id_is_echoed_or_generated(client, ben):
    r = client.get("/v1/threads", headers={**ben, "X-Request-Id": "req-123"})
    assert r.headers["x-request-id"] == "req-123"
    r = client.get("/v1/threads/nope", headers={**ben, "X-Request-Id": "bad id\twith tab"})
    assert r.headers["x-request-id"] != "bad id\twith tab" and len(r.headers["x-request-id"]) == 32
    assert r.json()["error"]["request_id"] == r.headers["x-request-id"]


def test_non_string_text_is_422(client, ben, ben_thread):
    err = _assert_envelope(client.post(f"/v1/threads/{ben_thread}/messages", json={"text": 5}, headers=ben),
                           422, "invalid_input")
    assert "text" in err["message"]


def test_missing_or_empty_text_is_422(client, ben, ben_thread):
    _assert_envelope(client.post(f"/v1/threads/{ben_thread}/messages", json={}, headers=ben), 422, "invalid_input")
    _assert_envelope(client.post(f"/v1/threads/{ben_thread}/messages", json={"text": "   "}, headers=ben), 422,
                     "invalid_input")
    _assert_envelope(client.post(f"/v1/threads/{ben_thread}/messages", content=b"{not json",
                                 headers={**ben, "Content-Type": "application/json"}), 422, "invalid_input")


def test_oversized_text_is_413(client, ben, ben_thread):
    err = _assert_envelope(client.post(f"/v1/threads/{ben_thread}/messages", json={"text": "あ" * 4001},
                                       headers=ben), 413, "message_too_long")
    assert "4000" in err["message"]


def test_nul_in_thread_metadata_or_text_is_422(client, ben, ben_thread):
    r = client.post("/v1/threads", json={"metadata": {"tag": "a\x00b"}}, headers=ben)
    assert "NUL" in _assert_envelope(r, 422, "invalid_input")["message"]
    r = client.post(f"/v1/threads/{ben_thread}/messages", json={"text": "hi\x00"}, headers=ben)
    assert r.status_code == 422 and "NUL" in r.text


def test_huge_integer_in_thread_metadata_is_422_and_a_bad_durability_too(client, ben, ben_thread):
    r = client.post("/v1/threads", json={"metadata": {"n": 10**20}}, headers=ben)
    assert "64-bit" in _assert_envelope(r, 422, "invalid_input")["message"]
    assert client.get("/v1/threads", headers=ben).status_code == 200  # listing still serves every thread
    r = client.post(f"/v1/threads/{ben_thread}/messages", json={"text": "hi", "durability": "later"}, headers=ben)
    _assert_envelope(r, 422, "invalid_input")


def test_unknown_thread_is_404(client, ben):
    _assert_envelope(client.post("/v1/threads/does-not-exist/messages", json={"text": "hi"}, headers=ben), 404,
                     "thread_not_found")
    _assert_envelope(client.get("/v1/threads/does-not-exist/state", headers=ben), 404, "thread_not_found")


def test_unknown_route_and_method_use_envelope(client, ben):
    _assert_envelope(client.get("/v1/nothing-here", headers=ben), 404, "not_found")
    _assert_envelope(client.put("/v1/threads", headers=ben), 405, "method_not_allowed")


def test_unknown_checkpoint_is_404(client, ben, ben_thread):
    _assert_envelope(client.post(f"/v1/threads/{ben_thread}/replay", json={"checkpoint_id": "1f0-nope"},
                                 headers=ben), 404, "checkpoint_not_found")


def test_openapi_is_served(client):
    paths = client.get("/v1/openapi.json").json()["paths"]
    assert "/v1/threads/{thread_id}/messages" in paths and "/v1/threads/{thread_id}/history" in paths


# ---- threads ----------------------------------------------------------------------------------------


def test_create_list_delete_thread(client, ben):
    r = client.post("/v1/threads", json={"thread_id": "ben-own-1", "metadata": {"k": "v"}}, headers=ben)
    assert r.status_code == 201 and r.json()["metadata"] == {"k": "v"} and r.json()["user_id"] == "u_ben"
    _assert_envelope(client.post("/v1/threads", json={"thread_id": "ben-own-1"}, headers=ben), 409, "thread_exists")
    _assert_envelope(client.post("/v1/threads", json={"thread_id": "has space"}, headers=ben), 422, "invalid_input")
    assert "ben-own-1" in [t["thread_id"] for t in client.get("/v1/threads", headers=ben).json()["threads"]]
    assert client.delete("/v1/threads/ben-own-1", headers=ben).status_code == 204
    _assert_envelope(client.get("/v1/threads/ben-own-1", headers=ben), 404, "thread_not_found")


def test_message_returns_turn_json(client, ben, ben_thread):
    r = client.post(f"/v1/threads/{ben_thread}/messages", json={"text": "Who wrote Naruto?"}, headers=ben)
    out = r.json()
    assert r.status_code == 200
    assert set(out) >= {"thread_id", "checkpoint_id", "intents", "agents", "answer", "items", "orders", "interrupt",
                        "timings_ms"}
    assert out["thread_id"] == ben_thread and out["answer"] and out["checkpoint_id"]
    state = client.get(f"/v1/threads/{ben_thread}/state", headers=ben).json()
    assert state["checkpoint_id"] == out["checkpoint_id"] and state["next"] == []


def test_delete_drops_checkpoints(client, ben):
    tid = client.post("/v1/threads", headers=ben).json()["thread_id"]
    assert client.post(f"/v1/threads/{tid}/messages", json={"text": "hello"}, headers=ben).status_code == 200
    assert client.delete(f"/v1/threads/{tid}", headers=ben).status_code == 204
    snap = client.portal.call(client.app.state.assistant.graph.aget_state,
                              {"configurable": {"thread_id": tid}})
    assert snap.values == {}


def test_double_texting_is_409_while_a_run_holds_the_thread(client, ben, ben_thread):
    guard = client.app.state.run_guard
    lease = client.portal.call(guard.acquire, ben_thread)
    try:
        _assert_envelope(client.post(f"/v1/threads/{ben_thread}/messages", json={"text": "hi"}, headers=ben), 409,
                         "thread_busy")
        _assert_envelope(client.post(f"/v1/threads/{ben_thread}/replay", json={"checkpoint_id": "x"}, headers=ben),
                         409, "thread_busy")
    finally:
        client.portal.call(guard.release, lease)
    assert client.post(f"/v1/threads/{ben_thread}/messages", json={"text": "thanks"}, headers=ben).status_code == 200


# ---- cross-user isolation ---------------------------------------------------------------------------


def test_other_users_thread_is_404_on_every_route(client, ben, amy, ben_thread):
    hist = client.get(f"/v1/threads/{ben_thread}/history", headers=ben).json()["checkpoints"]
    cp = hist[-1]["checkpoint_id"]
    attempts = [
        ("GET", f"/v1/threads/{ben_thread}", None),
        ("DELETE", f"/v1/threads/{ben_thread}", None),
        ("POST", f"/v1/threads/{ben_thread}/messages", {"text": "show my orders"}),
        ("GET", f"/v1/threads/{ben_thread}/state", None),
        ("GET", f"/v1/threads/{ben_thread}/state?checkpoint_id={cp}", None),
        ("GET", f"/v1/threads/{ben_thread}/history", None),
        ("GET", f"/v1/threads/{ben_thread}/history?subgraphs=true", None),
        ("POST", f"/v1/threads/{ben_thread}/replay", {"checkpoint_id": cp}),
        ("POST", f"/v1/threads/{ben_thread}/fork", {"checkpoint_id": cp, "values": {"answer": "x"}}),
    ]
    for method, url, body in attempts:
        r = client.request(method, url, json=body, headers=amy)
        _assert_envelope(r, 404, "thread_not_found")
    assert ben_thread not in [t["thread_id"] for t in client.get("/v1/threads", headers=amy).json()["threads"]]
    # ben's thread is untouched by the attempts
    assert client.get(f"/v1/threads/{ben_thread}/history", headers=ben).json()["checkpoints"][0]["checkpoint_id"] \
        == hist[0]["checkpoint_id"]


def test_websocket_rejects_other_user_and_bad_keys_with_1008(client, amy, ben_thread):
    key = amy["X-Api-Key"]
    for url in (f"/v1/ws/threads/{ben_thread}?api_key={key}",  # amy on ben's thread
                f"/v1/ws/threads/{ben_thread}",  # no key
                f"/v1/ws/threads/{ben_thread}?api_key=ma_wrong",  # bad key
                "/v1/ws/threads/no-such-thread?api_key=" + key):
        with client.websocket_connect(url) as ws:
            with pytest.raises(WebSocketDisconnect) as exc:
                ws.receive_json()
        assert exc.value.code == 1008, url


# ---- websocket --------------------------------------------------------------------------------------


def test_websocket_streams_and_survives_malformed_frames(client, ben, ben_thread):
    key = ben["Authorization"].split()[1]
    with client.websocket_connect(f"/v1/ws/threads/{ben_thread}", headers={"Authorization": f"Bearer {key}"}) as ws:
        ws.send_text("not json")
        assert ws.receive_json()["code"] == "bad_frame"
        ws.send_json({"type": "dance"})
        assert ws.receive_json()["code"] == "unknown_type"
        ws.send_json({"type": "message", "text": 5})
        assert ws.receive_json()["code"] == "invalid_input"
        ws.send_json({"type": "resume", "value": "yes"})  # nothing is pending on this thread
        assert ws.receive_json()["code"] == "no_pending_interrupt"
        ws.send_json({"type": "message", "text": "find Berserk"})
        frames = []
        while not frames or frames[-1]["type"] not in ("final", "error"):
            frames.append(ws.receive_json())
    assert frames[-1]["type"] == "final", frames[-1]
    kinds = [f["type"] for f in frames]
    assert kinds[0] == "node" and "token" in kinds
    tokens = "".join(f["text"] for f in frames if f["type"] == "token")
    assert tokens.strip() == frames[-1]["answer"].strip()
    assert {"start", "end"} <= {f["event"] for f in frames if f["type"] == "node" and f["agent"] == "search"}


# ---- spend: server-owned state and the per-user daily budget ------------------------------------------


def _head_ids(client, headers, tid: str) -> list[str]:
    return [c["checkpoint_id"] for c in client.get(f"/v1/threads/{tid}/history?subgraphs=true",
                                                   headers=headers).json()["checkpoints"]]


@pytest.mark.parametrize("values,owned", [
    ({"usage_session": {"usd": 0.0, "turns": 0}}, ["usage_session"]),
    ({"budget": {"usd_left_session": 1e9, "usd_left_user_day": 1e9}, "usage": {"usd": 0}}, ["budget", "usage"]),
    ({"answer": "x", "usage_calls": [{"usd": -5.0}]}, ["usage_calls"]),
    ({"results": [{"agent": "search", "answer": "x", "calls": [{"usd": -5.0}]}]}, ["results"]),
    ({"turn": -3, "turn_started": 0, "timings_ms": {}, "degraded": [], "budget_report": {}},
     ["budget_report", "degraded", "timings_ms", "turn", "turn_started"]),
])
def test_fork_refuses_writes_to_server_owned_channels(client, ben, ben_thread, values, owned):
    # a client could reset its own spend: usage_session {} on a fork gave the thread a fresh session budget
    before = _head_ids(client, ben, ben_thread)
    for run in (True, False):
        r = client.post(f"/v1/threads/{ben_thread}/fork", json={"checkpoint_id": before[0], "values": values,
                                                                "run": run}, headers=ben)
        err = _assert_envelope(r, 422, "server_owned_channels")
        assert f"cannot be written by clients: {', '.join(owned)}" in err["message"], err["message"]
    assert _head_ids(client, ben, ben_thread) == before, "nothing was written"
    ok = client.post(f"/v1/threads/{ben_thread}/fork", json={"checkpoint_id": before[0], "values": {"answer": "x"},
                                                             "run": False}, headers=ben)
    assert ok.status_code == 200, "client channels stay writable"


def test_fork_in_a_specialist_namespace_refuses_its_server_owned_channels(client, ben):
    tid = client.post("/v1/threads", headers=ben).json()["thread_id"]
    r = client.post(f"/v1/threads/{tid}/messages", json={"text": "find Berserk", "durability": "async"}, headers=ben)
    assert r.status_code == 200, r.text
    cps = client.get(f"/v1/threads/{tid}/history?subgraphs=true", headers=ben).json()["checkpoints"]
    inner = next(c for c in cps if c["checkpoint_ns"].startswith("search_agent:") and c["next"] == ["execute"])
    ref = {"checkpoint_id": inner["checkpoint_id"], "checkpoint_ns": inner["checkpoint_ns"]}
    for values, owned in (({"budget": {"usd_left_turn": 1e9}}, "budget"), ({"max_reflections": 99}, "max_reflections"),
                          ({"reflections": -10, "calls": []}, "calls, reflections")):
        err = _assert_envelope(client.post(f"/v1/threads/{tid}/fork", json={**ref, "values": values}, headers=ben),
                               422, "server_owned_channels")
        assert f"cannot be written by clients: {owned}" in err["message"], err["message"]
    assert len(_head_ids(client, ben, tid)) == len(cps)
    ok = client.post(f"/v1/threads/{tid}/fork", json={**ref, "values": {"request": "Berserk"}}, headers=ben)
    assert ok.status_code == 200, ok.text


def test_a_user_over_the_daily_budget_is_refused_on_every_thread_before_any_model_work(client, ben):
    from nodes.supervisor import USAGE_NAMESPACE, usage_day_key

    key = _key(client, "u_spent")
    h = {"X-Api-Key": key}
    old = client.post("/v1/threads", headers=h).json()["thread_id"]
    assert client.post(f"/v1/threads/{old}/messages", json={"text": "find Berserk"}, headers=h).status_code == 200
    cap = client.app.state.assistant.deps.settings.usd_budget_user_day
    store = client.app.state.assistant.graph.store
    client.portal.call(store.aput, (USAGE_NAMESPACE, "u_spent"), usage_day_key(),
                       {"usd": cap, "input_tokens": 90_000, "output_tokens": 9_000, "turns": 40, "calls": 200})
    before = _head_ids(client, h, old)
    new = client.post("/v1/threads", headers=h).json()["thread_id"]  # a new thread is no way out
    refused = [client.post(f"/v1/threads/{old}/messages", json={"text": "find Monster"}, headers=h),
               client.post(f"/v1/threads/{new}/messages", json={"text": "find Monster"}, headers=h),
               client.post(f"/v1/threads/{old}/replay", json={"checkpoint_id": before[-1]}, headers=h),
               client.post(f"/v1/threads/{old}/fork", json={"checkpoint_id": before[0], "values": {"answer": "x"}},
                           headers=h)]
    for r in refused:
        err = _assert_envelope(r, 429, "daily_budget_exceeded")
        assert f"${cap:.2f}" in err["message"] and "UTC" in err["message"]
        assert 0 < int(r.headers["retry-after"]) <= 86_400
    with client.websocket_connect(f"/v1/ws/threads/{new}?api_key={key}") as ws:
        ws.send_json({"type": "message", "text": "find Monster"})
        frame = ws.receive_json()
    assert frame["type"] == "error" and frame["code"] == "daily_budget_exceeded", frame
    assert _head_ids(client, h, old) == before and _head_ids(client, h, new) == [], "nothing was written"
    assert client.get(f"/v1/threads/{new}/state", headers=h).json()["values"] == {}
    # an edit without a run does no model work; other users are unaffected
    assert client.post(f"/v1/threads/{old}/fork", json={"checkpoint_id": before[0], "values": {"answer": "x"},
                                                        "run": False}, headers=h).status_code == 200
    other = client.post("/v1/threads", headers=ben).json()["thread_id"]
    assert client.post(f"/v1/threads/{other}/messages", json={"text": "find Monster"}, headers=ben).status_code == 200


def test_out_of_range_paging_is_422_not_500(client, ben):
    """Found by schemathesis: an offset past a 64-bit integer reached the database and came back as a 500."""
    for query in ("offset=101991795921173367226368", "offset=-1", "limit=0", "limit=1001"):
        _assert_envelope(client.get(f"/v1/threads?{query}", headers=ben), 422, "invalid_input")
    assert client.get("/v1/threads?offset=1000000000&limit=1000", headers=ben).json() == {"threads": []}


@pytest.mark.parametrize("checkpoint_id", ["a\x00b", "\x95𓀍Aaë\x06ì¾䵋", "../../etc", "id with spaces"])
def test_a_checkpoint_id_that_no_checkpoint_can_have_is_422(client, ben, ben_thread, checkpoint_id):
    """Found by schemathesis: a fork/replay/state checkpoint id with control or non-ASCII characters reached
    Postgres (which refuses NUL in text) and came back as a 500. Checkpoint ids are LangGraph's UUID strings."""
    for path, body in ((f"/v1/threads/{ben_thread}/fork", {"checkpoint_id": checkpoint_id, "values": {}}),
                       (f"/v1/threads/{ben_thread}/replay", {"checkpoint_id": checkpoint_id})):
        _assert_envelope(client.post(path, json=body, headers=ben), 422, "invalid_input")
    _assert_envelope(client.get(f"/v1/threads/{ben_thread}/state", params={"checkpoint_id": checkpoint_id},
                                headers=ben), 422, "invalid_input")
