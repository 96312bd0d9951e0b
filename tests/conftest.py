"""Shared test fixtures: embedded-default settings, and real PostgreSQL/Redis servers for integration tests.

Servers come from TEST_DATABASE_URL / TEST_REDIS_URL, or are started with scripts/services.sh when the
binaries exist (they are left running for later sessions; stop them with `bash scripts/services.sh stop`).
When neither is possible the tests are skipped locally but fail when the CI environment variable is set.
Every Postgres test gets a fresh database (CREATE DATABASE test_<uuid>, dropped afterwards); every
Redis test gets a unique key prefix whose keys are deleted afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ROOT / "scripts" / "services.sh"
PG_BIN = Path(os.environ.get("MANGAASSIST_PG_BIN", "/usr/lib/postgresql/15/bin"))
_ENV_VARS = ("DATABASE_URL", "REDIS_URL", "MANGAASSIST_DATABASE_URL", "MANGAASSIST_REDIS_URL")


def _unavailable(what: str) -> None:
    """Skip locally; fail in CI, where the services must exist."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI but is not available", pytrace=False)
    pytest.skip(f"{what} not available (set TEST_DATABASE_URL / TEST_REDIS_URL or install the servers)")


def _services(action: str, service: str) -> dict[str, str]:
    """Run scripts/services.sh <action> <service> and return the URLs its `env` command prints."""
    subprocess.run(["bash", str(SERVICES), action, service], check=True, capture_output=True, text=True, timeout=120)
    out = subprocess.run(["bash", str(SERVICES), "env"], check=True, capture_output=True, text=True).stdout
    env = {}
    for line in out.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = value
    return env


def _with_db(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


def pytest_sessionstart(session):
    """Load, or on a clean machine train, the local router and the search index into the shared model cache
    before any test runs.

    Tests and the servers the e2e tests start as subprocesses all load them from ``settings.model_dir`` (the
    router from data/models when the shipped one is current). A first build of the index (a few seconds from
    the shipped title embeddings), or a fit of the router when the shipped one does not apply (minutes), is
    done here once, not inside a subprocess whose readiness wait would time out.
    """
    import fcntl

    from core.settings import get_settings

    settings = get_settings()
    settings.model_dir.mkdir(parents=True, exist_ok=True)
    # Two test sessions started at once on a clean machine would both fit the router and embed the catalog
    # (minutes of CPU each); the second waits for the first under this lock, then loads what it saved.
    with open(settings.model_dir / "test-session.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        _load_or_fit_models(settings)


def _load_or_fit_models(settings) -> None:
    """The router and the agents' search index, loaded from ``settings.model_dir`` or fitted into it."""
    import sys
    import time

    from tools.backends.models.local_router import LocalRouter

    t = time.perf_counter()
    LocalRouter.from_settings(settings)  # the shipped one, a cached one, or a fit (minutes, with progress)
    if time.perf_counter() - t > 10:
        print(f"\nrouter fitted into {settings.model_dir} in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    # The agents' search index, with the katakana LoanwordMatcher (title embeddings from data/models).
    from tools.backends.catalog import load_catalog
    from tools.backends.factory import shared_index

    t = time.perf_counter()
    shared_index(load_catalog(), settings.model_dir, settings.search_encoder)
    if time.perf_counter() - t > 10:
        print(f"search index built in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)


# ---- settings -------------------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path, monkeypatch):
    """``core.settings.Settings`` with ``data_dir=tmp_path`` and no DATABASE_URL/REDIS_URL: embedded SQLite + in-process cache."""
    from core.settings import Settings

    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    s = Settings(data_dir=tmp_path)
    assert s.database_url is None and s.redis_url is None
    return s


# ---- PostgreSQL -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """URL of a PostgreSQL server for the session (maintenance database ``postgres``)."""
    import psycopg

    url = os.environ.get("TEST_DATABASE_URL")
    if not url and (PG_BIN / "pg_ctl").exists():
        try:
            url = _services("start", "pg")["TEST_DATABASE_URL"]
        except (subprocess.SubprocessError, KeyError) as exc:
            _unavailable(f"PostgreSQL (services.sh failed: {exc})")
    if not url:
        _unavailable("PostgreSQL")
    try:
        with psycopg.connect(url, connect_timeout=5):
            pass
    except psycopg.OperationalError as exc:
        _unavailable(f"PostgreSQL at {url} ({exc})")
    return url


@contextmanager
def fresh_database(server_url: str):
    """Create an empty database ``test_<uuid hex>`` on ``server_url``, yield its URL, drop it (FORCE) afterwards."""
    import psycopg
    from psycopg import sql

    name = f"test_{uuid.uuid4().hex}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_db(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def pg_dsn(pg_server_url):
    """URL of a fresh, empty database for this test only (``test_<uuid hex>``; dropped with FORCE afterwards)."""
    with fresh_database(pg_server_url) as url:
        yield url


@pytest.fixture
async def pg_pool(pg_dsn):
    """An open ``psycopg_pool.AsyncConnectionPool`` on ``pg_dsn`` configured like the server's shared pool
    (kwargs autocommit=True, row_factory=dict_row, prepare_threshold=0; 1-8 connections)."""
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    pool = AsyncConnectionPool(
        pg_dsn, min_size=1, max_size=8, open=False,
        kwargs={"autocommit": True, "row_factory": dict_row, "prepare_threshold": 0},
    )
    await pool.open(wait=True, timeout=30)
    try:
        yield pool
    finally:
        await pool.close()


# ---- Redis ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server_url() -> str:
    """URL of a Redis server for the session."""
    import redis

    url = os.environ.get("TEST_REDIS_URL")
    if not url and shutil.which("redis-server"):
        try:
            url = _services("start", "redis")["TEST_REDIS_URL"]
        except (subprocess.SubprocessError, KeyError) as exc:
            _unavailable(f"Redis (services.sh failed: {exc})")
    if not url:
        _unavailable("Redis")
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        _unavailable(f"Redis at {url} ({exc})")
    return url


@pytest.fixture
def redis_url(redis_server_url) -> str:
    """The Redis URL for this test; use it together with ``redis_prefix`` so tests never see each other's keys."""
    return redis_server_url


@pytest.fixture
def redis_prefix(redis_server_url):
    """A unique key prefix (``test:<uuid hex>:``); every key under it is deleted after the test."""
    import redis

    prefix = f"test:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(redis_server_url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(scope="session")
def catalog():
    """The shipped catalog (11,815 titles), loaded once per test session; read-only."""
    from tools.backends.catalog import load_catalog

    return load_catalog()


@pytest.fixture(scope="session")
def index(catalog):
    """The in-process HybridIndex over the shipped catalog, built once per test session; read-only."""
    from tools.backends.search_index import HybridIndex

    return HybridIndex.build(catalog)
