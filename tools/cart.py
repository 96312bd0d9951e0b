"""Cart-agent tools: add, view, change, remove and checkout, always on the authenticated customer's own cart.

Titles are named in any script ("Attack on Titan", "進撃の巨人") and linked to the catalog by the entity linker, or
passed by ``mal_id`` (a title shown earlier in the thread). Prices and stock come from the catalog record (demo values,
tools/backends/catalog.py). ``checkout`` shows the cart and its total and pauses the graph with ``interrupt()`` for
the customer's yes or no; a yes places a real order in the orders database (status ``processing``) with an idempotency
key made of the thread id and the turn number, so a resumed, replayed or concurrently duplicated checkout places one
order (tools/backends/cart_store.py).
"""

from __future__ import annotations

import asyncio

from langchain_core.tools import BaseTool, tool
from langgraph.prebuilt import ToolRuntime
from langgraph.types import interrupt
from pydantic import BaseModel, Field

from core.context import Context
from core.deps import Deps
from core.domain import MAX_QUANTITY, Cart, CatalogItem
from core.errors import CartEmpty, NoSuchVolume, NotInCart, SignInRequired, TitleNotFound
from core.lang import parse_confirmation

PROMPTS = {
    "en": "Place an order for {lines} — {copies} book{s}, ¥{total:,} in all? Reply yes or no.",
    "ja": "{lines}（計{copies}冊、合計 ¥{total:,}）を注文しますか？「はい」か「いいえ」でお答えください。",
}
REASK = {"en": "Sorry, I need a yes or no to go on.", "ja": "恐れ入りますが、はい・いいえでお答えください。"}
CONFIRM_ASKS = 3
"""How many times the checkout confirmation is asked (each an ``interrupt``) before an unclear reply orders nothing."""
ANONYMOUS = "anonymous"
_NOT_A_TITLE = frozenset({"it", "that", "this", "them", "those", "these", "one", "the one", "show", "view", "cart",
                          "my cart", "それ", "その", "これ", "この", "あれ", "見せて", "the second one", "the first one"})
"""Words a request may leave that name no title: never searched."""


class TitleRef(BaseModel):  # noqa: D101 - a tool's args_schema: a docstring would become its JSON schema's description, sent to the model
    title: str | None = Field(None, max_length=500, description="The title in the customer's words (any script).")
    mal_id: int | None = Field(None, ge=1, description="The catalog id of a title shown earlier (focus.items).")


class AddInput(TitleRef):  # noqa: D101 - a tool's args_schema: a docstring would become its JSON schema's description, sent to the model
    volume: int = Field(1, ge=1, description="Volume number (1 when the customer names none).")
    quantity: int = Field(1, ge=1, description=f"Copies to add (at most {MAX_QUANTITY} a line).")


class ChangeInput(TitleRef):  # noqa: D101 - a tool's args_schema: a docstring would become its JSON schema's description, sent to the model
    volume: int | None = Field(None, ge=1, description="Volume of the cart line (the only one of the title "
                               "when omitted).")
    quantity: int = Field(..., ge=0, description="The new number of copies (0 removes the line).")


class RemoveInput(TitleRef):  # noqa: D101 - a tool's args_schema: a docstring would become its JSON schema's description, sent to the model
    volume: int | None = Field(None, ge=1, description="Volume to remove (every volume of it when omitted).")



def _user(runtime: ToolRuntime[Context]) -> str:
    user = getattr(runtime.context, "user_id", ANONYMOUS) or ANONYMOUS
    if user == ANONYMOUS:
        raise SignInRequired()
    return user


def _lines_text(cart: Cart, ja: bool, ja_titles: dict[int, str]) -> str:
    if ja:
        return "、".join(f"{ja_titles.get(ln.mal_id) or ln.title} {ln.volume}巻×{ln.quantity}"
                        for ln in cart.lines[:5]) + ("ほか" if len(cart.lines) > 5 else "")
    more = f" and {len(cart.lines) - 5} more" if len(cart.lines) > 5 else ""
    return ", ".join(f"{ln.quantity} × {ln.title} vol {ln.volume}" for ln in cart.lines[:5]) + more


def make_cart_tools(deps: Deps) -> list[BaseTool]:
    """Tools of the Cart agent; the customer is ``runtime.context.user_id`` only (anonymous callers get
    SignInRequired).

    Artifact kinds: ``cart`` {action: "add"|"view"|"update"|"remove", cart: Cart.to_dict(), line: the changed line
    or None, items: [catalog summary of the changed title]} (``items`` lets "who is the author?" resolve against
    it), ``checkout`` {confirmed, unclear, replayed, order_id, total_jpy, lines, orders: [Order.to_dict()]} (the
    placed order becomes the thread's focused order: "can I cancel it?"). Expected failures raise CartError
    subclasses (title_not_found, not_in_cart, out_of_stock, cart_empty, invalid_quantity, sign_in_required), which
    the execute node turns into error tool messages.
    """

    def link(title: str | None, mal_id: int | None) -> CatalogItem:
        """The catalog item named by ``mal_id`` or by the words ``title`` (entity linker; CPU work)."""
        if mal_id is not None:
            item = deps.catalog.get(int(mal_id))
            if item is None:
                raise TitleNotFound(str(mal_id))
            return item
        words = (title or "").strip()
        found = linked_item(words)
        if found is not None:
            return found
        if len(words) >= 3 and words.lower() not in _NOT_A_TITLE:  # "monster": ordinary words the linker leaves
            for hit in deps.index.search(words, k=1):
                item = deps.catalog.get(hit.mal_id)
                if item is not None:
                    return item
        raise TitleNotFound(words)

    def in_stock(mal_id: int) -> int:
        item = deps.catalog.get(int(mal_id))
        return int(item.stock) if item is not None else 0

    def artifact(action: str, cart: Cart, item: CatalogItem | None = None, volume: int | None = None) -> dict:
        view = cart.to_dict()
        for ln in view["lines"]:  # the Japanese title for Japanese answers
            rec = deps.catalog.get(ln["mal_id"])
            ln["title_ja"] = (rec.title_ja or None) if rec is not None else None
        line = None
        if item is not None:
            line = next((ln for ln in view["lines"] if ln["mal_id"] == item.mal_id
                         and (volume is None or ln["volume"] == volume)), None)
        out = {"kind": "cart", "action": action, "cart": view, "line": line, "items": []}
        if item is not None:
            out["items"] = [item.summary()]
            out["removed"] = {"mal_id": item.mal_id, "title": item.title, "title_ja": item.title_ja or None,
                              "volume": volume} if action in ("remove", "update") and line is None else None
        return out

    def linked_item(words: str) -> CatalogItem | None:
        """The title the entity linker finds in ``words`` (no search fallback), else None (CPU work)."""
        if not words or deps.linker is None:
            return None
        linked = deps.linker.link(words)
        for m in linked.named_titles or linked.titles:
            for i in m.ids:
                item = deps.catalog.get(int(i))
                if item is not None:
                    return item
        return None

    async def line_of(user: str, title: str | None, mal_id: int | None, volume: int | None) -> tuple[CatalogItem, int | None]:
        """The cart line a change points at: ``mal_id``; else a title the linker finds in ``title``; else the line whose
        title contains those words; else the cart's only line (words left over such as "やっぱり" name no title).
        Raises NotInCart when none applies, TitleNotFound for an unknown ``mal_id``."""
        if mal_id is not None:
            return await asyncio.to_thread(link, None, mal_id), volume
        words = (title or "").strip()
        item = await asyncio.to_thread(linked_item, words)
        if item is not None:
            return item, volume
        cart = await deps.orders.get_cart(user)
        folded = words.casefold()
        named = [ln for ln in cart.lines if folded and folded in ln.title.casefold()]
        pick = named[0] if named else (cart.lines[0] if len(cart.lines) == 1 else None)
        if pick is not None and (rec := deps.catalog.get(pick.mal_id)) is not None:
            return rec, volume or (pick.volume if not named or len(named) == 1 else None)
        raise NotInCart(words or "that title", volume)

    @tool(args_schema=AddInput, response_format="content_and_artifact")
    async def add_to_cart(runtime: ToolRuntime[Context], title: str | None = None, mal_id: int | None = None,
                          volume: int = 1, quantity: int = 1) -> tuple[str, dict]:
        """Add copies of a manga volume to the customer's cart (stock is checked)."""
        user = _user(runtime)
        item = await asyncio.to_thread(link, title, mal_id)
        if item.num_volumes and volume > item.num_volumes:
            raise NoSuchVolume(item.title, volume, item.num_volumes)
        cart = await deps.orders.add_to_cart(user, item.mal_id, item.title, volume, quantity, item.price_jpy, item.stock)
        return f"added {quantity} x {item.title} vol {volume}", artifact("add", cart, item, volume)

    @tool(response_format="content_and_artifact")  # no args_schema: an empty one makes langchain drop the runtime
    async def view_cart(runtime: ToolRuntime[Context]) -> tuple[str, dict]:
        """Show what is in the customer's cart, with the total."""
        cart = await deps.orders.get_cart(_user(runtime))
        return f"{len(cart.lines)} lines, ¥{cart.total_jpy}", artifact("view", cart)

    @tool(args_schema=ChangeInput, response_format="content_and_artifact")
    async def update_cart_item(runtime: ToolRuntime[Context], quantity: int, title: str | None = None,
                               mal_id: int | None = None, volume: int | None = None) -> tuple[str, dict]:
        """Change how many copies of a title in the cart the customer wants (0 removes it)."""
        user = _user(runtime)
        item, vol = await line_of(user, title, mal_id, volume)
        if vol is None:
            vols = [ln.volume for ln in (await deps.orders.get_cart(user)).lines if ln.mal_id == item.mal_id]
            if len(vols) != 1:
                raise NotInCart(item.title, None)
            vol = vols[0]
        cart = await deps.orders.set_cart_quantity(user, item.mal_id, vol, quantity, item.stock)
        return f"{item.title} vol {vol}: {quantity}", artifact("update", cart, item, vol)

    @tool(args_schema=RemoveInput, response_format="content_and_artifact")
    async def remove_from_cart(runtime: ToolRuntime[Context], title: str | None = None, mal_id: int | None = None,
                               volume: int | None = None) -> tuple[str, dict]:
        """Remove a title (or one volume of it) from the customer's cart."""
        user = _user(runtime)
        item, vol = await line_of(user, title, mal_id, volume)
        try:
            cart = await deps.orders.remove_from_cart(user, item.mal_id, vol)
        except NotInCart:
            raise NotInCart(item.title, vol) from None
        return f"removed {item.title}", artifact("remove", cart, item, vol)

    @tool(response_format="content_and_artifact")  # no args_schema: an empty one makes langchain drop the runtime
    async def empty_cart(runtime: ToolRuntime[Context]) -> tuple[str, dict]:
        """Remove everything from the customer's cart (when the customer asks to empty or clear it)."""
        cart = await deps.orders.empty_cart(_user(runtime))
        return "emptied the cart", artifact("empty", cart)

    @tool(response_format="content_and_artifact")  # no args_schema: an empty one makes langchain drop the runtime
    async def checkout(runtime: ToolRuntime[Context]) -> tuple[str, dict]:
        """Order everything in the customer's cart (asks the customer to confirm the total first)."""
        user = _user(runtime)
        state = runtime.state or {}
        thread = str((runtime.config or {}).get("configurable", {}).get("thread_id", "no-thread"))
        key = f"{thread}:checkout:{int(state.get('turn') or 0)}"
        placed = await deps.orders.placed_order(user, key)
        if placed is not None:  # this turn already placed it (a replayed or resumed-again turn): no second order
            return _placed(placed.to_dict(), True)
        cart = await deps.orders.get_cart(user)
        if not cart.lines:
            raise CartEmpty()
        ja = state.get("locale") == "ja"
        ja_titles = {ln.mal_id: getattr(deps.catalog.get(ln.mal_id), "title_ja", "") or "" for ln in cart.lines} if ja else {}
        prompt = PROMPTS["ja" if ja else "en"].format(lines=_lines_text(cart, ja, ja_titles), copies=cart.copies,
                                                     s="" if cart.copies == 1 else "s", total=cart.total_jpy)
        confirmed = None
        for ask in range(CONFIRM_ASKS):  # an unclear reply is asked again, not taken as no
            shown = prompt if ask == 0 else f"{REASK['ja' if ja else 'en']} {prompt}"
            answer = interrupt({"action": "checkout", "order_id": "", "prompt": shown})
            confirmed = parse_confirmation(answer)
            if confirmed is not None:
                break
        if not confirmed:
            art = {"kind": "checkout", "confirmed": False, "unclear": confirmed is None, "replayed": False,
                   "order_id": "", "total_jpy": cart.total_jpy, "cart": cart.to_dict(), "orders": []}
            return "customer did not confirm; nothing was ordered", art
        res = await deps.orders.checkout(user, key, in_stock)
        return _placed(res.order.to_dict(), res.replayed)

    def _placed(order: dict, replayed: bool) -> tuple[str, dict]:
        art = {"kind": "checkout", "confirmed": True, "unclear": False, "replayed": replayed,
               "order_id": order["order_id"], "total_jpy": order["total_jpy"], "status": order["status"],
               "estimated_delivery": order["estimated_delivery"], "lines": order["items"], "orders": [order]}
        return f"order {order['order_id']} placed", art

    return [add_to_cart, view_cart, update_cart_item, remove_from_cart, empty_cart, checkout]
