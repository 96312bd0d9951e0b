"""``mangaassist eval conversations``: scripted multi-turn conversations (data/eval/conversations) on the real graph."""

from __future__ import annotations

import json
import pathlib
from typing import Annotated

import typer


def register(app: typer.Typer, eval_app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``eval conversations`` to ``eval_app``."""

    @eval_app.command("conversations")
    def eval_conversations(
        split: Annotated[str, typer.Option(help="dev | test | test2 (test splits: each read once, at the end of a change; test2 is hand-written).")] = "dev",
        sample: Annotated[int | None, typer.Option(min=1, help="Run a seeded sample of N conversations.")] = None,
        seed: Annotated[int, typer.Option(help="Seed of the sample.")] = 0,
        json_out: Annotated[pathlib.Path | None, typer.Option("--json-out", help="Also write the figures (and the dev "
                                                                               "split's failing turns) as JSON.")] = None,
    ) -> None:
        """Every turn of each conversation runs through the supervisor graph on the embedded defaults (its own
        thread and freshly seeded orders) and is judged by its checks: intent, item listed or focused, order,
        fact stated, answer language, never/only, interrupt. Prints pass rates per check kind and language,
        follow-up and direct-answer turns; failing turns for dev. Full dev split: about 2-4 minutes."""
        from bench.eval_conversations import SPLITS, print_report, run_conversations_eval

        if split not in SPLITS:
            typer.echo(f"error: unknown split {split!r}; choose one of {', '.join(SPLITS)}", err=True)
            raise typer.Exit(2)
        summary = run_conversations_eval(split, sample=sample, seed=seed)
        print_report(summary)
        if json_out is not None:
            json_out.write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
