"""Fault-suite fixtures: a DEDICATED PostgreSQL cluster and a dedicated redis-server started by the suite on
their own free loopback ports and temp directories (so stopping them never disturbs other tests), and real
`mangaassist serve` processes on them (see tests/e2e/conftest.py for the process helpers)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import PG_BIN, _unavailable, _with_db
from tests.e2e.conftest import ROOT, Server, free_port, start_server, stop_server

__all__ = ["PgCluster", "RedisServer", "Server", "fresh_env", "kill9", "start_server", "stop_server"]


def pytest_configure(config):
    config.addinivalue_line("markers", "faults: injects real faults (kill -9, database/redis outages) into real processes")


def _as_pg(args: list[str], **kw) -> subprocess.CompletedProcess:
    """Run a Postgres binary as the `postgres` OS user when we are root (initdb/pg_ctl refuse root)."""
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(args, capture_output=True, text=True, **kw)


@dataclass
class PgCluster:
    """A throwaway PostgreSQL cluster: ``initdb`` in a temp dir owned by ``postgres``, listening on 127.0.0.1:port,
    trust auth, fsync off. ``stop()``/``start()`` stop and start its postmaster with ``pg_ctl`` (the fault)."""

    port: int
    dir: Path
    url: str = ""

    @classmethod
    def create(cls) -> PgCluster:
        if not (PG_BIN / "initdb").exists():
            _unavailable("PostgreSQL binaries (initdb)")
        d = Path(tempfile.mkdtemp(prefix="mangaassist-faults-pg-"))
        if os.geteuid() == 0:
            shutil.chown(d, "postgres", "postgres")
        d.chmod(0o700)
        r = _as_pg([str(PG_BIN / "initdb"), "-D", str(d / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                    "--locale=C.UTF-8"], timeout=120)
        if r.returncode:
            pytest.fail(f"initdb failed: {r.stderr[-2000:]}")
        c = cls(free_port(), d)
        c.url = f"postgresql://postgres@127.0.0.1:{c.port}/postgres"
        c.start()
        return c

    def start(self) -> None:
        """Start the postmaster and wait until it accepts connections (pg_ctl -w)."""
        r = _as_pg([str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-l", str(self.dir / "server.log"), "-w",
                    "-t", "60", "-o", f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off "
                    "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200", "start"], timeout=90)
        if r.returncode:
            raise RuntimeError(f"pg_ctl start failed: {r.stderr}\n{(self.dir / 'server.log').read_text()[-2000:]}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the postmaster (``fast``: disconnect clients and shut down; ``immediate``: like a crash)."""
        _as_pg([str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-m", mode, "-w", "stop"], timeout=60)

    def create_db(self) -> str:
        """A fresh database on this cluster; returns its URL."""
        import psycopg
        from psycopg import sql

        name = f"fault_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return _with_db(self.url, name)

    def backends(self, dsn: str) -> int:
        """Client backends connected to the database of ``dsn`` (pg_stat_activity), this probe excluded."""
        import psycopg

        db = dsn.rsplit("/", 1)[1]
        with psycopg.connect(self.url, autocommit=True) as conn:
            (n,) = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                                (db,)).fetchone()
        return int(n)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class RedisServer:
    """A dedicated redis-server (no persistence) on a free loopback port; ``stop()`` kills it, ``start()`` restarts."""

    port: int
    dir: Path
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def create(cls) -> RedisServer:
        if not shutil.which("redis-server"):
            _unavailable("redis-server")
        r = cls(free_port(), Path(tempfile.mkdtemp(prefix="mangaassist-faults-redis-")))
        r.start()
        return r

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                                      "--appendonly", "no", "--dir", str(self.dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        for _ in range(100):
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def fresh_env(dsn: str, redis_url: str | None, data_dir: Path, **extra: str) -> dict:
    """Environment of a fault-suite server: auth on, Postgres ``dsn``, optional Redis, its own data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MANGAASSIST_")
           and k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"DATABASE_URL": dsn, "MANGAASSIST_AUTH": "on", "MANGAASSIST_DATA_DIR": str(data_dir),
                "PYTHONPATH": str(ROOT), **extra})
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def kill9(server: Server) -> None:
    """SIGKILL the server process (no shutdown hooks run) and reap it; no-op when it already exited."""
    if server.proc.poll() is not None:
        return
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait(10)


def key_for(server: Server, user: str) -> dict:
    """Authorization headers with a fresh key for ``user``."""
    return {"Authorization": f"Bearer {server.key(user)}"}


def new_thread(server: Server, headers: dict) -> str:
    r = httpx.post(server.base + "/v1/threads", headers=headers, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()["thread_id"]


@pytest.fixture(scope="session")
def pg_cluster():
    """The fault suite's own PostgreSQL cluster (stopped and deleted at the end of the session)."""
    c = PgCluster.create()
    yield c
    c.destroy()


@pytest.fixture(scope="session")
def redis_server():
    """The fault suite's own redis-server."""
    r = RedisServer.create()
    yield r
    r.destroy()


@pytest.fixture(scope="module")
def fault_dsn(pg_cluster) -> str:
    """A fresh database on the dedicated cluster for one test module."""
    return pg_cluster.create_db()


@pytest.fixture(scope="module")
def fault_server(pg_cluster, fault_dsn, redis_server, tmp_path_factory):
    """One `mangaassist serve` on the module's database and the dedicated Redis."""
    env = fresh_env(fault_dsn, redis_server.url, tmp_path_factory.mktemp("fault-data"))
    srv = start_server(env, tmp_path_factory.mktemp("fault-logs") / "server.log")
    yield srv
    if srv.proc.poll() is None:
        stop_server(srv)
