"""open_sqlite: the one way our embedded SQLite databases are opened (aiosqlite, WAL, busy timeout)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any


async def open_sqlite(path: Path, *, foreign_keys: bool = False) -> Any:
    """An aiosqlite connection to ``path`` (parent folder created) in autocommit mode (``isolation_level=None``:
    callers run explicit BEGIN/COMMIT), rows as ``sqlite3.Row``, WAL journal, 5 s busy timeout, and
    ``PRAGMA foreign_keys=ON`` when asked. Raises sqlite3.Error if the file cannot be opened."""
    import asyncio

    import aiosqlite

    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)  # file-system I/O: off the event loop
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    await conn.execute("PRAGMA journal_mode=WAL")
    if foreign_keys:
        await conn.execute("PRAGMA foreign_keys=ON")
    await conn.execute("PRAGMA busy_timeout=5000")
    return conn
