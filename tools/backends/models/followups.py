"""Follow-up rules of the local profile (EN + JA): what a message asks about a work or an order, and whether it
names its own subject or leans on the dialogue state ("who is the author?", "何巻まで", "can I cancel it?").

This is the one module for follow-up detection; it reuses the back-reference and ordinal rules of
``text_rules`` (``is_backreference``, ``referenced_index``, ``find_order_id``, ``order_action``) and adds
the fact questions, order questions, recency ("the most recent one", "一番新しい") and the subject test.
Pure functions, no I/O; unit-tested in tests/unit/test_followups.py.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from tools.backends.models.text_rules import (
    clean_search_query,
    find_order_id,
    is_backreference,
    order_action,
    referenced_index,
)

ITEM_FACTS = ("author", "volumes", "status", "price", "stock", "title_en", "title_ja", "synopsis", "genres")
"""Facts of a catalog work a question can ask for (answered from the catalog record)."""

ORDER_QUESTIONS = ("arrival", "tracking", "can_cancel", "can_return", "cancel", "return", "status")
"""What a message asks about an order: questions (arrival, tracking, can_cancel, can_return) or requests."""

# Checked in this order: the first that matches is the fact asked.
_FACTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("title_en", re.compile(r"\benglish (?:title|name|version's (?:title|name))\b|\b(?:called|name) in english\b|"
                            r"英語(?:の)?(?:タイトル|題名|名)|英題|英語(?:だと|で(?:は)?)(?:何|なん)", re.I)),
    ("title_ja", re.compile(r"\bjapanese (?:title|name)\b|\boriginal (?:title|name)\b|\b(?:called|name) in japan(?:ese)?\b|"
                            r"日本語(?:の)?(?:タイトル|題名|名)|原題|邦題", re.I)),
    ("author", re.compile(r"\b(?:authors?|wrote|writers?|written|drew|drawn|artists?|illustrat\w*|mangaka|creators?|"
                          r"created|who made|who(?:'s| is) (?:behind|it by)|by whom)\b|作者|著者|作家|漫画家|原作者|作画|"
                          r"書いた|描いた|書いてる|描いてる|誰の(?:作品|漫画)|誰が(?:描|書|か)い(?:た|て(?:る|いる)?)?", re.I)),
    ("price", re.compile(r"\bhow much\b|\bprices?\b|\bcosts?\b|\bgoing for\b|値段|価格|いくら|税込", re.I)),
    ("volumes", re.compile(r"\bhow many (?:volumes|vols|books|tankobon)\b|\bvolumes?\b|\bvolume count\b|\bhow long is\b|"
                           r"何巻|巻数|全何巻|何冊", re.I)),
    ("status", re.compile(r"\b(?:finished|complete[d]?|ongoing|still (?:running|publishing|going|out)|ended|concluded|"
                          r"over yet|status)\b|"
                          r"\b(?:is|was|has) (?:it|that|this|the (?:series|manga|story))(?: one)? (?:done|over|ended|wrapped up)\b|"
                          r"完結|連載中|"
                          r"終わ(?:った|って|り)|終了|最終巻|連載(?:は|が|って)?(?:まだ)?続|まだ連載|続いて(?:ますか|る[？?]|いる)", re.I)),
    ("stock", re.compile(r"\bin stock\b|\bstock\b|\bavailable\b|\bsold out\b|\bcopies\b|在庫|売り切れ|品切れ|入荷|(?:すぐ|今)(?:に)?買え", re.I)),
    ("genres", re.compile(r"\bgenres?\b|\bcategor(?:y|ies)\b|\bwhat (?:kind|sort|type) of (?:manga|story|series|book)\b|ジャンル|何系|どんな系|系統|カテゴリ",
                          re.I)),
    ("synopsis", re.compile(r"\bwhat(?:'s| is) (?:it|this|that)(?: one)? about\b|\bplot\b|\bpremise\b|\bgist\b|"
                            r"\bsynopsis\b|\bstory\b|\bsummar(?:y|ise|ize)\b|\bwhat happens\b|"
                            r"あらすじ|どんな(?:話|内容|作品|漫画|ストーリー)|内容|ストーリー", re.I)),
)

_CAN_CANCEL = re.compile(r"\b(?:can|could|may) (?:i|we) (?:still )?(?:cancel|call (?:it|that|this(?: one)?) off)\b|"
                         r"\bis it (?:still )?(?:possible to )?cancel|\btoo late to cancel\b|"
                         r"\b(?:am i|are we) (?:still )?able to cancel\b|"
                         r"\bis cancell?(?:ing|ation)(?: it| that| this)? (?:still )?(?:an option|possible|allowed)\b|"
                         r"取り?消し(?:は|って|が)?(?:でき|可能|出来)|取り?消せ(?:ます|る)|(?:注文を)?やめ(?:る|ること)(?:は|って|が)?(?:でき|可能|出来)|"
                         r"\bcan (?:it|that|this|the order)(?: one)? (?:still )?be cancell?ed\b|\bcancell?able\b|"
                         r"キャンセル(?:は|って|が)?(?:でき|可能|出来)", re.I)
_CAN_RETURN = re.compile(r"\b(?:can|could|may) (?:i|we|you) (?:still )?(?:return|send (?:it|them) back)\b|"
                         r"\bcan (?:it|that|this|the order)(?: one)? (?:still )?be returned\b|\breturnable\b|"
                         r"返品(?:は|って)?(?:でき|可能|出来)|返せ(?:ます|る)", re.I)
_ARRIVAL = re.compile(r"\b(?:when|how soon|what day|what date) (?:will|does|do|is|should|can)\b.*\b(?:arrive|come|get here|be delivered|deliver|be here)\b|"
                      r"\barriv\w*|\blanding\b|\bdelivery date\b|\beta\b|\bwhen will i get\b|\bhas it (?:shipped|been sent)\b|"
                      r"\b(?:is|was) it (?:shipped|sent)\b|\bshipped yet\b|"
                      r"いつ届|届く|届きます|到着|お届け|配達|着く|着きます|発送(?:され|済|し)", re.I)
_TRACKING = re.compile(r"\btrack(?:ing)?(?: number)?\b|\bwhere is (?:it|my parcel|the parcel|my package)\b|追跡番号|追跡|配送状況|荷物|"
                       r"問い合わせ番号|伝票番号",
                       re.I)

_NEWEST = re.compile(r"\b(?:most recent|latest|newest|last (?:order|one i (?:placed|made)))\b|一番新しい|いちばん新しい|最新|最近の|直近|"
                     r"最後に(?:頼んだ|注文した|買った)", re.I)
_OLDEST = re.compile(r"\b(?:oldest|earliest)\b|一番古い|いちばん古い|最初の注文", re.I)
_DEICTIC = re.compile(r"\b(?:its|this (?:one|manga|series|title|book|work)|the (?:manga|series|title|book))\b|"
                      r"^\s*(?:tell me more|more (?:info|information|details)|(?:more )?details)\b|もっと詳しく|詳しく|もっと教えて|"
                      r"この(?:作品|漫画|マンガ|本|シリーズ|タイトル)?|その(?:作品|漫画|マンガ|本|シリーズ)?|それ|これ|あれ", re.I)

_MORE = re.compile(r"\b(?:any (?:others?|more)|anything else|something else|more (?:of (?:those|them|these)|please|like (?:that|those|these|it))|"
                   r"(?:any|some) other ones?|others|another one|show me more)\b|^\s*more\s*[?？!.]*\s*$|"
                   r"他に(?:も)?|ほかに(?:も)?|他の(?:作品|もの|は)|ほかの(?:作品|もの|は)|もっと(?:見せて|ある|ない|教えて)?|別の(?:作品|もの|は)?", re.I)
"""Asks for more of the list just shown ("any others?", "anything else?", "他にもある？", "もっと"): no subject of its own."""

_VOLUME = re.compile(r"\b(?:vol(?:ume)?\.?\s*)(\d{1,3})\b|第?([0-9０-９]{1,3})\s*巻", re.I)
"""A volume of the work in focus ("is volume 3 in stock?", "3巻はありますか"): not a subject of its own."""

# What is left after the question words are removed tells whether the message names its own subject.
_EN_FILLER = re.compile(
    r"\b(?:who|whom|whose|what|which|when|where|how|why|is|are|was|were|be|been|the|a|an|it|its|this|that|these|those|"
    r"they|them|one|ones|do|does|did|has|have|had|i|we|you|me|my|our|your|can|could|may|might|will|would|should|"
    r"please|tell|me|more|about|much|many|of|for|to|in|on|by|and|or|so|still|yet|any|there|get|know|want|like|"
    r"details|info|information|say|said|then|now|ok|okay|well|also|again|exactly|out|up|here|series|manga|title|"
    r"book|books|work|order|orders|package|parcel|placed|made|yes|no|just|number|written|drawn|whats|what's|it's|"
    r"there's|isn't|possible|volume|volumes|vols|price|cost|costs|name|called|english|japanese|original|already|right|"
    r"top|two|three|four|five|actually|really|currently|at all|though)\b", re.I)
_JA_FILLER = re.compile(
    r"出ていますか|出てますか|出ている|出てる|していますか|してますか|している|してる|ありますか|あります|ですか|ますか|"
    r"でしょうか|できますか|できる|出来ますか|可能ですか|ください|下さい|教えて|知りたい|ですか|ますか|なんですか|"
    r"してください|して|したい|します|お願いします|お願い|について|ある|番号|"
    r"だれ|誰|なに|何|いつ|どこ|どう|どんな|どれ|まで|から|もの|やつ|ほう|方|って|です|ます|でした|ました|"
    r"作品|漫画|マンガ|本|シリーズ|注文|ご注文|一番|いちばん|新しい|古い|最新|最近|直近|"
    r"[のはがをにでもかねよとへ]|[?？。、!！・\s]")


@dataclass(frozen=True, slots=True)
class FollowUp:
    """What a message asks, by the rules of this module.

    fact: one of ITEM_FACTS or None; order_q: one of ORDER_QUESTIONS or None (set only when the message asks
    about an order: a question word, tracking, arrival, or a cancel/return request); ordinal: 0-based position
    (-1 = last) from "the second one"/"2つ目", or None; recency: "newest" | "oldest" | None; backref: points at
    something said before ("it", "それ", "この作品"); order_id: an order id written in the message; subject: what is
    left of the message without question words, pronouns, volume numbers and particles ('' = the message names
    nothing itself); volume: a volume number ("volume 3", "3巻"), which refers to the work in focus; more: asks
    for more of the list just shown ("any others?", "他にもある？").
    """

    fact: str | None
    order_q: str | None
    ordinal: int | None
    recency: str | None
    backref: bool
    order_id: str | None
    subject: str
    volume: int | None = None
    more: bool = False

    @property
    def names_subject(self) -> bool:
        """True when the message names its own entity (an order id, or words left that may be a title)."""
        return bool(self.order_id) or bool(self.subject)

    @property
    def leans_on_context(self) -> bool:
        """True when the message needs the dialogue state: it names nothing itself, and asks a fact, an order
        question, an ordinal, a recency or points back."""
        return not self.names_subject and (self.fact is not None or self.order_q is not None or self.volume is not None
                                           or self.ordinal is not None or self.recency is not None or self.backref
                                           or self.more)


_WHAT_ABOUT = re.compile(r"\bwhat(?:'s| is)\b.+\babout\s*[?.!]*$", re.I)
"""'What is X about?': a synopsis question (fact detection only: its middle is the subject)."""


def fact_question(text: str) -> str | None:
    """The catalog fact a message asks for (one of ITEM_FACTS: "who is the author?" → 'author', "何巻まで" →
    'volumes', "在庫は？" → 'stock'), else None."""
    for name, rx in _FACTS:
        if rx.search(text or ""):
            return name
    return "synopsis" if _WHAT_ABOUT.search(text or "") else None


def order_question(text: str) -> str | None:
    """What a message asks about an order (one of ORDER_QUESTIONS), else None: "can I cancel it?" →
    'can_cancel' (a question, not a request), "cancel it" → 'cancel', "when will it arrive?"/"いつ届く" → 'arrival',
    "tracking number?" → 'tracking'."""
    t = text or ""
    if _CAN_CANCEL.search(t):
        return "can_cancel"
    if _CAN_RETURN.search(t):
        return "can_return"
    action = order_action(t)
    if action in ("cancel", "return"):
        return action
    if _TRACKING.search(t):
        return "tracking"
    if _ARRIVAL.search(t):
        return "arrival"
    return None


def recency(text: str) -> str | None:
    """'newest' ("the most recent one", "一番新しいもの"), 'oldest' ("the oldest one") or None."""
    if _NEWEST.search(text or ""):
        return "newest"
    if _OLDEST.search(text or ""):
        return "oldest"
    return None


def subject_of(text: str) -> str:
    """The message without question words, fact/order phrases, pronouns, ordinals and particles, stripped; ''
    when nothing of its own is left ("who is the author?" → '', "who wrote Monster?" → 'Monster',
    "ベルセルクの作者は？" → 'ベルセルク')."""
    t = text or ""
    for _, rx in _FACTS:
        t = rx.sub(" ", t)
    for rx in (_CAN_CANCEL, _CAN_RETURN, _TRACKING, _ARRIVAL, _NEWEST, _OLDEST, _DEICTIC, _MORE):
        t = rx.sub(" ", t)
    t = re.sub(r"\b(?:cancel|return|refund|send|back|first|1st|second|2nd|third|3rd|fourth|4th|fifth|5th|last|"
               r"next|previous|other|recent|call|off)\b|キャンセル|返品|返金|[1-5１-５一二三四五](?:つ目|番目|個目)|最初|最後",
               " ", t, flags=re.I)
    t = _VOLUME.sub(" ", t)
    t = _EN_FILLER.sub(" ", t)
    t = _JA_FILLER.sub(" ", t)
    t = re.sub(r"[^\w\u3040-\u30ff\u3400-\u9fff]+", " ", t).strip()
    t = " ".join(w for w in t.split() if not w.isdigit())  # a bare number is no title ("40", "3")
    return t if len(t.replace(" ", "")) >= 2 else ""


_JA_TEXT = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")


def subject_query(text: str) -> str:
    """The catalog query of a fact question that names its work: the request cleaned of its phrasing and of the
    fact words ("who wrote Monster?" → 'Monster', "ベルセルクの作者は？" → 'ベルセルク', "how many volumes does
    Vagabond have?" → 'Vagabond'); ``subject_of`` when nothing is left."""
    starts = [m.start() for _, rx in _FACTS if (m := rx.search(text or "")) and m.start() > 0]
    if _JA_TEXT.search(text or "") and starts:  # Japanese: the work comes before the fact ("Xの作者は", "Xは何巻")
        q = (text or "")[: min(starts)]
    else:
        q = clean_search_query(text)
    for _, rx in _FACTS:
        q = rx.sub(" ", q)
    q = re.sub(r"^[のはがを\s]+|(?:って|[のはがを])+$", "", re.sub(r"\s+", " ", q).strip(" ?？。、,")).strip()
    return q or subject_of(text)


def parse_followup(text: str) -> FollowUp:
    """All the follow-up rules of one message (see FollowUp)."""
    t = text or ""
    oq = order_question(t)
    vm = _VOLUME.search(t)
    volume = int(unicodedata.normalize("NFKC", vm.group(1) or vm.group(2))) if vm else None
    return FollowUp(fact=fact_question(t), order_q=oq, ordinal=referenced_index(t), recency=recency(t),
                    backref=is_backreference(t) or bool(_DEICTIC.search(t)), order_id=find_order_id(t),
                    subject=subject_of(t), volume=volume, more=bool(_MORE.search(t)))


_LIST_CUE = re.compile(r"\b(?:any|some|all|list|other|titles|recommend\w*|similar|like|by)\b|おすすめ|一覧|他の|ほかの|似た|みたいな",
                       re.I)


def direct_fact(text: str) -> str | None:
    """The fact to answer directly (one of ITEM_FACTS) when the message asks it about one work ("who wrote
    Monster?", "is it finished?", "何巻まで"), else None: no fact asked, or a request for a list ("any finished
    manga by Urasawa?", "他の作品は？")."""
    fact = fact_question(text)
    return fact if fact and not _LIST_CUE.search(text or "") else None


def is_capability_question(text: str) -> bool:
    """True for "can I cancel/return it?" ("キャンセルできますか"): asks whether an action is allowed, not for it."""
    return order_question(text) in ("can_cancel", "can_return")
