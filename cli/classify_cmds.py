"""`mangaassist classify` (router on stdin lines) and `mangaassist eval routing` commands."""

from __future__ import annotations

import json
import sys
from typing import Iterator

import typer

BATCH = 512
"""Lines routed per ``route_many`` call."""


def _batches(lines: Iterator[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for line in lines:
        text = line.strip()
        if not text:
            continue
        batch.append(text)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def register(app: typer.Typer, eval_app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``classify`` to ``app`` and ``routing`` to ``eval_app`` (``bench_app`` is unused here)."""

    @app.command("classify")
    def classify(
        json_out: bool = typer.Option(False, "--json", help="One JSON object per line (else 'intents<TAB>text')."),
    ) -> None:
        """Route each stdin line (one message per line; blank lines skipped) with the local router.

        Output per line with --json: {"text": str, "intents": [str], "scores": {label: float}}.
        The model is loaded from the shared model cache (settings.model_dir), or trained once (~15 s of CPU).
        """
        from core.settings import get_settings
        from tools.backends.models.local_router import LocalRouter

        router = LocalRouter.from_settings(get_settings())
        out = sys.stdout
        for batch in _batches(sys.stdin, BATCH):
            for text, d in zip(batch, router.route_many(batch)):
                if json_out:
                    out.write(json.dumps({"text": text, "intents": list(d.intents),
                                          "scores": {k: round(v, 4) for k, v in d.scores.items()}},
                                         ensure_ascii=False) + "\n")
                else:
                    out.write(f"{','.join(d.intents)}\t{text}\n")
            out.flush()

    @eval_app.command("routing")
    def eval_routing(
        sample: int | None = typer.Option(None, "--sample", help="Evaluate a seeded random subset of N utterances."),
        split: str = typer.Option("test", "--split", help="test (held out) or dev."),
    ) -> None:
        """Macro-F1, per-label precision/recall, confusion and real-vs-derived figures of the local router."""
        if split not in ("test", "dev"):
            raise typer.BadParameter("--split must be test or dev")
        from bench.eval_routing import print_report, run_routing_eval

        print_report(run_routing_eval(sample=sample, split=split))
