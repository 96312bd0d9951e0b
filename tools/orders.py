"""Order-agent tools: list, status, cancel and return, always scoped to the authenticated user.

Changing actions (cancel, return) are first checked against the repository's rules (``check_action``:
status and the 30-day return window), so a refusal is answered at once, without a confirmation; allowed
ones pause the graph with ``interrupt()`` for the customer's confirmation and carry an idempotency key
derived from the thread, so a resumed or replayed thread never applies them twice (the repository
records each key once, in the same transaction as the change).
"""

from __future__ import annotations

import asyncio
import json

from langchain_core.tools import BaseTool, tool
from langgraph.prebuilt import ToolRuntime
from langgraph.types import interrupt
from pydantic import BaseModel, Field

from core.context import Context
from core.deps import Deps
from core.errors import CartError, OrderError, OrderNotFound
from core.lang import parse_confirmation

PROMPTS = {
    ("cancel", "en"): "Cancel order {order_id} ({titles}, ¥{total:,})? Reply yes or no.",
    ("cancel", "ja"): "注文 {order_id}（{titles}、¥{total:,}）をキャンセルしますか？「はい」か「いいえ」でお答えください。",
    ("return", "en"): "Return order {order_id} ({titles}) for a refund of ¥{total:,}? Reply yes or no.",
    ("return", "ja"): "注文 {order_id}（{titles}）を返品して ¥{total:,} の返金を受けますか？「はい」か「いいえ」でお答えください。",
}

REASK = {"en": "Sorry, I need a yes or no to go on.", "ja": "恐れ入りますが、はい・いいえでお答えください。"}
"""Put before the prompt when the customer's reply was neither yes nor no."""
CONFIRM_ASKS = 3
"""How many times a confirmation is asked (each an ``interrupt``) before an unclear reply leaves the order as it is."""


class OrderIdInput(BaseModel):  # noqa: D101 - a tool's args_schema: a docstring would become its JSON schema's description, sent to the model
    order_id: str = Field(description="Order id such as MA-10001.", pattern=r"^[A-Za-z]{2}-\d{3,10}$")


class ListOrdersInput(BaseModel):  # noqa: D101 - a tool's args_schema: a docstring would become its JSON schema's description, sent to the model
    title: str | None = Field(None, max_length=500, description="A manga title (any script), or the customer's words "
                              "naming one: only the orders containing it ('the Death Note order').")


class ReturnInput(OrderIdInput):  # noqa: D101 - a tool's args_schema: a docstring would become its JSON schema's description, sent to the model
    reason: str = Field("", max_length=500, description="Why the customer returns it (optional).")


def tool_error_message(exc: Exception) -> str:
    """ToolNode ``handle_tool_errors`` formatter: expected order errors become a JSON tool message.

    Shape: {"error": "order_not_found"|"not_allowed", "order_id": str, "status": str|None, "message": str}; a cart
    error (core.errors.CartError) gives {"error": its ``code``, "message": str, ...its ``fields``}.
    Unexpected exceptions are not passed here (ToolNode re-raises them).
    """
    if isinstance(exc, CartError):
        return json.dumps({"error": exc.code, "message": str(exc), **exc.fields}, ensure_ascii=False)
    code = "order_not_found" if isinstance(exc, OrderNotFound) else "not_allowed"
    return json.dumps({"error": code, "order_id": getattr(exc, "order_id", None),
                       "action": getattr(exc, "action", None),
                       "status": getattr(exc, "status", None), "message": str(exc)}, ensure_ascii=False)


HANDLED_ERRORS = (OrderError, CartError)


def _thread_id(runtime: ToolRuntime[Context]) -> str:
    return str((runtime.config or {}).get("configurable", {}).get("thread_id", "no-thread"))


def make_order_tools(deps: Deps) -> list[BaseTool]:
    """Tools of the Order agent. The user id is read from ``runtime.context.user_id`` only.

    ``list_my_orders(title)`` keeps the orders containing a title the entity linker finds in ``title`` ("the Death
    Note order"); all orders when it names none or no order holds it (``title_filter`` says which).
    Artifact kinds: ``orders`` {orders:[Order.to_dict()], title_filter} (get_order adds ``allowed``: {cancel|return: {ok, reason}}
    by the repository's rules at its clock, so "can I cancel it?" is answered without acting), ``action`` {action, order_id, confirmed,
    status, refund_jpy, replayed}. Expected failures raise OrderError subclasses (see tool_error_message).
    """

    def _user(runtime: ToolRuntime[Context]) -> str:
        return getattr(runtime.context, "user_id", "anonymous")

    def titled(title: str | None) -> set[int]:
        """mal_ids of the catalog titles ``title`` names (the entity linker), empty when it names none."""
        if not title or deps.linker is None:
            return set()
        return {i for m in deps.linker.link(title).titles for i in m.ids}  # weak ones too: an order holds few titles

    @tool(args_schema=ListOrdersInput, response_format="content_and_artifact")
    async def list_my_orders(runtime: ToolRuntime[Context], title: str | None = None) -> tuple[str, dict]:
        """List the customer's own orders, newest first, with status and items (only those containing a title, when one is given)."""
        orders = await deps.orders.list_orders(_user(runtime))
        ids = await asyncio.to_thread(titled, title) if title else set()  # entity linking is CPU work
        matching = [o for o in orders if any(line.mal_id in ids for line in o.items)] if ids else []
        views = [o.to_dict() for o in (matching or orders)]
        content = "\n".join(f"{o['order_id']}: {o['status']}" for o in views) or "no orders"
        return content, {"kind": "orders", "orders": views, "title_filter": bool(matching)}

    @tool(args_schema=OrderIdInput, response_format="content_and_artifact")
    async def get_order(order_id: str, runtime: ToolRuntime[Context]) -> tuple[str, dict]:
        """Status, delivery estimate, tracking and items of one of the customer's orders."""
        order = await deps.orders.get_order(_user(runtime), order_id.upper())
        allowed = {}
        for action in ("cancel", "return"):
            try:
                deps.orders.check_action(order, action)
                allowed[action] = {"ok": True, "reason": ""}
            except OrderError as exc:
                allowed[action] = {"ok": False, "reason": str(exc)}
        return f"{order.order_id}: {order.status}", {"kind": "orders", "orders": [order.to_dict()], "allowed": allowed}

    async def _confirmed_action(action: str, order_id: str, runtime: ToolRuntime[Context], reason: str = "") -> tuple[str, dict]:
        user_id = _user(runtime)
        order = await deps.orders.get_order(user_id, order_id)
        deps.orders.check_action(order, action)  # the repository's rules (30-day window included), before asking
        locale = (runtime.state or {}).get("locale", "en")
        titles = ", ".join(i.title + (f" vol {i.volume}" if i.volume else "") for i in order.items[:3])
        prompt = PROMPTS[(action, locale if locale == "ja" else "en")].format(
            order_id=order.order_id, titles=titles, total=order.total_jpy)
        confirmed = None
        for ask in range(CONFIRM_ASKS):  # an unclear reply ("the processing one") is asked again, not taken as no
            shown = prompt if ask == 0 else f"{REASK['ja' if locale == 'ja' else 'en']} {prompt}"
            answer = interrupt({"action": action, "order_id": order.order_id, "prompt": shown})
            confirmed = parse_confirmation(answer)
            if confirmed is not None:
                break
        if not confirmed:
            art = {"kind": "action", "action": action, "order_id": order.order_id, "confirmed": False,
                   "status": order.status, "refund_jpy": 0, "replayed": False, "unclear": confirmed is None}
            return f"customer did not confirm; order {order.order_id} unchanged", art
        key = f"{_thread_id(runtime)}:{action}:{order.order_id}"
        if action == "cancel":
            res = await deps.orders.cancel(user_id, order.order_id, idempotency_key=key)
        else:
            res = await deps.orders.request_return(user_id, order.order_id, idempotency_key=key, reason=reason)
        art = {"kind": "action", "action": action, "order_id": res.order_id, "confirmed": True,
               "status": res.status, "refund_jpy": res.refund_jpy, "replayed": res.replayed}
        return f"order {res.order_id} is now {res.status}", art

    @tool(args_schema=OrderIdInput, response_format="content_and_artifact")
    async def cancel_order(order_id: str, runtime: ToolRuntime[Context]) -> tuple[str, dict]:
        """Cancel one of the customer's orders that is still processing (asks the customer to confirm first)."""
        return await _confirmed_action("cancel", order_id.upper(), runtime)

    @tool(args_schema=ReturnInput, response_format="content_and_artifact")
    async def return_order(order_id: str, runtime: ToolRuntime[Context], reason: str = "") -> tuple[str, dict]:
        """Return a delivered order within 30 days for a refund (asks the customer to confirm first)."""
        return await _confirmed_action("return", order_id.upper(), runtime, reason)

    return [list_my_orders, get_order, cancel_order, return_order]
