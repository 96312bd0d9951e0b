"""``mangaassist eval fresh``: routing and search on the hand-written fresh items (data/eval/fresh, fresh2)."""

from __future__ import annotations

import json
import pathlib
from typing import Annotated

import typer


def register(app: typer.Typer, eval_app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``eval fresh`` to ``eval_app``."""

    @eval_app.command("fresh")
    def eval_fresh(
        batch: Annotated[int, typer.Option(help="Item batch: 1 = data/eval/fresh, 2 = data/eval/fresh2 (each read once, "
                                                "at the end of the change it measures).")] = 1,
        json_out: Annotated[pathlib.Path | None, typer.Option("--json-out", help="Also write the figures and errors as JSON.")] = None,
    ) -> None:
        """Fresh single-message items (test items: read once at the end of a change): routing macro-F1 of the
        router alone and of the served turn, out_of_scope and search recall, author-request recall@10 and
        title-request recall@1/@10, overall and per language. Runs on the embedded defaults (~1-2 min)."""
        from bench.eval_fresh import FRESH_BATCHES, print_report, run_fresh_eval

        if batch not in FRESH_BATCHES:
            typer.echo(f"error: unknown batch {batch}; choose one of {', '.join(map(str, FRESH_BATCHES))}", err=True)
            raise typer.Exit(2)
        summary = run_fresh_eval(FRESH_BATCHES[batch])
        print_report(summary)
        if json_out is not None:
            json_out.write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
