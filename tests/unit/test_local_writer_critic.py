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


# ---- quality gate: every price form, title, volume, date, identifier and personal datum is grounded ----

BERSERK = {"mal_id": 2, "title": "Berserk", "title_en": "Berserk", "title_ja": "ベルセルク", "authors": ["Kentarou Miura"],
           "status": "Publishing", "num_volumes": None, "price_jpy": 748, "in_stock": True}
ORDER = {"order_id": "MA-10007", "user_id": "u_ben", "status": "delivered", "created_at": "2025-05-17T10:00:00+00:00",
         "updated_at": "2025-05-20T10:00:00+00:00", "carrier": "Sagawa Express", "tracking_number": "1234-5678-9012",
         "estimated_delivery": "2025-05-20", "delivered_at": "2025-05-20T10:00:00+00:00", "total_jpy": 1200,
         "items": [{"mal_id": 2, "title": "Berserk", "volume": 5, "quantity": 1, "unit_price_jpy": 748},
                   {"mal_id": 13, "title": "One Piece", "volume": 2, "quantity": 2, "unit_price_jpy": 226}]}
ORDERS_EV = {"kind": "orders", "orders": [ORDER]}
TICKET_EV = {"kind": "escalation", "escalation_id": "ESC-0123456789ab", "summary": "customer asks for a person"}


@pytest.mark.parametrize("answer", [
    "Volume 3 of One Piece: ¥583, in stock.",
    "Volume 3 of One Piece costs 583円.",
    "Volume 3 of One Piece costs 583 円.",
    "Volume 3 of One Piece costs JPY 583.",
    "Volume 3 of One Piece costs 583 yen.",
    "Volume 3 of One Piece costs ￥５８３.",             # full-width yen sign and digits
    "One Piece 3巻：¥583、在庫ありです。",
    "ONE PIECEの3巻は583円で、在庫があります。",
    "『ONE PIECE』3巻は在庫あり（¥583）です。",
])
async def test_gate_passes_grounded_search_drafts(answer):
    c = await LocalCritic().acritique(answer, [SEARCH_EV], "ja" if any("\u3040" <= ch <= "\u9fff" for ch in answer) else "en")
    assert c.ok, c.problems


@pytest.mark.parametrize("answer,problem", [
    ("Volume 3 of One Piece costs ¥1,200.", "¥1,200"),
    ("Volume 3 of One Piece costs ￥1200.", "¥1200"),
    ("Volume 3 of One Piece costs 1,200円.", "1,200円"),
    ("Volume 3 of One Piece costs 1,200 円.", "1,200 円"),
    ("Volume 3 of One Piece costs JPY 1200.", "JPY 1200"),
    ("Volume 3 of One Piece costs 1200 yen.", "1200 yen"),
    ("Volume 3 of One Piece costs ¥583.50.", "¥583.50"),
    ("One Piece 3巻は１，２００円です。", "1,200円"),
    ("One Piece 3巻は1万2千円です。", "1万2千円"),
])
async def test_gate_rejects_a_wrong_price_in_every_form(answer, problem):
    c = await LocalCritic().acritique(answer, [SEARCH_EV], "ja" if "巻" in answer else "en")
    assert not c.ok and any(problem in p for p in c.problems), c.problems
    assert problem in c.retry_instructions


@pytest.mark.parametrize("answer,locale,problem", [
    ("Volume 3 of One Piece: ¥583. You might also enjoy Naruto.", "en", "Naruto"),      # catalog title, not in evidence
    ("Volume 3 of One Piece: ¥583. Fans also love Shingeki no Kyojin.", "en", "Shingeki no Kyojin"),
    ("Volume 3 of One Piece: ¥583. 『鋼の錬金術師』もおすすめです。", "ja", "鋼の錬金術師"),
    ("Volume 3 of One Piece: ¥583. 『星の海の伝説』もおすすめです。", "ja", "星の海の伝説"),   # invented, in 『』
    ("One Piece 3巻：¥583。進撃の巨人もどうぞ。", "ja", "進撃の巨人"),
])
async def test_gate_rejects_an_invented_title(answer, locale, problem):
    c = await LocalCritic().acritique(answer, [SEARCH_EV], locale)
    assert not c.ok and any(problem in p for p in c.problems), c.problems


@pytest.mark.parametrize("answer,locale", [
    ("Volume 4 of One Piece: ¥583, in stock.", "en"),          # the customer asked for (and we found) volume 3
    ("One Piece vol 4 is ¥583.", "en"),
    ("One Piece 4巻：¥583、在庫ありです。", "ja"),
    ("ONE PIECEの第4巻は¥583です。", "ja"),
])
async def test_gate_rejects_a_wrong_volume(answer, locale):
    c = await LocalCritic().acritique(answer, [SEARCH_EV], locale)
    assert not c.ok and any("volume 4" in p for p in c.problems), c.problems


async def test_gate_rejects_a_volume_attached_to_the_wrong_title():
    # volume 5 is in the evidence, but of Berserk; One Piece was ordered as volume 2
    c = await LocalCritic().acritique("Order MA-10007: One Piece vol 5.", [ORDERS_EV], "en")
    assert not c.ok and c.problems == ["volume 5 of one piece not in evidence"], c.problems
    ok = await LocalCritic().acritique("Order MA-10007: Berserk vol 5 and One Piece vol 2 (2 copies).", [ORDERS_EV], "en")
    assert ok.ok, ok.problems


@pytest.mark.parametrize("answer,locale", [
    ("Order MA-10007 was delivered on 2025-05-21.", "en"),
    ("Order MA-10007 was delivered on May 21, 2025.", "en"),
    ("Order MA-10007 was delivered on 21 May.", "en"),
    ("注文 MA-10007 は2025年5月21日に配達されました。", "ja"),
    ("注文 MA-10007 は5月21日に配達されました。", "ja"),
    ("注文 MA-10007 は2025/5/21に配達されました。", "ja"),
])
async def test_gate_rejects_a_date_not_in_evidence(answer, locale):
    c = await LocalCritic().acritique(answer, [ORDERS_EV], locale)
    assert not c.ok and any(p.startswith("date ") for p in c.problems), c.problems


@pytest.mark.parametrize("answer,locale", [
    ("Order MA-10007 was delivered on 2025-05-20 (Berserk vol 5, total ¥1,200).", "en"),
    ("Order MA-10007 was delivered on May 20, 2025.", "en"),
    ("Order MA-10007 was delivered on 20 May; tracking 1234-5678-9012 with Sagawa Express.", "en"),
    ("One Piece vol 2: 2 copies at ¥226 each, ¥452 in all; the order came to 1,200 yen.", "en"),
    ("注文 MA-10007 は2025年5月20日に配達済みです（Berserk 5巻ほか、合計 1,200円）。", "ja"),
    ("注文 MA-10007 は5月20日にお届けしました。追跡番号 1234-5678-9012。", "ja"),
])
async def test_gate_passes_grounded_order_drafts(answer, locale):
    c = await LocalCritic().acritique(answer, [ORDERS_EV], locale)
    assert c.ok, c.problems


@pytest.mark.parametrize("answer,kind", [
    ("Your order MA-10008 has shipped.", "order"),                        # another customer's order
    ("I've passed this on (ticket ESC-fedcba987654).", "ticket"),         # another customer's ticket
    ("We emailed chloe.martin@example.com about order MA-10007.", "email"),
    ("Call the customer at 090-1234-5678 about MA-10007.", "phone"),
    ("Tracking for MA-10007: 9999-8888-7777.", "tracking number"),
    ("Order MA-10007 goes to 〒150-0001.", "postal code"),
    ("Order MA-10007 goes to 東京都渋谷区神宮前1丁目.", "address"),
    ("Order MA-10007 goes to 12 Baker Street.", "address"),
    ("Dear Chloe Martin, order MA-10007 was delivered.", "name"),
    ("佐藤 大地様、注文 MA-10007 は配達済みです。", "name"),
])
async def test_gate_rejects_another_customers_ids_and_personal_data(answer, kind):
    c = await LocalCritic().acritique(answer, [ORDERS_EV, TICKET_EV], "ja" if "様" in answer else "en")
    assert not c.ok and any(p.startswith(kind + " ") for p in c.problems), c.problems


async def test_gate_passes_this_customers_ticket_and_the_customer_honorific():
    critic = LocalCritic()
    en = await critic.acritique("I've passed this to our support team (ticket ESC-0123456789ab).", [TICKET_EV], "en")
    ja = await critic.acritique("お客様、担当者におつなぎしました（受付番号 ESC-0123456789ab）。", [TICKET_EV], "ja")
    assert en.ok and ja.ok, (en.problems, ja.problems)


async def test_gate_reads_prices_and_dates_of_policy_passages():
    policy = {"kind": "policy", "query": "shipping", "passages": [
        {"doc": "shipping", "heading": "送料", "text": "送料は全国一律350円、3,000円以上のご注文は無料です。12月29日〜1月3日は休業します。"}]}
    ok = await LocalCritic().acritique("送料は¥350で、¥3,000以上は無料です。12月29日から1月3日はお休みです。", [policy], "ja")
    assert ok.ok, ok.problems
    bad = await LocalCritic().acritique("送料は500円で、12月28日から休業します。", [policy], "ja")
    assert not bad.ok and len(bad.problems) == 2, bad.problems


def _render(agent: str, intent: str, locale: str, evidence: list[dict], request: str = "x", instructions: str = "") -> str:
    from tools.backends.models.templates import render

    return render(WriteTask(agent=agent, intent=intent, request=request, locale=locale, evidence=evidence,
                            instructions=instructions))


def _template_cases(catalog):
    """(label, answer, evidence, locale) for what the local writer renders on real data: every 60th catalog
    title (search with and without a volume, details, recommend), every seeded order, order actions and
    refusals, every policy section, escalation, chitchat and out-of-scope, in both languages. (Every catalog
    title, 10,140 drafts, was run once with the gate: no draft rejected; the sample keeps the test at a few seconds.)"""
    from tools.backends.policies import MarkdownPolicyKB
    from tools.backends.seed import build_seed

    items = catalog.items[::60]
    for locale in ("en", "ja"):
        for n, it in enumerate(items):
            others = [x.summary() for x in catalog.items[n % 50: n % 50 + 4]]
            top = it.summary()
            for volume in (None, 3, (it.num_volumes or 0) + 2):
                ev = {"kind": "search", "query": it.title, "volume": volume, "items": [top, *others]}
                yield f"search {it.mal_id} v{volume}", _render("search", "search", locale, [ev]), [ev], locale
            det = {"kind": "details", "items": [{**top, "genres": list(it.genres), "synopsis": it.synopsis[:600],
                                                 "published": it.published}]}
            yield f"details {it.mal_id}", _render("search", "search", locale, [det]), [det], locale
            rec = {"kind": "recommend", "seeds": others[:1], "preferences": "",
                   "items": [{**top, "genres": list(it.genres[:4]), "score": 0.5, "reason": f"Readers of {others[0]['title']} rate it highly",
                              "reason_ja": "", "because_of": [others[0]["title"]]}]}
            yield f"recommend {it.mal_id}", _render("recommend", "recommend", locale, [rec]), [rec], locale
        seed = build_seed(catalog=catalog)
        for user in {o.user_id for o in seed.orders}:
            ev = {"kind": "orders", "orders": [o.to_dict() for o in seed.orders if o.user_id == user]}
            yield f"orders {user}", _render("order", "order", locale, [ev], instructions="ask which:cancel"), [ev], locale
        for o in seed.orders:
            for action in ("cancel", "return"):
                for confirmed in (True, False):
                    ev = {"kind": "action", "action": action, "order_id": o.order_id, "confirmed": confirmed,
                          "status": o.status, "refund_jpy": o.total_jpy, "replayed": False}
                    yield f"{action} {o.order_id}", _render("order", "order", locale, [ev]), [ev], locale
                err = {"error": "not_allowed", "order_id": o.order_id, "action": action, "status": o.status,
                       "message": "no"}
                yield f"refused {action} {o.order_id}", _render("order", "order", locale, [err]), [err], locale
        kb = MarkdownPolicyKB.load()
        for s in kb.sections:
            if s.locale == locale:
                ev = {"kind": "policy", "query": s.heading,
                      "passages": [{"doc": s.doc, "heading": s.heading, "text": s.text, "score": 1.0}]}
                yield f"policy {s.heading}", _render("conversation", "faq", locale, [ev]), [ev], locale
        esc = {"kind": "escalation", "escalation_id": "ESC-0123456789ab", "summary": "x"}
        yield "escalation", _render("conversation", "handoff", locale, [esc]), [esc], locale
        for intent, request in (("chitchat", "hello"), ("chitchat", "thanks"), ("chitchat", "who are you"),
                                ("chitchat", "bye"), ("out_of_scope", "weather"), ("handoff", "human")):
            yield f"{intent} {request}", _render("conversation", intent, locale, []), [], locale


async def test_gate_passes_every_template_the_local_writer_renders_on_real_data(catalog):
    critic = LocalCritic(catalog)
    failures = []
    n = 0
    for label, answer, evidence, locale in _template_cases(catalog):
        n += 1
        c = await critic.acritique(answer, evidence, locale)
        if not c.ok:
            failures.append((label, locale, c.problems))
    assert n > 2000
    assert failures == [], failures[:20]
