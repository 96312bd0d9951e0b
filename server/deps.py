"""FastAPI dependencies and their ``Annotated`` aliases, defined once: the Assistant, the caller, threads, guard,
the per-user daily budget."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, WebSocket

from graphs.app import Assistant
from server.accounts import AccountsRepository, ThreadRegistry, UserDayBudget
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


def get_day_budget(request: Request) -> UserDayBudget:
    """The per-user daily model budget of the serving Assistant (its store and settings); ``await
    budget.check(user)`` before any run raises the 429 ``daily_budget_exceeded`` envelope once the day is spent."""
    return UserDayBudget.of(request.app.state.assistant)


AssistantDep = Annotated[Assistant, Depends(get_assistant)]
AccountsDep = Annotated[AccountsRepository, Depends(get_accounts)]
UserDep = Annotated[str, Depends(get_user)]
ThreadsDep = Annotated[ThreadRegistry, Depends(get_threads)]
RunGuardDep = Annotated[RunGuard, Depends(get_run_guard)]
BrokerDep = Annotated[EventBroker, Depends(get_broker)]
DayBudgetDep = Annotated[UserDayBudget, Depends(get_day_budget)]


WS_POLICY_VIOLATION = 1008
"""WebSocket close code for a failed login or a thread that is not the caller's (RFC 6455 policy violation)."""


async def accept_thread_socket(websocket: WebSocket, thread_id: str) -> str | None:
    """Accept a WebSocket on ``thread_id``, authenticate it (header or ``?api_key=``) and check the caller owns
    the thread. Returns the user id, or None after closing with 1008 (reason: the error code)."""
    from core.errors import UnknownThread
    from server.errors import ApiError

    app = websocket.app
    await websocket.accept()
    try:
        user = await authenticate(app.state.accounts, app.state.settings.auth, websocket.headers,
                                  websocket.query_params)
        await app.state.threads.get(user, thread_id)
    except ApiError as exc:
        await websocket.close(code=WS_POLICY_VIOLATION, reason=exc.code)
        return None
    except UnknownThread:
        await websocket.close(code=WS_POLICY_VIOLATION, reason="thread_not_found")
        return None
    return user
