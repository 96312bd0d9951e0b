"""Store-policy questions end to end (local profile, real router and policy KB): the answer states what the
policies say, a method or country they name as not offered is answered as such, and a question they do not
cover is answered as not covered with an offer of a person, never with the nearest-sounding passage."""

from __future__ import annotations

import pytest


async def _ask(assistant, text, thread):
    return await assistant.turn(text, thread_id=thread, user_id="u_ben")


async def test_paypal_is_not_accepted_and_the_accepted_methods_are_listed(assistant):
    out = await _ask(assistant, "can I pay with PayPal?", "pol-en-1")
    ans = out["answer"]
    assert out["agents"] == ["conversation"], out
    assert "We do not accept PayPal" in ans
    assert "Visa" in ans and "bank transfer" in ans
    assert not ans.startswith("PayPay") and "PayPay app" not in ans


async def test_paypal_in_japanese(assistant):
    out = await _ask(assistant, "PayPalで払えますか", "pol-ja-1")
    ans = out["answer"]
    assert out["agents"] == ["conversation"], out
    assert "PayPal" in ans.replace("PayPay", "") and "ご利用いただけません" in ans
    assert "Visa" in ans and "PayPayアプリ" not in ans


@pytest.mark.parametrize(("text", "must"), [("do you ship to Germany?", "Germany"), ("海外発送はできますか", "EMS")])
async def test_international_shipping(assistant, text, must):
    out = await _ask(assistant, text, f"pol-ship-{must}")
    ans = out["answer"]
    assert out["agents"] == ["conversation"], out
    assert must in ans and "¥350 per order" not in ans and "350円です" not in ans


@pytest.mark.parametrize(("text", "ja"), [("do you offer gift wrapping with a handwritten card?", False),
                                          ("ギフトラッピングと手書きのカードは付けられますか", True)])
async def test_an_uncovered_question_is_answered_as_not_covered_with_a_person_offered(assistant, text, ja):
    out = await _ask(assistant, text, f"pol-none-{ja}")
    ans = out["answer"]
    assert out["agents"] == ["conversation"], out
    if ja:
        assert "規約に記載がありません" in ans and "担当者" in ans
    else:
        assert "policies don't cover" in ans and "person" in ans
    assert "Card payments" not in ans and "カード払い" not in ans
