"""open_deps: build the process-wide Deps (catalog, index, recommender, entity linker, orders, policies, cache, models)."""

from __future__ import annotations

import logging
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.deps import Deps, Models
from core.errors import ConfigurationError
from core.settings import Settings
from tools.backends import recommender as recommender_module
from tools.backends.cache import open_cache
from tools.backends.catalog import DEFAULT_AUTHORS_JA, DEFAULT_CATALOG, load_catalog
from tools.backends.entities import shared_linker
from tools.backends.fit_cache import load_or_fit
from tools.backends.policies import MarkdownPolicyKB
from tools.backends.recommender import DEFAULT_RATINGS, HybridRecommender
from tools.backends.search_factory import open_search_index, shared_index
from tools.backends.seed import open_orders_repository

log = logging.getLogger(__name__)

__all__ = ["build_models", "local_models", "open_deps", "profile_models", "recommender_sources", "shared_index",
           "shared_recommender"]


def recommender_sources() -> list[Path]:
    """The modules of the ``tools.backends.recommender`` package, sorted by file name.

    ``shared_recommender``'s cache key hashes each one's bytes in this order, so an edit to any of them (the
    vocabularies, the model or the explanations, all pickled with or read by the fit) refits the model.

    Returns:
        The ``*.py`` files of the package directory (``__init__.py``, ``explanations.py``, ``model.py``, ...).
    """
    return sorted(Path(recommender_module.__file__).parent.glob("*.py"), key=lambda p: p.name)


@lru_cache(maxsize=2)
def shared_recommender(catalog: Any, cache_dir: Path | None = None) -> HybridRecommender:
    """The recommender of ``catalog``, fitted once per process (read-only, safe to share) and, with
    ``cache_dir``, pickled there keyed by a hash of the shipped catalog, Japanese authors and ratings files and
    the recommender's source, every module of its package (a fit is ~2-10 s on 2 cores, a load ~0.3 s; pass
    ``cache_dir`` only for the shipped catalog, which is what the key describes)."""
    parts = [DEFAULT_CATALOG, DEFAULT_AUTHORS_JA, DEFAULT_RATINGS, *recommender_sources(), str(len(catalog.items))]
    return load_or_fit(cache_dir, "recommender", parts, lambda: HybridRecommender.build(catalog))


def local_models(settings: Settings) -> Models:
    """The `local` profile's roles (router, planner, template writer, critic, agent policies); the router's sentence
    encoder is not loaded yet (``router.encoder.warm()``). The `bedrock` profile falls back to these."""
    from tools.backends.models.local_agents import local_agent_policies
    from tools.backends.models.local_critic import LocalCritic
    from tools.backends.models.local_planner import LocalPlanner
    from tools.backends.models.local_router import LocalRouter
    from tools.backends.models.local_writer import LocalTemplateWriter

    router = LocalRouter.from_settings(settings)
    return Models(profile="local", router=router, planner=LocalPlanner(router.aroute), writer=LocalTemplateWriter(),
                  critic=LocalCritic(), agents=local_agent_policies())


def profile_models(settings: Settings, local: Models) -> Models:
    """The model roles of ``settings.profile`` over the ``local`` roles (``local_models``). Raises
    ConfigurationError for an unusable profile (e.g. bedrock without credentials)."""
    if settings.profile == "local":
        return local
    if settings.profile == "bedrock":
        from tools.backends.models.bedrock import build_bedrock_models

        return build_bedrock_models(settings, fallback=local)
    raise ConfigurationError(f"unknown profile {settings.profile!r} (expected 'local' or 'bedrock')")


def build_models(settings: Settings, catalog: Any = None) -> Models:
    """The model roles of ``settings.profile``, with the local router's sentence encoder loaded (``warm()``: ~2 s
    for USE, ~0.5-1.4 s for e5) at start-up rather than by the first message routed. Raises ConfigurationError
    for an unusable profile."""
    local = local_models(settings)
    models = profile_models(settings, local)
    if local.router.encoder is not None:
        local.router.encoder.warm()
    return models


def _start_warming(encoder: Any) -> threading.Thread | None:
    """Start loading ``encoder`` (``warm()``) on a daemon thread; None when there is no encoder to load.
    Its load is mostly zlib decompression and numpy copies, which release the GIL, so it overlaps the catalog,
    index and recommender loads."""
    if encoder is None or getattr(encoder, "loaded", True):
        return None
    thread = threading.Thread(target=encoder.warm, name="router-encoder-warm", daemon=True)
    thread.start()
    return thread


async def open_deps(settings: Settings, pool: Any | None = None) -> Deps:
    """Build every long-lived backend once. ``pool`` (psycopg AsyncConnectionPool) puts orders on Postgres.

    Takes a few seconds (catalog load, index and recommender fit, router load/train); logs each step in ms.
    """
    t = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        timings[name] = round((now - t) * 1000, 1)
        t = now

    local = local_models(settings)
    models = profile_models(settings, local)  # first: a bedrock profile without credentials fails fast, before the fits
    warmer = _start_warming(local.router.encoder)
    lap("models")
    catalog = load_catalog()
    lap("catalog")
    index = open_search_index(settings, catalog)
    lap("index")
    recommender = shared_recommender(catalog, settings.model_dir)
    lap("recommender")
    linker = shared_linker(catalog, settings.model_dir)
    lap("linker")
    orders = await open_orders_repository(settings, pool=pool)
    lap("orders")
    policies = MarkdownPolicyKB.load(settings.shipped_data_dir / "policies")
    cache = open_cache(settings)
    lap("policies+cache")
    if warmer is not None:
        warmer.join()  # the router's encoder loaded (decompressing its weights) while the backends above were built
        lap("router_encoder_wait")
    log.info("deps ready in ms: %s", timings)
    deps = Deps(settings=settings, catalog=catalog, index=index, recommender=recommender, orders=orders,
                policies=policies, cache=cache, models=models, linker=linker)
    deps.closers += [orders.close, cache.close]
    return deps
