"""Operator signals on a real server: /metrics after real turns and faults (turns, node latency, intents,
checkpoint writes, errors by kind, HTTP route templates), and the activity stream WebSocket of a thread."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.faults.conftest import new_thread

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def _value(text: str, series: str) -> float:
    """Sum of the samples of ``series`` (a name with an optional {label="..."} subset)."""
    name, _, labels = series.partition("{")
    want = set(re.findall(r'(\w+)="([^"]*)"', labels))
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            got = set(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
            if want <= got:
                total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_turns_nodes_and_errors(fault_server):
    srv = fault_server
    h = {"Authorization": f"Bearer {srv.key('u_ben')}"}
    tid = new_thread(srv, h)
    before = httpx.get(srv.base + "/metrics", timeout=10).text
    for text in ("Do you have One Piece?", "show my orders"):
        assert httpx.post(f"{srv.base}/v1/threads/{tid}/messages", json={"text": text}, headers=h,
                          timeout=60).status_code == 200
    httpx.get(f"{srv.base}/v1/threads/nope", headers=h, timeout=10)
    after = httpx.get(srv.base + "/metrics", timeout=10).text
    assert _value(after, 'mangaassist_turns_total{outcome="ok"}') - _value(before, 'mangaassist_turns_total{outcome="ok"}') == 2
    assert _value(after, 'mangaassist_intents_total{intent="order"}') >= 1
    assert _value(after, 'mangaassist_node_seconds_count{node="classify",agent="supervisor"}') >= 2
    assert _value(after, 'mangaassist_specialist_seconds_count{agent="search"}') >= 1
    assert _value(after, 'mangaassist_checkpoint_write_seconds_count{op="aput"}') > _value(before, 'mangaassist_checkpoint_write_seconds_count{op="aput"}')
    assert _value(after, 'mangaassist_http_requests_total{route="/v1/threads/{thread_id}/messages",status="200"}') >= 2
    assert _value(after, 'mangaassist_http_requests_total{route="/v1/threads/{thread_id}",status="404"}') >= 1
    assert tid not in after  # thread ids never become label values


async def test_activity_stream_shows_node_and_tool_events_of_http_runs(fault_server):
    srv = fault_server
    key = srv.key("u_ben")
    h = {"Authorization": f"Bearer {key}"}
    tid = new_thread(srv, h)
    events: list[dict] = []
    async with connect(f"{srv.ws_base}/v1/ws/threads/{tid}/activity?api_key={key}") as ws:
        await asyncio.sleep(0.3)
        r = await asyncio.to_thread(httpx.post, f"{srv.base}/v1/threads/{tid}/messages",
                                    json={"text": "find Berserk"}, headers=h, timeout=60)
        assert r.status_code == 200
        while not events or events[-1].get("event") != "turn_end":
            events.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
    kinds = [(e["event"], e.get("node") or e.get("tool")) for e in events]
    assert ("node_start", "classify") in kinds and ("node_end", "respond") in kinds
    assert ("tool_start", "search_catalog") in kinds
    assert any(e.get("agent") == "search" for e in events)
    amy = srv.key("u_amy")
    async with connect(f"{srv.ws_base}/v1/ws/threads/{tid}/activity?api_key={amy}") as ws:
        with pytest.raises(ConnectionClosed) as exc:
            await asyncio.wait_for(ws.recv(), 10)
    assert exc.value.rcvd.code == 1008
