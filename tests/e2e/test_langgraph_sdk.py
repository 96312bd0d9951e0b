"""E2E: the official langgraph-sdk client drives our server (uvicorn on 127.0.0.1, real Postgres) unchanged.

One server per test module (start-up builds the catalog index and recommender: ~30 s); one fresh Postgres
database for it. API keys are created in the accounts repository the server reads, before it starts.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import ConflictError, NotFoundError

from tests.e2e.conftest import wait_until_ready

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 600.0
pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pg_module_dsn(pg_server_url):
    """A fresh database for this module's server (dropped afterwards)."""
    import psycopg
    from psycopg import sql

    from tests.conftest import _with_db

    name = f"test_{uuid.uuid4().hex}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield _with_db(pg_server_url, name)
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


async def _with_pool(dsn: str, fn):
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    async with AsyncConnectionPool(dsn, min_size=1, max_size=2, open=False,
                                   kwargs={"autocommit": True, "row_factory": dict_row,
                                           "prepare_threshold": 0}) as pool:
        return await fn(pool)


@pytest.fixture(scope="module")
def server(pg_module_dsn, tmp_path_factory):
    """{url, keys: {user: key}, dsn}: uvicorn serving ``server.app:create_app`` with auth on, on Postgres."""
    from core.settings import Settings
    from server.accounts import open_accounts

    users = ("u_aiko", "u_ben", "mallory", "u_spender")

    async def make_keys(pool):
        accounts = await open_accounts(Settings(), pool=pool)
        return {u: (await accounts.create_key(u, label="e2e"))[0] for u in users}

    keys = asyncio.run(_with_pool(pg_module_dsn, make_keys))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MANGAASSIST_REDIS_URL", "MANGAASSIST_AUTH")}
    env.update(DATABASE_URL=pg_module_dsn, MANGAASSIST_DATA_DIR=str(tmp_path_factory.mktemp("lgsdk-data")),
               PYTHONPATH=str(ROOT))
    log = tmp_path_factory.mktemp("lgsdk-log") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "server.app:create_app", "--factory",
                                 "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(proc, url + "/ok", log, STARTUP_TIMEOUT_S)
        yield {"url": url, "keys": keys, "dsn": pg_module_dsn}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _cancellable_order(dsn: str) -> tuple[str, str]:
    """(user_id, order_id) of a seeded order the store rules allow to cancel, read from the server's database."""
    from tools.backends.orders_repo import PostgresOrdersRepository, check_action

    async def find(pool):
        repo = PostgresOrdersRepository(pool)
        for u in await repo.demo_users():
            for o in await repo.list_orders(u["user_id"]):
                try:
                    check_action(o, "cancel", datetime.now(UTC))
                except Exception:
                    continue
                return u["user_id"], o.order_id
        raise AssertionError("the demo seed has no cancellable order")

    return await _with_pool(dsn, find)


async def _order_status(dsn: str, user_id: str, order_id: str) -> str:
    from tools.backends.orders_repo import PostgresOrdersRepository

    async def get(pool):
        return (await PostgresOrdersRepository(pool).get_order(user_id, order_id)).status

    return await _with_pool(dsn, get)


def _user(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


async def test_sdk_session_search_stream_history_replay_fork(server):
    client = get_client(url=server["url"], api_key=server["keys"]["u_ben"])

    assistants = await client.assistants.search(graph_id="mangaassist")
    assert len(assistants) == 1 and assistants[0]["graph_id"] == "mangaassist"
    aid = assistants[0]["assistant_id"]
    assert (await client.assistants.get(aid))["assistant_id"] == aid
    drawn = await client.assistants.get_graph(aid, xray=1)
    node_ids = {n["id"] for n in drawn["nodes"]}
    assert {"classify", "merge", "quality", "finalize"} <= node_ids
    assert any(i.startswith("search_agent:") for i in node_ids), "xray=1 draws the specialist subgraphs"
    schemas = await client.assistants.get_schemas(aid)
    assert "user_id" in schemas["context_schema"]["properties"]
    assert "messages" in schemas["state_schema"]["properties"]

    thread = await client.threads.create(metadata={"purpose": "e2e"})
    tid = thread["thread_id"]
    assert thread["status"] == "idle" and thread["metadata"] == {"purpose": "e2e"}

    # turn 1: runs.wait returns the final state values
    first = await client.runs.wait(tid, aid, input=_user("find One Piece"))
    assert "search" in first["intents"]
    assert "One Piece" in first["answer"]
    assert any(i["title"] == "One Piece" for i in first["items"])

    # turn 2: runs.stream with values, updates and messages: writer tokens arrive and join to the answer
    parts = [p async for p in client.runs.stream(tid, aid, input=_user("find Naruto"),
                                                  stream_mode=["values", "updates", "messages"])]
    events = [p.event for p in parts]
    assert events[0] == "metadata" and "run_id" in parts[0].data
    assert events[-1] == "end" and parts[-1].data["status"] == "success"
    assert {"values", "updates", "messages/metadata", "messages/partial"} <= set(events)
    final_values = [p.data for p in parts if p.event == "values"][-1]
    answer = final_values["answer"]
    assert "Naruto" in answer
    partials: dict[str, list[str]] = {}
    for p in parts:
        if p.event == "messages/partial":
            msg = p.data[0]
            partials.setdefault(msg["id"], []).append(msg["content"])
    writer = [seq for seq in partials.values() if seq[-1] == answer]
    assert writer, "one streamed message accumulates to exactly the final answer"
    seq = writer[0]
    assert len(seq) >= 5, f"the answer arrived in {len(seq)} token events"
    assert all(b.startswith(a) for a, b in zip(seq, seq[1:], strict=False)), "each partial extends the last"
    assert len({len(c) for c in seq}) >= 5, "the text grew over several token events"
    updated_nodes = {next(iter(p.data)) for p in parts if p.event == "updates"}
    assert {"classify", "search_agent", "finalize"} <= updated_nodes

    # history: newest first, parent links chain, both turns visible
    history = await client.threads.get_history(tid, limit=100)
    assert len(history) >= 10
    for newer, older in zip(history, history[1:], strict=False):
        assert newer["parent_checkpoint"]["checkpoint_id"] == older["checkpoint"]["checkpoint_id"]
        assert newer["checkpoint"]["thread_id"] == tid
    assert history[0]["next"] == [] and history[0]["values"]["answer"] == answer
    assert history[-1]["parent_checkpoint"] is None
    turn_starts = [h for h in history if h["next"] == ["classify"]]
    assert len(turn_starts) == 2
    second_start, first_start = turn_starts

    # re-run turn 2 from its past checkpoint (no input: replay from there) → same answer, new branch
    replay = await client.runs.wait(tid, aid, checkpoint_id=second_start["checkpoint"]["checkpoint_id"])
    assert replay["answer"] == answer
    after = await client.threads.get_history(tid, limit=200)
    assert len(after) > len(history)
    ids = {h["checkpoint"]["checkpoint_id"] for h in after}
    assert second_start["checkpoint"]["checkpoint_id"] in ids

    # fork turn 1 with an edited message (update_state at a past checkpoint), run the branch, stream tokens
    human = first_start["values"]["messages"][-1]
    assert human["type"] == "human" and human["content"] == "find One Piece"
    fork = await client.threads.update_state(
        tid, {"messages": [{"type": "human", "content": "find Monster", "id": human["id"]}]},
        checkpoint_id=first_start["checkpoint"]["checkpoint_id"])
    forked_cp = fork["checkpoint"]
    forked_state = await client.threads.get_state(tid, checkpoint_id=forked_cp["checkpoint_id"])
    assert forked_state["parent_checkpoint"]["checkpoint_id"] == first_start["checkpoint"]["checkpoint_id"]
    assert [m["content"] for m in forked_state["values"]["messages"]] == ["find Monster"]
    tokens: list[str] = []
    async for p in client.runs.stream(tid, aid, checkpoint=forked_cp, stream_mode="messages-tuple"):
        if p.event == "messages" and p.data[0]["type"] == "AIMessageChunk":
            tokens.append(p.data[0]["content"])
    state = await client.threads.get_state(tid)
    assert "Monster" in state["values"]["answer"]
    assert "".join(tokens) == state["values"]["answer"]
    assert [m["content"] for m in state["values"]["messages"]][0] == "find Monster", "the branch forgot turn 1/2"


async def test_sdk_interrupt_resume_cancel_and_isolation(server):
    user, order_id = await _cancellable_order(server["dsn"])
    client = get_client(url=server["url"], api_key=server["keys"][user])
    (assistant,) = await client.assistants.search()
    aid = assistant["assistant_id"]
    tid = (await client.threads.create())["thread_id"]

    asked = await client.runs.wait(tid, aid, input=_user(f"please cancel order {order_id}"))
    (intr,) = asked["__interrupt__"]
    assert intr["value"]["action"] == "cancel" and intr["value"]["order_id"] == order_id
    thread = await client.threads.get(tid)
    assert thread["status"] == "interrupted"
    assert await _order_status(server["dsn"], user, order_id) == "processing", "nothing happens before yes"

    # another customer cannot see, run, read or edit this thread: 404 like an unknown id
    mallory = get_client(url=server["url"], api_key=server["keys"]["mallory"])
    for call in (lambda: mallory.threads.get(tid),
                 lambda: mallory.threads.get_state(tid),
                 lambda: mallory.threads.get_history(tid),
                 lambda: mallory.threads.update_state(tid, {"answer": "pwned"}),
                 lambda: mallory.runs.wait(tid, aid, command={"resume": "yes"})):
        with pytest.raises(httpx.HTTPStatusError) as err:  # runs.wait raises plain httpx errors, others typed
            await call()
        assert err.value.response.status_code == 404
        assert err.value.response.json()["error"]["code"] == "thread_not_found"
    assert tid not in {t["thread_id"] for t in await mallory.threads.search()}
    # ... nor act as this customer through context/metadata
    mt = (await mallory.threads.create())["thread_id"]
    res = await mallory.runs.wait(mt, aid, input=_user(f"please cancel order {order_id}"),
                                  context={"user_id": user}, metadata={"user_id": user})
    assert "__interrupt__" not in res
    assert order_id in res["answer"]
    assert await _order_status(server["dsn"], user, order_id) == "processing"

    done = await client.runs.wait(tid, aid, command={"resume": "yes"})
    assert "__interrupt__" not in done
    assert order_id in done["answer"]
    assert await _order_status(server["dsn"], user, order_id) == "cancelled"
    assert (await client.threads.get(tid))["status"] == "idle"

    # unauthenticated: 401; deleting the thread removes it for its owner too
    anon = get_client(url=server["url"], api_key=None)
    with pytest.raises(httpx.HTTPStatusError) as err:
        await anon.threads.get(tid)
    assert err.value.response.status_code == 401
    await client.threads.delete(tid)
    with pytest.raises(NotFoundError):
        await client.threads.get(tid)
    with pytest.raises(ConflictError):
        await client.threads.create(thread_id=mt)  # taken (by mallory): 409, whoever owns it


async def test_sdk_unimplemented_multitask_strategy_is_422_not_a_silent_reject(server):
    client = get_client(url=server["url"], api_key=server["keys"]["u_aiko"])
    tid = (await client.threads.create())["thread_id"]
    for strategy in ("enqueue", "interrupt", "rollback"):
        with pytest.raises(httpx.HTTPStatusError) as err:
            await client.runs.wait(tid, "mangaassist", input=_user("find Monster"), multitask_strategy=strategy)
        assert err.value.response.status_code == 422
        assert "supported: 'reject'" in err.value.response.json()["error"]["message"]
    assert (await client.threads.get_state(tid))["checkpoint"] is None, "nothing ran"
    done = await client.runs.wait(tid, "mangaassist", input=_user("find Monster"), multitask_strategy="reject")
    assert "Monster" in done["answer"]


async def test_sdk_cannot_reset_spend_and_a_spent_user_is_refused_on_postgres(server):
    from langgraph.store.postgres.aio import AsyncPostgresStore

    from core.settings import Settings
    from nodes.supervisor import USAGE_NAMESPACE, usage_day_key

    client = get_client(url=server["url"], api_key=server["keys"]["u_spender"])
    tid = (await client.threads.create())["thread_id"]
    await client.runs.wait(tid, "mangaassist", input=_user("find Monster"))
    head = (await client.threads.get_state(tid))["checkpoint"]
    with pytest.raises(httpx.HTTPStatusError) as err:
        await client.threads.update_state(tid, {"usage_session": {}, "budget": {}})
    assert err.value.response.status_code == 422
    assert "cannot be written by clients: budget, usage_session" in err.value.response.json()["error"]["message"]
    assert (await client.threads.get_state(tid))["checkpoint"] == head

    async def spend_the_day(pool):
        await AsyncPostgresStore(pool).aput((USAGE_NAMESPACE, "u_spender"), usage_day_key(),
                                            {"usd": Settings().usd_budget_user_day, "turns": 1, "calls": 1})

    await _with_pool(server["dsn"], spend_the_day)
    fresh = (await client.threads.create())["thread_id"]
    for thread in (tid, fresh):
        with pytest.raises(httpx.HTTPStatusError) as err:
            await client.runs.wait(thread, "mangaassist", input=_user("find Berserk"))
        assert err.value.response.status_code == 429
        assert err.value.response.json()["error"]["code"] == "daily_budget_exceeded"
    assert (await client.threads.get_state(tid))["checkpoint"] == head
    assert (await client.threads.get_state(fresh))["checkpoint"] is None
