"""The fresh items and their metrics: files well-formed and linked to the catalog, and the figures computed as
documented (a wrong prediction or an unrelated listed title lowers them)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bench.eval_fresh import FRESH_BATCHES, RoutingItem, SearchItem, load_items, routing_figures, search_figures
from core.ports import INTENTS
from tools.backends.catalog import load_catalog


@pytest.mark.parametrize("batch", sorted(FRESH_BATCHES))
def test_fresh_items_are_well_formed_and_linked_to_the_catalog(batch):
    routing, search = load_items(FRESH_BATCHES[batch])
    assert len(routing) >= 150 and len(search) >= 60
    assert {lab for it in routing for lab in it.labels} == set(INTENTS) - {"cart"}  # both batches predate the cart
    assert {it.lang for it in routing} == {"en", "ja"} and {it.lang for it in search} == {"en", "ja"}
    catalog = load_catalog()
    authors = {a for it in catalog.items for a in it.authors}
    for it in search:
        assert (it.author in authors) if it.kind == "author" else catalog.get(it.mal_id) is not None, it
    assert len({it.text for it in routing}) == len(routing)


def test_routing_figures_count_a_wrong_label_against_both_sides():
    items = [RoutingItem("a", ("search",), "en"), RoutingItem("b", ("out_of_scope",), "ja"),
             RoutingItem("c", ("search",), "ja")]
    perfect = routing_figures(items, [["search"], ["out_of_scope"], ["search"]])
    assert perfect["overall"]["macro_f1"] == 1.0 and perfect["errors"] == []
    wrong = routing_figures(items, [["search"], ["search"], ["search"]])
    per = wrong["overall"]["per_label"]
    assert per["out_of_scope"]["recall"] == 0.0 and per["search"]["precision"] == 2 / 3
    assert wrong["ja"]["n"] == 2 and [e["text"] for e in wrong["errors"]] == ["b"]


def test_search_figures_author_recall_precision_and_title_padding():
    catalog = SimpleNamespace(items=[SimpleNamespace(mal_id=i, authors=("A",) if i < 3 else ("B",)) for i in range(6)])
    items = [SearchItem("by A", "author", "en", author="A"), SearchItem("t4", "title", "ja", mal_id=4)]
    fig = search_figures(items, [[0, 1, 5], [5, 4]], catalog)
    a, t = fig["overall"]["author"], fig["overall"]["title"]
    assert a["recall@10"] == round(2 / 3, 4) and a["hit@1"] == 1.0 and a["precision"] == round(2 / 3, 4)
    assert t["recall@1"] == 0.0 and t["recall@10"] == 1.0 and t["items_listed"] == 2.0
    assert fig["en"]["title"]["n"] == 0 and fig["ja"]["author"]["n"] == 0


def test_the_batches_share_no_text():
    texts = [{it.text.lower() for it in load_items(d)[0] + load_items(d)[1]} for d in FRESH_BATCHES.values()]
    assert not set.intersection(*texts)
