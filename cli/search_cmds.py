"""CLI commands of the search family: ``mangaassist search`` (stdin queries) and ``mangaassist eval search``."""

from __future__ import annotations

import json
import sys
from typing import Iterable, Iterator

import typer

_BATCH = 512  # queries read from stdin per search_many call


def _batches(lines: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for line in lines:
        batch.append(line.rstrip("\r\n"))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _positive(value: int) -> int:
    if value < 1:
        raise typer.BadParameter("must be >= 1")
    return value


def register(app: typer.Typer, eval_app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``search`` to ``app`` and ``search`` to ``eval_app`` (``bench_app`` is unused by this family)."""

    @app.command("search")
    def search_cmd(
        query: str = typer.Argument(None, help="One query; without it, one query per line is read from stdin."),
        k: int = typer.Option(10, "--k", callback=_positive, help="Hits per query (>= 1)."),
        as_json: bool = typer.Option(False, "--json", help="One JSON object per query line: {query, items:[{mal_id,title,score}]}"),
    ) -> None:
        """Search the catalog (titles in English, romaji or Japanese, authors, volumes, typos tolerated).

        The index is the agents' own (``open_search_index``: MANGAASSIST_SEARCH_BACKEND, cached in the model
        directory after the first build) and queries are answered in batches, so thousands of stdin lines
        take seconds.
        """
        from core.settings import get_settings
        from tools.backends.catalog import load_catalog
        from tools.backends.search_factory import open_search_index

        catalog = load_catalog()
        index = open_search_index(get_settings(), catalog)
        source: Iterable[str] = [query] if query is not None else sys.stdin
        for batch in _batches(source, _BATCH):
            results = index.search_many(batch, k)
            for q, hits in zip(batch, results):
                items = []
                for h in hits:
                    it = catalog.get(h.mal_id)
                    row = {"mal_id": h.mal_id, "title": it.title if it else "", "score": round(h.score, 4)}
                    if h.volume is not None:
                        row["volume"] = h.volume
                    items.append(row)
                if as_json:
                    sys.stdout.write(json.dumps({"query": q, "items": items}, ensure_ascii=False) + "\n")
                else:
                    _print_table(q, items, catalog)
        sys.stdout.flush()

    @eval_app.command("search")
    def eval_search_cmd(
        sample: int = typer.Option(None, "--sample", help="Number of queries (default 3,000, spread over kinds)."),
        split: str = typer.Option("test", "--split", help="'test' (held apart, reported) or 'dev' (tuning)."),
    ) -> None:
        """Known-item search evaluation: recall@1/@10, MRR@10 per query kind, latency, TF-IDF baselines."""
        if sample is not None and sample < 1:
            raise typer.BadParameter("must be >= 1", param_hint="--sample")
        if split not in ("test", "dev"):
            raise typer.BadParameter("must be 'test' or 'dev'", param_hint="--split")
        from bench.eval_search import print_report, run_search_eval

        print_report(run_search_eval(sample=sample, split=split))


def _print_table(query: str, items: list[dict], catalog) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"search: {query}")
    for col in ("#", "mal_id", "title", "English", "Japanese", "authors", "volume", "score"):
        table.add_column(col)
    for r, row in enumerate(items, start=1):
        it = catalog.get(row["mal_id"])
        table.add_row(
            str(r), str(row["mal_id"]), row["title"], it.title_en if it else "", it.title_ja if it else "",
            ", ".join(it.authors[:2]) if it else "", str(row.get("volume", "")), f"{row['score']:.3f}",
        )
    Console().print(table)
