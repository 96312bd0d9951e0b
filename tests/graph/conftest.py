"""Fixtures for graph tests: real catalog, index, recommender, router and policies built once per session;
a fresh SQLite orders database per test; in-memory checkpointer and store (compiled at the test edge)."""

from __future__ import annotations

import dataclasses

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from core.deps import Deps
from core.settings import Settings
from graphs.app import Assistant
from graphs.supervisor import build_supervisor
from tools.backends.cache import InProcessCache
from tools.backends.catalog import load_catalog
from tools.backends.entities import shared_linker
from tools.backends.factory import build_models, shared_index, shared_recommender
from tools.backends.policies import MarkdownPolicyKB
from tools.backends.seed import open_orders_repository


@pytest.fixture(scope="session")
def shared(tmp_path_factory):
    """The expensive, read-only backends, built once (the router is cached in the default model_dir,
    keyed by a hash of its training data, so a clean machine trains it once for all runs)."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("ma"), database_url=None, redis_url=None)
    catalog = load_catalog()
    return {
        "settings": settings,
        "catalog": catalog,
        "index": shared_index(catalog),
        "recommender": shared_recommender(catalog, settings.model_dir),
        "models": build_models(settings),
        "policies": MarkdownPolicyKB.load(settings.shipped_data_dir / "policies"),
        "linker": shared_linker(catalog),
    }


@pytest.fixture
async def deps(shared, tmp_path):
    """Deps with a fresh seeded SQLite orders database in this test's tmp dir."""
    settings = shared["settings"].model_copy(update={"data_dir": tmp_path})
    orders = await open_orders_repository(settings)
    d = Deps(settings=settings, catalog=shared["catalog"], index=shared["index"], recommender=shared["recommender"],
             orders=orders, policies=shared["policies"], cache=InProcessCache(), models=shared["models"],
             linker=shared["linker"])
    yield d
    await orders.close()


@pytest.fixture
def assistant(deps):
    """The supervisor compiled with an in-memory checkpointer and store."""
    graph = build_supervisor(deps).compile(checkpointer=InMemorySaver(), store=InMemoryStore())
    return Assistant(graph, deps, None)


@pytest.fixture
async def demo(deps):
    """Seeded customers → {user_id: {status: [order_id, ...]}}."""
    out: dict[str, dict[str, list[str]]] = {}
    for u in await deps.orders.demo_users():
        for o in await deps.orders.list_orders(u["user_id"]):
            out.setdefault(u["user_id"], {}).setdefault(o.status, []).append(o.order_id)
    return out


def replace_models(deps: Deps, **roles) -> Deps:
    """Deps with some model roles swapped (scripted models in node tests)."""
    return dataclasses.replace(deps, models=dataclasses.replace(deps.models, **roles))
