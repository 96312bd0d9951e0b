"""Threads of the caller and what is stored on them: create, search, get, delete, state (read, edit, fork) and
history. Another user's thread answers 404 on every route, exactly like an unknown one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from langgraph.errors import InvalidUpdateError

from core.errors import UnknownThread
from graphs.app import Assistant
from server.deps import AssistantDep, RunGuardDep, ThreadsDep, UserDep
from server.errors import ApiError
from server.ids import CHECKPOINT_ID_PATTERN
from server.routes.lgapi.schemas import (
    HistoryQuery,
    StateAtCheckpoint,
    StateUpdate,
    ThreadCreate,
    ThreadSearch,
    base_config,
    checkpoint_of,
    interrupts_by_task,
    invalid,
    json_response,
    require_checkpoint,
    thread_state,
)
from server.routes.threads import check_client_write

router = APIRouter(tags=["langgraph"])


async def thread_object(assistant: Assistant, row: dict, user: str, busy: bool = False) -> dict:
    """SDK ``Thread``: the registry record plus status (idle/busy/interrupted), current values and interrupts."""
    snap = await assistant.graph.aget_state(Assistant.config(row["thread_id"], user))
    interrupts = interrupts_by_task(snap)
    status = "busy" if busy else ("interrupted" if interrupts else "idle")
    return {"thread_id": row["thread_id"], "created_at": row["created_at"], "updated_at": row["updated_at"],
            "metadata": row.get("metadata") or {}, "status": status, "values": snap.values or None,
            "interrupts": interrupts, "config": {}}


# ---- threads --------------------------------------------------------------------------------------------------

@router.post("/threads")
async def create_thread(body: ThreadCreate, user: UserDep, threads: ThreadsDep, assistant: AssistantDep,
                        guard: RunGuardDep) -> Response:
    """Register a thread for the caller. An id already taken is 409 (``if_exists: "do_nothing"`` returns the
    caller's own existing thread instead; someone else's id is still 409, without saying whose)."""
    if body.supersteps:
        raise invalid("supersteps (thread copying) are not supported")
    try:
        row = await threads.create(user, body.thread_id, body.metadata)
    except ValueError as exc:
        raise invalid(str(exc)) from None
    except FileExistsError:
        if body.if_exists == "do_nothing":
            try:
                row = await threads.get(user, body.thread_id or "")
            except UnknownThread:
                raise ApiError(409, "thread_exists", f"thread {body.thread_id} already exists") from None
        else:
            raise ApiError(409, "thread_exists", f"thread {body.thread_id} already exists") from None
    return json_response(await thread_object(assistant, row, user, guard.busy_locally(row["thread_id"])))


@router.post("/threads/search")
async def search_threads(body: ThreadSearch, user: UserDep, threads: ThreadsDep, assistant: AssistantDep,
                         guard: RunGuardDep) -> Response:
    """The caller's threads (most recently updated first), filtered by metadata (exact), ids and status."""
    wanted_ids = set(body.ids) if body.ids is not None else None
    filtering = bool(body.metadata) or wanted_ids is not None or body.status is not None
    rows = await threads.list(user, limit=1000 if filtering else body.limit, offset=0 if filtering else body.offset)
    out = []
    for row in rows:
        if wanted_ids is not None and row["thread_id"] not in wanted_ids:
            continue
        meta = row.get("metadata") or {}
        if any(meta.get(k) != v for k, v in (body.metadata or {}).items()):
            continue
        obj = await thread_object(assistant, row, user, guard.busy_locally(row["thread_id"]))
        if body.status is not None and obj["status"] != body.status:
            continue
        out.append(obj)
    if filtering:
        out = out[body.offset: body.offset + body.limit]
    return json_response(out)


@router.get("/threads/{thread_id}")
async def get_thread(thread_id: str, user: UserDep, threads: ThreadsDep, assistant: AssistantDep,
                     guard: RunGuardDep) -> Response:
    """One of the caller's threads; 404 ``thread_not_found`` when unknown or not theirs."""
    row = await threads.get(user, thread_id)
    return json_response(await thread_object(assistant, row, user, guard.busy_locally(thread_id)))


@router.delete("/threads/{thread_id}", status_code=204)
async def delete_thread(thread_id: str, user: UserDep, threads: ThreadsDep, guard: RunGuardDep) -> Response:
    """Delete the thread and its checkpoints (409 while a run is in flight on it)."""
    await threads.get(user, thread_id)
    lease = await guard.acquire(thread_id)
    try:
        await threads.delete(user, thread_id)
    finally:
        await guard.release(lease)
    return Response(status_code=204)


# ---- state and history ----------------------------------------------------------------------------------------

@router.get("/threads/{thread_id}/state")
async def get_state(thread_id: str, user: UserDep, threads: ThreadsDep, assistant: AssistantDep,
                    subgraphs: bool = False) -> Response:
    """Latest ThreadState (``subgraphs=true`` nests pending subgraph states in ``tasks[].state``)."""
    await threads.get(user, thread_id)
    snap = await assistant.graph.aget_state(base_config(thread_id, user), subgraphs=subgraphs)
    return json_response(thread_state(snap))


@router.get("/threads/{thread_id}/state/{checkpoint_id}")
async def get_state_at(thread_id: str, checkpoint_id: Annotated[str, Path(pattern=CHECKPOINT_ID_PATTERN)],
                       user: UserDep, threads: ThreadsDep,
                       assistant: AssistantDep, subgraphs: bool = False) -> Response:
    """ThreadState at a root checkpoint of this thread; 404 ``checkpoint_not_found`` when absent."""
    await threads.get(user, thread_id)
    cfg = base_config(thread_id, user, checkpoint_id=checkpoint_id)
    await require_checkpoint(assistant, cfg)
    return json_response(thread_state(await assistant.graph.aget_state(cfg, subgraphs=subgraphs)))


@router.post("/threads/{thread_id}/state/checkpoint")
async def post_state_at(thread_id: str, body: StateAtCheckpoint, user: UserDep, threads: ThreadsDep,
                        assistant: AssistantDep) -> Response:
    """ThreadState at ``checkpoint`` (root or a subgraph namespace) of this thread."""
    await threads.get(user, thread_id)
    cfg = base_config(thread_id, user, body.checkpoint)
    await require_checkpoint(assistant, cfg)
    return json_response(thread_state(await assistant.graph.aget_state(cfg, subgraphs=body.subgraphs)))


@router.post("/threads/{thread_id}/state")
async def update_state(thread_id: str, body: StateUpdate, user: UserDep, threads: ThreadsDep,
                       assistant: AssistantDep, guard: RunGuardDep) -> Response:
    """Edit state (``update_state``): at the latest checkpoint, or at ``checkpoint``/``checkpoint_id`` — a fork,
    a new branch whose parent is that past checkpoint. Returns ``{"checkpoint": Checkpoint}`` of the new state;
    run from it with ``checkpoint`` and no input. 422 for unknown state keys or nodes, 422 ``server_owned_channels``
    for channels only the server writes (usage, budgets, turn bookkeeping); 409 while a run is in flight."""
    await threads.get(user, thread_id)
    if body.as_node is not None and body.as_node not in assistant.graph.nodes:
        raise invalid(f"as_node {body.as_node!r} is not a node of the graph")
    unknown = sorted(set(body.values or {}) - set(assistant.graph.stream_channels_list))
    if unknown:
        raise invalid(f"values has keys that are not state fields: {', '.join(unknown)}")
    cfg = base_config(thread_id, user, body.checkpoint, body.checkpoint_id)
    check_client_write(body.values, cfg["configurable"].get("checkpoint_ns") or "")
    await require_checkpoint(assistant, cfg)
    lease = await guard.acquire(thread_id)
    try:
        new_cfg = await assistant.graph.aupdate_state(cfg, body.values, as_node=body.as_node)
    except (InvalidUpdateError, ValueError) as exc:
        raise invalid(f"invalid state update: {exc}") from None
    finally:
        await guard.release(lease)
    await threads.touch(thread_id)
    return json_response({"checkpoint": checkpoint_of(new_cfg)})


async def _history(assistant: Assistant, thread_id: str, user: str, q: HistoryQuery) -> list[dict]:
    cfg = base_config(thread_id, user, q.checkpoint)
    before = None
    if q.before is not None:
        before_id = q.before if isinstance(q.before, str) else q.before.checkpoint_id
        if before_id:
            before = base_config(thread_id, user, q.checkpoint, before_id)
    out = []
    async for snap in assistant.graph.aget_state_history(cfg, filter=q.metadata or None, before=before,
                                                         limit=q.limit):
        out.append(thread_state(snap))
    return out


@router.post("/threads/{thread_id}/history")
async def post_history(thread_id: str, body: HistoryQuery, user: UserDep, threads: ThreadsDep,
                       assistant: AssistantDep) -> Response:
    """Checkpoints newest first as ThreadState objects (``checkpoint.checkpoint_ns`` for a subgraph's)."""
    await threads.get(user, thread_id)
    return json_response(await _history(assistant, thread_id, user, body))


@router.get("/threads/{thread_id}/history")
async def get_history(thread_id: str, user: UserDep, threads: ThreadsDep, assistant: AssistantDep,
                      limit: int = Query(10, ge=1, le=1000), before: str | None = None) -> Response:
    """GET form of the history (limit, before=checkpoint_id)."""
    await threads.get(user, thread_id)
    return json_response(await _history(assistant, thread_id, user, HistoryQuery(limit=limit, before=before)))
