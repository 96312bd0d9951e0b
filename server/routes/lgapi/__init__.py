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

Layout, one role per module (each imports ``schemas``; ``runs`` also imports ``streaming``; nothing imports back):
- ``schemas``: ids, request bodies, ``dumps`` and the SDK's response shapes (Checkpoint, ThreadState).
- ``assistants``: /info, /ok and the assistant routes (graph drawing, JSON schemas, subgraphs).
- ``threads``: thread routes, state (read, edit, fork) and history.
- ``runs``: run bodies validated into a plan; /runs/wait and /runs/stream, on a thread or stateless.
- ``streaming``: a plan executed in its own task (event stream, RunGuard lease) and the SSE response.
"""

from __future__ import annotations

from fastapi import APIRouter

from server.routes.lgapi import assistants, runs, threads
from server.routes.lgapi.assistants import assistant_object, channels_jsonschema, graph_schemas, state_jsonschema
from server.routes.lgapi.runs import graph_input
from server.routes.lgapi.schemas import (
    ASSISTANT_ID,
    GRAPH_ID,
    MULTITASK_STRATEGIES,
    STREAM_MODES,
    AssistantSearch,
    CheckpointRef,
    HistoryQuery,
    RunCommand,
    RunCreate,
    StateAtCheckpoint,
    StateUpdate,
    ThreadCreate,
    ThreadSearch,
    checkpoint_of,
    dumps,
    thread_state,
)
from server.routes.lgapi.streaming import run_events
from server.routes.lgapi.threads import thread_object

router = APIRouter()
"""Every route of the subset, in the order they are matched and listed in the OpenAPI document."""
router.include_router(assistants.router)
router.include_router(threads.router)
router.include_router(runs.router)

__all__ = [
    "ASSISTANT_ID", "GRAPH_ID", "MULTITASK_STRATEGIES", "STREAM_MODES",
    "AssistantSearch", "CheckpointRef", "HistoryQuery", "RunCommand", "RunCreate", "StateAtCheckpoint", "StateUpdate",
    "ThreadCreate", "ThreadSearch",
    "assistant_object", "channels_jsonschema", "checkpoint_of", "dumps", "graph_input", "graph_schemas", "router",
    "run_events", "state_jsonschema", "thread_object", "thread_state",
]
