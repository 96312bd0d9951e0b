"""End-to-end fixtures: real `mangaassist serve` processes on 127.0.0.1 free ports, on a real Postgres database
(one per test module) and a real Redis, with API keys created through `mangaassist keys create`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running server process: ``base`` (http://127.0.0.1:port), ``ws_base`` (ws://...), its env and log path."""

    base: str
    ws_base: str
    env: dict
    proc: subprocess.Popen
    log: Path

    def cli(self, *args: str) -> str:
        """Run `mangaassist <args>` with the server's environment; returns stdout (raises on exit != 0)."""
        return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=self.env, check=True,
                              capture_output=True, text=True, timeout=120).stdout

    def key(self, user: str) -> str:
        """A fresh API key for ``user`` (through `mangaassist keys create`)."""
        return self.cli("keys", "create", "--user", user).strip()


def wait_until_ready(proc: subprocess.Popen, url: str, log: Path, timeout_s: float, what: str = "server") -> float:
    """Poll ``url`` until it answers 200; returns the seconds waited. Raises RuntimeError (with the tail of ``log``)
    when ``proc`` exits first or ``timeout_s`` passes; the caller stops the process."""
    t0 = time.monotonic()
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return time.monotonic() - t0
        except httpx.HTTPError:
            pass
        if time.monotonic() - t0 > timeout_s:
            raise RuntimeError(f"{what} not ready within {timeout_s} s:\n{log.read_text()[-4000:]}")
        time.sleep(0.3)


def start_server(env: dict, log: Path, timeout_s: float = 120.0) -> Server:
    """Start `mangaassist serve` on a free loopback port and wait for /v1/ready."""
    port = free_port()
    fh = open(log, "w")
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(proc, base + "/v1/ready", log, timeout_s)
    except RuntimeError:
        proc.kill()
        raise
    return Server(base, f"ws://127.0.0.1:{port}", env, proc, log)


def stop_server(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(15)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait(5)


@pytest.fixture(scope="module")
def module_pg_dsn(pg_server_url):
    """A fresh Postgres database for one test module (the server is module-scoped; ``pg_dsn`` is per test)."""
    from tests.conftest import fresh_database

    with fresh_database(pg_server_url) as url:
        yield url


@pytest.fixture(scope="module")
def server_env(module_pg_dsn, redis_server_url, tmp_path_factory) -> dict:
    """Environment of the module's servers: Postgres, Redis, auth on, a tmp data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MANGAASSIST_")}
    env.update({"DATABASE_URL": module_pg_dsn, "REDIS_URL": redis_server_url, "MANGAASSIST_AUTH": "on",
                "MANGAASSIST_DATA_DIR": str(tmp_path_factory.mktemp("e2e-data")), "PYTHONPATH": str(ROOT)})
    return env


@pytest.fixture(scope="module")
def server(server_env, tmp_path_factory):
    """One `mangaassist serve` for the module."""
    srv = start_server(server_env, tmp_path_factory.mktemp("logs") / "server-a.log")
    yield srv
    stop_server(srv)
