"""Liveness (``GET /v1/health``) and readiness (``GET /v1/ready``: the database answers ``SELECT 1``)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request

from server.deps import AccountsDep
from server.errors import ApiError

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness: the process serves requests")
async def health() -> dict:
    """Always {"status": "ok"} while the process runs (no backend is touched)."""
    return {"status": "ok"}


@router.get("/ready", summary="Readiness: the database is reachable",
            responses={503: {"description": "database unreachable (error envelope, code not_ready)"}})
async def ready(request: Request, accounts: AccountsDep) -> dict:
    """{"status": "ready", "database": "sqlite"|"postgres", "events": "local"|"redis"} when ``SELECT 1`` succeeds
    within 2 s on the server's database; 503 ``not_ready`` otherwise."""
    try:
        await asyncio.wait_for(accounts.ping(), 2.0)
    except Exception as exc:
        log.warning("readiness check failed: %s", exc)
        raise ApiError(503, "not_ready", "database unreachable") from None
    return {"status": "ready", "database": accounts.dialect, "events": request.app.state.broker.mode}
