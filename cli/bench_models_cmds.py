"""CLI command ``mangaassist bench models``: turn latency and cost of the bedrock profile on simulated models."""

from __future__ import annotations

import typer

from cli.runtime import fail, print_json, run


def register(app: typer.Typer, eval_app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``models`` to ``bench_app``."""

    @bench_app.command("models")
    def models_cmd(
        turns: int = typer.Option(60, "--turns", help="Turns per kind (single-intent, multi-intent), >= 1."),
        concurrency: int = typer.Option(12, "--concurrency", help="Turns in flight at once, >= 1."),
        budget_ms: float = typer.Option(3000.0, "--budget-ms", help="Latency budget per turn (ms)."),
        haiku_ms: float = typer.Option(400.0, "--haiku-ms", help="Simulated Haiku latency per call (ms)."),
        sonnet_ms: float = typer.Option(1500.0, "--sonnet-ms", help="Simulated Sonnet latency per call (ms)."),
        jitter: float = typer.Option(0.2, "--jitter", help="Uniform latency jitter as a fraction (0.2 = ±20%)."),
        as_json: bool = typer.Option(False, "--json", help="Print only the JSON line."),
    ) -> None:
        """Run single- and multi-intent turns through the real graph on simulated Bedrock models; print a table
        and one JSON line (p50/p95 ms, degrade and fallback rates, USD per 1,000 turns at the price table)."""
        from bench.model_latency import render_table, run_model_bench

        if turns < 1 or concurrency < 1 or budget_ms <= 0 or not 0 <= jitter < 1:
            fail("--turns and --concurrency must be >= 1, --budget-ms > 0, 0 <= --jitter < 1")

        async def main() -> dict:
            return await run_model_bench(turns, concurrency, budget_ms, jitter, {"haiku": haiku_ms, "sonnet": sonnet_ms})

        res = run(main)
        if not as_json:
            typer.echo(render_table(res))
        print_json(res)
