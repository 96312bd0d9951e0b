"""Shared catalog search on PostgreSQL + pgvector: a trigram posting table for lexical matching, pgvector HNSW for dense vectors, fused in Python."""

from __future__ import annotations

import hashlib
import math
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.domain import CatalogItem, SearchHit
from core.errors import ConfigurationError
from tools.backends.query import normalize, parse_query
from tools.backends.search_index import (
    LsaEmbedder,
    PhoneticCandidates,
    ja_name_matcher,
    loanword_runs,
    segment_names,
    title_variants,
)

__all__ = ["PgFusionWeights", "PgVectorIndex", "trigrams", "embedder_fingerprint"]

SCHEMA_VERSION = "4"
_LOCK_KEY = 0x6D616E67  # pg_advisory_xact_lock key serialising concurrent loads ("mang")


def trigrams(text: str) -> list[str]:
    """Distinct character trigrams of already-normalised ``text``, as pg_trgm defines them.

    Each space-separated word is padded with two spaces in front and one behind ("  w ") and every
    3-character window is taken, so "berserk" gives "  b", " be", "ber", ..., "rk ". Japanese text
    (no spaces) is one word, so every 3-character window of the title is a gram. Order of first
    occurrence is kept. Returns [] for "".
    """
    out: dict[str, None] = {}
    for w in text.split():
        p = f"  {w} "
        for i in range(len(p) - 2):
            out[p[i : i + 3]] = None
    return list(out)


def embedder_fingerprint(embedder: LsaEmbedder) -> str:
    """SHA-256 (hex, 24 chars) of the embedder's dimension, vocabulary and SVD components.

    Stored with the loaded vectors so a process whose embedder differs from the one that loaded the
    catalog is refused (its query vectors would live in another space).
    """
    h = hashlib.sha256(str(embedder.dim).encode())
    vocab = getattr(embedder.vectorizer, "vocabulary_", {})
    h.update("\x00".join(sorted(vocab)).encode())
    h.update(np.ascontiguousarray(embedder.svd.components_, dtype=np.float32).tobytes())
    return h.hexdigest()[:24]


@dataclass(frozen=True)
class PgFusionWeights:
    """How the per-field scores of the Postgres backend add up (the same shape as search_index.FusionWeights).

    title: TF-IDF cosine (binary trigram weights, idf = ln((1+N)/(1+df)) + 1 over N name variants)
    between the query and the best title variant; contain: share of the query's squared idf mass
    found in that variant; author: cosine x containment² over author names (so a lone common word
    does not pull in an author); all in [0, 1].
    lexical = max(title + ``contain``·contain, ``author``·author)
    score = lexical + ``exact``·[query equals a title variant] + ``prefix``·[a title variant starts
    with the query, at most 50 do] + ``prior``·popularity + ``dense``·cosine(LSA query, LSA title).
    ``phonetic``: as in the in-process index, a katakana-only query, or the katakana that opens a request
    (``loanword_runs``), not found verbatim in any title variant, also scores every title by sound
    (``PhoneticMatcher``, in the app process, over the Latin-script title variants read from the database
    at start); lexical = max(…, ``phonetic``·phonetic).
    Items with lexical < ``min_score``, no exact/prefix match and (with dense on) a dense cosine below
    ``dense_min`` are dropped, so garbage gives []. ``candidates`` is how
    many lexical candidates SQL returns before fusion; ``ann_k`` how many nearest vectors the HNSW
    index adds (0 = no dense candidates; dense cosine is still added to lexical candidates).
    """

    contain: float = 0.1
    author: float = 0.9
    exact: float = 0.2
    prefix: float = 0.2
    prior: float = 0.04
    dense: float = 0.0
    phonetic: float = 1.0
    min_score: float = 0.2
    dense_min: float = 0.8
    candidates: int = 100
    ann_k: int = 20


_DDL = """
DROP TABLE IF EXISTS catalog_grams, catalog_gram_idf, catalog_titles, catalog_vectors, catalog_items, catalog_meta;
CREATE TABLE catalog_items (mal_id integer PRIMARY KEY, popularity real NOT NULL);
CREATE TABLE catalog_titles (
    variant_id integer PRIMARY KEY,
    mal_id integer NOT NULL REFERENCES catalog_items (mal_id),
    field text NOT NULL CHECK (field IN ('title', 'author')),
    variant text NOT NULL,
    norm real NOT NULL
);
CREATE TABLE catalog_grams (
    gram text NOT NULL,
    variant_id integer NOT NULL,
    mal_id integer NOT NULL,
    author boolean NOT NULL,
    norm real NOT NULL,
    popularity real NOT NULL
);
CREATE TABLE catalog_gram_idf (gram text PRIMARY KEY, idf real NOT NULL);
CREATE TABLE catalog_vectors (mal_id integer PRIMARY KEY REFERENCES catalog_items (mal_id), embedding vector({dim}) NOT NULL);
CREATE TABLE catalog_meta (key text PRIMARY KEY, value text NOT NULL);
"""

_INDEXES = """
ALTER TABLE catalog_grams ADD PRIMARY KEY (gram, variant_id) INCLUDE (mal_id, author, norm, popularity);
CREATE INDEX catalog_titles_variant ON catalog_titles (variant text_pattern_ops) WHERE field = 'title';
CREATE INDEX catalog_titles_mal_id ON catalog_titles (mal_id);
CREATE INDEX catalog_vectors_hnsw ON catalog_vectors USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);
ANALYZE catalog_items; ANALYZE catalog_titles; ANALYZE catalog_grams; ANALYZE catalog_gram_idf; ANALYZE catalog_vectors;
"""

# Lexical candidates: postings of the query's grams → per-variant dot product → per-item best title /
# author scores. Query grams unknown to the catalog are dropped (they would only lower every cosine
# equally); the query norm still counts them so a mostly-unknown query scores low.
_LEXICAL_SQL = """
WITH q AS (
    SELECT * FROM unnest(%(grams)s::text[], %(sq_idf)s::float8[]) AS q(gram, w)
), d AS (
    SELECT p.variant_id, max(p.mal_id) AS mal_id, bool_or(p.author) AS author, max(p.norm) AS norm,
           max(p.popularity) AS popularity, sum(q.w) AS dot
    FROM catalog_grams p JOIN q USING (gram)
    GROUP BY p.variant_id
    HAVING sum(q.w) >= %(min_dot)s
), v AS (
    SELECT mal_id, author, popularity, dot / (%(qnorm)s * norm) AS cos, dot / (%(qnorm)s * %(qnorm)s) AS contain
    FROM d
), top AS (
    SELECT * FROM v
    ORDER BY CASE WHEN author THEN %(w_author)s * cos * contain * contain ELSE cos + %(w_contain)s * contain END DESC,
             mal_id
    LIMIT %(variant_limit)s
), agg AS (
    SELECT mal_id, max(popularity) AS popularity,
           coalesce(max(cos) FILTER (WHERE NOT author), 0) AS title,
           coalesce(max(contain) FILTER (WHERE NOT author), 0) AS contain,
           coalesce(max(cos * contain * contain) FILTER (WHERE author), 0) AS author
    FROM top GROUP BY mal_id
)
SELECT mal_id, title, contain, author, popularity FROM agg
ORDER BY greatest(title + %(w_contain)s * contain, %(w_author)s * author) + %(w_prior)s * popularity DESC, mal_id
LIMIT %(limit)s
"""

_EXACT_PREFIX_SQL = """
SELECT t.mal_id, bool_or(t.variant = %(q)s) AS exact, c.popularity
FROM catalog_titles t JOIN catalog_items c USING (mal_id)
WHERE t.field = 'title' AND t.variant LIKE %(like)s
GROUP BY t.mal_id, c.popularity
LIMIT 51
"""

_IDF_SQL = "SELECT gram, idf FROM catalog_gram_idf WHERE gram = ANY(%(grams)s)"

_DENSE_SQL = """
(SELECT v.mal_id, 1 - (v.embedding <=> %(vec)s::vector) AS cos, c.popularity
 FROM catalog_vectors v JOIN catalog_items c USING (mal_id) WHERE v.mal_id = ANY(%(ids)s))
UNION
(SELECT v.mal_id, 1 - (v.embedding <=> %(vec)s::vector) AS cos, c.popularity
 FROM catalog_vectors v JOIN catalog_items c USING (mal_id)
 ORDER BY v.embedding <=> %(vec)s::vector LIMIT %(ann_k)s)
"""


def _vector_literal(row: np.ndarray) -> str:
    """pgvector text form "[x1,x2,...]" (float32 printed with repr precision)."""
    return "[" + ",".join(repr(float(x)) for x in row) + "]"


class PgVectorIndex:
    """Catalog search served by PostgreSQL with pgvector (implements core.ports.SearchIndex).

    Several app processes share one loaded catalog. Tables (created by ``create``):
    ``catalog_items(mal_id, popularity)``, ``catalog_titles(variant_id, mal_id, field 'title'|'author',
    variant = normalised name, norm)``, ``catalog_grams(gram, variant_id, mal_id, author, norm, popularity)``
    (trigram posting list, B-tree primary key on (gram, variant_id) INCLUDE (the rest) so a query
    reads only index pages — the same inverted index pg_trgm's GIN keeps; the
    pg_trgm extension itself is not needed, which matters because the ``pgserver`` wheel and many
    managed Postgres images ship pgvector without contrib), ``catalog_gram_idf(gram, idf)``,
    ``catalog_vectors(mal_id, embedding vector(d))`` with an HNSW cosine index, and ``catalog_meta``
    (schema version, embedder fingerprint and dimension, item count).

    Query path (``search``): ``parse_query`` strips the volume marker, ``normalize`` folds the rest,
    then up to three statements on one connection: lexical candidates (trigram TF-IDF over title
    variants and author names), exact/prefix title matches (text_pattern_ops index), and — when
    ``weights.dense`` > 0 — the LSA cosine of those candidates plus the ``ann_k`` nearest vectors
    from HNSW. Scores are fused in Python (see PgFusionWeights). Thread-safe: a pool hands each
    call its own connection; a single Connection is guarded by a lock.

    ``conn`` is a sync ``psycopg.Connection`` or ``psycopg_pool.ConnectionPool`` (an AsyncConnectionPool
    cannot serve this sync protocol). Raises ConfigurationError when the database holds no catalog,
    another schema version, or vectors from a different embedder.
    """

    def __init__(self, conn: Any, embedder: LsaEmbedder | None, weights: PgFusionWeights | None = None):
        self._conn = conn
        self._lock = threading.Lock()
        self.embedder = embedder
        self.weights = weights or PgFusionWeights()
        meta = self._meta()
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise ConfigurationError(
                f"no catalog search schema v{SCHEMA_VERSION} in this database (found {meta.get('schema_version')!r}); "
                "load it with PgVectorIndex.create(...)"
            )
        self.n_items = int(meta["n_items"])
        self.dim = int(meta["dim"])
        self.n_variants = max(int(meta["n_variants"]), 1)
        if self.weights.dense and embedder is None:
            raise ConfigurationError("dense weight > 0 needs the embedder that loaded the vectors")
        if embedder is not None and embedder_fingerprint(embedder) != meta["embedder"]:
            raise ConfigurationError("the embedder differs from the one that loaded catalog_vectors; reload the catalog")
        # 2-character names too: here the names found only *add* author candidates to the query's own pass
        # (test ja_author R@1 0.997 with them, 0.987 from 3 characters up).
        self._ja_names = ja_name_matcher(self._author_names(), min_len=2)
        self._phonetic: PhoneticCandidates | None = None
        if self.weights.phonetic:
            self._load_phonetic()

    # ---- connections ---------------------------------------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        if hasattr(self._conn, "getconn"):  # psycopg_pool.ConnectionPool
            with self._conn.connection() as conn:
                yield conn
        else:
            with self._lock, self._conn.transaction():
                yield self._conn

    def _author_names(self) -> list[str]:
        """Every normalised author name in the database (MAL's romanised ones and the Japanese ones)."""
        import psycopg

        with self._connection() as conn, conn.cursor(row_factory=psycopg.rows.tuple_row) as cur:
            cur.execute("SELECT DISTINCT variant FROM catalog_titles WHERE field = 'author'")
            return [r[0] for r in cur.fetchall()]

    def _load_phonetic(self) -> None:
        """Read the title variants and popularity for the phonetic loanword pass (``PhoneticCandidates``; ~1.3 s for
        the shipped catalog, ~1.1 s of it the matcher build)."""
        import psycopg

        with self._connection() as conn, conn.cursor(row_factory=psycopg.rows.tuple_row) as cur:
            cur.execute("SELECT t.mal_id, t.variant, c.popularity FROM catalog_titles t JOIN catalog_items c USING (mal_id) "
                        "WHERE t.field = 'title' ORDER BY t.mal_id, t.variant_id")
            rows = cur.fetchall()
        self._popularity = {mal_id: float(pop) for mal_id, _, pop in rows}
        self._phonetic = PhoneticCandidates((mal_id, variant) for mal_id, variant, _ in rows)

    def _meta(self) -> dict[str, str]:
        import psycopg

        with self._connection() as conn, conn.cursor(row_factory=psycopg.rows.tuple_row) as cur:
            cur.execute("SELECT to_regclass('catalog_meta') IS NOT NULL")
            if not cur.fetchone()[0]:
                return {}
            cur.execute("SELECT key, value FROM catalog_meta")
            return dict(cur.fetchall())

    # ---- loading -------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        conn: Any,
        catalog: Any,
        embedder: LsaEmbedder | None = None,
        *,
        weights: PgFusionWeights | None = None,
    ) -> PgVectorIndex:
        """(Re)load ``catalog`` (anything with ``.items``, or a sequence of CatalogItem) and return an index on it.

        Fits ``LsaEmbedder.fit_catalog(items)`` when ``embedder`` is None (≈25 s on the full 11,815-title
        catalog on 2 cores; pass a fitted one to reuse it). Needs ``CREATE EXTENSION vector`` rights.
        Drops and recreates the catalog_* tables in one transaction under an advisory lock (readers keep
        the old catalog until commit), loads rows with COPY, then builds the B-tree and HNSW indexes.
        The full catalog loads in ≈10-20 s (HNSW build dominates). Raises ValueError on an empty catalog.
        """
        import psycopg

        items: list[CatalogItem] = list(getattr(catalog, "items", catalog))
        if not items:
            raise ValueError("cannot load an empty catalog")
        if embedder is None:
            embedder = LsaEmbedder.fit_catalog(items)

        members = np.array([max(it.members, 0) for it in items], dtype=np.float64)
        popularity = np.log1p(members) / max(float(np.log1p(members.max())), 1.0)

        variants: list[tuple[int, str, str]] = []  # (mal_id, field, normalised text)
        for it in items:
            for v in title_variants(it):
                variants.append((it.mal_id, "title", v))
            for a in dict.fromkeys(normalize(a) for a in (*it.authors, *it.authors_ja)):
                if a:
                    variants.append((it.mal_id, "author", a))
        grams = [trigrams(v) for _, _, v in variants]
        df = Counter(g for gs in grams for g in gs)
        n = len(variants)
        idf = {g: math.log((1 + n) / (1 + d)) + 1.0 for g, d in df.items()}
        norms = [math.sqrt(sum(idf[g] ** 2 for g in gs)) or 1.0 for gs in grams]
        vectors = embedder.embed([_document(it) for it in items])

        pool = hasattr(conn, "getconn")
        ctx = conn.connection() if pool else _nullctx(conn)
        with ctx as c:
            with c.transaction(), c.cursor(row_factory=psycopg.rows.tuple_row) as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
                # one statement per execute: pools with prepare_threshold=0 prepare every statement
                for stmt in _statements(_DDL.format(dim=int(embedder.dim))):
                    cur.execute(stmt)
                with cur.copy("COPY catalog_items (mal_id, popularity) FROM STDIN") as cp:
                    for it, p in zip(items, popularity, strict=True):
                        cp.write_row((it.mal_id, float(p)))
                with cur.copy("COPY catalog_titles (variant_id, mal_id, field, variant, norm) FROM STDIN") as cp:
                    for vid, ((mal_id, field, text), nm) in enumerate(zip(variants, norms, strict=True)):
                        cp.write_row((vid, mal_id, field, text, nm))
                # Postings are written in gram order so each gram's rows share heap pages (few page reads).
                postings = sorted((g, vid) for vid, gs in enumerate(grams) for g in gs)
                pop = {it.mal_id: float(p) for it, p in zip(items, popularity, strict=True)}
                with cur.copy("COPY catalog_grams (gram, variant_id, mal_id, author, norm, popularity) FROM STDIN") as cp:
                    for g, vid in postings:
                        mal_id, field, _ = variants[vid]
                        cp.write_row((g, vid, mal_id, field == "author", norms[vid], pop[mal_id]))
                with cur.copy("COPY catalog_gram_idf (gram, idf) FROM STDIN") as cp:
                    for g, w in idf.items():
                        cp.write_row((g, w))
                with cur.copy("COPY catalog_vectors (mal_id, embedding) FROM STDIN") as cp:
                    for it, row in zip(items, vectors, strict=True):
                        cp.write_row((it.mal_id, _vector_literal(row)))
                for stmt in _statements(_INDEXES):
                    cur.execute(stmt)
                meta = {
                    "schema_version": SCHEMA_VERSION,
                    "embedder": embedder_fingerprint(embedder),
                    "dim": str(embedder.dim),
                    "n_items": str(len(items)),
                    "n_variants": str(n),
                }
                cur.executemany("INSERT INTO catalog_meta (key, value) VALUES (%s, %s)", list(meta.items()))
            # VACUUM sets the visibility map so postings are read by index-only scans; it cannot run in a
            # transaction block, hence after the commit and with autocommit on for the statement.
            autocommit = c.autocommit
            c.autocommit = True
            try:
                c.execute("VACUUM (ANALYZE) catalog_grams")
            finally:
                c.autocommit = autocommit
        return cls(conn, embedder, weights)

    def __len__(self) -> int:
        return self.n_items

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        """Same vectors as ``self.embedder.embed`` (TF-IDF → SVD projection → L2 norm), ~30x faster per query:
        TruncatedSVD.transform multiplies by the transposed (Fortran-order) components; we keep a C-order copy."""
        if not hasattr(self, "_components_t"):
            self._components_t = np.ascontiguousarray(self.embedder.svd.components_.T, dtype=np.float32)
        x = self.embedder.vectorizer.transform([normalize(t) for t in texts])
        z = np.asarray(x @ self._components_t, dtype=np.float32)
        norms = np.linalg.norm(z, axis=1, keepdims=True)
        np.divide(z, norms, out=z, where=norms > 0)
        return z

    # ---- search --------------------------------------------------------------------------------

    def search(self, query: str, k: int = 10) -> list[SearchHit]:
        """Best-first hits (at most ``k``) for one query, ``volume`` parsed off the query; [] for empty/garbage
        queries or k <= 0. Never raises on odd text (database errors such as a lost connection do raise psycopg errors)."""
        return self.search_many([query], k)[0]

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[SearchHit]]:
        """Batch form of ``search``: same results; all queries run on one connection (one checkout from a pool)."""
        queries = list(queries)
        if k <= 0 or not queries:
            return [[] for _ in queries]
        parsed = [parse_query(q if isinstance(q, str) else "") for q in queries]
        texts = [normalize(p.text) for p in parsed]
        vecs = None
        if self.weights.dense and self.embedder is not None:
            vecs = self._embed(texts)
        import psycopg

        out: list[list[SearchHit]] = []
        with self._connection() as conn, conn.cursor(row_factory=psycopg.rows.tuple_row) as cur:
            for i, (p, text) in enumerate(zip(parsed, texts, strict=True)):
                if not text:
                    out.append([])
                    continue
                scores = self._scores(cur, text, None if vecs is None else vecs[i], loanword_runs(p.text))
                ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
                out.append([SearchHit(mal_id=m, score=float(s), volume=p.volume) for m, s in ranked])
        return out

    def _lexical(self, cur: Any, text: str) -> list[tuple[int, float, float, float, float]]:
        """(mal_id, title cosine, containment, author score, popularity) of the lexical candidates of ``text``."""
        w = self.weights
        grams = trigrams(text)
        cur.execute(_IDF_SQL, {"grams": grams})
        known = dict(cur.fetchall())
        if not known:
            return []
        # Unknown grams get the largest idf a gram can have (df = 0) so they count against the cosine.
        max_idf = math.log(1 + self.n_variants) + 1.0
        qnorm = math.sqrt(sum(known.get(g, max_idf) ** 2 for g in grams)) or 1.0
        # cosine <= sqrt(containment) for binary weights, so containment < min_score² can never reach
        # min_score on a title, nor (cos·contain² <= contain^2.5) on an author: prune those variants.
        min_dot = min(w.min_score ** 2, (w.min_score / max(w.author, 1e-9)) ** 0.8) * qnorm * qnorm
        cur.execute(_LEXICAL_SQL, {"grams": list(known), "sq_idf": [x * x for x in known.values()], "qnorm": qnorm, "min_dot": min_dot,
                                   "variant_limit": 3 * w.candidates, "w_contain": w.contain,
                                   "w_author": w.author, "w_prior": w.prior, "limit": w.candidates})
        return cur.fetchall()

    def _scores(self, cur: Any, text: str, vec: np.ndarray | None, runs: Sequence[str] = ()) -> dict[int, float]:
        """Fused score per candidate mal_id for one normalised query (see PgFusionWeights); ``runs``: the query's
        ``loanword_runs`` (the phonetic pass runs on them unless they occur inside a title variant).

        A Japanese query holding a known Japanese author name ("三浦建太郎の漫画") also runs the lexical
        statement on the names ``segment_names`` cuts out of it (the text around a name has no word boundary
        to split on), and keeps the better author score per title, as the in-process index does.
        """
        w = self.weights
        lex: dict[int, float] = {}
        prior: dict[int, float] = {}
        for mal_id, title, contain, author, pop in self._lexical(cur, text):
            lex[mal_id] = max(title + w.contain * contain, w.author * author)
            prior[mal_id] = pop
        names = segment_names(text, self._ja_names) if self._ja_names and not text.isascii() else None
        if names:
            for mal_id, _title, _contain, author, pop in self._lexical(cur, " ".join(names)):
                lex[mal_id] = max(lex.get(mal_id, 0.0), w.author * author)
                prior[mal_id] = pop
        for mal_id, phon in self._phonetic.top(runs, w.candidates) if self._phonetic is not None else ():
            lex[mal_id] = max(lex.get(mal_id, 0.0), w.phonetic * phon)
            prior[mal_id] = self._popularity[mal_id]
        boost: dict[int, float] = {}
        like = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        cur.execute(_EXACT_PREFIX_SQL, {"q": text, "like": like})
        rows = cur.fetchall()
        use_prefix = len(text) >= 3 and len(rows) <= 50  # a prefix shared by many titles says nothing
        for mal_id, exact, pop in rows:
            b = w.exact * bool(exact) + (w.prefix if use_prefix else 0.0)
            if b:
                boost[mal_id] = b
                prior[mal_id] = pop
        dense: dict[int, float] = {}
        if vec is not None and float(np.abs(vec).sum()) > 0:
            cur.execute(_DENSE_SQL, {"vec": _vector_literal(vec), "ids": list(set(lex) | set(boost)),
                                     "ann_k": w.ann_k})
            for mal_id, cos, pop in cur.fetchall():
                dense[mal_id] = float(cos)
                prior[mal_id] = pop
        out: dict[int, float] = {}
        for mal_id in set(lex) | set(boost) | set(dense):
            lx = lex.get(mal_id, 0.0)
            b = boost.get(mal_id, 0.0)
            cos = dense.get(mal_id, 0.0)
            if lx < w.min_score and not b and not (w.dense and cos >= w.dense_min):
                continue
            out[mal_id] = lx + b + w.prior * prior.get(mal_id, 0.0) + w.dense * cos
        return out


def _statements(script: str) -> list[str]:
    """Split our own DDL script on ";" (it holds no string literals containing ";")."""
    return [st.strip() for st in script.split(";") if st.strip()]


@contextmanager
def _nullctx(conn: Any) -> Iterator[Any]:
    yield conn


def _document(item: CatalogItem) -> str:
    """The text embedded per title: every title variant and the authors (as LsaEmbedder.fit_catalog uses)."""
    return " ".join([item.title, item.title_en, item.title_ja, *item.synonyms, *item.authors])
