"""Answer templates of the local writer (English and Japanese), rendered only from tool evidence.

Every fact in an answer (title, author, price, status, order id, date, policy text) is copied from an
evidence artifact; nothing is invented. A question about one work ("who is the author?", "何巻まで") or one order
("can I cancel it?", "いつ届く") is answered in one or two sentences (direct_item_answer, direct_order_answer);
lists are for searches. Evidence kinds are those of tools/*.py artifacts.
"""

from __future__ import annotations

import re
from typing import Callable

from core.ports import WriteTask
from tools.backends.models.followups import direct_fact, order_question

STATUS_JA = {"Finished": "完結", "Publishing": "連載中", "On Hiatus": "休載中", "Discontinued": "打ち切り", "Unknown": "不明"}
ORDER_STATUS_JA = {"processing": "準備中", "shipped": "発送済み", "delivered": "配達済み", "cancelled": "キャンセル済み",
                   "returned": "返品済み"}


def _authors_ja(it: dict) -> list[str]:
    """Author names for a Japanese answer: the Japanese names (Japan Media Arts Database, via the catalog's
    ``authors_ja``) when known, else the romanised ones."""
    return list(it.get("authors_ja") or it.get("authors") or [])


def _title(it: dict, ja: bool) -> str:
    """'Title (日本語タイトル)' in English answers, '日本語タイトル（Title）' in Japanese answers."""
    t, tj = it.get("title") or "", it.get("title_ja") or ""
    if tj and tj != t:
        return f"{tj}（{t}）" if ja else f"{t} ({tj})"
    return t


def _vols(it: dict, ja: bool) -> str:
    n, st = it.get("num_volumes"), it.get("status") or "Unknown"
    if ja:
        return f"{STATUS_JA.get(st, st)}、全{n}巻" if n and st == "Finished" else (f"{STATUS_JA.get(st, st)}、{n}巻" if n else STATUS_JA.get(st, st))
    return f"{st.lower()}, {n} volume{'s' if n != 1 else ''}" if n else st.lower()


def _stock(it: dict, ja: bool) -> str:
    if ja:
        return "在庫あり" if it.get("in_stock") else "在庫切れ"
    return "in stock" if it.get("in_stock") else "out of stock"


def _item_line(i: int, it: dict, ja: bool) -> str:
    authors = "、".join(_authors_ja(it)) if ja else ", ".join(it.get("authors") or [])
    price = f"¥{it['price_jpy']:,}"
    if ja:
        return f"{i}. {_title(it, ja)} — {authors or '作者不明'}（{_vols(it, ja)}）1冊 {price}、{_stock(it, ja)}"
    return f"{i}. {_title(it, ja)} — by {authors or 'unknown author'} ({_vols(it, ja)}); {price} per volume, {_stock(it, ja)}"


def _search(ev: dict, ja: bool) -> str:
    items = ev.get("items") or []
    if not items:
        return (f"「{ev.get('query', '')}」に一致する作品は見つかりませんでした。タイトルや作者名を変えてお試しください。" if ja
                else f"I couldn't find anything matching “{ev.get('query', '')}”. Try another spelling, the Japanese title, or the author's name.")
    lines = []
    vol = ev.get("volume")
    top = items[0]
    if vol:
        n = top.get("num_volumes")
        if n and vol > n:
            lines.append(f"{_title(top, ja)}は全{n}巻のため、{vol}巻はありません。" if ja
                         else f"{_title(top, ja)} has {n} volumes, so there is no volume {vol}.")
        else:
            lines.append(f"{_title(top, ja)} {vol}巻：¥{top['price_jpy']:,}、{_stock(top, ja)}です。" if ja
                         else f"Volume {vol} of {_title(top, ja)}: ¥{top['price_jpy']:,}, {_stock(top, ja)}.")
    lines.append("見つかった作品：" if ja else "Here is what I found:")
    lines += [_item_line(i, it, ja) for i, it in enumerate(items, 1)]
    return "\n".join(lines)


def _details(ev: dict, ja: bool) -> str:
    items = ev.get("items") or []
    if not items:
        return "その作品の情報が見つかりませんでした。" if ja else "I couldn't find that title any more."
    it = items[0]
    genres = ", ".join(it.get("genres") or [])
    syn = re.split(r"(?<=[.!?])\s", it.get("synopsis") or "")
    syn = " ".join(syn[:2]).strip()
    if ja:
        out = [f"{_title(it, ja)}", f"作者：{'、'.join(_authors_ja(it)) or '不明'}", f"状態：{_vols(it, ja)}",
               f"ジャンル：{genres or '不明'}", f"価格：1冊 ¥{it['price_jpy']:,}（{_stock(it, ja)}）"]
        if syn:
            out.append(f"あらすじ（英語）：{syn}")
    else:
        out = [f"{_title(it, ja)}", f"Author: {', '.join(it.get('authors') or []) or 'unknown'}", f"Status: {_vols(it, ja)}",
               f"Genres: {genres or 'unknown'}", f"Price: ¥{it['price_jpy']:,} per volume ({_stock(it, ja)})"]
        if syn:
            out.append(f"Synopsis: {syn}")
    return "\n".join(out)


def _join_authors(it: dict, ja: bool) -> str:
    names = _authors_ja(it) if ja else list(it.get("authors") or [])
    return ("、" if ja else " and " if len(names) == 2 else ", ").join(names)


def direct_item_answer(it: dict, fact: str, ja: bool) -> str:
    """One- or two-sentence answer to ``fact`` (followups.ITEM_FACTS) about one catalog work, from its record."""
    t, n, st = _title(it, ja), it.get("num_volumes"), it.get("status") or "Unknown"
    price, stock = f"¥{it['price_jpy']:,}", _stock(it, ja)
    if fact == "author":
        who = _join_authors(it, ja)
        if not who:
            return f"{t}の作者はカタログに記載がありません。" if ja else f"Our catalog does not list the author of {t}."
        return f"{t}の作者は{who}です。" if ja else f"{t} is by {who}."
    if fact == "volumes":
        if not n:
            return (f"{t}は{STATUS_JA.get(st, st)}で、カタログに巻数の記載はありません。" if ja
                    else f"{t} is {st.lower()}; our catalog does not list its number of volumes.")
        if ja:
            return f"{t}は全{n}巻で完結しています。" if st == "Finished" else f"{t}は{n}巻まで出ています（{STATUS_JA.get(st, st)}）。"
        return (f"{t} is finished at {n} volume{'s' if n != 1 else ''}." if st == "Finished"
                else f"{t} has {n} volume{'s' if n != 1 else ''} so far ({st.lower()}).")
    if fact == "status":
        vols = (f"全{n}巻" if ja else f"{n} volume{'s' if n != 1 else ''}") if n else ""
        if ja:
            return {"Finished": f"はい、{t}は完結しています" + (f"（{vols}）。" if vols else "。"),
                    "Publishing": f"いいえ、{t}は連載中です。", "On Hiatus": f"いいえ、{t}は現在休載中です" + (f"（{n}巻まで）。" if n else "。"),
                    }.get(st, f"{t}の状態：{STATUS_JA.get(st, st)}。")
        return {"Finished": f"Yes — {t} is finished" + (f" ({vols})." if vols else "."),
                "Publishing": f"No — {t} is still publishing.",
                "On Hiatus": f"No — {t} is on hiatus" + (f" ({vols} so far)." if vols else "."),
                }.get(st, f"{t} is {st.lower()}.")
    if fact == "price":
        return f"{t}は1冊 {price}です（{stock}）。" if ja else f"{t} is {price} per volume ({stock})."
    if fact == "stock":
        if ja:
            return f"{t}は{stock}です（1冊 {price}）。"
        return (f"Yes — {t} is in stock ({price} per volume)." if it.get("in_stock")
                else f"Sorry — {t} is out of stock right now ({price} per volume).")
    if fact == "title_en":
        en = it.get("title_en") or it.get("title")
        return f"{t}の英語タイトルは{en}です。" if ja else f"The English title of {t} is {en}."
    if fact == "title_ja":
        jt = it.get("title_ja")
        if not jt:
            return f"{t}の日本語タイトルはカタログに記載がありません。" if ja else f"Our catalog lists no Japanese title for {t}."
        return f"{t}の日本語タイトルは{jt}です。" if ja else f"The Japanese title of {it.get('title') or t} is {jt}."
    if fact == "genres" and it.get("genres") is not None:
        g = ("、" if ja else ", ").join(it.get("genres") or [])
        return f"{t}のジャンルは{g}です。" if ja else f"{t} is listed under {g}."
    if fact == "synopsis" and it.get("synopsis"):
        syn = " ".join(re.split(r"(?<=[.!?])\s", it["synopsis"])[:2]).strip()
        return f"{t}のあらすじ（英語）：{syn}" if ja else f"{t}: {syn}"
    return ""


def _recommend(ev: dict, ja: bool) -> str:
    items = ev.get("items") or []
    if not items:
        return "おすすめを見つけられませんでした。好きな作品を教えてください。" if ja else "I couldn't find good picks yet — tell me a title you liked."
    seeds = [s.get("title_ja") or s["title"] if ja else s["title"] for s in ev.get("seeds") or []]
    if ja:
        head = f"{'、'.join(seeds)}がお好きなら、こちらはいかがでしょう：" if seeds else "おすすめの作品です："
    else:
        head = f"If you like {', '.join(seeds)}, you might enjoy:" if seeds else "Here are some picks for you:"
    lines = [head]
    for i, it in enumerate(items, 1):
        reason = it.get("reason_ja") if ja and it.get("reason_ja") else it.get("reason", "")
        if ja and not it.get("reason_ja"):
            genres = "・".join(it.get("genres") or [])
            because = "、".join(it.get("because_of") or [])
            reason = (f"{because}の読者に人気" if because else "人気の作品") + (f"（{genres}）" if genres else "")
        lines.append(f"{_item_line(i, it, ja)}\n   {'理由' if ja else 'Why'}: {reason}")
    return "\n".join(lines)


def _order_line(o: dict, ja: bool) -> str:
    items = ", ".join(f"{i['title']}" + (f" vol {i['volume']}" if i.get("volume") else "") for i in o.get("items") or [])
    st = o["status"]
    if ja:
        s = f"・{o['order_id']}：{ORDER_STATUS_JA.get(st, st)}（{items}、合計 ¥{o['total_jpy']:,}）"
        if st == "shipped":
            s += f" 配送業者 {o.get('carrier')}、追跡番号 {o.get('tracking_number')}、お届け予定 {(o.get('estimated_delivery') or '')[:10]}"
        elif st == "processing" and o.get("estimated_delivery"):
            s += f" お届け予定 {(o.get('estimated_delivery') or '')[:10]}"
        elif st == "delivered":
            s += f" 配達日 {(o.get('delivered_at') or '')[:10]}"
        return s
    s = f"- {o['order_id']}: {st} ({items}; total ¥{o['total_jpy']:,})"
    if st == "shipped":
        s += f". Shipped with {o.get('carrier')}, tracking {o.get('tracking_number')}, expected {(o.get('estimated_delivery') or '')[:10]}"
    elif st == "processing" and o.get("estimated_delivery"):
        s += f". Expected delivery {(o.get('estimated_delivery') or '')[:10]}"
    elif st == "delivered":
        s += f". Delivered {(o.get('delivered_at') or '')[:10]}"
    return s


def _orders(ev: dict, ja: bool, task: WriteTask) -> str:
    orders = ev.get("orders") or []
    if not orders:
        return "ご注文は見つかりませんでした。" if ja else "You have no orders with us yet."
    head = "ご注文の状況です：" if ja else ("Here are your orders:" if len(orders) > 1 else "Here is your order:")
    lines = [head] + [_order_line(o, ja) for o in orders]
    if "which" in task.instructions:
        action = "キャンセル" if "cancel" in task.instructions else "返品"
        lines.append(f"どの注文を{action}しますか？注文番号を教えてください。" if ja else
                     f"Which order would you like to {'cancel' if 'cancel' in task.instructions else 'return'}? Tell me its order id.")
    return "\n".join(lines)


def direct_order_answer(o: dict, allowed: dict, question: str, ja: bool) -> str:
    """One- or two-sentence answer to an order question (arrival, tracking, can_cancel, can_return) from the order
    record and ``allowed`` (get_order's artifact: {cancel|return: {ok, reason}} by the repository's rules)."""
    oid, st = o["order_id"], o["status"]
    st_ja = ORDER_STATUS_JA.get(st, st)
    eta = (o.get("estimated_delivery") or "")[:10]
    if question in ("can_cancel", "can_return"):
        action = "cancel" if question == "can_cancel" else "return"
        rule = allowed.get(action) or {}
        if ja:
            verb = "キャンセル" if action == "cancel" else "返品"
            if rule.get("ok"):
                return (f"はい、注文 {oid} は{st_ja}のため{verb}できます。"
                        f"{verb}する場合は「{verb}して」とお伝えください。確認のうえ手続きします。")
            why = ("発送前のご注文のみキャンセルできます。" if action == "cancel"
                   else "返品はお届け後30日以内の配達済みのご注文のみ受け付けています。")
            return f"いいえ、注文 {oid} は{st_ja}のため{verb}できません。{why}"
        verb = "cancelled" if action == "cancel" else "returned"
        if rule.get("ok"):
            return (f"Yes — order {oid} is {st}, so it can be {verb}. "
                    f"Say “{action} it” to go ahead — you'll be asked to confirm first.")
        reason = str(rule.get("reason") or "")
        reason = reason.split(". ", 1)[1] if reason.startswith("Order ") and ". " in reason else reason
        return f"No — order {oid} is {st}, so it can't be {verb}." + (f" {reason}" if reason else "")
    if question == "tracking" and st == "shipped" and o.get("tracking_number"):
        return (f"注文 {oid} は{o.get('carrier')}で発送済みで、追跡番号は {o['tracking_number']} です。" if ja
                else f"Order {oid} shipped with {o.get('carrier')}; the tracking number is {o['tracking_number']}.")
    if st == "shipped":
        return (f"注文 {oid} は{o.get('carrier')}で発送済みで、お届け予定は {eta} です（追跡番号 {o.get('tracking_number')}）。" if ja
                else f"Order {oid} shipped with {o.get('carrier')} and is expected on {eta} (tracking {o.get('tracking_number')}).")
    if st == "processing":
        if ja:
            return f"注文 {oid} は発送前（準備中）です" + (f"。お届け予定は {eta} です。" if eta else "。発送されると追跡番号をお知らせします。")
        return (f"Order {oid} has not shipped yet (processing)" +
                (f"; it is expected on {eta}." if eta else "; you'll get a tracking number once it ships."))
    if st == "delivered":
        when = (o.get("delivered_at") or "")[:10]
        return f"注文 {oid} は {when} に配達済みです。" if ja else f"Order {oid} was delivered on {when}."
    return (f"注文 {oid} は{st_ja}のため、お届けはありません。" if ja
            else f"Order {oid} is {st}, so it will not be delivered.")


def _action(ev: dict, ja: bool) -> str:
    oid, act = ev["order_id"], ev["action"]
    if not ev.get("confirmed"):
        if ja:
            return f"承知しました。注文 {oid} はそのままにしておきます。"
        return f"OK — I left order {oid} as it is." + (" (I didn't catch a clear yes.)" if ev.get("unclear") else "")
    refund = ev.get("refund_jpy") or 0
    if act == "cancel":
        return (f"注文 {oid} をキャンセルしました。¥{refund:,} をお支払い方法に返金します（3〜5営業日）。" if ja
                else f"Order {oid} is cancelled. ¥{refund:,} will be refunded to your payment method within 3–5 business days.")
    return (f"注文 {oid} の返品を受け付けました。商品の到着後 ¥{refund:,} を返金します。" if ja
            else f"Return of order {oid} is accepted. ¥{refund:,} will be refunded once the items reach us.")


def _error(ev: dict, ja: bool) -> str:
    oid = ev.get("order_id") or ""
    if ev.get("error") == "order_not_found":
        return (f"ご注文 {oid} はお客様のアカウントに見つかりませんでした。注文番号をご確認ください。" if ja
                else f"I couldn't find order {oid} on your account. Please check the order id.")
    st = ev.get("status") or ""
    act = ev.get("action") or ""
    if (act, st) in (("cancel", "cancelled"), ("return", "returned")):  # nothing left to do
        return (f"注文 {oid} はすでに{ORDER_STATUS_JA.get(st, st)}です。" if ja else f"Order {oid} is already {st}.")
    if ja:
        why = ("発送前のご注文のみキャンセルできます。発送後は、お届け後30日以内であれば返品できます。" if act == "cancel"
               else "返品はお届け後30日以内の配達済みのご注文のみ受け付けています。")
        return f"注文 {oid} は{ORDER_STATUS_JA.get(st, st)}のため、{'キャンセル' if act == 'cancel' else '返品'}できません。{why}"
    why = ("Only orders that have not shipped yet can be cancelled; once delivered you can return them within 30 days."
           if act == "cancel" else "Returns are accepted for delivered orders within 30 days of delivery.")
    return f"Order {oid} is {st}, so it can't be {'cancelled' if act == 'cancel' else 'returned'}. {why}"


_YES_NO = re.compile(r"^\s*(?:do|does|can|could|will|would|is|are|may)\b|\bship(?:ping)? to\b|(?:ます|でき|れ|る)か[？?]?\s*$|できる[？?]", re.I)
"""A question answered yes or no ("do you ship to Germany?", "ドイツに発送できますか")."""
_HOW = re.compile(r"\bhow\b|\bwhat\b|\bwhen\b|いくら|何日|いつ|どのくらい|料金|送料", re.I)
"""A question asking for a cost, a time or a way: not answered by a yes."""


def _either(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _policy(ev: dict, ja: bool, question: str = "") -> str:
    """A policy answer: the best passage; led by yes or no when the question names a country the passage's
    list includes (``listed``) or excludes (``not_listed``)."""
    ps = ev.get("passages") or []
    if not ps:
        return ("その件はストアの規約に記載がありません（当てはまる規約が見つかりませんでした）。担当者におつなぎすることもできます。" if ja
                else "I couldn't find a store policy that answers that: our store policies don't cover it. "
                     "I can connect you with a person if you like.")
    p = ps[0]
    body = f"【{p['heading']}】\n{p['text']}" if ja else f"{p['heading']}:\n{p['text']}"
    listed = p.get("listed") or []
    if listed and _YES_NO.search(question) and not _HOW.search(question):  # "do you ship to Germany?": yes, first
        return (f"はい、{'、'.join(listed)}へ発送できます。\n\n{body}" if ja
                else f"Yes, we ship to {_either(listed)}.\n\n{body}")
    names = p.get("not_listed") or []
    if names:  # a country off the closed list: the answer is no, said first
        if ja:
            return f"{'、'.join(names)}へは発送できません（発送対象の国・地域に含まれていません）。\n\n{body}"
        verb = "it is" if len(names) == 1 else "they are"
        return f"We can't ship to {_either(names)}: {verb} not among the countries and regions we ship to.\n\n{body}"
    return body


def _escalation(ev: dict, ja: bool) -> str:
    eid = ev.get("escalation_id")
    return (f"担当者におつなぎしました（受付番号 {eid}）。営業時間内（平日10〜18時）にご連絡します。" if ja
            else f"I've passed this to our support team (ticket {eid}). A person will get back to you during support hours (weekdays 10:00–18:00 JST).")


_GREET = re.compile(r"\b(hi|hello|hey|good (morning|afternoon|evening))\b|こんにちは|こんばんは|おはよう|やあ", re.I)
_THANKS = re.compile(r"\b(thanks|thank you|thx|cheers)\b|ありがとう|助かりました", re.I)
_BYE = re.compile(r"\b(bye|goodbye|see you|good night)\b|さようなら|またね|おやすみ", re.I)
_WHO = re.compile(r"\b(who are you|what are you|are you (a )?(bot|human|robot|ai)|your name|what can you do|help me)\b|あなたは誰|何ができ|ボット|名前", re.I)

CAPABILITIES_EN = ("find manga by title, author or Japanese title, recommend what to read next, check or cancel your orders and "
                   "returns, and answer questions about shipping, payment and your account")
CAPABILITIES_JA = "タイトル・作者名での漫画検索、次に読む作品のおすすめ、ご注文の確認・キャンセル・返品、送料やお支払い・アカウントに関するご質問"


def _chitchat(task: WriteTask, ja: bool) -> str:
    r = task.request
    if _THANKS.search(r):
        return "どういたしまして！ほかにもお手伝いできることがあればどうぞ。" if ja else "You're welcome! Anything else I can help you find?"
    if _BYE.search(r):
        return "ご利用ありがとうございました。またお待ちしています！" if ja else "Thanks for visiting — see you next time!"
    if _WHO.search(r):
        return (f"MangaAssist、漫画ストアのアシスタント（AI）です。{CAPABILITIES_JA}をお手伝いします。" if ja
                else f"I'm MangaAssist, the store's AI assistant. I can {CAPABILITIES_EN}.")
    if _GREET.search(r):
        return (f"こんにちは！MangaAssistです。{CAPABILITIES_JA}をお手伝いします。" if ja
                else f"Hello! I'm MangaAssist. I can {CAPABILITIES_EN}.")
    return (f"ありがとうございます。{CAPABILITIES_JA}をお手伝いできます。" if ja
            else f"Happy to chat! I can {CAPABILITIES_EN}.")


def _out_of_scope(ja: bool) -> str:
    return (f"申し訳ありませんが、そのご質問にはお答えできません。私は漫画ストアのアシスタントで、{CAPABILITIES_JA}をお手伝いできます。" if ja
            else f"Sorry, that's outside what I can help with here. I'm the manga store's assistant: I can {CAPABILITIES_EN}.")


def _beyond_list(ref: dict, evidence: list[dict], ja: bool) -> str:
    """The answer to an ordinal past the end of the last list ("the second one" after one title): how many were
    listed, the title when ``evidence`` holds its record, and a question back."""
    count = int(ref.get("count") or 0)
    items = [it for ev in evidence for it in ev.get("items") or []]
    title = _title(items[0], ja) if items and count == 1 else ""
    if ja:
        shown = f"（{title}）" if title else ""
        return f"前回ご案内したのは{count}件{shown}だけです。どの作品のことか、タイトルで教えていただけますか？"
    shown = f" ({title})" if title else ""
    noun = "title" if count == 1 else "titles"
    return f"I listed only {count} {noun}{shown} last time. Which title do you mean? You can tell me its name."


def evidence_parts(task: WriteTask) -> list[str]:
    """One rendered paragraph per evidence artifact of ``task`` (by its ``kind``: search, details, recommend,
    orders, action, error, policy, escalation), a direct one- or two-sentence answer where the request asks one
    fact about one work or one order; [] when no artifact renders."""
    ja = task.locale == "ja"
    parts: list[str] = []
    fact = direct_fact(task.request)
    asked = order_question(task.request)
    for ev in task.evidence:
        kind = ev.get("kind") or ("error" if "error" in ev else "")
        items = ev.get("items") or []
        if fact and (kind == "details" or (kind == "search" and len(items) == 1 and not ev.get("volume"))) and items:
            direct = direct_item_answer(items[0], fact, ja)
            if direct:
                parts.append(direct)
                continue
        if (kind == "orders" and asked in ("arrival", "tracking", "can_cancel", "can_return")
                and len(ev.get("orders") or []) == 1):
            parts.append(direct_order_answer(ev["orders"][0], ev.get("allowed") or {}, asked, ja))
            continue
        if kind == "search":
            parts.append(_search(ev, ja))
        elif kind == "details":
            parts.append(_details(ev, ja))
        elif kind == "recommend":
            parts.append(_recommend(ev, ja))
        elif kind == "orders":
            parts.append(_orders(ev, ja, task))
        elif kind == "action":
            parts.append(_action(ev, ja))
        elif kind == "error":
            parts.append(_error(ev, ja))
        elif kind == "policy":
            parts.append(_policy(ev, ja, task.request))
        elif kind == "escalation":
            parts.append(_escalation(ev, ja))
    return parts


def _nothing_found(ja: bool) -> str:
    return "すみません、お役に立てる情報が見つかりませんでした。" if ja else "Sorry, I couldn't find anything to answer that."


def evidence_answer(task: WriteTask) -> str:
    """Writer template of the search, recommend and order agents: the evidence paragraphs, or a short "nothing
    found" when there are none."""
    parts = evidence_parts(task)
    return "\n\n".join(parts) if parts else _nothing_found(task.locale == "ja")


def conversation_answer(task: WriteTask) -> str:
    """Writer template of the conversation agent: the evidence paragraphs (policy passages, an escalation), else
    the answer its intent calls for without evidence (chitchat, out_of_scope, handoff; "nothing found" for faq)."""
    ja = task.locale == "ja"
    parts = evidence_parts(task)
    if parts:
        return "\n\n".join(parts)
    if task.intent == "chitchat":
        return _chitchat(task, ja)
    if task.intent == "out_of_scope":
        return _out_of_scope(ja)
    if task.intent == "handoff":
        return ("担当者におつなぎする準備ができています。ご用件を教えてください。" if ja
                else "I can connect you with a person — tell me briefly what you need.")
    return _nothing_found(ja)


def _line_title(ln: dict, ja: bool) -> str:
    return (ln.get("title_ja") or ln.get("title") or "") if ja else (ln.get("title") or "")


def _cart_line(ln: dict, ja: bool) -> str:
    if ja:
        return f"{_line_title(ln, ja)} {ln['volume']}巻 ×{ln['quantity']}（¥{ln['subtotal_jpy']:,}）"
    return f"{ln['quantity']} × {_line_title(ln, ja)} vol {ln['volume']} (¥{ln['subtotal_jpy']:,})"


def _cart_sum(cart: dict, ja: bool) -> str:
    n, total = int(cart.get("copies") or 0), int(cart.get("total_jpy") or 0)
    if not n:
        return "カートは空になりました。" if ja else "Your cart is now empty."
    return (f"カートの中身は計{n}冊、合計 ¥{total:,}です。" if ja
            else f"Your cart now holds {n} book{'s' if n != 1 else ''}, ¥{total:,} in all.")


def _cart(ev: dict, ja: bool) -> str:
    cart, line, action = ev.get("cart") or {}, ev.get("line"), ev.get("action")
    if action == "add" and line:
        if ja:
            return (f"{_line_title(line, ja)} {line['volume']}巻をカートに入れました（1冊 ¥{line['unit_price_jpy']:,}、"
                    f"カート内 {line['quantity']}冊）。{_cart_sum(cart, ja)}")
        return (f"Added {_line_title(line, ja)} vol {line['volume']} to your cart (¥{line['unit_price_jpy']:,} each, "
                f"{line['quantity']} in the cart). {_cart_sum(cart, ja)}")
    if action == "update" and line:
        return (f"{_line_title(line, ja)} {line['volume']}巻を{line['quantity']}冊にしました。{_cart_sum(cart, ja)}" if ja
                else f"You have {line['quantity']} cop{'ies' if line['quantity'] != 1 else 'y'} of {_line_title(line, ja)} vol "
                     f"{line['volume']} in your cart. {_cart_sum(cart, ja)}")
    if action == "empty":
        return "カートを空にしました。" if ja else "Your cart is now empty."
    if action in ("remove", "update"):
        gone = ev.get("removed") or {}
        name = _line_title(gone, ja)
        vol = gone.get("volume")
        if ja:
            return f"{name}{f' {vol}巻' if vol else ''}をカートから削除しました。{_cart_sum(cart, ja)}"
        return f"Removed {name}{f' vol {vol}' if vol else ''} from your cart. {_cart_sum(cart, ja)}"
    lines = cart.get("lines") or []
    if not lines:
        return ("カートは空です。作品名と巻数を教えていただければカートに入れます。" if ja
                else "Your cart is empty. Name a title and volume to add one.")
    body = "\n".join(f"{i}. {_cart_line(ln, ja)}" for i, ln in enumerate(lines, 1))
    n, total = int(cart.get("copies") or 0), int(cart.get("total_jpy") or 0)
    if ja:
        return f"カートの中身:\n{body}\n合計 ¥{total:,}（{n}冊）。ご注文の際は「購入手続き」とお伝えください。"
    return f"Your cart:\n{body}\nTotal ¥{total:,} for {n} book{'s' if n != 1 else ''}. Say \"check out\" to order."


def _checkout(ev: dict, ja: bool) -> str:
    if not ev.get("confirmed"):
        if ja:
            return "承知しました。注文はしていません。カートはそのままです。"
        return "OK — nothing was ordered; your cart is as it was." + (" (I didn't catch a clear yes.)" if ev.get("unclear") else "")
    oid, total, eta = ev.get("order_id", ""), int(ev.get("total_jpy") or 0), ev.get("estimated_delivery") or ""
    n = sum(int(ln.get("quantity") or 0) for ln in ev.get("lines") or [])
    if ja:
        when = f"お届け予定は{eta}です。" if eta else ""
        return f"ご注文 {oid} を承りました（計{n}冊、合計 ¥{total:,}）。現在準備中です。{when}"
    when = f" Estimated delivery: {eta}." if eta else ""
    return f"Order {oid} is placed: {n} book{'s' if n != 1 else ''}, ¥{total:,} in all. It is being prepared now.{when}"


CART_ERRORS = frozenset({"sign_in_required", "title_not_found", "not_in_cart", "out_of_stock", "cart_empty",
                         "invalid_quantity", "no_such_volume"})
"""The ``error`` codes of cart tool messages (core.errors.CartError subclasses)."""


def _cart_error(ev: dict, ja: bool) -> str:
    code, title, vol = ev.get("error"), ev.get("title") or "", ev.get("volume")
    if code == "sign_in_required":
        return "カートはお客様アカウントに保存されます。ログインしてからご利用ください。" if ja else str(ev.get("message"))
    if code == "title_not_found":
        words = ev.get("words") or ""
        return (f"「{words}」に一致する作品が見つかりませんでした。どの作品か、タイトルで教えていただけますか？" if ja
                else f"I couldn't find a title matching \"{words}\". Which title do you mean?")
    if code == "out_of_stock":
        have = int(ev.get("in_stock") or 0)
        if ja:
            return (f"申し訳ありません。{title} {vol}巻は在庫切れです。" if have == 0
                    else f"申し訳ありません。{title} {vol}巻の在庫は{have}冊です（ご希望 {ev.get('wanted')}冊）。")
        return (f"Sorry, {title} vol {vol} is out of stock." if have == 0
                else f"Sorry, only {have} copies of {title} vol {vol} are in stock (you asked for {ev.get('wanted')}).")
    if code == "not_in_cart":
        vol_txt = (f" {vol}巻" if ja else f" vol {vol}") if vol else ""
        return (f"{title}{vol_txt}はカートに入っていません。" if ja else f"{title}{vol_txt} is not in your cart.")
    if code == "cart_empty":
        return ("カートが空なので、注文するものがありません。作品名を教えていただければカートに入れます。" if ja
                else "Your cart is empty, so there is nothing to check out: name a title to add first.")
    if code == "no_such_volume":
        return (f"{title}は全{ev.get('num_volumes')}巻のため、{vol}巻はありません。" if ja
                else f"{title} has {ev.get('num_volumes')} volumes, so there is no volume {vol}.")
    limit = ev.get("max_quantity")
    return (f"数量は1〜{limit}冊でご指定ください。" if ja else f"Please choose a quantity from 1 to {limit}.")


def cart_answer(task: WriteTask) -> str:
    """Writer template of the cart agent: what changed in the cart and its new total, the cart's lines, the placed
    order (id, total, estimated delivery), or why nothing changed (a cart error); other evidence as elsewhere."""
    ja = task.locale == "ja"
    parts: list[str] = []
    for ev in task.evidence:
        kind = ev.get("kind") or ("error" if "error" in ev else "")
        if kind == "cart":
            parts.append(_cart(ev, ja))
        elif kind == "checkout":
            parts.append(_checkout(ev, ja))
        elif kind == "error" and ev.get("error") in CART_ERRORS:
            parts.append(_cart_error(ev, ja))
    return "\n\n".join(parts) if parts else evidence_answer(task)


AGENT_TEMPLATES: dict[str, Callable[[WriteTask], str]] = {
    "search": evidence_answer,
    "recommend": evidence_answer,
    "order": evidence_answer,
    "conversation": conversation_answer,
    "cart": cart_answer,
}
"""The local writer's template of each registered agent (core/agents.py), keyed by agent name: ``(WriteTask) ->
answer text``. A registered agent without one fails ``graphs.supervisor.build_supervisor``
(core.errors.AgentWiringError); every profile needs it, the local writer being the remote writer's last fallback."""


def render(task: WriteTask) -> str:
    """Render the answer for ``task`` in ``task.locale`` from ``task.evidence`` (list of tool artifacts).

    An ordinal past the end of the last list (``focus.referent`` kind ``beyond_list``) is answered by
    ``_beyond_list`` whatever the agent; otherwise ``AGENT_TEMPLATES[task.agent]`` writes the answer (an agent
    without a template gets ``conversation_answer``, which handles every intent).
    """
    referred = task.focus.get("referent") if isinstance(task.focus.get("referent"), dict) else {}
    if referred.get("kind") == "beyond_list":
        return _beyond_list(referred, task.evidence, task.locale == "ja")
    return AGENT_TEMPLATES.get(task.agent, conversation_answer)(task)
