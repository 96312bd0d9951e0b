"""FastAPI app factory: lifespan (Assistant → accounts → event broker, closed in reverse), middleware, routers."""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from core.settings import Settings, get_settings
from server.accounts import ThreadRegistry, open_accounts
from server.errors import install_error_handlers
from server.events import EventBroker, RunGuard, connect_redis
from server.logs import RequestIdMiddleware
from server.observability import (
    ActivityStream,
    GraphObserver,
    HttpMetricsMiddleware,
    Metrics,
    build_router,
    instrument_cache,
    instrument_checkpointer,
    make_tracer,
)
from server.ratelimit import RateLimitMiddleware, limiter_from_env

log = logging.getLogger(__name__)

API_DESCRIPTION = """MangaAssist chat API (v1) and the LangGraph Agent Server API subset.

Authenticate with `Authorization: Bearer <key>` or `X-Api-Key: <key>` (keys: `mangaassist keys create --user ID`).
Dev mode for local use only: `MANGAASSIST_AUTH=off` (the user is the `X-User-Id` header, or `dev`).
Every error is `{"error": {"code", "message", "request_id"}}`. Create a thread (`POST /v1/threads`) before
messaging it: messages on an unknown thread id are 404. A second message while a run is in flight on the same
thread is rejected with 409 `thread_busy` (never queued, never interleaved).
"""


async def _open_redis(settings: Settings, stack: AsyncExitStack):
    """Redis client for the guard and broker, or None (no REDIS_URL, or unreachable at start: local mode)."""
    if not settings.redis_url:
        return None
    try:
        client = await connect_redis(settings.redis_url)
    except Exception as exc:
        log.warning("REDIS_URL set but redis is unreachable (%s): run guard and events are in-process only", exc)
        return None
    stack.push_async_callback(client.aclose)
    return client


def create_app(settings: Settings | None = None) -> FastAPI:
    """The MangaAssist ASGI app. ``settings`` default to the environment (``core.settings.get_settings()``).

    The lifespan opens, in order: the Assistant (persistence, Deps, compiled graph — several seconds),
    the accounts repository on the same database, Redis (when REDIS_URL is set), the RunGuard and the
    EventBroker; it closes them in reverse. State: ``app.state.{settings, assistant, accounts, threads,
    run_guard, broker}``.
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from graphs.app import Assistant

        t0 = time.perf_counter()
        async with AsyncExitStack() as stack:
            assistant = await Assistant.open(settings, stack)
            persistence = assistant.persistence
            assert persistence is not None  # Assistant.open always opens it (only tests build one without)
            accounts = await open_accounts(settings, pool=persistence.pool)
            stack.push_async_callback(accounts.close)
            redis = await _open_redis(settings, stack)
            broker = EventBroker(redis)
            await broker.start()
            stack.push_async_callback(broker.aclose)
            app.state.settings = settings
            app.state.assistant = assistant
            app.state.accounts = accounts
            app.state.threads = ThreadRegistry(accounts, persistence.checkpointer)
            app.state.run_guard = RunGuard(redis)
            app.state.broker = broker
            app.state.rate_limiter = limiter_from_env(settings, redis)
            # operator signals: metrics, optional traces, activity stream, fed by one callback handler
            app.state.metrics = Metrics()
            app.state.activity = ActivityStream(redis)
            stack.push_async_callback(app.state.activity.aclose)
            app.state.tracer = make_tracer()
            assistant.graph = assistant.graph.with_config(
                callbacks=[GraphObserver(app.state.metrics, app.state.tracer, app.state.activity)])
            instrument_checkpointer(persistence.checkpointer, app.state.metrics)
            instrument_cache(assistant.deps.cache, app.state.metrics)
            if app.state.tracer is not None:
                stack.callback(app.state.tracer.provider.shutdown)
            log.info("server ready", extra={"startup_ms": round((time.perf_counter() - t0) * 1000, 1),
                                            "database": persistence.backend, "events": broker.mode,
                                            "auth": settings.auth,
                                            "rate_limit": app.state.rate_limiter.mode})
            if settings.auth == "off":
                log.warning("MANGAASSIST_AUTH=off: dev mode, no API keys checked — local use only")
            yield

    app = FastAPI(title="MangaAssist", version="1.0.0", description=API_DESCRIPTION, lifespan=lifespan,
                  docs_url="/v1/docs", redoc_url=None, openapi_url="/v1/openapi.json")
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(HttpMetricsMiddleware)
    app.add_middleware(RateLimitMiddleware)  # inside the request-id middleware: a 429 carries the request id
    app.add_middleware(RequestIdMiddleware)

    from server.routes import health, threads, ws

    app.include_router(health.router, prefix="/v1")
    app.include_router(threads.router, prefix="/v1")
    app.include_router(ws.router, prefix="/v1")
    app.include_router(build_router())
    try:  # the LangGraph Agent Server API subset (the server/routes/lgapi package), mounted at the root when present
        lgapi = importlib.import_module("server.routes.lgapi")
    except ModuleNotFoundError as exc:
        if exc.name != "server.routes.lgapi":
            raise
    else:
        app.include_router(lgapi.router)
    return app
