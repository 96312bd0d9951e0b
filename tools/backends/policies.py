"""Store-policy knowledge base: markdown sections (data/policies/<locale>/*.md) retrieved with character n-gram TF-IDF.

Named-entity rule (deterministic, applied by ``MarkdownPolicyKB.retrieve`` after scoring): a question that
names a payment method, country, carrier or service is answered only with sections that name it too.

- ``ENTITIES`` lists groups of surface forms (English and Japanese, one group per thing: "PayPal",
  "ペイパル"; "Germany", "ドイツ"; "gift wrapping", "ラッピング"). Every group the question mentions must be
  mentioned by a returned section (any form of the group counts as a synonym). So "can I pay with PayPal?"
  gets the section that lists PayPal as not accepted, never the PayPay section, and a group no section
  mentions ("gift wrapping", "DHL") gets ``[]``: the KB does not cover it.
- Countries are the exception: the section listing the countries we ship to is a closed list, so a country
  it does not name ("Russia", "ナイジェリア") gets that section, marked ``not_listed`` (we cannot ship there).
- A name the groups do not know is caught by its shape: a capitalised English word that is not the first
  word of a sentence, or a Latin-letter word in a Japanese question, which occurs in no policy section and
  no background text ("Venmo"). Such a question gets ``[]`` too.

Character n-grams alone would answer "PayPal" with "PayPay" (four shared characters); this rule is what
keeps the nearest-sounding passage from standing in for an answer.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

from core.domain import PolicyPassage
from core.settings import PROJECT_ROOT

DEFAULT_POLICY_DIR = PROJECT_ROOT / "data" / "policies"
DEFAULT_MIN_SCORE = 0.2
"""Cosine similarity below which a section is not returned. Calibrated on real utterances (see the class
docstring): Bitext customer-support questions about payment, delivery, refunds, accounts, contact versus
CLINC150 out-of-scope/travel/kitchen/small-talk questions."""

ENTITY_SCORE_FACTOR = 0.5
"""When the query names an ``ENTITIES`` group, sections that name it too need only ``min_score`` × this."""

NGRAMS = {"en": (2, 4), "ja": (1, 3)}
"""Character n-gram range per locale (Japanese kanji unigrams carry meaning: 送, 料, 返, 品)."""
BACKGROUND_DOCS = 500
"""English catalog synopses added when fitting the IDF only, so that n-grams common in any English text
("ing", "tion") get a low weight; they are never returned."""

# Query expansion: question words that stop-word removal (en) or hiragana removal (ja) would drop but
# that name a policy aspect (cost, duration, time). Applied to queries only.
_EXPAND = {
    "en": ((re.compile(r"\bhow much\b|\bcost\b|\bprice\b"), " cost fee ¥ "), (re.compile(r"\bhow long\b"), " days "),
           # "send something back" is a return; "when is shipping free?" asks for the free-shipping subtotal
           (re.compile(r"\b(?:send|sending|sent|ship|mail|post|bring|give|take)\s+(?:\w+\s+){0,2}back\b"), " return "),
           (re.compile(r"\bfree\b(?=.*\bship)|\bship\w*\b(?=.*\bfree\b)"), " shipping free subtotal "),
           (re.compile(r"\b(?:window|deadline|time limit)\b"), " days within ")),
    "ja": ((re.compile(r"いくら|値段|料金"), " 料金 円 "), (re.compile(r"何日|いつ届"), " 日数 日 "),
           # "can I return it" asks whether and until when: the return policy's period, not return shipping
           (re.compile(r"返品(?:は|を)?(?:でき|したい|可能)"), " 返品 期間 "),
           # 送料 alone is the delivery fee; the return-shipping section answers only with 返品/返送 in the question
           (re.compile(r"^(?!.*(?:返品|返送|返却|海外|国外)).*送料"), " 配送 国内 通常 ")),
}

# Named things customers ask about, grouped by what they denote; forms are regexes matched on NFKC text,
# case-insensitive with word boundaries for Latin forms, except all-caps forms of up to 3 letters ("US",
# "UK"), which are case-sensitive so that the pronoun "us" is not the United States.
_SERVICES: tuple[tuple[str, ...], ...] = (
    # payment methods and card brands
    ("paypal", "ペイパル"), ("paypay", "ペイペイ"),
    ("bitcoin", "ethereum", "crypto(?:currency|currencies)?", "ビットコイン", "暗号資産", "仮想通貨"),
    ("cheques?", "checks", r"(?:by|with|a|personal|bank|paper) check", "小切手"),
    ("money orders?", "郵便為替", "為替"), ("cash on delivery", "cod", "代金引換", "代引き?"),
    ("apple ?pay",), ("google ?pay",), ("amazon ?pay",), ("ali ?pay",), ("wechat ?pay",), ("line ?pay",),
    ("rakuten ?pay", "楽天ペイ"), ("union ?pay", "銀聯"), ("discover",), ("venmo",), ("klarna",), ("afterpay",),
    ("visa",), ("master ?card",), ("jcb",), ("american express", "amex"), ("diners(?: club)?",),
    ("gift cards?", "gift certificates?", "ギフトカード", "商品券"),
    # carriers and services
    ("yamato", "ヤマト"), ("sagawa", "佐川"), ("japan post", "日本郵便"), ("epacket", "eパケット"), ("ems",),
    ("dhl",), ("fed ?ex",), ("ups",),
    ("gift[- ]?wrap(?:ping|ped)?", "wrapping", "ラッピング", "ギフト包装", "包装"),
    ("handwritten", "gift messages?", "message cards?", "手書き", "メッセージカード"),
    ("pre-?orders?", "予約"),
)
COUNTRIES: tuple[tuple[str, ...], ...] = (
    # countries and regions we ship to
    ("south korea", "korea", "韓国"), ("china",), ("taiwan", "台湾"), ("hong kong", "香港"),
    ("singapore", "シンガポール"), ("thailand", "タイ"), ("malaysia", "マレーシア"), ("philippines", "フィリピン"),
    ("indonesia", "インドネシア"), ("vietnam", "ベトナム"), ("india", "インド(?!ネシア)"),
    ("australia", "オーストラリア"), ("new zealand", "ニュージーランド"),
    ("united states", "usa", "US", "U\\.S\\.", "アメリカ", "米国"), ("canada", "カナダ"), ("mexico", "メキシコ"),
    ("united kingdom", "UK", "britain", "england", "scotland", "wales", "イギリス", "英国"), ("ireland", "アイルランド"),
    ("germany", "deutschland", "ドイツ"), ("france", "フランス"), ("italy", "イタリア"), ("spain", "スペイン"),
    ("portugal", "ポルトガル"), ("netherlands", "holland", "オランダ"), ("belgium", "ベルギー"),
    ("austria", "オーストリア"), ("switzerland", "スイス"), ("sweden", "スウェーデン"), ("denmark", "デンマーク"),
    ("norway", "ノルウェー"), ("finland", "フィンランド"), ("poland", "ポーランド"), ("brazil", "ブラジル"),
    # countries no policy section names: answered by the closed list of countries we ship to
    ("north korea", "北朝鮮"), ("russia", "ロシア"), ("ukraine", "ウクライナ"), ("belarus", "ベラルーシ"),
    ("chile", "チリ"), ("argentina", "アルゼンチン"), ("peru", "ペルー"), ("colombia", "コロンビア"),
    ("venezuela", "ベネズエラ"), ("cuba", "キューバ"), ("south africa", "南アフリカ"), ("egypt", "エジプト"),
    ("nigeria", "ナイジェリア"), ("kenya", "ケニア"), ("ethiopia", "エチオピア"), ("ghana", "ガーナ"),
    ("morocco", "モロッコ"), ("algeria", "アルジェリア"), ("turkey", "türkiye", "トルコ"), ("israel", "イスラエル"),
    ("iran", "イラン"), ("iraq", "イラク"), ("syria", "シリア"), ("afghanistan", "アフガニスタン"),
    ("lebanon", "レバノン"), ("saudi arabia", "サウジアラビア"), ("qatar", "カタール"),
    ("united arab emirates", "UAE", "dubai", "アラブ首長国連邦", "ドバイ"), ("pakistan", "パキスタン"),
    ("bangladesh", "バングラデシュ"), ("sri lanka", "スリランカ"), ("nepal", "ネパール"), ("mongolia", "モンゴル"),
    ("kazakhstan", "カザフスタン"), ("cambodia", "カンボジア"), ("myanmar", "burma", "ミャンマー"), ("laos", "ラオス"),
    ("macau", "macao", "マカオ"), ("greece", "ギリシャ"), ("czech republic", "czechia", "チェコ"),
    ("hungary", "ハンガリー"), ("romania", "ルーマニア"), ("bulgaria", "ブルガリア"), ("croatia", "クロアチア"),
    ("serbia", "セルビア"), ("iceland", "アイスランド"), ("luxembourg", "ルクセンブルク"), ("fiji", "フィジー"),
)
ENTITIES: tuple[tuple[str, ...], ...] = _SERVICES + COUNTRIES
COUNTRY_GROUPS = frozenset(range(len(_SERVICES), len(ENTITIES)))
"""Indexes into ``ENTITIES`` of the country and region groups."""
CLOSED_LIST_MIN = 5
"""A section naming at least this many country groups is the list of countries we ship to: it answers for a
country it does not name (the list is closed: "We cannot ship to countries and regions that are not listed")."""


def _form(form: str) -> re.Pattern[str]:
    """Compile one ``ENTITIES`` form (see the comment there for case and boundary rules; a katakana form
    must not be part of a longer katakana word: タイ is not タイトル, インド is not インドネシア)."""
    if not form.isascii():
        return re.compile(rf"(?<![ァ-ヺー]){form}(?![ァ-ヺー])" if _KATAKANA_FORM.fullmatch(form) else form)
    flags = 0 if (form.isupper() and len(form.replace("\\", "").replace(".", "")) <= 3) else re.I
    return re.compile(rf"(?<![A-Za-z]){form}(?![A-Za-z])", flags)


_KATAKANA_FORM = re.compile(r"[ァ-ヺー()?!]+")
_ENTITY_RE = tuple(tuple(_form(f) for f in group) for group in ENTITIES)
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9'-]*")
_SENTENCES = re.compile(r"[^.!?。！？]+")


def mentioned_entities(text: str) -> frozenset[int]:
    """Indexes into ``ENTITIES`` of the groups that ``text`` mentions (NFKC-normalised first)."""
    text = unicodedata.normalize("NFKC", text or "")
    return frozenset(i for i, forms in enumerate(_ENTITY_RE) if any(f.search(text) for f in forms))


def mentioned_names(text: str, groups: frozenset[int]) -> tuple[str, ...]:
    """How ``text`` writes each of ``groups`` (``ENTITIES`` indexes), in group order: the first form found, as
    written (an all-lower-case English name title-cased: "russia" → "Russia")."""
    text = unicodedata.normalize("NFKC", text or "")
    out: list[str] = []
    for i in sorted(groups):
        found = next((m.group(0) for f in _ENTITY_RE[i] if (m := f.search(text))), None)
        if found:
            out.append(found.title() if found.isascii() and found.islower() else found)
    return tuple(out)


def unknown_names(text: str, known_words: frozenset[str]) -> list[str]:
    """Words of ``text`` shaped like a name that nothing in the KB knows: a capitalised Latin word that is not
    the first word of its sentence (in Japanese text every Latin word of 3+ letters counts), not "I", not a
    stop word, not covered by an ``ENTITIES`` group and absent from ``known_words`` (lower-case words of
    every section and of the background texts). E.g. "can I pay with Venmo?" → ["Venmo"]."""
    text = unicodedata.normalize("NFKC", text or "")
    japanese = not text.isascii()
    out: list[str] = []
    for sentence in _SENTENCES.findall(text):
        words = _NAME.findall(sentence)
        for pos, w in enumerate(words):
            if japanese:
                if len(w) < 3:
                    continue
            elif pos == 0 or w == "I" or not w[0].isupper() or w.startswith("I'"):
                continue
            low = w.lower().strip("'-")
            if low in known_words or low in _EN_STOP or mentioned_entities(w):
                continue
            out.append(w)
    return out


_WORD = re.compile(r"[a-z0-9¥]+")
_HIRAGANA = re.compile(r"[\u3041-\u309f]+")
# Stop words for the English side: sklearn's list plus question fillers that carry no policy meaning.
_EN_STOP = frozenset(ENGLISH_STOP_WORDS) | {"does", "did", "doing", "want", "like", "know", "tell", "please", "hi", "hello"}


@dataclass(frozen=True, slots=True)
class Section:
    """One ``##`` section of a policy file: ``doc`` is the file stem (e.g. "shipping"), ``title`` the file's ``#`` title."""

    locale: str
    doc: str
    title: str
    heading: str
    text: str


def _normalise(text: str, locale: str) -> str:
    """NFKC (full-width → half-width digits/letters), lower case. English drops stop words so that
    character n-grams of "what", "the", "is" do not make unrelated questions look similar; Japanese drops
    hiragana runs (particles, okurigana, ですか) and keeps kanji/katakana/Latin content words."""
    text = unicodedata.normalize("NFKC", text).lower()
    if locale == "en":
        text = " ".join(w for w in _WORD.findall(text) if w not in _EN_STOP)
    elif locale == "ja":
        text = _HIRAGANA.sub(" ", text)
    return text


def _background(locale: str, n: int = BACKGROUND_DOCS) -> list[str]:
    """Background texts for the IDF fit: the first ``n`` English synopses of the shipped catalog ([] for other locales)."""
    if locale != "en" or n <= 0:
        return []
    from tools.backends.catalog import DEFAULT_CATALOG, read_rows

    out: list[str] = []
    if DEFAULT_CATALOG.exists():
        for row in read_rows(DEFAULT_CATALOG):
            if row.get("synopsis"):
                out.append(row["synopsis"])
                if len(out) >= n:
                    break
    return out


def parse_markdown(path: Path, locale: str) -> list[Section]:
    """Split one policy file into its ``##`` sections (text before the first ``##`` is only the ``#`` title)."""
    title, heading, lines, out = path.stem, None, [], []

    def flush() -> None:
        body = " ".join(line.strip() for line in lines if line.strip())
        if heading and body:
            out.append(Section(locale, path.stem, title, heading, body))

    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            flush()
            heading, lines = line[3:].strip(), []
        elif line.startswith("# "):
            title = line[2:].strip()
        else:
            lines.append(line)
    flush()
    return out


class MarkdownPolicyKB:
    """``core.ports.PolicyKB`` over markdown sections, one TF-IDF index per locale.

    Vectoriser: scikit-learn ``TfidfVectorizer(analyzer="char_wb", sublinear_tf=True)`` with ``NGRAMS``
    per locale on normalised text (``_normalise``; character n-grams work for Japanese, which has no
    spaces, and tolerate typos). A section is indexed as its document title, heading (twice) and body;
    spaced as title, heading (twice), body; for English the IDF is fitted together with ``BACKGROUND_DOCS`` catalog synopses. Scores are cosine
    similarities (0-1); sections below ``min_score`` are never returned, so an unrelated question gets
    ``[]`` and the agent must not invent a policy. ``retrieve`` also applies the named-entity rule of the
    module docstring (``ENTITIES``, ``unknown_names``). Measured figures: bench/ or the report of the commit
    that calibrated ``DEFAULT_MIN_SCORE``.
    """

    def __init__(self, sections: Sequence[Section], min_score: float = DEFAULT_MIN_SCORE, background_docs: int = BACKGROUND_DOCS):
        self.sections = tuple(sections)
        self.min_score = min_score
        self._index: dict[str, tuple[TfidfVectorizer, np.ndarray, list[Section]]] = {}
        words: set[str] = set()
        for locale in sorted({s.locale for s in self.sections}):
            secs = [s for s in self.sections if s.locale == locale]
            vec = TfidfVectorizer(analyzer="char_wb", ngram_range=NGRAMS.get(locale, (2, 4)), sublinear_tf=True, dtype=np.float32)
            docs = [_normalise(f"{s.title} {s.heading} {s.heading} {s.text}", locale) for s in secs]
            background = _background(locale, background_docs)
            vec.fit(docs + [_normalise(t, locale) for t in background])
            self._index[locale] = (vec, vec.transform(docs), secs)
            words.update(w.lower() for text in background for w in _NAME.findall(text))
        for s in self.sections:
            words.update(w.lower() for w in _NAME.findall(unicodedata.normalize("NFKC", f"{s.title} {s.heading} {s.text}")))
        self._known_words = frozenset(words)
        self._entities = {id(s): mentioned_entities(f"{s.heading} {s.text}") for s in self.sections}
        self._named = {loc: frozenset().union(*(self._entities[id(s)] for s in self.sections if s.locale == loc))
                       for loc in self._index}
        self._country_lists = frozenset(id(s) for s in self.sections
                                        if len(self._entities[id(s)] & COUNTRY_GROUPS) >= CLOSED_LIST_MIN)

    @classmethod
    def load(cls, directory: str | Path | None = None, min_score: float = DEFAULT_MIN_SCORE) -> MarkdownPolicyKB:
        """Read ``<directory>/<locale>/*.md`` (default: the shipped data/policies). Raises FileNotFoundError
        when the directory holds no policy files."""
        root = Path(directory) if directory else DEFAULT_POLICY_DIR
        sections = [
            sec
            for sub in sorted(p for p in root.iterdir() if p.is_dir())
            for path in sorted(sub.glob("*.md"))
            for sec in parse_markdown(path, sub.name)
        ] if root.is_dir() else []
        if not sections:
            raise FileNotFoundError(f"no policy markdown under {root}/<locale>/*.md")
        return cls(sections, min_score=min_score)

    @property
    def locales(self) -> tuple[str, ...]:
        """Locales that have an index (e.g. ("en", "ja"))."""
        return tuple(self._index)

    def scores(self, query: str, locale: str = "en") -> list[tuple[Section, float]]:
        """Every section of ``locale`` with its cosine score, best first (no threshold; for calibration)."""
        vec, matrix, secs = self._index.get(locale) or self._index["en"]
        loc = locale if locale in self._index else "en"
        query = unicodedata.normalize("NFKC", query or "").lower()
        for pattern, extra in _EXPAND.get(loc, ()):
            if pattern.search(query):
                query += extra
        text = _normalise(query, loc)
        if not text.strip():
            return []
        sims = (matrix @ vec.transform([text]).T).toarray().ravel()
        order = np.argsort(-sims, kind="stable")
        return [(secs[i], float(sims[i])) for i in order]

    def retrieve(self, query: str, k: int = 2, locale: str = "en") -> list[PolicyPassage]:
        """Best-first passages of ``locale`` ("en"/"ja"; others fall back to "en") scoring at least
        ``min_score``; at most ``k``; [] when nothing is relevant or the query is empty. Only sections that
        mention every ``ENTITIES`` group the query mentions are eligible, and a query naming something
        unknown to the KB (``unknown_names``) gets [] (see the module docstring). A query naming a country no
        section of ``locale`` names gets the closed country list alone (``CLOSED_LIST_MIN``), its
        ``not_listed`` holding the names as written ("Russia", "ナイジェリア"), whatever its score; a country
        list returned for a country it names has ``listed`` ("Germany")."""
        if k <= 0 or unknown_names(query, self._known_words):
            return []
        wanted = mentioned_entities(query)
        loc = locale if locale in self._index else "en"
        unlisted = (wanted & COUNTRY_GROUPS) - self._named.get(loc, frozenset())
        if unlisted:  # "do you ship to Russia?": only the closed list of countries answers, and it says no
            names = mentioned_names(query, unlisted)
            hits = [(s, sc) for s, sc in self.scores(query, locale)
                    if id(s) in self._country_lists and (wanted - unlisted) <= self._entities[id(s)]][:1]
            return [PolicyPassage(doc=s.doc, heading=s.heading, text=s.text, score=round(sc, 4), not_listed=names)
                    for s, sc in hits]
        # a section naming what the query names is strong evidence: half the threshold suffices then
        floor = self.min_score * ENTITY_SCORE_FACTOR if wanted else self.min_score
        hits = [(s, sc) for s, sc in self.scores(query, locale)
                if sc >= floor and wanted <= self._entities[id(s)]][:k]
        named = mentioned_names(query, wanted & COUNTRY_GROUPS)
        return [PolicyPassage(doc=s.doc, heading=s.heading, text=s.text, score=round(sc, 4),
                              listed=named if id(s) in self._country_lists else ()) for s, sc in hits]
