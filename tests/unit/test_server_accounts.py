"""Accounts repository on SQLite (keys hashed, revoke by prefix/hash/key) and ThreadRegistry ownership rules."""

from __future__ import annotations

import sqlite3

import pytest

from core.errors import UnknownThread
from server.accounts import SqliteAccountsRepository, ThreadRegistry, hash_key


@pytest.fixture
async def repo(tmp_path):
    r = SqliteAccountsRepository(tmp_path / "server.sqlite")
    await r.setup()
    yield r
    await r.close()


async def test_keys_are_stored_hashed_and_revocable(repo, tmp_path):
    key, rec = await repo.create_key("u_ben", "laptop")
    assert key.startswith("ma_") and rec["key_prefix"] == key[:11]
    assert await repo.user_for_key(key) == "u_ben"
    assert await repo.user_for_key(key + "x") is None
    with sqlite3.connect(tmp_path / "server.sqlite") as db:
        stored = [r[0] for r in db.execute("SELECT key_hash FROM api_keys")]
    assert stored == [hash_key(key)] and key not in stored
    for name in (key[:11], hash_key(key), key):
        k2, _ = await repo.create_key("u_ben")
        target = k2 if name == key else (k2[:11] if name == key[:11] else hash_key(k2))
        assert (await repo.revoke_key(target))["user_id"] == "u_ben"
        assert await repo.user_for_key(k2) is None
    with pytest.raises(LookupError):
        await repo.revoke_key("ma_nothing")
    with pytest.raises(LookupError):
        await repo.revoke_key("ma_")  # too short to name a key
    with pytest.raises(ValueError):
        await repo.create_key("  ")


async def test_thread_registry_hides_other_users_threads(repo):
    reg = ThreadRegistry(repo)
    t = await reg.create("u_ben", metadata={"src": "test"})
    assert (await reg.get("u_ben", t["thread_id"]))["metadata"] == {"src": "test"}
    with pytest.raises(UnknownThread):
        await reg.get("u_amy", t["thread_id"])
    with pytest.raises(UnknownThread):
        await reg.delete("u_amy", t["thread_id"])
    with pytest.raises(FileExistsError):
        await reg.create("u_amy", t["thread_id"])
    with pytest.raises(ValueError):
        await reg.create("u_ben", "bad id")
    assert [x["thread_id"] for x in await reg.list("u_amy")] == []
    await reg.create("u_ben", "second")
    await reg.touch(t["thread_id"])
    assert [x["thread_id"] for x in await reg.list("u_ben")] == [t["thread_id"], "second"]
    await reg.delete("u_ben", "second")
    with pytest.raises(UnknownThread):
        await reg.get("u_ben", "second")
