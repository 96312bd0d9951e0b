"""Running a validated run: its events, the background task that owns the thread's lease, and the SSE response.

A run is executed by ``RunTask`` in a task of its own, which feeds ``run_events`` into a queue; ``/runs/wait``
reads that queue to the end, ``/runs/stream`` writes it out as Server-Sent Events (``sse_response``). What a run
is (input, config, Context, options) is decided before, by the run routes; this module takes any ``RunPlan``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, Literal, Protocol, cast

from fastapi import Request
from fastapi.responses import StreamingResponse
from langchain_core.messages import BaseMessage, BaseMessageChunk, message_chunk_to_message

from core.context import Context
from core.errors import MangaAssistError
from graphs.app import Assistant
from server.routes.lgapi.schemas import dumps, interrupts_by_task

log = logging.getLogger(__name__)


class RunPlan(Protocol):
    """What running needs of a validated run: ids, graph input, config, Context and streaming options."""

    run_id: str
    thread_id: str
    user: str
    modes: list[str]
    subgraphs: bool
    on_disconnect: Literal["cancel", "continue"]
    input: Any
    config: dict
    context: Context
    kwargs: dict[str, Any]


async def run_events(assistant: Assistant, plan: RunPlan) -> AsyncIterator[tuple[str, Any]]:
    """The run as (SSE event name, payload) pairs: ``metadata`` {run_id, attempt}; then per stream part
    ``values``/``updates``/``debug``/... (``mode|ns`` for subgraph parts when stream_subgraphs), ``messages/metadata``
    + ``messages/partial`` (the message accumulated so far) for mode messages, ``messages`` [chunk, metadata] for
    messages-tuple; finally ``end`` {run_id, status: success|interrupted}. Graph errors propagate."""
    yield "metadata", {"run_id": plan.run_id, "attempt": 1}
    modes = set(plan.modes)
    want_partial, want_tuple = "messages" in modes, "messages-tuple" in modes
    graph_modes = sorted((modes - {"messages-tuple"}) | ({"messages"} if want_tuple else set()))
    internal_subgraphs = plan.subgraphs or want_partial or want_tuple
    acc: dict[str, BaseMessage] = {}
    async for item in assistant.graph.astream(plan.input, plan.config, context=plan.context,
                                              stream_mode=graph_modes, subgraphs=internal_subgraphs,
                                              **plan.kwargs):
        ns, mode, chunk = item if internal_subgraphs else ((), *item)
        suffix = ("|" + "|".join(ns)) if ns and plan.subgraphs else ""
        if mode == "messages":
            msg, meta = chunk
            if want_tuple:
                yield "messages" + suffix, [msg, meta]
            if want_partial:
                key = str(msg.id)
                if key in acc and isinstance(msg, BaseMessageChunk):
                    acc[key] = cast(BaseMessageChunk, acc[key]) + msg  # the chunks of one streamed message
                else:
                    if key not in acc:
                        yield "messages/metadata", {key: {"metadata": meta}}
                    acc[key] = msg
                if isinstance(msg, BaseMessageChunk):
                    yield "messages/partial", [message_chunk_to_message(acc[key])]
                else:
                    yield "messages/complete", [msg]
            continue
        if ns and not plan.subgraphs:
            continue
        yield mode + suffix, chunk
    snap = await assistant.graph.aget_state(Assistant.config(plan.thread_id, plan.user))
    yield "end", {"run_id": plan.run_id, "status": "interrupted" if interrupts_by_task(snap) else "success"}


def _safe_error(exc: BaseException) -> dict:
    """What a client may see of a failed run: domain errors verbatim, anything else as 'internal'."""
    if isinstance(exc, MangaAssistError):
        return {"error": type(exc).__name__, "message": str(exc)}
    return {"error": "internal", "message": "the run failed; see the server log"}


class RunTask:
    """A run executing in its own task (it owns the thread's RunGuard lease), feeding a queue of events.

    The lease is taken in ``start`` (ThreadBusy → 409 before any response is sent) and released by the task,
    so it is freed whether the client reads to the end, disconnects, or never reads at all.
    """

    def __init__(self, request: Request, assistant: Assistant, plan: RunPlan, cleanup: Any = None):
        self.request, self.assistant, self.plan, self.cleanup = request, assistant, plan, cleanup
        self.queue: asyncio.Queue = asyncio.Queue()
        self.task: asyncio.Task | None = None

    async def start(self, guard: Any, threads: Any) -> RunTask:
        """Take the thread's lease and start the run's task (kept in ``app.state.lgapi_runs`` while it runs).

        Args:
            guard: The RunGuard; a thread with a run in flight raises ThreadBusy here.
            threads: The thread registry (touched after the run unless there is a ``cleanup``).

        Returns:
            This RunTask, started.
        """
        lease = await guard.acquire(self.plan.thread_id)

        async def body() -> None:
            try:
                async for ev in run_events(self.assistant, self.plan):
                    self.queue.put_nowait(ev)
            except asyncio.CancelledError:
                self.queue.put_nowait(("error", {"error": "cancelled", "message": "the run was cancelled"}))
                raise
            except Exception as exc:
                log.exception("run %s on thread %s failed", self.plan.run_id, self.plan.thread_id)
                self.queue.put_nowait(("error", _safe_error(exc)))
            finally:
                await asyncio.shield(guard.release(lease))
                try:
                    if self.cleanup is not None:
                        await self.cleanup()
                    else:
                        await threads.touch(self.plan.thread_id)
                except Exception:
                    log.exception("after-run bookkeeping failed for thread %s", self.plan.thread_id)
                self.queue.put_nowait(None)

        self.task = asyncio.create_task(body(), name=f"lgapi-run-{self.plan.run_id}")
        running = getattr(self.request.app.state, "lgapi_runs", None)
        if running is None:
            running = self.request.app.state.lgapi_runs = set()
        running.add(self.task)
        self.task.add_done_callback(running.discard)
        return self

    async def events(self) -> AsyncIterator[tuple[str, Any]]:
        """The run's (event name, payload) pairs as they come, ending when the run's task has finished."""
        while (ev := await self.queue.get()) is not None:
            yield ev


def sse_response(run: RunTask) -> StreamingResponse:
    """The started run as a ``text/event-stream`` response (``event: <name>`` / ``data: <json>`` per event).

    A client that disconnects cancels the run unless the plan's ``on_disconnect`` is "continue".
    """
    plan = run.plan

    async def sse() -> AsyncIterator[bytes]:
        try:
            async for name, data in run.events():
                yield b"event: " + name.encode() + b"\ndata: " + dumps(data) + b"\n\n"
        finally:
            if run.task is not None and not run.task.done() and plan.on_disconnect == "cancel":
                run.task.cancel()

    headers = {"Content-Location": f"/threads/{plan.thread_id}/runs/{plan.run_id}", "Cache-Control": "no-store",
               "X-Accel-Buffering": "no"}
    return StreamingResponse(sse(), media_type="text/event-stream", headers=headers)
