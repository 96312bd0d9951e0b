"""Domain records shared by every layer: catalog items, search hits, recommendations, orders, policy passages.

All are frozen dataclasses with ``to_dict()`` giving the JSON shape used in state, the CLI and the API.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

OrderStatus = Literal["processing", "shipped", "delivered", "cancelled", "returned"]


@dataclass(frozen=True, slots=True)
class CatalogItem:
    """One catalog title (a row of data/catalog/manga_catalog.csv.gz, MyAnimeList/MangaDex metadata).

    ``price_jpy`` and ``stock`` are demo values assigned deterministically from ``mal_id``
    (see tools/backends/catalog.py); the source data has no prices. ``members`` is the MyAnimeList
    member count (popularity); ``score`` the MAL mean score (0-10, 0 when unknown).
    """

    mal_id: int
    title: str
    title_en: str
    title_ja: str
    synonyms: tuple[str, ...]
    authors: tuple[str, ...]
    genres: tuple[str, ...]
    themes: tuple[str, ...]
    demographic: str
    media_type: str
    status: str
    num_volumes: int | None
    published: str
    members: int
    score: float
    synopsis: str
    price_jpy: int
    stock: int
    authors_ja: tuple[str, ...] = ()  # Japanese names, from data/catalog/authors_ja.csv.gz; () when unknown

    def summary(self) -> dict:
        """The compact JSON shape used in answers/state: ids, titles, authors (romanised, and Japanese
        ``authors_ja`` where known, else []), status, volumes, price."""
        return {
            "mal_id": self.mal_id,
            "title": self.title,
            "title_en": self.title_en or None,
            "title_ja": self.title_ja or None,
            "authors": list(self.authors),
            "authors_ja": list(self.authors_ja),
            "status": self.status,
            "num_volumes": self.num_volumes,
            "price_jpy": self.price_jpy,
            "in_stock": self.stock > 0,
        }


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A ranked search result: ``score`` is the fused relevance (higher is better, comparable within one query)."""

    mal_id: int
    score: float
    volume: int | None = None


@dataclass(frozen=True, slots=True)
class Recommendation:
    """A recommended title with its fused score and a human-readable reason (the pick's explanation)."""

    mal_id: int
    score: float
    reason: str
    because_of: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class OrderItem:
    """One line of an order: a real catalog title, optional volume, quantity and unit price (JPY)."""

    mal_id: int
    title: str
    volume: int | None
    quantity: int
    unit_price_jpy: int


@dataclass(frozen=True, slots=True)
class Order:
    """An order of the authenticated customer. Dates are ISO-8601 strings (UTC)."""

    order_id: str
    user_id: str
    status: OrderStatus
    created_at: str
    updated_at: str
    carrier: str | None
    tracking_number: str | None
    estimated_delivery: str | None
    delivered_at: str | None
    total_jpy: int
    items: tuple[OrderItem, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        """JSON shape of ``mangaassist orders --json`` and the ``orders`` field of a turn."""
        d = asdict(self)
        d["items"] = [asdict(i) for i in self.items]
        return d


@dataclass(frozen=True, slots=True)
class ActionResult:
    """Outcome of a changing order action (cancel/return). ``replayed`` is True when the idempotency key
    had already been applied and nothing changed this time."""

    order_id: str
    action: Literal["cancel", "return"]
    status: OrderStatus
    replayed: bool
    refund_jpy: int


MAX_QUANTITY = 20
"""Most copies of one cart line (one volume of one title) a customer may hold."""


@dataclass(frozen=True, slots=True)
class CartLine:
    """One line of a customer's cart: a catalog title, its volume (1-based), copies and the unit price (JPY) at the
    time it was added."""

    mal_id: int
    title: str
    volume: int
    quantity: int
    unit_price_jpy: int

    @property
    def subtotal_jpy(self) -> int:
        """quantity × unit price (JPY)."""
        return self.quantity * self.unit_price_jpy


@dataclass(frozen=True, slots=True)
class Cart:
    """A customer's cart (kept on the account, shared by all their threads), lines in the order they were added."""

    user_id: str
    lines: tuple[CartLine, ...] = ()

    @property
    def total_jpy(self) -> int:
        """Sum of the line subtotals (JPY)."""
        return sum(line.subtotal_jpy for line in self.lines)

    @property
    def copies(self) -> int:
        """How many books the cart holds (sum of quantities)."""
        return sum(line.quantity for line in self.lines)

    def to_dict(self) -> dict:
        """Tool-artifact shape: {lines: [{mal_id, title, volume, quantity, unit_price_jpy, subtotal_jpy}], copies,
        total_jpy}."""
        return {"lines": [{**asdict(line), "subtotal_jpy": line.subtotal_jpy} for line in self.lines],
                "copies": self.copies, "total_jpy": self.total_jpy}


@dataclass(frozen=True, slots=True)
class CheckoutResult:
    """Outcome of a checkout: the order it placed (status ``processing``). ``replayed`` is True when the
    idempotency key had already placed this order and nothing was written this time."""

    order: Order
    replayed: bool


@dataclass(frozen=True, slots=True)
class PolicyPassage:
    """A retrieved section of the store-policy knowledge base (data/policies/*.md)."""

    doc: str
    heading: str
    text: str
    score: float
    not_listed: tuple[str, ...] = ()
    """Countries the question names that this section's closed list excludes (as written: "Russia")."""
    listed: tuple[str, ...] = ()
    """Countries the question names that this section's list includes (as written: "Germany")."""

    def to_dict(self) -> dict:
        """The tool artifact's shape: {doc, heading, text, score (4 decimals)}, plus ``not_listed`` / ``listed``
        (lists of names) when set."""
        out = {"doc": self.doc, "heading": self.heading, "text": self.text, "score": round(self.score, 4)}
        if self.not_listed:
            out["not_listed"] = list(self.not_listed)
        if self.listed:
            out["listed"] = list(self.listed)
        return out
