"""Cart store behaviour on SQLite; tests/integration/test_cart_postgres.py reruns these bodies on Postgres.

Uses the orders repository's ``backend`` fixture (tests/unit/test_orders_repo.py): (repo seeded at NOW, query
function over an independent connection), so each test checks what was really written.
"""

from __future__ import annotations

import asyncio

import pytest

from core.domain import MAX_QUANTITY
from core.errors import CartEmpty, InvalidQuantity, NotInCart, OutOfStock, SignInRequired
from tests.unit.test_orders_repo import NOW, backend, clock  # noqa: F401  (fixtures)

BERSERK, MONSTER = 2, 1


def stock(n: int = 10):
    return lambda mal_id: n


async def test_add_view_change_remove(backend):  # noqa: F811
    repo, query = backend
    assert (await repo.get_cart("u_ben")).lines == ()
    cart = await repo.add_to_cart("u_ben", BERSERK, "Berserk", 1, 2, 660, in_stock=10)
    cart = await repo.add_to_cart("u_ben", MONSTER, "Monster", 3, 1, 715, in_stock=10)
    assert [(ln.mal_id, ln.volume, ln.quantity) for ln in cart.lines] == [(BERSERK, 1, 2), (MONSTER, 3, 1)]
    assert (cart.copies, cart.total_jpy) == (3, 2 * 660 + 715)
    cart = await repo.add_to_cart("u_ben", BERSERK, "Berserk", 1, 1, 660, in_stock=10)  # same line: added to
    assert cart.lines[0].quantity == 3 and len(cart.lines) == 2
    cart = await repo.set_cart_quantity("u_ben", MONSTER, 3, 4, in_stock=10)
    assert cart.lines[1].quantity == 4
    cart = await repo.remove_from_cart("u_ben", BERSERK)
    assert [ln.mal_id for ln in cart.lines] == [MONSTER]
    cart = await repo.set_cart_quantity("u_ben", MONSTER, 3, 0, in_stock=10)  # 0 removes the line
    assert cart.lines == ()
    assert await query("SELECT * FROM cart_items WHERE user_id = ?", ("u_ben",)) == []


async def test_empty_cart_removes_every_line_of_that_customer_only(backend):  # noqa: F811
    repo, query = backend
    await repo.add_to_cart("u_ben", BERSERK, "Berserk", 1, 2, 660, in_stock=10)
    await repo.add_to_cart("u_ben", MONSTER, "Monster", 3, 1, 715, in_stock=10)
    await repo.add_to_cart("u_aiko", MONSTER, "Monster", 1, 1, 715, in_stock=10)
    assert (await repo.empty_cart("u_ben")).lines == ()
    assert await query("SELECT * FROM cart_items WHERE user_id = ?", ("u_ben",)) == []
    assert [ln.mal_id for ln in (await repo.get_cart("u_aiko")).lines] == [MONSTER]
    with pytest.raises(CartEmpty):
        await repo.empty_cart("u_ben")


async def test_carts_are_per_customer(backend):  # noqa: F811
    repo, _ = backend
    await repo.add_to_cart("u_ben", BERSERK, "Berserk", 1, 1, 660, in_stock=10)
    assert (await repo.get_cart("u_chloe")).lines == ()
    with pytest.raises(NotInCart):
        await repo.remove_from_cart("u_chloe", BERSERK)


async def test_stock_and_quantity_limits_write_nothing(backend):  # noqa: F811
    repo, query = backend
    await repo.add_to_cart("u_ben", BERSERK, "Berserk", 1, 2, 660, in_stock=3)
    with pytest.raises(OutOfStock) as info:
        await repo.add_to_cart("u_ben", BERSERK, "Berserk", 1, 2, 660, in_stock=3)
    assert info.value.fields["in_stock"] == 3 and info.value.fields["wanted"] == 4
    with pytest.raises(OutOfStock):
        await repo.add_to_cart("u_ben", MONSTER, "Monster", 1, 1, 715, in_stock=0)
    with pytest.raises(InvalidQuantity):
        await repo.add_to_cart("u_ben", MONSTER, "Monster", 1, 0, 715, in_stock=10)
    with pytest.raises(InvalidQuantity):
        await repo.set_cart_quantity("u_ben", BERSERK, 1, MAX_QUANTITY + 1, in_stock=100)
    with pytest.raises(NotInCart):
        await repo.set_cart_quantity("u_ben", BERSERK, 2, 1, in_stock=10)  # another volume
    rows = await query("SELECT mal_id, volume, quantity FROM cart_items WHERE user_id = ?", ("u_ben",))
    assert rows == [{"mal_id": BERSERK, "volume": 1, "quantity": 2}]


async def test_an_unknown_customer_has_no_cart(backend):  # noqa: F811
    repo, _ = backend
    for call in (repo.get_cart("anonymous"), repo.add_to_cart("nobody", BERSERK, "Berserk", 1, 1, 660, 10),
                 repo.checkout("nobody", "k", stock())):
        with pytest.raises(SignInRequired):
            await call


async def test_checkout_places_one_processing_order_and_empties_the_cart(backend):  # noqa: F811
    repo, query = backend
    before = len(await repo.list_orders("u_ben"))
    await repo.add_to_cart("u_ben", BERSERK, "Berserk", 1, 2, 660, in_stock=10)
    await repo.add_to_cart("u_ben", MONSTER, "Monster", 3, 1, 715, in_stock=10)
    res = await repo.checkout("u_ben", "t1:checkout:3", stock())
    assert not res.replayed
    o = res.order
    assert (o.status, o.user_id, o.total_jpy) == ("processing", "u_ben", 2 * 660 + 715)
    assert [(i.mal_id, i.volume, i.quantity, i.unit_price_jpy) for i in o.items] == [(BERSERK, 1, 2, 660), (MONSTER, 3, 1, 715)]
    assert o.estimated_delivery == "2025-06-04"  # NOW + 3 days
    assert (await repo.get_cart("u_ben")).lines == ()
    assert len(await repo.list_orders("u_ben")) == before + 1
    assert (await repo.get_order("u_ben", o.order_id)).total_jpy == o.total_jpy
    rows = await query("SELECT order_id FROM checkouts WHERE idempotency_key = ?", ("t1:checkout:3",))
    assert rows == [{"order_id": o.order_id}]
    assert (await repo.placed_order("u_ben", "t1:checkout:3")).order_id == o.order_id
    assert await repo.placed_order("u_chloe", "t1:checkout:3") is None


async def test_a_repeated_key_replays_the_order_and_writes_nothing(backend):  # noqa: F811
    repo, query = backend
    await repo.add_to_cart("u_ben", BERSERK, "Berserk", 1, 1, 660, in_stock=10)
    first = await repo.checkout("u_ben", "k-replay", stock())
    await repo.add_to_cart("u_ben", MONSTER, "Monster", 1, 1, 715, in_stock=10)  # a new cart after it
    again = await repo.checkout("u_ben", "k-replay", stock())
    assert again.replayed and again.order.order_id == first.order.order_id
    assert [ln.mal_id for ln in (await repo.get_cart("u_ben")).lines] == [MONSTER]  # untouched by the replay
    assert len(await query("SELECT * FROM orders WHERE order_id = ?", (first.order.order_id,))) == 1
    with pytest.raises(ValueError):
        await repo.checkout("u_chloe", "k-replay", stock())  # another customer's key


async def test_concurrent_duplicate_checkouts_place_one_order(backend):  # noqa: F811
    repo, query = backend
    await repo.add_to_cart("u_ben", BERSERK, "Berserk", 1, 1, 660, in_stock=10)
    before = len(await repo.list_orders("u_ben"))
    results = await asyncio.gather(*(repo.checkout("u_ben", "k-dup", stock()) for _ in range(6)))
    assert len({r.order.order_id for r in results}) == 1 and sum(not r.replayed for r in results) == 1
    assert len(await repo.list_orders("u_ben")) == before + 1


async def test_checkout_of_an_empty_or_overstocked_cart_writes_nothing(backend):  # noqa: F811
    repo, query = backend
    before = len(await repo.list_orders("u_ben"))
    with pytest.raises(CartEmpty):
        await repo.checkout("u_ben", "k-empty", stock())
    await repo.add_to_cart("u_ben", BERSERK, "Berserk", 1, 3, 660, in_stock=10)
    with pytest.raises(OutOfStock):
        await repo.checkout("u_ben", "k-stock", stock(2))  # stock fell since it was added
    assert len(await repo.list_orders("u_ben")) == before
    assert (await repo.get_cart("u_ben")).copies == 3
    assert await query("SELECT * FROM checkouts") == []
