"""``mangaassist eval fresh``: routing and search on the hand-written fresh items (data/eval/fresh)."""

from __future__ import annotations

import json
import pathlib
from typing import Annotated

import typer


def register(app: typer.Typer, eval_app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``eval fresh`` to ``eval_app``."""

    @eval_app.command("fresh")
    def eval_fresh(
        json_out: Annotated[pathlib.Path | None, typer.Option("--json-out", help="Also write the figures and errors as JSON.")] = None,
    ) -> None:
        """Fresh single-message items (test items: read once at the end of a change): routing macro-F1 of the
        router alone and of the served turn, out_of_scope and search recall, author-request recall@10 and
        title-request recall@1/@10, overall and per language. Runs on the embedded defaults (~1-2 min)."""
        from bench.eval_fresh import print_report, run_fresh_eval

        summary = run_fresh_eval()
        print_report(summary)
        if json_out is not None:
            json_out.write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
