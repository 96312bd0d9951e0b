"""Added latency of the HTTP and WebSocket layers over a direct ``Assistant.turn`` call (ms, median and p99).

Method: the same message sequence (fresh thread every ``len(MESSAGES)`` turns) is run three ways, each on its own
fresh data directory (SQLite by default; Postgres when DATABASE_URL is set, one new database per way is NOT made —
use a scratch database):
1. direct — ``Assistant.turn`` in this process;
2. HTTP   — ``POST /v1/threads/{id}/messages`` to a ``mangaassist serve`` subprocess on 127.0.0.1 (auth on, one key);
3. WS     — ``{"type": "message"}`` on ``/v1/ws/threads/{id}`` of the same server, timed until the final frame.
For HTTP and WS the per-request overhead is also computed against the graph time the server itself measured
(``timings_ms.total`` of the same turn), which cancels the run-to-run variance of the graph.
Prints a table and one JSON line. Usage: ``python -m bench.server_overhead [--turns 50]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = ("hello", "Do you have One Piece?", "Who wrote Monster?", "What is your return policy?",
            "show my orders", "ワンピースはありますか？", "thanks!")
USER = "u_ben"


def _stats(xs: list[float]) -> dict:
    return {"n": len(xs), "median_ms": round(statistics.median(xs), 2),
            "p99_ms": round(float(np.percentile(xs, 99)), 2), "mean_ms": round(statistics.fmean(xs), 2)}


def _plan(turns: int) -> list[tuple[int, str]]:
    """(thread number, message) for each turn."""
    return [(i // len(MESSAGES), MESSAGES[i % len(MESSAGES)]) for i in range(turns)]


async def run_direct(plan: list[tuple[int, str]], env: dict) -> list[float]:
    """Wall time (ms) of ``Assistant.turn`` per turn, in this process."""
    from core.settings import Settings
    from graphs.app import Assistant

    settings = Settings(data_dir=Path(env["MANGAASSIST_DATA_DIR"]))
    out = []
    async with AsyncExitStack() as stack:
        assistant = await Assistant.open(settings, stack)
        await assistant.turn("warm up", thread_id="warm", user_id=USER)
        for t, text in plan:
            t0 = time.perf_counter()
            await assistant.turn(text, thread_id=f"direct-{t}", user_id=USER)
            out.append((time.perf_counter() - t0) * 1000)
    return out


def start_server(env: dict) -> tuple[subprocess.Popen, str]:
    """`mangaassist serve` on a free loopback port; returns (process, base URL) once /v1/ready answers."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--log-level", "warning"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(base + "/v1/ready", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError("server exited during start-up")
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server not ready")


async def run_http(plan, base: str, headers: dict) -> tuple[list[float], list[float]]:
    """(client wall ms, client ms minus the server's graph time) per turn."""
    wall, over = [], []
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as c:
        threads = {}
        for t, _ in plan:
            if t not in threads:
                threads[t] = (await c.post("/v1/threads")).json()["thread_id"]
        warm = (await c.post("/v1/threads")).json()["thread_id"]
        await c.post(f"/v1/threads/{warm}/messages", json={"text": "warm up"})
        for t, text in plan:
            t0 = time.perf_counter()
            r = await c.post(f"/v1/threads/{threads[t]}/messages", json={"text": text})
            ms = (time.perf_counter() - t0) * 1000
            r.raise_for_status()
            wall.append(ms)
            over.append(ms - r.json()["timings_ms"]["total"])
    return wall, over


async def run_ws(plan, base: str, headers: dict, key: str) -> tuple[list[float], list[float]]:
    """(send → final frame ms, that minus the server's graph time) per turn; one socket per thread."""
    from websockets.asyncio.client import connect

    wall, over = [], []
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as c:
        threads: dict[int, str] = {}
        for t, _ in plan:
            if t not in threads:
                threads[t] = (await c.post("/v1/threads")).json()["thread_id"]
    ws_base = base.replace("http://", "ws://")
    sockets: dict[int, object] = {}
    try:
        for t, text in plan:
            if t not in sockets:
                sockets[t] = await connect(f"{ws_base}/v1/ws/threads/{threads[t]}?api_key={key}").__aenter__()
            ws = sockets[t]
            t0 = time.perf_counter()
            await ws.send(json.dumps({"type": "message", "text": text}))
            while True:
                frame = json.loads(await ws.recv())
                if frame["type"] in ("final", "error"):
                    break
            ms = (time.perf_counter() - t0) * 1000
            if frame["type"] == "error":
                raise RuntimeError(frame)
            wall.append(ms)
            over.append(ms - frame["timings_ms"]["total"])
    finally:
        for ws in sockets.values():
            await ws.close()
    return wall, over


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=50)
    args = ap.parse_args()
    plan = _plan(args.turns)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("MANGAASSIST_")}
    base_env.update({"PYTHONPATH": str(ROOT), "MANGAASSIST_AUTH": "on"})
    results = {}
    with tempfile.TemporaryDirectory() as d1, tempfile.TemporaryDirectory() as d2:
        direct = asyncio.run(run_direct(plan, {**base_env, "MANGAASSIST_DATA_DIR": d1}))
        env = {**base_env, "MANGAASSIST_DATA_DIR": d2}
        key = subprocess.run([sys.executable, "-m", "cli.main", "keys", "create", "--user", USER], cwd=ROOT, env=env,
                             check=True, capture_output=True, text=True).stdout.strip()
        proc, base = start_server(env)
        try:
            headers = {"Authorization": f"Bearer {key}"}
            http_wall, http_over = asyncio.run(run_http(plan, base, headers))
            ws_wall, ws_over = asyncio.run(run_ws(plan, base, headers, key))
        finally:
            proc.terminate()
            proc.wait(15)
    results = {"direct": _stats(direct), "http": _stats(http_wall), "ws": _stats(ws_wall),
               "http_minus_server_graph": _stats(http_over), "ws_minus_server_graph": _stats(ws_over)}
    d = results["direct"]["median_ms"]
    results["http_added_median_ms"] = round(results["http"]["median_ms"] - d, 2)
    results["ws_added_median_ms"] = round(results["ws"]["median_ms"] - d, 2)
    backend = "postgres" if os.environ.get("DATABASE_URL") else "sqlite"
    print(f"server overhead, {args.turns} turns per way, backend={backend}")
    print(f"{'way':<26}{'median ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for name in ("direct", "http", "ws", "http_minus_server_graph", "ws_minus_server_graph"):
        r = results[name]
        print(f"{name:<26}{r['median_ms']:>10.2f}{r['p99_ms']:>10.2f}{r['mean_ms']:>10.2f}")
    print(f"added median: HTTP {results['http_added_median_ms']:+.2f} ms, WS {results['ws_added_median_ms']:+.2f} ms")
    print(json.dumps({"bench": "server_overhead", "turns": args.turns, "backend": backend, **results}))


if __name__ == "__main__":
    main()
