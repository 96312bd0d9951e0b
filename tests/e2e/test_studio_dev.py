"""E2E: `langgraph dev` (the README's LangGraph Studio command) serves graphs/studio.py:graph, with its
blocking-call detection on, and the official langgraph-sdk client drives it as Studio would.

The server runs as a subprocess in a temp working directory (its in-memory runtime writes `.langgraph_api/`
there) from a copy of this repository's langgraph.json whose paths are made absolute, plus one canary graph
whose async node calls ``time.sleep``: its run must fail with a BlockingError, which proves the detection
is on (never ``--allow-blocking``; LANGGRAPH_ALLOW_BLOCKING and BG_JOB_ISOLATED_LOOPS are removed from the
environment). Orders live in a fresh SQLite database of the temp data dir, seeded with the demo customers.

Skipped when langgraph-cli[inmem] is not installed, except in CI (the `test` extra installs it), where
that is a failure.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import free_port, wait_until_ready

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 300.0
RUN_TIMEOUT_S = 120.0
pytestmark = pytest.mark.slow

CANARY = '''\
"""A graph whose async node blocks the event loop: langgraph dev must refuse it (BlockingError)."""
import time
from typing import TypedDict

from langgraph.graph import START, StateGraph


class State(TypedDict, total=False):
    slept: bool


async def block(state: State) -> State:
    time.sleep(0.01)
    return {"slept": True}


graph = StateGraph(State).add_node("block", block).add_edge(START, "block").compile()
'''


def _langgraph_cli() -> str:
    """Path of the `langgraph` console script of this interpreter's environment (skip/fail when missing)."""
    script = Path(sys.executable).with_name("langgraph")
    found = str(script) if script.exists() else shutil.which("langgraph")
    if found and importlib.util.find_spec("langgraph_api") is not None:
        return found
    message = 'langgraph-cli[inmem] is not installed (pip install -e ".[test]")'
    if os.environ.get("CI"):
        pytest.fail(f"{message}; the test extra must install it in CI", pytrace=False)
    pytest.skip(message)


def _studio_config(workdir: Path) -> Path:
    """This repository's langgraph.json with absolute paths, plus the blocking canary graph, in ``workdir``."""
    config = json.loads((ROOT / "langgraph.json").read_text())
    config["dependencies"] = [str((ROOT / d).resolve()) for d in config.get("dependencies", ["."])]
    graphs = {}
    for name, spec in config["graphs"].items():
        path, _, attr = spec.rpartition(":")
        graphs[name] = f"{(ROOT / path).resolve()}:{attr}"
    (workdir / "canary.py").write_text(CANARY)
    graphs["blocking_canary"] = f"{workdir / 'canary.py'}:graph"
    config["graphs"] = graphs
    path = workdir / "langgraph.json"
    path.write_text(json.dumps(config, indent=2))
    return path


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """{url, data_dir, ready_s}: `langgraph dev --port <free> --no-browser` serving this repository's graph."""
    cli = _langgraph_cli()
    workdir = tmp_path_factory.mktemp("studio")
    data_dir = tmp_path_factory.mktemp("studio-data")
    config = _studio_config(workdir)
    drop = ("LANGGRAPH_ALLOW_BLOCKING", "BG_JOB_ISOLATED_LOOPS", "DATABASE_URL", "REDIS_URL",
            "MANGAASSIST_DATABASE_URL", "MANGAASSIST_REDIS_URL", "MANGAASSIST_DATA_DIR")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(MANGAASSIST_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT), LANGGRAPH_CLI_NO_ANALYTICS="1",
               LANGSMITH_TRACING="false")
    port = free_port()
    log = workdir / "server.log"
    t0 = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen([cli, "dev", "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
                                 "--no-browser", "--no-reload"],
                                cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(proc, url + "/ok", log, READY_TIMEOUT_S, "langgraph dev")
        ready_s = time.monotonic() - t0
        print(f"\nlanggraph dev ready in {ready_s:.1f} s", file=sys.stderr)
        yield {"url": url, "data_dir": data_dir, "ready_s": ready_s, "log": log}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and anything it started: its own session
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _user(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


def _blocking_calls(log: Path) -> list[str]:
    """The server log's "Blocking call to ..." lines (the API itself only names the error class)."""
    return sorted({line.split("BlockingError: ", 1)[1].strip() for line in log.read_text(errors="replace").splitlines()
                   if "BlockingError: Blocking call to" in line})


async def _wait(client, studio: dict, thread_id: str, **kwargs) -> dict:
    """runs.wait on the mangaassist graph; a failed run fails the test with its error and the blocking calls
    the server logged (e.g. "BlockingError: ... [Blocking call to ScandirIterator.__next__]")."""
    try:
        return await asyncio.wait_for(client.runs.wait(thread_id, "mangaassist", raise_error=True, **kwargs),
                                      RUN_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - becomes a test failure with the server's own words
        failure = f"run failed: {exc!r} {_blocking_calls(studio['log'])}"
    pytest.fail(failure, pytrace=False)


async def _runs_succeeded(client, thread_id: str, expected: int) -> None:
    runs = await client.runs.list(thread_id, limit=20)
    assert len(runs) == expected
    assert {r["status"] for r in runs} == {"success"}, [(r["run_id"], r["status"]) for r in runs]


async def test_blocking_call_detection_is_on(studio):
    from langgraph_sdk import get_client

    client = get_client(url=studio["url"])
    thread = await client.threads.create()
    out = await client.runs.wait(thread["thread_id"], "blocking_canary", input={}, raise_error=False)
    assert out.get("__error__", {}).get("error") == "BlockingError", out
    assert "Blocking call to time.sleep" in _blocking_calls(studio["log"])


async def test_multi_turn_thread(studio):
    from langgraph_sdk import get_client

    client = get_client(url=studio["url"])
    tid = (await client.threads.create())["thread_id"]

    first = await _wait(client, studio, tid, input=_user("Do you have Berserk?"), context={"user_id": "u_aiko"})
    assert "search" in first["intents"]
    assert any(i["title"] == "Berserk" for i in first["items"]), first["items"]
    assert "Berserk" in first["answer"]

    second = await _wait(client, studio, tid, input=_user("tell me more about the first one"), context={"user_id": "u_aiko"})
    assert second["items"] and second["items"][0]["title"] == first["items"][0]["title"], second
    assert second["answer"] and second["answer"] != first["answer"]

    state = await client.threads.get_state(tid)
    humans = [m["content"] for m in state["values"]["messages"] if m["type"] == "human"]
    assert humans == ["Do you have Berserk?", "tell me more about the first one"]
    assert len(state["values"]["messages"]) == 4
    await _runs_succeeded(client, tid, 2)


async def test_cancel_interrupt_and_resume(studio):
    from datetime import UTC, datetime

    from langgraph_sdk import get_client

    from core.settings import Settings
    from tools.backends.orders_repo import check_action
    from tools.backends.seed import open_orders_repository

    client = get_client(url=studio["url"])
    tid = (await client.threads.create())["thread_id"]
    ben = {"user_id": "u_ben"}  # the graph's Context: identity from the run, never from the chat text

    repo = await open_orders_repository(Settings(data_dir=studio["data_dir"], database_url=None))
    try:
        def cancellable(order) -> bool:
            try:
                check_action(order, "cancel", datetime.now(UTC))
            except Exception:  # noqa: BLE001 - not cancellable under the store rules
                return False
            return True

        order_id = next(o.order_id for o in await repo.list_orders("u_ben") if cancellable(o))

        await _wait(client, studio, tid, input=_user(f"please cancel order {order_id}"), context=ben)
        thread = await client.threads.get(tid)
        assert thread["status"] == "interrupted", thread["status"]
        state = await client.threads.get_state(tid)
        interrupts = [i["value"] for t in state["tasks"] for i in t.get("interrupts") or []]
        assert len(interrupts) == 1, state["tasks"]
        assert interrupts[0]["action"] == "cancel" and interrupts[0]["order_id"] == order_id
        assert order_id in interrupts[0]["prompt"]
        assert (await repo.get_order("u_ben", order_id)).status == "processing", "nothing changes before the yes"

        done = await _wait(client, studio, tid, command={"resume": "yes"}, context=ben)
        assert (await repo.get_order("u_ben", order_id)).status == "cancelled"
    finally:
        await repo.close()
    assert order_id in done["answer"] and "cancel" in done["answer"].lower(), done["answer"]
    assert any(o["order_id"] == order_id and o["status"] == "cancelled" for o in done["orders"]), done["orders"]
    assert (await client.threads.get(tid))["status"] == "idle"
    await _runs_succeeded(client, tid, 2)


async def test_cart_checkout_interrupt_and_resume(studio):
    from langgraph_sdk import get_client

    from core.settings import Settings
    from tools.backends.seed import open_orders_repository

    client = get_client(url=studio["url"])
    tid = (await client.threads.create())["thread_id"]
    chloe = {"user_id": "u_chloe"}
    repo = await open_orders_repository(Settings(data_dir=studio["data_dir"], database_url=None))
    try:
        before = len(await repo.list_orders("u_chloe"))
        added = await _wait(client, studio, tid, input=_user("カートにモンスターの1巻を入れて"), context=chloe)
        assert "カートに入れました" in added["answer"], added["answer"]
        await _wait(client, studio, tid, input=_user("check out"), context=chloe)
        assert (await client.threads.get(tid))["status"] == "interrupted"
        state = await client.threads.get_state(tid)
        interrupts = [i["value"] for t in state["tasks"] for i in t.get("interrupts") or []]
        assert [i["action"] for i in interrupts] == ["checkout"] and len(await repo.list_orders("u_chloe")) == before
        done = await _wait(client, studio, tid, command={"resume": "yes"}, context=chloe)
        assert "is placed" in done["answer"], done["answer"]
        assert len(await repo.list_orders("u_chloe")) == before + 1 and (await repo.get_cart("u_chloe")).lines == ()
    finally:
        await repo.close()
    await _runs_succeeded(client, tid, 3)
