"""A short soak (8 sessions x 20 s) through `bench.soak` against a real server on the suite's Postgres and Redis,
so the soak keeps working in CI: zero errors, per-minute figures, RSS and database connections reported."""

from __future__ import annotations

import pytest

from bench.soak import soak_own_server
from tests.faults.conftest import fresh_env

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def test_short_soak_has_no_errors_and_bounded_connections(pg_cluster, redis_server, tmp_path):
    dsn = pg_cluster.create_db()
    rep = soak_own_server(8, 20.0, env=fresh_env(dsn, redis_server.url, tmp_path / "data"), users=4)
    print("\n", rep.as_dict())
    assert rep.turns >= 40 and rep.errors == 0, rep.error_statuses
    assert rep.minutes[0]["p50_ms"] and rep.p99_ms >= rep.p50_ms > 0
    assert rep.rss_mb_start and rep.rss_mb_end and rep.rss_mb_end < rep.rss_mb_start * 1.5
    assert rep.db_connections_end is not None and rep.db_connections_end <= 10 + 1  # pool max_size
