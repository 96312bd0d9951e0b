"""FastAPI dependencies and their ``Annotated`` aliases, defined once: the Assistant, the caller, threads, guard."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from graphs.app import Assistant
from server.accounts import AccountsRepository, ThreadRegistry
from server.auth import authenticate
from server.events import EventBroker, RunGuard


def get_assistant(request: Request) -> Assistant:
    """The process-wide Assistant opened by the lifespan (``app.state.assistant``)."""
    return request.app.state.assistant


def get_accounts(request: Request) -> AccountsRepository:
    """The accounts repository (API keys, thread ownership) opened by the lifespan."""
    return request.app.state.accounts


async def get_user(request: Request) -> str:
    """The authenticated user id: ``Authorization: Bearer <key>`` or ``X-Api-Key: <key>`` looked up by SHA-256
    hash; raises server.errors.Unauthorized (401 envelope) when missing, unknown or revoked. Dev mode
    (``MANGAASSIST_AUTH=off``): the ``X-User-Id`` header, or "dev"."""
    return await authenticate(request.app.state.accounts, request.app.state.settings.auth, request.headers)


def get_threads(request: Request) -> ThreadRegistry:
    """The ThreadRegistry (ownership checks; delete drops checkpoints too)."""
    return request.app.state.threads


def get_run_guard(request: Request) -> RunGuard:
    """The RunGuard (one run per thread; Redis lock when REDIS_URL is set)."""
    return request.app.state.run_guard


def get_broker(request: Request) -> EventBroker:
    """The EventBroker (run-event fan-out and cancellation)."""
    return request.app.state.broker


AssistantDep = Annotated[Assistant, Depends(get_assistant)]
AccountsDep = Annotated[AccountsRepository, Depends(get_accounts)]
UserDep = Annotated[str, Depends(get_user)]
ThreadsDep = Annotated[ThreadRegistry, Depends(get_threads)]
RunGuardDep = Annotated[RunGuard, Depends(get_run_guard)]
BrokerDep = Annotated[EventBroker, Depends(get_broker)]
