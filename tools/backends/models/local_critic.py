"""The local profile's critic: explicit checks of evidence (reflect) and of the final answer (quality gate).

The quality gate (``LocalCritic.acritique``) is a list of deterministic rules. A draft passes only when
every fact of these kinds that it states occurs in the evidence (the tool artifacts of this turn, which
are scoped to the authenticated customer, so anything of another customer is never in them):

- prices, in every written form: ``¥1,200``, ``￥1200``, ``1,200円``, ``1,200 円``, ``JPY 1200``,
  ``1200 yen``, ``1万2,000円``, ``5千円`` (full-width digits too; NFKC). Evidence prices are the ``*_jpy``
  fields, order-line totals (unit price x quantity) and their sums per order, and prices written in
  evidence text (policy passages);
- titles: catalog titles named in the draft (``TitleLexicon``, case-sensitive, word-bounded), titles in
  『』 brackets, and the title a volume is attached to (``Volume 3 of X``, ``X vol 3``, ``X 3巻``);
- volume numbers (``vol 3``, ``volume 3``, ``3巻``, ``第3巻``, ``24 volumes``, ``全24巻``): the number is a
  volume or volume count in the evidence, and a volume attached to an evidence title is one the evidence
  attaches to that title (the searched volume, an ordered volume);
- dates (``2025-06-01``, ``2025/6/1``, ``2025年6月1日``, ``6月1日``, ``June 1, 2025``, ``1 June``);
- identifiers and personal data: order ids (``MA-10001``), escalation tickets (``ESC-…``), return ids
  (``RT-…``), tracking numbers, e-mail addresses, phone numbers, postal codes, street addresses and
  names written with an honorific (``Mr. X``, ``Dear X``, ``X様``, ``Xさん``).

Relative dates ("tomorrow"), prices in words and names without an honorific are not recognised.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from decimal import Decimal
from functools import cached_property, lru_cache
from typing import Any, Callable

from core.lang import detect_locale
from core.ports import Critique

_JA_CHAR = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def _eligible(orders: list[dict], action: str) -> list[dict]:
    want = {"cancel": "processing", "return": "delivered"}.get(action)
    return [o for o in orders if o.get("status") == want]


# ---- text helpers -------------------------------------------------------------------------------------


def _nfkc(text: str) -> str:
    """NFKC: full-width digits and letters to ASCII, ￥ to ¥, ideographic space to space."""
    return unicodedata.normalize("NFKC", text)


_NON_WORD = re.compile(r"[^\w]+")


@lru_cache(maxsize=65536)
def fold(text: str) -> str:
    """Comparison form: NFKC, case-folded, every run of non-word characters one space, stripped."""
    return _NON_WORD.sub(" ", _nfkc(text).casefold()).strip()


def _strings(value: Any) -> Iterator[str]:
    """Every string (and number, as text) inside nested dicts/lists."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, (int, float)):
        yield str(value)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def _dicts(value: Any) -> Iterator[dict]:
    """Every dict inside nested dicts/lists (the value itself first)."""
    if isinstance(value, dict):
        yield value
        for v in value.values():
            yield from _dicts(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _dicts(v)


def _mask(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """``text`` with the given spans replaced by spaces (same length, so later offsets stay valid)."""
    spans = list(spans)
    if not spans:
        return text
    chars = list(text)
    for a, b in spans:
        chars[a:b] = " " * (b - a)
    return "".join(chars)


# ---- prices ---------------------------------------------------------------------------------------------

_NUM = r"\d{1,3}(?:,\d{3})+|\d+"
_PRICE_PATTERNS = (
    # 1万2,000円 / 1.2万円 / 1万2千円 (kanji multipliers)
    ("man", re.compile(rf"(\d+(?:\.\d+)?)\s?万\s?(?:(\d+)\s?千|({_NUM}))?\s?円")),
    ("sen", re.compile(r"(\d+(?:\.\d+)?)\s?千\s?円")),
    ("yen_sign", re.compile(rf"¥\s?({_NUM})(?:\.(\d+))?")),
    ("jpy_prefix", re.compile(rf"\bJPY\s?({_NUM})(?:\.(\d+))?", re.I)),
    ("suffix", re.compile(rf"(?<![\d.,])({_NUM})(?:\.(\d+))?\s?(?:円|(?:yen|JPY)\b)", re.I)),
)


def _price_value(kind: str, m: re.Match) -> Decimal:
    if kind == "man":
        v = Decimal(m.group(1)) * 10000
        if m.group(2):
            v += Decimal(m.group(2)) * 1000
        elif m.group(3):
            v += Decimal(m.group(3).replace(",", ""))
        return v
    if kind == "sen":
        return Decimal(m.group(1)) * 1000
    whole = Decimal(m.group(1).replace(",", ""))
    return whole + (Decimal(f"0.{m.group(2)}") if m.group(2) else 0)


def find_prices(text: str) -> list[tuple[str, Decimal, tuple[int, int]]]:
    """Prices written in ``text`` (any form, see the module docstring) → [(as written, JPY value, span)]."""
    text = _nfkc(text)
    out: list[tuple[str, Decimal, tuple[int, int]]] = []
    for kind, pat in _PRICE_PATTERNS:
        found = list(pat.finditer(text))
        out += [(m.group(0).strip(), _price_value(kind, m), m.span()) for m in found]
        text = _mask(text, [m.span() for m in found])
    return out


def _evidence_prices(evidence: list[dict], text: str) -> set[Decimal]:
    prices: set[Decimal] = set()
    for d in _dicts(evidence):
        for k, v in d.items():
            if k.endswith("_jpy") and isinstance(v, (int, float)) and not isinstance(v, bool):
                prices.add(Decimal(str(v)))
        lines = [i for i in d.get("items") or [] if isinstance(i, dict) and "unit_price_jpy" in i]
        totals = [Decimal(int(i["unit_price_jpy"]) * int(i.get("quantity") or 1)) for i in lines]
        prices.update(totals)
        if totals:
            prices.add(sum(totals, Decimal(0)))
    prices.update(v for _w, v, _s in find_prices(text))
    return prices


# ---- dates ----------------------------------------------------------------------------------------------

_MONTHS = {m: i for i, names in enumerate(
    (("Jan", "January"), ("Feb", "February"), ("Mar", "March"), ("Apr", "April"), ("May",), ("Jun", "June"),
     ("Jul", "July"), ("Aug", "August"), ("Sep", "Sept", "September"), ("Oct", "October"), ("Nov", "November"),
     ("Dec", "December")), start=1) for m in names}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATE_PATTERNS = (
    ("ymd", re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")),
    ("ymd", re.compile(r"(?<!\d)(\d{4})/(\d{1,2})/(\d{1,2})(?!\d)")),
    ("ymd", re.compile(r"(?:(\d{4})\s?年\s?)?(\d{1,2})\s?月\s?(\d{1,2})\s?日")),
    ("mdy", re.compile(rf"\b({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(\d{{4}})\b)?")),
    ("dmy", re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTH})\b\.?(?:,?\s+(\d{{4}})\b)?")),
)


def find_dates(text: str) -> list[tuple[str, tuple[int | None, int, int], tuple[int, int]]]:
    """Calendar dates written in ``text`` → [(as written, (year or None, month, day), span)]."""
    text = _nfkc(text)
    out = []
    for kind, pat in _DATE_PATTERNS:
        spans = []
        for m in pat.finditer(text):
            if kind == "ymd":
                y, mo, d = (int(m.group(1)) if m.group(1) else None), int(m.group(2)), int(m.group(3))
            elif kind == "mdy":
                y, mo, d = (int(m.group(3)) if m.group(3) else None), _MONTHS[m.group(1)], int(m.group(2))
            else:
                y, mo, d = (int(m.group(3)) if m.group(3) else None), _MONTHS[m.group(2)], int(m.group(1))
            if 1 <= mo <= 12 and 1 <= d <= 31 and (y is None or 1900 <= y <= 2200):
                out.append((m.group(0).strip(), (y, mo, d), m.span()))
                spans.append(m.span())
        text = _mask(text, spans)
    return out


# ---- identifiers and personal data ----------------------------------------------------------------------

_IDENTIFIERS = (
    ("order", re.compile(r"(?<![\w-])([A-Za-z]{2}-\d{3,10})(?![\w-])")),
    ("ticket", re.compile(r"(?<![\w-])(ESC-[0-9A-Fa-f]{6,})(?![\w-])", re.I)),
    ("return", re.compile(r"(?<![\w-])(RT-[0-9A-Fa-f]{6,})(?![\w-])", re.I)),
    ("tracking number", re.compile(r"(?<![\w-])(\d{4}-\d{4}-\d{4}|[A-Z]{2}\d{9}[A-Z]{2})(?![\w-])")),
    ("email", re.compile(r"(?<![\w.+-])([\w.+-]+@[\w-]+(?:\.[\w-]+)+)")),
    ("postal code", re.compile(r"〒\s?(\d{3}-?\d{4})|(?<![\d-])(\d{3}-\d{4})(?![\d-])")),
    ("phone", re.compile(r"(?<![\w+])((?:\+\d{1,3}[\s-]?)?(?:\(\d{1,4}\)[\s-]?)?\d{1,4}(?:[\s-]\d{1,4}){1,4})(?![\w-])")),
    ("address", re.compile(
        r"([一-龥]{1,3}[都道府県][一-龥ぁ-んァ-ヴー]{1,6}?[市区町村郡][一-龥ぁ-んァ-ヴー\d-]*|\d+丁目(?:\d+番(?:地)?)?(?:\d+号)?"
        r"|\b\d{1,5} (?:[A-Z][a-z]+ ){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Way|Court|Ct)\b)")),
    ("name", re.compile(
        r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr)\.? ([A-Z][a-z]+(?: [A-Z][a-z]+)?)|\bDear ([A-Z][a-z]+(?: [A-Z][a-z]+)?)"
        r"|\b([A-Z][a-z]+)-san\b|([一-龥]{1,4}(?: [一-龥]{1,4})?|[ァ-ヴー]{2,10})(?:様|さま|さん|殿)")),
)
_NOT_NAMES = {"customer", "customers", "sir", "madam", "reader", "valued", "客", "皆", "各位", "担当", "担当者", "皆様",
              "神", "王", "奥", "旦那", "先生"}


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s)


def find_identifiers(text: str) -> list[tuple[str, str]]:
    """Identifiers and personal data in ``text`` → [(kind, as written)] (kinds: order, ticket, return,
    tracking number, email, postal code, phone, address, name). Phones need 10+ digits; dates and prices
    are not read as phone numbers."""
    text = _nfkc(text)
    text = _mask(text, [s for _w, _v, s in find_dates(text)] + [s for _w, _v, s in find_prices(text)])
    out: list[tuple[str, str]] = []
    for kind, pat in _IDENTIFIERS:
        spans = []
        for m in pat.finditer(text):
            value = next(g for g in m.groups() if g)
            if kind == "phone" and not (len(_digits(value)) >= 10 and value.lstrip("(")[:1] in "0+"):
                continue
            if kind == "name" and fold(value) in _NOT_NAMES:
                continue
            out.append((kind, value.strip()))
            spans.append(m.span())
        text = _mask(text, spans)
    return out


# ---- volumes --------------------------------------------------------------------------------------------

# On folded text (lower case, punctuation as spaces).
_VOL_OF = re.compile(r"\bvolume (\d+) of ")
_VOL_AFTER_TITLE = re.compile(r"\b(?:vol|vols|volume|volumes) ?(\d+)\b")
_VOL_COUNT = re.compile(r"(?<!\d)(\d+) ?(?:volumes?|vols?)\b")
_VOL_JA = re.compile(r"(全 ?)?(第 ?)?(\d+) ?巻")


def find_volumes(folded: str) -> list[tuple[int, str, int]]:
    """Volume numbers in folded text → [(number, role, offset)]; role ``of`` (``volume 3 of X``: the title
    follows), ``after`` (``X vol 3`` / ``X 3巻``: the title precedes; offset = where the marker starts) or
    ``count`` (``24 volumes`` / ``全24巻``)."""
    out: list[tuple[int, str, int]] = []
    taken: list[tuple[int, int]] = []
    for m in _VOL_OF.finditer(folded):
        out.append((int(m.group(1)), "of", m.end()))
        taken.append(m.span())
    for m in _VOL_COUNT.finditer(folded):
        if not any(a <= m.start() < b for a, b in taken):
            out.append((int(m.group(1)), "count", m.start()))
            taken.append(m.span())
    for m in _VOL_AFTER_TITLE.finditer(folded):
        if not any(a <= m.start() < b for a, b in taken):
            out.append((int(m.group(1)), "after", m.start()))
    for m in _VOL_JA.finditer(folded):
        out.append((int(m.group(3)), "count" if m.group(1) else "after", m.start()))
    return out


# ---- titles ---------------------------------------------------------------------------------------------

_WORD_EDGE = re.compile(r"[A-Za-z0-9]")
_ALNUM_RUN = re.compile(r"[A-Za-z0-9]+")
_LOWER_WORD = re.compile(r"\b[a-z]+\b")


class TitleLexicon:
    """Catalog title forms the gate recognises in free text (case-sensitive, NFKC, word-bounded).

    Kept forms: at least 3 characters with a letter; Latin-script forms need an upper-case letter, and a
    one-word Latin form is dropped when it is an ordinary English word (written in lower case 3+ times
    across the catalog's synopses: "Monster", "Hello", "Stock"). ``find(text)`` → [(form, start, end)].
    """

    def __init__(self, forms: Iterable[str], common_words: set[str] | frozenset[str] = frozenset()):
        by_key: dict[str, set[str]] = {}
        for raw in forms:
            f = _nfkc(raw or "").strip()
            if len(f.replace(" ", "")) < 3 or not any(c.isalpha() for c in f):
                continue
            if f.isascii():
                if not any(c.isupper() for c in f):
                    continue
                if " " not in f and f.lower() in common_words:
                    continue
            by_key.setdefault(self._key(f, 0), set()).add(f)
        self._by_key = {k: sorted(fs, key=len, reverse=True) for k, fs in by_key.items()}

    @staticmethod
    def _key(text: str, i: int) -> str:
        """Lookup key at ``text[i]``: the run of ASCII letters/digits starting there, else two characters."""
        m = _ALNUM_RUN.match(text, i)
        return m.group(0) if m else text[i:i + 2]

    @classmethod
    def from_catalog(cls, catalog: Any) -> TitleLexicon:
        """Every title, English title, Japanese title and synonym of ``catalog.items``."""
        forms: list[str] = []
        lower: Counter[str] = Counter()
        for it in catalog.items:
            forms += [it.title, it.title_en or "", it.title_ja or "", *(it.synonyms or ())]
            lower.update(_LOWER_WORD.findall(it.synopsis or ""))
        return cls(forms, {w for w, n in lower.items() if n >= 3})

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_key.values())

    def find(self, text: str) -> list[tuple[str, int, int]]:
        """Catalog title forms in ``text`` (NFKC), longest first, not overlapping → [(form, start, end)]."""
        text = _nfkc(text)
        hits = []
        i, n = 0, len(text)
        while i < n:
            if i > 0 and _WORD_EDGE.match(text[i]) and _WORD_EDGE.match(text[i - 1]):
                i += 1  # inside a word: Latin forms start at word starts
                continue
            for f in self._by_key.get(self._key(text, i), ()):
                end = i + len(f)
                if not text.startswith(f, i) or (_WORD_EDGE.match(f[-1]) and end < n and _WORD_EDGE.match(text[end])):
                    continue
                hits.append((f, i, end))
                i = end - 1  # skip what the longest form covers
                break
            i += 1
        return hits


@lru_cache(maxsize=2)
def _catalog_lexicon(catalog: Any) -> TitleLexicon:
    return TitleLexicon.from_catalog(catalog)


_JA_TITLE_BRACKETS = re.compile(r"『([^』]{1,80})』")


class _Evidence:
    """What the gate compares a draft with, read from the evidence artifacts on first use (a draft without
    dates never has the evidence's dates parsed)."""

    def __init__(self, evidence: list[dict]):
        self.evidence = evidence
        self.texts = [_nfkc(s) for s in _strings(evidence)]
        self.joined = "\x00".join(self.texts)  # no pattern matches across the separator
        self.folded = "\x00".join(fold(t) for t in self.texts)

    @cached_property
    def prices(self) -> set[Decimal]:
        return _evidence_prices(self.evidence, self.joined)

    @cached_property
    def dates(self) -> set[tuple[int | None, int, int]]:
        return {v for _w, v, _s in find_dates(self.joined)}

    @cached_property
    def ids(self) -> dict[str, set[str]]:
        ids: dict[str, set[str]] = {}
        for kind, value in find_identifiers(self.joined):
            ids.setdefault(kind, set()).add(self._id_key(kind, value))
        return ids

    @cached_property
    def _volume_facts(self) -> tuple[set[int], dict[str, set[int]], set[str]]:
        volumes = {n for n, _r, _o in find_volumes(self.folded)}
        bound: dict[str, set[int]] = {}  # folded title form → volumes the evidence attaches to it
        titles: set[str] = set()
        for d in _dicts(self.evidence):
            forms = self._forms(d)
            titles.update(forms)
            for k in ("volume", "num_volumes"):
                if isinstance(d.get(k), int) and not isinstance(d.get(k), bool):
                    volumes.add(d[k])
            if d.get("kind") == "search" and isinstance(d.get("volume"), int):
                for it in d.get("items") or []:
                    for f in self._forms(it):
                        bound.setdefault(f, set()).add(d["volume"])
            if isinstance(d.get("volume"), int) and ("unit_price_jpy" in d or "error" in d):  # an order/cart line, a tool error
                for f in forms:
                    bound.setdefault(f, set()).add(d["volume"])
        return volumes, bound, titles

    @property
    def volumes(self) -> set[int]:
        """Volume numbers and volume counts the evidence states."""
        return self._volume_facts[0]

    @property
    def bound(self) -> dict[str, set[int]]:
        """Folded title form → the volumes the evidence attaches to that title (searched, ordered)."""
        return self._volume_facts[1]

    @property
    def titles(self) -> set[str]:
        """Folded title forms of every item, order line and seed in the evidence."""
        return self._volume_facts[2]

    @staticmethod
    def _forms(d: dict) -> list[str]:
        forms = [d.get("title"), d.get("title_en"), d.get("title_ja"), *(d.get("synonyms") or [])]
        return [f for f in (fold(x) for x in forms if isinstance(x, str)) if f]

    @staticmethod
    def _id_key(kind: str, value: str) -> str:
        if kind in ("phone", "postal code", "tracking number"):
            return _digits(value) or value.upper()
        if kind in ("order", "ticket", "return"):
            return value.upper()
        return fold(value)

    def has_id(self, kind: str, value: str) -> bool:
        key = self._id_key(kind, value)
        if key in self.ids.get(kind, set()):
            return True
        if kind in ("address", "name", "email"):
            return bool(key) and key in self.folded
        return False

    def grounded(self, text: str) -> bool:
        f = fold(text)
        return bool(f) and f in self.folded


# ---- reflect: one evidence rule per agent ---------------------------------------------------------------


def _kinds(evidence: list[dict]) -> set:
    return {e.get("kind") for e in evidence}


def review_search(request: str, evidence: list[dict]) -> Critique | None:
    """Search agent: ``broaden`` when the catalog search found nothing; ``details:<mal_id>`` when a synopsis or
    genres question found its one title (the answer needs that title's details). None: the results answer."""
    kinds = _kinds(evidence)
    if "search" in kinds and not any(e.get("items") for e in evidence if e.get("kind") == "search"):
        return Critique(ok=False, problems=["no catalog match"], retry_instructions="broaden")
    if kinds == {"search"}:
        from tools.backends.models.followups import direct_fact

        found = [it for e in evidence for it in e.get("items") or []]
        if len(found) == 1 and direct_fact(request) in ("synopsis", "genres"):  # "what is X about?"
            return Critique(ok=False, problems=["the answer needs the title's details"],
                            retry_instructions=f"details:{found[0]['mal_id']}")
    return None


def review_recommend(request: str, evidence: list[dict]) -> Critique | None:
    """Recommendation agent: ``drop_seeds`` when the recommender returned no picks. None otherwise."""
    if "recommend" in _kinds(evidence) and not any(e.get("items") for e in evidence):
        return Critique(ok=False, problems=["no picks"], retry_instructions="drop_seeds")
    return None


def review_order(request: str, evidence: list[dict]) -> Critique | None:
    """Order agent: a cancel/return request answered by the order list (no order id) retries with
    ``act:<action>:<order_id>`` when exactly one order is eligible, else passes with ``ask which:<action>`` (the
    answer asks which order). None otherwise (a question like "can I cancel it?" included)."""
    if _kinds(evidence) != {"orders"}:
        return None
    from tools.backends.models.followups import is_capability_question
    from tools.backends.models.text_rules import order_action  # local rules, same profile

    action = order_action(request)
    if action in ("cancel", "return") and not is_capability_question(request):  # "can I cancel it?" asks
        orders = [o for e in evidence for o in e.get("orders") or []]
        eligible = _eligible(orders, action)
        if len(eligible) == 1:
            return Critique(ok=False, problems=["order id missing; one eligible order"],
                            retry_instructions=f"act:{action}:{eligible[0]['order_id']}")
        return Critique(ok=True, problems=["order id missing"], retry_instructions=f"ask which:{action}")
    return None


REVIEW_RULES: dict[str, Callable[[str, list[dict]], Critique | None]] = {
    "search": review_search,
    "recommend": review_recommend,
    "order": review_order,
}
"""The local reflect rule of an agent, keyed by agent name: ``(request, evidence) -> Critique`` when its tool results
call for another think round (or a note for the writer), None when they answer. An agent without a rule (the
conversation agent) always passes reflect."""


class LocalCritic:
    """Rule critic. ``areview_evidence`` decides whether a specialist should think again (reflect);
    ``acritique`` checks an answer is grounded in the evidence and in the customer's language.

    ``catalog`` (``.items`` of CatalogItem; default: the shipped catalog, ``load_catalog()``) supplies the
    title forms the gate recognises in free text; ``lexicon`` overrides it (tests).
    """

    def __init__(self, catalog: Any | None = None, lexicon: TitleLexicon | None = None):
        if lexicon is None:
            if catalog is None:
                from tools.backends.catalog import load_catalog

                catalog = load_catalog()
            lexicon = _catalog_lexicon(catalog)
        self.lexicon = lexicon

    async def areview_evidence(self, agent: str, intent: str, request: str, evidence: list[dict]) -> Critique:
        """Critique the tool results of one think→execute round.

        Retry instructions understood by the local policies: ``broaden`` (search found nothing),
        ``details:<mal_id>`` (a synopsis/genres question found its one title: read its details),
        ``drop_seeds`` (recommend found nothing), ``act:<cancel|return>:<order_id>`` (one eligible order).
        The rule is the agent's own (REVIEW_RULES); ``intent`` is unused by the local rules.
        """
        rule = REVIEW_RULES.get(agent)
        critique = rule(request, evidence) if rule is not None else None
        return critique if critique is not None else Critique(ok=True)

    def check(self, answer: str, evidence: list[dict], locale: str) -> Critique:
        """The quality gate's rules (module docstring), synchronously; ``acritique`` awaits this.

        Returns Critique(ok, problems: one line per ungrounded fact, retry_instructions: what a rewrite
        must drop or correct, "" when ok). CPU only: ~1 ms for a few hundred characters.
        """
        ev = _Evidence(evidence)
        problems: list[str] = []
        fixes: list[str] = []

        def bad(problem: str, fix: str) -> None:
            if problem not in problems:
                problems.append(problem)
                fixes.append(fix)

        text = _nfkc(answer)
        for written, value, _span in find_prices(text):
            if value not in ev.prices:
                bad(f"price {written} not in evidence", f"drop or correct the price {written}")
        for written, (y, m, d), _span in find_dates(text):
            ok = (y, m, d) in ev.dates if y is not None else any((m, d) == (mo, da) for _y, mo, da in ev.dates)
            if not ok:
                bad(f"date {written} not in evidence", f"drop the date {written}")
        for kind, value in find_identifiers(text):
            if not ev.has_id(kind, value):
                bad(f"{kind} {value} not in evidence", f"remove the {kind} {value}: it is not this customer's")
        for form, _a, _b in self.lexicon.find(text):
            if not ev.grounded(form):
                bad(f"title {form} not in evidence", f"drop the title {form}")
        for m in _JA_TITLE_BRACKETS.finditer(text):
            if not ev.grounded(m.group(1)):
                bad(f"title 『{m.group(1)}』 not in evidence", f"drop the title 『{m.group(1)}』")
        folded = fold(text)
        for n, role, at in find_volumes(folded):
            if n not in ev.volumes:
                bad(f"volume {n} not in evidence", f"drop or correct volume {n}")
                continue
            if role == "count":
                continue
            title = self._adjacent_title(folded, at, role, ev.titles)
            if title is not None and n not in ev.bound.get(title, set()):
                bad(f"volume {n} of {title} not in evidence", f"drop or correct volume {n} of {title}")
        if locale == "ja" and detect_locale(answer) != "ja":
            bad("answer is not in Japanese", "answer in Japanese")
        if locale == "en":
            letters = [c for c in answer if c.isalpha()]
            if letters and sum(1 for c in letters if _JA_CHAR.match(c)) / len(letters) > 0.5:
                bad("answer is not in English", "answer in English")
        if not problems:
            return Critique(ok=True)
        return Critique(ok=False, problems=problems,
                        retry_instructions="Rewrite using only facts in the evidence: " + "; ".join(fixes) + ".")

    @staticmethod
    def _adjacent_title(folded: str, at: int, role: str, titles: set[str]) -> str | None:
        """The longest evidence title form right before (``after``) or right after (``of``) offset ``at``."""
        if role == "of":
            tail = folded[at:]
            hits = [t for t in titles if tail.startswith(t) and (len(tail) == len(t) or not tail[len(t)].isalnum()
                                                                  or not t[-1].isascii())]
        else:
            head = re.sub(r"(?: ?の)? ?$", "", folded[:at].rstrip())
            hits = [t for t in titles if head.endswith(t) and (len(head) == len(t) or not head[-len(t) - 1].isalnum()
                                                                or not t[0].isascii())]
        return max(hits, key=len) if hits else None

    async def acritique(self, answer: str, evidence: list[dict], locale: str) -> Critique:
        """Quality gate: every price, title, volume, date, identifier and piece of personal data in ``answer``
        occurs in ``evidence`` (module docstring), and the language matches ``locale`` ("en"/"ja").

        English answers may quote Japanese titles, so 'en' fails only when most letters are Japanese.
        """
        return self.check(answer, evidence, locale)


__all__ = ["LocalCritic", "TitleLexicon", "find_dates", "find_identifiers", "find_prices", "find_volumes", "fold"]

