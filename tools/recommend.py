"""Recommendation-agent tools: personalised picks from stated likes, stored history and orders."""

from __future__ import annotations

import asyncio

from langchain_core.tools import BaseTool, tool
from langgraph.prebuilt import ToolRuntime
from pydantic import BaseModel, Field

from core.deps import Deps

LIKES_NAMESPACE = ("users", "{user_id}", "likes")
"""LangGraph store namespace of a customer's stated likes: one item per liked mal_id, value {title, score}."""

MIN_SEED_SCORE = 0.5
"""Fused search score a liked title needs to count as recognised (below it we do not guess)."""


class RecommendInput(BaseModel):
    liked_titles: list[str] = Field(default_factory=list, description="Titles the customer says they liked (any script).")
    preferences: str = Field("", description="Stated tastes in the customer's words: genres, moods, themes.")
    k: int = Field(5, ge=1, le=20, description="How many picks.")


def likes_namespace(user_id: str) -> tuple[str, ...]:
    """Store namespace holding ``user_id``'s liked titles."""
    return tuple(p.format(user_id=user_id) for p in LIKES_NAMESPACE)


def make_recommend_tools(deps: Deps) -> list[BaseTool]:
    """Tools of the Recommendation agent.

    ``recommend_manga`` resolves liked titles with the search index, adds the customer's stored likes
    (LangGraph store) and ordered titles (orders repository, as implicit score-8 history), remembers the
    new likes in the store, and asks the recommender. Artifact kind ``recommend``:
    {seeds:[summary], preferences, items:[summary + reason + score]}. Errors of the orders repository
    (e.g. sqlite3.Error, psycopg.OperationalError) propagate: the specialist's ToolNode re-raises them.
    """

    @tool(args_schema=RecommendInput, response_format="content_and_artifact")
    async def recommend_manga(runtime: ToolRuntime, liked_titles: list[str] | None = None,
                              preferences: str = "", k: int = 5) -> tuple[str, dict]:
        """Recommend manga for this customer from the titles they liked and their stated preferences."""
        user_id = getattr(runtime.context, "user_id", "anonymous")
        seeds: dict[int, float] = {}
        for title in liked_titles or []:
            hits = await asyncio.to_thread(deps.index.search, title, k=1)  # CPU (or pgvector/OpenSearch I/O)
            if hits and hits[0].score >= MIN_SEED_SCORE:
                seeds[hits[0].mal_id] = 10.0
        history = dict(seeds)
        store = runtime.store
        if store is not None:
            ns = likes_namespace(user_id)
            for rec in await store.asearch(ns, limit=50):
                history.setdefault(int(rec.key), float(rec.value.get("score", 9)))
            for mal_id in seeds:
                it = deps.catalog.get(mal_id)
                await store.aput(ns, str(mal_id), {"title": it.title if it else "", "score": 10})
        # A customer without orders (or the anonymous user) gets []; a failing orders database raises, as on
        # every other path: picks silently stripped of the customer's history would look like a working answer.
        for order in await deps.orders.list_orders(user_id):
            for line in order.items:
                history.setdefault(line.mal_id, 8.0)
        recs = await asyncio.to_thread(deps.recommender.recommend, history=list(history.items()),
                                       liked_text=preferences, k=k)  # CPU-bound scoring, off the event loop
        items = []
        for r in recs:
            it = deps.catalog.get(r.mal_id)
            if it is None:
                continue
            because = [deps.catalog.get(b).title for b in r.because_of if deps.catalog.get(b)]
            explain = getattr(deps.recommender, "explain", None)  # HybridRecommender: reasons in both languages
            reason_ja = explain(r, "ja", preferences) if explain else ""
            items.append({**it.summary(), "genres": list(it.genres[:4]), "score": round(float(r.score), 4),
                          "reason": r.reason, "reason_ja": reason_ja, "because_of": because})
        seed_views = [deps.catalog.get(m).summary() for m in seeds if deps.catalog.get(m)]
        content = "\n".join(f"{i['mal_id']}: {i['title']} — {i['reason']}" for i in items) or "no picks"
        return content, {"kind": "recommend", "seeds": seed_views, "preferences": preferences, "items": items}

    return [recommend_manga]
