"""Catalog evidence for routing (pure): a "search" with no catalog entity and no store cue is out of scope.

The router labels some general-knowledge questions shaped like catalog requests ("how many moons does Jupiter
have?", "tell me who the president of France is") as ``search``. A real catalog request names a title or an
author the entity linker finds (tools/backends/entities.py), or carries a store/search cue: a word for the
goods ("manga", "漫画", "volume", "巻"), a catalog fact ("price", "在庫", "author"; not "wrote": anyone
wrote the theory of relativity), a genre word ("dark fantasy",
"恋愛"), or request phrasing ("do you have", "探して", "ありますか"). A lone ``recommend`` for a message that names an
author's works and asks for no suggestion ("浅野いにおの漫画ある？", "anything by Ai Yazawa?") is a catalog search
of that author. ``catalog_scope`` is called by the classify node after the router's decision; ``has_store_cue``
is the cue test.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from tools.backends.models.followups import fact_question
from tools.backends.models.local_router import has_recommend_cue
from tools.backends.models.text_rules import asks_checkout, find_order_id, order_action, split_clauses
from tools.backends.policies import COUNTRY_GROUPS, mentioned_entities

__all__ = ["STORE_CUE", "catalog_scope", "has_store_cue"]

STORE_CUE = re.compile(
    r"\b(?:manga|mangas|manhwa|manhua|webtoons?|comics?|graphic novels?|light novels?|novels?|books?|volumes?|vols?|"
    r"v\d+|series|titles?|chapters?|editions?|box ?set|copies|copy|signed|reprint|omnibus|tankobon|"
    r"spin-?offs?|sequels?|prequels?|adaptation|anime|publisher|published|publish|author|authors|mangaka|artist|"
    r"illustrat\w*|creator|genres?|protagonist|main character|"
    r"price|prices|cost|costs|cheap\w*|how much|yen|stock|available|availability|sold out|buy\w*|purchas\w*|acquir\w*|shop|shopping|products?|items?|"
    r"articles?|merch\w*|goods|order (?:it|them|some|several|a few|an?|items?|products?)|"
    r"sell|selling|carry|stocked|restock\w*|new releases?|preorder|pre-order|english version|"
    r"translation|translated|japanese (?:title|edition|version)|read|reading|reads|recommend\w*|similar|"
    r"(?:do|would|could|can|will) you (?:guys )?(?:happen to )?(?:have|sell|stock|carry|got)|you (?:carry|sell|stock)|"
    r"have you got|got any|looking for|search(?:ing)? for|find me|after a copy|a copy of|"
    r"shoujo|shojo|shounen|shonen|seinen|josei|isekai|yaoi|yuri|shoujo-ai|boys'? love|girls'? love|"
    r"romance|romcom|rom-com|horror|fantasy|sci-?fi|science fiction|mystery|mysteries|thriller|comedy|comedies|"
    r"slice of life|action|adventure|drama|sports?|mecha|harem|supernatural|psychological|historical|samurai|"
    r"vampires?|zombies?|detective|magical girl|martial arts|gore|ecchi|dark fantasy|cyberpunk|dystopia\w*|"
    r"spy|gourmet|cooking manga|idol|villainess|reincarnat\w*|time travel|post-apocalyptic|bl|gl)\b|"
    r"漫画|マンガ|まんが|コミック|単行本|文庫|新装版|愛蔵版|完全版|特装版|限定版|全巻|巻|冊|作品|作者|著者|作家|原作|作画|"
    r"連載|完結|新刊|最新刊|続編|発売|出版|出て(?:い)?ますか|出てる|値段|価格|いくら|在庫|品切れ|売り切れ|入荷|売って|買い|購入|"
    r"予約|探して|さがして|(?<!いくつ)(?<!何本)(?<!何個)(?<!何人)(?<!何匹)(?<!どれくらい)(?<!どのくらい)(?:ありますか|ある[?？])|置いて|取り扱|翻訳|英語版|日本語版|タイトル|題名|主人公|登場人物|キャラ|"
    r"ジャンル|読み|読ん|読め|おすすめ|オススメ|似た|みたいな|少女|少年|青年|女性向け|恋愛|ラブコメ|ホラー|ファンタジー|SF|"
    r"ミステリー|推理|サスペンス|ギャグ|コメディ|日常|スポーツ|異世界|転生|バトル|アクション|ロボット|歴史|時代劇|グルメ|料理漫画|"
    r"百合|BL|ボーイズラブ|アニメ|ライトノベル|ラノベ|小説",
    re.I,
)
"""Store and search cues, EN + JA (see the module docstring)."""


POLICY_CUE = re.compile(
    r"\b(?:pay|paying|payments?|paid|credit cards?|debit cards?|paypal|apple pay|google pay|line pay|cash on delivery|"
    r"ship|shipping|shipped to|postage|delivery fees?|refunds?|return policy|returns|accounts?|passwords?|log ?in|"
    r"invoices?|receipts?|gift wrap\w*|coupons?|membership|customs|duties|tax|"
    r"(?:my|reward|loyalty|member(?:ship)?|store|shopping|bonus) points?|points? (?:card|program(?:me)?|system|balance|expir\w*)|"
    r"(?:earn|use|redeem|collect|spend)\w* (?:\w+ )?points?)\b|"
    r"支払|決済|払え|払い|カード|送料|発送|配送料|海外|返品|返金|アカウント|パスワード|ログイン|領収書|ギフト|ポイント|クーポン|関税",
    re.I)
"""Store-policy topics (payment, shipping, returns, account): a message about them is a policy question."""

POLICY_ASK = re.compile(r"\byour (?:return|refund|shipping|delivery|cancellation|payment)s?\b|"
                         r"\b(?:return|refund|cancellation|exchange)s? (?:window|policy|policies|period|deadline|rules?)\b|"
                         r"返品(?:できる)?(?:期間|期限|ポリシー|規定|条件)|返金(?:ポリシー|規定)|キャンセル(?:ポリシー|規定)", re.I)
"""Asks about the store's rules ("what's your return window?", "返品できる期間は？"), not about one order."""

CART_CUE = re.compile(r"\b(?:cart|basket|check\s?out|checkout)\b|カート|レジ|購入手続き|お?会計", re.I)
"""Names the shopping cart or its checkout: the cart agent's, whatever else the message looks like."""
CART_ADD = re.compile(r"\badd\b|追加", re.I)
"""Asks to add something ("add Monster vol 2", "Xの8巻を1冊追加で"): the cart's when the message names a title."""
ADD_ELSEWHERE = re.compile(r"\b(?:add|put)\b.*\b(?:to|in|on|into) (?:my|the|a|your) (?!(?:shopping\s+)?(?:cart|basket)\b)\w+", re.I)
"""Adds to something that is not the cart ("add it to my to do list", "add the song to my playlist")."""
CART_BUY = re.compile(r"\b(?:purchas\w*|buy\w*|acquir\w*|shop|shopping|place an order|order (?:some|several|a few|many))\b|"
                      r"購入|買い|買え", re.I)
"""Asks for help buying ("I would like to purchase some products"): keeps a router ``cart`` (``cart_scope``)."""
CART_VERB = re.compile(r"\b(?:add|put|show|view|see|remove|delete|empty|clear|check out)\b|入れ|見せ|追加|削除|外し|レジに進|お?会計を", re.I)
"""Acts on the cart: a policy question that only mentions it ("is Apple Pay supported at checkout?") does not."""
CART_EDIT = re.compile(r"\b(?:remove|delete|take (?:it|that|them) out|make (?:it|that) \d{1,2}|change (?:it|that|the quantity)|"
                        r"\d{1,2} copies|one more)\b|削除|外して|\d{1,2}冊に", re.I)
"""Changes a cart line ("remove it", "make it 3", "2冊にして"): the cart agent's right after a cart turn."""



_VOLUME = re.compile(r"\d{1,4}\s*巻|\bvol(?:ume)?\.?\s*\d{1,4}\b", re.I)


def cart_clauses(text: str) -> list[str]:
    """The clauses of a several-clause message that act on the cart, for a ``cart`` the router left out: one naming
    the cart or its checkout with a verb ("会計をお願いします", "レジに進んで", "show my cart"), one asking to check out,
    or one adding a volume ("Xの8巻を1冊追加で"). [] for a one-clause message (the follow-up rules decide those)."""
    clauses = split_clauses(text or "")
    if len(clauses) < 2:
        return []
    return [c for c in clauses if not (POLICY_CUE.search(c) and not CART_VERB.search(c))  # "is Apple Pay ok at checkout?"
            and ((CART_CUE.search(c) and CART_VERB.search(c)) or asks_checkout(c) or (CART_ADD.search(c) and _VOLUME.search(c)))]


def cart_scope(intents: Sequence[str], text: str, last_intent: str | None,
               scores: Mapping[str, float] | None = None) -> list[str]:
    """``intents`` without a ``cart`` the message gives no cause for: the cart is served only when the message names
    it or its checkout (``CART_CUE``), asks to add (``CART_ADD``) or for help buying (``CART_BUY``), or edits / checks
    out right after a cart turn (``last_intent == "cart"``). Otherwise the router's ``cart`` becomes its best-scored
    other label (``scores``: the router's per-label scores; ``search`` without them): "私の注文を見せて" → order,
    "それの在庫があるか確認して" → search. Kept once, in order; other intents unchanged."""
    intents = list(intents)
    if "cart" not in intents:
        return intents
    t = text or ""
    if CART_CUE.search(t) or CART_ADD.search(t) or CART_BUY.search(t) or (last_intent == "cart" and (CART_EDIT.search(t) or asks_checkout(t))):
        return intents
    others = {k: v for k, v in (scores or {}).items() if k != "cart"}
    instead = max(others, key=lambda k: others[k]) if others else "search"
    out: list[str] = []
    for i in intents:
        j = instead if i == "cart" else i
        if j not in out:
            out.append(j)
    return out


ORDER_ASK = re.compile(r"\b(?:return|refund|send back) (?:it|this|that|them|my|the)\b|\bsend (?:it|them) back\b|"
                       r"\bwhere(?:'s| is| are) my (?:stuff|things|package|parcel|order|delivery|books?|manga)\b|"
                       r"\b(?:the|my) (?:books?|manga|stuff|things?|volumes?) (?:i|we) (?:ordered|bought|purchased)\b|"
                       r"\bwhere(?:'s| is| are) the (?:package|parcel|delivery|order)\b|\bmy [\w' :-]{2,40}? order\b(?! (?:history|form|of))|"
                       r"(?:頼んだ|注文した|買った)(?:んですが|のですが|んだけど|けど)|(?:まとめて|一緒に)(?:頼んだ|注文した)|"
                       r"返品|返金|(?:頼んだ|注文した|買った|購入した)(?:本|漫画|もの|物|やつ|商品|巻)|を(?:頼んだ|注文した)(?:やつ|もの|の)",
                       re.I)
"""Besides a cancellation (``text_rules.order_action``), an order request whatever else the message names: return
or refund something, where my parcel is, what became of what I ordered ("頼んだ本はどうなりましたか")."""

THANKS = re.compile(r"\s*(?:(?:thanks?(?: you)?|thank u|thx|ty|cheers|much appreciated)(?: (?:so|very) much| a lot)?|"
                    r"サンキュー|サンクス|ありがと(?:う)?(?:ございます|ございました)?|どうも(?:ありがとう)?|感謝(?:します)?)"
                    r"[\s!！.。~〜♪]*", re.I)
"""A message that only thanks ("サンキュー", "thx!"): small talk, whatever the router read in it."""
_HOW_TO = re.compile(r"\bhow (?:do|can|could|would) (?:i|we|you)\b|\b(?:fee|fees|cost|window|deadline|period|policy)\b|"
                     r"送料|手数料|期間|期限|方法|ポリシー|どうやって|どうすれば", re.I)
"""Asks how the store's rules work ("how do I cancel?", "返品の送料は？"): a policy question, not an order request."""

_LIKE = re.compile(r"\b(?:in the vein of|along the lines of|feels? like|similar to|more like)\b", re.I)
"""Asks for titles like a named one, in words the router's suggestion cue does not list."""


def has_store_cue(text: str) -> bool:
    """True when ``text`` says something about the store's goods or a catalog search ("manga", "volume 3", "in
    stock", "romance", "do you have", "漫画", "3巻", "在庫", "探して", "ありますか")."""
    return bool(STORE_CUE.search(text or ""))


def catalog_scope(intents: Sequence[str], linked: Mapping[str, Any] | Any, text: str) -> list[str]:
    """The turn's intents after the catalog-evidence rule.

    ``intents``: the router's decision (after follow-up resolution); ``linked``: what the entity linker found in
    ``text`` (an ``entities.Linked`` or its ``to_dict()``). Returns ``["out_of_scope"]`` when the router's
    only intent is ``search`` and the message names no catalog title or author (``has_entity``, ``named_titles``)
    and has no store cue
    (``has_store_cue``); ``["search"]`` when the only intent is ``recommend``, the message asks for an author's
    works (``author_request``) and has no suggestion cue (local_router.has_recommend_cue). A lone
    ``out_of_scope`` or ``chitchat`` for a message naming a title (``named_titles``) becomes ``recommend`` with a
    suggestion cue ("in the vein of X") or ``search`` with a store cue or a catalog fact question ("would you
    happen to have X?", "is Judge finished?"); a lone ``search`` naming a title "in the vein of" / "similar to"
    becomes ``recommend``; a lone ``out_of_scope`` about a store-policy topic (``POLICY_CUE``: payment, shipping,
    returns, account) becomes ``faq``, so does a lone ``search``, ``chitchat`` or ``out_of_scope`` asking about the store's rules
    (``POLICY_ASK``: "what's your return window?"). A lone ``search``, ``chitchat`` or ``out_of_scope`` asking to
    cancel (``text_rules.order_action``) or return something or where a parcel is (``ORDER_ASK``: "cancel the One
    Piece one") is ``order``, and so
    does a lone ``order`` naming a country and no order id ("can I order
    from Kenya?"). A lone ``out_of_scope`` that only thanks (``THANKS``) is ``chitchat``. Else ``intents`` unchanged. A
    message with several intents is left alone.
    """
    intents = list(intents)
    if intents == ["out_of_scope"] and THANKS.fullmatch(text or ""):
        return ["chitchat"]  # "サンキュー": a thank-you the router did not know
    if isinstance(linked, Mapping):
        has_entity, author = bool(linked.get("has_entity")), linked.get("author")
        named = bool(linked.get("named_titles"))
    else:
        has_entity, author = bool(getattr(linked, "has_entity", False)), getattr(linked, "author_request", None)
        named = bool(getattr(linked, "named_titles", None))
    if (intents in (["search"], ["chitchat"], ["out_of_scope"])
            and (order_action(text) == "cancel" or ORDER_ASK.search(text))
            and not POLICY_ASK.search(text) and not _HOW_TO.search(text)
            and not (mentioned_entities(text) & COUNTRY_GROUPS)):
        return ["order"]  # "cancel the One Piece one", "cancel it please", "where's my stuff?"
    if intents == ["order"] and not find_order_id(text) and mentioned_entities(text) & COUNTRY_GROUPS:
        return ["faq"]  # "ナイジェリア在住ですが注文できますか": where we ship is a policy, not one of the orders
    if intents in (["search"], ["chitchat"], ["out_of_scope"]) and not named and not has_entity and POLICY_ASK.search(text):
        return ["faq"]  # "what's your return window?": the store's rules, whatever the words look like
    if intents == ["out_of_scope"] and not named and not has_entity and POLICY_CUE.search(text):
        return ["faq"]  # "will LINE Pay work for paying?": the policies answer it, or say they do not cover it
    if intents in (["out_of_scope"], ["chitchat"]) and named:
        if _LIKE.search(text) or has_recommend_cue(text):  # "got anything in the vein of X?"
            return ["recommend"]
        if has_store_cue(text) or fact_question(text):  # "would you happen to have X?", "is Judge finished?"
            return ["search"]
        return intents
    if intents == ["recommend"]:
        return ["search"] if author and not has_recommend_cue(text) else intents
    if intents != ["search"]:
        return intents
    if named and _LIKE.search(text):  # "more in the vein of Bitter Virgin": titles like it
        return ["recommend"]
    if has_entity or named or has_store_cue(text):
        return intents
    return ["out_of_scope"]
