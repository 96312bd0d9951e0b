#!/usr/bin/env bash
# Local test services for MangaAssist: PostgreSQL 15 on 127.0.0.1:54329 and Redis on 127.0.0.1:63799.
#
# Usage: bash scripts/services.sh start|stop|status|env [all|pg|redis]
#   start   initdb (first time) and start the servers; idempotent (a running server is left alone)
#   stop    stop the servers this script started (pg_ctl stop; redis SHUTDOWN NOSAVE)
#   status  print whether each server answers
#   env     print the exports the tests read: TEST_DATABASE_URL and TEST_REDIS_URL
#
# Postgres runs as the `postgres` OS user (when invoked as root) in a directory it owns, listens only
# on 127.0.0.1 with trust authentication: for local tests and CI only, never for real data.
# Redis is daemonized without persistence (no RDB, no AOF).
set -euo pipefail

PG_BIN="${MANGAASSIST_PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_DIR="${MANGAASSIST_PG_DIR:-/tmp/mangaassist-pg}"
PG_PORT="${MANGAASSIST_PG_PORT:-54329}"
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

pg_running() {
  [ -x "$PG_BIN/pg_isready" ] && "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" >/dev/null 2>&1
}

redis_running() {
  command -v redis-cli >/dev/null 2>&1 && [ "$(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null || true)" = "PONG" ]
}

start_pg() {
  if pg_running; then echo "postgres: already running on $HOST:$PG_PORT"; return 0; fi
  if [ ! -x "$PG_BIN/pg_ctl" ]; then echo "postgres: no binaries in $PG_BIN" >&2; return 1; fi
  mkdir -p "$PG_DIR"
  if [ "$(id -u)" = "0" ]; then chown postgres: "$PG_DIR"; fi
  chmod 700 "$PG_DIR"
  if [ ! -s "$PG_DIR/data/PG_VERSION" ]; then
    as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 \
      || { cat "$PG_DIR/initdb.log" >&2; return 1; }
  fi
  # fsync/synchronous_commit off: throwaway test data, much faster CREATE DATABASE and commits.
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=$HOST -p $PG_PORT -k $PG_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null || { tail -n 30 "$PG_DIR/server.log" >&2; return 1; }
  echo "postgres: started on $HOST:$PG_PORT (data in $PG_DIR/data)"
}

stop_pg() {
  if [ -s "$PG_DIR/data/postmaster.pid" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null && echo "postgres: stopped"
  else
    echo "postgres: not running"
  fi
}

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
    case "$what" in pg) start_pg ;; redis) start_redis ;; all) start_pg; start_redis ;; *) echo "unknown service $what" >&2; exit 2 ;; esac ;;
  stop)
    case "$what" in pg) stop_pg ;; redis) stop_redis ;; all) stop_redis; stop_pg ;; *) echo "unknown service $what" >&2; exit 2 ;; esac ;;
  status)
    if pg_running; then echo "postgres: up ($HOST:$PG_PORT)"; else echo "postgres: down"; fi
    if redis_running; then echo "redis: up ($HOST:$REDIS_PORT)"; else echo "redis: down"; fi ;;
  env)
    echo "export TEST_DATABASE_URL=postgresql://postgres@$HOST:$PG_PORT/postgres"
    echo "export TEST_REDIS_URL=redis://$HOST:$REDIS_PORT/0" ;;
  *)
    echo "usage: $0 start|stop|status|env [all|pg|redis]" >&2; exit 2 ;;
esac
