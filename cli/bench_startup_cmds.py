"""`mangaassist bench startup`: how long a fresh install and a later start wait for their first answer."""

from __future__ import annotations

import typer

from cli.runtime import fail, print_json


def register(app: typer.Typer, eval_app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``startup`` to ``bench_app``."""

    @bench_app.command("startup")
    def startup_cmd(
        runs: int = typer.Option(5, "--runs", help="Later starts to time after the first one, >= 1."),
        message: str = typer.Option("hi", "--message", help="The message each run answers."),
    ) -> None:
        """Time `mangaassist chat MESSAGE` in new processes: once with an empty model dir, then --runs times reusing
        it; print the seconds (first, later median / p90 / max) and the open_deps stages of the last run (ms)."""
        from bench.startup import run_startup_bench

        if runs < 1:
            fail("--runs must be >= 1")
        result = run_startup_bench(runs, message)
        typer.echo(f"first start (empty model dir): {result['first_s']:.1f} s")
        typer.echo(f"later starts: median {result['later_median_s']:.1f} s, p90 {result['later_p90_s']:.1f} s, "
                   f"max {result['later_max_s']:.1f} s over {runs}")
        typer.echo(f"stages of the last start (ms): {result['stages_ms']}")
        print_json(result)
