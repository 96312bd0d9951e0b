"""recommend_manga reads the customer's orders as history, and an orders-database outage is not hidden."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest
from langgraph.prebuilt import ToolRuntime
from langgraph.store.memory import InMemoryStore

from core.context import Context
from tools.backends.orders_repo import SqliteOrdersRepository
from tools.recommend import make_recommend_tools


def _runtime(user_id: str) -> ToolRuntime:
    return ToolRuntime(state={}, context=Context(user_id=user_id), config={}, stream_writer=lambda _chunk: None,
                       tool_call_id="call-1", store=InMemoryStore())


async def test_ordered_titles_are_history_never_offered_again(deps):
    recommend = make_recommend_tools(deps)[0]
    ordered = {line.mal_id for o in await deps.orders.list_orders("u_ben") for line in o.items}
    _content, art = await recommend.coroutine(runtime=_runtime("u_ben"), k=10)
    picks = [i["mal_id"] for i in art["items"]]
    assert len(picks) == 10 and not ordered & set(picks)
    _content, cold = await recommend.coroutine(runtime=_runtime("u_nobody"), k=10)  # no orders: no history
    assert picks != [i["mal_id"] for i in cold["items"]]


async def test_orders_database_outage_surfaces_instead_of_silently_dropping_history(deps, tmp_path):
    path = tmp_path / "outage" / "orders.sqlite"
    repo = SqliteOrdersRepository(path)
    await repo.setup()
    assert await repo.seed_if_empty()
    with sqlite3.connect(path) as conn:  # the database loses its orders table under the running repository
        conn.execute("DROP TABLE order_items")
        conn.execute("DROP TABLE order_actions")
        conn.execute("DROP TABLE returns")
        conn.execute("DROP TABLE orders")
    recommend = make_recommend_tools(dataclasses.replace(deps, orders=repo))[0]
    try:
        with pytest.raises(sqlite3.OperationalError, match="no such table: orders"):
            await recommend.coroutine(runtime=_runtime("u_ben"), liked_titles=["Berserk"], k=5)
    finally:
        await repo.close()


async def test_a_named_seed_ranks_alone_and_owned_titles_are_never_listed(deps):
    recommend = make_recommend_tools(deps)[0]
    ordered = {line.mal_id for o in await deps.orders.list_orders("u_ben") for line in o.items}
    _content, art = await recommend.coroutine(runtime=_runtime("u_ben"), liked_titles=["Mushishi"], k=8)
    picks = [i["mal_id"] for i in art["items"]]
    seed = art["seeds"][0]["mal_id"]
    assert art["seeds"][0]["title"] == "Mushishi" and len(picks) == 8
    assert seed not in picks and not ordered & set(picks)
    assert all(i["because_of"] in ([], ["Mushishi"]) for i in art["items"]), [i["because_of"] for i in art["items"]]


async def test_excluded_and_unfinished_titles_are_not_picked(deps):
    recommend = make_recommend_tools(deps)[0]
    _c, first = await recommend.coroutine(runtime=_runtime("u_nobody"), liked_titles=["Berserk"], k=5,
                                          finished_only=True)
    shown = [i["mal_id"] for i in first["items"]]
    assert first["finished_only"] and all(deps.catalog.get(m).status == "Finished" for m in shown)
    _c, more = await recommend.coroutine(runtime=_runtime("u_nobody"), liked_titles=["Berserk"], k=5,
                                         preferences="完結済みで", exclude_ids=shown)
    again = [i["mal_id"] for i in more["items"]]
    assert len(again) == 5 and not set(again) & set(shown)
    assert more["finished_only"] and all(deps.catalog.get(m).status == "Finished" for m in again)
