"""Structured graph logs: one line per node/tool/turn with thread id, hashed user id, node and latency."""

from __future__ import annotations

import logging

from langchain_core.messages import HumanMessage

from server.observability import GraphObserver, Metrics, hash_user


async def test_node_tool_and_turn_lines_carry_thread_user_node_latency(assistant, caplog):
    caplog.set_level(logging.INFO, logger="mangaassist.graph")
    cfg = {**assistant.config("log-thread", "u_ben"), "callbacks": [GraphObserver(Metrics())]}
    await assistant.graph.ainvoke({"messages": [HumanMessage("Do you have Berserk?")]}, cfg,
                                  context=assistant.context("u_ben"))
    recs = [r for r in caplog.records if r.name == "mangaassist.graph"]
    nodes = {r.node for r in recs if r.kind == "node"}
    assert {"classify", "search_agent", "think", "execute", "respond", "merge", "quality", "finalize"} <= nodes
    assert any(r.kind == "tool" and r.node == "search_catalog" for r in recs)
    assert any(r.kind == "turn" for r in recs)
    for r in recs:
        assert r.thread_id == "log-thread"
        assert r.user == hash_user("u_ben") and "u_ben" not in r.getMessage()
        assert r.outcome == "ok" and r.latency_ms > 0
    assert {r.agent for r in recs if r.node == "think"} == {"search"}
    # latencies are wall time of nested runs: sequential children add up to at most their parent (each
    # figure is rounded to 0.01 ms, hence the slack)
    ms = {}
    for r in recs:
        ms.setdefault((r.kind, r.node), []).append(r.latency_ms)
    (turn,) = ms[("turn", next(r.node for r in recs if r.kind == "turn"))]
    top = ["classify", "search_agent", "merge", "quality", "finalize"]
    assert sum(sum(ms[("node", n)]) for n in top) <= turn + 0.01 * len(top)
    inner = [v for n in ("think", "execute", "reflect", "respond") for v in ms[("node", n)]]
    (agent,) = ms[("node", "search_agent")]
    assert sum(inner) <= agent + 0.01 * len(inner)
    assert max(ms[("tool", "search_catalog")]) <= max(ms[("node", "execute")]) + 0.01
