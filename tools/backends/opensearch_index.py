"""Catalog search on an OpenSearch cluster (opensearch-py): kuromoji + n-gram title analysis, k-NN vectors, popularity rank feature."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.domain import CatalogItem, SearchHit
from core.errors import MangaAssistError
from tools.backends.query import normalize, parse_query
from tools.backends.search_index import LsaEmbedder, PhoneticCandidates, loanword_runs, title_variants

__all__ = [
    "DEFAULT_INDEX",
    "OpenSearchBoosts",
    "OpenSearchIndex",
    "SearchBackendError",
    "SearchUnavailable",
    "index_body",
    "open_client",
]

DEFAULT_INDEX = "manga-catalog"
RETRY_ON_STATUS = (429, 502, 503, 504)
"""HTTP statuses the opensearch-py transport retries (429 = rejected_execution, 5xx = node/shard unavailable)."""


class SearchBackendError(MangaAssistError):
    """The search cluster answered with an error we cannot recover from (bad request, mapping conflict,
    failed bulk items). ``status`` is the HTTP status (None for bulk item failures); ``info`` the decoded body."""

    def __init__(self, message: str, status: int | None = None, info: Any = None):
        super().__init__(message)
        self.status = status
        self.info = info


class SearchUnavailable(SearchBackendError):
    """The cluster is overloaded (429) or unavailable (502/503/504, connection errors/timeouts) and stayed so
    through the client's retries. Callers may retry later or fall back to the in-process index."""


@dataclass(frozen=True)
class OpenSearchBoosts:
    """Per-clause boosts of the query built by ``OpenSearchIndex.query_body`` (BM25 scale; relative values matter).

    ``words``: fuzzy multi_match over word-level title/author fields (typos, AUTO edit distance);
    ``ngram``: character 2-3-gram title match (Japanese without word boundaries, partial titles);
    ``kuromoji``: Japanese morphological match on the native title and on the Japanese author names
    (``CatalogItem.authors_ja``: kuromoji finds the word boundaries a Japanese query lacks); ``exact``: term on the normalised
    title keyword; ``prefix``: edge n-gram title match (every query term must match);
    ``knn``: k-NN clause on the embedding (0 = no vector clause); ``popularity``: rank_feature on
    MyAnimeList members (saturation); ``synopsis``: English synopsis fallback for free-text queries;
    ``phonetic``: for a katakana loanword query (``loanword_runs``: ブリーチ, デスノートって何巻まで), each of the
    ``phonetic_candidates`` titles the app-side ``PhoneticMatcher`` scores best gets a constant-score clause
    worth ``phonetic`` × its 0-1 phonetic score (only after ``OpenSearchIndex.load_phonetic``). This value was
    not tuned (no cluster runs here): 2.0 puts a perfect sound match above the whole popularity clause (≤ 0.5)
    and near a fuzzy word match, as the in-process index's weight 1.0 does on its own scale.
    """

    words: float = 2.0
    ngram: float = 1.0
    kuromoji: float = 1.0
    exact: float = 5.0
    prefix: float = 1.0
    knn: float = 0.0
    knn_k: int = 20
    popularity: float = 0.5
    synopsis: float = 0.2
    fuzziness: str = "AUTO"
    ngram_minimum_should_match: str = "60%"
    phonetic: float = 2.0
    phonetic_candidates: int = 20


def index_body(dim: int, *, shards: int = 1, replicas: int = 1) -> dict:
    """The create-index request body (PUT /<index>): settings with analyzers and the mapping.

    Needs the analysis-kuromoji and k-NN plugins (both in the default OpenSearch distribution).
    Titles and author names are sent already passed through ``tools.backends.query.normalize``
    (NFKC, case fold, kana fold, long-vowel fold: the same text the in-process index sees), so the
    analyzers below only split them; the raw native title also goes to a kuromoji field.
    Analyzers: ``title_ngram`` (ngram tokenizer 2-3 chars, letters/digits/CJK), ``title_edge``
    (edge_ngram 1-20 per word, index side only; queries use ``title_words``), ``title_words``
    (standard tokenizer), ``ja`` (kuromoji_tokenizer search mode + baseform, POS, cjk_width, ja_stop,
    kuromoji_stemmer, lowercase). ``embedding`` is a ``knn_vector`` of ``dim`` dimensions, HNSW on the
    lucene engine with cosine similarity; ``members`` a ``rank_feature``.
    """
    return {
        "settings": {
            "index": {
                "number_of_shards": shards,
                "number_of_replicas": replicas,
                "knn": True,
                "max_ngram_diff": 1,
            },
            "analysis": {
                "tokenizer": {
                    "title_ngram": {
                        "type": "ngram",
                        "min_gram": 2,
                        "max_gram": 3,
                        "token_chars": ["letter", "digit"],
                    },
                    "title_edge": {
                        "type": "edge_ngram",
                        "min_gram": 1,
                        "max_gram": 20,
                        "token_chars": ["letter", "digit"],
                    },
                    "ja_search": {"type": "kuromoji_tokenizer", "mode": "search"},
                },
                "analyzer": {
                    "title_ngram": {"type": "custom", "tokenizer": "title_ngram", "filter": ["lowercase"]},
                    "title_edge": {"type": "custom", "tokenizer": "title_edge", "filter": ["lowercase"]},
                    "title_words": {"type": "custom", "tokenizer": "standard", "filter": ["lowercase"]},
                    "ja": {
                        "type": "custom",
                        "tokenizer": "ja_search",
                        "filter": [
                            "kuromoji_baseform",
                            "kuromoji_part_of_speech",
                            "cjk_width",
                            "ja_stop",
                            "kuromoji_stemmer",
                            "lowercase",
                        ],
                    },
                },
            },
        },
        "mappings": {
            "dynamic": "strict",
            "properties": {
                "mal_id": {"type": "integer"},
                "titles": {
                    "type": "text",
                    "analyzer": "title_ngram",
                    "fields": {
                        "words": {"type": "text", "analyzer": "title_words"},
                        "edge": {"type": "text", "analyzer": "title_edge", "search_analyzer": "title_words"},
                        "exact": {"type": "keyword"},
                    },
                },
                "title_ja": {"type": "text", "analyzer": "ja"},
                "authors_ja": {"type": "text", "analyzer": "ja"},
                "authors": {
                    "type": "text",
                    "analyzer": "title_words",
                    "fields": {"ngram": {"type": "text", "analyzer": "title_ngram"}},
                },
                "synopsis": {"type": "text", "analyzer": "english"},
                "members": {"type": "rank_feature"},
                "embedding": {
                    "type": "knn_vector",
                    "dimension": int(dim),
                    "method": {
                        "name": "hnsw",
                        "engine": "lucene",
                        "space_type": "cosinesimil",
                        "parameters": {"m": 16, "ef_construction": 128},
                    },
                },
            },
        },
    }


def open_client(url: str, *, max_retries: int = 3, retry_on_status: Sequence[int] = RETRY_ON_STATUS,
                timeout_s: float = 5.0, **kwargs: Any):
    """An ``opensearchpy.OpenSearch`` client for ``url`` ("https://user:pass@host:9200") with our retry policy.

    The transport retries a request up to ``max_retries`` times on connection errors and on the HTTP
    statuses in ``retry_on_status`` (immediately, no back-off: opensearch-py's behaviour) and on
    timeouts (``retry_on_timeout=True``); ``timeout_s`` is the per-request read timeout in seconds.
    Extra ``kwargs`` go to ``OpenSearch`` (e.g. ``connection_class``, ``verify_certs``, ``http_auth``).
    """
    from opensearchpy import OpenSearch

    return OpenSearch(hosts=[url], max_retries=max_retries, retry_on_status=tuple(retry_on_status),
                      retry_on_timeout=True, timeout=timeout_s, **kwargs)


def _document(item: CatalogItem, vector: np.ndarray | None) -> dict:
    doc: dict[str, Any] = {
        "mal_id": item.mal_id,
        "titles": title_variants(item) or [str(item.mal_id)],
        "title_ja": item.title_ja,
        "authors": [a for a in dict.fromkeys(normalize(a) for a in item.authors) if a],
        "authors_ja": list(item.authors_ja),
        "synopsis": item.synopsis,
        # rank_feature values must be positive; +1 keeps unranked titles indexable
        "members": max(int(item.members), 0) + 1,
    }
    if vector is not None:
        doc["embedding"] = [round(float(x), 6) for x in vector]
    return doc


def _embed_text(item: CatalogItem) -> str:
    return " ".join([item.title, item.title_en, item.title_ja, *item.synonyms, *item.authors])


class OpenSearchIndex:
    """Catalog search served by an OpenSearch cluster (implements core.ports.SearchIndex).

    ``client`` is an ``opensearchpy.OpenSearch`` (see ``open_client`` for the retry policy);
    ``embedder`` the LsaEmbedder whose vectors were bulk-loaded (needed only when ``boosts.knn`` > 0
    and for ``bulk_load``). One document per title, ``_id`` = mal_id (see ``index_body`` for fields).
    Queries are parsed client-side (``parse_query`` for the volume marker, ``normalize`` for the text)
    and sent as one ``bool`` query (``query_body``); ``search_many`` sends one ``_msearch``.
    Katakana loanwords (ブリーチ for BLEACH) share no n-gram with the Latin title; ``load_phonetic`` reads the
    title variants once and the app process then matches them by sound, as the other two backends do.
    Raises SearchUnavailable (429/5xx/connection failure after retries) or SearchBackendError (other
    cluster errors); empty or garbage queries give [] without a request.
    """

    def __init__(self, client: Any, embedder: LsaEmbedder | None = None, *, index: str = DEFAULT_INDEX,
                 boosts: OpenSearchBoosts | None = None):
        self.client = client
        self.embedder = embedder
        self.index = index
        self.boosts = boosts or OpenSearchBoosts()
        if self.boosts.knn and embedder is None:
            raise ValueError("a knn boost > 0 needs the embedder whose vectors were loaded")
        self._phonetic: PhoneticCandidates | None = None

    # ---- loading -------------------------------------------------------------------------------

    def create_index(self, dim: int, *, shards: int = 1, replicas: int = 1) -> dict:
        """PUT the index with ``index_body(dim)``; returns the acknowledgement. Raises SearchBackendError
        (e.g. 400 resource_already_exists_exception) or SearchUnavailable."""
        with _translate_errors():
            return self.client.indices.create(index=self.index, body=index_body(dim, shards=shards, replicas=replicas))

    def delete_index(self) -> None:
        """DELETE the index if it exists (404 is ignored)."""
        with _translate_errors():
            self.client.indices.delete(index=self.index, ignore=[404])

    def bulk_load(self, catalog: Any, embedder: LsaEmbedder | None = None, *, chunk_size: int = 500,
                  create: bool = True) -> int:
        """Index every title of ``catalog`` (``.items`` or a sequence of CatalogItem); returns the number indexed.

        With ``create`` the index is created first (``create_index(embedder.dim)``). Documents go through
        ``opensearchpy.helpers.bulk`` (``index`` actions, ``chunk_size`` per ``_bulk`` request) and the
        index is refreshed at the end so they are searchable at once. ``embedder`` defaults to the
        index's; without any, no vectors are stored. Raises SearchBackendError listing the first failed
        items when any bulk item fails, SearchUnavailable when the cluster is overloaded.
        """
        from opensearchpy import helpers

        items: list[CatalogItem] = list(getattr(catalog, "items", catalog))
        embedder = embedder or self.embedder
        if embedder is not None:
            self.embedder = embedder
        vectors = embedder.embed([_embed_text(it) for it in items]) if embedder is not None else None
        if create:
            self.create_index(embedder.dim if embedder is not None else 1)

        def actions() -> Iterator[dict]:
            for i, it in enumerate(items):
                yield {"_op_type": "index", "_index": self.index, "_id": str(it.mal_id),
                       "_source": _document(it, None if vectors is None else vectors[i])}

        with _translate_errors():
            try:
                ok, _ = helpers.bulk(self.client, actions(), chunk_size=chunk_size, max_retries=0)
            except helpers.BulkIndexError as exc:
                failed = exc.errors
                raise SearchBackendError(f"{len(failed)} catalog documents failed to index; first: {failed[:3]}",
                                         info=failed) from exc
            self.client.indices.refresh(index=self.index)
        return int(ok)

    def load_phonetic(self, batch_size: int = 1000) -> int:
        """Read every document's ``mal_id`` and ``titles`` (one scroll, ``opensearchpy.helpers.scan``, ``batch_size``
        per page) and build the app-side ``PhoneticCandidates`` over them. Returns the number of documents read; ~11.8k documents and
        ~1.1 s of matcher build for the shipped catalog. Until it is called, and when ``boosts.phonetic`` is 0,
        queries carry no phonetic clause. Raises SearchUnavailable / SearchBackendError (a shard failing the
        scroll included)."""
        from opensearchpy import helpers

        if not self.boosts.phonetic:
            return 0
        variants: list[tuple[int, str]] = []
        with _translate_errors():
            try:
                for hit in helpers.scan(self.client, index=self.index, size=batch_size,
                                        query={"_source": ["mal_id", "titles"], "query": {"match_all": {}}}):
                    src = hit.get("_source") or {}
                    mal_id = int(src.get("mal_id", hit["_id"]))
                    variants += [(mal_id, t) for t in src.get("titles") or [] if isinstance(t, str)]
            except helpers.ScanError as exc:
                raise SearchBackendError(f"catalog scroll failed: {exc}") from exc
        self._phonetic = PhoneticCandidates(variants)
        return self._phonetic.n_items

    def _phonetic_clauses(self, text: str) -> list[dict]:
        """Constant-score clauses (``term`` on mal_id, boost = ``boosts.phonetic`` × phonetic score) for the best
        ``boosts.phonetic_candidates`` titles by sound; [] unless ``text`` has ``loanword_runs`` that occur
        in no title variant (then the customer is typing a catalog title) and ``load_phonetic`` has run."""
        b = self.boosts
        if self._phonetic is None or not b.phonetic:
            return []
        return [{"constant_score": {"filter": {"term": {"mal_id": mal_id}}, "boost": round(b.phonetic * score, 4)}}
                for mal_id, score in self._phonetic.top(loanword_runs(text), b.phonetic_candidates)]

    # ---- search --------------------------------------------------------------------------------

    def query_body(self, query: str, k: int = 10) -> tuple[dict | None, int | None]:
        """(``_search`` request body, parsed volume) for one customer query; body None when nothing is left to search.

        The body is ``{"size": k, "_source": ["mal_id"], "query": {"bool": {"must": [{"bool": {"should": [...],
        "minimum_should_match": 1}}], "should": [rank_feature]}}}``: a title/author/synopsis/k-NN
        match (or, for a katakana loanword, a phonetic candidate clause) is required, popularity only reorders
        matches.
        """
        parsed = parse_query(query if isinstance(query, str) else "")
        text = normalize(parsed.text)
        if not text or k <= 0:
            return None, parsed.volume
        b = self.boosts
        should: list[dict] = [
            {"multi_match": {"query": text, "fields": ["titles.words", "authors"], "type": "best_fields",
                             "fuzziness": b.fuzziness, "prefix_length": 1, "boost": b.words}},
            {"match": {"titles": {"query": text, "minimum_should_match": b.ngram_minimum_should_match,
                                  "boost": b.ngram}}},
            {"match": {"authors.ngram": {"query": text, "minimum_should_match": "80%", "boost": b.ngram}}},
            {"term": {"titles.exact": {"value": text, "boost": b.exact}}},
            {"match": {"titles.edge": {"query": text, "operator": "and", "boost": b.prefix}}},
        ]
        if b.kuromoji:
            should.append({"match": {"title_ja": {"query": parsed.text, "boost": b.kuromoji}}})
            should.append({"match": {"authors_ja": {"query": parsed.text, "boost": b.kuromoji}}})
        if b.synopsis:
            should.append({"match": {"synopsis": {"query": parsed.text, "boost": b.synopsis}}})
        should += self._phonetic_clauses(parsed.text)
        if b.knn and self.embedder is not None:
            vec = self.embedder.embed([text])[0]
            if float(np.abs(vec).sum()) > 0:
                should.append({"knn": {"embedding": {"vector": [round(float(x), 6) for x in vec],
                                                     "k": b.knn_k, "boost": b.knn}}})
        body = {
            "size": k,
            "_source": ["mal_id"],
            "query": {
                "bool": {
                    "must": [{"bool": {"should": should, "minimum_should_match": 1}}],
                    "should": [{"rank_feature": {"field": "members", "saturation": {}, "boost": b.popularity}}],
                }
            },
        }
        return body, parsed.volume

    def search(self, query: str, k: int = 10) -> list[SearchHit]:
        """Best-first hits (at most ``k``) for one query (POST /<index>/_search); volume parsed off the query.
        [] for empty/garbage text or k <= 0 (no request). Raises SearchUnavailable / SearchBackendError."""
        body, volume = self.query_body(query, k)
        if body is None:
            return []
        with _translate_errors():
            resp = self.client.search(index=self.index, body=body)
        return _hits(resp, volume)

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[SearchHit]]:
        """Batch form of ``search``: one ``_msearch`` request (NDJSON header/body pairs) for every non-empty query.
        A failed sub-search raises SearchBackendError (SearchUnavailable for 429/5xx statuses)."""
        built = [self.query_body(q, k) for q in queries]
        lines: list[dict] = []
        for body, _ in built:
            if body is not None:
                lines += [{"index": self.index}, body]
        responses: list[dict] = []
        if lines:
            with _translate_errors():
                responses = list(self.client.msearch(body=lines)["responses"])
        out: list[list[SearchHit]] = []
        it = iter(responses)
        for body, volume in built:
            if body is None:
                out.append([])
                continue
            resp = next(it)
            if "error" in resp:
                status = resp.get("status")
                cls = SearchUnavailable if status in RETRY_ON_STATUS else SearchBackendError
                raise cls(f"msearch sub-query failed with HTTP {status}: {_reason(resp)}", status=status, info=resp)
            out.append(_hits(resp, volume))
        return out


def _hits(resp: dict, volume: int | None) -> list[SearchHit]:
    """SearchHits from a _search response (``hits.hits[]``: ``_source.mal_id``, else ``_id``; ``_score``)."""
    return [SearchHit(mal_id=int((h.get("_source") or {}).get("mal_id", h["_id"])), score=float(h.get("_score") or 0.0),
                      volume=volume) for h in resp["hits"]["hits"]]


def _reason(body: Any) -> str:
    err = body.get("error") if isinstance(body, dict) else body
    if isinstance(err, dict):
        return f"{err.get('type')}: {err.get('reason')}"
    return str(err)


class _translate_errors:
    """Context manager turning opensearch-py exceptions into SearchUnavailable / SearchBackendError."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None:
            return False
        from opensearchpy.exceptions import ConnectionError as OsConnectionError
        from opensearchpy.exceptions import TransportError

        if isinstance(exc, OsConnectionError):  # includes ConnectionTimeout (status "N/A")
            raise SearchUnavailable(f"search cluster unreachable: {exc}") from exc
        if isinstance(exc, TransportError):
            status = exc.status_code if isinstance(exc.status_code, int) else None
            cls = SearchUnavailable if status in RETRY_ON_STATUS else SearchBackendError
            raise cls(f"search cluster answered HTTP {status}: {_reason(exc.info)}", status=status, info=exc.info) from exc
        return False
