"""The error envelope of every HTTP error: ``{"error": {"code", "message", "request_id"}}`` and its handlers."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import UnknownThread

log = logging.getLogger(__name__)

_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
                 422: "invalid_input", 429: "rate_limited", 503: "unavailable"}


class ApiError(Exception):
    """An expected HTTP error: ``status`` (int), machine-readable ``code`` (snake_case) and a safe ``message``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class ThreadBusy(ApiError):
    """A run is already in flight on the thread (double texting is rejected, never interleaved): 409 ``thread_busy``."""

    def __init__(self, thread_id: str):
        super().__init__(409, "thread_busy", f"a run is already in progress on thread {thread_id}; retry when it ends")
        self.thread_id = thread_id


class ServerOwnedChannels(ApiError):
    """A state edit (fork, ``update_state``, a run's ``command.update``) writes channels that only the server
    computes (usage, budgets, turn bookkeeping): 422 ``server_owned_channels``; ``channels`` lists them (sorted),
    ``writable`` what a client may write in that graph."""

    def __init__(self, channels: list[str], writable: list[str]):
        super().__init__(422, "server_owned_channels",
                         f"these state channels are computed by the server and cannot be written by clients: "
                         f"{', '.join(channels)} (writable: {', '.join(writable)})")
        self.channels, self.writable = channels, writable


class DailyBudgetExceeded(ApiError):
    """The user's model budget of the current UTC day is used up (USD or tokens, across all of their threads):
    429 ``daily_budget_exceeded`` with ``Retry-After`` = seconds until 00:00 UTC. Raised before a run starts,
    so nothing is written to the thread."""

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(429, "daily_budget_exceeded", message, headers={"Retry-After": str(retry_after_s)})
        self.retry_after_s = retry_after_s


class Unauthorized(ApiError):
    """Missing, unknown or revoked API key: 401 ``unauthorized`` (with ``WWW-Authenticate: Bearer``)."""

    def __init__(self, message: str = "a valid API key is required (Authorization: Bearer <key> or X-Api-Key)"):
        super().__init__(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def request_id_of(request: Request) -> str:
    """The request id set by the request-id middleware ('' outside it)."""
    return str(getattr(request.state, "request_id", "") or request.headers.get("x-request-id", ""))


def envelope(code: str, message: str, request_id: str) -> dict[str, Any]:
    """The JSON body of every error response."""
    return {"error": {"code": code, "message": message, "request_id": request_id}}


def error_response(request: Request, status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSONResponse carrying the envelope and the X-Request-Id header."""
    rid = request_id_of(request)
    hdrs = dict(headers or {})
    if rid:
        hdrs["X-Request-Id"] = rid
    return JSONResponse(envelope(code, message, rid), status_code=status, headers=hdrs)


def _readable(exc: RequestValidationError) -> str:
    """'body.text: Input should be a valid string; ...' from pydantic's error list."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid value')}")
    return "; ".join(parts) or "invalid request"


def database_unavailable_errors() -> tuple[type[Exception], ...]:
    """Exception classes meaning "the database is unreachable right now" (not a bug): psycopg's
    OperationalError (refused/terminated connections, AdminShutdown) and InterfaceError, and psycopg_pool's
    PoolTimeout/PoolClosed (no connection within the pool timeout, 5 s). Empty when psycopg is not installed."""
    try:
        import psycopg
        import psycopg_pool
    except ImportError:  # pragma: no cover - the SQLite-only install
        return ()
    return (psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed)


DB_RETRY_AFTER_S = 2
"""Retry-After (s) sent with 503 ``database_unavailable``."""


def _count(request: Request, kind: str) -> None:
    """Count an error of ``kind`` in the Prometheus metrics (``app.state.metrics``, when the lifespan set it)."""
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.error(kind)


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through the envelope: ApiError (its status), UnknownThread (404 thread_not_found),
    request validation (422 invalid_input), HTTP errors from routing (404/405...), an unreachable database
    (503 database_unavailable with Retry-After, see ``database_unavailable_errors``) and anything else (500
    internal, logged with its traceback, never shown to the client)."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(request, exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(UnknownThread)
    async def _unknown_thread(request: Request, exc: UnknownThread) -> JSONResponse:
        return error_response(request, 404, "thread_not_found", str(exc) or "thread not found")

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(request, 422, "invalid_input", _readable(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(request, exc.status_code, code, message, getattr(exc, "headers", None))

    async def _db_down(request: Request, exc: Exception) -> JSONResponse:
        _count(request, "database_unavailable")
        log.warning("database unavailable on %s %s: %s: %s", request.method, request.url.path,
                    type(exc).__name__, str(exc).strip()[:200], extra={"error_kind": "database_unavailable"})
        return error_response(request, 503, "database_unavailable",
                              "the database is temporarily unavailable; retry shortly",
                              {"Retry-After": str(DB_RETRY_AFTER_S)})

    for exc_class in database_unavailable_errors():
        app.add_exception_handler(exc_class, _db_down)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        _count(request, "internal")
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "internal", "internal server error")
