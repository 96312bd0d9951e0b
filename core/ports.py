"""Interfaces (typing.Protocol) of the long-lived backends and model roles that nodes and tools depend on.

Implementations live in tools/backends/ (catalog index, recommender, orders, policies, cache) and
tools/backends/models/ (local and bedrock profiles). Nodes never know which implementation runs.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Callable, Literal, Mapping, Protocol, Sequence

from pydantic import BaseModel, Field

from core.agents import INTENTS as _INTENTS
from core.agents import AgentName, Intent
from core.domain import ActionResult, Cart, CatalogItem, CheckoutResult, Order, PolicyPassage, Recommendation, SearchHit

INTENTS: tuple[str, ...] = _INTENTS
"""The router's label set (derived from the agent registry, core/agents.py); a message may carry several.
``search``: find a title, author, volume or facts about a work; ``recommend``: what to read next, personalised;
``order``: the customer's own orders (status, delivery, cancel, return, refund, invoice, payment problems);
``faq``: store policies and account help (shipping options and costs, payment methods, returns, cancellation fees,
accounts, newsletter); ``chitchat``: greetings, thanks, small talk, questions about the assistant; ``handoff``: asks
for a human, complaints; ``out_of_scope``: anything unrelated to a manga store (weather, banking, travel,
cooking...); ``cart``: the customer's shopping cart (add, view, change, remove, checkout)."""


class Catalog(Protocol):
    """The whole catalog in memory (11,815 titles)."""

    items: Sequence[CatalogItem]

    def get(self, mal_id: int) -> CatalogItem | None:
        """The item with MyAnimeList id ``mal_id``, or None."""
    def __len__(self) -> int: ...


class SearchIndex(Protocol):
    """Known-item and free-text retrieval over the catalog."""

    def search(self, query: str, k: int = 10) -> list[SearchHit]:
        """Best-first hits for one query. Never raises on odd input (empty query → [])."""
        ...

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[SearchHit]]:
        """Batch form of ``search`` (same results, amortised)."""
        ...


class Recommender(Protocol):
    """Personalised recommendations from history + stated likes."""

    def recommend(
        self,
        history: Sequence[tuple[int, float]] = (),
        liked_text: str = "",
        k: int = 10,
        exclude: Sequence[int] = (),
    ) -> list[Recommendation]:
        """``history`` is (mal_id, score 1-10) pairs; never returns history or ``exclude`` items."""
        ...


class EntityLinker(Protocol):
    """The catalog titles and authors a free-text message names (EN, romaji, JA); tools/backends/entities.py."""

    def link(self, text: str) -> Any:
        """An ``entities.Linked`` for ``text``: mentions (kind "title" | "author", key, ids), ``has_entity``,
        ``author_request`` (the author whose works are asked for), ``exact_title``. Never raises on odd text."""
        ...

    def resolve_author(self, name: str) -> str | None:
        """The canonical author name for ``name`` in any form, else None."""
        ...

    def works_of(self, author: str) -> list[int]:
        """mal_ids of a canonical author's works, most popular first ([] when unknown)."""
        ...

    def authors_ja_display(self, item: Any) -> list[str]:
        """An item's authors as a Japanese answer shows them (Japanese names where known, else romaji)."""
        ...


class OrdersRepository(Protocol):
    """Orders of customers; every call is scoped to ``user_id`` (another user's order is OrderNotFound)."""

    async def list_orders(self, user_id: str) -> list[Order]:
        """The orders of ``user_id``."""
    async def get_order(self, user_id: str, order_id: str) -> Order:
        """One order of ``user_id``; OrderNotFound when it does not exist or belongs to another user."""
    def check_action(self, order: Order, action: str) -> tuple[str, int]:
        """The store rules for ``action`` on ``order``, writing nothing: (resulting status, refund in JPY); raises OrderActionNotAllowed."""
    async def cancel(self, user_id: str, order_id: str, idempotency_key: str) -> ActionResult:
        """Cancel the order (idempotent per ``idempotency_key``)."""
    async def request_return(self, user_id: str, order_id: str, idempotency_key: str, reason: str = "") -> ActionResult:
        """Request a return of the order (idempotent per ``idempotency_key``)."""
    async def record_escalation(self, user_id: str, thread_id: str, summary: str, idempotency_key: str) -> str:
        """Record a hand-off to a human agent; returns the escalation ticket id (idempotent per key)."""
    async def demo_users(self) -> list[dict]:
        """Customers for demos and the CLI (user_id, name, locale, order_ids)."""
    async def get_cart(self, user_id: str) -> Cart:
        """The customer's shopping cart; SignInRequired for a caller with no customer record."""
    async def add_to_cart(self, user_id: str, mal_id: int, title: str, volume: int, quantity: int,
                          unit_price_jpy: int, in_stock: int) -> Cart:
        """Add copies of a title's volume (stock and quantity checked); the cart after the change."""
    async def set_cart_quantity(self, user_id: str, mal_id: int, volume: int, quantity: int, in_stock: int) -> Cart:
        """Set a cart line's copies (0 removes it); the cart after the change."""
    async def remove_from_cart(self, user_id: str, mal_id: int, volume: int | None = None) -> Cart:
        """Remove a title's volume (all its volumes when None); the cart after the change."""
    async def empty_cart(self, user_id: str) -> Cart:
        """Remove every line (CartEmpty when there is none); the empty cart."""
    async def placed_order(self, user_id: str, idempotency_key: str) -> Order | None:
        """The order a checkout with ``idempotency_key`` placed, or None."""
    async def checkout(self, user_id: str, idempotency_key: str, in_stock: Callable[[int], int]) -> CheckoutResult:
        """Place an order for the cart and empty it, exactly once per ``idempotency_key``."""
    async def close(self) -> None:
        """Release the connections."""


class PolicyKB(Protocol):
    """Retrieval over the store policy markdown (shipping, payment, returns, cancellation, accounts)."""

    def retrieve(self, query: str, k: int = 2, locale: str = "en") -> list[PolicyPassage]:
        """Best-first passages in ``locale`` ("en"/"ja"); [] when nothing is relevant (never invents)."""
        ...


class Cache(Protocol):
    """A small key/value cache with TTL (seconds). Values are JSON-serialisable."""

    async def get(self, key: str) -> Any | None:
        """The cached value of ``key``, or None when absent or expired."""
    async def set(self, key: str, value: Any, ttl_s: int = 300) -> None:
        """Store ``value`` under ``key`` for ``ttl_s`` seconds."""
    async def close(self) -> None:
        """Release the connections."""


# ---- model roles -----------------------------------------------------------------------------

class RouterDecision(BaseModel):
    """Router output: the intents carried by the message (best first) and a score per label (0-1)."""

    intents: list[Intent] = Field(description="Labels present in the message, best first; at least one.")
    scores: dict[str, float] = Field(default_factory=dict, description="Per-label probability (0-1).")
    complex: bool = Field(False, description="True when steps depend on each other (needs the planner).")


class Critique(BaseModel):
    """Critic output for a draft or a tool-result set."""

    ok: bool
    problems: list[str] = Field(default_factory=list)
    retry_instructions: str = ""


class PlanStep(BaseModel):
    """One planner step: an agent to run with a sub-request, after the steps in ``depends_on``."""

    id: str
    agent: AgentName
    request: str
    depends_on: list[str] = Field(default_factory=list)


class Plan(BaseModel):
    """A plan DAG for a complex request."""

    steps: list[PlanStep]


class WriteTask(BaseModel):
    """What the writer needs: which agent answers, the request, the locale, the evidence (tool artifacts) and the
    thread's context (last messages, dialogue state) so a follow-up's answer reads as one."""

    agent: str
    intent: str
    request: str
    locale: Literal["en", "ja"]
    evidence: list[dict] = Field(default_factory=list)
    instructions: str = ""
    history: list[str] = Field(default_factory=list, description="The thread's last messages (≤ 4), oldest first.")
    focus: dict = Field(default_factory=dict, description="What the thread is about (nodes/prompts.focus_view).")


class Router(Protocol):
    """``aroute``: the labels of a message given the thread's last messages and its dialogue state (``focus``,
    core/state.py); a role may use either or neither (the local router classifies the message alone)."""

    async def aroute(self, text: str, history: Sequence[str] = (), focus: Mapping[str, Any] | None = None
                     ) -> RouterDecision:
        """The RouterDecision of the message ``text``."""
    def route_many(self, texts: Sequence[str]) -> list[RouterDecision]:
        """RouterDecisions of many messages, without history (batch evaluation)."""


class Writer(Protocol):
    """``awrite``: the customer-facing answer of a WriteTask; ``astream``: the same answer in chunks."""
    async def awrite(self, task: WriteTask) -> str:
        """The whole answer."""
    def astream(self, task: WriteTask) -> AsyncIterator[str]:
        """The answer as it is written, chunk by chunk."""


class Critic(Protocol):
    """``acritique``: whether an answer is grounded in its evidence (quality gate); ``areview_evidence``: whether a specialist should think again (reflect)."""
    async def acritique(self, answer: str, evidence: list[dict], locale: str) -> Critique:
        """The Critique of ``answer`` against ``evidence``."""
    async def areview_evidence(self, agent: str, intent: str, request: str, evidence: list[dict]) -> Critique:
        """Whether ``evidence`` answers the ``request`` of ``agent`` for ``intent`` (reflect: think again?)."""


class Planner(Protocol):
    """``aplan``: a Plan for a complex message, given the thread's last messages and dialogue state."""

    async def aplan(self, text: str, decision: RouterDecision, history: Sequence[str] = (),
                    focus: Mapping[str, Any] | None = None) -> Plan:
        """The Plan of ``text``."""
