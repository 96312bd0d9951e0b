"""The single assistant and the server's info: /info, /ok and /assistants (search, one, graph, schemas, subgraphs)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Optional

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import TypeAdapter, create_model

from server.deps import AssistantDep, UserDep
from server.routes.lgapi.schemas import ASSISTANT_ID, GRAPH_ID, AssistantSearch, check_assistant, invalid, json_response

log = logging.getLogger(__name__)
router = APIRouter(tags=["langgraph"])

_STARTED_AT = datetime.now(UTC).isoformat()


def assistant_object() -> dict:
    """The single Assistant (SDK ``Assistant`` shape)."""
    return {"assistant_id": ASSISTANT_ID, "graph_id": GRAPH_ID, "name": GRAPH_ID,
            "description": "MangaAssist supervisor: search, recommend, order and conversation specialists.",
            "config": {}, "context": {}, "metadata": {"created_by": "system"}, "version": 1,
            "created_at": _STARTED_AT, "updated_at": _STARTED_AT}


def _xray(value: str) -> bool | int:
    v = value.strip().lower()
    if v in ("true", "false"):
        return v == "true"
    if v.isdigit():
        return int(v)
    raise invalid("xray must be true, false or a depth (integer)")


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

    return json_response({"version": "mangaassist-1", "langgraph_py_version": langgraph.version.__version__,
                          "flags": {"assistants": True, "crons": False, "langsmith": False}})


@router.get("/ok")
async def ok() -> Response:
    """Liveness in the LangGraph server's spelling."""
    return json_response({"ok": True})


@router.post("/assistants/search")
async def search_assistants(body: AssistantSearch, user: UserDep) -> Response:
    """The assistants matching graph_id / metadata (exact key match) / name (case-insensitive substring)."""
    a = assistant_object()
    match = ((body.graph_id in (None, GRAPH_ID))
             and all(a["metadata"].get(k) == v for k, v in (body.metadata or {}).items())
             and (body.name is None or body.name.lower() in a["name"].lower()))
    return json_response(([a] if match else [])[body.offset: body.offset + body.limit])


@router.get("/assistants/{assistant_id}")
async def get_assistant(assistant_id: str, user: UserDep) -> Response:
    """One assistant by id or graph id; 404 ``assistant_not_found`` otherwise."""
    check_assistant(assistant_id)
    return json_response(assistant_object())


@router.get("/assistants/{assistant_id}/graph")
async def get_assistant_graph(assistant_id: str, assistant: AssistantDep, user: UserDep,
                              xray: str = Query("false")) -> Response:
    """Drawable graph ``{nodes, edges}`` from ``graph.get_graph(xray=...)`` (xray: true/false/depth)."""
    check_assistant(assistant_id)
    return json_response(assistant.graph.get_graph(xray=_xray(xray)).to_json())


@router.get("/assistants/{assistant_id}/schemas")
async def get_assistant_schemas(assistant_id: str, assistant: AssistantDep, user: UserDep) -> Response:
    """Input, output, state, config and context JSON schemas of the graph."""
    check_assistant(assistant_id)
    return json_response(graph_schemas(assistant.graph))


@router.get("/assistants/{assistant_id}/subgraphs")
@router.get("/assistants/{assistant_id}/subgraphs/{namespace}")
async def get_assistant_subgraphs(assistant_id: str, assistant: AssistantDep, user: UserDep,
                                  namespace: str | None = None, recurse: bool = False) -> Response:
    """``{namespace: GraphSchema}`` of the specialist subgraphs."""
    check_assistant(assistant_id)
    out = {}
    async for ns, sub in assistant.graph.aget_subgraphs(namespace=namespace, recurse=recurse):
        out[ns] = {**graph_schemas(sub), "graph_id": GRAPH_ID}
    return json_response(out)
