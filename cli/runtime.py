"""Helpers shared by CLI commands: run a coroutine, open the Assistant, turn errors into exit code 2."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from contextlib import AsyncExitStack
from typing import Any, Awaitable, Callable, TypeVar

import typer

from core.errors import ConfigurationError, MangaAssistError
from core.settings import get_settings

T = TypeVar("T")


def fail(message: str) -> None:
    """Print ``message`` to stderr and exit with code 2 (bad input or configuration)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def run(main: Callable[[], Awaitable[T]]) -> T:
    """asyncio.run(main()) with expected errors turned into a clear message and exit code 2."""
    logging.basicConfig(level=get_settings().log_level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return asyncio.run(main())
    except (ConfigurationError, MangaAssistError, ValueError) as exc:
        fail(str(exc))
    except OSError as exc:  # database/redis unreachable at start-up
        fail(f"cannot reach a backend: {exc}")
    raise AssertionError("unreachable")


async def with_assistant(fn: Callable[[Any], Awaitable[T]]) -> T:
    """Open the Assistant on the configured backends, run ``fn(assistant)``, close everything."""
    from graphs.app import Assistant

    async with AsyncExitStack() as stack:
        assistant = await Assistant.open(get_settings(), stack)
        return await fn(assistant)


async def small_pool(settings: Any, stack: AsyncExitStack) -> Any | None:
    """A 1-2 connection psycopg pool on DATABASE_URL for admin commands (closed by ``stack``), or None
    when the embedded SQLite defaults are in use."""
    if not settings.database_url:
        return None
    from tools.backends.persistence import open_postgres_pool

    pool = await open_postgres_pool(settings.database_url, 1, 2)
    stack.push_async_callback(pool.close)
    return pool


def print_json(obj: Any) -> None:
    """One JSON object on one line (UTF-8, no ASCII escaping)."""
    typer.echo(json.dumps(obj, ensure_ascii=False, default=str))
