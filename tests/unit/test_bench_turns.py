"""bench turns: the script rotation, percentiles, the database durability settings every report carries, and a
tiny real run on SQLite and Postgres with every JSON key."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph

from bench.turns import (
    SCRIPT,
    percentile,
    render_table,
    run_interleaved,
    run_turns_bench,
    session_messages,
    turn_keys,
)
from tools.backends.catalog import load_catalog

KEYS = {"backend", "sessions", "turns", "turns_per_s", "p50_ms", "p99_ms", "p50_ms_by_turn",
        "checkpoint_bytes_per_turn", "checkpoint_writes_per_turn", "history_ms", "baseline", "db_settings", "db_durable"}


def test_rotation_puts_every_template_at_every_turn_equally():
    catalog = load_catalog()
    scripts = [session_messages(catalog, s, 20) for s in range(32)]
    for t in range(20):
        templates = [(s + t) % len(SCRIPT) for s in range(32)]
        assert all(templates.count(k) == 32 // len(SCRIPT) for k in range(len(SCRIPT)))
    assert all("{" not in m for script in scripts for m in script)
    assert scripts[0] != scripts[1]


def test_percentile_and_turn_keys():
    assert percentile([], 0.5) == 0.0
    assert percentile([1, 2, 3, 4], 0.5) == 2.5
    assert percentile([5.0], 0.99) == 5.0
    assert turn_keys(3) == [1, 3] and turn_keys(20) == [1, 10, 20] and turn_keys(100) == [1, 10, 20, 50, 100]


async def test_interleaved_phases_alternate_in_blocks_and_continue_their_threads():
    calls: list[tuple[str, str]] = []

    def graph(tag: str, checkpointer=None):
        def node(state: MessagesState) -> dict:
            calls.append((tag, state["messages"][-1].content))
            return {"messages": [AIMessage(content=f"{len(state['messages'])} messages")]}
        return StateGraph(MessagesState).add_node("n", node).add_edge(START, "n").compile(checkpointer=checkpointer)

    saver = InMemorySaver()
    scripts = [[f"s{i}t{t}" for t in range(1, 5)] for i in range(2)]
    base, durable = await run_interleaved([(graph("A"), False), (graph("B", saver), True)], ["u"], scripts,
                                          durability="exit", rounds=2)
    assert [(tag, text[-2:]) for tag, text in calls[::2]] == [("A", "t1"), ("A", "t2"), ("B", "t1"), ("B", "t2"),
                                                               ("A", "t3"), ("A", "t4"), ("B", "t3"), ("B", "t4")]
    for run in (base, durable):
        assert sorted(run.latencies) == [1, 2, 3, 4] and all(len(v) == 2 for v in run.latencies.values())
        assert run.wall_s > 0 and run.cpu_s > 0 and len(run.thread_ids) == 2
    state = saver.get_tuple({"configurable": {"thread_id": durable.thread_ids[0]}}).checkpoint["channel_values"]
    assert len(state["messages"]) == 8  # 4 turns continued on one thread across the two rounds


def _check(report: dict, backend: str) -> None:
    assert KEYS <= set(report) and KEYS - {"history_ms", "db_settings", "db_durable"} <= set(report["baseline"]) | {"baseline"}
    assert report["backend"] == backend and report["sessions"] == 2 and report["turns"] == 3
    assert set(report["p50_ms_by_turn"]) == {"1", "3"}
    assert report["turns_per_s"] > 0 and report["baseline"]["turns_per_s"] > 0
    # durability "exit": one checkpoint row per turn and no pending writes; a 3-turn thread has 3 snapshots
    assert report["durability"] == "exit" and report["checkpoint_rows"]["checkpoints"] == 2 * 3
    assert report["checkpoint_rows"]["writes"] == 0 and report["checkpoint_writes_per_turn"] == 1.0
    assert report["checkpoint_logical_bytes_per_turn"] > 0
    assert report["history_ms"] > 0 and report["history_snapshots"] == 3 and report["history_reads"] == 5
    assert report["history_ms"] <= report["history_ms_max"] and report["history_ms_first"] <= report["history_ms_max"]
    assert report["cpu_ms_per_turn"] > 0 and report["baseline"]["cpu_ms_per_turn"] > 0


def _rendered(report: dict) -> str:
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(render_table(report))
    return console.export_text()


def _report(db_settings: dict | None, db_durable: bool | None) -> dict:
    return {"backend": "postgres", "sessions": 2, "turns": 3, "durability": "exit", "turns_per_s": 1.0,
            "p50_ms_by_turn": {}, "baseline": {}, "db_settings": db_settings, "db_durable": db_durable}


def test_table_names_the_database_durability_and_flags_a_relaxed_server():
    relaxed = _rendered(_report({"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}, False))
    assert "fsync=off synchronous_commit=off full_page_writes=off" in relaxed
    assert "RELAXED durability" in relaxed
    durable = _rendered(_report({"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}, True))
    assert "fsync=on synchronous_commit=on full_page_writes=on" in durable
    assert "RELAXED" not in durable
    assert "RELAXED" not in _rendered({**_report(None, None), "backend": "none"})


def test_durable_means_synced_commits():
    from bench.turns import pg_is_durable, sqlite_is_durable

    on = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
    assert pg_is_durable(on) and pg_is_durable({**on, "synchronous_commit": "local"})
    assert not any(pg_is_durable({**on, k: "off"}) for k in on)
    assert sqlite_is_durable({"journal_mode": "wal", "synchronous": "full"})
    assert not sqlite_is_durable({"journal_mode": "wal", "synchronous": "normal"})


async def test_tiny_bench_on_sqlite(settings):
    report = await run_turns_bench("sqlite", 2, 3, settings=settings, warmup=False)
    _check(report, "sqlite")
    # the checkpointer's own connection, as PRAGMA reports it (AsyncSqliteSaver runs WAL, SQLite's FULL default)
    assert report["db_settings"] == {"journal_mode": "wal", "synchronous": "full"} and report["db_durable"] is True
    assert "journal_mode=wal synchronous=full" in _rendered(report)


@pytest.mark.postgres
async def test_tiny_bench_on_postgres(settings, pg_dsn):
    import psycopg

    report = await run_turns_bench("postgres", 2, 3, settings=settings.model_copy(update={"database_url": pg_dsn}),
                                   warmup=False, keep_last=2)
    _check(report, "postgres")
    assert report["checkpoint_bytes_per_turn"] > 0
    # keep_last=2 of each session's 3 turn checkpoints: one pruned per session
    assert report["prune"]["keep_last"] == 2 and report["prune"]["checkpoints"] == 2
    assert report["history_ms_after_prune"] > 0
    with psycopg.connect(pg_dsn) as conn:
        shown = {k: conn.execute(f"SHOW {k}").fetchone()[0] for k in ("fsync", "synchronous_commit", "full_page_writes")}
    assert report["db_settings"] == shown
    assert report["db_durable"] is (shown["fsync"] == "on" and shown["full_page_writes"] == "on"
                                    and shown["synchronous_commit"] != "off")


@pytest.mark.postgres
async def test_pg_durability_reads_the_live_settings(pg_dsn):
    """synchronous_commit can be set per connection: the report must show what the bench's connections run with."""
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    from bench.turns import pg_durability

    seen = {}
    for value in ("off", "local", "on"):
        async with AsyncConnectionPool(pg_dsn, min_size=1, max_size=1, open=False,
                                       kwargs={"autocommit": True, "row_factory": dict_row,
                                               "options": f"-c synchronous_commit={value}"}) as pool:
            seen[value] = await pg_durability(pool)
    assert [s["synchronous_commit"] for s in seen.values()] == ["off", "local", "on"]
    assert {s["fsync"] for s in seen.values()} <= {"on", "off"} and len({s["fsync"] for s in seen.values()}) == 1


async def test_bad_arguments(settings):
    with pytest.raises(ValueError):
        await run_turns_bench("mysql", 2, 3, settings=settings)
    with pytest.raises(ValueError):
        await run_turns_bench("sqlite", 0, 3, settings=settings)
