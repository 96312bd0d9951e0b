#!/usr/bin/env bash
# Local services for MangaAssist: PostgreSQL 15 for tests on 127.0.0.1:54329, Redis on 127.0.0.1:63799 and,
# for benchmarks, a second PostgreSQL 15 with default durability on 127.0.0.1:54330.
#
# Usage: bash scripts/services.sh start|stop|status|env [all|pg|redis|pg-durable]
#   start   initdb (first time) and start the servers; idempotent (a running server is left alone).
#           `all` (the default) is pg + redis, what the tests use; pg-durable starts only when named.
#   stop    stop the servers this script started (pg_ctl stop; redis SHUTDOWN NOSAVE); `all` stops
#           pg-durable too when it runs
#   status  print whether each server answers
#   env     print the exports: TEST_DATABASE_URL and TEST_REDIS_URL (tests), BENCH_DATABASE_URL (benchmarks)
#
# pg (tests) runs with fsync, synchronous_commit and full_page_writes off: throwaway data, fast commits.
# Its figures are not those of a real server, so every published benchmark figure is measured on
# pg-durable, which runs with PostgreSQL's defaults (fsync, synchronous_commit, full_page_writes on) in
# its own data directory.
# Postgres runs as the `postgres` OS user (when invoked as root) in a directory it owns, listens only
# on 127.0.0.1 with trust authentication: for local tests, benchmarks and CI only, never for real data.
# Redis is daemonized without persistence (no RDB, no AOF).
set -euo pipefail

PG_BIN="${MANGAASSIST_PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_DIR="${MANGAASSIST_PG_DIR:-/tmp/mangaassist-pg}"
PG_PORT="${MANGAASSIST_PG_PORT:-54329}"
PG_DURABLE_DIR="${MANGAASSIST_PG_DURABLE_DIR:-/tmp/mangaassist-pg-durable}"
PG_DURABLE_PORT="${MANGAASSIST_PG_DURABLE_PORT:-54330}"
REDIS_DIR="${MANGAASSIST_REDIS_DIR:-/tmp/mangaassist-redis}"
REDIS_PORT="${MANGAASSIST_REDIS_PORT:-63799}"
HOST=127.0.0.1

cmd="${1:-}"
what="${2:-all}"

# Run a command as the postgres OS user when we are root (initdb refuses to run as root).
as_pg() {
  if [ "$(id -u)" = "0" ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# pg_running PORT
pg_running() {
  [ -x "$PG_BIN/pg_isready" ] && "$PG_BIN/pg_isready" -q -h "$HOST" -p "$1" >/dev/null 2>&1
}

redis_running() {
  command -v redis-cli >/dev/null 2>&1 && [ "$(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null || true)" = "PONG" ]
}

# start_cluster NAME DIR PORT [extra -c settings...]: initdb DIR/data the first time, then pg_ctl start.
start_cluster() {
  local name="$1" dir="$2" port="$3"
  shift 3
  if pg_running "$port"; then echo "$name: already running on $HOST:$port"; return 0; fi
  if [ ! -x "$PG_BIN/pg_ctl" ]; then echo "$name: no binaries in $PG_BIN" >&2; return 1; fi
  mkdir -p "$dir"
  if [ "$(id -u)" = "0" ]; then chown postgres: "$dir"; fi
  chmod 700 "$dir"
  if [ ! -s "$dir/data/PG_VERSION" ]; then
    as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; return 1; }
  fi
  as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=$HOST -p $port -k $dir $*" \
    start >/dev/null || { tail -n 30 "$dir/server.log" >&2; return 1; }
  echo "$name: started on $HOST:$port (data in $dir/data)"
}

# stop_cluster NAME DIR
stop_cluster() {
  if [ -s "$2/data/postmaster.pid" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$2/data" -m fast -w stop >/dev/null && echo "$1: stopped"
  else
    echo "$1: not running"
  fi
}

start_pg() {
  # fsync/synchronous_commit/full_page_writes off: throwaway test data, much faster CREATE DATABASE and commits.
  start_cluster postgres "$PG_DIR" "$PG_PORT" \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200
}

start_pg_durable() {
  # PostgreSQL's default durability, stated so that no setting elsewhere can turn it off; same connection
  # limit as the test server, so the two differ only in durability.
  start_cluster postgres-durable "$PG_DURABLE_DIR" "$PG_DURABLE_PORT" \
    -c fsync=on -c synchronous_commit=on -c full_page_writes=on -c max_connections=200
}

stop_pg() { stop_cluster postgres "$PG_DIR"; }

stop_pg_durable() { stop_cluster postgres-durable "$PG_DURABLE_DIR"; }

start_redis() {
  if redis_running; then echo "redis: already running on $HOST:$REDIS_PORT"; return 0; fi
  if ! command -v redis-server >/dev/null 2>&1; then echo "redis: redis-server not installed" >&2; return 1; fi
  mkdir -p "$REDIS_DIR"
  redis-server --bind "$HOST" --port "$REDIS_PORT" --daemonize yes --save "" --appendonly no \
    --dir "$REDIS_DIR" --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log"
  for _ in $(seq 1 50); do redis_running && break; sleep 0.1; done
  redis_running || { tail -n 20 "$REDIS_DIR/redis.log" >&2; return 1; }
  echo "redis: started on $HOST:$REDIS_PORT"
}

stop_redis() {
  if redis_running; then
    redis-cli -h "$HOST" -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    echo "redis: stopped"
  else
    echo "redis: not running"
  fi
}

case "$cmd" in
  start)
    case "$what" in
      pg) start_pg ;; redis) start_redis ;; pg-durable) start_pg_durable ;; all) start_pg; start_redis ;;
      *) echo "unknown service $what" >&2; exit 2 ;;
    esac ;;
  stop)
    case "$what" in
      pg) stop_pg ;; redis) stop_redis ;;
      pg-durable) stop_pg_durable ;;
      all) stop_redis; stop_pg; stop_pg_durable ;;
      *) echo "unknown service $what" >&2; exit 2 ;;
    esac ;;
  status)
    if pg_running "$PG_PORT"; then echo "postgres: up ($HOST:$PG_PORT)"; else echo "postgres: down"; fi
    if redis_running; then echo "redis: up ($HOST:$REDIS_PORT)"; else echo "redis: down"; fi
    if pg_running "$PG_DURABLE_PORT"; then echo "postgres-durable: up ($HOST:$PG_DURABLE_PORT)"; else echo "postgres-durable: down"; fi ;;
  env)
    echo "export TEST_DATABASE_URL=postgresql://postgres@$HOST:$PG_PORT/postgres"
    echo "export TEST_REDIS_URL=redis://$HOST:$REDIS_PORT/0"
    echo "export BENCH_DATABASE_URL=postgresql://postgres@$HOST:$PG_DURABLE_PORT/postgres" ;;
  *)
    echo "usage: $0 start|stop|status|env [all|pg|redis|pg-durable]" >&2; exit 2 ;;
esac
