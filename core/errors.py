"""Domain errors: expected failures that tools turn into messages the agent can act on."""

from __future__ import annotations


class MangaAssistError(Exception):
    """Base of every expected, user-explainable error."""


class ConfigurationError(MangaAssistError):
    """Settings or credentials are missing or invalid (the CLI exits with code 2)."""


class ToolError(MangaAssistError):
    """Base of the expected failures a tool reports back to its agent as an error tool message (order and cart
    errors) instead of failing the turn."""


class OrderError(ToolError):
    """Base for order-domain errors; ``str(err)`` is safe to show the customer."""


class OrderNotFound(OrderError):
    """No order with that id belongs to the authenticated customer (also raised for other users' orders)."""

    def __init__(self, order_id: str):
        super().__init__(f"No order {order_id} was found on your account.")
        self.order_id = order_id


class OrderActionNotAllowed(OrderError):
    """The order's status does not allow the action (e.g. cancelling a shipped order)."""

    def __init__(self, order_id: str, action: str, status: str, reason: str = ""):
        msg = f"Order {order_id} is {status}, so it cannot be {'cancelled' if action == 'cancel' else 'returned'}."
        super().__init__(msg + (f" {reason}" if reason else ""))
        self.order_id, self.action, self.status = order_id, action, status


class CartError(ToolError):
    """Base for shopping-cart errors; ``str(err)`` is safe to show the customer and ``code`` names the case
    (the tool message's ``error`` field)."""

    code = "cart_error"

    def __init__(self, message: str, **fields: object):
        super().__init__(message)
        self.fields = dict(fields)
        """Values the answer may quote (title, volume, in_stock, ...): copied into the tool message."""


class SignInRequired(CartError):
    """The cart belongs to a customer account: an anonymous caller (or one with no customer record, at
    checkout) cannot use it."""

    code = "sign_in_required"

    def __init__(self) -> None:
        super().__init__("Please sign in to use the cart: it is kept on your customer account.")


class TitleNotFound(CartError):
    """The words given for a title match no catalog title (nothing was added or changed)."""

    code = "title_not_found"

    def __init__(self, words: str):
        super().__init__(f"No catalog title matches {words!r}.", words=words)


class NotInCart(CartError):
    """The title (and volume) to change or remove is not in the customer's cart."""

    code = "not_in_cart"

    def __init__(self, title: str, volume: int | None = None):
        vol = f" vol {volume}" if volume else ""
        super().__init__(f"{title}{vol} is not in your cart.", title=title, volume=volume)


class OutOfStock(CartError):
    """The cart would hold more copies of a title than the store has (``in_stock`` copies; 0: sold out)."""

    code = "out_of_stock"

    def __init__(self, title: str, volume: int, wanted: int, in_stock: int):
        super().__init__(f"Only {in_stock} of {title} vol {volume} in stock (asked for {wanted}).",
                         title=title, volume=volume, wanted=wanted, in_stock=in_stock)


class NoSuchVolume(CartError):
    """The volume asked for is past the last volume the catalog lists for the title."""

    code = "no_such_volume"

    def __init__(self, title: str, volume: int, num_volumes: int):
        super().__init__(f"{title} has {num_volumes} volumes, so there is no volume {volume}.", title=title,
                         volume=volume, num_volumes=num_volumes)


class CartEmpty(CartError):
    """Checkout of an empty cart (nothing to order)."""

    code = "cart_empty"

    def __init__(self) -> None:
        super().__init__("Your cart is empty.")


class InvalidQuantity(CartError):
    """A quantity outside 1..``max_quantity`` copies per line."""

    code = "invalid_quantity"

    def __init__(self, quantity: int, max_quantity: int):
        super().__init__(f"A quantity must be between 1 and {max_quantity} (got {quantity}).", quantity=quantity,
                         max_quantity=max_quantity)


class UnknownThread(MangaAssistError):
    """The thread does not exist or is not the caller's (the API answers 404 either way)."""


class BudgetExceeded(MangaAssistError):
    """A per-turn, per-session or per-user budget (time or USD) would be exceeded by the next call."""


class AgentWiringError(ConfigurationError, ValueError):
    """A registered agent (core/agents.py) lacks a piece the supervisor needs, found at graph build time.

    ``agent`` is the agent's name and ``missing`` what it lacks, each one of "tools" (graphs/specialist.py
    ``AGENT_TOOLS``, or factories that make none), "think policy" (``Deps.models.agents`` of the profile),
    "prompt" (tools/backends/models/prompts.py ``AGENT_SYSTEM``), "writer template" (tools/backends/models/templates.py
    ``AGENT_TEMPLATES``). A ValueError too, as build-time wiring errors were before.
    """

    def __init__(self, agent: str, missing: list[str] | tuple[str, ...], profile: str = ""):
        where = f" (profile {profile!r})" if profile else ""
        super().__init__(f"agent {agent!r} is registered but has no {' and no '.join(missing)}{where}")
        self.agent, self.missing, self.profile = agent, tuple(missing), profile
