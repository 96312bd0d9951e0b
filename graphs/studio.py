"""The module-level ``graph`` that langgraph.json points at, for ``langgraph dev`` and LangGraph Studio.

Compiled without a checkpointer or store: the LangGraph server supplies its own. Deps are built once at
import on a private event loop; orders use the embedded SQLite database here (a pool bound to that loop
could not be shared with the server's loop), so Studio never needs DATABASE_URL.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from core.settings import get_settings
from graphs.supervisor import build_supervisor
from tools.backends.factory import open_deps


async def _open_and_release():
    settings = get_settings().model_copy(update={"database_url": None, "redis_url": None})
    deps = await open_deps(settings)
    await deps.orders.close()  # the SQLite repository reconnects lazily on the server's event loop
    return deps


def _open_deps_blocking():
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _open_and_release()).result()


deps = _open_deps_blocking()
graph = build_supervisor(deps).compile(name="mangaassist")
