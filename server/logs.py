"""JSON log lines carrying the request id, and the ASGI middleware that assigns it (X-Request-Id in and out)."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
"""The id of the request (or WebSocket) being served in this task; '' outside one."""
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
access_log = logging.getLogger("server.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (ISO-8601 UTC), level, logger, msg, request_id, extra fields, exc."""

    _STD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON line."""
        out: dict[str, Any] = {"ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                               "level": record.levelname, "logger": record.name, "msg": record.getMessage()}
        rid = getattr(record, "request_id", None) or request_id_var.get()
        if rid:
            out["request_id"] = rid
        for k, v in vars(record).items():
            if k not in self._STD and k not in out and not k.startswith("_"):
                out[k] = v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_json_logging(level: int | str = logging.INFO) -> None:
    """Send the root logger (and uvicorn's) to stderr as JSON lines. Called by ``mangaassist serve``."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # replaced by server.access with request ids


class RequestIdMiddleware:
    """Pure ASGI middleware: take a well-formed ``X-Request-Id`` from the client or make one (UUID4 hex), put it
    in ``scope["state"]["request_id"]`` and the logging context, echo it in the response header, and log one
    ``server.access`` line per HTTP request (method, path, status, duration_ms) or WebSocket session."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        """ASGI entry point."""
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        incoming = ""
        for k, v in scope.get("headers") or ():
            if k == b"x-request-id":
                incoming = v.decode("latin-1")
                break
        rid = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        token = request_id_var.set(rid)
        t0 = time.perf_counter()
        status = {"code": 0}

        async def send_with_id(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", rid.encode("latin-1")))
                message = {**message, "headers": headers}
            elif message["type"] == "websocket.close":
                status["code"] = message.get("code", 1000)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            access_log.info("%s %s %s", scope.get("method", "WS"), scope.get("path", ""), status["code"],
                            extra={"method": scope.get("method", "WS"), "path": scope.get("path", ""),
                                   "status": status["code"],
                                   "duration_ms": round((time.perf_counter() - t0) * 1000, 2)})
            request_id_var.reset(token)
