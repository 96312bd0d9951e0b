"""WebSocket ``/v1/ws/threads/{thread_id}``: send messages/resumes/cancels, receive node, token, interrupt and
final events of every run on the thread (from any instance when REDIS_URL is set).

Protocol (JSON text frames):
- client → server: ``{"type": "message", "text": str}``, ``{"type": "resume", "value": str|bool}`` (answers the
  pending confirmation), ``{"type": "cancel"}`` (cancels the thread's run wherever it executes). A message or
  resume may carry ``"durability": "sync"|"async"|"exit"`` (default: the server's ``checkpoint_durability``,
  normally "exit"; "async" checkpoints every step of that run, for debugging).
- server → client: ``{"type": "node", "event": "start"|"end", "node": str, "agent": str|null}`` (agent = the
  specialist whose subgraph runs the node), ``{"type": "token", "text": str, "agent": str}`` (writer tokens of a
  specialist's ``respond`` node), ``{"type": "interrupt", "action", "order_id", "prompt"}``, ``{"type": "final",
  ...turn JSON...}``, ``{"type": "error", "code", "message"}`` (the socket stays open after an error frame).
Authentication: ``?api_key=`` or ``X-Api-Key`` / ``Authorization: Bearer``; failure, or a thread that is not the
caller's, closes the socket with code 1008 right after the handshake.
A message or resume from a caller whose daily model budget is used up is answered with an error frame
``daily_budget_exceeded`` before anything runs (nothing is written to the thread).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from langchain_core.messages import AIMessageChunk
from langgraph.types import Command

from graphs.app import pending_interrupt, validate_durability, validate_text
from server.accounts import UserDayBudget
from server.deps import accept_thread_socket
from server.errors import ApiError, ThreadBusy
from server.events import Lease

log = logging.getLogger(__name__)
router = APIRouter(tags=["websocket"])

MAX_FRAME_CHARS = 16_000
STREAM_MODES = ["updates", "messages", "tasks"]


def agent_of(ns: tuple[str, ...], node: str | None = None) -> str | None:
    """The specialist running a node: from the subgraph namespace (``("order_agent:<task id>",)`` → "order"),
    or the node itself when it is a specialist node of the supervisor; None for supervisor nodes."""
    head = ns[0].split(":", 1)[0] if ns else (node or "")
    return head.removesuffix("_agent") if head.endswith("_agent") else None


def translate(ns: tuple[str, ...], mode: str, payload: Any) -> dict | None:
    """One LangGraph stream event (``astream(..., stream_mode=STREAM_MODES, subgraphs=True)``) → a WS frame or None.

    tasks: a start payload has ``input``; an end payload has ``result``/``error``. messages: only
    AIMessageChunks emitted inside a ``respond`` node (the writer's tokens) become token frames.
    """
    if mode == "tasks" and isinstance(payload, dict):
        name = payload.get("name") or ""
        if name.startswith("__"):
            return None
        event = "start" if "input" in payload else "end"
        return {"type": "node", "event": event, "node": name, "agent": agent_of(ns, name),
                "namespace": list(ns)}
    if mode == "messages" and isinstance(payload, tuple) and len(payload) == 2:
        chunk, meta = payload
        if isinstance(chunk, AIMessageChunk) and (meta or {}).get("langgraph_node") == "respond":
            text = chunk.content if isinstance(chunk.content, str) else chunk.text
            if text:
                return {"type": "token", "text": text, "agent": agent_of(ns)}
    return None


def _error(code: str, message: str) -> dict:
    return {"type": "error", "code": code, "message": message}


async def _execute(app: Any, thread_id: str, user: str, inp: Any, lease: Lease, durability: str | None = None) -> None:
    """Stream one run to the broker (node/token events), release the guard, then publish the closing frames
    (interrupt and final, or an error frame: ``cancelled`` after ``{"type": "cancel"}``, ``internal`` on a bug).
    The guard is released first so a client may send its next message as soon as it sees the final frame."""
    assistant, broker, guard = app.state.assistant, app.state.broker, app.state.run_guard
    tail: list[dict] = []
    try:
        async with broker.register_run(thread_id):
            t0 = time.perf_counter()
            cfg = assistant.config(thread_id, user)
            async for ns, mode, payload in assistant.graph.astream(
                    inp, cfg, context=assistant.context(user), stream_mode=STREAM_MODES, subgraphs=True,
                    durability=durability or assistant.deps.settings.checkpoint_durability):
                frame = translate(ns, mode, payload)
                if frame is not None:
                    await broker.publish(thread_id, frame)
            out = await assistant.result(thread_id, user, (time.perf_counter() - t0) * 1000)
            if out["interrupt"]:
                tail.append({"type": "interrupt", **out["interrupt"]})
            tail.append({"type": "final", **out})
    except asyncio.CancelledError:
        log.info("run cancelled", extra={"thread_id": thread_id})
        tail = [_error("cancelled", "the run was cancelled")]
    except Exception:
        log.exception("run failed", extra={"thread_id": thread_id})
        tail = [_error("internal", "the run failed; see the server logs")]
    finally:
        await guard.release(lease)
    try:
        await app.state.threads.touch(thread_id)
    except Exception:
        log.warning("could not touch thread %s", thread_id)
    for frame in tail:
        await broker.publish(thread_id, frame)


async def _forward(websocket: WebSocket, queue: asyncio.Queue) -> None:
    """The only task that sends on the socket: events of the thread and this client's own error frames."""
    while True:
        frame = await queue.get()
        await websocket.send_text(json.dumps(frame, ensure_ascii=False, default=str))


async def _start(app: Any, websocket: WebSocket, queue: asyncio.Queue, thread_id: str, user: str,
                 frame: dict) -> None:
    """Validate a message/resume frame, check the caller's daily budget, take the run guard, start the run task
    (errors → error frames)."""
    assistant = app.state.assistant
    kind = frame["type"]
    try:
        if kind == "message":
            text = validate_text(frame.get("text"))
        else:
            value = frame.get("value")
            if isinstance(value, bool):
                value = "yes" if value else "no"
            text = validate_text(value)
        durability = validate_durability(frame.get("durability"))
    except ValueError as exc:
        queue.put_nowait(_error("invalid_input", str(exc)))
        return
    try:
        await UserDayBudget.of(assistant).check(user)
    except ApiError as exc:  # daily_budget_exceeded: refused before any model work
        queue.put_nowait(_error(exc.code, exc.message))
        return
    try:
        lease = await app.state.run_guard.acquire(thread_id)
    except ThreadBusy as exc:
        queue.put_nowait(_error(exc.code, exc.message))
        return
    try:
        if kind == "resume":
            snap = await assistant.graph.aget_state(assistant.config(thread_id, user))
            if pending_interrupt(snap) is None:
                raise ApiError(409, "no_pending_interrupt", "this thread is not waiting for a confirmation")
            inp: Any = Command(resume=text)
        else:
            inp = await assistant.input_for(thread_id, user, text)
    except ApiError as exc:
        await app.state.run_guard.release(lease)
        queue.put_nowait(_error(exc.code, exc.message))
        return
    except BaseException:
        await app.state.run_guard.release(lease)
        raise
    task = asyncio.create_task(_execute(app, thread_id, user, inp, lease, durability), name=f"run:{thread_id}")
    app.state.ws_runs = getattr(app.state, "ws_runs", set())
    app.state.ws_runs.add(task)  # keep a strong reference: the run outlives a client that disconnects
    task.add_done_callback(app.state.ws_runs.discard)


def _parse(raw: str) -> dict:
    """Decode a client frame; raises ApiError(400, bad_frame|unknown_type) with a readable message."""
    if len(raw) > MAX_FRAME_CHARS:
        raise ApiError(400, "frame_too_large", f"frames are limited to {MAX_FRAME_CHARS} characters")
    try:
        frame = json.loads(raw)
    except ValueError:
        raise ApiError(400, "bad_frame", "frames must be JSON objects") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise ApiError(400, "bad_frame", 'frames must be JSON objects with a string "type"')
    if frame["type"] not in ("message", "resume", "cancel"):
        raise ApiError(400, "unknown_type", f'unknown frame type {frame["type"][:40]!r} (message, resume, cancel)')
    return frame


@router.websocket("/ws/threads/{thread_id}")
async def thread_socket(websocket: WebSocket, thread_id: str) -> None:
    """Chat on ``thread_id`` over a WebSocket and observe every run on it (see the module docstring)."""
    app = websocket.app
    user = await accept_thread_socket(websocket, thread_id)
    if user is None:
        return
    broker = app.state.broker
    async with broker.subscribe(thread_id) as queue:
        sender = asyncio.create_task(_forward(websocket, queue))
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                try:
                    if message.get("text") is None:
                        raise ApiError(400, "bad_frame", "send JSON text frames, not binary")
                    frame = _parse(message["text"])
                except ApiError as exc:
                    queue.put_nowait(_error(exc.code, exc.message))
                    continue
                if frame["type"] == "cancel":
                    await broker.cancel(thread_id)
                else:
                    await _start(app, websocket, queue, thread_id, user, frame)
        except WebSocketDisconnect:
            pass
        except RuntimeError as exc:  # receive after the peer vanished mid-frame
            log.info("websocket closed: %s", exc)
        finally:
            sender.cancel()
