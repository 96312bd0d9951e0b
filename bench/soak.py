"""Soak benchmark: N concurrent chat sessions for D seconds against a real `mangaassist serve` over HTTP on
127.0.0.1; reports errors, p50/p99 turn latency per minute, server RSS and open database connections at start
and end (flat memory and connections = no leak)."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MESSAGES = (
    "Do you have One Piece?", "recommend something like Monster", "what is your return policy?",
    "show my orders", "find Berserk volume 3", "ワンピースはありますか？", "how much is shipping to Osaka?",
    "any dark fantasy like Vinland Saga?", "hello!", "thanks, that's all",
)
"""The customer messages each session cycles through (search, recommend, faq, order, chitchat; EN and JA)."""


@dataclass
class Sample:
    """One turn: start offset (s since the soak began), latency (ms), HTTP status (0 = transport error)."""

    t: float
    ms: float
    status: int


@dataclass
class SoakReport:
    """What ``run_soak`` measured. ``minutes``: [{minute, turns, errors, p50_ms, p99_ms}]."""

    sessions: int
    seconds: float
    turns: int = 0
    errors: int = 0
    error_statuses: dict[str, int] = field(default_factory=dict)
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    turns_per_s: float = 0.0
    minutes: list[dict] = field(default_factory=list)
    rss_mb_start: float | None = None
    rss_mb_end: float | None = None
    db_connections_start: int | None = None
    db_connections_end: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def _loopback_only(url: str) -> None:
    host = httpx.URL(url).host
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"the soak sends traffic to loopback only (got {host!r})")


def rss_mb(pid: int | None) -> float | None:
    """Resident set size of process ``pid`` in MiB (psutil), children included (uvicorn workers); None if gone."""
    if pid is None:
        return None
    import psutil

    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
        return round(sum(x.memory_info().rss for x in procs) / 2**20, 1)
    except psutil.Error:
        return None


def db_connections(dsn: str | None) -> int | None:
    """Client backends connected to the database of ``dsn`` (pg_stat_activity, this probe excluded)."""
    if not dsn or not dsn.startswith("postgres"):
        return None
    import psycopg

    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        (n,) = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                            "AND pid <> pg_backend_pid()").fetchone()
    return int(n)


async def _session(client: httpx.AsyncClient, key: str, offset: int, t0: float, until: float,
                   out: list[Sample]) -> None:
    h = {"Authorization": f"Bearer {key}"}
    r = await client.post("/v1/threads", headers=h)
    r.raise_for_status()
    tid = r.json()["thread_id"]
    for text in itertools.islice(itertools.cycle(MESSAGES), offset, None):
        if time.monotonic() >= until:
            return
        s = time.monotonic()
        try:
            status = (await client.post(f"/v1/threads/{tid}/messages", json={"text": text}, headers=h)).status_code
        except httpx.HTTPError:
            status = 0
        out.append(Sample(s - t0, (time.monotonic() - s) * 1000, status))


def summarise(samples: list[Sample], sessions: int, seconds: float) -> SoakReport:
    """Overall and per-minute figures from the samples (errors = any status other than 200)."""
    rep = SoakReport(sessions, seconds)
    rep.turns = len(samples)
    bad = [s for s in samples if s.status != 200]
    rep.errors = len(bad)
    for s in bad:
        rep.error_statuses[str(s.status)] = rep.error_statuses.get(str(s.status), 0) + 1
    ok = np.array([s.ms for s in samples if s.status == 200])
    if ok.size:
        rep.p50_ms, rep.p99_ms = (round(float(x), 1) for x in np.percentile(ok, [50, 99]))
    rep.turns_per_s = round(rep.turns / seconds, 1) if seconds else 0.0
    for minute in range(int(np.ceil(seconds / 60)) or 1):
        win = [s for s in samples if minute * 60 <= s.t < (minute + 1) * 60]
        ms = np.array([s.ms for s in win if s.status == 200])
        rep.minutes.append({"minute": minute + 1, "turns": len(win), "errors": sum(s.status != 200 for s in win),
                            "p50_ms": round(float(np.percentile(ms, 50)), 1) if ms.size else None,
                            "p99_ms": round(float(np.percentile(ms, 99)), 1) if ms.size else None})
    return rep


async def run_soak(base_url: str, keys: list[str], sessions: int, seconds: float, *, server_pid: int | None = None,
                   dsn: str | None = None) -> SoakReport:
    """Hold ``sessions`` concurrent sessions (one thread each, key ``keys[i % len(keys)]``, one turn at a time)
    for ``seconds`` against ``base_url`` (loopback only; ValueError otherwise) and return the SoakReport."""
    _loopback_only(base_url)
    if sessions < 1 or seconds <= 0 or not keys:
        raise ValueError("need sessions >= 1, seconds > 0 and at least one key")
    rss0, db0 = rss_mb(server_pid), db_connections(dsn)
    samples: list[Sample] = []
    limits = httpx.Limits(max_connections=sessions + 4, max_keepalive_connections=sessions + 4)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        t0 = time.monotonic()
        await asyncio.gather(*(_session(client, keys[i % len(keys)], i, t0, t0 + seconds, samples)
                               for i in range(sessions)))
        elapsed = time.monotonic() - t0
    rep = summarise(samples, sessions, elapsed)
    rep.rss_mb_start, rep.db_connections_start = rss0, db0
    rep.rss_mb_end, rep.db_connections_end = rss_mb(server_pid), db_connections(dsn)
    return rep


# ---- a server of our own ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnServer:
    """`mangaassist serve` started on a free 127.0.0.1 port with the caller's environment (DATABASE_URL, REDIS_URL,
    profile), auth on and rate limiting off (the soak measures the service, not the limiter); ``keys(n)`` creates
    API keys for users soak_0..soak_{n-1} directly in the accounts tables. Context manager; logs to a temp file."""

    def __init__(self, env: dict[str, str] | None = None, ready_timeout_s: float = 180.0):
        self.env = dict(env or os.environ)
        self.env.update({"MANGAASSIST_AUTH": "on", "MANGAASSIST_RATE_LIMIT_PER_S": "0", "PYTHONPATH": str(ROOT)})
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ready_timeout_s = ready_timeout_s
        self.proc: subprocess.Popen | None = None
        self.log = Path(tempfile.mkstemp(prefix="mangaassist-soak-", suffix=".log")[1])

    def __enter__(self) -> OwnServer:
        fh = open(self.log, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1", "--port",
                                      str(self.port), "--log-level", "warning"], cwd=ROOT, env=self.env, stdout=fh,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.base + "/v1/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.__exit__()
        raise RuntimeError(f"server not ready within {self.ready_timeout_s} s (log: {self.log})")

    def __exit__(self, *exc: Any) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def keys(self, n: int) -> list[str]:
        """n fresh API keys (users soak_0...), created in the server's accounts store."""
        out = subprocess.run([sys.executable, "-c", _KEYS_SCRIPT, str(n)], cwd=ROOT, env=self.env, check=True,
                             capture_output=True, text=True, timeout=120).stdout
        return out.split()


_KEYS_SCRIPT = """
import asyncio, sys
from contextlib import AsyncExitStack
from core.settings import get_settings
from server.accounts import open_accounts
from tools.backends.persistence import open_postgres_pool

async def main(n):
    s = get_settings()
    async with AsyncExitStack() as stack:
        pool = None
        if s.database_url:
            pool = await open_postgres_pool(s.database_url, 1, 2)
            stack.push_async_callback(pool.close)
        acc = await open_accounts(s, pool=pool)
        stack.push_async_callback(acc.close)
        for i in range(n):
            print((await acc.create_key(f"soak_{i}", "soak"))[0])

asyncio.run(main(int(sys.argv[1])))
"""


def soak_own_server(sessions: int, seconds: float, env: dict[str, str] | None = None, users: int = 16) -> SoakReport:
    """Start our own server (``OwnServer``), soak it, stop it; the database probed is the server's DATABASE_URL."""
    with OwnServer(env) as srv:
        keys = srv.keys(min(users, sessions))
        return asyncio.run(run_soak(srv.base, keys, sessions, seconds, server_pid=srv.proc.pid,
                                    dsn=srv.env.get("DATABASE_URL") or srv.env.get("MANGAASSIST_DATABASE_URL")))


def render_table(rep: SoakReport) -> Any:
    """A rich Table: one row per minute plus the totals."""
    from rich.table import Table

    t = Table(title=f"soak: {rep.sessions} sessions x {rep.seconds:.0f} s — {rep.turns} turns, {rep.errors} errors, "
                    f"RSS {rep.rss_mb_start} → {rep.rss_mb_end} MiB, DB connections {rep.db_connections_start} → "
                    f"{rep.db_connections_end}")
    for col in ("minute", "turns", "errors", "p50 ms", "p99 ms"):
        t.add_column(col, justify="right")
    for m in rep.minutes:
        t.add_row(str(m["minute"]), str(m["turns"]), str(m["errors"]), str(m["p50_ms"]), str(m["p99_ms"]))
    t.add_row("all", str(rep.turns), str(rep.errors), str(rep.p50_ms), str(rep.p99_ms))
    return t
