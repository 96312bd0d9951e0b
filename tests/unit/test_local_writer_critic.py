"""Local writer (templates rendered from evidence, streamed as tokens) and the rule critic."""

import pytest

from core.ports import WriteTask
from nodes.prompts import writer_messages
from tools.backends.models.local_critic import LocalCritic
from tools.backends.models.local_writer import LocalTemplateWriter

ITEM = {"mal_id": 13, "title": "One Piece", "title_en": "One Piece", "title_ja": "ONE PIECE", "authors": ["Eiichiro Oda"],
        "status": "Publishing", "num_volumes": None, "price_jpy": 583, "in_stock": True}
SEARCH_EV = {"kind": "search", "query": "one piece vol 3", "volume": 3, "items": [ITEM]}


async def test_writer_renders_only_evidence_in_both_languages():
    w = LocalTemplateWriter()
    en = (await w.ainvoke(writer_messages(WriteTask(agent="search", intent="search", request="one piece vol 3",
                                                    locale="en", evidence=[SEARCH_EV])))).content
    assert "Volume 3 of One Piece" in en and "¥583" in en and "Eiichiro Oda" in en
    ja = (await w.ainvoke(writer_messages(WriteTask(agent="search", intent="search", request="ワンピース3巻",
                                                    locale="ja", evidence=[SEARCH_EV])))).content
    assert "3巻" in ja and "¥583" in ja and "在庫あり" in ja


async def test_writer_streams_tokens_that_join_to_the_answer():
    w = LocalTemplateWriter()
    msgs = writer_messages(WriteTask(agent="search", intent="search", request="x", locale="en", evidence=[SEARCH_EV]))
    chunks = [c.content async for c in w.astream(msgs)]
    assert len(chunks) > 5
    assert "".join(chunks) == (await w.ainvoke(msgs)).content


async def test_writer_out_of_scope_and_empty_policy_never_invent():
    w = LocalTemplateWriter()
    oos = (await w.ainvoke(writer_messages(WriteTask(agent="conversation", intent="out_of_scope",
                                                     request="weather?", locale="en")))).content
    assert "outside" in oos and "manga" in oos
    pol = (await w.ainvoke(writer_messages(WriteTask(agent="conversation", intent="faq", request="x", locale="en",
                                                     evidence=[{"kind": "policy", "passages": []}])))).content
    assert "couldn't find a store policy" in pol


@pytest.mark.parametrize("answer,locale,ok", [
    ("Volume 3 of One Piece: ¥583, in stock.", "en", True),
    ("Volume 3 of One Piece: ¥999, in stock.", "en", False),   # price not in evidence
    ("Order MA-99999 is cancelled.", "en", False),             # order id not in evidence
    ("One Piece 3巻：¥583、在庫ありです。", "ja", True),
    ("Volume 3 of One Piece: ¥583.", "ja", False),              # wrong language
])
async def test_critic_quality_gate(answer, locale, ok):
    c = await LocalCritic().acritique(answer, [SEARCH_EV], locale)
    assert c.ok is ok, c.problems


async def test_critic_reflect_asks_to_broaden_or_act():
    critic = LocalCritic()
    empty = await critic.areview_evidence("search", "search", "zzz", [{"kind": "search", "items": []}])
    assert not empty.ok and empty.retry_instructions == "broaden"
    orders = {"kind": "orders", "orders": [{"order_id": "MA-1", "status": "processing"},
                                            {"order_id": "MA-2", "status": "delivered"}]}
    one = await critic.areview_evidence("order", "order", "cancel my order", [orders])
    assert not one.ok and one.retry_instructions == "act:cancel:MA-1"
    status = await critic.areview_evidence("order", "order", "where are my orders", [orders])
    assert status.ok
