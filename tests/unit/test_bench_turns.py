"""bench turns: the script rotation, percentiles, and a tiny real run on SQLite and Postgres with every JSON key."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph

from bench.turns import SCRIPT, percentile, run_interleaved, run_turns_bench, session_messages, turn_keys
from tools.backends.catalog import load_catalog

KEYS = {"backend", "sessions", "turns", "turns_per_s", "p50_ms", "p99_ms", "p50_ms_by_turn",
        "checkpoint_bytes_per_turn", "checkpoint_writes_per_turn", "history_ms", "baseline"}


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
    assert KEYS <= set(report) and KEYS - {"history_ms"} <= set(report["baseline"]) | {"baseline"}
    assert report["backend"] == backend and report["sessions"] == 2 and report["turns"] == 3
    assert set(report["p50_ms_by_turn"]) == {"1", "3"}
    assert report["turns_per_s"] > 0 and report["baseline"]["turns_per_s"] > 0
    assert report["checkpoint_writes_per_turn"] >= 1 and report["checkpoint_logical_bytes_per_turn"] > 0
    assert report["history_ms"] > 0 and report["history_snapshots"] >= 3 and report["history_reads"] == 5
    assert report["history_ms"] <= report["history_ms_max"] and report["history_ms_first"] <= report["history_ms_max"]
    assert report["cpu_ms_per_turn"] > 0 and report["baseline"]["cpu_ms_per_turn"] > 0


async def test_tiny_bench_on_sqlite(settings):
    _check(await run_turns_bench("sqlite", 2, 3, settings=settings, warmup=False), "sqlite")


@pytest.mark.postgres
async def test_tiny_bench_on_postgres(settings, pg_dsn):
    report = await run_turns_bench("postgres", 2, 3, settings=settings.model_copy(update={"database_url": pg_dsn}),
                                   warmup=False, keep_last=2)
    _check(report, "postgres")
    assert report["checkpoint_bytes_per_turn"] > 0
    assert report["prune"]["checkpoints"] > 0 and report["history_ms_after_prune"] >= 0


async def test_bad_arguments(settings):
    with pytest.raises(ValueError):
        await run_turns_bench("mysql", 2, 3, settings=settings)
    with pytest.raises(ValueError):
        await run_turns_bench("sqlite", 0, 3, settings=settings)
