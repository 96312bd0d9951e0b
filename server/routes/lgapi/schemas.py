"""What the LangGraph API subset accepts and answers: ids, request bodies, JSON encoding and the SDK's shapes.

The request bodies are pydantic models (unknown fields ignored, unstorable values refused); responses are plain
dicts in the SDK's ``langgraph_sdk.schema`` shapes (Checkpoint, ThreadState), encoded by ``dumps``. A request's
checkpoint reference becomes a RunnableConfig on the path's thread here too (``base_config``), so the thread and
run routes read and run at exactly the same checkpoints.
"""

import dataclasses
import enum
import json
import uuid
from typing import Any, Literal, Mapping

import orjson
from fastapi.responses import Response
from langgraph.types import Interrupt, Send, StateSnapshot
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from graphs.app import Assistant, reject_unstorable
from server.errors import ApiError
from server.ids import CHECKPOINT_ID_PATTERN, MAX_OFFSET

GRAPH_ID = "mangaassist"
"""The graph id of our single assistant (the name in langgraph.json)."""
ASSISTANT_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, GRAPH_ID))
"""Stable assistant id derived from the graph id (UUID5 in the URL namespace)."""
STREAM_MODES = ("values", "updates", "messages", "messages-tuple", "debug", "tasks", "checkpoints", "custom")
"""Stream modes served; ``events`` is not."""
MULTITASK_STRATEGIES = ("reject",)
"""Double-texting strategies served: "reject" (a second run while one is in flight is 409 ``thread_busy``). The
Agent Server's "interrupt", "rollback" and "enqueue" are refused with 422 until they are implemented."""
_PACKAGE = "server.routes.lgapi"
"""The module the models below report (they are re-exported there). OpenAPI names a model that shares its name with
one of server/routes/threads.py by its module (``server__routes__lgapi__ThreadCreate``): the published names stay the
package's. Hence also no ``from __future__ import annotations`` here: pydantic would resolve string annotations in
that package's namespace, which is still being imported when these classes are defined."""


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


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """An ``application/json`` response of ``obj`` encoded by ``dumps``.

    Args:
        obj: The document to send.
        status: The HTTP status code.
        headers: Extra response headers.

    Returns:
        The response.
    """
    return Response(dumps(obj), status_code=status, media_type="application/json", headers=headers)


def invalid(message: str) -> ApiError:
    """The 422 ``invalid_input`` error with ``message`` (to raise)."""
    return ApiError(422, "invalid_input", message)


def check_assistant(assistant_id: str) -> None:
    """404 ``assistant_not_found`` unless ``assistant_id`` is our assistant's id or its graph id."""
    if assistant_id not in (ASSISTANT_ID, GRAPH_ID):
        raise ApiError(404, "assistant_not_found", f"assistant {assistant_id} not found")


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

    __module__ = _PACKAGE

    thread_id: str | None = None
    checkpoint_ns: str = ""
    checkpoint_id: str | None = Field(None, pattern=CHECKPOINT_ID_PATTERN)
    checkpoint_map: dict[str, Any] | None = None


class AssistantSearch(_Body):
    """POST /assistants/search body."""

    __module__ = _PACKAGE

    graph_id: str | None = None
    metadata: dict[str, Any] | None = None
    name: str | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class ThreadCreate(_Body):
    """POST /threads body. ``supersteps`` (thread copying) is not supported."""

    __module__ = _PACKAGE

    thread_id: str | None = None
    metadata: dict[str, Any] | None = None
    if_exists: Literal["raise", "do_nothing"] | None = None
    supersteps: list[Any] | None = None


class ThreadSearch(_Body):
    """POST /threads/search body (the caller's threads only)."""

    __module__ = _PACKAGE

    metadata: dict[str, Any] | None = None
    ids: list[str] | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class StateUpdate(_Body):
    """POST /threads/{id}/state body: edit the latest state, or fork from ``checkpoint``/``checkpoint_id``."""

    __module__ = _PACKAGE

    values: dict[str, Any] | None = None
    as_node: str | None = None
    checkpoint: CheckpointRef | None = None
    checkpoint_id: str | None = Field(None, pattern=CHECKPOINT_ID_PATTERN)


class StateAtCheckpoint(_Body):
    """POST /threads/{id}/state/checkpoint body."""

    __module__ = _PACKAGE

    checkpoint: CheckpointRef
    subgraphs: bool = False


class HistoryQuery(_Body):
    """POST /threads/{id}/history body; ``checkpoint.checkpoint_ns`` selects a subgraph's history."""

    __module__ = _PACKAGE

    limit: int = Field(10, ge=1, le=1000)
    before: str | CheckpointRef | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: CheckpointRef | None = None


class RunCommand(_Body):
    """A Command: ``resume`` answers a pending interrupt; ``update``/``goto`` as in langgraph.types.Command."""

    __module__ = _PACKAGE

    resume: Any = None
    update: dict[str, Any] | None = None
    goto: str | list[str] | None = None


class RunCreate(_Body):
    """POST .../runs/wait and .../runs/stream body (the SDK's RunCreate plus streaming options)."""

    __module__ = _PACKAGE

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


# ---- checkpoint references ------------------------------------------------------------------------------------

def base_config(thread_id: str, user: str, ref: CheckpointRef | None = None, checkpoint_id: str | None = None) -> dict:
    """Run/read config on the path's thread (never the body's), optionally at a checkpoint.

    Args:
        thread_id: The thread of the request's path.
        user: The authenticated caller.
        ref: A checkpoint reference from the body (its namespace, id and map are used, its thread_id never).
        checkpoint_id: A checkpoint id given on its own; it wins over ``ref``'s.

    Returns:
        The RunnableConfig.
    """
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


async def require_checkpoint(assistant: Assistant, cfg: dict) -> None:
    """404 ``checkpoint_not_found`` unless the configured checkpoint exists on this thread (root namespace)."""
    conf = cfg["configurable"]
    if not conf.get("checkpoint_id") or conf.get("checkpoint_ns"):
        return
    saver = assistant.graph.checkpointer
    if saver is not None and await saver.aget_tuple(cfg) is None:
        raise ApiError(404, "checkpoint_not_found", f"checkpoint {conf['checkpoint_id']} not found on this thread")


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


def interrupts_by_task(snap: StateSnapshot) -> dict[str, list]:
    """``{task_id: [Interrupt, ...]}`` of the snapshot's tasks that stopped on an interrupt (empty: none pending)."""
    return {t.id: list(t.interrupts) for t in snap.tasks if t.interrupts}
