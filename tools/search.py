"""Search-agent tools: catalog search and title details (LLM-visible; docstrings are descriptions)."""

from __future__ import annotations

import re

from langchain_core.tools import BaseTool, tool
from pydantic import BaseModel, Field

from core.deps import Deps
from core.domain import SearchHit


class SearchInput(BaseModel):  # noqa: D101 - a tool's args_schema: a docstring would become its JSON schema's description, sent to the model
    query: str = Field(description="Title (English, romaji or Japanese), author name, or keywords; may end with 'vol 3' / '3巻'.")
    k: int = Field(5, ge=1, le=20, description="How many results to return.")
    author: str | None = Field(None, max_length=120, description="An author's name (English, romaji or Japanese) "
                               "when the customer asks for that author's works: lists only their works.")


class DetailsInput(BaseModel):  # noqa: D101 - a tool's args_schema: a docstring would become its JSON schema's description, sent to the model
    mal_id: int = Field(description="Catalog id (mal_id) of a title shown earlier.")


_JA = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")


def item_view(deps: Deps, mal_id: int, **extra) -> dict | None:
    """The catalog summary of ``mal_id`` plus ``extra`` fields, or None if unknown. With ``deps.linker`` the
    summary's ``authors_ja`` names every author a Japanese answer can show in Japanese (the same person's name on
    another title when this one lacks it; EntityLinker.authors_ja_display)."""
    it = deps.catalog.get(mal_id)
    if it is None:
        return None
    view = it.summary()
    if deps.linker is not None:
        shown = deps.linker.authors_ja_display(it)
        if any(_JA.search(a) and a not in it.authors_ja for a in shown):  # a Japanese name the item lacked
            view["authors_ja"] = shown
    return {**view, **extra}


def make_search_tools(deps: Deps) -> list[BaseTool]:
    """Tools of the Search agent, closed over ``deps.index`` and ``deps.catalog``.

    Each returns (content for a model, artifact dict for the writer/critic): artifact kinds
    ``search`` {query, volume, author, items:[summary + score]} and ``details`` {items:[summary + genres +
    synopsis]}.

    With ``deps.linker`` the search lists only plausible matches: an author request (the ``author`` argument,
    or a query the linker reads as one: "anything by Ai Yazawa", "浅野いにおの漫画") lists that author's works,
    most popular first (score 1.0; ``author`` in the artifact is the catalog's name for them), and a query that
    names a title ("Vagabond", "hey, is Spirit Circle something you carry?", "ベルセルク 3巻") lists the index's
    hits carrying the titles named (the linker's works of that title when the index ranks none of them), not
    the nearest other titles after them. Anything else is the index's ranked search.
    """

    def author_hits(query: str, author: str | None, k: int) -> tuple[str | None, list[SearchHit]] | None:
        linker = deps.linker
        if linker is None:
            return None
        canon = linker.resolve_author(author) if author else None
        if canon is None:
            request = linker.link(query).author_request
            canon = request.key if request is not None else None
        if canon is None:
            return None
        return canon, [SearchHit(mal_id=m, score=1.0) for m in linker.works_of(canon)[:k]]

    def title_hits(query: str, k: int) -> list[SearchHit]:
        hits = deps.index.search(query, k=k)
        linker = deps.linker
        named = linker.link(query).named_titles if linker is not None else []
        if not named:
            return hits
        ids = list(dict.fromkeys(i for m in named for i in m.ids))
        kept = [h for h in hits if h.mal_id in set(ids)]
        return kept or [SearchHit(mal_id=m, score=1.0) for m in ids[:k]]

    @tool(args_schema=SearchInput, response_format="content_and_artifact")
    def search_catalog(query: str, k: int = 5, author: str | None = None) -> tuple[str, dict]:
        """Search the manga catalog (11,815 titles) by title in any script, author, or keywords."""
        by_author = author_hits(query, author, k)
        canon, hits = by_author if by_author is not None else (None, title_hits(query, k))
        items = []
        volume = None
        for h in hits:
            view = item_view(deps, h.mal_id, score=round(float(h.score), 4))
            if view is not None:
                if h.volume is not None:
                    volume = h.volume
                    view["volume"] = h.volume
                items.append(view)
        content = "\n".join(f"{i['mal_id']}: {i['title']} ({', '.join(i['authors'][:2])})" for i in items) or "no results"
        return content, {"kind": "search", "query": query, "volume": volume, "author": canon, "items": items}

    @tool(args_schema=DetailsInput, response_format="content_and_artifact")
    def get_title_details(mal_id: int) -> tuple[str, dict]:
        """Full details (genres, synopsis, volumes, status, price) of one catalog title by mal_id."""
        it = deps.catalog.get(mal_id)
        if it is None:
            return f"no title with id {mal_id}", {"kind": "details", "items": []}
        view = {**item_view(deps, mal_id), "genres": list(it.genres), "demographic": it.demographic,
                "synopsis": it.synopsis[:600], "published": it.published}
        return f"{it.title}: {it.synopsis[:300]}", {"kind": "details", "items": [view]}

    return [search_catalog, get_title_details]
