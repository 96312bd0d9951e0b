"""LangGraph Agent Server API subset (server/routes/lgapi/) through FastAPI's TestClient: shapes, 404/409/422
envelopes, identity from the API key, and checkpoints that never cross threads. One app per module (embedded
SQLite, auth on); the real graph answers."""

from __future__ import annotations

import json
import uuid

import pytest
from fastapi.testclient import TestClient

from core.settings import Settings
from server.app import create_app
from server.routes.lgapi import ASSISTANT_ID, dumps


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """(client, app, {user: key}) with API keys for u_ben, u_aiko and mallory."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("lgapi"), database_url=None, redis_url=None, auth="on")
    app = create_app(settings)
    with TestClient(app) as client:
        keys = {u: client.portal.call(app.state.accounts.create_key, u)[0] for u in ("u_ben", "u_aiko", "mallory")}
        yield client, app, keys


def H(keys: dict, user: str) -> dict:
    return {"X-Api-Key": keys[user]}


def user_input(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


def new_thread(client, keys, user="u_ben", **body) -> str:
    r = client.post("/threads", json=body, headers=H(keys, user))
    assert r.status_code == 200, r.text
    return r.json()["thread_id"]


def assert_envelope(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["message"] and "request_id" in err
    return err


def sse(r) -> list[tuple[str, str]]:
    """(event, data) pairs of a text/event-stream body."""
    out, event = [], None
    for line in r.text.splitlines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            out.append((event, line[6:]))
    return out


def test_info_and_ok_need_no_key(api):
    client, _, _ = api
    info = client.get("/info").json()
    assert info["flags"]["assistants"] is True and info["langgraph_py_version"]
    assert client.get("/ok").json() == {"ok": True}


def test_routes_require_an_api_key(api):
    client, _, keys = api
    assert_envelope(client.post("/assistants/search", json={}), 401, "unauthorized")
    assert_envelope(client.post("/assistants/search", json={}, headers={"X-Api-Key": "ma_nope"}), 401, "unauthorized")
    assert client.post("/assistants/search", json={}, headers={"Authorization": f"Bearer {keys['u_ben']}"}).status_code == 200


def test_assistant_search_get_graph_and_schemas(api):
    client, _, keys = api
    h = H(keys, "u_ben")
    (a,) = client.post("/assistants/search", json={"graph_id": "mangaassist"}, headers=h).json()
    assert a["assistant_id"] == ASSISTANT_ID == str(uuid.uuid5(uuid.NAMESPACE_URL, "mangaassist"))
    assert {"graph_id", "config", "context", "metadata", "version", "name", "created_at", "updated_at"} <= set(a)
    assert client.post("/assistants/search", json={"graph_id": "other"}, headers=h).json() == []
    assert client.post("/assistants/search", json={"offset": 1}, headers=h).json() == []
    assert client.get("/assistants/mangaassist", headers=h).json()["assistant_id"] == ASSISTANT_ID
    assert_envelope(client.get(f"/assistants/{uuid.uuid4()}", headers=h), 404, "assistant_not_found")

    flat = client.get(f"/assistants/{ASSISTANT_ID}/graph", headers=h).json()
    deep = client.get(f"/assistants/{ASSISTANT_ID}/graph", params={"xray": "1"}, headers=h).json()
    flat_ids, deep_ids = {n["id"] for n in flat["nodes"]}, {n["id"] for n in deep["nodes"]}
    assert {"__start__", "classify", "search_agent", "order_agent", "finalize", "__end__"} <= flat_ids
    assert not any(":" in i for i in flat_ids) and any(i.startswith("order_agent:") for i in deep_ids)
    assert {"source": "__start__", "target": "classify"} in [{k: e[k] for k in ("source", "target")} for e in flat["edges"]]
    assert_envelope(client.get(f"/assistants/{ASSISTANT_ID}/graph", params={"xray": "deep"}, headers=h), 422,
                    "invalid_input")

    schemas = client.get(f"/assistants/{ASSISTANT_ID}/schemas", headers=h).json()
    assert schemas["graph_id"] == "mangaassist"
    assert "messages" in schemas["input_schema"]["properties"]
    assert {"answer", "items"} <= set(schemas["output_schema"]["properties"])
    assert {"messages", "intents", "results"} <= set(schemas["state_schema"]["properties"])
    assert {"user_id", "locale", "search_k"} <= set(schemas["context_schema"]["properties"])
    subs = client.get(f"/assistants/{ASSISTANT_ID}/subgraphs", headers=h).json()
    assert {"search_agent", "recommend_agent", "order_agent", "conversation_agent"} <= set(subs)


def test_thread_create_conflicts_and_search(api):
    client, _, keys = api
    tid = f"t-{uuid.uuid4().hex}"
    first = client.post("/threads", json={"thread_id": tid, "metadata": {"k": "v"}}, headers=H(keys, "u_ben")).json()
    assert first["status"] == "idle" and first["values"] is None and first["interrupts"] == {}
    assert_envelope(client.post("/threads", json={"thread_id": tid}, headers=H(keys, "u_ben")), 409, "thread_exists")
    again = client.post("/threads", json={"thread_id": tid, "if_exists": "do_nothing"}, headers=H(keys, "u_ben"))
    assert again.status_code == 200 and again.json()["created_at"] == first["created_at"]
    # someone else's id: still 409, and do_nothing does not hand it over
    assert_envelope(client.post("/threads", json={"thread_id": tid, "if_exists": "do_nothing"},
                                headers=H(keys, "mallory")), 409, "thread_exists")
    assert_envelope(client.post("/threads", json={"thread_id": "a b"}, headers=H(keys, "u_ben")), 422, "invalid_input")
    assert_envelope(client.post("/threads", json={"supersteps": [{"updates": []}]}, headers=H(keys, "u_ben")), 422,
                    "invalid_input")

    found = client.post("/threads/search", json={"metadata": {"k": "v"}}, headers=H(keys, "u_ben")).json()
    assert [t["thread_id"] for t in found] == [tid]
    assert client.post("/threads/search", json={"ids": [tid]}, headers=H(keys, "mallory")).json() == []


ROUTES = [
    ("GET", "/threads/{t}", None),
    ("DELETE", "/threads/{t}", None),
    ("GET", "/threads/{t}/state", None),
    ("GET", "/threads/{t}/state/1f000000-0000-6000-8000-000000000000", None),
    ("POST", "/threads/{t}/state/checkpoint", {"checkpoint": {"checkpoint_id": "1f000000-0000-6000-8000-000000000000"}}),
    ("POST", "/threads/{t}/state", {"values": {"answer": "x"}}),
    ("GET", "/threads/{t}/history", None),
    ("POST", "/threads/{t}/history", {"limit": 5}),
    ("POST", "/threads/{t}/runs/wait", {"assistant_id": "mangaassist", "input": user_input("hello")}),
    ("POST", "/threads/{t}/runs/stream", {"assistant_id": "mangaassist", "input": user_input("hello")}),
]


@pytest.mark.parametrize("method,path,body", ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_unknown_and_foreign_threads_are_404(api, method, path, body):
    client, _, keys = api
    owned = new_thread(client, keys, "u_ben")
    for tid in (owned, uuid.uuid4().hex):  # ben's thread asked by mallory, and an id nobody has
        r = client.request(method, path.format(t=tid), json=body, headers=H(keys, "mallory"))
        assert_envelope(r, 404, "thread_not_found")
    assert client.get(f"/threads/{owned}", headers=H(keys, "u_ben")).status_code == 200, "still there for ben"


@pytest.mark.parametrize("body,fragment", [
    ({"input": user_input("hi")}, "assistant_id"),
    ({"assistant_id": "mangaassist", "input": {"messages": [{"role": "assistant", "content": "hi"}]}}, "user messages"),
    ({"assistant_id": "mangaassist", "input": user_input("   ")}, "empty"),
    ({"assistant_id": "mangaassist", "input": {"messages": []}}, "non-empty"),
    ({"assistant_id": "mangaassist", "input": {"text": "hi"}}, "only 'messages'"),
    ({"assistant_id": "mangaassist", "input": user_input("hi"), "command": {"resume": "yes"}}, "not both"),
    ({"assistant_id": "mangaassist", "command": {}}, "resume"),
    ({"assistant_id": "mangaassist", "input": user_input("hi"), "context": {"search_k": "many"}}, "search_k"),
    ({"assistant_id": "mangaassist", "input": user_input("hi"), "stream_mode": "events"}, "stream_mode"),
    ({"assistant_id": "mangaassist", "input": user_input("hi"), "multitask_strategy": "sometimes"}, "multitask"),
])
def test_bad_run_bodies_are_422(api, body, fragment):
    client, _, keys = api
    tid = new_thread(client, keys)
    r = client.post(f"/threads/{tid}/runs/stream", json=body, headers=H(keys, "u_ben"))
    assert fragment in assert_envelope(r, 422, "invalid_input")["message"]
    assert client.get(f"/threads/{tid}/state", headers=H(keys, "u_ben")).json()["checkpoint"] is None, "nothing ran"


@pytest.mark.parametrize("strategy", ["enqueue", "interrupt", "rollback"])
def test_unimplemented_multitask_strategies_are_422_naming_what_is_supported(api, strategy):
    # they were accepted and silently acted as "reject"
    client, _, keys = api
    h = H(keys, "u_ben")
    tid = new_thread(client, keys)
    before = {t["thread_id"] for t in client.post("/threads/search", json={"limit": 1000}, headers=h).json()}
    body = {"assistant_id": "mangaassist", "input": user_input("find Monster"), "multitask_strategy": strategy}
    for path in (f"/threads/{tid}/runs/wait", f"/threads/{tid}/runs/stream", "/runs/wait", "/runs/stream"):
        msg = assert_envelope(client.post(path, json=body, headers=h), 422, "invalid_input")["message"]
        assert f"multitask_strategy: {strategy!r} is not supported" in msg and "supported: 'reject'" in msg, msg
    assert client.get(f"/threads/{tid}/state", headers=h).json()["checkpoint"] is None, "nothing ran"
    after = {t["thread_id"] for t in client.post("/threads/search", json={"limit": 1000}, headers=h).json()}
    assert after == before, "no temporary thread was created"
    ok = client.post(f"/threads/{tid}/runs/wait", json={**body, "multitask_strategy": "reject"}, headers=h)
    assert ok.status_code == 200 and "Monster" in ok.json()["answer"]


@pytest.mark.parametrize("path,body", [
    ("/threads/{tid}/history", {"metadata": {"": {"a\x00b": 1}}}),
    ("/threads/{tid}/history", {"metadata": {"source": "lo\x00op"}}),
    ("/threads", {"metadata": {"note": ["ok", "bad\x00"]}}),
    ("/threads/{tid}/runs/wait", {"assistant_id": "mangaassist", "input": user_input("hi\x00there")}),
])
def test_nul_characters_are_422_not_a_database_error(api, path, body):
    # PostgreSQL text/JSONB cannot hold U+0000: found by schemathesis as a 500 on POST /history (Postgres saver)
    client, _, keys = api
    tid = new_thread(client, keys)
    r = client.post(path.format(tid=tid), json=body, headers=H(keys, "u_ben"))
    assert "NUL" in assert_envelope(r, 422, "invalid_input")["message"]
    assert client.post(f"/threads/{tid}/history", json={"metadata": {"source": "loop"}},
                       headers=H(keys, "u_ben")).status_code == 200


@pytest.mark.parametrize("body", [
    {"metadata": {"n": 2**64}},
    {"metadata": {"deep": [{"x": -(2**63) - 1}]}},
])
def test_integers_beyond_64_bits_are_422_and_do_not_poison_thread_listing(api, body):
    # found by schemathesis: a thread created with such metadata was stored, then every POST /threads/search
    # that included it failed as a 500 (orjson refuses integers beyond 64 bits)
    client, _, keys = api
    r = client.post("/threads", json=body, headers=H(keys, "u_ben"))
    assert "64-bit" in assert_envelope(r, 422, "invalid_input")["message"]
    ok = client.post("/threads", json={"metadata": {"n": 2**63 - 1}}, headers=H(keys, "u_ben"))
    assert ok.status_code == 200 and ok.json()["metadata"]["n"] == 2**63 - 1
    found = client.post("/threads/search", json={"limit": 100}, headers=H(keys, "u_ben"))
    assert found.status_code == 200 and all(t["metadata"].get("n") in (None, 2**63 - 1) for t in found.json())


def test_wait_run_answers_and_identity_comes_from_the_key(api):
    client, _, keys = api
    tid = new_thread(client, keys, "u_ben")
    r = client.post(f"/threads/{tid}/runs/wait", headers=H(keys, "u_ben"), json={
        "assistant_id": ASSISTANT_ID, "input": user_input("find One Piece"),
        "context": {"user_id": "u_aiko"}, "metadata": {"user_id": "u_aiko"}, "config": {"configurable": {"user_id": "x"}}})
    assert r.status_code == 200, r.text
    out = r.json()
    assert "One Piece" in out["answer"] and "search" in out["intents"]
    assert r.headers["content-location"].startswith(f"/threads/{tid}/runs/")
    state = client.get(f"/threads/{tid}/state", headers=H(keys, "u_ben")).json()
    assert state["metadata"]["user_id"] == "u_ben"
    assert [m["type"] for m in state["values"]["messages"]] == ["human", "ai"]
    assert state["checkpoint"]["thread_id"] == tid and state["next"] == []
    assert client.get(f"/threads/{tid}", headers=H(keys, "u_ben")).json()["values"]["answer"] == out["answer"]
    # unknown assistant on a real thread
    assert_envelope(client.post(f"/threads/{tid}/runs/wait", headers=H(keys, "u_ben"),
                                json={"assistant_id": "agent", "input": user_input("hi")}), 404, "assistant_not_found")


def test_second_run_while_one_is_in_flight_is_409(api):
    client, app, keys = api
    tid = new_thread(client, keys)
    guard = app.state.run_guard
    lease = client.portal.call(guard.acquire, tid)  # a run in flight on this thread
    try:
        body = {"assistant_id": "mangaassist", "input": user_input("find Monster")}
        assert_envelope(client.post(f"/threads/{tid}/runs/wait", json=body, headers=H(keys, "u_ben")), 409, "thread_busy")
        assert_envelope(client.post(f"/threads/{tid}/runs/stream", json={**body, "multitask_strategy": "reject"},
                                    headers=H(keys, "u_ben")), 409, "thread_busy")
        # a strategy we do not implement is refused as such, not silently treated as "reject"
        assert_envelope(client.post(f"/threads/{tid}/runs/stream", json={**body, "multitask_strategy": "enqueue"},
                                    headers=H(keys, "u_ben")), 422, "invalid_input")
        assert_envelope(client.post(f"/threads/{tid}/state", json={"values": {"answer": "x"}},
                                    headers=H(keys, "u_ben")), 409, "thread_busy")
        assert client.get(f"/threads/{tid}", headers=H(keys, "u_ben")).json()["status"] == "busy"
    finally:
        client.portal.call(guard.release, lease)
    r = client.post(f"/threads/{tid}/runs/wait", json={"assistant_id": "mangaassist", "input": user_input("find Monster")},
                    headers=H(keys, "u_ben"))
    assert r.status_code == 200 and not guard.busy_locally(tid)


def test_stream_events_order_and_subgraph_names(api):
    client, _, keys = api
    tid = new_thread(client, keys)
    r = client.post(f"/threads/{tid}/runs/stream", headers=H(keys, "u_ben"), json={
        "assistant_id": "mangaassist", "input": user_input("find Berserk"), "stream_mode": ["updates", "debug"]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [e for e, _ in sse(r)]
    assert events[0] == "metadata" and events[-1] == "end"
    assert "updates" in events and "debug" in events and not any("|" in e for e in events)
    r = client.post(f"/threads/{tid}/runs/stream", headers=H(keys, "u_ben"), json={
        "assistant_id": "mangaassist", "input": user_input("find Monster"), "stream_mode": "updates",
        "stream_subgraphs": True})
    names = [e for e, _ in sse(r)]
    assert any(n.startswith("updates|search_agent:") for n in names), names
    assert "updates" in names


def test_checkpoints_never_cross_threads(api):
    client, _, keys = api
    h = H(keys, "u_ben")
    a, b = new_thread(client, keys), new_thread(client, keys)
    for t in (a, b):
        assert client.post(f"/threads/{t}/runs/wait", json={"assistant_id": "mangaassist",
                                                             "input": user_input("find Monster")}, headers=h).status_code == 200
    b_cp = client.get(f"/threads/{b}/state", headers=h).json()["checkpoint"]
    assert_envelope(client.get(f"/threads/{a}/state/{b_cp['checkpoint_id']}", headers=h), 404, "checkpoint_not_found")
    assert_envelope(client.post(f"/threads/{a}/state/checkpoint", json={"checkpoint": b_cp}, headers=h), 404,
                    "checkpoint_not_found")
    assert_envelope(client.post(f"/threads/{a}/runs/wait", json={"assistant_id": "mangaassist", "checkpoint": b_cp},
                                headers=h), 404, "checkpoint_not_found")
    assert_envelope(client.post(f"/threads/{a}/state", json={"values": {"answer": "x"}, "checkpoint": b_cp},
                                headers=h), 404, "checkpoint_not_found")


def test_history_chain_and_state_edits(api):
    client, _, keys = api
    h = H(keys, "u_ben")
    tid = new_thread(client, keys)
    client.post(f"/threads/{tid}/runs/wait", json={"assistant_id": "mangaassist", "input": user_input("find Monster")},
                headers=h)
    hist = client.post(f"/threads/{tid}/history", json={"limit": 100}, headers=h).json()
    assert hist == client.get(f"/threads/{tid}/history", params={"limit": 100}, headers=h).json()
    for newer, older in zip(hist, hist[1:], strict=False):
        assert newer["parent_checkpoint"] == older["checkpoint"]
    assert hist[-1]["next"] == ["__start__"] and hist[0]["next"] == []
    page = client.post(f"/threads/{tid}/history", json={"limit": 2, "before": hist[1]["checkpoint"]}, headers=h).json()
    assert [s["checkpoint"] for s in page] == [hist[2]["checkpoint"], hist[3]["checkpoint"]]
    assert_envelope(client.post(f"/threads/{tid}/history", json={"limit": 0}, headers=h), 422, "invalid_input")

    assert_envelope(client.post(f"/threads/{tid}/state", json={"values": {"nope": 1}}, headers=h), 422, "invalid_input")
    assert_envelope(client.post(f"/threads/{tid}/state", json={"values": {"answer": "x"}, "as_node": "zzz"}, headers=h),
                    422, "invalid_input")
    edit = client.post(f"/threads/{tid}/state", json={"values": {"answer": "edited"}, "as_node": "finalize"}, headers=h)
    assert edit.status_code == 200, edit.text
    cp = edit.json()["checkpoint"]
    state = client.get(f"/threads/{tid}/state", headers=h).json()
    assert state["checkpoint"] == cp and state["values"]["answer"] == "edited"
    assert state["parent_checkpoint"] == hist[0]["checkpoint"]


def test_stateless_run_leaves_no_thread(api):
    client, _, keys = api
    before = {t["thread_id"] for t in client.post("/threads/search", json={"limit": 1000}, headers=H(keys, "u_aiko")).json()}
    r = client.post("/runs/wait", json={"assistant_id": "mangaassist", "input": user_input("find Monster")},
                    headers=H(keys, "u_aiko"))
    assert r.status_code == 200 and "Monster" in r.json()["answer"]
    after = {t["thread_id"] for t in client.post("/threads/search", json={"limit": 1000}, headers=H(keys, "u_aiko")).json()}
    assert after == before


def test_dumps_serves_integers_beyond_64_bits_as_postgres_returns_them():
    # JSONB prints a float like 1e20 as the integer 100000000000000000000; orjson alone refuses it (a 500 on
    # every thread search that included such a thread, found by schemathesis on Postgres)
    doc = {"metadata": {"n": 10**20, "ok": 1.5, "ja": "漫画"}, "values": [1, None]}
    assert json.loads(dumps(doc)) == doc
    assert dumps({"a": 1}) == b'{"a":1}'  # the usual path is orjson's


# ---- spend: server-owned state and the per-user daily budget ------------------------------------------


@pytest.mark.parametrize("values,owned", [
    ({"usage_session": {}}, "usage_session"),
    ({"answer": "x", "budget": {"usd_left_user_day": 1e9}}, "budget"),
    ({"turn": -1, "usage": {"usd": 0}, "usage_calls": [{"usd": -1.0}]}, "turn, usage, usage_calls"),
    ({"results": [{"agent": "search", "calls": [{"usd": -1.0}]}]}, "results"),
])
def test_state_edits_and_commands_cannot_write_server_owned_channels(api, values, owned):
    client, _, keys = api
    h = H(keys, "u_ben")
    tid = new_thread(client, keys)
    assert client.post(f"/threads/{tid}/runs/wait", json={"assistant_id": "mangaassist",
                                                          "input": user_input("find Monster")}, headers=h).status_code == 200
    hist = client.post(f"/threads/{tid}/history", json={"limit": 100}, headers=h).json()
    fork_at = hist[-1]["checkpoint"]
    for body in ({"values": values}, {"values": values, "as_node": "finalize"},
                 {"values": values, "checkpoint": fork_at}, {"values": values, "checkpoint_id": fork_at["checkpoint_id"]}):
        err = assert_envelope(client.post(f"/threads/{tid}/state", json=body, headers=h), 422, "server_owned_channels")
        assert f"cannot be written by clients: {owned}" in err["message"], err["message"]
    for command in ({"update": values}, {"update": values, "goto": "finalize"}):
        r = client.post(f"/threads/{tid}/runs/wait", json={"assistant_id": "mangaassist", "command": command}, headers=h)
        assert f"cannot be written by clients: {owned}" in assert_envelope(r, 422, "server_owned_channels")["message"]
    assert client.post(f"/threads/{tid}/history", json={"limit": 100}, headers=h).json() == hist, "nothing written"


def test_runs_of_a_user_over_the_daily_budget_are_429_and_write_nothing(api):
    from nodes.supervisor import USAGE_NAMESPACE, usage_day_key

    client, app, keys = api
    h = {"X-Api-Key": client.portal.call(app.state.accounts.create_key, "u_broke")[0]}
    tid = client.post("/threads", json={}, headers=h).json()["thread_id"]
    cap = app.state.assistant.deps.settings.usd_budget_user_day
    client.portal.call(app.state.assistant.graph.store.aput, (USAGE_NAMESPACE, "u_broke"), usage_day_key(),
                       {"usd": cap + 0.01, "input_tokens": 1, "output_tokens": 1, "turns": 1, "calls": 1})
    threads_before = client.post("/threads/search", json={"limit": 1000}, headers=h).json()
    body = {"assistant_id": "mangaassist", "input": user_input("find Monster")}
    for path, extra in ((f"/threads/{tid}/runs/wait", {}), (f"/threads/{tid}/runs/stream", {}), ("/runs/wait", {}),
                        ("/runs/stream", {}), (f"/threads/t-{uuid.uuid4().hex}/runs/wait", {"if_not_exists": "create"})):
        r = client.post(path, json={**body, **extra}, headers=h)
        assert f"${cap:.2f}" in assert_envelope(r, 429, "daily_budget_exceeded")["message"]
        assert int(r.headers["retry-after"]) > 0
    assert client.get(f"/threads/{tid}/state", headers=h).json()["checkpoint"] is None, "nothing ran"
    assert client.post("/threads/search", json={"limit": 1000}, headers=h).json() == threads_before, \
        "no temporary or if_not_exists thread was created"
    ok = client.post(f"/threads/{tid}/runs/wait", json=body, headers=H(keys, "u_aiko"))
    assert_envelope(ok, 404, "thread_not_found")  # ownership is still checked first for other users
