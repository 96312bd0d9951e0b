"""open_search_index: choose the catalog search backend (in-process, pgvector, OpenSearch) from settings;
shared_index: the in-process index, fitted once per process."""

from __future__ import annotations

import hashlib
import logging
import pickle
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.errors import ConfigurationError
from core.ports import SearchIndex
from core.settings import EncoderName
from tools.backends.catalog import DEFAULT_CATALOG
from tools.backends.models.encoder import SentenceEncoder
from tools.backends.search_index import HybridIndex, LsaEmbedder

log = logging.getLogger(__name__)

__all__ = ["open_search_index", "catalog_embedder", "shared_index"]


def _setting(settings: Any, name: str, default: Any) -> Any:
    """Read a settings field that core/settings.py may not define yet (see docs/search_backends.md)."""
    value = getattr(settings, name, None)
    return default if value is None else value


def catalog_embedder(catalog: Any, cache_dir: Path | None, dim: int = 128) -> LsaEmbedder:
    """``LsaEmbedder.fit_catalog(catalog.items, dim)``, pickled under ``cache_dir/lsa-<sha256 of the titles>.pkl``.

    Fitting takes ≈25 s on the full catalog (2 cores), so it is done once per machine; only files we
    wrote are unpickled. Every process must use the same embedder as the process that loaded the
    vectors (PgVectorIndex checks a fingerprint).
    """
    items = list(getattr(catalog, "items", catalog))
    h = hashlib.sha256(repr(dim).encode())
    for it in items:
        h.update(repr((it.mal_id, it.title, it.title_en, it.title_ja, it.synonyms, it.authors)).encode())
    path = Path(cache_dir) / f"lsa-{h.hexdigest()[:24]}.pkl" if cache_dir else None
    if path is not None and path.exists():
        with path.open("rb") as fh:
            return pickle.load(fh)
    embedder = LsaEmbedder.fit_catalog(items, dim=dim)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as fh:
            pickle.dump(embedder, fh, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
    return embedder


@lru_cache(maxsize=2)
def shared_index(catalog: Any, cache_dir: Path | None = None, encoder: EncoderName = "none") -> HybridIndex:
    """The search index of ``catalog``, fitted once per process (read-only, safe to share) and, with
    ``cache_dir``, persisted there keyed by a hash of the shipped catalog file (later starts load it).
    ``encoder`` "e5" adds the LoanwordMatcher for katakana queries (``settings.search_encoder``); its sentence
    encoder is loaded here (``SentenceEncoder.warm``), so no search reads the model from disk."""
    index = HybridIndex.build(catalog, cache_dir=cache_dir, catalog_path=DEFAULT_CATALOG if cache_dir else None,
                              encoder=SentenceEncoder() if encoder == "e5" else None)
    if index.loanwords is not None:
        index.loanwords.encoder.warm()  # a cached index holds its own (unpickled, not yet loaded) encoder
    return index


def open_search_index(settings: Any, catalog: Any, pool: Any | None = None) -> SearchIndex:
    """The SearchIndex selected by ``settings.search_backend`` ("memory" when unset).

    - ``memory``: the in-process HybridIndex (fitted once per process); katakana loanword queries are matched
      by sound (PhoneticMatcher) and, when ``settings.search_encoder`` is "e5", by a LoanwordMatcher too.
    - ``pgvector``: PgVectorIndex on ``pool`` when it is a sync ``psycopg_pool.ConnectionPool``, else on
      a new ConnectionPool(``settings.database_url``) (min 1, max ``settings.pool_max_size``). Loads
      the catalog (COPY + HNSW build, ≈15 s) when the database has no catalog tables yet.
    - ``opensearch``: OpenSearchIndex on ``settings.opensearch_url`` (index ``settings.opensearch_index``,
      default "manga-catalog"; retries ``settings.opensearch_max_retries`` times on 429/502/503/504);
      bulk-loads the catalog when the index does not exist, then reads its title variants once (one scroll) for
      the app-side phonetic loanword pass.

    ``settings.search_dense_weight`` (default 0.0) adds the LSA dense score; with 0 no embedder is fitted
    at start-up unless a load is needed. Raises ConfigurationError for an unknown backend or a missing URL.
    """
    backend = _setting(settings, "search_backend", "memory")
    dense = float(_setting(settings, "search_dense_weight", 0.0))
    cache_dir = _setting(settings, "model_dir", None)
    if backend == "memory":
        return shared_index(catalog, cache_dir, _setting(settings, "search_encoder", "e5"))

    if backend == "pgvector":
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        from tools.backends.pgvector_index import PgFusionWeights, PgVectorIndex

        if pool is None or not isinstance(pool, ConnectionPool):
            url = _setting(settings, "database_url", None)
            if not url:
                raise ConfigurationError("search_backend=pgvector needs DATABASE_URL (postgresql://...)")
            pool = ConnectionPool(url, min_size=1, max_size=int(_setting(settings, "pool_max_size", 4)), open=True,
                                  kwargs={"autocommit": True, "row_factory": dict_row, "prepare_threshold": 0})
        weights = PgFusionWeights(dense=dense)
        embedder = catalog_embedder(catalog, cache_dir) if dense else None
        try:
            return PgVectorIndex(pool, embedder, weights)
        except ConfigurationError as exc:
            if "no catalog search schema" not in str(exc):
                raise
            log.info("loading the catalog into Postgres (%s)", exc)
            return PgVectorIndex.create(pool, catalog, embedder or catalog_embedder(catalog, cache_dir), weights=weights)

    if backend == "opensearch":
        from tools.backends.opensearch_index import DEFAULT_INDEX, OpenSearchBoosts, OpenSearchIndex, open_client

        url = _setting(settings, "opensearch_url", None)
        if not url:
            raise ConfigurationError("search_backend=opensearch needs MANGAASSIST_OPENSEARCH_URL")
        client = open_client(url, max_retries=int(_setting(settings, "opensearch_max_retries", 3)))
        name = _setting(settings, "opensearch_index", DEFAULT_INDEX)
        embedder = catalog_embedder(catalog, cache_dir) if dense else None
        index = OpenSearchIndex(client, embedder, index=name, boosts=OpenSearchBoosts(knn=dense))
        if not client.indices.exists(index=name):
            log.info("bulk-loading the catalog into OpenSearch index %s", name)
            index.bulk_load(catalog, embedder or catalog_embedder(catalog, cache_dir))
        index.load_phonetic()
        return index

    raise ConfigurationError(f"unknown search_backend {backend!r} (expected 'memory', 'pgvector' or 'opensearch')")
