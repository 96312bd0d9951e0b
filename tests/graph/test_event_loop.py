"""The event loop is never used for model loading or CPU-bound routing, search and recommender scoring.

Real router, index and recommender (built once, tests/graph/conftest.py); each test records which thread the
real work ran on, by wrapping the real method on the instance for the duration of one turn.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

from core.settings import get_settings
from tools.backends.catalog import load_catalog
from tools.backends.factory import build_models, shared_index


@contextmanager
def threads_of(obj, name: str):
    """Record ``threading.get_ident()`` of every call of ``obj.<name>`` (the real method still runs)."""
    real = getattr(obj, name)
    seen: list[int] = []

    def wrapper(*args, **kwargs):
        seen.append(threading.get_ident())
        return real(*args, **kwargs)

    setattr(obj, name, wrapper)  # an instance attribute: shadows the method, removed afterwards
    try:
        yield seen
    finally:
        delattr(obj, name)


def test_encoders_are_loaded_at_start_up(shared):
    models = build_models(shared["settings"])
    assert models.router.encoder is not None and models.router.encoder.loaded
    settings = get_settings()
    index = shared_index(load_catalog(), settings.model_dir, "e5")
    assert index.loanwords is not None and index.loanwords.encoder.loaded


async def test_routing_runs_off_the_event_loop(assistant):
    router = assistant.deps.models.router
    with threads_of(router, "route") as seen:
        out = await assistant.turn("Do you have Berserk?")
    assert out["intents"] == ["search"]
    assert seen, "the turn routed its message"
    assert threading.get_ident() not in seen


async def test_recommend_tool_scores_off_the_event_loop(assistant):
    deps = assistant.deps
    with threads_of(deps.linker, "link") as linked, threads_of(deps.recommender, "recommend") as scored:
        out = await assistant.turn("I liked Berserk, what should I read next?", user_id="u_chloe")
    assert out["intents"] == ["recommend"] and out["items"]
    assert linked and scored  # the seed "Berserk" was linked, then the picks scored
    assert threading.get_ident() not in linked + scored


async def test_entity_linking_runs_off_the_event_loop(assistant):
    with threads_of(assistant.deps.linker, "link") as linked:
        out = await assistant.turn("how many moons does Jupiter have?")
        out2 = await assistant.turn("anything by Ai Yazawa?")
    assert out["intents"] == ["out_of_scope"] and out2["intents"] == ["search"]
    assert linked and threading.get_ident() not in linked
