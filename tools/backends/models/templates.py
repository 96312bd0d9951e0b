"""Answer templates of the local writer (English and Japanese), rendered only from tool evidence.

Every fact in an answer (title, author, price, status, order id, date, policy text) is copied from an
evidence artifact; nothing is invented. Evidence kinds are those of tools/*.py artifacts.
"""

from __future__ import annotations

import re

from core.ports import WriteTask

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


def _recommend(ev: dict, ja: bool) -> str:
    items = ev.get("items") or []
    if not items:
        return "おすすめを見つけられませんでした。好きな作品を教えてください。" if ja else "I couldn't find good picks yet — tell me a title you liked."
    seeds = [s.get("title_ja") or s["title"] if ja else s["title"] for s in ev.get("seeds") or []]
    if ja:
        head = f"{'、'.join(seeds)}がお好きなら、こちらはいかがでしょう：" if seeds else "おすすめの作品です："
    else:
        head = f"Since you liked {', '.join(seeds)}, you might enjoy:" if seeds else "Here are some picks for you:"
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
    if ja:
        why = "発送前のご注文のみキャンセルできます。発送後は、お届け後30日以内であれば返品できます。" if act == "cancel" else "返品はお届け後30日以内の配達済みのご注文のみ受け付けています。"
        return f"注文 {oid} は{ORDER_STATUS_JA.get(st, st)}のため、{'キャンセル' if act == 'cancel' else '返品'}できません。{why}"
    why = ("Only orders that have not shipped yet can be cancelled; once delivered you can return them within 30 days."
           if act == "cancel" else "Returns are accepted for delivered orders within 30 days of delivery.")
    return f"Order {oid} is {st}, so it can't be {'cancelled' if act == 'cancel' else 'returned'}. {why}"


def _policy(ev: dict, ja: bool) -> str:
    ps = ev.get("passages") or []
    if not ps:
        return ("その件に関する規約が見つかりませんでした。担当者におつなぎすることもできます。" if ja
                else "I couldn't find a store policy that answers that. I can connect you with a person if you like.")
    p = ps[0]
    return f"【{p['heading']}】\n{p['text']}" if ja else f"{p['heading']}:\n{p['text']}"


def _escalation(ev: dict, ja: bool) -> str:
    eid = ev.get("escalation_id")
    return (f"担当者におつなぎしました（受付番号 {eid}）。営業時間内（平日10〜18時）にご連絡します。" if ja
            else f"I've passed this to our support team (ticket {eid}). A person will get back to you during support hours (weekdays 10:00–18:00 JST).")


_GREET = re.compile(r"\b(hi|hello|hey|good (morning|afternoon|evening))\b|こんにちは|こんばんは|おはよう|やあ", re.I)
_THANKS = re.compile(r"\b(thanks|thank you|thx|cheers)\b|ありがとう|助かりました", re.I)
_BYE = re.compile(r"\b(bye|goodbye|see you|good night)\b|さようなら|またね|おやすみ", re.I)
_WHO = re.compile(r"\b(who are you|what are you|are you (a )?(bot|human|robot|ai)|your name|what can you do|help me)\b|あなたは誰|何ができ|ボット|名前", re.I)

CAPABILITIES_EN = "find manga by title, author or Japanese title, recommend what to read next, check or cancel your orders and returns, and answer questions about shipping, payment and your account"
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


def render(task: WriteTask) -> str:
    """Render the answer for ``task`` in ``task.locale`` from ``task.evidence`` (list of tool artifacts)."""
    ja = task.locale == "ja"
    parts: list[str] = []
    for ev in task.evidence:
        kind = ev.get("kind") or ("error" if "error" in ev else "")
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
            parts.append(_policy(ev, ja))
        elif kind == "escalation":
            parts.append(_escalation(ev, ja))
    if not parts:
        if task.intent == "chitchat":
            parts.append(_chitchat(task, ja))
        elif task.intent == "out_of_scope":
            parts.append(_out_of_scope(ja))
        elif task.intent == "handoff":
            parts.append("担当者におつなぎする準備ができています。ご用件を教えてください。" if ja else "I can connect you with a person — tell me briefly what you need.")
        else:
            parts.append("すみません、お役に立てる情報が見つかりませんでした。" if ja else "Sorry, I couldn't find anything to answer that.")
    return "\n\n".join(parts)
