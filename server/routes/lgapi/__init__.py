"""LangGraph Agent Server API subset (assistants, threads, state, history, runs over SSE) for langgraph-sdk and Studio.

Served at the root (no prefix) so ``langgraph_sdk.get_client(url=..., api_key=...)`` works unchanged. Shapes follow
the LangGraph Agent Server API (the SDK's ``langgraph_sdk.schema`` TypedDicts): Assistant, Thread, ThreadState,
Checkpoint, Interrupt, and SSE runs whose events are ``metadata`` first, then one event per stream part, then ``end``.

What differs from the hosted server, on purpose:
- One assistant: graph_id ``mangaassist``, assistant_id ``uuid5(NAMESPACE_URL, "mangaassist")`` (either id works).
- Identity: the run's Context is ``Assistant.context(user_id)`` with the *authenticated* user; ``context.user_id``,
  ``config.configurable`` and ``metadata.user_id`` sent by the client never change who the run acts for.
  Other Context fields (locale, search_k, ...) may be overridden through ``context``.
- Threads must be created first (``POST /threads``, or ``if_not_exists: "create"`` on a run); another user's thread
  answers 404 on every route, exactly like an unknown one.
- Double texting: one run per thread (RunGuard). ``multitask_strategy`` may be omitted or "reject": a run while
  another is in flight is 409 ``thread_busy``. "interrupt", "rollback" and "enqueue" are not implemented and are
  refused with 422 ``invalid_input`` naming what is supported (before anything runs or is created).
- Token streaming: stream modes ``messages``/``messages-tuple`` always carry the tokens of models running inside
  specialist subgraphs (our writer lives there); other modes include subgraph events only with
  ``stream_subgraphs: true`` (event names ``mode|<namespace>``).
- Spend is the server's: ``update_state`` (also at a past checkpoint: a fork) and a run's ``command.update`` may
  write only client channels (server/routes/threads.py ``writable_channels``), else 422 ``server_owned_channels``
  naming the others; every run first checks the caller's daily model budget (429 ``daily_budget_exceeded`` with
  Retry-After, before any thread is created or anything is written).
- Not served: crons, store, background runs (``POST /threads/{id}/runs``), run listing/join/cancel, assistant
  versions, webhooks, ``after_seconds``, stream mode ``events``, thread copy/patch/prune.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Mapping, Optional, cast

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from langchain_core.messages import BaseMessage, BaseMessageChunk, HumanMessage, message_chunk_to_message
from langgraph.errors import InvalidUpdateError
from langgraph.types import Command, Interrupt, Send, StateSnapshot
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from core.context import Context
from core.errors import MangaAssistError, UnknownThread
from graphs.app import Assistant, reject_unstorable, validate_text
from server.accounts import UserDayBudget
from server.deps import AssistantDep, DayBudgetDep, RunGuardDep, ThreadsDep, UserDep
from server.errors import ApiError
from server.ids import CHECKPOINT_ID_PATTERN, MAX_OFFSET
from server.routes.threads import check_client_write

log = logging.getLogger(__name__)
router = APIRouter(tags=["langgraph"])

GRAPH_ID = "mangaassist"
"""The graph id of our single assistant (the name in langgraph.json)."""
ASSISTANT_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, GRAPH_ID))
"""Stable assistant id derived from the graph id (UUID5 in the URL namespace)."""
STREAM_MODES = ("values", "updates", "messages", "messages-tuple", "debug", "tasks", "checkpoints", "custom")
"""Stream modes served; ``events`` is not."""
MULTITASK_STRATEGIES = ("reject",)
"""Double-texting strategies served: "reject" (a second run while one is in flight is 409 ``thread_busy``). The
Agent Server's "interrupt", "rollback" and "enqueue" are refused with 422 until they are implemented."""
_CONTEXT = TypeAdapter(Context)
_STARTED_AT = datetime.now(UTC).isoformat()


# ---- JSON ------------------------------------------------------------------------------------------------------

def _default(obj: Any) -> Any:
    """orjson fallback: messages and other pydantic models, interrupts, Send/Command, sets, enums; else str()."""
    if isinstance(obj, Interrupt):
        out = {"value": obj.value, "id": obj.id}
        if getattr(obj, "response_schema", None) is not None:
            out["response_schema"] = obj.response_schema
        return out
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, Send):
        return {"node": obj.node, "arg": obj.arg}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, bytes):
        return obj.decode("utf-8", errors="replace")
    return str(obj)


def dumps(obj: Any) -> bytes:
    """JSON bytes of anything a graph emits (messages, interrupts, snapshots' parts).

    orjson refuses integers beyond 64 bits, and PostgreSQL hands some back: JSONB stores numbers as ``numeric``
    and prints a float such as 1e20 in thread metadata as the integer 100000000000000000000. Such a document is
    written by the standard library instead (slower, same JSON), so a stored thread can always be served."""
    try:
        return orjson.dumps(obj, default=_default,
                            option=orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_SERIALIZE_NUMPY)
    except TypeError as exc:
        if "64-bit" not in str(exc):
            raise
        return json.dumps(obj, default=_default, ensure_ascii=False, separators=(",", ":")).encode()


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(obj), status_code=status, media_type="application/json", headers=headers)


# ---- request bodies -------------------------------------------------------------------------------------------

class _Body(BaseModel):
    """Base of the request bodies: unknown fields ignored (SDK versions differ); NUL characters and integers beyond 64 bits refused (422)."""

    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        reject_unstorable(data)
        return data


class CheckpointRef(_Body):
    """A Checkpoint as the SDK sends it. ``thread_id`` is ignored: the path's thread is always used."""

    thread_id: str | None = None
    checkpoint_ns: str = ""
    checkpoint_id: str | None = Field(None, pattern=CHECKPOINT_ID_PATTERN)
    checkpoint_map: dict[str, Any] | None = None


class AssistantSearch(_Body):
    """POST /assistants/search body."""

    graph_id: str | None = None
    metadata: dict[str, Any] | None = None
    name: str | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class ThreadCreate(_Body):
    """POST /threads body. ``supersteps`` (thread copying) is not supported."""

    thread_id: str | None = None
    metadata: dict[str, Any] | None = None
    if_exists: Literal["raise", "do_nothing"] | None = None
    supersteps: list[Any] | None = None


class ThreadSearch(_Body):
    """POST /threads/search body (the caller's threads only)."""

    metadata: dict[str, Any] | None = None
    ids: list[str] | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class StateUpdate(_Body):
    """POST /threads/{id}/state body: edit the latest state, or fork from ``checkpoint``/``checkpoint_id``."""

    values: dict[str, Any] | None = None
    as_node: str | None = None
    checkpoint: CheckpointRef | None = None
    checkpoint_id: str | None = Field(None, pattern=CHECKPOINT_ID_PATTERN)


class StateAtCheckpoint(_Body):
    """POST /threads/{id}/state/checkpoint body."""

    checkpoint: CheckpointRef
    subgraphs: bool = False


class HistoryQuery(_Body):
    """POST /threads/{id}/history body; ``checkpoint.checkpoint_ns`` selects a subgraph's history."""

    limit: int = Field(10, ge=1, le=1000)
    before: str | CheckpointRef | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: CheckpointRef | None = None


class RunCommand(_Body):
    """A Command: ``resume`` answers a pending interrupt; ``update``/``goto`` as in langgraph.types.Command."""

    resume: Any = None
    update: dict[str, Any] | None = None
    goto: str | list[str] | None = None


class RunCreate(_Body):
    """POST .../runs/wait and .../runs/stream body (the SDK's RunCreate plus streaming options)."""

    assistant_id: str
    input: dict[str, Any] | None = None
    command: RunCommand | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    stream_mode: str | list[str] = "values"
    stream_subgraphs: bool = False
    checkpoint: CheckpointRef | None = None
    checkpoint_id: str | None = Field(None, pattern=CHECKPOINT_ID_PATTERN)
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    multitask_strategy: Literal["reject"] | None = None
    if_not_exists: Literal["create", "reject"] | None = None
    on_disconnect: Literal["cancel", "continue"] | None = None
    on_completion: Literal["delete", "keep"] | None = None
    durability: Literal["sync", "async", "exit"] | None = None
    webhook: str | None = None
    after_seconds: float | None = None

    @field_validator("multitask_strategy", mode="before")
    @classmethod
    def _served_strategy(cls, value: Any) -> Any:
        """Refuse a strategy we do not implement rather than silently acting as "reject" (422 naming the supported)."""
        if value is None or value in MULTITASK_STRATEGIES:
            return value
        raise PydanticCustomError(
            "unsupported_multitask_strategy",
            "{value} is not supported; supported: {supported} (a run while another is in flight is 409 thread_busy)",
            {"value": repr(value)[:40], "supported": ", ".join(repr(v) for v in MULTITASK_STRATEGIES)})


def _invalid(message: str) -> ApiError:
    return ApiError(422, "invalid_input", message)


# ---- assistants -----------------------------------------------------------------------------------------------

def assistant_object() -> dict:
    """The single Assistant (SDK ``Assistant`` shape)."""
    return {"assistant_id": ASSISTANT_ID, "graph_id": GRAPH_ID, "name": GRAPH_ID,
            "description": "MangaAssist supervisor: search, recommend, order and conversation specialists.",
            "config": {}, "context": {}, "metadata": {"created_by": "system"}, "version": 1,
            "created_at": _STARTED_AT, "updated_at": _STARTED_AT}


def _check_assistant(assistant_id: str) -> None:
    if assistant_id not in (ASSISTANT_ID, GRAPH_ID):
        raise ApiError(404, "assistant_not_found", f"assistant {assistant_id} not found")


def _xray(value: str) -> bool | int:
    v = value.strip().lower()
    if v in ("true", "false"):
        return v == "true"
    if v.isdigit():
        return int(v)
    raise _invalid("xray must be true, false or a depth (integer)")


def channels_jsonschema(graph: Any, names: Any, title: str) -> dict:
    """JSON schema of an object with one property per named state channel, typed by the channel's update type
    (pydantic), ``Any`` where a type has no JSON schema."""
    names = [names] if isinstance(names, str) else list(names)
    fields: dict[str, Any] = {}
    for name in names:
        typ = getattr(graph.channels[name], "UpdateType", Any)
        try:
            TypeAdapter(typ).json_schema()
        except Exception:
            typ = Any
        fields[name] = (Optional[typ], None)  # noqa: UP045 (runtime union over arbitrary typing objects)
    return create_model(title, **fields).model_json_schema()


def _input_keys(graph: Any) -> list[str]:
    """State keys a caller may send: the builder's input schema keys (TypedDict annotations)."""
    schema = getattr(getattr(graph, "builder", None), "input_schema", None)
    keys = [k for k in getattr(schema, "__annotations__", {}) if k in graph.channels]
    return keys or list(graph.stream_channels_list)


def state_jsonschema(graph: Any) -> dict:
    """JSON schema of the graph's full state (every stream channel)."""
    return channels_jsonschema(graph, graph.stream_channels_list, graph.get_name("State"))


def graph_schemas(graph: Any) -> dict:
    """SDK ``GraphSchema``: input/output/state/config/context JSON schemas (None when one cannot be built)."""
    def attempt(fn: Any, fallback: Any = None) -> dict | None:
        try:
            out = fn()
            if fallback is not None and not out.get("properties"):
                return attempt(fallback)
            return out
        except Exception as exc:
            if fallback is not None:
                return attempt(fallback)
            log.warning("schema of %s not available: %s", graph.get_name(), exc)
            return None

    # langgraph's own input/output schemas need typing_extensions.TypedDict on Python < 3.12 (else they raise or
    # come out empty); fall back to the input/output channels' update types then
    return {"graph_id": GRAPH_ID,
            "input_schema": attempt(graph.get_input_jsonschema,
                                    lambda: channels_jsonschema(graph, _input_keys(graph), graph.get_name("Input"))),
            "output_schema": attempt(graph.get_output_jsonschema,
                                     lambda: channels_jsonschema(graph, graph.output_channels,
                                                                 graph.get_name("Output"))),
            "state_schema": attempt(lambda: state_jsonschema(graph)),
            "config_schema": None,  # nothing is read from config.configurable: per-run values travel in Context
            "context_schema": attempt(graph.get_context_jsonschema)}


@router.get("/info")
async def info() -> Response:
    """Server capabilities (what Studio reads on connect)."""
    import langgraph.version

    return _json({"version": "mangaassist-1", "langgraph_py_version": langgraph.version.__version__,
                  "flags": {"assistants": True, "crons": False, "langsmith": False}})


@router.get("/ok")
async def ok() -> Response:
    """Liveness in the LangGraph server's spelling."""
    return _json({"ok": True})


@router.post("/assistants/search")
async def search_assistants(body: AssistantSearch, user: UserDep) -> Response:
    """The assistants matching graph_id / metadata (exact key match) / name (case-insensitive substring)."""
    a = assistant_object()
    match = ((body.graph_id in (None, GRAPH_ID))
             and all(a["metadata"].get(k) == v for k, v in (body.metadata or {}).items())
             and (body.name is None or body.name.lower() in a["name"].lower()))
    return _json(([a] if match else [])[body.offset: body.offset + body.limit])


@router.get("/assistants/{assistant_id}")
async def get_assistant(assistant_id: str, user: UserDep) -> Response:
    """One assistant by id or graph id; 404 ``assistant_not_found`` otherwise."""
    _check_assistant(assistant_id)
    return _json(assistant_object())


@router.get("/assistants/{assistant_id}/graph")
async def get_assistant_graph(assistant_id: str, assistant: AssistantDep, user: UserDep,
                              xray: str = Query("false")) -> Response:
    """Drawable graph ``{nodes, edges}`` from ``graph.get_graph(xray=...)`` (xray: true/false/depth)."""
    _check_assistant(assistant_id)
    return _json(assistant.graph.get_graph(xray=_xray(xray)).to_json())


@router.get("/assistants/{assistant_id}/schemas")
async def get_assistant_schemas(assistant_id: str, assistant: AssistantDep, user: UserDep) -> Response:
    """Input, output, state, config and context JSON schemas of the graph."""
    _check_assistant(assistant_id)
    return _json(graph_schemas(assistant.graph))


@router.get("/assistants/{assistant_id}/subgraphs")
@router.get("/assistants/{assistant_id}/subgraphs/{namespace}")
async def get_assistant_subgraphs(assistant_id: str, assistant: AssistantDep, user: UserDep,
                                  namespace: str | None = None, recurse: bool = False) -> Response:
    """``{namespace: GraphSchema}`` of the specialist subgraphs."""
    _check_assistant(assistant_id)
    out = {}
    async for ns, sub in assistant.graph.aget_subgraphs(namespace=namespace, recurse=recurse):
        out[ns] = {**graph_schemas(sub), "graph_id": GRAPH_ID}
    return _json(out)


# ---- state serialisation --------------------------------------------------------------------------------------

def checkpoint_of(config: Mapping[str, Any] | None) -> dict | None:
    """SDK ``Checkpoint`` {thread_id, checkpoint_ns, checkpoint_id, checkpoint_map?} of a RunnableConfig."""
    c = (config or {}).get("configurable") or {}
    if not c.get("thread_id") or not c.get("checkpoint_id"):
        return None
    out = {"thread_id": c["thread_id"], "checkpoint_ns": c.get("checkpoint_ns") or "",
           "checkpoint_id": c["checkpoint_id"]}
    if c.get("checkpoint_map"):
        out["checkpoint_map"] = c["checkpoint_map"]
    return out


def thread_state(snap: StateSnapshot) -> dict:
    """SDK ``ThreadState`` of a StateSnapshot: values, next, tasks (with subgraph states when fetched with
    subgraphs), checkpoint, parent_checkpoint, metadata, created_at, interrupts."""
    tasks = []
    for t in snap.tasks:
        tasks.append({"id": t.id, "name": t.name, "path": list(t.path), "error": t.error,
                      "interrupts": list(t.interrupts),
                      "checkpoint": checkpoint_of(t.state) if isinstance(t.state, dict) else None,
                      "state": thread_state(t.state) if isinstance(t.state, StateSnapshot) else None,
                      "result": getattr(t, "result", None)})
    cp, parent = checkpoint_of(snap.config), checkpoint_of(snap.parent_config)
    return {"values": snap.values, "next": list(snap.next), "tasks": tasks, "metadata": snap.metadata,
            "created_at": snap.created_at, "checkpoint": cp, "parent_checkpoint": parent,
            "interrupts": list(getattr(snap, "interrupts", ()) or ()),
            "checkpoint_id": cp["checkpoint_id"] if cp else None,
            "parent_checkpoint_id": parent["checkpoint_id"] if parent else None}


def _interrupts_by_task(snap: StateSnapshot) -> dict[str, list]:
    return {t.id: list(t.interrupts) for t in snap.tasks if t.interrupts}


def _base_config(thread_id: str, user: str, ref: CheckpointRef | None = None, checkpoint_id: str | None = None) -> dict:
    """Run/read config on the path's thread (never the body's), optionally at a checkpoint."""
    cfg = Assistant.config(thread_id, user)
    conf = cfg["configurable"]
    if ref is not None:
        conf["checkpoint_ns"] = ref.checkpoint_ns or ""
        if ref.checkpoint_id:
            conf["checkpoint_id"] = ref.checkpoint_id
        if ref.checkpoint_map:
            conf["checkpoint_map"] = ref.checkpoint_map
    if checkpoint_id:
        conf["checkpoint_id"] = checkpoint_id
    if conf.get("checkpoint_id"):
        conf.setdefault("checkpoint_ns", "")
    return cfg


async def _require_checkpoint(assistant: Assistant, cfg: dict) -> None:
    """404 ``checkpoint_not_found`` unless the configured checkpoint exists on this thread (root namespace)."""
    conf = cfg["configurable"]
    if not conf.get("checkpoint_id") or conf.get("checkpoint_ns"):
        return
    saver = assistant.graph.checkpointer
    if saver is not None and await saver.aget_tuple(cfg) is None:
        raise ApiError(404, "checkpoint_not_found", f"checkpoint {conf['checkpoint_id']} not found on this thread")


async def thread_object(assistant: Assistant, row: dict, user: str, busy: bool = False) -> dict:
    """SDK ``Thread``: the registry record plus status (idle/busy/interrupted), current values and interrupts."""
    snap = await assistant.graph.aget_state(Assistant.config(row["thread_id"], user))
    interrupts = _interrupts_by_task(snap)
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
        raise _invalid("supersteps (thread copying) are not supported")
    try:
        row = await threads.create(user, body.thread_id, body.metadata)
    except ValueError as exc:
        raise _invalid(str(exc)) from None
    except FileExistsError:
        if body.if_exists == "do_nothing":
            try:
                row = await threads.get(user, body.thread_id or "")
            except UnknownThread:
                raise ApiError(409, "thread_exists", f"thread {body.thread_id} already exists") from None
        else:
            raise ApiError(409, "thread_exists", f"thread {body.thread_id} already exists") from None
    return _json(await thread_object(assistant, row, user, guard.busy_locally(row["thread_id"])))


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
    return _json(out)


@router.get("/threads/{thread_id}")
async def get_thread(thread_id: str, user: UserDep, threads: ThreadsDep, assistant: AssistantDep,
                     guard: RunGuardDep) -> Response:
    """One of the caller's threads; 404 ``thread_not_found`` when unknown or not theirs."""
    row = await threads.get(user, thread_id)
    return _json(await thread_object(assistant, row, user, guard.busy_locally(thread_id)))


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
    snap = await assistant.graph.aget_state(_base_config(thread_id, user), subgraphs=subgraphs)
    return _json(thread_state(snap))


@router.get("/threads/{thread_id}/state/{checkpoint_id}")
async def get_state_at(thread_id: str, checkpoint_id: Annotated[str, Path(pattern=CHECKPOINT_ID_PATTERN)],
                       user: UserDep, threads: ThreadsDep,
                       assistant: AssistantDep, subgraphs: bool = False) -> Response:
    """ThreadState at a root checkpoint of this thread; 404 ``checkpoint_not_found`` when absent."""
    await threads.get(user, thread_id)
    cfg = _base_config(thread_id, user, checkpoint_id=checkpoint_id)
    await _require_checkpoint(assistant, cfg)
    return _json(thread_state(await assistant.graph.aget_state(cfg, subgraphs=subgraphs)))


@router.post("/threads/{thread_id}/state/checkpoint")
async def post_state_at(thread_id: str, body: StateAtCheckpoint, user: UserDep, threads: ThreadsDep,
                        assistant: AssistantDep) -> Response:
    """ThreadState at ``checkpoint`` (root or a subgraph namespace) of this thread."""
    await threads.get(user, thread_id)
    cfg = _base_config(thread_id, user, body.checkpoint)
    await _require_checkpoint(assistant, cfg)
    return _json(thread_state(await assistant.graph.aget_state(cfg, subgraphs=body.subgraphs)))


@router.post("/threads/{thread_id}/state")
async def update_state(thread_id: str, body: StateUpdate, user: UserDep, threads: ThreadsDep,
                       assistant: AssistantDep, guard: RunGuardDep) -> Response:
    """Edit state (``update_state``): at the latest checkpoint, or at ``checkpoint``/``checkpoint_id`` — a fork,
    a new branch whose parent is that past checkpoint. Returns ``{"checkpoint": Checkpoint}`` of the new state;
    run from it with ``checkpoint`` and no input. 422 for unknown state keys or nodes, 422 ``server_owned_channels``
    for channels only the server writes (usage, budgets, turn bookkeeping); 409 while a run is in flight."""
    await threads.get(user, thread_id)
    if body.as_node is not None and body.as_node not in assistant.graph.nodes:
        raise _invalid(f"as_node {body.as_node!r} is not a node of the graph")
    unknown = sorted(set(body.values or {}) - set(assistant.graph.stream_channels_list))
    if unknown:
        raise _invalid(f"values has keys that are not state fields: {', '.join(unknown)}")
    cfg = _base_config(thread_id, user, body.checkpoint, body.checkpoint_id)
    check_client_write(body.values, cfg["configurable"].get("checkpoint_ns") or "")
    await _require_checkpoint(assistant, cfg)
    lease = await guard.acquire(thread_id)
    try:
        new_cfg = await assistant.graph.aupdate_state(cfg, body.values, as_node=body.as_node)
    except (InvalidUpdateError, ValueError) as exc:
        raise _invalid(f"invalid state update: {exc}") from None
    finally:
        await guard.release(lease)
    await threads.touch(thread_id)
    return _json({"checkpoint": checkpoint_of(new_cfg)})


async def _history(assistant: Assistant, thread_id: str, user: str, q: HistoryQuery) -> list[dict]:
    cfg = _base_config(thread_id, user, q.checkpoint)
    before = None
    if q.before is not None:
        before_id = q.before if isinstance(q.before, str) else q.before.checkpoint_id
        if before_id:
            before = _base_config(thread_id, user, q.checkpoint, before_id)
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
    return _json(await _history(assistant, thread_id, user, body))


@router.get("/threads/{thread_id}/history")
async def get_history(thread_id: str, user: UserDep, threads: ThreadsDep, assistant: AssistantDep,
                      limit: int = Query(10, ge=1, le=1000), before: str | None = None) -> Response:
    """GET form of the history (limit, before=checkpoint_id)."""
    await threads.get(user, thread_id)
    return _json(await _history(assistant, thread_id, user, HistoryQuery(limit=limit, before=before)))


# ---- runs -----------------------------------------------------------------------------------------------------

def _text_of(content: Any) -> str:
    if isinstance(content, list):  # content blocks as Studio may send them
        content = "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return validate_text(content)


def graph_input(raw: dict[str, Any]) -> dict:
    """Run input → graph input: ``{"messages": [...]}`` of user messages (``{"role": "user"|"human",
    "content": str}``, ``{"type": "human", ...}`` or a bare string) → HumanMessage. Raises ApiError 422 otherwise."""
    extra = set(raw) - {"messages"}
    if extra:
        raise _invalid(f"input accepts only 'messages' (got {', '.join(sorted(extra))})")
    msgs = raw.get("messages")
    if isinstance(msgs, (str, dict)):
        msgs = [msgs]
    if not isinstance(msgs, list) or not msgs:
        raise _invalid("input.messages must be a non-empty list of user messages")
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
            raise _invalid(f"input.messages: {exc}") from None
    return {"messages": out}


def _stream_modes(raw: str | list[str]) -> list[str]:
    modes = [raw] if isinstance(raw, str) else list(raw)
    bad = [m for m in modes if m not in STREAM_MODES]
    if bad or not modes:
        raise _invalid(f"unsupported stream_mode {bad or modes}; supported: {', '.join(STREAM_MODES)}")
    return list(dict.fromkeys(modes))


class _Plan:
    """A validated run: graph input, config, Context and streaming options."""

    def __init__(self, body: RunCreate, thread_id: str, user: str, assistant: Assistant, modes: list[str]):
        _check_assistant(body.assistant_id)
        if body.webhook or body.after_seconds:
            raise _invalid("webhook and after_seconds are not supported")
        if body.input is not None and body.command is not None:
            raise _invalid("send either input or command, not both")
        self.run_id = str(uuid.uuid4())
        self.thread_id, self.user, self.modes = thread_id, user, modes
        self.subgraphs = body.stream_subgraphs
        self.on_disconnect = body.on_disconnect or "cancel"
        if body.command is not None:
            given = body.command.model_fields_set
            if not given & {"resume", "update", "goto"}:
                raise _invalid("command needs resume, update or goto")
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
        cfg = _base_config(thread_id, user, body.checkpoint, body.checkpoint_id)
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
            raise _invalid("context: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                                  for e in exc.errors())) from None
        self.context = dataclasses.replace(ctx, user_id=user)
        self.kwargs: dict[str, Any] = {}
        if body.interrupt_before is not None:
            self.kwargs["interrupt_before"] = body.interrupt_before
        if body.interrupt_after is not None:
            self.kwargs["interrupt_after"] = body.interrupt_after
        if body.durability is not None:
            self.kwargs["durability"] = body.durability


async def run_events(assistant: Assistant, plan: _Plan) -> AsyncIterator[tuple[str, Any]]:
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
    yield "end", {"run_id": plan.run_id, "status": "interrupted" if _interrupts_by_task(snap) else "success"}


def _safe_error(exc: BaseException) -> dict:
    """What a client may see of a failed run: domain errors verbatim, anything else as 'internal'."""
    if isinstance(exc, MangaAssistError):
        return {"error": type(exc).__name__, "message": str(exc)}
    return {"error": "internal", "message": "the run failed; see the server log"}


class _RunTask:
    """A run executing in its own task (it owns the thread's RunGuard lease), feeding a queue of events.

    The lease is taken in ``start`` (ThreadBusy → 409 before any response is sent) and released by the task,
    so it is freed whether the client reads to the end, disconnects, or never reads at all.
    """

    def __init__(self, request: Request, assistant: Assistant, plan: _Plan, cleanup: Any = None):
        self.request, self.assistant, self.plan, self.cleanup = request, assistant, plan, cleanup
        self.queue: asyncio.Queue = asyncio.Queue()
        self.task: asyncio.Task | None = None

    async def start(self, guard: Any, threads: Any) -> _RunTask:
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
        while (ev := await self.queue.get()) is not None:
            yield ev


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
        await _require_checkpoint(assistant, plan.config)
    except BaseException:
        if cleanup is not None:
            await cleanup()
        raise
    return plan, cleanup


async def _wait(request: Request, body: RunCreate, thread_id: str | None, user: str, threads: Any,
                assistant: Assistant, guard: Any, budget: UserDayBudget) -> Response:
    plan, cleanup = await _prepare(body, thread_id, user, threads, assistant, ["values"], budget)
    run = await _RunTask(request, assistant, plan, cleanup).start(guard, threads)
    values: Any = None
    async for name, data in run.events():
        if name == "values":
            values = data
        elif name == "error":
            status = 500 if data["error"] == "internal" else 400
            raise ApiError(status, "run_failed" if status == 400 else "internal", data["message"])
    headers = {"Content-Location": f"/threads/{plan.thread_id}/runs/{plan.run_id}"}
    return _json(values if values is not None else {}, headers=headers)


async def _stream(request: Request, body: RunCreate, thread_id: str | None, user: str, threads: Any,
                  assistant: Assistant, guard: Any, budget: UserDayBudget) -> StreamingResponse:
    plan, cleanup = await _prepare(body, thread_id, user, threads, assistant, _stream_modes(body.stream_mode),
                                   budget)
    run = await _RunTask(request, assistant, plan, cleanup).start(guard, threads)

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
