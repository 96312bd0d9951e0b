"""Operator signals: Prometheus metrics (``GET /metrics``), OpenTelemetry spans per turn/node/tool/model call, and
the per-thread activity stream, all fed by one LangChain callback handler bound to the compiled graph.

The handler sees LangGraph's callback events: the root chain run is the turn, a chain run whose name equals its
``langgraph_node`` metadata is a node (``langgraph_checkpoint_ns`` tells which specialist subgraph runs it),
tool and chat-model runs are tool and model calls. Spans are parented by the callback run tree, not by the
ambient OpenTelemetry context (LangGraph runs nodes in their own asyncio tasks): every run that gets no span
(a subgraph's own root run, a plan step's subgraph, RunnableSequence, channel writes…) maps to its nearest
ancestor that has one, so each turn is one trace and every node, tool and model span hangs under it. Nothing is a module-level singleton: ``Observability`` owns
its own prometheus_client CollectorRegistry and (optionally) its own OpenTelemetry TracerProvider.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response, WebSocket, WebSocketDisconnect
from langchain_core.callbacks import BaseCallbackHandler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

log = logging.getLogger(__name__)
graph_log = logging.getLogger("mangaassist.graph")
"""Structured per-turn/node/tool lines (JSON under `mangaassist serve`): thread_id, user (hashed), node, agent, latency_ms."""

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ACTIVITY_STREAM = "mangaassist:activity:{}"
ACTIVITY_MAXLEN = 1000
"""Events kept per thread in the activity stream (Redis XADD MAXLEN ~, or the in-process deque)."""


def hash_user(user_id: str) -> str:
    """The id logged for a user: first 16 hex chars of SHA-256 (joinable across log lines, not reversible)."""
    return hashlib.sha256((user_id or "").encode("utf-8")).hexdigest()[:16]


def _agent(ns: str) -> str:
    head = (ns or "").split("|")[0].split(":", 1)[0]
    return head.removesuffix("_agent") if head.endswith("_agent") else "supervisor"


class Metrics:
    """The Prometheus series of MangaAssist, in a private registry (``render()`` → exposition text).

    Series: mangaassist_turns_total{outcome}, mangaassist_turn_seconds, mangaassist_node_seconds{node,agent},
    mangaassist_specialist_seconds{agent}, mangaassist_intents_total{intent}, mangaassist_fallbacks_total,
    mangaassist_budget_degradations_total{step}, mangaassist_cache_requests_total{result=hit|miss},
    mangaassist_checkpoint_write_seconds{op}, mangaassist_errors_total{kind}, mangaassist_tool_calls_total{tool,
    outcome}, mangaassist_model_tokens_total{direction}, mangaassist_http_requests_total{method,route,status},
    mangaassist_http_request_seconds{route}.
    """

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.turns = Counter("mangaassist_turns", "Customer turns run", ["outcome"], registry=r)
        self.turn_s = Histogram("mangaassist_turn_seconds", "Turn latency (s)", buckets=LATENCY_BUCKETS_S, registry=r)
        self.node_s = Histogram("mangaassist_node_seconds", "Node latency (s)", ["node", "agent"],
                                buckets=LATENCY_BUCKETS_S, registry=r)
        self.specialist_s = Histogram("mangaassist_specialist_seconds", "Specialist subgraph latency (s)", ["agent"],
                                      buckets=LATENCY_BUCKETS_S, registry=r)
        self.intents = Counter("mangaassist_intents", "Intents routed", ["intent"], registry=r)
        self.fallbacks = Counter("mangaassist_fallbacks", "Model fallbacks taken", registry=r)
        self.degradations = Counter("mangaassist_budget_degradations", "Budget degradation steps", ["step"], registry=r)
        self.cache = Counter("mangaassist_cache_requests", "Cache lookups", ["result"], registry=r)
        self.checkpoint_s = Histogram("mangaassist_checkpoint_write_seconds", "Checkpoint writes (s)", ["op"],
                                      buckets=LATENCY_BUCKETS_S, registry=r)
        self.errors = Counter("mangaassist_errors", "Errors by kind", ["kind"], registry=r)
        self.tools = Counter("mangaassist_tool_calls", "Tool calls", ["tool", "outcome"], registry=r)
        self.tokens = Counter("mangaassist_model_tokens", "Model tokens", ["direction"], registry=r)
        self.http = Counter("mangaassist_http_requests", "HTTP requests", ["method", "route", "status"], registry=r)
        self.http_s = Histogram("mangaassist_http_request_seconds", "HTTP latency (s)", ["route"],
                                buckets=LATENCY_BUCKETS_S, registry=r)

    def error(self, kind: str) -> None:
        """Count one error of ``kind`` (e.g. database_unavailable, rate_limited, internal, turn_failed)."""
        self.errors.labels(kind).inc()

    def turn_done(self, seconds: float, values: dict | None, outcome: str = "ok") -> None:
        """Record a finished turn from its final state values (intents, usage.fallbacks, budget_report.degraded)."""
        self.turns.labels(outcome).inc()
        self.turn_s.observe(seconds)
        values = values if isinstance(values, dict) else {}
        for intent in values.get("intents") or ():
            self.intents.labels(str(intent)).inc()
        fb = int((values.get("usage") or {}).get("fallbacks", 0) or 0)
        if fb:
            self.fallbacks.inc(fb)
        for step in (values.get("budget_report") or {}).get("degraded") or ():
            self.degradations.labels(str(step)).inc()

    def render(self) -> tuple[bytes, str]:
        """(body, content type) of the Prometheus text exposition."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def make_tracer(exporter: str | None = None) -> Any | None:
    """An OpenTelemetry tracer on a private TracerProvider, or None when tracing is off (the default).

    ``exporter`` (default env MANGAASSIST_OTEL_EXPORTER): "none"/"" (off), "console" (spans as JSON on stdout),
    "otlp" (OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT, opentelemetry-exporter-otlp-proto-http), or "memory" (kept in
    ``tracer.memory_exporter`` for tests).
    """
    exporter = (exporter if exporter is not None else os.environ.get("MANGAASSIST_OTEL_EXPORTER", "")).lower()
    if exporter in ("", "none", "off"):
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "mangaassist"}))
    memory = None
    if exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif exporter == "memory":
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        memory = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(memory))
    else:
        raise ValueError(f"unknown MANGAASSIST_OTEL_EXPORTER {exporter!r} (none, console, otlp, memory)")
    tracer = provider.get_tracer("mangaassist")
    tracer.provider = provider  # type: ignore[attr-defined]
    tracer.memory_exporter = memory  # type: ignore[attr-defined]
    return tracer


class ActivityStream:
    """Node start/end and tool events per thread for observers: Redis Streams (``XADD mangaassist:activity:{id}
    MAXLEN ~ 1000``) when ``redis`` is given, else an in-process deque per thread. ``tail(thread_id)`` yields
    events newer than the subscription (dicts: {type: "activity", event, node, agent, tool, ms, ts})."""

    def __init__(self, redis: Any | None = None, maxlen: int = ACTIVITY_MAXLEN):
        from server.events import Breaker

        self.redis = redis
        self.maxlen = maxlen
        self.breaker = Breaker()
        self._local: dict[str, deque] = defaultdict(lambda: deque(maxlen=maxlen))
        self._waiters: dict[str, set[asyncio.Queue]] = defaultdict(set)
        self._outbox: asyncio.Queue = asyncio.Queue(10_000)
        self._writer: asyncio.Task | None = None

    def publish_nowait(self, thread_id: str, event: dict) -> None:
        """Append ``event`` (never blocks the run: the Redis write is a background task)."""
        if not thread_id:
            return
        self._local[thread_id].append(event)
        for q in list(self._waiters.get(thread_id, ())):
            if q.full():
                q.get_nowait()
            q.put_nowait(event)
        if self.redis is not None and not self.breaker.open:
            # one writer task drains an outbox in order: concurrent XADDs on pooled connections could reorder
            if self._writer is None or self._writer.done():
                try:
                    self._writer = asyncio.get_running_loop().create_task(self._write_forever())
                except RuntimeError:
                    return
            if self._outbox.full():
                self._outbox.get_nowait()
            self._outbox.put_nowait((thread_id, event))

    async def _write_forever(self) -> None:
        assert self.redis is not None  # the writer runs only in Redis mode
        while True:
            batch = [await self._outbox.get()]
            while not self._outbox.empty() and len(batch) < 500:
                batch.append(self._outbox.get_nowait())
            if self.breaker.open:
                continue
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for thread_id, event in batch:
                        pipe.xadd(ACTIVITY_STREAM.format(thread_id), {"e": json.dumps(event, default=str)},
                                  maxlen=self.maxlen, approximate=True)
                    await pipe.execute()
            except Exception as exc:
                log.warning("activity stream: redis unavailable (%s); in-process only", exc)
                self.breaker.trip()

    async def aclose(self) -> None:
        """Stop the Redis writer (pending events are dropped)."""
        if self._writer is not None:
            self._writer.cancel()
            try:
                await self._writer
            except (asyncio.CancelledError, Exception):
                pass
            self._writer = None

    def recent(self, thread_id: str, n: int = 100) -> list[dict]:
        """The last ``n`` events of the thread seen by this process."""
        return list(self._local.get(thread_id, ()))[-n:]

    @asynccontextmanager
    async def tail(self, thread_id: str) -> AsyncIterator[asyncio.Queue]:
        """A queue of the thread's events from now on: from Redis (XREAD BLOCK, every instance's runs) when
        available, else from this process."""
        q: asyncio.Queue = asyncio.Queue(1000)
        reader = None
        if self.redis is not None and not self.breaker.open:
            reader = asyncio.create_task(self._xread(thread_id, q))
        else:
            self._waiters[thread_id].add(q)
        try:
            yield q
        finally:
            if reader is not None:
                reader.cancel()
            self._waiters[thread_id].discard(q)
            if not self._waiters[thread_id]:
                self._waiters.pop(thread_id, None)

    async def _xread(self, thread_id: str, q: asyncio.Queue) -> None:
        last = "$"
        key = ACTIVITY_STREAM.format(thread_id)
        assert self.redis is not None  # tailed from Redis only in Redis mode
        while True:
            try:
                resp = await self.redis.xread({key: last}, block=1000, count=100)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis gone: continue from this process's own events
                self._waiters[thread_id].add(q)
                return
            for _, entries in resp or ():
                for entry_id, fields in entries:
                    last = entry_id
                    try:
                        q.put_nowait(json.loads(fields["e"]))
                    except (ValueError, KeyError, asyncio.QueueFull):
                        pass


class GraphObserver(BaseCallbackHandler):
    """LangChain callback handler feeding Metrics, OpenTelemetry spans (when ``tracer``) and the ActivityStream.

    Turn = root chain run; node = chain run named like its ``langgraph_node`` metadata; tool/model calls are
    children. Span attributes: thread id, hashed user id, node, agent; model spans carry
    ``llm.input_tokens``/``llm.output_tokens`` from the message's usage_metadata.
    """

    run_inline = True  # called in the run's own task: spans nest and contextvars stay coherent
    raise_error = False

    def __init__(self, metrics: Metrics, tracer: Any | None = None, activity: ActivityStream | None = None):
        self.metrics = metrics
        self.tracer = tracer
        self.activity = activity
        self._runs: dict[UUID, dict] = {}
        self._thread_of: dict[UUID, str] = {}  # every open chain run (tracked or not) → its thread id
        self._carrier: dict[UUID, UUID] = {}  # an open untracked chain run → its nearest tracked ancestor run

    def _tracked(self, run_id: UUID | None) -> UUID | None:
        """``run_id`` when it has a record, else the nearest ancestor that has one (None at the root)."""
        if run_id is None or run_id in self._runs:
            return run_id
        return self._carrier.get(run_id)

    # ---- helpers -------------------------------------------------------------------------------------

    def _start(self, run_id: UUID, parent_run_id: UUID | None, kind: str, name: str, metadata: dict | None,
               attrs: dict | None = None) -> dict:
        md = metadata or {}
        carrier = self._tracked(parent_run_id)
        parent = self._runs.get(carrier) if carrier is not None else None
        rec = {"kind": kind, "name": name, "t0": time.perf_counter(), "span": None,
               "thread_id": (parent or {}).get("thread_id") or (self._thread_of.get(parent_run_id) if parent_run_id is not None else None)
               or md.get("thread_id") or "",
               "agent": _agent(md.get("langgraph_checkpoint_ns", ""))}
        rec["user"] = (parent or {}).get("user") or hash_user(str(md.get("user_id", "")))
        if self.tracer is not None:
            from opentelemetry import trace

            ctx = trace.set_span_in_context(parent["span"]) if parent and parent.get("span") is not None else None
            span = self.tracer.start_span(f"{kind} {name}", context=ctx)
            span.set_attribute("mangaassist.thread_id", rec["thread_id"])
            span.set_attribute("mangaassist.agent", rec["agent"])
            if kind == "turn":
                span.set_attribute("mangaassist.user", rec["user"])
            for k, v in (attrs or {}).items():
                span.set_attribute(k, v)
            rec["span"] = span
        self._runs[run_id] = rec
        return rec

    def _end(self, run_id: UUID, error: BaseException | None = None) -> tuple[dict | None, float]:
        rec = self._runs.pop(run_id, None)
        if rec is None:
            return None, 0.0
        dt = time.perf_counter() - rec["t0"]
        span = rec.get("span")
        if span is not None:
            if error is not None and type(error).__name__ not in ("GraphInterrupt", "CancelledError"):
                from opentelemetry.trace import Status, StatusCode

                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            span.end()
        return rec, dt

    @staticmethod
    def _log(rec: dict, dt: float, outcome: str = "ok") -> None:
        """One structured log line per finished turn/node/tool: thread id, hashed user id, node, agent, latency."""
        graph_log.info("%s %s %s", rec["kind"], rec["name"], outcome,
                       extra={"thread_id": rec["thread_id"], "user": rec["user"], "node": rec["name"],
                              "kind": rec["kind"], "agent": rec["agent"], "outcome": outcome,
                              "latency_ms": round(dt * 1000, 2)})

    def _activity(self, rec: dict, event: str, **extra: Any) -> None:
        if self.activity is not None and rec.get("thread_id"):
            self.activity.publish_nowait(rec["thread_id"], {"type": "activity", "event": event, "agent": rec["agent"],
                                                            "ts": time.time(), **extra})

    # ---- chains: turns and nodes ---------------------------------------------------------------------

    def on_chain_start(self, serialized: dict | None, inputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                       tags: list[str] | None = None, metadata: dict | None = None, **kwargs: Any) -> None:
        """Start timing a graph node (LangChain callback)."""
        name = kwargs.get("name") or (serialized or {}).get("name") or ""
        md = metadata or {}
        self._thread_of[run_id] = (self._thread_of.get(parent_run_id, "") if parent_run_id is not None else "") or str(md.get("thread_id") or "")
        if parent_run_id is None:
            rec = self._start(run_id, None, "turn", name, md)
            self._activity(rec, "turn_start")
            return
        if md.get("langgraph_node") == name and not name.startswith("__"):
            parent = self._runs.get(parent_run_id)
            if not (parent is not None and parent["kind"] == "node" and parent["name"] == name):
                rec = self._start(run_id, parent_run_id, "node", name, md, {"mangaassist.node": name})
                self._activity(rec, "node_start", node=name)
                return
            # else: a subgraph's own root run inside its node: the node already covers it
        carrier = self._tracked(parent_run_id)
        if carrier is not None:
            self._carrier[run_id] = carrier

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Record a node's duration (LangChain callback)."""
        self._thread_of.pop(run_id, None)
        self._carrier.pop(run_id, None)
        rec, dt = self._end(run_id)
        if rec is None:
            return
        self._log(rec, dt)
        if rec["kind"] == "turn":
            self.metrics.turn_done(dt, outputs if isinstance(outputs, dict) else None)
            self._activity(rec, "turn_end", ms=round(dt * 1000, 2))
        else:
            self.metrics.node_s.labels(rec["name"], rec["agent"]).observe(dt)
            if rec["name"].endswith("_agent"):
                self.metrics.specialist_s.labels(rec["name"].removesuffix("_agent")).observe(dt)
            self._activity(rec, "node_end", node=rec["name"], ms=round(dt * 1000, 2))

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Record a node's failure (LangChain callback)."""
        self._thread_of.pop(run_id, None)
        self._carrier.pop(run_id, None)
        rec, dt = self._end(run_id, error)
        if rec is None:
            return
        interrupted = type(error).__name__ == "GraphInterrupt"
        self._log(rec, dt, "interrupted" if interrupted else "error")
        if rec["kind"] == "turn":
            outcome = "interrupted" if interrupted else "cancelled" if isinstance(error, asyncio.CancelledError) else "error"
            self.metrics.turns.labels(outcome).inc()
            self.metrics.turn_s.observe(dt)
            if outcome == "error":
                self.metrics.error("turn_failed")
            self._activity(rec, "turn_end", ms=round(dt * 1000, 2), outcome=outcome)
        else:
            self.metrics.node_s.labels(rec["name"], rec["agent"]).observe(dt)
            self._activity(rec, "node_end", node=rec["name"], ms=round(dt * 1000, 2),
                           outcome="interrupted" if interrupted else "error")

    # ---- tools ---------------------------------------------------------------------------------------

    def on_tool_start(self, serialized: dict | None, input_str: str, *, run_id: UUID, parent_run_id: UUID | None = None,
                      metadata: dict | None = None, **kwargs: Any) -> None:
        """Start timing a tool call (LangChain callback)."""
        name = kwargs.get("name") or (serialized or {}).get("name") or "tool"
        rec = self._start(run_id, parent_run_id, "tool", name, metadata, {"mangaassist.tool": name})
        self._activity(rec, "tool_start", tool=name)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Record a tool call's duration (LangChain callback)."""
        rec, dt = self._end(run_id)
        if rec is not None:
            self._log(rec, dt)
            self.metrics.tools.labels(rec["name"], "ok").inc()
            self._activity(rec, "tool_end", tool=rec["name"], ms=round(dt * 1000, 2))

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Record a tool call's failure (LangChain callback)."""
        rec, dt = self._end(run_id, error)
        if rec is not None:
            self.metrics.tools.labels(rec["name"], "error").inc()
            self.metrics.error("tool_error")
            self._activity(rec, "tool_end", tool=rec["name"], ms=round(dt * 1000, 2), outcome="error")

    # ---- model calls ---------------------------------------------------------------------------------

    def on_chat_model_start(self, serialized: dict | None, messages: Any, *, run_id: UUID,
                            parent_run_id: UUID | None = None, metadata: dict | None = None, **kwargs: Any) -> None:
        """Start timing a chat model call (LangChain callback)."""
        name = kwargs.get("name") or (serialized or {}).get("name") or "model"
        self._start(run_id, parent_run_id, "model", name, metadata, {"gen_ai.request.model": name})

    # Same positional shape as LangChain's on_llm_start (its prompts arrive as ``messages``); the names differ.
    on_llm_start = on_chat_model_start  # type: ignore[assignment]

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Record a model call's duration and usage (LangChain callback)."""
        rec = self._runs.get(run_id)
        tin = tout = 0
        for gens in getattr(response, "generations", None) or ():
            for g in gens:
                usage = getattr(getattr(g, "message", None), "usage_metadata", None) or {}
                tin += int(usage.get("input_tokens", 0) or 0)
                tout += int(usage.get("output_tokens", 0) or 0)
        if tin or tout:
            self.metrics.tokens.labels("input").inc(tin)
            self.metrics.tokens.labels("output").inc(tout)
        if rec is not None and rec.get("span") is not None:
            rec["span"].set_attribute("llm.input_tokens", tin)
            rec["span"].set_attribute("llm.output_tokens", tout)
        self._end(run_id)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Record a model call's failure (LangChain callback)."""
        if self._end(run_id, error)[0] is not None:
            self.metrics.error("model_error")


def instrument_checkpointer(saver: Any, metrics: Metrics) -> None:
    """Time the saver's ``aput`` and ``aput_writes`` into mangaassist_checkpoint_write_seconds{op} (wraps the
    bound methods of this instance only; the class is untouched)."""
    for op in ("aput", "aput_writes"):
        original = getattr(saver, op, None)
        if original is None or getattr(original, "_mangaassist_timed", False):
            continue

        def timed(*a: Any, _orig: Any = original, _op: str = op, **kw: Any) -> Any:
            async def run() -> Any:
                t0 = time.perf_counter()
                try:
                    return await _orig(*a, **kw)
                finally:
                    metrics.checkpoint_s.labels(_op).observe(time.perf_counter() - t0)
            return run()

        timed._mangaassist_timed = True  # type: ignore[attr-defined]
        setattr(saver, op, timed)


def instrument_cache(cache: Any, metrics: Metrics) -> None:
    """Count hits/misses of the Deps cache's ``get`` (None = miss) into mangaassist_cache_requests{result}."""
    original = getattr(cache, "get", None)
    if original is None or getattr(original, "_mangaassist_timed", False):
        return

    async def get(key: str, *a: Any, **kw: Any) -> Any:
        value = await original(key, *a, **kw)
        metrics.cache.labels("miss" if value is None else "hit").inc()
        return value

    get._mangaassist_timed = True  # type: ignore[attr-defined]
    cache.get = get


class HttpMetricsMiddleware:
    """Pure ASGI middleware: count HTTP requests by method, route template (``/v1/threads/{thread_id}``, so
    thread ids never become label values) and status, and observe their latency; 5xx and 503 also count as
    errors (``http_5xx``). Reads ``app.state.metrics`` (skipped until the lifespan sets it)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        """ASGI entry point."""
        metrics = getattr(getattr(scope.get("app"), "state", None), "metrics", None)
        if scope["type"] != "http" or metrics is None:
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = {"code": 500}

        async def send_and_see(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_see)
        finally:
            route = "unmatched"
            if scope.get("route") is not None:  # the matched path with its parameters put back as {name}
                route = scope.get("path", "")
                for name, value in (scope.get("path_params") or {}).items():
                    route = route.replace(str(value), "{" + name + "}", 1)
            metrics.http.labels(scope.get("method", ""), route, str(status["code"])).inc()
            metrics.http_s.labels(route).observe(time.perf_counter() - t0)
            if status["code"] >= 500:
                metrics.error("http_5xx")


def build_router() -> Any:
    """``GET /metrics`` (Prometheus text; not rate limited, no API key — bind the server to a private interface
    or scrape through the network policy) and ``WS /v1/ws/threads/{thread_id}/activity`` (the thread's activity
    stream for observers; same authentication and ownership rules as the chat socket, 1008 on failure)."""
    router = APIRouter(tags=["operations"])

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics_endpoint(request: Request) -> Response:
        body, ctype = request.app.state.metrics.render()
        return Response(body, media_type=ctype)

    @router.websocket("/v1/ws/threads/{thread_id}/activity")
    async def activity_socket(websocket: WebSocket, thread_id: str) -> None:
        """Streams ``{"type": "activity", "event": turn_start|node_start|node_end|tool_start|tool_end|turn_end,
        "node", "agent", "tool", "ms", "ts"}`` frames of every run on the thread (first the recent ones seen
        by this instance, with ``"replay": true``)."""
        from server.deps import accept_thread_socket  # deps imports the app's pieces; keep this module importable alone

        app = websocket.app
        if await accept_thread_socket(websocket, thread_id) is None:
            return
        stream: ActivityStream = app.state.activity
        async with stream.tail(thread_id) as q:
            for ev in stream.recent(thread_id, 50):
                await websocket.send_text(json.dumps({**ev, "replay": True}, default=str))

            async def pump() -> None:
                while True:
                    await websocket.send_text(json.dumps(await q.get(), default=str))

            sender = asyncio.create_task(pump())
            try:
                while (await websocket.receive())["type"] != "websocket.disconnect":
                    pass
            except (WebSocketDisconnect, RuntimeError):
                pass
            finally:
                sender.cancel()

    return router
