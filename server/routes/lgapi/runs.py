"""Runs on a thread or stateless: /threads/{id}/runs/wait and /stream, /runs/wait and /stream.

A run body is validated here into a plan (graph input, config, Context with the authenticated user, streaming
options) after the ownership and daily budget checks; ``streaming`` then executes it in its own task.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from langchain_core.messages import HumanMessage
from langgraph.types import Command
from pydantic import TypeAdapter, ValidationError

from core.context import Context
from core.errors import UnknownThread
from graphs.app import Assistant, validate_text
from server.accounts import UserDayBudget
from server.deps import AssistantDep, DayBudgetDep, RunGuardDep, ThreadsDep, UserDep
from server.errors import ApiError
from server.routes.lgapi.schemas import (
    ASSISTANT_ID,
    GRAPH_ID,
    STREAM_MODES,
    RunCreate,
    base_config,
    check_assistant,
    invalid,
    json_response,
    require_checkpoint,
)
from server.routes.lgapi.streaming import RunTask, sse_response
from server.routes.threads import check_client_write

router = APIRouter(tags=["langgraph"])

_CONTEXT = TypeAdapter(Context)


def _text_of(content: Any) -> str:
    if isinstance(content, list):  # content blocks as Studio may send them
        content = "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return validate_text(content)


def graph_input(raw: dict[str, Any]) -> dict:
    """Run input → graph input: ``{"messages": [...]}`` of user messages (``{"role": "user"|"human",
    "content": str}``, ``{"type": "human", ...}`` or a bare string) → HumanMessage. Raises ApiError 422 otherwise."""
    extra = set(raw) - {"messages"}
    if extra:
        raise invalid(f"input accepts only 'messages' (got {', '.join(sorted(extra))})")
    msgs = raw.get("messages")
    if isinstance(msgs, (str, dict)):
        msgs = [msgs]
    if not isinstance(msgs, list) or not msgs:
        raise invalid("input.messages must be a non-empty list of user messages")
    out = []
    for m in msgs:
        try:
            if isinstance(m, str):
                out.append(HumanMessage(content=_text_of(m)))
                continue
            if not isinstance(m, dict):
                raise ValueError("each message must be an object with role and content")
            role = str(m.get("role") or m.get("type") or "").lower()
            if role not in ("user", "human"):
                raise ValueError(f"only user messages can be sent (got role {role or 'none'!r})")
            kwargs = {"id": str(m["id"])} if m.get("id") else {}
            out.append(HumanMessage(content=_text_of(m.get("content")), **kwargs))
        except ValueError as exc:
            raise invalid(f"input.messages: {exc}") from None
    return {"messages": out}


def _stream_modes(raw: str | list[str]) -> list[str]:
    modes = [raw] if isinstance(raw, str) else list(raw)
    bad = [m for m in modes if m not in STREAM_MODES]
    if bad or not modes:
        raise invalid(f"unsupported stream_mode {bad or modes}; supported: {', '.join(STREAM_MODES)}")
    return list(dict.fromkeys(modes))


class _Plan:
    """A validated run: graph input, config, Context and streaming options (a ``streaming.RunPlan``)."""

    def __init__(self, body: RunCreate, thread_id: str, user: str, assistant: Assistant, modes: list[str]):
        check_assistant(body.assistant_id)
        if body.webhook or body.after_seconds:
            raise invalid("webhook and after_seconds are not supported")
        if body.input is not None and body.command is not None:
            raise invalid("send either input or command, not both")
        self.run_id = str(uuid.uuid4())
        self.thread_id, self.user, self.modes = thread_id, user, modes
        self.subgraphs = body.stream_subgraphs
        self.on_disconnect = body.on_disconnect or "cancel"
        if body.command is not None:
            given = body.command.model_fields_set
            if not given & {"resume", "update", "goto"}:
                raise invalid("command needs resume, update or goto")
            kw: dict[str, Any] = {}
            if "resume" in given:
                kw["resume"] = body.command.resume
            if body.command.update is not None:
                kw["update"] = body.command.update
            if body.command.goto is not None:
                kw["goto"] = body.command.goto
            self.input: Any = Command(**kw)
        elif body.input is not None:
            self.input = graph_input(body.input)
        else:
            self.input = None  # continue (or re-run from ``checkpoint``) without new input
        cfg = base_config(thread_id, user, body.checkpoint, body.checkpoint_id)
        client_cfg = body.config or {}
        if isinstance(client_cfg.get("recursion_limit"), int) and client_cfg["recursion_limit"] > 0:
            cfg["recursion_limit"] = client_cfg["recursion_limit"]
        if isinstance(client_cfg.get("tags"), list):
            cfg["tags"] = [str(t) for t in client_cfg["tags"]]
        cfg["metadata"] = {**(body.metadata or {}), "user_id": user, "run_id": self.run_id,
                           "assistant_id": ASSISTANT_ID, "graph_id": GRAPH_ID}
        cfg["run_id"] = uuid.UUID(self.run_id)
        self.config = cfg
        overrides = {k: v for k, v in (body.context or {}).items() if k != "user_id"}
        base = dataclasses.asdict(assistant.context(user))
        try:
            ctx = _CONTEXT.validate_python({**base, **overrides})
        except ValidationError as exc:
            raise invalid("context: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                                 for e in exc.errors())) from None
        self.context = dataclasses.replace(ctx, user_id=user)
        self.kwargs: dict[str, Any] = {}
        if body.interrupt_before is not None:
            self.kwargs["interrupt_before"] = body.interrupt_before
        if body.interrupt_after is not None:
            self.kwargs["interrupt_after"] = body.interrupt_after
        if body.durability is not None:
            self.kwargs["durability"] = body.durability


async def _prepare(body: RunCreate, thread_id: str | None, user: str, threads: Any, assistant: Assistant,
                   modes: list[str], budget: UserDayBudget) -> tuple[_Plan, Any]:
    """Ownership check, the caller's daily budget (429 before any thread is created), creation (stateless or
    ``if_not_exists``), plan validation; returns the plan and an after-run cleanup (stateless)."""
    if body.command is not None and body.command.update:
        check_client_write(body.command.update)
    create = False
    if thread_id is not None:
        try:
            await threads.get(user, thread_id)
        except UnknownThread:
            if body.if_not_exists != "create":
                raise
            create = True
    await budget.check(user)
    cleanup = None
    if thread_id is None:  # stateless run: a temporary thread of the caller
        row = await threads.create(user, None, {"stateless": True})
        thread_id = row["thread_id"]
        if (body.on_completion or "delete") == "delete":
            async def cleanup() -> None:
                await threads.delete(user, thread_id)
        else:
            async def cleanup() -> None:
                await threads.touch(thread_id)
    elif create:
        try:
            await threads.create(user, thread_id)
        except (ValueError, FileExistsError):
            raise UnknownThread(f"thread {thread_id} not found") from None
    try:
        plan = _Plan(body, thread_id, user, assistant, modes)
        await require_checkpoint(assistant, plan.config)
    except BaseException:
        if cleanup is not None:
            await cleanup()
        raise
    return plan, cleanup


async def _wait(request: Request, body: RunCreate, thread_id: str | None, user: str, threads: Any,
                assistant: Assistant, guard: Any, budget: UserDayBudget) -> Response:
    plan, cleanup = await _prepare(body, thread_id, user, threads, assistant, ["values"], budget)
    run = await RunTask(request, assistant, plan, cleanup).start(guard, threads)
    values: Any = None
    async for name, data in run.events():
        if name == "values":
            values = data
        elif name == "error":
            status = 500 if data["error"] == "internal" else 400
            raise ApiError(status, "run_failed" if status == 400 else "internal", data["message"])
    headers = {"Content-Location": f"/threads/{plan.thread_id}/runs/{plan.run_id}"}
    return json_response(values if values is not None else {}, headers=headers)


async def _stream(request: Request, body: RunCreate, thread_id: str | None, user: str, threads: Any,
                  assistant: Assistant, guard: Any, budget: UserDayBudget) -> StreamingResponse:
    plan, cleanup = await _prepare(body, thread_id, user, threads, assistant, _stream_modes(body.stream_mode),
                                   budget)
    run = await RunTask(request, assistant, plan, cleanup).start(guard, threads)
    return sse_response(run)


@router.post("/threads/{thread_id}/runs/wait")
async def wait_run(thread_id: str, body: RunCreate, request: Request, user: UserDep, threads: ThreadsDep,
                   assistant: AssistantDep, guard: RunGuardDep, budget: DayBudgetDep) -> Response:
    """Run to completion and return the final state values (with ``__interrupt__`` when the run stopped on an
    interrupt). ``input`` {messages}, or ``command`` {resume}; ``checkpoint``/``checkpoint_id`` re-runs from a
    past checkpoint (with no input: replay from there; with input: a new branch). 404 unknown/foreign thread,
    409 thread busy, 422 invalid body (``server_owned_channels`` for a ``command.update`` of server channels),
    429 ``daily_budget_exceeded`` when the caller's day is spent (nothing runs)."""
    return await _wait(request, body, thread_id, user, threads, assistant, guard, budget)


@router.post("/threads/{thread_id}/runs/stream")
async def stream_run(thread_id: str, body: RunCreate, request: Request, user: UserDep, threads: ThreadsDep,
                     assistant: AssistantDep, guard: RunGuardDep, budget: DayBudgetDep) -> StreamingResponse:
    """Run and stream Server-Sent Events (see ``run_events`` for the event names). Same body and errors as
    runs/wait; errors during the run arrive as an ``error`` event before the stream closes."""
    return await _stream(request, body, thread_id, user, threads, assistant, guard, budget)


@router.post("/runs/wait")
async def wait_stateless(body: RunCreate, request: Request, user: UserDep, threads: ThreadsDep,
                         assistant: AssistantDep, guard: RunGuardDep, budget: DayBudgetDep) -> Response:
    """Stateless run on a temporary thread (deleted afterwards unless ``on_completion: "keep"``)."""
    return await _wait(request, body, None, user, threads, assistant, guard, budget)


@router.post("/runs/stream")
async def stream_stateless(body: RunCreate, request: Request, user: UserDep, threads: ThreadsDep,
                           assistant: AssistantDep, guard: RunGuardDep, budget: DayBudgetDep) -> StreamingResponse:
    """Stateless streaming run on a temporary thread (deleted afterwards unless ``on_completion: "keep"``)."""
    return await _stream(request, body, None, user, threads, assistant, guard, budget)
