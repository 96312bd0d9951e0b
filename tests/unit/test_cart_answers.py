"""Every answer the cart's writer template gives passes the local critic (no phrase of it reads as an ungrounded title,
volume or price): the errors as the tools report them, the empty cart and a declined checkout, in English and Japanese."""

from __future__ import annotations

import json

import pytest

from core.errors import CartEmpty, InvalidQuantity, NoSuchVolume, NotInCart, OutOfStock, SignInRequired, TitleNotFound
from core.ports import WriteTask
from tools.backends.catalog import load_catalog
from tools.backends.models.local_critic import LocalCritic
from tools.backends.models.templates import cart_answer
from tools.orders import tool_error_message

ERRORS = [SignInRequired(), TitleNotFound("zzz qqq"), NotInCart("Vagabond", 3), NotInCart("Vagabond"),
          OutOfStock("Vagabond", 3, 1, 0), OutOfStock("Berserk", 2, 5, 3), NoSuchVolume("Monster", 900, 18), CartEmpty(),
          InvalidQuantity(50, 20)]
EMPTY = {"kind": "cart", "action": "view", "cart": {"lines": [], "copies": 0, "total_jpy": 0}, "line": None, "items": []}
EMPTIED = {**EMPTY, "action": "empty"}
DECLINED = [{"kind": "checkout", "confirmed": False}, {"kind": "checkout", "confirmed": False, "unclear": True}]


@pytest.fixture(scope="module")
def critic():
    return LocalCritic(load_catalog())


@pytest.mark.parametrize("locale", ["en", "ja"])
@pytest.mark.parametrize("evidence", [json.loads(tool_error_message(e)) for e in ERRORS] + [EMPTY, EMPTIED] + DECLINED,
                         ids=lambda e: e.get("error") or e.get("action") or ("unclear" if e.get("unclear") else "declined"))
def test_cart_answers_pass_the_critic(critic, evidence, locale):
    answer = cart_answer(WriteTask(agent="cart", intent="cart", request="x", locale=locale, evidence=[evidence]))
    assert answer and critic.check(answer, [evidence], locale).ok, (answer, critic.check(answer, [evidence], locale))
