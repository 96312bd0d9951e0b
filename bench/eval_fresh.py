"""Fresh single-message items: routing and search on phrasings written by hand, from no training template.

The router's own splits (``eval routing``, ``eval search``) are filled from templates, and they were consulted
through many rounds of tuning. These items (data/eval/fresh, provenance in its README) are a second opinion:
natural author requests, title requests, general-knowledge questions shaped like searches, store questions,
small talk and hand-offs, in English and Japanese. They are test items: read once at the end of a change.

Two views of routing are measured:
- ``router``: the router's decision on the message alone (``Router.route_many``), as ``eval routing`` measures;
- ``turn``: the intents a real turn served on a fresh thread (classify node: router + the catalog and
  follow-up rules), on the embedded defaults. This is what a customer gets.

Search items are run as real turns too (search_k = 10, a fresh thread each), and the items the answer lists
are scored: for an author request, recall@10 = |listed ∩ that author's works| / min(10, |works|) (the works
are the catalog's titles whose ``authors`` include the name), hit@1 (the first item is the author's) and
precision (the share of listed items that are the author's); for a title request, recall@1 and recall@10 of
the title and the mean number of items listed (a request naming one title should not be padded).
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Sequence

from bench.eval_routing import _figures, _prf
from core.ports import INTENTS

FRESH_DIR = pathlib.Path(__file__).resolve().parent.parent / "data" / "eval" / "fresh"
FRESH_BATCHES = {1: FRESH_DIR, 2: FRESH_DIR.parent / "fresh2"}
"""Item batches by number: each was written for one change and is read once, at its end (README of each)."""
K = 10


@dataclass(frozen=True, slots=True)
class RoutingItem:
    """One fresh routing item: ``text``, gold ``labels`` (intent names), ``lang`` ("en" | "ja")."""

    text: str
    labels: tuple[str, ...]
    lang: str


@dataclass(frozen=True, slots=True)
class SearchItem:
    """One fresh search item: ``kind`` "author" (``author``: a catalog author name, romaji as in
    ``CatalogItem.authors``) or "title" (``mal_id``), the request ``text`` and its ``lang``."""

    text: str
    kind: str
    lang: str
    author: str | None = None
    mal_id: int | None = None


def load_items(directory: pathlib.Path = FRESH_DIR) -> tuple[list[RoutingItem], list[SearchItem]]:
    """The fresh routing and search items (routing.jsonl, search.jsonl). Raises ValueError on an unknown label,
    kind or language, and FileNotFoundError when a file is missing."""
    routing: list[RoutingItem] = []
    for line in (directory / "routing.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        labels = tuple(row["labels"])
        if not labels or set(labels) - set(INTENTS) or row["lang"] not in ("en", "ja"):
            raise ValueError(f"bad routing item: {row}")
        routing.append(RoutingItem(row["text"], labels, row["lang"]))
    search: list[SearchItem] = []
    for line in (directory / "search.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["kind"] not in ("author", "title") or row["lang"] not in ("en", "ja"):
            raise ValueError(f"bad search item: {row}")
        search.append(SearchItem(row["text"], row["kind"], row["lang"], row.get("author"), row.get("mal_id")))
    return routing, search


def routing_figures(items: Sequence[RoutingItem], predicted: Sequence[Sequence[str]]) -> dict:
    """Macro-F1 (labels with gold support), exact match, per-label P/R/F1, out_of_scope and search recall,
    overall and per language. ``predicted`` is one label list per item. Raises ValueError on a length mismatch."""
    if len(items) != len(predicted):
        raise ValueError("one prediction per item")

    def block(idx: list[int]) -> dict:
        gold = [items[i].labels for i in idx]
        pred = [tuple(predicted[i]) for i in idx]
        fig = _figures(gold, pred)
        fig["per_label"] = _prf(gold, pred, fig["labels"])
        return fig

    everything = list(range(len(items)))
    out = {"overall": block(everything)}
    for lang in ("en", "ja"):
        out[lang] = block([i for i in everything if items[i].lang == lang])
    out["errors"] = [{"text": items[i].text, "gold": list(items[i].labels), "pred": list(predicted[i])}
                     for i in everything if set(items[i].labels) != set(predicted[i])]
    return out


def search_figures(items: Sequence[SearchItem], listed: Sequence[Sequence[int]], catalog: Any) -> dict:
    """Author-request and title-request figures (module docstring) from the mal_ids each turn listed, overall and
    per language. ``catalog``: the catalog whose ``items`` define an author's works."""
    works: dict[str, set[int]] = {}
    for it in catalog.items:
        for a in it.authors:
            works.setdefault(a, set()).add(it.mal_id)

    def block(idx: list[int]) -> dict:
        auth = [i for i in idx if items[i].kind == "author"]
        title = [i for i in idx if items[i].kind == "title"]
        rec, hit1, prec = [], [], []
        for i in auth:
            w = works.get(items[i].author or "", set())
            top = list(listed[i])[:K]
            rec.append(len(w & set(top)) / min(K, len(w)) if w else 0.0)
            hit1.append(bool(top) and top[0] in w)
            prec.append(sum(m in w for m in top) / len(top) if top else 0.0)
        r1 = [bool(listed[i]) and listed[i][0] == items[i].mal_id for i in title]
        r10 = [items[i].mal_id in list(listed[i])[:K] for i in title]
        shown = [len(listed[i]) for i in title]

        def mean(xs: Sequence[float]) -> float | None:
            return round(sum(xs) / len(xs), 4) if xs else None

        return {"author": {"n": len(auth), "recall@10": mean(rec), "hit@1": mean(hit1), "precision": mean(prec)},
                "title": {"n": len(title), "recall@1": mean(r1), "recall@10": mean(r10), "items_listed": mean(shown)}}

    everything = list(range(len(items)))
    out = {"overall": block(everything)}
    for lang in ("en", "ja"):
        out[lang] = block([i for i in everything if items[i].lang == lang])
    return out


async def _turns(texts: Sequence[str], search_k: int) -> list[dict]:
    """One real turn per text, each on a fresh thread, on the embedded defaults in a scratch data dir."""
    from core.settings import Settings
    from graphs.app import Assistant

    with tempfile.TemporaryDirectory(prefix="mangaassist-fresh-") as tmp:
        settings = Settings(data_dir=pathlib.Path(tmp), database_url=None, redis_url=None, search_k=search_k)
        async with AsyncExitStack() as stack:
            assistant = await Assistant.open(settings, stack)
            out = []
            for n, text in enumerate(texts):
                out.append(await assistant.turn(text, thread_id=f"fresh-{n}", user_id="u_fresh"))
            return out


def run_fresh_eval(directory: pathlib.Path = FRESH_DIR) -> dict:
    """Route and run every fresh item; returns {"routing": {"router", "turn"}, "search", "n_routing",
    "n_search", "seconds"} with the figures of ``routing_figures`` / ``search_figures``."""
    from core.settings import Settings
    from tools.backends.catalog import load_catalog
    from tools.backends.factory import build_models

    t0 = time.perf_counter()
    routing, search = load_items(directory)
    router = build_models(Settings(database_url=None, redis_url=None)).router
    decisions = router.route_many([it.text for it in routing])
    turns = asyncio.run(_turns([it.text for it in routing] + [it.text for it in search], K))
    route_turns, search_turns = turns[: len(routing)], turns[len(routing):]
    return {
        "n_routing": len(routing),
        "n_search": len(search),
        "routing": {"router": routing_figures(routing, [d.intents for d in decisions]),
                    "turn": routing_figures(routing, [t["intents"] for t in route_turns])},
        "search": search_figures(search, [[i["mal_id"] for i in t["items"]] for t in search_turns], load_catalog()),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def _val(figures: dict, label: str, key: str) -> str:
    per = figures["per_label"]
    return f"{per[label][key]:.3f}" if label in per else "-"


def print_report(summary: dict) -> None:
    """Rich tables: routing (router alone and the served turn) and search, overall / en / ja."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"Fresh routing items ({summary['n_routing']}): macro-F1 and recall")
    for col in ("view", "lang", "n", "macro-F1", "exact", "out_of_scope R", "search R", "search P"):
        table.add_column(col)
    for view in ("router", "turn"):
        for lang in ("overall", "en", "ja"):
            f = summary["routing"][view][lang]
            table.add_row(view, lang, str(f["n"]), f"{f['macro_f1']:.3f}", f"{f['exact_match']:.3f}",
                          _val(f, "out_of_scope", "recall"), _val(f, "search", "recall"),
                          _val(f, "search", "precision"))
    console.print(table)
    per = summary["routing"]["turn"]["overall"]["per_label"]
    labels = Table(title="Per label, served turn (precision / recall / F1)")
    for col in ("label", "n", "P", "R", "F1"):
        labels.add_column(col)
    for lab, v in per.items():
        labels.add_row(lab, str(v["support"]), f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}")
    console.print(labels)
    st = Table(title=f"Fresh search items ({summary['n_search']}), answers listing up to {K} items")
    for col in ("lang", "author n", "author R@10", "author hit@1", "author precision",
                "title n", "title R@1", "title R@10", "items listed"):
        st.add_column(col)
    for lang in ("overall", "en", "ja"):
        a, t = summary["search"][lang]["author"], summary["search"][lang]["title"]
        st.add_row(lang, str(a["n"]), str(a["recall@10"]), str(a["hit@1"]), str(a["precision"]),
                   str(t["n"]), str(t["recall@1"]), str(t["recall@10"]), str(t["items_listed"]))
    console.print(st)
    console.print(f"{summary['seconds']} s")
