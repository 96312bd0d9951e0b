"""Deterministic text rules of the local profile: request cleaning, references, order ids, actions (EN + JA)."""

from __future__ import annotations

import re

ORDER_ID = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2})[-\s]?(\d{4,10})(?![0-9])")  # ASCII edges: "MA-10008をキャンセル"

_ORDINALS_EN = {"first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3, "4th": 3,
                "fifth": 4, "5th": 4, "last": -1, "top": 0}
_ORDINAL_EN = re.compile(r"\b(first|1st|second|2nd|third|3rd|fourth|4th|fifth|5th|last|top(?=\s+(?:one|title|manga|pick|result)))\b"
                         r"(?:\s+(?:one|title|manga|pick|result))?", re.I)
_NUMBERED_EN = re.compile(r"(?:\bnumber|\bno\.|#)\s*([1-5]|one|two|three|four|five)\b", re.I)
_NUMBER_WORDS = {"1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "one": 0, "two": 1, "three": 2, "four": 3, "five": 4}
_ORDINAL_JA = re.compile(r"(?:([1-5１-５一二三四五])(?:つ目|番目|個目|番(?=の|を|は|$))|(?:一番)?(最初|最後)の|一番(上|下)の)")
_JA_NUM = {"1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "１": 0, "２": 1, "３": 2, "４": 3, "５": 4,
           "一": 0, "二": 1, "三": 2, "四": 3, "五": 4}
_BACKREF = re.compile(r"\b(that one|this one|that|it|them|those)\b|それ|あれ|その", re.I)

_LEAD_EN = re.compile(
    r"^(?:hi|hello|hey)?[,!\s]*(?:please\s+)?(?:(?:can|could) you\s+)?(?:do you (?:have|sell|carry|stock)|is there|are there|"
    r"i(?:'m| am) looking for|looking for|i want(?: to buy)?|i'd like(?: to buy)?|can i (?:buy|get|order)|"
    r"search(?: for)?|find(?: me)?|show me|tell me about|who (?:wrote|drew|is the author of|made)|"
    r"who's the author of|what is|what's|how many volumes (?:does|are there (?:in|of)|of)|"
    r"is|info on|information (?:on|about)|details (?:on|of|about))\s+", re.I)
_TRAIL_EN = re.compile(r"\s*(?:in stock|available|for sale|please|thanks?|thank you|finished|completed|about|"
                       r"have|has|written by|by whom|\?|!|\.)+\s*$", re.I)
_TRAIL_JA = re.compile(r"(?:って)?(?:は|を|の)?(?:ありますか|あります\??|在庫ある|在庫はありますか|売ってますか|"
                       r"探しています|探して(?:ください|る)?|について教えて(?:ください)?|教えて(?:ください)?|"
                       r"の作者は誰(?:ですか)?|の作者|を書いたのは誰(?:ですか)?|は何巻まで(?:ありますか|出てますか)?|"
                       r"ください|が欲しい(?:です)?|欲しい(?:です)?|を買いたい(?:です)?|ですか|か)?[?？。!！\s]*$")


def clean_search_query(text: str) -> str:
    """Strip request phrasing around a title/author ("do you have X?", "Xはありますか") → "X".

    Keeps volume markers ("vol 3", "3巻") for the index's query parser. Returns the input stripped when
    nothing is left after cleaning.
    """
    t = text.strip()
    for _ in range(2):
        t = _LEAD_EN.sub("", t).strip()
    t = _TRAIL_EN.sub("", t).strip()
    t = _TRAIL_JA.sub("", t).strip()
    t = t.strip("「」『』\"'“”?？!！。、, ")
    return t or text.strip()


def referenced_index(text: str) -> int | None:
    """Position (0-based; -1 = last) of an item the customer points back to ("the second one", "the top one",
    "number two", "#2", "2つ目", "一番上の"), else None."""
    m = _ORDINAL_EN.search(text)
    if m:
        return _ORDINALS_EN[m.group(1).lower()]
    m = _NUMBERED_EN.search(text)  # "number two", "#2"
    if m:
        return _NUMBER_WORDS[m.group(1).lower()]
    m = _ORDINAL_JA.search(text)
    if m:
        if m.group(1):
            return _JA_NUM[m.group(1)]
        return 0 if (m.group(2) or m.group(3)) in ("最初", "上") else -1  # 一番上 = the list's top, 一番下 = its bottom
    return None


def is_backreference(text: str) -> bool:
    """True when a short message points at something said before ("that one", "cancel it", "それ")."""
    return referenced_index(text) is not None or (len(text) < 60 and bool(_BACKREF.search(text)))


def find_order_id(text: str) -> str | None:
    """First order id in the text, normalised to 'MA-10001' form; None when absent."""
    m = ORDER_ID.search(text)
    return f"{m.group(1).upper()}-{m.group(2)}" if m else None


_CANCEL = re.compile(r"\bcancel|\bcall (?:it|that|this(?: one)?|the order) off\b|キャンセル|取り消|取消", re.I)
_RETURN = re.compile(r"\breturn|\brefund|send (?:it|them) back|返品|返金|返したい", re.I)


def order_action(text: str) -> str:
    """'cancel', 'return' or 'status' for an order request (status covers tracking, delivery, invoices)."""
    if _CANCEL.search(text):
        return "cancel"
    if _RETURN.search(text) and not re.search(r"refund (?:status|policy)|track(?:ing)? (?:my )?refund|返金状況", text, re.I):
        return "return"
    return "status"


_CHECKOUT = re.compile(r"\bcheck\s?out\b|\bcheckout\b|\bplace (?:the|my|an|this) order\b|\b(?:buy|order|purchase) (?:it|them|those|"
                       r"these|everything|it all|all of (?:it|them)|what'?s in (?:my|the) cart|my cart|the cart)\b|"
                       r"\bproceed to (?:checkout|payment)\b|レジ(?:に進|へ|で)|会計|購入(?:する|します|して|手続き)|"
                       r"注文(?:する|します|して(?!い?ない|ません)|を確定|確定)|決済|チェックアウト", re.I)


def asks_checkout(text: str) -> bool:
    """Whether ``text`` asks to order what the cart holds ("check out", "place my order", "buy everything in my cart",
    "購入手続き", "注文します")."""
    return bool(_CHECKOUT.search(text or ""))


_CART_WORDS = re.compile(
    r"\b(?:please|pls|can you|could you|would you|i'?d like to|i want to|i'?ll take|i will take|also|and|then|now|just|"
    r"add|put|throw|stick|pop|grab|toss|place|include|get me|remove|delete|take (?:out|off)|drop|get rid of|change|make|set|update|"
    r"(?:to|in|into|from|of|on) (?:my|the) (?:shopping )?(?:cart|basket)|(?:my|the) (?:shopping )?(?:cart|basket)|cart|basket|"
    r"copies|copy|books|volumes?|vols?\.?|v\.?|quantity|one more|another|of|to|it|that|this|them|those|these)\b|"
    r"\d+\s*(?:st|nd|rd|th)?|#|をカートに(?:入れて|入れる|追加して?|追加|入れといて)(?:ください|下さい)?|カートに(?:入れて|追加して?)(?:ください|下さい)?|"
    r"カート(?:から|の)?|から(?:削除|外して)(?:ください|下さい)?|を?(?:削除|外して)(?:ください|下さい)?|巻|冊|の(?=\s*\d)|の(?=\s*(?:$|[、。]))|を|に(?=入れ|追加)|して|ください|下さい|お願いします|"
    r"それ|その|これ|この|あれ|やっぱり|じゃあ|いま|今の?|ちょっと|数量を?|冊数を?|に?変更して|に?変えて|もらえ(?:る|ます)か?|ほしい|"
    r"お願い(?:します)?|[、。,.!?！？「」]", re.I)


_PARTICLES = frozenset({"は", "が", "を", "に", "で", "と", "も", "の", "へ", "や"})
"""Japanese particles left alone once the phrasing is removed ("3冊にして" → "に"): never a title."""


def cart_title_words(request: str) -> str:
    """The words of a cart request left once its cart phrasing, numbers and pronouns are removed ("put 2 copies of
    monster in my cart" → "monster"; "進撃の巨人の1巻をカートに入れて" → "進撃の巨人"); "" when only phrasing is left."""
    return " ".join(w for w in _CART_WORDS.sub(" ", request).split() if w not in _PARTICLES)


_LIKE_EN = re.compile(r"(?:similar to|something like|stuff like|in the vein of|along the lines of|like|liked|loved|enjoyed|"
                      r"fan of|into)\s+"
                      r"(.+?)(?=\s*(?:,|\.|!|\?| but | so | what | any | can | could | please|$))", re.I)
_LIKE_JA = re.compile(r"[「『]?([^「」『』、。,]+?)[」』]?(?:みたいな|のような|に似た|っぽい|が好き|が面白かった|を読んだ|にハマった)")


_JA_SEEDS_SPLIT = re.compile(r"\s+[とや]\s*|\s*[とや]\s+|(?<=[A-Za-z0-9!?.])[とや](?=[A-Za-z0-9])")
"""Where a Japanese "XとYみたいな" names two titles: と/や next to a space or between Latin-script titles (a と
inside a Japanese title, となりの怪物くん, is not a boundary)."""


def liked_titles(text: str) -> list[str]:
    """Titles the customer names as liked ("I liked Berserk", "something like Monster", "ベルセルクみたいな")."""
    out = [t.strip(" \"'“”「」") for m in _LIKE_EN.finditer(text) for t in re.split(r"\s+and\s+|\s*,\s*", m.group(1))]
    out += [t.strip() for m in _LIKE_JA.finditer(text) for t in _JA_SEEDS_SPLIT.split(m.group(1))]
    bad = {"it", "that", "this", "them", "manga", "a manga", "something", "anything", "to read", "reading"}
    return [t for t in dict.fromkeys(out) if t and t.lower() not in bad and len(t) <= 80]


_CLAUSE_SPLIT = re.compile(r"(?:\s*[?？!！。]\s*|\s*;\s*|,?\s+(?:and also|and then|also|and|then|plus|but)\s+|"
                           r"、?それと|、?あと(?:、)?|、?それから|。また)", re.I)


def split_clauses(text: str) -> list[str]:
    """Split a message into clauses at sentence ends and conjunctions (EN/JA); keeps non-empty parts."""
    parts = [re.sub(r"^(?:also|and|plus|then)\s+", "", p.strip(" ,、"), flags=re.I) for p in _CLAUSE_SPLIT.split(text)]
    return [p for p in parts if p and len(p) > 1]
