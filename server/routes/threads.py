"""``/v1/threads``: create/list/get/delete threads, send messages, and inspect or rewind them (state, history,
replay, fork). Every route checks ownership through the ThreadRegistry: another user's thread is a 404.

Spend is the server's: a fork may write only the channels in ``ROOT_WRITABLE`` / ``SPECIALIST_WRITABLE``
(422 ``server_owned_channels`` otherwise), and every route that runs the graph first checks the caller's daily
budget (429 ``daily_budget_exceeded``, nothing written)."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Query, Response
from fastapi.encoders import jsonable_encoder
from langchain_core.runnables import RunnableConfig
from langgraph.errors import EmptyInputError, InvalidUpdateError
from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from graphs.app import Assistant, pending_interrupt, reject_unstorable, validate_text
from server.deps import AssistantDep, BrokerDep, DayBudgetDep, RunGuardDep, ThreadsDep, UserDep
from server.errors import ApiError, ServerOwnedChannels
from server.ids import CHECKPOINT_ID_PATTERN, CHECKPOINT_NS_PATTERN, MAX_OFFSET

log = logging.getLogger(__name__)
router = APIRouter(prefix="/threads", tags=["threads"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing, unknown or revoked API key"},
    404: {"description": "no such thread for this user (also for another user's thread)"},
    422: {"description": "invalid input"},
}
_BUDGET: dict[int | str, dict[str, Any]] = {429: {"description": "the caller's daily model budget is used up (daily_budget_exceeded, Retry-After)"}}

ROOT_WRITABLE = frozenset({"messages", "locale", "intents", "scores", "agents", "active_agent", "answer", "items",
                           "orders", "focus"})
"""Supervisor state channels (core/state.py SupervisorState) a client may write through a fork, ``update_state``
or a run's ``command.update``: the conversation, its routing and what the answer shows. Every other channel is the
server's: usage and budgets (``usage``, ``usage_session``, ``usage_calls``, ``budget``, ``budget_report``), turn
bookkeeping (``turn``, ``turn_started``, ``timings_ms``, ``degraded``, ``quality``, ``plan``) and ``results`` (each
specialist's result carries its model calls' CallRecords, which merge books as usage). A channel added to the
state is server-owned until it is listed here."""
SPECIALIST_WRITABLE = frozenset({"request", "message", "locale", "history", "focus"})
"""Specialist subgraph channels (SpecialistState) a client may write in a specialist's checkpoint namespace: what
the specialist was asked. Its budget, ``max_reflections`` bound, loop counter (``reflections``), model calls,
degrade steps, timing, scratch, evidence, critique and results are the server's."""


def writable_channels(checkpoint_ns: str = "") -> frozenset[str]:
    """The channels a client may write in ``checkpoint_ns`` ("" = the supervisor; else a specialist subgraph)."""
    return ROOT_WRITABLE if not checkpoint_ns else SPECIALIST_WRITABLE


def check_client_write(values: dict[str, Any] | None, checkpoint_ns: str = "") -> None:
    """Raise server.errors.ServerOwnedChannels (422 ``server_owned_channels``, naming them) when ``values`` writes
    any channel outside ``writable_channels(checkpoint_ns)``. Call before anything is written."""
    allowed = writable_channels(checkpoint_ns)
    owned = sorted(set(values or {}) - allowed)
    if owned:
        raise ServerOwnedChannels(owned, sorted(allowed))


class ThreadCreate(BaseModel):
    """Body of ``POST /v1/threads`` (optional): a client-chosen id and free-form metadata."""

    model_config = ConfigDict(extra="forbid")
    thread_id: StrictStr | None = Field(None, description="1-128 chars of letters, digits, _ . : - ; default: UUID4 hex")
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("metadata")
    @classmethod
    def _storable(cls, value: dict[str, Any]) -> dict[str, Any]:
        reject_unstorable(value, "metadata")
        return value


class Thread(BaseModel):
    """A thread owned by the caller."""

    thread_id: str
    user_id: str
    created_at: str
    updated_at: str
    metadata: dict[str, Any]


class ThreadList(BaseModel):
    """The caller's threads, most recently updated first."""

    threads: list[Thread]


class MessageIn(BaseModel):
    """Body of ``POST /v1/threads/{id}/messages``: one customer message (1-4000 characters after stripping) and,
    for debugging, the LangGraph durability of this turn (None = the server's ``checkpoint_durability``)."""

    model_config = ConfigDict(extra="forbid")
    text: StrictStr
    durability: Literal["sync", "async", "exit"] | None = Field(
        None, description="'async' = a checkpoint per step, so this turn can be replayed from inside (a specialist's "
                          "steps); default: the server setting, normally 'exit' (one checkpoint per turn).")


class CheckpointRef(BaseModel):
    """A checkpoint of the thread: root graph (``checkpoint_ns`` "") or a specialist subgraph
    (``checkpoint_ns`` such as ``order_agent:<task id>``, as listed by ``history?subgraphs=true``)."""

    model_config = ConfigDict(extra="forbid")
    checkpoint_id: StrictStr = Field(min_length=1, max_length=128, pattern=CHECKPOINT_ID_PATTERN)
    checkpoint_ns: StrictStr = Field("", max_length=512, pattern=CHECKPOINT_NS_PATTERN)


class ForkIn(CheckpointRef):
    """Body of ``POST /v1/threads/{id}/fork``: state ``values`` written on top of a past checkpoint (through the
    channels' reducers, as if ``as_node`` had returned them), then optionally run from the new checkpoint."""

    values: dict[str, Any] = Field(default_factory=dict)
    as_node: StrictStr | None = Field(None, description="Node the update is attributed to (default: LangGraph's choice)")
    run: bool = Field(True, description="Run the graph from the new checkpoint and return the turn")


def _encode(value: Any) -> Any:
    """JSON-safe form of state values (LangChain messages become their pydantic dumps)."""
    return jsonable_encoder(value, custom_encoder={bytes: lambda b: b.decode("utf-8", "replace")})


def _cfg(thread_id: str, user_id: str, checkpoint_id: str | None = None, checkpoint_ns: str = "") -> dict:
    cfg = Assistant.config(thread_id, user_id)
    if checkpoint_id:
        cfg["configurable"]["checkpoint_id"] = checkpoint_id
    cfg["configurable"]["checkpoint_ns"] = checkpoint_ns  # the SQLite saver's aput needs the key, even ""
    return cfg


def _snapshot_json(snapshot: Any, with_values: bool = True) -> dict:
    """A StateSnapshot as JSON: ids, parent id, namespace, next, writer node(s), step, time, interrupt, tasks."""
    conf = snapshot.config.get("configurable", {})
    parent = (snapshot.parent_config or {}).get("configurable", {})
    meta = dict(snapshot.metadata or {})
    out = {
        "checkpoint_id": conf.get("checkpoint_id"),
        "parent_checkpoint_id": parent.get("checkpoint_id"),
        "checkpoint_ns": conf.get("checkpoint_ns", ""),
        "next": list(snapshot.next),
        "created_at": snapshot.created_at,
        "source": meta.get("source"),
        "step": meta.get("step"),
        "writes": None,  # filled by history(): the node(s) whose writes produced this checkpoint
        "interrupt": pending_interrupt(snapshot),
        "tasks": [{"id": t.id, "name": t.name, "error": None if t.error is None else type(t.error).__name__,
                   "checkpoint_ns": ((t.state or {}).get("configurable", {}).get("checkpoint_ns")
                                     if isinstance(t.state, dict) else None)}
                  for t in snapshot.tasks],
        "metadata": _encode({k: v for k, v in meta.items() if k not in ("source", "step", "writes")}),
    }
    if with_values:
        out["values"] = _encode(snapshot.values or {})
    return out


async def _owned(threads: Any, user: str, thread_id: str) -> dict:
    return await threads.get(user, thread_id)


def _text(text: str) -> str:
    try:
        return validate_text(text)
    except ValueError as exc:
        code = "message_too_long" if "too long" in str(exc) else "invalid_input"
        raise ApiError(413 if code == "message_too_long" else 422, code, str(exc)) from None


@router.post("", status_code=201, response_model=Thread, summary="Create a thread",
             responses={409: {"description": "thread id already taken"}, **_ERRORS})
async def create_thread(user: UserDep, threads: ThreadsDep, body: ThreadCreate | None = None) -> dict:
    """Create a thread owned by the caller. Messages can only be sent to threads created here."""
    body = body or ThreadCreate()
    try:
        return await threads.create(user, body.thread_id, body.metadata)
    except ValueError as exc:
        raise ApiError(422, "invalid_input", str(exc)) from None
    except FileExistsError:
        raise ApiError(409, "thread_exists", "that thread id is already taken") from None


@router.get("", response_model=ThreadList, summary="List the caller's threads", responses=_ERRORS)
async def list_threads(user: UserDep, threads: ThreadsDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                       offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0) -> dict:
    """The caller's own threads (never anyone else's), most recently updated first."""
    return {"threads": await threads.list(user, limit, offset)}


@router.get("/{thread_id}", response_model=Thread, summary="Get a thread", responses=_ERRORS)
async def get_thread(thread_id: str, user: UserDep, threads: ThreadsDep) -> dict:
    """The thread record; 404 when it does not exist or is not the caller's."""
    return await _owned(threads, user, thread_id)


@router.delete("/{thread_id}", status_code=204, summary="Delete a thread and its checkpoints",
               responses={409: {"description": "a run is in progress"}, **_ERRORS})
async def delete_thread(thread_id: str, user: UserDep, threads: ThreadsDep, guard: RunGuardDep) -> Response:
    """Delete the thread's ownership record and every checkpoint (all namespaces). 409 while a run is in flight."""
    await _owned(threads, user, thread_id)
    async with guard.hold(thread_id):
        await threads.delete(user, thread_id)
    return Response(status_code=204)


@router.post("/{thread_id}/messages", summary="Send a message; returns the turn",
             responses={409: {"description": "a run is already in progress on this thread (double texting)"},
                        413: {"description": "message longer than 4000 characters"}, **_BUDGET, **_ERRORS})
async def post_message(thread_id: str, body: MessageIn, user: UserDep, threads: ThreadsDep, guard: RunGuardDep,
                       assistant: AssistantDep, broker: BrokerDep, budget: DayBudgetDep) -> dict:
    """Run one customer turn; returns the JSON of ``mangaassist chat --json``: {thread_id, checkpoint_id, intents,
    agents, answer, items, orders, interrupt, timings_ms}. When the thread waits on a confirmation (``interrupt``
    of the previous turn), the text answers it (yes/no in any language). The thread must exist (404 otherwise);
    a second message while a run is in flight is rejected with 409 ``thread_busy``; a caller whose daily model
    budget is used up gets 429 ``daily_budget_exceeded`` (nothing is written)."""
    text = _text(body.text)
    await _owned(threads, user, thread_id)
    await budget.check(user)
    async with guard.hold(thread_id):
        out = await assistant.turn(text, thread_id=thread_id, user_id=user, durability=body.durability)
        await threads.touch(thread_id)
    await broker.publish(thread_id, {"type": "final", **out})
    return out


@router.get("/{thread_id}/state", summary="Current (or past) state of a thread", responses=_ERRORS)
async def get_state(thread_id: str, user: UserDep, threads: ThreadsDep, assistant: AssistantDep,
                    checkpoint_id: Annotated[str | None, Query(pattern=CHECKPOINT_ID_PATTERN)] = None,
                    checkpoint_ns: Annotated[str, Query(pattern=CHECKPOINT_NS_PATTERN)] = "",
                    subgraphs: bool = False) -> dict:
    """{thread_id, checkpoint_id, parent_checkpoint_id, checkpoint_ns, values, next, interrupt, tasks, ...} of the
    latest checkpoint, or of ``checkpoint_id`` (in ``checkpoint_ns`` for a specialist subgraph checkpoint).
    ``subgraphs=true`` adds the state of running/interrupted subgraphs under ``subgraph_states``."""
    await _owned(threads, user, thread_id)
    cfg = _cfg(thread_id, user, checkpoint_id, checkpoint_ns)
    persistence = assistant.persistence
    assert persistence is not None  # the server's Assistant always has persistence
    if checkpoint_id and await persistence.checkpointer.aget_tuple(cast(RunnableConfig, cfg)) is None:
        raise ApiError(404, "checkpoint_not_found", f"checkpoint {checkpoint_id} not found in this thread")
    snap = await assistant.graph.aget_state(cfg, subgraphs=subgraphs)
    out = {"thread_id": thread_id, **_snapshot_json(snap)}
    if subgraphs:
        out["subgraph_states"] = [{"task": t.name, **_snapshot_json(t.state)} for t in snap.tasks
                                  if t.state is not None and hasattr(t.state, "config")]
    return out


async def _namespaces(assistant: Any, thread_id: str) -> list[str]:
    """Every checkpoint namespace of the thread ('' root first, then subgraph namespaces by first appearance)."""
    seen: dict[str, None] = {"": None}
    async for tup in assistant.persistence.checkpointer.alist({"configurable": {"thread_id": thread_id}}):
        seen.setdefault(tup.config["configurable"].get("checkpoint_ns", ""), None)
    return list(seen)


def _fill_writes(entries: list[dict], snapshots: list[Any]) -> None:  # entries[i] describes snapshots[i]
    """Name the node(s) that produced each checkpoint: the tasks of its parent checkpoint that completed
    (LangGraph 1.x no longer records ``writes`` in checkpoint metadata); the input checkpoint is "__input__"."""
    by_id = {s.config["configurable"]["checkpoint_id"]: s for s in snapshots}
    for e in entries:
        parent = by_id.get(e["parent_checkpoint_id"])
        if e["source"] == "input":
            e["writes"] = ["__input__"]
        elif e["source"] == "update":
            e["writes"] = ["__update__"]
        elif parent is not None:
            done = [t.name for t in parent.tasks if t.result is not None or t.error is not None]
            e["writes"] = done or list(parent.next)
        else:
            e["writes"] = []


@router.get("/{thread_id}/history", summary="Checkpoints of a thread, newest first", responses=_ERRORS)
async def get_history(thread_id: str, user: UserDep, threads: ThreadsDep, assistant: AssistantDep,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 100, subgraphs: bool = False,
                      values: bool = False) -> dict:
    """{"checkpoints": [...]} newest first, each {checkpoint_id, parent_checkpoint_id, checkpoint_ns, next,
    created_at, source, step, writes (node names), interrupt, tasks, metadata[, values]}. With ``subgraphs=true``
    the checkpoints written inside specialist subgraphs (``checkpoint_ns`` like ``order_agent:<task id>``) are
    included after the root ones; each can be read with ``state?checkpoint_id=&checkpoint_ns=`` and used by replay
    and fork. ``limit`` applies per namespace."""
    await _owned(threads, user, thread_id)
    namespaces = await _namespaces(assistant, thread_id) if subgraphs else [""]
    checkpoints: list[dict] = []
    for ns in namespaces:
        snaps = [s async for s in assistant.graph.aget_state_history(_cfg(thread_id, user, checkpoint_ns=ns),
                                                                     limit=limit)]
        entries = [_snapshot_json(s, with_values=values) for s in snaps]
        _fill_writes(entries, snaps)
        checkpoints += entries
    return {"thread_id": thread_id, "checkpoints": checkpoints}


async def _checkpoint(assistant: Any, thread_id: str, user: str, ref: CheckpointRef) -> Any:
    """The StateSnapshot at ``ref`` (root or subgraph namespace); 404 ``checkpoint_not_found`` when absent."""
    cfg = _cfg(thread_id, user, ref.checkpoint_id, ref.checkpoint_ns)
    if await assistant.persistence.checkpointer.aget_tuple(cfg) is None:
        raise ApiError(404, "checkpoint_not_found", f"checkpoint {ref.checkpoint_id} not found in this thread")
    return await assistant.graph.aget_state(cfg)


def _root_of(snapshot: Any) -> str:
    """The root checkpoint that scheduled the specialist task owning a subgraph checkpoint (metadata.parents[""])
    — the root checkpoint itself for a root snapshot."""
    conf = snapshot.config["configurable"]
    if not conf.get("checkpoint_ns"):
        return conf["checkpoint_id"]
    return (snapshot.metadata or {}).get("parents", {}).get("", "")


async def _run_from(assistant: Any, thread_id: str, user: str, cfg: dict) -> dict:
    t0 = time.perf_counter()
    try:
        await assistant.graph.ainvoke(None, cfg, context=assistant.context(user))
    except EmptyInputError:
        raise ApiError(422, "checkpoint_not_replayable", "this checkpoint has no pending step to re-run (the "
                       "turn's input checkpoint); choose one whose next nodes are not empty") from None
    return await assistant.result(thread_id, user, (time.perf_counter() - t0) * 1000)


@router.post("/{thread_id}/replay", summary="Re-run the thread from a past checkpoint",
             responses={409: {"description": "a run is in progress"}, **_BUDGET, **_ERRORS})
async def replay(thread_id: str, body: CheckpointRef, user: UserDep, threads: ThreadsDep, guard: RunGuardDep,
                 assistant: AssistantDep, broker: BrokerDep, budget: DayBudgetDep) -> dict:
    """Re-execute the steps after ``checkpoint_id`` (LangGraph replay: ``ainvoke(None, config_with_checkpoint_id)``);
    the new checkpoints branch off that one and become the thread's head. Returns {replayed_from,
    root_checkpoint_id, ...turn JSON}. For a checkpoint inside a specialist subgraph (``checkpoint_ns`` set), the
    run starts from the root checkpoint that scheduled that specialist (``root_checkpoint_id``): LangGraph 1.2
    re-executes a finished subgraph task from its start on replay. Changing order actions are idempotent, so a
    replay never cancels or returns an order twice. 429 ``daily_budget_exceeded`` when the caller's day is spent."""
    await _owned(threads, user, thread_id)
    await budget.check(user)
    async with guard.hold(thread_id):
        root = _root_of(await _checkpoint(assistant, thread_id, user, body))
        out = await _run_from(assistant, thread_id, user, _cfg(thread_id, user, root))
        await threads.touch(thread_id)
    await broker.publish(thread_id, {"type": "final", **out})
    return {"replayed_from": body.checkpoint_id, "root_checkpoint_id": root, **out}


def _check_keys(graph: Any, checkpoint_ns: str, values: dict) -> None:
    """422 ``invalid_state_update`` for keys that are not state channels of the addressed graph (LangGraph would
    silently drop them). A subgraph namespace ``order_agent:<task id>`` addresses the ``order_agent`` subgraph."""
    target = graph
    if checkpoint_ns:
        name = checkpoint_ns.split("|")[-1].split(":", 1)[0]
        target = dict(graph.get_subgraphs()).get(name)
        if target is None:
            raise ApiError(422, "invalid_state_update", f"no subgraph {name!r} in this graph")
    allowed = {k for k in target.channels if not k.startswith(("__", "branch:"))}
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ApiError(422, "invalid_state_update", f"unknown state keys {unknown}; known: {sorted(allowed)}")


@router.post("/{thread_id}/fork", summary="Branch from a past checkpoint with edited state",
             responses={409: {"description": "a run is in progress"}, **_BUDGET, **_ERRORS})
async def fork(thread_id: str, body: ForkIn, user: UserDep, threads: ThreadsDep, guard: RunGuardDep,
               assistant: AssistantDep, broker: BrokerDep, budget: DayBudgetDep) -> dict:
    """``aupdate_state(past_config, values)`` writes a new checkpoint whose parent is ``checkpoint_id``; with
    ``run`` (default) the graph then runs from it. Returns {forked_from, checkpoint_id (the fork), turn (turn JSON
    or null)}. Values that the state schema rejects are a 422. With ``checkpoint_ns`` (a specialist subgraph
    checkpoint) the update is written in that subgraph's namespace through its own reducers (LangGraph routes
    ``update_state`` by namespace) and not run: it takes effect when the thread resumes that specialist (a
    pending confirmation). Only client channels may be written (``writable_channels``; 422
    ``server_owned_channels`` names the others); with ``run``, 429 ``daily_budget_exceeded`` when the caller's day
    is spent. Either refusal writes nothing."""
    await _owned(threads, user, thread_id)
    _check_keys(assistant.graph, body.checkpoint_ns, body.values)
    check_client_write(body.values, body.checkpoint_ns)
    if body.run and not body.checkpoint_ns:
        await budget.check(user)
    async with guard.hold(thread_id):
        snap = await _checkpoint(assistant, thread_id, user, body)
        try:
            new_cfg = await assistant.graph.aupdate_state(snap.config, body.values, as_node=body.as_node)
        except (InvalidUpdateError, ValueError) as exc:
            raise ApiError(422, "invalid_state_update", f"cannot apply these values: {exc}") from None
        forked = new_cfg["configurable"]["checkpoint_id"]
        turn = None
        if body.run and not body.checkpoint_ns:
            turn = await _run_from(assistant, thread_id, user, _cfg(thread_id, user, forked))
            await broker.publish(thread_id, {"type": "final", **turn})
        await threads.touch(thread_id)
    return {"forked_from": body.checkpoint_id, "checkpoint_id": forked,
            "checkpoint_ns": new_cfg["configurable"].get("checkpoint_ns", ""), "turn": turn}
