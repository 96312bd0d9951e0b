"""In-process hybrid catalog search: character n-gram title index, word-level author and synopsis indexes, optional LSA
dense vectors, fused with a popularity prior."""

from __future__ import annotations

import bisect
import hashlib
import pickle
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from threadpoolctl import ThreadpoolController

from core.domain import CatalogItem, SearchHit
from tools.backends.fit_cache import dump_pickle_atomic
from tools.backends.models.artifacts import ShippedArtifacts
from tools.backends.models.encoder import EmbeddingCache, SentenceEncoder, embedding_progress
from tools.backends.phonetic import PhoneticMatcher
from tools.backends.query import LongestMatch, normalize, parse_query

__all__ = ["FusionWeights", "HybridIndex", "LoanwordMatcher", "LsaEmbedder", "author_names", "is_katakana", "ja_name_matcher",
           "found_in_titles", "katakana_runs", "PhoneticCandidates", "latin_forms", "loanword_runs",
           "segment_names", "spaceless_titles", "title_variants"]

_BATCH = 256  # queries per sparse-product batch in search_many (bounds memory: 256 x ~29k float32)
_CACHE_FORMAT = 6  # bump when the pickled index changes shape (2: Japanese author names; 3: LongestMatch; 4: loanwords; 5: phonetic; 6: English reading)
_MIN_JA_NAME = 3  # shortest Japanese author name (characters) looked for inside a longer query


def _layers(starts: np.ndarray, total: int) -> list[tuple[np.ndarray | None, np.ndarray]]:
    """Gather plan for a per-group max over columns grouped contiguously (group i = columns starts[i]..starts[i+1]).

    Layer j holds (groups with more than j columns, their j-th column). Taking the running max over
    layers is much faster than ``np.maximum.reduceat(axis=1)`` for many tiny groups. Layer 0 covers
    every group (its first entry is None = all groups).
    """
    counts = np.diff(np.append(starts, total))
    out: list[tuple[np.ndarray | None, np.ndarray]] = [(None, starts.copy())]
    for j in range(1, int(counts.max())):
        groups = np.flatnonzero(counts > j)
        out.append((groups, starts[groups] + j))
    return out


def _group_max(sim: np.ndarray, layers: list[tuple[np.ndarray | None, np.ndarray]]) -> np.ndarray:
    """(n, total) column scores → (n, n_groups) per-group max, using a plan from ``_layers``."""
    best = sim[:, layers[0][1]]
    for groups, cols in layers[1:]:
        best[:, groups] = np.maximum(best[:, groups], sim[:, cols])
    return best


def title_variants(item: CatalogItem) -> list[str]:
    """Distinct normalised names of one title: MAL romaji title, English, native (Japanese/Korean/Chinese), synonyms."""
    raw = [item.title, item.title_en, item.title_ja, *item.synonyms]
    out: dict[str, None] = {}
    for r in raw:
        n = normalize(r)
        if n:
            out[n] = None
    return list(out)


_WORD = re.compile(r"(?u)\b\w+\b")


def latin_forms(item: CatalogItem) -> list[str]:
    """The Latin-script (ASCII) title forms of one title, distinct, in order: MAL title, English title, synonyms."""
    return [f for f in dict.fromkeys((item.title, item.title_en, *item.synonyms)) if f and f.isascii() and f.strip()]


def author_names(item: CatalogItem) -> list[str]:
    """Distinct normalised author names of one title: romanised (MAL) then Japanese (``authors_ja``)."""
    return [a for a in dict.fromkeys(normalize(a) for a in (*item.authors, *item.authors_ja)) if a]


def ja_name_matcher(names: Iterable[str], min_len: int = _MIN_JA_NAME) -> LongestMatch:
    """The ``LongestMatch`` that ``segment_names`` scans with: every normalised Japanese author name of
    ``names`` written as one word (no space; ``segment_names`` drops spaces, so a spaced name never matches)
    of at least ``min_len`` characters. Shared by the in-process index (3: there the names found *replace* the
    author query, and a 2-character name turns up inside ordinary words) and the pgvector index (see there)."""
    return LongestMatch({a: a for a in names if not a.isascii() and " " not in a and len(a) >= min_len})


def segment_names(text: str, names: LongestMatch) -> list[str] | None:
    """Cut known names out of normalised text written without word boundaries (Japanese).

    Each run of non-ASCII words is scanned as one string (spaces inside a run dropped, so "尾田 栄一郎" is
    one run) with ``names`` (a LongestMatch of name → name). Returns the query's ASCII tokens plus the names
    found, in order, or None when no name was found (the text should then be used as it is). The Japanese
    text around a name is left out: without word boundaries it cannot be split into words.
    '尾田栄一郎ノ漫画アリマスカ' → ['尾田栄一郎'].
    """
    out: list[str] = []
    found = False
    for ascii_, group in groupby(text.split(), key=str.isascii):
        if ascii_:
            out.extend(group)
            continue
        hits = [name for _, _, name in names.scan("".join(group))]
        out.extend(hits)
        found = found or bool(hits)
    return out if found else None


def _char_vectorizer() -> TfidfVectorizer:
    # Text is normalised before vectorising (see tools.backends.query.normalize), so no lowercasing here.
    return TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), lowercase=False, sublinear_tf=True, dtype=np.float32)


def _word_vectorizer(**kw) -> TfidfVectorizer:
    return TfidfVectorizer(
        analyzer="word", token_pattern=r"(?u)\b\w+\b", lowercase=False, sublinear_tf=True, dtype=np.float32, **kw
    )


class LsaEmbedder:
    """Dense text vectors by latent semantic analysis: char n-gram TF-IDF → TruncatedSVD → L2 norm.

    Fitted offline on the catalog itself (one document per title: every title variant and the
    authors), so it needs no downloaded model. ``embed`` returns float32 of shape (n, ``dim``), each
    row L2-normalised (a zero row for text with no known n-gram). These are the vectors the
    pgvector/OpenSearch backends store. Algorithm: Deerwester et al. (1990) LSA with randomized SVD
    (scikit-learn ``TruncatedSVD``).
    """

    def __init__(self, vectorizer: TfidfVectorizer, svd: TruncatedSVD):
        self.vectorizer = vectorizer
        self.svd = svd
        self.dim = int(svd.n_components)

    @classmethod
    def fit(cls, documents: Sequence[str], dim: int = 128, seed: int = 0) -> LsaEmbedder:
        """Fit on raw documents (normalised internally). ``dim`` must be < the vocabulary size."""
        vec = _char_vectorizer()
        x = vec.fit_transform([normalize(d) for d in documents])
        svd = TruncatedSVD(n_components=dim, algorithm="randomized", n_iter=4, random_state=seed)
        svd.fit(x)
        return cls(vec, svd)

    @classmethod
    def fit_catalog(cls, items: Sequence[CatalogItem], dim: int = 128, seed: int = 0) -> LsaEmbedder:
        """Fit on one document per catalog title (title variants + romanised authors)."""
        return cls.fit([_item_document(it) for it in items], dim=dim, seed=seed)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32, rows L2-normalised (zero rows for empty/unknown text)."""
        x = self.vectorizer.transform([normalize(t) for t in texts])
        z = self.svd.transform(x).astype(np.float32)
        norms = np.linalg.norm(z, axis=1, keepdims=True)
        np.divide(z, norms, out=z, where=norms > 0)
        return z


_KATAKANA_RUN = re.compile(r"[\u30a1-\u30fa\u30fc\u30fb]+(?:[ \u3000][\u30a1-\u30fa\u30fc\u30fb]+)*")


def is_katakana(text: str) -> bool:
    """True when ``text`` (after NFKC) is katakana only, with ー, ・ and single spaces between words ("ベルセルク")."""
    return bool(_KATAKANA_RUN.fullmatch(unicodedata.normalize("NFKC", text or "")))


def katakana_runs(text: str, min_len: int = 3) -> list[str]:
    """Runs of katakana (with ー, ・ and single spaces between words) of at least ``min_len`` characters in
    ``text`` after NFKC (so half-width kana count): the loanword spellings a Japanese customer types for a
    title the catalog only has in Latin script ("ワンピースの3巻ありますか" → ["ワンピース"])."""
    t = unicodedata.normalize("NFKC", text or "")
    return [m.group(0) for m in _KATAKANA_RUN.finditer(t) if len(m.group(0).replace(" ", "")) >= min_len]


_LEADING_KATAKANA = re.compile(r"^([\u30a1-\u30fa\u30fc\u30fb]+(?: [\u30a1-\u30fa\u30fc\u30fb]+)*)(?=って|は|の|を|が|も|、|,| |[\u4e00-\u9fff])")


def loanword_runs(text: str) -> list[str]:
    """The katakana a phonetic loanword match is tried on: the whole of ``text`` when it is katakana only
    ("デスノート"), else a katakana run (words may be split by single spaces) that opens it and ends at a particle,
    a space or a kanji ("デスノートって何巻まで出てる" → ["デスノート"], "ゴッド チャイルドの愛蔵版" → ["ゴッド チャイルド"],
    "デッドマン・ワンダーランド全巻セット" → ["デッドマン・ワンダーランド"]), else []. NFKC first. A run elsewhere in a
    sentence is too often an ordinary loanword ("…のカバーが破れて") to be read as a title."""
    t = unicodedata.normalize("NFKC", text or "").strip()
    if is_katakana(t):
        return katakana_runs(t)
    m = _LEADING_KATAKANA.match(t)
    return [m.group(1)] if m and len(m.group(1).replace(" ", "")) >= 3 else []


def spaceless_titles(variants: Iterable[str]) -> str:
    """Normalised title variants with spaces removed, one per line: the text ``found_in_titles`` searches."""
    return "\n".join(v.replace(" ", "") for v in variants)


def found_in_titles(runs: Sequence[str], titles: str) -> bool:
    """True when every katakana run occurs verbatim (normalised, spaces ignored) in ``titles``
    (``spaceless_titles``): the customer is typing a catalog title, so the runs are not read as loanwords."""
    return bool(runs) and all(normalize(r).replace(" ", "") in titles for r in runs)


class PhoneticCandidates:
    """The phonetic loanword pass of a backend whose titles live outside the process (pgvector, OpenSearch).

    Built once from ``variants``: (mal_id, normalised title variant) pairs, as ``title_variants`` gives them; the
    Latin-script ones feed a ``PhoneticMatcher``, all of them the text ``found_in_titles`` searches. ``top`` then
    gives the titles closest by sound to a query's ``loanword_runs``. The in-process index scores every title
    itself and does not use this. Build: ~1.1 s for the shipped catalog (the matcher).
    """

    def __init__(self, variants: Iterable[tuple[int, str]]):
        forms: dict[int, list[str]] = {}
        texts: list[str] = []
        for mal_id, variant in variants:
            forms.setdefault(int(mal_id), [])
            if variant.isascii():
                forms[int(mal_id)].append(variant)
            texts.append(variant)
        self.ids = np.array(list(forms), dtype=np.int64)
        self.matcher = PhoneticMatcher(list(forms.values()))
        self.titles_text = spaceless_titles(texts)

    @property
    def n_items(self) -> int:
        """How many titles were read."""
        return len(self.ids)

    def top(self, runs: Sequence[str], k: int) -> list[tuple[int, float]]:
        """Up to ``k`` (mal_id, phonetic score in (0, 1]) pairs, best first; [] without runs, or when the runs
        occur verbatim in a title variant (the customer is typing that title)."""
        if not runs or found_in_titles(runs, self.titles_text):
            return []
        s = self.matcher.scores([list(runs)])[0]
        best = np.argsort(-s, kind="stable")[:k]
        return [(int(self.ids[j]), float(s[j])) for j in best[s[best] > 0]]


@lru_cache(maxsize=1)
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()  # inspects the loaded libraries once (~ms); .limit() then costs ~0.1 ms


def _one_blas_thread():
    """Limit BLAS to one thread (threadpoolctl): OpenBLAS worker threads left spinning after the similarity
    product slow the encoder's own OpenMP threads on the next query (katakana search p50 31 → 14 ms, p99
    122 → 33 ms, measured on 2 cores)."""
    return _blas_controller().limit(limits=1, user_api="blas")


class LoanwordMatcher:
    """Katakana loanword queries matched to Latin-script titles with multilingual sentence embeddings.

    Why: a Japanese customer writes ワンピース, ブリーチ or デスノート, but the catalog's native titles of those
    works are "ONE PIECE", "BLEACH" and "DEATH NOTE", and no character n-gram links a katakana spelling to
    its English original. multilingual-e5-small (``SentenceEncoder``) places both near each other.
    Index: every Latin-script title form of every item (MAL title, English title, ASCII synonyms; 21.9k
    forms for the shipped catalog), embedded once (~3 minutes on 2 cores; kept in the ``EmbeddingCache``,
    then ~1 s) and held as float16 (~17 MB). Query side: each ``katakana_runs`` span of the query is embedded
    (~10 ms each) and an item's score is its best cosine over spans × forms, rescaled as
    max(0, (cos − ``floor``) / (1 − ``floor``)) into 0-1, so only close matches count. Queries with no
    katakana run score 0 everywhere and cost nothing.
    """

    def __init__(self, items: Sequence[CatalogItem], encoder: SentenceEncoder, cache: EmbeddingCache | None = None,
                 floor: float = 0.8):
        forms: list[str] = []
        starts = np.empty(len(items), dtype=np.int64)
        for i, it in enumerate(items):
            starts[i] = len(forms)
            forms.extend(self.item_forms(it))
        self.encoder = encoder
        self.floor = floor
        embed = cache.encode if cache is not None else (lambda enc, xs, progress=None: enc.encode(xs, progress))
        with embedding_progress("Indexing the catalog's Latin-script titles for katakana queries (once)") as progress:
            self._F = embed(encoder, forms, progress).astype(np.float32)
        self._layers = _layers(starts, len(forms))
        self.n_forms = len(forms)

    @staticmethod
    def item_forms(item: CatalogItem) -> list[str]:
        """The texts embedded for one item: its ``latin_forms``, or its MAL id as a placeholder when it has none."""
        return latin_forms(item) or [str(item.mal_id)]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_F": self._F.astype(np.float16)}  # half the pickle; cosine error < 1e-3

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._F = self._F.astype(np.float32)

    def scores(self, queries: Sequence[str]) -> np.ndarray:
        """(len(queries), n_items) float32 in 0-1: each item's rescaled best cosine to the query's katakana runs."""
        n_items = len(self._layers[0][1])
        out = np.zeros((len(queries), n_items), dtype=np.float32)
        spans = [(r, run) for r, q in enumerate(queries) for run in katakana_runs(q)]
        if not spans:
            return out
        with _one_blas_thread():
            E = self.encoder.encode([run for _, run in spans])
            sims = _group_max(E @ self._F.T, self._layers)
        sims = np.maximum(0.0, (sims - self.floor) / (1.0 - self.floor))
        for (r, _), row in zip(spans, sims):
            np.maximum(out[r], row, out=out[r])
        return out


def _item_document(item: CatalogItem) -> str:
    return " ".join([item.title, item.title_en, item.title_ja, *item.synonyms, *item.authors])


@dataclass(frozen=True)
class FusionWeights:
    """How the per-field scores add up (tuned on the ``dev`` split of bench/search_queries.py).

    lexical(item) = max(title + ``contain``·containment, ``author``·author, ``synopsis``·synopsis,
    ``loanword``·loanword)
    score(item) = lexical + ``exact``·[query equals a title variant] + ``prefix``·[a title variant
    starts with the query, and at most 50 variants do] + ``prior``·popularity + ``dense``·LSA cosine.

    title: max cosine over the title's variants (char 2-4-gram TF-IDF). containment: max over variants
    of the share of the query's squared TF-IDF weight whose n-grams occur in the variant (partial and
    prefix queries). author: word TF-IDF cosine x (share of query words found in the name)². All in
    [0, 1]; popularity is log1p(members)/log1p(max members) in [0, 1]. Items whose lexical part is
    below ``min_score`` (and that match no exact/prefix rule) are dropped, so garbage gives [].
    Dev-split ablation (3,000 queries, R@1): no author coverage 0.971, +coverage 0.978, +containment
    0.980, +LSA dense 0.4 0.982 (not worth its build time; off by default). loanword: the
    ``LoanwordMatcher`` score of katakana queries (0 without a matcher or a katakana run). katakana_coverage:
    for a query that is katakana only (``is_katakana``), the title cosine is multiplied by
    containment^``katakana_coverage``, so a title sharing a few of its characters ("キーチ!!" for "ブリーチ")
    stops outranking the loanword match (BLEACH). Exponent from 0 / 0.5 / 1 / 2 on dev by the loanword rule
    (largest loanword R@1 costing the standard dev queries at most 0.001 R@1): loanword R@1 0.404 / 0.500 /
    0.564 / 0.607, standard R@1 0.9807 / 0.9807 / 0.9800 / 0.9783; the sentence queries do not move (0.962).
    Applied to every query it cost sentence queries (see docs/search_backends.md), hence katakana only.
    phonetic: the ``PhoneticMatcher`` score (tools/backends/phonetic.py) of a katakana-only query or of the
    katakana that opens a request (``loanword_runs``), unless that katakana occurs verbatim inside some catalog
    title (then it is that title being typed: without this gate the dev ja_partial R@1 fell 0.943 → 0.920).
    Floor 0.5 / 0.6 / 0.7 at weight 1 gave dev loanword R@1 0.822 / 0.827 / 0.807 (from 0.563 without it),
    standard dev R@1 0.980 for each.
    """

    contain: float = 0.1
    author: float = 0.9
    synopsis: float = 0.2
    exact: float = 0.2
    prefix: float = 0.2
    prior: float = 0.04
    dense: float = 0.0
    loanword: float = 1.0
    katakana_coverage: float = 1.0
    phonetic: float = 1.0
    min_score: float = 0.2


class HybridIndex:
    """Hybrid known-item and free-text search over the whole catalog (implements core.ports.SearchIndex).

    Fields: (1) title variants (MAL title, English, native script, synonyms) as character 2-4-gram
    TF-IDF (``char_wb``), scored per title as the max cosine over its variants — handles Japanese
    without word boundaries, partial titles and typos; (2) author names, romanised and Japanese
    (``CatalogItem.authors_ja``), word-level TF-IDF, max over a title's authors (word order free:
    "Miura Kentarou" == "Kentarou Miura"; a Japanese name such as 尾田栄一郎 is one word, and is cut
    out of a Japanese query by ``segment_names`` so "尾田栄一郎の漫画ありますか" matches it); (3) synopsis + genres +
    themes, word-level TF-IDF, down-weighted (free-text fallback); optional (4) LSA dense vectors.
    Plus exact and prefix title-match boosts and a MyAnimeList popularity prior (see FusionWeights).
    Text on both sides goes through ``tools.backends.query.normalize``; volume markers are parsed
    off the query by ``parse_query`` and returned in ``SearchHit.volume``.

    Build on the shipped catalog: ~2-4 s on 2 cores (without dense vectors); ~1-3 ms per query.
    """

    def __init__(self, items: Sequence[CatalogItem], weights: FusionWeights | None = None, dense: bool = False,
                 loanwords: LoanwordMatcher | None = None):
        self.items: tuple[CatalogItem, ...] = tuple(items)
        self.loanwords = loanwords
        self.weights = weights or FusionWeights()
        n = len(self.items)
        if n == 0:
            raise ValueError("cannot build a search index over an empty catalog")
        self._ids = np.array([it.mal_id for it in self.items], dtype=np.int64)
        self.phonetic = PhoneticMatcher([latin_forms(it) for it in self.items]) if self.weights.phonetic else None

        # (1) title variants, grouped by item so np.maximum.reduceat gives the per-item max.
        var_text: list[str] = []
        starts = np.empty(n, dtype=np.int64)
        for i, it in enumerate(self.items):
            starts[i] = len(var_text)
            vs = title_variants(it) or [str(it.mal_id)]
            var_text.extend(vs)
        self._var_starts = starts
        self._var_item = np.repeat(np.arange(n), np.diff(np.append(starts, len(var_text))))
        self._var_layers = _layers(starts, len(var_text))
        self._title_vec = _char_vectorizer()
        self._V = self._title_vec.fit_transform(var_text).tocsr()
        self._exact: dict[str, list[int]] = {}
        for t, i in zip(var_text, self._var_item):
            self._exact.setdefault(t, []).append(int(i))
        self._sorted_variants = sorted(self._exact)
        self._titles_text = spaceless_titles(self._sorted_variants)  # for found_in_titles

        # (2) authors (romanised and Japanese): one row per distinct normalised name; (item, author) pairs
        # sorted by item, with a dummy "no author" column (index n_auth, always 0) so every item has
        # at least one pair.
        names: dict[str, int] = {}
        pair_auth: list[int] = []
        pair_starts = np.empty(n, dtype=np.int64)
        for i, it in enumerate(self.items):
            pair_starts[i] = len(pair_auth)
            au = author_names(it)
            if not au:
                pair_auth.append(-1)
            for a in au:
                pair_auth.append(names.setdefault(a, len(names)))
        self._author_names = list(names)
        self._pair_starts = pair_starts
        pa = np.array(pair_auth, dtype=np.int64)
        pa[pa < 0] = len(names)
        self._pair_auth = pa
        self._pair_layers = _layers(pair_starts, len(pa))
        self._author_vec = _word_vectorizer()
        self._A = self._author_vec.fit_transform(self._author_names or ["_"]).tocsr()
        # Japanese names (one word, no spaces) to cut out of queries without word boundaries.
        self._ja_names = ja_name_matcher(self._author_names)

        # (3) synopsis + genres + themes, word level, English stop words removed, rare terms dropped.
        docs = [normalize(" ".join([it.synopsis, *it.genres, *it.themes])) for it in self.items]
        self._syn_vec = _word_vectorizer(stop_words="english", min_df=2, max_df=0.5)
        self._S = self._syn_vec.fit_transform(docs).tocsr()

        members = np.array([max(it.members, 0) for it in self.items], dtype=np.float64)
        self._prior = (np.log1p(members) / max(np.log1p(members.max()), 1.0)).astype(np.float32)

        # (4) optional LSA dense vectors.
        self.embedder: LsaEmbedder | None = None
        self._E: np.ndarray | None = None
        if dense:
            self.embedder = LsaEmbedder.fit_catalog(self.items)
            self._E = self.embedder.embed([_item_document(it) for it in self.items])

        # Transposed copies for fast (queries x docs) sparse products.
        self._VT = self._V.T.tocsr()
        self._VbT = self._VT.copy()
        self._VbT.data[:] = 1.0  # n-gram presence, for the containment score
        self._AT = self._A.T.tocsr()
        self._AbT = self._AT.copy()
        self._AbT.data[:] = 1.0  # word presence, for the author coverage
        self._ST = self._S.T.tocsr()

    # ---- construction --------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        catalog,
        *,
        weights: FusionWeights | None = None,
        dense: bool = False,
        encoder: SentenceEncoder | None = None,
        cache_dir: Path | None = None,
        catalog_path: Path | None = None,
    ) -> HybridIndex:
        """Build over ``catalog`` (anything with ``.items``: a sequence of CatalogItem, e.g. ``load_catalog()``).

        ``encoder`` (None = lexical only) adds a ``LoanwordMatcher`` for katakana queries; its title
        embeddings go through the ``EmbeddingCache`` of ``cache_dir`` when one is given, which reads the title
        embeddings shipped in data/models first (``mangaassist train``), so only titles added since are encoded. With ``cache_dir``
        and ``catalog_path``, the fitted index is pickled under ``cache_dir/search-<sha256 of the catalog
        file, the items' Japanese author names, the cache format and options>.pkl`` and reused when present
        (only our own cache files are unpickled). Raises ValueError on an empty catalog.
        """
        items = list(getattr(catalog, "items", catalog))

        def fit() -> HybridIndex:
            loanwords = None
            if encoder is not None:
                shipped = ShippedArtifacts().embeddings_path(encoder.name)  # data/models: no encoding on a fresh machine
                cache = EmbeddingCache(cache_dir, encoder.name, shipped=shipped) if cache_dir is not None else None
                loanwords = LoanwordMatcher(items, encoder, cache)
                if cache is not None:
                    cache.save()
            return cls(items, weights=weights, dense=dense, loanwords=loanwords)

        if cache_dir is None or catalog_path is None:
            return fit()
        h = hashlib.sha256(Path(catalog_path).read_bytes())
        h.update(repr([(it.mal_id, it.authors_ja) for it in items if it.authors_ja]).encode())
        h.update(repr((_CACHE_FORMAT, weights or FusionWeights(), dense, len(items),
                       encoder.name if encoder is not None else None)).encode())
        path = Path(cache_dir) / f"search-{h.hexdigest()[:24]}.pkl"
        if path.exists():
            with path.open("rb") as fh:
                return pickle.load(fh)
        index = fit()
        dump_pickle_atomic(index, path)
        return index

    def __len__(self) -> int:
        return len(self.items)

    # ---- search --------------------------------------------------------------------------------

    def search(self, query: str, k: int = 10) -> list[SearchHit]:
        """Best-first hits (at most ``k``) for one query; [] for empty/garbage queries or k <= 0. Never raises on odd text."""
        return self.search_many([query], k)[0]

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[SearchHit]]:
        """Batch form of ``search``: same results, sparse products computed ``_BATCH`` queries at a time."""
        queries = list(queries)
        if k <= 0 or not queries:
            return [[] for _ in queries]
        out: list[list[SearchHit]] = []
        for b in range(0, len(queries), _BATCH):
            out.extend(self._search_batch(queries[b : b + _BATCH], k))
        return out

    def field_scores(self, queries: Sequence[str]) -> dict[str, np.ndarray]:
        """Per-field scores of each title, each of shape (len(queries), n_items) float32, for analysis/tuning.

        Keys: ``title``, ``author``, ``synopsis``, ``exact``, ``prefix``, ``dense`` (zeros without
        dense vectors), ``loanword`` (zeros without a LoanwordMatcher or when the weight is 0), ``phonetic`` (zeros
        without ``loanword_runs`` or when they occur inside a title), ``contain``, ``katakana`` (shape (n_queries,)
        bool: the query is katakana only), ``verbatim`` (shape (n_queries,) bool: the query's loanword runs all occur
        inside some title variant) and ``prior`` (shape (n_items,)).
        Queries are used as given (no volume parsing).
        """
        norm = [normalize(q if isinstance(q, str) else "") for q in queries]
        n, m = len(norm), len(self.items)
        qt = self._title_vec.transform(norm)
        sim_v = (qt @ self._VT).toarray()
        title = _group_max(sim_v, self._var_layers)
        contain = np.zeros((n, m), dtype=np.float32)
        if self.weights.contain or self.weights.katakana_coverage:
            # share of the query's (squared, L2-normalised) TF-IDF mass whose n-grams occur in a title variant
            q2 = qt.multiply(qt).tocsr()
            contain = _group_max((q2 @ self._VbT).toarray(), self._var_layers)

        # Japanese author names are cut out of queries without word boundaries (see segment_names).
        auth = [self._author_query(q) for q in norm]
        qa = self._author_vec.transform(auth)
        sim_a = (qa @ self._AT).toarray()
        # author cosine x (share of the query's words found in that name)², so a lone common word
        # ("one", "koi") inside a title query does not pull in an author of that name
        qb = qa.copy()
        qb.data[:] = 1.0
        n_words = np.array([max(len(_WORD.findall(q)), 1) for q in auth], dtype=np.float32)[:, None]
        cover = (qb @ self._AbT).toarray() / n_words
        sim_a = sim_a * cover * cover
        sim_a = np.hstack([sim_a, np.zeros((n, 1), dtype=np.float32)])
        author = _group_max(sim_a[:, self._pair_auth], self._pair_layers)

        synopsis = (self._syn_vec.transform(norm) @ self._ST).toarray()

        exact = np.zeros((n, m), dtype=np.float32)
        prefix = np.zeros((n, m), dtype=np.float32)
        for r, q in enumerate(norm):
            if not q:
                continue
            for i in self._exact.get(q, ()):
                exact[r, i] = 1.0
            if len(q) >= 3:
                lo = bisect.bisect_left(self._sorted_variants, q)
                hi = bisect.bisect_left(self._sorted_variants, q + "\U0010ffff", lo)
                if 0 < hi - lo <= 50:  # a prefix shared by many titles says nothing about which one
                    for t in self._sorted_variants[lo:hi]:
                        for i in self._exact[t]:
                            prefix[r, i] = 1.0
        dense = np.zeros((n, m), dtype=np.float32)
        if self._E is not None and self.weights.dense:
            dense = self.embedder.embed(norm) @ self._E.T
        loanword = np.zeros((n, m), dtype=np.float32)
        if self.loanwords is not None and self.weights.loanword:
            loanword = self.loanwords.scores([q if isinstance(q, str) else "" for q in queries])
        phonetic = np.zeros((n, m), dtype=np.float32)
        katakana = np.array([is_katakana(q) if isinstance(q, str) else False for q in queries])
        runs = [loanword_runs(q) if isinstance(q, str) else [] for q in queries]
        verbatim = np.array([found_in_titles(r, self._titles_text) for r in runs])
        if self.phonetic is not None and self.weights.phonetic:
            phonetic = self.phonetic.scores([r if not v else [] for r, v in zip(runs, verbatim)])
        return {
            "title": title.astype(np.float32, copy=False),
            "contain": contain,
            "katakana": katakana,
            "verbatim": verbatim,
            "author": author.astype(np.float32, copy=False),
            "synopsis": synopsis.astype(np.float32, copy=False),
            "exact": exact,
            "prefix": prefix,
            "dense": dense,
            "loanword": loanword,
            "phonetic": phonetic,
            "prior": self._prior,
        }

    def _author_query(self, text: str) -> str:
        """The text matched against author names: ``text`` itself, or the names ``segment_names`` finds in it."""
        if not self._ja_names or text.isascii():
            return text
        found = segment_names(text, self._ja_names)
        return text if found is None else " ".join(found)

    def fuse(self, f: dict[str, np.ndarray], weights: FusionWeights | None = None) -> np.ndarray:
        """Fused scores (n_queries, n_items) from ``field_scores`` output; -inf where an item is filtered out."""
        w = weights or self.weights
        title = f["title"]
        if w.katakana_coverage and "katakana" in f and f["katakana"].any():
            cov = np.where(f["katakana"][:, None], f["contain"] ** w.katakana_coverage, 1.0)
            title = title * cov.astype(np.float32)
        lex = np.maximum(title + w.contain * f["contain"], w.author * f["author"])
        lex = np.maximum(lex, w.synopsis * f["synopsis"])
        if w.loanword and "loanword" in f:
            lex = np.maximum(lex, w.loanword * f["loanword"])
        if w.phonetic and "phonetic" in f:  # already 0 where the runs are found in a title (field_scores)
            lex = np.maximum(lex, w.phonetic * f["phonetic"])
        boost = w.exact * f["exact"] + w.prefix * f["prefix"]
        score = lex + boost + w.prior * f["prior"][None, :]
        if w.dense:
            score = score + w.dense * f["dense"]
        keep = (lex >= w.min_score) | (boost > 0)
        return np.where(keep, score, -np.inf).astype(np.float32)

    def _search_batch(self, queries: Sequence[str], k: int) -> list[list[SearchHit]]:
        parsed = [parse_query(q if isinstance(q, str) else "") for q in queries]
        scores = self.fuse(self.field_scores([p.text for p in parsed]))
        return [self._top(scores[r], k, parsed[r].volume) for r in range(len(parsed))]

    def _top(self, row: np.ndarray, k: int, volume: int | None) -> list[SearchHit]:
        kk = min(k, row.shape[0])
        cand = np.argpartition(-row, kk - 1)[:kk]
        cand = cand[np.isfinite(row[cand])]
        # Sort by score, ties broken by catalog order (popularity) for a deterministic result.
        cand = cand[np.lexsort((cand, -row[cand]))]
        return [SearchHit(mal_id=int(self._ids[i]), score=float(row[i]), volume=volume) for i in cand]
