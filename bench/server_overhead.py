"""Added latency of the HTTP and WebSocket layers over a direct ``Assistant.turn`` call (ms, median and p99).

Method: the same message sequence (fresh thread every ``len(MESSAGES)`` turns) is run three ways, interleaved turn
by turn in rotating order, the direct way on its own fresh data directory (SQLite by default; with DATABASE_URL both
ways share that database — use a scratch one):
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
from collections.abc import Mapping
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


MODEL_SETTINGS = ("MANGAASSIST_MODEL_DIR", "MANGAASSIST_ROUTER_ENCODER", "MANGAASSIST_SEARCH_ENCODER")
"""The caller's settings passed to the server: they choose which fitted router and index it loads (without them
it would fit its own into the default cache, ~10 minutes, and time out)."""


def server_env(environ: Mapping[str, str], data_dir: str) -> dict[str, str]:
    """Environment of the ``mangaassist serve`` / ``keys create`` subprocesses: ``environ`` without its
    ``MANGAASSIST_*`` settings except ``MODEL_SETTINGS``, plus PYTHONPATH (this checkout), auth on and
    ``data_dir`` as MANGAASSIST_DATA_DIR. ``environ`` is not modified."""
    env = {k: v for k, v in environ.items() if not k.startswith("MANGAASSIST_") or k in MODEL_SETTINGS}
    env.update({"PYTHONPATH": str(ROOT), "MANGAASSIST_AUTH": "on", "MANGAASSIST_DATA_DIR": data_dir})
    return env


def start_server(env: dict) -> tuple[subprocess.Popen, str]:
    """`mangaassist serve` on a free loopback port; returns (process, base URL) once /v1/ready answers."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--log-level", "warning"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(1500):
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


async def measure(plan: list[tuple[int, str]], direct_dir: str, base: str, key: str) -> dict[str, list[float]]:
    """Run every turn of ``plan`` three ways, interleaved (direct, HTTP, WS in rotating order) so that drift of
    the machine affects all ways alike. Returns ms lists: direct, http, ws, http_over, ws_over."""
    from websockets.asyncio.client import connect

    from core.settings import Settings
    from graphs.app import Assistant

    res: dict[str, list[float]] = {k: [] for k in ("direct", "http", "ws", "http_over", "ws_over")}
    headers = {"Authorization": f"Bearer {key}"}
    ws_base = base.replace("http://", "ws://")
    async with AsyncExitStack() as stack:
        assistant = await Assistant.open(Settings(data_dir=Path(direct_dir)), stack)
        c = await stack.enter_async_context(httpx.AsyncClient(base_url=base, headers=headers, timeout=60))
        http_threads: dict[int, str] = {}
        ws_threads: dict[int, str] = {}
        sockets: dict[int, object] = {}

        async def direct(t: int, text: str) -> None:
            t0 = time.perf_counter()
            await assistant.turn(text, thread_id=f"direct-{t}", user_id=USER)
            res["direct"].append((time.perf_counter() - t0) * 1000)

        async def http(t: int, text: str) -> None:
            if t not in http_threads:
                http_threads[t] = (await c.post("/v1/threads")).json()["thread_id"]
            t0 = time.perf_counter()
            r = await c.post(f"/v1/threads/{http_threads[t]}/messages", json={"text": text})
            ms = (time.perf_counter() - t0) * 1000
            r.raise_for_status()
            res["http"].append(ms)
            res["http_over"].append(ms - r.json()["timings_ms"]["total"])

        async def ws(t: int, text: str) -> None:
            if t not in sockets:
                ws_threads[t] = (await c.post("/v1/threads")).json()["thread_id"]
                sockets[t] = await stack.enter_async_context(
                    connect(f"{ws_base}/v1/ws/threads/{ws_threads[t]}?api_key={key}"))
            sock = sockets[t]
            t0 = time.perf_counter()
            await sock.send(json.dumps({"type": "message", "text": text}))
            while True:
                frame = json.loads(await sock.recv())
                if frame["type"] in ("final", "error"):
                    break
            ms = (time.perf_counter() - t0) * 1000
            if frame["type"] == "error":
                raise RuntimeError(frame)
            res["ws"].append(ms)
            res["ws_over"].append(ms - frame["timings_ms"]["total"])

        ways = [direct, http, ws]
        for w in ways:  # warm-up, not measured
            await w(-1, "warm up")
        for k in res:
            res[k].clear()
        for i, (t, text) in enumerate(plan):
            for w in ways[i % 3:] + ways[:i % 3]:
                await w(t, text)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=50)
    args = ap.parse_args()
    plan = _plan(args.turns)
    with tempfile.TemporaryDirectory() as d1, tempfile.TemporaryDirectory() as d2:
        env = server_env(os.environ, d2)
        key = subprocess.run([sys.executable, "-m", "cli.main", "keys", "create", "--user", USER], cwd=ROOT, env=env,
                             check=True, capture_output=True, text=True).stdout.strip()
        proc, base = start_server(env)
        try:
            m = asyncio.run(measure(plan, d1, base, key))
        finally:
            proc.terminate()
            proc.wait(15)
    direct, http_wall, ws_wall, http_over, ws_over = (m["direct"], m["http"], m["ws"], m["http_over"], m["ws_over"])
    results = {"direct": _stats(direct), "http": _stats(http_wall), "ws": _stats(ws_wall),
               "http_minus_server_graph": _stats(http_over), "ws_minus_server_graph": _stats(ws_over)}
    results["http_minus_direct_paired"] = _stats([h - d for h, d in zip(http_wall, direct, strict=True)])
    results["ws_minus_direct_paired"] = _stats([w - d for w, d in zip(ws_wall, direct, strict=True)])
    d = results["direct"]["median_ms"]
    results["http_added_median_ms"] = round(results["http"]["median_ms"] - d, 2)
    results["ws_added_median_ms"] = round(results["ws"]["median_ms"] - d, 2)
    backend = "postgres" if os.environ.get("DATABASE_URL") else "sqlite"
    print(f"server overhead, {args.turns} turns per way, backend={backend}")
    print(f"{'way':<26}{'median ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for name in ("direct", "http", "ws", "http_minus_direct_paired", "ws_minus_direct_paired",
                 "http_minus_server_graph", "ws_minus_server_graph"):
        r = results[name]
        print(f"{name:<26}{r['median_ms']:>10.2f}{r['p99_ms']:>10.2f}{r['mean_ms']:>10.2f}")
    print(f"added median: HTTP {results['http_added_median_ms']:+.2f} ms, WS {results['ws_added_median_ms']:+.2f} ms")
    print(json.dumps({"bench": "server_overhead", "turns": args.turns, "backend": backend, **results}))


if __name__ == "__main__":
    main()
