"""Orders repository behaviour on SQLite; tests/integration/test_orders_postgres.py reruns these bodies on Postgres.

The module-level ``backend`` fixture gives (repo, query): ``query(sql, params)`` runs SQL on the database
through an independent connection (``?`` placeholders), so the tests check what was really written.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from core.errors import OrderActionNotAllowed, OrderNotFound
from tools.backends.catalog import load_catalog
from tools.backends.orders_repo import RETURN_WINDOW_DAYS, SqliteOrdersRepository
from tools.backends.seed import FREE_SHIPPING_THRESHOLD_JPY, SHIPPING_FEE_JPY, build_seed, open_orders_repository

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A settable clock for the 30-day return rule."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
async def backend(tmp_path, clock):
    """(SQLite repository seeded at NOW, query function over a separate sqlite3 connection, foreign keys on)."""
    path = tmp_path / "orders.sqlite"
    repo = SqliteOrdersRepository(path, clock=clock)
    await repo.setup()
    assert await repo.seed_if_empty(now=NOW)

    async def query(sql: str, params: tuple = ()) -> list[dict]:
        with sqlite3.connect(path) as conn:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys=ON")
            return [dict(r) for r in conn.execute(sql, params)]

    yield repo, query
    await repo.close()


def _first(seed_orders, user_id: str, status: str, returnable: bool | None = None):
    for o in seed_orders:
        if o.user_id == user_id and o.status == status:
            if returnable is None:
                return o
            age = NOW - datetime.fromisoformat(o.delivered_at)
            if (age <= timedelta(days=RETURN_WINDOW_DAYS)) == returnable:
                return o
    raise AssertionError(f"seed has no {status} order for {user_id}")


SEED = build_seed(now=NOW)


# ---- seed data ------------------------------------------------------------------------------------


def test_seed_is_deterministic_and_covers_every_status():
    again = build_seed(now=NOW)
    assert again == SEED
    assert [c.user_id for c in SEED.customers] == ["u_aiko", "u_ben", "u_chloe", "u_daichi"]
    assert {c.locale for c in SEED.customers} == {"en", "ja"}
    for c in SEED.customers:
        assert 3 <= sum(o.user_id == c.user_id for o in SEED.orders) <= 5
    assert {o.status for o in SEED.orders} == {"processing", "shipped", "delivered", "cancelled"}
    ages = [NOW - datetime.fromisoformat(o.delivered_at) for o in SEED.orders if o.status == "delivered"]
    assert any(a <= timedelta(days=30) for a in ages) and any(a > timedelta(days=30) for a in ages)
    for o in SEED.orders:
        assert o.order_id.startswith("MA-1") and len(o.order_id) == 8
        if o.status == "shipped":
            assert o.carrier and o.tracking_number and o.estimated_delivery >= NOW.date().isoformat()


def test_seed_items_are_real_catalog_titles_with_catalog_prices():
    catalog = load_catalog()
    for o in SEED.orders:
        assert o.items
        for it in o.items:
            item = catalog.get(it.mal_id)
            assert item is not None and it.title == item.title and it.unit_price_jpy == item.price_jpy
            assert it.volume >= 1 and (item.num_volumes is None or it.volume <= item.num_volumes)
        subtotal = sum(i.quantity * i.unit_price_jpy for i in o.items)
        assert o.total_jpy == subtotal + (0 if subtotal >= FREE_SHIPPING_THRESHOLD_JPY else SHIPPING_FEE_JPY)


def test_seed_dates_follow_now():
    later = build_seed(now=NOW + timedelta(days=100))
    for a, b in zip(SEED.orders, later.orders, strict=True):
        delta = datetime.fromisoformat(b.created_at) - datetime.fromisoformat(a.created_at)
        assert delta == timedelta(days=100)


# ---- reads ----------------------------------------------------------------------------------------


async def test_setup_and_seed_are_idempotent(backend):
    repo, query = backend
    await repo.setup()
    assert await repo.seed_if_empty(now=NOW) is False
    assert (await query("SELECT COUNT(*) AS n FROM orders"))[0]["n"] == len(SEED.orders)


async def test_demo_users_shape(backend):
    repo, _ = backend
    users = await repo.demo_users()
    assert [u["user_id"] for u in users] == ["u_aiko", "u_ben", "u_chloe", "u_daichi"]
    assert [u["locale"] for u in users] == ["ja", "en", "en", "ja"]
    expected = {c.user_id: sorted(o.order_id for o in SEED.orders if o.user_id == c.user_id) for c in SEED.customers}
    assert {u["user_id"]: u["order_ids"] for u in users} == expected
    assert all(isinstance(u["name"], str) and u["name"] for u in users)


async def test_list_orders_is_scoped_to_the_user_newest_first(backend):
    repo, _ = backend
    orders = await repo.list_orders("u_aiko")
    assert {o.order_id for o in orders} == {o.order_id for o in SEED.orders if o.user_id == "u_aiko"}
    assert all(o.user_id == "u_aiko" for o in orders)
    assert [o.created_at for o in orders] == sorted((o.created_at for o in orders), reverse=True)
    by_id = {o.order_id: o for o in SEED.orders}
    for o in orders:
        assert o.items == by_id[o.order_id].items
        assert o.total_jpy == by_id[o.order_id].total_jpy
        assert datetime.fromisoformat(o.created_at) == datetime.fromisoformat(by_id[o.order_id].created_at)
    assert await repo.list_orders("u_nobody") == []


async def test_get_order_round_trips_every_field(backend):
    repo, _ = backend
    seeded = _first(SEED.orders, "u_ben", "shipped")
    got = await repo.get_order("u_ben", seeded.order_id)
    assert (got.status, got.carrier, got.tracking_number, got.estimated_delivery) == (
        "shipped", seeded.carrier, seeded.tracking_number, seeded.estimated_delivery)
    assert got.to_dict()["items"][0]["title"] == seeded.items[0].title


async def test_other_users_order_and_unknown_id_are_both_not_found(backend):
    repo, _ = backend
    theirs = _first(SEED.orders, "u_ben", "processing").order_id
    with pytest.raises(OrderNotFound) as other:
        await repo.get_order("u_aiko", theirs)
    with pytest.raises(OrderNotFound) as unknown:
        await repo.get_order("u_aiko", "MA-99999")
    assert str(other.value) == str(unknown.value).replace("MA-99999", theirs)  # same message: no existence leak
    with pytest.raises(OrderNotFound):
        await repo.cancel("u_aiko", theirs, "k-steal")
    assert (await repo.get_order("u_ben", theirs)).status == "processing"


# ---- cancel / return ------------------------------------------------------------------------------


async def test_cancel_processing_refunds_total_once_per_key(backend):
    repo, query = backend
    order = _first(SEED.orders, "u_aiko", "processing")
    first = await repo.cancel("u_aiko", order.order_id, "thread-1:cancel")
    assert (first.status, first.replayed, first.refund_jpy, first.action) == ("cancelled", False, order.total_jpy, "cancel")
    assert (await repo.get_order("u_aiko", order.order_id)).status == "cancelled"
    again = await repo.cancel("u_aiko", order.order_id, "thread-1:cancel")
    assert (again.status, again.replayed, again.refund_jpy) == ("cancelled", True, order.total_jpy)
    rows = await query("SELECT * FROM order_actions WHERE order_id = ?", (order.order_id,))
    assert len(rows) == 1 and rows[0]["idempotency_key"] == "thread-1:cancel" and rows[0]["refund_jpy"] == order.total_jpy
    # a new key on the now-cancelled order is a rule violation, not a replay
    with pytest.raises(OrderActionNotAllowed, match="already cancelled"):
        await repo.cancel("u_aiko", order.order_id, "thread-2:cancel")


async def test_cancel_shipped_is_not_allowed_and_changes_nothing(backend):
    repo, query = backend
    order = _first(SEED.orders, "u_aiko", "shipped")
    with pytest.raises(OrderActionNotAllowed, match="shipped") as err:
        await repo.cancel("u_aiko", order.order_id, "k-shipped")
    assert err.value.status == "shipped" and err.value.action == "cancel"
    assert (await repo.get_order("u_aiko", order.order_id)).status == "shipped"
    assert await query("SELECT * FROM order_actions WHERE idempotency_key = ?", ("k-shipped",)) == []


async def test_return_within_window_writes_return_row_once(backend):
    repo, query = backend
    order = _first(SEED.orders, "u_aiko", "delivered", returnable=True)
    res = await repo.request_return("u_aiko", order.order_id, "ret-1", reason="damaged cover")
    assert (res.status, res.replayed, res.refund_jpy, res.action) == ("returned", False, order.total_jpy, "return")
    again = await repo.request_return("u_aiko", order.order_id, "ret-1", reason="damaged cover")
    assert again.replayed and again.status == "returned"
    returns = await query("SELECT order_id, reason, refund_jpy FROM returns")
    assert returns == [{"order_id": order.order_id, "reason": "damaged cover", "refund_jpy": order.total_jpy}]
    assert (await repo.get_order("u_aiko", order.order_id)).status == "returned"


async def test_return_after_window_or_before_delivery_is_not_allowed(backend):
    repo, query = backend
    old = _first(SEED.orders, "u_aiko", "delivered", returnable=False)
    with pytest.raises(OrderActionNotAllowed, match="30-day return window ended"):
        await repo.request_return("u_aiko", old.order_id, "ret-old")
    processing = _first(SEED.orders, "u_aiko", "processing")
    with pytest.raises(OrderActionNotAllowed, match="cancelled instead"):
        await repo.request_return("u_aiko", processing.order_id, "ret-proc")
    assert await query("SELECT * FROM returns") == []
    assert await query("SELECT * FROM order_actions") == []


async def test_return_window_boundary_is_30_days_after_delivery(backend, clock):
    repo, _ = backend
    order = _first(SEED.orders, "u_ben", "delivered", returnable=True)
    delivered = datetime.fromisoformat(order.delivered_at)
    clock.now = delivered + timedelta(days=RETURN_WINDOW_DAYS, seconds=1)
    with pytest.raises(OrderActionNotAllowed):
        await repo.request_return("u_ben", order.order_id, "late")
    clock.now = delivered + timedelta(days=RETURN_WINDOW_DAYS)
    assert (await repo.request_return("u_ben", order.order_id, "on-time")).status == "returned"


async def test_check_action_applies_the_store_rules_at_the_repository_clock_and_writes_nothing(backend, clock):
    repo, query = backend
    old = await repo.get_order("u_aiko", _first(SEED.orders, "u_aiko", "delivered", returnable=False).order_id)
    recent = await repo.get_order("u_aiko", _first(SEED.orders, "u_aiko", "delivered", returnable=True).order_id)
    with pytest.raises(OrderActionNotAllowed, match="30-day return window ended"):
        repo.check_action(old, "return")
    assert repo.check_action(recent, "return") == ("returned", recent.total_jpy)
    with pytest.raises(OrderActionNotAllowed, match="already been delivered"):
        repo.check_action(recent, "cancel")
    clock.now = datetime.fromisoformat(recent.delivered_at) + timedelta(days=RETURN_WINDOW_DAYS, seconds=1)
    with pytest.raises(OrderActionNotAllowed, match="30-day return window ended"):
        repo.check_action(recent, "return")  # the repository's clock, not the wall clock
    assert await query("SELECT * FROM order_actions") == [] and await query("SELECT * FROM returns") == []
    assert (await repo.get_order("u_aiko", recent.order_id)).status == "delivered"


async def test_concurrent_duplicate_cancels_apply_once(backend):
    repo, query = backend
    order = _first(SEED.orders, "u_daichi", "processing")
    results = await asyncio.gather(*(repo.cancel("u_daichi", order.order_id, "dup-key") for _ in range(8)))
    assert sum(not r.replayed for r in results) == 1
    assert {(r.status, r.refund_jpy) for r in results} == {("cancelled", order.total_jpy)}
    assert len(await query("SELECT * FROM order_actions WHERE order_id = ?", (order.order_id,))) == 1


async def test_concurrent_cancels_with_different_keys_succeed_once(backend):
    repo, query = backend
    order = _first(SEED.orders, "u_chloe", "processing")
    results = await asyncio.gather(
        *(repo.cancel("u_chloe", order.order_id, f"key-{i}") for i in range(6)), return_exceptions=True)
    ok = [r for r in results if not isinstance(r, BaseException)]
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(ok) == 1 and not ok[0].replayed
    assert len(errors) == 5 and all(isinstance(e, OrderActionNotAllowed) for e in errors)
    assert len(await query("SELECT * FROM order_actions")) == 1


async def test_key_reused_for_another_order_is_rejected(backend):
    repo, _ = backend
    a = _first(SEED.orders, "u_aiko", "processing")
    b = _first(SEED.orders, "u_ben", "processing")
    await repo.cancel("u_aiko", a.order_id, "shared-key")
    with pytest.raises(ValueError, match="different order action"):
        await repo.cancel("u_ben", b.order_id, "shared-key")
    assert (await repo.get_order("u_ben", b.order_id)).status == "processing"


async def test_escalation_is_recorded_once_per_key(backend):
    repo, query = backend
    first = await repo.record_escalation("u_ben", "thread-9", "wants a human about MA-10006", "esc-1")
    again = await repo.record_escalation("u_ben", "thread-9", "wants a human about MA-10006", "esc-1")
    other = await repo.record_escalation("u_ben", "thread-9", "second issue", "esc-2")
    assert first == again != other and first.startswith("ESC-")
    rows = await query("SELECT user_id, thread_id, summary FROM escalations ORDER BY idempotency_key")
    assert [r["summary"] for r in rows] == ["wants a human about MA-10006", "second issue"]


async def test_schema_rejects_unknown_status_and_orphan_items(backend):
    _, query = backend
    with pytest.raises(Exception, match="(?i)check"):
        await query("UPDATE orders SET status = ? WHERE order_id = ?", ("lost", "MA-10001"))
    with pytest.raises(Exception, match="(?i)foreign key"):
        await query("INSERT INTO order_items (order_id, line_no, mal_id, title, volume, quantity, unit_price_jpy) "
                    "VALUES (?, 1, 2, 'Berserk', 1, 1, 748)", ("MA-00000",))


# ---- opener ---------------------------------------------------------------------------------------


async def test_open_orders_repository_defaults_to_seeded_sqlite(settings):
    repo = await open_orders_repository(settings)
    try:
        assert isinstance(repo, SqliteOrdersRepository)
        assert repo.path == settings.sqlite_path("orders") and repo.path.exists()
        users = await repo.demo_users()
        assert len(users) == 4 and all(3 <= len(u["order_ids"]) <= 5 for u in users)
    finally:
        await repo.close()
