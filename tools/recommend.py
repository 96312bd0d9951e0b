"""Recommendation-agent tools: personalised picks from stated likes, stored history and orders."""

from __future__ import annotations

import asyncio
import re

from langchain_core.tools import BaseTool, tool
from langgraph.prebuilt import ToolRuntime
from pydantic import BaseModel, Field

from core.deps import Deps

LIKES_NAMESPACE = ("users", "{user_id}", "likes")
"""LangGraph store namespace of a customer's stated likes: one item per liked mal_id, value {title, score}."""

FINISHED_ONLY = re.compile(r"\b(?:finished|completed?|ended|concluded|not ongoing)\b|完結", re.I)
"""Preferences asking for finished series only ("something like it but finished", "完結済みで"): ongoing,
hiatus and discontinued series are not picked."""

MIN_SEED_SCORE = 0.5
"""Fused search score a liked title needs to count as recognised (below it we do not guess)."""


class RecommendInput(BaseModel):  # noqa: D101 - a tool's args_schema: a docstring would become its JSON schema's description, sent to the model
    liked_titles: list[str] = Field(default_factory=list, description="Titles the customer says they liked (any script).")
    preferences: str = Field("", description="Stated tastes in the customer's words: genres, moods, themes.")
    k: int = Field(5, ge=1, le=20, description="How many picks.")
    exclude_ids: list[int] = Field(default_factory=list, max_length=100,
                                   description="Catalog ids (mal_id) already shown in this conversation, not to repeat.")
    finished_only: bool = Field(False, description="Only finished (completed) series, e.g. 'but finished', '完結済みで'.")


def likes_namespace(user_id: str) -> tuple[str, ...]:
    """Store namespace holding ``user_id``'s liked titles."""
    return tuple(p.format(user_id=user_id) for p in LIKES_NAMESPACE)


def make_recommend_tools(deps: Deps) -> list[BaseTool]:
    """Tools of the Recommendation agent.

    ``recommend_manga`` resolves liked titles (the entity linker's title in the name when ``deps.linker`` is
    set, else the search index's best hit with a fused score ≥ MIN_SEED_SCORE), remembers them in the store as
    likes, and asks the recommender:

    - seeded ("something like Mushishi"): the picks rank by the named titles alone, so they and every
      explanation come from what the customer said this turn; the customer's stored likes and ordered titles
      are only excluded (never listed), as are the seeds themselves;
    - unseeded ("what should I read next?"): the stored likes (LangGraph store) and ordered titles (orders
      repository, as implicit score-8 history) are the history the picks come from.

    ``exclude_ids`` (titles already shown) are never picked; ``finished_only`` (or preferences matching
    FINISHED_ONLY) picks only finished series. Artifact kind ``recommend``: {seeds:[summary], preferences,
    finished_only, items:[summary + reason + score]}. Errors of the
    orders repository (e.g. sqlite3.Error, psycopg.OperationalError) propagate: the specialist's ToolNode
    re-raises them.
    """
    unfinished = [it.mal_id for it in deps.catalog.items if it.status != "Finished"]

    def seed_of(title: str) -> int | None:
        linker = deps.linker
        if linker is not None:
            named = linker.link(title).titles
            if named:
                return int(named[0].ids[0])
        hits = deps.index.search(title, k=1)
        return hits[0].mal_id if hits and hits[0].score >= MIN_SEED_SCORE else None

    @tool(args_schema=RecommendInput, response_format="content_and_artifact")
    async def recommend_manga(runtime: ToolRuntime, liked_titles: list[str] | None = None,
                              preferences: str = "", k: int = 5, exclude_ids: list[int] | None = None,
                              finished_only: bool = False) -> tuple[str, dict]:
        """Recommend manga for this customer from the titles they liked and their stated preferences."""
        user_id = getattr(runtime.context, "user_id", "anonymous")
        seeds: dict[int, float] = {}
        for title in liked_titles or []:
            mal_id = await asyncio.to_thread(seed_of, title)  # CPU (or pgvector/OpenSearch I/O)
            if mal_id is not None:
                seeds[mal_id] = 10.0
        known: dict[int, float] = {}  # what the customer liked before or ordered
        store = runtime.store
        if store is not None:
            ns = likes_namespace(user_id)
            for rec in await store.asearch(ns, limit=50):
                known.setdefault(int(rec.key), float(rec.value.get("score", 9)))
            for mal_id in seeds:
                it = deps.catalog.get(mal_id)
                await store.aput(ns, str(mal_id), {"title": it.title if it else "", "score": 10})
        # A customer without orders (or the anonymous user) gets []; a failing orders database raises, as on
        # every other path: picks silently stripped of the customer's history would look like a working answer.
        for order in await deps.orders.list_orders(user_id):
            for line in order.items:
                known.setdefault(line.mal_id, 8.0)
        if seeds:  # rank by what was named now; what they liked or own before is only never listed
            history, exclude = list(seeds.items()), [m for m in known if m not in seeds]
        else:
            history, exclude = list(known.items()), []
        exclude += [int(m) for m in exclude_ids or []]
        finished_only = bool(finished_only or FINISHED_ONLY.search(preferences or ""))
        if finished_only:
            exclude += unfinished
        recs = await asyncio.to_thread(deps.recommender.recommend, history=history, liked_text=preferences, k=k,
                                       exclude=exclude)  # CPU-bound scoring, off the event loop
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
        return content, {"kind": "recommend", "seeds": seed_views, "preferences": preferences,
                         "finished_only": finished_only, "items": items}

    return [recommend_manga]
