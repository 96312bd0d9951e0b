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


# ---- the per-user daily model budget ---------------------------------------------------------------------


async def test_daily_budget_counts_the_users_utc_day_across_threads_and_resets_at_midnight(tmp_path):
    from datetime import UTC, datetime

    from langgraph.store.sqlite.aio import AsyncSqliteStore

    from nodes.supervisor import USAGE_NAMESPACE
    from server.accounts import UserDayBudget
    from server.errors import DailyBudgetExceeded

    now = datetime(2026, 3, 1, 22, 30, tzinfo=UTC).timestamp()  # 90 minutes before the next UTC day
    async with AsyncSqliteStore.from_conn_string(str(tmp_path / "store.sqlite")) as store:
        await store.setup()
        budget = UserDayBudget(store, usd_cap=1.0, tokens_cap=10_000, clock=lambda: now)
        assert (await budget.check("u_a"))["usd"] == 0.0  # nothing booked yet
        # what finalize books per turn, summed over all of the user's threads
        await store.aput((USAGE_NAMESPACE, "u_a"), "2026-03-01",
                         {"usd": 0.5, "input_tokens": 4000, "output_tokens": 1000, "turns": 3, "calls": 9})
        spent = await budget.check("u_a")
        assert spent == {"day": "2026-03-01", "usd": 0.5, "tokens": 5000, "turns": 3}
        await store.aput((USAGE_NAMESPACE, "u_a"), "2026-03-01",
                         {"usd": 1.0, "input_tokens": 4000, "output_tokens": 1000, "turns": 4, "calls": 12})
        with pytest.raises(DailyBudgetExceeded) as exc:
            await budget.check("u_a")
        err = exc.value
        assert (err.status, err.code) == (429, "daily_budget_exceeded")
        assert err.headers == {"Retry-After": str(90 * 60)}
        assert "$1.0000 of $1.00" in err.message and "00:00 UTC" in err.message
        assert (await budget.check("u_b"))["usd"] == 0.0, "another user's day is separate"

        await store.aput((USAGE_NAMESPACE, "u_c"), "2026-03-01",
                         {"usd": 0.0, "input_tokens": 9000, "output_tokens": 1000, "turns": 2, "calls": 4})
        with pytest.raises(DailyBudgetExceeded) as exc:
            await budget.check("u_c")
        assert "10,000 of 10,000 tokens" in exc.value.message

        tomorrow = UserDayBudget(store, usd_cap=1.0, tokens_cap=10_000, clock=lambda: now + 2 * 3600)
        assert (await tomorrow.check("u_a"))["day"] == "2026-03-02"  # yesterday's spend no longer counts
        uncapped = UserDayBudget(store, usd_cap=float("inf"), tokens_cap=None, clock=lambda: now)
        assert (await uncapped.check("u_a"))["usd"] == 1.0
        assert (await UserDayBudget(None, 1.0, 10).check("u_a"))["usd"] == 0.0  # a graph without a store
