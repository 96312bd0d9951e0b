"""Search-agent tools: catalog search and title details (LLM-visible; docstrings are descriptions)."""

from __future__ import annotations

from langchain_core.tools import BaseTool, tool
from pydantic import BaseModel, Field

from core.deps import Deps


class SearchInput(BaseModel):
    query: str = Field(description="Title (English, romaji or Japanese), author name, or keywords; may end with 'vol 3' / '3巻'.")
    k: int = Field(5, ge=1, le=20, description="How many results to return.")


class DetailsInput(BaseModel):
    mal_id: int = Field(description="Catalog id (mal_id) of a title shown earlier.")


def item_view(deps: Deps, mal_id: int, **extra) -> dict | None:
    """The catalog summary of ``mal_id`` plus ``extra`` fields, or None if unknown."""
    it = deps.catalog.get(mal_id)
    if it is None:
        return None
    return {**it.summary(), **extra}


def make_search_tools(deps: Deps) -> list[BaseTool]:
    """Tools of the Search agent, closed over ``deps.index`` and ``deps.catalog``.

    Each returns (content for a model, artifact dict for the writer/critic): artifact kinds
    ``search`` {query, volume, items:[summary + score]} and ``details`` {items:[summary + genres + synopsis]}.
    """

    @tool(args_schema=SearchInput, response_format="content_and_artifact")
    def search_catalog(query: str, k: int = 5) -> tuple[str, dict]:
        """Search the manga catalog (11,815 titles) by title in any script, author, or keywords."""
        hits = deps.index.search(query, k=k)
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
        return content, {"kind": "search", "query": query, "volume": volume, "items": items}

    @tool(args_schema=DetailsInput, response_format="content_and_artifact")
    def get_title_details(mal_id: int) -> tuple[str, dict]:
        """Full details (genres, synopsis, volumes, status, price) of one catalog title by mal_id."""
        it = deps.catalog.get(mal_id)
        if it is None:
            return f"no title with id {mal_id}", {"kind": "details", "items": []}
        view = {**it.summary(), "genres": list(it.genres), "demographic": it.demographic,
                "synopsis": it.synopsis[:600], "published": it.published}
        return f"{it.title}: {it.synopsis[:300]}", {"kind": "details", "items": [view]}

    return [search_catalog, get_title_details]
