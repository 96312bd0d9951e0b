"""The shopping cart's tables and operations, written once for both SQL dialects of the orders repository.

A cart belongs to a customer account (``customers.user_id``), not to a thread: every thread of the customer sees the
same cart. Tables: ``cart_items`` (one row per customer, title and volume; ``seq`` keeps the order lines were added in) and ``checkouts`` (one row per checkout
idempotency key → the order it placed). Every change locks the customer's row first (``SELECT ... FOR UPDATE`` on
Postgres; ``BEGIN IMMEDIATE`` serialises writers on SQLite), so concurrent changes to one cart queue, and a checkout
writes the order, its lines, the emptied cart and its ``checkouts`` row in one transaction: a repeated key (a resumed
or replayed thread, a concurrent duplicate) returns the order it already placed and writes nothing.

``CartMixin`` is mixed into ``tools.backends.orders_repo._OrdersRepositoryBase``; it uses that class's ``_tx``,
``_ts``, ``_day``, ``_clock``, ``_lock_suffix`` and ``_get``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from core.domain import MAX_QUANTITY, Cart, CartLine, CheckoutResult, Order
from core.errors import CartEmpty, InvalidQuantity, NotInCart, OutOfStock, SignInRequired

DELIVERY_DAYS = 3
"""Days from checkout to the estimated delivery date of the placed order (domestic shipping: 2-4 days)."""

CART_DDL = (
    """CREATE TABLE IF NOT EXISTS cart_items (
        user_id TEXT NOT NULL REFERENCES customers(user_id),
        mal_id INTEGER NOT NULL,
        volume INTEGER NOT NULL CHECK (volume >= 1),
        title TEXT NOT NULL,
        quantity INTEGER NOT NULL CHECK (quantity > 0),
        unit_price_jpy INTEGER NOT NULL CHECK (unit_price_jpy >= 0),
        added_at {ts} NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (user_id, mal_id, volume))""",
    """CREATE TABLE IF NOT EXISTS checkouts (
        idempotency_key TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES customers(user_id),
        order_id TEXT NOT NULL REFERENCES orders(order_id),
        created_at {ts} NOT NULL)""",
)

_Q_CUSTOMER = "SELECT user_id FROM customers WHERE user_id = ?"
_Q_LINES = ("SELECT mal_id, title, volume, quantity, unit_price_jpy FROM cart_items WHERE user_id = ? "
            "ORDER BY seq")
_Q_LINE = "SELECT quantity FROM cart_items WHERE user_id = ? AND mal_id = ? AND volume = ?"
_Q_ADD_LINE = ("INSERT INTO cart_items (user_id, mal_id, volume, title, quantity, unit_price_jpy, added_at, seq) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM cart_items WHERE user_id = ?))")
_Q_SET_QTY = "UPDATE cart_items SET quantity = ? WHERE user_id = ? AND mal_id = ? AND volume = ?"
_Q_DEL_LINE = "DELETE FROM cart_items WHERE user_id = ? AND mal_id = ? AND volume = ?"
_Q_DEL_TITLE = "DELETE FROM cart_items WHERE user_id = ? AND mal_id = ?"
_Q_DEL_ALL = "DELETE FROM cart_items WHERE user_id = ?"
_Q_CLEAR = "DELETE FROM cart_items WHERE user_id = ?"
_Q_CHECKOUT = "SELECT user_id, order_id FROM checkouts WHERE idempotency_key = ?"
_Q_ADD_CHECKOUT = "INSERT INTO checkouts (idempotency_key, user_id, order_id, created_at) VALUES (?, ?, ?, ?)"
_Q_NEW_ORDER = ("INSERT INTO orders (order_id, user_id, status, created_at, updated_at, carrier, tracking_number, "
                "estimated_delivery, delivered_at, total_jpy) VALUES (?, ?, 'processing', ?, ?, NULL, NULL, ?, NULL, ?)")
_Q_NEW_ITEM = ("INSERT INTO order_items (order_id, line_no, mal_id, title, volume, quantity, unit_price_jpy) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)")


def _line(row: dict) -> CartLine:
    return CartLine(mal_id=int(row["mal_id"]), title=row["title"], volume=int(row["volume"]),
                    quantity=int(row["quantity"]), unit_price_jpy=int(row["unit_price_jpy"]))


def new_order_id() -> str:
    """A fresh order id ``MA-`` + 8 digits (the seeded demo orders use 5; the primary key rejects a clash)."""
    return f"MA-{uuid.uuid4().int % 90_000_000 + 10_000_000}"


class CartMixin:
    """Cart operations of the orders repository (module docstring). Every method raises SignInRequired when
    ``user_id`` has no customer record (anonymous callers included)."""

    _lock_suffix: str
    _tx: Any
    _ts: Any
    _day: Any
    _clock: Any
    _get: Any

    async def _customer(self, tx: Any, user_id: str) -> None:
        row = await tx.one(_Q_CUSTOMER + self._lock_suffix, (user_id,))  # the lock every cart change queues on
        if row is None:
            raise SignInRequired()

    async def _cart(self, tx: Any, user_id: str) -> Cart:
        return Cart(user_id, tuple(_line(r) for r in await tx.all(_Q_LINES, (user_id,))))

    async def get_cart(self, user_id: str) -> Cart:
        """The customer's cart (lines in the order they were added; empty when none)."""
        async with self._tx() as tx:
            await self._customer(tx, user_id)
            return await self._cart(tx, user_id)

    async def add_to_cart(self, user_id: str, mal_id: int, title: str, volume: int, quantity: int,
                          unit_price_jpy: int, in_stock: int) -> Cart:
        """Add ``quantity`` copies of ``title`` volume ``volume`` (1-based) at ``unit_price_jpy`` (JPY); copies already
        in the cart are added to. ``in_stock``: copies the store has (the cart line may not exceed it).

        Returns the cart after the change. Raises InvalidQuantity (quantity < 1 or the line above MAX_QUANTITY),
        OutOfStock (the line would exceed ``in_stock``), ValueError (volume < 1), SignInRequired.
        """
        if volume < 1:
            raise ValueError(f"volume must be 1 or more (got {volume})")
        if quantity < 1:
            raise InvalidQuantity(quantity, MAX_QUANTITY)
        async with self._tx(write=True) as tx:
            await self._customer(tx, user_id)
            row = await tx.one(_Q_LINE, (user_id, mal_id, volume))
            have = int(row["quantity"]) if row else 0
            wanted = have + quantity
            if wanted > MAX_QUANTITY:
                raise InvalidQuantity(wanted, MAX_QUANTITY)
            if wanted > in_stock:
                raise OutOfStock(title, volume, wanted, in_stock)
            if row:
                await tx.run(_Q_SET_QTY, (wanted, user_id, mal_id, volume))
            else:
                await tx.run(_Q_ADD_LINE, (user_id, mal_id, volume, title, quantity, unit_price_jpy,
                                           self._ts(self._clock()), user_id))
            return await self._cart(tx, user_id)

    async def set_cart_quantity(self, user_id: str, mal_id: int, volume: int, quantity: int, in_stock: int) -> Cart:
        """Set the copies of one cart line (0 removes it). Raises NotInCart, InvalidQuantity (below 0 or above
        MAX_QUANTITY), OutOfStock (above ``in_stock``), SignInRequired. Returns the cart after the change."""
        if quantity < 0 or quantity > MAX_QUANTITY:
            raise InvalidQuantity(quantity, MAX_QUANTITY)
        async with self._tx(write=True) as tx:
            await self._customer(tx, user_id)
            cart = await self._cart(tx, user_id)
            line = next((ln for ln in cart.lines if ln.mal_id == mal_id and ln.volume == volume), None)
            if line is None:
                raise NotInCart(str(mal_id), volume)
            if quantity == 0:
                await tx.run(_Q_DEL_LINE, (user_id, mal_id, volume))
            elif quantity > in_stock:
                raise OutOfStock(line.title, volume, quantity, in_stock)
            else:
                await tx.run(_Q_SET_QTY, (quantity, user_id, mal_id, volume))
            return await self._cart(tx, user_id)

    async def remove_from_cart(self, user_id: str, mal_id: int, volume: int | None = None) -> Cart:
        """Remove one volume of a title (every volume of it when ``volume`` is None). Raises NotInCart when no such
        line exists, SignInRequired. Returns the cart after the change."""
        async with self._tx(write=True) as tx:
            await self._customer(tx, user_id)
            cart = await self._cart(tx, user_id)
            if not any(ln.mal_id == mal_id and volume in (None, ln.volume) for ln in cart.lines):
                raise NotInCart(str(mal_id), volume)
            if volume is None:
                await tx.run(_Q_DEL_TITLE, (user_id, mal_id))
            else:
                await tx.run(_Q_DEL_LINE, (user_id, mal_id, volume))
            return await self._cart(tx, user_id)

    async def empty_cart(self, user_id: str) -> Cart:
        """Remove every line of the customer's cart. Raises CartEmpty when it holds nothing, SignInRequired. Returns
        the (empty) cart."""
        async with self._tx(write=True) as tx:
            await self._customer(tx, user_id)
            if not (await self._cart(tx, user_id)).lines:
                raise CartEmpty()
            await tx.run(_Q_DEL_ALL, (user_id,))
            return await self._cart(tx, user_id)

    async def placed_order(self, user_id: str, idempotency_key: str) -> Order | None:
        """The order a checkout with ``idempotency_key`` placed for ``user_id``, or None (writes nothing)."""
        async with self._tx() as tx:
            done = await tx.one(_Q_CHECKOUT, (idempotency_key,))
            if done is None or done["user_id"] != user_id:
                return None
            return await self._get(tx, user_id, done["order_id"])

    async def checkout(self, user_id: str, idempotency_key: str, in_stock: Callable[[int], int]) -> CheckoutResult:
        """Place an order (status ``processing``) for everything in the cart and empty the cart, exactly once per
        ``idempotency_key``.

        ``in_stock(mal_id)``: copies the store has of a title; a line above it fails the whole checkout.
        The order's total is the sum of the lines at their cart prices (JPY); estimated delivery is
        ``DELIVERY_DAYS`` days after the checkout. A repeated key returns the order it placed with ``replayed=True``
        and writes nothing. Raises CartEmpty, OutOfStock (nothing is written), SignInRequired, ValueError (the key
        was used by another customer or is empty).
        """
        if not idempotency_key:
            raise ValueError("an idempotency key is required for a checkout")
        async with self._tx(write=True) as tx:
            await self._customer(tx, user_id)  # concurrent checkouts of one cart queue here
            done = await tx.one(_Q_CHECKOUT, (idempotency_key,))
            if done is not None:
                if done["user_id"] != user_id:
                    raise ValueError(f"idempotency key {idempotency_key!r} was already used by another customer")
                return CheckoutResult(await self._get(tx, user_id, done["order_id"]), replayed=True)
            cart = await self._cart(tx, user_id)
            if not cart.lines:
                raise CartEmpty()
            for ln in cart.lines:
                have = in_stock(ln.mal_id)
                if ln.quantity > have:
                    raise OutOfStock(ln.title, ln.volume, ln.quantity, have)
            now = self._clock()
            order_id = new_order_id()
            eta = (now + timedelta(days=DELIVERY_DAYS)).date().isoformat()
            await tx.run(_Q_NEW_ORDER, (order_id, user_id, self._ts(now), self._ts(now), self._day(eta), cart.total_jpy))
            for n, ln in enumerate(cart.lines, start=1):
                await tx.run(_Q_NEW_ITEM, (order_id, n, ln.mal_id, ln.title, ln.volume, ln.quantity, ln.unit_price_jpy))
            await tx.run(_Q_CLEAR, (user_id,))
            await tx.run(_Q_ADD_CHECKOUT, (idempotency_key, user_id, order_id, self._ts(now)))
            return CheckoutResult(await self._get(tx, user_id, order_id), replayed=False)
