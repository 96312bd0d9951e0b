"""Durable-turn benchmark: the supervisor graph on N concurrent sessions x M turns, checkpointed vs not, same run.

``run_turns_bench`` builds the real supervisor graph (local profile, all specialists, real catalog) once,
runs a cycling script of customer messages (EN/JA search, recommend, order status of a seeded demo user,
FAQ, chitchat, follow-ups such as "what about the second one?") on N asyncio tasks of M turns each, with no
checkpointer (the baseline) and with the chosen checkpointer, the two phases alternating in blocks of turns
(``run_interleaved``: the host's speed drifts), and reports throughput, CPU per turn,
latency percentiles per turn index, bytes and rows written per turn, and the time to list a thread's history.
Every report names the database's durability settings (``db_settings``: Postgres ``SHOW fsync`` /
``synchronous_commit`` / ``full_page_writes``, SQLite ``PRAGMA journal_mode`` / ``synchronous``) and whether
they are durable (``db_durable``), so a figure measured on a relaxed test server cannot pass for a real one.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.types import Command

from core.context import Context
from core.settings import Settings

BACKENDS = ("none", "sqlite", "postgres")

SCRIPT: tuple[str, ...] = (
    "Do you have {en}?",
    "{ja}はありますか？",
    "what about the second one?",
    "Recommend something like {en2}",
    "Where is my order?",
    "What is your return policy?",
    "Thanks, you're great!",
    "tell me more about the first one",
    "おすすめの漫画を教えて",
    "How long does shipping take?",
    "Is {en3} in stock?",
    "注文状況を教えてください",
    "Any manga similar to {en} but shorter?",
    "こんにちは！",
    "and the third one?",
    "What payment methods do you accept?",
)
"""16 message templates (a power of two, so 32 sessions rotated by their index put every template at every
turn index equally often: per-turn percentiles then compare history length, not message mix). No cancel or
return: those mutate orders and interrupt for confirmation (an interrupt is resumed with "no" if one occurs)."""


def session_messages(catalog: Any, session: int, turns: int) -> list[str]:
    """The ``turns`` customer messages of session ``session``: SCRIPT rotated by ``session``, with titles of
    popular catalog items chosen by session (so sessions do not all hit the same cached searches)."""
    items = [it for it in catalog.items[:120] if it.title_ja]
    pick = lambda k: items[(session * 3 + k) % len(items)]  # noqa: E731
    fill = {"en": pick(0).title_en or pick(0).title, "ja": pick(1).title_ja,
            "en2": pick(2).title_en or pick(2).title, "en3": pick(3).title_en or pick(3).title}
    return [SCRIPT[(session + t) % len(SCRIPT)].format(**fill) for t in range(turns)]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0-1) of ``values`` by linear interpolation (numpy's default); 0.0 when empty."""
    if not values:
        return 0.0
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass
class PhaseRun:
    """Raw figures of one phase: latencies (ms) per 1-based turn index, wall time (s), the threads used."""

    latencies: dict[int, list[float]] = field(default_factory=dict)
    wall_s: float = 0.0
    cpu_s: float = 0.0
    thread_ids: list[str] = field(default_factory=list)
    interrupts: int = 0
    errors: int = 0


async def run_sessions(graph: Any, users: Sequence[str], scripts: Sequence[Sequence[str]], *, checkpointed: bool,
                       durability: str | None = None, run: PhaseRun | None = None,
                       turns: tuple[int, int] | None = None) -> PhaseRun:
    """Run every script as one session (an asyncio task, one thread) concurrently; time each turn (ms).

    ``turns=(a, b)`` runs only the 1-based turns a..b-1 of each script and ``run`` continues an earlier call
    (same threads, wall/CPU time added up), so two phases can alternate in rounds (``run_interleaved``).
    Without a checkpointer every turn is a fresh run (the graph cannot remember). An interrupt is resumed
    with "no" (timed as part of its turn). Errors are counted and re-raised after all sessions finish.
    """
    run = run if run is not None else PhaseRun()
    if not run.thread_ids:
        run.thread_ids = [f"bench-{uuid.uuid4().hex}" for _ in scripts]
    first, stop = turns or (1, max((len(s) for s in scripts), default=0) + 1)
    failures: list[BaseException] = []
    kwargs = {"durability": durability} if (checkpointed and durability) else {}

    async def session(i: int, script: Sequence[str]) -> None:
        cfg = {"configurable": {"thread_id": run.thread_ids[i]}, "metadata": {"user_id": users[i % len(users)]}}
        ctx = Context(user_id=users[i % len(users)])
        for t in range(first, min(stop, len(script) + 1)):
            t0 = time.perf_counter()
            try:
                out = await graph.ainvoke({"messages": [HumanMessage(content=script[t - 1])]}, cfg, context=ctx, **kwargs)
                if checkpointed and isinstance(out, dict) and out.get("__interrupt__"):
                    run.interrupts += 1
                    await graph.ainvoke(Command(resume="no"), cfg, context=ctx, **kwargs)
            except Exception as exc:  # counted, then re-raised below so a broken graph fails the bench
                run.errors += 1
                failures.append(exc)
                return
            run.latencies.setdefault(t, []).append((time.perf_counter() - t0) * 1000)

    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(session(i, s) for i, s in enumerate(scripts)))
    run.wall_s += time.perf_counter() - t0
    run.cpu_s += time.process_time() - c0
    if failures:
        raise failures[0]
    return run


async def run_interleaved(phases: Sequence[tuple[Any, bool]], users: Sequence[str], scripts: Sequence[Sequence[str]],
                          *, durability: str | None, rounds: int) -> list[PhaseRun]:
    """Run several phases ``(graph, checkpointed)`` over the same scripts, alternating in ``rounds`` blocks of turns.

    Round r runs turns of block r for every phase in turn (A, B, A, B, ...), each phase continuing its own
    threads, so a change of machine speed during the run (a shared host: the same work measured 25 and 35 ms
    of CPU per turn an hour apart) weighs on every phase alike instead of on whichever ran last.
    """
    total = max((len(s) for s in scripts), default=0)
    rounds = max(1, min(rounds, total))
    bounds = [1 + (total * r) // rounds for r in range(rounds + 1)]
    runs = [PhaseRun() for _ in phases]
    for a, b in zip(bounds, bounds[1:]):
        for (graph, checkpointed), run in zip(phases, runs):
            await run_sessions(graph, users, scripts, checkpointed=checkpointed, durability=durability, run=run,
                               turns=(a, b))
    return runs


def turn_keys(turns: int) -> list[int]:
    """Turn indexes reported in ``p50_ms_by_turn``: 1, 10, 20, 50, 100 when reached, and the last turn."""
    return sorted({k for k in (1, 10, 20, 50, 100) if k <= turns} | {turns})


def summarise(run: PhaseRun, backend: str, sessions: int, turns: int) -> dict:
    """Throughput (turns/s over the phase's wall time), latency percentiles (ms) and this process's CPU time per
    turn (ms; the Postgres server's CPU is not included) of one phase."""
    flat = [x for xs in run.latencies.values() for x in xs]
    done = len(flat)
    return {
        "backend": backend, "sessions": sessions, "turns": turns,
        "turns_per_s": round(done / run.wall_s, 2) if run.wall_s else 0.0,
        "p50_ms": round(percentile(flat, 0.5), 2), "p99_ms": round(percentile(flat, 0.99), 2),
        "p50_ms_by_turn": {str(k): round(percentile(run.latencies.get(k, []), 0.5), 2) for k in turn_keys(turns)},
        "cpu_ms_per_turn": round(run.cpu_s * 1000 / done, 2) if done else 0.0,
        "interrupts": run.interrupts,
    }


# ---- database durability ----------------------------------------------------------------------------

PG_DURABILITY_SETTINGS = ("fsync", "synchronous_commit", "full_page_writes")
"""Postgres settings that decide what a commit costs and whether it survives a crash (PostgreSQL's defaults: on)."""

SQLITE_SYNCHRONOUS = {0: "off", 1: "normal", 2: "full", 3: "extra"}


async def pg_durability(pool: Any) -> dict[str, str]:
    """``SHOW`` each of PG_DURABILITY_SETTINGS on one of ``pool``'s connections (what the benchmark's own
    sessions run with): ``{"fsync": "on"|"off", "synchronous_commit": "on"|"off"|"local"|..., "full_page_writes": ...}``."""
    out: dict[str, str] = {}
    async with pool.connection() as conn, conn.cursor() as cur:
        for name in PG_DURABILITY_SETTINGS:
            await cur.execute(f"SHOW {name}")
            row = await cur.fetchone()
            out[name] = str(next(iter(row.values())) if isinstance(row, dict) else row[0])
    return out


def pg_is_durable(db: dict[str, str]) -> bool:
    """True when a committed transaction survives a crash of the server or the host: fsync and full_page_writes
    on, synchronous_commit anything but off."""
    return db.get("fsync") == "on" and db.get("full_page_writes") == "on" and db.get("synchronous_commit", "off") != "off"


async def sqlite_durability(conn: Any) -> dict[str, str]:
    """``PRAGMA journal_mode`` and ``PRAGMA synchronous`` of an aiosqlite connection:
    ``{"journal_mode": "wal"|"delete"|..., "synchronous": "off"|"normal"|"full"|"extra"}``."""
    journal = (await (await conn.execute("PRAGMA journal_mode")).fetchone())[0]
    sync = (await (await conn.execute("PRAGMA synchronous")).fetchone())[0]
    return {"journal_mode": str(journal).lower(), "synchronous": SQLITE_SYNCHRONOUS.get(int(sync), str(sync))}


def sqlite_is_durable(db: dict[str, str]) -> bool:
    """True when a commit is synced before it returns (synchronous FULL or EXTRA; NORMAL in WAL mode may lose
    the last commits on power loss)."""
    return db.get("synchronous") in ("full", "extra")


# ---- storage measurements ----------------------------------------------------------------------------

PG_TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")


async def pg_storage(pool: Any, thread_ids: Sequence[str] | None = None) -> dict:
    """Postgres checkpoint storage: physical bytes (sum of pg_total_relation_size of the three tables, heap +
    TOAST + indexes), and for ``thread_ids`` the rows and logical (uncompressed) bytes of checkpoints, blobs
    and writes (octet_length of JSONB text / BYTEA) plus their stored (possibly compressed) column sizes."""
    out: dict[str, Any] = {}
    async with pool.connection() as conn, conn.cursor() as cur:
        await cur.execute("SELECT " + " + ".join(f"pg_total_relation_size('{t}')" for t in PG_TABLES) + " AS b")
        out["physical_bytes"] = int((await cur.fetchone())["b"])
        if thread_ids is not None:
            ids = list(thread_ids)
            await cur.execute(
                "SELECT count(*) AS n, coalesce(sum(octet_length(checkpoint::text) + octet_length(metadata::text)), 0) AS b,"
                " coalesce(sum(pg_column_size(checkpoint) + pg_column_size(metadata)), 0) AS s"
                " FROM checkpoints WHERE thread_id = ANY(%s)", (ids,))
            r = await cur.fetchone()
            out["checkpoints"], logical, stored = int(r["n"]), int(r["b"]), int(r["s"])
            for table, key in (("checkpoint_blobs", "blobs"), ("checkpoint_writes", "writes")):
                await cur.execute(f"SELECT count(*) AS n, coalesce(sum(octet_length(blob)), 0) AS b,"
                                  f" coalesce(sum(pg_column_size(blob)), 0) AS s FROM {table} WHERE thread_id = ANY(%s)",
                                  (ids,))
                r = await cur.fetchone()
                out[key] = int(r["n"])
                logical += int(r["b"])
                stored += int(r["s"])
            out["logical_bytes"], out["stored_bytes"] = logical, stored
    return out


async def sqlite_storage(conn: Any, path: Path, thread_ids: Sequence[str] | None = None) -> dict:
    """SQLite checkpoint storage: file bytes after a WAL checkpoint (TRUNCATE), and for ``thread_ids`` the
    rows and logical bytes of the ``checkpoints`` and ``writes`` tables of AsyncSqliteSaver."""
    await conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    out: dict[str, Any] = {"physical_bytes": path.stat().st_size if path.exists() else 0}
    if thread_ids is not None:
        marks = ",".join("?" * len(thread_ids))
        cur = await conn.execute(f"SELECT count(*), coalesce(sum(length(checkpoint) + length(metadata)), 0)"
                                 f" FROM checkpoints WHERE thread_id IN ({marks})", list(thread_ids))
        n, b = await cur.fetchone()
        cur = await conn.execute(f"SELECT count(*), coalesce(sum(length(value)), 0) FROM writes"
                                 f" WHERE thread_id IN ({marks})", list(thread_ids))
        nw, bw = await cur.fetchone()
        out.update(checkpoints=int(n), writes=int(nw), blobs=0, logical_bytes=int(b) + int(bw),
                   stored_bytes=int(b) + int(bw))
    return out


async def history_ms(graph: Any, thread_id: str) -> tuple[float, int]:
    """Wall time (ms) to list the whole ``get_state_history`` of one thread, and the number of snapshots."""
    t0 = time.perf_counter()
    n = 0
    async for _ in graph.aget_state_history({"configurable": {"thread_id": thread_id}}):
        n += 1
    return (time.perf_counter() - t0) * 1000, n


HISTORY_READS = 5
"""How many times the benchmark lists a thread's history: one read is at the mercy of a scheduler hiccup
(seen: 51-54 ms reads with one 188 ms outlier on the same 100-turn thread), so it reports their median."""


async def history_reads(graph: Any, thread_id: str, reads: int = HISTORY_READS) -> dict:
    """List one thread's history ``reads`` times (sequentially, nothing else running).

    Returns ``{"history_ms": median ms, "history_ms_first": the first (coldest) read in ms,
    "history_ms_max": the slowest read in ms, "history_snapshots": snapshots per read, "history_reads": reads}``.
    """
    times, n = [], 0
    for _ in range(max(1, reads)):
        ms, n = await history_ms(graph, thread_id)
        times.append(ms)
    return {"history_ms": round(percentile(times, 0.5), 2), "history_ms_first": round(times[0], 2),
            "history_ms_max": round(max(times), 2), "history_snapshots": n, "history_reads": len(times)}


# ---- the benchmark -----------------------------------------------------------------------------------


async def run_turns_bench(backend: str, sessions: int, turns: int, *, settings: Settings | None = None,
                          durability: str | None = None, warmup: bool = True, tuned: bool = True,
                          keep_last: int | None = 20, rounds: int = 4) -> dict:
    """Run the benchmark; returns the JSON-ready report (see module docstring and docs/persistence.md).

    backend: 'none' (baseline only), 'sqlite' (a fresh file in a temporary directory) or 'postgres'
    (``settings.database_url``, the tables shared with whatever else is in that database; bytes are
    deltas). durability: LangGraph durability mode for the checkpointed phase (None = our default,
    ``tools.backends.persistence.DEFAULT_DURABILITY``). tuned=False opens Postgres without our table/pool
    settings (the "before" configuration) for comparisons. The baseline and the checkpointed phase alternate
    in ``rounds`` blocks of turns (``run_interleaved``); each phase's turns/s is its turns over its own wall time.
    Raises ValueError for a bad backend/size, ConfigurationError when postgres is chosen without a URL.
    """
    from core.errors import ConfigurationError
    from graphs.supervisor import build_supervisor
    from tools.backends.factory import open_deps
    from tools.backends.persistence import DEFAULT_DURABILITY, open_persistence

    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r} (expected one of {', '.join(BACKENDS)})")
    if sessions < 1 or turns < 1:
        raise ValueError("sessions and turns must be >= 1")
    settings = settings or Settings()
    if backend == "postgres" and not settings.database_url:
        raise ConfigurationError("the postgres backend needs DATABASE_URL")
    durability = durability or DEFAULT_DURABILITY

    async with AsyncExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mangaassist-bench-")))
        persistence = None
        if backend == "postgres":
            persistence = await open_persistence(settings, stack, tuned=tuned)
        elif backend == "sqlite":
            persistence = await open_persistence(settings.model_copy(update={"database_url": None, "data_dir": tmp}),
                                                 stack)
        deps = await open_deps(settings.model_copy(update={"database_url": None}) if backend != "postgres" else settings,
                               pool=persistence.pool if persistence else None)
        stack.push_async_callback(deps.aclose)
        if hasattr(deps.orders, "seed_if_empty"):
            await deps.orders.seed_if_empty(catalog=deps.catalog)
        users = [u["user_id"] for u in await deps.orders.demo_users()] or ["anonymous"]
        scripts = [session_messages(deps.catalog, s, turns) for s in range(sessions)]
        plain = build_supervisor(deps).compile(store=persistence.store if persistence else None, name="mangaassist")
        if warmup:  # every template once per session, untimed: warms caches and lazy imports for both phases
            await run_sessions(plain, users, [s[:len(SCRIPT)] for s in
                                              (session_messages(deps.catalog, i, len(SCRIPT)) for i in range(sessions))],
                               checkpointed=False)
        if persistence is None:
            base = summarise(await run_sessions(plain, users, scripts, checkpointed=False), "none", sessions, turns)
            base.update(checkpoint_bytes_per_turn=0, checkpoint_writes_per_turn=0, history_ms=None)
            return {**base, "durability": None, "db_settings": None, "db_durable": None, "baseline": dict(base)}

        graph = build_supervisor(deps).compile(checkpointer=persistence.checkpointer, store=persistence.store,
                                               name="mangaassist")
        if backend == "postgres":
            measure = lambda ids=None: pg_storage(persistence.pool, ids)  # noqa: E731
            db_settings = await pg_durability(persistence.pool)
            db_durable = pg_is_durable(db_settings)
        else:
            conn, path = persistence.checkpointer.conn, tmp / "checkpoints.sqlite"
            measure = lambda ids=None: sqlite_storage(conn, path, ids)  # noqa: E731
            db_settings = await sqlite_durability(conn)
            db_durable = sqlite_is_durable(db_settings)
        before = await measure()
        base_run, run = await run_interleaved([(plain, False), (graph, True)], users, scripts, durability=durability,
                                              rounds=rounds)
        base = summarise(base_run, "none", sessions, turns)
        base.update(checkpoint_bytes_per_turn=0, checkpoint_writes_per_turn=0, history_ms=None)
        after = await measure(run.thread_ids)
        done = sum(len(v) for v in run.latencies.values())
        history = await history_reads(graph, run.thread_ids[0])
        report = summarise(run, backend, sessions, turns)
        report.update(
            durability=durability,
            db_settings=db_settings,
            db_durable=db_durable,
            tuned=tuned,
            checkpoint_bytes_per_turn=round((after["physical_bytes"] - before["physical_bytes"]) / done, 1),
            checkpoint_logical_bytes_per_turn=round(after["logical_bytes"] / done, 1),
            checkpoint_stored_bytes_per_turn=round(after["stored_bytes"] / done, 1),
            checkpoint_writes_per_turn=round((after["checkpoints"] + after["writes"]) / done, 2),
            checkpoint_rows={k: after[k] for k in ("checkpoints", "blobs", "writes")},
            **history,
            ratio_turns_per_s=round(report["turns_per_s"] / base["turns_per_s"], 3) if base["turns_per_s"] else None,
            baseline=base,
        )
        if backend == "postgres" and tuned and keep_last:
            from tools.backends.persistence import prune_checkpoints

            t0 = time.perf_counter()
            pruned = await prune_checkpoints(persistence.pool, keep_last=keep_last, thread_ids=run.thread_ids)
            report["prune"] = {"keep_last": keep_last, "ms": round((time.perf_counter() - t0) * 1000, 1),
                               "checkpoints": pruned.checkpoints, "writes": pruned.writes, "blobs": pruned.blobs}
            report["history_ms_after_prune"] = (await history_reads(graph, run.thread_ids[0]))["history_ms"]
        if persistence.pool is not None:
            report["pool"] = {"min_size": persistence.pool.min_size, "max_size": persistence.pool.max_size}
        return report


def render_table(report: dict) -> Any:
    """A rich Table comparing the checkpointed phase with the no-checkpointer baseline; its first row names the
    database's durability settings, and a caption warns when they are relaxed (``db_durable`` False)."""
    from rich.table import Table

    base = report.get("baseline") or {}
    title = (f"bench turns: {report['backend']} (durability={report.get('durability')}), "
             f"{report['sessions']} sessions x {report['turns']} turns, {os.cpu_count()} CPUs")
    table = Table(title=title)
    table.add_column("metric")
    table.add_column(report["backend"], justify="right")
    table.add_column("no checkpointer", justify="right")
    db = report.get("db_settings")
    if db:
        table.add_row("database durability", " ".join(f"{k}={v}" for k, v in db.items()), "")
    if report.get("db_durable") is False:
        table.caption = ("RELAXED durability: commits are not synced to disk, so these figures are not those of a "
                         "real server; publish only figures measured with the defaults (fsync, synchronous_commit, "
                         "full_page_writes on: `bash scripts/services.sh start pg-durable`, BENCH_DATABASE_URL)")
    rows = [("turns/s", "turns_per_s"), ("p50 ms", "p50_ms"), ("p99 ms", "p99_ms"), ("CPU ms/turn (this process)", "cpu_ms_per_turn")]
    for label, key in rows:
        table.add_row(label, str(report.get(key)), str(base.get(key, "")))
    for k, v in report.get("p50_ms_by_turn", {}).items():
        table.add_row(f"p50 ms at turn {k}", str(v), str(base.get("p50_ms_by_turn", {}).get(k, "")))
    for label, key in (("checkpoint bytes/turn (physical)", "checkpoint_bytes_per_turn"),
                       ("checkpoint bytes/turn (logical)", "checkpoint_logical_bytes_per_turn"),
                       ("checkpoint bytes/turn (stored)", "checkpoint_stored_bytes_per_turn"),
                       ("checkpoint rows/turn (checkpoints+writes)", "checkpoint_writes_per_turn"),
                       ("history ms (one thread, all snapshots; median of reads)", "history_ms"),
                       ("history ms, first read", "history_ms_first"),
                       ("history ms, slowest read", "history_ms_max"),
                       ("history snapshots", "history_snapshots"),
                       ("history ms after prune (keep_last)", "history_ms_after_prune"),
                       ("turns/s ratio vs baseline", "ratio_turns_per_s")):
        if key in report:
            table.add_row(label, str(report[key]), "")
    return table
