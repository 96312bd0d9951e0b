"""Deterministic demo customers and orders (real catalog titles, dates relative to ``now``): what seeding writes.

Imports only the kernel (and the catalog, lazily, for the default catalog), so the orders repositories
(``tools.backends.orders_repo``) and their opener (``tools.backends.seed``) can both depend on it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from core.domain import CatalogItem, Order, OrderItem

SHIPPING_FEE_JPY = 350
"""Standard domestic shipping fee per order (JPY); matches data/policies/*/shipping.md."""
FREE_SHIPPING_THRESHOLD_JPY = 3000
"""Item subtotal (JPY) from which standard domestic shipping is free; matches the shipping policy."""


@dataclass(frozen=True, slots=True)
class DemoCustomer:
    """A demo customer row: ``locale`` is the language the customer writes in ("en" or "ja")."""

    user_id: str
    name: str
    email: str
    locale: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SeedData:
    """Everything ``seed_if_empty`` writes: customers and their orders (Order records with items)."""

    customers: tuple[DemoCustomer, ...]
    orders: tuple[Order, ...]


# (user_id, name, email, locale)
_CUSTOMERS = (
    ("u_aiko", "田中 愛子", "aiko.tanaka@example.jp", "ja"),
    ("u_ben", "Ben Carter", "ben.carter@example.com", "en"),
    ("u_chloe", "Chloe Martin", "chloe.martin@example.com", "en"),
    ("u_daichi", "佐藤 大地", "daichi.sato@example.jp", "ja"),
)

# One row per order, in order-id order (MA-10001...):
# (user_id, status, days since delivery / creation anchor, carrier, picks)
# ``anchor_days``: delivered → days since delivery; shipped → days until estimated delivery;
# processing/cancelled → days since the order was placed.
# ``picks``: (index into the popular-manga list, quantity).
_ORDERS: tuple[tuple[str, str, int, str | None, tuple[tuple[int, int], ...]], ...] = (
    ("u_aiko", "delivered", 5, "Yamato Transport", ((9, 1), (16, 1))),
    ("u_aiko", "shipped", 2, "Yamato Transport", ((3, 2),)),
    ("u_aiko", "processing", 1, None, ((24, 1), (25, 1), (8, 1))),
    ("u_aiko", "delivered", 45, "Japan Post", ((13, 1),)),
    ("u_ben", "processing", 0, None, ((2, 3),)),
    ("u_ben", "shipped", 1, "Japan Post", ((12, 1), (14, 1))),
    ("u_ben", "delivered", 12, "Sagawa Express", ((0, 1), (11, 1))),
    ("u_ben", "cancelled", 20, None, ((6, 1),)),
    ("u_chloe", "delivered", 40, "Yamato Transport", ((5, 2),)),
    ("u_chloe", "cancelled", 9, None, ((10, 1),)),
    ("u_chloe", "processing", 2, None, ((17, 1), (18, 1))),
    ("u_chloe", "shipped", 3, "Sagawa Express", ((20, 1),)),
    ("u_chloe", "delivered", 2, "Japan Post", ((19, 1), (21, 4))),
    ("u_daichi", "shipped", 1, "Yamato Transport", ((22, 1),)),
    ("u_daichi", "delivered", 3, "Sagawa Express", ((23, 2), (26, 1))),
    ("u_daichi", "processing", 0, None, ((15, 1),)),
    ("u_daichi", "cancelled", 30, None, ((7, 1),)),
    ("u_daichi", "delivered", 60, "Japan Post", ((4, 1), (1, 1))),
)


def _h(text: str) -> int:
    """A stable (process-independent) hash: CRC32 of the text."""
    return zlib.crc32(text.encode())


def popular_manga(catalog: Any, n: int = 40) -> list[CatalogItem]:
    """The ``n`` most popular catalog titles of media type "Manga" (the shipped file is in popularity order)."""
    return [it for it in catalog.items if it.media_type == "Manga"][:n]


def _tracking(carrier: str, order_id: str) -> str:
    """A deterministic demo tracking number in the carrier's usual shape (12 digits; Japan Post: 2 letters + 9 digits + JP)."""
    digits = f"{_h('trk:' + order_id) % 10**12:012d}"
    if carrier == "Japan Post":
        return f"EJ{digits[:9]}JP"
    return f"{digits[:4]}-{digits[4:8]}-{digits[8:]}"


def build_seed(now: datetime | None = None, catalog: Any | None = None) -> SeedData:
    """Build the demo data set: 4 customers (u_aiko ja, u_ben en, u_chloe en, u_daichi ja) with 18 orders MA-10001..MA-10018.

    Statuses cover processing, shipped (carrier, tracking number, estimated delivery date), delivered
    (2-12 days ago, i.e. returnable, and 40-60 days ago, outside the 30-day window) and cancelled. Items
    are the most popular real catalog titles (``catalog`` defaults to ``load_catalog()``), with demo
    prices ``CatalogItem.price_jpy`` and a volume within ``num_volumes`` when known (volume 1 otherwise).
    ``total_jpy`` = item subtotal + ``SHIPPING_FEE_JPY`` (0 from ``FREE_SHIPPING_THRESHOLD_JPY``).
    All dates are relative to ``now`` (default: current UTC time), so "delivered 5 days ago" stays true.
    Deterministic: the same ``now`` and catalog give the same data.
    """
    if catalog is None:
        from tools.backends.catalog import load_catalog

        catalog = load_catalog()
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    titles = popular_manga(catalog)
    customers = tuple(
        DemoCustomer(uid, name, email, locale, now - timedelta(days=400 + 37 * i))
        for i, (uid, name, email, locale) in enumerate(_CUSTOMERS)
    )
    orders: list[Order] = []
    for n, (user_id, status, days, carrier, picks) in enumerate(_ORDERS):
        order_id = f"MA-{10001 + n}"
        items = []
        for pick, qty in picks:
            it = titles[pick % len(titles)]
            volume = 1 + _h(f"vol:{order_id}:{it.mal_id}") % it.num_volumes if it.num_volumes else 1
            items.append(OrderItem(mal_id=it.mal_id, title=it.title, volume=volume, quantity=qty, unit_price_jpy=it.price_jpy))
        subtotal = sum(i.quantity * i.unit_price_jpy for i in items)
        total = subtotal + (0 if subtotal >= FREE_SHIPPING_THRESHOLD_JPY else SHIPPING_FEE_JPY)
        hour = timedelta(hours=9 + _h("h:" + order_id) % 10)
        tracking = estimated = delivered = None
        if status == "delivered":
            delivered_at = now - timedelta(days=days)
            created = delivered_at - timedelta(days=3) - hour
            updated, delivered = delivered_at, delivered_at
            estimated = delivered_at.date()
        elif status == "shipped":
            estimated = (now + timedelta(days=days)).date()
            created = now - timedelta(days=2) - hour
            updated = now - timedelta(days=1)
        else:  # processing / cancelled
            created = now - timedelta(days=days) - hour
            updated = created + timedelta(hours=2) if status == "cancelled" else created
        if carrier:
            tracking = _tracking(carrier, order_id)
        orders.append(
            Order(
                order_id=order_id,
                user_id=user_id,
                status=status,  # type: ignore[arg-type]
                created_at=created.isoformat(),
                updated_at=updated.isoformat(),
                carrier=carrier,
                tracking_number=tracking,
                estimated_delivery=estimated.isoformat() if estimated else None,
                delivered_at=delivered.isoformat() if delivered else None,
                total_jpy=total,
                items=tuple(items),
            )
        )
    return SeedData(customers=customers, orders=tuple(orders))

