"""Store-policy knowledge base: markdown sections (data/policies/<locale>/*.md) retrieved with character n-gram TF-IDF."""

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

NGRAMS = {"en": (2, 4), "ja": (1, 3)}
"""Character n-gram range per locale (Japanese kanji unigrams carry meaning: 送, 料, 返, 品)."""
BACKGROUND_DOCS = 500
"""English catalog synopses added when fitting the IDF only, so that n-grams common in any English text
("ing", "tion") get a low weight; they are never returned."""

# Query expansion: question words that stop-word removal (en) or hiragana removal (ja) would drop but
# that name a policy aspect (cost, duration, time). Applied to queries only.
_EXPAND = {
    "en": ((re.compile(r"\bhow much\b|\bcost\b|\bprice\b"), " cost fee ¥ "), (re.compile(r"\bhow long\b"), " days ")),
    "ja": ((re.compile(r"いくら|値段|料金"), " 料金 円 "), (re.compile(r"何日|いつ届"), " 日数 日 ")),
}

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
    ``[]`` and the agent must not invent a policy. Measured figures: bench/ or the report of the commit
    that calibrated ``DEFAULT_MIN_SCORE``.
    """

    def __init__(self, sections: Sequence[Section], min_score: float = DEFAULT_MIN_SCORE, background_docs: int = BACKGROUND_DOCS):
        self.sections = tuple(sections)
        self.min_score = min_score
        self._index: dict[str, tuple[TfidfVectorizer, np.ndarray, list[Section]]] = {}
        for locale in sorted({s.locale for s in self.sections}):
            secs = [s for s in self.sections if s.locale == locale]
            vec = TfidfVectorizer(analyzer="char_wb", ngram_range=NGRAMS.get(locale, (2, 4)), sublinear_tf=True, dtype=np.float32)
            docs = [_normalise(f"{s.title} {s.heading} {s.heading} {s.text}", locale) for s in secs]
            vec.fit(docs + [_normalise(t, locale) for t in _background(locale, background_docs)])
            self._index[locale] = (vec, vec.transform(docs), secs)

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
        ``min_score``; at most ``k``; [] when nothing is relevant or the query is empty."""
        hits = [(s, sc) for s, sc in self.scores(query, locale)[: max(k, 0)] if sc >= self.min_score]
        return [PolicyPassage(doc=s.doc, heading=s.heading, text=s.text, score=round(sc, 4)) for s, sc in hits]
