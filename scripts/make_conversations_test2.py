"""Write data/eval/conversations/test2.jsonl: a hand-written multi-turn conversation TEST split (read once).

Usage: python scripts/make_conversations_test2.py            (deterministic; rewrites test2.jsonl, validates)
       python scripts/make_conversations_test2.py --novelty  (also the novelty check against dev/test and the
                                                              router dataset; ~10 s)

Every customer phrasing below was written by hand for this split, as a real customer would type it (typos, no
question marks, lower case, run-on sentences, polite and casual Japanese, pronouns, ellipsis). No phrasing is
drawn from a pool or filled into a template; the conversations are listed one by one in ``conversations()``.

Only the checks are computed, from the shipped records: titles, authors, volumes, status, price and stock from
the catalog (``tools.backends.catalog.load_catalog``) through the fact builders of ``bench.eval_conversations``
(``ITEM_FACTS``, ``can_cancel_fact`` ...); orders and their owners from the demo seed
(``tools.backends.seed.build_seed``: u_ben / u_chloe write English, u_aiko / u_daichi Japanese); policy facts as
regexes that ``validate`` checks against ``data/policies/<lang>/*.md``. Order facts that depend on the run's clock
(shipped orders' delivery dates, tracking, return window) are stored as specs the runner resolves.

Entities: catalog titles and authors that appear in neither dev.jsonl nor test.jsonl (``used_entities``; checked
by mal_id and by author). Orders are the seed's 18 (27 popular titles), referred to by recency, position or the
titles in them; those order titles necessarily recur in dev/test order turns (order references, not catalog
questions).

Do not tune on this split: it is read once, by ``mangaassist eval`` at the end of a change.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from make_conversations import POLICY_FACTS, norm, plausible  # noqa: E402
from make_conversations import P as DEVTEST_POOLS  # noqa: E402  (novelty check only)

from bench.eval_conversations import (  # noqa: E402
    CHECK_KINDS,
    DATA_DIR,
    ITEM_FACTS,
    can_cancel_fact,
    cancelled_done_fact,
    genre_ja,
    kept_fact,
)

OUT = DATA_DIR / "test2.jsonl"
POLICY_DIR = ROOT / "data" / "policies"

# ----------------------------------------------------------------------------------------------- entities
# mal_ids (catalog) used by this split; none appears in dev.jsonl or test.jsonl (``used_entities``).
FRIEREN, KOMI, ABYSS, YOTSUBA, UZUMAKI = 126287, 99007, 91941, 104, 436
SLAM_DUNK, SAKAMOTO, LUSTROUS = 51, 131334, 44489
DR_STONE, KAIJU8, SEVEN_SINS = 103897, 127907, 44485
BLACK_BUTLER, BANANA_FISH, MUSHISHI, BEASTARS, FIRE_FORCE, KAKEGURUI = 3866, 756, 418, 103701, 91037, 73603
KUSURIYA, LION, TOKYO_REV, ERASED, FUMETSU = 107562, 1224, 104565, 39325, 102343
CONAN, CHIHAYA, KUROKO = 1061, 13245, 11652
SHIGATSU, TENSURA, BUNSTO = 37707, 87609, 56529
HOKUTO, INUYASHA, MAHOYOME, KIMITODO, OTOYOME, KINDAICHI = 1149, 676, 61189, 3378, 11514, 393
# authors (romanised, as in the catalog) whose works an author request lists
OSHIMI, NIHEI, OKU = "Shuuzou Oshimi", "Tsutomu Nihei", "Hiroya Oku"
TOGASHI, TAKAYA, HIGASHIMURA = "Yoshihiro Togashi", "Natsuki Takaya", "Akiko Higashimura"

# Synopsis words ``about_fact`` may pick that say nothing about the story (publisher, prizes, the word "Manga").
_ABOUT_GENERIC = {"Manga", "Award", "Awards", "Prize", "Kodansha", "Weekly", "Excellence", "Media", "Culture",
                  "Grand", "Tezuka", "Osamu", "Shogakukan", "Shueisha", "Jump", "School"}

# ----------------------------------------------------------------------------------------------- policy facts
# Regex alternatives per language; ``validate`` checks each fact against that language's policy text.
POLICY = {
    **POLICY_FACTS,
    "express_fee": {"en": [r"¥\s?700", r"700 yen"], "ja": [r"700円", r"¥\s?700"]},
    "remote_fee": {"en": [r"¥\s?500", r"500 yen"], "ja": [r"500円", r"¥\s?500"]},
    "return_after_shipping": {"en": [r"30[- ]days?", r"thirty days"], "ja": [r"30日"]},
}
UNLISTED_FACT = {
    "en": [r"(?:cannot|can't|can not|don't|do not|unable to|are not able to) (?:currently )?(?:ship|deliver|send)",
           r"not (?:listed|on (?:the|our) list|one of|among|included|covered)", r"(?:isn't|is not) (?:on|in) (?:the|our) list",
           r"only ship to", r"no(?:t)? (?:international )?shipping to"],
    "ja": [r"発送できません", r"発送はできません", r"発送しておりません", r"発送いたしかねます", r"配送できません", r"お届けできません",
           r"お届けできかねます", r"記載のない", r"対象外", r"含まれていません", r"含まれません"],
}


def listed_country(name: str, lang: str, aliases: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """(fact, never) for a listed country: the answer names it and never says it cannot be shipped there."""
    fact = [re.escape(name)] + [rf"\b{re.escape(a)}" + (r"\b" if a[-1].isalnum() else "") for a in aliases]
    if lang == "en":
        never = [f"{v} {name}" for v in ("don't ship to", "do not ship to", "cannot ship to", "can't ship to",
                                           "unable to ship to")]
    else:
        never = [f"{name}{v}" for v in ("へは発送できません", "には発送できません", "への発送はできません", "は対象外")]
    return fact, never


def unlisted_country(name: str, lang: str) -> tuple[list[str], list[str]]:
    """(fact, never) for a country not on the list: the answer says it cannot be shipped there."""
    if lang == "en":
        return UNLISTED_FACT["en"], [f"we ship to {name}", f"we do ship to {name}", f"we can ship to {name}"]
    return UNLISTED_FACT["ja"], [f"{name}へも発送できます", f"{name}に発送できます", f"{name}へ発送できます",
                                 f"{name}にも発送できます"]


_NEG_JA = r"(?:ご利用いただけません|使えません|ご利用になれません|対応していません|お使いいただけません|対応しておりません|利用できません|ご利用できません)"
_POS_JA = r"(?:ご利用いただけます|使えます|ご利用になれます|お使いいただけます|対応しています|対応しております|ご利用可能|利用できます|お支払いいただけます)"


def pay_not(names: tuple[str, ...], lang: str) -> tuple[list[str], list[str]]:
    """(fact, never) for a payment method that is not accepted (``names``: the forms an answer may use)."""
    e = "(?:" + "|".join(re.escape(n) for n in names) + ")"
    if lang == "en":
        fact = [rf"(?:do not|don't|not|cannot|can't|unable to) (?:accept|offer|support|take)[^.]*{e}",
                rf"{e}[^.]*(?:not (?:accepted|available|supported|an option|offered)|isn't (?:accepted|available|supported))",
                rf"{e}[^.]*(?:cannot|can't) be used"]
        never = [f"we accept {n}" for n in names] + [f"{n} is accepted" for n in names]
    else:
        fact = [rf"{e}[^。]*{_NEG_JA}"]
        never = [f"{n}がご利用いただけます" for n in names] + [f"{n}はご利用いただけます" for n in names]
    return fact, never


def pay_yes(name: str, lang: str) -> tuple[list[str], list[str]]:
    """(fact, never) for an accepted payment method."""
    e = re.escape(name)
    if lang == "en":
        fact = [rf"(?<!not )accept[^.]*{e}", rf"{e}[^.]*(?:accepted|available|can be used|supported)",
                rf"(?<!not )(?<!n't )(?:can|may) (?:pay|use)[^.]*{e}"]
        never = [f"do not accept {name}", f"don't accept {name}", f"{name} is not accepted"]
    else:
        fact = [rf"{e}[^。]*{_POS_JA}"]
        never = [f"{name}はご利用いただけません", f"{name}は使えません"]
    return fact, never


# ----------------------------------------------------------------------------------------------- order facts
def can_cancel(order) -> list[str]:
    """``can_cancel_fact`` plus a few more phrasings of the same answer (the order's status is fixed by the seed)."""
    extra: list[str] = []
    if order.status == "processing":
        extra = [r"(?<!not )(?<!n't )(?:I|we) can cancel", r"(?<!not )(?<!n't )still (?:be )?cancell?able",
                 r"(?<!not )(?<!n't )(?<!im)possible to cancel", r"まだキャンセル(?:でき|可能|いただけ)", r"取り消しできます",
                 r"取り消せます"]
    elif order.status == "shipped":
        extra = [r"already (?:been )?shipped", r"発送済み", r"発送されています", r"取り消しできません", r"取り消せません"]
    return can_cancel_fact(order) + extra


def not_shipped_yet() -> list[str]:
    """A processing order's arrival: not shipped yet (``arrival_fact`` for processing, plus more phrasings)."""
    return [r"processing", r"not (?:yet )?(?:been )?shipped", r"has(?:n't| not) (?:yet )?(?:been )?shipped",
            r"hasn't shipped", r"before it ships", r"(?:still )?being prepared", r"not (?:yet )?(?:left|dispatched)",
            r"準備中", r"発送前", r"未発送", r"まだ発送"]


def returned_done() -> list[str]:
    """A confirmed return: the answer says the return (or its refund) went through."""
    return [r"return", r"refund", r"返品", r"返金"]


# ----------------------------------------------------------------------------------------------- builder
class B:
    """Turn and conversation builders: the text is always passed in by hand; checks come from the records."""

    def __init__(self, catalog, seed):
        self.c = catalog
        self.orders = defaultdict(list)
        for o in seed.orders:
            self.orders[o.user_id].append(o)
        self.order_by_id = {o.order_id: o for o in seed.orders}
        self.by_author: dict[str, list[int]] = defaultdict(list)
        for it in catalog.items:
            for a in it.authors:
                self.by_author[a].append(it.mal_id)
        self.convs: list[dict] = []
        self.count = Counter()
        self.slots: dict[str, list[str]] = {}  # turn text → entity surfaces in it (novelty check, slotted)
        self.policy_text = {lang: "\n".join(p.read_text(encoding="utf-8") for p in sorted((POLICY_DIR / lang).glob("*.md")))
                            for lang in ("en", "ja")}

    # -- plumbing
    def conv(self, lang: str, topic: str, turns: list[dict], user: str | None = None) -> None:
        self.count[lang] += 1
        cid = f"test2-{lang}-{self.count[lang]:03d}"
        for t in turns:
            t["checks"].setdefault("lang", lang)
        self.convs.append({"id": cid, "lang": lang, "user_id": user or f"guest_{cid}", "topic": topic,
                           "turns": turns})

    def t(self, text: str, followup: bool = False, direct: bool = False, fact_from: str | None = None,
          slots: tuple[str, ...] = (), **checks) -> dict:
        turn = {"text": text, "checks": {k: v for k, v in checks.items() if v is not None}}
        if followup:
            turn["followup"] = True
        if direct:
            turn["direct"] = True
        if fact_from:
            turn["fact_from"] = fact_from
        if slots:
            self.slots[text] = list(slots)
        return turn

    def item_fact(self, mid: int, field: str) -> list[str]:
        it = self.c.get(mid)
        fact = ITEM_FACTS[field](it)
        if field in ("title_ja", "title_en"):  # the same title with full-width "!" or without a final "。"
            fact += [v for v in (re.sub(r"。$", "", x).replace("!", "[!！]") for x in fact) if v not in fact]
        if field == "about":
            fact = [p for p in fact if re.sub(r"\\b|\\", "", p) not in _ABOUT_GENERIC]
            if not fact:
                raise ValueError(f"{mid}: no story word for an about fact")
        return fact

    # -- catalog turns
    def search(self, text: str, mid: int, typed: str, intent=("search",)) -> dict:
        """A request naming a work (``typed``: the form the customer wrote). ``only``: the titles a search for
        the work may list (the typed form, the record's title, English and Japanese titles)."""
        it = self.c.get(mid)
        names = {typed, it.title, it.title_en, it.title_ja} - {None, ""}
        only = sorted({m for n in names for m in plausible(self.c, n)} | {mid})
        return self.t(text, intent=list(intent), item=mid, only=only, slots=(typed,))

    def fact(self, text: str, mid: int, field: str, followup: bool = True, typed: str | None = None,
             never=None, intent=("search",)) -> dict:
        """A direct question about a fact of the work ``mid``; ``followup`` when the turn does not name it."""
        return self.t(text, followup=followup, direct=True, fact_from=f"catalog:{mid}:{field}", intent=list(intent),
                      item=mid, fact=self.item_fact(mid, field), never=never, slots=(typed,) if typed else ())

    def author(self, text: str, author: str, typed: str) -> dict:
        works = sorted(self.by_author[author])
        return self.t(text, intent=["search"], item=works, only=works, slots=(typed,))

    def ordinal(self, text: str, k: int, intent=("search",), never=None) -> dict:
        return self.t(text, followup=True, intent=list(intent), item={"ordinal": k}, never=never)

    def ordinal_fact(self, text: str, k: int, field: str, intent=("search",)) -> dict:
        """An ordinal pick and a fact about it in one turn ("is the second one finished?")."""
        return self.t(text, followup=True, direct=True, fact_from=f"ordinal:{field}", intent=list(intent),
                      item={"ordinal": k}, fact={"ref_field": field})

    def ref_fact(self, text: str, field: str, intent=("search",), never=None) -> dict:
        return self.t(text, followup=True, direct=True, fact_from=f"ordinal:{field}", intent=list(intent),
                      item={"ref": True}, fact={"ref_field": field}, never=never)

    def rec(self, text: str, seed: int, typed: str, followup: bool = False) -> dict:
        return self.t(text, followup=followup, intent=["recommend"], never=[seed], slots=(typed,) if typed else ())

    # -- order turns
    def order(self, user: str, oid: str) -> object:
        o = self.order_by_id[oid]
        assert o.user_id == user, (oid, user)
        return o

    def orders_list(self, text: str) -> dict:
        return self.t(text, intent=["order"], only=[])

    def pick(self, text: str, oid: str, followup: bool = False, slots: tuple[str, ...] = ()) -> dict:
        return self.t(text, followup=followup, intent=["order"], order=oid, slots=slots)

    def order_spec(self, text: str, oid: str, field: str, followup: bool = True, slots: tuple[str, ...] = (),
                   intent=("order",), **checks) -> dict:
        """A fact about the order resolved at run time (arrival, tracking, can_return)."""
        return self.t(text, followup=followup, direct=True, fact_from=f"order:{oid}:{field}", intent=list(intent),
                      order=oid, fact={"order": oid, "order_field": field}, slots=slots, **checks)

    def order_static(self, text: str, oid: str, field: str, fact: list[str], followup: bool = True,
                     slots: tuple[str, ...] = (), intent=("order",), **checks) -> dict:
        return self.t(text, followup=followup, direct=True, fact_from=f"order:{oid}:{field}", intent=list(intent),
                      order=oid, fact=fact, slots=slots, **checks)

    def cancel_req(self, text: str, oid: str, followup: bool = True, slots: tuple[str, ...] = ()) -> dict:
        return self.t(text, followup=followup, intent=["order"], order=oid, interrupt="cancel", slots=slots)

    def return_req(self, text: str, oid: str, followup: bool = True, slots: tuple[str, ...] = ()) -> dict:
        return self.t(text, followup=followup, intent=["order"], order=oid, interrupt="return", slots=slots)

    def yes_cancel(self, text: str, oid: str) -> dict:
        return self.t(text, followup=True, fact_from=f"order:{oid}:cancelled", intent=["order"], order=oid,
                      interrupt=False, fact=cancelled_done_fact())

    def yes_return(self, text: str, oid: str) -> dict:
        return self.t(text, followup=True, fact_from=f"order:{oid}:returned", intent=["order"], order=oid,
                      interrupt=False, fact=returned_done())

    def no_keep(self, text: str, oid: str) -> dict:
        return self.t(text, followup=True, fact_from=f"order:{oid}:kept", intent=["order"], interrupt=False,
                      fact=kept_fact())

    # -- other turns
    def policy(self, text: str, key: str, lang: str, followup: bool = False) -> dict:
        return self.t(text, followup=followup, direct=True, fact_from=f"policy:{key}", intent=["faq"], only=[],
                      fact=POLICY[key][lang])

    def ship(self, text: str, country: str, lang: str, listed: bool, aliases: tuple[str, ...] = (),
             followup: bool = False) -> dict:
        text_l = self.policy_text[lang].lower()
        if listed != (country.lower() in text_l):  # a listed country is named in the policy, an unlisted one not
            raise ValueError(f"{country!r}: listed={listed} disagrees with the {lang} shipping policy")
        fact, never = listed_country(country, lang, aliases) if listed else unlisted_country(country, lang)
        return self.t(text, followup=followup, direct=True, fact_from="policy:shipping:countries", intent=["faq"],
                      only=[], fact=fact, never=never)

    def pay(self, text: str, names: tuple[str, ...], lang: str, accepted: bool, followup: bool = False) -> dict:
        fact, never = pay_yes(names[0], lang) if accepted else pay_not(names, lang)
        return self.t(text, followup=followup, direct=True, fact_from="policy:payment:" + ("yes" if accepted else "not"),
                      intent=["faq"], only=[], fact=fact, never=never)

    def oos(self, text: str) -> dict:
        return self.t(text, intent=["out_of_scope"], only=[])

    def chat(self, text: str) -> dict:
        return self.t(text, intent=["chitchat"], only=[])

    def names_of(self, mid: int) -> list[str]:
        it = self.c.get(mid)
        return [n for n in dict.fromkeys([it.title, it.title_en, it.title_ja]) if n]

    def never_names(self, a: int, b: int) -> list[str]:
        """Titles of work ``a`` that are no part of work ``b``'s titles (an answer about b must not name a)."""
        bn = [n.lower() for n in self.names_of(b)]
        return [n for n in self.names_of(a) if not any(n.lower() in x or x in n.lower() for x in bn)]


# ----------------------------------------------------------------------------------------------- conversations
def conversations(b: B) -> list[dict]:  # noqa: PLR0915 (one hand-written conversation after another)
    en, ja = "en", "ja"

    # ================================================================ English (guests, u_ben, u_chloe)
    # -- search, then follow-up facts
    b.conv(en, "search_followups", [
        b.search("do u guys have frieren? the one with the elf mage", FRIEREN, "frieren"),
        b.fact("whos the writer on that", FRIEREN, "author"),
        b.fact("is it still coming out or did it end already", FRIEREN, "status"),
        b.fact("and how much per book", FRIEREN, "price"),
    ])
    b.conv(en, "search_followups", [
        b.search("looking to pick up komi cant communicate for my little sister", KOMI, "komi cant communicate"),
        b.fact("what genre would you call it", KOMI, "genres"),
        b.fact("do you actually have it on the shelf rn", KOMI, "stock"),
        b.fact("whats the original japanese name of it", KOMI, "title_ja"),
    ])
    b.conv(en, "search_followups", [
        b.search("Hi! I just binged the Made in Abyss anime and want to read the manga now", ABYSS, "Made in Abyss"),
        b.fact("remind me what the story is actually about?", ABYSS, "about"),
        b.fact("has it finished or is it still going", ABYSS, "status"),
        b.fact("ok cool, are there copies available to buy", ABYSS, "stock"),
    ])
    b.conv(en, "search_followups", [
        b.search("need yotsuba for my daughter, is it here", YOTSUBA, "yotsuba"),
        b.fact("whos the mangaka behind it", YOTSUBA, "author"),
        b.fact("price for one volume", YOTSUBA, "price"),
        b.fact("hmm and how do you write its title in japanese", YOTSUBA, "title_ja"),
    ])
    b.conv(en, "search_followups", [
        b.search("Uzumaki by Junji Ito, is that a book you stock", UZUMAKI, "Uzumaki"),
        b.fact("how many volumes is the whole thing", UZUMAKI, "volumes"),
        b.fact("its a horror story right?", UZUMAKI, "genres"),
        b.fact("could i order vol 2 right now or is it out", UZUMAKI, "stock"),
    ])
    # -- a direct question naming a work
    b.conv(en, "direct_entity", [
        b.fact("who's the artist behind slam dunk", SLAM_DUNK, "author", followup=False, typed="slam dunk"),
        b.fact("how long did it run, volume-wise", SLAM_DUNK, "volumes"),
        b.fact("any in stock at the moment? want the whole set", SLAM_DUNK, "stock"),
    ])
    b.conv(en, "direct_entity", [
        b.fact("is sakamoto days over yet or is it still running in jump", SAKAMOTO, "status", followup=False,
               typed="sakamoto days"),
        b.fact("who is the author on this one", SAKAMOTO, "author"),
        b.fact("how much for one", SAKAMOTO, "price"),
    ])
    b.conv(en, "direct_entity", [
        b.fact("how many books are there in land of the lustrous total", LUSTROUS, "volumes", followup=False,
               typed="land of the lustrous"),
        b.fact("so it's complete then?", LUSTROUS, "status"),
        b.fact("whats the japanese title, i want to look it up", LUSTROUS, "title_ja"),
    ])
    # -- an author's works, with and without an ordinal follow-up
    b.conv(en, "author_request_ordinal", [
        b.author("i'm getting into shuzo oshimi, which of his books do you carry", OSHIMI, "shuzo oshimi"),
        b.ordinal("tell me a bit more about the 2nd one you listed", 2),
        b.ref_fact("has that one wrapped up or is it still being serialized", "status"),
    ])
    b.conv(en, "author_request_ordinal", [
        b.author("Show me everything you've got from Tsutomu Nihei please", NIHEI, "Tsutomu Nihei"),
        b.ordinal("the third one sounds cool, whats that", 3),
        b.ref_fact("how much does it go for", "price"),
    ])
    b.conv(en, "author_request", [
        b.author("which Hiroya Oku manga can I buy here", OKU, "Hiroya Oku"),
        b.chat("ok good to know, cheers"),
    ])
    # -- seeded recommendations, with and without an ordinal follow-up
    b.conv(en, "seeded_recommendation_ordinal", [
        b.rec("just finished dr stone and i need something with the same vibe", DR_STONE, "dr stone"),
        b.ordinal("ooh the first one, tell me more", 1, intent=("search", "recommend"), never=[DR_STONE]),
        b.ref_fact("whos the artist on that", "author", intent=("search", "recommend")),
    ])
    b.conv(en, "seeded_recommendation_ordinal", [
        b.rec("any recs for someone who really liked kaiju no 8", KAIJU8, "kaiju no 8"),
        b.ordinal("number two looks interesting", 2, intent=("search", "recommend"), never=[KAIJU8]),
        b.ref_fact("is that one finished or ongoing", "status", intent=("search", "recommend")),
    ])
    b.conv(en, "seeded_recommendation", [
        b.rec("my brother is obsessed with the seven deadly sins, what else could i get him", SEVEN_SINS,
              "the seven deadly sins"),
        b.rec("preferably something that's already finished, he hates waiting for new volumes", SEVEN_SINS, "",
              followup=True),
    ])
    # -- orders and their follow-ups
    b.order("u_ben", "MA-10005")
    b.conv(en, "orders", [
        b.orders_list("hey can you pull up my orders"),
        b.pick("whichever one is the most recent", "MA-10005", followup=True),
        b.order_static("has it left the warehouse yet", "MA-10005", "arrival", not_shipped_yet()),
        b.order_static("if i change my mind can i still cancel it", "MA-10005", "can_cancel",
                       can_cancel(b.order("u_ben", "MA-10005"))),
    ], "u_ben")
    b.order("u_chloe", "MA-10012")
    b.conv(en, "orders", [
        b.orders_list("i ordered a few things recently, whats their status"),
        b.pick("the fullmetal alchemist volume - where is it now?", "MA-10012", slots=("fullmetal alchemist",)),
        b.order_spec("got a tracking code for it", "MA-10012", "tracking"),
        b.order_spec("and roughly what day will it show up", "MA-10012", "arrival"),
    ], "u_chloe")
    b.conv(en, "orders", [
        b.orders_list("can u show me my order history"),
        b.pick("the 2nd one on that list", "MA-10006", followup=True),
        b.order_spec("when is that getting delivered", "MA-10006", "arrival"),
        b.order_static("too late to cancel it?", "MA-10006", "can_cancel", can_cancel(b.order("u_ben", "MA-10006")),
                       interrupt=False),
    ], "u_ben")
    # -- cancellation with confirmation
    b.conv(en, "cancellation", [
        b.orders_list("i need to look at an order i just placed"),
        b.pick("the one with three copies of one piece vol 1", "MA-10005", slots=("one piece",)),
        b.cancel_req("I ordered that by mistake, can you cancel it for me", "MA-10005"),
        b.yes_cancel("yes please", "MA-10005"),
    ], "u_ben")
    b.conv(en, "cancellation", [
        b.pick("hi, it's about my order with the promised neverland book in it", "MA-10011",
               slots=("the promised neverland",)),
        b.order_static("has it shipped or is it still being prepared", "MA-10011", "arrival", not_shipped_yet()),
        b.cancel_req("then please cancel it, i found it cheaper somewhere else", "MA-10011"),
        b.no_keep("hmm wait actually no, keep the order", "MA-10011"),
    ], "u_chloe")
    # -- a refused cancellation or a return
    b.conv(en, "order_refusal_or_return", [
        b.orders_list("hi, I have a problem with something I received"),
        b.return_req("the berserk volume that came recently has a bent cover, i want to send it back", "MA-10007",
                     followup=False, slots=("berserk",)),
        b.yes_return("yes go ahead", "MA-10007"),
    ], "u_ben")
    b.conv(en, "order_refusal_or_return", [
        b.order_spec("I want to return the one punch man volumes I bought", "MA-10009", "can_return", followup=False,
                     slots=("one punch man",), interrupt=False),
        b.t("why not?? they're still unread", followup=True, intent=["order", "faq"], interrupt=False,
            fact=POLICY["return_after_shipping"]["en"] + [r"window"], direct=True, fact_from="policy:returns_window"),
    ], "u_chloe")
    # -- store policies
    b.conv(en, "policy", [
        b.ship("do you guys send orders to the UK?", "United Kingdom", en, listed=True, aliases=("UK", "U.K.", "Britain")),
        b.ship("what about south africa", "South Africa", en, listed=False),
    ])
    b.conv(en, "policy", [
        b.pay("can i pay using rakuten pay", ("Rakuten Pay",), en, accepted=False),
        b.pay("ok what about mastercard then", ("Mastercard",), en, accepted=True),
        b.policy("is there a charge if i pay at a 7-eleven", "konbini_fee", en),
    ])
    b.conv(en, "policy", [
        b.policy("I'm in Osaka, how much is postage for a single volume", "domestic_fee", en),
        b.policy("and how long have i got to return stuff if i don't like it", "returns_window", en),
        b.policy("do you charge extra for delivery to okinawa", "remote_fee", en),
    ])
    # -- out of scope
    b.conv(en, "out_of_scope", [
        b.chat("yo! quick question"),
        b.oos("can you help me write a cover letter for a barista job"),
        b.chat("never mind then, thanks anyway"),
    ])
    b.conv(en, "out_of_scope", [
        b.oos("what's the fastest way to get from narita airport to shibuya"),
        b.oos("also how do i fix a leaky kitchen tap"),
        b.chat("ok ty bye"),
    ])
    # -- topic switches between works (and a policy / out-of-scope question in between)
    b.conv(en, "topic_switch", [
        b.search("got black butler? the one with the demon butler sebastian", BLACK_BUTLER, "black butler"),
        b.fact("who did the art", BLACK_BUTLER, "author"),
        b.ship("btw do you ship to vietnam", "Vietnam", en, listed=True),
        b.fact("cool. so how much is it per volume again", BLACK_BUTLER, "price"),
        b.fact("different thing, has banana fish ended?", BANANA_FISH, "status", followup=False, typed="banana fish",
               never=b.never_names(BLACK_BUTLER, BANANA_FISH)),
        b.fact("and who's the writer of that one", BANANA_FISH, "author", never=b.never_names(BLACK_BUTLER, BANANA_FISH)),
    ])
    b.conv(en, "topic_switch", [
        b.search("i want to read mushishi, do u have it", MUSHISHI, "mushishi"),
        b.fact("is it a long series", MUSHISHI, "volumes"),
        b.oos("random q but what year did the first iphone come out"),
        b.fact("sorry lol. is it in stock tho", MUSHISHI, "stock"),
        b.fact("oh and beastars, did that one end?", BEASTARS, "status", followup=False, typed="beastars",
               never=b.never_names(MUSHISHI, BEASTARS)),
        b.fact("give me the gist of the plot", BEASTARS, "about", never=b.never_names(MUSHISHI, BEASTARS)),
    ])
    # -- topic switches between a work and an order
    b.order("u_ben", "MA-10006")
    b.conv(en, "topic_switch_orders", [
        b.pick("where's the package with my death note volume", "MA-10006", slots=("death note",)),
        b.fact("oh and fire force - who made that one?", FIRE_FORCE, "author", followup=False, typed="fire force"),
        b.order_spec("anyway when's my parcel coming", "MA-10006", "arrival"),
        b.order_spec("can i get the tracking no. for it", "MA-10006", "tracking"),
    ], "u_ben")
    b.order("u_chloe", "MA-10013")
    b.conv(en, "topic_switch_orders", [
        b.fact("kakegurui - do you have any copies in stock right now?", KAKEGURUI, "stock", followup=False,
               typed="kakegurui"),
        b.order_spec("nice. separately, my hunter x hunter order, did it get delivered", "MA-10013", "arrival",
                     followup=False, slots=("hunter x hunter",)),
        b.order_spec("can i still send it back if the box got damaged", "MA-10013", "can_return",
                     intent=("order", "faq")),
        b.fact("ok going back to kakegurui, who's the author", KAKEGURUI, "author", followup=False, typed="kakegurui"),
    ], "u_chloe")

    # ================================================================ Japanese (guests, u_aiko, u_daichi)
    # -- search, then follow-up facts
    b.conv(ja, "search_followups", [
        b.search("薬屋のひとりごと、アニメ見てハマったので漫画版がほしいです", KUSURIYA, "薬屋のひとりごと"),
        b.fact("まだ続いてるんですか？", KUSURIYA, "status"),
        b.fact("1冊おいくら", KUSURIYA, "price"),
        b.fact("英語版だと何てタイトル？", KUSURIYA, "title_en"),
    ])
    b.conv(ja, "search_followups", [
        b.search("3月のライオン全巻そろえたいんだけど、扱ってる？", LION, "3月のライオン"),
        b.fact("将棋の漫画だよね？ジャンル的には何になるの", LION, "genres"),
        b.fact("在庫ありそう？", LION, "stock"),
        b.fact("完結はまだ？", LION, "status"),
    ])
    b.conv(ja, "search_followups", [
        b.search("東リベの漫画ってありますか、東京卍リベンジャーズです", TOKYO_REV, "東京卍リベンジャーズ"),
        b.fact("全部で何冊になる？", TOKYO_REV, "volumes"),
        b.fact("作者は和久井健さんで合ってる？", TOKYO_REV, "author"),
        b.fact("在庫少なめ？", TOKYO_REV, "stock"),
    ])
    b.conv(ja, "search_followups", [
        b.search("僕だけがいない街って漫画、まだ買えますか", ERASED, "僕だけがいない街"),
        b.fact("何巻で終わってる？", ERASED, "volumes"),
        b.fact("ジャンルはミステリーで合ってます？", ERASED, "genres"),
        b.fact("英題も教えてほしい", ERASED, "title_en"),
    ])
    b.conv(ja, "search_followups", [
        b.search("不滅のあなたへを読んでみたくて探してます", FUMETSU, "不滅のあなたへ"),
        b.fact("描いてるのって聲の形の人だっけ？", FUMETSU, "author"),
        b.fact("もう完結した？", FUMETSU, "status"),
        b.fact("値段は1冊いくら", FUMETSU, "price"),
    ])
    # -- a direct question naming a work
    b.conv(ja, "direct_entity", [
        b.fact("名探偵コナンの作者って青山剛昌だよね？", CONAN, "author", followup=False, typed="名探偵コナン"),
        b.fact("まだ連載つづいてる？", CONAN, "status"),
        b.fact("在庫ある？1巻から揃えたくて", CONAN, "stock"),
    ])
    b.conv(ja, "direct_entity", [
        b.fact("ちはやふるはもう最終巻まで出ましたか", CHIHAYA, "status", followup=False, typed="ちはやふる"),
        b.fact("巻数教えてください", CHIHAYA, "volumes"),
        b.fact("1冊の値段は？", CHIHAYA, "price"),
    ])
    b.conv(ja, "direct_entity", [
        b.fact("黒バス（黒子のバスケ）って何巻まであるんでしょうか", KUROKO, "volumes", followup=False,
               typed="黒子のバスケ"),
        b.fact("作者さんは誰でしたっけ", KUROKO, "author"),
        b.fact("スポーツ漫画っていう分類でいいんですよね", KUROKO, "genres"),
    ])
    # -- an author's works, with and without an ordinal follow-up
    b.conv(ja, "author_request_ordinal", [
        b.author("冨樫義博先生の漫画、何があります？", TOGASHI, "冨樫義博"),
        b.ordinal("3番目のってどんな作品？", 3),
        b.ref_fact("そっちは在庫どう？", "stock"),
    ])
    b.conv(ja, "author_request_ordinal", [
        b.author("高屋奈月さんの他の作品も読みたいです", TAKAYA, "高屋奈月"),
        b.ordinal_fact("2番目の作品は完結してますか", 2, "status"),
        b.ref_fact("値段も知りたい", "price"),
    ])
    b.conv(ja, "author_request", [
        b.author("東村アキコの本、なにがありますか", HIGASHIMURA, "東村アキコ"),
        b.chat("ありがとうございます、ちょっと考えます"),
    ])
    # -- seeded recommendations, with and without an ordinal follow-up
    b.conv(ja, "seeded_recommendation_ordinal", [
        b.rec("四月は君の嘘で号泣したので、同じくらい泣ける漫画ないですか", SHIGATSU, "四月は君の嘘"),
        b.ordinal("1番目のやつ気になる", 1, intent=("search", "recommend"), never=[SHIGATSU]),
        b.ref_fact("もう完結してる作品？", "status", intent=("search", "recommend")),
    ])
    b.conv(ja, "seeded_recommendation_ordinal", [
        b.rec("転スラみたいな異世界ものでおすすめある？転生したらスライムだった件ね", TENSURA, "転生したらスライムだった件"),
        b.ordinal("2個目のは？", 2, intent=("search", "recommend"), never=[TENSURA]),
        b.ref_fact("1冊あたりいくら？", "price", intent=("search", "recommend")),
    ])
    b.conv(ja, "seeded_recommendation", [
        b.rec("文ストが好きな人に合いそうな漫画を教えてください（文豪ストレイドッグスです）", BUNSTO, "文豪ストレイドッグス"),
        b.rec("できれば完結してるのがいいな", BUNSTO, "", followup=True),
    ])
    # -- orders and their follow-ups
    b.conv(ja, "orders", [
        b.orders_list("注文したやつ、一覧で見れますか"),
        b.pick("一番最近のを詳しく", "MA-10003", followup=True),
        b.order_static("これもう発送された？", "MA-10003", "arrival", not_shipped_yet()),
        b.order_static("キャンセルってまだ間に合う？", "MA-10003", "can_cancel", can_cancel(b.order("u_aiko", "MA-10003"))),
    ], "u_aiko")
    b.order("u_daichi", "MA-10014")
    b.conv(ja, "orders", [
        b.orders_list("自分の注文、今どんな感じですか"),
        b.pick("上から2つ目", "MA-10014", followup=True),
        b.order_spec("追跡番号って出てます？", "MA-10014", "tracking"),
        b.order_spec("何日に届く予定？", "MA-10014", "arrival"),
    ], "u_daichi")
    b.order("u_aiko", "MA-10004")
    b.conv(ja, "orders", [
        b.orders_list("注文履歴見たいです"),
        b.pick("BLEACHの1巻を買ったときの注文", "MA-10004", slots=("BLEACH",)),
        b.order_spec("これっていつ届いたんだっけ", "MA-10004", "arrival"),
        b.order_spec("返品ってまだできる？", "MA-10004", "can_return", interrupt=False),
    ], "u_aiko")
    # -- cancellation with confirmation
    b.order("u_daichi", "MA-10016")
    b.conv(ja, "cancellation", [
        b.orders_list("注文の件でちょっと相談です"),
        b.cancel_req("さっき注文したホリミヤ、やっぱりキャンセルしたい", "MA-10016", followup=False, slots=("ホリミヤ",)),
        b.yes_cancel("はい、取り消しでお願いします", "MA-10016"),
    ], "u_daichi")
    b.conv(ja, "cancellation", [
        b.pick("聲の形とMONSTERと鬼滅をまとめて頼んだ注文があると思うんですが", "MA-10003",
               slots=("聲の形", "MONSTER", "鬼滅")),
        b.cancel_req("まだ発送前なら取り消してもらえますか", "MA-10003"),
        b.no_keep("うーん、やっぱりそのままでいいです", "MA-10003"),
    ], "u_aiko")
    # -- a refused cancellation or a return
    b.order("u_daichi", "MA-10014")
    b.conv(ja, "order_refusal_or_return", [
        b.order_static("20世紀少年の6巻の注文、キャンセルしたいです", "MA-10014", "can_cancel",
                       can_cancel(b.order("u_daichi", "MA-10014")), followup=False, slots=("20世紀少年",),
                       interrupt=False),
        b.t("じゃあ届いてから返品すればいい？", followup=True, direct=True, fact_from="policy:returns_window",
            intent=["order", "faq"], interrupt=False, fact=POLICY["return_after_shipping"]["ja"] + [r"30 ?days"]),
    ], "u_daichi")
    b.order("u_aiko", "MA-10001")
    b.conv(ja, "order_refusal_or_return", [
        b.return_req("ヒロアカとSPY×FAMILYが入ってた注文、SPY×FAMILYが思ってたのと違ったので返品したい", "MA-10001",
                     followup=False, slots=("ヒロアカ", "SPY×FAMILY")),
        b.yes_return("はい、お願いします", "MA-10001"),
    ], "u_aiko")
    # -- store policies
    b.conv(ja, "policy", [
        b.ship("イギリスに住んでるんですけど、発送してもらえますか", "イギリス", ja, listed=True),
        b.ship("南アフリカの友達にも送りたいんだけど無理？", "南アフリカ", ja, listed=False),
    ])
    b.conv(ja, "policy", [
        b.pay("楽天ペイで支払いたいんですけど対応してます？", ("楽天ペイ",), ja, accepted=False),
        b.pay("代引きはどう？", ("代金引換", "代引き"), ja, accepted=False),
        b.pay("じゃあPayPayは？", ("PayPay",), ja, accepted=True),
    ])
    b.conv(ja, "policy", [
        b.policy("送料っていくらかかりますか？本州です", "domestic_fee", ja),
        b.policy("何円以上買ったら無料になります？", "free_threshold", ja),
        b.policy("お急ぎ便にするといくら？", "express_fee", ja),
    ])
    # -- out of scope
    b.conv(ja, "out_of_scope", [
        b.chat("どうもー、ちょっと聞きたいんだけど"),
        b.oos("新宿でおすすめの居酒屋ってある？"),
        b.chat("そっか、ありがとね"),
    ])
    b.conv(ja, "out_of_scope", [
        b.oos("確定申告のやり方を教えてほしい"),
        b.oos("あと、今年の紅白の司会って誰？"),
        b.chat("了解、また来ます"),
    ])
    # -- topic switches between works (and a policy / out-of-scope question in between)
    b.conv(ja, "topic_switch", [
        b.search("北斗の拳って今でも買えるんですか", HOKUTO, "北斗の拳"),
        b.fact("原作者は誰でしたっけ", HOKUTO, "author"),
        b.policy("ちなみに返品って何日までならOK？", "returns_window", ja),
        b.fact("了解です。で、さっきのは1冊いくら？", HOKUTO, "price"),
        b.fact("話は変わるんですが、犬夜叉は何巻で完結してますか", INUYASHA, "volumes", followup=False, typed="犬夜叉",
               never=b.never_names(HOKUTO, INUYASHA)),
        b.fact("在庫はあります？", INUYASHA, "stock", never=b.never_names(HOKUTO, INUYASHA)),
    ])
    b.conv(ja, "topic_switch", [
        b.search("魔法使いの嫁の漫画を探してます！", MAHOYOME, "魔法使いの嫁"),
        b.fact("ジャンルってファンタジー？", MAHOYOME, "genres"),
        b.oos("関係ないけど、今日の円相場ってわかる？"),
        b.fact("ごめん、話戻すね。この作品って完結してる？", MAHOYOME, "status"),
        b.fact("あと君に届けって何巻まである？", KIMITODO, "volumes", followup=False, typed="君に届け",
               never=b.never_names(MAHOYOME, KIMITODO)),
        b.fact("値段も教えて", KIMITODO, "price", never=b.never_names(MAHOYOME, KIMITODO)),
    ])
    # -- topic switches between a work and an order
    b.order("u_aiko", "MA-10002")
    b.conv(ja, "topic_switch_orders", [
        b.order_spec("進撃の巨人の23巻、2冊頼んだんですがいつ着きます？", "MA-10002", "arrival", followup=False,
                     slots=("進撃の巨人",)),
        b.fact("それと、乙嫁語りも一緒に買いたいんだけど在庫ある？", OTOYOME, "stock", followup=False, typed="乙嫁語り"),
        b.order_spec("さっきの注文の追跡番号も教えてください", "MA-10002", "tracking"),
        b.fact("乙嫁語りは1冊いくらになりますか", OTOYOME, "price", followup=False, typed="乙嫁語り"),
    ], "u_aiko")
    b.order("u_daichi", "MA-10015")
    b.conv(ja, "topic_switch_orders", [
        b.search("金田一少年の事件簿って売ってる？", KINDAICHI, "金田一少年の事件簿"),
        b.fact("今在庫あるか見てもらえます？", KINDAICHI, "stock"),
        b.order_spec("そういえば、ちょっと前に頼んだかぐや様の注文ってもう届いてます？", "MA-10015", "arrival",
                     followup=False, slots=("かぐや様",)),
        b.order_spec("それ、返品できたりする？", "MA-10015", "can_return", intent=("order", "faq")),
        b.fact("で、金田一は最終的に何巻までいったの？", KINDAICHI, "volumes", followup=False, typed="金田一"),
    ], "u_daichi")
    return b.convs


# ----------------------------------------------------------------------------------------------- checks
def used_entities() -> tuple[set[int], set[str], str]:
    """(mal_ids, author names, all turn texts) of dev.jsonl and test.jsonl: mal_ids in item / never checks and
    fact_from, the authors (romanised and Japanese) of those works, and the turn texts (lower-cased)."""
    from tools.backends.catalog import load_catalog

    c = load_catalog()
    ids: set[int] = set()
    texts: list[str] = []
    for split in ("dev", "test"):
        for line in (DATA_DIR / f"{split}.jsonl").open(encoding="utf-8"):
            conv = json.loads(line)
            for t in conv["turns"]:
                texts.append(t["text"])
                ch = t["checks"]
                it = ch.get("item")
                ids.update([it] if isinstance(it, int) else it if isinstance(it, list) else [])
                ids.update(x for x in ch.get("never", []) if isinstance(x, int))
                m = re.match(r"catalog:(\d+):", t.get("fact_from", ""))
                if m:
                    ids.add(int(m.group(1)))
    authors = {a for mid in ids if c.get(mid) for a in (*c.get(mid).authors, *c.get(mid).authors_ja)}
    return ids, authors, "\n".join(texts).lower()


def _record_renderings(it, field: str) -> list[str]:
    """The record's value for ``field`` as text (what a fact regex must match)."""
    ja = genre_ja()
    if field == "author":
        return [*it.authors, *it.authors_ja]
    if field == "volumes":
        return [str(it.num_volumes)]
    if field == "price":
        return [str(it.price_jpy), f"{it.price_jpy:,}"]
    if field == "stock":
        return ["in stock", "在庫あり"] if it.stock > 0 else ["out of stock", "在庫切れ"]
    if field == "status":
        return [it.status, {"Finished": "finished", "Publishing": "ongoing"}.get(it.status, it.status)]
    if field == "title_en":
        return [it.title_en]
    if field == "title_ja":
        return [it.title_ja]
    if field == "genres":
        return [*it.genres, *(ja[g] for g in it.genres if g in ja)]
    if field == "about":
        return [it.synopsis]
    raise ValueError(field)


def validate(convs: list[dict]) -> list[str]:
    """Problems with the written conversations (empty when valid): JSON shape, mal_ids in the catalog, orders of
    the conversation's user, check kinds, regexes compiling and matching the record / policy they came from,
    entities absent from dev/test."""
    from tools.backends.catalog import load_catalog
    from tools.backends.seed import build_seed

    c = load_catalog()
    seed = build_seed(catalog=c)
    owner = {o.order_id: o.user_id for o in seed.orders}
    orders = {o.order_id: o for o in seed.orders}
    policy_text = {lang: "\n".join(p.read_text(encoding="utf-8") for p in sorted((POLICY_DIR / lang).glob("*.md")))
                   for lang in ("en", "ja")}
    used_ids, used_authors, used_text = used_entities()
    problems: list[str] = []
    seen_ids = set()
    for conv in convs:
        cid, lang, user = conv["id"], conv["lang"], conv["user_id"]
        if cid in seen_ids:
            problems.append(f"{cid}: duplicate id")
        seen_ids.add(cid)
        if set(conv) != {"id", "lang", "user_id", "topic", "turns"} or lang not in ("en", "ja") or not conv["turns"]:
            problems.append(f"{cid}: bad conversation shape")
        for n, t in enumerate(conv["turns"], 1):
            where = f"{cid}#{n}"
            ch = t["checks"]
            if set(t) - {"text", "checks", "followup", "direct", "fact_from"}:
                problems.append(f"{where}: unknown turn keys {set(t)}")
            if set(ch) - set(CHECK_KINDS):
                problems.append(f"{where}: unknown check kinds {set(ch) - set(CHECK_KINDS)}")
            if not ch.get("intent") or ch.get("lang") != lang:
                problems.append(f"{where}: intent/lang missing")
            mids = []
            item = ch.get("item")
            if isinstance(item, int):
                mids.append(item)
            elif isinstance(item, list):
                mids += item
            mids += [x for x in ch.get("never", []) if isinstance(x, int)] + list(ch.get("only", []))
            for mid in mids:
                if c.get(mid) is None:
                    problems.append(f"{where}: mal_id {mid} not in the catalog")
            if "order" in ch and owner.get(ch["order"]) != user:
                problems.append(f"{where}: order {ch['order']} is not {user}'s")
            if t.get("direct") and "fact" not in ch:
                problems.append(f"{where}: direct turn without a fact")
            fact = ch.get("fact")
            src = t.get("fact_from", "")
            if isinstance(fact, dict):
                if "order" in fact and owner.get(fact["order"]) != user:
                    problems.append(f"{where}: fact order {fact['order']} is not {user}'s")
                if "ref_field" in fact and fact["ref_field"] not in ("author", "status", "price", "stock", "genres"):
                    problems.append(f"{where}: ref_field {fact['ref_field']} may be missing from a record")
                continue
            if fact is None:
                continue
            try:
                pats = [re.compile(p, re.IGNORECASE) for p in fact]
            except re.error as e:
                problems.append(f"{where}: regex does not compile: {e}")
                continue
            kind, _, rest = src.partition(":")
            if kind == "catalog":
                mid_s, field = rest.split(":")
                it = c.get(int(mid_s))
                if item != int(mid_s):
                    problems.append(f"{where}: fact_from {src} is not the item checked")
                if not any(p.search(v) for p in pats for v in _record_renderings(it, field) if v):
                    problems.append(f"{where}: fact does not match the record's {field}")
            elif kind == "policy":
                key = rest
                texts = [policy_text[lang]]
                if not any(p.search(x) for p in pats for x in texts):
                    problems.append(f"{where}: policy fact {key} does not match the {lang} policy")
            elif kind == "order":
                oid, field = rest.split(":")[0], rest.split(":")[1]
                o = orders[oid]
                if owner[oid] != user:
                    problems.append(f"{where}: fact order {oid} is not {user}'s")
                rendering = {"can_cancel": {"processing": "it can be cancelled", "shipped": "it can't be cancelled"},
                             "arrival": {"processing": "it is still processing"},
                             "cancelled": {"processing": "it has been cancelled"},
                             "kept": {"processing": "the order is unchanged"},
                             "returned": {"delivered": "the return was requested; refund"}}.get(field, {})
                text = rendering.get(o.status)
                if text is None or not any(p.search(text) for p in pats):
                    problems.append(f"{where}: static order fact {field} does not fit {oid} ({o.status})")
            else:
                problems.append(f"{where}: fact without a known fact_from ({src!r})")
            for x in ch.get("never", []):
                if isinstance(x, str) and not x:
                    problems.append(f"{where}: empty never string")
        # entities absent from dev/test
        for t in conv["turns"]:
            ch = t["checks"]
            item = ch.get("item")
            for mid in ([item] if isinstance(item, int) else item if isinstance(item, list) else []) + \
                       [x for x in ch.get("never", []) if isinstance(x, int)]:
                if isinstance(item, list) and mid in item:
                    continue  # an author's works: checked by author below
                if mid in used_ids:
                    problems.append(f"{cid}: mal_id {mid} is used in dev/test")
                it = c.get(mid)
                if any(a in used_authors for a in it.authors):
                    problems.append(f"{cid}: an author of {mid} is used in dev/test")
    for a in (OSHIMI, NIHEI, OKU, TOGASHI, TAKAYA, HIGASHIMURA):
        if a in used_authors or a.lower() in used_text:
            problems.append(f"author {a} is used in dev/test")
    return problems


def novelty(convs: list[dict], slots: dict[str, list[str]], threshold: int = 88) -> dict:
    """Compare every turn text (normalised: lower case, punctuation removed) with dev/test turn texts and every
    router utterance (train/dev/test): exact matches and rapidfuzz ``fuzz.ratio`` >= ``threshold``. The same
    with the entity surfaces replaced by a slot, against the router templates and the dev/test phrasing pools.
    Confirmations ("yes please", "はい、お願いします") may match. Returns the counts and the collisions."""
    from rapidfuzz import fuzz, process

    from tools.backends.router_data import build_dataset, load_templates

    allowed = {norm(x) for x in ("yes please", "yes go ahead", "はい、お願いします", "はい、取り消しでお願いします")}
    devtest = []
    for split in ("dev", "test"):
        for line in (DATA_DIR / f"{split}.jsonl").open(encoding="utf-8"):
            devtest += [t["text"] for t in json.loads(line)["turns"]]
    ds = build_dataset()
    router = [u.text for part in (ds.train, ds.dev, ds.test) for u in part]
    refs = {"dev/test turns": sorted({norm(x) for x in devtest}), "router utterances": sorted({norm(x) for x in router})}

    def slotted(s: str) -> str:
        return norm(re.sub(r"\{[a-z_0-9]+\}", " xslotx ", s))

    def pool_phr(p) -> list[str]:
        if isinstance(p, str):
            return [p]
        if isinstance(p, dict):
            return [x for v in p.values() for x in pool_phr(v)]
        if isinstance(p, (list, tuple)):
            return [x for v in p for x in pool_phr(v)]
        return []

    slot_refs = {"router templates": sorted({slotted(t.template) for t in load_templates()}),
                 "dev/test phrasings": sorted({slotted(p) for p in pool_phr(DEVTEST_POOLS)})}
    texts = [t["text"] for c in convs for t in c["turns"]]
    out: dict = {"turns": len(texts), "distinct_texts": len(set(texts)), "threshold": threshold,
                 "exact": [], "fuzzy": [], "allowed_matches": []}
    for text in sorted(set(texts)):
        n = norm(text)
        cands = [(n, refs)]
        if text in slots:
            s = text
            for name in sorted(slots[text], key=len, reverse=True):
                s = re.sub(re.escape(name), "{x}", s, flags=re.IGNORECASE)
            cands.append((slotted(s), slot_refs))
        for q, pools in cands:
            for pool_name, pool in pools.items():
                hit = process.extractOne(q, pool, scorer=fuzz.ratio, score_cutoff=threshold)
                if hit is None:
                    continue
                rec = {"text": text, "query": q, "against": pool_name, "match": hit[0], "score": round(hit[1], 1)}
                if n in allowed:
                    out["allowed_matches"].append(rec)
                elif hit[1] >= 100:
                    out["exact"].append(rec)
                else:
                    out["fuzzy"].append(rec)
    return out


def summary(convs: list[dict]) -> dict:
    turns = [(c, t) for c in convs for t in c["turns"]]
    return {"conversations": len(convs), "turns": len(turns),
            "en_conversations": sum(c["lang"] == "en" for c in convs),
            "ja_conversations": sum(c["lang"] == "ja" for c in convs),
            "en_turns": sum(c["lang"] == "en" for c, _ in turns), "ja_turns": sum(c["lang"] == "ja" for c, _ in turns),
            "followup_turns": sum(bool(t.get("followup")) for _, t in turns),
            "direct_turns": sum(bool(t.get("direct")) for _, t in turns),
            "topics": dict(Counter(c["topic"] for c in convs)),
            "turns_per_topic": dict(Counter(c["topic"] for c, _ in turns)),
            "check_kinds": dict(Counter(k for _, t in turns for k in t["checks"]))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--novelty", action="store_true", help="also run the novelty check (builds the router dataset)")
    args = ap.parse_args()
    from tools.backends.catalog import load_catalog
    from tools.backends.seed import build_seed

    catalog = load_catalog()
    b = B(catalog, build_seed(catalog=catalog))
    convs = conversations(b)
    problems = validate(convs)
    for p in problems:
        print("INVALID:", p)
    if problems:
        raise SystemExit(1)
    with OUT.open("w", encoding="utf-8") as f:
        for conv in convs:
            f.write(json.dumps(conv, ensure_ascii=False) + "\n")
    print(json.dumps(summary(convs), ensure_ascii=False, indent=1))
    if args.novelty:
        res = novelty(convs, b.slots)
        print(json.dumps({k: v for k, v in res.items() if k not in ("exact", "fuzzy", "allowed_matches")}))
        for kind in ("exact", "fuzzy", "allowed_matches"):
            print(f"{kind}: {len(res[kind])}")
            for r in res[kind]:
                print("  ", json.dumps(r, ensure_ascii=False))
        if res["exact"] or res["fuzzy"]:
            raise SystemExit(2)


if __name__ == "__main__":
    main()
